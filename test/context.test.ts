import { test } from 'node:test'
import assert from 'node:assert/strict'
import { QueryTypes, type Sequelize } from 'sequelize'
import { runWithSchema } from '../plugin/context.js'
import { withConnection } from '../plugin/db.js'
import { setupBoardinghouse } from './helpers.js'

async function path (sequelize: Sequelize): Promise<string | undefined> {
  const [row] = await sequelize.query<{ search_path: string }>('SHOW search_path', { type: QueryTypes.SELECT })
  return row?.search_path
}

test('search_path on one pooled connection shared by every schema', async (t) => {
  // pool max 1: every query reuses the connection the previous one left, so stale state would show.
  const { bh, sequelize } = await setupBoardinghouse(t, {}, { pool: { max: 1, min: 0 } })
  await bh.createSchema('acme')
  await bh.createSchema('globex')
  const Item = sequelize.models.Item as NonNullable<typeof sequelize.models.Item>
  await bh.runInSchema('acme', async () => { await Item.create({ title: 'a' }) })
  await bh.runInSchema('globex', async () => { await Item.create({ title: 'g' }) })

  await t.test('a query with no schema after a tenant query runs in public', async () => {
    await bh.runInSchema('acme', async () => { assert.equal(await path(sequelize), 'acme, public') })
    assert.equal(await path(sequelize), 'public')
  })

  await t.test('bind queries get the path on their connection first', async () => {
    await bh.runInSchema('globex', async () => { await Item.count() })
    const rows = await bh.runInSchema('acme', async () =>
      await sequelize.query<{ title: string }>('SELECT title FROM items WHERE id > $1', { bind: [0], type: QueryTypes.SELECT }))
    assert.deepEqual(rows.map((r) => r.title), ['a'])
  })

  await t.test('addIndex (flagged supportsSearchPath: false) lands in the active schema, not the last one', async () => {
    await withConnection(sequelize, async (c) => { await c.query('SET search_path TO globex, public') })
    await bh.runInSchema('acme', async () => {
      await sequelize.getQueryInterface().addIndex('items', ['title'], { name: 'items_title_idx' })
    })
    const found = await sequelize.query<{ schemaname: string }>("SELECT schemaname FROM pg_indexes WHERE indexname = 'items_title_idx'", { type: QueryTypes.SELECT })
    assert.deepEqual(found.map((r) => r.schemaname), ['acme'])
  })

  await t.test('ROLLBACK of an aborted transaction still works inside a schema', async () => {
    await bh.runInSchema('acme', async () => {
      const transaction = await sequelize.transaction()
      await assert.rejects(sequelize.query('SELECT no_such_column FROM items', { transaction }))
      await transaction.rollback()
      assert.equal(await Item.count(), 1)
    })
  })

  await t.test('runWithSchema(null) inside a schema returns to public, and back', async () => {
    await bh.runInSchema('acme', async () => {
      await runWithSchema(null, async () => { assert.equal(await path(sequelize), 'public') })
      assert.equal(await path(sequelize), 'acme, public')
    })
  })

  await t.test('concurrent contexts on a small pool never see each other\'s rows', async () => {
    const tasks = Array.from({ length: 200 }, async (_, i) => {
      const schema = i % 2 === 0 ? 'acme' : 'globex'
      return await bh.runInSchema(schema, async () => {
        const titles = (await Item.findAll()).map((r) => r.get('title'))
        return { schema, titles }
      })
    })
    for (const { schema, titles } of await Promise.all(tasks)) {
      assert.deepEqual(titles, [schema === 'acme' ? 'a' : 'g'])
    }
  })
})

test('the query path outside migrations is Sequelize\'s own: a later patch of Sequelize.prototype.query sees every query', async (t) => {
  const { bh, sequelize } = await setupBoardinghouse(t, {}, { pool: { max: 1, min: 0 } })
  await bh.createSchema('acme')
  const Item = sequelize.models.Item as NonNullable<typeof sequelize.models.Item>
  assert.equal(Object.hasOwn(sequelize, 'query'), false, 'no wrapper left on the instance after migrate')
  assert.equal(Object.hasOwn(sequelize, 'transaction'), false)
  const proto = Object.getPrototypeOf(sequelize) as { query: (...args: unknown[]) => Promise<unknown> }
  const original = proto.query
  const traced: string[] = []
  proto.query = async function traced_ (this: Sequelize, ...args: unknown[]) { traced.push(typeof args[0] === 'string' ? args[0] : String((args[0] as { query?: string }).query)); return await original.apply(this, args) }
  try {
    await bh.runInSchema('acme', async () => { await Item.create({ title: 'a' }); await Item.count() })
  } finally {
    proto.query = original
  }
  assert.ok(traced.some((sql) => sql.startsWith('INSERT INTO "items"')), traced.join('\n'))
  assert.ok(traced.some((sql) => /^SELECT count\(\*\)/.test(sql)), traced.join('\n'))

  await t.test('during a migration, queries without a transaction join the schema\'s; the wrapper goes when it ends', async () => {
    const seen: boolean[] = []
    const hook = (): void => { seen.push(Object.hasOwn(sequelize, 'query')) }
    sequelize.addHook('beforeQuery', 'probe', hook)
    try {
      await bh.migrate()
    } finally {
      sequelize.removeHook('beforeQuery', 'probe')
    }
    assert.ok(seen.includes(true), 'wrapped while a schema migrated')
    assert.equal(Object.hasOwn(sequelize, 'query'), false)
  })

  await t.test('a failed query still reports FST_BH_NO_SCHEMA / FST_BH_SCHEMA_NOT_FOUND (on a pool of one)', async () => {
    await assert.rejects(Item.count(), (err: { code?: string }) => err.code === 'FST_BH_NO_SCHEMA')
    await bh.createSchema('doomed')
    await bh.runInSchema('doomed', async () => {
      await withConnection(sequelize, async (c) => { await c.query('DROP SCHEMA doomed CASCADE') })
      await assert.rejects(Item.count(), (err: { code?: string }) => err.code === 'FST_BH_SCHEMA_NOT_FOUND')
      const transaction = await sequelize.transaction()
      await assert.rejects(Item.count({ transaction }), (err: { code?: string }) => err.code === 'FST_BH_SCHEMA_NOT_FOUND' || err.code === undefined)
      await transaction.rollback()
    })
    assert.equal(await Item.count().catch((err: { code?: string }) => err.code), 'FST_BH_NO_SCHEMA')
  })
})
