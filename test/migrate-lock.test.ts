import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { QueryTypes, type Sequelize } from 'sequelize'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import { MIGRATION_LOCK_KEY } from '../plugin/migrator/index.js'
import { createTestDatabase, sequelizeFor } from './helpers.js'

function folder (t: { after: (fn: () => void) => void }): { dir: string, write: (name: string, body: string) => void } {
  const dir = mkdtempSync(join(tmpdir(), 'bh-lock-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return { dir, write: (name, body) => writeFileSync(join(dir, name), body) }
}

const CREATE_NOTES = `module.exports = { async up ({ context: { queryInterface, Sequelize } }) {
  await queryInterface.createTable('notes', { id: { type: Sequelize.INTEGER, primaryKey: true, autoIncrement: true } })
} }`

// The session-level migration lock as pg_locks shows it (a bigint key: classid = high, objid = low 32 bits).
// Advisory locks are per database: only this test's database counts (other tests run alongside).
const HOLDERS = `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND classid = 0 AND objid = ${MIGRATION_LOCK_KEY} AND objsubid = 1 AND granted`

async function ledger (sequelize: Sequelize, schema: string): Promise<string[]> {
  const rows = await sequelize.query<{ name: string }>('SELECT name FROM public.boardinghouse_tenant_migration WHERE schema_name = :schema ORDER BY name',
    { replacements: { schema }, type: QueryTypes.SELECT })
  return rows.map((r) => r.name)
}

async function applied (sequelize: Sequelize): Promise<Record<string, number>> {
  const rows = await sequelize.query<{ schema_name: string, n: string }>('SELECT schema_name, count(*) AS n FROM public.applied GROUP BY 1 ORDER BY 1', { type: QueryTypes.SELECT })
  return Object.fromEntries(rows.map((r) => [r.schema_name, Number(r.n)]))
}

test('the migration lock', async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url, { pool: { max: 4 } })
  const tenant = folder(t)
  tenant.write('001-create-notes.cjs', CREATE_NOTES)
  const make = (s: Sequelize = sequelize): Boardinghouse => new Boardinghouse({ sequelize: s, tenantMigrations: tenant.dir })
  await make().migrate()
  for (const name of ['s1', 's2', 's3', 's4']) await make().createSchema(name)
  // Rows written by migrations (committed with their schema's transaction); a sequence is not transactional.
  await sequelize.query('CREATE TABLE public.applied (schema_name text NOT NULL, name text NOT NULL); CREATE SEQUENCE public.armed; CREATE SEQUENCE public.armed_kill; CREATE SEQUENCE public.overlap_seen')

  await t.test('terminating the lock backend mid-run rejects migrate with FST_BH_MIGRATION_LOCK_LOST', async () => {
    tenant.write('002-kill-lock.cjs', `module.exports = { async up ({ context: { sequelize, schema, isTemplate } }) {
      if (isTemplate) return
      await sequelize.query("INSERT INTO public.applied VALUES ('" + schema + "', '002')")
      if (schema !== 's2') return
      const [[{ n }]] = await sequelize.query("SELECT nextval('public.armed_kill') AS n")
      if (Number(n) === 1) await sequelize.query(${JSON.stringify(`SELECT pg_terminate_backend(pid, 5000) FROM (${HOLDERS}) h`)})
    } }`)
    await assert.rejects(make().migrate({ concurrency: 1 }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'FST_BH_MIGRATION_LOCK_LOST')
      assert.match(err.message, /migration lock was lost/)
      return true
    })
    // s1 committed while the lock held; s2 rolled back (its check before commit failed); s3, s4 not started
    assert.deepEqual(await applied(sequelize), { s1: 1 })
    assert.deepEqual(await ledger(sequelize, 's1'), ['001-create-notes', '002-kill-lock'])
    for (const s of ['s2', 's3', 's4']) assert.deepEqual(await ledger(sequelize, s), ['001-create-notes'], s)
    assert.deepEqual(await sequelize.query(HOLDERS, { type: QueryTypes.SELECT }), [])
    // the next run finishes the job
    const again = await make().migrate()
    assert.equal(again.migratedSchemas, 3)
    assert.deepEqual(await applied(sequelize), { s1: 1, s2: 1, s3: 1, s4: 1 })
  })

  await t.test('a run whose lock is lost while another run starts: each migration applied once, the first run rejects', async () => {
    // In s1, run A terminates its own lock's backend and waits until run B (waiting for the lock) holds
    // it: from then on both runs are in the tenant phase at once.
    tenant.write('003-overlap.cjs', `module.exports = { async up ({ context: { sequelize, schema, isTemplate } }) {
      if (isTemplate) return
      await sequelize.query("INSERT INTO public.applied VALUES ('" + schema + "', '003')")
      if (schema !== 's1') return
      const [[{ n }]] = await sequelize.query("SELECT nextval('public.armed') AS n")
      if (Number(n) !== 1) return
      const [[{ me }]] = await sequelize.query(${JSON.stringify(`SELECT (${HOLDERS}) AS me`)})
      await sequelize.query('SELECT pg_terminate_backend(' + me + ', 5000)')
      for (const deadline = Date.now() + 60000; Date.now() < deadline;) {
        const [rows] = await sequelize.query(${JSON.stringify(HOLDERS)})
        if (rows.length > 0 && rows[0].pid !== me) { await sequelize.query("SELECT nextval('public.overlap_seen')"); return }
        await new Promise((resolve) => setTimeout(resolve, 25))
      }
      throw new Error('run B never took the lock')
    } }`)
    await sequelize.query('TRUNCATE public.applied')
    const s2 = sequelizeFor(t, url, { pool: { max: 4 } })
    const first = make().migrate({ concurrency: 1 })
    // B starts once A holds the lock, and waits for it
    for (const deadline = Date.now() + 60_000; Date.now() < deadline && (await sequelize.query(HOLDERS, { type: QueryTypes.SELECT })).length === 0;) await new Promise((resolve) => setTimeout(resolve, 10))
    const second = make(s2).migrate({ concurrency: 2 })
    const [a, b] = await Promise.allSettled([first, second])
    assert.equal(a.status, 'rejected')
    assert.equal((a as PromiseRejectedResult).reason.code, 'FST_BH_MIGRATION_LOCK_LOST')
    assert.equal(b.status, 'fulfilled', b.status === 'rejected' ? String((b as PromiseRejectedResult).reason) : '')
    // The control: the runs did overlap (B held the lock while A was still inside s1's migration).
    const seen = await sequelize.query<{ is_called: boolean }>('SELECT is_called FROM public.overlap_seen', { type: QueryTypes.SELECT })
    assert.equal(seen[0]?.is_called, true)
    // And still each schema applied 003 exactly once, and its ledger says so.
    assert.deepEqual(await applied(sequelize), { s1: 1, s2: 1, s3: 1, s4: 1 })
    for (const s of ['s1', 's2', 's3', 's4']) assert.deepEqual(await ledger(sequelize, s), ['001-create-notes', '002-kill-lock', '003-overlap'], s)
  })
})

test('idle_session_timeout on the database does not end the lock of a long run', async (t) => {
  const url = await createTestDatabase(t)
  const name = new URL(url).pathname.slice(1)
  const sequelize = sequelizeFor(t, url, { pool: { max: 2 } })
  const tenant = folder(t)
  tenant.write('001-create-notes.cjs', CREATE_NOTES)
  const make = (): Boardinghouse => new Boardinghouse({ sequelize, tenantMigrations: tenant.dir })
  await make().migrate()
  for (const s of ['t1', 't2', 't3']) await make().createSchema(s)
  await sequelize.query(`ALTER DATABASE "${name}" SET idle_session_timeout = '300ms'`)
  // Each schema's migration takes longer than the timeout; the last one checks the lock is still held.
  tenant.write('002-slow.cjs', `module.exports = { async up ({ context: { sequelize, schema } }) {
    await sequelize.query('SELECT pg_sleep(0.5)')
    if (schema === 't3') {
      const [rows] = await sequelize.query(${JSON.stringify(HOLDERS)})
      if (rows.length !== 1) throw new Error('the migration lock is not held any more')
    }
  } }`)
  const result = await make().migrate({ concurrency: 1 })
  assert.equal(result.migratedSchemas, 3)
  for (const s of ['t1', 't2', 't3']) assert.deepEqual(await ledger(sequelize, s), ['001-create-notes', '002-slow'], s)
})
