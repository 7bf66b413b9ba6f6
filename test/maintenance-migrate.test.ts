import { test } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { QueryTypes } from 'sequelize'
import { EXAMPLE_TENANT_MIGRATIONS, setupBoardinghouse } from './helpers.js'
import { Boardinghouse } from '../plugin/boardinghouse.js'
/** The migrator's maintenance hooks, wired by Boardinghouse to setMaintenance / clearMaintenance with by: 'migrate'. */
test('migrate({ maintenance }) puts each schema in maintenance only while its own transaction runs; an operator\'s maintenance is left alone', async (t) => {
  mkdirSync('test/.artifacts', { recursive: true })
  const dir = mkdtempSync(join(process.cwd(), 'test/.artifacts/wiring-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  copyFileSync(join(EXAMPLE_TENANT_MIGRATIONS, '20260101000000-create-items.js'), join(dir, '20260101000000-create-items.js'))
  const { bh, sequelize } = await setupBoardinghouse(t, { tenantMigrations: dir })
  await bh.createSchema('a1'); await bh.createSchema('a2'); await bh.createSchema('a3')
  await bh.setMaintenance('a2', { retryAfter: 600 })
  writeFileSync(join(dir, '20260102000000-probe.js'), `export async function up ({ context: { sequelize, schema, isTemplate, transaction } }) {
  if (isTemplate) return
  const [rows] = await sequelize.query("SELECT schema_name, maintenance_by AS by, maintenance_retry_after AS r FROM public.boardinghouse_schema ORDER BY 1", { transaction })
  await sequelize.query("CREATE TABLE IF NOT EXISTS public.probe (schema text, seen jsonb)", { transaction })
  await sequelize.query("INSERT INTO public.probe VALUES ($1, $2)", { bind: [schema, JSON.stringify(rows)], transaction })
}
export async function down () {}
`)
  const fresh = new Boardinghouse({ sequelize, tenantModels: ['Item'], tenantMigrations: dir }) // the tenant set is loaded once per migrator
  const heard: string[] = []
  fresh.on('maintenanceStarted', (e) => { heard.push(`+${e.schema}:${e.by}:${String(e.retryAfter)}`) })
  fresh.on('maintenanceEnded', (e) => { heard.push(`-${e.schema}:${e.by}`) })
  const result = await fresh.migrate({ maintenance: { retryAfter: 30 }, concurrency: 1 })
  assert.equal(result.migratedSchemas, 3)
  const probe = await sequelize.query<{ schema: string, seen: Array<{ schema_name: string, by: string | null, r: number | null }> }>('SELECT * FROM public.probe ORDER BY 1', { type: QueryTypes.SELECT })
  const view = probe.map((p) => `${p.schema}: ${p.seen.map((s) => `${s.schema_name}=${s.by ?? '-'}/${s.r ?? '-'}`).join(' ')}`)
  assert.deepEqual(view, ['a1: a1=migrate/30 a2=manual/600 a3=-/-', 'a2: a1=-/- a2=manual/600 a3=-/-', 'a3: a1=-/- a2=manual/600 a3=migrate/30'])
  bh.invalidate()
  assert.deepEqual((await bh.listSchemas()).map((s) => s.maintenance?.by ?? null), [null, 'manual', null])
  assert.deepEqual(heard, ['+a1:migrate:30', '-a1:migrate', '+a3:migrate:30', '-a3:migrate'])
})
