/** Test helpers: every test file works in a database of its own, created here and dropped after. */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import type { TestContext } from 'node:test'
import pg from 'pg'

export function adminUrl (): string {
  const url = process.env.DATABASE_URL
  if (url === undefined || url === '') throw new Error('DATABASE_URL is unset: run the tests with `npm test`')
  return url
}

export function urlForDatabase (database: string): string {
  const url = new URL(adminUrl())
  url.pathname = '/' + database
  return url.toString()
}

/** Runs one statement on the admin database. */
export async function adminQuery (sql: string): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: adminUrl() })
  await client.connect()
  try {
    return await client.query(sql)
  } finally {
    await client.end()
  }
}

/** Creates a fresh database for this test (file) and drops it when the test ends. Returns its URL. */
export async function createTestDatabase (t: Pick<TestContext, 'after'> | { after: (fn: () => Promise<void>) => void }, prefix = 'bh'): Promise<string> {
  const name = `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`
  await adminQuery(`CREATE DATABASE "${name}"`)
  t.after(async () => {
    await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
  })
  return urlForDatabase(name)
}

/** A pg client on `url`, closed when the test ends. */
export async function connect (t: { after: (fn: () => Promise<void>) => void }, url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url })
  // the database may be dropped (WITH FORCE) before this client is ended
  client.on('error', () => {})
  await client.connect()
  t.after(async () => { await client.end().catch(() => {}) })
  return client
}

import { Sequelize, type Options } from 'sequelize'
import { fileURLToPath } from 'node:url'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import type { BoardinghouseOptions } from '../plugin/options.js'
import { defineExampleModels } from '../example/models/index.js'

export const EXAMPLE_TENANT_MIGRATIONS = fileURLToPath(new URL('../example/migrations/tenant/', import.meta.url))
export const EXAMPLE_SHARED_MIGRATIONS = fileURLToPath(new URL('../example/migrations/shared/', import.meta.url))

/** A Sequelize instance on `url`, closed when the test ends. */
export function sequelizeFor (t: { after: (fn: () => Promise<void>) => void }, url: string, options: Options = {}): Sequelize {
  const sequelize = new Sequelize(url, { logging: false, dialect: 'postgres', ...options })
  t.after(async () => { await sequelize.close() })
  return sequelize
}

/**
 * A fresh database with the example's models and migrations, migrated: returns the API and its
 * Sequelize instance. `options` override the defaults.
 */
export async function setupBoardinghouse (t: { after: (fn: () => Promise<void>) => void }, options: Partial<BoardinghouseOptions> = {}, sequelizeOptions: Options = {}): Promise<{ bh: Boardinghouse, sequelize: Sequelize, url: string }> {
  const url = await createTestDatabase(t)
  const sequelize = options.sequelize ?? sequelizeFor(t, url, sequelizeOptions)
  defineExampleModels(sequelize)
  const bh = new Boardinghouse({ tenantModels: ['Item'], tenantMigrations: EXAMPLE_TENANT_MIGRATIONS, ...options, sequelize })
  await bh.migrate()
  return { bh, sequelize, url }
}

/** Names of the non-system schemas in the database, sorted. */
export async function listPgSchemas (sequelize: Sequelize): Promise<string[]> {
  const rows = await sequelize.query<{ nspname: string }>(
    "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' ORDER BY 1",
    { type: 'SELECT' as never })
  return rows.map((r) => r.nspname)
}

/** What the library's tables and the database's schemas hold: compare before and after a refused call to prove nothing changed. */
export interface RegistryState { schemas: string[], registry: unknown[], members: unknown[], ledger: unknown[] }

export async function registryState (sequelize: Sequelize): Promise<RegistryState> {
  const q = async (sql: string): Promise<unknown[]> => await sequelize.query(sql, { type: 'SELECT' as never })
  return {
    schemas: await listPgSchemas(sequelize),
    registry: await q('SELECT schema_name, name, is_active FROM public.boardinghouse_schema ORDER BY 1'),
    members: await q('SELECT schema_name, user_id FROM public.boardinghouse_membership ORDER BY 1, 2'),
    ledger: await q('SELECT schema_name, name FROM public.boardinghouse_tenant_migration ORDER BY 1, 2')
  }
}

/** An `assert.rejects` matcher: the error has `code` (and `status`, when given). */
export function hasCode (code: string, status?: number): (err: unknown) => boolean {
  return (err: unknown): boolean => {
    const e = err as { code?: string, statusCode?: number, message?: string }
    assert.equal(e.code, code, e.message)
    if (status !== undefined) assert.equal(e.statusCode, status)
    return true
  }
}

export interface CliRun { code: number | null, stdout: string, stderr: string }

/** Runs the CLI from source (plugin/cli.ts) with the example's config, in `env` (which names the DATABASE_URL). */
export async function runCli (env: NodeJS.ProcessEnv, ...args: string[]): Promise<CliRun> {
  const root = fileURLToPath(new URL('..', import.meta.url))
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'plugin/cli.ts', '--config', 'example/boardinghouse.config.ts', ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('error', reject)
    child.on('close', (code) => { resolve({ code, stdout, stderr }) })
  })
}

/** A pg client LISTENing on the change channel; `take()` returns (and clears) the payloads received. */
export async function listener (t: { after: (fn: () => Promise<void>) => void }, url: string): Promise<{ client: pg.Client, take: () => Promise<string[]> }> {
  const client = await connect(t, url)
  const got: string[] = []
  client.on('notification', (msg) => { got.push(msg.payload ?? '') })
  await client.query('LISTEN boardinghouse_changes')
  return {
    client,
    take: async () => {
      // a round trip on the listening connection: notices committed before it are delivered before its result
      await client.query('SELECT 1')
      return got.splice(0)
    }
  }
}
