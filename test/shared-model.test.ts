import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DataTypes } from 'sequelize'
import { createTestDatabase, sequelizeFor, EXAMPLE_TENANT_MIGRATIONS } from './helpers.js'
import { defineExampleModels } from '../example/models/index.js'
import { Boardinghouse } from '../plugin/index.js'

test('a shared model without schema: \'public\' always reaches public, and a template table shadowing it is refused', async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url)
  defineExampleModels(sequelize)
  const Plan = sequelize.define('Plan', { title: DataTypes.STRING }, { tableName: 'plans', timestamps: false }) // no schema option
  const bh = new Boardinghouse({ sequelize, tenantModels: ['Item'], tenantMigrations: EXAMPLE_TENANT_MIGRATIONS })
  await bh.migrate()
  await sequelize.query('CREATE TABLE public.plans (id serial PRIMARY KEY, title text)')
  await sequelize.query("INSERT INTO public.plans (title) VALUES ('shared plan')")
  await bh.createSchema('acme')
  // a table named like the shared model's, in one tenant: the shared model still reads public
  await sequelize.query('CREATE TABLE acme.plans (id serial PRIMARY KEY, title text)')
  await sequelize.query("INSERT INTO acme.plans (title) VALUES ('acme private')")
  const titles = await bh.runInSchema('acme', async () => (await Plan.findAll()).map((p) => p.get('title')))
  assert.deepEqual(titles, ['shared plan'])
  await bh.runInSchema('acme', async () => { await Plan.create({ title: 'written in a tenant request' }) })
  assert.deepEqual((await sequelize.query<{ title: string }>('SELECT title FROM acme.plans', { type: 'SELECT' as never })).map((r) => r.title), ['acme private'])
  // in the template, where every new schema would get it: check() and migrate refuse it
  await sequelize.query('CREATE TABLE __template__.plans (id serial PRIMARY KEY, title text)')
  await assert.rejects(bh.check(), (err: Error & { code?: string }) => { assert.equal(err.code, 'FST_BH_TEMPLATE_SHADOWS_SHARED'); assert.match(err.message, /plans/); return true })
  await assert.rejects(bh.migrate(), { code: 'FST_BH_TEMPLATE_SHADOWS_SHARED' })
})
