/**
 * The tenant API, usable with or without Fastify: create, get, list, delete and drop schemas, grant
 * and revoke memberships, migrate, and run code in a schema.
 */
import { QueryTypes, type Model, type ModelStatic } from 'sequelize'
import { defineModels, MEMBERSHIP_TABLE, SCHEMA_TABLE, TENANT_MIGRATION_TABLE, type BoardinghouseModels, type UserId, type UserIdType } from '../models/index.js'
import { registryFor, userKey, type SchemaInfo, type SchemaRegistry } from './cache.js'
import { generateCloneDDL, renderCloneDDL } from './clone/index.js'
import { pinModelSchema } from './sequelize-internals.js'
import { installContextHooks, runWithSchema, shareInstanceSettings, tenantStorage, type ContextState } from './context.js'
import { dumpData as dumpObjects, loadData as loadObjects, type DumpObject, type DumpOptions, type LoadOptions, type LoadResult, type LoadSource } from './data/index.js'
import { applyPoolRecycling, withConnection, type RawConnection } from './db.js'
import { BoardinghouseErrors } from './errors.js'
import { MIGRATION_LOCK_KEY, Migrator, type AuditTarget, type MigrateOptions, type MigrateResult } from './migrator.js'
import { TEMPLATE_SCHEMA, assertSchemaName, describe, quoteIdent, quoteLiteral } from './names.js'
import { resolveOptions, type BoardinghouseOptions, type ResolvedOptions } from './options.js'
import { CHANNEL, ChangeListener } from './notify.js'
import { readAuditLog, type AuditEntry, type AuditQuery } from './audit.js'

export type { SchemaInfo } from './cache.js'

export interface CreateSchemaOptions {
  /** Display name; defaults to the schema name. */
  name?: string
}

export interface DeleteSchemaOptions {
  /** Drop the PostgreSQL schema and its rows (and memberships) instead of deactivating it. @default false */
  drop?: boolean
}

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

interface CloneCache { version: string, ddl: string }

/** SQLSTATE raised inside the clone transaction when the template changed since the DDL was generated. */
const STALE_TEMPLATE_STATE = 'BHTPL'

/** The template's version: its migrations and the generation counter migrate bumps on any other change of its structure. */
const TEMPLATE_VERSION_SQL = `SELECT md5(coalesce((SELECT string_agg(name, ',' ORDER BY name) FROM public.${TENANT_MIGRATION_TABLE}
    WHERE schema_name = ${quoteLiteral(TEMPLATE_SCHEMA)}), '') || ':' || (SELECT generation FROM public.boardinghouse_template_state)) AS version`

/** Bump when generateCloneDDL's output changes for the same template: cached DDL of older formats is regenerated. */
const CLONE_FORMAT = '1'
const TEMPLATE_DDL_TABLE = 'boardinghouse_template_ddl'

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export class Boardinghouse {
  readonly options: ResolvedOptions
  readonly models: BoardinghouseModels
  readonly registry: SchemaRegistry
  private readonly migrator: Migrator
  private clone: CloneCache | null = null
  /** Set by invalidate(): the template may have changed outside `migrate`; the next clone regenerates its DDL. */
  private templateDirty = false
  private tenantTables: string[] | null = null
  private readonly changes: ChangeListener
  private readonly context: ContextState

  constructor (options: BoardinghouseOptions, extraOptionKeys?: ReadonlySet<string>) {
    this.options = shareInstanceSettings(options, resolveOptions(options, extraOptionKeys))
    const { sequelize } = this.options
    this.context = installContextHooks(sequelize)
    applyPoolRecycling(sequelize)
    this.context.onSchemaGone ??= () => { this.registry.invalidate() }
    this.models = defineModels(sequelize, this.options.userIdType)
    this.registry = registryFor(sequelize, this.options.cacheTtl)
    this.migrator = new Migrator({
      sequelize,
      sharedMigrations: this.options.sharedMigrations,
      tenantMigrations: this.options.tenantMigrations,
      sharedMigrationsTable: this.options.sharedMigrationsTable,
      userIdType: this.options.userIdType,
      concurrency: this.options.migrationConcurrency,
      onTemplateChanged: () => { this.clone = null; this.templateDirty = false },
      auditTargets: () => this.auditTargets()
    })
    this.changes = new ChangeListener({ sequelize, onChange: () => { this.forget() } })
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

  /** Stops listening. The Sequelize instance stays open: it is the app's. */
  async close (): Promise<void> {
    await this.changes.stop()
  }

  /** Drops this process's cache and tells the others (NOTIFY) to drop theirs. */
  private async changed (): Promise<void> {
    this.registry.invalidate()
    await runWithSchema(null, async () => await this.options.sequelize.query('SELECT pg_notify(:channel, :id)',
      { replacements: { channel: CHANNEL, id: this.changes.id }, type: QueryTypes.SELECT, logging: false }))
  }

  /**
   * Forgets cached schemas, memberships and the clone DDL (after a change made outside the library).
   * The next `createSchema` of this process also bumps the template's generation counter and
   * regenerates the clone DDL from the catalog, so DDL run directly in `__template__` reaches new
   * schemas, and every other process's cached DDL is refused by its next clone's version check.
   */
  invalidate (): void {
    this.forget()
    this.templateDirty = true
  }

  /** Drops this process's caches (another process's notice, or after migrate). */
  private forget (): void {
    this.registry.invalidate()
    this.clone = null
  }

  // ---------------------------------------------------------------- models and startup checks

  /** The tenant models, resolved to classes (throws FST_BH_UNKNOWN_MODEL for a name not defined). */
  tenantModelClasses (): Array<ModelStatic<Model>> {
    return this.options.tenantModels.map((m) => this.modelClass(m))
  }

  /** Table names of the tenant models. */
  tenantTableNames (): string[] {
    this.tenantTables ??= this.tenantModelClasses().map((m) => {
      const table = m.getTableName() as string | { tableName: string, schema?: string }
      if (typeof table === 'object' && table.schema !== undefined && table.schema !== '' && table.schema !== 'public') {
        throw new BoardinghouseErrors.INVALID_OPTION(`tenant model "${m.name}" must not set a schema (it has "${table.schema}"): the active schema decides`)
      }
      return typeof table === 'string' ? table : table.tableName
    })
    for (const table of this.tenantTables) this.context.tenantTables.add(table)
    return this.tenantTables
  }

  private modelClass (m: string | ModelStatic<Model>): ModelStatic<Model> {
    if (typeof m !== 'string') return m
    const model = this.options.sequelize.models[m]
    if (model === undefined) throw new BoardinghouseErrors.UNKNOWN_MODEL(m)
    return model
  }

  /** The audited models' tables, with the trigger's arguments. */
  auditTargets (): AuditTarget[] {
    const tenant = new Set(this.tenantModelClasses())
    return this.options.auditModels.map((m) => {
      const model = this.modelClass(m)
      const attributes = model.getAttributes() as Record<string, { field?: string, primaryKey?: boolean }>
      const column = (attr: string): string => attributes[attr]?.field ?? attr
      const pk = model.primaryKeyAttributes[0] ?? 'id'
      const repr = this.options.auditRepr[model.name] ?? ['name', 'title', 'username', 'email', 'label'].find((a) => a in attributes) ?? pk
      if (!(repr in attributes)) throw new BoardinghouseErrors.INVALID_OPTION(`auditRepr names "${repr}", not an attribute of model "${model.name}"`)
      const table = model.getTableName() as string | { tableName: string }
      return { model: model.name, table: typeof table === 'string' ? table : table.tableName, tenant: tenant.has(model), pkColumn: column(pk), reprColumn: column(repr) }
    })
  }

  /**
   * Startup checks: every tenant model exists and names no schema, no shared model has a foreign key
   * to a tenant model, and no tenant table exists in public (where a missing schema would fall
   * through to). Throws the first problem found.
   */
  async check (): Promise<void> {
    const { sequelize } = this.options
    const tenantClasses = this.tenantModelClasses()
    const tenantTables = new Set(this.tenantTableNames())
    const tenantNames = new Set(tenantClasses.map((m) => m.name))
    const sharedTables = new Map<string, string>()
    for (const model of Object.values(sequelize.models)) {
      if (tenantClasses.includes(model)) continue
      // A shared model always reaches public, whatever the search_path (tenant first) holds.
      if (typeof model.getTableName() === 'string') pinModelSchema(model, 'public')
      const table = model.getTableName() as string | { tableName: string, schema?: string }
      if (typeof table === 'object' && table.schema === 'public') sharedTables.set(table.tableName, model.name)
      for (const attribute of Object.values(model.getAttributes())) {
        const ref = (attribute as { references?: unknown }).references
        if (ref === undefined || ref === null) continue
        const target = typeof ref === 'string' ? ref : (ref as { model?: unknown }).model
        const targetName = typeof target === 'string'
          ? target
          : typeof target === 'function'
            ? (target as ModelStatic<Model>).name
            : typeof target === 'object' && target !== null ? (target as { tableName?: string }).tableName : undefined
        if (targetName === undefined) continue
        if (tenantTables.has(targetName) || tenantNames.has(targetName)) {
          throw new BoardinghouseErrors.SHARED_REFERENCES_TENANT(model.name, targetName)
        }
      }
    }
    if (tenantTables.size > 0) {
      const found = await runWithSchema(null, async () => await sequelize.query<{ relname: string }>(
        `SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relname IN (:tables) AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1`,
        { replacements: { tables: [...tenantTables] }, type: QueryTypes.SELECT, logging: false }))
      if (found.length > 0) throw new BoardinghouseErrors.TENANT_TABLE_IN_PUBLIC((found[0] as { relname: string }).relname)
    }
    if (sharedTables.size > 0) {
      const shadows = await runWithSchema(null, async () => await sequelize.query<{ relname: string }>(
        `SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = :template AND c.relname IN (:tables) AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1`,
        { replacements: { template: TEMPLATE_SCHEMA, tables: [...sharedTables.keys()] }, type: QueryTypes.SELECT, logging: false }))
      const first = shadows[0]
      if (first !== undefined) throw new BoardinghouseErrors.TEMPLATE_SHADOWS_SHARED(first.relname, sharedTables.get(first.relname) ?? '?')
    }
  }

  // ---------------------------------------------------------------- migrations

  /** Runs shared migrations once, then tenant migrations in the template and every schema that is behind. */
  async migrate (options: MigrateOptions = {}): Promise<MigrateResult> {
    this.tenantModelClasses()
    const result = await this.migrator.migrate(options)
    this.forget()
    await this.changed()
    await this.check()
    return result
  }

  // ---------------------------------------------------------------- schemas

  private async ensureMigrated (connection: RawConnection): Promise<void> {
    const { rows } = await connection.query(
      `SELECT to_regclass('public.${SCHEMA_TABLE}') IS NOT NULL AS registry,
              EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1) AS template`, [TEMPLATE_SCHEMA])
    const row = rows[0] as { registry: boolean, template: boolean } | undefined
    if (row?.registry !== true) throw new BoardinghouseErrors.NOT_MIGRATED(`table public.${SCHEMA_TABLE} is missing`)
    if (row.template !== true) throw new BoardinghouseErrors.NOT_MIGRATED(`schema ${TEMPLATE_SCHEMA} is missing`)
  }

  /**
   * The template's clone DDL: from this process's cache, else from the database's cache table (one
   * row per template version and generator format), else generated from the catalog and stored.
   */
  private async cloneDDL (connection: RawConnection): Promise<CloneCache> {
    if (this.clone !== null) return this.clone
    await this.ensureMigrated(connection)
    if (this.templateDirty) {
      // invalidate(): the stored DDL may predate DDL run directly in the template; a new generation
      // keys a new DDL row (the old one is deleted when it is stored) and makes other processes'
      // clone transactions refuse the DDL they cached.
      await connection.query('UPDATE public.boardinghouse_template_state SET generation = generation + 1')
      this.templateDirty = false
    }
    const { rows } = await connection.query(
      `SELECT v.version || ':' || $1 AS version, d.ddl FROM (${TEMPLATE_VERSION_SQL}) v
       LEFT JOIN public.${TEMPLATE_DDL_TABLE} d ON d.version = v.version || ':' || $1`, [CLONE_FORMAT])
    const row = rows[0] as { version: string, ddl: string | null }
    let ddl = row.ddl
    if (ddl === null) {
      try {
        ddl = await generateCloneDDL(connection)
      } catch (err) {
        throw new BoardinghouseErrors.CLONE_UNSUPPORTED(err instanceof Error ? err.message : String(err), { cause: err })
      }
      await connection.query(
        `WITH stored AS (INSERT INTO public.${TEMPLATE_DDL_TABLE} (version, ddl) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING)
         DELETE FROM public.${TEMPLATE_DDL_TABLE} WHERE version <> $1`, [row.version, ddl])
    }
    // The clone transaction compares the ledger part of the version with the template's current one.
    this.clone = { version: row.version.slice(0, row.version.lastIndexOf(':')), ddl }
    return this.clone
  }

  /**
   * Creates a tenant schema: replays the template's DDL, registers the schema and copies the
   * template's ledger, as one simple-protocol query in one transaction. A failure leaves nothing.
   */
  async createSchema (schema: string, options: CreateSchemaOptions = {}): Promise<SchemaInfo> {
    assertSchemaName(schema)
    const displayName = options.name ?? schema
    if (typeof displayName !== 'string' || displayName.trim() === '') {
      throw new BoardinghouseErrors.INVALID_OPTION(`the display name of schema "${schema}" must be a non-empty string`)
    }
    const { sequelize } = this.options
    const created = await withConnection(sequelize, async (connection): Promise<SchemaInfo> => {
      for (let attempt = 0; ; attempt++) {
        const { version, ddl } = await this.cloneDDL(connection)
        const q = quoteLiteral(schema)
        const sql = [
          'BEGIN',
          `SELECT pg_advisory_xact_lock_shared(${MIGRATION_LOCK_KEY})`,
          `DO $bh$ BEGIN IF (${TEMPLATE_VERSION_SQL}) IS DISTINCT FROM ${quoteLiteral(version)} THEN
             RAISE EXCEPTION 'the template changed since its DDL was read' USING ERRCODE = '${STALE_TEMPLATE_STATE}'; END IF; END $bh$`,
          `CREATE SCHEMA ${quoteIdent(schema)}`,
          `SET LOCAL search_path = ${quoteIdent(schema)}, public`,
          'SET LOCAL check_function_bodies = off',
          renderCloneDDL(ddl, schema),
          'SET LOCAL search_path = public',
          `INSERT INTO public.${SCHEMA_TABLE} (schema_name, name, is_active, created_at, updated_at) VALUES (${q}, ${quoteLiteral(displayName)}, true, now(), now())
             RETURNING schema_name AS "bhCreated", name, is_active, created_at, updated_at`,
          `INSERT INTO public.${TENANT_MIGRATION_TABLE} (schema_name, name, run_at) SELECT ${q}, name, now() FROM public.${TENANT_MIGRATION_TABLE} WHERE schema_name = ${quoteLiteral(TEMPLATE_SCHEMA)}`,
          'COMMIT'
        ].join(';\n')
        try {
          const results = await connection.query(sql) as unknown as Array<{ rows: Array<Record<string, unknown>> }>
          const row = results.flatMap((r) => r.rows).find((r) => r.bhCreated === schema) as
            { bhCreated: string, name: string, is_active: boolean, created_at: Date, updated_at: Date } | undefined
          if (row === undefined) throw new Error('the registry row was not returned')
          return { schema: row.bhCreated, name: row.name, isActive: row.is_active, createdAt: row.created_at, updatedAt: row.updated_at }
        } catch (err) {
          await connection.query('ROLLBACK').catch(() => {})
          const code = (err as { code?: string }).code
          if (code === STALE_TEMPLATE_STATE && attempt === 0) { this.clone = null; continue }
          if (code === '42P06' || code === '23505') throw new BoardinghouseErrors.SCHEMA_EXISTS(schema, { cause: err })
          throw new BoardinghouseErrors.CLONE_FAILED(schema, err instanceof Error ? err.message : String(err), { cause: err })
        }
      }
    })
    await this.changed()
    return created
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
    return [...snapshot.schemas.values()]
      .filter((s) => s.isActive || options.includeInactive === true)
      .sort((a, b) => a.schema < b.schema ? -1 : a.schema > b.schema ? 1 : 0)
  }

  /** Deactivates a schema (soft), or with `drop: true` drops it with its rows, memberships and ledger. */
  async deleteSchema (schema: string, options: DeleteSchemaOptions = {}): Promise<void> {
    assertSchemaName(schema)
    const { sequelize } = this.options
    if (options.drop === true) {
      await withConnection(sequelize, async (connection) => {
        const q = quoteLiteral(schema)
        try {
          const result = await connection.query([
            'BEGIN',
            `DELETE FROM public.${SCHEMA_TABLE} WHERE schema_name = ${q} RETURNING schema_name`,
            `DELETE FROM public.${TENANT_MIGRATION_TABLE} WHERE schema_name = ${q}`,
            `DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`
          ].join(';\n')) as unknown as Array<{ rowCount: number | null }>
          if ((result[1]?.rowCount ?? 0) === 0) {
            await connection.query('ROLLBACK')
            throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(schema)
          }
          await connection.query('COMMIT')
        } catch (err) {
          await connection.query('ROLLBACK').catch(() => {})
          throw err
        }
      })
    } else {
      const updated = await runWithSchema(null, async () => await sequelize.query(
        `UPDATE public.${SCHEMA_TABLE} SET is_active = false, updated_at = now() WHERE schema_name = :schema RETURNING 1 AS updated`,
        { replacements: { schema }, type: QueryTypes.SELECT, logging: false }))
      if (updated.length === 0) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(schema)
    }
    await this.changed()
  }

  /** Reactivates a deactivated schema. */
  async activateSchema (schema: string): Promise<void> {
    assertSchemaName(schema)
    const updated = await runWithSchema(null, async () => await this.options.sequelize.query(
      `UPDATE public.${SCHEMA_TABLE} SET is_active = true, updated_at = now() WHERE schema_name = :schema RETURNING 1 AS updated`,
      { replacements: { schema }, type: QueryTypes.SELECT, logging: false }))
    if (updated.length === 0) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(schema)
    await this.changed()
  }

  // ---------------------------------------------------------------- memberships

  /** Validates a user id against the configured `userIdType`; returns it as sent to the database. */
  normalizeUserId (userId: unknown): string | number {
    return normalizeUserId(userId, this.options.userIdType)
  }

  /** Makes a user a member of a schema (idempotent). */
  async grant (schema: string, userId: UserId): Promise<void> {
    assertSchemaName(schema)
    const id = this.normalizeUserId(userId)
    await runWithSchema(null, async () => {
      const [rows] = await this.options.sequelize.query(
        `INSERT INTO public.${MEMBERSHIP_TABLE} (schema_name, user_id, created_at)
         SELECT schema_name, :id, now() FROM public.${SCHEMA_TABLE} WHERE schema_name = :schema
         ON CONFLICT (schema_name, user_id) DO NOTHING RETURNING 1 AS inserted`,
        { replacements: { schema, id }, logging: false }) as [unknown[], unknown]
      if (rows.length === 0) {
        const exists = await this.options.sequelize.query(`SELECT 1 FROM public.${SCHEMA_TABLE} WHERE schema_name = :schema`,
          { replacements: { schema }, type: QueryTypes.SELECT, logging: false })
        if (exists.length === 0) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(schema)
      }
    })
    await this.changed()
  }

  /** Removes a user's membership; returns false when there was none. */
  async revoke (schema: string, userId: UserId): Promise<boolean> {
    assertSchemaName(schema)
    const id = this.normalizeUserId(userId)
    const removed = await runWithSchema(null, async () => {
      const exists = await this.options.sequelize.query(`SELECT 1 FROM public.${SCHEMA_TABLE} WHERE schema_name = :schema`,
        { replacements: { schema }, type: QueryTypes.SELECT, logging: false })
      if (exists.length === 0) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(schema)
      const deleted = await this.options.sequelize.query(
        `DELETE FROM public.${MEMBERSHIP_TABLE} WHERE schema_name = :schema AND user_id = :id RETURNING 1 AS deleted`,
        { replacements: { schema, id }, type: QueryTypes.SELECT, logging: false })
      return deleted.length
    })
    if (removed > 0) await this.changed()
    return removed > 0
  }

  /** The active schemas a user is a member of, sorted by name. */
  async schemasForUser (userId: UserId): Promise<SchemaInfo[]> {
    const key = userKey(this.normalizeUserId(userId))
    const snapshot = await this.registry.get()
    const names = snapshot.members.get(key) ?? new Set<string>()
    return [...names].map((n) => snapshot.schemas.get(n)).filter((s): s is SchemaInfo => s !== undefined && s.isActive)
      .sort((a, b) => a.schema < b.schema ? -1 : a.schema > b.schema ? 1 : 0)
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

/** Validates a user id for a `userIdType`. */
export function normalizeUserId (userId: unknown, type: UserIdType): string | number {
  switch (type) {
    case 'integer':
    case 'bigint': {
      const text = typeof userId === 'number' ? String(userId) : typeof userId === 'bigint' ? userId.toString() : userId
      if (typeof text !== 'string' || !/^-?[0-9]{1,19}$/.test(text)) throw new BoardinghouseErrors.INVALID_USER_ID(`${describe(userId)} is not an ${type}`)
      if (type === 'integer' && (Number(text) > 2147483647 || Number(text) < -2147483648)) throw new BoardinghouseErrors.INVALID_USER_ID(`${describe(userId)} is out of range for integer`)
      if (type === 'bigint' && (BigInt(text) > 9223372036854775807n || BigInt(text) < -9223372036854775808n)) throw new BoardinghouseErrors.INVALID_USER_ID(`${describe(userId)} is out of range for bigint`)
      return type === 'integer' ? Number(text) : text
    }
    case 'uuid':
      if (typeof userId !== 'string' || !UUID_RE.test(userId)) throw new BoardinghouseErrors.INVALID_USER_ID(`${describe(userId)} is not a uuid`)
      return userId.toLowerCase()
    case 'string':
      if (typeof userId === 'number' && Number.isSafeInteger(userId)) return String(userId)
      if (typeof userId !== 'string' || userId === '' || userId.length > 255 || userId.includes('\u0000')) throw new BoardinghouseErrors.INVALID_USER_ID(`${describe(userId)} is not a non-empty string of at most 255 characters`)
      return userId
  }
}

/** Creates the tenant API for a Sequelize instance. */
export function createBoardinghouse (options: BoardinghouseOptions): Boardinghouse {
  return new Boardinghouse(options)
}
