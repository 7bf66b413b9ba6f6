import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import pg from 'pg'
import { Boardinghouse } from '../plugin/index.js'
import { buildExampleApp } from '../example/app.js'
import { defineExampleModels } from '../example/models/index.js'
import { seed } from '../example/seed.js'
import { adminQuery, createTestDatabase, sequelizeFor } from './helpers.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SHARED = join(ROOT, 'example/migrations/shared')
const TENANT = join(ROOT, 'example/migrations/tenant')

async function loginAs (app: FastifyInstance, username: string, password = username): Promise<{ status: number, cookie: string }> {
  const res = await app.inject({ method: 'POST', url: '/login', payload: { username, password } })
  const c = res.cookies.find((x) => x.name === 'sessionId')
  return { status: res.statusCode, cookie: c !== undefined ? `sessionId=${c.value}` : '' }
}

test('the example app: logins, /me, schema switching, items per schema', async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url)
  const models = defineExampleModels(sequelize)
  const bh = new Boardinghouse({ sequelize, tenantModels: ['Item'], sharedMigrations: SHARED, tenantMigrations: TENANT })
  await bh.migrate()
  assert.equal(await seed(bh, models), true)
  assert.equal(await seed(bh, models), false, 'seeding runs once')
  const app = await buildExampleApp({ sequelize, sessionSecret: 's'.repeat(40) })
  t.after(async () => { await app.close() })
  const me = async (cookie: string): Promise<{ user: { username: string } | null, schema: string | null, schemas: string[] }> =>
    (await app.inject({ method: 'GET', url: '/me', headers: { cookie } })).json()
  const items = async (cookie: string) => await app.inject({ method: 'GET', url: '/items', headers: { cookie } })

  assert.deepEqual(await me(''), { user: null, schema: null, schemas: [] })
  assert.equal((await loginAs(app, 'alice', 'wrong')).status, 401)
  assert.equal((await loginAs(app, 'mallory')).status, 401)

  const alice = (await loginAs(app, 'alice')).cookie
  assert.deepEqual({ ...(await me(alice)), user: null }, { user: null, schema: null, schemas: ['acme', 'globex'] })
  assert.equal((await items(alice)).json().code, 'FST_BH_NO_SCHEMA')
  assert.equal((await app.inject({ method: 'POST', url: '/__change_schema__', payload: { schema: 'acme' }, headers: { cookie: alice } })).statusCode, 200)
  assert.deepEqual((await items(alice)).json().items.map((i: { title: string }) => i.title), ['Anvil', 'Rocket skates'])
  const created = await app.inject({ method: 'POST', url: '/items', payload: { title: 'Giant magnet' }, headers: { cookie: alice } })
  assert.equal(created.statusCode, 201)
  assert.equal((await app.inject({ method: 'POST', url: '/items', payload: { title: '   ' }, headers: { cookie: alice } })).json().code, 'INVALID_ITEM')
  assert.equal((await app.inject({ method: 'POST', url: '/__change_schema__', payload: { schema: 'globex' }, headers: { cookie: alice } })).statusCode, 200)
  assert.deepEqual((await items(alice)).json().items.map((i: { title: string }) => i.title), ['Doomsday device'])

  const bob = (await loginAs(app, 'bob')).cookie
  assert.equal((await me(bob)).schema, 'globex', 'bob has one schema: selected for him')
  const refused = await app.inject({ method: 'POST', url: '/__change_schema__', payload: { schema: 'acme' }, headers: { cookie: bob } })
  assert.equal(refused.statusCode, 403)

  const admin = (await loginAs(app, 'admin')).cookie
  assert.deepEqual((await me(admin)).schemas, ['acme', 'globex'])
  assert.equal((await app.inject({ method: 'POST', url: '/__change_schema__', payload: { schema: 'acme' }, headers: { cookie: admin } })).statusCode, 200)
  assert.deepEqual((await items(admin)).json().items.map((i: { title: string }) => i.title), ['Anvil', 'Rocket skates', 'Giant magnet'])

  // sessions live in Postgres
  const [row] = await sequelize.query<{ n: string }>('SELECT count(*) AS n FROM public.sessions', { type: 'SELECT' as never })
  assert.ok(Number(row?.n) >= 3)
  assert.equal((await app.inject({ method: 'POST', url: '/logout', headers: { cookie: alice } })).statusCode, 200)
  assert.equal((await me(alice)).user, null)
})

async function runExample (t: { after: (fn: () => Promise<void>) => void }, env: NodeJS.ProcessEnv): Promise<{ base: string, output: string[] }> {
  const child = spawn('npm', ['run', '--silent', 'example'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'], detached: true })
  t.after(async () => {
    if (child.exitCode === null) {
      process.kill(-(child.pid as number), 'SIGTERM')
      await once(child, 'exit')
    }
  })
  const output: string[] = []
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  for await (const line of lines) {
    output.push(line)
    const m = /listening on (http:\/\/\S+)/.exec(line)
    if (m !== null) return { base: (m[1] as string).replace(/\/$/, ''), output }
  }
  throw new Error(`the example exited: ${output.join('\n')}`)
}

test('npm run example: migrates, seeds, listens, prints the URL and the demo logins', async (t) => {
  const url = await createTestDatabase(t)
  const { base, output } = await runExample(t, { ...process.env, DATABASE_URL: url, PORT: '0' })
  assert.ok(output.some((l) => l.includes('seeded')), output.join('\n'))
  const res = await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'bob', password: 'bob' }) })
  assert.equal(res.status, 200)
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0] as string
  const me = await (await fetch(`${base}/me`, { headers: { cookie } })).json() as { schema: string }
  assert.equal(me.schema, 'globex')
})

test('npm run example with no DATABASE_URL starts an embedded PostgreSQL', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bh-example-'))
  chmodSync(dir, 0o777)
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: '0', EXAMPLE_DATA_DIR: dir }
  delete env.DATABASE_URL
  const { base, output } = await runExample(t, env)
  t.after(() => { rmSync(dir, { recursive: true, force: true }) }) // after the example has stopped
  assert.ok(output.some((l) => l.includes('embedded PostgreSQL')), output.join('\n'))
  const printed = output.map((l) => /DATABASE_URL=(postgres:\/\/\S+)/.exec(l)?.[1]).find((u) => u !== undefined)
  assert.ok(printed !== undefined, `the example prints its database URL: ${output.join('\n')}`)
  const client = new pg.Client({ connectionString: printed })
  await client.connect()
  const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM public.boardinghouse_schema')
  await client.end()
  assert.equal(rows[0]?.n, '2', 'the printed URL is the database the example seeded')
  const res = await fetch(`${base}/me`)
  assert.deepEqual(await res.json(), { user: null, schema: null, schemas: [] })
})

test('the example answers a database outage with 503 and a generic message, never the driver\'s error', async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url)
  const models = defineExampleModels(sequelize)
  const bh = new Boardinghouse({ sequelize, tenantModels: ['Item'], sharedMigrations: SHARED, tenantMigrations: TENANT })
  await bh.migrate()
  await seed(bh, models)
  const app = await buildExampleApp({ sequelize, sessionSecret: 's'.repeat(40) })
  t.after(async () => { await app.close() })
  const bob = (await loginAs(app, 'bob')).cookie
  assert.equal((await app.inject({ method: 'GET', url: '/items', headers: { cookie: bob } })).statusCode, 200)
  const database = new URL(url).pathname.slice(1)
  await adminQuery(`ALTER DATABASE "${database}" WITH ALLOW_CONNECTIONS false`)
  await adminQuery(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${database}'`)
  for (const [path, accept] of [['/items', 'application/json'], ['/me', 'application/json'], ['/app/items', 'text/html']] as const) {
    const res = await app.inject({ method: 'GET', url: path, headers: { cookie: bob, accept } })
    assert.equal(res.statusCode, 503, `${path}: ${res.body.slice(0, 300)}`)
    assert.doesNotMatch(res.body, /ECONNREFUSED|accepting connections|terminat|SequelizeConnection|pg_/i, path)
    if (accept === 'application/json') assert.equal(res.json().code, 'EXAMPLE_DATABASE_UNAVAILABLE')
    else assert.match(res.body, /database is unavailable/i)
  }
  await adminQuery(`ALTER DATABASE "${database}" WITH ALLOW_CONNECTIONS true`)
  assert.equal((await app.inject({ method: 'GET', url: '/items', headers: { cookie: bob } })).statusCode, 200, 'back once the database is')
})
