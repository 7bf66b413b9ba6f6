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
