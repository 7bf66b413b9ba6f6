/**
 * migrateDown: tenants first, then the template (once no tenant lists the range); one transaction
 * per schema; refused before anything is undone; resumable; new schemas match the template after.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { QueryTypes, type Sequelize } from 'sequelize'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import { TEMPLATE_SCHEMA } from '../plugin/names.js'
import { MIGRATION_LOCK_KEY, Migrator, WAITING_MARKER, type MigrationFailure } from '../plugin/migrator/index.js'
import { createTestDatabase, hasCode, registryState, sequelizeFor } from './helpers.js'
import { CREATE_NOTES, addColumn, columns, failIn, fleetTables, folder, ledger, ledgers, runLog } from './fleet-fixtures.js'

const SCHEMAS = ['d1', 'd2', 'd3', 'd4']

type Failing = Error & { code?: string, schema?: string, migration?: string, failures?: MigrationFailure[], result?: { skippedSchemas: number, rolledBackSchemas: number, templateKept: string | null } }

/** Columns (type, nullability, default) and indexes of a schema's tables, its own name replaced by S: what a clone must reproduce. */
async function structure (sequelize: Sequelize, schema: string): Promise<string[]> {
  const rows = await sequelize.query<{ d: string }>(
    `SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || replace(coalesce(column_default, ''), quote_ident(:schema) || '.', 'S.') AS d
     FROM information_schema.columns WHERE table_schema = :schema
     UNION ALL
     SELECT 'index ' || indexname || ': ' || replace(indexdef, ' ' || quote_ident(:schema) || '.', ' S.') FROM pg_indexes WHERE schemaname = :schema
     ORDER BY 1`, { replacements: { schema }, type: QueryTypes.SELECT })
  return rows.map((r) => r.d)
}

async function setup (t: { after: (fn: () => Promise<void> | void) => void }): Promise<{ sequelize: Sequelize, tenant: ReturnType<typeof folder>, make: () => Boardinghouse }> {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url, { pool: { max: 5 } })
  const tenant = folder(t, 'bh-down-')
  tenant.write('001-create-notes.cjs', CREATE_NOTES)
  tenant.write('002-pinned.cjs', addColumn('002-pinned', 'pinned', { index: true }))
  const make = (): Boardinghouse => new Boardinghouse({ sequelize, tenantMigrations: tenant.dir })
  await fleetTables(sequelize)
  const bh = make()
  await bh.migrate()
  for (const s of SCHEMAS) await bh.createSchema(s)
  return { sequelize, tenant, make }
}

test('down (step 1, the default) in every schema, then the template; a schema created afterwards matches', async (t) => {
  const { sequelize, make } = await setup(t)
  const bh = make()
  // the clone DDL is cached with 002's column: createSchema after the rollback must not use it
  await bh.createSchema('before')
  assert.deepEqual(await columns(sequelize, 'before'), ['id', 'body', 'pinned'])
  const progress: string[] = []
  const r = await bh.migrateDown({ concurrency: 2, onProgress: (p) => { progress.push(`${p.phase}:${p.schema ?? ''}`) } })
  assert.deepEqual(r.migrations, ['002-pinned'])
  assert.deepEqual(r.template, ['002-pinned'])
  assert.equal(r.templateKept, null)
  assert.equal(r.rolledBackSchemas, 5)
  assert.deepEqual(r.failures, [])
  // tenants first, the template last
  assert.equal(progress.at(-1), `template:${TEMPLATE_SCHEMA}`)
  const log = await runLog(sequelize, '002-pinned', 'down')
  const templateStart = log.find((l) => l.schema_name === TEMPLATE_SCHEMA && l.phase === 'start')?.n ?? -1
  assert.ok(log.filter((l) => l.schema_name !== TEMPLATE_SCHEMA).every((l) => l.n < templateStart))
  for (const s of [TEMPLATE_SCHEMA, 'before', ...SCHEMAS]) {
    assert.deepEqual(await columns(sequelize, s), ['id', 'body'], s)
    assert.deepEqual(await ledger(sequelize, s), ['001-create-notes'], s)
  }
  // a schema created now, by this process (its cache was primed) and by another instance, matches the template
  await bh.createSchema('after')
  await make().createSchema('after2')
  const template = await structure(sequelize, TEMPLATE_SCHEMA)
  assert.ok(template.some((d) => d.startsWith('notes.body')))
  for (const s of ['after', 'after2', 'd1']) {
    assert.deepEqual(await structure(sequelize, s), template, s)
    assert.deepEqual(await ledger(sequelize, s), ['001-create-notes'], s)
  }
  // and migrate brings everything back up
  const up = await make().migrate()
  assert.deepEqual(up.template, ['002-pinned'])
  assert.equal(up.migratedSchemas, 7)
  for (const s of ['after', 'd1']) assert.deepEqual(await columns(sequelize, s), ['id', 'body', 'pinned'], s)
})

test('to NAME undoes NAME and every later one; a rollback of some schemas keeps the template', async (t) => {
  const { sequelize, tenant, make } = await setup(t)
  tenant.write('003-color.cjs', addColumn('003-color', 'color'))
  tenant.write('004-size.cjs', addColumn('004-size', 'size'))
  await make().migrate()

  await t.test('schemas d1, d2: rolled back; the template and d3, d4 stay at the head', async () => {
    const r = await make().migrateDown({ to: '003-color', schemas: 'd1,d2' })
    assert.deepEqual(r.migrations, ['004-size', '003-color'])
    assert.deepEqual(r.template, [])
    assert.match(r.templateKept ?? '', /schema "d3" and 1 other still list migrations of the range/)
    assert.equal(r.rolledBackSchemas, 2)
    assert.equal(r.targetedSchemas, 2)
    for (const s of ['d1', 'd2']) assert.deepEqual(await ledger(sequelize, s), ['001-create-notes', '002-pinned'], s)
    for (const s of [TEMPLATE_SCHEMA, 'd3', 'd4']) assert.deepEqual(await ledger(sequelize, s), ['001-create-notes', '002-pinned', '003-color', '004-size'], s)
    // newest first in each schema: 004's down ran before 003's
    const d1 = [...await runLog(sequelize, '004-size', 'down'), ...await runLog(sequelize, '003-color', 'down')].filter((l) => l.schema_name === 'd1').sort((a, b) => a.n - b.n)
    assert.deepEqual(d1.map((l) => `${l.name}:${l.phase}`), ['004-size:start', '004-size:end', '003-color:start', '003-color:end'])
    // a new schema gets the head (the template's), as d3 and d4 have it
    await make().createSchema('newer')
    assert.deepEqual(await columns(sequelize, 'newer'), ['id', 'body', 'pinned', 'color', 'size'])
  })

  await t.test('then all of them: the rest, then the template (with the same to, now covering newer)', async () => {
    const r = await make().migrateDown({ to: '003-color' })
    assert.equal(r.rolledBackSchemas, 3)
    assert.equal(r.unchangedSchemas, 2)
    assert.deepEqual(r.template, ['004-size', '003-color'])
    for (const [s, l] of Object.entries(await ledgers(sequelize))) assert.deepEqual(l, ['001-create-notes', '002-pinned'], s)
    await make().createSchema('newest')
    assert.deepEqual(await columns(sequelize, 'newest'), ['id', 'body', 'pinned'])
  })

  await t.test('step 2 undoes the last two that ran', async () => {
    await make().migrate()
    const r = await make().migrateDown({ step: 2, schemas: 'd*' })
    assert.deepEqual(r.migrations, ['004-size', '003-color'])
    assert.deepEqual(await ledger(sequelize, 'd4'), ['001-create-notes', '002-pinned'])
  })
})

test('refused before anything is undone: unknown or never-run to, a migration without down, bad options', async (t) => {
  const { sequelize, tenant, make } = await setup(t)
  tenant.write('003-color.cjs', addColumn('003-color', 'color', { down: false }))
  tenant.write('004-size.cjs', addColumn('004-size', 'size'))
  await make().migrate()
  tenant.write('005-weight.cjs', addColumn('005-weight', 'weight')) // never ran
  const before = await registryState(sequelize)
  const columnsBefore = await columns(sequelize, 'd1')

  await assert.rejects(make().migrateDown({ to: 'nope' }), (err: Error & { code?: string, statusCode?: number }) => {
    assert.equal(err.code, 'FST_BH_UNKNOWN_MIGRATION')
    assert.equal(err.statusCode, 400)
    assert.match(err.message, /"nope" is not a tenant migration.*nothing was undone/)
    return true
  })
  await assert.rejects(make().migrateDown({ to: '005-weight' }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'FST_BH_UNKNOWN_MIGRATION')
    assert.match(err.message, /"005-weight" is recorded in no ledger/)
    return true
  })
  // 004 has a down, 003 has none: step 2 covers both, and nothing is undone, not even 004
  await assert.rejects(make().migrateDown({ step: 2 }), (err: Error & { code?: string, statusCode?: number }) => {
    assert.equal(err.code, 'FST_BH_IRREVERSIBLE_MIGRATION')
    assert.equal(err.statusCode, 400)
    assert.match(err.message, /"003-color" exports no down\(\); nothing was undone/)
    return true
  })
  await assert.rejects(make().migrateDown({ to: '002-pinned', schemas: 'd1' }), hasCode('FST_BH_IRREVERSIBLE_MIGRATION'))
  for (const options of [{ to: '004-size', step: 1 }, { step: 0 }, { to: '' }, { nope: 1 }, { schemas: 'D*' }, { maxFailures: 'all' }]) {
    await assert.rejects(make().migrateDown(options as never), hasCode('FST_BH_INVALID_INPUT', 400), JSON.stringify(options))
  }
  assert.deepEqual(await registryState(sequelize), before)
  assert.deepEqual(await columns(sequelize, 'd1'), columnsBefore)
  assert.deepEqual(await runLog(sequelize, '004-size', 'down'), [])

  await t.test('the control: step 1 (004 only, which has a down) is undone', async () => {
    const r = await make().migrateDown()
    assert.deepEqual(r.migrations, ['004-size'])
    assert.ok(!(await columns(sequelize, 'd1')).includes('size'))
  })

  await t.test('a ledger row whose file is gone, after the range start: refused', async () => {
    await sequelize.query("INSERT INTO public.boardinghouse_tenant_migration (schema_name, name, run_at) VALUES ('d2', '009-vanished', now())")
    await assert.rejects(make().migrateDown({ to: '002-pinned' }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'FST_BH_IRREVERSIBLE_MIGRATION')
      assert.match(err.message, /"009-vanished" is recorded in a ledger after "002-pinned" but has no file/)
      return true
    })
  })
})

test('a down that throws in one schema: that schema unchanged, the others per maxFailures; a rerun completes', async (t) => {
  const { sequelize, make } = await setup(t)

  await t.test('maxFailures 0: stops at d2 (its own column removal rolled back), d3, d4 and the template untouched', async () => {
    await failIn(sequelize, 'down', '002-pinned', ['d2'])
    await assert.rejects(make().migrateDown({ concurrency: 1 }), (err: Failing) => {
      assert.equal(err.code, 'FST_BH_MIGRATION_FAILED')
      assert.equal(err.schema, 'd2')
      assert.equal(err.migration, '002-pinned')
      assert.match(err.message, /"002-pinned" failed in schema "d2": undoing it \(down\) failed: 002-pinned down refused in d2/)
      assert.deepEqual(err.failures?.map((f) => f.schema), ['d2'])
      assert.equal(err.result?.rolledBackSchemas, 1)
      assert.equal(err.result?.skippedSchemas, 2)
      return true
    })
    assert.deepEqual(await columns(sequelize, 'd1'), ['id', 'body'])
    for (const s of ['d2', 'd3', 'd4', TEMPLATE_SCHEMA]) {
      assert.deepEqual(await columns(sequelize, s), ['id', 'body', 'pinned'], s)
      assert.deepEqual(await ledger(sequelize, s), ['001-create-notes', '002-pinned'], s)
    }
  })

  await t.test('maxFailures 1: d2 fails again and is reported; d3, d4 rolled back; the template kept (d2 still has it)', async () => {
    const r = await make().migrateDown({ maxFailures: 1 })
    assert.deepEqual(r.failures, [{ schema: 'd2', migration: '002-pinned', message: 'undoing it (down) failed: 002-pinned down refused in d2' }])
    assert.equal(r.rolledBackSchemas, 2)
    assert.match(r.templateKept ?? '', /schema "d2" still lists/)
    assert.deepEqual(await ledger(sequelize, TEMPLATE_SCHEMA), ['001-create-notes', '002-pinned'])
    assert.deepEqual(await ledger(sequelize, 'd2'), ['001-create-notes', '002-pinned'])
  })

  await t.test('fixed, the same command again finishes the job: d2, then the template', async () => {
    await failIn(sequelize, 'down', '002-pinned', [])
    const r = await make().migrateDown()
    assert.deepEqual(r.migrations, ['002-pinned'])
    assert.equal(r.rolledBackSchemas, 1)
    assert.deepEqual(r.template, ['002-pinned'])
    for (const [s, l] of Object.entries(await ledgers(sequelize))) assert.deepEqual(l, ['001-create-notes'], s)
  })
})

test('a rollback interrupted by losing its lock: the schema in progress rolls back, a rerun completes', async (t) => {
  const { sequelize, tenant, make } = await setup(t)
  // d2's down terminates the migrate lock's backend (once)
  await sequelize.query('CREATE SEQUENCE public.armed')
  const holders = `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND classid = 0 AND objid = ${MIGRATION_LOCK_KEY} AND objsubid = 1 AND granted`
  tenant.write('003-killer.cjs', `module.exports = {
    async up () {},
    async down ({ context: { sequelize, schema } }) {
      await sequelize.query("INSERT INTO public.run_log VALUES (:schema, '003-killer', 'down', 'start', nextval('public.run_seq'))", { replacements: { schema } })
      if (schema !== 'd2') return
      const [[{ n }]] = await sequelize.query("SELECT nextval('public.armed') AS n")
      if (Number(n) === 1) await sequelize.query(${JSON.stringify(`SELECT pg_terminate_backend(pid, 5000) FROM (${holders}) h`)})
    }
  }`)
  await make().migrate()
  await assert.rejects(make().migrateDown({ to: '002-pinned', concurrency: 1 }), hasCode('FST_BH_MIGRATION_LOCK_LOST'))
  assert.deepEqual(await ledger(sequelize, 'd1'), ['001-create-notes'])
  for (const s of ['d2', 'd3', 'd4', TEMPLATE_SCHEMA]) assert.deepEqual(await ledger(sequelize, s), ['001-create-notes', '002-pinned', '003-killer'], s)
  assert.deepEqual(await columns(sequelize, 'd2'), ['id', 'body', 'pinned'])
  const r = await make().migrateDown({ to: '002-pinned' })
  assert.equal(r.rolledBackSchemas, 3)
  assert.deepEqual(r.template, ['003-killer', '002-pinned'])
  for (const [s, l] of Object.entries(await ledgers(sequelize))) assert.deepEqual(l, ['001-create-notes'], s)
  for (const s of SCHEMAS) assert.deepEqual(await columns(sequelize, s), ['id', 'body'], s)
})

test('createSchema during a rollback waits for it, then matches the rolled-back template', async (t) => {
  const { sequelize, tenant, make } = await setup(t)
  // d1's down waits until the test has seen the creation waiting
  await sequelize.query('CREATE SEQUENCE public.go')
  tenant.write('003-wait.cjs', `module.exports = {
    async up () {},
    async down ({ context: { sequelize, schema } }) {
      if (schema !== 'd1') return
      for (const deadline = Date.now() + 30000; Date.now() < deadline;) {
        const [[{ called }]] = await sequelize.query('SELECT is_called AS called FROM public.go')
        if (called) return
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      throw new Error('the test never said go')
    }
  }`)
  await make().migrate()
  const rollingBack = make().migrateDown({ to: '002-pinned', concurrency: 1 })
  // wait until the rollback holds the lock, then start a creation
  const held = `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = ${MIGRATION_LOCK_KEY} AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`
  // a waiter holds nothing: its query, marked with WAITING_MARKER, shows in pg_stat_activity
  const waiting = `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()
    AND pid NOT IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = ${MIGRATION_LOCK_KEY} AND granted)`
  const poll = async (sql: string): Promise<void> => {
    for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
      if ((await sequelize.query<{ n: number }>(sql, { type: QueryTypes.SELECT, ...(sql === waiting ? { bind: [WAITING_MARKER] } : {}) }))[0]?.n === 1) return
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    throw new Error(`timed out: ${sql}`)
  }
  await poll(held)
  const creating = make().createSchema('late')
  await poll(waiting) // the control: the creation is waiting for the rollback's lock
  await sequelize.query("SELECT nextval('public.go')")
  const r = await rollingBack
  assert.deepEqual(r.template, ['003-wait', '002-pinned'])
  await creating
  assert.deepEqual(await columns(sequelize, 'late'), ['id', 'body'])
  assert.deepEqual(await ledger(sequelize, 'late'), ['001-create-notes'])
  assert.deepEqual(await structure(sequelize, 'late'), await structure(sequelize, TEMPLATE_SCHEMA))
})

test('nothing matched: nothing undone; the database never migrated: FST_BH_NOT_MIGRATED', async (t) => {
  const { sequelize, make } = await setup(t)
  const before = await registryState(sequelize)
  const r = await make().migrateDown({ schemas: 'nosuch*' })
  assert.equal(r.targetedSchemas, 0)
  assert.deepEqual(r.unmatched, ['nosuch*'])
  assert.deepEqual(r.migrations, [])
  assert.deepEqual(await registryState(sequelize), before)

  const url = await createTestDatabase(t)
  const empty = sequelizeFor(t, url)
  const tenant = folder(t, 'bh-down-empty-')
  tenant.write('001-create-notes.cjs', CREATE_NOTES)
  await assert.rejects(new Boardinghouse({ sequelize: empty, tenantMigrations: tenant.dir }).migrateDown(), hasCode('FST_BH_NOT_MIGRATED'))
})

test('down with maintenance: each tenant schema with something to undo, around its own transaction; not the template', async (t) => {
  const { sequelize, tenant, make } = await setup(t)
  const bh = make()
  const calls: string[] = []
  const migrator = new Migrator({
    sequelize,
    sharedMigrations: undefined,
    tenantMigrations: tenant.dir,
    sharedMigrationsTable: 'SequelizeMeta',
    userIdType: 'integer',
    concurrency: 1,
    onTemplateChanged: () => { bh.invalidate() },
    auditTargets: () => [],
    maintenance: {
      enter: async (schema) => { calls.push(`enter ${schema} ${(await ledger(sequelize, schema)).join(',')}`) },
      leave: async (schema) => { calls.push(`leave ${schema} ${(await ledger(sequelize, schema)).join(',')}`) }
    }
  })
  await migrator.migrateDown({ schemas: 'd1,d2' }) // d1, d2 rolled back now: no maintenance for them below
  calls.length = 0
  const r = await migrator.migrateDown({ maintenance: { retryAfter: 5 } })
  assert.deepEqual(r.template, ['002-pinned'])
  assert.deepEqual(calls, [
    'enter d3 001-create-notes,002-pinned', 'leave d3 001-create-notes',
    'enter d4 001-create-notes,002-pinned', 'leave d4 001-create-notes'
  ])
})
