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
  const fixed = options.fix === true ? sortFindings(await applyFixes(deps.sequelize, targets, deps.onTemplateChanged)) : []
  const { schemas, findings } = await inspect(deps, targets, tenantTables)
  return { ok: findings.length === 0, schemas, findings, fixed }
}
