import { test } from 'node:test'
import assert from 'node:assert/strict'
import { QueryTypes, type Model, type ModelStatic, type Sequelize } from 'sequelize'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import { DEFAULT_POOL_MAX_SCHEMAS, poolMaxUses } from '../plugin/db.js'
import { runWithSchema } from '../plugin/context.js'
import { defineExampleModels } from '../example/models/index.js'
import { EXAMPLE_TENANT_MIGRATIONS, createTestDatabase, sequelizeFor } from './helpers.js'

async function pid (sequelize: Sequelize): Promise<number> {
  const rows = await sequelize.query<{ pid: number }>('SELECT pg_backend_pid() AS pid', { type: QueryTypes.SELECT })
  return Number(rows[0]?.pid)
}

test('pooled connections are recycled by default after serving DEFAULT_POOL_MAX_SCHEMAS schemas, unless the app sets pool.maxUses', async (t) => {
  const url = await createTestDatabase(t)
  const make = (maxUses?: number): Sequelize => {
    const sequelize = sequelizeFor(t, url, { pool: { max: 1, ...(maxUses !== undefined ? { maxUses } : {}) } })
    defineExampleModels(sequelize)
    new Boardinghouse({ sequelize, tenantModels: ['Item'] }) // eslint-disable-line no-new
    assert.equal(poolMaxUses(sequelize), maxUses === undefined || maxUses === 0 ? Infinity : maxUses)
    return sequelize
  }
  // The query hook counts the schema a query runs in; a search_path naming a schema that does not
  // exist is valid, so no schema needs creating.
  const pidsAfter = async (sequelize: Sequelize, queries: number, schemas: number): Promise<number[]> => {
    const seen: number[] = []
    for (let i = 0; i < queries; i++) {
      const p = await runWithSchema(`r${i % schemas}`, async () => await pid(sequelize))
      if (seen[seen.length - 1] !== p) seen.push(p)
    }
    return seen
  }

  await t.test('default: a connection serving a few schemas is kept however many queries it runs', async () => {
    const sequelize = make()
    assert.equal((await pidsAfter(sequelize, 2 * DEFAULT_POOL_MAX_SCHEMAS + 5, 5)).length, 1)
  })

  await t.test('default: a connection is replaced once it served more than DEFAULT_POOL_MAX_SCHEMAS schemas', async () => {
    const sequelize = make()
    const first = await pidsAfter(sequelize, DEFAULT_POOL_MAX_SCHEMAS, DEFAULT_POOL_MAX_SCHEMAS)
    assert.equal(first.length, 1, 'still one backend after exactly the limit')
    // One more distinct schema retires it: the query after that one gets a fresh backend.
    assert.equal((await pidsAfter(sequelize, DEFAULT_POOL_MAX_SCHEMAS + 2, DEFAULT_POOL_MAX_SCHEMAS + 1)).length, 2)
    // Queries in public (no schema) are not counted.
    const publicPids = new Set<number>()
    for (let i = 0; i < 20; i++) publicPids.add(await pid(sequelize))
    assert.equal(publicPids.size, 1)
  })

  await t.test("the app's own pool.maxUses wins (recycling by uses, no schema count)", async () => {
    const sequelize = make(10)
    assert.equal((await pidsAfter(sequelize, 25, 1)).length, 3)
  })

  await t.test('pool.maxUses: 0 keeps connections for ever (the control: one backend throughout)', async () => {
    const sequelize = make(0)
    assert.equal((await pidsAfter(sequelize, DEFAULT_POOL_MAX_SCHEMAS + 50, DEFAULT_POOL_MAX_SCHEMAS + 50)).length, 1)
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
