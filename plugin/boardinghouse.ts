/**
 * The tenant API, usable with or without Fastify: create, get, list, delete and drop schemas, grant
 * and revoke memberships, migrate, and run code in a schema. A thin facade: the registry writes are
 * schema-admin.ts's, the models model-catalog.ts's, the clone DDL clone/cache.ts's, the cache of
 * schemas and memberships registry.ts's.
 */
import type { Model, ModelStatic } from 'sequelize'
import { defineModels, type BoardinghouseModels, type UserId } from '../models/index.js'
import { readAuditLog, type AuditEntry, type AuditQuery } from './audit.js'
import { CloneDDLCache } from './clone/index.js'
import { installContextHooks, runWithSchema, shareInstanceSettings, tenantStorage, type ContextState } from './context.js'
import { dumpData as dumpObjects, loadData as loadObjects, type DumpObject, type DumpOptions, type LoadOptions, type LoadResult, type LoadSource } from './data/index.js'
import { applyPoolRecycling } from './db.js'
import { DomainAdmin, type AddDomainOptions } from './domains.js'
import { runDoctor, type DoctorOptions, type DoctorReport } from './doctor/index.js'
import { BoardinghouseErrors } from './errors.js'
import { jobContext, runInJobContext, type JobContext, type JobContextOptions } from './jobs.js'
import { BoardinghouseEmitter, encodeNotice, type BoardinghouseEventMap, type BoardinghouseEventName, type BoardinghouseListener, type EventKey, type NoticeKind, type ParsedNotice } from './events.js'
import { Migrator, type AuditTarget, type MigrateOptions, type MigrateResult } from './migrator/index.js'
import type { MigrateDownOptions, MigrateDownResult, MigrationStatus, MigrationTargeting } from './migrator/index.js'
import { ModelCatalog } from './model-catalog.js'
import { assertSchemaName } from './names.js'
import { ChangeListener } from './notify.js'
import { givenOptions, resolveOptions, type BoardinghouseOptions, type ResolvedOptions } from './options.js'
import { PendingPool, type PendingFillResult, type PendingStatus } from './pending.js'
import { registryFor, userKey, type DomainInfo, type SchemaInfo, type SchemaRegistry } from './registry.js'
import type { ClearMaintenanceOptions, SchemaMaintenance, SetMaintenanceOptions } from './maintenance.js'
import { SchemaAdmin, type BeforeDropHook, type CreateHook, type CreateSchemaOptions, type DeleteSchemaOptions } from './schema-admin.js'
import { normalizeUserId } from './user-id.js'

export type { SchemaInfo } from './registry.js'
export type { DomainInfo } from './registry.js'
export type { AddDomainOptions } from './domains.js'
export type { CreateSchemaOptions, DeleteSchemaOptions } from './schema-admin.js'
export type { ClearMaintenanceOptions, MaintenanceBy, SchemaMaintenance, SetMaintenanceOptions } from './maintenance.js'
export type { PendingFillResult, PendingSpare, PendingStatus } from './pending.js'
export { normalizeUserId } from './user-id.js'

export interface ListSchemasOptions {
  /** Include deactivated schemas. @default false */
  includeInactive?: boolean
}

export interface RunInSchemaOptions {
  /** Allow a deactivated schema (maintenance). @default false */
  includeInactive?: boolean
  /** The user on whose behalf `fn` runs (audit log). */
  userId?: UserId | null
}

function removeFrom<T> (list: T[], item: T): void {
  const i = list.indexOf(item)
  if (i >= 0) list.splice(i, 1)
}

/** Emits a request's switch (the switch route), in this process only. */
export function emitSwitched (bh: Boardinghouse, payload: Omit<BoardinghouseEventMap['switched'], 'origin'>): void {
  (bh as unknown as { events: BoardinghouseEmitter }).events.emit('switched', { ...payload, origin: 'local' })
}

function byName (a: SchemaInfo, b: SchemaInfo): number {
  return a.schema < b.schema ? -1 : a.schema > b.schema ? 1 : 0
}

export class Boardinghouse {
  readonly options: ResolvedOptions
  readonly models: BoardinghouseModels
  readonly registry: SchemaRegistry
  private readonly migrator: Migrator
  private readonly catalog: ModelCatalog
  private readonly clone = new CloneDDLCache()
  private readonly admin: SchemaAdmin
  private readonly changes: ChangeListener
  private readonly context: ContextState
  private readonly domains: DomainAdmin
  private readonly events = new BoardinghouseEmitter()
  private readonly createHooks: CreateHook[] = []
  private readonly dropHooks: BeforeDropHook[] = []
  private readonly pending: PendingPool

  /** `options` are validated and defaulted by options.ts's `resolveOptions` (an already resolved object is taken as it is). */
  constructor (options: BoardinghouseOptions | ResolvedOptions) {
    const resolved = resolveOptions(options)
    this.options = shareInstanceSettings(givenOptions(resolved), resolved)
    const { sequelize } = this.options
    this.context = installContextHooks(sequelize)
    this.context.maxSchemasPerConnection = Math.min(this.context.maxSchemasPerConnection, applyPoolRecycling(sequelize))
    this.context.onSchemaGone ??= () => { this.registry.invalidate() }
    this.models = defineModels(sequelize, this.options.userIdType)
    this.registry = registryFor(sequelize, this.options.cacheTtl)
    this.catalog = new ModelCatalog(this.options, this.context)
    this.pending = new PendingPool({ sequelize, clone: this.clone, target: this.options.pendingSchemas, onProblem: (schema, error) => { this.pendingProblem(schema, error) } })
    this.migrator = new Migrator({
      sequelize,
      sharedMigrations: this.options.sharedMigrations,
      tenantMigrations: this.options.tenantMigrations,
      sharedMigrationsTable: this.options.sharedMigrationsTable,
      userIdType: this.options.userIdType,
      concurrency: this.options.migrationConcurrency,
      onTemplateChanged: () => { this.clone.templateChanged(); this.pending.templateChanged() },
      auditTargets: () => this.auditTargets(),
      schemaMigratedNotice: (schema, migrations) => encodeNotice(this.changes.id, 'schemaMigrated', { schema, migrations }),
      onSchemaMigrated: (schema, migrations) => { this.emitLocal('schemaMigrated', { schema, migrations }) },
      // maintenance mode around each schema's migration: 'migrate' never changes or ends an operator's ('manual') maintenance
      maintenance: {
        enter: async (schema, retryAfter) => { await this.setMaintenance(schema, { by: 'migrate', ...(retryAfter !== undefined ? { retryAfter } : {}) }) },
        leave: async (schema) => { await this.clearMaintenance(schema, { by: 'migrate' }) }
      }
    })
    this.changes = new ChangeListener({ sequelize, onChange: () => { this.forget() }, onEvent: (event) => { this.emitRemote(event) } })
    this.admin = new SchemaAdmin({
      sequelize,
      registry: this.registry,
      clone: this.clone,
      noticeId: () => this.changes.id,
      normalizeUserId: (userId) => this.normalizeUserId(userId),
      emit: (kind, key) => { this.emitLocal(kind, key) },
      createHooks: () => this.createHooks,
      dropHooks: () => this.dropHooks,
      pending: this.pending
    })
    this.domains = new DomainAdmin({ sequelize, registry: this.registry, noticeId: () => this.changes.id, emit: (kind, key) => { this.emitLocal(kind, key) } })
  }

  // ---------------------------------------------------------------- lifecycle events (events.ts)

  /**
   * Listens for a lifecycle event. Events are emitted after their change committed: in this
   * process with `origin: 'local'`, in every other listening process with `origin: 'remote'`
   * (once each). A listener's throw or rejection goes to `listenerError` (else a process warning),
   * never to the change.
   */
  on<E extends BoardinghouseEventName> (event: E, listener: BoardinghouseListener<E>): this {
    this.events.on(event, listener)
    return this
  }

  /** Like `on`, for the next such event only. */
  once<E extends BoardinghouseEventName> (event: E, listener: BoardinghouseListener<E>): this {
    this.events.once(event, listener)
    return this
  }

  /** Removes a listener added with `on` or `once`. */
  off<E extends BoardinghouseEventName> (event: E, listener: BoardinghouseListener<E>): this {
    this.events.off(event, listener)
    return this
  }

  /**
   * Adds a creation hook: it runs inside the creation's transaction, with the new schema active and
   * the transaction bound (queries join it), after the schema, its tables and its registry row
   * exist. A throw rolls everything back (FST_BH_CREATE_HOOK_FAILED). Returns a function removing it.
   */
  onCreate (hook: CreateHook): () => void {
    if (typeof hook !== 'function') throw new BoardinghouseErrors.INVALID_OPTION('onCreate needs a function')
    this.createHooks.push(hook)
    return () => { removeFrom(this.createHooks, hook) }
  }

  /**
   * Adds a hook run before each drop (`deleteSchema(schema, { drop: true })`), outside the drop's
   * transaction, while the schema still exists: a throw refuses the drop (FST_BH_DROP_REFUSED),
   * nothing changed. Returns a function removing it.
   */
  beforeDrop (hook: BeforeDropHook): () => void {
    if (typeof hook !== 'function') throw new BoardinghouseErrors.INVALID_OPTION('beforeDrop needs a function')
    this.dropHooks.push(hook)
    return () => { removeFrom(this.dropHooks, hook) }
  }

  private emitLocal<E extends NoticeKind> (kind: E, key: EventKey<E>): void {
    this.events.emit(kind, { ...key, origin: 'local' } as never)
  }

  private emitRemote (event: ParsedNotice): void {
    this.events.emit(event.kind, { ...event.key, origin: 'remote' } as never)
  }

  /**
   * Listens for changes made by other processes (LISTEN on a dedicated connection, reconnecting on
   * failure) so this process's cache follows them. `onError` hears connection problems.
   */
  async listen (onError?: (err: unknown) => void): Promise<void> {
    await this.changes.start(onError)
  }

  /** True while the change listener is connected. */
  get listening (): boolean {
    return this.changes.listening
  }

  /** Stops listening and background refills of pending schemas (one running finishes its spare). The Sequelize instance stays open: it is the app's. */
  async close (): Promise<void> {
    await this.pending.close()
    await this.changes.stop()
  }

  /**
   * Forgets cached schemas, memberships and the clone DDL (after a change made outside the library).
   * The next `createSchema` of this process also bumps the template's generation counter and
   * regenerates the clone DDL from the catalog, so DDL run directly in `__template__` reaches new
   * schemas, and every other process's cached DDL is refused by its next clone's version check.
   */
  invalidate (): void {
    this.forget()
    this.clone.markTemplateDirty()
  }

  /** Drops this process's caches (another process's notice, or after migrate). */
  private forget (): void {
    this.registry.invalidate()
    this.clone.forget()
  }

  // ---------------------------------------------------------------- models and startup checks (model-catalog.ts)

  /** The tenant models, resolved to classes (throws FST_BH_UNKNOWN_MODEL for a name not defined). */
  tenantModelClasses (): Array<ModelStatic<Model>> {
    return this.catalog.tenantModelClasses()
  }

  /** Table names of the tenant models. */
  tenantTableNames (): string[] {
    return this.catalog.tenantTableNames()
  }

  /** The audited models' tables, with the trigger's arguments. */
  auditTargets (): AuditTarget[] {
    return this.catalog.auditTargets()
  }

  /**
   * Startup checks: every tenant model exists and names no schema, no shared model has a foreign key
   * to a tenant model, and no tenant table exists in public (where a missing schema would fall
   * through to). Throws the first problem found.
   */
  async check (): Promise<void> {
    await this.catalog.check()
  }

  // ---------------------------------------------------------------- migrations

  /** Runs shared migrations once, then tenant migrations in the template and every schema that is behind. */
  async migrate (options: MigrateOptions = {}): Promise<MigrateResult> {
    this.tenantModelClasses()
    let result: MigrateResult
    try {
      result = await this.migrator.migrate(options)
    } finally {
      // the template changed: its stale spares are dropped and refilled, in the background
      this.pending.migrateEnded()
    }
    this.forget()
    await this.admin.announce({ kind: 'migrated', key: { schema: null, migratedSchemas: result.migratedSchemas } })
    await this.check()
    return result
  }

  /**
   * Which migrations have not run, where: shared ones, the template's, and each targeted tenant
   * schema's (`schemas` / `exclude`), from the ledgers. Read-only, without the migration lock.
   */
  async migrationStatus (targeting: MigrationTargeting = {}): Promise<MigrationStatus> {
    return await this.migrator.status(targeting)
  }

  /**
   * Runs tenant migrations' `down` (`to: NAME`: NAME and every later one; `step: N`, default 1) in
   * the targeted schemas, one transaction each, then in the template once no tenant lists them.
   */
  async migrateDown (options: MigrateDownOptions = {}): Promise<MigrateDownResult> {
    this.tenantModelClasses()
    const result = await this.migrator.migrateDown(options)
    this.forget()
    await this.admin.announce()
    return result
  }

  // ---------------------------------------------------------------- fleet check (doctor/)

  /**
   * Checks every schema against the registry, the ledger and the template's structure, read-only;
   * with `fix: true` first repairs what is safe (missing audit triggers, orphan ledger rows) in one
   * transaction. Resolves to the findings (after a fix: what is left) and what was fixed. Throws
   * FST_BH_NOT_MIGRATED on a database the library never migrated.
   */
  async doctor (options: DoctorOptions = {}): Promise<DoctorReport> {
    return await runDoctor({
      sequelize: this.options.sequelize,
      auditTargets: () => this.auditTargets(),
      tenantTables: () => this.tenantTableNames(),
      onTemplateChanged: () => { this.clone.templateChanged() },
      clearMigrateMaintenance: async (schema) => await this.clearMaintenance(schema, { by: 'migrate' })
    }, options)
  }

  // ---------------------------------------------------------------- schemas (writes: schema-admin.ts)

  /**
   * Creates a tenant schema: replays the template's DDL, registers the schema and copies the
   * template's ledger, as one simple-protocol query in one transaction. A failure leaves nothing.
   */
  async createSchema (schema: string, options: CreateSchemaOptions = {}): Promise<SchemaInfo> {
    return await this.admin.createSchema(schema, options)
  }

  /** The schema's registry entry (active or not), or null. */
  async getSchema (schema: string): Promise<SchemaInfo | null> {
    assertSchemaName(schema)
    const snapshot = await this.registry.get()
    return snapshot.schemas.get(schema) ?? null
  }

  /** Like getSchema, but throws FST_BH_SCHEMA_NOT_FOUND (and FST_BH_SCHEMA_INACTIVE unless allowed). */
  async requireSchema (schema: string, options: { includeInactive?: boolean } = {}): Promise<SchemaInfo> {
    const info = await this.getSchema(schema)
    if (info === null) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(schema)
    if (!info.isActive && options.includeInactive !== true) throw new BoardinghouseErrors.SCHEMA_INACTIVE(schema)
    return info
  }

  /** Schemas sorted by name; active ones only unless asked. */
  async listSchemas (options: ListSchemasOptions = {}): Promise<SchemaInfo[]> {
    const snapshot = await this.registry.get()
    return [...snapshot.schemas.values()].filter((s) => s.isActive || options.includeInactive === true).sort(byName)
  }

  /** Deactivates a schema (soft), or with `drop: true` drops it with its rows, memberships and ledger. */
  async deleteSchema (schema: string, options: DeleteSchemaOptions = {}): Promise<void> {
    await this.admin.deleteSchema(schema, options)
  }

  /** Reactivates a deactivated schema. */
  async activateSchema (schema: string): Promise<void> {
    await this.admin.activateSchema(schema)
  }

  // ---------------------------------------------------------------- maintenance mode (writes: schema-admin.ts; rules: maintenance.ts)

  /**
   * Puts a schema in maintenance: its requests answer FST_BH_SCHEMA_MAINTENANCE (503) with
   * `Retry-After: retryAfter` (default 60 s) and its jobs are refused (retryably) until
   * `clearMaintenance`; `runInSchema` is not affected. Calling it again changes retryAfter and
   * keeps `since`. `by: 'migrate'` (the migrator) never changes a 'manual' maintenance. One
   * statement with its NOTIFY; bad options are FST_BH_INVALID_INPUT (400). Resolves to the state.
   */
  async setMaintenance (schema: string, options: SetMaintenanceOptions = {}): Promise<SchemaMaintenance> {
    return await this.admin.setMaintenance(schema, options)
  }

  /**
   * Ends a schema's maintenance: `by: 'manual'` (default) ends any, `by: 'migrate'` only one that
   * 'migrate' set. Resolves to whether a maintenance ended.
   */
  async clearMaintenance (schema: string, options: ClearMaintenanceOptions = {}): Promise<boolean> {
    return await this.admin.clearMaintenance(schema, options)
  }

  // ---------------------------------------------------------------- pending schemas (pending.ts)

  /**
   * The pool of spare schemas (option `pendingSchemas`): how many are ready to be claimed, stale
   * (of an older template version), tampered with or orphaned, and this instance's refills and claims.
   */
  async pendingStatus (): Promise<PendingStatus> {
    return await this.pending.status()
  }

  /**
   * Tops the pool up to `n` ready spares (default: `pendingSchemas`), one transaction per spare,
   * after dropping stale spares and orphans; waits for a migrate in progress. FST_BH_INVALID_INPUT
   * for an `n` that is not an integer from 0 to 1000; FST_BH_PENDING_FILL_FAILED when a clone fails.
   */
  async fillPending (n?: number): Promise<PendingFillResult> {
    return await this.pending.fill(n ?? this.options.pendingSchemas)
  }

  /** A problem of the pool off the request path: the `pendingError` listeners hear it, else a process warning. */
  private pendingProblem (schema: string | null, error: Error): void {
    if (this.events.listenerCount('pendingError') > 0) {
      this.events.emit('pendingError', { schema, error, origin: 'local' })
      return
    }
    process.emitWarning(`fastify-boardinghouse pending schemas: ${error.message}`, { type: 'BoardinghousePendingError', detail: error.stack })
  }

  // ---------------------------------------------------------------- memberships

  /** Validates a user id against the configured `userIdType`; returns it as sent to the database. */
  normalizeUserId (userId: unknown): string | number {
    return normalizeUserId(userId, this.options.userIdType)
  }

  /** Makes a user a member of a schema (idempotent). */
  async grant (schema: string, userId: UserId): Promise<void> {
    await this.admin.grant(schema, userId)
  }

  /** Removes a user's membership; returns false when there was none. */
  async revoke (schema: string, userId: UserId): Promise<boolean> {
    return await this.admin.revoke(schema, userId)
  }

  /** The active schemas a user is a member of, sorted by name. */
  async schemasForUser (userId: UserId): Promise<SchemaInfo[]> {
    const key = userKey(this.normalizeUserId(userId))
    const snapshot = await this.registry.get()
    const names = snapshot.members.get(key) ?? new Set<string>()
    return [...names].map((n) => snapshot.schemas.get(n)).filter((s): s is SchemaInfo => s !== undefined && s.isActive).sort(byName)
  }

  /** Users (ids as strings) who are members of a schema. */
  async membersOf (schema: string): Promise<string[]> {
    assertSchemaName(schema)
    const snapshot = await this.registry.get()
    if (!snapshot.schemas.has(schema)) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(schema)
    const out: string[] = []
    for (const [user, schemas] of snapshot.members) if (schemas.has(schema)) out.push(user)
    return out.sort()
  }

  // ---------------------------------------------------------------- domains (writes: domains.ts)

  /**
   * Maps a host to a schema (stored normalised: lower-case, punycode, no port, no trailing dot);
   * `primary: true` makes it the schema's one primary domain. A host mapped to another schema is
   * refused (FST_BH_DOMAIN_TAKEN, 409); an invalid host is FST_BH_INVALID_HOST (400).
   */
  async addDomain (schema: string, host: string, options: AddDomainOptions = {}): Promise<DomainInfo> {
    return await this.domains.addDomain(schema, host, options)
  }

  /** Unmaps a host; resolves to false when it was not mapped. */
  async removeDomain (host: string): Promise<boolean> {
    return await this.domains.removeDomain(host)
  }

  /** The hosts mapped to a schema (from the cache), the primary first, then by host. */
  async domainsOf (schema: string): Promise<DomainInfo[]> {
    assertSchemaName(schema)
    const snapshot = await this.registry.get()
    if (!snapshot.schemas.has(schema)) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(schema)
    return [...snapshot.domainsOf(schema)]
  }

  /** Every mapped host (from the cache), sorted by schema, the primary first, then by host. */
  async listDomains (): Promise<DomainInfo[]> {
    const snapshot = await this.registry.get()
    return [...snapshot.schemas.keys()].sort().flatMap((s) => snapshot.domainsOf(s))
  }

  // ---------------------------------------------------------------- running code in a schema

  /**
   * Runs `fn` with every Sequelize query in `schema` (search_path = schema, public). Nested calls
   * restore the outer schema when they return. The schema must exist and be active (unless allowed).
   */
  async runInSchema<T> (schema: string, fn: () => Promise<T> | T, options: RunInSchemaOptions = {}): Promise<T> {
    await this.requireSchema(schema, options)
    const extra = options.userId !== undefined ? { userId: options.userId } : {}
    return await runWithSchema(schema, async () => await fn(), extra)
  }

  /** Runs `fn` with no schema active (public only). */
  async runInPublic<T> (fn: () => Promise<T> | T): Promise<T> {
    return await runWithSchema(null, async () => await fn())
  }

  // ---------------------------------------------------------------- background jobs (jobs.ts)

  /**
   * The calling tenant context as plain JSON, to store in a job's data: `{ schema, userId,
   * requestId }` inside a request or `runInSchema` with a schema active, else null.
   */
  jobContext (): JobContext | null {
    return jobContext()
  }

  /**
   * Runs `fn` in a job's stored context after re-checking it against this API (well-formed, schema
   * registered and active, the user still a member or an admin by `options.isAdmin`); refuses with
   * the codes of plugin/jobs.ts's `runInJobContext`, never running `fn`.
   */
  async runInJobContext<T> (ctx: unknown, fn: () => Promise<T> | T, options: JobContextOptions = {}): Promise<T> {
    return await runInJobContext(this, ctx, fn, options)
  }

  /** Audit log entries: by default of the active schema and of shared models, newest first. */
  async auditLog (query: AuditQuery = {}): Promise<AuditEntry[]> {
    return await readAuditLog(this.options.sequelize, query, this.currentSchema())
  }

  /** The schema active in the calling async context, or null. */
  currentSchema (): string | null {
    return tenantStorage.getStore()?.schema ?? null
  }

  // ---------------------------------------------------------------- dump and load (plugin/data/)

  /**
   * Streams rows as `{ model, pk, schema, fields }` objects, parents before children and by primary
   * key, from one consistent snapshot: with `schema`, that schema's tenant models (or `models`);
   * without, the shared models. Checks run when iteration starts.
   */
  dumpData (options: DumpOptions = {}): AsyncIterable<DumpObject> {
    return dumpObjects(this, options)
  }

  /**
   * Loads dump objects all or nothing, in one transaction: tenant objects into `schema`, or each
   * into its own `schema` attribute; shared objects into their table. Moves sequences past the
   * loaded keys. Resolves to the number of objects written, in total and per model.
   */
  async loadData (sources: LoadSource[], options: LoadOptions = {}): Promise<LoadResult> {
    return await loadObjects(this, sources, options)
  }
}

/** Creates the tenant API for a Sequelize instance. */
export function createBoardinghouse (options: BoardinghouseOptions): Boardinghouse {
  return new Boardinghouse(options)
}
