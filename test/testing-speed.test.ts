/**
 * A test file as an app would write it with the kit: 100 tests, each with a fresh schema of its
 * own from the fixture (dropped when it ends), a write and a read as a member. Its wall time is a
 * figure for the notes (`time node --import tsx --test test/testing-speed.test.ts`), never asserted.
 * PENDING_SCHEMAS=N passes `pendingSchemas: N` to the Boardinghouse, where that option exists.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import boardinghouse from '../plugin/index.js'
import { installTestKit } from '../plugin/testing/index.js'
import { setupBoardinghouse } from './helpers.js'

const TESTS = 100
const pending = Number(process.env.PENDING_SCHEMAS ?? 0)
const extra = (pending > 0 ? { pendingSchemas: pending } : {}) as object

const { sequelize } = await setupBoardinghouse({ after }, extra)
const Item = sequelize.models.Item as NonNullable<typeof sequelize.models.Item>
const app = Fastify()
await app.register(fastifyCookie)
await app.register(fastifySession, { secret: 'a test secret of more than 32 chars', cookie: { secure: false }, saveUninitialized: false })
await app.register(boardinghouse, { sequelize, tenantModels: ['Item'], listen: false, ...extra })
app.get('/items', async () => (await Item.findAll()).map((i) => i.get('title')))
app.post<{ Body: { title: string } }>('/items', async (request) => (await Item.create({ title: request.body.title })).get('title'))
const kit = await installTestKit(app)
after(async () => { await kit.cleanup(); await app.close() })

for (let i = 0; i < TESTS; i++) {
  test(`test ${i}: a schema of its own`, async (t) => {
    const { schema } = await kit.schema({ t, members: [1] })
    const posted = await kit.inject({ userId: 1, schema }, { method: 'POST', url: '/items', payload: { title: `item ${i}` } })
    assert.equal(posted.statusCode, 200, posted.body)
    assert.deepEqual((await kit.inject({ userId: 1, schema }, '/items')).json(), [`item ${i}`], 'only this test\'s row: the schema is fresh')
  })
}
