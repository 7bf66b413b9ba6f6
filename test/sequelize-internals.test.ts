/**
 * Pins, one test per internal, every Sequelize 6 internal that plugin/sequelize-internals.ts
 * reaches into, against the installed Sequelize: the shape exists and behaves as the library
 * assumes. An upgrade that changes one fails here, by name.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { DataTypes, QueryTypes, type Sequelize } from 'sequelize'
import {
  asPgQuery, connectionConfig, connectionManager, convertQueryErrors, pinModelSchema, poolOptions, pools, queryGeneratorOf, transactionConnection, transactionSequelize, wrapPoolValidate, writePool, wrapQueryAndTransaction
} from '../plugin/sequelize-internals.js'
import { runWithSchema } from '../plugin/context.js'
import { createTestDatabase, sequelizeFor, setupBoardinghouse } from './helpers.js'

const require = createRequire(import.meta.url)

async function backendPid (sequelize: Sequelize): Promise<number> {
  const [row] = await sequelize.query<{ pid: number }>('SELECT pg_backend_pid() AS pid', { type: QueryTypes.SELECT })
  return Number(row?.pid)
}

test('sequelize is version 6', () => {
  const version = (require('sequelize/package.json') as { version: string }).version
  assert.match(version, /^6\./, 'written against sequelize 6')
})

test('connectionManager: getConnection/releaseConnection/destroyConnection hand out pooled pg clients; connect/disconnect open one outside the pool', async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url, { pool: { max: 1, min: 0 } })
  const manager = connectionManager(sequelize)
  for (const name of ['getConnection', 'releaseConnection', 'connect', 'disconnect', 'destroyConnection'] as const) {
    assert.equal(typeof manager[name], 'function', name)
  }
  const pooled = await manager.getConnection({ type: 'SELECT' })
  const { rows, rowCount } = await pooled.query('SELECT $1::int AS n', [7])
  assert.deepEqual([rows, rowCount], [[{ n: 7 }], 1])
  const pid = Number((await pooled.query('SELECT pg_backend_pid() AS pid')).rows[0]?.pid)
  await manager.releaseConnection(pooled)
  assert.equal(await backendPid(sequelize), pid, 'released: the next query reuses it')
  const again = await manager.getConnection({ type: 'SELECT' })
  assert.ok(manager.destroyConnection !== undefined)
  await manager.destroyConnection(again)
  assert.notEqual(await backendPid(sequelize), pid, 'destroyed: the pool opened another')

  const own = await manager.connect(connectionConfig(sequelize))
  assert.equal(typeof own.on, 'function')
  assert.equal(typeof own.removeAllListeners, 'function')
  const ownPid = Number((await own.query('SELECT pg_backend_pid() AS pid')).rows[0]?.pid)
  assert.notEqual(ownPid, await backendPid(sequelize), 'connect() does not take the pool\'s connection (pool max 1)')
  await manager.disconnect(own)
})

test('config.pool holds the pool options the instance was built with', async (t) => {
  const url = await createTestDatabase(t)
  assert.deepEqual(poolOptions(sequelizeFor(t, url, { pool: { max: 3, maxUses: 9 } })), { max: 3, maxUses: 9 })
  assert.equal(poolOptions(sequelizeFor(t, url)).max, undefined)
})

test('sequelize-pool maxUsesPerResource: Infinity unless pool.maxUses, read on release (recycles the connection)', async (t) => {
  const url = await createTestDatabase(t)
  assert.equal(writePool(sequelizeFor(t, url, { pool: { maxUses: 4 } }))?.maxUsesPerResource, 4)
  const sequelize = sequelizeFor(t, url, { pool: { max: 1, min: 0 } })
  const [pool] = pools(sequelize)
  assert.equal(pools(sequelize).length, 1)
  assert.equal(pool?.maxUsesPerResource, Infinity)
  assert.equal(writePool(sequelize), pool)
  const first = await backendPid(sequelize)
  assert.equal(await backendPid(sequelize), first)
  pool.maxUsesPerResource = 3
  await backendPid(sequelize)
  assert.notEqual(await backendPid(sequelize), first, 'set after construction, it still recycles')
})

test("sequelize-pool _factory.validate is asked before an idle connection is reused: wrapPoolValidate's refusal closes it", async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url, { pool: { max: 1, min: 0 } })
  const [pool] = pools(sequelize)
  assert.equal(typeof pool?._factory?.validate, 'function')
  let retire: unknown = null
  assert.equal(wrapPoolValidate(pool as NonNullable<typeof pool>, (c) => c === retire), true)
  const first = await backendPid(sequelize)
  assert.equal(await backendPid(sequelize), first, 'validate still passes a connection nobody retired')
  const manager = connectionManager(sequelize)
  const connection = await manager.getConnection()
  await manager.releaseConnection(connection)
  retire = connection
  assert.notEqual(await backendPid(sequelize), first, 'the retired connection was closed, not reused')
  assert.equal(wrapPoolValidate({}, () => true), false, 'a pool without a factory validate is reported')
})

test('beforeQuery/afterQuery get (options, query): query.options is a copy run() reads searchPath from; query.connection is the pg client', async (t) => {
  const { sequelize } = await setupBoardinghouse(t)
  let seen: { options?: object, query?: unknown } = {}
  const logged: string[] = []
  sequelize.addHook('beforeQuery', 'pin', (options: object, query: unknown) => { seen = { options, query } })
  await runWithSchema(null, async () => { await sequelize.query('SELECT 1', { logging: (sql: string) => logged.push(sql) }) })
  sequelize.removeHook('beforeQuery', 'pin')
  assert.ok(seen.options !== undefined && seen.query !== undefined)
  const q = asPgQuery(seen.query)
  assert.notEqual(seen.options, q.options, 'the hook must write query.options, a copy')
  assert.equal(typeof q.connection.query, 'function')
  assert.equal(q.sequelize, sequelize)
  assert.match(logged[0] ?? '', /^Executing \(default\): SET search_path to public;SELECT 1$/, 'run() prepends SET search_path TO <options.searchPath>;')
  const src = readFileSync(require.resolve('sequelize/lib/dialects/postgres/query'), 'utf8')
  assert.match(src, /this\.options\.searchPath/)
  assert.match(src, /setSearchPath\(this\.options\.searchPath\) \+ sql/)

  await t.test('options carry bind, supportsSearchPath (false for addIndex) and completesTransaction (COMMIT/ROLLBACK)', async () => {
    const options: Array<Record<string, unknown>> = []
    sequelize.addHook('beforeQuery', 'pin', (o: object) => { options.push({ ...o }) })
    try {
      await sequelize.query('SELECT $1::int', { bind: [1] })
      await sequelize.getQueryInterface().addIndex('boardinghouse_schema', ['name'], { name: 'pin_idx' })
      await sequelize.transaction(async (transaction) => { await sequelize.query('SELECT 1', { transaction }) })
    } finally {
      sequelize.removeHook('beforeQuery', 'pin')
    }
    assert.deepEqual(options[0]?.bind, [1])
    assert.ok(options.some((o) => o.supportsSearchPath === false), 'addIndex is flagged')
    const commit = options.at(-1)
    assert.equal(commit?.completesTransaction, true)
    assert.ok(commit?.transaction !== undefined && commit.transaction !== null)
  })
})

test('queryInterface.queryGenerator.options.schema is the default schema of the SQL it writes', async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url)
  const generator = queryGeneratorOf(sequelize.getQueryInterface()) as { options: object, addColumnQuery: (table: string, key: string, attribute: object) => string }
  assert.equal(typeof generator.options, 'object')
  const acme = Object.create(generator, { options: { value: { ...generator.options, schema: 'acme' } } }) as typeof generator
  assert.match(acme.addColumnQuery('items', 'x', { type: DataTypes.INTEGER }), /^ALTER TABLE "acme"\."items"/)
  assert.match(generator.addColumnQuery('items', 'x', { type: DataTypes.INTEGER }), /^ALTER TABLE "public"\."items"/)
})

test('sequelize.query and sequelize.transaction can be replaced on one instance (own properties), the others keep theirs', async (t) => {
  const url = await createTestDatabase(t)
  const one = sequelizeFor(t, url)
  const other = sequelizeFor(t, url)
  const calls: string[] = []
  const remove = wrapQueryAndTransaction(one, {
    query: (original) => async (sql, options) => { calls.push('query'); return await original(sql, options) },
    transaction: (original) => async (...args) => { calls.push('transaction'); return await original(...args) }
  })
  await one.transaction(async (transaction) => { await one.getQueryInterface().showAllTables({ transaction }) })
  assert.ok(calls.includes('transaction'))
  assert.ok(calls.includes('query'), 'queryInterface calls go through the instance\'s query')
  calls.length = 0
  await other.query('SELECT 1')
  assert.deepEqual(calls, [])
  remove()
  await one.query('SELECT 1')
  assert.deepEqual(calls, [])
  assert.equal(Object.hasOwn(one, 'query'), false, 'removed: the prototype\'s again')
  await one.transaction(async (transaction) => { assert.equal(transactionSequelize(transaction), one) })
})

test('sequelize.dialect.Query: one per instance, instantiated per query; run() rejects with the formatted error, inside the query', async (t) => {
  const url = await createTestDatabase(t)
  const one = sequelizeFor(t, url)
  const other = sequelizeFor(t, url)
  const failures: Array<{ code?: string, inTransaction: boolean }> = []
  convertQueryErrors(one, async (query, err) => {
    // still holding its connection: it can be queried
    await query.connection.query('SELECT 1')
    failures.push({ code: (err as { original?: { code?: string } }).original?.code, inTransaction: query.options.transaction !== undefined && query.options.transaction !== null })
    throw Object.assign(new Error('converted'), { cause: err })
  })
  await assert.rejects(one.query('SELECT * FROM nowhere'), /converted/)
  await assert.rejects(other.query('SELECT * FROM nowhere'), (err: Error) => err.name === 'SequelizeDatabaseError')
  assert.deepEqual(failures, [{ code: '42P01', inTransaction: false }])
  assert.equal(await one.query('SELECT 1 AS one', { type: QueryTypes.SELECT, bind: [] }).then((r) => r.length), 1, 'successes pass through')
})

test('Model._schema and options.schema make getTableName() schema-qualified', async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url)
  const Plan = sequelize.define('Plan', { name: DataTypes.TEXT }, { tableName: 'plans' })
  assert.equal(Plan.getTableName(), 'plans')
  pinModelSchema(Plan, 'public')
  const table = Plan.getTableName() as unknown as { tableName: string, schema: string }
  assert.deepEqual([table.tableName, table.schema], ['plans', 'public'])
  assert.equal(String(table), '"public"."plans"')
})

test('transaction.connection is the pg client the transaction runs on: raw SQL there sees its uncommitted work', async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url)
  await sequelize.query('CREATE TABLE tc (n int)')
  await sequelize.transaction(async (transaction) => {
    await sequelize.query('INSERT INTO tc VALUES (1)', { transaction })
    const client = transactionConnection<{ query: (sql: string) => Promise<{ rows: Array<{ n: number }> }> }>(transaction)
    assert.equal(typeof client.query, 'function')
    assert.deepEqual((await client.query('SELECT n FROM tc')).rows, [{ n: 1 }]) // uncommitted: only visible on that connection
    const outside = await sequelize.query<{ n: number }>('SELECT n FROM tc', { type: QueryTypes.SELECT })
    assert.deepEqual(outside, [])
  })
})
