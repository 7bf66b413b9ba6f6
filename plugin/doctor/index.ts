/**
 * `doctor`: checks a fleet of schemas against the registry, the ledger and the template, read-only
 * (one read-only REPEATABLE READ transaction: one snapshot, and the database refuses any write).
 * With `fix`, first repairs what is safe (fix.ts), then checks again: the findings are what is left.
 *
 * Findings (types.ts): registry rows without a schema and tenant-looking schemas without a registry
 * row, ledgers behind or ahead of the template's head, orphan ledger / membership / domain rows,
 * missing audit triggers, tenant tables in public, rows in the template or a missing row guard, and
 * every difference between a schema's structure and the template's (structure.ts). Each check is a
 * query over all schemas at once, never one per schema.
 */
import type { Sequelize } from 'sequelize'
import { runWithSchema } from '../context.js'
import { BoardinghouseErrors } from '../errors.js'
import type { AuditTarget } from '../migrator/index.js'
import { assertMigrated, auditFindings, fleetFindings, withoutAuditDuplicates } from './fleet.js'
import { applyFixes } from './fix.js'
import { compareStructure, queryOn } from './structure.js'
import { MIGRATION_LOCK_KEY } from '../migrator/index.js'
import { readPendingState, type PendingPoolState } from '../pending.js'
import { QueryTypes } from 'sequelize'
import type { DoctorFinding, DoctorOptions, DoctorReport } from './types.js'

export type { DoctorFinding, DoctorFindingCode, DoctorOptions, DoctorReport, StructureFindingCode } from './types.js'
export { formatDoctorReport } from './format.js'

export interface DoctorDeps {
  sequelize: Sequelize
  /** The audited models' tables. */
  auditTargets: () => AuditTarget[]
  /** The tenant models' tables. */
  tenantTables: () => string[]
  /** Called after a fix changed the template (the clone DDL cache is stale). */
  onTemplateChanged: () => void
  /** Ends a maintenance that `migrate --maintenance` set (fix of maintenance_left_by_migrate). */
  clearMigrateMaintenance: (schema: string) => Promise<boolean>
}

function checkOptions (options: unknown): asserts options is DoctorOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new BoardinghouseErrors.INVALID_OPTION('doctor options must be an object')
  for (const key of Object.keys(options)) {
    if (key !== 'fix') throw new BoardinghouseErrors.INVALID_OPTION(`doctor has no option "${key}"`)
  }
  const fix = (options as { fix?: unknown }).fix
  if (fix !== undefined && typeof fix !== 'boolean') throw new BoardinghouseErrors.INVALID_OPTION('doctor option fix must be a boolean')
}

const byText = (a: string, b: string): number => a < b ? -1 : a > b ? 1 : 0

/** By schema (none first), then code, then object. */
function sortFindings (findings: DoctorFinding[]): DoctorFinding[] {
  return [...findings].sort((a, b) => byText(a.schema ?? '', b.schema ?? '') || byText(a.code, b.code) || byText(a.object ?? '', b.object ?? ''))
}

async function inspect (deps: DoctorDeps, targets: AuditTarget[], tenantTables: string[]): Promise<{ schemas: number, findings: DoctorFinding[] }> {
  const { sequelize } = deps
  return await runWithSchema(null, async () => await sequelize.transaction(async (transaction) =>
    await runWithSchema(null, async () => {
      const query = queryOn(sequelize)
      // before any snapshot is taken: one snapshot for every check, and no write can slip through
      await sequelize.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY', { logging: false })
      // The catalogs' statistics lag behind a burst of schema creation (pg_class "has 1 sequence"):
      // with nested loops the planner would then rescan a catalog once per row of another. Hash
      // joins keep every check linear in the catalogs' size, whatever the statistics say.
      // JIT would compile each of these large, run-once queries for ~0.7 s (at 1,000 schemas) to save nothing.
      await sequelize.query('SET LOCAL enable_nestloop = off; SET LOCAL jit = off', { logging: false })
      await assertMigrated(query)
      const fleet = await fleetFindings(query, tenantTables)
      const audit = await auditFindings(sequelize, targets)
      const structure = await compareStructure(query)
      return { schemas: fleet.schemas, findings: sortFindings(withoutAuditDuplicates([...fleet.findings, ...audit, ...structure])) }
    }, { transaction })))
}

/** Checks the fleet (and with `fix`, repairs what is safe first). Throws FST_BH_NOT_MIGRATED on a database never migrated. */
export async function runDoctor (deps: DoctorDeps, options: DoctorOptions = {}): Promise<DoctorReport> {
  checkOptions(options)
  const targets = deps.auditTargets()
  const tenantTables = deps.tenantTables()
  const fixed: DoctorFinding[] = []
  if (options.fix === true) {
    fixed.push(...await applyFixes(deps.sequelize, targets, deps.onTemplateChanged))
    for (const finding of await leftMaintenance(deps.sequelize)) {
      if (finding.schema !== null && await deps.clearMigrateMaintenance(finding.schema)) fixed.push({ ...finding, message: `ended the maintenance a migrate left on ${finding.schema}` })
    }
  }
  const { schemas, findings } = await inspect(deps, targets, tenantTables)
  const pool = await readPendingState(deps.sequelize)
  const extra = [...await leftMaintenance(deps.sequelize), ...poolFindings(pool)]
  const all = sortFindings([...findings, ...extra])
  return {
    ok: all.length === 0,
    schemas,
    findings: all,
    fixed: sortFindings(fixed),
    pending: { ready: pool.ready, stale: pool.stale, tampered: pool.tampered.length, orphans: pool.orphans.length }
  }
}

/** Schemas in the maintenance a `migrate --maintenance` set while no migrate holds the migration lock: a killed run's leftovers. */
async function leftMaintenance (sequelize: Sequelize): Promise<DoctorFinding[]> {
  const rows = await runWithSchema(null, async () => await sequelize.query<{ schema_name: string }>(
    `SELECT schema_name FROM public.boardinghouse_schema WHERE maintenance_by = 'migrate'
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND classid = 0 AND objid = ${MIGRATION_LOCK_KEY} AND objsubid = 1 AND granted
         AND database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()))
     ORDER BY 1`, { type: QueryTypes.SELECT, logging: false }))
  return rows.map(({ schema_name: schema }) => ({
    code: 'maintenance_left_by_migrate' as const,
    schema,
    message: `schema ${schema} is still in the maintenance a migrate --maintenance set, and no migrate runs (its requests answer 503)`,
    fixable: true
  }))
}

/** The pending pool's spares that will never be handed out. */
function poolFindings (pool: PendingPoolState): DoctorFinding[] {
  return [
    ...pool.tampered.map((schema) => ({ code: 'pending_tampered' as const, schema, message: `spare schema ${schema} differs from its fingerprint: it is dropped, not handed out, at the next claim or fill`, fixable: false })),
    ...pool.orphans.map((schema) => ({ code: 'pending_orphan' as const, schema, message: `schema ${schema} is named like a spare but the pool does not list it: the next fill (schema pending --fill) drops it`, fixable: false }))
  ]
}
