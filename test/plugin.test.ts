import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import boardinghouse, { createBoardinghouse } from '../plugin/index.js'
import { buildTestApp, login } from './fixtures/app.js'
import { createTestDatabase, sequelizeFor, setupBoardinghouse } from './helpers.js'

test('registration: the session plugin is required and options are validated', async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url)
  const bare = Fastify()
  await assert.rejects(async () => { await bare.register(boardinghouse, { sequelize }); await bare.ready() }, /@fastify\/session/)
  for (const bad of [{ changeSchemaRoute: 'no-slash' }, { trustedOrigins: ['evil'] }, { isAdmin: true }, { listen: 'yes' }, { nope: 1 }]) {
    const app = Fastify()
    await app.register(fastifyCookie)
    await app.register(fastifySession, { secret: 'x'.repeat(32), cookie: { secure: false } })
    await assert.rejects(async () => { await app.register(boardinghouse, { sequelize, ...bad } as never); await app.ready() },
      (err: Error & { code?: string }) => { assert.equal(err.code, 'FST_BH_INVALID_OPTION', JSON.stringify(bad)); return true })
    await app.close()
  }
  const unmigrated = Fastify()
  await unmigrated.register(fastifyCookie)
  await unmigrated.register(fastifySession, { secret: 'x'.repeat(32), cookie: { secure: false } })
  await assert.rejects(async () => { await unmigrated.register(boardinghouse, { sequelize }); await unmigrated.ready() }, { code: 'FST_BH_NOT_MIGRATED' })
  await unmigrated.close()
})

test('plugin options: each unknown or ill-typed one fails app.ready() naming it; the caller\'s object is left as it was', async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url)
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ getUserId: 'alice' }, 'getUserId'], [{ isAdmin: 1 }, 'isAdmin'], [{ schemaFrom: {} }, 'schemaFrom'],
    [{ changeSchemaRoute: true }, 'changeSchemaRoute'], [{ trustedOrigins: 'https://a.example' }, 'trustedOrigins'],
    [{ sessionSchema: 'no' }, 'sessionSchema'], [{ sessionSchema: false }, 'changeSchemaRoute'], [{ listen: 1 }, 'listen'],
    [{ schemaLinkParam: 'a b' }, 'schemaLinkParam'], [{ objectUrl: '/x' }, 'objectUrl'],
    [{ cacheTtl: -1 }, 'cacheTtl'], [{ bindPath: 'session' }, 'bindPath'], [{ tenantModel: ['Item'] }, 'tenantModel']
  ]
  for (const [bad, name] of cases) {
    const app = Fastify()
    await app.register(fastifyCookie)
    await app.register(fastifySession, { secret: 'x'.repeat(32), cookie: { secure: false } })
    const options = { sequelize, trustedOrigins: ['https://b.example'], ...bad }
    const before = { ...options }
    await assert.rejects(async () => { await app.register(boardinghouse, options as never); await app.ready() },
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'FST_BH_INVALID_OPTION', JSON.stringify(bad))
        assert.ok(err.message.includes(name), `${err.message} names ${name}`)
        return true
      })
    assert.deepEqual(options, before)
    assert.deepEqual(options.trustedOrigins, Object.keys(bad).includes('trustedOrigins') ? bad.trustedOrigins : ['https://b.example'])
    await app.close()
  }
  // the tenant API alone does not take the plugin's options
  assert.throws(() => createBoardinghouse({ sequelize, listen: false } as never), (err: Error & { code?: string }) => err.code === 'FST_BH_INVALID_OPTION' && err.message.includes('"listen"'))
})

test('the request layer', async (t) => {
  const { bh, sequelize } = await setupBoardinghouse(t)
  for (const s of ['acme', 'globex', 'initech']) {
    await bh.createSchema(s)
    await bh.runInSchema(s, async () => { await (sequelize.models.Item as NonNullable<typeof sequelize.models.Item>).create({ title: `${s}:first` }) })
  }
  await bh.grant('acme', 1) // alice
  await bh.grant('globex', 1)
  await bh.grant('globex', 2) // bob: one schema
  const app = await buildTestApp({ sequelize, admins: [99] })
  t.after(async () => { await app.close() })
  const alice = await login(app, 1)
  const bob = await login(app, 2)
  const admin = await login(app, 99)
  const nobody = await login(app, 3)
  const get = async (url: string, cookie?: string) => await app.inject({ method: 'GET', url, headers: cookie !== undefined ? { cookie } : {} })
  const change = async (cookie: string | undefined, payload: unknown, headers: Record<string, string> = {}) =>
    await app.inject({ method: 'POST', url: '/__change_schema__', payload: payload as object, headers: { ...(cookie !== undefined ? { cookie } : {}), ...headers } })

  await t.test('anonymous: no schema, tenant tables give FST_BH_NO_SCHEMA, switching is 401', async () => {
    const who = (await get('/whoami')).json()
    assert.deepEqual(who, { tenant: null, schemas: [], userId: null, isAdmin: false })
    const items = await get('/items')
    assert.equal(items.statusCode, 400)
    assert.equal(items.json().code, 'FST_BH_NO_SCHEMA')
    assert.equal((await get('/items/raw')).json().code, 'FST_BH_NO_SCHEMA')
    const res = await change(undefined, { schema: 'acme' })
    assert.equal(res.statusCode, 401)
    assert.equal(res.json().code, 'FST_BH_UNAUTHENTICATED')
  })

  await t.test('a user with one schema gets it selected; with two, none until switching', async () => {
    assert.deepEqual((await get('/whoami', bob)).json().tenant, { schema: 'globex', name: 'globex' })
    assert.deepEqual((await get('/items', bob)).json(), { schema: 'globex', titles: ['globex:first'] })
    const who = (await get('/whoami', alice)).json()
    assert.equal(who.tenant, null)
    assert.deepEqual(who.schemas, ['acme', 'globex'])
    assert.equal((await get('/whoami', nobody)).json().tenant, null)
  })

  await t.test('switching: 200 and the session keeps it; every route reads that schema only', async () => {
    const res = await change(alice, { schema: 'acme' })
    assert.equal(res.statusCode, 200)
    assert.deepEqual(res.json(), { schema: 'acme', name: 'acme' })
    for (const path of ['/items', '/items/raw', '/items/bind', '/items/tx', '/items/rollback']) {
      assert.deepEqual((await get(path, alice)).json(), { schema: 'acme', titles: ['acme:first'] }, path)
    }
    assert.deepEqual((await change(alice, 'schema=globex', { 'content-type': 'application/x-www-form-urlencoded' })).json(), { schema: 'globex', name: 'globex' })
    assert.deepEqual((await get('/items', alice)).json(), { schema: 'globex', titles: ['globex:first'] })
  })

  await t.test('switching refusals: 400 invalid or template, 404 unknown or inactive, 403 not a member', async () => {
    const cases: Array<[unknown, number, string]> = [
      [{ schema: 'Acme' }, 400, 'FST_BH_INVALID_SCHEMA_NAME'],
      [{ schema: '__template__' }, 400, 'FST_BH_TEMPLATE_SCHEMA'],
      [{ schema: 'a"; drop schema public; --' }, 400, 'FST_BH_INVALID_SCHEMA_NAME'],
      [{ schema: 'nosuch' }, 404, 'FST_BH_SCHEMA_NOT_FOUND'],
      [{ schema: 'initech' }, 403, 'FST_BH_FORBIDDEN_SCHEMA'],
      [{ schema: 42 }, 400, 'FST_BH_INVALID_SCHEMA_NAME'],
      [{ schema: 'x'.repeat(300) }, 400, 'FST_ERR_VALIDATION'],
      [{ schema: 'acme', next: '//evil.example/' }, 400, 'FST_BH_INVALID_REDIRECT'],
      [{ schema: 'acme', next: 'https://evil.example/' }, 400, 'FST_BH_INVALID_REDIRECT']
    ]
    for (const [payload, status, code] of cases) {
      const res = await change(alice, payload)
      assert.equal(res.statusCode, status, JSON.stringify(payload))
      assert.equal(res.json().code, code, JSON.stringify(payload))
    }
    // nothing changed: alice is still in globex
    assert.deepEqual((await get('/whoami', alice)).json().tenant, { schema: 'globex', name: 'globex' })
    assert.equal((await app.inject({ method: 'GET', url: '/__change_schema__?schema=acme', headers: { cookie: alice } })).statusCode, 404)
  })

  await t.test('cross-site posts are refused; same-origin and trusted ones pass', async () => {
    const evil = await change(alice, { schema: 'acme' }, { origin: 'https://evil.example' })
    assert.equal(evil.statusCode, 403)
    assert.equal(evil.json().code, 'FST_BH_CROSS_SITE')
    const site = await change(alice, { schema: 'acme' }, { 'sec-fetch-site': 'cross-site' })
    assert.equal(site.json().code, 'FST_BH_CROSS_SITE')
    assert.equal((await get('/whoami', alice)).json().tenant.schema, 'globex')
    const same = await change(alice, { schema: 'acme' }, { origin: 'http://localhost:80', host: 'localhost:80', 'sec-fetch-site': 'same-origin' })
    assert.equal(same.statusCode, 200, same.body)
  })

  await t.test('form posts redirect to a same-origin next path; empty schema deselects', async () => {
    const res = await change(alice, 'schema=&next=%2Fitems%3Fpage%3D2', { 'content-type': 'application/x-www-form-urlencoded' })
    assert.equal(res.statusCode, 303)
    assert.equal(res.headers.location, '/items?page=2')
    assert.equal((await get('/whoami', alice)).json().tenant, null)
    assert.deepEqual((await change(alice, { schema: null })).json(), { schema: null, name: null })
  })

  await t.test('admins may select any active schema, never the template', async () => {
    assert.deepEqual((await get('/whoami', admin)).json().schemas, ['acme', 'globex', 'initech'])
    assert.equal((await change(admin, { schema: 'initech' })).statusCode, 200)
    assert.deepEqual((await get('/items', admin)).json(), { schema: 'initech', titles: ['initech:first'] })
    assert.equal((await change(admin, { schema: '__template__' })).statusCode, 400)
  })

  await t.test('permission is re-checked on every request: revoke, deactivate, drop', async () => {
    await change(alice, { schema: 'acme' })
    assert.equal((await get('/items', alice)).json().schema, 'acme')
    await bh.revoke('acme', 1)
    // the very next request: acme is forgotten and it runs with none; only a later GET selects the one schema left
    assert.equal((await get('/items', alice)).json().code, 'FST_BH_NO_SCHEMA')
    assert.deepEqual((await get('/items', alice)).json(), { schema: 'globex', titles: ['globex:first'] })
    await bh.grant('acme', 1)
    await change(admin, { schema: 'initech' })
    await bh.deleteSchema('initech')
    const after = await get('/items', admin)
    assert.equal(after.statusCode, 400)
    assert.equal(after.json().code, 'FST_BH_NO_SCHEMA')
    assert.equal((await get('/whoami', admin)).json().tenant, null)
    await change(admin, { schema: 'acme' })
    await bh.deleteSchema('acme', { drop: true }).catch(() => {})
    assert.equal((await get('/whoami', admin)).json().tenant, null)
    await bh.createSchema('acme')
    await bh.grant('acme', 1)
    await bh.runInSchema('acme', async () => { await (sequelize.models.Item as NonNullable<typeof sequelize.models.Item>).create({ title: 'acme:first' }) })
    await bh.activateSchema('initech')
  })

  await t.test('per-route resolver and activate() apply the same checks; requireSchema', async () => {
    assert.deepEqual((await get('/by-path/globex/items', alice)).json(), { schema: 'globex', titles: ['globex:first'] })
    assert.equal((await get('/by-path/initech/items', alice)).statusCode, 403)
    assert.equal((await get('/by-path/__template__/items', alice)).statusCode, 400)
    assert.equal((await get('/by-path/nosuch/items', alice)).statusCode, 404)
    assert.equal((await get('/by-path/acme/items')).statusCode, 401)
    const act = await app.inject({ method: 'POST', url: '/activate', payload: { schema: 'acme' }, headers: { cookie: alice } })
    assert.deepEqual(act.json(), { schema: 'acme', titles: ['acme:first'] })
    assert.equal((await app.inject({ method: 'POST', url: '/activate', payload: { schema: 'initech' }, headers: { cookie: alice } })).statusCode, 403)
    assert.equal((await get('/only-tenant', nobody)).json().code, 'FST_BH_NO_SCHEMA')
    assert.equal((await get('/only-tenant', bob)).json().schema, 'globex')
  })

  await t.test('a garbage session value is forgotten, never used', async () => {
    for (const value of ['__template__', 'initech', 'nosuch', 'Acme', 42, { a: 1 }, ['acme'], '']) {
      await app.inject({ method: 'POST', url: '/test/session-schema', payload: { value }, headers: { cookie: bob } })
      const res = await get('/whoami', bob)
      assert.equal(res.statusCode, 200)
      // a value that is not a usable selection is forgotten: this request runs with none, the next GET auto-selects
      assert.equal(res.json().tenant, null, JSON.stringify(value))
      assert.deepEqual((await get('/whoami', bob)).json().tenant, { schema: 'globex', name: 'globex' }, JSON.stringify(value))
    }
  })

  await t.test('no database query per request for tenancy', async () => {
    await get('/whoami', alice)
    let queries = 0
    sequelize.addHook('beforeQuery', 'count', () => { queries++ })
    try {
      for (let i = 0; i < 20; i++) assert.equal((await get('/whoami', i % 2 === 0 ? alice : bob)).statusCode, 200)
    } finally {
      sequelize.removeHook('beforeQuery', 'count')
    }
    assert.equal(queries, 0)
  })
})

test('a stale selection is never replaced by auto-selection: revoke, deactivate, drop, and the POST meant for it is refused', async (t) => {
  const { bh, sequelize } = await setupBoardinghouse(t)
  const Item = sequelize.models.Item as NonNullable<typeof sequelize.models.Item>
  const app = await buildTestApp({ sequelize })
  t.after(async () => { await app.close() })
  const stalers: Array<[string, (schema: string, user: number) => Promise<void>]> = [
    ['revoke', async (s, u) => { await bh.revoke(s, u) }],
    ['deactivate', async (s) => { await bh.deleteSchema(s) }],
    ['drop', async (s) => { await bh.deleteSchema(s, { drop: true }) }]
  ]
  for (const [i, [how, makeStale]] of stalers.entries()) {
    const [held, other, user] = [`held_${how}`, `other_${how}`, 10 + i]
    await bh.createSchema(held)
    await bh.createSchema(other)
    await bh.grant(held, user)
    await bh.grant(other, user)
    const cookie = await login(app, user)
    const post = async () => await app.inject({ method: 'POST', url: '/items', payload: { title: 'CONFIDENTIAL' }, headers: { cookie } })
    assert.equal((await app.inject({ method: 'POST', url: '/__change_schema__', payload: { schema: held }, headers: { cookie } })).statusCode, 200)
    await makeStale(held, user)
    // the request that finds its selection stale runs with none, and so does every later unsafe one
    for (let k = 0; k < 2; k++) {
      const res = await post()
      assert.equal(res.statusCode, 400, `${how}: ${res.body}`)
      assert.equal(res.json().code, 'FST_BH_NO_SCHEMA', how)
    }
    assert.deepEqual(await bh.runInSchema(other, async () => (await Item.findAll()).map((r) => r.get('title'))), [], `${how}: nothing landed in ${other}`)
    // only a later safe request (GET) selects the one schema left, and the user sees it
    assert.deepEqual((await app.inject({ method: 'GET', url: '/whoami', headers: { cookie } })).json().tenant, { schema: other, name: other }, how)
  }
})

test('switch route: repeated or bracketed fields are refused (400), never read as a deselect', async (t) => {
  const { bh, sequelize } = await setupBoardinghouse(t)
  await bh.createSchema('acme')
  await bh.createSchema('globex')
  await bh.grant('acme', 1)
  await bh.grant('globex', 1)
  const app = await buildTestApp({ sequelize })
  t.after(async () => { await app.close() })
  const cookie = await login(app, 1)
  assert.equal((await app.inject({ method: 'POST', url: '/__change_schema__', payload: { schema: 'acme' }, headers: { cookie } })).statusCode, 200)
  const forms = ['schema[]=globex&schema[]=acme', 'schema[]=', 'schema[x]=globex', 'schema[=globex', 'schema=globex&schema=acme', 'schema=globex&next[]=/items', 'next[x]=/items&schema=globex', 'schema=globex&next=/a&next=/b']
  for (const payload of forms) {
    const res = await app.inject({ method: 'POST', url: '/__change_schema__', payload, headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' } })
    assert.equal(res.statusCode, 400, `${payload}: ${res.body}`)
    assert.equal(res.json().code, 'FST_BH_INVALID_SWITCH_REQUEST', payload)
  }
  for (const payload of [{ schema: ['globex'] }, { schema: { x: 'globex' } }, { 'schema[]': 'globex' }, { schema: 'globex', next: ['/items'] }]) {
    const res = await app.inject({ method: 'POST', url: '/__change_schema__', payload, headers: { cookie } })
    assert.equal(res.statusCode, 400, `${JSON.stringify(payload)}: ${res.body}`)
    assert.match(res.json().code, /^FST_(BH_INVALID_SWITCH_REQUEST|BH_INVALID_SCHEMA_NAME)$/, JSON.stringify(payload))
  }
  // nothing changed
  assert.deepEqual((await app.inject({ method: 'GET', url: '/whoami', headers: { cookie } })).json().tenant, { schema: 'acme', name: 'acme' })
})
