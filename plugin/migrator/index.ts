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
 * - Every wait for one of these locks is a retried try, never a statement blocked on it (waitForLock):
 *   a blocked statement holds a snapshot that a CREATE INDEX CONCURRENTLY would wait for.
 * - Online migrations (`transaction = false`, online.ts) cut a schema's run into segments: each run
 *   of transactional migrations is one transaction as above; an online one runs outside any, under
 *   the schema's session-level lock, and its ledger row is written after it succeeded.
 */
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize'
import { SequelizeStorage, Umzug, type UmzugStorage } from 'umzug'
import type { UserIdType } from '../../models/index.js'
import { runWithSchema } from '../context.js'
import { poolMax, withOwnConnection } from '../db.js'
import { BoardinghouseErrors } from '../errors.js'
import { TEMPLATE_SCHEMA, quoteIdent, quoteLiteral } from '../names.js'
import { CHANNEL } from '../notify.js'
import { SequelizeWithDataTypes, schemaQueryInterface, type MigrationContext } from './context.js'
import { isConnectionLoss, wrapFailure, type RunState } from './failure.js'
import { libraryMigrationsFolder, loadMigrations, toRunnable, type LoadedMigration } from './files.js'
import { ledgerStorage, schemasBehind, type LedgerStorage } from './ledger.js'
import { MIGRATION_LOCK_KEY, MigrationLock, waitForLock } from './lock.js'
import { OnlineSessions, isOnline, runOnline, segments } from './online.js'
import { assertTemplateEmpty, bumpTemplateGeneration, ensureAuditTriggers, guardTemplate, missingAuditTriggers, type AuditTarget } from './triggers.js'
// staged migrations, status and rollback (fleet.ts, targets.ts, status.ts, rollback.ts)
import { failureOf, planOf, runFleet, selectTargets, stoppedError, whyStopped, type MaintenanceHooks, type MigrateProgress, type MigrationFailure, type StagingOptions } from './fleet.js'
import { migrationStatus, type MigrationStatus } from './status.js'
import { rollback, type MigrateDownOptions, type MigrateDownResult } from './rollback.js'
import type { MigrationTargeting } from './targets.js'

export { SequelizeWithDataTypes, schemaQueryInterface, type MigrationContext } from './context.js'
export { loadMigrations } from './files.js'
export { MIGRATION_LOCK_KEY, MIGRATION_LOCK_SHARED_SQL, MIGRATION_RUNNING_STATE, WAITING_MARKER, waitWhileMigrating } from './lock.js'
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

/** The migration storage of a schema; `null` outside a transaction (online migrations' ledger reads). */
type StorageFor = (transaction: Transaction | null) => UmzugStorage<MigrationContext>

interface RunHooks { beforeEach?: () => Promise<void>, after?: (ran: string[]) => Promise<void> }

/**
 * Takes `schema`'s transaction-level lock (trying, never blocking in a statement: see waitForLock)
 * and, for a ledger storage, reads its executed names in the same message, after the lock: each
 * statement of a message has its own snapshot. Returns those names, or null (the storage reads them).
 */
async function lockSchema (sequelize: Sequelize, schema: string, store: UmzugStorage<MigrationContext>): Promise<string[] | null> {
  const read = (store as Partial<LedgerStorage>).executedSql
  let names: string[] | null = null
  await waitForLock(async () => {
    const rows = await sequelize.query<{ bh_locked?: boolean, name?: string }>(
      `SELECT pg_try_advisory_xact_lock(${MIGRATION_LOCK_KEY}, hashtext(${quoteLiteral(schema)})) AS bh_locked${read !== undefined ? `; ${read}` : ''}`,
      { type: QueryTypes.SELECT, logging: false })
    // Sequelize returns the rows of every statement of the message, in order.
    if (rows[0]?.bh_locked !== true) return false
    if (read !== undefined) names = rows.slice(1).map((r) => r.name as string)
    return true
  })
  return names
}

export class Migrator {
  private tenantSet: Promise<LoadedMigration[]> | null = null

  constructor (private readonly deps: MigratorDeps) {}

  /** The app's tenant migrations, loaded once. */
  async tenantMigrations (): Promise<LoadedMigration[]> {
    this.tenantSet ??= loadMigrations(this.deps.tenantMigrations)
    return await this.tenantSet
  }

  private context (schema: string, transaction: Transaction | null): MigrationContext {
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
   * Runs `migrations` in `schema`: a set of transactional migrations in one transaction, ledger
   * included; a set with online migrations (`transaction = false`) in segments, each run of
   * transactional ones in one transaction and each online one on its own (online.ts). Returns the
   * names that ran. Each transaction first takes `schema`'s own transaction-level lock (a
   * concurrent run waits for it, then reads the ledger it left), and checks the migration lock
   * before it commits; `hooks.after` runs at the end of each, with the names it ran.
   */
  private async runSet (schema: string, migrations: LoadedMigration[], storage: StorageFor, lock: MigrationLock, hooks: RunHooks = {}): Promise<string[]> {
    if (!migrations.some(isOnline)) return await this.runTransaction(schema, migrations, storage, lock, hooks)
    // Segments whose migrations the ledger lists already are skipped (ledger rows are only added
    // while the run holds the migration lock); the others read it again under the schema's lock.
    const before = new Set(await runWithSchema(null, async () => await storage(null).executed({ context: this.context(schema, null) })))
    const ran: string[] = []
    for (const segment of segments(migrations)) {
      if (segment.online) {
        if (before.has(segment.migration.name)) continue
        if (await this.runOnlineMigration(schema, segment.migration, storage, lock, hooks)) ran.push(segment.migration.name)
      } else if (segment.migrations.some((m) => !before.has(m.name))) {
        ran.push(...await this.runTransaction(schema, segment.migrations, storage, lock, hooks))
      }
    }
    return ran
  }

  /** One transaction of runSet (retried once when a dead pooled connection fails its BEGIN). */
  private async runTransaction (schema: string, migrations: LoadedMigration[], storage: StorageFor, lock: MigrationLock, hooks: RunHooks): Promise<string[]> {
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

  private async runSetOnce (schema: string, migrations: LoadedMigration[], storage: StorageFor, lock: MigrationLock, hooks: RunHooks, state: RunState): Promise<string[]> {
    const { sequelize } = this.deps
    const searchSchema = schema === 'public' ? null : schema
    // The lock's connection is probed before COMMIT; here its flag suffices (set on 'error'/'end').
    if (lock.lost !== null) throw lock.lost
    return await runWithSchema(searchSchema, async () => await sequelize.transaction(async (transaction) =>
      await runWithSchema(searchSchema, async () => {
        const store = storage(transaction)
        const executed = await lockSchema(sequelize, schema, store)
        state.stage = 'migrating'
        const umzug = new Umzug<MigrationContext>({
          migrations: migrations.map(toRunnable),
          context: this.context(schema, transaction),
          storage: executed === null ? store : { ...store, executed: async () => executed },
          logger: undefined
        })
        const { beforeEach, after } = hooks
        umzug.on('migrating', ({ name }) => { state.migration = name })
        if (beforeEach !== undefined) umzug.on('migrating', beforeEach)
        const ran = await umzug.up()
        // The lock is probed (on its own connection) while `after` runs: both before COMMIT.
        await Promise.all([after?.(ran.map((m) => m.name)), lock.check()])
        state.stage = 'commit'
        return ran.map((m) => m.name)
      }, { transaction })))
  }

  /** One online migration in one schema (online.ts): outside a transaction, then its ledger row and `after` in one. */
  private async runOnlineMigration (schema: string, migration: LoadedMigration, storage: StorageFor, lock: MigrationLock, hooks: RunHooks): Promise<boolean> {
    const { sequelize } = this.deps
    const searchSchema = schema === 'public' ? null : schema
    const state: RunState = { stage: 'begin' }
    const context = this.context(schema, null)
    try {
      return await runOnline(OnlineSessions.of(sequelize, lock), {
        schema,
        migration,
        lock,
        state,
        executed: async () => await runWithSchema(null, async () => await storage(null).executed({ context })),
        run: async () => {
          await runWithSchema(searchSchema, async () => {
            await hooks.beforeEach?.()
            await toRunnable(migration).up({ name: migration.name, path: migration.path, context })
          }, { separateSearchPath: true })
        },
        record: async () => {
          // The schema's session lock is held: this transaction takes no lock of its own.
          await runWithSchema(searchSchema, async () => await sequelize.transaction(async (transaction) =>
            await runWithSchema(searchSchema, async () => {
              await storage(transaction).logMigration({ name: migration.name, path: migration.path, context: this.context(schema, transaction) })
              await hooks.after?.([migration.name])
              await lock.check()
            }, { transaction })))
        }
      })
    } catch (err) {
      if (err !== null && typeof err === 'object') Object.assign(err, { bhRun: state })
      throw err
    }
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
        const { behind, tenantCount } = await runWithSchema(null, async () => await schemasBehind(sequelize, names))

        // 3. The template first: if it fails, no tenant is touched.
        let templateRan: string[] = []
        const targeted = selection === null ? null : new Set(selection.schemas)
        const rest = behind.filter((s) => s !== TEMPLATE_SCHEMA && (targeted === null || targeted.has(s)))
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
        if (behind.includes(TEMPLATE_SCHEMA)) {
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
