/**
 * Every option of the library, validated and defaulted here, in one place: the tenant API's
 * (`resolveOptions`, used by `createBoardinghouse`, the CLI and the plugin) and the Fastify plugin's
 * own (`resolvePluginOptions`, which validates its keys and hands the rest to `resolveOptions`).
 * Validation never mutates the caller's object; a problem throws FST_BH_INVALID_OPTION naming the option.
 */
import type { FastifyRequest } from 'fastify'
import type { Model, ModelStatic, Sequelize } from 'sequelize'
import type { UserId, UserIdType } from '../models/index.js'
import type { AuditEntry } from './audit.js'
import type { BindPathMode } from './context.js'
import { BoardinghouseErrors } from './errors.js'
import { sessionOf } from './session.js'

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
  /**
   * Spare schemas kept cloned from the template ahead of time (plugin/pending.ts): `createSchema`
   * claims one (a rename, ~10 ms) instead of cloning, and the pool is refilled in the background.
   * An integer from 0 (off) to 1000. @default 0
   */
  pendingSchemas?: number
}

/** The tenant API's options with every default filled in (what `resolveOptions` returns). */
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
  pendingSchemas: number
}

const KNOWN = new Set<string>(['sequelize', 'tenantModels', 'sharedMigrations', 'tenantMigrations', 'sharedMigrationsTable', 'userIdType', 'migrationConcurrency', 'cacheTtl', 'bindPath', 'auditModels', 'auditRepr', 'pendingSchemas'])

/** The most spare schemas `pendingSchemas` (and `fillPending`) may ask for: each is a full copy of the template's catalog. */
export const MAX_PENDING_SCHEMAS = 1000

function pendingSchemas (value: unknown): number {
  if (value === undefined) return 0
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_PENDING_SCHEMAS) {
    fail(`pendingSchemas must be an integer from 0 to ${MAX_PENDING_SCHEMAS}`)
  }
  return value
}
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

/** Objects `resolveOptions` returned, with the caller's object they came from: resolving one again returns it as it is. */
const resolved = new WeakMap<object, object>()

/**
 * The options the caller actually gave for a resolved object (before defaults): per-Sequelize
 * settings are claimed only when given (context.ts shareInstanceSettings).
 */
export function givenOptions (options: ResolvedOptions): object {
  return resolved.get(options) ?? options
}

/**
 * Validates the tenant API's options (never mutating them) and fills in defaults. The result is
 * frozen; passing it back (e.g. to `new Boardinghouse`) returns it unchanged.
 */
export function resolveOptions (options: unknown): ResolvedOptions {
  if (typeof options !== 'object' || options === null) fail('options must be an object')
  if (resolved.has(options)) return options as ResolvedOptions
  return apiOptions(options as Record<string, unknown>, new Set())
}

function apiOptions (o: Record<string, unknown>, extraKeys: ReadonlySet<string>): ResolvedOptions {
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
  const out: ResolvedOptions = Object.freeze({
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
    auditRepr: stringRecord(o.auditRepr, 'auditRepr'),
    pendingSchemas: pendingSchemas(o.pendingSchemas)
  })
  resolved.set(out, o)
  return out
}

// ---------------------------------------------------------------- the Fastify plugin's options

/** Options of the Fastify plugin: the tenant API's, plus the request layer's. */
export interface BoardinghousePluginOptions extends BoardinghouseOptions {
  /** The user behind a request, or null. @default reads `request.session.get('userId')` */
  getUserId?: (request: FastifyRequest) => UserId | null | undefined | Promise<UserId | null | undefined>
  /** Whether this user may select any active schema. @default () => false */
  isAdmin?: (request: FastifyRequest, userId: UserId) => boolean | Promise<boolean>
  /**
   * Resolves a request's schema by other means (subdomain, header); not stored in the session.
   * (The shape of request.ts's `SchemaResolver`, spelt out: request.ts imports boardinghouse.ts, which imports this file.)
   * @default undefined
   */
  schemaFrom?: (request: FastifyRequest) => string | null | undefined | Promise<string | null | undefined>
  /** Path of the switch route (it stores the choice in the session), or false for none. @default '/__change_schema__' */
  changeSchemaRoute?: string | false
  /** Origins besides the request's own that may post to the switch route. @default [] */
  trustedOrigins?: string[]
  /**
   * Keep the selected schema in the session (`request.session.get/set`, from any session plugin:
   * @fastify/session, @fastify/secure-session); false: only `schemaFrom` and links select one. @default true
   */
  sessionSchema?: boolean
  /** LISTEN for changes made by other processes. @default true */
  listen?: boolean
  /** Query parameter that opens a GET request in a schema, for that request only (audit log links), or false. @default '__schema' */
  schemaLinkParam?: string | false
  /** The app's URL of an audited object (for audit log links), or null. @default undefined (no links) */
  objectUrl?: (entry: AuditEntry) => string | null
  /** Name of the `request.log` binding that carries the request's schema (every log line of a tenant request), or false for none. @default 'schema' */
  logBinding?: string | false
  /**
   * Who may still enter a schema in maintenance (everyone else gets FST_BH_SCHEMA_MAINTENANCE, 503):
   * 'none', 'admins' (`isAdmin` said yes), or a synchronous function of the request and the schema
   * (only `true` lets the request through). @default 'none'
   */
  maintenanceBypass?: MaintenanceBypass
}

// ---------------------------------------------------------------- maintenance mode: the bypass option

/** The plugin's `maintenanceBypass` option. */
export type MaintenanceBypass = 'none' | 'admins' | ((request: FastifyRequest, schema: string) => boolean)

/** `maintenanceBypass` resolved: whether this request (of an admin or not) may enter `schema` in maintenance. */
export type MaintenanceBypassCheck = (request: FastifyRequest, schema: string, isAdmin: boolean) => boolean

function maintenanceBypass (value: unknown): MaintenanceBypassCheck {
  if (value === undefined || value === 'none') return () => false
  if (value === 'admins') return (_request, _schema, isAdmin) => isAdmin
  if (typeof value === 'function') {
    const fn = value as (request: FastifyRequest, schema: string) => unknown
    return (request, schema) => fn(request, schema) === true
  }
  fail("maintenanceBypass must be 'none', 'admins' or a function (request, schema) => boolean")
}

type Defined<T> = Exclude<T, undefined>

/** The plugin's options with every default filled in (what `resolvePluginOptions` returns). */
export interface ResolvedPluginOptions {
  /** The tenant API's options. */
  api: ResolvedOptions
  getUserId: Defined<BoardinghousePluginOptions['getUserId']>
  isAdmin: Defined<BoardinghousePluginOptions['isAdmin']>
  schemaFrom: BoardinghousePluginOptions['schemaFrom']
  changeSchemaRoute: string | false
  trustedOrigins: readonly string[]
  sessionSchema: boolean
  listen: boolean
  schemaLinkParam: string | false
  objectUrl: BoardinghousePluginOptions['objectUrl']
  logBinding: string | false
  maintenanceBypass: MaintenanceBypassCheck
  /** The features that need a session plugin on the app (empty: none needs one). */
  needsSession: readonly string[]
}

const PLUGIN_KEYS: ReadonlySet<string> = new Set(['getUserId', 'isAdmin', 'schemaFrom', 'changeSchemaRoute', 'trustedOrigins', 'sessionSchema', 'listen', 'schemaLinkParam', 'objectUrl', 'logBinding', 'maintenanceBypass'])

function defaultGetUserId (request: FastifyRequest): UserId | null | undefined {
  const value = sessionOf(request)?.get('userId')
  return typeof value === 'string' || typeof value === 'number' ? value : null
}

function optionalFunction<T> (value: unknown, name: string): T | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'function') fail(`${name} must be a function`)
  return value as T
}

function optionalBoolean (value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') fail(`${name} must be a boolean`)
  return value
}

/**
 * Validates the Fastify plugin's options (never mutating them): its own keys here, the rest by the
 * tenant API's rules; fills in defaults.
 */
export function resolvePluginOptions (options: unknown): ResolvedPluginOptions {
  if (typeof options !== 'object' || options === null) fail('options must be an object')
  const o = options as Record<string, unknown>
  const getUserId = optionalFunction<ResolvedPluginOptions['getUserId']>(o.getUserId, 'getUserId') ?? defaultGetUserId
  const isAdmin = optionalFunction<ResolvedPluginOptions['isAdmin']>(o.isAdmin, 'isAdmin') ?? (() => false)
  const schemaFrom = optionalFunction<Defined<ResolvedPluginOptions['schemaFrom']>>(o.schemaFrom, 'schemaFrom')
  const changeSchemaRoute = o.changeSchemaRoute ?? '/__change_schema__'
  if (changeSchemaRoute !== false && (typeof changeSchemaRoute !== 'string' || !changeSchemaRoute.startsWith('/'))) {
    fail('changeSchemaRoute must be a path starting with "/" or false')
  }
  const trustedOrigins = o.trustedOrigins ?? []
  if (!Array.isArray(trustedOrigins) || !trustedOrigins.every((x) => typeof x === 'string' && /^https?:\/\/[^/]+$/.test(x))) {
    fail('trustedOrigins must be an array of origins like "https://example.com"')
  }
  const listen = optionalBoolean(o.listen, 'listen', true)
  const schemaLinkParam = o.schemaLinkParam ?? '__schema'
  if (schemaLinkParam !== false && (typeof schemaLinkParam !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/.test(schemaLinkParam))) {
    fail('schemaLinkParam must be a query parameter name or false')
  }
  const objectUrl = optionalFunction<Defined<ResolvedPluginOptions['objectUrl']>>(o.objectUrl, 'objectUrl')
  const logBinding = o.logBinding ?? 'schema'
  if (logBinding !== false && (typeof logBinding !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(logBinding))) {
    fail('logBinding must be a log field name (letters, digits, _) or false')
  }
  const sessionSchema = optionalBoolean(o.sessionSchema, 'sessionSchema', true)
  if (changeSchemaRoute !== false && !sessionSchema) fail('changeSchemaRoute stores the choice in the session: it needs sessionSchema (or set changeSchemaRoute: false)')
  const api = apiOptions(o, PLUGIN_KEYS)
  return Object.freeze({
    api,
    getUserId,
    isAdmin,
    schemaFrom,
    changeSchemaRoute,
    trustedOrigins: Object.freeze([...(trustedOrigins as string[])]),
    sessionSchema,
    listen,
    schemaLinkParam,
    objectUrl,
    logBinding,
    maintenanceBypass: maintenanceBypass(o.maintenanceBypass),
    needsSession: Object.freeze([
      ...(sessionSchema ? ['sessionSchema (the selection kept in the session)'] : []),
      ...(changeSchemaRoute !== false ? ['changeSchemaRoute (the switch route)'] : [])
    ])
  })
}
