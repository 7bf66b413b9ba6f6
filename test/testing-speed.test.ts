/**
 * A test file as an app would write it with the kit: 100 tests, each with a fresh schema of its
 * own from the fixture (dropped when it ends), a write and a read as a member. Its wall time is a
 * figure for the notes, never asserted:
 *
 *   time node --import tsx --test test/testing-speed.test.ts
 *   SPEED_TEMPLATE=bench …   the tenant template also holds the 26-table fixture of bench:create
 *   PENDING_SCHEMAS=N …      passes `pendingSchemas: N` to the plugin, where that option exists
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import { DataTypes } from 'sequelize'
import boardinghouse, { createBoardinghouse } from '../plugin/index.js'
import { installTestKit } from '../plugin/testing/index.js'
import { createTestDatabase, sequelizeFor } from './helpers.js'

const TESTS = 100
const pending = Number(process.env.PENDING_SCHEMAS ?? 0)
const extra = (pending > 0 ? { pendingSchemas: pending } : {}) as object

// the tenant migrations: the example's items table, and with SPEED_TEMPLATE=bench the 26 tables of bench:create
const migrations = mkdtempSync(join(tmpdir(), 'bh-speed-'))
after(() => { rmSync(migrations, { recursive: true, force: true }) })
const shared = join(migrations, 'shared')
const tenant = join(migrations, 'tenant')
for (const dir of [shared, tenant]) mkdirSync(dir)
writeFileSync(join(tenant, '20260101000000-create-items.cjs'), `module.exports = {
  async up ({ context: { queryInterface, Sequelize } }) {
    await queryInterface.createTable('items', { id: { type: Sequelize.INTEGER, primaryKey: true, autoIncrement: true }, title: { type: Sequelize.STRING(200), allowNull: false } })
  }
}
`)
if (process.env.SPEED_TEMPLATE === 'bench') {
  const sql = (name: string): string => JSON.stringify(fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url)))
  // run with search_path = <schema>, public: the unqualified DDL lands in the schema being migrated
  const runs = (file: string): string => `const { readFileSync } = require('node:fs')
module.exports = { async up ({ context: { queryInterface } }) { await queryInterface.sequelize.query(readFileSync(${file}, 'utf8')) } }
`
  writeFileSync(join(shared, '20260101000000-bench-public.cjs'), runs(sql('bench-public.sql')))
  writeFileSync(join(tenant, '20260102000000-bench-template.cjs'), runs(sql('bench-tenant-template.sql')))
}

const sequelize = sequelizeFor({ after }, await createTestDatabase({ after }))
const Item = sequelize.define('Item', { title: { type: DataTypes.STRING, allowNull: false } }, { tableName: 'items', timestamps: false })
const options = { sequelize, tenantModels: ['Item'], tenantMigrations: tenant, sharedMigrations: shared }
await createBoardinghouse(options).migrate()
const app = Fastify()
await app.register(fastifyCookie)
await app.register(fastifySession, { secret: 'a test secret of more than 32 chars', cookie: { secure: false }, saveUninitialized: false })
await app.register(boardinghouse, { ...options, listen: false, ...extra })
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
