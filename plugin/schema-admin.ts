/**
 * The registry writes: create (clone the template), delete (deactivate or drop), activate, grant
 * and revoke. Each change sends its NOTIFY in its own transaction, so the change and the notice to
 * other processes commit together or not at all; this process's registry is invalidated after the
 * commit.
 */
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize'
import { MEMBERSHIP_TABLE, SCHEMA_TABLE, TENANT_MIGRATION_TABLE, type UserId } from '../models/index.js'
import { STALE_TEMPLATE_STATE, renderCloneDDL, templateVersionCheck, type CloneDDLCache } from './clone/index.js'
import { runWithSchema } from './context.js'
import { withConnection, type RawConnection } from './db.js'
import { BoardinghouseErrors } from './errors.js'
import { encodeNotice, type EventKey, type NoticeKind } from './events.js'
import { MIGRATION_LOCK_SHARED_SQL, MIGRATION_RUNNING_STATE, waitWhileMigrating } from './migrator/index.js'
import { TEMPLATE_SCHEMA, assertSchemaName, describe, quoteIdent, quoteLiteral } from './names.js'
import { CHANNEL } from './notify.js'
import { CLAIMED_CONDITION, claimStatements, readClaim, type PendingPool } from './pending.js'
import { sqlState } from './pg-errors.js'
import { clearMaintenanceOptions, setMaintenanceOptions, type ClearMaintenanceOptions, type MaintenanceBy, type SchemaMaintenance, type SetMaintenanceOptions } from './maintenance.js'
import { maintenanceOf, type SchemaInfo, type SchemaRegistry } from './registry.js'
import { transactionConnection } from './sequelize-internals.js'

export interface CreateSchemaOptions {
  /** Display name; defaults to the schema name. */
  name?: string
}

export interface DeleteSchemaOptions {
  /** Drop the PostgreSQL schema and its rows (and memberships) instead of deactivating it. @default false */
  drop?: boolean
}

/** What a creation hook receives: it runs inside the creation's transaction, with the new schema active. */
export interface CreateHookContext {
  /** The new schema. */
  schema: string
  /** Its display name. */
  name: string
  /** The creation's transaction: queries made in the hook join it even without naming it. */
  transaction: Transaction
  sequelize: Sequelize
}
/** Seeds a new schema inside its creation transaction; a throw (or rejection) rolls the creation back. */
export type CreateHook = (context: CreateHookContext) => Promise<void> | void

/** What a beforeDrop hook receives: the schema about to be dropped (it still exists, with its rows). */
export interface BeforeDropContext {
  schema: string
}
/** Runs before a drop (`deleteSchema(…, { drop: true })`); a throw refuses the drop (FST_BH_DROP_REFUSED). */
export type BeforeDropHook = (context: BeforeDropContext) => Promise<void> | void

type StatementResults = Array<{ rows: Array<Record<string, unknown>> }>

/** Runs a multi-statement simple-protocol message: pg answers with one result per statement. */
async function queryStatements (connection: RawConnection, sql: string): Promise<StatementResults> {
  return await connection.query(sql) as unknown as StatementResults
}

export interface SchemaAdminDeps {
  sequelize: Sequelize
  registry: SchemaRegistry
  clone: CloneDDLCache
  /** The payload of this process's change notices (read at each change). */
  noticeId: () => string
  normalizeUserId: (userId: unknown) => string | number
  /** Emits a change's event in this process, after its commit. */
  emit?: <E extends NoticeKind>(kind: E, key: EventKey<E>) => void
  /** The creation hooks, run in order inside the creation transaction. */
  createHooks?: () => readonly CreateHook[]
  /** The beforeDrop hooks, run in order before a drop. */
  dropHooks?: () => readonly BeforeDropHook[]
  /** The pending schemas (option pendingSchemas): createSchema claims a spare when one is ready. */
  pending?: PendingPool
}

function isBoardinghouseError (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && code.startsWith('FST_BH_')
}

/** The display name of a new schema, validated: request input, so a 400 when it is wrong. */
function displayNameOf (schema: string, options: unknown): string {
  if (typeof options !== 'object' || options === null) {
    throw new BoardinghouseErrors.INVALID_INPUT(`the options of createSchema must be an object, not ${describe(options)}`)
  }
  const name = (options as CreateSchemaOptions).name ?? schema
  if (typeof name !== 'string') throw new BoardinghouseErrors.INVALID_DISPLAY_NAME(schema, `${describe(name)} is not a string`)
  if (name.trim() === '') throw new BoardinghouseErrors.INVALID_DISPLAY_NAME(schema, 'it must not be empty')
  if (name.includes('\u0000')) throw new BoardinghouseErrors.INVALID_DISPLAY_NAME(schema, 'it contains a NUL character')
  return name
}

/** The registry row the creation's INSERT returned (read by its column alias among the message's results), if any. */
function registeredRow (results: StatementResults, schema: string): SchemaInfo | null {
  const row = results.flatMap((r) => r.rows).find((r) => r.bhCreated === schema) as
    { bhCreated: string, name: string, is_active: boolean, created_at: Date, updated_at: Date } | undefined
  if (row === undefined) return null
  return { schema: row.bhCreated, name: row.name, isActive: row.is_active, createdAt: row.created_at, updatedAt: row.updated_at, maintenance: null }
}

function createdRow (results: StatementResults, schema: string): SchemaInfo {
  const row = registeredRow(results, schema)
  if (row === null) throw new Error('the registry row was not returned')
  return row
}

export class SchemaAdmin {
  constructor (private readonly deps: SchemaAdminDeps) {}

  /** `SELECT pg_notify(…)` of this process's notice, for a statement of the change's transaction. */
  private notifySql (payload = this.deps.noticeId()): string {
    return `pg_notify(${quoteLiteral(CHANNEL)}, ${quoteLiteral(payload)})`
  }

  /** The payload of a notice carrying an event (see events.ts). */
  private notice<E extends NoticeKind> (kind: E, key: EventKey<E>): string {
    return encodeNotice(this.deps.noticeId(), kind, key)
  }

  /** Emits a committed change's event in this process (listeners' failures are isolated by the emitter). */
  private emit<E extends NoticeKind> (kind: E, key: EventKey<E>): void {
    this.deps.emit?.(kind, key)
  }

  /** Runs a one-statement change (autocommit: the statement is its transaction) outside any schema. */
  private async change<T extends object> (sql: string, replacements: Record<string, unknown>): Promise<T[]> {
    return await runWithSchema(null, async () => await this.deps.sequelize.query<T>(sql,
      { replacements: { bhChannel: CHANNEL, bhNotice: this.deps.noticeId(), ...replacements }, type: QueryTypes.SELECT, logging: false }))
  }

  /**
   * Tells the other processes of a change that ran in no single transaction (migrate), and drops
   * this process's registry; with an event, the notice carries it and it is emitted here too.
   */
  async announce<E extends NoticeKind> (event?: { kind: E, key: EventKey<E> }): Promise<void> {
    this.deps.registry.invalidate()
    const id = event === undefined ? this.deps.noticeId() : this.notice(event.kind, event.key)
    await runWithSchema(null, async () => await this.deps.sequelize.query('SELECT pg_notify(:channel, :id)',
      { replacements: { channel: CHANNEL, id }, type: QueryTypes.SELECT, logging: false }))
    if (event !== undefined) this.emit(event.kind, event.key)
  }

  /**
   * Creates a tenant schema: replays the template's DDL, registers the schema, copies the
   * template's ledger and sends the notice, as one simple-protocol query in one transaction. A
   * failure leaves nothing, and raises an FST_BH_ error only.
   */
  async createSchema (schema: string, options: CreateSchemaOptions = {}): Promise<SchemaInfo> {
    assertSchemaName(schema)
    const displayName = displayNameOf(schema, options)
    let created: SchemaInfo | null = null
    try {
      const hooks = this.deps.createHooks?.() ?? []
      const pending = this.deps.pending
      if (pending?.enabled === true) created = await this.claim(pending, schema, displayName, hooks)
      created ??= hooks.length === 0
        ? await withConnection(this.deps.sequelize, async (connection) => await this.clone(connection, schema, displayName))
        : await this.cloneWithHooks(schema, displayName, hooks)
    } catch (err) {
      if (isBoardinghouseError(err)) throw err
      throw new BoardinghouseErrors.CLONE_FAILED(schema, err instanceof Error ? err.message : String(err), { cause: err })
    }
    this.deps.registry.invalidate()
    this.emit('schemaCreated', { schema: created.schema, name: created.name })
    this.deps.pending?.schedule()
    return created
  }

  /**
   * Claims a pending schema as `schema` (pending.ts): the claim, then the same registry, ledger and
   * notice statements as a clone, each only if a spare was claimed, in one transaction (with
   * creation hooks, on a Sequelize transaction's connection, the hooks before COMMIT). Null when no
   * spare was ready (what the claim discarded is committed) or the claim failed for another reason
   * than the name (reported): the caller clones.
   */
  private async claim (pending: PendingPool, schema: string, displayName: string, hooks: readonly CreateHook[]): Promise<SchemaInfo | null> {
    const { sequelize } = this.deps
    const statements = [...claimStatements(schema), ...this.registerStatements(schema, displayName, CLAIMED_CONDITION)]
    const outcome = (results: StatementResults): SchemaInfo | null => {
      pending.claimed(readClaim(results.flatMap((r) => r.rows)))
      return registeredRow(results, schema)
    }
    try {
      // invalidate(): the template's generation is bumped first, so spares cloned before it are not claimed
      if (hooks.length === 0) {
        return await withConnection(sequelize, async (connection) => {
          await this.deps.clone.settle(connection)
          try {
            return outcome(await queryStatements(connection, ['BEGIN', ...statements, 'COMMIT'].join(';\n')))
          } catch (err) {
            await connection.query('ROLLBACK').catch(() => {})
            throw err
          }
        })
      }
      await withConnection(sequelize, async (connection) => { await this.deps.clone.settle(connection) })
      return await runWithSchema(schema, async () => await sequelize.transaction(async (transaction) => {
        const created = outcome(await queryStatements(transactionConnection<RawConnection>(transaction), statements.join(';\n')))
        if (created !== null) await this.runCreateHooks(schema, created, hooks, transaction)
        return created
      }))
    } catch (err) {
      if (err instanceof BoardinghouseErrors.CREATE_HOOK_FAILED) throw err
      const code = sqlState(err)
      if (code === '42P06' || code === '23505') throw new BoardinghouseErrors.SCHEMA_EXISTS(schema, { cause: err })
      if (code === MIGRATION_RUNNING_STATE) {
        // a migrate is running: wait for it outside any transaction, then claim again
        await withConnection(sequelize, waitWhileMigrating)
        return await this.claim(pending, schema, displayName, hooks)
      }
      pending.claimFailed(err)
      return null
    }
  }

  /** The creation hooks, in order, with the new schema active and the creation's transaction bound. */
  private async runCreateHooks (schema: string, created: SchemaInfo, hooks: readonly CreateHook[], transaction: Transaction): Promise<void> {
    const { sequelize } = this.deps
    for (const hook of hooks) {
      try {
        await runWithSchema(schema, async () => { await hook({ schema, name: created.name, transaction, sequelize }) }, { transaction })
      } catch (err) {
        throw new BoardinghouseErrors.CREATE_HOOK_FAILED(schema, err instanceof Error ? err.message : String(err), { cause: err })
      }
    }
  }

  /**
   * With creation hooks: the same statements without BEGIN/COMMIT, in one message on the
   * connection of a Sequelize transaction, then each hook with the new schema active and the
   * transaction bound, then COMMIT. A hook's failure rolls it all back (FST_BH_CREATE_HOOK_FAILED).
   */
  private async cloneWithHooks (schema: string, displayName: string, hooks: readonly CreateHook[]): Promise<SchemaInfo> {
    const { sequelize } = this.deps
    for (let attempt = 0; ; attempt++) {
      try {
        // The DDL is read (and cached) outside the creation's transaction: a rollback must not undo what the cache recorded.
        const { version, ddl } = await withConnection(sequelize, async (connection) => await this.deps.clone.get(connection))
        // Opened with the new schema active: the hook's queries (in that schema) may use the transaction.
        return await runWithSchema(schema, async () => await sequelize.transaction(async (transaction) => {
          const connection = transactionConnection<RawConnection>(transaction)
          const results = await queryStatements(connection, this.cloneStatements(schema, displayName, version, ddl).join(';\n'))
          const created = createdRow(results, schema)
          await this.runCreateHooks(schema, created, hooks, transaction)
          return created
        }))
      } catch (err) {
        if (err instanceof BoardinghouseErrors.CREATE_HOOK_FAILED) throw err
        const code = sqlState(err)
        if (code === MIGRATION_RUNNING_STATE) { await withConnection(sequelize, waitWhileMigrating); attempt--; continue }
        if (code === STALE_TEMPLATE_STATE && attempt === 0) { this.deps.clone.forget(); continue }
        if (code === '42P06' || code === '23505') throw new BoardinghouseErrors.SCHEMA_EXISTS(schema, { cause: err })
        throw new BoardinghouseErrors.CLONE_FAILED(schema, err instanceof Error ? err.message : String(err), { cause: err })
      }
    }
  }

  /** The creation's statements, between BEGIN and COMMIT: lock, version check, DDL, registry and ledger rows, notice. */
  private cloneStatements (schema: string, displayName: string, version: string, ddl: Parameters<typeof renderCloneDDL>[0]): string[] {
    return [
      MIGRATION_LOCK_SHARED_SQL, // tried: a running migrate makes it raise, and createSchema waits outside the transaction
      templateVersionCheck(version),
      `CREATE SCHEMA ${quoteIdent(schema)}`,
      `SET LOCAL search_path = ${quoteIdent(schema)}, public`,
      'SET LOCAL check_function_bodies = off',
      renderCloneDDL(ddl, schema),
      'SET LOCAL search_path = public',
      ...this.registerStatements(schema, displayName)
    ]
  }

  /** The registry row (returned by its alias), the ledger rows and the notice of a new schema; with `when`, each only if it holds (a claim). */
  private registerStatements (schema: string, displayName: string, when?: string): string[] {
    const q = quoteLiteral(schema)
    const where = when === undefined ? '' : ` WHERE ${when}`
    return [
      `INSERT INTO public.${SCHEMA_TABLE} (schema_name, name, is_active, created_at, updated_at) SELECT ${q}, ${quoteLiteral(displayName)}, true, now(), now()${where}
         RETURNING schema_name AS "bhCreated", name, is_active, created_at, updated_at`,
      `INSERT INTO public.${TENANT_MIGRATION_TABLE} (schema_name, name, run_at) SELECT ${q}, name, now() FROM public.${TENANT_MIGRATION_TABLE} WHERE schema_name = ${quoteLiteral(TEMPLATE_SCHEMA)}${when === undefined ? '' : ` AND ${when}`}`,
      `SELECT ${this.notifySql(this.notice('schemaCreated', { schema, name: displayName }))}${where}`
    ]
  }

  private async clone (connection: RawConnection, schema: string, displayName: string): Promise<SchemaInfo> {
    for (let attempt = 0; ; attempt++) {
      const { version, ddl } = await this.deps.clone.get(connection)
      const sql = ['BEGIN', ...this.cloneStatements(schema, displayName, version, ddl), 'COMMIT'].join(';\n')
      try {
        const results = await queryStatements(connection, sql)
        return createdRow(results, schema)
      } catch (err) {
        await connection.query('ROLLBACK').catch(() => {})
        const code = sqlState(err)
        if (code === MIGRATION_RUNNING_STATE) { await waitWhileMigrating(connection); attempt--; continue }
        if (code === STALE_TEMPLATE_STATE && attempt === 0) { this.deps.clone.forget(); continue }
        if (code === '42P06' || code === '23505') throw new BoardinghouseErrors.SCHEMA_EXISTS(schema, { cause: err })
        throw new BoardinghouseErrors.CLONE_FAILED(schema, err instanceof Error ? err.message : String(err), { cause: err })
      }
    }
  }

  /** Deactivates a schema (soft), or with `drop: true` drops it with its rows, memberships and ledger. */
  async deleteSchema (schema: string, options: DeleteSchemaOptions = {}): Promise<void> {
    assertSchemaName(schema)
    if (options.drop === true) {
      await this.runDropHooks(schema)
      await withConnection(this.deps.sequelize, async (connection) => {
        const q = quoteLiteral(schema)
        try {
          // The registry row (memberships cascade), the ledger and the notice; the row is read by its column name.
          const results = await queryStatements(connection, [
            'BEGIN',
            `WITH dropped AS (DELETE FROM public.${SCHEMA_TABLE} WHERE schema_name = ${q} RETURNING schema_name),
                  ledger AS (DELETE FROM public.${TENANT_MIGRATION_TABLE} WHERE schema_name IN (SELECT schema_name FROM dropped))
             SELECT schema_name AS "bhDropped", ${this.notifySql(this.notice('schemaDropped', { schema }))} FROM dropped`
          ].join(';\n'))
          if (!results.flatMap((r) => r.rows).some((r) => r.bhDropped === schema)) {
            await connection.query('ROLLBACK')
            throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(schema)
          }
          await connection.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE;\nCOMMIT`)
        } catch (err) {
          await connection.query('ROLLBACK').catch(() => {})
          throw err
        }
      })
      this.deps.registry.invalidate()
      this.emit('schemaDropped', { schema })
    } else {
      const updated = await this.change(
        `WITH updated AS (UPDATE public.${SCHEMA_TABLE} SET is_active = false, updated_at = now() WHERE schema_name = :schema RETURNING 1)
         SELECT pg_notify(:bhChannel, :bhNotice) AS notified FROM updated`, { schema, bhNotice: this.notice('schemaDeactivated', { schema }) })
      if (updated.length === 0) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(schema)
      this.deps.registry.invalidate()
      this.emit('schemaDeactivated', { schema })
    }
  }

  /**
   * The beforeDrop hooks, in order, for an existing schema (FST_BH_SCHEMA_NOT_FOUND otherwise): the
   * first that throws refuses the drop (FST_BH_DROP_REFUSED, its error as the cause), nothing changed.
   */
  private async runDropHooks (schema: string): Promise<void> {
    const hooks = this.deps.dropHooks?.() ?? []
    if (hooks.length === 0) return
    const found = await runWithSchema(null, async () => await this.deps.sequelize.query(
      `SELECT 1 FROM public.${SCHEMA_TABLE} WHERE schema_name = :schema`, { replacements: { schema }, type: QueryTypes.SELECT, logging: false }))
    if (found.length === 0) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(schema)
    for (const hook of hooks) {
      try {
        await hook({ schema })
      } catch (err) {
        throw new BoardinghouseErrors.DROP_REFUSED(schema, err instanceof Error ? err.message : String(err), { cause: err })
      }
    }
  }

  /** Reactivates a deactivated schema. */
  async activateSchema (schema: string): Promise<void> {
    assertSchemaName(schema)
    const updated = await this.change(
      `WITH updated AS (UPDATE public.${SCHEMA_TABLE} SET is_active = true, updated_at = now() WHERE schema_name = :schema RETURNING 1)
       SELECT pg_notify(:bhChannel, :bhNotice) AS notified FROM updated`, { schema, bhNotice: this.notice('schemaActivated', { schema }) })
    if (updated.length === 0) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(schema)
    this.deps.registry.invalidate()
    this.emit('schemaActivated', { schema })
  }

  /** Makes a user a member of a schema (idempotent). */
  async grant (schema: string, userId: UserId): Promise<void> {
    assertSchemaName(schema)
    const id = this.deps.normalizeUserId(userId)
    const key = { schema, userId: String(id) }
    // The notice carries membershipGranted only when the membership is new (a repeated grant changes nothing).
    const found = await this.change<{ inserted: string | number }>(
      `WITH target AS (SELECT schema_name FROM public.${SCHEMA_TABLE} WHERE schema_name = :schema),
            inserted AS (INSERT INTO public.${MEMBERSHIP_TABLE} (schema_name, user_id, created_at)
              SELECT schema_name, :id, now() FROM target ON CONFLICT (schema_name, user_id) DO NOTHING RETURNING 1)
       SELECT pg_notify(:bhChannel, CASE WHEN EXISTS (SELECT 1 FROM inserted) THEN :bhEvent ELSE :bhNotice END) AS notified,
              (SELECT count(*) FROM inserted) AS inserted FROM target`, { schema, id, bhEvent: this.notice('membershipGranted', key) })
    if (found.length === 0) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(schema)
    this.deps.registry.invalidate()
    if (Number(found[0]?.inserted) > 0) this.emit('membershipGranted', key)
  }

  /** Removes a user's membership; returns false when there was none. */
  async revoke (schema: string, userId: UserId): Promise<boolean> {
    assertSchemaName(schema)
    const id = this.deps.normalizeUserId(userId)
    const [row] = await this.change<{ found: boolean, deleted: string | number }>(
      `WITH target AS (SELECT 1 FROM public.${SCHEMA_TABLE} WHERE schema_name = :schema),
            deleted AS (DELETE FROM public.${MEMBERSHIP_TABLE} WHERE schema_name = :schema AND user_id = :id AND EXISTS (SELECT 1 FROM target) RETURNING 1)
       SELECT EXISTS (SELECT 1 FROM target) AS found, (SELECT count(*) FROM deleted) AS deleted,
              CASE WHEN EXISTS (SELECT 1 FROM deleted) THEN pg_notify(:bhChannel, :bhNotice) END AS notified`,
      { schema, id, bhNotice: this.notice('membershipRevoked', { schema, userId: String(id) }) })
    if (row?.found !== true) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(schema)
    const removed = Number(row.deleted) > 0
    if (removed) {
      this.deps.registry.invalidate()
      this.emit('membershipRevoked', { schema, userId: String(id) })
    }
    return removed
  }

  // ---------------------------------------------------------------- maintenance mode (maintenance.ts)

  /**
   * Puts a schema in maintenance (or changes its retryAfter), in one statement with its notice: the
   * registry row is locked, updated and the NOTIFY sent in the same transaction. `since` is kept
   * when the schema already was in maintenance; a 'migrate' set leaves a 'manual' maintenance as it
   * is (the result says `by: 'manual'`). Emits maintenanceStarted when the schema entered
   * maintenance. Resolves to the state after the change.
   */
  async setMaintenance (schema: string, options: SetMaintenanceOptions = {}): Promise<SchemaMaintenance> {
    assertSchemaName(schema)
    const { retryAfter, by } = setMaintenanceOptions(options)
    const started = { schema, retryAfter, by }
    const [row] = await this.change<{ since: Date, retryAfter: number | null, by: MaintenanceBy, entered: boolean }>(
      `WITH target AS (SELECT schema_name, maintenance_by FROM public.${SCHEMA_TABLE} WHERE schema_name = :schema FOR NO KEY UPDATE),
            updated AS (
              UPDATE public.${SCHEMA_TABLE} s SET
                maintenance_since = CASE WHEN target.maintenance_by IS NULL THEN now() ELSE s.maintenance_since END,
                maintenance_retry_after = CASE WHEN target.maintenance_by = 'manual' AND :by = 'migrate' THEN s.maintenance_retry_after ELSE CAST(:retryAfter AS integer) END,
                maintenance_by = CASE WHEN target.maintenance_by = 'manual' THEN 'manual' ELSE :by END
              FROM target WHERE s.schema_name = target.schema_name
              RETURNING s.maintenance_since, s.maintenance_retry_after, s.maintenance_by, target.maintenance_by IS NULL AS entered)
       SELECT maintenance_since AS since, maintenance_retry_after AS "retryAfter", maintenance_by AS by, entered,
              pg_notify(:bhChannel, CASE WHEN entered THEN :bhEvent ELSE :bhNotice END) AS notified FROM updated`,
      { schema, retryAfter, by, bhEvent: this.notice('maintenanceStarted', started) })
    if (row === undefined) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(schema)
    this.deps.registry.invalidate()
    if (row.entered) this.emit('maintenanceStarted', started)
    const state = maintenanceOf({ maintenance_since: row.since, maintenance_retry_after: row.retryAfter, maintenance_by: row.by })
    if (state === null) throw new Error('the maintenance state was not returned')
    return state
  }

  /**
   * Ends a schema's maintenance, in one statement with its notice. `by: 'manual'` (the default)
   * ends any maintenance, `by: 'migrate'` only one that 'migrate' set. Resolves to whether a
   * maintenance ended (false: there was none, or a 'manual' one that 'migrate' may not end); emits
   * maintenanceEnded (with the `by` of the maintenance that ended) when one did.
   */
  async clearMaintenance (schema: string, options: ClearMaintenanceOptions = {}): Promise<boolean> {
    assertSchemaName(schema)
    const { by } = clearMaintenanceOptions(options)
    const [row] = await this.change<{ found: boolean, ended: MaintenanceBy | null }>(
      `WITH target AS (SELECT schema_name, maintenance_by FROM public.${SCHEMA_TABLE} WHERE schema_name = :schema FOR NO KEY UPDATE),
            cleared AS (
              UPDATE public.${SCHEMA_TABLE} s SET maintenance_since = NULL, maintenance_retry_after = NULL, maintenance_by = NULL
              FROM target WHERE s.schema_name = target.schema_name AND target.maintenance_by IS NOT NULL AND (:by = 'manual' OR target.maintenance_by = :by)
              RETURNING target.maintenance_by AS ended)
       SELECT EXISTS (SELECT 1 FROM target) AS found, (SELECT ended FROM cleared) AS ended,
              CASE (SELECT ended FROM cleared) WHEN 'manual' THEN pg_notify(:bhChannel, :bhEndedManual) WHEN 'migrate' THEN pg_notify(:bhChannel, :bhEndedMigrate) END AS notified`,
      { schema, by, bhEndedManual: this.notice('maintenanceEnded', { schema, by: 'manual' }), bhEndedMigrate: this.notice('maintenanceEnded', { schema, by: 'migrate' }) })
    if (row?.found !== true) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(schema)
    if (row.ended === null) return false
    this.deps.registry.invalidate()
    this.emit('maintenanceEnded', { schema, by: row.ended })
    return true
  }
}
