/** Shared by the staged-migration, rollback and migrate CLI tests: migration files that log and fail on demand. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { QueryTypes, type Sequelize } from 'sequelize'

export function folder (t: { after: (fn: () => void) => void }, prefix = 'bh-fleet-'): { dir: string, write: (name: string, body: string) => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return { dir, write: (name, body) => writeFileSync(join(dir, name), body) }
}

export async function columns (sequelize: Sequelize, schema: string, table = 'notes'): Promise<string[]> {
  const rows = await sequelize.query<{ column_name: string }>(
    'SELECT column_name FROM information_schema.columns WHERE table_schema = :schema AND table_name = :table ORDER BY ordinal_position',
    { replacements: { schema, table }, type: QueryTypes.SELECT })
  return rows.map((r) => r.column_name)
}

export async function ledger (sequelize: Sequelize, schema: string): Promise<string[]> {
  const rows = await sequelize.query<{ name: string }>('SELECT name FROM public.boardinghouse_tenant_migration WHERE schema_name = :schema ORDER BY name',
    { replacements: { schema }, type: QueryTypes.SELECT })
  return rows.map((r) => r.name)
}

/** Every schema's ledger, by schema (the template included). */
export async function ledgers (sequelize: Sequelize): Promise<Record<string, string[]>> {
  const rows = await sequelize.query<{ schema_name: string, names: string[] }>(
    'SELECT schema_name, array_agg(name ORDER BY name) AS names FROM public.boardinghouse_tenant_migration GROUP BY 1 ORDER BY 1', { type: QueryTypes.SELECT })
  return Object.fromEntries(rows.map((r) => [r.schema_name, r.names]))
}

export const CREATE_NOTES = `module.exports = {
  async up ({ context: { queryInterface, Sequelize } }) {
    await queryInterface.createTable('notes', {
      id: { type: Sequelize.INTEGER, primaryKey: true, autoIncrement: true },
      body: { type: Sequelize.TEXT }
    })
  },
  async down ({ context: { queryInterface } }) { await queryInterface.dropTable('notes') }
}`

/**
 * A migration adding column `column` to notes (down removes it). Up and down log their start and
 * end in public.run_log (with a sequence number, which no rollback takes back) and throw after
 * their DDL in a schema listed in public.fail_up / public.fail_down for this migration.
 */
export function addColumn (name: string, column: string, options: { down?: boolean, index?: boolean } = {}): string {
  const step = (direction: 'up' | 'down', ddl: string): string => `async ${direction} ({ context: { queryInterface, Sequelize, sequelize, schema } }) {
    const log = async (phase) => { await sequelize.query("INSERT INTO public.run_log (schema_name, name, direction, phase, n) VALUES (:schema, :name, :direction, :phase, nextval('public.run_seq'))", { replacements: { schema, name: ${JSON.stringify(name)}, direction: ${JSON.stringify(direction)}, phase } }) }
    await log('start')
    ${ddl}
    const [refused] = await sequelize.query("SELECT 1 FROM public.fail_${direction} WHERE schema_name = :schema AND name = :name", { replacements: { schema, name: ${JSON.stringify(name)} } })
    if (refused.length > 0) throw new Error(${JSON.stringify(`${name} ${direction} refused in `)} + schema)
    await log('end')
  }`
  const up = step('up', `await queryInterface.addColumn('notes', ${JSON.stringify(column)}, { type: Sequelize.TEXT })${options.index === true ? `\n    await queryInterface.addIndex('notes', [${JSON.stringify(column)}], { name: ${JSON.stringify(`notes_${column}_idx`)} })` : ''}`)
  const down = step('down', `await queryInterface.removeColumn('notes', ${JSON.stringify(column)})`)
  return `module.exports = {\n  ${up}${options.down === false ? '' : `,\n  ${down}`}\n}\n`
}

/** The tables and sequence the logging migrations use. */
export async function fleetTables (sequelize: Sequelize): Promise<void> {
  await sequelize.query(`CREATE TABLE public.run_log (schema_name text NOT NULL, name text NOT NULL, direction text NOT NULL, phase text NOT NULL, n bigint NOT NULL);
    CREATE SEQUENCE public.run_seq;
    CREATE TABLE public.fail_up (schema_name text NOT NULL, name text NOT NULL);
    CREATE TABLE public.fail_down (schema_name text NOT NULL, name text NOT NULL)`)
}

export interface LogRow { schema_name: string, name: string, direction: string, phase: string, n: number }

/** The committed log rows of `name` (run by `direction`), in sequence order. */
export async function runLog (sequelize: Sequelize, name: string, direction: 'up' | 'down' = 'up'): Promise<LogRow[]> {
  const rows = await sequelize.query<LogRow>('SELECT schema_name, name, direction, phase, n::int AS n FROM public.run_log WHERE name = :name AND direction = :direction ORDER BY n',
    { replacements: { name, direction }, type: QueryTypes.SELECT })
  return rows
}

/** Makes `name` fail (up or down) in these schemas, or (no schemas) in none. */
export async function failIn (sequelize: Sequelize, direction: 'up' | 'down', name: string, schemas: string[]): Promise<void> {
  await sequelize.query(`DELETE FROM public.fail_${direction} WHERE name = :name`, { replacements: { name } })
  for (const schema of schemas) await sequelize.query(`INSERT INTO public.fail_${direction} VALUES (:schema, :name)`, { replacements: { schema, name } })
}
