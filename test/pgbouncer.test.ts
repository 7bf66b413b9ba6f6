import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildTestApp } from './fixtures/app.js'
import { runLeakHarness, seedTenants } from './fixtures/leak.js'
import { startPgBouncer } from './fixtures/pgbouncer.js'
import { connect, sequelizeFor, setupBoardinghouse } from './helpers.js'

const POOL = { max: 5, min: 0, acquire: 60_000 }

test('behind PgBouncer in transaction-pooling mode: no foreign rows, bind queries included', async (t) => {
  const { bh, url } = await setupBoardinghouse(t)
  const setup = await seedTenants(bh, 50, 10)
  const bouncer = await startPgBouncer(url, 5)
  t.after(async () => { await bouncer.stop() })

  await t.test("bindPath 'transaction': 0 foreign rows in 3,000 mixed requests, with killed server connections", async (t) => {
    const through = sequelizeFor(t, bouncer.url, { pool: POOL })
    const app = await buildTestApp({ sequelize: through, bindPath: 'transaction', listen: false })
    t.after(async () => { await app.close() })
    const killer = await connect(t, url)
    const result = await runLeakHarness(app, setup, { requests: 3000, concurrency: 64, killer, kills: 2 })
    t.diagnostic(JSON.stringify(result))
    assert.equal(result.foreign, 0, result.examples.join('\n'))
    assert.equal(result.unexpected, 0, result.examples.join('\n'))
    assert.ok(result.ok > 2500, `most requests succeed (${result.ok})`)
  })

  await t.test("negative control: bindPath 'set' (a separate SET before bind queries) leaks through PgBouncer", async (t) => {
    const through = sequelizeFor(t, bouncer.url, { pool: POOL })
    const app = await buildTestApp({ sequelize: through, bindPath: 'set', listen: false })
    t.after(async () => { await app.close() })
    const result = await runLeakHarness(app, setup, { requests: 3000, concurrency: 64 })
    t.diagnostic(JSON.stringify(result))
    assert.ok(result.foreign > 0, 'the harness must see the leak this setting has behind PgBouncer')
  })
})
