/**
 * The structure comparison of doctor: every tenant schema's catalog against the template's, kind by
 * kind (tables, views, columns, constraints, indexes, triggers, functions, sequences, types), in a
 * few set-based queries whatever the number of schemas.
 *
 * Each kind is one SELECT producing `(nspname, rel, key, def)` rows for the template and every
 * schema at once: `key` names the object (`items.title`), `def` is its definition as the catalog's
 * printers give it, run with `search_path = public` so that every object of a tenant schema (or of
 * the template) is printed schema-qualified. What a schema's row should be is the template's row
 * with the template's qualification `__template__.` replaced by the schema's (`acme.`): only the
 * template's side is rewritten, and `__template__.` never occurs by accident, so a schema named like
 * one of its tables (`items.items`) compares right.
 *
 * 1. One query per kind sums a 64-bit hash of every row per schema, and of every template row as it
 *    should read in that schema; only the schemas whose count or sum differ come back.
 * 2. For those (usually none), one query per kind fetches their rows and the template's, and the
 *    difference is worked out here: objects missing, extra, or changed (with both definitions).
 *
 * The queries run with nested loops off (index.ts): subqueries correlated to a row hold no join, so
 * they stay index lookups, and every join is a hash join over a whole catalog.
 */
import { QueryTypes, type Sequelize } from 'sequelize'
import { SCHEMA_TABLE } from '../../models/index.js'
import { GUARD_TRIGGER_PREFIX } from '../clone/index.js'
import { TEMPLATE_SCHEMA, quoteLiteral } from '../names.js'
import type { DoctorFinding, StructureFindingCode } from './types.js'

/** One catalog kind: the code of its findings, a noun for messages, and its row query over `s`. */
interface Kind {
  code: StructureFindingCode
  noun: string
  /** SELECT nspname, rel, key, def FROM s … (s: oid, nspname, q = quote_ident(nspname)): `def` as a person reads it. */
  rows: string
  /**
   * The same rows with a cheaper `def` for phase 1, when the readable one costs much at scale: equal
   * signatures must mean equal definitions (phase 2 compares the readable ones).
   */
  signature?: string
}

const T = quoteLiteral(TEMPLATE_SCHEMA)

/** A relation's options as ` WITH (…)`, or ''. */
const withOptions = (alias: string): string => `coalesce(' WITH (' || array_to_string(${alias}.reloptions, ', ') || ')', '')`

/** A collation other than the type's, as ` COLLATE name`. */
const collation = (coll: string, typeColl: string): string => `CASE WHEN ${coll} <> 0 AND ${coll} <> ${typeColl} THEN ' COLLATE ' ||
  (SELECT CASE WHEN co.collnamespace = 'pg_catalog'::pg_catalog.regnamespace THEN '' ELSE
            quote_ident((SELECT cn.nspname FROM pg_catalog.pg_namespace cn WHERE cn.oid = co.collnamespace)) || '.' END || quote_ident(co.collname)
     FROM pg_catalog.pg_collation co WHERE co.oid = ${coll}) ELSE '' END`

export const KINDS: readonly Kind[] = [
  {
    code: 'table_differs',
    noun: 'table',
    rows: `SELECT s.nspname, c.relname::text AS rel, c.relname::text AS key,
      CASE c.relkind WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END
      || CASE c.relpersistence WHEN 'u' THEN ' UNLOGGED' ELSE '' END || ${withOptions('c')}
      || CASE WHEN c.relrowsecurity THEN ' ROW LEVEL SECURITY' ELSE '' END
      || CASE WHEN c.relforcerowsecurity THEN ' FORCED' ELSE '' END
      || CASE WHEN c.relispartition THEN ' PARTITION OF ' || coalesce((SELECT i.inhparent::pg_catalog.regclass::text FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid LIMIT 1), '?')
           || ' ' || coalesce(pg_catalog.pg_get_expr(c.relpartbound, c.oid), '') ELSE '' END AS def
    FROM s JOIN pg_catalog.pg_class c ON c.relnamespace = s.oid WHERE c.relkind IN ('r', 'p', 'f')`
  },
  {
    code: 'view_differs',
    noun: 'view',
    rows: `SELECT s.nspname, c.relname::text AS rel, c.relname::text AS key,
      CASE c.relkind WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END || ${withOptions('c')} || ' AS ' || pg_catalog.pg_get_viewdef(c.oid) AS def
    FROM s JOIN pg_catalog.pg_class c ON c.relnamespace = s.oid WHERE c.relkind IN ('v', 'm')`
  },
  {
    code: 'column_differs',
    noun: 'column',
    rows: `SELECT s.nspname, c.relname::text AS rel, c.relname || '.' || a.attname AS key,
      pg_catalog.format_type(a.atttypid, a.atttypmod) || ${collation('a.attcollation', 't.typcollation')}
      || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
      || CASE WHEN a.attgenerated <> '' THEN ' GENERATED ALWAYS AS (' || coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid), '') || ')'
                || CASE a.attgenerated WHEN 's' THEN ' STORED' ELSE ' VIRTUAL' END
              ELSE coalesce(' DEFAULT ' || pg_catalog.pg_get_expr(d.adbin, d.adrelid), '') END
      || CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY' WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END AS def
    FROM s JOIN pg_catalog.pg_class c ON c.relnamespace = s.oid AND c.relkind IN ('r', 'p', 'f', 'v', 'm')
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum`
  },
  {
    code: 'constraint_differs',
    noun: 'constraint',
    // table constraints (key table.name) and domain constraints (key domain.name)
    rows: `SELECT s.nspname, c.relname::text AS rel, coalesce(c.relname, ty.typname) || '.' || k.conname AS key,
      pg_catalog.pg_get_constraintdef(k.oid) AS def
    FROM s JOIN pg_catalog.pg_constraint k ON k.connamespace = s.oid
    LEFT JOIN pg_catalog.pg_class c ON c.oid = k.conrelid AND k.conrelid <> 0
    LEFT JOIN pg_catalog.pg_type ty ON ty.oid = k.contypid AND k.contypid <> 0`
  },
  {
    code: 'index_differs',
    noun: 'index',
    rows: `SELECT s.nspname, t.relname::text AS rel, ic.relname::text AS key,
      pg_catalog.pg_get_indexdef(i.indexrelid) || CASE WHEN NOT i.indisvalid THEN ' (INVALID)' ELSE '' END AS def
    FROM s JOIN pg_catalog.pg_class ic ON ic.relnamespace = s.oid AND ic.relkind IN ('i', 'I')
    JOIN pg_catalog.pg_index i ON i.indexrelid = ic.oid
    JOIN pg_catalog.pg_class t ON t.oid = i.indrelid`,
    // pg_get_indexdef costs ~20 µs an index: only indexes with expressions or a predicate need it here;
    // the others are their columns by name, operator classes, collations and options (global oids), flags
    signature: `SELECT s.nspname, t.relname::text AS rel, ic.relname::text AS key,
      concat_ws('|', t.relname, ic.relam, i.indisunique, i.indisprimary, i.indisexclusion, i.indimmediate, i.indisvalid, i.indnkeyatts,
        array_to_string(ARRAY(SELECT coalesce((SELECT a.attname::text FROM pg_catalog.pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = k.n), '-')
                              FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(n, o) ORDER BY k.o), ','),
        i.indclass::text, i.indcollation::text, i.indoption::text, array_to_string(ic.reloptions, ','), to_jsonb(i) ->> 'indnullsnotdistinct',
        CASE WHEN i.indexprs IS NOT NULL OR i.indpred IS NOT NULL THEN pg_catalog.pg_get_indexdef(i.indexrelid) END) AS def
    FROM s JOIN pg_catalog.pg_class ic ON ic.relnamespace = s.oid AND ic.relkind IN ('i', 'I')
    JOIN pg_catalog.pg_index i ON i.indexrelid = ic.oid
    JOIN pg_catalog.pg_class t ON t.oid = i.indrelid`
  },
  {
    code: 'trigger_differs',
    noun: 'trigger',
    // the template's row guard is the template's own: tenants hold rows
    rows: `SELECT s.nspname, c.relname::text AS rel, c.relname || '.' || tg.tgname AS key,
      pg_catalog.pg_get_triggerdef(tg.oid) || CASE tg.tgenabled WHEN 'D' THEN ' (DISABLED)' WHEN 'R' THEN ' (REPLICA)' WHEN 'A' THEN ' (ALWAYS)' ELSE '' END AS def
    FROM s JOIN pg_catalog.pg_class c ON c.relnamespace = s.oid
    JOIN pg_catalog.pg_trigger tg ON tg.tgrelid = c.oid
    WHERE NOT tg.tgisinternal
      AND NOT (s.nspname = ${T} AND left(tg.tgname, ${GUARD_TRIGGER_PREFIX.length}) = ${quoteLiteral(GUARD_TRIGGER_PREFIX)})`
  },
  {
    code: 'function_differs',
    noun: 'function',
    // a search_path setting is written `{a}, {b}`: an element naming the schema itself reads `{acme}`
    rows: `SELECT s.nspname, NULL::text AS rel, p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' AS key,
      CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' WHEN 'w' THEN 'WINDOW FUNCTION' ELSE 'FUNCTION' END
      || coalesce(' RETURNS ' || pg_catalog.pg_get_function_result(p.oid), '')
      || ' LANGUAGE ' || l.lanname
      || CASE p.provolatile WHEN 'i' THEN ' IMMUTABLE' WHEN 's' THEN ' STABLE' ELSE ' VOLATILE' END
      || CASE WHEN p.proisstrict THEN ' STRICT' ELSE '' END
      || CASE WHEN p.prosecdef THEN ' SECURITY DEFINER' ELSE '' END
      || CASE WHEN p.proleakproof THEN ' LEAKPROOF' ELSE '' END
      || CASE p.proparallel WHEN 's' THEN ' PARALLEL SAFE' WHEN 'r' THEN ' PARALLEL RESTRICTED' ELSE '' END
      || ' COST ' || p.procost || CASE WHEN p.proretset THEN ' ROWS ' || p.prorows ELSE '' END
      || coalesce((SELECT string_agg(CASE WHEN u.c LIKE 'search_path=%'
                                       THEN ' SET search_path TO {' || regexp_replace(substr(u.c, 13), '\\s*,\\s*', '}, {', 'g') || '}'
                                       ELSE ' SET ' || u.c END, '' ORDER BY u.o)
                     FROM unnest(p.proconfig) WITH ORDINALITY AS u(c, o)), '')
      || ' BODY md5:' || md5(coalesce(p.prosrc, '')) AS def
    FROM s JOIN pg_catalog.pg_proc p ON p.pronamespace = s.oid
    JOIN pg_catalog.pg_language l ON l.oid = p.prolang`
  },
  {
    code: 'sequence_differs',
    noun: 'sequence',
    // OWNED BY names the owning column schema-qualified: a sequence owned by another schema's table shows
    rows: `SELECT s.nspname, CASE WHEN tc.relnamespace = s.oid THEN tc.relname::text END AS rel, c.relname::text AS key,
      'AS ' || pg_catalog.format_type(q.seqtypid, NULL) || ' START ' || q.seqstart || ' INCREMENT ' || q.seqincrement
      || ' MINVALUE ' || q.seqmin || ' MAXVALUE ' || q.seqmax || ' CACHE ' || q.seqcache || CASE WHEN q.seqcycle THEN ' CYCLE' ELSE '' END
      || CASE c.relpersistence WHEN 'u' THEN ' UNLOGGED' ELSE '' END
      || coalesce(' OWNED BY ' || quote_ident(tn.nspname) || '.' || quote_ident(tc.relname) || '.' || quote_ident(a.attname)
                  || CASE d.deptype WHEN 'i' THEN ' (identity)' ELSE '' END, '') AS def
    FROM s JOIN pg_catalog.pg_class c ON c.relnamespace = s.oid AND c.relkind = 'S'
    JOIN pg_catalog.pg_sequence q ON q.seqrelid = c.oid
    LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
      AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
    LEFT JOIN pg_catalog.pg_class tc ON tc.oid = d.refobjid
    LEFT JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace
    LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid`
  },
  {
    code: 'type_differs',
    noun: 'type',
    rows: `SELECT s.nspname, NULL::text AS rel, t.typname::text AS key,
      CASE t.typtype
        WHEN 'e' THEN 'ENUM (' || coalesce((SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid), '') || ')'
        WHEN 'd' THEN 'DOMAIN AS ' || pg_catalog.format_type(t.typbasetype, t.typtypmod) || ${collation('t.typcollation', '(SELECT bt.typcollation FROM pg_catalog.pg_type bt WHERE bt.oid = t.typbasetype)')}
          || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END || coalesce(' DEFAULT ' || pg_catalog.pg_get_expr(t.typdefaultbin, 0), '')
        WHEN 'r' THEN 'RANGE (SUBTYPE = ' || coalesce((SELECT pg_catalog.format_type(r.rngsubtype, NULL) FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid), '?') || ')'
        ELSE 'TYPE AS (' || coalesce((SELECT string_agg(quote_ident(a.attname) || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                                        FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '') || ')'
      END AS def
    FROM s JOIN pg_catalog.pg_type t ON t.typnamespace = s.oid
    WHERE t.typtype IN ('e', 'd', 'r')
       OR (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_catalog.pg_class tr WHERE tr.oid = t.typrelid AND tr.relkind = 'c'))`
  }
]

/** `s`: the template and every registered schema that exists. */
const FLEET = `SELECT n.oid, n.nspname::text AS nspname, quote_ident(n.nspname) AS q FROM public.${SCHEMA_TABLE} r
  JOIN pg_catalog.pg_namespace n ON n.nspname = r.schema_name::name
  UNION ALL SELECT n.oid, n.nspname::text, quote_ident(n.nspname) FROM pg_catalog.pg_namespace n WHERE n.nspname = ${T}`

/** `s`: the template and the schemas named by :schemas. */
const SOME = `SELECT n.oid, n.nspname::text AS nspname, quote_ident(n.nspname) AS q FROM pg_catalog.pg_namespace n
  WHERE n.nspname = ${T} OR n.nspname::text IN (:schemas)`

/** SQL: a template row's text as it should read in the schema whose quoted name is `q`. */
function forSchemaSql (text: string, q: string): string {
  return `replace(replace(${text}, ${quoteLiteral(`${TEMPLATE_SCHEMA}.`)}, ${q} || '.'), ${quoteLiteral(`{${TEMPLATE_SCHEMA}}`)}, '{' || ${q} || '}')`
}

/** The same in JS (replace() and split/join replace alike: left to right, without overlap). */
export function forSchema (text: string, q: string): string {
  return text.split(`${TEMPLATE_SCHEMA}.`).join(`${q}.`).split(`{${TEMPLATE_SCHEMA}}`).join(`{${q}}`)
}

/** Phase 1 for one kind: the schemas whose rows of this kind differ from the template's. */
function mismatchSql (kind: Kind): string {
  return `WITH s AS (${FLEET}),
  r AS MATERIALIZED (${kind.signature ?? kind.rows}),
  tpl AS MATERIALIZED (SELECT key, def FROM r WHERE nspname = ${T}),
  actual AS (SELECT nspname, count(*) AS n, sum(hashtextextended(key || chr(31) || def, 0)) AS h FROM r WHERE nspname <> ${T} GROUP BY nspname),
  expected AS (SELECT s.nspname, count(*) AS n, sum(hashtextextended(${forSchemaSql('tpl.key', 's.q')} || chr(31) || ${forSchemaSql('tpl.def', 's.q')}, 0)) AS h
               FROM s CROSS JOIN tpl WHERE s.nspname <> ${T} GROUP BY s.nspname)
  SELECT s.nspname FROM s LEFT JOIN actual a ON a.nspname = s.nspname LEFT JOIN expected e ON e.nspname = s.nspname
  WHERE s.nspname <> ${T} AND (coalesce(a.n, 0) <> coalesce(e.n, 0) OR coalesce(a.h, 0) <> coalesce(e.h, 0))
  ORDER BY 1`
}

/** Phase 2 for one kind: the rows of the template and of `schemas`, and one row per schema with its quoted name only. */
function rowsSql (kind: Kind): string {
  return `WITH s AS (${SOME})
  SELECT r.nspname, r.rel, r.key, r.def, s.q FROM (${kind.rows}) r JOIN s ON s.nspname = r.nspname
  UNION ALL SELECT s.nspname, NULL, NULL, NULL, s.q FROM s`
}

interface Row { nspname: string, rel: string | null, key: string, def: string, q: string }
type RowOrName = Row | { nspname: string, rel: null, key: null, def: null, q: string }

/** Whitespace runs (view definitions span lines) shown as one space. */
function oneLine (text: string): string {
  return text.replace(/\s+/g, ' ').trim()
}

function finding (kind: Kind, schema: string, object: string, difference: 'missing' | 'extra' | 'changed', expected: string | undefined, actual: string | undefined): DoctorFinding {
  const message = difference === 'missing'
    ? `${kind.noun} ${object} of the template is missing`
    : difference === 'extra'
      ? `${kind.noun} ${object} is not in the template`
      : `${kind.noun} ${object} differs from the template's: ${oneLine(actual ?? '')} (the template's: ${oneLine(expected ?? '')})`
  return {
    code: kind.code,
    schema,
    object,
    message,
    fixable: false,
    difference,
    ...(expected !== undefined ? { expected: oneLine(expected) } : {}),
    ...(actual !== undefined ? { actual: oneLine(actual) } : {})
  }
}

/** The differences of one kind in the schemas given, from their rows and the template's. */
function diffKind (kind: Kind, result: RowOrName[], schemas: string[]): Array<DoctorFinding & { rel: string | null }> {
  const quoted = new Map(result.map((r) => [r.nspname, r.q]))
  const rows = result.filter((r): r is Row => r.key !== null)
  const template = rows.filter((r) => r.nspname === TEMPLATE_SCHEMA)
  const bySchema = new Map<string, Row[]>(schemas.map((s) => [s, []]))
  for (const r of rows) bySchema.get(r.nspname)?.push(r)
  const out: Array<DoctorFinding & { rel: string | null }> = []
  for (const [schema, own] of bySchema) {
    const q = quoted.get(schema)
    if (q === undefined) continue // dropped since phase 1
    const actual = new Map(own.map((r) => [r.key, r]))
    const expected = new Map(template.map((r) => [forSchema(r.key, q), { ...r, def: forSchema(r.def, q) }]))
    for (const [key, e] of expected) {
      const a = actual.get(key)
      if (a === undefined) out.push({ ...finding(kind, schema, key, 'missing', e.def, undefined), rel: e.rel })
      else if (a.def !== e.def) out.push({ ...finding(kind, schema, key, 'changed', e.def, a.def), rel: a.rel })
    }
    for (const [key, a] of actual) {
      if (!expected.has(key)) out.push({ ...finding(kind, schema, key, 'extra', undefined, a.def), rel: a.rel })
    }
  }
  return out
}

export type Query = <T extends object>(sql: string, replacements?: Record<string, unknown>) => Promise<T[]>

/** Runs a SELECT on the caller's context (transaction, search_path). */
export function queryOn (sequelize: Sequelize): Query {
  return async <T extends object>(sql: string, replacements?: Record<string, unknown>): Promise<T[]> =>
    await sequelize.query<T>(sql, { ...(replacements !== undefined ? { replacements } : {}), type: QueryTypes.SELECT, logging: false })
}

/**
 * Structure findings of every registered schema against the template. Objects of a table or view
 * that is itself missing or extra are left out: the table's finding says it.
 */
export async function compareStructure (query: Query): Promise<DoctorFinding[]> {
  const found: Array<DoctorFinding & { rel: string | null }> = []
  for (const kind of KINDS) {
    const mismatched = (await query<{ nspname: string }>(mismatchSql(kind))).map((r) => r.nspname)
    if (mismatched.length === 0) continue
    const rows = await query<RowOrName>(rowsSql(kind), { schemas: mismatched })
    found.push(...diffKind(kind, rows, mismatched))
  }
  const gone = new Set(found.filter((f) => (f.code === 'table_differs' || f.code === 'view_differs') && f.difference !== 'changed').map((f) => `${f.schema ?? ''}\u0000${f.object ?? ''}`))
  return found
    .filter((f) => f.code === 'table_differs' || f.code === 'view_differs' || f.rel === null || !gone.has(`${f.schema ?? ''}\u0000${f.rel}`))
    .map(({ rel: _rel, ...f }) => f)
}
