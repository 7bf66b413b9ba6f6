import { test } from 'node:test'
import assert from 'node:assert/strict'
import { QueryTypes, type Model, type ModelStatic, type Sequelize } from 'sequelize'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import { DEFAULT_POOL_MAX_USES, poolMaxUses } from '../plugin/db.js'
import { defineExampleModels } from '../example/models/index.js'
import { EXAMPLE_TENANT_MIGRATIONS, createTestDatabase, sequelizeFor } from './helpers.js'

async function pid (sequelize: Sequelize): Promise<number> {
  const rows = await sequelize.query<{ pid: number }>('SELECT pg_backend_pid() AS pid', { type: QueryTypes.SELECT })
  return Number(rows[0]?.pid)
}

test('pooled connections are recycled by default, unless the app sets pool.maxUses', async (t) => {
  const url = await createTestDatabase(t)
  const make = (maxUses?: number): Sequelize => {
    const sequelize = sequelizeFor(t, url, { pool: { max: 1, ...(maxUses !== undefined ? { maxUses } : {}) } })
    defineExampleModels(sequelize)
    assert.equal(poolMaxUses(sequelize), maxUses === undefined || maxUses === 0 ? Infinity : maxUses)
    new Boardinghouse({ sequelize, tenantModels: ['Item'] }) // eslint-disable-line no-new
    return sequelize
  }
  const pidsAfter = async (sequelize: Sequelize, queries: number): Promise<Set<number>> => {
    const seen = new Set<number>()
    for (let i = 0; i < queries; i++) seen.add(await pid(sequelize))
    return seen
  }

  await t.test('default: a connection is replaced after DEFAULT_POOL_MAX_USES uses', async () => {
    const sequelize = make()
    assert.equal(poolMaxUses(sequelize), DEFAULT_POOL_MAX_USES)
    const seen = await pidsAfter(sequelize, DEFAULT_POOL_MAX_USES + 5)
    assert.equal(seen.size, 2)
  })

  await t.test("the app's own pool.maxUses wins", async () => {
    const sequelize = make(10)
    assert.equal(poolMaxUses(sequelize), 10)
    assert.equal((await pidsAfter(sequelize, 25)).size, 3)
  })

  await t.test('pool.maxUses: 0 keeps connections for ever (the control: one backend throughout)', async () => {
    const sequelize = make(0)
    assert.equal(poolMaxUses(sequelize), Infinity)
    assert.equal((await pidsAfter(sequelize, DEFAULT_POOL_MAX_USES + 5)).size, 1)
  })
})

test('an audited table costs a backend far less than the whole trigger body compiled per table', async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url, { pool: { max: 1, maxUses: 0 } })
  defineExampleModels(sequelize)
  const bh = new Boardinghouse({ sequelize, tenantModels: ['Item'], tenantMigrations: EXAMPLE_TENANT_MIGRATIONS, auditModels: ['Item'] })
  await bh.migrate()
  const schemas = Array.from({ length: 40 }, (_, i) => `m${i}`)
  for (const s of schemas) await bh.createSchema(s)
  const Item = sequelize.models.Item as ModelStatic<Model>
  const touch = async (list: string[]): Promise<void> => {
    for (const s of list) {
      await bh.runInSchema(s, async () => {
        const item = await Item.create({ title: 'a' })
        await item.update({ title: 'b' })
        await item.destroy()
      })
    }
  }
  const bytes = async (): Promise<number> => Number((await sequelize.query<{ b: string }>('SELECT sum(total_bytes) AS b FROM pg_backend_memory_contexts', { type: QueryTypes.SELECT }))[0]?.b)
  // Warm up (library, first-use caches) on 10 schemas, then measure 30 more.
  await touch(schemas.slice(0, 10))
  const before = await bytes()
  await touch(schemas.slice(10))
  const perSchemaKb = (await bytes() - before) / 30 / 1024
  // Measured on PostgreSQL 15: ~65 KB per schema now, ~175 KB with the trigger body compiled per table.
  assert.ok(perSchemaKb < 110, `${perSchemaKb.toFixed(1)} KB per schema`)
  const entries = await sequelize.query<{ n: string }>("SELECT count(*) AS n FROM public.boardinghouse_log_entry WHERE action = 'update'", { type: QueryTypes.SELECT })
  assert.equal(entries[0]?.n, '40')
})
