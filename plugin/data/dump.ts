/**
 * dumpdata: the rows of models as JSON text written by PostgreSQL (`json_build_object`, in UTC,
 * shortest exact floats, hex bytea; NUMERIC and BIGINT as strings), from one REPEATABLE READ READ
 * ONLY snapshot, read through a server-side cursor 1,000 rows at a time and written through
 * 64 KiB buffers.
 */
import type { Writable } from 'node:stream'
import pg from 'pg'
import { acquireConnection, type RawConnection } from '../db.js'
import { BoardinghouseErrors } from '../errors.js'
import { assertSchemaName, quoteIdent, quoteLiteral } from '../names.js'
import { SESSION_SETTINGS, appModels, assertRegistered, readTable, sortByDependencies, type ColumnInfo, type DataHost, type ModelInfo, type TableInfo } from './columns.js'
import { parseExact } from './json.js'
import type { DumpFormat, DumpObject, DumpOptions } from './types.js'

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

interface DumpPlan {
  schema: string | null
  models: ModelInfo[]
}

function planDump (host: DataHost, options: DumpOptions): DumpPlan {
  const { schema, models: names } = options
  if (schema !== undefined) assertSchemaName(schema)
  const all = appModels(host)
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

const FETCH_SIZE = Number(process.env.BH_FETCH ?? 1000)

/**
 * The dump as JSON text, one object per string, in load order (parents first, then by primary key),
 * from one REPEATABLE READ READ ONLY transaction on a pool connection held until the iteration ends
 * (also when the consumer stops early). Checks run on the first `next()`.
 */
export async function * dumpDataText (host: DataHost, options: DumpOptions = {}): AsyncGenerator<string, void, undefined> {
  for await (const texts of dumpDataBatches(host, options)) yield * texts
}

/** dumpDataText, a FETCH (up to 1,000 objects) at a time: what the CLI writes, with less per-object overhead. */
export async function * dumpDataBatches (host: DataHost, options: DumpOptions = {}): AsyncGenerator<string[], void, undefined> {
  const plan = planDump(host, options)
  const { connection, release } = await acquireConnection(host.options.sequelize)
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
export async function * dumpData (host: DataHost, options: DumpOptions = {}): AsyncGenerator<DumpObject, void, undefined> {
  for await (const text of dumpDataText(host, options)) yield parseExact(text) as DumpObject
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
