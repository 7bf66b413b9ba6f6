import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildTestApp, login } from './fixtures/app.js'
import { connect, setupBoardinghouse } from './helpers.js'

test('a schema dropped behind the cache\'s back: FST_BH_SCHEMA_NOT_FOUND (404), the cache forgets it, no raw 500', async (t) => {
  const { bh, sequelize, url } = await setupBoardinghouse(t)
  for (const s of ['acme', 'globex']) await bh.createSchema(s)
  await bh.grant('acme', 1)
  await bh.grant('globex', 1)
  const app = await buildTestApp({ sequelize })
  t.after(async () => { await app.close() })
  const cookie = await login(app, 1)
  assert.equal((await app.inject({ method: 'POST', url: '/__change_schema__', payload: { schema: 'acme' }, headers: { cookie } })).statusCode, 200)
  // another process drops acme; its change notice has not arrived yet: the cache still lists acme
  const other = await connect(t, url)
  await other.query('DROP SCHEMA acme CASCADE')
  assert.ok(bh.registry.peek()?.schemas.has('acme'), 'the cache still has acme')
  for (const path of ['/items', '/items/raw', '/items/bind', '/items/tx']) {
    const res = await app.inject({ method: 'GET', url: path, headers: { cookie } })
    // (its registry row is still there, as it would be until the dropping transaction commits: each answer is a 404)
    assert.equal(res.statusCode, 404, `${path}: ${res.body}`)
    assert.equal(res.json().code, 'FST_BH_SCHEMA_NOT_FOUND', path)
  }
  const post = await app.inject({ method: 'POST', url: '/items', payload: { title: 'x' }, headers: { cookie } })
  assert.equal(post.statusCode, 404, post.body)
  assert.equal(await bh.runInSchema('globex', async () => await (sequelize.models.Item as NonNullable<typeof sequelize.models.Item>).count()), 0, 'nothing landed in globex')

  // the same through runInSchema, on a write, with the registry reloaded by hand first
  await other.query('DROP SCHEMA globex CASCADE')
  await assert.rejects(bh.runInSchema('globex', async () => await (sequelize.models.Item as NonNullable<typeof sequelize.models.Item>).create({ title: 'y' })),
    (err: Error & { code?: string, cause?: { original?: { code?: string } } }) => {
      assert.equal(err.code, 'FST_BH_SCHEMA_NOT_FOUND')
      assert.equal(err.cause?.original?.code, '42P01')
      return true
    })
  assert.equal(bh.registry.peek(), null, 'the registry was invalidated')

  // a missing table in a schema that exists stays the database's error
  await bh.createSchema('initech')
  await assert.rejects(bh.runInSchema('initech', async () => await sequelize.query('SELECT * FROM no_such_table')),
    (err: Error & { code?: string, original?: { code?: string } }) => { assert.equal(err.original?.code, '42P01'); assert.notEqual(err.code, 'FST_BH_SCHEMA_NOT_FOUND'); return true })
})
