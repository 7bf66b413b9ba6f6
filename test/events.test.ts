import { test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { QueryTypes, type Sequelize } from 'sequelize'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import { encodeNotice, type BoardinghouseEventMap, type BoardinghouseEventName } from '../plugin/events.js'
import { CHANNEL } from '../plugin/notify.js'
import { defineExampleModels } from '../example/models/index.js'
import { EXAMPLE_TENANT_MIGRATIONS, connect, listPgSchemas, sequelizeFor, setupBoardinghouse } from './helpers.js'
import { buildTestApp } from './fixtures/app.js'

const NAMES: BoardinghouseEventName[] = ['schemaCreated', 'schemaDeactivated', 'schemaActivated', 'schemaDropped', 'membershipGranted', 'membershipRevoked',
  'domainAdded', 'domainRemoved', 'schemaMigrated', 'migrated', 'switched']

type Heard = Array<[BoardinghouseEventName, Record<string, unknown>]>

/** Records every lifecycle event `bh` emits, in order. */
function record (bh: Boardinghouse): Heard {
  const heard: Heard = []
  for (const name of NAMES) bh.on(name, (payload) => { heard.push([name, { ...payload }]) })
  return heard
}

/** Waits until `probe` holds (polling every 10 ms), failing after 10 s. */
async function until (probe: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

interface Pair { a: Boardinghouse, b: Boardinghouse, sequelize: Sequelize, sequelizeB: Sequelize, url: string, heardA: Heard, heardB: Heard, migrations: string }

/** Two Boardinghouse instances on two Sequelize instances (two "processes"), both listening, on one database. */
async function pair (t: { after: (fn: () => Promise<void> | void) => void }): Promise<Pair> {
  mkdirSync(join(process.cwd(), 'test/.artifacts'), { recursive: true })
  const migrations = mkdtempSync(join(process.cwd(), 'test/.artifacts/events-'))
  t.after(() => { rmSync(migrations, { recursive: true, force: true }) })
  copyFileSync(join(EXAMPLE_TENANT_MIGRATIONS, '20260101000000-create-items.js'), join(migrations, '20260101000000-create-items.js'))
  const { bh: a, sequelize, url } = await setupBoardinghouse(t, { tenantMigrations: migrations })
  const sequelizeB = sequelizeFor(t, url)
  defineExampleModels(sequelizeB)
  const b = new Boardinghouse({ sequelize: sequelizeB, tenantModels: ['Item'], tenantMigrations: migrations })
  await a.listen()
  await b.listen()
  t.after(async () => { await a.close(); await b.close() })
  return { a, b, sequelize, sequelizeB, url, heardA: record(a), heardB: record(b), migrations }
}

/**
 * A change made by `by`, whose event the others hear last: once it arrived, every notice sent
 * before it has too (notices arrive in commit order on one connection).
 */
async function sentinel (by: Boardinghouse, heard: Heard[], n: { i: number }): Promise<void> {
  const schema = `sentinel_${n.i++}`
  await by.createSchema(schema)
  for (const h of heard) await until(() => h.some(([name, p]) => name === 'schemaCreated' && p.schema === schema), `the sentinel ${schema}`)
  for (const h of heard) {
    const i = h.findIndex(([name, p]) => name === 'schemaCreated' && p.schema === schema)
    h.splice(i, 1)
  }
}

test('each change emits its event once in this process (local) and once in the other (remote), after commit', async (t) => {
  const { a, b, sequelize, heardA, heardB, migrations } = await pair(t)
  const n = { i: 0 }
  await a.createSchema('acme', { name: 'Acme Inc' })
  // local: emitted before createSchema returned
  assert.deepEqual(heardA, [['schemaCreated', { schema: 'acme', name: 'Acme Inc', origin: 'local' }]])
  await a.grant('acme', 7)
  await a.grant('acme', 7) // already a member: nothing changed, no event
  assert.equal(await a.revoke('acme', 7), true)
  assert.equal(await a.revoke('acme', 7), false) // no membership: no event
  await a.deleteSchema('acme')
  await a.activateSchema('acme')
  await b.createSchema('globex')
  await b.deleteSchema('globex', { drop: true })
  const fromA: Heard = [
    ['schemaCreated', { schema: 'acme', name: 'Acme Inc' }],
    ['membershipGranted', { schema: 'acme', userId: '7' }],
    ['membershipRevoked', { schema: 'acme', userId: '7' }],
    ['schemaDeactivated', { schema: 'acme' }],
    ['schemaActivated', { schema: 'acme' }]
  ]
  const fromB: Heard = [
    ['schemaCreated', { schema: 'globex', name: 'globex' }],
    ['schemaDropped', { schema: 'globex' }]
  ]
  // each side: its own changes as local, the other's as remote, each once (the sentinels make sure every notice arrived)
  await sentinel(a, [heardA, heardB], n)
  await sentinel(b, [heardA, heardB], n)
  const as = (list: Heard, origin: string): Heard => list.map(([name, p]) => [name, { ...p, origin }])
  const sorted = (list: Heard): string[] => list.map((e) => JSON.stringify(e)).sort()
  assert.deepEqual(sorted(heardA), sorted([...as(fromA, 'local'), ...as(fromB, 'remote')]))
  assert.deepEqual(sorted(heardB), sorted([...as(fromA, 'remote'), ...as(fromB, 'local')]))
  // order within one origin is the commit order
  assert.deepEqual(heardB.filter(([, p]) => p.origin === 'remote'), as(fromA, 'remote'))

  await t.test('migrate: schemaMigrated per tenant schema that ran migrations, then migrated, in both', async () => {
    heardA.length = 0
    heardB.length = 0
    writeFileSync(join(migrations, '20990101000000-create-notes.mjs'),
      "export async function up ({ context: { queryInterface, Sequelize } }) { await queryInterface.createTable('notes', { id: { type: Sequelize.INTEGER, primaryKey: true } }) }\n")
    // a third instance on A's Sequelize (its Migrator loads the new migration): its own events are local, A and B hear them as remote
    const m = new Boardinghouse({ sequelize, tenantModels: ['Item'], tenantMigrations: migrations })
    const heardM = record(m)
    const result = await m.migrate()
    assert.equal(result.migratedSchemas, 3) // acme and the two sentinels
    const expected: Heard = [
      ['schemaMigrated', { schema: 'acme', migrations: 1 }],
      ['schemaMigrated', { schema: 'sentinel_0', migrations: 1 }],
      ['schemaMigrated', { schema: 'sentinel_1', migrations: 1 }],
      ['migrated', { schema: null, migratedSchemas: 3 }]
    ]
    const sortedMigrated = (list: Heard): string[] => [...list.filter(([k]) => k === 'schemaMigrated').map((e) => JSON.stringify(e)).sort(), ...list.filter(([k]) => k === 'migrated').map((e) => JSON.stringify(e))]
    assert.deepEqual(sortedMigrated(heardM), sortedMigrated(as(expected, 'local')))
    assert.equal(heardM.length, 4)
    await sentinel(b, [heardA, heardB], n)
    assert.deepEqual(sortedMigrated(heardA), sortedMigrated(as(expected, 'remote')))
    assert.equal(heardA.length, 4)
    assert.deepEqual(sortedMigrated(heardB), sortedMigrated(as(expected, 'remote')))
    assert.equal(heardB.length, 4)
    // a run with nothing to do: migrated only
    heardA.length = 0
    await m.migrate()
    await sentinel(b, [heardA], n)
    assert.deepEqual(heardA, [['migrated', { schema: null, migratedSchemas: 0, origin: 'remote' }]])
  })

  await t.test('a failed or refused change emits nothing, here or there', async () => {
    heardA.length = 0
    heardB.length = 0
    await assert.rejects(a.createSchema('acme'), { code: 'FST_BH_SCHEMA_EXISTS' })
    await assert.rejects(a.createSchema('Bad Name'), { code: 'FST_BH_INVALID_SCHEMA_NAME' })
    await assert.rejects(a.grant('nope', 1), { code: 'FST_BH_SCHEMA_NOT_FOUND' })
    await assert.rejects(a.revoke('nope', 1), { code: 'FST_BH_SCHEMA_NOT_FOUND' })
    await assert.rejects(a.deleteSchema('nope'), { code: 'FST_BH_SCHEMA_NOT_FOUND' })
    await assert.rejects(a.deleteSchema('nope', { drop: true }), { code: 'FST_BH_SCHEMA_NOT_FOUND' })
    await assert.rejects(a.activateSchema('nope'), { code: 'FST_BH_SCHEMA_NOT_FOUND' })
    await assert.rejects(a.grant('acme', 'x' as unknown as number), { code: 'FST_BH_INVALID_USER_ID' })
    await sentinel(b, [heardA, heardB], n)
    assert.deepEqual(heardA, [])
    assert.deepEqual(heardB, [])
  })
})

test('the creation hook seeds the new schema inside its transaction; if it throws, nothing is left and no event', async (t) => {
  const { a, b, sequelize, heardA, heardB } = await pair(t)
  const n = { i: 0 }
  const Item = sequelize.models.Item as NonNullable<typeof sequelize.models.Item>
  const seen: Array<{ schema: string, name: string, path: string, inTransaction: boolean }> = []
  const remove = a.onCreate(async ({ schema, name, transaction }) => {
    const [row] = await sequelize.query<{ path: string, xid: string }>('SELECT current_schema() AS path, txid_current_if_assigned()::text AS xid', { type: QueryTypes.SELECT, transaction })
    // the schema's row is there, uncommitted: only this transaction sees it
    const [inTx] = await sequelize.query<{ n: string }>("SELECT count(*) AS n FROM public.boardinghouse_schema WHERE schema_name = :schema", { replacements: { schema }, type: QueryTypes.SELECT })
    seen.push({ schema, name, path: row?.path ?? '', inTransaction: row?.xid !== null && inTx?.n === '1' })
    await Item.create({ title: `welcome to ${schema}` }) // no transaction named: joins the creation's
  })
  await a.createSchema('seeded', { name: 'Seeded' })
  assert.deepEqual(seen, [{ schema: 'seeded', name: 'Seeded', path: 'seeded', inTransaction: true }])
  assert.deepEqual(await a.runInSchema('seeded', async () => (await Item.findAll()).map((i) => i.get('title'))), ['welcome to seeded'])
  assert.deepEqual(heardA, [['schemaCreated', { schema: 'seeded', name: 'Seeded', origin: 'local' }]])
  // the other instance has no hook: its creations are not seeded
  await b.createSchema('plain')
  await until(() => heardA.some(([k, p]) => k === 'schemaCreated' && p.schema === 'plain'), 'a hearing of plain') // a's registry follows b's change
  assert.deepEqual(await a.runInSchema('plain', async () => await Item.count()), 0)

  const countRows = async (schema: string): Promise<{ pg: boolean, registry: number, ledger: number, members: number }> => {
    const [row] = await sequelize.query<{ pg: boolean, registry: string, ledger: string, members: string }>(
      `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = :schema) AS pg,
              (SELECT count(*) FROM public.boardinghouse_schema WHERE schema_name = :schema) AS registry,
              (SELECT count(*) FROM public.boardinghouse_tenant_migration WHERE schema_name = :schema) AS ledger,
              (SELECT count(*) FROM public.boardinghouse_membership WHERE schema_name = :schema) AS members`,
      { replacements: { schema }, type: QueryTypes.SELECT })
    return { pg: row?.pg ?? false, registry: Number(row?.registry), ledger: Number(row?.ledger), members: Number(row?.members) }
  }
  const nothing = { pg: false, registry: 0, ledger: 0, members: 0 }

  await t.test('a hook that throws after writing: FST_BH_CREATE_HOOK_FAILED with its error as the cause, no schema, no rows', async () => {
    const boom = new Error('seed failed')
    const removeBoom = a.onCreate(async () => { throw boom })
    heardA.length = 0
    heardB.length = 0
    const before = await listPgSchemas(sequelize)
    await assert.rejects(a.createSchema('broken'), (err: Error & { code: string, statusCode: number, cause: unknown }) => {
      assert.equal(err.code, 'FST_BH_CREATE_HOOK_FAILED')
      assert.equal(err.statusCode, 500)
      assert.equal(err.cause, boom)
      assert.match(err.message, /"broken".*seed failed/)
      return true
    })
    assert.deepEqual(await countRows('broken'), nothing)
    assert.deepEqual(await listPgSchemas(sequelize), before)
    assert.equal(await a.getSchema('broken'), null)
    // a hook whose SQL fails (the transaction is aborted) fails the same way
    removeBoom()
    const removeBad = a.onCreate(async () => { await sequelize.query('INSERT INTO no_such_table VALUES (1)') })
    await assert.rejects(a.createSchema('broken'), { code: 'FST_BH_CREATE_HOOK_FAILED' })
    assert.deepEqual(await countRows('broken'), nothing)
    removeBad()
    await sentinel(b, [heardA, heardB], n)
    assert.deepEqual(heardA, [])
    assert.deepEqual(heardB, [])
    // nothing was left behind: the same name now creates (seeded by the first hook)
    await a.createSchema('broken')
    assert.deepEqual(await countRows('broken'), { pg: true, registry: 1, ledger: 1, members: 0 })
    assert.equal(await a.runInSchema('broken', async () => await Item.count()), 1)
  })

  await t.test('the clone\'s own failures keep their codes with a hook registered', async () => {
    await assert.rejects(a.createSchema('seeded'), { code: 'FST_BH_SCHEMA_EXISTS' })
    await sequelize.query('CREATE SCHEMA stray')
    await assert.rejects(a.createSchema('stray'), { code: 'FST_BH_SCHEMA_EXISTS' })
    assert.equal((await countRows('stray')).registry, 0)
    remove()
    await a.createSchema('unseeded')
    assert.equal(await a.runInSchema('unseeded', async () => await Item.count()), 0)
  })

  await t.test('beforeDrop: a hook that throws refuses the drop (FST_BH_DROP_REFUSED, 409), nothing changed, no event', async () => {
    await a.grant('seeded', 1)
    const calls: string[] = []
    const dumped: unknown[] = []
    const refuse = a.beforeDrop(async ({ schema }) => {
      calls.push(schema)
      for await (const object of a.dumpData({ schema })) dumped.push(object)
      throw new Error('not backed up yet')
    })
    heardA.length = 0
    heardB.length = 0
    const before = await countRows('seeded')
    await assert.rejects(a.deleteSchema('seeded', { drop: true }), (err: Error & { code: string, statusCode: number, cause: Error }) => {
      assert.equal(err.code, 'FST_BH_DROP_REFUSED')
      assert.equal(err.statusCode, 409)
      assert.equal(err.cause.message, 'not backed up yet')
      return true
    })
    assert.deepEqual(calls, ['seeded'])
    assert.equal(dumped.length, 1) // the hook saw the schema with its row
    assert.deepEqual(await countRows('seeded'), before)
    assert.deepEqual(before, { pg: true, registry: 1, ledger: 1, members: 1 })
    assert.equal(await a.runInSchema('seeded', async () => await Item.count()), 1)
    // a missing schema: not found, and the hook is not called
    await assert.rejects(a.deleteSchema('nope', { drop: true }), { code: 'FST_BH_SCHEMA_NOT_FOUND' })
    assert.deepEqual(calls, ['seeded'])
    // deactivating is no drop: the hook does not run
    await a.deleteSchema('seeded')
    await a.activateSchema('seeded')
    assert.deepEqual(calls, ['seeded'])
    await sentinel(b, [heardA, heardB], n)
    assert.deepEqual(heardA.map(([k]) => k), ['schemaDeactivated', 'schemaActivated'])
    assert.ok(!heardB.some(([k]) => k === 'schemaDropped'))
    // once the hook lets it, the drop happens
    refuse()
    const allow = a.beforeDrop(({ schema }) => { calls.push(`ok:${schema}`) })
    await a.deleteSchema('seeded', { drop: true })
    assert.deepEqual(calls, ['seeded', 'ok:seeded'])
    assert.deepEqual(await countRows('seeded'), nothing)
    allow()
  })
})

test('a listener that throws or rejects breaks neither the change nor the other listeners: listenerError, else a process warning', async (t) => {
  const { a, b, heardA, heardB } = await pair(t)
  const n = { i: 0 }
  a.on('schemaCreated', () => { throw new Error('sync boom') })
  a.on('schemaCreated', async () => { throw new Error('async boom') })
  b.on('schemaCreated', () => { throw new Error('remote boom') })
  const errors: Array<{ event: string, message: string }> = []
  a.on('listenerError', ({ event, error }) => { errors.push({ event, message: (error as Error).message }) })
  const warnings: string[] = []
  const onWarning = (w: Error): void => { if (w.name === 'BoardinghouseListenerError') warnings.push(w.message) }
  process.on('warning', onWarning)
  t.after(() => { process.off('warning', onWarning) })

  const info = await a.createSchema('acme')
  assert.equal(info.schema, 'acme')
  assert.ok(heardA.some(([k, p]) => k === 'schemaCreated' && p.schema === 'acme')) // the recording listener, added first, still ran
  await until(() => errors.length === 2, 'the async listener error')
  assert.deepEqual(errors.sort((x, y) => x.message.localeCompare(y.message)), [{ event: 'schemaCreated', message: 'async boom' }, { event: 'schemaCreated', message: 'sync boom' }])
  // b has no listenerError listener: a warning; its listener connection keeps working
  await until(() => warnings.some((w) => w.includes('remote boom')), 'the warning')
  assert.match(warnings.find((w) => w.includes('remote boom')) ?? '', /"schemaCreated" listener failed: remote boom/)
  await a.grant('acme', 1)
  await sentinel(a, [heardB], n)
  assert.ok(heardB.some(([k, p]) => k === 'membershipGranted' && p.origin === 'remote'))
  assert.equal(b.listening, true)
})

test('malformed, oversized, unknown-version or unknown-kind notices emit nothing and still reload the registry; a process ignores its own', async (t) => {
  const { a, b, url, heardB } = await pair(t)
  await a.createSchema('acme')
  await until(() => heardB.length === 1, "b hearing acme's creation") // so that no earlier notice reloads b's registry below
  const raw = await connect(t, url)
  const notify = async (payload: string): Promise<void> => { await raw.query('SELECT pg_notify($1, $2)', [CHANNEL, payload]) }
  const key = { schema: 'acme', name: 'acme' }
  const bad = [
    'not json',
    '{"v":1,',
    '[1,2]',
    'null',
    JSON.stringify({ v: 2, id: 'other', kind: 'schemaCreated', key }),
    JSON.stringify({ v: '1', id: 'other', kind: 'schemaCreated', key }),
    JSON.stringify({ v: 1, kind: 'schemaCreated', key }),
    JSON.stringify({ v: 1, id: 'other', kind: 'noSuchEvent', key }),
    JSON.stringify({ v: 1, id: 'other', kind: 'switched', key: { schema: 'acme', from: null, to: 'acme', userId: '1' } }),
    JSON.stringify({ v: 1, id: 'other', kind: 'toString', key }),
    JSON.stringify({ v: 1, id: 'other', kind: 'schemaCreated', key: { ...key, extra: 1 } }),
    JSON.stringify({ v: 1, id: 'other', kind: 'schemaCreated', key: { schema: 'acme' } }),
    JSON.stringify({ v: 1, id: 'other', kind: 'schemaCreated', key: { schema: 1, name: 'x' } }),
    JSON.stringify({ v: 1, id: 'other', kind: 'membershipGranted', key: { schema: 'acme', userId: 7 } }),
    JSON.stringify({ v: 1, id: 'other', kind: 'schemaCreated', key: { schema: 'acme', name: 'x'.repeat(3000) } }), // too long (under PostgreSQL's limit)
    JSON.stringify({ v: 1, id: 'other', kind: 'migrated', key: { schema: null, migratedSchemas: -1 } }),
    JSON.stringify({ v: 1, id: 'other', kind: 'schemaCreated', key: '"acme"' })
  ]
  for (const payload of bad) {
    await b.registry.get()
    assert.notEqual(b.registry.peek(), null)
    await notify(payload)
    await until(() => b.registry.peek() === null, `the reload after ${payload.slice(0, 60)}`)
  }
  // b's own notice (its sender id) carrying an event: neither emitted nor reloaded
  await b.registry.get()
  const ownId = (b as unknown as { changes: { id: string } }).changes.id
  await notify(encodeNotice(ownId, 'schemaActivated', { schema: 'own' }))
  // a well-formed notice from another sender arrives after it (one connection, in order)
  await notify(encodeNotice('other', 'schemaActivated', { schema: 'acme' }))
  await until(() => heardB.some(([k, p]) => k === 'schemaActivated' && p.schema === 'acme'), 'the well-formed notice')
  assert.deepEqual(heardB, [['schemaCreated', { schema: 'acme', name: 'acme', origin: 'remote' }], ['schemaActivated', { schema: 'acme', origin: 'remote' }]])
  // encodeNotice never exceeds the limit: a payload too long goes out as the bare sender id (reload only)
  const long = encodeNotice('other', 'membershipGranted', { schema: 'acme', userId: 'u'.repeat(5000) })
  assert.equal(long, 'other')
  assert.ok(Buffer.byteLength(encodeNotice('x'.repeat(36), 'schemaCreated', { schema: 'a'.repeat(63), name: 'n'.repeat(200) })) < 2000)
})

test('the switch route emits switched (user, from, to), in the process that served it', async (t) => {
  const { bh, sequelize } = await setupBoardinghouse(t)
  await bh.createSchema('acme')
  await bh.createSchema('globex')
  await bh.grant('acme', 1)
  await bh.grant('globex', 1)
  const app = await buildTestApp({ sequelize })
  t.after(async () => { await app.close() })
  const switched: Array<BoardinghouseEventMap['switched']> = []
  app.boardinghouse.on('switched', (e) => { switched.push(e) })
  app.boardinghouse.on('switched', () => { throw new Error('listener boom') }) // does not fail the request
  app.boardinghouse.on('listenerError', () => {})
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const login = await fetch(`${base}/test/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: 1 }) })
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] as string
  const post = async (schema: string | null): Promise<{ status: number, cookie: string }> => {
    const res = await fetch(`${base}/__change_schema__`, { method: 'POST', headers: { 'content-type': 'application/json', cookie }, body: JSON.stringify({ schema }) })
    await res.text()
    return { status: res.status, cookie }
  }
  assert.equal((await post('acme')).status, 200)
  assert.equal((await post('globex')).status, 200)
  assert.equal((await post('nope')).status, 404) // refused: no event
  assert.equal((await post(null)).status, 200)
  assert.deepEqual(switched, [
    { schema: 'acme', from: null, to: 'acme', userId: '1', origin: 'local' },
    { schema: 'globex', from: 'acme', to: 'globex', userId: '1', origin: 'local' },
    { schema: null, from: 'globex', to: null, userId: '1', origin: 'local' }
  ])
})

test('domain changes emit domainAdded / domainRemoved once, local and remote, after commit; no-ops and failures emit nothing', async (t) => {
  const { a, b, heardA, heardB } = await pair(t)
  const n = { i: 0 }
  await a.createSchema('acme')
  await a.createSchema('globex')
  await sentinel(a, [heardA, heardB], n)
  heardA.length = 0
  heardB.length = 0
  await a.addDomain('acme', 'Shop.Acme.Example.')
  await a.addDomain('acme', 'shop.acme.example') // the same mapping again: no change, no event
  await assert.rejects(b.addDomain('globex', 'shop.acme.example'), { code: 'FST_BH_DOMAIN_TAKEN' })
  assert.equal(await b.removeDomain('nothing.example'), false)
  assert.equal(await b.removeDomain('shop.acme.example'), true)
  await sentinel(a, [heardA, heardB], n)
  const shape = (h: Heard): string[] => h.map(([name, p]) => `${name} ${String(p.schema)} ${String(p.host)} ${String(p.origin)}`)
  assert.deepEqual(shape(heardA), ['domainAdded acme shop.acme.example local', 'domainRemoved acme shop.acme.example remote'])
  assert.deepEqual(shape(heardB), ['domainAdded acme shop.acme.example remote', 'domainRemoved acme shop.acme.example local'])
})
