/** `boardinghouse migrate` targeting, staging, status, --dry-run and down, through the CLI's main() in this process. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { QueryTypes } from 'sequelize'
import { main, type CliIO } from '../plugin/cli.js'
import { MIGRATION_LOCK_KEY } from '../plugin/migrator/index.js'
import { connect, createTestDatabase, sequelizeFor } from './helpers.js'
import { CREATE_NOTES, addColumn, failIn, fleetTables, folder, ledger, ledgers } from './fleet-fixtures.js'

interface Run { code: number, out: string, err: string }

test('boardinghouse migrate: targeting, staging, status, dry run, down', async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url)
  const root = folder(t, 'bh-cli-migrate-')
  mkdirSync(join(root.dir, 'tenant'))
  const writeTenant = (name: string, body: string): void => { writeFileSync(join(root.dir, 'tenant', name), body) }
  writeTenant('001-create-notes.cjs', CREATE_NOTES)
  root.write('boardinghouse.config.mjs', "export default { tenantMigrations: './tenant', sequelize: { pool: { max: 4 } } }\n")
  const config = join(root.dir, 'boardinghouse.config.mjs')
  const cli = async (...args: string[]): Promise<Run> => {
    let out = ''
    let err = ''
    const io: CliIO = { out: (text) => { out += text }, err: (text) => { err += text }, isTTY: false, env: { ...process.env, DATABASE_URL: url } }
    const code = await main(['--config', config, ...args], io)
    return { code, out, err }
  }
  const lines = (text: string): string[] => text.trim().split('\n').filter((l) => l !== '')

  await t.test('a pattern matching nothing: a clear message, exit 0, nothing run (not even the library\'s migrations)', async () => {
    const r = await cli('migrate', '--schema', 'nosuch*')
    assert.equal(r.code, 0, r.err)
    assert.equal(r.out, 'no schema matches --schema nosuch*: nothing was migrated\n')
    assert.match(r.err, /warning: pattern "nosuch\*" matched no schema/)
    assert.deepEqual(await sequelize.query("SELECT 1 FROM pg_tables WHERE schemaname = 'public'", { type: QueryTypes.SELECT }), [])
  })

  await t.test('migrate, then four schemas', async () => {
    const r = await cli('migrate')
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, /^migrated: \d+ shared, 1 in the template, 0 schemas brought up to date, 0 already were\n$/)
    for (const s of ['s1', 's2', 's3', 's4']) assert.equal((await cli('schema', 'create', s)).code, 0)
    await fleetTables(sequelize)
  })

  await t.test('usage errors: exit 2, one line, before connecting', async () => {
    const usage = async (args: string[], message: RegExp): Promise<void> => {
      const r = await cli(...args)
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`)
      assert.equal(lines(r.err).length, 1, r.err)
      assert.match(r.err, message, args.join(' '))
      assert.equal(r.out, '')
    }
    await usage(['migrate', '--batch', '0'], /^boardinghouse: FST_BH_INVALID_OPTION: .*--batch must be a positive integer, not "0"/)
    await usage(['migrate', '--max-failures', 'some'], /--max-failures must be a non-negative integer/)
    await usage(['migrate', '--schema', 'S*'], /--schema "S\*" may hold only a-z, 0-9, _ and the wildcard \*/)
    await usage(['migrate', '--exclude', '__template__'], /--exclude "__template__" is the template/)
    await usage(['migrate', '--canary', 's1,x*'], /--canary "x\*" must start with a lowercase letter/)
    await usage(['migrate', '--maintenance', '0'], /--maintenance must be a positive integer/)
    await usage(['migrate', 'sideways'], /unknown migrate action "sideways"/)
    await usage(['migrate', 'status', '--batch', '2'], /--batch does not apply to migrate status/)
    await usage(['migrate', '--to', '001-create-notes'], /--to does not apply to migrate/)
    await usage(['migrate', 'down', '--to', 'a', '--step', '1'], /--to and --step cannot be given together/)
    await usage(['migrate', 'down', '--dry-run'], /--dry-run does not apply to migrate down/)
    await usage(['migrate', '--nope'], /unknown option '--nope'/)
  })

  writeTenant('002-color.cjs', addColumn('002-color', 'color'))

  await t.test('status: a table or JSON, while another process holds the migration lock', async () => {
    const holder = await connect(t, url)
    await holder.query(`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`)
    try {
      const r = await cli('migrate', 'status')
      assert.equal(r.code, 0, r.err)
      assert.deepEqual(lines(r.out), [
        'SCHEMA\tBEHIND\tPENDING',
        '__template__\t1\t002-color',
        ...['s1', 's2', 's3', 's4'].map((s) => `${s}\t1\t002-color`),
        '4 of 4 targeted schemas behind, the template behind'
      ])
      const j = await cli('migrate', 'status', '--json', '--schema', 's1,s2', '--exclude', 's2')
      assert.equal(j.code, 0, j.err)
      const s = JSON.parse(j.out) as { template: string[], behind: Array<{ schema: string, pending: string[] }>, targetedSchemas: number }
      assert.deepEqual(s.behind, [{ schema: 's1', pending: ['002-color'] }])
      assert.equal(s.targetedSchemas, 1)
      assert.deepEqual(s.template, ['002-color'])
    } finally {
      await holder.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`)
    }
  })

  await t.test('--dry-run: the status of the targets, nothing migrated', async () => {
    const r = await cli('migrate', '--dry-run', '--schema', 's1')
    assert.equal(r.code, 0, r.err)
    assert.deepEqual(lines(r.out), ['SCHEMA\tBEHIND\tPENDING', '__template__\t1\t002-color', 's1\t1\t002-color', '1 of 1 targeted schemas behind, the template behind', 'dry run: nothing was migrated'])
    assert.deepEqual(await ledger(sequelize, '__template__'), ['001-create-notes'])
  })

  await t.test('--max-failures with --batch: a line per batch, each failure, exit 1', async () => {
    await failIn(sequelize, 'up', '002-color', ['s2'])
    const r = await cli('migrate', '--max-failures', '1', '--batch', '2', '--concurrency', '1')
    assert.equal(r.code, 1, r.err)
    assert.equal(r.out, 'migrated: 0 shared, 1 in the template, 3 schemas brought up to date, 0 already were, 1 failed\n')
    const err = lines(r.err)
    assert.ok(err.includes('batch 1/2: 2 schemas, 1 migrated, 1 failed (2/4 done)'), r.err)
    assert.ok(err.includes('batch 2/2: 2 schemas, 2 migrated, 0 failed (4/4 done)'), r.err)
    assert.ok(err.includes('failed: schema s2, migration 002-color: 002-color up refused in s2'), r.err)
    assert.match(err.at(-1) ?? '', /^boardinghouse: FST_BH_MIGRATIONS_FAILED: 1 schema failed \(within --max-failures 1: every other schema was migrated\)/)
    assert.deepEqual(await ledger(sequelize, 's2'), ['001-create-notes'])
  })

  await t.test('the first failure (no --max-failures): exit 1, the error line last; --json has the failures', async () => {
    writeTenant('003-size.cjs', addColumn('003-size', 'size'))
    await failIn(sequelize, 'up', '003-size', ['s1'])
    const r = await cli('migrate', '--json', '--schema', 's1')
    assert.equal(r.code, 1, r.err)
    const j = JSON.parse(r.out) as { error: { code: string }, failures: Array<{ schema: string, migration: string }> }
    assert.equal(j.error.code, 'FST_BH_MIGRATION_FAILED')
    assert.deepEqual(j.failures.map((f) => [f.schema, f.migration]), [['s1', '003-size']])
    assert.match(lines(r.err).at(-1) ?? '', /^boardinghouse: FST_BH_MIGRATION_FAILED: Migration "003-size" failed in schema "s1": 003-size up refused in s1$/)
    await failIn(sequelize, 'up', '002-color', [])
    await failIn(sequelize, 'up', '003-size', [])
  })

  await t.test('--canary first; --json prints the result', async () => {
    const r = await cli('migrate', '--canary', 's2', '--json')
    assert.equal(r.code, 0, r.err)
    assert.match(r.err, /canary s2 migrated \(1\/1\)/)
    const j = JSON.parse(r.out) as { migratedSchemas: number, failures: unknown[] }
    assert.equal(j.migratedSchemas, 4)
    assert.deepEqual(j.failures, [])
  })

  await t.test('down: targeted (the template kept), then all; --to naming no migration is one error line', async () => {
    let r = await cli('migrate', 'down', '--schema', 's1')
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, /^rolled back: 003-size in 1 schemas \(0 had none of them\); the template: schema "s2" and 2 others still list migrations of the range/)
    r = await cli('migrate', 'down', '--to', 'nope')
    assert.equal(r.code, 1)
    assert.equal(lines(r.err).length, 1, r.err)
    assert.match(r.err, /^boardinghouse: FST_BH_UNKNOWN_MIGRATION: Migration "nope" is not a tenant migration/)
    r = await cli('migrate', 'down', '--to', '002-color')
    assert.equal(r.code, 0, r.err)
    assert.match(r.out, /^rolled back: 003-size, 002-color in 4 schemas \(0 had none of them\); the template: rolled back \(2\)/)
    for (const [s, l] of Object.entries(await ledgers(sequelize))) assert.deepEqual(l, ['001-create-notes'], s)
    r = await cli('migrate', 'down', '--schema', 'zz*')
    assert.equal(r.code, 0, r.err)
    assert.equal(r.out, 'no schema matches --schema zz*: nothing was rolled back\n')
  })
})
