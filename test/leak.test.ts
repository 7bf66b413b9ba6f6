import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildTestApp } from './fixtures/app.js'
import { runLeakHarness, seedTenants } from './fixtures/leak.js'
import { connect, sequelizeFor, setupBoardinghouse } from './helpers.js'

const POOL = { max: 5, min: 0, acquire: 60_000 }

test('no request ever sees another tenant\'s rows: 50 tenants, pool of 5, 5,000 concurrent mixed requests, killed connections', async (t) => {
  const { bh, sequelize, url } = await setupBoardinghouse(t, {}, { pool: POOL })
  const setup = await seedTenants(bh, 50, 10)
  const app = await buildTestApp({ sequelize })
  t.after(async () => { await app.close() })
  const killer = await connect(t, url)

  const result = await runLeakHarness(app, setup, { requests: 5000, concurrency: 64, killer, kills: 2 })
  t.diagnostic(JSON.stringify(result))
  assert.equal(result.foreign, 0, result.examples.join('\n'))
  assert.equal(result.unexpected, 0, result.examples.join('\n'))
  assert.equal(result.requests, 5000)
  assert.ok(result.terminated >= 2, 'backends were killed mid-run')
  assert.ok(result.ok > 4000, `most requests succeed (${result.ok})`)

  // the writes landed in their own schemas
  for (const schema of setup.tenants.slice(0, 10)) {
    const titles = await bh.runInSchema(schema, async () => await sequelize.query<{ title: string }>('SELECT title FROM items', { type: 'SELECT' as never }))
    for (const { title } of titles) assert.ok(title.startsWith(`${schema}:`), `${schema} holds ${title}`)
  }
})

test('negative control: the same harness leaks when the path is set by a separate pooled query', async (t) => {
  const { bh, url } = await setupBoardinghouse(t, {}, { pool: POOL })
  const setup = await seedTenants(bh, 50, 0)
  const naive = sequelizeFor(t, url, { pool: POOL })
  const app = await buildTestApp({ sequelize: naive, withoutLibraryHook: true, separateSetQuery: true, listen: false })
  t.after(async () => { await app.close() })
  const result = await runLeakHarness(app, setup, { requests: 2000, concurrency: 64 })
  t.diagnostic(JSON.stringify(result))
  assert.ok(result.foreign > 0, 'the harness must be able to see a leak')
})
