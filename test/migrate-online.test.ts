/**
 * Online migrations (`transaction = false`): CREATE INDEX CONCURRENTLY, VALIDATE CONSTRAINT outside
 * a transaction, in the schema being migrated, the ledger row only after success; a failed or
 * killed CONCURRENTLY repaired by the next run; the per-schema lock; tenant creation during one.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type pg from 'pg'
import { QueryTypes, type Sequelize } from 'sequelize'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import { MIGRATION_LOCK_KEY, WAITING_MARKER } from '../plugin/migrator/index.js'
import { TEMPLATE_SCHEMA } from '../plugin/names.js'
import { connect, createTestDatabase, sequelizeFor } from './helpers.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

function folder (t: { after: (fn: () => void) => void }): { dir: string, write: (name: string, body: string) => void } {
  const dir = mkdtempSync(join(tmpdir(), 'bh-online-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return { dir, write: (name, body) => writeFileSync(join(dir, name), body) }
}

type IndexState = 'valid' | 'invalid' | 'missing'

async function indexState (sequelize: Sequelize, schema: string, index: string): Promise<IndexState> {
  const rows = await sequelize.query<{ valid: boolean }>(
    `SELECT i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = :schema AND c.relname = :index`, { replacements: { schema, index }, type: QueryTypes.SELECT })
  return rows.length === 0 ? 'missing' : rows[0]?.valid === true ? 'valid' : 'invalid'
}

async function ledger (sequelize: Sequelize, schema: string): Promise<string[]> {
  const rows = await sequelize.query<{ name: string }>('SELECT name FROM public.boardinghouse_tenant_migration WHERE schema_name = :schema ORDER BY name',
    { replacements: { schema }, type: QueryTypes.SELECT })
  return rows.map((r) => r.name)
}

async function until (what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** Backends of this database running a statement that contains `marker`, waiting on a lock. */
async function waitingBackends (client: pg.Client, marker: string): Promise<number[]> {
  const { rows } = await client.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
       AND state = 'active' AND wait_event_type = 'Lock' AND query LIKE '%' || $1 || '%' AND query NOT LIKE '%pg_stat_activity%'`, [marker])
  return rows.map((r) => r.pid)
}

const SCHEMAS = ['o1', 'o2', 'o3', 'o4']

const CREATE_ITEMS = `module.exports = { async up ({ context: { queryInterface, Sequelize } }) {
  await queryInterface.createTable('items', {
    id: { type: Sequelize.INTEGER, primaryKey: true, autoIncrement: true },
    title: { type: Sequelize.TEXT },
    n: { type: Sequelize.INTEGER }
  })
} }`

test('online migrations', async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url, { pool: { max: 5 } })
  const tenant = folder(t)
  tenant.write('001-create-items.cjs', CREATE_ITEMS)
  const make = (): Boardinghouse => new Boardinghouse({ sequelize, tenantMigrations: tenant.dir })
  await make().migrate()
  for (const s of SCHEMAS) await make().createSchema(s)
  // A table of the same name in public: a statement that ran with the wrong path would land here.
  await sequelize.query('CREATE TABLE public.items (id int, title text, n int)')
  for (const s of SCHEMAS) await sequelize.query(`INSERT INTO ${s}.items (title, n) VALUES ('a', 1), ('b', 2)`)

  await t.test('sequelize-cli, umzug named and default-export forms, mixed with transactional ones, land in each schema and the template, VALID', async () => {
    // sequelize-cli's object, queryInterface.addIndex with concurrently (no schema named)
    tenant.write('002-title-idx.cjs', `module.exports = {
      transaction: false,
      async up (queryInterface, Sequelize) { await queryInterface.addIndex('items', ['title'], { name: 'items_title_idx', concurrently: true }) }
    }`)
    // transactional, between two online ones: a NOT VALID constraint and a column
    tenant.write('003-check.cjs', `module.exports = { async up ({ context: { queryInterface, Sequelize } }) {
      await queryInterface.sequelize.query('ALTER TABLE items ADD CONSTRAINT items_n_check CHECK (n >= 0) NOT VALID')
      await queryInterface.addColumn('items', 'done', { type: Sequelize.BOOLEAN })
    } }`)
    // umzug's named exports, raw sequelize.query with an unqualified table
    tenant.write('004-n-idx.mjs', `export const transaction = false
export async function up ({ context: { sequelize, transaction } }) {
  if (transaction !== null) throw new Error('an online migration has no transaction')
  await sequelize.query('CREATE INDEX CONCURRENTLY IF NOT EXISTS items_n_idx ON items (n)')
}`)
    // a default export object, schema-qualified through context.schema
    tenant.write('005-validate.mjs', `export default {
  transaction: false,
  async up ({ context: { sequelize, schema } }) { await sequelize.query('ALTER TABLE "' + schema + '".items VALIDATE CONSTRAINT items_n_check') }
}`)
    tenant.write('006-after.cjs', `module.exports = { async up ({ context: { queryInterface, Sequelize } }) {
      await queryInterface.addColumn('items', 'tag', { type: Sequelize.TEXT })
    } }`)
    const result = await make().migrate({ concurrency: 3 })
    const names = ['002-title-idx', '003-check', '004-n-idx', '005-validate', '006-after']
    assert.deepEqual(result.template, names)
    assert.equal(result.migratedSchemas, SCHEMAS.length)
    for (const s of [TEMPLATE_SCHEMA, ...SCHEMAS]) {
      assert.equal(await indexState(sequelize, s, 'items_title_idx'), 'valid', s)
      assert.equal(await indexState(sequelize, s, 'items_n_idx'), 'valid', s)
      const [check] = await sequelize.query<{ v: boolean }>(
        `SELECT convalidated AS v FROM pg_constraint WHERE conname = 'items_n_check' AND connamespace = :s::regnamespace`, { replacements: { s }, type: QueryTypes.SELECT })
      assert.equal(check?.v, true, `${s}: constraint validated`)
      assert.deepEqual(await ledger(sequelize, s), ['001-create-items', ...names], s)
    }
    const inPublic = await sequelize.query("SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'items'", { type: QueryTypes.SELECT })
    assert.deepEqual(inPublic, [], 'nothing landed on public.items')
    // a tenant created now is cloned with the indexes, at the head
    await make().createSchema('o5')
    assert.equal(await indexState(sequelize, 'o5', 'items_n_idx'), 'valid')
    assert.equal((await make().migrate()).migratedSchemas, 0)
  })

  await t.test('a failing online migration leaves no ledger row and no INVALID index; the rerun completes', async () => {
    await sequelize.query("INSERT INTO o2.items (title, n) VALUES ('a', 3)") // a duplicate title in o2 only
    tenant.write('007-unique.cjs', `module.exports = { transaction: false, async up ({ context: { sequelize } }) {
      await sequelize.query('CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS items_title_uniq ON items (title)')
    } }`)
    await assert.rejects(make().migrate({ concurrency: 1 }), (err: Error & { code?: string, schema?: string, migration?: string }) => {
      assert.equal(err.code, 'FST_BH_MIGRATION_FAILED')
      assert.equal(err.schema, 'o2')
      assert.equal(err.migration, '007-unique')
      assert.match(err.message, /could not create unique index/)
      return true
    })
    assert.ok(!(await ledger(sequelize, 'o2')).includes('007-unique'))
    assert.equal(await indexState(sequelize, 'o2', 'items_title_uniq'), 'missing', 'the INVALID index the failure left was dropped')
    assert.ok((await ledger(sequelize, 'o1')).includes('007-unique'))
    assert.equal(await indexState(sequelize, 'o1', 'items_title_uniq'), 'valid')
    assert.equal(await indexState(sequelize, 'o3', 'items_title_uniq'), 'missing', 'the run stopped at o2')

    await sequelize.query("DELETE FROM o2.items WHERE n = 3")
    const again = await make().migrate()
    assert.equal(again.migratedSchemas, 4) // o2, o3, o4, o5
    for (const s of [TEMPLATE_SCHEMA, ...SCHEMAS, 'o5']) {
      assert.equal(await indexState(sequelize, s, 'items_title_uniq'), 'valid', s)
      assert.ok((await ledger(sequelize, s)).includes('007-unique'), s)
    }
  })

  await t.test('a schema whose online-migration lock is held waits for it (another run in that schema)', async () => {
    const holder = await connect(t, url)
    const { rows } = await holder.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${MIGRATION_LOCK_KEY}, hashtext('o3')) AS ok`)
    assert.equal(rows[0]?.ok, true)
    tenant.write('008-locked.cjs', `module.exports = { transaction: false, async up ({ context: { sequelize } }) {
      await sequelize.query('CREATE INDEX CONCURRENTLY IF NOT EXISTS items_id_n_idx ON items (id, n)')
    } }`)
    let settled = false
    const run = make().migrate({ concurrency: 2 }).finally(() => { settled = true })
    await until('o4 migrated', async () => (await ledger(sequelize, 'o4')).includes('008-locked'))
    await new Promise((resolve) => setTimeout(resolve, 300))
    // negative control: everything else is done, o3 is not started while its lock is held
    assert.equal(settled, false)
    assert.equal(await indexState(sequelize, 'o3', 'items_id_n_idx'), 'missing')
    assert.ok(!(await ledger(sequelize, 'o3')).includes('008-locked'))
    await holder.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY}, hashtext('o3'))`)
    await run
    assert.equal(await indexState(sequelize, 'o3', 'items_id_n_idx'), 'valid')
    assert.ok((await ledger(sequelize, 'o3')).includes('008-locked'))
  })

  await t.test('createSchema during a CREATE INDEX CONCURRENTLY waits for the run without hanging it', async () => {
    // The CIC in o2 waits for this open transaction's lock on o2.items; a createSchema meanwhile
    // waits for the migration lock. A waiter blocked inside a statement would hold a snapshot the
    // CIC waits for: the run would never end.
    const blocker = await connect(t, url)
    await blocker.query('BEGIN')
    await blocker.query('LOCK TABLE o2.items IN ROW EXCLUSIVE MODE')
    tenant.write('009-blocked.cjs', `module.exports = { transaction: false, async up ({ context: { sequelize } }) {
      await sequelize.query('CREATE INDEX CONCURRENTLY IF NOT EXISTS items_tag_idx ON items (tag) /* bh_online_blocked */')
    } }`)
    const watcher = await connect(t, url)
    let migrated = false
    const run = make().migrate({ concurrency: 1 }).then((r) => { migrated = true; return r })
    await until('the CIC in o2 waiting', async () => (await waitingBackends(watcher, 'bh_online_blocked')).length === 1)
    let created = false
    const creation = make().createSchema('late').then((r) => { created = true; return r })
    // negative control: both are really waiting (the creation for the run's lock, the run for the blocker)
    await until('the creation waiting for the migration lock', async () =>
      (await watcher.query(`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()
         AND pid NOT IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = ${MIGRATION_LOCK_KEY} AND granted)`, [WAITING_MARKER])).rows.length === 1)
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.equal(created, false)
    assert.equal(migrated, false)
    assert.equal(await indexState(sequelize, 'o2', 'items_tag_idx'), 'invalid')
    assert.ok(!(await ledger(sequelize, 'o2')).includes('009-blocked'), 'no ledger row before it succeeded')
    await blocker.query('ROLLBACK')
    await Promise.race([Promise.all([run, creation]), new Promise((_resolve, reject) => setTimeout(() => { reject(new Error('migrate and createSchema hang')) }, 60_000).unref())])
    assert.equal(migrated, true)
    assert.equal(created, true)
    for (const s of ['o2', 'o3', 'late']) assert.equal(await indexState(sequelize, s, 'items_tag_idx'), 'valid', s)
    assert.ok((await ledger(sequelize, 'late')).includes('009-blocked'))
  })

  /**
   * A child process runs migrate; the CONCURRENTLY build in `schema` waits for this test's open
   * transaction; the child is SIGKILLed and its build's backend terminated: an INVALID index stays.
   */
  async function killDuring (migration: string, index: string, marker: string, schema: string): Promise<void> {
    const blocker = await connect(t, url)
    await blocker.query('BEGIN')
    await blocker.query(`LOCK TABLE "${schema}".items IN ROW EXCLUSIVE MODE`)
    tenant.write(`${migration}.cjs`, `module.exports = { transaction: false, async up ({ context: { sequelize } }) {
      await sequelize.query('CREATE INDEX CONCURRENTLY IF NOT EXISTS ${index} ON items (title, n) /* ${marker} */')
    } }`)
    mkdirSync(join(ROOT, 'test/.artifacts'), { recursive: true })
    const work = mkdtempSync(join(ROOT, 'test/.artifacts/online-'))
    t.after(() => { rmSync(work, { recursive: true, force: true }) })
    writeFileSync(join(work, 'child.mts'), `import { Sequelize } from 'sequelize'
import { Boardinghouse } from ${JSON.stringify(pathToFileURL(join(ROOT, 'plugin/boardinghouse.ts')).href)}
const sequelize = new Sequelize(process.env.DATABASE_URL as string, { logging: false })
await new Boardinghouse({ sequelize, tenantMigrations: process.env.BH_TENANT_DIR as string }).migrate({ concurrency: 1 })
console.log('CHILD-DONE')
await sequelize.close()
`)
    const child = spawn(process.execPath, ['--import', 'tsx', join(work, 'child.mts')], { cwd: ROOT, env: { ...process.env, DATABASE_URL: url, BH_TENANT_DIR: tenant.dir }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => { resolve(signal) }))
    const watcher = await connect(t, url)
    let pids: number[] = []
    try {
      await until(`the CIC in ${schema} waiting`, async () => (await waitingBackends(watcher, marker)).length >= 1)
      // The build of THIS schema's index: the backend holding its table's SHARE UPDATE EXCLUSIVE lock
      // (a CONCURRENTLY build holds it throughout) with the INVALID index in place; another schema's
      // build can wait for a moment too (for older snapshots), and must not be the one terminated.
      await until(`the CIC in ${schema} identified`, async () =>
        (pids = (await watcher.query<{ pid: number }>(`SELECT pid FROM pg_locks WHERE locktype = 'relation' AND relation = $1::regclass
           AND mode = 'ShareUpdateExclusiveLock' AND granted AND pid <> pg_backend_pid()`, [`"${schema}".items`])).rows.map((r) => r.pid)).length === 1 &&
        await indexState(sequelize, schema, index) === 'invalid')
    } catch (err) {
      child.kill('SIGKILL')
      throw new Error(`${(err as Error).message}; child output:\n${out}`)
    }
    assert.equal(await indexState(sequelize, schema, index), 'invalid', 'mid-build the index is INVALID')
    assert.ok(!(await ledger(sequelize, schema)).includes(migration))
    child.kill('SIGKILL')
    assert.equal(await exited, 'SIGKILL')
    assert.doesNotMatch(out, /CHILD-DONE/)
    // The killed client's backend would go on waiting (and finish the build once unblocked): end it.
    await watcher.query('SELECT pg_terminate_backend($1, 5000)', [pids[0]])
    await until('the CIC backend gone', async () => (await watcher.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pids[0]])).rows.length === 0)
    await blocker.query('ROLLBACK')
  }

  await t.test('a process killed during CREATE INDEX CONCURRENTLY in a tenant: the rerun drops the INVALID index and completes', async () => {
    await killDuring('010-killed', 'items_title_n_idx', 'bh_online_kill_tenant', 'o3')
    // negative control: what the kill left is there, INVALID, and unrecorded
    assert.equal(await indexState(sequelize, 'o3', 'items_title_n_idx'), 'invalid')
    assert.ok(!(await ledger(sequelize, 'o3')).includes('010-killed'))
    assert.equal(await indexState(sequelize, 'o4', 'items_title_n_idx'), 'missing')
    // IF NOT EXISTS alone keeps the INVALID index (the statement skips it): the rerun repairs it first
    const raw = await connect(t, url)
    await raw.query('CREATE INDEX CONCURRENTLY IF NOT EXISTS items_title_n_idx ON o3.items (title, n)')
    assert.equal(await indexState(sequelize, 'o3', 'items_title_n_idx'), 'invalid')
    const again = await make().migrate()
    assert.ok(again.migratedSchemas >= 3)
    for (const s of [TEMPLATE_SCHEMA, ...SCHEMAS, 'o5', 'late']) {
      assert.equal(await indexState(sequelize, s, 'items_title_n_idx'), 'valid', s)
      assert.ok((await ledger(sequelize, s)).includes('010-killed'), s)
    }
  })

  await t.test('a process killed during CREATE INDEX CONCURRENTLY in the template: no tenant touched, the rerun repairs the template and completes', async () => {
    await killDuring('011-killed-template', 'items_n_title_idx', 'bh_online_kill_template', TEMPLATE_SCHEMA)
    assert.equal(await indexState(sequelize, TEMPLATE_SCHEMA, 'items_n_title_idx'), 'invalid')
    assert.ok(!(await ledger(sequelize, TEMPLATE_SCHEMA)).includes('011-killed-template'))
    assert.equal(await indexState(sequelize, 'o1', 'items_n_title_idx'), 'missing')
    const again = await make().migrate()
    assert.deepEqual(again.template, ['011-killed-template'])
    for (const s of [TEMPLATE_SCHEMA, ...SCHEMAS, 'o5', 'late']) {
      assert.equal(await indexState(sequelize, s, 'items_n_title_idx'), 'valid', s)
      assert.ok((await ledger(sequelize, s)).includes('011-killed-template'), s)
    }
  })
})

test('a migration exporting a transaction that is not a boolean is refused, naming it', async (t) => {
  const dir = folder(t)
  dir.write('001-bad.cjs', "module.exports = { transaction: 'no', async up () {} }")
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url)
  await assert.rejects(new Boardinghouse({ sequelize, tenantMigrations: dir.dir }).migrate(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'FST_BH_INVALID_OPTION')
    assert.match(err.message, /001-bad\.cjs exports transaction = "no"/)
    return true
  })
})

test('an online shared migration runs once, in public, after the transactional ones before it', async (t) => {
  const shared = folder(t)
  shared.write('001-create-plans.cjs', `module.exports = { async up ({ context: { queryInterface, Sequelize } }) {
    await queryInterface.createTable('plans', { id: { type: Sequelize.INTEGER, primaryKey: true }, name: { type: Sequelize.TEXT } })
  } }`)
  shared.write('002-plans-name-idx.cjs', `module.exports = { transaction: false, async up (queryInterface, Sequelize) {
    await queryInterface.addIndex('plans', ['name'], { name: 'plans_name_idx', concurrently: true })
  } }`)
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url)
  const result = await new Boardinghouse({ sequelize, sharedMigrations: shared.dir }).migrate()
  assert.ok(result.shared.includes('001-create-plans') && result.shared.includes('002-plans-name-idx'))
  assert.equal(await indexState(sequelize, 'public', 'plans_name_idx'), 'valid')
  const meta = await sequelize.query<{ name: string }>('SELECT name FROM "SequelizeMeta" ORDER BY name', { type: QueryTypes.SELECT })
  assert.deepEqual(meta.map((r) => r.name), ['001-create-plans', '002-plans-name-idx'])
  assert.deepEqual((await new Boardinghouse({ sequelize, sharedMigrations: shared.dir }).migrate()).shared, [])
})
