import { test } from 'node:test'
import assert from 'node:assert/strict'
import { resolvers } from '../plugin/index.js'
import { buildTestApp } from './fixtures/app.js'
import { runChurnHarness, runLeakHarness, seedTenants } from './fixtures/leak.js'
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

test('subdomain-routed requests and background jobs mixed in: still no foreign row, and other tenants\' subdomains are refused', async (t) => {
  const { bh, sequelize, url } = await setupBoardinghouse(t, {}, { pool: POOL })
  const setup = await seedTenants(bh, 30, 10)
  const app = await buildTestApp({ sequelize, schemaFrom: resolvers.subdomain({ baseDomain: 'leak.example' }) })
  t.after(async () => { await app.close() })
  const killer = await connect(t, url)
  const result = await runLeakHarness(app, setup, { requests: 3000, concurrency: 48, killer, kills: 2, subdomain: { baseDomain: 'leak.example' }, jobs: bh })
  t.diagnostic(JSON.stringify(result))
  assert.equal(result.foreign, 0, result.examples.join('\n'))
  assert.equal(result.unexpected, 0, result.examples.join('\n'))
  assert.ok((result.routed ?? 0) > 100, `subdomain-routed requests ran (${String(result.routed)})`)
  assert.ok((result.jobs ?? 0) > 100, `jobs ran (${String(result.jobs)})`)
  assert.ok(result.ok > 2400, `most requests succeed (${result.ok})`)
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

/** 20 tenants, 20 users with two schemas each; mid-run: 6 revocations, 2 deactivations, 2 deactivations-then-drops, 2 drops. */
async function churnSetup (t: { after: (fn: () => Promise<void>) => void }) {
  const { bh, sequelize } = await setupBoardinghouse(t, {}, { pool: POOL })
  const setup = await seedTenants(bh, 20, 20)
  const switchers = [...setup.users.entries()].filter(([, s]) => s.length > 1)
  const events: Array<{ at: number, run: () => Promise<void> }> = []
  let at = 150
  for (const [id, schemas] of switchers.slice(0, 6)) events.push({ at: at += 60, run: async () => { await bh.revoke(schemas[0] as string, id) } })
  const held = [...new Set(switchers.slice(6).map(([, s]) => s[0] as string))]
  for (const schema of held.slice(0, 2)) events.push({ at: at += 60, run: async () => { await bh.deleteSchema(schema) } })
  for (const schema of held.slice(2, 4)) events.push({ at: at += 60, run: async () => { await bh.deleteSchema(schema); await bh.deleteSchema(schema, { drop: true }) } })
  for (const schema of held.slice(4, 6)) events.push({ at: at += 60, run: async () => { await bh.deleteSchema(schema, { drop: true }) } })
  return { bh, sequelize, setup, events }
}

test('revocations, deactivations and drops mid-run: every write lands in the schema its request was made for, or is refused', async (t) => {
  const { bh, sequelize, setup, events } = await churnSetup(t)
  const app = await buildTestApp({ sequelize })
  t.after(async () => { await app.close() })
  const result = await runChurnHarness(app, bh, setup, { requests: 1500, concurrency: 16, events })
  t.diagnostic(JSON.stringify(result))
  assert.equal(result.events, events.length)
  assert.equal(result.misdirected, 0, result.examples.join('\n'))
  assert.equal(result.unexpected, 0, result.examples.join('\n'))
  assert.ok(result.written > 200, `writes happened (${result.written})`)
  assert.ok(result.refused > 0, 'stale selections were refused')
})

test('negative control: an app that auto-selects on any request (the old behaviour) misdirects writes under the same churn', async (t) => {
  const { bh, sequelize, setup, events } = await churnSetup(t)
  const app = await buildTestApp({ sequelize })
  app.addHook('preHandler', async function autoSelectAlways (request) {
    const mine = request.boardinghouse.schemas
    if (request.tenant === null && request.boardinghouse.userId !== null && mine.length === 1) request.boardinghouse.activate((mine[0] as { schema: string }).schema, { persist: true })
  })
  t.after(async () => { await app.close() })
  const result = await runChurnHarness(app, bh, setup, { requests: 1500, concurrency: 16, events })
  t.diagnostic(JSON.stringify(result))
  assert.ok(result.misdirected > 0, 'the harness must be able to see a misdirected write')
})
