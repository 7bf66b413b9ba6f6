/**
 * dumpdata / loaddata (django-boardinghouse's `--schema`): the rows of the app's models as JSON
 * objects `{ model, pk, schema, fields }`, dumped from one consistent snapshot and loaded all or
 * nothing.
 *
 * Exactness: PostgreSQL serialises every value (`json_build_object`, in UTC, shortest exact
 * floats, hex bytea); NUMERIC and BIGINT travel as strings; numbers JavaScript cannot hold exactly
 * (`1.0`, `-0`, 20-digit integers inside json/jsonb values) are read as JsonNumber and written back
 * as the same text. Loading hands the JSON to PostgreSQL (`json_populate_recordset`), so each
 * value goes through its column type's own input function.
 *
 * Memory stays bounded both ways: the dump reads a server-side cursor 1,000 rows at a time and
 * writes through 64 KiB buffers; the load tokenizes its files piece by piece and inserts ~500
 * objects at a time from a reusable buffer outside the JS heap.
 */
import { createReadStream } from 'node:fs'
import type { Readable, Writable } from 'node:stream'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { Model, ModelStatic } from 'sequelize'
import { jsonParser, type Token } from 'stream-json/parser.js'
import streamArray from 'stream-json/streamers/stream-array.js'
import streamValues from 'stream-json/streamers/stream-values.js'
import { SCHEMA_TABLE } from '../models/index.js'
import { auditSettings, tenantStorage } from './context.js'
import { acquireConnection, type RawConnection } from './db.js'
import { BoardinghouseErrors } from './errors.js'
import { TEMPLATE_SCHEMA, assertSchemaName, describe, quoteIdent, quoteLiteral, schemaNameProblem } from './names.js'
import type { Boardinghouse } from './tenants.js'

// ---------------------------------------------------------------- public types

/** One row of a dump. */
export interface DumpObject {
  /** The Sequelize model name. */
  model: string
  /** The primary key: its value, an object attribute → value for a composite key, null for none. */
  pk: unknown
  /** The schema the row was dumped from; null for a shared model. */
  schema: string | null
  /** The other columns, keyed by attribute name (columns outside the model by column name). */
  fields: Record<string, unknown>
  /**
   * Present only when some json/jsonb field holds JSON `null` (not SQL NULL): those fields' names.
   * In `fields` both are `null`.
   */
  jsonNull?: string[]
}

export interface DumpOptions {
  /** The tenant schema to dump tenant models from. */
  schema?: string
  /**
   * Model names. Default: with `schema`, the tenant models; without, the shared models. The
   * library's own models (`Boardinghouse*`) are never dumped.
   */
  models?: string[]
}

export type DumpFormat = 'json' | 'ndjson'

/** A named stream of dump objects (the name is used in error messages: a file name). */
export interface LoadSource {
  name: string
  objects: AsyncIterable<unknown> | Iterable<unknown>
}

/** Limits of readDumpObjects. */
export interface ReadDumpOptions {
  /**
   * The longest string or number (in characters) a dump may hold; a longer one is refused with
   * FST_BH_INVALID_DUMP while it is read, so memory stays bounded. Default 16 MiB (16,777,216).
   */
  maxValueLength?: number
}

/** readDumpObjects' default maxValueLength: 16 MiB characters. */
export const DEFAULT_MAX_VALUE_LENGTH = 16 * 1024 * 1024

/** How deep a dump object may nest (the object itself is level 1). */
export const MAX_DUMP_DEPTH = 1000

export interface LoadOptions {
  /** Load every tenant object into this schema, whatever schema it was dumped from. */
  schema?: string
}

export interface LoadResult {
  /** Objects written. */
  objects: number
  /** Objects written per model name. */
  byModel: Record<string, number>
}

// ---------------------------------------------------------------- exact numbers

/** Marks JsonNumber placeholders while stringifyExact runs (a random nonce, so no real string matches). */
const MARK = `\u0000bh${randomBytes(6).toString('hex')}:`
const MARK_IN_JSON = JSON.stringify(MARK).slice(1, -1)
const MARK_RE = new RegExp(`"${MARK_IN_JSON.replace(/\\/g, '\\\\')}([-+.0-9eE]+)"`, 'g')
let stringifyingExactly = false

/**
 * A JSON number JavaScript cannot hold as written (`1.0`, `-0`, `1e5`, `12345678901234567890`,
 * `0.1000000000000000055511`): kept as its text, and written back as that text by loadData.
 * `valueOf()` gives the nearest double, so arithmetic works; `JSON.stringify` writes that double.
 */
export class JsonNumber {
  readonly text: string
  constructor (text: string) {
    if (!/^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?$/.test(text)) throw new TypeError(`not a JSON number: ${describe(text)}`)
    this.text = text
  }

  valueOf (): number { return Number(this.text) }
  toString (): string { return this.text }
  toJSON (): number | string { return stringifyingExactly ? MARK + this.text : Number(this.text) }
}

/**
 * True when the JSON number `text.slice(start, end)` reads back as the same text through a double.
 * (Takes bounds so that the common case allocates nothing.)
 */
function isCanonicalNumber (text: string, start = 0, end = text.length): boolean {
  // Fast path: no exponent, at most 15 significant digits (exact through a double, DBL_DIG), no
  // trailing zero after a point, not -0, and not below 1e-6 (JavaScript writes 1e-7).
  const negative = text.charCodeAt(start) === 45
  let digits = 0
  let point = -1
  let leadingZeros = true
  for (let i = negative ? start + 1 : start; i < end; i++) {
    const c = text.charCodeAt(i)
    if (c === 46) { point = i; continue }
    if (c < 48 || c > 57) return roundTrips(text.slice(start, end)) // an exponent
    if (leadingZeros && c === 48) continue
    leadingZeros = false
    digits++
  }
  if (digits > 15) return roundTrips(text.slice(start, end))
  if (point === -1) return !(negative && digits === 0) // -0
  if (text.charCodeAt(end - 1) === 48) return false // 1.50
  if (point === (negative ? start + 2 : start + 1) && text.charCodeAt(point - 1) === 48) {
    // 0.000001 is written as is, 0.0000001 as 1e-7
    let zeros = 0
    while (text.charCodeAt(point + 1 + zeros) === 48) zeros++
    if (zeros >= 6) return false
  }
  return true
}

function roundTrips (number: string): boolean {
  return String(Number(number)) === number
}

/** JSON.stringify that writes JsonNumber values as their exact text. */
export function stringifyExact (value: unknown): string {
  stringifyingExactly = true
  let text: string
  try {
    text = JSON.stringify(value)
  } finally {
    stringifyingExactly = false
  }
  return text.includes(MARK_IN_JSON) ? text.replace(MARK_RE, '$1') : text
}

/** Scans JSON text for a number outside strings that a double would not reproduce. */
function hasInexactNumber (text: string): boolean {
  return rewriteInexactNumbers(text, false) !== null
}

/**
 * With `rewrite`, returns `text` with each inexact number replaced by a marked string (null when
 * there is none); without, returns '' at the first one found, null when there is none.
 */
function rewriteInexactNumbers (text: string, rewrite: boolean): string | null {
  const n = text.length
  let out: string[] | null = null
  let copied = 0
  let i = 0
  while (i < n) {
    const c = text.charCodeAt(i)
    if (c === 34) { // a string: skip to its closing quote
      let e = text.indexOf('"', i + 1)
      for (;;) {
        if (e === -1) return out === null ? null : out.join('') + text.slice(copied) // malformed: JSON.parse will say
        let b = e - 1
        while (text.charCodeAt(b) === 92) b--
        if (((e - 1 - b) & 1) === 0) break
        e = text.indexOf('"', e + 1)
      }
      i = e + 1
    } else if (c === 45 || (c >= 48 && c <= 57)) {
      let j = i + 1
      while (j < n) {
        const d = text.charCodeAt(j)
        if ((d >= 48 && d <= 57) || d === 46 || d === 101 || d === 69 || d === 43 || d === 45) j++
        else break
      }
      if (!isCanonicalNumber(text, i, j)) {
        if (!rewrite) return ''
        out ??= []
        out.push(text.slice(copied, i), '"', MARK_IN_JSON, text.slice(i, j), '"')
        copied = j
      }
      i = j
    } else {
      i++
    }
  }
  return out === null ? null : out.join('') + text.slice(copied)
}

function reviveMarks (_key: string, value: unknown): unknown {
  return typeof value === 'string' && value.startsWith(MARK) ? new JsonNumber(value.slice(MARK.length)) : value
}

/** JSON.parse that keeps numbers a double would change as JsonNumber. */
export function parseExact (text: string): unknown {
  if (!hasInexactNumber(text)) return JSON.parse(text)
  return JSON.parse(rewriteInexactNumbers(text, true) ?? text, reviveMarks)
}

/** stream-json token transform: inexact numbers become JsonNumber values. */
function exactNumberToken (token: Token): Token {
  if (token.name === 'numberValue' && !isCanonicalNumber(token.value)) {
    return { name: 'stringValue', value: new JsonNumber(token.value) as unknown as string }
  }
  return token
}

// ---------------------------------------------------------------- models and tables

interface ModelInfo {
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
function appModels (bh: Boardinghouse): Map<string, ModelInfo> {
  const { sequelize } = bh.options
  const tenant = new Set(bh.tenantModelClasses())
  bh.tenantTableNames() // checks that no tenant model names a schema
  const out = new Map<string, ModelInfo>()
  for (const [name, model] of Object.entries(sequelize.models)) {
    if (name.startsWith(LIBRARY_MODEL_PREFIX)) continue
    const t = model.getTableName() as string | { tableName: string, schema?: string }
    const table = typeof t === 'string' ? t : t.tableName
    const schema = typeof t === 'object' && typeof t.schema === 'string' && t.schema !== '' ? t.schema : 'public'
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
    const ref = (def as { references?: unknown }).references
    if (ref === undefined || ref === null) continue
    const target = typeof ref === 'string' ? ref : (ref as { model?: unknown }).model
    let name: string | undefined
    if (typeof target === 'string') name = models.has(target) ? target : byTable.get(target)
    else if (typeof target === 'function') name = (target as ModelStatic<Model>).name
    else if (typeof target === 'object' && target !== null) {
      const table = (target as { tableName?: unknown }).tableName
      if (typeof table === 'string') name = byTable.get(table)
    }
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
type ColumnKind = 'native' | 'text' | 'textArray'

interface ColumnInfo {
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

interface TableInfo {
  /** `"schema"."table"` */
  qualified: string
  columns: Map<string, ColumnInfo>
  order: ColumnInfo[]
  /** Load: how each key set of objects maps onto the columns, by signature. */
  shapes: Map<string, Shape>
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
async function readTable (connection: RawConnection, schema: string, table: string): Promise<TableInfo | null> {
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
  return { qualified, columns: new Map(order.map((c) => [c.name, c])), order, shapes: new Map() }
}

/** SQL for a column's JSON value: the column itself, or its text (exact for NUMERIC, BIGINT, INTERVAL, anything else). */
function valueExpr (column: ColumnInfo): string {
  const ref = `t.${quoteIdent(column.name)}`
  const value = column.kind === 'native' ? ref : column.kind === 'text' ? `${ref}::text` : `${ref}::text[]`
  if (!column.array) return value
  // an array whose lower bounds are not all 1 ('[0:2]={1,2,3}') travels as its text, bounds included
  return `CASE WHEN pg_catalog.array_lower(${ref}, 1) <> 1 OR (pg_catalog.array_ndims(${ref}) > 1 AND pg_catalog.array_dims(${ref}) ~ '\\[(?!1:)')
    THEN pg_catalog.to_json(${ref}::text) ELSE pg_catalog.to_json(${value}) END`
}

/** json_build_object over any number of pairs (it takes at most 100 arguments: chunks are joined as text). */
function objectExpr (pairs: Array<[string, string]>): string {
  const chunks: string[] = []
  for (let i = 0; i < pairs.length; i += 50) {
    chunks.push(`pg_catalog.json_build_object(${pairs.slice(i, i + 50).map(([k, v]) => `${quoteLiteral(k)}, ${v}`).join(', ')})`)
  }
  if (chunks.length === 0) return 'pg_catalog.json_build_object()'
  if (chunks.length === 1) return chunks[0] as string
  // each chunk is a non-empty object: strip its braces and join the members
  return `('{' || ${chunks.map((c) => `pg_catalog.left(pg_catalog.substr(${c}::text, 2), -1)`).join(` || ', ' || `)} || '}')::json`
}

// ---------------------------------------------------------------- dump

interface DumpPlan {
  schema: string | null
  models: ModelInfo[]
}

function planDump (bh: Boardinghouse, options: DumpOptions): DumpPlan {
  const { schema, models: names } = options
  if (schema !== undefined) assertSchemaName(schema)
  const all = appModels(bh)
  let selected: ModelInfo[]
  if (names !== undefined && names.length > 0) {
    selected = []
    for (const name of new Set(names)) {
      const info = all.get(name)
      if (info === undefined) throw new BoardinghouseErrors.UNKNOWN_MODEL(name)
      selected.push(info)
    }
    if (schema === undefined) {
      const tenant = selected.filter((m) => m.tenant).map((m) => m.name)
      if (tenant.length > 0) throw new BoardinghouseErrors.TENANT_MODEL_NEEDS_SCHEMA(tenant.join(', '))
    }
  } else {
    selected = [...all.values()].filter((m) => m.tenant === (schema !== undefined))
  }
  return { schema: schema ?? null, models: sortByDependencies(selected, all) }
}

/** Settings that make PostgreSQL's text exact and the same everywhere. */
const SESSION_SETTINGS = [
  "SET LOCAL TimeZone = 'UTC'",
  "SET LOCAL DateStyle = 'ISO, MDY'",
  "SET LOCAL IntervalStyle = 'postgres'",
  'SET LOCAL extra_float_digits = 1',
  "SET LOCAL bytea_output = 'hex'"
].join('; ')

const FETCH_SIZE = Number(process.env.BH_FETCH ?? 1000)

function notMigrated (err: unknown, what: string): unknown {
  if ((err as { code?: string }).code === '42P01') return new BoardinghouseErrors.NOT_MIGRATED(what, { cause: err })
  return err
}

async function assertRegistered (connection: RawConnection, schema: string, lock: boolean): Promise<void> {
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

/**
 * The dump as JSON text, one object per string, in load order (parents first, then by primary key),
 * from one REPEATABLE READ READ ONLY transaction on a pool connection held until the iteration ends
 * (also when the consumer stops early). Checks run on the first `next()`.
 */
export async function * dumpDataText (bh: Boardinghouse, options: DumpOptions = {}): AsyncGenerator<string, void, undefined> {
  for await (const texts of dumpDataBatches(bh, options)) yield * texts
}

/** dumpDataText, a FETCH (up to 1,000 objects) at a time: what the CLI writes, with less per-object overhead. */
export async function * dumpDataBatches (bh: Boardinghouse, options: DumpOptions = {}): AsyncGenerator<string[], void, undefined> {
  const plan = planDump(bh, options)
  const { connection, release } = await acquireConnection(bh.options.sequelize)
  let finished = false
  let broken = false
  try {
    await connection.query(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; ${SESSION_SETTINGS}; SET LOCAL search_path = ${plan.schema === null ? 'public' : `${quoteIdent(plan.schema)}, public`}`)
    if (plan.schema !== null) await assertRegistered(connection, plan.schema, false)
    for (const info of plan.models) {
      const schema = info.tenant ? plan.schema as string : info.sharedSchema
      const table = await readTable(connection, schema, info.table)
      if (table === null) throw new BoardinghouseErrors.NOT_MIGRATED(`table ${quoteIdent(schema)}.${quoteIdent(info.table)} of model ${info.name} is missing`)
      const sql = dumpQuery(info, table, info.tenant ? schema : null)
      await connection.query(`DECLARE bh_dump NO SCROLL CURSOR FOR ${sql}`)
      for (;;) {
        const texts = await fetchTexts(connection, `FETCH ${FETCH_SIZE} FROM bh_dump`)
        if (texts.length > 0) yield texts
        if (texts.length < FETCH_SIZE) break
      }
      await connection.query('CLOSE bh_dump')
    }
    await connection.query('COMMIT')
    finished = true
  } finally {
    if (!finished) await connection.query('ROLLBACK').catch(() => { broken = true })
    await release(broken)
  }
}

/**
 * The first column of each row, as strings. Rows are taken one by one from pg's 'row' events rather
 * than from its accumulated result: measured, this keeps the rows out of V8's old generation (a
 * million-row dump peaks ~60 MB lower).
 */
async function fetchTexts (connection: RawConnection, sql: string): Promise<string[]> {
  return await new Promise((resolve, reject) => {
    const texts: string[] = []
    const query = new pg.Query({ text: sql, rowMode: 'array' } as unknown as pg.QueryConfig)
    query.on('row', (row: unknown[]) => { texts.push(row[0] as string) })
    query.on('error', reject)
    query.on('end', () => { resolve(texts) })
    ;(connection as unknown as pg.Client).query(query)
  })
}

function dumpQuery (info: ModelInfo, table: TableInfo, schema: string | null): string {
  const pkColumns: ColumnInfo[] = info.pkAttrs.map((attr) => {
    const column = table.columns.get(info.attrToColumn.get(attr) ?? attr)
    if (column === undefined) throw new BoardinghouseErrors.NOT_MIGRATED(`primary key ${attr} of model ${info.name} has no column in ${table.qualified}`)
    return column
  })
  const pkNames = new Set(pkColumns.map((c) => c.name))
  const fields: Array<[string, string]> = []
  const jsonNullable: Array<[string, string]> = []
  for (const column of table.order) {
    if (column.generated || pkNames.has(column.name)) continue
    const attr = info.columnToAttr.get(column.name)
    if (attr === undefined && info.attrToColumn.has(column.name)) {
      throw new BoardinghouseErrors.INVALID_OPTION(`column ${column.name} of ${table.qualified} is outside model ${info.name} and has the name of one of its attributes: it cannot be dumped by name`)
    }
    fields.push([attr ?? column.name, valueExpr(column)])
    if (column.jsonType !== null) jsonNullable.push([attr ?? column.name, `pg_catalog.${column.jsonType}_typeof(t.${quoteIdent(column.name)}) = 'null'`])
  }
  const pk = pkColumns.length === 0
    ? 'NULL::json'
    : pkColumns.length === 1
      ? valueExpr(pkColumns[0] as ColumnInfo)
      : objectExpr(info.pkAttrs.map((attr, i) => [attr, valueExpr(pkColumns[i] as ColumnInfo)]))
  let object = `pg_catalog.json_build_object('model', ${quoteLiteral(info.name)}, 'pk', ${pk}, 'schema', ${schema === null ? 'NULL::text' : quoteLiteral(schema)}, 'fields', ${objectExpr(fields)})::text`
  if (jsonNullable.length > 0) {
    // JSON null and SQL NULL are both null in fields: list the JSON nulls in "jsonNull"
    const names = `pg_catalog.array_remove(ARRAY[${jsonNullable.map(([key, test]) => `CASE WHEN ${test} THEN ${quoteLiteral(key)} END`).join(', ')}]::text[], NULL)`
    object = `CASE WHEN ${jsonNullable.map(([, test]) => `coalesce(${test}, false)`).join(' OR ')}
      THEN pg_catalog.left(${object}, -1) || ', "jsonNull" : ' || pg_catalog.array_to_json(${names})::text || '}' ELSE ${object} END`
  }
  // json columns keep their text, raw line breaks included: outside strings they are whitespace
  if (table.order.some((c) => c.json)) object = `pg_catalog.translate(${object}, E'\\n\\r', '  ')`
  const orderBy = pkColumns.length > 0 ? ` ORDER BY ${pkColumns.map((c) => `t.${quoteIdent(c.name)}`).join(', ')}` : ''
  return `SELECT ${object} AS j FROM ${table.qualified} AS t${orderBy}`
}

/** The dump as objects (see dumpDataText); numbers a double would change come as JsonNumber. */
export async function * dumpData (bh: Boardinghouse, options: DumpOptions = {}): AsyncGenerator<DumpObject, void, undefined> {
  for await (const text of dumpDataText(bh, options)) yield parseExact(text) as DumpObject
}

/** Bytes written to the output at a time. */
const WRITE_CHUNK = 64 * 1024

/**
 * Writes dump text to `out`: `json` is an array with one object per line, `ndjson` one object per
 * line. `texts` yields objects' JSON text, one string or an array of them at a time. The text goes
 * through Buffers (off the JS heap) of 64 KiB, and waits for `drain` (bounded memory). Does not end
 * `out`. Resolves to the number of objects written.
 */
export async function writeDump (texts: AsyncIterable<string | readonly string[]>, format: DumpFormat, out: Writable): Promise<number> {
  let failed: Error | null = null
  const onError = (err: Error): void => { failed ??= err }
  out.on('error', onError)
  const drained = async (): Promise<void> => {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        out.off('drain', onDrain)
        out.off('error', done)
        out.off('close', onClose)
        if (err !== undefined) reject(err)
        else resolve()
      }
      const onDrain = (): void => { done() }
      const onClose = (): void => { done(failed ?? new Error('the output was closed')) }
      out.on('drain', onDrain)
      out.on('error', done)
      out.on('close', onClose)
    })
  }
  let chunk = Buffer.allocUnsafeSlow(WRITE_CHUNK)
  let used = 0
  const flush = async (): Promise<void> => {
    if (failed !== null) throw failed
    if (used === 0) return
    const full = chunk.subarray(0, used)
    chunk = Buffer.allocUnsafeSlow(WRITE_CHUNK) // the stream keeps the written one until it is out
    used = 0
    if (!out.write(full)) await drained()
  }
  const put = async (text: string): Promise<void> => {
    if (used + text.length * 3 > chunk.length) { // UTF-8 takes at most 3 bytes per UTF-16 unit
      await flush()
      if (text.length * 3 > chunk.length) { // a very large object: as it is
        if (!out.write(text)) await drained()
        return
      }
    }
    used += chunk.write(text, used, 'utf8')
  }
  let count = 0
  try {
    for await (const item of texts) {
      for (const text of typeof item === 'string' ? [item] : item) {
        if (format === 'json') await put(count === 0 ? '[\n' : ',\n')
        await put(text)
        if (format === 'ndjson') await put('\n')
        count++
      }
    }
    await put(format === 'ndjson' ? '' : count === 0 ? '[\n]\n' : '\n]\n')
    await flush()
  } finally {
    out.off('error', onError)
  }
  return count
}

// ---------------------------------------------------------------- reading dump files

/** First non-blank byte of the chunks so far (skipping a UTF-8 BOM), or -1. */
function firstSignificantByte (chunks: Buffer[]): number {
  let index = 0
  for (const chunk of chunks) {
    for (let i = 0; i < chunk.length; i++, index++) {
      const b = chunk[i] as number
      if (index < 3 && (b === 0xef || b === 0xbb || b === 0xbf)) continue
      if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d) continue
      return b
    }
  }
  return -1
}

/** Invalid UTF-8 in a dump file, at a byte offset of the file. */
class Utf8Error extends Error {
  constructor (readonly offset: number) { super(`invalid UTF-8 at byte ${offset}`) }
}

/**
 * The index in `b` of the first byte of an invalid UTF-8 sequence (stray and overlong bytes,
 * encoded surrogates, beyond U+10FFFF), or -1. A sequence cut off by the end of `b` is invalid
 * only when `final`.
 */
function firstInvalidUtf8 (b: Uint8Array, final: boolean): number {
  let i = 0
  while (i < b.length) {
    const c = b[i] as number
    if (c < 0x80) { i++; continue }
    let n: number
    let lo = 0x80
    let hi = 0xbf
    if (c >= 0xc2 && c <= 0xdf) n = 1
    else if (c >= 0xe0 && c <= 0xef) { n = 2; if (c === 0xe0) lo = 0xa0; if (c === 0xed) hi = 0x9f }
    else if (c >= 0xf0 && c <= 0xf4) { n = 3; if (c === 0xf0) lo = 0x90; if (c === 0xf4) hi = 0x8f }
    else return i
    for (let k = 1; k <= n; k++) {
      if (i + k >= b.length) return final ? i : -1
      const d = b[i + k] as number
      if (d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) return i
    }
    i += n + 1
  }
  return -1
}

/** The bytes at the end of `b` that start a multi-byte sequence not complete yet (at most 3). */
function incompleteTail (b: Buffer): Buffer {
  for (let k = 1; k <= Math.min(3, b.length); k++) {
    const c = b[b.length - k] as number
    if ((c & 0xc0) === 0x80) continue // a continuation byte
    const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1
    return need > k ? b.subarray(b.length - k) : b.subarray(b.length)
  }
  return b.subarray(b.length)
}

/**
 * The text of `head` then `rest`, decoded as UTF-8 across chunk boundaries, without a leading BOM.
 * Invalid UTF-8 is not replaced: the valid text before it is yielded, then a Utf8Error thrown.
 */
async function * decoded (head: Buffer[], rest: AsyncIterator<Buffer>): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true }) // (it drops a leading BOM)
  let before = 0 // bytes before the current chunk
  let tail: Buffer = Buffer.alloc(0) // the end of the previous chunks: an incomplete sequence
  const invalid = (chunk: Buffer | null): { text: string, error: Utf8Error } => {
    const bytes = chunk === null ? tail : Buffer.concat([tail, chunk])
    const bad = Math.max(0, firstInvalidUtf8(bytes, true))
    const start = before - tail.length
    const text = new TextDecoder('utf-8', { ignoreBOM: start > 0 }).decode(bytes.subarray(0, bad))
    return { text, error: new Utf8Error(start + bad) }
  }
  const chunks = async function * (): AsyncGenerator<Buffer> {
    yield * head
    for (;;) {
      const r = await rest.next()
      if (r.done === true) return
      yield r.value
    }
  }
  for await (const chunk of chunks()) {
    let text: string
    try {
      text = decoder.decode(chunk, { stream: true })
    } catch {
      const { text: valid, error } = invalid(chunk)
      if (valid !== '') yield valid
      throw error
    }
    tail = chunk.length >= 4 ? incompleteTail(chunk) : incompleteTail(Buffer.concat([tail, chunk]))
    before += chunk.length
    if (text !== '') yield text
  }
  let end: string
  try {
    end = decoder.decode()
  } catch {
    const { text: valid, error } = invalid(null)
    if (valid !== '') yield valid
    throw error
  }
  if (end !== '') yield end
}

/** A dump that breaks a limit of readDumpObjects (the reader adds file and position). */
class LimitError extends Error {}

/** stream-chain's markers (registered symbols): no value, and several values. */
const NONE = Symbol.for('object-stream.none')
const MANY = Symbol.for('object-stream.many')

function isMany (result: unknown): result is { values: unknown[] } {
  return typeof result === 'object' && result !== null && (result as Record<symbol, unknown>)[MANY] === 1
}

/** The values of a stream-chain result: none, one value, or many(values). */
function manyValues (result: unknown): unknown[] {
  if (result === NONE) return []
  return isMany(result) ? result.values : [result]
}

/** Characters handed to the JSON tokenizer at a time. */
const PARSE_PIECE = 16384

function dumpFileName (path: string): string {
  return path === '-' ? '<stdin>' : path
}

/**
 * Streams the objects of a dump file (`-` = stdin): a JSON array (stream-json's parser and
 * streamArray) or NDJSON (one object per line; read as a JSON stream, so objects may also span
 * lines), told apart by the first non-blank character. A blank file holds no objects. Numbers a
 * double would change come as JsonNumber. `input` replaces the file (tests, other sources).
 * Refused with FST_BH_INVALID_DUMP, naming the file, object and line: invalid UTF-8, invalid JSON,
 * a string or number longer than `maxValueLength`, nesting deeper than MAX_DUMP_DEPTH.
 */
export async function * readDumpObjects (path: string, input?: Readable, options: ReadDumpOptions = {}): AsyncGenerator<unknown, void, undefined> {
  const name = dumpFileName(path)
  const maxValueLength = options.maxValueLength ?? DEFAULT_MAX_VALUE_LENGTH
  const stream = input ?? (path === '-' ? process.stdin : createReadStream(path))
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>
  const bytes: AsyncIterator<Buffer> = {
    next: async () => {
      const r = await chunks.next()
      return r.done === true ? r : { done: false, value: typeof r.value === 'string' ? Buffer.from(r.value) : r.value }
    }
  }
  let count = 0
  let line = 1
  try {
    const head: Buffer[] = []
    let first = -1
    try {
      while (first === -1) {
        const r = await bytes.next()
        if (r.done === true) break
        head.push(r.value)
        first = firstSignificantByte(head)
      }
    } catch (err) {
      throw new BoardinghouseErrors.INVALID_DUMP(`${name}: cannot be read: ${(err as Error).message}`, { cause: err })
    }
    if (first === -1) return
    if (first !== 0x5b && first !== 0x7b) { // [ or {
      throw new BoardinghouseErrors.INVALID_DUMP(`${name}: neither a JSON array nor NDJSON (it starts with ${describe(String.fromCharCode(first))})`)
    }
    // stream-json's tokenizer, then streamArray (a JSON array) or streamValues (NDJSON, as JSON
    // Streaming), driven here line by line (pieces of at most 16 Ki characters), pull-based: only
    // the objects of one small piece exist at a time, and an error is known to lie in its piece.
    // (Not JSON.parse per line: it cannot keep numbers like 1.0 exact, and it interns short string
    // values in the old generation, which a million-row load pays for in RSS.)
    const array = first === 0x5b
    const parse = jsonParser({ jsonStreaming: !array, streamValues: false, packValues: true }) as unknown as (chunk: string | symbol) => unknown
    const element = (array ? streamArray() : streamValues()) as unknown as (token: Token) => unknown
    const maxDepth = MAX_DUMP_DEPTH + (array ? 1 : 0)
    let depth = 0
    /** Characters fed since a piece last gave a token: a value (or blank space) being read. */
    let sinceToken = 0
    const tooLong = (): LimitError => new LimitError(`a value is longer than ${maxValueLength} characters (maxValueLength)`)
    /** Checks a token against the limits; its object, when it completes one, or NONE. */
    const take = (token: Token): unknown => {
      switch (token.name) {
        case 'startObject': case 'startArray':
          if (++depth > maxDepth) throw new LimitError(`nested deeper than ${MAX_DUMP_DEPTH} levels`)
          break
        case 'endObject': case 'endArray':
          depth--
          break
        case 'stringValue': case 'keyValue': case 'numberValue':
          if ((token.value as string).length > maxValueLength) throw tooLong()
      }
      return element(exactNumberToken(token))
    }
    try {
      for await (const text of decoded(head, bytes)) {
        let i = 0
        while (i < text.length) {
          const newline = text.indexOf('\n', i)
          const end = newline === -1 || newline + 1 - i > PARSE_PIECE ? Math.min(text.length, i + PARSE_PIECE) : newline + 1
          const piece = i === 0 && end === text.length ? text : text.slice(i, end)
          const tokens = parse(piece)
          if (tokens === NONE || (isMany(tokens) && tokens.values.length === 0)) {
            sinceToken += piece.length
            if (sinceToken > maxValueLength) throw tooLong()
          } else {
            sinceToken = 0
            for (const token of manyValues(tokens)) {
              const item = take(token as Token)
              if (item === NONE) continue
              if (isMany(item)) {
                for (const one of item.values) { count++; yield (one as { value: unknown }).value }
              } else {
                count++
                yield (item as { value: unknown }).value
              }
            }
          }
          if (end === newline + 1) line++
          i = end
        }
      }
      for (const token of manyValues(parse(NONE))) {
        for (const item of manyValues(take(token as Token))) {
          count++
          yield (item as { value: unknown }).value
        }
      }
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith('FST_BH_') === true) throw err
      if (err instanceof Utf8Error) throw new BoardinghouseErrors.INVALID_DUMP(`${name}: ${err.message} (line ${line}) after object ${count}`)
      if (err instanceof LimitError) throw new BoardinghouseErrors.INVALID_DUMP(`${name}: object ${count + 1} (line ${line}): ${err.message}`)
      const what = (err as { code?: string }).code?.startsWith('E') === true ? 'cannot be read' : 'is not valid JSON'
      throw new BoardinghouseErrors.INVALID_DUMP(`${name} ${what} after object ${count} (line ${line}): ${(err as Error).message}`, { cause: err })
    }
  } finally {
    await chunks.return?.()
    if (input === undefined && path !== '-') stream.destroy()
  }
}

// ---------------------------------------------------------------- load

interface Target {
  schema: string
  info: ModelInfo
  table: TableInfo
}

interface PendingRow {
  source: string
  position: number
  pk: unknown
}

interface Batch {
  key: string
  target: Target
  columns: string[]
  /** Columns set to JSON null (the same for every row of the batch). */
  jsonNull: Set<string>
  rows: PendingRow[]
  payload: Payload
}

const OPEN = Buffer.from('[')
const CLOSE = Buffer.from(']')

/**
 * A batch's rows as one JSON array, written into a reusable Buffer: outside the JS heap, so rows
 * waiting for their INSERT are never promoted to the old generation (bounded RSS), and sent as is.
 */
class Payload {
  private buffer = Buffer.allocUnsafeSlow(256 * 1024)
  private length = 0
  /** Start and end of each row's JSON. */
  private readonly spans: number[] = []

  get bytes (): number { return this.length }

  reset (): void {
    this.length = 0
    this.spans.length = 0
    if (this.buffer.length > 4 * 1024 * 1024) this.buffer = Buffer.allocUnsafeSlow(256 * 1024)
  }

  add (json: string): void {
    let need = this.length + json.length * 3 + 2 // UTF-8 takes at most 3 bytes per UTF-16 unit
    if (need > this.buffer.length) need = this.length + Buffer.byteLength(json) + 2
    if (need > this.buffer.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(need, this.buffer.length * 2))
      this.buffer.copy(bigger, 0, 0, this.length)
      this.buffer = bigger
    }
    this.buffer[this.length++] = this.spans.length === 0 ? 0x5b : 0x2c // [ or ,
    const start = this.length
    this.length += this.buffer.write(json, start, 'utf8')
    this.spans.push(start, this.length)
  }

  /** The JSON array of every row (valid until the next reset or add). */
  all (): Buffer {
    this.buffer[this.length] = 0x5d // ]
    return this.buffer.subarray(0, this.length + 1)
  }

  /** A JSON array of row `i` alone. */
  one (i: number): Buffer {
    return Buffer.concat([OPEN, this.buffer.subarray(this.spans[2 * i], this.spans[2 * i + 1]), CLOSE])
  }
}

const BATCH_ROWS = 500
const NEXT_SAVEPOINT = 'RELEASE SAVEPOINT bh_load; SAVEPOINT bh_load'
const BATCH_BYTES = 8 * 1024 * 1024

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof JsonNumber)
}

function oneLine (text: string): string {
  return text.replace(/\s*\n\s*/g, ' ')
}

function describePk (pk: unknown): string {
  try {
    return pk === undefined ? 'none' : stringifyExact(pk)
  } catch {
    return String(pk)
  }
}

/**
 * Loads dump objects, all or nothing: one transaction across every source and schema on one pool
 * connection, batches of consecutive objects with the same schema, model and fields inserted with
 * json_populate_recordset in a savepoint (a failed batch is retried object by object to name the
 * culprit, then everything is rolled back). Sequences of the tables written are moved past the
 * loaded keys (never backwards) before the COMMIT.
 */
export async function loadData (bh: Boardinghouse, sources: LoadSource[], options: LoadOptions = {}): Promise<LoadResult> {
  const { sequelize } = bh.options
  if (options.schema !== undefined) assertSchemaName(options.schema)
  const models = appModels(bh)
  const { connection, release } = await acquireConnection(sequelize)
  const byModel: Record<string, number> = {}
  let objects = 0
  let broken = false
  let committed = false
  const registered = new Set<string>()
  const validNames = new Set<string>()
  const tables = new Map<string, TableInfo>()
  const touched = new Map<string, { schema: string, table: string }>()
  let searchPath = ''
  let batch: Batch | null = null
  let pending: Promise<void> | null = null
  // two payloads: one filling while the other's INSERT runs
  const payloads = [new Payload(), new Payload()]
  let batches = 0

  const settle = async (): Promise<void> => {
    const p = pending
    pending = null
    if (p !== null) await p
  }

  const insertSql = (b: Batch): string => {
    const list = b.columns.map(quoteIdent).join(', ')
    const values = b.columns.map((c) => b.jsonNull.has(c) ? `'null'::${b.target.table.columns.get(c)?.jsonType ?? 'jsonb'}` : quoteIdent(c)).join(', ')
    return `INSERT INTO ${b.target.table.qualified} (${list}) OVERRIDING SYSTEM VALUE SELECT ${values} FROM pg_catalog.json_populate_recordset(NULL::${b.target.table.qualified}, $1::json)`
  }

  const runBatch = async (b: Batch): Promise<void> => {
    const path = `${quoteIdent(b.target.schema)}, public`
    if (path !== searchPath) {
      await connection.query(`SET LOCAL search_path = ${path}`)
      searchPath = path
    }
    const sql = insertSql(b)
    // a savepoint is always open: a batch that fails rolls back to it, one that passes moves it on
    try {
      // a Buffer parameter goes in binary format: json's binary form is its text
      await connection.query(sql, [b.payload.all()])
      await connection.query(NEXT_SAVEPOINT)
    } catch (batchError) {
      // (the rollback undoes a SET LOCAL made since the savepoint: set the path again)
      await connection.query(`ROLLBACK TO SAVEPOINT bh_load; SET LOCAL search_path = ${path}`)
      // one at a time, to name the object the database refuses
      for (const [i, row] of b.rows.entries()) {
        try {
          await connection.query(sql, [b.payload.one(i)])
        } catch (err) {
          throw loadFailed(row, b.target, err)
        }
        await connection.query(NEXT_SAVEPOINT)
      }
    }
    touched.set(b.target.table.qualified, { schema: b.target.schema, table: b.target.info.table })
  }

  const flush = async (): Promise<void> => {
    await settle()
    const b = batch
    batch = null
    if (b === null) return
    pending = runBatch(b)
    pending.catch(() => {}) // awaited by settle()
  }

  const targetFor = async (info: ModelInfo, schema: string, source: string, position: number): Promise<Target> => {
    const key = `${quoteIdent(schema)}.${quoteIdent(info.table)}`
    let table = tables.get(key)
    if (table === undefined) {
      await settle()
      if (info.tenant && !registered.has(schema)) {
        try {
          await assertRegistered(connection, schema, true)
        } catch (err) {
          Object.assign(err as object, { source, position })
          throw err
        }
        registered.add(schema)
      }
      const found = await readTable(connection, schema, info.table)
      if (found === null) {
        throw new BoardinghouseErrors.LOAD_FAILED(`${source}: object ${position} (${info.name}): table ${key} does not exist`)
      }
      table = found
      tables.set(key, table)
    }
    return { schema, info, table }
  }

  try {
    // the caller's audit context, never the one a previous query left on this pooled connection
    await connection.query(`BEGIN; ${SESSION_SETTINGS}; ${auditSettings(tenantStorage.getStore())}; SAVEPOINT bh_load`)
    if (options.schema !== undefined) {
      await assertRegistered(connection, options.schema, true)
      registered.add(options.schema)
    }
    for (const source of sources) {
      let position = 0
      for await (const raw of source.objects) {
        position++
        const where = `${source.name}: object ${position}`
        const object = validateObject(raw, where, models)
        const info = models.get(object.model) as ModelInfo
        let schema: string
        if (info.tenant) {
          const wanted = options.schema ?? object.schema
          if (wanted === undefined || wanted === null) {
            throw new BoardinghouseErrors.INVALID_DUMP(`${where} (${info.name}): a tenant model's object needs a schema: give --schema or a "schema" attribute`)
          }
          if (!validNames.has(wanted)) {
            const problem = wanted === TEMPLATE_SCHEMA ? null : schemaNameProblem(wanted)
            if (problem !== null) {
              throw Object.assign(new BoardinghouseErrors.INVALID_SCHEMA_NAME(`${describe(wanted)} (${where}, ${info.name})`, problem), { source: source.name, position })
            }
            try {
              assertSchemaName(wanted)
            } catch (err) {
              throw Object.assign(err as object, { source: source.name, position })
            }
            validNames.add(wanted)
          }
          schema = wanted
        } else {
          schema = info.sharedSchema
        }
        const target = await targetFor(info, schema, source.name, position)
        let shape: Shape
        let json: string
        try {
          let row: Record<string, unknown>
          ({ shape, row } = rowFor(object, target, where))
          json = stringifyExact(row)
        } catch (err) {
          if (err instanceof RangeError) throw new BoardinghouseErrors.INVALID_DUMP(`${where} (${info.name}): a value is nested too deeply to encode`, { cause: err })
          throw err
        }
        if (batch !== null && (batch.key !== shape.key || batch.rows.length >= BATCH_ROWS || batch.payload.bytes + json.length > BATCH_BYTES)) await flush()
        if (batch === null) {
          const payload = payloads[batches++ % 2] as Payload
          payload.reset()
          batch = { key: shape.key, target, columns: shape.columns, jsonNull: shape.jsonNull, rows: [], payload }
        }
        batch.payload.add(json)
        batch.rows.push({ source: source.name, position, pk: object.pk })
        byModel[info.name] = (byModel[info.name] ?? 0) + 1
        objects++
      }
    }
    await flush()
    await settle()
    await connection.query('SET CONSTRAINTS ALL IMMEDIATE')
    for (const t of touched.values()) await moveSequences(connection, t.schema, t.table)
    await connection.query('COMMIT')
    committed = true
  } catch (err) {
    let error = err
    // a batch still running failed first (it holds earlier objects): report that one
    try { await settle() } catch (batchError) { error = batchError }
    if ((error as { code?: string }).code === undefined || !(error as { code: string }).code.startsWith('FST_BH_')) {
      error = new BoardinghouseErrors.LOAD_FAILED(oneLine((error as Error).message ?? String(error)), { cause: error })
    }
    throw error
  } finally {
    if (!committed) await connection.query('ROLLBACK').catch(() => { broken = true })
    await release(broken)
  }
  return { objects, byModel }
}

function loadFailed (row: PendingRow, target: Target, err: unknown): Error {
  const e = err as { message?: string, detail?: string }
  const message = oneLine(`${e.message ?? String(err)}${typeof e.detail === 'string' && e.detail !== '' ? ` (${e.detail})` : ''}`)
  const schema = target.info.tenant ? ` in schema ${target.schema}` : ''
  return Object.assign(
    new BoardinghouseErrors.LOAD_FAILED(`${row.source}: object ${row.position} (${target.info.name}, pk ${describePk(row.pk)}${schema}): ${message}`, { cause: err }),
    { source: row.source, position: row.position, model: target.info.name, pk: row.pk, schema: target.schema })
}

interface ValidObject {
  model: string
  pk: unknown
  schema: string | null | undefined
  fields: Record<string, unknown>
  jsonNull: string[]
}

const OBJECT_KEYS = new Set(['model', 'pk', 'schema', 'fields', 'jsonNull'])

function validateObject (raw: unknown, where: string, models: Map<string, ModelInfo>): ValidObject {
  if (!isPlainObject(raw)) throw new BoardinghouseErrors.INVALID_DUMP(`${where}: not an object`)
  for (const key of Object.keys(raw)) {
    if (!OBJECT_KEYS.has(key)) throw new BoardinghouseErrors.INVALID_DUMP(`${where}: unknown key ${describe(key)} (an object has model, pk, schema, fields and jsonNull)`)
  }
  const { model, pk, schema, fields, jsonNull } = raw
  if (typeof model !== 'string') throw new BoardinghouseErrors.INVALID_DUMP(`${where}: "model" must be a string`)
  if (!models.has(model)) throw new BoardinghouseErrors.INVALID_DUMP(`${where}: unknown model ${describe(model)}`)
  if (schema !== undefined && schema !== null && typeof schema !== 'string') throw new BoardinghouseErrors.INVALID_DUMP(`${where} (${model}): "schema" must be a string or null`)
  if (schema !== undefined && schema !== null && models.get(model)?.tenant === false) {
    throw new BoardinghouseErrors.INVALID_DUMP(`${where} (${model}): a shared model's object must have "schema": null, not ${describe(schema)}`)
  }
  if (fields !== undefined && !isPlainObject(fields)) throw new BoardinghouseErrors.INVALID_DUMP(`${where} (${model}): "fields" must be an object`)
  if (jsonNull !== undefined && (!Array.isArray(jsonNull) || !jsonNull.every((f) => typeof f === 'string'))) {
    throw new BoardinghouseErrors.INVALID_DUMP(`${where} (${model}): "jsonNull" must be an array of field names`)
  }
  return { model, pk, schema, fields: fields ?? {}, jsonNull: (jsonNull as string[] | undefined) ?? [] }
}

/**
 * How objects with one set of keys (model, pk form, field names, jsonNull) map onto a table's
 * columns: worked out, and checked, once per set of keys rather than per object.
 */
interface Shape {
  /** The batch key: the table, its columns, its JSON-null columns. */
  key: string
  /** Columns of the INSERT, sorted (JSON-null ones included). */
  columns: string[]
  jsonNull: Set<string>
  /** The column of a single-column primary key given as `pk` (null: none, or generated). */
  pkColumn: string | null
  /** attribute → column of a composite `pk` (column null: generated, skipped). */
  pkParts: Array<[string, string | null]>
  /** field key → column (null: generated, skipped). */
  fields: Array<[string, string | null]>
  /** Fields named in jsonNull: their values must be null. */
  jsonNullKeys: string[]
  /** Keys of text columns (string or null only: json_populate_recordset would coerce anything to text), by column. */
  textKeys: Array<[key: string, column: string, text: 'scalar' | 'array']>
}

/** The signature of an object's keys: objects with the same one share a Shape. */
function shapeSignature (object: ValidObject, info: ModelInfo): string {
  const { pk } = object
  let pkForm = '-'
  if (pk !== undefined && pk !== null) pkForm = info.pkAttrs.length > 1 && isPlainObject(pk) ? '{' + Object.keys(pk).join('\u0000') : '='
  const jsonNull = object.jsonNull.length > 0 ? object.jsonNull.join('\u0000') : ''
  return `${info.name}\u0001${pkForm}\u0001${Object.keys(object.fields).join('\u0000')}\u0001${jsonNull}`
}

function buildShape (object: ValidObject, target: Target, where: string): Shape {
  const { info, table } = target
  const used = new Set<string>()
  const columnOf = (key: string, what: string): ColumnInfo => {
    const columnName = info.attrToColumn.get(key) ?? (info.columnToAttr.has(key) ? undefined : key)
    const column = columnName === undefined ? undefined : table.columns.get(columnName)
    if (column === undefined) {
      throw new BoardinghouseErrors.INVALID_DUMP(`${where} (${info.name}): unknown ${what} ${describe(key)}${info.attrToColumn.has(key) ? ` (no column in ${table.qualified})` : ''}`)
    }
    return column
  }
  /** The column a key writes, or null for a generated column (skipped). */
  const take = (key: string, what: string): string | null => {
    const column = columnOf(key, what)
    if (used.has(column.name)) throw new BoardinghouseErrors.INVALID_DUMP(`${where} (${info.name}): ${describe(key)} is given twice`)
    used.add(column.name)
    return column.generated ? null : column.name
  }
  let pkColumn: string | null = null
  const pkParts: Array<[string, string | null]> = []
  const { pk } = object
  if (pk !== undefined && pk !== null) {
    if (info.pkAttrs.length === 0) throw new BoardinghouseErrors.INVALID_DUMP(`${where} (${info.name}): the model has no primary key, yet the object gives one`)
    if (info.pkAttrs.length === 1) {
      pkColumn = take(info.pkAttrs[0] as string, 'primary key')
    } else {
      if (!isPlainObject(pk)) throw new BoardinghouseErrors.INVALID_DUMP(`${where} (${info.name}): the primary key is composite: "pk" must be an object of ${info.pkAttrs.join(', ')}`)
      for (const attr of Object.keys(pk)) {
        if (!info.pkAttrs.includes(attr)) throw new BoardinghouseErrors.INVALID_DUMP(`${where} (${info.name}): ${describe(attr)} is not part of the primary key (${info.pkAttrs.join(', ')})`)
        pkParts.push([attr, take(attr, 'primary key attribute')])
      }
    }
  }
  const fields: Array<[string, string | null]> = Object.keys(object.fields).map((key) => [key, take(key, 'field')])
  const textKeys: Shape['textKeys'] = []
  for (const [key, column] of [...(pkColumn !== null ? [[info.pkAttrs[0] as string, pkColumn]] : []), ...pkParts, ...fields]) {
    const text = column === null || column === undefined ? null : table.columns.get(column)?.text ?? null
    if (text !== null) textKeys.push([key as string, column as string, text])
  }
  const jsonNull = new Set<string>()
  for (const key of object.jsonNull) {
    const column = columnOf(key, 'field in "jsonNull"')
    if (column.jsonType === null) throw new BoardinghouseErrors.INVALID_DUMP(`${where} (${info.name}): ${describe(key)} in "jsonNull" is not a json or jsonb field`)
    if (!column.generated) jsonNull.add(column.name)
  }
  const columns = [
    ...(pkColumn !== null ? [pkColumn] : []),
    ...pkParts.map(([, c]) => c),
    ...fields.map(([, c]) => c),
    ...jsonNull
  ].filter((c): c is string => c !== null)
  const unique = [...new Set(columns)].sort()
  return {
    key: `${table.qualified}\u0000${unique.join('\u0000')}\u0001${[...jsonNull].sort().join('\u0000')}`,
    columns: unique,
    jsonNull,
    pkColumn,
    pkParts,
    fields: fields.filter(([, c]) => c === null || !jsonNull.has(c)),
    jsonNullKeys: object.jsonNull,
    textKeys
  }
}

/** What a JSON value is, for messages. */
function kindOf (value: unknown): string {
  if (typeof value === 'number' || typeof value === 'bigint' || value instanceof JsonNumber) return 'a number'
  if (typeof value === 'boolean') return 'a boolean'
  if (Array.isArray(value)) return 'an array'
  return typeof value === 'object' ? 'an object' : typeof value
}

/** The first element (at any depth) of a text array value that is not a string or null, or undefined. */
function nonTextElement (value: unknown[]): unknown {
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const v = stack.pop()
    if (Array.isArray(v)) { for (let i = v.length - 1; i >= 0; i--) stack.push(v[i]) } else if (v !== null && typeof v !== 'string') return v
  }
  return undefined
}

/** The row to insert (keyed by column name) and its Shape. */
function rowFor (object: ValidObject, target: Target, where: string): { shape: Shape, row: Record<string, unknown> } {
  const signature = shapeSignature(object, target.info)
  const shapes = target.table.shapes
  let shape = shapes.get(signature)
  if (shape === undefined) {
    shape = buildShape(object, target, where)
    if (shapes.size >= 1000) shapes.clear()
    shapes.set(signature, shape)
  }
  const row: Record<string, unknown> = {}
  const { pk, fields } = object
  if (shape.pkColumn !== null) row[shape.pkColumn] = pk
  for (const [attr, column] of shape.pkParts) if (column !== null) row[column] = (pk as Record<string, unknown>)[attr]
  for (const [key, column] of shape.fields) if (column !== null) row[column] = fields[key]
  for (const [key, column, text] of shape.textKeys) {
    const value = row[column]
    if (value === null || value === undefined || typeof value === 'string') continue
    if (text === 'scalar') throw new BoardinghouseErrors.INVALID_DUMP(`${where} (${target.info.name}): ${describe(key)} is a text field: it takes a string or null, not ${kindOf(value)}`)
    const bad = Array.isArray(value) ? nonTextElement(value) : value
    if (bad !== undefined) {
      throw new BoardinghouseErrors.INVALID_DUMP(Array.isArray(value)
        ? `${where} (${target.info.name}): ${describe(key)} is a text array field: its elements take a string or null, not ${kindOf(bad)}`
        : `${where} (${target.info.name}): ${describe(key)} is a text array field: it takes an array or its text, not ${kindOf(value)}`)
    }
  }
  for (const key of shape.jsonNullKeys) {
    const value = fields[key]
    if (value !== null && value !== undefined) throw new BoardinghouseErrors.INVALID_DUMP(`${where} (${target.info.name}): ${describe(key)} is in "jsonNull" but its value is not null`)
  }
  return { shape, row }
}

/**
 * Moves each sequence owned by a column of the table (serial and identity) past the column's
 * largest value, never backwards.
 */
async function moveSequences (connection: RawConnection, schema: string, table: string): Promise<void> {
  const qualified = `${quoteIdent(schema)}.${quoteIdent(table)}`
  const { rows } = await connection.query(
    `SELECT a.attname AS column, n.nspname AS seq_schema, c.relname AS seq_name, q.seqincrement::text AS increment
     FROM pg_catalog.pg_attribute a
     CROSS JOIN LATERAL (SELECT pg_catalog.pg_get_serial_sequence($1, a.attname)::regclass AS seq) g
     JOIN pg_catalog.pg_class c ON c.oid = g.seq
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     JOIN pg_catalog.pg_sequence q ON q.seqrelid = c.oid
     WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped`, [qualified])
  for (const r of rows as Array<{ column: string, seq_schema: string, seq_name: string, increment: string }>) {
    if (BigInt(r.increment) <= 0n) continue
    const sequence = `${quoteIdent(r.seq_schema)}.${quoteIdent(r.seq_name)}`
    const { rows: state } = await connection.query(
      `SELECT (SELECT pg_catalog.max(${quoteIdent(r.column)})::text FROM ${qualified}) AS max, last_value::text AS last, is_called FROM ${sequence}`)
    const s = state[0] as { max: string | null, last: string, is_called: boolean }
    if (s.max === null || !/^-?[0-9]+$/.test(s.max)) continue
    const next = s.is_called ? BigInt(s.last) + BigInt(r.increment) : BigInt(s.last)
    if (BigInt(s.max) >= next) await connection.query('SELECT pg_catalog.setval($1::regclass, $2::bigint, true)', [sequence, s.max])
  }
}

