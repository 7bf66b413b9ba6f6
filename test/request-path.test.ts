import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify, { type FastifyRequest } from 'fastify'
import { QueryTypes } from 'sequelize'
import { decorateTenancy, kTenancy, tenancyOf } from '../plugin/request.js'
import { buildTestApp, login } from './fixtures/app.js'
import { sequelizeFor, setupBoardinghouse } from './helpers.js'

test('request.boardinghouse before the hook throws FST_BH_TENANCY_UNAVAILABLE; decorateTenancy declares the slot', async (t) => {
  const app = Fastify()
  decorateTenancy(app)
  decorateTenancy(app) // idempotent
  assert.equal(app.hasRequestDecorator(kTenancy), true)
  app.get('/', async (request) => {
    const slot = (request as FastifyRequest & { [kTenancy]?: unknown })[kTenancy]
    try {
      tenancyOf(request)
      return { slot, code: null }
    } catch (err) {
      return { slot, code: (err as { code?: string }).code, status: (err as { statusCode?: number }).statusCode }
    }
  })
  t.after(async () => { await app.close() })
  const res = await app.inject('/')
  assert.deepEqual(res.json(), { slot: null, code: 'FST_BH_TENANCY_UNAVAILABLE', status: 500 })
})

test('the onRequest hook: synchronous and asynchronous getUserId/isAdmin/schemaFrom resolve alike', async (t) => {
  const { bh, url } = await setupBoardinghouse(t)
  for (const name of ['acme', 'globex']) await bh.createSchema(name)
  await bh.grant('acme', 1)
  await bh.grant('globex', 1)
  await bh.createSchema('hooli') // no member: admin only
  const sequelize = sequelizeFor(t, url)
  const fromHeader = (request: FastifyRequest): string | undefined => request.headers['x-schema'] as string | undefined
  for (const mode of ['sync', 'async'] as const) {
    const wrap = <A extends unknown[], R>(fn: (...args: A) => R): ((...args: A) => R | Promise<R>) =>
      mode === 'sync' ? fn : async (...args: A) => { await new Promise((resolve) => setImmediate(resolve)); return fn(...args) }
    const app = await buildTestApp({
      sequelize,
      listen: false,
      getUserId: wrap((request: FastifyRequest) => {
        if (request.headers['x-fail'] === 'user') throw new Error('no user store')
        const id = request.headers['x-user']
        return typeof id === 'string' ? Number(id) : null
      }),
      isAdmin: wrap((_request: FastifyRequest, userId: unknown) => String(userId) === '9'),
      schemaFrom: wrap(fromHeader)
    })
    t.after(async () => { await app.close() })
    const get = async (headers: Record<string, string>): Promise<{ status: number, body: Record<string, unknown> }> => {
      const res = await app.inject({ method: 'GET', url: '/items', headers })
      return { status: res.statusCode, body: res.json() }
    }
    assert.deepEqual(await get({ 'x-user': '1', 'x-schema': 'globex' }), { status: 200, body: { schema: 'globex', titles: [] } }, mode)
    assert.equal((await get({ 'x-user': '1', 'x-schema': 'hooli' })).body.code, 'FST_BH_FORBIDDEN_SCHEMA', mode)
    assert.equal((await get({ 'x-user': '9', 'x-schema': 'hooli' })).body.schema, 'hooli', `${mode}: admin`)
    assert.equal((await get({ 'x-schema': 'acme' })).body.code, 'FST_BH_UNAUTHENTICATED', mode)
    assert.equal((await get({ 'x-user': '1', 'x-schema': 'Bad!' })).status, 400, mode)
    assert.equal((await get({ 'x-fail': 'user' })).status, 500, `${mode}: a throwing getUserId fails the request`)
    assert.equal((await get({ 'x-user': '1' })).body.code, 'FST_BH_NO_SCHEMA', `${mode}: no schema, tenant table`)
    const cookie = await login(app, 1)
    const whoami = await app.inject({ method: 'GET', url: '/whoami', headers: { cookie, 'x-user': '1' } })
    assert.deepEqual(whoami.json().schemas, ['acme', 'globex'], mode)
  }
})
