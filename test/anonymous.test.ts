/** Anonymous tenant pages: a resolver made with { anonymous: 'allow' } lets a request without a user into an existing, active schema; default deny. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { resolvers } from '../plugin/index.js'
import { buildTestApp } from './fixtures/app.js'
import { setupBoardinghouse } from './helpers.js'

test('anonymous: allow enters an existing active schema without a user; deny (default) answers 401; users keep the usual checks', async (t) => {
  const { bh, sequelize } = await setupBoardinghouse(t)
  for (const s of ['acme', 'globex', 'sleepy']) await bh.createSchema(s)
  await bh.grant('globex', 7)
  await bh.deleteSchema('sleepy')
  await bh.runInSchema('acme', async () => { await sequelize.models.Item?.create({ title: 'acme public page' }) })

  const open = await buildTestApp({ sequelize, listen: false, schemaFrom: resolvers.header('x-tenant', { anonymous: 'allow' }) })
  const closed = await buildTestApp({ sequelize, listen: false, schemaFrom: resolvers.header('x-tenant') })
  t.after(async () => { await open.close(); await closed.close() })

  const get = async (app: typeof open, tenant: string, cookie?: string): Promise<{ status: number, body: { code?: string, schema?: string | null, titles?: string[] } }> => {
    const res = await app.inject({ method: 'GET', url: '/items', headers: { 'x-tenant': tenant, ...(cookie === undefined ? {} : { cookie }) } })
    return { status: res.statusCode, body: res.json() }
  }
  // anonymous, allowed: the schema's rows, no membership needed
  assert.deepEqual(await get(open, 'acme'), { status: 200, body: { schema: 'acme', titles: ['acme public page'] } })
  // anonymous, allowed, but unknown / inactive / template / invalid: 404 / 404 / 400 / 400
  assert.equal((await get(open, 'nope')).body.code, 'FST_BH_SCHEMA_NOT_FOUND')
  assert.equal((await get(open, 'sleepy')).body.code, 'FST_BH_SCHEMA_INACTIVE')
  assert.equal((await get(open, '__template__')).status, 400)
  // anonymous, default deny: 401 even for an existing schema
  const denied = await get(closed, 'acme')
  assert.equal(denied.status, 401)
  assert.equal(denied.body.code, 'FST_BH_UNAUTHENTICATED')
  // with a user, the usual membership check, allow or not
  const login = await open.inject({ method: 'POST', url: '/test/login', payload: { userId: 7 } })
  const cookie = String(login.headers['set-cookie']).split(';')[0] as string
  assert.equal((await get(open, 'acme', cookie)).body.code, 'FST_BH_FORBIDDEN_SCHEMA')
  assert.equal((await get(open, 'globex', cookie)).body.schema, 'globex')
  // nothing was written by any of it
  assert.deepEqual(await bh.runInSchema('acme', async () => (await sequelize.models.Item?.findAll())?.map((i) => i.get('title'))), ['acme public page'])
})
