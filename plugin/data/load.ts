/**
 * loaddata: dump objects checked, batched and handed to PostgreSQL (`json_populate_recordset`, so
 * each value goes through its column type's own input function), all or nothing, ~500 objects at a
 * time from reusable buffers outside the JS heap.
 */
import { auditSettings, tenantStorage } from '../context.js'
import { acquireConnection, type RawConnection } from '../db.js'
import { BoardinghouseErrors } from '../errors.js'
import { TEMPLATE_SCHEMA, assertSchemaName, describe, quoteIdent, schemaNameProblem } from '../names.js'
import { SESSION_SETTINGS, appModels, assertRegistered, readTable, type ColumnInfo, type DataHost, type ModelInfo, type TableInfo } from './columns.js'
import { JsonNumber, isPlainObject, stringifyExact } from './json.js'
import type { LoadOptions, LoadResult, LoadSource } from './types.js'

/** A table being loaded: its columns, and how each key set of objects maps onto them, by signature. */
interface LoadTable extends TableInfo {
  shapes: Map<string, Shape>
}

interface Target {
  schema: string
  info: ModelInfo
  table: LoadTable
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
export async function loadData (host: DataHost, sources: LoadSource[], options: LoadOptions = {}): Promise<LoadResult> {
  if (options.schema !== undefined) assertSchemaName(options.schema)
  const models = appModels(host)
  const held = await acquireConnection(host.options.sequelize)
  const loader = new Loader(held.connection, models, options.schema)
  let broken = false
  let committed = false
  try {
    await loader.begin()
    for (const source of sources) {
      let position = 0
      for await (const raw of source.objects) await loader.add(raw, source.name, ++position)
    }
    await loader.commit()
    committed = true
  } catch (err) {
    throw await loader.failure(err)
  } finally {
    if (!committed) await held.connection.query('ROLLBACK').catch(() => { broken = true })
    await held.release(broken)
  }
  return loader.result()
}

/**
 * One load's state on its connection, inside the transaction begin() opens.
 *
 * Pipelining invariant: at most one batch's INSERT is in flight (`pending`) while the next batch
 * fills the other of two payloads. Everything else that uses the connection (reading a table,
 * checking a schema, the next INSERT, moving sequences, COMMIT) first awaits it (`settle()`), so
 * the connection never runs two queries at once; and a payload is reset only when the batch
 * before the one in flight has settled (batches alternate between the payloads, and flush()
 * settles before it starts the next INSERT), so no INSERT ever reads a payload being refilled.
 * A failed INSERT surfaces at the next settle(), or in failure(): it holds earlier objects than
 * any error found meanwhile, so it is the one reported.
 */
class Loader {
  private readonly byModel: Record<string, number> = {}
  private objects = 0
  /** Schemas checked as registered (and locked FOR KEY SHARE) in this transaction. */
  private readonly registered = new Set<string>()
  /** Object schemas that passed the name check. */
  private readonly validNames = new Set<string>()
  /** Tables read so far, by `"schema"."table"`. */
  private readonly tables = new Map<string, LoadTable>()
  /** Tables written: their sequences move before the COMMIT. */
  private readonly touched = new Map<string, { schema: string, table: string }>()
  /** The search_path set in the transaction (SET LOCAL). */
  private searchPath = ''
  /** The batch filling, not sent yet. */
  private batch: Batch | null = null
  /** The INSERT of the previous batch, in flight. */
  private pending: Promise<void> | null = null
  private readonly payloads = [new Payload(), new Payload()]
  private batches = 0

  constructor (private readonly connection: RawConnection, private readonly models: Map<string, ModelInfo>, private readonly schema: string | undefined) {}

  async begin (): Promise<void> {
    // the caller's audit context, never the one a previous query left on this pooled connection
    await this.connection.query(`BEGIN; ${SESSION_SETTINGS}; ${auditSettings(tenantStorage.getStore())}; SAVEPOINT bh_load`)
    if (this.schema !== undefined) {
      await assertRegistered(this.connection, this.schema, true)
      this.registered.add(this.schema)
    }
  }

  /** Validates one object and adds it to the batch (sending the previous batch when this one differs or is full). */
  async add (raw: unknown, source: string, position: number): Promise<void> {
    const where = `${source}: object ${position}`
    const object = validateObject(raw, where, this.models)
    const info = this.models.get(object.model) as ModelInfo
    const schema = info.tenant ? this.tenantSchema(object, info, where, source, position) : info.sharedSchema
    const target = await this.targetFor(info, schema, source, position)
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
    let batch = this.batch
    if (batch !== null && (batch.key !== shape.key || batch.rows.length >= BATCH_ROWS || batch.payload.bytes + json.length > BATCH_BYTES)) {
      await this.flush()
      batch = null
    }
    if (batch === null) {
      const payload = this.payloads[this.batches++ % 2] as Payload
      payload.reset()
      batch = { key: shape.key, target, columns: shape.columns, jsonNull: shape.jsonNull, rows: [], payload }
      this.batch = batch
    }
    batch.payload.add(json)
    batch.rows.push({ source, position, pk: object.pk })
    this.byModel[info.name] = (this.byModel[info.name] ?? 0) + 1
    this.objects++
  }

  /** Sends the last batch, checks deferred constraints, moves sequences, commits. */
  async commit (): Promise<void> {
    await this.flush()
    await this.settle()
    await this.connection.query('SET CONSTRAINTS ALL IMMEDIATE')
    for (const t of this.touched.values()) await moveSequences(this.connection, t.schema, t.table)
    await this.connection.query('COMMIT')
  }

  /** The error to report for `err`: a failure of the batch still in flight first, FST_BH_ errors as they are. */
  async failure (err: unknown): Promise<unknown> {
    let error = err
    try { await this.settle() } catch (batchError) { error = batchError }
    if ((error as { code?: string }).code === undefined || !(error as { code: string }).code.startsWith('FST_BH_')) {
      error = new BoardinghouseErrors.LOAD_FAILED(oneLine((error as Error).message ?? String(error)), { cause: error })
    }
    return error
  }

  result (): LoadResult {
    return { objects: this.objects, byModel: this.byModel }
  }

  /** The schema a tenant object goes to: --schema, or its own (a valid name). */
  private tenantSchema (object: ValidObject, info: ModelInfo, where: string, source: string, position: number): string {
    const wanted = this.schema ?? object.schema
    if (wanted === undefined || wanted === null) {
      throw new BoardinghouseErrors.INVALID_DUMP(`${where} (${info.name}): a tenant model's object needs a schema: give --schema or a "schema" attribute`)
    }
    if (!this.validNames.has(wanted)) {
      const problem = wanted === TEMPLATE_SCHEMA ? null : schemaNameProblem(wanted)
      if (problem !== null) {
        throw Object.assign(new BoardinghouseErrors.INVALID_SCHEMA_NAME(`${describe(wanted)} (${where}, ${info.name})`, problem), { source, position })
      }
      try {
        assertSchemaName(wanted)
      } catch (err) {
        throw Object.assign(err as object, { source, position })
      }
      this.validNames.add(wanted)
    }
    return wanted
  }

  private async targetFor (info: ModelInfo, schema: string, source: string, position: number): Promise<Target> {
    const key = `${quoteIdent(schema)}.${quoteIdent(info.table)}`
    let table = this.tables.get(key)
    if (table === undefined) {
      await this.settle()
      if (info.tenant && !this.registered.has(schema)) {
        try {
          await assertRegistered(this.connection, schema, true)
        } catch (err) {
          Object.assign(err as object, { source, position })
          throw err
        }
        this.registered.add(schema)
      }
      const found = await readTable(this.connection, schema, info.table)
      if (found === null) {
        throw new BoardinghouseErrors.LOAD_FAILED(`${source}: object ${position} (${info.name}): table ${key} does not exist`)
      }
      table = { ...found, shapes: new Map() }
      this.tables.set(key, table)
    }
    return { schema, info, table }
  }

  private async settle (): Promise<void> {
    const p = this.pending
    this.pending = null
    if (p !== null) await p
  }

  /** Waits for the INSERT in flight, then starts the filled batch's. */
  private async flush (): Promise<void> {
    await this.settle()
    const b = this.batch
    this.batch = null
    if (b === null) return
    const pending = this.runBatch(b)
    pending.catch(() => {}) // awaited by settle()
    this.pending = pending
  }

  private async runBatch (b: Batch): Promise<void> {
    const { connection } = this
    const path = `${quoteIdent(b.target.schema)}, public`
    if (path !== this.searchPath) {
      await connection.query(`SET LOCAL search_path = ${path}`)
      this.searchPath = path
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
    this.touched.set(b.target.table.qualified, { schema: b.target.schema, table: b.target.info.table })
  }
}

function insertSql (b: Batch): string {
  const list = b.columns.map(quoteIdent).join(', ')
  const values = b.columns.map((c) => b.jsonNull.has(c) ? `'null'::${b.target.table.columns.get(c)?.jsonType ?? 'jsonb'}` : quoteIdent(c)).join(', ')
  return `INSERT INTO ${b.target.table.qualified} (${list}) OVERRIDING SYSTEM VALUE SELECT ${values} FROM pg_catalog.json_populate_recordset(NULL::${b.target.table.qualified}, $1::json)`
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
export interface Shape {
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
    textKeys: textKeysOf(table, [...(pkColumn !== null ? [[info.pkAttrs[0] as string, pkColumn] as [string, string]] : []), ...pkParts, ...fields])
  }
}

/** Of key → column pairs (column null: skipped), those of text columns. */
function textKeysOf (table: TableInfo, keys: Array<[string, string | null]>): Shape['textKeys'] {
  const out: Shape['textKeys'] = []
  for (const [key, column] of keys) {
    const text = column === null ? null : table.columns.get(column)?.text ?? null
    if (text !== null && column !== null) out.push([key, column, text])
  }
  return out
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
