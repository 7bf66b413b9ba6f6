/**
 * Every place the library reaches into Sequelize 6 internals (not in its public types), gathered
 * here and pinned, one test per internal, by test/sequelize-internals.test.ts: an upgrade that
 * changes one fails there by name. Nothing else in plugin/ casts a Sequelize object.
 */
import type { Model, ModelStatic, QueryInterface, Sequelize, Transaction } from 'sequelize'

// ---------------------------------------------------------------- connections and the pool

/** A node-postgres client as Sequelize's connection manager hands it out (a pg.Client). */
export interface PgClient {
  query: (sql: string, params?: unknown[]) => Promise<{ rows: Array<Record<string, unknown>>, rowCount: number | null }>
  on: (event: string, listener: (arg: unknown) => void) => unknown
  removeAllListeners: (event?: string) => unknown
}

/** `sequelize.connectionManager` (lib/dialects/postgres/connection-manager.js). */
export interface ConnectionManagerLike {
  /** A connection from the pool. */
  getConnection: (options?: object) => Promise<PgClient>
  releaseConnection: (connection: PgClient) => Promise<void> | void
  /** A new connection outside the pool, with the instance's settings (`sequelize.config`). */
  connect: (config: object) => Promise<PgClient>
  disconnect: (connection: PgClient) => Promise<void>
  /** Removes a connection from the pool and closes it. */
  destroyConnection?: (connection: PgClient) => Promise<void>
}

/** The part of sequelize-pool's Pool the library uses. */
export interface SequelizePoolLike {
  /** Uses after which a released connection is closed (sequelize-pool reads it on each release); Infinity for never. */
  maxUsesPerResource?: number
  /** The factory the pool was built with: `validate` is asked before an idle connection is handed out again (false: destroyed). */
  _factory?: { validate?: (resource: unknown) => boolean }
}

/**
 * Makes `pool` refuse (close) an idle connection for which `retire(connection)` is true when it
 * would hand it out again, on top of Sequelize's own validate. False when the pool has no factory
 * validate to wrap (sequelize-pool changed).
 */
export function wrapPoolValidate (pool: SequelizePoolLike, retire: (resource: unknown) => boolean): boolean {
  const factory = pool._factory
  const original = factory?.validate
  if (factory === undefined || typeof original !== 'function') return false
  factory.validate = function validateNotRetired (resource: unknown): boolean {
    return !retire(resource) && original.call(factory, resource)
  }
  return true
}

interface SequelizeInternal {
  connectionManager: ConnectionManagerLike & { pool?: SequelizePoolLike & { read?: SequelizePoolLike, write?: SequelizePoolLike } }
  config: { pool?: { max?: number, maxUses?: number } }
  dialect: { Query: PgQueryClass }
}

function internal (sequelize: Sequelize): SequelizeInternal {
  return sequelize as unknown as SequelizeInternal
}

export function connectionManager (sequelize: Sequelize): ConnectionManagerLike {
  return internal(sequelize).connectionManager
}

/** `sequelize.config`: what `connectionManager.connect` takes to open a connection like the pool's. */
export function connectionConfig (sequelize: Sequelize): object {
  return internal(sequelize).config
}

/** The `pool` options the instance was built with (`sequelize.config.pool`). */
export function poolOptions (sequelize: Sequelize): { max?: number, maxUses?: number } {
  return internal(sequelize).config.pool ?? {}
}

/** The sequelize-pool pools behind the connection manager: read and write with replication, else the one. */
export function pools (sequelize: Sequelize): SequelizePoolLike[] {
  const pool = internal(sequelize).connectionManager.pool
  if (pool === undefined) return []
  return pool.read !== undefined && pool.write !== undefined ? [pool.read, pool.write] : [pool]
}

/** The pool writes go to (the only one without replication). */
export function writePool (sequelize: Sequelize): SequelizePoolLike | undefined {
  const pool = internal(sequelize).connectionManager.pool
  return pool?.write ?? pool
}

// ---------------------------------------------------------------- queries

/**
 * The postgres dialect's Query object (lib/dialects/postgres/query.js) that `beforeQuery` and
 * `afterQuery` hooks receive as their second argument: `options` is its own copy of the query's
 * options, read by `run()` (which prepends `SET search_path TO <options.searchPath>;` when set);
 * `connection` is the pg client the query runs on.
 */
export interface PgQueryLike {
  options: { searchPath?: string, supportsSearchPath?: boolean, transaction?: Transaction | null }
  connection: PgClient
  sequelize: Sequelize
}

/** The options `beforeQuery` receives (first argument); `completesTransaction` marks COMMIT/ROLLBACK. */
export interface QueryOptionsLike {
  bind?: unknown
  supportsSearchPath?: boolean
  completesTransaction?: boolean
  transaction?: Transaction | null
}

export function asPgQuery (query: unknown): PgQueryLike {
  return query as PgQueryLike
}

export function asQueryOptions (options: object): QueryOptionsLike {
  return options as QueryOptionsLike
}

/** The dialect's Query class, as `sequelize.query` instantiates it (`new sequelize.dialect.Query(connection, sequelize, options)`). */
export type PgQueryClass = new (connection: PgClient, sequelize: Sequelize, options: object) => PgQueryObject

interface PgQueryObject extends PgQueryLike {
  run (sql: string, parameters?: unknown[]): Promise<unknown>
}

/** The query generator behind a queryInterface; its `options.schema` is the default schema of the SQL it writes. */
export function queryGeneratorOf (queryInterface: QueryInterface): { options: object } {
  return (queryInterface as unknown as { queryGenerator: { options: object } }).queryGenerator
}

/** The Sequelize instance a transaction belongs to (`transaction.sequelize`). */
/** A Sequelize transaction's pg client (`transaction.connection`): for a creation hook's raw SQL in the same transaction. */
export function transactionConnection<C> (transaction: Transaction): C {
  const connection = (transaction as unknown as { connection?: C }).connection
  if (connection === undefined) throw new Error('the transaction has no connection')
  return connection
}

export function transactionSequelize (transaction: Transaction): Sequelize {
  return (transaction as unknown as { sequelize: Sequelize }).sequelize
}

/**
 * Makes every query of this instance (only) go through `onError` when it fails: replaces
 * `sequelize.dialect.Query` (per instance: the dialect object is the instance's own) with a subclass
 * whose `run()` hands a failure to `onError`, which throws the error to report. Sequelize
 * instantiates that class for every query (`new this.dialect.Query(connection, this, options)` in
 * `sequelize.query`); `run()` is where the SQL is sent, inside the retry and before the connection
 * is released (afterQuery runs after it, in a `finally`: a hook cannot see nor replace the error,
 * and a throwing afterQuery would skip the connection's release). Nothing on `Sequelize.prototype`
 * or on the instance's `query` is touched, so a later patch of those (APM tracing) still sees
 * every query.
 */
export function convertQueryErrors (sequelize: Sequelize, onError: (query: PgQueryLike, err: unknown) => Promise<never>): void {
  const dialect = internal(sequelize).dialect
  const Base = dialect.Query
  class BoardinghouseQuery extends Base {
    override async run (sql: string, parameters?: unknown[]): Promise<unknown> {
      try {
        return await super.run(sql, parameters)
      } catch (err) {
        return await onError(this, err)
      }
    }
  }
  dialect.Query = BoardinghouseQuery
}

export type QueryMethod = (sql: unknown, options?: Record<string, unknown>) => Promise<unknown>
export type TransactionMethod = (...args: unknown[]) => Promise<unknown>

/**
 * Replaces `sequelize.query` and `sequelize.transaction` on this instance (own properties, not the
 * prototype's: other instances are not touched) with what `wrap` builds from the current ones, until
 * the returned function is called: it restores what was there (when nothing replaced the wrappers
 * since; otherwise they stay, and pass through).
 */
export function wrapQueryAndTransaction (sequelize: Sequelize, wrap: { query: (original: QueryMethod) => QueryMethod, transaction: (original: TransactionMethod) => TransactionMethod }): () => void {
  const methods = sequelize as unknown as Record<'query' | 'transaction', QueryMethod | TransactionMethod>
  const restore: Array<() => void> = []
  for (const name of ['query', 'transaction'] as const) {
    const own = Object.getOwnPropertyDescriptor(methods, name)
    const current = methods[name]
    const bound = current.bind(sequelize) as QueryMethod & TransactionMethod
    const wrapper = name === 'query' ? wrap.query(bound) : wrap.transaction(bound)
    methods[name] = wrapper
    restore.push(() => {
      if (methods[name] !== wrapper) return
      if (own === undefined) delete (methods as Partial<typeof methods>)[name]
      else Object.defineProperty(methods, name, own)
    })
  }
  return () => { for (const r of restore) r() }
}

// ---------------------------------------------------------------- models

/**
 * Makes every query of `model` name its table schema-qualified (`"public"."plans"`), as if it had
 * been defined with `{ schema }`: sets the `_schema` Sequelize 6 reads in `getTableName()`
 * (QueryGenerator.addSchema) and `options.schema`. Done in place: `Model.schema()` would return a
 * copy that the app's own references do not use.
 */
export function pinModelSchema (model: ModelStatic<Model>, schema: string): void {
  const m = model as unknown as { _schema?: string, _schemaDelimiter?: string, options: { schema?: string, schemaDelimiter?: string } }
  m._schema = schema
  m._schemaDelimiter ??= ''
  m.options.schema = schema
}
