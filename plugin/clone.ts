/**
 * Tenant cloning (DESIGN.md §3): reads the catalog of the template schema once and returns DDL that
 * recreates it, object by object, in a new schema.
 *
 * The DDL names every template object unqualified. It is meant to be replayed as one
 * simple-protocol query, after the caller has made the new schema the first entry of the path:
 *
 *   BEGIN; CREATE SCHEMA "t"; SET LOCAL search_path = "t", public;
 *   SET LOCAL check_function_bodies = off; <renderCloneDDL(ddl, 't')> COMMIT;
 *
 * It is generated with `search_path = "<template>", public`, so the catalog's pretty printers
 * (`pg_get_indexdef(oid, 0, true)`, `pg_get_constraintdef(oid, true)`, `pg_get_viewdef(oid, true)`,
 * `pg_get_triggerdef(oid, true)`, `pg_get_expr(.., true)`, `format_type`, regclass output) print
 * template objects unqualified and objects of other schemas (`public.*`) qualified or resolvable
 * through the same path. The template's name is never searched for or replaced in any text: the
 * one place the new schema's name is needed (a function's pinned `search_path` that names the
 * template) is emitted as a marker whose offsets are recorded in the DDL's first line, and
 * `renderCloneDDL` substitutes those offsets only.
 *
 * Copied: enum types, domains (collation, default, NOT NULL, checks), sequences (type, bounds,
 * start, increment, cache, cycle, UNLOGGED, OWNED BY), functions and procedures (sql, plpgsql or any
 * language with a body; C with probin), tables (defaults, identity with its sequence's name and
 * options, stored/virtual generated columns, NOT NULL, named NOT NULL constraints on PostgreSQL 18,
 * collations, UNLOGGED, access method, reloptions incl. toast.*, tablespace, per-column statistics
 * target, storage, compression, n_distinct), constraints with their names (PK, UNIQUE, CHECK,
 * EXCLUDE, FK incl. to public, deferrable, NOT VALID), indexes with their names (partial,
 * expression, unique, options), REPLICA IDENTITY, CLUSTER ON, views and materialized views (in
 * dependency order; materialized views WITH NO DATA), view column defaults, triggers (enabled
 * state kept; internal ones and those named GUARD_TRIGGER_PREFIX* skipped), rules, extended
 * statistics, comments, row-level security and policies.
 * Refused with CloneUnsupportedError: anything else living in the template (aggregates, window
 * functions, SQL-standard function bodies, TRANSFORM, composite/range/base types, partitioned
 * tables, partitions, inheritance, typed tables, foreign tables, operators, collations, text
 * search objects, extension members, invalid indexes, objects shadowed by pg_catalog ...).
 * Not copied: privileges (GRANT/REVOKE), ownership and security labels: clone objects belong to the
 * role that replays the DDL; the template's revoked privileges (its write guard) must not follow.
 */
import { TEMPLATE_SCHEMA, quoteIdent, quoteLiteral } from './names.js'

/** One dedicated connection (a `pg.Client` or a client checked out of a pool). */
export interface CatalogClient {
  query: (sql: string, params?: unknown[]) => Promise<{ rows: Array<Record<string, unknown>> }>
}

/** Triggers whose name starts with this (the template's write guard) are never copied. */
export const GUARD_TRIGGER_PREFIX = '__boardinghouse'

/** Thrown when the template holds an object the clone cannot reproduce (the caller reports it as FST_BH_CLONE_UNSUPPORTED). */
export class CloneUnsupportedError extends Error {
  /** One description per offending object, e.g. `aggregate total(integer)`. */
  readonly objects: string[]
  constructor (template: string, objects: string[]) {
    super(`template schema ${JSON.stringify(template)} holds objects that cannot be cloned: ${objects.join('; ')}`)
    this.name = 'CloneUnsupportedError'
    this.objects = objects
  }
}

const HEADER = '-- fastify-boardinghouse clone DDL v1; target schema at:'
/** Stands for the new schema's name until `renderCloneDDL`. Not valid SQL, so unrendered DDL fails instead of running. */
const TARGET_MARKER = '<target schema>'

/**
 * Returns `ddl` (from `generateCloneDDL`) with the new schema's name, quoted, at the offsets the
 * DDL recorded for it, and nothing else changed.
 */
export function renderCloneDDL (ddl: string, schema: string): string {
  if (typeof schema !== 'string' || schema === '') throw new TypeError('renderCloneDDL: schema must be a non-empty string')
  const newline = ddl.indexOf('\n')
  const header = newline < 0 ? ddl : ddl.slice(0, newline)
  if (!header.startsWith(HEADER)) throw new Error('renderCloneDDL: not DDL from generateCloneDDL (header line missing)')
  const list = header.slice(HEADER.length).trim()
  if (!/^(\d+(,\d+)*)?$/.test(list)) throw new Error('renderCloneDDL: malformed header line')
  const offsets = list === '' ? [] : list.split(',').map(Number)
  const body = newline < 0 ? '' : ddl.slice(newline + 1)
  const target = quoteIdent(schema)
  let out = ''
  let from = 0
  for (const at of offsets) {
    if (at < from || !body.startsWith(TARGET_MARKER, at)) throw new Error(`renderCloneDDL: no target-schema marker at offset ${at}; was the DDL edited?`)
    out += body.slice(from, at) + target
    from = at + TARGET_MARKER.length
  }
  return out + body.slice(from)
}

/** Accumulates DDL text and the offsets of target-schema markers in it. */
class DDLBuilder {
  private readonly parts: string[] = []
  private length = 0
  private readonly targets: number[] = []

  add (text: string): this {
    this.parts.push(text)
    this.length += text.length
    return this
  }

  /** Appends the marker for the new schema's (quoted) name. */
  target (): this {
    this.targets.push(this.length)
    return this.add(TARGET_MARKER)
  }

  /** Appends one statement: `text` + ';' + newline. */
  statement (text: string): this {
    return this.add(text + ';\n')
  }

  section (title: string): this {
    return this.add(`\n-- ${title}\n`)
  }

  toString (): string {
    return `${HEADER} ${this.targets.join(',')}\n${this.parts.join('')}`
  }
}

// ---------------------------------------------------------------------------------------------
// Row accessors (rows come back untyped from the driver)
// ---------------------------------------------------------------------------------------------

type Row = Record<string, unknown>

function s (row: Row, key: string): string {
  const v = row[key]
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'bigint') return String(v)
  throw new Error(`generateCloneDDL: catalog column ${key} is ${v === null ? 'null' : typeof v}, expected text`)
}
function os (row: Row, key: string): string | null {
  const v = row[key]
  return v === null || v === undefined ? null : s(row, key)
}
function b (row: Row, key: string): boolean {
  return row[key] === true
}
function arr (row: Row, key: string): string[] {
  const v = row[key]
  if (v === null || v === undefined) return []
  if (!Array.isArray(v)) throw new Error(`generateCloneDDL: catalog column ${key} is not an array`)
  return v.map((x) => String(x))
}

// ---------------------------------------------------------------------------------------------
// Catalog queries. All oids travel as text.
//
// No catalog has an index on its namespace column alone (pg_class_relname_nsp_index and its kin
// lead with the name), so `WHERE relnamespace = $1` reads all of pg_class: every tenant schema's
// rows, which made generation grow with the number of tenants. Instead, Q_OBJECTS finds the
// template's objects through pg_depend's index on the referenced object (everything created in a
// schema records a dependency on it: DROP SCHEMA .. CASCADE finds its victims that way), adds the
// objects that depend on the schema only through another one (indexes through their table,
// a composite type's relation, row types, array types, constraints), and keeps those whose
// namespace column is the template; every later query starts from those oids (`= ANY (..)`) and
// reaches the other catalogs through their indexes on the owning object (attrelid, conrelid,
// indrelid, tgrelid, ev_class, polrelid, adrelid, pg_description's objoid, pg_depend's objid).
// A domain's constraints are looked up with `conrelid = 0 AND contypid = ..`: contypid is 0 in
// nearly every row, so its statistics make a scan of pg_constraint look cheaper than its index.
// (Measured on PostgreSQL 15 with 1,000 tenant copies of the 26-table bench template: 0.5-1.4 s
// before, 35-65 ms after; the same at 0 tenants.)
// The placeholders :ns (the namespace's oid) and :rels, :types, :procs, :stats, :cons (arrays of
// the oids of its relations, types, functions, statistics objects and constraints) are bound by
// `bind`.
// ---------------------------------------------------------------------------------------------

const Q_OBJECTS = `
WITH dep AS (
  SELECT d.classid, d.objid FROM pg_depend d
  WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = :ns::oid),
dep_types AS (
  SELECT t.oid, t.typrelid FROM pg_type t
  WHERE t.oid = ANY (ARRAY(SELECT objid FROM dep WHERE classid = 'pg_type'::regclass)) AND t.typnamespace = :ns::oid),
owners AS (
  SELECT c.oid, c.reltype FROM pg_class c
  WHERE c.oid = ANY (ARRAY(SELECT objid FROM dep WHERE classid = 'pg_class'::regclass UNION SELECT typrelid FROM dep_types WHERE typrelid <> 0))
    AND c.relnamespace = :ns::oid),
rels AS (
  SELECT oid, reltype FROM owners
  UNION
  SELECT c.oid, c.reltype FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  WHERE i.indrelid = ANY (ARRAY(SELECT oid FROM owners)) AND c.relnamespace = :ns::oid),
types1 AS (
  SELECT t.oid, t.typarray FROM pg_type t
  WHERE t.oid = ANY (ARRAY(SELECT oid FROM dep_types UNION SELECT reltype FROM rels WHERE reltype <> 0)) AND t.typnamespace = :ns::oid),
types AS (
  SELECT oid FROM types1
  UNION
  SELECT t.oid FROM pg_type t WHERE t.oid = ANY (ARRAY(SELECT typarray FROM types1 WHERE typarray <> 0)) AND t.typnamespace = :ns::oid)
SELECT
  ARRAY(SELECT oid::text FROM rels ORDER BY oid) AS rels,
  ARRAY(SELECT oid::text FROM types ORDER BY oid) AS types,
  ARRAY(SELECT p.oid::text FROM pg_proc p
        WHERE p.oid = ANY (ARRAY(SELECT objid FROM dep WHERE classid = 'pg_proc'::regclass)) AND p.pronamespace = :ns::oid ORDER BY p.oid) AS procs,
  ARRAY(SELECT s.oid::text FROM pg_statistic_ext s
        WHERE s.oid = ANY (ARRAY(SELECT objid FROM dep WHERE classid = 'pg_statistic_ext'::regclass)) AND s.stxnamespace = :ns::oid ORDER BY s.oid) AS stats,
  ARRAY(SELECT oid::text FROM (
          SELECT k.oid FROM pg_constraint k WHERE k.conrelid = ANY (ARRAY(SELECT oid FROM rels)) AND k.connamespace = :ns::oid
          UNION
          SELECT k.oid FROM pg_constraint k WHERE k.conrelid = 0 AND k.contypid = ANY (ARRAY(SELECT oid FROM types)) AND k.connamespace = :ns::oid) k
        ORDER BY oid) AS cons`

// Everything created in a schema records a dependency on it: that finds objects of any kind,
// including kinds this module has never heard of. The other branches look closer at the kinds it
// handles. Problems are listed by branch, then by object oid.
const Q_UNSUPPORTED = `
SELECT what FROM (
  SELECT 1 AS branch, d.objid AS sort, CASE
    WHEN EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = d.classid AND e.objid = d.objid AND e.deptype = 'e')
      THEN 'member of an extension: ' || pg_describe_object(d.classid, d.objid, d.objsubid)
    WHEN d.classid NOT IN ('pg_class'::regclass, 'pg_type'::regclass, 'pg_proc'::regclass, 'pg_statistic_ext'::regclass)
      THEN pg_describe_object(d.classid, d.objid, d.objsubid)
  END AS what
  FROM pg_depend d WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = :ns::oid
  UNION ALL
  SELECT 2, c.oid, CASE
    WHEN c.relkind = 'p' THEN 'partitioned table '
    WHEN c.relkind = 'I' THEN 'partitioned index '
    WHEN c.relkind = 'f' THEN 'foreign table '
    WHEN c.relkind = 'c' THEN 'composite type '
    WHEN c.relkind NOT IN ('r', 'v', 'm', 'S', 'i') THEN 'relation of kind ' || c.relkind::text || ': '
    WHEN c.relispartition THEN 'partition '
    WHEN c.reloftype <> 0 THEN 'typed table (OF type) '
    WHEN c.relkind = 'i' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indexrelid = c.oid AND i.indisvalid AND i.indisready AND i.indislive)
      THEN 'invalid index (left by a failed CREATE INDEX CONCURRENTLY?) '
    WHEN NOT pg_table_is_visible(c.oid) THEN 'relation shadowed by one of the same name earlier in the search path: '
  END || c.relname
  FROM pg_class c WHERE c.oid = ANY (:rels::oid[])
  UNION ALL
  SELECT 3, t.oid, CASE
    WHEN t.typtype IN ('e', 'd', 'c') OR (t.typelem <> 0 AND t.typsubscript = 'pg_catalog.array_subscript_handler'::regproc)
      THEN CASE WHEN NOT pg_type_is_visible(t.oid) THEN 'type shadowed by one of the same name in pg_catalog: ' END
    WHEN t.typtype = 'm' THEN NULL
    WHEN t.typtype = 'b' THEN 'base type '
    WHEN t.typtype = 'r' THEN 'range type '
    WHEN t.typtype = 'p' THEN 'pseudo or shell type '
    ELSE 'type '
  END || t.typname
  FROM pg_type t WHERE t.oid = ANY (:types::oid[])
  UNION ALL
  SELECT 4, p.oid, CASE p.prokind WHEN 'a' THEN 'aggregate ' WHEN 'w' THEN 'window function ' WHEN 'p' THEN 'procedure ' ELSE 'function ' END
    || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' || CASE
    WHEN p.prokind NOT IN ('f', 'p') THEN ''
    WHEN p.prosqlbody IS NOT NULL THEN ' with a SQL-standard body (BEGIN ATOMIC or RETURN)'
    WHEN p.protrftypes IS NOT NULL THEN ' with TRANSFORM FOR TYPE'
    WHEN NOT pg_function_is_visible(p.oid) THEN ' (shadowed by one of the same name and arguments in pg_catalog)'
  END
  FROM pg_proc p WHERE p.oid = ANY (:procs::oid[])
  UNION ALL
  SELECT 5, i.inhrelid, 'table inheritance ' || i.inhrelid::regclass::text || ' INHERITS ' || i.inhparent::regclass::text
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  WHERE (i.inhrelid = ANY (:rels::oid[]) OR i.inhparent = ANY (:rels::oid[])) AND NOT c.relispartition
  UNION ALL
  SELECT 6, c.oid, 'sequence ' || c.relname || ' owned by a column of ' || t.oid::regclass::text || ', outside the template'
  FROM pg_class c JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid JOIN pg_class t ON t.oid = d.refobjid
  WHERE c.oid = ANY (:rels::oid[]) AND c.relkind = 'S'
    AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') AND t.relnamespace <> :ns::oid
) problems WHERE what IS NOT NULL
ORDER BY branch, sort, what`

const Q_TYPES = `
SELECT t.oid::text AS oid, t.typname::text AS name, t.typtype::text AS kind,
  ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) AS labels,
  CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS base_type,
  ARRAY[t.typbasetype::text, coalesce(NULLIF(bt.typelem, 0), bt.oid)::text] AS base_oids,
  CASE WHEN t.typtype = 'd' AND t.typcollation <> 0 AND t.typcollation <> bt.typcollation THEN t.typcollation::regcollation::text END AS collation,
  pg_get_expr(t.typdefaultbin, 0, true) AS "default", t.typnotnull AS not_null,
  (SELECT json_agg(json_build_object('name', k.conname, 'type', k.contype, 'def', pg_get_constraintdef(k.oid, true)) ORDER BY k.oid)
     FROM pg_constraint k WHERE k.conrelid = 0 AND k.contypid = t.oid) AS constraints
FROM pg_type t LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
WHERE t.oid = ANY (:types::oid[]) AND t.typtype IN ('e', 'd')
ORDER BY t.oid`

const Q_SEQUENCES = `
SELECT c.oid::text AS oid, c.relname::text AS name, c.relpersistence::text AS persistence,
  format_type(s.seqtypid, NULL) AS type, s.seqstart::text AS start, s.seqincrement::text AS increment,
  s.seqmin::text AS min, s.seqmax::text AS max, s.seqcache::text AS cache, s.seqcycle AS cycle,
  d.deptype::text AS deptype, t.relname::text AS owner_table, a.attname::text AS owner_column,
  d.refobjid::text AS owner_rel, d.refobjsubid::text AS owner_attnum
FROM pg_class c JOIN pg_sequence s ON s.seqrelid = c.oid
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass
  AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
LEFT JOIN pg_class t ON t.oid = d.refobjid
LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE c.oid = ANY (:rels::oid[]) AND c.relkind = 'S'
ORDER BY c.oid`

const Q_FUNCTIONS = `
SELECT p.oid::text AS oid, p.proname::text AS name, p.prokind::text AS kind, l.lanname::text AS language,
  pg_get_function_arguments(p.oid) AS args, pg_get_function_identity_arguments(p.oid) AS identity_args,
  pg_get_function_result(p.oid) AS result,
  p.provolatile::text AS volatility, p.proisstrict AS strict, p.prosecdef AS security_definer,
  p.proleakproof AS leakproof, p.proparallel::text AS parallel, p.procost::text AS cost,
  p.prorows::text AS rows, p.proretset AS retset, p.prosrc AS src, p.probin AS bin,
  coalesce(p.proconfig, '{}')::text[] AS config,
  CASE WHEN p.prosupport <> 0 THEN p.prosupport::regproc::text END AS support,
  (SELECT max(CASE WHEN rc.relkind IN ('v', 'm') THEN 2 ELSE 1 END)
     FROM unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]) || p.prorettype) AS u(typ)
     JOIN pg_type ty ON ty.oid = u.typ
     LEFT JOIN pg_type el ON el.oid = ty.typelem AND ty.typelem <> 0
     JOIN pg_class rc ON rc.oid = coalesce(NULLIF(ty.typrelid, 0), el.typrelid)
    WHERE rc.relnamespace = :ns::oid) AS rowtype_phase
FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
WHERE p.oid = ANY (:procs::oid[]) AND p.prokind IN ('f', 'p')
ORDER BY p.oid`

const Q_RELATIONS = `
WITH rels AS (SELECT c.oid, c.relkind FROM pg_class c WHERE c.oid = ANY (:rels::oid[]) AND c.relkind IN ('r', 'v', 'm')),
view_deps AS (
  SELECT r.ev_class AS oid, array_agg(DISTINCT d.refobjid::text) AS deps
  FROM pg_rewrite r
  JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
  WHERE r.ev_class = ANY (ARRAY(SELECT oid FROM rels WHERE relkind IN ('v', 'm')))
    AND d.refobjid IN (SELECT oid FROM rels WHERE relkind IN ('v', 'm'))
  GROUP BY r.ev_class)
SELECT c.oid::text AS oid, c.relname::text AS name, c.relkind::text AS kind, c.relpersistence::text AS persistence,
  coalesce(c.reloptions, '{}')::text[] AS options, coalesce(tc.reloptions, '{}')::text[] AS toast_options,
  am.amname::text AS am, ts.spcname::text AS tablespace,
  c.relrowsecurity AS rls, c.relforcerowsecurity AS force_rls, c.relreplident::text AS replident,
  CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END AS viewdef,
  coalesce(vd.deps, '{}') AS deps
FROM rels JOIN pg_class c ON c.oid = rels.oid
LEFT JOIN view_deps vd ON vd.oid = c.oid
LEFT JOIN pg_class tc ON tc.oid = c.reltoastrelid
LEFT JOIN pg_am am ON am.oid = c.relam AND c.relkind IN ('r', 'm')
LEFT JOIN pg_tablespace ts ON ts.oid = c.reltablespace AND c.reltablespace <> 0
ORDER BY c.oid`

const Q_COLUMNS = `
SELECT a.attrelid::text AS rel, a.attnum::text AS attnum, a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type,
  coalesce(NULLIF(ty.typrelid, 0), el.typrelid)::text AS rowtype_rel,
  a.attnotnull AS not_null, a.attidentity::text AS identity, a.attgenerated::text AS generated,
  CASE WHEN a.attcollation <> 0 AND a.attcollation <> ty.typcollation THEN a.attcollation::regcollation::text END AS collation,
  CASE WHEN a.atthasdef THEN pg_get_expr(ad.adbin, ad.adrelid, true) END AS "default",
  CASE WHEN a.attstorage <> ty.typstorage THEN a.attstorage::text END AS storage,
  CASE a.attcompression WHEN 'p' THEN 'pglz' WHEN 'l' THEN 'lz4' END AS compression,
  CASE WHEN a.attstattarget >= 0 THEN a.attstattarget::text END AS stattarget,
  coalesce(a.attoptions, '{}')::text[] AS options,
  nn.conname::text AS nn_name, nn.convalidated AS nn_valid, nn.connoinherit AS nn_noinherit
FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid
JOIN pg_type ty ON ty.oid = a.atttypid
LEFT JOIN pg_type el ON el.oid = ty.typelem AND ty.typelem <> 0
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_constraint nn ON nn.conrelid = a.attrelid AND nn.contype = 'n' AND nn.conkey[1] = a.attnum
WHERE a.attrelid = ANY (:rels::oid[]) AND c.relkind IN ('r', 'v', 'm') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum`

const Q_CONSTRAINTS = `
SELECT k.conname::text AS name, k.contype::text AS type, c.relname::text AS "table", pg_get_constraintdef(k.oid, true) AS def
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
WHERE k.conrelid = ANY (:rels::oid[]) AND c.relkind = 'r'
  AND (k.contype IN ('p', 'u', 'x', 'c', 'f') OR (k.contype = 'n' AND NOT k.convalidated))
ORDER BY CASE k.contype WHEN 'p' THEN 0 WHEN 'u' THEN 1 WHEN 'x' THEN 2 WHEN 'c' THEN 3 WHEN 'n' THEN 4 ELSE 5 END, c.oid, k.oid`

const Q_INDEXES = `
SELECT ic.relname::text AS name, t.relname::text AS "table", t.relkind::text AS table_kind,
  pg_get_indexdef(i.indexrelid, 0, true) AS def, i.indisclustered AS clustered, i.indisreplident AS replident,
  ts.spcname::text AS tablespace,
  EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = i.indrelid AND k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x')) AS backs_constraint
FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
LEFT JOIN pg_tablespace ts ON ts.oid = ic.reltablespace AND ic.reltablespace <> 0
WHERE i.indrelid = ANY (:rels::oid[]) AND t.relkind IN ('r', 'm')
ORDER BY t.oid, i.indexrelid`

const Q_TRIGGERS = `
SELECT tg.tgname::text AS name, c.relname::text AS "table", c.relkind::text AS table_kind,
  pg_get_triggerdef(tg.oid, true) AS def, tg.tgenabled::text AS enabled
FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid
WHERE tg.tgrelid = ANY (:rels::oid[]) AND NOT tg.tgisinternal
ORDER BY c.oid, tg.tgname`

const Q_RULES = `
SELECT r.rulename::text AS name, c.relname::text AS "table", c.relkind::text AS table_kind,
  pg_get_ruledef(r.oid, true) AS def, r.ev_enabled::text AS enabled
FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
WHERE r.ev_class = ANY (:rels::oid[]) AND r.rulename <> '_RETURN'
ORDER BY c.oid, r.rulename`

const Q_STATISTICS = `
SELECT s.stxname::text AS name, c.relname::text AS "table", c.relnamespace = :ns::oid AS table_in_template,
  pg_get_statisticsobjdef_columns(s.oid) AS columns,
  ARRAY(SELECT CASE k WHEN 'd' THEN 'ndistinct' WHEN 'f' THEN 'dependencies' WHEN 'm' THEN 'mcv' END
        FROM unnest(s.stxkind) AS k WHERE k <> 'e') AS kinds,
  CASE WHEN s.stxstattarget >= 0 THEN s.stxstattarget::text END AS stattarget
FROM pg_statistic_ext s JOIN pg_class c ON c.oid = s.stxrelid
WHERE s.oid = ANY (:stats::oid[])
ORDER BY s.oid`

const Q_POLICIES = `
SELECT p.polname::text AS name, c.relname::text AS "table", p.polcmd::text AS cmd, p.polpermissive AS permissive,
  0::oid = ANY (p.polroles) AS to_public,
  ARRAY(SELECT r.rolname::text FROM pg_roles r WHERE r.oid = ANY (p.polroles) ORDER BY r.rolname) AS roles,
  pg_get_expr(p.polqual, p.polrelid, true) AS qual, pg_get_expr(p.polwithcheck, p.polrelid, true) AS with_check
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
WHERE p.polrelid = ANY (:rels::oid[])
ORDER BY c.oid, p.polname`

const Q_COMMENTS = `
SELECT 'rel' AS kind, c.relkind::text AS subkind, c.relname::text AS name, NULL::text AS parent, NULL::text AS args, d.description
  FROM pg_description d JOIN pg_class c ON c.oid = d.objoid
  WHERE d.objoid = ANY (:rels::oid[]) AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
UNION ALL
SELECT 'column', c.relkind::text, a.attname::text, c.relname::text, NULL, d.description
  FROM pg_description d JOIN pg_class c ON c.oid = d.objoid
  JOIN pg_attribute a ON a.attrelid = d.objoid AND a.attnum = d.objsubid
  WHERE d.objoid = ANY (:rels::oid[]) AND d.classoid = 'pg_class'::regclass AND d.objsubid > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'type', t.typtype::text, t.typname::text, NULL, NULL, d.description
  FROM pg_description d JOIN pg_type t ON t.oid = d.objoid
  WHERE d.objoid = ANY (:types::oid[]) AND d.classoid = 'pg_type'::regclass
UNION ALL
SELECT 'function', p.prokind::text, p.proname::text, NULL, pg_get_function_identity_arguments(p.oid), d.description
  FROM pg_description d JOIN pg_proc p ON p.oid = d.objoid
  WHERE d.objoid = ANY (:procs::oid[]) AND d.classoid = 'pg_proc'::regclass
UNION ALL
SELECT 'constraint', CASE WHEN k.contypid <> 0 THEN 'domain' ELSE 'table' END, k.conname::text,
       coalesce(c.relname, t.typname)::text, NULL, d.description
  FROM pg_description d JOIN pg_constraint k ON k.oid = d.objoid
  LEFT JOIN pg_class c ON c.oid = k.conrelid LEFT JOIN pg_type t ON t.oid = k.contypid
  WHERE d.objoid = ANY (:cons::oid[]) AND d.classoid = 'pg_constraint'::regclass
UNION ALL
SELECT 'trigger', NULL, tg.tgname::text, c.relname::text, NULL, d.description
  FROM pg_description d JOIN pg_trigger tg ON tg.oid = d.objoid JOIN pg_class c ON c.oid = tg.tgrelid
  WHERE d.objoid = ANY (ARRAY(SELECT oid FROM pg_trigger WHERE tgrelid = ANY (:rels::oid[]) AND NOT tgisinternal))
    AND d.classoid = 'pg_trigger'::regclass
UNION ALL
SELECT 'policy', NULL, p.polname::text, c.relname::text, NULL, d.description
  FROM pg_description d JOIN pg_policy p ON p.oid = d.objoid JOIN pg_class c ON c.oid = p.polrelid
  WHERE d.objoid = ANY (ARRAY(SELECT oid FROM pg_policy WHERE polrelid = ANY (:rels::oid[]))) AND d.classoid = 'pg_policy'::regclass
UNION ALL
SELECT 'rule', NULL, r.rulename::text, c.relname::text, NULL, d.description
  FROM pg_description d JOIN pg_rewrite r ON r.oid = d.objoid JOIN pg_class c ON c.oid = r.ev_class
  WHERE d.objoid = ANY (ARRAY(SELECT oid FROM pg_rewrite WHERE ev_class = ANY (:rels::oid[]) AND rulename <> '_RETURN'))
    AND d.classoid = 'pg_rewrite'::regclass
UNION ALL
SELECT 'statistics', NULL, s.stxname::text, NULL, NULL, d.description
  FROM pg_description d JOIN pg_statistic_ext s ON s.oid = d.objoid
  WHERE d.objoid = ANY (:stats::oid[]) AND d.classoid = 'pg_statistic_ext'::regclass
ORDER BY 1, 4, 3, 5`

/** Query parameters by placeholder name. */
type Bindings = Record<string, string | string[]>

/**
 * Numbers the `:name` placeholders of `sql` in order of first use (`$1`, `$2`, ...) and returns the
 * text with its parameters; `::` casts are left alone. Throws on a name missing from `values`.
 */
function bind (sql: string, values: Bindings): { text: string, params: Array<string | string[]> } {
  const names: string[] = []
  const text = sql.replace(/(?<![:\w]):([a-z_]+)\b/g, (_, name: string) => {
    if (!Object.prototype.hasOwnProperty.call(values, name)) throw new Error(`generateCloneDDL: no value for :${name}`)
    let at = names.indexOf(name)
    if (at < 0) at = names.push(name) - 1
    return `$${at + 1}`
  })
  return { text, params: names.map((name) => values[name] as string | string[]) }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** Orders `items` so each comes after the items it depends on (stable otherwise). */
function topoSort<T> (items: T[], key: (item: T) => string, deps: (item: T) => string[], what: string): T[] {
  const byKey = new Map(items.map((item) => [key(item), item]))
  const state = new Map<string, 'visiting' | 'done'>()
  const out: T[] = []
  const visit = (item: T, path: string[]): void => {
    const k = key(item)
    const st = state.get(k)
    if (st === 'done') return
    if (st === 'visiting') throw new Error(`generateCloneDDL: circular dependency between ${what}: ${[...path, k].join(' -> ')}`)
    state.set(k, 'visiting')
    for (const d of deps(item)) {
      const dep = byKey.get(d)
      if (dep !== undefined && d !== k) visit(dep, [...path, k])
    }
    state.set(k, 'done')
    out.push(item)
  }
  for (const item of items) visit(item, [])
  return out
}

/** A dollar-quote tag that does not occur in `body`. */
function dollarQuote (body: string): string {
  let tag = '$fn$'
  for (let i = 1; body.includes(tag); i++) tag = `$fn${i}$`
  return tag + body + tag
}

/** `name=value` reloption strings → `WITH (...)` contents. */
function relOptions (options: string[], prefix = ''): string[] {
  return options.map((opt) => {
    const eq = opt.indexOf('=')
    const name = eq < 0 ? opt : opt.slice(0, eq)
    const value = eq < 0 ? 'true' : opt.slice(eq + 1)
    return `${prefix}${quoteIdent(name)}=${quoteLiteral(value)}`
  })
}

/** Settings whose value is a list of identifiers (pg_dump's variable_is_guc_list_quote). */
const LIST_SETTINGS = new Set(['local_preload_libraries', 'search_path', 'session_preload_libraries', 'shared_preload_libraries', 'temp_tablespaces', 'unix_socket_directories'])

/**
 * Splits a list setting's value into its elements, as PostgreSQL's SplitIdentifierString does:
 * double-quoted elements keep their case ("" is a quote), unquoted ones are trimmed and downcased.
 */
export function splitSettingList (value: string): string[] {
  const out: string[] = []
  let i = 0
  const n = value.length
  const isSpace = (ch: string | undefined): boolean => ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\f' || ch === '\v'
  while (i < n && isSpace(value[i])) i++
  if (i === n) return out
  for (;;) {
    let element: string
    if (value[i] === '"') {
      element = ''
      i++
      for (;;) {
        if (i >= n) throw new Error(`unterminated quoted identifier in setting value ${JSON.stringify(value)}`)
        if (value[i] === '"') {
          if (value[i + 1] === '"') { element += '"'; i += 2; continue }
          i++
          break
        }
        element += value[i]
        i++
      }
    } else {
      const start = i
      while (i < n && value[i] !== ',' && !isSpace(value[i])) i++
      element = value.slice(start, i).replace(/[A-Z]/g, (c) => c.toLowerCase())
      if (element === '') throw new Error(`empty element in setting value ${JSON.stringify(value)}`)
    }
    out.push(element)
    while (i < n && isSpace(value[i])) i++
    if (i === n) break
    if (value[i] !== ',') throw new Error(`malformed list in setting value ${JSON.stringify(value)}`)
    i++
    while (i < n && isSpace(value[i])) i++
  }
  return out
}

/** `SET` clause of a function for one `proconfig` entry; a search_path element naming the template becomes the new schema. */
function emitSetting (ddl: DDLBuilder, entry: string, template: string): void {
  const eq = entry.indexOf('=')
  if (eq <= 0) throw new Error(`generateCloneDDL: unreadable function setting ${JSON.stringify(entry)}`)
  const name = entry.slice(0, eq)
  const value = entry.slice(eq + 1)
  ddl.add(' SET ' + name.split('.').map(quoteIdent).join('.') + ' TO ')
  if (!LIST_SETTINGS.has(name.toLowerCase())) {
    ddl.add(quoteLiteral(value))
    return
  }
  const elements = splitSettingList(value)
  if (elements.length === 0) { ddl.add("''"); return }
  elements.forEach((element, i) => {
    if (i > 0) ddl.add(', ')
    if (name.toLowerCase() === 'search_path' && element === template) ddl.target()
    else if (element === '') ddl.add("''")
    else ddl.add(quoteIdent(element))
  })
}

function seqOptions (type: string | null, start: string, increment: string, min: string, max: string, cache: string, cycle: boolean): string {
  return `${type !== null ? `AS ${type} ` : ''}INCREMENT BY ${increment} MINVALUE ${min} MAXVALUE ${max} START WITH ${start} CACHE ${cache} ${cycle ? 'CYCLE' : 'NO CYCLE'}`
}

function stripSemicolon (def: string): string {
  return def.trim().replace(/;\s*$/, '')
}

const TRIGGER_ENABLE: Record<string, string> = { D: 'DISABLE TRIGGER', R: 'ENABLE REPLICA TRIGGER', A: 'ENABLE ALWAYS TRIGGER' }
const RULE_ENABLE: Record<string, string> = { D: 'DISABLE RULE', R: 'ENABLE REPLICA RULE', A: 'ENABLE ALWAYS RULE' }
const POLICY_CMD: Record<string, string> = { '*': 'ALL', r: 'SELECT', a: 'INSERT', w: 'UPDATE', d: 'DELETE' }
const VOLATILITY: Record<string, string> = { i: 'IMMUTABLE', s: 'STABLE', v: 'VOLATILE' }
const PARALLEL: Record<string, string> = { s: 'SAFE', r: 'RESTRICTED', u: 'UNSAFE' }
const REL_KEYWORD: Record<string, string> = { r: 'TABLE', v: 'VIEW', m: 'MATERIALIZED VIEW', S: 'SEQUENCE', i: 'INDEX' }

/** `ALTER TABLE`/`ALTER VIEW`/`ALTER MATERIALIZED VIEW` for a relation kind. */
function alterRel (kind: string): string {
  return kind === 'v' ? 'ALTER VIEW' : kind === 'm' ? 'ALTER MATERIALIZED VIEW' : 'ALTER TABLE'
}

// ---------------------------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------------------------

/**
 * Reads the catalog of `template` on `client` (one dedicated connection; its search_path is set to
 * the template while generating and restored afterwards) and returns DDL that recreates the
 * template in a new schema; pass it through `renderCloneDDL(ddl, schema)` before replaying.
 * Rejects with `CloneUnsupportedError` when the template holds an object it cannot reproduce.
 */
export async function generateCloneDDL (client: CatalogClient, template: string = TEMPLATE_SCHEMA): Promise<string> {
  const previous = await client.query("SELECT current_setting('search_path') AS search_path")
  const previousPath = s(previous.rows[0] ?? {}, 'search_path')
  let failed = false
  try {
    await client.query("SELECT set_config('search_path', $1, false)", [`${quoteIdent(template)}, public`])
    return await generate(client, template)
  } catch (err) {
    failed = true
    throw err
  } finally {
    try {
      await client.query("SELECT set_config('search_path', $1, false)", [previousPath])
    } catch (restoreError) {
      // After a failure the connection may be in an aborted transaction (whose ROLLBACK restores the
      // path anyway): the first error is the one to report.
      if (!failed) throw restoreError // eslint-disable-line no-unsafe-finally
    }
  }
}

async function generate (client: CatalogClient, template: string): Promise<string> {
  const ns = await client.query('SELECT oid::text AS oid FROM pg_namespace WHERE nspname = $1', [template])
  const nsRow = ns.rows[0]
  if (nsRow === undefined) throw new Error(`generateCloneDDL: template schema ${JSON.stringify(template)} does not exist`)
  const values: Bindings = { ns: s(nsRow, 'oid') }
  const run = async (sql: string): Promise<Row[]> => {
    const { text, params } = bind(sql, values)
    return (await client.query(text, params)).rows
  }

  const objects = (await run(Q_OBJECTS))[0] ?? {}
  for (const key of ['rels', 'types', 'procs', 'stats', 'cons']) values[key] = arr(objects, key)

  const unsupported = await run(Q_UNSUPPORTED)
  if (unsupported.length > 0) throw new CloneUnsupportedError(template, unsupported.map((r) => s(r, 'what')))

  const types = await run(Q_TYPES)
  const sequences = await run(Q_SEQUENCES)
  const functions = await run(Q_FUNCTIONS)
  const relations = await run(Q_RELATIONS)
  const columns = await run(Q_COLUMNS)
  const constraints = await run(Q_CONSTRAINTS)
  const indexes = await run(Q_INDEXES)
  const triggers = await run(Q_TRIGGERS)
  const rules = await run(Q_RULES)
  const statistics = await run(Q_STATISTICS)
  const policies = await run(Q_POLICIES)
  const comments = await run(Q_COMMENTS)

  const ddl = new DDLBuilder()
  const identitySequences = new Map<string, Row>()
  for (const q of sequences) if (os(q, 'deptype') === 'i') identitySequences.set(`${s(q, 'owner_rel')}.${s(q, 'owner_attnum')}`, q)
  const columnsByRel = new Map<string, Row[]>()
  for (const col of columns) {
    const list = columnsByRel.get(s(col, 'rel'))
    if (list === undefined) columnsByRel.set(s(col, 'rel'), [col])
    else list.push(col)
  }

  // 1. Types: enums, then domains (base type, collation, NOT NULL; checks and defaults come after functions)
  ddl.section('types')
  for (const t of types.filter((t) => s(t, 'kind') === 'e')) {
    ddl.statement(`CREATE TYPE ${quoteIdent(s(t, 'name'))} AS ENUM (${arr(t, 'labels').map(quoteLiteral).join(', ')})`)
  }
  const domains = topoSort(types.filter((t) => s(t, 'kind') === 'd'), (t) => s(t, 'oid'), (t) => arr(t, 'base_oids'), 'domains')
  const domainConstraints = (t: Row): Array<{ name: string, type: string, def: string }> => {
    const v = t.constraints
    return Array.isArray(v) ? v as Array<{ name: string, type: string, def: string }> : []
  }
  for (const t of domains) {
    let text = `CREATE DOMAIN ${quoteIdent(s(t, 'name'))} AS ${s(t, 'base_type')}`
    const collation = os(t, 'collation')
    if (collation !== null) text += ` COLLATE ${collation}`
    const namedNotNull = domainConstraints(t).find((k) => k.type === 'n')
    if (namedNotNull !== undefined) text += ` CONSTRAINT ${quoteIdent(namedNotNull.name)} NOT NULL`
    else if (b(t, 'not_null')) text += ' NOT NULL'
    ddl.statement(text)
  }

  // 2. Sequences (identity sequences are created with their column; OWNED BY comes after the tables)
  ddl.section('sequences')
  for (const q of sequences) {
    if (os(q, 'deptype') === 'i') continue
    ddl.statement(`CREATE ${s(q, 'persistence') === 'u' ? 'UNLOGGED ' : ''}SEQUENCE ${quoteIdent(s(q, 'name'))} ` +
      seqOptions(s(q, 'type'), s(q, 'start'), s(q, 'increment'), s(q, 'min'), s(q, 'max'), s(q, 'cache'), b(q, 'cycle')))
  }

  // 3. Functions and procedures, in three groups: signatures that name no template relation's row
  // type come before the tables, those naming a table's row type after the tables, those naming a
  // view's row type after the views.
  const emitFunction = (f: Row): void => {
    const isProcedure = s(f, 'kind') === 'p'
    ddl.add(`CREATE ${isProcedure ? 'PROCEDURE' : 'FUNCTION'} ${quoteIdent(s(f, 'name'))}(${s(f, 'args')})`)
    if (!isProcedure) ddl.add(` RETURNS ${s(f, 'result')}`)
    ddl.add(`\n LANGUAGE ${quoteIdent(s(f, 'language'))}`)
    if (!isProcedure) {
      ddl.add(` ${VOLATILITY[s(f, 'volatility')] ?? 'VOLATILE'}`)
      ddl.add(b(f, 'strict') ? ' STRICT' : ' CALLED ON NULL INPUT')
      if (b(f, 'leakproof')) ddl.add(' LEAKPROOF')
      ddl.add(` PARALLEL ${PARALLEL[s(f, 'parallel')] ?? 'UNSAFE'} COST ${s(f, 'cost')}`)
      if (b(f, 'retset')) ddl.add(` ROWS ${s(f, 'rows')}`)
      const support = os(f, 'support')
      if (support !== null) ddl.add(` SUPPORT ${support}`)
    }
    if (b(f, 'security_definer')) ddl.add(' SECURITY DEFINER')
    for (const entry of arr(f, 'config')) emitSetting(ddl, entry, template)
    const bin = os(f, 'bin')
    ddl.add('\nAS ')
    if (bin !== null) ddl.add(`${quoteLiteral(bin)}, ${quoteLiteral(s(f, 'src'))}`)
    else ddl.add(dollarQuote(s(f, 'src')))
    ddl.add(';\n')
  }
  const phaseOf = (f: Row): number => Number(os(f, 'rowtype_phase') ?? 0)
  ddl.section('functions')
  for (const f of functions) if (phaseOf(f) === 0) emitFunction(f)

  // 4. Domain checks and defaults (they may call functions)
  for (const t of domains) {
    for (const k of domainConstraints(t)) {
      if (k.type === 'c') ddl.statement(`ALTER DOMAIN ${quoteIdent(s(t, 'name'))} ADD CONSTRAINT ${quoteIdent(k.name)} ${k.def}`)
      else if (k.type !== 'n') throw new CloneUnsupportedError(template, [`domain constraint ${k.name} of type ${k.type}`])
    }
    const def = os(t, 'default')
    if (def !== null) ddl.statement(`ALTER DOMAIN ${quoteIdent(s(t, 'name'))} SET DEFAULT ${def}`)
  }

  // 5. Tables (a table whose column has another template table's row type comes after it)
  ddl.section('tables')
  const tableDeps = (r: Row): string[] => (columnsByRel.get(s(r, 'oid')) ?? []).map((c) => os(c, 'rowtype_rel')).filter((x): x is string => x !== null)
  const tables = topoSort(relations.filter((r) => s(r, 'kind') === 'r'), (r) => s(r, 'oid'), tableDeps, 'tables')
  const columnAlters: string[] = []
  for (const t of tables) {
    const table = quoteIdent(s(t, 'name'))
    const defs: string[] = []
    for (const c of columnsByRel.get(s(t, 'oid')) ?? []) {
      const column = quoteIdent(s(c, 'name'))
      let def = `${column} ${s(c, 'type')}`
      const collation = os(c, 'collation')
      if (collation !== null) def += ` COLLATE ${collation}`
      const expr = os(c, 'default')
      const generated = s(c, 'generated')
      if (generated === 's' || generated === 'v') {
        if (expr === null) throw new Error(`generateCloneDDL: generated column ${s(t, 'name')}.${s(c, 'name')} has no expression`)
        def += ` GENERATED ALWAYS AS (${expr}) ${generated === 's' ? 'STORED' : 'VIRTUAL'}`
      } else if (generated !== '') {
        throw new CloneUnsupportedError(template, [`column ${s(t, 'name')}.${s(c, 'name')} with attgenerated '${generated}'`])
      } else if (expr !== null) {
        def += ` DEFAULT ${expr}`
      }
      const identity = s(c, 'identity')
      if (identity !== '') {
        const q = identitySequences.get(`${s(t, 'oid')}.${s(c, 'attnum')}`)
        if (q === undefined) throw new Error(`generateCloneDDL: identity column ${s(t, 'name')}.${s(c, 'name')} has no sequence`)
        // the identity sequence takes the column's type; a different one (ALTER SEQUENCE .. AS) is set afterwards
        def += ` GENERATED ${identity === 'a' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY (SEQUENCE NAME ${quoteIdent(s(q, 'name'))} ` +
          seqOptions(null, s(q, 'start'), s(q, 'increment'), s(q, 'min'), s(q, 'max'), s(q, 'cache'), b(q, 'cycle')) + ')'
        if (s(q, 'type') !== s(c, 'type')) columnAlters.push(`ALTER SEQUENCE ${quoteIdent(s(q, 'name'))} AS ${s(q, 'type')}`)
      }
      const nnName = os(c, 'nn_name')
      if (nnName !== null) {
        // PostgreSQL 18+: NOT NULL is a named constraint; a NOT VALID one is added with the other constraints
        if (b(c, 'nn_valid')) def += ` CONSTRAINT ${quoteIdent(nnName)} NOT NULL${b(c, 'nn_noinherit') ? ' NO INHERIT' : ''}`
      } else if (b(c, 'not_null')) {
        def += ' NOT NULL'
      }
      defs.push(def)
      const storage = os(c, 'storage')
      if (storage !== null) {
        const word = ({ p: 'PLAIN', e: 'EXTERNAL', m: 'MAIN', x: 'EXTENDED' } as Record<string, string>)[storage]
        if (word === undefined) throw new Error(`generateCloneDDL: unknown storage '${storage}'`)
        columnAlters.push(`ALTER TABLE ${table} ALTER COLUMN ${column} SET STORAGE ${word}`)
      }
      const compression = os(c, 'compression')
      if (compression !== null) columnAlters.push(`ALTER TABLE ${table} ALTER COLUMN ${column} SET COMPRESSION ${compression}`)
      const stattarget = os(c, 'stattarget')
      if (stattarget !== null) columnAlters.push(`ALTER TABLE ${table} ALTER COLUMN ${column} SET STATISTICS ${stattarget}`)
      // Options named pg_* are the server's own (some builds stamp every column with one, e.g.
      // pg_attver, and ignore attempts to set it): copy only the user-settable ones.
      const options = arr(c, 'options').filter((o) => !o.startsWith('pg_'))
      if (options.length > 0) columnAlters.push(`ALTER TABLE ${table} ALTER COLUMN ${column} SET (${relOptions(options).join(', ')})`)
    }
    let text = `CREATE ${s(t, 'persistence') === 'u' ? 'UNLOGGED ' : ''}TABLE ${table} (\n  ${defs.join(',\n  ')}\n)`
    const am = os(t, 'am')
    if (am !== null) text += ` USING ${quoteIdent(am)}`
    const options = [...relOptions(arr(t, 'options')), ...relOptions(arr(t, 'toast_options'), 'toast.')]
    if (options.length > 0) text += ` WITH (${options.join(', ')})`
    const tablespace = os(t, 'tablespace')
    if (tablespace !== null) text += ` TABLESPACE ${quoteIdent(tablespace)}`
    ddl.statement(text)
  }
  for (const text of columnAlters) ddl.statement(text)
  for (const f of functions) if (phaseOf(f) === 1) emitFunction(f)

  // 6. Sequence ownership
  for (const q of sequences) {
    if (os(q, 'deptype') !== 'a') continue
    ddl.statement(`ALTER SEQUENCE ${quoteIdent(s(q, 'name'))} OWNED BY ${quoteIdent(s(q, 'owner_table'))}.${quoteIdent(s(q, 'owner_column'))}`)
  }

  // 7. Constraints other than foreign keys
  ddl.section('constraints')
  const addConstraint = (k: Row): void => {
    ddl.statement(`ALTER TABLE ${quoteIdent(s(k, 'table'))} ADD CONSTRAINT ${quoteIdent(s(k, 'name'))} ${s(k, 'def')}`)
  }
  for (const k of constraints) if (s(k, 'type') !== 'f') addConstraint(k)

  // 8. Indexes that back no constraint, on tables (those on materialized views come after the views)
  ddl.section('indexes')
  const indexExtras = (i: Row): void => {
    const tablespace = os(i, 'tablespace')
    if (tablespace !== null) ddl.statement(`ALTER INDEX ${quoteIdent(s(i, 'name'))} SET TABLESPACE ${quoteIdent(tablespace)}`)
    if (b(i, 'clustered')) ddl.statement(`${alterRel(s(i, 'table_kind'))} ${quoteIdent(s(i, 'table'))} CLUSTER ON ${quoteIdent(s(i, 'name'))}`)
  }
  for (const i of indexes) {
    if (s(i, 'table_kind') !== 'r') continue
    if (!b(i, 'backs_constraint')) ddl.statement(s(i, 'def'))
    indexExtras(i)
  }
  for (const t of tables) {
    const replident = s(t, 'replident')
    if (replident === 'f') ddl.statement(`ALTER TABLE ${quoteIdent(s(t, 'name'))} REPLICA IDENTITY FULL`)
    else if (replident === 'n') ddl.statement(`ALTER TABLE ${quoteIdent(s(t, 'name'))} REPLICA IDENTITY NOTHING`)
    else if (replident === 'i') {
      const index = indexes.find((i) => b(i, 'replident') && s(i, 'table') === s(t, 'name'))
      if (index === undefined) throw new Error(`generateCloneDDL: table ${s(t, 'name')} has REPLICA IDENTITY USING INDEX but no such index`)
      ddl.statement(`ALTER TABLE ${quoteIdent(s(t, 'name'))} REPLICA IDENTITY USING INDEX ${quoteIdent(s(index, 'name'))}`)
    }
  }

  // 9. Foreign keys, last among constraints (they may need the unique indexes above)
  ddl.section('foreign keys')
  for (const k of constraints) if (s(k, 'type') === 'f') addConstraint(k)

  // 10. Views and materialized views, each after the views it reads
  ddl.section('views')
  const views = topoSort(relations.filter((r) => s(r, 'kind') === 'v' || s(r, 'kind') === 'm'), (r) => s(r, 'oid'), (r) => arr(r, 'deps'), 'views')
  for (const v of views) {
    const name = quoteIdent(s(v, 'name'))
    const query = stripSemicolon(s(v, 'viewdef'))
    const options = relOptions(arr(v, 'options'))
    const withOptions = options.length > 0 ? ` WITH (${options.join(', ')})` : ''
    if (s(v, 'kind') === 'v') {
      ddl.statement(`CREATE VIEW ${name}${withOptions} AS\n${query}`)
    } else {
      const am = os(v, 'am')
      const tablespace = os(v, 'tablespace')
      ddl.statement(`CREATE MATERIALIZED VIEW ${name}${am !== null ? ` USING ${quoteIdent(am)}` : ''}${withOptions}` +
        `${tablespace !== null ? ` TABLESPACE ${quoteIdent(tablespace)}` : ''} AS\n${query}\nWITH NO DATA`)
    }
    for (const c of columnsByRel.get(s(v, 'oid')) ?? []) {
      const expr = os(c, 'default')
      if (expr !== null) ddl.statement(`${alterRel(s(v, 'kind'))} ${name} ALTER COLUMN ${quoteIdent(s(c, 'name'))} SET DEFAULT ${expr}`)
    }
  }
  for (const i of indexes) {
    if (s(i, 'table_kind') !== 'm') continue
    if (!b(i, 'backs_constraint')) ddl.statement(s(i, 'def'))
    indexExtras(i)
  }
  for (const f of functions) if (phaseOf(f) === 2) emitFunction(f)

  // 11. Triggers (never the template's guard), rules, extended statistics
  ddl.section('triggers, rules, statistics')
  for (const tg of triggers) {
    if (s(tg, 'name').startsWith(GUARD_TRIGGER_PREFIX)) continue
    ddl.statement(s(tg, 'def'))
    const change = TRIGGER_ENABLE[s(tg, 'enabled')]
    if (change !== undefined) ddl.statement(`ALTER TABLE ${quoteIdent(s(tg, 'table'))} ${change} ${quoteIdent(s(tg, 'name'))}`)
  }
  for (const r of rules) {
    ddl.statement(stripSemicolon(s(r, 'def')))
    const change = RULE_ENABLE[s(r, 'enabled')]
    if (change !== undefined) ddl.statement(`ALTER TABLE ${quoteIdent(s(r, 'table'))} ${change} ${quoteIdent(s(r, 'name'))}`)
  }
  for (const st of statistics) {
    if (!b(st, 'table_in_template')) throw new CloneUnsupportedError(template, [`statistics object ${s(st, 'name')} on a table outside the template`])
    const kinds = arr(st, 'kinds')
    ddl.statement(`CREATE STATISTICS ${quoteIdent(s(st, 'name'))}${kinds.length > 0 ? ` (${kinds.join(', ')})` : ''} ON ${s(st, 'columns')} FROM ${quoteIdent(s(st, 'table'))}`)
    const target = os(st, 'stattarget')
    if (target !== null) ddl.statement(`ALTER STATISTICS ${quoteIdent(s(st, 'name'))} SET STATISTICS ${target}`)
  }

  // 12. Comments
  ddl.section('comments')
  for (const c of comments) {
    const kind = s(c, 'kind')
    const subkind = os(c, 'subkind')
    const name = quoteIdent(s(c, 'name'))
    const parent = os(c, 'parent')
    let target: string
    if (kind === 'rel') {
      const keyword = REL_KEYWORD[subkind ?? '']
      if (keyword === undefined) continue // a relation kind refused above
      target = `${keyword} ${name}`
    } else if (kind === 'column') {
      target = `COLUMN ${quoteIdent(parent ?? '')}.${name}`
    } else if (kind === 'type') {
      target = `${subkind === 'd' ? 'DOMAIN' : 'TYPE'} ${name}`
    } else if (kind === 'function') {
      target = `${subkind === 'p' ? 'PROCEDURE' : 'FUNCTION'} ${name}(${s(c, 'args')})`
    } else if (kind === 'constraint') {
      target = `CONSTRAINT ${name} ON ${subkind === 'domain' ? 'DOMAIN ' : ''}${quoteIdent(parent ?? '')}`
    } else if (kind === 'trigger') {
      if (s(c, 'name').startsWith(GUARD_TRIGGER_PREFIX)) continue
      target = `TRIGGER ${name} ON ${quoteIdent(parent ?? '')}`
    } else if (kind === 'policy') {
      target = `POLICY ${name} ON ${quoteIdent(parent ?? '')}`
    } else if (kind === 'rule') {
      target = `RULE ${name} ON ${quoteIdent(parent ?? '')}`
    } else {
      target = `STATISTICS ${name}`
    }
    ddl.statement(`COMMENT ON ${target} IS ${quoteLiteral(s(c, 'description'))}`)
  }

  // 13. Row-level security
  ddl.section('row-level security')
  for (const t of tables) {
    if (b(t, 'rls')) ddl.statement(`ALTER TABLE ${quoteIdent(s(t, 'name'))} ENABLE ROW LEVEL SECURITY`)
    if (b(t, 'force_rls')) ddl.statement(`ALTER TABLE ${quoteIdent(s(t, 'name'))} FORCE ROW LEVEL SECURITY`)
  }
  for (const p of policies) {
    const roles = b(p, 'to_public') ? ['PUBLIC', ...arr(p, 'roles').map(quoteIdent)] : arr(p, 'roles').map(quoteIdent)
    let text = `CREATE POLICY ${quoteIdent(s(p, 'name'))} ON ${quoteIdent(s(p, 'table'))} AS ${b(p, 'permissive') ? 'PERMISSIVE' : 'RESTRICTIVE'}` +
      ` FOR ${POLICY_CMD[s(p, 'cmd')] ?? 'ALL'} TO ${roles.join(', ')}`
    const qual = os(p, 'qual')
    if (qual !== null) text += ` USING (${qual})`
    const withCheck = os(p, 'with_check')
    if (withCheck !== null) text += ` WITH CHECK (${withCheck})`
    ddl.statement(text)
  }

  return ddl.toString()
}
