/**
 * The tenant context: an AsyncLocalStorage store holding the active schema, and the Sequelize hooks
 * that make every query run with `search_path` = that schema, public (DESIGN.md §1).
 *
 * The SET travels in the same simple-protocol message as the query (Sequelize's `searchPath`
 * prepend), so no per-connection state can go stale. Queries with bind parameters (extended
 * protocol, one statement only) and, outside a transaction, statements Sequelize marks
 * `supportsSearchPath: false` and every query of an online migration (`separateSearchPath`) get a
 * separate SET on their connection first; COMMIT and ROLLBACK get none.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { QueryTypes, type Model, type ModelStatic, type Sequelize, type Transaction } from 'sequelize'
import type { UserIdType } from '../models/index.js'
import { noteSchemaServed } from './db.js'
import { BoardinghouseErrors } from './errors.js'
import { INVALID_SCHEMA_NAME, UNDEFINED_TABLE, isUndefinedTable, sqlState } from './pg-errors.js'
import { quoteIdent, quoteLiteral } from './names.js'
import { asPgQuery, asQueryOptions, convertQueryErrors, transactionSequelize, wrapQueryAndTransaction, type PgQueryLike, type TransactionMethod } from './sequelize-internals.js'

export interface TenantStore {
  /** The active schema, or null for none (public only). A request's store changes on activate(). */
  schema: string | null
  /** The `search_path` value for this schema, quoted, precomputed once. */
  searchPath: string
  /** The user on whose behalf code runs, if known (audit log, permission checks). */
  userId?: string | number | null
  /** A transaction that queries in this context join when they name none (migrations). */
  readonly transaction?: Transaction
  /** The request id, when the context is a request's. */
  readonly requestId?: string
  /**
   * Outside a transaction, every query gets its `SET search_path` in a message of its own, sent on
   * its connection first: an online migration's (CREATE INDEX CONCURRENTLY cannot run in the
   * implicit transaction block of a multi-statement message).
   */
  readonly separateSearchPath?: boolean
}

/** Points a store at another schema (the request layer's activate/deactivate). */
export function setStoreSchema (store: TenantStore, schema: string | null): void {
  store.schema = schema
  store.searchPath = searchPathFor(schema)
}

/**
 * How queries with bind parameters get their path: 'set' sends `SET search_path` on their
 * connection first (one extra round trip); 'transaction' wraps them, outside a transaction, in
 * `BEGIN; SET LOCAL ...` / `COMMIT` (two extra round trips), which stays correct behind PgBouncer
 * in transaction-pooling mode, where a session SET may land on another server connection.
 */
export type BindPathMode = 'set' | 'transaction'

/**
 * The options that belong to a Sequelize instance, not to one Boardinghouse on it: the query hooks,
 * the models, the registry and the audit triggers are one per instance. Every Boardinghouse on the
 * instance sees the same values (README, Options).
 */
export interface InstanceSettings {
  bindPath: BindPathMode
  auditModels: ReadonlyArray<string | ModelStatic<Model>>
  auditRepr: Readonly<Record<string, string>>
  /** Fixed by the first Boardinghouse even when defaulted: it defines the membership model. */
  userIdType: UserIdType
  /** Fixed by the first Boardinghouse even when defaulted: it builds the shared registry. */
  cacheTtl: number
}

const INSTANCE_SETTING_KEYS = ['bindPath', 'auditModels', 'auditRepr', 'userIdType', 'cacheTtl'] as const satisfies ReadonlyArray<keyof InstanceSettings>
type InstanceSettingKey = typeof INSTANCE_SETTING_KEYS[number]
/** Settings the first Boardinghouse fixes whether it gives them or not. */
const FIXED_AT_FIRST = new Set<InstanceSettingKey>(['userIdType', 'cacheTtl'])

/** Per-Sequelize-instance state: the one owner of what every Boardinghouse on the instance shares. */
export interface ContextState {
  /** Tables of tenant models: a missing-table error for one of them, with no schema, becomes FST_BH_NO_SCHEMA. */
  tenantTables: Set<string>
  /** The settings in force; null until a Boardinghouse claims them (see shareInstanceSettings). */
  settings: InstanceSettings | null
  /** Which settings some Boardinghouse gave (or fixed): a later one must agree with them. */
  readonly claimed: Set<InstanceSettingKey>
  bindPath: BindPathMode
  /** Also set `boardinghouse.user_id` and `boardinghouse.request_id` (read by the audit trigger) with every query. */
  audit: boolean
  /** Distinct tenant schemas a pooled connection may serve before it is recycled (db.ts); Infinity: not counted. */
  maxSchemasPerConnection: number
  /** Called when a query failed because its schema no longer exists (dropped behind the cache): invalidates the registry. */
  onSchemaGone?: (schema: string) => void
}

/**
 * The settings after `SET search_path TO`: the path, then the audit context when audit is on
 * (always set, never left stale). The audit values are `SET LOCAL`: they last for the query's own
 * message (its implicit transaction) or for the enclosing transaction, so that nothing run on the
 * connection later (a load on a raw pool connection) inherits them. With `session` they are set
 * for the session instead: a bind query outside a transaction gets its settings in a message of
 * its own, where a `SET LOCAL` would end with that message before the query runs; every raw
 * connection write path (loadData) sets its own values.
 */
function settings (state: ContextState, store: TenantStore | undefined, session: boolean): string {
  const path = store?.searchPath ?? PUBLIC_SEARCH_PATH
  if (!state.audit) return path
  const set = session ? 'SET' : 'SET LOCAL'
  return `${path}; ${auditSettings(store, set)}`
}

/** `SET [LOCAL] boardinghouse.user_id …; … request_id …` for a context (empty strings when unknown). */
export function auditSettings (store: TenantStore | undefined, set: 'SET' | 'SET LOCAL' = 'SET LOCAL'): string {
  const user = store?.userId === undefined || store.userId === null ? '' : String(store.userId)
  return `${set} boardinghouse.user_id TO ${quoteLiteral(user)}; ${set} boardinghouse.request_id TO ${quoteLiteral(store?.requestId ?? '')}`
}

export const PUBLIC_SEARCH_PATH = 'public'

export const tenantStorage = new AsyncLocalStorage<TenantStore>()

/** search_path values by schema name, computed once (bounded: cleared past SEARCH_PATHS_MAX names). */
const searchPaths = new Map<string, string>()
const SEARCH_PATHS_MAX = 100_000

export function searchPathFor (schema: string | null): string {
  if (schema === null) return PUBLIC_SEARCH_PATH
  let path = searchPaths.get(schema)
  if (path === undefined) {
    path = `${quoteIdent(schema)}, public`
    if (searchPaths.size >= SEARCH_PATHS_MAX) searchPaths.clear()
    searchPaths.set(schema, path)
  }
  return path
}

export function storeFor (schema: string | null, extra: Omit<TenantStore, 'schema' | 'searchPath'> = {}): TenantStore {
  return { schema, searchPath: searchPathFor(schema), ...extra }
}

/** The active schema in this async context, or null. */
export function currentSchema (): string | null {
  return tenantStorage.getStore()?.schema ?? null
}

const STATE = Symbol.for('fastify-boardinghouse.context-state')
const transactionSchemas = new WeakMap<object, string | null>()
/** Queries for which the hook opened a transaction (bindPath 'transaction'): afterQuery commits it. */
const openedForBind = new WeakSet<object>()

/** undefined_table or invalid_schema_name: what a query in a dropped schema fails with. */
function missingRelationOrSchema (err: unknown): boolean {
  const code = sqlState(err)
  return code === UNDEFINED_TABLE || code === INVALID_SCHEMA_NAME
}

function missingTenantTable (err: unknown, state: ContextState): string | null {
  if (!isUndefinedTable(err)) return null
  const e = err as { original?: { message?: string }, parent?: { message?: string } }
  const match = /relation "([^"]+)" does not exist/.exec((e.original ?? e.parent)?.message ?? '')
  const relation = match?.[1]?.replace(/^public\./, '')
  return relation !== undefined && state.tenantTables.has(relation) ? relation : null
}

/**
 * What a failed query reports: a missing tenant table with no schema active is FST_BH_NO_SCHEMA; a
 * missing relation or schema in a schema that is gone from the database (dropped after the request
 * was resolved from the cache, before the change notice came) is FST_BH_SCHEMA_NOT_FOUND, and drops
 * the registry; anything else is the error itself. Runs inside the failed query's `run()`, on its
 * connection (see convertQueryErrors).
 */
async function convertError (query: PgQueryLike, err: unknown, state: ContextState): Promise<unknown> {
  const schema = tenantStorage.getStore()?.schema ?? null
  const table = schema === null ? missingTenantTable(err, state) : null
  if (table !== null) return new BoardinghouseErrors.NO_SCHEMA(`"${table}" is a tenant table and exists only in tenant schemas`, { cause: err })
  if (schema !== null && missingRelationOrSchema(err) && await schemaGone(query, schema)) {
    state.onSchemaGone?.(schema)
    return new BoardinghouseErrors.SCHEMA_NOT_FOUND(schema, { cause: err })
  }
  return err
}

/**
 * Whether `schema` is gone from the database. Asked on the failed query's own connection when it is
 * in no transaction (no pool slot needed: the query still holds its connection), else on another
 * one, outside any transaction (the failed one is aborted).
 */
async function schemaGone (query: PgQueryLike, schema: string): Promise<boolean> {
  const sql = 'SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1'
  try {
    if ((query.options.transaction ?? null) === null && !openedForBind.has(query)) {
      return (await query.connection.query(sql, [schema])).rows.length === 0
    }
    const rows = await query.sequelize.query(sql, { bind: [schema], type: QueryTypes.SELECT, transaction: null, logging: false })
    return rows.length === 0
  } catch {
    return false // cannot tell: keep the original error
  }
}

/**
 * Migrations run each schema in one transaction, and the queries their code makes without naming
 * one must join it. While at least one context carries a transaction (runWithSchema with
 * `transaction`) on an instance, its `sequelize.query` and `sequelize.transaction` are wrapped to
 * join the context's transaction when the call names none (on this instance only:
 * Sequelize.useCLS would be global to every instance in the process); the wrappers are removed
 * when the last such context ends, so the request path never runs through them.
 */
async function sent (query: Promise<unknown>): Promise<void> {
  await query
}

interface Join { contexts: number, remove: () => void }
const joins = new WeakMap<Sequelize, Join>()

function enterTransactionContext (sequelize: Sequelize): () => void {
  let join = joins.get(sequelize)
  if (join === undefined) {
    const remove = wrapQueryAndTransaction(sequelize, {
      query: (original) => async function query (sql: unknown, options?: Record<string, unknown>) {
        const transaction = tenantStorage.getStore()?.transaction
        if (transaction !== undefined && (options === undefined || options.transaction === undefined)) {
          return await original(sql, { ...options, transaction })
        }
        return await original(sql, options)
      },
      transaction: (original: TransactionMethod) => function transaction (...args: unknown[]) {
        const outer = tenantStorage.getStore()?.transaction
        if (outer === undefined) return original(...args)
        if (typeof args[0] === 'function') return original({ transaction: outer }, args[0])
        const options = (args[0] ?? {}) as Record<string, unknown>
        if (options.transaction !== undefined) return original(...args)
        return original({ ...options, transaction: outer }, ...args.slice(1))
      }
    })
    join = { contexts: 0, remove }
    joins.set(sequelize, join)
  }
  const entered: Join = join
  entered.contexts += 1
  let left = false
  return () => {
    if (left) return
    left = true
    entered.contexts -= 1
    if (entered.contexts === 0) {
      entered.remove()
      joins.delete(sequelize)
    }
  }
}

/** Whether `sequelize.query` is wrapped to join context transactions now (tests). */
export function joiningTransactions (sequelize: Sequelize): boolean {
  return joins.has(sequelize)
}

/**
 * Installs the query hooks on a Sequelize instance, once (safe to call again): beforeQuery sets the
 * path, afterQuery ends a transaction opened for a bind query, and failed queries are converted
 * (convertError).
 */
export function installContextHooks (sequelize: Sequelize): ContextState {
  const marked = sequelize as Sequelize & { [STATE]?: ContextState }
  const existing = marked[STATE]
  if (existing !== undefined) return existing
  const state: ContextState = { tenantTables: new Set(), settings: null, claimed: new Set(), bindPath: 'set', audit: false, maxSchemasPerConnection: Infinity }
  marked[STATE] = state

  // Both hooks are plain functions that return a promise only when they send something: Sequelize's
  // runHooks awaits each hook's result, and awaiting undefined costs no promise of the hook's own.
  sequelize.addHook('beforeQuery', 'boardinghouse:searchPath', function setSearchPath (options: object, query: unknown): Promise<void> | undefined {
    const q = asPgQuery(query)
    const opts = asQueryOptions(options)
    const store = tenantStorage.getStore()
    const schema = store?.schema ?? null
    if (schema !== null && state.maxSchemasPerConnection !== Infinity) noteSchemaServed(q.connection, schema, state.maxSchemasPerConnection)
    const transaction = opts.transaction ?? undefined
    if (transaction !== undefined) {
      const opened = transactionSchemas.get(transaction)
      if (opened === undefined) {
        transactionSchemas.set(transaction, schema)
      } else if (opened !== schema) {
        throw new BoardinghouseErrors.TRANSACTION_SCHEMA_MISMATCH(opened ?? 'public', schema ?? 'public')
      }
    }
    if (opts.completesTransaction === true) {
      // COMMIT / ROLLBACK: nothing to resolve, and a SET in an aborted transaction would fail.
      q.options.searchPath = undefined
      return undefined
    }
    const separate = store?.separateSearchPath === true && transaction === undefined
    if (opts.bind === undefined && !separate && (opts.supportsSearchPath !== false || transaction !== undefined)) {
      // The common path: the SET travels in the query's own message. Inside a transaction also for
      // statements flagged `supportsSearchPath: false` (addIndex): the transaction is a block already
      // (CONCURRENTLY cannot run there either way), so a SET of their own would be a wasted round trip.
      q.options.searchPath = settings(state, store, false)
      return undefined
    }
    q.options.searchPath = undefined
    if (opts.bind !== undefined && state.bindPath === 'transaction' && transaction === undefined && !separate) {
      openedForBind.add(q)
      return sent(q.connection.query(`BEGIN; SET LOCAL search_path TO ${settings(state, store, false)}`))
    }
    // Extended protocol (bind) allows one statement per message, and statements Sequelize flags
    // `supportsSearchPath: false` (addIndex: CREATE INDEX CONCURRENTLY), like every statement of an
    // online migration, cannot run in the implicit transaction of a multi-statement message: set
    // the path on the connection first.
    return sent(q.connection.query(`SET search_path TO ${settings(state, store, transaction === undefined)}`))
  })

  sequelize.addHook('afterQuery', 'boardinghouse:bindTransaction', function endBindTransaction (_options: object, query: unknown): Promise<void> | undefined {
    if (!openedForBind.has(query as object)) return undefined
    openedForBind.delete(query as object)
    // COMMIT ends an aborted transaction too (as a rollback).
    return sent(asPgQuery(query).connection.query('COMMIT'))
  })

  convertQueryErrors(sequelize, async (query, err) => { throw await convertError(query, err, state) })
  return state
}

/** A comparable rendering of a setting (models by name, lists and records sorted). */
function settingKey (key: InstanceSettingKey, value: unknown): string {
  if (key === 'auditModels') return JSON.stringify((value as InstanceSettings['auditModels']).map((m) => typeof m === 'string' ? m : m.name).sort())
  if (key === 'auditRepr') return JSON.stringify(Object.entries(value as Record<string, string>).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))
  return JSON.stringify(value)
}

/**
 * Makes a Boardinghouse's resolved options use the settings of its Sequelize instance. The first
 * Boardinghouse on an instance fixes the settings it gives (`raw` holds them, not undefined) and
 * userIdType and cacheTtl always; a later one shares what is in force, may fix a setting left at its
 * default, and fails with FST_BH_SETTINGS_CONFLICT (changing nothing) when it gives a value that
 * differs from a fixed one. Returns `resolved` with getters for the shared settings, so that every
 * instance reads the values in force.
 */
export function shareInstanceSettings<O extends InstanceSettings & { sequelize: Sequelize }> (raw: object, resolved: O): O {
  const state = installContextHooks(resolved.sequelize)
  const given = raw as Partial<Record<InstanceSettingKey, unknown>>
  const first = state.settings === null
  const settings: InstanceSettings = state.settings ?? { ...pickSettings(resolved) }
  const claim: InstanceSettingKey[] = []
  for (const key of INSTANCE_SETTING_KEYS) {
    const gives = given[key] !== undefined || (first && FIXED_AT_FIRST.has(key))
    if (!gives) continue
    if (state.claimed.has(key)) {
      if (settingKey(key, settings[key]) !== settingKey(key, resolved[key])) {
        throw new BoardinghouseErrors.SETTINGS_CONFLICT(key, settingKey(key, settings[key]), settingKey(key, resolved[key]))
      }
    } else {
      claim.push(key)
    }
  }
  // Checked everything first: a conflict leaves the state as it was.
  for (const key of claim) {
    Object.assign(settings, { [key]: resolved[key] })
    state.claimed.add(key)
  }
  state.settings = settings
  state.bindPath = settings.bindPath
  state.audit = settings.auditModels.length > 0
  const shared = { ...resolved }
  for (const key of INSTANCE_SETTING_KEYS) {
    Object.defineProperty(shared, key, { get: () => (state.settings as InstanceSettings)[key], enumerable: true })
  }
  return shared
}

function pickSettings (o: InstanceSettings): InstanceSettings {
  return { bindPath: o.bindPath, auditModels: o.auditModels, auditRepr: o.auditRepr, userIdType: o.userIdType, cacheTtl: o.cacheTtl }
}

/**
 * Runs `fn` with `schema` active (no existence check here: callers check the registry first). With
 * `extra.transaction`, the queries made in `fn` without a transaction join that one, until `fn`
 * (or the promise it returns) ends.
 */
export function runWithSchema<T> (schema: string | null, fn: () => T, extra: Omit<TenantStore, 'schema' | 'searchPath'> = {}): T {
  const outer = tenantStorage.getStore()
  const store = storeFor(schema, { userId: outer?.userId, ...extra })
  if (extra.transaction === undefined) return tenantStorage.run(store, fn)
  const leave = enterTransactionContext(transactionSequelize(extra.transaction))
  let result: T
  try {
    result = tenantStorage.run(store, fn)
  } catch (err) {
    leave()
    throw err
  }
  if (result instanceof Promise) return result.finally(leave) as T
  leave()
  return result
}
