import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { QueryTypes, type Sequelize } from 'sequelize'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import { TEMPLATE_SCHEMA } from '../plugin/names.js'
import type { MigrateProgress } from '../plugin/migrator/index.js'
import { createTestDatabase, sequelizeFor } from './helpers.js'

function folder (t: { after: (fn: () => void) => void }): { dir: string, write: (name: string, body: string) => void } {
  const dir = mkdtempSync(join(tmpdir(), 'bh-migrations-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return { dir, write: (name, body) => writeFileSync(join(dir, name), body) }
}

async function columns (sequelize: Sequelize, schema: string, table: string): Promise<string[]> {
  const rows = await sequelize.query<{ column_name: string }>(
    'SELECT column_name FROM information_schema.columns WHERE table_schema = :schema AND table_name = :table ORDER BY ordinal_position',
    { replacements: { schema, table }, type: QueryTypes.SELECT })
  return rows.map((r) => r.column_name)
}

async function ledger (sequelize: Sequelize, schema: string): Promise<string[]> {
  const rows = await sequelize.query<{ name: string }>('SELECT name FROM public.boardinghouse_tenant_migration WHERE schema_name = :schema ORDER BY name',
    { replacements: { schema }, type: QueryTypes.SELECT })
  return rows.map((r) => r.name)
}

const CREATE_NOTES = `module.exports = {
  async up ({ context: { queryInterface, Sequelize } }) {
    await queryInterface.createTable('notes', {
      id: { type: Sequelize.INTEGER, primaryKey: true, autoIncrement: true },
      body: { type: Sequelize.TEXT, allowNull: false }
    })
  },
  async down ({ context: { queryInterface } }) { await queryInterface.dropTable('notes') }
}`

// sequelize-cli's own format: up(queryInterface, Sequelize)
const ADD_COLUMN_CLI_STYLE = `module.exports = {
  async up (queryInterface, Sequelize) {
    await queryInterface.addColumn('notes', 'pinned', { type: Sequelize.BOOLEAN, allowNull: false, defaultValue: false })
    await queryInterface.addIndex('notes', ['pinned'], { name: 'notes_pinned_idx' })
  },
  async down (queryInterface) { await queryInterface.removeColumn('notes', 'pinned') }
}`

const RENAME_AND_SEED = `module.exports = {
  async up ({ context: { queryInterface, isTemplate } }) {
    await queryInterface.renameColumn('notes', 'body', 'text')
    if (!isTemplate) await queryInterface.bulkInsert('notes', [{ text: 'welcome', pinned: true }])
  }
}`

test('migrations run in public once, then in the template and every schema', async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url, { pool: { max: 5 } })
  const tenant = folder(t)
  const shared = folder(t)
  tenant.write('001-create-notes.cjs', CREATE_NOTES)
  shared.write('001-create-settings.cjs', `module.exports = { async up ({ context: { queryInterface, Sequelize } }) {
    await queryInterface.createTable('settings', { key: { type: Sequelize.TEXT, primaryKey: true } }) } }`)
  const make = (): Boardinghouse => new Boardinghouse({ sequelize, tenantMigrations: tenant.dir, sharedMigrations: shared.dir })

  await t.test('first run: library tables, app shared tables, the template with its guard', async () => {
    const events: MigrateProgress[] = []
    const result = await make().migrate({ onProgress: (p) => events.push(p) })
    assert.deepEqual(result.template, ['001-create-notes'])
    assert.ok(result.shared.includes('001-create-settings'))
    assert.ok(result.shared.some((n) => n.includes('boardinghouse')))
    assert.deepEqual(await columns(sequelize, 'public', 'settings'), ['key'])
    assert.deepEqual(await columns(sequelize, TEMPLATE_SCHEMA, 'notes'), ['id', 'body'])
    assert.deepEqual(await columns(sequelize, 'public', 'notes'), [])
    const meta = await sequelize.query<{ name: string }>('SELECT name FROM "SequelizeMeta"', { type: QueryTypes.SELECT })
    assert.deepEqual(meta.map((r) => r.name), ['001-create-settings'])
    await assert.rejects(sequelize.query(`INSERT INTO "${TEMPLATE_SCHEMA}".notes (body) VALUES ('x')`), /no data/)
    assert.ok(events.some((e) => e.phase === 'template'))
  })

  const bh = make()
  await t.test('a second run has nothing to do', async () => {
    const result = await bh.migrate()
    assert.deepEqual(result, { shared: [], template: [], migratedSchemas: 0, upToDateSchemas: 0, failures: [], unmatched: [], targetedSchemas: 0, skippedSchemas: 0 })
  })

  await t.test('new migrations reach the template and every schema, inactive ones too, in parallel', async () => {
    for (const name of ['m1', 'm2', 'm3', 'm4', 'm5', 'm6']) await bh.createSchema(name)
    await bh.deleteSchema('m6')
    tenant.write('002-pin.cjs', ADD_COLUMN_CLI_STYLE)
    tenant.write('003-rename-and-seed.cjs', RENAME_AND_SEED)
    const events: MigrateProgress[] = []
    const result = await make().migrate({ concurrency: 3, onProgress: (p) => events.push(p) })
    assert.deepEqual(result.template, ['002-pin', '003-rename-and-seed'])
    assert.equal(result.migratedSchemas, 6)
    for (const schema of [TEMPLATE_SCHEMA, 'm1', 'm2', 'm3', 'm4', 'm5', 'm6']) {
      assert.deepEqual(await columns(sequelize, schema, 'notes'), ['id', 'text', 'pinned'], schema)
      assert.deepEqual(await ledger(sequelize, schema), ['001-create-notes', '002-pin', '003-rename-and-seed'], schema)
    }
    const seeded = await sequelize.query<{ n: string }>('SELECT count(*) AS n FROM m3.notes', { type: QueryTypes.SELECT })
    assert.equal(seeded[0]?.n, '1')
    const tpl = await sequelize.query<{ n: string }>(`SELECT count(*) AS n FROM "${TEMPLATE_SCHEMA}".notes`, { type: QueryTypes.SELECT })
    assert.equal(tpl[0]?.n, '0')
    assert.equal(events.filter((e) => e.phase === 'tenants').length, 6)
    assert.deepEqual(events.filter((e) => e.phase === 'tenants').map((e) => e.done), [1, 2, 3, 4, 5, 6])
  })

  await t.test('a tenant created now starts at the head, without running migrations', async () => {
    const bh2 = make()
    await bh2.createSchema('fresh')
    assert.deepEqual(await columns(sequelize, 'fresh', 'notes'), ['id', 'text', 'pinned'])
    assert.deepEqual(await ledger(sequelize, 'fresh'), ['001-create-notes', '002-pin', '003-rename-and-seed'])
    const idx = await sequelize.query("SELECT 1 FROM pg_indexes WHERE schemaname = 'fresh' AND indexname = 'notes_pinned_idx'", { type: QueryTypes.SELECT })
    assert.equal(idx.length, 1)
    assert.deepEqual((await bh2.migrate()).migratedSchemas, 0)
  })

  await t.test('a migration failing in one schema is reported by schema and migration; re-running continues', async () => {
    // Fails in m3 while public.m3_is_special exists (a module is imported once per process, so the
    // "fix" below removes that table rather than editing the file).
    await sequelize.query('CREATE TABLE public.m3_is_special (x int)')
    tenant.write('004-color.cjs', `module.exports = { async up ({ context: { queryInterface, Sequelize, schema, sequelize } }) {
      await queryInterface.addColumn('notes', 'color', { type: Sequelize.TEXT })
      const [flag] = await sequelize.query("SELECT to_regclass('public.m3_is_special') IS NOT NULL AS on")
      if (schema === 'm3' && flag[0].on) throw new Error('m3 is special')
    } }`)
    const failing = make()
    await assert.rejects(failing.migrate({ concurrency: 1 }), (err: Error & { code?: string, schema?: string, migration?: string, cause?: unknown }) => {
      assert.equal(err.code, 'FST_BH_MIGRATION_FAILED')
      assert.equal(err.schema, 'm3')
      assert.equal(err.migration, '004-color')
      assert.match(err.message, /"004-color".*"m3".*m3 is special/)
      assert.ok(err.cause instanceof Error)
      return true
    })
    // m3 is as it was (its first statement rolled back with it), the schemas done before stay done
    assert.deepEqual(await columns(sequelize, 'm3', 'notes'), ['id', 'text', 'pinned'])
    assert.ok(!(await ledger(sequelize, 'm3')).includes('004-color'))
    assert.ok((await columns(sequelize, 'fresh', 'notes')).includes('color'))
    assert.ok((await ledger(sequelize, 'fresh')).includes('004-color'))

    await sequelize.query('DROP TABLE public.m3_is_special')
    const fixed = await new Boardinghouse({ sequelize, tenantMigrations: tenant.dir, sharedMigrations: shared.dir }).migrate()
    assert.equal(fixed.template.length, 0)
    assert.ok(fixed.migratedSchemas >= 1)
    for (const schema of ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'fresh']) {
      assert.ok((await columns(sequelize, schema, 'notes')).includes('color'), schema)
    }
  })

  await t.test('a migration failing in the template stops before any tenant', async () => {
    tenant.write('005-broken.cjs', `module.exports = { async up ({ context: { queryInterface } }) {
      await queryInterface.sequelize.query('ALTER TABLE notes ADD COLUMN broken int')
      await queryInterface.sequelize.query('SELECT * FROM no_such_table')
    } }`)
    await assert.rejects(make().migrate(), (err: Error & { code?: string, schema?: string }) => {
      assert.equal(err.code, 'FST_BH_MIGRATION_FAILED')
      assert.equal(err.schema, TEMPLATE_SCHEMA)
      assert.match(err.message, /no_such_table/)
      return true
    })
    for (const schema of [TEMPLATE_SCHEMA, 'm1']) {
      assert.ok(!(await columns(sequelize, schema, 'notes')).includes('broken'), schema)
      assert.ok(!(await ledger(sequelize, schema)).includes('005-broken'), schema)
    }
    rmSync(join(tenant.dir, '005-broken.cjs'))
  })

  await t.test('two migrate runs at once: one waits for the other, nothing runs twice', async () => {
    tenant.write('006-tags.cjs', `module.exports = { async up ({ context: { queryInterface, Sequelize } }) {
      await queryInterface.addColumn('notes', 'tags', { type: Sequelize.ARRAY(Sequelize.TEXT) })
    } }`)
    const s2 = sequelizeFor(t, url, { pool: { max: 5 } })
    const other = new Boardinghouse({ sequelize: s2, tenantMigrations: tenant.dir, sharedMigrations: shared.dir })
    const [a, b] = await Promise.all([make().migrate(), other.migrate()])
    assert.equal(a.migratedSchemas + b.migratedSchemas, 7)
    assert.equal(a.template.length + b.template.length, 1)
  })
})

test('tenant migrations that write rows are refused in the template with a hint', async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url)
  const tenant = folder(t)
  tenant.write('001-create-notes.cjs', CREATE_NOTES)
  tenant.write('002-seed.cjs', `module.exports = { async up ({ context: { queryInterface } }) {
    await queryInterface.bulkInsert('notes', [{ body: 'seed' }])
  } }`)
  const bh = new Boardinghouse({ sequelize, tenantMigrations: tenant.dir })
  await assert.rejects(bh.migrate(), (err: Error & { code?: string, schema?: string }) => {
    assert.equal(err.code, 'FST_BH_MIGRATION_FAILED')
    assert.equal(err.schema, TEMPLATE_SCHEMA)
    assert.match(err.message, /no data/)
    return true
  })
  // Nothing of the failed set stays in the template: the whole schema's run was one transaction.
  assert.deepEqual(await columns(sequelize, TEMPLATE_SCHEMA, 'notes'), [])
  assert.deepEqual(await ledger(sequelize, TEMPLATE_SCHEMA), [])
})

test('migrate names the schema and migration that failed', async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url, { pool: { max: 4 } })
  const tenant = folder(t)
  tenant.write('001-create-notes.cjs', CREATE_NOTES)
  const make = (): Boardinghouse => new Boardinghouse({ sequelize, tenantMigrations: tenant.dir })
  const bh = make()
  await bh.migrate()
  for (const name of ['k1', 'k2', 'k3', 'k4', 'k5']) await bh.createSchema(name)

  await t.test('a migration whose backend is terminated is reported against its own schema and name', async () => {
    // k3's migration waits; meanwhile the test terminates its backend from outside.
    tenant.write('002-killed.cjs', `module.exports = { async up ({ context: { sequelize, schema } }) {
      await sequelize.query('ALTER TABLE notes ADD COLUMN k int')
      if (schema === 'k3') await sequelize.query("SELECT pg_sleep(90) AS bh_wait_k3")
    } }`)
    const run = make().migrate({ concurrency: 2 })
    const outcome = run.then(() => null, (err: unknown) => err as Error & { code?: string, schema?: string, migration?: string })
    let killed = false
    const deadline = Date.now() + 60_000 // k3 is reached after the template, k1 and k2 (slow on a busy machine)
    while (!killed && Date.now() < deadline) {
      const rows = await sequelize.query<{ ok: boolean }>("SELECT pg_terminate_backend(pid, 5000) AS ok FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%bh_wait_k3%' AND pid <> pg_backend_pid()", { type: QueryTypes.SELECT })
      killed = rows.some((r) => r.ok)
      if (!killed) await new Promise((resolve) => setTimeout(resolve, 25))
    }
    assert.ok(killed)
    const err = await outcome
    assert.ok(err !== null)
    assert.equal(err.code, 'FST_BH_MIGRATION_FAILED')
    assert.equal(err.schema, 'k3')
    assert.equal(err.migration, '002-killed')
    assert.match(err.message, /"002-killed" failed in schema "k3": .*terminat/)
    assert.ok(!(await ledger(sequelize, 'k3')).includes('002-killed'))
    assert.ok(!(await columns(sequelize, 'k3', 'notes')).includes('k'))
    rmSync(join(tenant.dir, '002-killed.cjs'))
  })

  await t.test('a ledger conflict names the migration, the schema and the ledger', async () => {
    tenant.write('003-ledger.cjs', `module.exports = { async up ({ context: { sequelize, schema } }) {
      if (schema === 'k2') await sequelize.query("INSERT INTO public.boardinghouse_tenant_migration (schema_name, name) VALUES ('k2', '003-ledger')")
    } }`)
    await assert.rejects(make().migrate({ concurrency: 1 }), (err: Error & { code?: string, schema?: string, migration?: string }) => {
      assert.equal(err.code, 'FST_BH_MIGRATION_FAILED')
      assert.equal(err.schema, 'k2')
      assert.equal(err.migration, '003-ledger')
      assert.doesNotMatch(err.message, /Validation error/)
      assert.match(err.message, /already recorded .*ledger/)
      return true
    })
    assert.ok(!(await ledger(sequelize, 'k2')).includes('003-ledger'))
  })
})
