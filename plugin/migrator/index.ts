/**
 * Migrations (DESIGN.md §4), with umzug: the library's own shared set and the app's shared set run
 * once in public; the app's tenant set runs in `__template__` and then in every tenant schema.
 *
 * - A ledger (public.boardinghouse_tenant_migration) records per schema which tenant migrations
 *   ran, so the schemas that are behind are found with one query.
 * - Each schema migrates in one transaction (its ledger rows included): a failure leaves that schema
 *   as it was, the schemas already done stay done, and a re-run continues.
 * - Schemas migrate in parallel on a bounded number of pooled connections; which ones, and staged
 *   how (canaries, batches, maxFailures, maintenance), is fleet.ts's and targets.ts's; status.ts
 *   reads what is behind without the lock; rollback.ts runs downs.
 * - One migrate at a time per database (an advisory lock); creating a tenant waits for it. The lock's
 *   connection is kept from idling out and watched: losing it stops the run (FST_BH_MIGRATION_LOCK_LOST)
 *   before another schema commits. Each schema's transaction also takes a transaction-level lock of
 *   its own and reads its ledger after it, so even two runs at once never apply a migration twice.
 */
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize'
import { SequelizeStorage, Umzug, type UmzugStorage } from 'umzug'
import { TENANT_MIGRATION_TABLE, SCHEMA_TABLE, type UserIdType } from '../../models/index.js'
import { runWithSchema } from '../context.js'
import { poolMax, withOwnConnection } from '../db.js'
import { BoardinghouseErrors } from '../errors.js'
import { TEMPLATE_SCHEMA, quoteIdent, quoteLiteral } from '../names.js'
import { CHANNEL } from '../notify.js'
import { SequelizeWithDataTypes, schemaQueryInterface, type MigrationContext } from './context.js'
import { isConnectionLoss, wrapFailure, type RunState } from './failure.js'
import { libraryMigrationsFolder, loadMigrations, toRunnable, type LoadedMigration } from './files.js'
import { ledgerStorage } from './ledger.js'
import { MIGRATION_LOCK_KEY, MigrationLock } from './lock.js'
import { assertTemplateEmpty, bumpTemplateGeneration, ensureAuditTriggers, guardTemplate, missingAuditTriggers, type AuditTarget } from './triggers.js'
// staged migrations, status and rollback (fleet.ts, targets.ts, status.ts, rollback.ts)
import { failureOf, planOf, runFleet, selectTargets, stoppedError, whyStopped, type MaintenanceHooks, type MigrateProgress, type MigrationFailure, type StagingOptions } from './fleet.js'
import { migrationStatus, type MigrationStatus } from './status.js'
import { rollback, type MigrateDownOptions, type MigrateDownResult } from './rollback.js'
import type { MigrationTargeting } from './targets.js'

export { SequelizeWithDataTypes, schemaQueryInterface, type MigrationContext } from './context.js'
export { loadMigrations } from './files.js'
export { MIGRATION_LOCK_KEY } from './lock.js'
export { AUDIT_TRIGGER, GUARD_TRIGGER, type AuditTarget } from './triggers.js'

export type { MaintenanceHooks, MigrateBatch, MigrateProgress, MigrationFailure, MigrationPhase, StagingOptions } from './fleet.js'
export type { MigrationTargeting } from './targets.js'
export type { MigrationStatus, SchemaStatus } from './status.js'
export type { MigrateDownOptions, MigrateDownResult } from './rollback.js'

export interface MigrateOptions extends StagingOptions {
  /** Schemas migrated at once; capped at the pool's max. Defaults to the `migrationConcurrency` option. */
  concurrency?: number
  onProgress?: (progress: MigrateProgress) => void
}

export interface MigrateResult {
  /** Shared migrations that ran now (library's and app's). */
  shared: string[]
  /** Tenant migrations that ran now in the template. */
  template: string[]
  /** Tenant schemas that were behind and are now at the head. */
  migratedSchemas: number
  /** Tenant schemas that were already at the head. */
  upToDateSchemas: number
  /** Schemas whose migration failed and was tolerated (`maxFailures` > 0); empty otherwise. */
  failures: MigrationFailure[]
  /** Patterns of `schemas` that matched no schema, and of `exclude` that left none out. */
  unmatched: string[]
  /** Tenant schemas the run covered (all, without `schemas`/`exclude`); 0: nothing matched, nothing ran. */
  targetedSchemas: number
  /** Schemas that were behind and not tried because the run stopped (on the error's `result`). */
  skippedSchemas: number
}

export interface MigratorDeps {
  sequelize: Sequelize
  sharedMigrations: string | undefined
  tenantMigrations: string | undefined
  sharedMigrationsTable: string
  userIdType: UserIdType
  concurrency: number
  /** Called after the template's structure changed (the clone DDL cache is stale). */
  onTemplateChanged: () => void
  /** The audited models' tables. */
  auditTargets: () => AuditTarget[]
  /** The notice payload of a tenant schema's migration, sent inside its transaction (schemaMigrated). */
  schemaMigratedNotice?: (schema: string, migrations: number) => string
  /** Called after a tenant schema's migrations committed (schemaMigrated, in this process). */
  onSchemaMigrated?: (schema: string, migrations: number) => void
  /** Maintenance mode per schema, for `migrate({ maintenance })`; without it that option is FST_BH_MAINTENANCE_UNAVAILABLE. */
  maintenance?: MaintenanceHooks
}

export class Migrator {
  private tenantSet: Promise<LoadedMigration[]> | null = null

  constructor (private readonly deps: MigratorDeps) {}

  /** The app's tenant migrations, loaded once. */
  async tenantMigrations (): Promise<LoadedMigration[]> {
    this.tenantSet ??= loadMigrations(this.deps.tenantMigrations)
    return await this.tenantSet
  }

  private context (schema: string, transaction: Transaction): MigrationContext {
    const { sequelize } = this.deps
    return {
      queryInterface: schemaQueryInterface(sequelize.getQueryInterface(), schema),
      Sequelize: SequelizeWithDataTypes,
      sequelize,
      schema,
      isTemplate: schema === TEMPLATE_SCHEMA,
      transaction,
      options: { userIdType: this.deps.userIdType }
    }
  }

  /**
   * Runs `migrations` in `schema` in one transaction, ledger included. Returns the names that ran.
   * The transaction first takes `schema`'s own transaction-level lock (a concurrent run waits for
   * it, then reads the ledger it left), and checks the migration lock before it commits.
   */
  private async runSet (schema: string, migrations: LoadedMigration[], storage: (t: Transaction) => UmzugStorage<MigrationContext>, lock: MigrationLock, hooks: { beforeEach?: () => Promise<void>, after?: (ran: string[]) => Promise<void> } = {}): Promise<string[]> {
    for (let attempt = 0; ; attempt++) {
      const state: RunState = { stage: 'begin' }
      try {
        return await this.runSetOnce(schema, migrations, storage, lock, hooks, state)
      } catch (err) {
        // A pooled connection that died while idle fails this schema's BEGIN: not this schema's fault.
        if (attempt === 0 && state.stage === 'begin' && !(err instanceof BoardinghouseErrors.MIGRATION_LOCK_LOST) && isConnectionLoss(err)) continue
        if (err !== null && typeof err === 'object') Object.assign(err, { bhRun: state })
        throw err
      }
    }
  }

  private async runSetOnce (schema: string, migrations: LoadedMigration[], storage: (t: Transaction) => UmzugStorage<MigrationContext>, lock: MigrationLock, hooks: { beforeEach?: () => Promise<void>, after?: (ran: string[]) => Promise<void> }, state: RunState): Promise<string[]> {
    const { sequelize } = this.deps
    const searchSchema = schema === 'public' ? null : schema
    return await runWithSchema(searchSchema, async () => await sequelize.transaction(async (transaction) =>
      await runWithSchema(searchSchema, async () => {
        await lock.check()
        await sequelize.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY}, hashtext(:schema))`,
          { replacements: { schema }, type: QueryTypes.SELECT, logging: false })
        state.stage = 'migrating'
        const umzug = new Umzug<MigrationContext>({
          migrations: migrations.map(toRunnable),
          context: this.context(schema, transaction),
          storage: storage(transaction),
          logger: undefined
        })
        const { beforeEach, after } = hooks
        umzug.on('migrating', ({ name }) => { state.migration = name })
        if (beforeEach !== undefined) umzug.on('migrating', beforeEach)
        const ran = await umzug.up()
        if (after !== undefined) await after(ran.map((m) => m.name))
        await lock.check()
        state.stage = 'commit'
        return ran.map((m) => m.name)
      }, { transaction })))
  }

  async migrate (options: MigrateOptions = {}): Promise<MigrateResult> {
    const { sequelize } = this.deps
    // Every option is checked before anything runs (FST_BH_INVALID_INPUT).
    const plan = planOf('migrate', options, { concurrency: this.deps.concurrency, poolMax: poolMax(sequelize), maintenance: this.deps.maintenance !== undefined })
    const progress = plan.onProgress
    const [library, shared, tenant] = await Promise.all([
      loadMigrations(libraryMigrationsFolder()),
      loadMigrations(this.deps.sharedMigrations),
      this.tenantMigrations()
    ])

    return await withOwnConnection(sequelize, async (connection) => {
      const lock = new MigrationLock(connection)
      try {
        await lock.acquire()
        // 0. The targeted schemas (with schemas/exclude/canary): none matching runs nothing, not even the template.
        const selection = await selectTargets(sequelize, plan)
        if (selection !== null && selection.schemas.length === 0) {
          return { shared: [], template: [], migratedSchemas: 0, upToDateSchemas: 0, failures: [], unmatched: selection.unmatched, targetedSchemas: 0, skippedSchemas: 0 }
        }
        // 1. Shared: the library's set, then the app's, in public, one transaction.
        const sharedRan = await this.runSet('public', [...library, ...shared], () => {
          const lib = new SequelizeStorage({ sequelize, modelName: 'BoardinghouseMeta', tableName: 'boardinghouse_meta' })
          const app = new SequelizeStorage({ sequelize, modelName: 'BoardinghouseAppMeta', tableName: this.deps.sharedMigrationsTable })
          const libNames = new Set(library.map((m) => m.name))
          return {
            async executed () { return [...await lib.executed(), ...await app.executed()] },
            async logMigration (meta) { await (libNames.has(meta.name) ? lib : app).logMigration(meta) },
            async unlogMigration (meta) { await (libNames.has(meta.name) ? lib : app).unlogMigration(meta) }
          }
        }, lock)
        progress({ phase: 'shared', done: sharedRan.length, total: sharedRan.length })
        const audit = this.deps.auditTargets()
        await runWithSchema(null, async () => { await ensureAuditTriggers(sequelize, await missingAuditTriggers(sequelize, audit, 'public')) })

        // 2. Which schemas are behind: one query over the ledger.
        const names = tenant.map((m) => m.name)
        await sequelize.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(TEMPLATE_SCHEMA)}`, { logging: false })
        const behind = await runWithSchema(null, async () => await sequelize.query<{ schema_name: string }>(
          `SELECT s.schema_name FROM (SELECT ${quoteLiteral(TEMPLATE_SCHEMA)}::text AS schema_name, 0 AS ord
                                      UNION ALL SELECT schema_name, 1 FROM public.${SCHEMA_TABLE}) s
           WHERE (SELECT count(*) FROM public.${TENANT_MIGRATION_TABLE} m
                  WHERE m.schema_name = s.schema_name AND m.name = ANY(ARRAY[:names]::text[])) < :count
           ORDER BY s.ord, s.schema_name`,
          { replacements: { names: names.length > 0 ? names : [''], count: names.length }, type: QueryTypes.SELECT, logging: false }))
        const total = await sequelize.query<{ n: string }>(`SELECT count(*) AS n FROM public.${SCHEMA_TABLE}`, { type: QueryTypes.SELECT, logging: false })
        const tenantCount = Number(total[0]?.n ?? 0)

        // 3. The template first: if it fails, no tenant is touched.
        let templateRan: string[] = []
        const targeted = selection === null ? null : new Set(selection.schemas)
        const rest = behind.map((r) => r.schema_name).filter((s) => s !== TEMPLATE_SCHEMA && (targeted === null || targeted.has(s)))
        const targetedCount = targeted === null ? tenantCount : targeted.size
        const resultOf = (migrated: number, failures: MigrationFailure[], skipped: number): MigrateResult => ({
          shared: sharedRan,
          template: templateRan,
          migratedSchemas: migrated,
          upToDateSchemas: targetedCount - rest.length,
          failures,
          unmatched: selection?.unmatched ?? [],
          targetedSchemas: targetedCount,
          skippedSchemas: skipped
        })
        if (behind.some((r) => r.schema_name === TEMPLATE_SCHEMA)) {
          try {
            templateRan = await this.runSet(TEMPLATE_SCHEMA, tenant, () => ledgerStorage(sequelize, TEMPLATE_SCHEMA), lock, {
              beforeEach: async () => { await guardTemplate(sequelize) },
              after: async () => {
                await guardTemplate(sequelize)
                await ensureAuditTriggers(sequelize, await missingAuditTriggers(sequelize, audit, 'template'))
                await assertTemplateEmpty(sequelize)
                await bumpTemplateGeneration(sequelize)
              }
            })
          } catch (err) {
            const wrapped = wrapFailure(err, TEMPLATE_SCHEMA)
            if (wrapped instanceof BoardinghouseErrors.MIGRATION_LOCK_LOST) throw wrapped
            throw stoppedError(plan, 'the run stopped: the template failed, no tenant schema was touched', [failureOf(wrapped, TEMPLATE_SCHEMA)], [wrapped], resultOf(0, [], rest.length))
          } finally {
            this.deps.onTemplateChanged()
          }
          progress({ phase: 'template', done: 1, total: 1, schema: TEMPLATE_SCHEMA })
        } else {
          // Tables added by hand, an older version, or newly audited models: bring the triggers up to date.
          const changed = await runWithSchema(null, async () => await sequelize.transaction(async (transaction) =>
            await runWithSchema(null, async () => {
              const guarded = await guardTemplate(sequelize)
              const audited = await ensureAuditTriggers(sequelize, await missingAuditTriggers(sequelize, audit, 'template'))
              if (guarded + audited === 0) return false
              await bumpTemplateGeneration(sequelize)
              return true
            }, { transaction })))
          if (changed) this.deps.onTemplateChanged()
        }
        // Audit triggers missing in tenant schemas (a model audited since they were created).
        await runWithSchema(null, async () => { await ensureAuditTriggers(sequelize, await missingAuditTriggers(sequelize, audit, 'tenants')) })

        // 4. Tenants: canaries first, then in batches, in parallel on `concurrency` connections (fleet.ts).
        const outcome = await runFleet(plan, rest, lock, this.deps.maintenance, async (schema) => {
          try {
            // The ledger is read again inside the schema's transaction, after its lock.
            const ran = await this.runSet(schema, tenant, () => ledgerStorage(sequelize, schema), lock, {
              after: async (names) => {
                const notice = this.deps.schemaMigratedNotice
                if (names.length === 0 || notice === undefined) return
                await sequelize.query('SELECT pg_notify(:channel, :payload)',
                  { replacements: { channel: CHANNEL, payload: notice(schema, names.length) }, type: QueryTypes.SELECT, logging: false })
              }
            })
            if (ran.length > 0) this.deps.onSchemaMigrated?.(schema, ran.length)
          } catch (err) {
            throw wrapFailure(err, schema)
          }
        })
        if (lock.lost !== null) throw lock.lost
        const result = resultOf(outcome.succeeded.length, outcome.failures, outcome.notStarted.length)
        if (outcome.stopped !== null) throw stoppedError(plan, whyStopped(plan, outcome), outcome.failures, outcome.errors, result)
        return result
      } catch (err) {
        throw lock.lost ?? err
      } finally {
        await lock.release()
      }
    })
  }

  // ---------------------------------------------------------------- status and rollback (status.ts, rollback.ts)

  /** Which migrations have not run, where (status.ts): read from the ledgers, without the migration lock. */
  async status (targeting: MigrationTargeting = {}): Promise<MigrationStatus> {
    const [library, shared, tenant] = await Promise.all([
      loadMigrations(libraryMigrationsFolder()),
      loadMigrations(this.deps.sharedMigrations),
      this.tenantMigrations()
    ])
    return await migrationStatus(this.deps.sequelize, this.deps.sharedMigrationsTable, { library, shared, tenant }, targeting)
  }

  /** Runs tenant migrations' down in the targeted schemas, then the template (rollback.ts). */
  async migrateDown (options: MigrateDownOptions = {}): Promise<MigrateDownResult> {
    const { sequelize, concurrency, onTemplateChanged, auditTargets, maintenance } = this.deps
    return await rollback({
      sequelize,
      concurrency,
      migrations: await this.tenantMigrations(),
      folder: this.deps.tenantMigrations,
      context: (schema, transaction) => this.context(schema, transaction),
      onTemplateChanged,
      auditTargets,
      ...(maintenance !== undefined ? { maintenance } : {})
    }, options)
  }
}
