/**
 * The session is optional: without a session plugin the plugin works with `schemaFrom` (the
 * selection kept in the session and the switch route off); with one, any plugin whose
 * `request.session` has get/set will do (@fastify/secure-session here).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import fastifySecureSession from '@fastify/secure-session'
import boardinghouse from '../plugin/index.js'
import { setupBoardinghouse } from './helpers.js'

declare module '@fastify/secure-session' {
  interface SessionData { userId: number }
}

type ItemModel = { findAll: () => Promise<Array<{ title: string }>>, create: (v: { title: string }) => Promise<unknown> }

async function withItems (t: Parameters<typeof setupBoardinghouse>[0]): Promise<Awaited<ReturnType<typeof setupBoardinghouse>>> {
  const setup = await setupBoardinghouse(t)
  const Item = setup.sequelize.models.Item as unknown as ItemModel
  for (const s of ['acme', 'globex']) {
    await setup.bh.createSchema(s)
    await setup.bh.runInSchema(s, async () => { await Item.create({ title: `${s} item` }) })
  }
  await setup.bh.grant('acme', 1)
  await setup.bh.grant('globex', 1)
  return setup
}

test('no session plugin: with sessionSchema and changeSchemaRoute off, schemaFrom selects the schema', async (t) => {
  const { sequelize } = await withItems(t)
  const Item = sequelize.models.Item as unknown as ItemModel
  const app = Fastify()
  t.after(async () => { await app.close() })
  await app.register(boardinghouse, {
    sequelize,
    tenantModels: ['Item'],
    sessionSchema: false,
    changeSchemaRoute: false,
    listen: false,
    getUserId: (request) => request.headers['x-user'] === '1' ? 1 : null,
    schemaFrom: (request) => request.headers['x-tenant'] as string | undefined
  })
  app.get('/items', async () => (await Item.findAll()).map((i) => i.title))
  app.post('/persist', async (request) => request.boardinghouse.activate('acme', { persist: true }))
  await app.ready()
  assert.equal(app.hasRequestDecorator('session'), false)
  assert.deepEqual((await app.inject({ url: '/items', headers: { 'x-user': '1', 'x-tenant': 'acme' } })).json(), ['acme item'])
  assert.deepEqual((await app.inject({ url: '/items', headers: { 'x-user': '1', 'x-tenant': 'globex' } })).json(), ['globex item'])
  const foreign = await app.inject({ url: '/items', headers: { 'x-user': '2', 'x-tenant': 'acme' } })
  assert.equal(foreign.statusCode, 401)
  const none = await app.inject({ url: '/items', headers: { 'x-user': '1' } })
  assert.equal(none.json().code, 'FST_BH_NO_SCHEMA')
  assert.equal((await app.inject({ method: 'POST', url: '/__change_schema__', payload: { schema: 'acme' } })).statusCode, 404, 'no switch route')
  const persist = await app.inject({ method: 'POST', url: '/persist', headers: { 'x-user': '1' } })
  assert.equal(persist.json().code, 'FST_BH_INVALID_OPTION')
})

test('no session plugin: ready() refuses the options that need one, naming them, and opens nothing', async (t) => {
  const { sequelize } = await withItems(t)
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{}, /sessionSchema \(the selection kept in the session\) and changeSchemaRoute \(the switch route\) need a session .*@fastify\/session or @fastify\/secure-session/],
    [{ changeSchemaRoute: false }, /^Invalid boardinghouse option: sessionSchema \(the selection kept in the session\) need a session/],
    [{ sessionSchema: false }, /changeSchemaRoute stores the choice in the session/],
    [{ sessionSchema: 'yes' }, /sessionSchema must be a boolean/]
  ]
  for (const [options, message] of cases) {
    const app = Fastify()
    await assert.rejects(async () => { await app.register(boardinghouse, { sequelize, tenantModels: ['Item'], ...options } as never); await app.ready() },
      (err: Error & { code?: string }) => { assert.equal(err.code, 'FST_BH_INVALID_OPTION'); assert.match(err.message, message); return true })
    assert.equal(app.hasDecorator('boardinghouse'), false)
    await app.close()
  }
  const [row] = await sequelize.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'", { type: 'SELECT' as never })
  assert.equal(row?.n, '0', 'no LISTEN connection was opened')
})

test('@fastify/secure-session: the switch route stores the choice, the only membership is selected, getUserId reads it', async (t) => {
  const { bh, sequelize } = await withItems(t)
  await bh.grant('globex', 2)
  const Item = sequelize.models.Item as unknown as ItemModel
  const app = Fastify()
  t.after(async () => { await app.close() })
  await app.register(fastifySecureSession, { key: Buffer.alloc(32, 7), cookie: { path: '/', secure: false } })
  await app.register(boardinghouse, { sequelize, tenantModels: ['Item'], listen: false })
  app.post('/login', async (request) => { request.session.set('userId', Number((request.body as { id: string }).id)); return { ok: true } })
  app.get('/items', async () => (await Item.findAll()).map((i) => i.title))
  await app.ready()
  const cookieOf = (res: { cookies: Array<{ name: string, value: string }> }, old = ''): string => {
    const c = res.cookies.find((x) => x.name === 'session')
    return c !== undefined ? `session=${encodeURIComponent(c.value)}` : old
  }
  const login = async (id: number): Promise<string> => cookieOf(await app.inject({ method: 'POST', url: '/login', payload: { id: String(id) } }))

  let alice = await login(1)
  assert.equal((await app.inject({ url: '/items', headers: { cookie: alice } })).json().code, 'FST_BH_NO_SCHEMA', 'two schemas: none selected yet')
  const switched = await app.inject({ method: 'POST', url: '/__change_schema__', payload: { schema: 'globex' }, headers: { cookie: alice } })
  assert.deepEqual(switched.json(), { schema: 'globex', name: 'globex' })
  alice = cookieOf(switched, alice)
  assert.deepEqual((await app.inject({ url: '/items', headers: { cookie: alice } })).json(), ['globex item'], 'the session remembers globex')
  const refused = await app.inject({ method: 'POST', url: '/__change_schema__', payload: { schema: 'nope' }, headers: { cookie: alice } })
  assert.equal(refused.statusCode, 404)
  assert.deepEqual((await app.inject({ url: '/items', headers: { cookie: alice } })).json(), ['globex item'], 'a refused switch changed nothing')

  let bob = await login(2)
  const first = await app.inject({ url: '/items', headers: { cookie: bob } })
  assert.deepEqual(first.json(), ['globex item'], 'one membership: selected')
  bob = cookieOf(first, bob)
  await bh.grant('acme', 2)
  assert.deepEqual((await app.inject({ url: '/items', headers: { cookie: bob } })).json(), ['globex item'], 'the selection was stored in the session')
})
