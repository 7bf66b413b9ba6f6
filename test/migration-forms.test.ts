/**
 * Migration files in every form a Sequelize user has: .js, .mjs and .cjs; umzug's `up({ context })`
 * (named exports or a default object) and sequelize-cli's `up(queryInterface, Sequelize)`; and
 * TypeScript (.ts, .mts) through the optional loader (tsx), typed with MigrationContext.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { QueryTypes } from 'sequelize'
import { Boardinghouse } from '../plugin/index.js'
import { createTestDatabase, sequelizeFor } from './helpers.js'

const INDEX = fileURLToPath(new URL('../plugin/index.js', import.meta.url))

const FILES: Record<string, string> = {
  'package.json': '{ "type": "module" }\n',
  '01-umzug-named.js': `export async function up ({ context: { queryInterface, Sequelize } }) {
  await queryInterface.createTable('forms', { id: { type: Sequelize.INTEGER, primaryKey: true, autoIncrement: true } })
}
export async function down ({ context: { queryInterface } }) { await queryInterface.dropTable('forms') }
`,
  '02-umzug-default.mjs': `export default {
  async up ({ context: { queryInterface, Sequelize } }) { await queryInterface.addColumn('forms', 'from_mjs', { type: Sequelize.TEXT }) },
  async down ({ context: { queryInterface } }) { await queryInterface.removeColumn('forms', 'from_mjs') }
}
`,
  '03-sequelize-cli.cjs': `'use strict'
/** @type {import('sequelize-cli').Migration} */
module.exports = {
  async up (queryInterface, Sequelize) { await queryInterface.addColumn('forms', 'from_cjs', { type: Sequelize.STRING(20) }) },
  async down (queryInterface) { await queryInterface.removeColumn('forms', 'from_cjs') }
}
`
}

const LATER: Record<string, string> = {
  '04-typed.ts': `import type { MigrationContext } from ${JSON.stringify(INDEX)}

export async function up ({ context }: { context: MigrationContext }): Promise<void> {
  const { queryInterface, Sequelize } = context
  const column: { type: typeof Sequelize.BOOLEAN, allowNull: boolean, defaultValue: boolean } = { type: Sequelize.BOOLEAN, allowNull: false, defaultValue: false }
  await queryInterface.addColumn('forms', 'from_ts', column)
}
`,
  '05-sequelize-cli.mts': `import type { QueryInterface } from 'sequelize'
import type { MigrationContext } from ${JSON.stringify(INDEX)}

export async function up (queryInterface: QueryInterface, Sequelize: MigrationContext['Sequelize']): Promise<void> {
  await queryInterface.addColumn('forms', 'from_mts', { type: Sequelize.DATE })
}
`
}

async function columns (sequelize: ReturnType<typeof sequelizeFor>, schema: string): Promise<string[]> {
  const rows = await sequelize.query<{ column_name: string }>(
    "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'forms' ORDER BY ordinal_position",
    { bind: [schema], type: QueryTypes.SELECT })
  return rows.map((r) => r.column_name)
}

test('.js, .mjs, .cjs, .ts and .mts migrations, umzug and sequelize-cli style, run in the template and every schema', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bh-forms-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  for (const [name, text] of Object.entries(FILES)) writeFileSync(join(dir, name), text)
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url)
  const bh = new Boardinghouse({ sequelize, tenantMigrations: dir })

  const first = await bh.migrate()
  assert.deepEqual(first.template, ['01-umzug-named', '02-umzug-default', '03-sequelize-cli'])
  assert.deepEqual(await columns(sequelize, '__template__'), ['id', 'from_mjs', 'from_cjs'])
  await bh.createSchema('acme')

  for (const [name, text] of Object.entries(LATER)) writeFileSync(join(dir, name), text)
  // the next release: a new process (the migration list is read once per instance)
  const second = await new Boardinghouse({ sequelize, tenantMigrations: dir }).migrate()
  assert.deepEqual(second.template, ['04-typed', '05-sequelize-cli'])
  assert.equal(second.migratedSchemas, 1)
  const all = ['id', 'from_mjs', 'from_cjs', 'from_ts', 'from_mts']
  assert.deepEqual(await columns(sequelize, '__template__'), all)
  assert.deepEqual(await columns(sequelize, 'acme'), all)
  assert.deepEqual(await columns(sequelize, 'public'), [], 'nothing ran in public')
  const ledger = await sequelize.query<{ name: string }>("SELECT name FROM public.boardinghouse_tenant_migration WHERE schema_name = 'acme' ORDER BY name", { type: QueryTypes.SELECT })
  assert.deepEqual(ledger.map((r) => r.name), ['01-umzug-named', '02-umzug-default', '03-sequelize-cli', '04-typed', '05-sequelize-cli'])
})

test('a migration file without an up() function is refused, naming it, before anything runs', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bh-forms-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  writeFileSync(join(dir, '01-ok.cjs'), "module.exports = { up: async (qi, S) => { await qi.createTable('forms', { id: { type: S.INTEGER, primaryKey: true } }) } }\n")
  writeFileSync(join(dir, '02-bad.cjs'), 'module.exports = { upp: async () => {} }\n')
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url)
  const bh = new Boardinghouse({ sequelize, tenantMigrations: dir })
  await assert.rejects(bh.migrate(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'FST_BH_INVALID_OPTION')
    assert.match(err.message, /02-bad\.cjs exports no up\(\) function/)
    return true
  })
})
