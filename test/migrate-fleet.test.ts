/**
 * Targeted and staged migrations: schemas/exclude, canaries, batches, maxFailures, maintenance
 * (with a dependency the test supplies), and migrationStatus without the migration lock.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { QueryTypes, type Sequelize } from 'sequelize'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import { TEMPLATE_SCHEMA } from '../plugin/names.js'
import { MIGRATION_LOCK_KEY, Migrator, WAITING_MARKER, type MaintenanceHooks, type MigrateBatch, type MigrationFailure } from '../plugin/migrator/index.js'
import { connect, createTestDatabase, hasCode, registryState, sequelizeFor } from './helpers.js'
import { CREATE_NOTES, addColumn, columns, failIn, fleetTables, folder, ledger, ledgers, runLog } from './fleet-fixtures.js'

const SCHEMAS = ['a1', 'a2', 'a3', 'b1', 'b2', 'c1']

type Failing = Error & { code?: string, schema?: string, migration?: string, failures?: MigrationFailure[], result?: { skippedSchemas: number, migratedSchemas: number } }

async function setup (t: { after: (fn: () => Promise<void> | void) => void }): Promise<{ sequelize: Sequelize, url: string, tenant: ReturnType<typeof folder>, shared: ReturnType<typeof folder>, make: () => Boardinghouse }> {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url, { pool: { max: 5 } })
  const tenant = folder(t)
  const shared = folder(t)
  tenant.write('001-create-notes.cjs', CREATE_NOTES)
  const make = (): Boardinghouse => new Boardinghouse({ sequelize, tenantMigrations: tenant.dir, sharedMigrations: shared.dir })
  await make().migrate()
  await fleetTables(sequelize)
  for (const s of SCHEMAS) await make().createSchema(s)
  return { sequelize, url, tenant, shared, make }
}

test('targeting: schemas and exclude, by name and pattern; the template always first', async (t) => {
  const { sequelize, tenant, make } = await setup(t)
  tenant.write('002-color.cjs', addColumn('002-color', 'color'))

  await t.test('schemas a* and c1, without a2: the template first, then those three only', async () => {
    const r = await make().migrate({ schemas: ['a*', 'c1'], exclude: 'a2', concurrency: 2 })
    assert.deepEqual(r.template, ['002-color'])
    assert.equal(r.migratedSchemas, 3)
    assert.equal(r.targetedSchemas, 3)
    assert.equal(r.upToDateSchemas, 0)
    assert.deepEqual(r.unmatched, [])
    assert.deepEqual(r.failures, [])
    const log = await runLog(sequelize, '002-color')
    assert.deepEqual([...new Set(log.map((l) => l.schema_name))].sort(), [TEMPLATE_SCHEMA, 'a1', 'a3', 'c1'].sort())
    // the template ended before any tenant started
    const templateEnd = log.find((l) => l.schema_name === TEMPLATE_SCHEMA && l.phase === 'end')?.n ?? Infinity
    assert.ok(log.filter((l) => l.schema_name !== TEMPLATE_SCHEMA).every((l) => l.n > templateEnd))
    for (const s of ['a1', 'a3', 'c1']) assert.ok((await ledger(sequelize, s)).includes('002-color'), s)
    for (const s of ['a2', 'b1', 'b2']) {
      assert.deepEqual(await ledger(sequelize, s), ['001-create-notes'], s)
      assert.deepEqual(await columns(sequelize, s), ['id', 'body'], s)
    }
  })

  await t.test('a later targeted run: the template is at the head, only the targets migrate', async () => {
    const r = await make().migrate({ schemas: 'b*' })
    assert.deepEqual(r.template, [])
    assert.equal(r.migratedSchemas, 2)
    assert.deepEqual(await ledger(sequelize, 'a2'), ['001-create-notes'])
  })

  await t.test('a pattern matching nothing, next to one that matches: reported in unmatched, the others run', async () => {
    const r = await make().migrate({ schemas: ['a2', 'zz*'], exclude: ['nothing_*'] })
    assert.deepEqual(r.unmatched, ['zz*', 'nothing_*'])
    assert.equal(r.migratedSchemas, 1)
    assert.equal(r.targetedSchemas, 1)
    assert.ok((await ledger(sequelize, 'a2')).includes('002-color'))
  })
})

test('patterns that match nothing run nothing, not even the template or shared migrations', async (t) => {
  const { sequelize, tenant, shared, make } = await setup(t)
  tenant.write('002-color.cjs', addColumn('002-color', 'color'))
  shared.write('001-settings.cjs', `module.exports = { async up ({ context: { queryInterface, Sequelize } }) {
    await queryInterface.createTable('settings', { key: { type: Sequelize.TEXT, primaryKey: true } }) } }`)
  const before = await registryState(sequelize)
  for (const targeting of [{ schemas: 'nosuch*' }, { schemas: ['x1', 'y*'] }, { exclude: '*' }, { schemas: 'a*', exclude: 'a*' }]) {
    const r = await make().migrate(targeting)
    assert.equal(r.targetedSchemas, 0, JSON.stringify(targeting))
    assert.deepEqual(r.template, [])
    assert.deepEqual(r.shared, [])
    assert.equal(r.migratedSchemas, 0)
  }
  assert.deepEqual((await make().migrate({ schemas: ['x1', 'y*'] })).unmatched, ['x1', 'y*'])
  assert.deepEqual(await registryState(sequelize), before)
  assert.deepEqual(await runLog(sequelize, '002-color'), [])
  assert.deepEqual(await columns(sequelize, 'public', 'settings'), [])
  // the control: a targeting that matches runs shared migrations and the template, then its schema
  const r = await make().migrate({ schemas: 'b2' })
  assert.deepEqual(r.shared, ['001-settings'])
  assert.deepEqual(r.template, ['002-color'])
  assert.equal(r.migratedSchemas, 1)
  assert.deepEqual(await columns(sequelize, 'public', 'settings'), ['key'])
})

test('bad options are refused before anything runs', async (t) => {
  const { sequelize, tenant, make } = await setup(t)
  tenant.write('002-color.cjs', addColumn('002-color', 'color'))
  const before = await registryState(sequelize)
  const bad: Array<[unknown, string]> = [
    [{ batch: 0 }, 'batch'], [{ batch: 1.5 }, 'batch'], [{ maxFailures: -1 }, 'maxFailures'], [{ concurrency: 0 }, 'concurrency'],
    [{ schemas: [] }, 'at least one'], [{ schemas: ['A*'] }, 'a-z'], [{ schemas: '__template__' }, 'template'], [{ exclude: [3] }, 'strings'],
    [{ schemas: 'a;drop' }, 'a-z'], [{ canary: 'a*' }, 'not patterns'], [{ nope: 1 }, 'no option'], [{ maintenance: 'yes' }, 'maintenance'],
    [{ maintenance: { retryAfter: 0 } }, 'retryAfter'], [{ maintenance: { seconds: 5 } }, 'no option'], [{ onBatch: 3 }, 'function'], ['all', 'object']
  ]
  for (const [options, message] of bad) {
    await assert.rejects(make().migrate(options as never), (err: Error & { code?: string, statusCode?: number }) => {
      assert.equal(err.code, 'FST_BH_INVALID_INPUT', `${JSON.stringify(options)}: ${err.message}`)
      assert.equal(err.statusCode, 400)
      assert.match(err.message, new RegExp(message), JSON.stringify(options))
      return true
    })
  }
  await assert.rejects(make().migrate({ canary: 'zz' }), hasCode('FST_BH_SCHEMA_NOT_FOUND', 404))
  await assert.rejects(make().migrate({ canary: 'a1', exclude: 'a*' }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'FST_BH_INVALID_INPUT')
    assert.match(err.message, /canary "a1" is not among the targeted schemas/)
    return true
  })
  // maintenance asked of a migrator without the dependency (a Boardinghouse wires it)
  const unwired = new Migrator({ sequelize, sharedMigrations: undefined, tenantMigrations: tenant.dir, sharedMigrationsTable: 'SequelizeMeta', userIdType: 'integer', concurrency: 2, onTemplateChanged: () => {}, auditTargets: () => [] })
  await assert.rejects(unwired.migrate({ maintenance: true }), hasCode('FST_BH_MAINTENANCE_UNAVAILABLE', 500))
  await assert.rejects(unwired.migrateDown({ maintenance: { retryAfter: 5 } }), hasCode('FST_BH_MAINTENANCE_UNAVAILABLE', 500))
  assert.deepEqual(await registryState(sequelize), before)
  assert.deepEqual(await runLog(sequelize, '002-color'), [])
})

test('canaries: first, one after another; one failing stops the run before any other schema', async (t) => {
  const { sequelize, tenant, make } = await setup(t)
  tenant.write('002-color.cjs', addColumn('002-color', 'color'))

  await t.test('a failing canary: the run stops with its error; later canaries and the rest untouched', async () => {
    await failIn(sequelize, 'up', '002-color', ['b1'])
    for (const maxFailures of [0, 5]) {
      await assert.rejects(make().migrate({ canary: ['b1', 'a1'], maxFailures, concurrency: 4 }), (err: Failing) => {
        assert.equal(err.code, maxFailures === 0 ? 'FST_BH_MIGRATION_FAILED' : 'FST_BH_MIGRATIONS_FAILED')
        assert.deepEqual(err.failures?.map((f) => [f.schema, f.migration]), [['b1', '002-color']])
        assert.match(err.failures?.[0]?.message ?? '', /002-color up refused in b1/)
        if (maxFailures > 0) assert.match(err.message, /canary schema "b1" failed/)
        assert.equal(err.result?.skippedSchemas, 5)
        return true
      })
      // the template migrated first (alone); no tenant did, the failed canary rolled back
      assert.ok((await ledger(sequelize, TEMPLATE_SCHEMA)).includes('002-color'))
      for (const s of SCHEMAS) {
        assert.deepEqual(await ledger(sequelize, s), ['001-create-notes'], s)
        assert.deepEqual(await columns(sequelize, s), ['id', 'body'], s)
      }
    }
  })

  await t.test('canaries pass: each ends before the next starts, and before any other schema', async () => {
    await failIn(sequelize, 'up', '002-color', [])
    const progress: string[] = []
    const r = await make().migrate({ canary: 'c1,a2', concurrency: 4, onProgress: (p) => { if (p.phase === 'canary') progress.push(p.schema ?? '') } })
    assert.equal(r.migratedSchemas, 6)
    assert.deepEqual(progress, ['c1', 'a2'])
    const log = (await runLog(sequelize, '002-color')).filter((l) => l.schema_name !== TEMPLATE_SCHEMA)
    const at = (schema: string, phase: string): number => log.find((l) => l.schema_name === schema && l.phase === phase)?.n ?? NaN
    assert.ok(at('c1', 'end') < at('a2', 'start'))
    for (const s of ['a1', 'a3', 'b1', 'b2']) assert.ok(at(s, 'start') > at('a2', 'end'), s)
  })

  await t.test('the control: without canaries, schemas run at once on 4 connections', async () => {
    // each waits (up to 10 s) until a second schema has started: "overlap" when one did
    await sequelize.query('CREATE SEQUENCE public.barrier')
    tenant.write('003-size.cjs', `module.exports = { async up ({ context: { queryInterface, Sequelize, sequelize, schema, isTemplate } }) {
      await queryInterface.addColumn('notes', 'size', { type: Sequelize.TEXT })
      if (isTemplate) return
      await sequelize.query("SELECT nextval('public.barrier')")
      let overlap = false
      for (const deadline = Date.now() + 10000; Date.now() < deadline;) {
        const [[{ n }]] = await sequelize.query('SELECT last_value AS n FROM public.barrier')
        if (Number(n) >= 2) { overlap = true; break }
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      await sequelize.query("INSERT INTO public.run_log VALUES (:schema, '003-size', 'up', :phase, nextval('public.run_seq'))", { replacements: { schema, phase: overlap ? 'overlap' : 'alone' } })
    } }`)
    await make().migrate({ concurrency: 4 })
    assert.deepEqual((await runLog(sequelize, '003-size')).map((l) => l.phase), Array(6).fill('overlap'))
  })
})

test('batches: the next batch starts after the previous one completed, onBatch after each', async (t) => {
  const { sequelize, tenant, make } = await setup(t)
  tenant.write('002-color.cjs', addColumn('002-color', 'color'))

  await t.test('batch 2 on 4 connections: three batches of two, in order', async () => {
    const batches: MigrateBatch[] = []
    const checkpoints: number[] = []
    const r = await make().migrate({
      batch: 2,
      concurrency: 4,
      onBatch: async (b) => {
        batches.push(b)
        // a checkpoint: the next batch waits for it (the sequence is not transactional: every process sees where it is)
        await new Promise((resolve) => setTimeout(resolve, 50))
        checkpoints.push(Number((await sequelize.query<{ n: string }>("SELECT nextval('public.run_seq') AS n", { type: QueryTypes.SELECT }))[0]?.n))
      }
    })
    assert.equal(r.migratedSchemas, 6)
    assert.deepEqual(batches.map((b) => [b.batch, b.batches, b.schemas.length, b.succeeded, b.failed, b.done, b.total]), [[1, 3, 2, 2, 0, 2, 6], [2, 3, 2, 2, 0, 4, 6], [3, 3, 2, 2, 0, 6, 6]])
    const log = (await runLog(sequelize, '002-color')).filter((l) => l.schema_name !== TEMPLATE_SCHEMA)
    const at = (schema: string, phase: string): number => log.find((l) => l.schema_name === schema && l.phase === phase)?.n ?? NaN
    for (let i = 1; i < batches.length; i++) {
      const prevEnd = Math.max(...(batches[i - 1]?.schemas ?? []).map((s) => at(s, 'end')))
      for (const s of batches[i]?.schemas ?? []) {
        assert.ok(at(s, 'start') > prevEnd, `${s} started after batch ${i} ended`)
        assert.ok(at(s, 'start') > (checkpoints[i - 1] ?? Infinity), `${s} started after the checkpoint of batch ${i}`)
      }
    }
    assert.deepEqual(batches.flatMap((b) => b.schemas).sort(), [...SCHEMAS].sort())
  })

  await t.test('an onBatch that throws stops the run before the next batch', async () => {
    tenant.write('003-size.cjs', addColumn('003-size', 'size'))
    await assert.rejects(make().migrate({ batch: 4, onBatch: () => { throw new Error('health check failed') } }), /health check failed/)
    const done: string[] = []
    for (const s of SCHEMAS) if ((await ledger(sequelize, s)).includes('003-size')) done.push(s)
    assert.equal(done.length, 4)
    // a rerun finishes the rest
    assert.equal((await make().migrate()).migratedSchemas, 2)
  })
})

test('maxFailures: go on until more than K schemas failed, report each with schema, migration and cause', async (t) => {
  const { sequelize, tenant, make } = await setup(t)
  tenant.write('002-color.cjs', addColumn('002-color', 'color'))
  await failIn(sequelize, 'up', '002-color', ['a2', 'b1'])

  await t.test('default 0: the first failure stops the run (FST_BH_MIGRATION_FAILED), the rest not tried', async () => {
    await assert.rejects(make().migrate({ concurrency: 1 }), (err: Failing) => {
      assert.equal(err.code, 'FST_BH_MIGRATION_FAILED')
      assert.equal(err.schema, 'a2')
      assert.equal(err.migration, '002-color')
      assert.deepEqual(err.failures, [{ schema: 'a2', migration: '002-color', message: '002-color up refused in a2' }])
      assert.equal(err.result?.migratedSchemas, 1)
      assert.equal(err.result?.skippedSchemas, 4)
      return true
    })
    assert.deepEqual(Object.entries(await ledgers(sequelize)).filter(([, l]) => l.includes('002-color')).map(([s]) => s).sort(), [TEMPLATE_SCHEMA, 'a1'])
  })

  await t.test('K = 1 with two failing: stops after the second, both reported', async () => {
    await assert.rejects(make().migrate({ concurrency: 1, maxFailures: 1 }), (err: Failing) => {
      assert.equal(err.code, 'FST_BH_MIGRATIONS_FAILED')
      assert.equal(err.failures?.length, 2)
      assert.deepEqual(err.failures?.map((f) => f.schema), ['a2', 'b1'])
      assert.match(err.message, /2 schemas failed, more than maxFailures \(1\); 2 schemas were not tried/)
      assert.match(err.message, /schema "a2", migration "002-color": 002-color up refused in a2/)
      assert.equal(err.result?.skippedSchemas, 2)
      return true
    })
    for (const s of ['b2', 'c1']) assert.deepEqual(await ledger(sequelize, s), ['001-create-notes'], s)
  })

  await t.test('K = 2 with two failing: the run goes on, resolves with both failures; the failed schemas are as they were', async () => {
    const r = await make().migrate({ concurrency: 3, maxFailures: 2 })
    assert.equal(r.migratedSchemas, 2) // b2, c1 (a1 and a3 were done by the runs before)
    assert.deepEqual(r.failures.map((f) => [f.schema, f.migration]).sort(), [['a2', '002-color'], ['b1', '002-color']])
    for (const f of r.failures) assert.match(f.message, new RegExp(`refused in ${f.schema}`))
    for (const s of ['a2', 'b1']) {
      assert.deepEqual(await columns(sequelize, s), ['id', 'body'], s)
      assert.deepEqual(await ledger(sequelize, s), ['001-create-notes'], s)
    }
    for (const s of ['a1', 'a3', 'b2', 'c1']) assert.deepEqual(await columns(sequelize, s), ['id', 'body', 'color'], s)
  })
})

test('maintenance: each schema behind is in maintenance only while its own transaction runs', async (t) => {
  const { sequelize, tenant, make } = await setup(t)
  tenant.write('002-color.cjs', addColumn('002-color', 'color'))
  await make().migrate({ schemas: 'a1' }) // a1 (and the template) are at the head: no maintenance for them
  await failIn(sequelize, 'up', '002-color', ['b2'])
  const calls: Array<{ op: 'enter' | 'leave', schema: string, retryAfter?: number, seq: number, ledger: string[] }> = []
  const seq = async (): Promise<number> => Number((await sequelize.query<{ n: string }>("SELECT nextval('public.run_seq') AS n", { type: QueryTypes.SELECT }))[0]?.n)
  const maintenance: MaintenanceHooks = {
    // both read from other pool connections: what they see is what is committed
    enter: async (schema, retryAfter) => { calls.push({ op: 'enter', schema, ...(retryAfter !== undefined ? { retryAfter } : {}), seq: await seq(), ledger: await ledger(sequelize, schema) }) },
    leave: async (schema) => { calls.push({ op: 'leave', schema, seq: await seq(), ledger: await ledger(sequelize, schema) }) }
  }
  const bh = make()
  const migrator = new Migrator({
    sequelize,
    sharedMigrations: undefined,
    tenantMigrations: tenant.dir,
    sharedMigrationsTable: 'SequelizeMeta',
    userIdType: 'integer',
    concurrency: 2,
    onTemplateChanged: () => { bh.invalidate() },
    auditTargets: () => [],
    maintenance
  })
  const r = await migrator.migrate({ maintenance: { retryAfter: 30 }, maxFailures: 1 })
  assert.equal(r.migratedSchemas, 4)
  assert.deepEqual(r.failures.map((f) => f.schema), ['b2'])
  const log = (await runLog(sequelize, '002-color')).filter((l) => l.schema_name !== TEMPLATE_SCHEMA)
  const touched = ['a2', 'a3', 'b1', 'b2', 'c1']
  assert.deepEqual([...new Set(calls.map((c) => c.schema))].sort(), touched) // not a1, not the template
  for (const schema of touched) {
    const mine = calls.filter((c) => c.schema === schema)
    assert.deepEqual(mine.map((c) => c.op), ['enter', 'leave'], schema)
    const [enter, leave] = mine as [typeof mine[0], typeof mine[0]]
    assert.equal(enter.retryAfter, 30)
    assert.deepEqual(enter.ledger, ['001-create-notes'], `${schema}: entered before its migration committed`)
    if (schema === 'b2') {
      // failed: left all the same, after its rollback (the ledger is as before)
      assert.deepEqual(leave.ledger, ['001-create-notes'])
      continue
    }
    const start = log.find((l) => l.schema_name === schema && l.phase === 'start')?.n ?? NaN
    assert.ok(enter.seq < start, `${schema}: entered before its first migration query`)
    assert.ok(leave.seq > start)
    assert.deepEqual(leave.ledger, ['001-create-notes', '002-color'], `${schema}: left after its commit`)
  }

  await t.test('a dependency that fails to enter: the schema fails, nothing runs in it; leave is not called', async () => {
    tenant.write('003-size.cjs', addColumn('003-size', 'size'))
    const left: string[] = []
    const failing = new Migrator({
      sequelize, sharedMigrations: undefined, tenantMigrations: tenant.dir, sharedMigrationsTable: 'SequelizeMeta', userIdType: 'integer', concurrency: 1,
      onTemplateChanged: () => { bh.invalidate() },
      auditTargets: () => [],
      maintenance: { enter: async (schema) => { if (schema === 'a2') throw new Error('registry down') }, leave: async (schema) => { left.push(schema) } }
    })
    await assert.rejects(failing.migrate({ maintenance: true, schemas: 'a*' }), (err: Failing) => {
      assert.equal(err.code, 'FST_BH_MIGRATION_FAILED')
      assert.equal(err.schema, 'a2')
      assert.match(err.message, /maintenance failed, nothing ran: registry down/)
      return true
    })
    assert.deepEqual(left, ['a1'])
    assert.deepEqual((await runLog(sequelize, '003-size')).filter((l) => l.schema_name === 'a2'), [])
  })
})

test('migrationStatus: who is behind by what, from the ledgers, while another process holds the migration lock', async (t) => {
  const { sequelize, url, tenant, shared, make } = await setup(t)
  const bh = make()

  await t.test('everything up to date', async () => {
    const s = await bh.migrationStatus()
    assert.deepEqual(s, { shared: [], template: [], behind: [], upToDateSchemas: 6, targetedSchemas: 6, unmatched: [] })
  })

  tenant.write('002-color.cjs', addColumn('002-color', 'color'))
  tenant.write('003-size.cjs', addColumn('003-size', 'size'))
  const fresh = (): Boardinghouse => make()
  await fresh().migrate({ schemas: 'a1' })
  tenant.write('004-weight.cjs', addColumn('004-weight', 'weight'))
  shared.write('001-settings.cjs', `module.exports = { async up ({ context: { queryInterface, Sequelize } }) {
    await queryInterface.createTable('settings', { key: { type: Sequelize.TEXT, primaryKey: true } }) } }`)

  await t.test('answers while the lock is held; migrate waits for it meanwhile (the control)', async () => {
    const holder = await connect(t, url)
    await holder.query(`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`)
    const migrating = fresh().migrate()
    let settled = false
    void migrating.then(() => { settled = true }, () => { settled = true })
    // the migrate is waiting for the lock
    // a waiter holds nothing: its query, marked with WAITING_MARKER, shows in pg_stat_activity
    const waiting = `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()
      AND pid NOT IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = ${MIGRATION_LOCK_KEY} AND granted)`
    for (const deadline = Date.now() + 30_000; Date.now() < deadline;) {
      if ((await sequelize.query<{ n: number }>(waiting, { type: QueryTypes.SELECT, bind: [WAITING_MARKER] }))[0]?.n === 1) break
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    assert.equal((await sequelize.query<{ n: number }>(waiting, { type: QueryTypes.SELECT, bind: [WAITING_MARKER] }))[0]?.n, 1)
    const s = await fresh().migrationStatus()
    assert.equal(settled, false, 'migrate is still waiting for the lock')
    assert.deepEqual(s.shared, ['001-settings'])
    assert.deepEqual(s.template, ['004-weight'])
    assert.deepEqual(s.behind, [
      { schema: 'a1', pending: ['004-weight'] },
      ...['a2', 'a3', 'b1', 'b2', 'c1'].map((schema) => ({ schema, pending: ['002-color', '003-size', '004-weight'] }))
    ])
    assert.equal(s.upToDateSchemas, 0)
    const targeted = await fresh().migrationStatus({ schemas: ['b*', 'q*'], exclude: 'b2' })
    assert.deepEqual(targeted.behind, [{ schema: 'b1', pending: ['002-color', '003-size', '004-weight'] }])
    assert.equal(targeted.targetedSchemas, 1)
    assert.deepEqual(targeted.unmatched, ['q*'])
    assert.deepEqual(targeted.template, ['004-weight'])
    await holder.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`)
    const r = await migrating
    assert.equal(r.migratedSchemas, 6)
    assert.deepEqual(await fresh().migrationStatus(), { shared: [], template: [], behind: [], upToDateSchemas: 6, targetedSchemas: 6, unmatched: [] })
  })

  await t.test('bad targeting is FST_BH_INVALID_INPUT', async () => {
    await assert.rejects(bh.migrationStatus({ schemas: 'A' }), hasCode('FST_BH_INVALID_INPUT', 400))
    await assert.rejects(bh.migrationStatus({ batch: 2 } as never), hasCode('FST_BH_INVALID_INPUT', 400))
  })
})

test('migrationStatus on a database never migrated: everything pending, nothing created', async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url)
  const tenant = folder(t)
  tenant.write('001-create-notes.cjs', CREATE_NOTES)
  const s = await new Boardinghouse({ sequelize, tenantMigrations: tenant.dir }).migrationStatus()
  assert.ok(s.shared.length > 0)
  assert.deepEqual(s.template, ['001-create-notes'])
  assert.deepEqual(s.behind, [])
  assert.equal(s.targetedSchemas, 0)
  const tables = await sequelize.query("SELECT 1 FROM pg_tables WHERE schemaname = 'public'", { type: QueryTypes.SELECT })
  assert.deepEqual(tables, [])
})
