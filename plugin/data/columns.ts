/**
 * What dump and load know of models, tables and columns: the app's models (from the caller, a
 * DataHost), their dependency order, each table's columns and how their values travel, and the
 * checks and session settings both directions share.
 */
import type { Model, ModelStatic, Sequelize } from 'sequelize'
import { SCHEMA_TABLE } from '../../models/index.js'
import type { RawConnection } from '../db.js'
import { BoardinghouseErrors } from '../errors.js'
import { referenceTarget, tableOf } from '../model-catalog.js'
import { quoteIdent } from '../names.js'
import { isUndefinedTable } from '../pg-errors.js'

/**
 * The three things dump and load need of the Boardinghouse (which has them; taken from the caller
 * so that data/ does not import boardinghouse.ts).
 */
export interface DataHost {
  readonly options: { readonly sequelize: Sequelize }
  /** The tenant models' classes. */
  tenantModelClasses: () => Array<ModelStatic<Model>>
  /** The tenant models' tables; throws when a tenant model names a schema. */
  tenantTableNames: () => string[]
}

export interface ModelInfo {
  name: string
  model: ModelStatic<Model>
  tenant: boolean
  table: string
  /** Where a shared model's table is (public unless the model names a schema). */
  sharedSchema: string
  attrToColumn: Map<string, string>
  columnToAttr: Map<string, string>
  pkAttrs: string[]
}

const LIBRARY_MODEL_PREFIX = 'Boardinghouse'

/** The app's models (not the library's), by name, in definition order. */
export function appModels (host: DataHost): Map<string, ModelInfo> {
  const { sequelize } = host.options
  const tenant = new Set(host.tenantModelClasses())
  host.tenantTableNames() // checks that no tenant model names a schema
  const out = new Map<string, ModelInfo>()
  for (const [name, model] of Object.entries(sequelize.models)) {
    if (name.startsWith(LIBRARY_MODEL_PREFIX)) continue
    const { table, schema = 'public' } = tableOf(model)
    const attrToColumn = new Map<string, string>()
    const columnToAttr = new Map<string, string>()
    for (const [attr, def] of Object.entries(model.getAttributes())) {
      const column = (def as { field?: string }).field ?? attr
      attrToColumn.set(attr, column)
      if (!columnToAttr.has(column)) columnToAttr.set(column, attr)
    }
    out.set(name, { name, model, tenant: tenant.has(model), table, sharedSchema: schema, attrToColumn, columnToAttr, pkAttrs: [...model.primaryKeyAttributes] })
  }
  return out
}

/** Model names a model's foreign keys point at, among `models` (by model or table name). */
function referencedModels (info: ModelInfo, models: Map<string, ModelInfo>): Set<string> {
  const byTable = new Map<string, string>()
  for (const m of models.values()) byTable.set(m.table, m.name)
  const out = new Set<string>()
  for (const def of Object.values(info.model.getAttributes())) {
    const target = referenceTarget(def)
    if (target === undefined) continue
    const name = target.kind === 'model' ? target.name
      : target.kind === 'table' ? byTable.get(target.name)
        : models.has(target.name) ? target.name : byTable.get(target.name)
    if (name !== undefined && name !== info.name && models.has(name)) out.add(name)
  }
  return out
}

/** Parents before children (Kahn's algorithm, stable); models in a cycle keep their order. */
export function sortByDependencies (selected: ModelInfo[], all: Map<string, ModelInfo>): ModelInfo[] {
  const names = new Set(selected.map((m) => m.name))
  const deps = new Map(selected.map((m) => [m.name, new Set([...referencedModels(m, all)].filter((n) => names.has(n)))]))
  const done = new Set<string>()
  const out: ModelInfo[] = []
  let remaining = [...selected]
  while (remaining.length > 0) {
    const ready = remaining.find((m) => [...(deps.get(m.name) ?? [])].every((d) => done.has(d)))
    if (ready === undefined) { out.push(...remaining); break } // a cycle: keep the remaining order
    out.push(ready)
    done.add(ready.name)
    remaining = remaining.filter((m) => m !== ready)
  }
  return out
}

/** How a column's value goes into the JSON. */
export type ColumnKind = 'native' | 'text' | 'textArray'

export interface ColumnInfo {
  name: string
  generated: boolean
  kind: ColumnKind
  /** An array type: JSON arrays cannot say lower bounds other than 1. */
  array: boolean
  /** The column holds json (raw newlines may appear in its text). */
  json: boolean
  /** json or jsonb (through domains), not an array of them: it can hold JSON null. */
  jsonType: 'json' | 'jsonb' | null
  /** A string type (text, varchar, char… through domains), or an array of one: takes strings only. */
  text: 'scalar' | 'array' | null
}

export interface TableInfo {
  /** `"schema"."table"` */
  qualified: string
  columns: Map<string, ColumnInfo>
  order: ColumnInfo[]
}

/** Types whose to_json is exact and natural: numbers, booleans, json, date/time in ISO, strings, hex bytea. */
const NATIVE_TYPES = new Set(['int2', 'int4', 'float4', 'float8', 'oid', 'bool', 'json', 'jsonb', 'date', 'time', 'timetz',
  'timestamp', 'timestamptz', 'bytea', 'text', 'varchar', 'bpchar', 'name', 'uuid', 'char'])

const COLUMNS_SQL = `
WITH RECURSIVE cols AS (
  SELECT a.attnum, a.attname, a.attgenerated <> '' AS generated, a.atttypid
  FROM pg_catalog.pg_attribute a
  WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
), base AS (
  SELECT attnum, atttypid AS typid, 0 AS depth FROM cols
  UNION ALL
  SELECT b.attnum, t.typbasetype, b.depth + 1 FROM base b JOIN pg_catalog.pg_type t ON t.oid = b.typid WHERE t.typtype = 'd'
)
SELECT c.attname AS name, c.generated, t.typname AS type, t.typtype AS typtype, t.typcategory AS category,
       e.typname AS elem, e.typtype AS elem_typtype, e.typcategory AS elem_category
FROM cols c
CROSS JOIN LATERAL (SELECT typid FROM base WHERE base.attnum = c.attnum ORDER BY depth DESC LIMIT 1) b
JOIN pg_catalog.pg_type t ON t.oid = b.typid
LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
ORDER BY c.attnum`

/** The columns of `schema.table`, or null when the table does not exist. */
export async function readTable (connection: RawConnection, schema: string, table: string): Promise<TableInfo | null> {
  const qualified = `${quoteIdent(schema)}.${quoteIdent(table)}`
  const { rows: found } = await connection.query('SELECT pg_catalog.to_regclass($1) IS NOT NULL AS found', [qualified])
  if ((found[0] as { found: boolean } | undefined)?.found !== true) return null
  const { rows } = await connection.query(COLUMNS_SQL, [qualified])
  const order: ColumnInfo[] = []
  for (const r of rows as Array<{ name: string, generated: boolean, type: string, typtype: string, category: string, elem: string | null, elem_typtype: string | null, elem_category: string | null }>) {
    let kind: ColumnKind
    let json = r.type === 'json' || r.type === 'jsonb'
    if (r.elem !== null) {
      json = r.elem === 'json' || r.elem === 'jsonb'
      kind = (NATIVE_TYPES.has(r.elem) && r.elem_typtype === 'b') || r.elem_typtype === 'e' ? 'native' : 'textArray'
    } else {
      kind = NATIVE_TYPES.has(r.type) || r.typtype === 'e' ? 'native' : 'text'
    }
    const jsonType = r.elem === null && (r.type === 'json' || r.type === 'jsonb') ? r.type : null
    const text = r.elem === null ? (r.category === 'S' ? 'scalar' : null) : (r.elem_category === 'S' ? 'array' : null)
    order.push({ name: r.name, generated: r.generated, kind, array: r.elem !== null, json, jsonType, text })
  }
  return { qualified, columns: new Map(order.map((c) => [c.name, c])), order }
}

/** Settings that make PostgreSQL's text exact and the same everywhere. */
export const SESSION_SETTINGS = [
  "SET LOCAL TimeZone = 'UTC'",
  "SET LOCAL DateStyle = 'ISO, MDY'",
  "SET LOCAL IntervalStyle = 'postgres'",
  'SET LOCAL extra_float_digits = 1',
  "SET LOCAL bytea_output = 'hex'"
].join('; ')

function notMigrated (err: unknown, what: string): unknown {
  if (isUndefinedTable(err)) return new BoardinghouseErrors.NOT_MIGRATED(what, { cause: err })
  return err
}

export async function assertRegistered (connection: RawConnection, schema: string, lock: boolean): Promise<void> {
  let registered: boolean
  try {
    const { rows } = await connection.query(
      `SELECT EXISTS (SELECT 1 FROM public.${SCHEMA_TABLE} WHERE schema_name = $1${lock ? ' FOR KEY SHARE' : ''})
          AND EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1) AS registered`, [schema])
    registered = (rows[0] as { registered: boolean }).registered
  } catch (err) {
    throw notMigrated(err, `table public.${SCHEMA_TABLE} is missing`)
  }
  if (!registered) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(schema)
}
