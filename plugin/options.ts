import type { Model, ModelStatic, Sequelize } from 'sequelize'
import type { UserIdType } from '../models/index.js'
import type { BindPathMode } from './context.js'
import { BoardinghouseErrors } from './errors.js'

/** Options of the tenant API (`createBoardinghouse`), shared by the Fastify plugin and the CLI. */
export interface BoardinghouseOptions {
  /** The app's Sequelize instance (PostgreSQL). The library adds hooks to it; it stays the app's to close. */
  sequelize: Sequelize
  /** The app's tenant models, by model name or class: their tables exist once per schema, never in public. @default [] */
  tenantModels?: ReadonlyArray<string | ModelStatic<Model>>
  /** Folder of the app's shared migrations (run once, in public). @default undefined (none) */
  sharedMigrations?: string
  /** Folder of the app's tenant migrations (run in `__template__` and every tenant schema). @default undefined (none) */
  tenantMigrations?: string
  /** Table recording the app's shared migrations (sequelize-cli's, so an existing history carries over). @default 'SequelizeMeta' */
  sharedMigrationsTable?: string
  /** SQL type of the app's user ids in memberships; fixed when the library's migration first runs. @default 'integer' */
  userIdType?: UserIdType
  /** How many schemas `migrate` works on at once (each on a pooled connection, capped at the pool's max). @default 4 */
  migrationConcurrency?: number
  /** How long (ms) the in-process schema/membership cache trusts itself without a change notice. @default 60000 */
  cacheTtl?: number
  /**
   * How queries with bind parameters get their search_path: 'set' (a SET on their connection first)
   * or 'transaction' (wrapped in BEGIN; SET LOCAL … COMMIT: needed behind PgBouncer in transaction
   * pooling mode). @default 'set'
   */
  bindPath?: BindPathMode
  /**
   * Models (names or classes) whose changes are recorded in the audit log, by a trigger on their
   * table, in the same transaction as the change (instance, bulk and raw SQL changes alike). @default []
   */
  auditModels?: ReadonlyArray<string | ModelStatic<Model>>
  /** Per audited model, the attribute giving a short text of an object. @default the first of name, title, username, email, label; else the primary key */
  auditRepr?: Readonly<Record<string, string>>
}

export interface ResolvedOptions {
  sequelize: Sequelize
  tenantModels: ReadonlyArray<string | ModelStatic<Model>>
  sharedMigrations: string | undefined
  tenantMigrations: string | undefined
  sharedMigrationsTable: string
  userIdType: UserIdType
  migrationConcurrency: number
  cacheTtl: number
  bindPath: BindPathMode
  auditModels: ReadonlyArray<string | ModelStatic<Model>>
  auditRepr: Readonly<Record<string, string>>
}

const KNOWN = new Set<string>(['sequelize', 'tenantModels', 'sharedMigrations', 'tenantMigrations', 'sharedMigrationsTable', 'userIdType', 'migrationConcurrency', 'cacheTtl', 'bindPath', 'auditModels', 'auditRepr'])
const USER_ID_TYPES = new Set<string>(['integer', 'bigint', 'uuid', 'string'])

function fail (message: string): never {
  throw new BoardinghouseErrors.INVALID_OPTION(message)
}

function optionalString (value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value === '') fail(`${name} must be a non-empty string`)
  return value
}

function positiveInt (value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) fail(`${name} must be a positive integer`)
  return value
}

function modelList (value: unknown, name: string): ReadonlyArray<string | ModelStatic<Model>> {
  if (value === undefined) return []
  if (!Array.isArray(value) || !value.every((m) => typeof m === 'string' || typeof m === 'function')) {
    fail(`${name} must be an array of model names or model classes`)
  }
  return [...value] as Array<string | ModelStatic<Model>>
}

function stringRecord (value: unknown, name: string): Readonly<Record<string, string>> {
  if (value === undefined) return {}
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    fail(`${name} must be an object of model name → attribute name`)
  }
  return { ...(value as Record<string, string>) }
}

function bindPath (value: unknown): BindPathMode {
  if (value === undefined) return 'set'
  if (value !== 'set' && value !== 'transaction') fail("bindPath must be 'set' or 'transaction'")
  return value
}

/**
 * Validates the caller's options (never mutating them) and fills in defaults.
 * `extraKeys` are options a wrapper (the Fastify plugin) accepts and validates itself.
 */
export function resolveOptions (options: unknown, extraKeys: ReadonlySet<string> = new Set()): ResolvedOptions {
  if (typeof options !== 'object' || options === null) fail('options must be an object')
  const o = options as Record<string, unknown>
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key) && !extraKeys.has(key)) fail(`unknown option "${key}"`)
  }
  const sequelize = o.sequelize as Sequelize | undefined
  if (sequelize === undefined || sequelize === null || typeof (sequelize as { getDialect?: unknown }).getDialect !== 'function') {
    fail('sequelize must be a Sequelize instance')
  }
  if (sequelize.getDialect() !== 'postgres') fail(`sequelize must use the postgres dialect, not "${sequelize.getDialect()}"`)
  const tenantModels = modelList(o.tenantModels, 'tenantModels')
  const userIdType = o.userIdType ?? 'integer'
  if (typeof userIdType !== 'string' || !USER_ID_TYPES.has(userIdType)) fail('userIdType must be one of integer, bigint, uuid, string')
  return {
    sequelize,
    tenantModels,
    sharedMigrations: optionalString(o.sharedMigrations, 'sharedMigrations'),
    tenantMigrations: optionalString(o.tenantMigrations, 'tenantMigrations'),
    sharedMigrationsTable: optionalString(o.sharedMigrationsTable, 'sharedMigrationsTable') ?? 'SequelizeMeta',
    userIdType: userIdType as UserIdType,
    migrationConcurrency: positiveInt(o.migrationConcurrency, 'migrationConcurrency', 4),
    cacheTtl: positiveInt(o.cacheTtl, 'cacheTtl', 60_000),
    bindPath: bindPath(o.bindPath),
    auditModels: modelList(o.auditModels, 'auditModels'),
    auditRepr: stringRecord(o.auditRepr, 'auditRepr')
  }
}
