/**
 * The registry writes: create (clone the template), delete (deactivate or drop), activate, grant
 * and revoke. Each change sends its NOTIFY in its own transaction, so the change and the notice to
 * other processes commit together or not at all; this process's registry is invalidated after the
 * commit.
 */
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize'
import { MEMBERSHIP_TABLE, SCHEMA_TABLE, TENANT_MIGRATION_TABLE, type UserId } from '../models/index.js'
import { STALE_TEMPLATE_STATE, TEMPLATE_VERSION_SQL, renderCloneDDL, type CloneDDLCache } from './clone/index.js'
import { runWithSchema } from './context.js'
import { withConnection, type RawConnection } from './db.js'
import { BoardinghouseErrors } from './errors.js'
import { encodeNotice, type EventKey, type NoticeKind } from './events.js'
import { MIGRATION_LOCK_SHARED_SQL, MIGRATION_RUNNING_STATE, waitWhileMigrating } from './migrator/index.js'
import { TEMPLATE_SCHEMA, assertSchemaName, describe, quoteIdent, quoteLiteral } from './names.js'
import { CHANNEL } from './notify.js'
import { sqlState } from './pg-errors.js'
import type { SchemaInfo, SchemaRegistry } from './registry.js'
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

/** The registry row the creation's INSERT returned (read by its column alias among the message's results). */
function createdRow (results: StatementResults, schema: string): SchemaInfo {
  const row = results.flatMap((r) => r.rows).find((r) => r.bhCreated === schema) as
    { bhCreated: string, name: string, is_active: boolean, created_at: Date, updated_at: Date } | undefined
  if (row === undefined) throw new Error('the registry row was not returned')
  return { schema: row.bhCreated, name: row.name, isActive: row.is_active, createdAt: row.created_at, updatedAt: row.updated_at }
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
    let created: SchemaInfo
    try {
      const hooks = this.deps.createHooks?.() ?? []
      created = hooks.length === 0
        ? await withConnection(this.deps.sequelize, async (connection) => await this.clone(connection, schema, displayName))
        : await this.cloneWithHooks(schema, displayName, hooks)
    } catch (err) {
      if (isBoardinghouseError(err)) throw err
      throw new BoardinghouseErrors.CLONE_FAILED(schema, err instanceof Error ? err.message : String(err), { cause: err })
    }
    this.deps.registry.invalidate()
    this.emit('schemaCreated', { schema: created.schema, name: created.name })
    return created
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
          for (const hook of hooks) {
            try {
              await runWithSchema(schema, async () => { await hook({ schema, name: created.name, transaction, sequelize }) }, { transaction })
            } catch (err) {
              throw new BoardinghouseErrors.CREATE_HOOK_FAILED(schema, err instanceof Error ? err.message : String(err), { cause: err })
            }
          }
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
    const q = quoteLiteral(schema)
    return [
      MIGRATION_LOCK_SHARED_SQL, // waits (outside the statement) for a running migrate
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
      `SELECT ${this.notifySql(this.notice('schemaCreated', { schema, name: displayName }))}`
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
}
