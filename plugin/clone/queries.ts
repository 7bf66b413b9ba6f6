/**
 * The catalog reads of a clone: which objects live in the template, which of them cannot be
 * cloned, and one query per kind of object. Rows come back as the driver returns them; the
 * accessors below read them.
 */
import type { RawConnection } from '../db.js'

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

// ---------------------------------------------------------------------------------------------
// Row accessors (rows come back untyped from the driver)
// ---------------------------------------------------------------------------------------------

export type Row = Record<string, unknown>

export function s (row: Row, key: string): string {
  const v = row[key]
  if (typeof v === 'string') return v
  if (typeof v === 'number' || typeof v === 'bigint') return String(v)
  throw new Error(`generateCloneDDL: catalog column ${key} is ${v === null ? 'null' : typeof v}, expected text`)
}
export function os (row: Row, key: string): string | null {
  const v = row[key]
  return v === null || v === undefined ? null : s(row, key)
}
export function b (row: Row, key: string): boolean {
  return row[key] === true
}
export function arr (row: Row, key: string): string[] {
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


/** What the generator reads of a template: one list of rows per kind of object, in the queries' order. */
export interface Catalog {
  types: Row[]
  sequences: Row[]
  functions: Row[]
  relations: Row[]
  columns: Row[]
  constraints: Row[]
  indexes: Row[]
  triggers: Row[]
  rules: Row[]
  statistics: Row[]
  policies: Row[]
  comments: Row[]
}

/**
 * Reads the catalog of `template` on `client` (whose search_path is the template's). Rejects with
 * `CloneUnsupportedError` when the template holds an object the clone cannot reproduce.
 */
export async function readCatalog (client: RawConnection, template: string): Promise<Catalog> {
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

  return {
    types: await run(Q_TYPES),
    sequences: await run(Q_SEQUENCES),
    functions: await run(Q_FUNCTIONS),
    relations: await run(Q_RELATIONS),
    columns: await run(Q_COLUMNS),
    constraints: await run(Q_CONSTRAINTS),
    indexes: await run(Q_INDEXES),
    triggers: await run(Q_TRIGGERS),
    rules: await run(Q_RULES),
    statistics: await run(Q_STATISTICS),
    policies: await run(Q_POLICIES),
    comments: await run(Q_COMMENTS)
  }
}
