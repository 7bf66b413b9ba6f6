/**
 * `migrate down`: runs tenant migrations' `down` in the targeted schemas, then in the template.
 *
 * - What is undone is a tail of the migration list: with `to: NAME`, NAME and every migration after
 *   it (umzug's and sequelize-cli's `--to`); with `step: N`, the last N that ran in the template or
 *   a targeted schema. Each schema undoes those of them its ledger lists, newest first, in one
 *   transaction that also deletes their ledger rows: a failure leaves the schema as it was.
 * - Everything is checked before anything is undone: NAME exists and ran somewhere targeted, and
 *   every migration to undo has a `down` (and a file).
 * - Order: tenants first, then the template, the reverse of migrate. So the template is at any
 *   moment at least as far as every tenant, as migrate keeps it: a schema created while a rollback
 *   runs or after one stopped (createSchema waits for the migration lock, but a lost lock lets it
 *   through) gets the template's structure and ledger together, and the next migrate brings the
 *   rolled-back tenants up again if the rollback is abandoned. The template is rolled back only
 *   once no tenant schema lists any migration of the range (all of them targeted and undone): a
 *   rollback of some schemas, or one whose undo failed somewhere, keeps the template, and says so
 *   (`templateKept`); a rerun after fixing the failure finishes the job, template included.
 * - A rerun continues where a stopped run ended: schemas already undone have nothing left to undo.
 */
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize'
import { SCHEMA_TABLE, TENANT_MIGRATION_TABLE } from '../../models/index.js'
import { runWithSchema } from '../context.js'
import { poolMax, withOwnConnection } from '../db.js'
import { BoardinghouseErrors } from '../errors.js'
import { TEMPLATE_SCHEMA, describe, quoteLiteral } from '../names.js'
import type { MigrationContext } from './context.js'
import { isConnectionLoss, wrapFailure, type RunState } from './failure.js'
import { toRunnable, type LoadedMigration } from './files.js'
import { failureOf, planOf, runFleet, selectTargets, stoppedError, whyStopped, type MaintenanceHooks, type MigrateProgress, type MigrationFailure, type StagingOptions } from './fleet.js'
import { MIGRATION_LOCK_KEY, MigrationLock } from './lock.js'
import { assertTemplateEmpty, bumpTemplateGeneration, ensureAuditTriggers, guardTemplate, missingAuditTriggers, type AuditTarget } from './triggers.js'

export interface MigrateDownOptions extends StagingOptions {
  /** Undo this migration and every one after it. */
  to?: string
  /** Undo the last N migrations that ran (in the template or a targeted schema). @default 1 (without `to`) */
  step?: number
  /** Schemas rolled back at once; capped at the pool's max. Defaults to the `migrationConcurrency` option. */
  concurrency?: number
  onProgress?: (progress: MigrateProgress) => void
}

export interface MigrateDownResult {
  /** The migrations undone (wherever the template or a targeted schema listed them), newest first. */
  migrations: string[]
  /** Of them, those undone in the template. */
  template: string[]
  /** Why the template was not rolled back though it lists some of them, or null. */
  templateKept: string | null
  /** Tenant schemas in which something was undone. */
  rolledBackSchemas: number
  /** Targeted tenant schemas that listed none of them. */
  unchangedSchemas: number
  /** Schemas whose undo failed and was tolerated (`maxFailures` > 0). */
  failures: MigrationFailure[]
  /** Patterns of `schemas` that matched no schema, and of `exclude` that left none out. */
  unmatched: string[]
  /** Tenant schemas the rollback covered; 0: nothing matched, nothing was undone. */
  targetedSchemas: number
  /** Schemas that had something to undo and were not tried because the run stopped. */
  skippedSchemas: number
}

export interface RollbackDeps {
  sequelize: Sequelize
  concurrency: number
  migrations: LoadedMigration[]
  /** The tenant migrations folder, for messages. */
  folder: string | undefined
  context: (schema: string, transaction: Transaction) => MigrationContext
  onTemplateChanged: () => void
  auditTargets: () => AuditTarget[]
  maintenance?: MaintenanceHooks
}

function rangeOptions (options: unknown): { to: string | null, step: number } {
  const o = (typeof options === 'object' && options !== null ? options : {}) as { to?: unknown, step?: unknown }
  if (o.to !== undefined && o.step !== undefined) throw new BoardinghouseErrors.INVALID_INPUT('migrateDown takes `to` or `step`, not both')
  if (o.to !== undefined && (typeof o.to !== 'string' || o.to === '')) throw new BoardinghouseErrors.INVALID_INPUT(`migrateDown's to must be a migration name, not ${describe(o.to)}`)
  if (o.step !== undefined && (typeof o.step !== 'number' || !Number.isInteger(o.step) || o.step < 1)) {
    throw new BoardinghouseErrors.INVALID_INPUT(`migrateDown's step must be a positive integer, not ${describe(o.step)}`)
  }
  return { to: (o.to as string | undefined) ?? null, step: (o.step as number | undefined) ?? 1 }
}

const EMPTY: Omit<MigrateDownResult, 'unmatched' | 'targetedSchemas'> = {
  migrations: [], template: [], templateKept: null, rolledBackSchemas: 0, unchangedSchemas: 0, failures: [], skippedSchemas: 0
}

export async function rollback (deps: RollbackDeps, options: MigrateDownOptions): Promise<MigrateDownResult> {
  const { sequelize, migrations } = deps
  const plan = planOf('migrateDown', options, { concurrency: deps.concurrency, poolMax: poolMax(sequelize), maintenance: deps.maintenance !== undefined }, ['to', 'step'])
  const { to, step } = rangeOptions(options)
  const order = migrations.map((m) => m.name)
  const byName = new Map(migrations.map((m) => [m.name, m]))
  if (to !== null && !byName.has(to)) {
    throw new BoardinghouseErrors.UNKNOWN_MIGRATION(to, `is not a tenant migration (no such file in ${deps.folder ?? 'the tenant migrations folder, which is not set'})`)
  }
  const q = async <T extends object>(sql: string, replacements: Record<string, unknown> = {}): Promise<T[]> =>
    await runWithSchema(null, async () => await sequelize.query<T>(sql, { replacements, type: QueryTypes.SELECT, logging: false }))

  return await withOwnConnection(sequelize, async (connection) => {
    const lock = new MigrationLock(connection)
    try {
      await lock.acquire()
      const [present] = await q<{ ledger: boolean, registry: boolean }>(
        `SELECT to_regclass('public.${TENANT_MIGRATION_TABLE}') IS NOT NULL AS ledger, to_regclass('public.${SCHEMA_TABLE}') IS NOT NULL AS registry`)
      if (present?.ledger !== true || !present.registry) throw new BoardinghouseErrors.NOT_MIGRATED(`public.${TENANT_MIGRATION_TABLE} does not exist, there is nothing to roll back`)
      const selection = await selectTargets(sequelize, plan)
      if (selection !== null && selection.schemas.length === 0) return { ...EMPTY, unmatched: selection.unmatched, targetedSchemas: 0 }
      // The targeted schemas as SQL: every registered one, or those selected.
      const targets = selection === null
        ? `SELECT schema_name FROM public.${SCHEMA_TABLE}`
        : 'SELECT unnest(ARRAY[:targets]::text[])'
      const targetReplacements = selection === null ? {} : { targets: selection.schemas }
      const [counted] = await q<{ n: string }>(`SELECT count(*) AS n FROM (${targets}) t`, targetReplacements)
      const targetedCount = Number(counted?.n ?? 0)

      // 1. What to undo: a tail of the migration list, from what the template and the targets ran.
      const ranRows = await q<{ name: string }>(
        `SELECT DISTINCT name FROM public.${TENANT_MIGRATION_TABLE}
         WHERE schema_name = ${quoteLiteral(TEMPLATE_SCHEMA)} OR schema_name IN (${targets})`, targetReplacements)
      const ran = new Set(ranRows.map((r) => r.name))
      let start: number
      if (to !== null) {
        if (!ran.has(to)) throw new BoardinghouseErrors.UNKNOWN_MIGRATION(to, 'is recorded in no ledger of __template__ or a targeted schema: it never ran there, or was undone already')
        start = order.indexOf(to)
      } else {
        const applied = order.filter((n) => ran.has(n))
        if (applied.length === 0) return { ...EMPTY, unmatched: selection?.unmatched ?? [], targetedSchemas: targetedCount, unchangedSchemas: targetedCount }
        start = order.indexOf(applied[Math.max(0, applied.length - step)] as string)
      }
      const range = order.slice(start)
      const undone = range.filter((n) => ran.has(n))
      // 2. Checked before anything is undone: every one has a down, and no later migration lost its file.
      const first = range[0] as string
      const fileless = [...ran].filter((n) => !byName.has(n) && n > first).sort()
      if (fileless.length > 0) {
        throw new BoardinghouseErrors.IRREVERSIBLE_MIGRATION(`${fileless.map((n) => `"${n}"`).join(', ')} ${fileless.length === 1 ? 'is' : 'are'} recorded in a ledger after "${first}" but ${fileless.length === 1 ? 'has' : 'have'} no file in the tenant migrations folder`)
      }
      const noDown = undone.filter((n) => byName.get(n)?.module.down === undefined)
      if (noDown.length > 0) {
        throw new BoardinghouseErrors.IRREVERSIBLE_MIGRATION(`${noDown.map((n) => `"${n}"`).join(', ')} ${noDown.length === 1 ? 'exports' : 'export'} no down()`)
      }
      const rangeMigrations = range.map((n) => byName.get(n) as LoadedMigration)

      // 3. Tenants first (see the header), with the staging of migrate.
      const schemas = (await q<{ schema_name: string }>(
        `SELECT DISTINCT schema_name FROM public.${TENANT_MIGRATION_TABLE}
         WHERE name = ANY(ARRAY[:range]::text[]) AND schema_name IN (${targets}) ORDER BY schema_name`,
        { ...targetReplacements, range })).map((r) => r.schema_name)
      const outcome = await runFleet(plan, schemas, lock, deps.maintenance, async (schema) => {
        try {
          await undoIn(deps, schema, rangeMigrations, lock)
        } catch (err) {
          throw wrapFailure(err, schema)
        }
      })
      const audit = deps.auditTargets()
      // A down that re-created an audited table: its trigger back (as migrate does).
      if (outcome.succeeded.length > 0) await runWithSchema(null, async () => { await ensureAuditTriggers(sequelize, await missingAuditTriggers(sequelize, audit, 'tenants')) })
      if (lock.lost !== null) throw lock.lost
      const resultOf = (template: string[], kept: string | null): MigrateDownResult => ({
        migrations: [...undone].reverse(),
        template,
        templateKept: kept,
        rolledBackSchemas: outcome.succeeded.length,
        unchangedSchemas: targetedCount - schemas.length,
        failures: outcome.failures,
        unmatched: selection?.unmatched ?? [],
        targetedSchemas: targetedCount,
        skippedSchemas: outcome.notStarted.length
      })
      if (outcome.stopped !== null) throw stoppedError(plan, whyStopped(plan, outcome), outcome.failures, outcome.errors, resultOf([], 'the run stopped before the template'))

      // 4. The template, once no tenant schema lists any migration of the range.
      const templateHas = (await q<{ name: string }>(`SELECT name FROM public.${TENANT_MIGRATION_TABLE} WHERE schema_name = ${quoteLiteral(TEMPLATE_SCHEMA)} AND name = ANY(ARRAY[:range]::text[])`, { range }))
        .map((r) => r.name)
      if (templateHas.length === 0) return resultOf([], null)
      const [still] = await q<{ schema_name: string, n: string }>(
        `SELECT min(schema_name) AS schema_name, count(DISTINCT schema_name) AS n FROM public.${TENANT_MIGRATION_TABLE}
         WHERE name = ANY(ARRAY[:range]::text[]) AND schema_name IN (SELECT schema_name FROM public.${SCHEMA_TABLE}) HAVING count(*) > 0`, { range })
      if (still !== undefined) {
        const others = Number(still.n) - 1
        return resultOf([], `schema "${still.schema_name}"${others > 0 ? ` and ${others} other${others === 1 ? '' : 's'}` : ''} still ${others > 0 ? 'list' : 'lists'} migrations of the range: the template stays at the head until no tenant schema does`)
      }
      let templateUndone: string[]
      try {
        templateUndone = await undoIn(deps, TEMPLATE_SCHEMA, rangeMigrations, lock)
      } catch (err) {
        const wrapped = wrapFailure(err, TEMPLATE_SCHEMA)
        if (wrapped instanceof BoardinghouseErrors.MIGRATION_LOCK_LOST) throw wrapped
        throw stoppedError(plan, 'the run stopped: the template failed (the tenant schemas were rolled back)', [failureOf(wrapped, TEMPLATE_SCHEMA)], [wrapped], resultOf([], 'its undo failed'))
      } finally {
        deps.onTemplateChanged()
      }
      plan.onProgress({ phase: 'template', done: 1, total: 1, schema: TEMPLATE_SCHEMA })
      return resultOf(templateUndone, null)
    } catch (err) {
      throw lock.lost ?? err
    } finally {
      await lock.release()
    }
  })
}

/**
 * Undoes, in `schema`, the migrations of `range` its ledger lists, newest first, and deletes their
 * ledger rows, in one transaction (after the schema's own transaction-level lock, as migrate takes
 * it); checks the migration lock before committing. Returns the names undone.
 */
async function undoIn (deps: RollbackDeps, schema: string, range: readonly LoadedMigration[], lock: MigrationLock): Promise<string[]> {
  for (let attempt = 0; ; attempt++) {
    const state: RunState = { stage: 'begin', down: true }
    try {
      return await undoOnce(deps, schema, range, lock, state)
    } catch (err) {
      // A pooled connection that died while idle fails this schema's BEGIN: not this schema's fault.
      if (attempt === 0 && state.stage === 'begin' && !(err instanceof BoardinghouseErrors.MIGRATION_LOCK_LOST) && isConnectionLoss(err)) continue
      if (err !== null && typeof err === 'object') Object.assign(err, { bhRun: state })
      throw err
    }
  }
}

async function undoOnce (deps: RollbackDeps, schema: string, range: readonly LoadedMigration[], lock: MigrationLock, state: RunState): Promise<string[]> {
  const { sequelize } = deps
  const isTemplate = schema === TEMPLATE_SCHEMA
  return await runWithSchema(schema, async () => await sequelize.transaction(async (transaction) =>
    await runWithSchema(schema, async () => {
      const q = async <T extends object>(sql: string, replacements: Record<string, unknown>): Promise<T[]> =>
        await sequelize.query<T>(sql, { replacements, type: QueryTypes.SELECT, logging: false })
      await lock.check()
      await q(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY}, hashtext(:schema))`, { schema })
      state.stage = 'migrating'
      // Read after the lock: what a concurrent run committed counts.
      const listed = new Set((await q<{ name: string }>(`SELECT name FROM public.${TENANT_MIGRATION_TABLE} WHERE schema_name = :schema`, { schema })).map((r) => r.name))
      const todo = range.filter((m) => listed.has(m.name)).reverse()
      const context = deps.context(schema, transaction)
      for (const m of todo) {
        state.migration = m.name
        if (isTemplate) await guardTemplate(sequelize)
        const down = toRunnable(m).down
        if (down === undefined) throw new Error('it exports no down()')
        await down({ name: m.name, path: m.path, context })
        const deleted = await q<{ name: string }>(`DELETE FROM public.${TENANT_MIGRATION_TABLE} WHERE schema_name = :schema AND name = :name RETURNING name`, { schema, name: m.name })
        if (deleted.length === 0) throw new Error(`its row in the ledger (public.${TENANT_MIGRATION_TABLE}) for schema "${schema}" is gone: something else removed it during this run`)
      }
      if (isTemplate && todo.length > 0) {
        // A down may re-create tables: guard them, give audited ones their trigger, keep the template empty.
        await guardTemplate(sequelize)
        await ensureAuditTriggers(sequelize, await missingAuditTriggers(sequelize, deps.auditTargets(), 'template'))
        await assertTemplateEmpty(sequelize)
        await bumpTemplateGeneration(sequelize)
      }
      await lock.check()
      state.stage = 'commit'
      return todo.map((m) => m.name)
    }, { transaction })))
}
