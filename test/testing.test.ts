/**
 * fastify-boardinghouse/testing: the schema fixture, requests as a user in a schema (with
 * @fastify/session and @fastify/secure-session, and how the identity header is guarded), and
 * checkIsolation against small apps that each leak in their own way, plus one that does not.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { AssertionError } from 'node:assert'
import { Writable } from 'node:stream'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import fastifySecureSession from '@fastify/secure-session'
import { DataTypes, QueryTypes, type Model, type ModelStatic, type Sequelize } from 'sequelize'
import boardinghouse, { resolvers, type BoardinghousePluginOptions } from '../plugin/index.js'
import { IsolationError, TEST_IDENTITY_HEADER, checkIsolation, createSchemaFixture, installTestKit, type IsolationProblem, type TestKit } from '../plugin/testing/index.js'
import { hasCode, registryState, setupBoardinghouse } from './helpers.js'

// One database for the file (dropped at its end), so that each test's own teardowns (`t.after`,
// which the kit's fixtures use) run while it still exists. Every test leaves it as it found it.
const { bh, sequelize } = await setupBoardinghouse({ after })
// a shared model (not in tenantModels: pinned to public by the library), defined before any app registers the plugin
const Plan = sequelize.define('Plan', { title: DataTypes.STRING }, { tableName: 'plans', timestamps: false })
await sequelize.query('CREATE TABLE public.plans (id serial PRIMARY KEY, title text)')

type T = { after: (fn: () => Promise<void>) => void }
type Kind = 'session' | 'secure-session' | 'none'
type ItemModel = ModelStatic<Model<{ id: number, title: string }, { title: string }>>

function itemModel (sequelize: Sequelize): ItemModel {
  return sequelize.models.Item as unknown as ItemModel
}

/** A value of the request's session, whichever plugin provides it. */
function sessionValue (request: FastifyRequest, key: string): unknown {
  const session = (request as unknown as { session?: { get: (k: string) => unknown } }).session
  return session?.get(key)
}

/** A small app: a session plugin (or none), the plugin, and routes that say who and where the request is. */
async function buildApp (t: T, sequelize: Sequelize, kind: Kind, plugin: Partial<BoardinghousePluginOptions> = {}, logs?: string[]): Promise<FastifyInstance> {
  const app = Fastify(logs === undefined
    ? {}
    : { logger: { level: 'warn', stream: new Writable({ write (chunk: Buffer, _enc, cb) { logs.push(chunk.toString()); cb() } }) } })
  t.after(async () => { await app.close() })
  if (kind === 'session') {
    await app.register(fastifyCookie)
    await app.register(fastifySession, { secret: 'a test secret of more than 32 chars', cookie: { secure: false }, saveUninitialized: false })
  }
  if (kind === 'secure-session') await app.register(fastifySecureSession, { key: Buffer.alloc(32, 9), cookie: { path: '/', secure: false } })
  await app.register(boardinghouse, {
    sequelize,
    tenantModels: ['Item'],
    listen: false,
    isAdmin: (request) => sessionValue(request, 'isAdmin') === true, // the app's own admin flag, in its session
    ...(kind === 'none' ? { sessionSchema: false, changeSchemaRoute: false } : {}),
    ...plugin
  })
  const Item = itemModel(sequelize)
  app.get('/whoami', async (request) => ({
    userId: request.boardinghouse.userId,
    isAdmin: request.boardinghouse.isAdmin,
    tenant: request.tenant?.schema ?? null,
    sessionUserId: sessionValue(request, 'userId') ?? null
  }))
  app.get('/items', async () => (await Item.findAll({ order: [['id', 'ASC']] })).map((i) => i.get('title')))
  app.post<{ Body: { title: string } }>('/items', async (request) => (await Item.create({ title: request.body.title })).get('title'))
  return app
}

async function titlesIn (sequelize: Sequelize, bh: { runInSchema: <R>(s: string, fn: () => Promise<R>) => Promise<R> }, schema: string): Promise<string[]> {
  return (await bh.runInSchema(schema, async () => await itemModel(sequelize).findAll({ order: [['id', 'ASC']] }))).map((i) => i.get('title') as string)
}

/** The cookie header that sends back what a response set. */
function cookieOf (res: { cookies: Array<{ name: string, value: string }> }): string {
  return res.cookies.map((c) => `${c.name}=${encodeURIComponent(c.value)}`).join('; ')
}

// ---------------------------------------------------------------- the schema fixture

test('createSchemaFixture: a fresh schema per test with its members, dropped when the test ends (node:test t, onTestFinished, teardown, asyncDispose, dropSchemas)', async (t) => {
  const before = await registryState(sequelize)
  const fixture = createSchemaFixture(bh)
  const seen: string[] = []
  await t.test('a test using the fixture', async (t2) => {
    const s = await fixture.schema({ t: t2, members: [42, 43], name: 'Test Co' })
    assert.match(s.schema, /^test_[a-z0-9]+_1$/)
    assert.equal(s.name, 'Test Co')
    assert.deepEqual(await bh.membersOf(s.schema), ['42', '43'])
    assert.equal((await bh.getSchema(s.schema))?.isActive, true)
    assert.deepEqual(await titlesIn(sequelize, bh, s.schema), [], 'a fresh clone: its tables exist, empty')
    const more = await fixture.schemas(2, { t: t2, members: [7] })
    seen.push(s.schema, ...more.map((m) => m.schema))
    assert.equal(new Set(seen).size, 3)
    assert.deepEqual(await bh.membersOf(more[1]?.schema as string), ['7'])
    assert.deepEqual([...fixture.live].sort(), [...seen].sort())
  })
  assert.deepEqual(await registryState(sequelize), before, 'dropped when the test ended: no schema, registry row, membership or ledger row left')
  assert.deepEqual(fixture.live, [])

  // the teardowns of other runners: Vitest's test context (onTestFinished), tap's t (teardown)
  const finished: Array<() => Promise<void>> = []
  const vitestLike = { onTestFinished: (fn: () => Promise<void>) => { finished.push(fn) } }
  const tapLike = { teardown: (fn: () => Promise<void>) => { finished.push(fn) } }
  const v = await fixture.schema({ t: vitestLike })
  const p = await fixture.schema({ t: tapLike })
  assert.equal(finished.length, 2)
  assert.notEqual(await bh.getSchema(v.schema), null)
  assert.notEqual(await bh.getSchema(p.schema), null)
  for (const fn of finished) await fn()
  assert.equal(await bh.getSchema(v.schema), null)
  assert.equal(await bh.getSchema(p.schema), null)

  // `await using` (its asyncDispose), drop twice, Jest's afterEach(dropSchemas), a schema the test dropped itself
  const d = await fixture.schema()
  await d[Symbol.asyncDispose]()
  await d.drop()
  assert.equal(await bh.getSchema(d.schema), null)
  await fixture.schema()
  await fixture.schema()
  assert.equal(fixture.live.length, 2)
  await fixture.dropSchemas()
  assert.deepEqual(fixture.live, [])
  const self = await fixture.schema()
  await bh.deleteSchema(self.schema, { drop: true })
  await self.drop()
  await fixture[Symbol.asyncDispose]()
  assert.deepEqual(await registryState(sequelize), before)
})

test('createSchemaFixture: bad input is refused, and a failed grant leaves no schema behind', async (t) => {
  const before = await registryState(sequelize)
  assert.throws(() => createSchemaFixture(bh, { prefix: 'Bad-Prefix' }), hasCode('FST_BH_INVALID_OPTION'))
  assert.throws(() => createSchemaFixture(bh, { prefix: 'pg_x' }), hasCode('FST_BH_INVALID_OPTION'))
  assert.throws(() => createSchemaFixture(bh, { prefix: 'x'.repeat(21) }), hasCode('FST_BH_INVALID_OPTION'))
  const fixture = createSchemaFixture(bh, { prefix: 'mine' })
  await assert.rejects(fixture.schema({ t: {} as never }), hasCode('FST_BH_INVALID_OPTION'))
  await assert.rejects(fixture.schemas(0), hasCode('FST_BH_INVALID_OPTION'))
  await assert.rejects(fixture.schema({ members: [1, 'not a number'] }), hasCode('FST_BH_INVALID_USER_ID', 400))
  await assert.rejects(fixture.schemas(3, { members: ['nope'] }), hasCode('FST_BH_INVALID_USER_ID', 400))
  assert.deepEqual(fixture.live, [])
  assert.deepEqual(await registryState(sequelize), before, 'the schemas created before the refused grant were dropped')
  const ok = await fixture.schema()
  assert.match(ok.schema, /^mine_/)
  await ok.drop()
})

// ---------------------------------------------------------------- requests as a user in a schema

for (const kind of ['session', 'secure-session'] as const) {
  test(`@fastify/${kind}: kit.headers logs the user in through the session and selects the schema, with the library's usual checks`, async (t) => {
    const app = await buildApp(t, sequelize, kind)
    const kit = await installTestKit(app)
    t.after(async () => { await kit.cleanup() })
    const mine = await kit.schema({ t, members: [42] })
    const other = await kit.schema({ t, members: [43] })
    const Item = itemModel(sequelize)
    for (const s of [mine, other]) await bh.runInSchema(s.schema, async () => { await Item.create({ title: `${s.schema} item` }) })
    const as42 = kit.headers({ userId: 42, schema: mine.schema })

    const who = await app.inject({ url: '/whoami', headers: as42 })
    assert.deepEqual(who.json(), { userId: 42, isAdmin: false, tenant: mine.schema, sessionUserId: 42 }, 'the app sees the user in its session, as after its login route')
    assert.deepEqual((await app.inject({ url: '/items', headers: as42 })).json(), [`${mine.schema} item`])
    const posted = await kit.inject({ userId: 42, schema: mine.schema }, { method: 'POST', url: '/items', payload: { title: 'posted' } })
    assert.equal(posted.statusCode, 200, posted.body)
    assert.deepEqual(await titlesIn(sequelize, bh, mine.schema), [`${mine.schema} item`, 'posted'])
    assert.deepEqual(await titlesIn(sequelize, bh, other.schema), [`${other.schema} item`])

    // the session cookie the response set keeps the user logged in, as a login route's would
    const again = await app.inject({ url: '/whoami', headers: { cookie: cookieOf(who) } })
    assert.equal(again.json().userId, 42)

    // not a bypass: membership, existence and activity are checked as for the switch route
    const foreign = await kit.inject({ userId: 42, schema: other.schema }, '/items')
    assert.equal(foreign.statusCode, 403)
    assert.equal(foreign.json().code, 'FST_BH_FORBIDDEN_SCHEMA')
    assert.doesNotMatch(foreign.body, /item/)
    assert.equal((await kit.inject({ userId: 42, schema: 'nosuch' }, '/items')).json().code, 'FST_BH_SCHEMA_NOT_FOUND')
    const inactive = await kit.schema({ t, members: [42] })
    await bh.deleteSchema(inactive.schema)
    assert.equal((await kit.inject({ userId: 42, schema: inactive.schema }, '/items')).json().code, 'FST_BH_SCHEMA_INACTIVE')
    await bh.revoke(mine.schema, 42)
    assert.equal((await app.inject({ url: '/items', headers: as42 })).statusCode, 403, 'a revoked membership is refused at once')
    await bh.grant(mine.schema, 42)

    // without a schema: the app's usual selection (GET auto-selects the only membership; a POST never does)
    assert.equal((await kit.inject({ userId: 43 }, '/whoami')).json().tenant, other.schema)
    const post = await kit.inject({ userId: 43 }, { method: 'POST', url: '/items', payload: { title: 'x' } })
    assert.equal(post.json().code, 'FST_BH_NO_SCHEMA')

    // more session values: the app's own isAdmin reads them, and admins may enter any active schema
    const admin = await kit.inject({ userId: 7, schema: other.schema, session: { isAdmin: true } }, '/whoami')
    assert.deepEqual(admin.json(), { userId: 7, isAdmin: true, tenant: other.schema, sessionUserId: 7 })

    // no header: anonymous, as before
    assert.deepEqual((await app.inject('/whoami')).json(), { userId: null, isAdmin: false, tenant: null, sessionUserId: null })
    assert.throws(() => kit.headers({ userId: 'x' }), hasCode('FST_BH_INVALID_USER_ID'))
    assert.throws(() => kit.headers({ userId: 1, schema: 'Bad Name' }), hasCode('FST_BH_INVALID_SCHEMA_NAME'))
  })
}

test('the guard: without the kit installed, with a forged or foreign header, or after cleanup(), the header gives nothing', async (t) => {
  const logs: string[] = []
  const withKit = await buildApp(t, sequelize, 'session', {}, logs)
  const withoutKit = await buildApp(t, sequelize, 'session')
  const third = await buildApp(t, sequelize, 'secure-session')
  const kit = await installTestKit(withKit)
  const foreignKit = await installTestKit(third)
  t.after(async () => { await kit.cleanup(); await foreignKit.cleanup() })
  const s = await kit.schema({ t, members: [42] })
  await bh.runInSchema(s.schema, async () => { await itemModel(sequelize).create({ title: 'secret' }) })
  const header = kit.headers({ userId: 42, schema: s.schema })
  const token = header[TEST_IDENTITY_HEADER] as string
  const anonymous = { userId: null, isAdmin: false, tenant: null, sessionUserId: null }
  const whoami = async (app: FastifyInstance, value: string | string[]): Promise<unknown> =>
    (await app.inject({ url: '/whoami', headers: { [TEST_IDENTITY_HEADER]: value } })).json()

  // the control: the same header does log in where the kit is installed
  assert.equal(((await whoami(withKit, token)) as { userId: unknown }).userId, 42)

  // no kit on this app: the header means nothing, and the tenant's rows stay out of reach
  assert.deepEqual(await whoami(withoutKit, token), anonymous)
  const items = await withoutKit.inject({ url: '/items', headers: header })
  assert.equal(items.json().code, 'FST_BH_NO_SCHEMA')
  assert.doesNotMatch(items.body, /secret/)

  // forged: another user in the signed body, a signature of another kit, garbage, two headers, an oversized one
  const [body, mac] = token.split('.') as [string, string]
  const payload = JSON.parse(Buffer.from(body, 'base64url').toString()) as Record<string, unknown>
  const altered = Buffer.from(JSON.stringify({ ...payload, u: 43 })).toString('base64url')
  const foreignToken = foreignKit.headers({ userId: 42, schema: s.schema })[TEST_IDENTITY_HEADER] as string
  for (const forged of [`${altered}.${mac}`, foreignToken, `${body}.${foreignToken.split('.')[1] as string}`, `${body}.`, body, 'garbage', `${token}.x`, [token, token], `${body}.${mac}${'A'.repeat(9000)}`]) {
    assert.deepEqual(await whoami(withKit, forged), anonymous, `forged: ${String(forged).slice(0, 40)}`)
  }
  assert.ok(logs.some((l) => l.includes('did not sign')), 'an ignored header is logged')
  // a header from this app's kit is refused by the other app's kit
  assert.deepEqual(await whoami(third, token), anonymous)

  // cleanup() uninstalls: the old header is ignored, and the kit signs no more
  await kit.cleanup()
  assert.deepEqual(await whoami(withKit, token), anonymous)
  assert.throws(() => kit.headers({ userId: 42 }), hasCode('FST_BH_INVALID_OPTION'))
  assert.equal(await bh.getSchema(s.schema), null, 'cleanup() dropped its schemas')
})

test('installTestKit refuses production, a second kit, and an app without the plugin; nothing is installed then', async (t) => {
  const app = await buildApp(t, sequelize, 'session')
  const saved = process.env.NODE_ENV
  process.env.NODE_ENV = 'production'
  try {
    await assert.rejects(installTestKit(app), (err: Error & { code?: string }) => { assert.equal(err.code, 'FST_BH_INVALID_OPTION'); assert.match(err.message, /production/); return true })
  } finally {
    if (saved === undefined) delete process.env.NODE_ENV
    else process.env.NODE_ENV = saved
  }
  const kit = await installTestKit(app) // the refused attempt left the slot empty
  t.after(async () => { await kit.cleanup() })
  await assert.rejects(installTestKit(app), hasCode('FST_BH_INVALID_OPTION'))
  const bare = Fastify()
  t.after(async () => { await bare.close() })
  await assert.rejects(installTestKit(bare), (err: Error & { code?: string }) => { assert.equal(err.code, 'FST_BH_INVALID_OPTION'); assert.match(err.message, /fastify-boardinghouse registered/); return true })
  await assert.rejects(installTestKit(app, { login: 'x' as never }), hasCode('FST_BH_INVALID_OPTION'))
  await assert.rejects(installTestKit(app, { userIdKey: '' }), hasCode('FST_BH_INVALID_OPTION'))
})

test('an app without sessions: a login function sets what getUserId reads; a route\'s own resolver still decides; the default login says what is missing', async (t) => {
  type WithUser = FastifyRequest & { user?: string | number }
  const app = await buildApp(t, sequelize, 'none', { getUserId: (request) => (request as WithUser).user ?? null })
  app.get('/t/:schema/whoami', { config: { boardinghouse: { schemaFrom: resolvers.param('schema') } } }, async (request) => ({ tenant: request.tenant?.schema ?? null }))
  const kit = await installTestKit(app, { login: (request, identity) => { (request as WithUser).user = identity.userId } })
  t.after(async () => { await kit.cleanup() })
  const [a, b] = await kit.schemas(2, { t, members: [5] })
  assert.deepEqual((await kit.inject({ userId: 5, schema: a?.schema }, '/whoami')).json(), { userId: 5, isAdmin: false, tenant: a?.schema, sessionUserId: null })
  // the route's resolver (the URL) wins over the identity's schema, with the same checks
  assert.equal((await kit.inject({ userId: 5, schema: a?.schema }, `/t/${b?.schema as string}/whoami`)).json().tenant, b?.schema)
  assert.equal((await kit.inject({ userId: 6, schema: a?.schema }, '/whoami')).statusCode, 403)
  await kit.cleanup()

  const plain = await buildApp(t, sequelize, 'none')
  const defaultKit = await installTestKit(plain)
  t.after(async () => { await defaultKit.cleanup() })
  const res = await defaultKit.inject({ userId: 5 }, '/whoami')
  assert.equal(res.statusCode, 500)
  assert.equal(res.json().code, 'FST_BH_INVALID_OPTION')
  assert.match(res.json().message, /login function/)
  assert.equal((await plain.inject('/whoami')).statusCode, 200, 'requests without the header are untouched')
})

// ---------------------------------------------------------------- checkIsolation

/** The seed every app below uses: the marker as an item's title (and, for apps that ask, as a plan). */
function seedItems (sequelize: Sequelize): (schema: string, marker: string) => Promise<void> {
  return async (_schema, marker) => { await itemModel(sequelize).create({ title: marker }) }
}

async function expectLeak (check: Promise<unknown>, route: string): Promise<IsolationError> {
  let caught: unknown
  await check.catch((err: unknown) => { caught = err })
  assert.ok(caught instanceof IsolationError, `the check failed with an IsolationError: ${String(caught)}`)
  assert.ok(caught instanceof AssertionError, 'an AssertionError, as every runner reports it')
  const leaks = caught.problems.filter((p: IsolationProblem) => p.kind === 'foreign-marker')
  assert.ok(leaks.length > 0, caught.message)
  for (const leak of leaks) {
    assert.equal(leak.route, route)
    assert.match(leak.marker ?? '', /^bhmark[0-9a-f]{8}[ab]$/)
    assert.notEqual(leak.markerSchema, leak.schema)
    assert.ok(caught.message.includes(`${route} as user ${leak.userId} in schema "${leak.schema}": shows "${leak.marker as string}", seeded in schema "${leak.markerSchema as string}"`), caught.message)
  }
  return caught
}

test('checkIsolation: a correct app passes (the negative control), and its schemas and kit are gone afterwards', async (t) => {
  const Item = itemModel(sequelize)
  const app = await buildApp(t, sequelize, 'session')
  const bySchema = new Map<string, string[]>()
  app.get('/report', async (request) => await sequelize.query(`SELECT title FROM "${request.tenant?.schema as string}".items`, { type: QueryTypes.SELECT }))
  app.get('/cached', async (request) => {
    const schema = request.tenant?.schema as string
    if (!bySchema.has(schema)) bySchema.set(schema, (await Item.findAll()).map((i) => i.get('title') as string))
    return bySchema.get(schema)
  })
  const before = await registryState(sequelize)
  const report = await checkIsolation({ app, routes: ['/items', '/report', '/cached', { method: 'GET', url: '/whoami', expectOwnMarker: false }], seed: seedItems(sequelize) })
  assert.deepEqual(report.routes, ['GET /items', 'GET /report', 'GET /cached', 'GET /whoami'])
  assert.equal(report.requests, 16, '4 routes × (a member of each schema, then one member of both in each)')
  assert.equal(Object.keys(report.markers).length, 2)
  assert.deepEqual(await registryState(sequelize), before, 'the two schemas are dropped')
  const kit = await installTestKit(app) // the check's own kit was uninstalled
  await kit.cleanup()
})

test('checkIsolation catches (a) a route reading a schema-qualified table of another tenant', async (t) => {
  const app = await buildApp(t, sequelize, 'session')
  // "compare with the first tenant": a schema name built into the SQL, not the request's
  app.get('/report', async () => {
    const [first] = await app.boardinghouse.listSchemas()
    return await sequelize.query(`SELECT title FROM "${first?.schema as string}".items`, { type: QueryTypes.SELECT })
  })
  const before = await registryState(sequelize)
  await expectLeak(checkIsolation({ app, routes: ['/items', '/report'], seed: seedItems(sequelize) }), 'GET /report')
  assert.deepEqual(await registryState(sequelize), before, 'dropped after a failure too')
})

test('checkIsolation catches (b) a shared model whose table a tenant shadows', async (t) => {
  const app = await buildApp(t, sequelize, 'session')
  // The app believes plans are per tenant: each tenant has a plans table of its own (made by the
  // seed, as the app's onCreate would), but Plan was left out of tenantModels, so it is a shared
  // model, pinned to public: every tenant's plans land in, and are read from, public.plans.
  app.get('/plans', async () => (await Plan.findAll()).map((p) => p.get('title')))
  const err = await expectLeak(checkIsolation({
    app,
    routes: ['/items', '/plans'],
    seed: async (schema, marker) => {
      await sequelize.query('CREATE TABLE plans (id serial PRIMARY KEY, title text)') // in the tenant's schema (first in search_path)
      await Plan.create({ title: marker })
      await itemModel(sequelize).create({ title: marker })
      const [{ n }] = await sequelize.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${schema}".plans`, { type: QueryTypes.SELECT }) as [{ n: number }]
      assert.equal(n, 0, 'the tenant\'s own plans table stays empty: the write went to public')
    }
  }), 'GET /plans')
  assert.ok(!err.problems.some((p) => p.route === 'GET /items'), 'the tenant model\'s route is clean')
})

test('checkIsolation catches (c) a module-level cache keyed without the schema, and a cache keyed by user only (the member-of-both pass)', async (t) => {
  const Item = itemModel(sequelize)
  const app = await buildApp(t, sequelize, 'session')
  let cached: string[] | undefined
  app.get('/stats', async () => { cached ??= (await Item.findAll()).map((i) => i.get('title') as string); return cached })
  await expectLeak(checkIsolation({ app, routes: ['/stats'], seed: seedItems(sequelize) }), 'GET /stats')

  const byUser = new Map<unknown, string[]>()
  const app2 = await buildApp(t, sequelize, 'session')
  app2.get('/mine', async (request) => {
    const key = request.boardinghouse.userId
    if (!byUser.has(key)) byUser.set(key, (await Item.findAll()).map((i) => i.get('title') as string))
    return byUser.get(key)
  })
  const err = await expectLeak(checkIsolation({ app: app2, routes: ['/mine'], seed: seedItems(sequelize) }), 'GET /mine')
  const leak = err.problems.find((p) => p.kind === 'foreign-marker')
  assert.ok(err.problems.every((p) => p.kind !== 'foreign-marker' || p.userId === leak?.userId), 'only the user who is a member of both saw the other\'s data')
  // the control for that pass: without the member of both, this cache goes unnoticed
  byUser.clear()
  await checkIsolation({ app: app2, routes: ['/mine'], seed: seedItems(sequelize), users: { both: null } })
})

test('checkIsolation fails a check that would prove nothing: no own marker shown, or an error status; with a kit of the test\'s own', async (t) => {
  const app = await buildApp(t, sequelize, 'session')
  app.get('/nothing', async () => [])
  app.get('/broken', async () => { throw new Error('boom') })
  const kit: TestKit = await installTestKit(app)
  t.after(async () => { await kit.cleanup() })
  const kept = await kit.schema({ members: [1] })

  let caught: unknown
  await checkIsolation({ app, kit, routes: ['/nothing', '/broken'], seed: seedItems(sequelize) }).catch((err: unknown) => { caught = err })
  assert.ok(caught instanceof IsolationError)
  assert.match(caught.message, /^isolation check failed: it proved nothing for some routes/)
  assert.deepEqual([...new Set(caught.problems.map((p) => `${p.route} ${p.kind} ${p.status}`))], ['GET /nothing missing-own-marker 200', 'GET /broken status 500'])
  assert.match(caught.message, /GET \/nothing as user \d+ in schema "[a-z0-9_]+": does not show its own schema's marker "bhmark[0-9a-f]{8}[ab]"/)
  // relaxed per route, it passes
  const report = await checkIsolation({ app, kit, routes: [{ url: '/nothing', expectOwnMarker: false }, { url: '/broken', expectStatus: 500, expectOwnMarker: false }], seed: seedItems(sequelize) })
  assert.equal(report.requests, 8)
  // the test's kit stays installed with its own schema; the check's schemas are gone
  assert.deepEqual(kit.live, [kept.schema])
  assert.equal((await kit.inject({ userId: 1, schema: kept.schema }, '/items')).statusCode, 200)
  assert.deepEqual((await bh.listSchemas()).map((s) => s.schema), [kept.schema])
  // a second kit would not be installed behind the test's back
  await assert.rejects(checkIsolation({ app, routes: ['/items'], seed: seedItems(sequelize) }), hasCode('FST_BH_INVALID_OPTION'))
  await assert.rejects(checkIsolation({ app, kit, routes: [], seed: seedItems(sequelize) }), hasCode('FST_BH_INVALID_OPTION'))
  // a failing seed fails the check, and leaves nothing
  await assert.rejects(checkIsolation({ app, kit, routes: ['/items'], seed: () => { throw new Error('seed failed') } }), /seed failed/)
  assert.deepEqual((await bh.listSchemas()).map((s) => s.schema), [kept.schema])
})
