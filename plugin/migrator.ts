/**
 * Migrations (DESIGN.md §4), with umzug: the library's own shared set and the app's shared set run
 * once in public; the app's tenant set runs in `__template__` and then in every tenant schema.
 *
 * - A ledger (public.boardinghouse_tenant_migration) records per schema which tenant migrations
 *   ran, so the schemas that are behind are found with one query.
 * - Each schema migrates in one transaction (its ledger rows included): a failure leaves that schema
 *   as it was, the schemas already done stay done, and a re-run continues.
 * - Schemas migrate in parallel on a bounded number of pooled connections.
 * - One migrate at a time per database (an advisory lock); creating a tenant waits for it. The lock's
 *   connection is kept from idling out and watched: losing it stops the run (FST_BH_MIGRATION_LOCK_LOST)
 *   before another schema commits. Each schema's transaction also takes a transaction-level lock of
 *   its own and reads its ledger after it, so even two runs at once never apply a migration twice.
 */
import { readdir } from 'node:fs/promises'
import { extname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { existsSync } from 'node:fs'
import { QueryTypes, Sequelize as SequelizeClass, type DataTypes, type QueryInterface, type Sequelize, type Transaction } from 'sequelize'
import { SequelizeStorage, Umzug, type MigrationParams, type RunnableMigration, type UmzugStorage } from 'umzug'
import { TENANT_MIGRATION_TABLE, SCHEMA_TABLE, type UserIdType } from '../models/index.js'
import { runWithSchema } from './context.js'
import { poolMax, withOwnConnection, type RawConnection } from './db.js'
import { BoardinghouseErrors } from './errors.js'
import { importFile } from './loader.js'
import { GUARD_TRIGGER_PREFIX } from './clone/index.js'
import { queryGeneratorOf } from './sequelize-internals.js'
import { TEMPLATE_SCHEMA, quoteIdent, quoteLiteral } from './names.js'
import { CHANNEL } from './notify.js'

/** Advisory lock key shared by `migrate` (exclusive) and tenant creation (shared). */
export const MIGRATION_LOCK_KEY = 0x62686d67 // 'bhmg'
export const GUARD_TRIGGER = `${GUARD_TRIGGER_PREFIX}_template_guard`

/** What a migration receives as `context` (umzug style: `up({ context })`). */
export interface MigrationContext {
  queryInterface: QueryInterface
  /** The Sequelize class, with the DataTypes on it (`Sequelize.STRING`), as sequelize-cli passes it. */
  Sequelize: typeof SequelizeClass & typeof DataTypes
  sequelize: Sequelize
  /** The schema being migrated: 'public' for shared migrations. */
  schema: string
  /** True while migrating `__template__`, which refuses rows: data steps should skip it. */
  isTemplate: boolean
  /** The transaction the schema migrates in; queries made without one join it anyway. */
  transaction: Transaction
  options: { userIdType: UserIdType }
}

/** The Sequelize class typed with the DataTypes it carries (Sequelize.STRING…), for MigrationContext. */
export const SequelizeWithDataTypes = SequelizeClass as typeof SequelizeClass & typeof DataTypes

export type MigrationPhase = 'shared' | 'template' | 'tenants'

export interface MigrateProgress {
  phase: MigrationPhase
  /** Schemas (or, for 'shared', migrations) done so far in this phase. */
  done: number
  total: number
  /** The schema just finished, for 'template' and 'tenants'. */
  schema?: string
}

export interface MigrateOptions {
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
}

interface LoadedMigration {
  name: string
  path: string
  module: { up: (...args: unknown[]) => Promise<unknown>, down?: (...args: unknown[]) => Promise<unknown> }
}

const MIGRATION_EXTENSIONS = new Set(['.js', '.cjs', '.mjs', '.ts', '.cts', '.mts'])

/** The library's own migrations: `migrations/` at the package root (from plugin/ in source, dist/plugin/ when built). */
function libraryMigrationsFolder (): string {
  const fromSource = fileURLToPath(new URL('../migrations/', import.meta.url))
  return existsSync(join(fromSource, '..', 'package.json')) ? fromSource : fileURLToPath(new URL('../../migrations/', import.meta.url))
}

/** Loads a folder's migration files, sorted by file name (the migration's name). */
export async function loadMigrations (folder: string | undefined): Promise<LoadedMigration[]> {
  if (folder === undefined) return []
  const dir = resolve(folder)
  let entries: string[]
  try {
    entries = await readdir(dir)
  } catch (err) {
    throw new BoardinghouseErrors.INVALID_OPTION(`migrations folder ${dir} cannot be read`, { cause: err })
  }
  const files = entries.filter((f) => MIGRATION_EXTENSIONS.has(extname(f)) && !f.endsWith('.d.ts')).sort()
  const loaded: LoadedMigration[] = []
  for (const file of files) {
    const path = join(dir, file)
    const imported = await importFile(path) as Record<string, unknown> & { default?: Record<string, unknown> }
    const mod = (typeof imported.up === 'function' ? imported : imported.default) as LoadedMigration['module'] | undefined
    if (mod === undefined || typeof mod.up !== 'function') {
      throw new BoardinghouseErrors.INVALID_OPTION(`migration ${path} exports no up() function`)
    }
    loaded.push({ name: file.slice(0, -extname(file).length), path, module: mod })
  }
  return loaded
}

/**
 * Calls a migration function in either of the two formats: umzug's `up({ context })`, or
 * sequelize-cli's `up(queryInterface, Sequelize)` (recognised by its two declared parameters).
 */
function toRunnable (m: LoadedMigration): RunnableMigration<MigrationContext> {
  const call = (fn: (...args: unknown[]) => Promise<unknown>) => async (params: MigrationParams<MigrationContext>) =>
    fn.length >= 2 ? await fn(params.context.queryInterface, params.context.Sequelize) : await fn(params)
  const down = m.module.down
  return { name: m.name, path: m.path, up: call(m.module.up), ...(down !== undefined ? { down: call(down) } : {}) }
}

/**
 * A queryInterface for one schema. Sequelize's query generator falls back to its `options.schema`,
 * else "public", for addColumn, removeColumn, describeTable (so renameColumn, changeColumn), enum
 * type names and enum lookups: it would alter public.notes from a tenant's migration. This one
 * shares everything with the app's but sees `schema` as its default schema.
 */
export function schemaQueryInterface (queryInterface: QueryInterface, schema: string): QueryInterface {
  if (schema === 'public') return queryInterface
  const generator = queryGeneratorOf(queryInterface)
  const schemaGenerator = Object.create(generator, { options: { value: { ...generator.options, schema }, writable: true } }) as object
  return Object.create(queryInterface, { queryGenerator: { value: schemaGenerator, writable: true } }) as QueryInterface
}

/** umzug storage: the rows of the per-schema ledger for one schema. */
function ledgerStorage (sequelize: Sequelize, schema: string): UmzugStorage<MigrationContext> {
  return {
    async executed () {
      // Read inside the schema's transaction, after its lock: what a concurrent run committed counts.
      const rows = await sequelize.query<{ name: string }>(
        `SELECT name FROM public.${TENANT_MIGRATION_TABLE} WHERE schema_name = :schema ORDER BY name`,
        { replacements: { schema }, type: QueryTypes.SELECT, logging: false })
      return rows.map((r) => r.name)
    },
    async logMigration ({ name }) {
      let rows: Array<{ name: string }>
      try {
        rows = await sequelize.query<{ name: string }>(`INSERT INTO public.${TENANT_MIGRATION_TABLE} (schema_name, name) VALUES (:schema, :name)
          ON CONFLICT (schema_name, name) DO NOTHING RETURNING name`, { replacements: { schema, name }, type: QueryTypes.SELECT, logging: false })
      } catch (err) {
        throw Object.assign(new Error(`recording it in the ledger failed: ${causeMessage(err)}`, { cause: err }), { migration: { name } })
      }
      if (rows.length === 0) {
        throw Object.assign(new Error(`it is already recorded in the ledger (public.${TENANT_MIGRATION_TABLE}) for schema "${schema}": something else recorded it during this run`), { migration: { name } })
      }
    },
    async unlogMigration ({ name }) {
      await sequelize.query(`DELETE FROM public.${TENANT_MIGRATION_TABLE} WHERE schema_name = :schema AND name = :name`,
        { replacements: { schema, name }, logging: false })
    }
  }
}

/** PostgreSQL's own message (and detail) behind a Sequelize error, whose message can be just "Validation error". */
function causeMessage (err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const parent = (err as { parent?: { message?: string, detail?: string } }).parent
  if (parent?.message !== undefined && parent.message !== '') {
    return parent.detail !== undefined && parent.detail !== '' ? `${parent.message} (${parent.detail})` : parent.message
  }
  return err.message
}

/** Where a schema's run was when it failed (attached to the error by runSet). */
interface RunState { migration?: string, stage: 'begin' | 'migrating' | 'commit' }

function wrapFailure (err: unknown, schema: string): Error {
  if (err instanceof BoardinghouseErrors.MIGRATION_LOCK_LOST) return err
  const e = err as { migration?: { name?: string }, cause?: unknown, bhRun?: RunState }
  const state = e.bhRun
  const migration = e.migration?.name ?? state?.migration ?? '(none)'
  const cause = e.migration !== undefined && e.cause !== undefined ? e.cause : err
  const where = state?.stage === 'commit' ? 'while committing the schema\'s transaction: ' : state?.stage === 'begin' ? 'before its first migration: ' : ''
  const wrapped = new BoardinghouseErrors.MIGRATION_FAILED(migration, schema, where + causeMessage(cause), { cause })
  return Object.assign(wrapped, { schema, migration })
}

/** True for an error of a connection that is gone (terminated backend, closed socket). */
function isConnectionLoss (err: unknown): boolean {
  const e = err as { name?: string, code?: string, message?: string, parent?: { code?: string, message?: string } }
  const code = e.parent?.code ?? e.code
  const message = e.parent?.message ?? e.message ?? ''
  return e.name === 'SequelizeConnectionError' || code === '57P01' || code === '57P02' || code === '57P03' ||
    /Connection terminated|connection is closed|ECONNRESET|Client has encountered a connection error/i.test(message)
}

/** How often the lock's connection is probed (a query also resets any idle timeout on it). */
const LOCK_HEARTBEAT_MS = 5000

interface PgClientLike {
  on: (event: 'error' | 'end', listener: (err?: Error) => void) => unknown
  off?: (event: 'error' | 'end', listener: (err?: Error) => void) => unknown
  connection?: { stream?: { setKeepAlive?: (enable: boolean, delay: number) => unknown } }
}

/**
 * The session-level advisory lock of a migrate run, on a connection of its own. The connection is
 * kept from idling out (idle timeouts off for the session, TCP keepalive, a query every 5 s) and
 * watched: an 'error' or 'end' of the client, or a failed probe, marks the lock lost; check()
 * throws FST_BH_MIGRATION_LOCK_LOST from then on.
 */
class MigrationLock {
  lost: Error | null = null
  private timer: NodeJS.Timeout | null = null
  private readonly onError = (err?: Error): void => { this.markLost(err?.message ?? 'its connection failed', err) }
  private readonly onEnd = (): void => { this.markLost('its connection ended') }

  constructor (private readonly connection: RawConnection) {}

  private markLost (reason: string, cause?: unknown): void {
    this.lost ??= new BoardinghouseErrors.MIGRATION_LOCK_LOST(reason, { cause: cause ?? new Error(reason) })
  }

  async acquire (): Promise<void> {
    const client = this.connection as unknown as PgClientLike
    client.on('error', this.onError)
    client.on('end', this.onEnd)
    client.connection?.stream?.setKeepAlive?.(true, 10_000)
    const { rows } = await this.connection.query("SELECT current_setting('server_version_num')::int AS v")
    const version = Number((rows[0] as { v: number } | undefined)?.v ?? 0)
    await this.connection.query(`SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0${version >= 140000 ? '; SET idle_session_timeout = 0' : ''}`)
    await this.connection.query(`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`)
    this.timer = setInterval(() => { this.probe().catch(() => {}) }, LOCK_HEARTBEAT_MS)
    this.timer.unref()
  }

  private async probe (): Promise<void> {
    if (this.lost !== null) return
    try {
      await this.connection.query('SELECT 1')
    } catch (err) {
      this.markLost(err instanceof Error ? err.message : String(err), err)
    }
  }

  /** Throws FST_BH_MIGRATION_LOCK_LOST unless the lock's connection answers now. */
  async check (): Promise<void> {
    await this.probe()
    if (this.lost !== null) throw this.lost
  }

  async release (): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer)
    if (this.lost === null) await this.connection.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`).catch(() => {})
    const client = this.connection as unknown as PgClientLike
    client.off?.('error', this.onError)
    client.off?.('end', this.onEnd)
    // Still listening for 'error': a late error of the closed connection must not go unhandled.
    client.on('error', () => {})
  }
}

/** An audited model's table and the trigger arguments. */
export interface AuditTarget {
  model: string
  table: string
  tenant: boolean
  pkColumn: string
  reprColumn: string
}

export const AUDIT_TRIGGER = 'boardinghouse_audit'

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
    const progress = options.onProgress ?? (() => {})
    const concurrency = Math.max(1, Math.min(options.concurrency ?? this.deps.concurrency, poolMax(sequelize)))
    const [library, shared, tenant] = await Promise.all([
      loadMigrations(libraryMigrationsFolder()),
      loadMigrations(this.deps.sharedMigrations),
      this.tenantMigrations()
    ])

    return await withOwnConnection(sequelize, async (connection) => {
      const lock = new MigrationLock(connection)
      try {
        await lock.acquire()
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
        await runWithSchema(null, async () => { await this.ensureAuditTriggers(await this.missingAuditTriggers(audit, 'public')) })

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
        const rest = behind.map((r) => r.schema_name).filter((s) => s !== TEMPLATE_SCHEMA)
        if (behind.some((r) => r.schema_name === TEMPLATE_SCHEMA)) {
          try {
            templateRan = await this.runSet(TEMPLATE_SCHEMA, tenant, () => ledgerStorage(sequelize, TEMPLATE_SCHEMA), lock, {
              beforeEach: async () => { await this.guardTemplate() },
              after: async () => {
                await this.guardTemplate()
                await this.ensureAuditTriggers(await this.missingAuditTriggers(audit, 'template'))
                await this.assertTemplateEmpty()
                await this.bumpTemplateGeneration()
              }
            })
          } catch (err) {
            throw wrapFailure(err, TEMPLATE_SCHEMA)
          } finally {
            this.deps.onTemplateChanged()
          }
          progress({ phase: 'template', done: 1, total: 1, schema: TEMPLATE_SCHEMA })
        } else {
          // Tables added by hand, an older version, or newly audited models: bring the triggers up to date.
          const changed = await runWithSchema(null, async () => await sequelize.transaction(async (transaction) =>
            await runWithSchema(null, async () => {
              const guarded = await this.guardTemplate()
              const audited = await this.ensureAuditTriggers(await this.missingAuditTriggers(audit, 'template'))
              if (guarded + audited === 0) return false
              await this.bumpTemplateGeneration()
              return true
            }, { transaction })))
          if (changed) this.deps.onTemplateChanged()
        }
        // Audit triggers missing in tenant schemas (a model audited since they were created).
        await runWithSchema(null, async () => { await this.ensureAuditTriggers(await this.missingAuditTriggers(audit, 'tenants')) })

        // 4. Tenants, in parallel on `concurrency` connections; stop scheduling after a failure.
        let done = 0
        let failure: Error | null = null
        let next = 0
        const worker = async (): Promise<void> => {
          while (failure === null && lock.lost === null && next < rest.length) {
            const schema = rest[next++] as string
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
              failure ??= wrapFailure(err, schema)
              return
            }
            done++
            progress({ phase: 'tenants', done, total: rest.length, schema })
          }
        }
        await Promise.all(Array.from({ length: Math.min(concurrency, rest.length) }, worker))
        if (lock.lost !== null) throw lock.lost
        if (failure !== null) throw failure
        return { shared: sharedRan, template: templateRan, migratedSchemas: done, upToDateSchemas: tenantCount - done }
      } catch (err) {
        throw lock.lost ?? err
      } finally {
        await lock.release()
      }
    })
  }

  /**
   * The guard covers tables from the migrations before the current one; a migration that creates a
   * table and fills it in one go is caught here, and its schema's run rolls back.
   */
  private async assertTemplateEmpty (): Promise<void> {
    const { sequelize } = this.deps
    const tables = await sequelize.query<{ relname: string }>(
      `SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = :template AND c.relkind IN ('r', 'p') ORDER BY 1`,
      { replacements: { template: TEMPLATE_SCHEMA }, type: QueryTypes.SELECT, logging: false })
    if (tables.length === 0) return
    const probe = tables.map(({ relname }) =>
      `SELECT ${quoteLiteral(relname)} AS relname WHERE EXISTS (SELECT 1 FROM ${quoteIdent(TEMPLATE_SCHEMA)}.${quoteIdent(relname)})`).join(' UNION ALL ')
    const filled = await sequelize.query<{ relname: string }>(probe, { type: QueryTypes.SELECT, logging: false })
    if (filled.length > 0) {
      throw new Error(`schema "${TEMPLATE_SCHEMA}" holds the tenant template and no data, but table ${filled.map((f) => `"${f.relname}"`).join(', ')} got rows; a migration that writes rows should skip it: if (context.isTemplate) return`)
    }
  }

  /** Counts a change of the template's structure: part of the clone DDL cache key. */
  private async bumpTemplateGeneration (): Promise<void> {
    await this.deps.sequelize.query('UPDATE public.boardinghouse_template_state SET generation = generation + 1', { logging: false })
  }

  /** (schema, target) pairs whose table lacks the audit trigger: in the template, or in every tenant schema. */
  private async missingAuditTriggers (targets: AuditTarget[], where: 'public' | 'template' | 'tenants'): Promise<Array<{ schema: string, target: AuditTarget }>> {
    const tenantTargets = targets.filter((a) => a.tenant === (where !== 'public'))
    if (tenantTargets.length === 0) return []
    const schemas = where === 'tenants'
      ? `SELECT schema_name FROM public.${SCHEMA_TABLE}`
      : `SELECT ${quoteLiteral(where === 'public' ? 'public' : TEMPLATE_SCHEMA)}::text AS schema_name`
    const rows = await this.deps.sequelize.query<{ schema_name: string, relname: string }>(
      `SELECT s.schema_name, c.relname FROM (${schemas}) s
       JOIN pg_catalog.pg_namespace n ON n.nspname = s.schema_name
       JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname IN (:tables) AND c.relkind IN ('r', 'p')
       WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = :trigger)
       ORDER BY 1, 2`,
      { replacements: { tables: tenantTargets.map((a) => a.table), trigger: AUDIT_TRIGGER }, type: QueryTypes.SELECT, logging: false })
    const byTable = new Map(tenantTargets.map((a) => [a.table, a]))
    return rows.map((r) => ({ schema: r.schema_name, target: byTable.get(r.relname) as AuditTarget }))
  }

  /** Creates the audit trigger on each (schema, table) given (from missingAuditTriggers); returns how many. */
  private async ensureAuditTriggers (pairs: Array<{ schema: string, target: AuditTarget }>): Promise<number> {
    for (const { schema, target } of pairs) {
      const table = `${quoteIdent(schema)}.${quoteIdent(target.table)}`
      await this.deps.sequelize.query(`CREATE TRIGGER ${quoteIdent(AUDIT_TRIGGER)} AFTER INSERT OR UPDATE OR DELETE ON ${table}
        FOR EACH ROW EXECUTE FUNCTION public.boardinghouse_audit(${[target.model, target.pkColumn, target.reprColumn].map(quoteLiteral).join(', ')})`, { logging: false })
    }
    return pairs.length
  }

  /** Attaches the row guard to every template table that lacks it: the database refuses rows in the template. Returns how many. */
  private async guardTemplate (): Promise<number> {
    const { sequelize } = this.deps
    const tables = await sequelize.query<{ relname: string }>(
      `SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = :template AND c.relkind IN ('r', 'p')
         AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = :guard)`,
      { replacements: { template: TEMPLATE_SCHEMA, guard: GUARD_TRIGGER }, type: QueryTypes.SELECT, logging: false })
    for (const { relname } of tables) {
      await sequelize.query(`CREATE TRIGGER ${quoteIdent(GUARD_TRIGGER)} BEFORE INSERT OR UPDATE ON ${quoteIdent(TEMPLATE_SCHEMA)}.${quoteIdent(relname)}
        FOR EACH ROW EXECUTE FUNCTION public.boardinghouse_refuse_template_write()`, { logging: false })
    }
    return tables.length
  }
}
