/**
 * Maintenance mode per schema (plugin/maintenance.ts, schema-admin.ts's writes, request.ts's and
 * jobs.ts's checks): the state and who set it, bad input that changes nothing, the NOTIFY inside
 * the change's transaction, 503 + Retry-After on every way a request finds its schema, the admin
 * bypass, the session keeping its selection, jobs refused (BullMQ: put back, not failed) and run
 * after the clear, the CLI, and other processes seeing it within 1 s (with a negative control).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq'
import type { FastifyInstance } from 'fastify'
import type pg from 'pg'
import { QueryTypes, type Model, type ModelStatic, type Sequelize } from 'sequelize'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import { main, type CliIO } from '../plugin/cli.js'
import { DEFAULT_MAINTENANCE_RETRY_AFTER, isMaintenanceError, resolvers } from '../plugin/index.js'
import { JOB_CONTEXT_KEY, runInJobContext } from '../plugin/jobs.js'
import { addJob, withTenant } from '../plugin/jobs/bullmq.js'
import { encodeNotice, parseNotice } from '../plugin/events.js'
import { defineExampleModels } from '../example/models/index.js'
import { buildTestApp, login } from './fixtures/app.js'
import { EXAMPLE_TENANT_MIGRATIONS, connect, hasCode, registryState, sequelizeFor, setupBoardinghouse, runCli, type CliRun, listener } from './helpers.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const REDIS = { host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null }

interface MaintenanceRow { schema_name: string, maintenance_since: Date | null, maintenance_retry_after: number | null, maintenance_by: string | null }

/** The maintenance columns of every registry row, as the database holds them. */
async function maintenanceRows (sequelize: Sequelize): Promise<MaintenanceRow[]> {
  return await sequelize.query<MaintenanceRow>(
    'SELECT schema_name, maintenance_since, maintenance_retry_after, maintenance_by FROM public.boardinghouse_schema ORDER BY 1', { type: QueryTypes.SELECT })
}

/** Everything a refused call could have changed: the registry (with the maintenance columns), memberships, ledger, schemas. */
async function state (sequelize: Sequelize): Promise<unknown> {
  return { ...(await registryState(sequelize)), maintenance: await maintenanceRows(sequelize) }
}


/** The change listener of an instance (its id is the sender id of its notices). */
function changesOf (bh: Boardinghouse): { id: string } {
  return (bh as unknown as { changes: { id: string } }).changes
}

/** Waits until `probe` holds, polling; fails after 1 s. Resolves to the time it took (ms, for a diagnostic only). */
async function within1s (probe: () => Promise<boolean>, what: string): Promise<number> {
  const start = performance.now()
  while (performance.now() - start < 1000) {
    if (await probe()) return performance.now() - start
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
  throw new Error(`${what}: not seen within 1 s`)
}

test('setMaintenance / clearMaintenance: the state, who set it, events and notices; bad input and a failed NOTIFY change nothing', async (t) => {
  const { bh, sequelize, url } = await setupBoardinghouse(t)
  for (const s of ['acme', 'globex', 'initech']) await bh.createSchema(s)
  await bh.deleteSchema('initech')
  const heard: string[] = []
  bh.on('maintenanceStarted', ({ schema, retryAfter, by, origin }) => { heard.push(`started ${schema} ${String(retryAfter)} ${by} ${origin}`) })
  bh.on('maintenanceEnded', ({ schema, by, origin }) => { heard.push(`ended ${schema} ${by} ${origin}`) })
  const notices = await listener(t, url)

  await t.test('set: in maintenance, in the table and the registry; again: retryAfter changes, since stays; clear ends it', async () => {
    assert.equal((await bh.getSchema('acme'))?.maintenance, null)
    const set = await bh.setMaintenance('acme', { retryAfter: 120 })
    assert.ok(set.since instanceof Date)
    assert.deepEqual({ ...set }, { since: set.since, retryAfter: 120, by: 'manual' })
    assert.deepEqual((await bh.getSchema('acme'))?.maintenance, set)
    assert.deepEqual((await bh.listSchemas()).map((s) => [s.schema, s.maintenance?.retryAfter ?? 'none']), [['acme', 120], ['globex', 'none']])
    const [row] = (await maintenanceRows(sequelize)).filter((r) => r.schema_name === 'acme')
    assert.equal(row?.maintenance_since?.getTime(), set.since.getTime())
    assert.deepEqual([row?.maintenance_retry_after, row?.maintenance_by], [120, 'manual'])
    const again = await bh.setMaintenance('acme', { retryAfter: 30 })
    assert.deepEqual([again.since.getTime(), again.retryAfter, again.by], [set.since.getTime(), 30, 'manual'])
    const defaulted = await bh.setMaintenance('acme')
    assert.deepEqual([defaulted.since.getTime(), defaulted.retryAfter], [set.since.getTime(), null])
    assert.equal(DEFAULT_MAINTENANCE_RETRY_AFTER, 60)
    assert.deepEqual(heard.splice(0), ['started acme 120 manual local'], 'maintenanceStarted once: the later sets only change it')
    assert.equal((await notices.take()).length, 3, 'each set sends a notice (other processes reload)')
    assert.equal(await bh.clearMaintenance('acme'), true)
    assert.equal((await bh.getSchema('acme'))?.maintenance, null)
    assert.equal(await bh.clearMaintenance('acme'), false)
    assert.deepEqual(heard.splice(0), ['ended acme manual local'])
    assert.equal((await notices.take()).length, 1, 'a clear that ends nothing sends no notice')
    // a deactivated schema may be put in maintenance (migrate migrates inactive schemas too)
    assert.equal((await bh.setMaintenance('initech', { by: 'migrate' })).by, 'migrate')
    assert.equal(await bh.clearMaintenance('initech', { by: 'migrate' }), true)
    heard.length = 0
    await notices.take()
  })

  await t.test("who set it: 'manual' outranks 'migrate'", async () => {
    // the migrator's own maintenance: it ends it itself
    const byMigrate = await bh.setMaintenance('acme', { by: 'migrate', retryAfter: 5 })
    assert.deepEqual([byMigrate.by, byMigrate.retryAfter], ['migrate', 5])
    assert.equal(await bh.clearMaintenance('acme', { by: 'migrate' }), true)
    // an operator's maintenance: the migrator neither changes nor ends it
    const manual = await bh.setMaintenance('acme', { retryAfter: 300 })
    const untouched = await bh.setMaintenance('acme', { by: 'migrate', retryAfter: 5 })
    assert.deepEqual([untouched.by, untouched.retryAfter, untouched.since.getTime()], ['manual', 300, manual.since.getTime()])
    assert.equal(await bh.clearMaintenance('acme', { by: 'migrate' }), false)
    assert.deepEqual({ ...(await bh.getSchema('acme'))?.maintenance }, { ...manual })
    assert.equal(await bh.clearMaintenance('acme'), true)
    // a leftover of a crashed migrate: an operator takes it over (since kept), or ends it
    const leftover = await bh.setMaintenance('globex', { by: 'migrate' })
    const taken = await bh.setMaintenance('globex', { by: 'manual', retryAfter: 10 })
    assert.deepEqual([taken.by, taken.retryAfter, taken.since.getTime()], ['manual', 10, leftover.since.getTime()])
    assert.equal(await bh.clearMaintenance('globex', { by: 'migrate' }), false)
    assert.equal(await bh.clearMaintenance('globex', { by: 'manual' }), true)
    await bh.setMaintenance('globex', { by: 'migrate' })
    assert.equal(await bh.clearMaintenance('globex'), true, 'a manual clear (the default) ends a migrate maintenance')
    assert.deepEqual(heard.splice(0), [
      'started acme 5 migrate local', 'ended acme migrate local',
      'started acme 300 manual local', 'ended acme manual local',
      'started globex null migrate local', 'ended globex manual local',
      'started globex null migrate local', 'ended globex migrate local'
    ])
    await notices.take()
  })

  await t.test('bad input: a 400 (or 404 for an unknown schema) and nothing changed, no notice, no event', async () => {
    await bh.setMaintenance('acme', { retryAfter: 45 })
    heard.length = 0
    await notices.take()
    const before = await state(sequelize)
    const cases: Array<[() => Promise<unknown>, string, number]> = [
      [async () => await bh.setMaintenance('acme', { retryAfter: 0 }), 'FST_BH_INVALID_INPUT', 400],
      [async () => await bh.setMaintenance('acme', { retryAfter: -1 }), 'FST_BH_INVALID_INPUT', 400],
      [async () => await bh.setMaintenance('acme', { retryAfter: 1.5 }), 'FST_BH_INVALID_INPUT', 400],
      [async () => await bh.setMaintenance('acme', { retryAfter: 86_401 }), 'FST_BH_INVALID_INPUT', 400],
      [async () => await bh.setMaintenance('acme', { retryAfter: 1e12 }), 'FST_BH_INVALID_INPUT', 400],
      [async () => await bh.setMaintenance('acme', { retryAfter: 2 ** 31 }), 'FST_BH_INVALID_INPUT', 400],
      [async () => await bh.setMaintenance('acme', { retryAfter: Number.NaN }), 'FST_BH_INVALID_INPUT', 400],
      [async () => await bh.setMaintenance('acme', { retryAfter: Number.POSITIVE_INFINITY }), 'FST_BH_INVALID_INPUT', 400],
      [async () => await bh.setMaintenance('acme', { retryAfter: '60' as never }), 'FST_BH_INVALID_INPUT', 400],
      [async () => await bh.setMaintenance('acme', { retryAfter: true as never }), 'FST_BH_INVALID_INPUT', 400],
      [async () => await bh.setMaintenance('acme', { by: 'admin' as never }), 'FST_BH_INVALID_INPUT', 400],
      [async () => await bh.setMaintenance('acme', { by: null as never }), 'FST_BH_INVALID_INPUT', 400],
      [async () => await bh.setMaintenance('acme', { retry_after: 60 } as never), 'FST_BH_INVALID_INPUT', 400],
      [async () => await bh.setMaintenance('acme', null as never), 'FST_BH_INVALID_INPUT', 400],
      [async () => await bh.setMaintenance('acme', 60 as never), 'FST_BH_INVALID_INPUT', 400],
      [async () => await bh.setMaintenance('acme', [] as never), 'FST_BH_INVALID_INPUT', 400],
      [async () => await bh.clearMaintenance('acme', { by: 'everyone' as never }), 'FST_BH_INVALID_INPUT', 400],
      [async () => await bh.clearMaintenance('acme', { retryAfter: 1 } as never), 'FST_BH_INVALID_INPUT', 400],
      [async () => await bh.clearMaintenance('acme', 'manual' as never), 'FST_BH_INVALID_INPUT', 400],
      [async () => await bh.setMaintenance('nosuch'), 'FST_BH_SCHEMA_NOT_FOUND', 404],
      [async () => await bh.clearMaintenance('nosuch'), 'FST_BH_SCHEMA_NOT_FOUND', 404],
      [async () => await bh.setMaintenance('__template__'), 'FST_BH_TEMPLATE_SCHEMA', 400],
      [async () => await bh.clearMaintenance('__template__'), 'FST_BH_TEMPLATE_SCHEMA', 400],
      [async () => await bh.setMaintenance('Acme'), 'FST_BH_INVALID_SCHEMA_NAME', 400],
      [async () => await bh.setMaintenance('public'), 'FST_BH_INVALID_SCHEMA_NAME', 400],
      [async () => await bh.clearMaintenance('ac\u0000me'), 'FST_BH_INVALID_SCHEMA_NAME', 400],
      [async () => await bh.setMaintenance(42 as never), 'FST_BH_INVALID_SCHEMA_NAME', 400]
    ]
    for (const [call, code, status] of cases) await assert.rejects(call, hasCode(code, status), String(call))
    assert.deepEqual(await state(sequelize), before)
    assert.deepEqual(await notices.take(), [])
    assert.deepEqual(heard, [])
    assert.equal((await bh.getSchema('acme'))?.maintenance?.retryAfter, 45)
  })

  await t.test('the database refuses what the library would (CHECKs on the three columns)', async () => {
    const before = await maintenanceRows(sequelize)
    for (const sql of [
      "UPDATE public.boardinghouse_schema SET maintenance_retry_after = 0 WHERE schema_name = 'acme'",
      "UPDATE public.boardinghouse_schema SET maintenance_retry_after = 86401 WHERE schema_name = 'acme'",
      "UPDATE public.boardinghouse_schema SET maintenance_by = 'admin' WHERE schema_name = 'acme'",
      "UPDATE public.boardinghouse_schema SET maintenance_by = NULL WHERE schema_name = 'acme'",
      "UPDATE public.boardinghouse_schema SET maintenance_since = NULL WHERE schema_name = 'acme'",
      "UPDATE public.boardinghouse_schema SET maintenance_by = 'manual' WHERE schema_name = 'globex'",
      "UPDATE public.boardinghouse_schema SET maintenance_retry_after = 5 WHERE schema_name = 'globex'"
    ]) {
      await assert.rejects(sequelize.query(sql), (err: { parent?: { code?: string } }) => {
        assert.equal(err.parent?.code, '23514', sql) // check_violation
        return true
      })
    }
    assert.deepEqual(await maintenanceRows(sequelize), before)
  })

  await t.test('a notice that cannot be sent rolls the change back (the NOTIFY is inside its transaction)', async () => {
    await notices.take()
    const before = await state(sequelize)
    const changes = changesOf(bh)
    const id = changes.id
    // PostgreSQL refuses a NOTIFY payload of 8000 bytes or more: every pg_notify of this instance fails
    Object.defineProperty(changes, 'id', { value: 'x'.repeat(8001), configurable: true })
    try {
      await assert.rejects(bh.setMaintenance('globex', { retryAfter: 10 }))         // would enter
      await assert.rejects(bh.setMaintenance('acme', { retryAfter: 10 }))           // would change retryAfter
      await assert.rejects(bh.clearMaintenance('acme'))                             // would end
      await assert.rejects(bh.setMaintenance('initech', { by: 'migrate' }))         // an inactive one
    } finally {
      Object.defineProperty(changes, 'id', { value: id, configurable: true })
    }
    bh.invalidate()
    assert.deepEqual(await state(sequelize), before)
    assert.deepEqual(await notices.take(), [])
    assert.deepEqual(heard, [])
    // and it works again
    assert.equal(await bh.clearMaintenance('acme'), true)
    assert.equal((await notices.take()).length, 1)
  })
})

/** The routes the request tests use, on each app: a header resolver, an anonymous one, a status route that allows maintenance. */
function addRoutes (app: FastifyInstance, sequelize: Sequelize): void {
  const Item = sequelize.models.Item as ModelStatic<Model>
  const titles = async (): Promise<unknown[]> => (await Item.findAll({ order: [['id', 'ASC']] })).map((i) => i.get('title'))
  app.get('/hdr/items', { config: { boardinghouse: { schemaFrom: resolvers.header('x-tenant') } } }, async (request) => ({ schema: request.tenant?.schema ?? null, titles: await titles() }))
  app.get('/anon/items', { config: { boardinghouse: { schemaFrom: resolvers.header('x-tenant', { anonymous: 'allow' }) } } }, async (request) => ({ schema: request.tenant?.schema ?? null, titles: await titles() }))
  app.get('/status', { config: { boardinghouse: { allowMaintenance: true } } }, async (request) => ({ schema: request.tenant?.schema ?? null, maintenance: request.boardinghouse.maintenance }))
}

interface Answer { status: number, retryAfter: string | undefined, code: string | undefined, schema: string | null | undefined }

async function ask (app: FastifyInstance, method: 'GET' | 'POST', url: string, headers: Record<string, string> = {}, payload?: object): Promise<Answer> {
  const res = await app.inject({ method, url, headers, ...(payload !== undefined ? { payload } : {}) })
  const body = res.json() as { code?: string, schema?: string | null }
  const retryAfter = res.headers['retry-after']
  return { status: res.statusCode, retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined, code: body.code, schema: body.schema }
}

const REFUSED = { status: 503, retryAfter: '90', code: 'FST_BH_SCHEMA_MAINTENANCE' }

test('requests for a schema in maintenance: 503 with Retry-After on every path, the session keeps its selection, admins by option', async (t) => {
  const { bh, sequelize } = await setupBoardinghouse(t)
  const Item = sequelize.models.Item as ModelStatic<Model>
  for (const s of ['acme', 'globex']) {
    await bh.createSchema(s)
    await bh.runInSchema(s, async () => { await Item.create({ title: `${s}:first` }) })
  }
  await bh.grant('acme', 1)
  await bh.grant('globex', 1)
  await bh.grant('acme', 2) // user 2: acme only (auto-selected)
  const app = await buildTestApp({ sequelize, listen: false, admins: [99] })
  const admins = await buildTestApp({ sequelize, listen: false, admins: [99], maintenanceBypass: 'admins' })
  const custom = await buildTestApp({ sequelize, listen: false, maintenanceBypass: (request, schema) => request.headers['x-ops'] === schema })
  for (const a of [app, admins, custom]) addRoutes(a, sequelize)
  t.after(async () => { await app.close(); await admins.close(); await custom.close() })
  const count = async (schema: string): Promise<number> => await bh.runInSchema(schema, async () => await Item.count())

  // sessions made before the maintenance: user 1 in acme, user 1 in globex, user 2 with no selection yet, admin 99 in acme
  const inAcme = await login(app, 1)
  assert.equal((await ask(app, 'POST', '/__change_schema__', { cookie: inAcme }, { schema: 'acme' })).status, 200)
  const inGlobex = await login(app, 1)
  assert.equal((await ask(app, 'POST', '/__change_schema__', { cookie: inGlobex }, { schema: 'globex' })).status, 200)
  const fresh = await login(app, 2)
  const adminSession = await login(admins, 99)
  assert.equal((await ask(admins, 'POST', '/__change_schema__', { cookie: adminSession }, { schema: 'acme' })).status, 200)
  const adminOnPlain = await login(app, 99)
  assert.equal((await ask(app, 'POST', '/__change_schema__', { cookie: adminOnPlain }, { schema: 'acme' })).status, 200)
  assert.deepEqual(await ask(app, 'GET', '/items', { cookie: inAcme }), { status: 200, retryAfter: undefined, code: undefined, schema: 'acme' })

  await bh.setMaintenance('acme', { retryAfter: 90 })

  await t.test('the session\'s selection: 503 with Retry-After, for reads and writes; nothing written', async () => {
    const before = await count('acme')
    const res = await app.inject({ url: '/items', headers: { cookie: inAcme } })
    assert.equal(res.statusCode, 503)
    assert.equal(res.headers['retry-after'], '90')
    assert.deepEqual(res.json(), { statusCode: 503, code: 'FST_BH_SCHEMA_MAINTENANCE', error: 'Service Unavailable', message: 'Schema "acme" is in maintenance; retry after 90 seconds' })
    assert.deepEqual(await ask(app, 'POST', '/items', { cookie: inAcme }, { title: 'during' }), { ...REFUSED, schema: undefined })
    assert.deepEqual(await ask(app, 'GET', '/whoami', { cookie: inAcme }), { ...REFUSED, schema: undefined })
    assert.equal(await count('acme'), before)
    // another schema is not affected
    assert.deepEqual(await ask(app, 'GET', '/items', { cookie: inGlobex }), { status: 200, retryAfter: undefined, code: undefined, schema: 'globex' })
  })

  await t.test('resolvers, schemaFrom, links and activate: 503; other schemas and the checks before it unchanged', async () => {
    const user1 = { cookie: inGlobex }
    assert.deepEqual(await ask(app, 'GET', '/hdr/items', { ...user1, 'x-tenant': 'acme' }), { ...REFUSED, schema: undefined })
    assert.deepEqual(await ask(app, 'GET', '/by-path/acme/items', user1), { ...REFUSED, schema: undefined })
    assert.deepEqual(await ask(app, 'GET', '/items?__schema=acme', user1), { ...REFUSED, schema: undefined })
    assert.deepEqual(await ask(app, 'POST', '/activate', user1, { schema: 'acme' }), { ...REFUSED, schema: undefined })
    assert.deepEqual(await ask(app, 'GET', '/anon/items', { 'x-tenant': 'acme' }), { ...REFUSED, schema: undefined }, 'an anonymous request a resolver allows')
    assert.equal((await ask(app, 'GET', '/hdr/items', { ...user1, 'x-tenant': 'globex' })).status, 200)
    assert.equal((await ask(app, 'GET', '/items?__schema=globex', user1)).schema, 'globex')
    // the refusals that do not pass with time come first
    await bh.setMaintenance('globex', { retryAfter: 90 })
    try {
      const user2 = { cookie: fresh }
      assert.equal((await ask(app, 'GET', '/hdr/items', { ...user2, 'x-tenant': 'globex' })).code, 'FST_BH_FORBIDDEN_SCHEMA')
      assert.equal((await ask(app, 'GET', '/hdr/items', { 'x-tenant': 'globex' })).code, 'FST_BH_UNAUTHENTICATED')
      assert.equal((await ask(app, 'GET', '/hdr/items', { ...user2, 'x-tenant': 'nosuch' })).code, 'FST_BH_SCHEMA_NOT_FOUND')
      assert.equal((await ask(app, 'GET', '/hdr/items', { ...user2, 'x-tenant': '__template__' })).code, 'FST_BH_TEMPLATE_SCHEMA')
      assert.equal((await ask(app, 'POST', '/activate', user2, { schema: 'globex' })).code, 'FST_BH_FORBIDDEN_SCHEMA')
      await bh.deleteSchema('globex')
      assert.equal((await ask(app, 'GET', '/hdr/items', { ...user1, 'x-tenant': 'globex' })).code, 'FST_BH_SCHEMA_INACTIVE')
      await bh.activateSchema('globex')
    } finally {
      await bh.clearMaintenance('globex')
    }
  })

  await t.test('the switch route: into a schema in maintenance 503 (selection unchanged); away from one, or deselecting, works', async () => {
    const res = await app.inject({ method: 'POST', url: '/__change_schema__', headers: { cookie: inGlobex }, payload: { schema: 'acme' } })
    assert.equal(res.statusCode, 503)
    assert.equal(res.headers['retry-after'], '90')
    assert.equal(res.json().code, 'FST_BH_SCHEMA_MAINTENANCE')
    assert.equal((await ask(app, 'GET', '/items', { cookie: inGlobex })).schema, 'globex', 'the refused switch changed nothing')
    // a session stuck in acme may leave: to globex, and back to nothing
    const leaving = await login(app, 1)
    await bh.clearMaintenance('acme')
    assert.equal((await ask(app, 'POST', '/__change_schema__', { cookie: leaving }, { schema: 'acme' })).status, 200)
    await bh.setMaintenance('acme', { retryAfter: 90 })
    assert.deepEqual(await ask(app, 'GET', '/items', { cookie: leaving }), { ...REFUSED, schema: undefined })
    assert.deepEqual(await ask(app, 'POST', '/__change_schema__', { cookie: leaving }, { schema: 'globex' }), { status: 200, retryAfter: undefined, code: undefined, schema: 'globex' })
    assert.equal((await ask(app, 'GET', '/items', { cookie: leaving })).schema, 'globex')
    assert.equal((await ask(app, 'POST', '/__change_schema__', { cookie: inAcme }, { schema: null })).status, 200)
    assert.equal((await app.inject({ url: '/status', headers: { cookie: inAcme } })).json().schema, null)
    assert.equal((await ask(app, 'POST', '/__change_schema__', { cookie: inAcme }, { schema: 'acme' })).status, 503)
  })

  await t.test('allowMaintenance routes run in the schema and see its state; maintenanceBypass lets admins (or whom a function says) in', async () => {
    const status = await app.inject({ url: '/status', headers: { cookie: adminOnPlain } })
    assert.equal(status.statusCode, 200)
    const body = status.json<{ schema: string | null, maintenance: { since: string, retryAfter: number | null, by: string } | null }>()
    assert.equal(typeof body.maintenance?.since, 'string')
    assert.deepEqual({ ...body, maintenance: { ...body.maintenance, since: 'x' } }, { schema: 'acme', maintenance: { since: 'x', retryAfter: 90, by: 'manual' } })
    // an admin on the app without the option: refused like anyone
    assert.deepEqual(await ask(app, 'GET', '/items', { cookie: adminOnPlain }), { ...REFUSED, schema: undefined })
    assert.deepEqual(await ask(app, 'GET', '/hdr/items', { cookie: adminOnPlain, 'x-tenant': 'acme' }), { ...REFUSED, schema: undefined })
    // with maintenanceBypass: 'admins', admins get in, others do not
    assert.deepEqual(await ask(admins, 'GET', '/items', { cookie: adminSession }), { status: 200, retryAfter: undefined, code: undefined, schema: 'acme' })
    assert.equal((await ask(admins, 'GET', '/hdr/items', { cookie: adminSession, 'x-tenant': 'acme' })).status, 200)
    assert.equal((await ask(admins, 'POST', '/activate', { cookie: adminSession }, { schema: 'acme' })).status, 200)
    const seen = (await admins.inject({ url: '/status', headers: { cookie: adminSession } })).json() as { maintenance: { retryAfter: number } | null }
    assert.equal(seen.maintenance?.retryAfter, 90)
    const member = await login(admins, 1)
    assert.deepEqual(await ask(admins, 'GET', '/hdr/items', { cookie: member, 'x-tenant': 'acme' }), { ...REFUSED, schema: undefined })
    assert.deepEqual(await ask(admins, 'POST', '/__change_schema__', { cookie: member }, { schema: 'acme' }), { ...REFUSED, schema: undefined })
    // a function: only `true` lets a request through
    const ops = await login(custom, 1)
    assert.equal((await ask(custom, 'GET', '/hdr/items', { cookie: ops, 'x-tenant': 'acme', 'x-ops': 'acme' })).status, 200)
    assert.deepEqual(await ask(custom, 'GET', '/hdr/items', { cookie: ops, 'x-tenant': 'acme', 'x-ops': 'globex' }), { ...REFUSED, schema: undefined })
    assert.deepEqual(await ask(custom, 'GET', '/hdr/items', { cookie: ops, 'x-tenant': 'acme' }), { ...REFUSED, schema: undefined })
    // on a schema not in maintenance, request.boardinghouse.maintenance is null
    assert.deepEqual((await app.inject({ url: '/status', headers: { cookie: inGlobex } })).json(), { schema: 'globex', maintenance: null })
  })

  await t.test('the option is validated', async () => {
    for (const bad of ['all', 'admin', 42, true, null]) {
      await assert.rejects(buildTestApp({ sequelize, listen: false, maintenanceBypass: bad as never }), hasCode('FST_BH_INVALID_OPTION'), String(bad))
    }
  })

  await t.test('no database query per request: the registry snapshot answers', async () => {
    const requests: Array<[FastifyInstance, string, Record<string, string>, number]> = [
      [app, '/whoami', { cookie: adminOnPlain }, 503],
      [app, '/hdr/items', { cookie: inGlobex, 'x-tenant': 'acme' }, 503],
      [app, '/status', { cookie: adminOnPlain }, 200],
      [admins, '/whoami', { cookie: adminSession }, 200],
      [custom, '/whoami', { cookie: await login(custom, 1) }, 200]
    ]
    for (const [a, url, headers] of requests) await a.inject({ url, headers })
    let queries = 0
    sequelize.addHook('beforeQuery', 'count-maintenance', () => { queries++ })
    try {
      for (let i = 0; i < 5; i++) {
        for (const [a, url, headers, status] of requests) assert.equal((await a.inject({ url, headers })).statusCode, status, url)
      }
    } finally {
      sequelize.removeHook('beforeQuery', 'count-maintenance')
    }
    t.diagnostic(`${requests.length * 5} requests, ${queries} queries`)
    assert.equal(queries, 0)
  })

  await t.test('auto-selection still stores the only schema; once cleared, every session is back where it was', async () => {
    assert.deepEqual(await ask(app, 'GET', '/items', { cookie: fresh }), { ...REFUSED, schema: undefined })
    assert.equal(await bh.clearMaintenance('acme'), true)
    assert.deepEqual(await ask(app, 'GET', '/items', { cookie: inGlobex }), { status: 200, retryAfter: undefined, code: undefined, schema: 'globex' })
    assert.deepEqual(await ask(app, 'GET', '/items', { cookie: adminOnPlain }), { status: 200, retryAfter: undefined, code: undefined, schema: 'acme' })
    // a POST never auto-selects: that it lands in acme proves the GET above stored the selection
    const before = await count('acme')
    assert.equal((await ask(app, 'POST', '/items', { cookie: fresh }, { title: 'after' })).status, 201)
    assert.equal(await count('acme'), before + 1)
    assert.deepEqual(await ask(app, 'GET', '/hdr/items', { cookie: inGlobex, 'x-tenant': 'acme' }), { status: 200, retryAfter: undefined, code: undefined, schema: 'acme' })
    assert.equal((await ask(app, 'POST', '/__change_schema__', { cookie: inGlobex }, { schema: 'acme' })).status, 200)
    assert.deepEqual((await app.inject({ url: '/status', headers: { cookie: inGlobex } })).json(), { schema: 'acme', maintenance: null })
  })

  await t.test('negative control: the session of a deactivated schema is deselected; one in maintenance is not', async () => {
    const session = await login(app, 1)
    assert.equal((await ask(app, 'POST', '/__change_schema__', { cookie: session }, { schema: 'acme' })).status, 200)
    await bh.setMaintenance('acme')
    const refused = await ask(app, 'GET', '/items', { cookie: session })
    assert.deepEqual(refused, { status: 503, retryAfter: String(DEFAULT_MAINTENANCE_RETRY_AFTER), code: 'FST_BH_SCHEMA_MAINTENANCE', schema: undefined })
    await bh.deleteSchema('acme')
    await bh.clearMaintenance('acme')
    const schemaOf = async (): Promise<unknown> => (await app.inject({ url: '/whoami', headers: { cookie: session } })).json().tenant
    assert.equal(await schemaOf(), null) // deactivated: dropped from the session
    await bh.activateSchema('acme')
    assert.equal(await schemaOf(), null, 'a deselection is not undone by reactivating')
  })
})

test('jobs: refused (retryably) while the schema is in maintenance, run after the clear; runInSchema is not affected', async (t) => {
  const { bh, sequelize } = await setupBoardinghouse(t)
  const Item = sequelize.models.Item as ModelStatic<Model>
  for (const s of ['acme', 'globex']) await bh.createSchema(s)
  await bh.grant('acme', 1)
  const ran: string[] = []
  const write = async (): Promise<string | null> => { ran.push(String(bh.currentSchema())); await Item.create({ title: 'job' }); return bh.currentSchema() }
  const count = async (): Promise<number> => await bh.runInSchema('acme', async () => await Item.count())

  await t.test('runInJobContext', async () => {
    await bh.setMaintenance('acme', { retryAfter: 7 })
    await assert.rejects(bh.runInJobContext({ schema: 'acme', userId: 1 }, write), (err: unknown) => {
      assert.ok(isMaintenanceError(err))
      assert.deepEqual([err.code, err.statusCode, err.schema, err.retryAfter], ['FST_BH_SCHEMA_MAINTENANCE', 503, 'acme', 7])
      return true
    })
    await assert.rejects(runInJobContext(bh, { schema: 'acme' }, write), hasCode('FST_BH_SCHEMA_MAINTENANCE', 503))
    // the refusals that do not pass with time come first
    await assert.rejects(bh.runInJobContext({ schema: 'acme', userId: 2 }, write), hasCode('FST_BH_FORBIDDEN_SCHEMA', 403))
    assert.deepEqual(ran, [])
    assert.equal(await count(), 0)
    // another schema, and runInSchema (scripts, migrations) go on
    assert.equal(await bh.runInJobContext({ schema: 'globex' }, write), 'globex')
    assert.equal(await bh.runInSchema('acme', async () => await Item.count()), 0)
    await bh.clearMaintenance('acme')
    assert.equal(await bh.runInJobContext({ schema: 'acme', userId: 1 }, write), 'acme')
    assert.equal(await count(), 1)
    ran.length = 0
  })

  await t.test('BullMQ: the job is put back (not failed, no attempt used) and runs once the maintenance is over', async (t) => {
    const prefix = `bhtest-${randomBytes(6).toString('hex')}`
    const queue = new Queue('maintenance', { connection: REDIS, prefix })
    const failed: Array<{ id: string | undefined, code: unknown, unrecoverable: boolean }> = []
    const completed: Array<{ id: string | undefined, result: unknown }> = []
    const worker = new Worker('maintenance', withTenant(bh, async () => await write()), { connection: REDIS, prefix, autorun: false })
    worker.on('failed', (job, err) => { failed.push({ id: job?.id, code: (err as { code?: unknown }).code, unrecoverable: err instanceof UnrecoverableError }) })
    worker.on('completed', (job, result) => { completed.push({ id: job.id, result }) })
    t.after(async () => { await worker.close(); await queue.obliterate({ force: true }); await queue.close() })
    const before = await count()
    await bh.setMaintenance('acme', { retryAfter: 1 })
    const job = await bh.runInSchema('acme', async () => await addJob(queue, 'write', {}), { userId: 1 })
    // negative control: a refusal that does not pass with time still fails for good
    const forged = await queue.add('write', { [JOB_CONTEXT_KEY]: { schema: 'acme', userId: 2 } }, { attempts: 3 })
    void worker.run()
    const deadline = Date.now() + 10_000
    let seenDelayed = false
    while (Date.now() < deadline && !(seenDelayed && failed.length > 0)) {
      seenDelayed ||= await (await queue.getJob(job.id as string))?.getState() === 'delayed'
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    assert.ok(seenDelayed, 'the job went back to the delayed set for the Retry-After')
    assert.deepEqual(failed, [{ id: forged.id, code: 'FST_BH_FORBIDDEN_SCHEMA', unrecoverable: true }])
    assert.deepEqual(ran, [])
    assert.equal(await count(), before)
    // still in maintenance after the delay: put back again, never failed
    await new Promise((resolve) => setTimeout(resolve, 1500))
    assert.deepEqual(ran, [])
    assert.equal(failed.length, 1)
    assert.equal((await queue.getJob(job.id as string))?.attemptsMade, 0)
    await bh.clearMaintenance('acme')
    while (Date.now() < deadline + 10_000 && completed.length === 0) await new Promise((resolve) => setTimeout(resolve, 20))
    assert.deepEqual(completed, [{ id: job.id, result: 'acme' }])
    assert.deepEqual(ran, ['acme'])
    assert.equal(await count(), before + 1)
    assert.equal(failed.length, 1)
  })

  await t.test('BullMQ: a processor called without a worker token rethrows the retryable error, not an UnrecoverableError', async () => {
    await bh.setMaintenance('acme')
    const ranBefore = ran.length
    try {
      const processor = withTenant(bh, async () => await write())
      const job = { data: { [JOB_CONTEXT_KEY]: { schema: 'acme' } }, moveToDelayed: async () => { throw new Error('not called without a token') } } as unknown as Job
      await assert.rejects(processor(job), (err: unknown) => {
        assert.equal(err instanceof UnrecoverableError, false)
        assert.ok(isMaintenanceError(err))
        assert.equal(err.retryAfter, DEFAULT_MAINTENANCE_RETRY_AFTER)
        return true
      })
      assert.equal(ran.length, ranBefore, 'the processor did not run')
    } finally {
      await bh.clearMaintenance('acme')
    }
  })
})

test('the CLI: schema maintenance on / off, schema list shows it; usage errors exit 2 before connecting', async (t) => {
  const { bh, url } = await setupBoardinghouse(t)
  await bh.createSchema('acme', { name: 'Acme Inc.' })
  await bh.createSchema('globex')
  const env = { ...process.env, DATABASE_URL: url }
  const cli = async (...args: string[]): Promise<CliRun> => await runCli(env, ...args)

  await t.test('on, list, list --json, off', async () => {
    let r = await cli('schema', 'maintenance', 'on', 'acme', '--retry-after', '120')
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^schema acme in maintenance since \d{4}-\d\d-\d\dT[\d:.]+Z \(retry after 120 s\)\n$/)
    r = await cli('schema', 'list')
    assert.match(r.stdout, /^acme\tAcme Inc\.\t\(maintenance since \S+, retry after 120 s, by manual\)\nglobex\tglobex\n$/)
    r = await cli('schema', 'list', '--json')
    const list = JSON.parse(r.stdout) as Array<{ schema: string, maintenance: { since: string, retryAfter: number | null, by: string } | null }>
    assert.deepEqual(list.map((s) => [s.schema, s.maintenance?.retryAfter, s.maintenance?.by]), [['acme', 120, 'manual'], ['globex', undefined, undefined]])
    assert.equal(list[1]?.maintenance, null)
    bh.invalidate() // this process does not listen: reload to see what the CLI did
    assert.equal(new Date(list[0]?.maintenance?.since ?? '').getTime(), (await bh.getSchema('acme'))?.maintenance?.since.getTime())
    r = await cli('schema', 'maintenance', 'on', 'globex')
    assert.match(r.stdout, /\(retry after 60 s\)\n$/)
    assert.match((await cli('schema', 'list', '--json')).stdout, /"schema":"globex","name":"globex","isActive":true,"createdAt":"[^"]+","maintenance":\{"since":"[^"]+","retryAfter":null,"by":"manual"\}/)
    assert.equal((await cli('schema', 'maintenance', 'off', 'globex')).stdout, 'schema globex out of maintenance\n')
    assert.equal((await cli('schema', 'maintenance', 'off', 'globex')).stdout, 'schema globex was not in maintenance\n')
    // off ends a migrate maintenance too (a crashed migrator's leftover)
    await bh.setMaintenance('globex', { by: 'migrate' })
    assert.equal((await cli('schema', 'maintenance', 'off', 'globex')).stdout, 'schema globex out of maintenance\n')
    assert.equal((await cli('schema', 'maintenance', 'off', 'acme')).code, 0)
    assert.equal((await cli('schema', 'list')).stdout, 'acme\tAcme Inc.\nglobex\tglobex\n')
  })

  await t.test('failures while running: exit 1 with one line, nothing changed', async () => {
    for (const [args, code] of [[['on', 'nosuch'], 'FST_BH_SCHEMA_NOT_FOUND'], [['off', 'nosuch'], 'FST_BH_SCHEMA_NOT_FOUND'], [['on', '__template__'], 'FST_BH_TEMPLATE_SCHEMA'], [['on', 'Acme'], 'FST_BH_INVALID_SCHEMA_NAME']] as const) {
      const r = await cli('schema', 'maintenance', ...args)
      assert.equal(r.code, 1, r.stderr)
      assert.equal(r.stdout, '')
      assert.match(r.stderr, new RegExp(`^boardinghouse: ${code}: [^\\n]+\\n$`))
    }
    bh.invalidate()
    assert.deepEqual((await bh.listSchemas()).map((s) => s.maintenance), [null, null])
  })

  await t.test('usage errors: exit 2 with one line, before connecting (the database URL goes nowhere)', async () => {
    const run = async (...args: string[]): Promise<{ code: number, out: string, err: string }> => {
      let out = ''
      let err = ''
      const io: CliIO = { out: (s) => { out += s }, err: (s) => { err += s }, isTTY: false, env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' } }
      const code = await main(['--config', 'example/boardinghouse.config.ts', 'schema', 'maintenance', ...args], io)
      return { code, out, err }
    }
    const cases: Array<[string[], RegExp]> = [
      [['on'], /missing required argument 'name'/],
      [['off'], /missing required argument 'name'/],
      [['on', 'acme', 'globex'], /too many arguments/],
      [['off', 'acme', 'extra'], /too many arguments/],
      [['on', 'acme', '--retry-after'], /argument missing/],
      [['on', 'acme', '--retry-after', '0'], /^boardinghouse: FST_BH_INVALID_OPTION: .*--retry-after must be a whole number of seconds from 1 to 86400, not "0"/],
      [['on', 'acme', '--retry-after', '-5'], /--retry-after must be a whole number/],
      [['on', 'acme', '--retry-after', '1.5'], /--retry-after must be a whole number/],
      [['on', 'acme', '--retry-after', '86401'], /--retry-after must be a whole number/],
      [['on', 'acme', '--retry-after', '1e3'], /--retry-after must be a whole number/],
      [['on', 'acme', '--retry-after', 'soon'], /--retry-after must be a whole number/],
      [['on', 'acme', '--nope'], /unknown option '--nope'/],
      [['off', 'acme', '--retry-after', '5'], /unknown option '--retry-after'/],
      [['toggle', 'acme'], /unknown command 'toggle'/]
    ]
    for (const [args, message] of cases) {
      const r = await run(...args)
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`)
      assert.equal(r.out, '')
      const lines = r.err.trim().split('\n')
      assert.equal(lines.length, 1, r.err)
      assert.match(lines[0] ?? '', /^boardinghouse: /)
      assert.match(lines[0] ?? '', message)
    }
    // the control: a valid command does try the database (and fails there: exit 1)
    const reached = await run('on', 'acme')
    assert.equal(reached.code, 1, reached.err)
  })
})

test('seen by every listening process within 1 s (the CLI in another process, and two instances); a process that does not listen stays stale', async (t) => {
  const { bh: a, url } = await setupBoardinghouse(t)
  await a.createSchema('acme')
  await a.grant('acme', 1)
  // process B: a Fastify app on its own Sequelize instance, listening
  const other = sequelizeFor(t, url)
  defineExampleModels(other)
  const b = new Boardinghouse({ sequelize: other, tenantModels: ['Item'], tenantMigrations: EXAMPLE_TENANT_MIGRATIONS })
  const appB = await buildTestApp({ sequelize: other })
  addRoutes(appB, other)
  // negative control: an app on a third instance, not listening
  const third = sequelizeFor(t, url)
  defineExampleModels(third)
  const deaf = await buildTestApp({ sequelize: third, listen: false })
  addRoutes(deaf, third)
  await a.listen()
  t.after(async () => { await a.close(); await b.close(); await appB.close(); await deaf.close() })
  const heardB: string[] = []
  appB.boardinghouse.on('maintenanceStarted', ({ schema, retryAfter, by, origin }) => { heardB.push(`started ${schema} ${String(retryAfter)} ${by} ${origin}`) })
  appB.boardinghouse.on('maintenanceEnded', ({ schema, by, origin }) => { heardB.push(`ended ${schema} ${by} ${origin}`) })
  const status = async (app: FastifyInstance): Promise<number> => (await app.inject({ url: '/hdr/items', headers: { 'x-tenant': 'acme', cookie: await login(app, 1) } })).statusCode
  assert.equal(await status(appB), 200)
  assert.equal(await status(deaf), 200) // both have the registry cached now

  await t.test('two instances: set in A, B answers 503 within 1 s; clear, 200 again', async () => {
    await a.setMaintenance('acme', { retryAfter: 30 })
    t.diagnostic(`setMaintenance seen by the other instance after ${(await within1s(async () => await status(appB) === 503, 'set')).toFixed(1)} ms`)
    assert.equal((await b.getSchema('acme'))?.maintenance?.retryAfter, 30)
    assert.equal(await status(deaf), 200, 'the instance without listen() still has the old snapshot')
    await a.clearMaintenance('acme')
    t.diagnostic(`clearMaintenance seen after ${(await within1s(async () => await status(appB) === 200, 'clear')).toFixed(1)} ms`)
    assert.deepEqual(heardB, ['started acme 30 manual remote', 'ended acme manual remote'])
  })

  await t.test('another OS process (the CLI): seen within 1 s of its exit', async () => {
    const cli = async (...args: string[]): Promise<number | null> => await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'plugin/cli.ts', '--config', 'example/boardinghouse.config.ts', ...args], { cwd: ROOT, env: { ...process.env, DATABASE_URL: url }, stdio: 'ignore' })
      child.on('error', reject)
      child.on('close', resolve)
    })
    assert.equal(await cli('schema', 'maintenance', 'on', 'acme', '--retry-after', '15'), 0)
    t.diagnostic(`the CLI's maintenance on seen after ${(await within1s(async () => await status(appB) === 503, 'cli on')).toFixed(1)} ms`)
    const res = await appB.inject({ url: '/hdr/items', headers: { 'x-tenant': 'acme', cookie: await login(appB, 1) } })
    assert.equal(res.headers['retry-after'], '15')
    assert.equal(await status(deaf), 200, 'negative control: still stale')
    // the control is stale, not broken: told to reload, it sees the maintenance (and then stays at that)
    deaf.boardinghouse.invalidate()
    assert.equal(await status(deaf), 503)
    assert.equal(await cli('schema', 'maintenance', 'off', 'acme'), 0)
    t.diagnostic(`the CLI's maintenance off seen after ${(await within1s(async () => await status(appB) === 200, 'cli off')).toFixed(1)} ms`)
    assert.equal(await status(deaf), 503, 'negative control: the end of the maintenance not seen either')
  })
})

test('the notices of maintenance events: well-formed ones carry their event, malformed ones none (they still reload)', () => {
  for (const key of [{ schema: 'acme', retryAfter: 30, by: 'manual' }, { schema: 'acme', retryAfter: null, by: 'migrate' }] as const) {
    assert.deepEqual(parseNotice(encodeNotice('p1', 'maintenanceStarted', key)).event, { sender: 'p1', kind: 'maintenanceStarted', key })
  }
  assert.deepEqual(parseNotice(encodeNotice('p1', 'maintenanceEnded', { schema: 'acme', by: 'migrate' })).event, { sender: 'p1', kind: 'maintenanceEnded', key: { schema: 'acme', by: 'migrate' } })
  for (const key of [
    { schema: 'acme', retryAfter: 0, by: 'manual' }, { schema: 'acme', retryAfter: 1.5, by: 'manual' }, { schema: 'acme', retryAfter: '30', by: 'manual' },
    { schema: 'acme', retryAfter: 30, by: 'admin' }, { schema: 'acme', retryAfter: 30 }, { schema: 'acme', retryAfter: 30, by: 'manual', extra: 1 }
  ]) {
    const parsed = parseNotice(JSON.stringify({ v: 1, id: 'p1', kind: 'maintenanceStarted', key }))
    assert.deepEqual(parsed, { sender: 'p1', event: null }, JSON.stringify(key))
  }
  assert.deepEqual(parseNotice(JSON.stringify({ v: 1, id: 'p1', kind: 'maintenanceEnded', key: { schema: 'acme' } })), { sender: 'p1', event: null })
})
