/**
 * The request path, top to bottom: who the user is, which schemas they may use (from the cache, no
 * query), which schema this request runs in (per-route/per-app resolver, else the session, else the
 * user's only schema), the permission check on every request, and the AsyncLocalStorage store that
 * every Sequelize query made while handling the request reads.
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { UserId } from '../models/index.js'
import { userKey, type RegistrySnapshot, type SchemaInfo, type TenantInfo } from './registry.js'
import { setStoreSchema, storeFor, tenantStorage, type TenantStore } from './context.js'
import { BoardinghouseErrors } from './errors.js'
import { TEMPLATE_SCHEMA, assertSchemaName } from './names.js'
import type { Boardinghouse } from './boardinghouse.js'
import { readAuditLog, type AuditEntry, type AuditQuery } from './audit.js'
import { isMaintenanceError, maintenanceError, type SchemaMaintenance } from './maintenance.js'
import type { MaintenanceBypassCheck } from './options.js'
import { assertSameSite } from './same-site.js'
import { anonymousAllowed, checkAnonymous, type SchemaResolver } from './resolvers.js'
import { requireSession, sessionOf } from './session.js'
import type { ImpersonationSlot } from './impersonation.js'

/** What `request.tenant` holds: the active schema (one type, the registry's). */
export type { TenantInfo }

/** Resolves a request's schema by other means than the session (subdomain, header, path). */
export type { SchemaResolver }

/** Per-route options: `{ config: { boardinghouse: { ... } } }`. */
export interface BoardinghouseRouteConfig {
  /** Resolves this route's schema (not stored in the session), with the same permission checks. */
  schemaFrom?: SchemaResolver
  /** Refuse the request with FST_BH_NO_SCHEMA (400) when no schema is active. @default false */
  requireSchema?: boolean
  /**
   * Run this route in its schema even while the schema is in maintenance (for routes that touch no
   * tenant table: logout, a status page; the switch route has it, so a user can switch away).
   * `request.boardinghouse.activate` still refuses a schema in maintenance. @default false
   */
  allowMaintenance?: boolean
}

/** `request.boardinghouse`: the request's view of tenancy. */
export interface RequestTenancy {
  /** The user id from `getUserId`, or null when anonymous. */
  readonly userId: UserId | null
  /** Whether `isAdmin` said yes: an admin may select any active schema. */
  readonly isAdmin: boolean
  /** The schemas this user may select (admins: every active schema), sorted by name. */
  readonly schemas: readonly TenantInfo[]
  /** Whether this user may select `schema` (valid, active, member or admin; never the template). */
  allowed: (schema: string) => boolean
  /**
   * Activates `schema` for the rest of this request (and, with `persist`, in the session), after the
   * same checks as the switch route: 400 invalid, 401 anonymous, 404 unknown or inactive, 403 not allowed.
   */
  activate: (schema: string, options?: { persist?: boolean }) => TenantInfo
  /** Deactivates the schema for the rest of this request (and, with `persist`, in the session). */
  deactivate: (options?: { persist?: boolean }) => void
  /**
   * Audit log entries this user may read: of the active schema (or `schema`, if allowed) and of
   * shared models; `allSchemas` for admins only (else FST_BH_FORBIDDEN_SCHEMA). Each has a `link`.
   */
  auditLog: (query?: AuditQuery) => Promise<AuditEntryWithLink[]>
  /** A link to `path` that opens it in `schema` for that one request (same checks; GET only; same-site only). */
  linkTo: (path: string, schema: string | null) => string
  /**
   * The active schema's maintenance state, or null (not in maintenance, or no schema). Non-null only
   * where the request was let in all the same: `maintenanceBypass`, or a route's `allowMaintenance`.
   */
  readonly maintenance: SchemaMaintenance | null
}

export interface AuditEntryWithLink extends AuditEntry {
  /** Where the object is, opened in its schema (from the `objectUrl` option), or null. */
  link: string | null
}

export interface RequestOptions {
  bh: Boardinghouse
  getUserId: (request: FastifyRequest) => UserId | null | undefined | Promise<UserId | null | undefined>
  isAdmin: (request: FastifyRequest, userId: UserId) => boolean | Promise<boolean>
  schemaFrom: SchemaResolver | undefined
  /** Query parameter that opens a GET request in a schema for that request only, or false. */
  schemaLinkParam: string | false
  objectUrl: ((entry: AuditEntry) => string | null) | undefined
  trustedOrigins: readonly string[]
  /** Keep the selected schema in the session (needs a session plugin). */
  sessionSchema: boolean
  /** The `request.log` binding that names the active schema, or false. */
  logBinding: string | false
  /** Whether a request may enter a schema in maintenance (the `maintenanceBypass` option). @default nobody */
  maintenanceBypass?: MaintenanceBypassCheck
  /** The test kit's slot (fastify-boardinghouse/testing): empty unless installed by code. */
  impersonation?: ImpersonationSlot
}

export const kTenancy = Symbol('fastify-boardinghouse.tenancy')

type RequestWithTenancy = FastifyRequest & { [kTenancy]?: RequestTenancy | null }

function infoOf (s: SchemaInfo): TenantInfo {
  return { schema: s.schema, name: s.name }
}

class Tenancy implements RequestTenancy {
  /** request.log as it was before any schema binding: each change re-binds from it, never stacks. */
  private baseLog: FastifyBaseLogger | null = null

  constructor (
    private readonly request: FastifyRequest,
    private readonly store: TenantStore,
    private readonly snapshot: RegistrySnapshot,
    readonly userId: UserId | null,
    readonly isAdmin: boolean,
    private readonly options: RequestOptions
  ) {}

  async auditLog (query: AuditQuery = {}): Promise<AuditEntryWithLink[]> {
    if (this.userId === null) throw new BoardinghouseErrors.UNAUTHENTICATED()
    if (query.allSchemas === true && !this.isAdmin) throw new BoardinghouseErrors.FORBIDDEN_SCHEMA('(all schemas)')
    if (query.schema !== undefined && query.schema !== null && query.schema !== this.store.schema) this.check(query.schema)
    const entries = await readAuditLog(this.options.bh.options.sequelize, query, this.store.schema)
    const url = this.options.objectUrl
    return entries.map((e) => {
      const path = url === undefined || e.action === 'delete' ? null : url(e)
      return { ...e, link: path === null ? null : this.linkTo(path, e.schema) }
    })
  }

  linkTo (path: string, schema: string | null): string {
    const param = this.options.schemaLinkParam
    if (schema === null || param === false) return path
    return `${path}${path.includes('?') ? '&' : '?'}${encodeURIComponent(param)}=${encodeURIComponent(schema)}`
  }

  private memberOf (): ReadonlySet<string> {
    return this.userId === null ? new Set() : this.snapshot.members.get(userKey(this.userId)) ?? new Set()
  }

  allowed (schema: string): boolean {
    if (this.userId === null) return false
    // The snapshot first: every name it holds is a valid tenant schema name (the registry table's
    // CHECK constraint boardinghouse_schema_name_valid), and the template is not in it.
    const info = this.snapshot.schemas.get(schema)
    if (info === undefined || !info.isActive) return false
    return this.isAdmin || this.memberOf().has(schema)
  }

  /** The user's one active membership, if there is exactly one (auto-selected; admins too). */
  onlyMembership (): TenantInfo | null {
    let only: SchemaInfo | null = null
    for (const name of this.memberOf()) {
      const info = this.snapshot.schemas.get(name)
      if (info === undefined || !info.isActive) continue
      if (only !== null) return null
      only = info
    }
    return only === null ? null : infoOf(only)
  }

  get schemas (): readonly TenantInfo[] {
    // precomputed once per registry snapshot: no per-request filtering or sorting
    if (this.userId === null) return []
    return this.isAdmin ? this.snapshot.allActive : this.snapshot.selectable(userKey(this.userId))
  }

  /** The checks of the switch route, in the order of their status codes' specificity. */
  check (schema: unknown): TenantInfo {
    if (schema === TEMPLATE_SCHEMA) throw new BoardinghouseErrors.TEMPLATE_SCHEMA()
    assertSchemaName(schema)
    if (this.userId === null) throw new BoardinghouseErrors.UNAUTHENTICATED()
    const info = this.snapshot.schemas.get(schema)
    if (info === undefined) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(schema)
    if (!info.isActive) throw new BoardinghouseErrors.SCHEMA_INACTIVE(schema)
    if (!this.isAdmin && !this.memberOf().has(schema)) throw new BoardinghouseErrors.FORBIDDEN_SCHEMA(schema)
    return infoOf(info)
  }

  activate (schema: string, options: { persist?: boolean } = {}): TenantInfo {
    const info = this.check(schema)
    this.assertAvailable(info.schema)
    this.set(info, options.persist === true)
    return info
  }

  /**
   * Maintenance mode: throws FST_BH_SCHEMA_MAINTENANCE (503, with its Retry-After) when `schema` is
   * in maintenance and `maintenanceBypass` does not let this request through. From the snapshot.
   */
  assertAvailable (schema: string): void {
    const maintenance = this.snapshot.schemas.get(schema)?.maintenance ?? null
    if (maintenance === null || this.options.maintenanceBypass?.(this.request, schema, this.isAdmin) === true) return
    throw maintenanceError(schema, maintenance)
  }

  get maintenance (): SchemaMaintenance | null {
    const schema = this.store.schema
    return schema === null ? null : this.snapshot.schemas.get(schema)?.maintenance ?? null
  }

  deactivate (options: { persist?: boolean } = {}): void {
    this.set(null, options.persist === true)
  }

  /** Every later log line of this request carries its schema (`logBinding`), or none again without one. */
  private bindLog (schema: string | null): void {
    const name = this.options.logBinding
    if (name === false) return
    this.baseLog ??= this.request.log
    this.request.log = schema === null ? this.baseLog : this.baseLog.child({ [name]: schema })
  }

  set (info: TenantInfo | null, persist: boolean): void {
    setStoreSchema(this.store, info?.schema ?? null)
    this.request.tenant = info
    this.bindLog(info?.schema ?? null)
    if (persist) {
      if (!this.options.sessionSchema) throw new BoardinghouseErrors.INVALID_OPTION('persist: true needs the sessionSchema option')
      requireSession(this.request).set('boardinghouseSchema', info?.schema ?? null)
    }
  }
}

function isSafeMethod (method: string): boolean {
  return method === 'GET' || method === 'HEAD'
}

/** `request.boardinghouse`. */
export function tenancyOf (request: FastifyRequest): RequestTenancy {
  const tenancy = (request as RequestWithTenancy)[kTenancy]
  if (tenancy === undefined || tenancy === null) throw new BoardinghouseErrors.TENANCY_UNAVAILABLE()
  return tenancy
}

/**
 * Declares the request's tenancy slot (null until the onRequest hook fills it), so that every
 * request has the same shape from its construction. Call on the app before adding the hook.
 */
export function decorateTenancy (app: FastifyInstance): void {
  if (!app.hasRequestDecorator(kTenancy)) app.decorateRequest(kTenancy, null)
}

function isPromise<T> (value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function'
}

/** The onRequest hook: resolves the schema, checks it, and runs the rest of the request in its store. */
export function resolveSchemaHook (options: RequestOptions): (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void {
  const { bh, getUserId, isAdmin } = options

  // The steps below return a promise only when one of the app's functions (getUserId, isAdmin,
  // schemaFrom) does, or the registry must load: with synchronous ones (the defaults) a request is
  // resolved without a promise of its own.

  /** Step 1: who the user is. */
  function resolve (request: FastifyRequest, store: TenantStore): Promise<void> | undefined {
    const rawUserId = getUserId(request)
    if (isPromise(rawUserId)) return rawUserId.then((raw) => withUser(request, store, raw))
    return withUser(request, store, rawUserId)
  }

  /** Step 2: the registry snapshot (from the cache, no query, unless it is stale). */
  function withUser (request: FastifyRequest, store: TenantStore, rawUserId: UserId | null | undefined): Promise<void> | undefined {
    let userId: UserId | null = null
    if (rawUserId !== undefined && rawUserId !== null) {
      try {
        userId = bh.normalizeUserId(rawUserId)
      } catch {
        userId = null // a session holding garbage is an anonymous one
      }
    }
    store.userId = userId
    const snapshot = bh.registry.peek()
    if (snapshot === null) return bh.registry.get().then((s) => withSnapshot(request, store, userId, s))
    return withSnapshot(request, store, userId, snapshot)
  }

  /** Step 3: whether the user is an admin. */
  function withSnapshot (request: FastifyRequest, store: TenantStore, userId: UserId | null, snapshot: RegistrySnapshot): Promise<void> | undefined {
    const admin = userId === null ? false : isAdmin(request, userId)
    if (isPromise(admin)) return admin.then((a) => withAdmin(request, store, userId, snapshot, a))
    return withAdmin(request, store, userId, snapshot, admin)
  }

  /** Step 4: the request's tenancy, and the route's or app's resolver. */
  function withAdmin (request: FastifyRequest, store: TenantStore, userId: UserId | null, snapshot: RegistrySnapshot, admin: boolean): Promise<void> | undefined {
    const tenancy = new Tenancy(request, store, snapshot, userId, admin, options)
    ;(request as RequestWithTenancy)[kTenancy] = tenancy
    const route = (request.routeOptions.config as { boardinghouse?: BoardinghouseRouteConfig } | undefined)?.boardinghouse
    const resolver = route?.schemaFrom ?? options.schemaFrom
    const explicit = resolver === undefined ? undefined : resolver(request)
    if (isPromise(explicit)) return explicit.then((e) => { select(request, store, tenancy, snapshot, userId, route, e) })
    select(request, store, tenancy, snapshot, userId, route, explicit)
    return undefined
  }

  /** Step 5: which schema this request runs in, after the checks. */
  function select (request: FastifyRequest, store: TenantStore, tenancy: Tenancy, snapshot: RegistrySnapshot, userId: UserId | null, route: BoardinghouseRouteConfig | undefined, explicit: string | null | undefined): void {
    // An installed test kit's verified identity names a schema like a resolver does (same checks)
    if (explicit === undefined || explicit === null) explicit = options.impersonation?.current?.selection(request) ?? explicit
    const linked = explicit === undefined || explicit === null ? linkedSchema(request) : undefined
    // Maintenance mode: a schema in maintenance answers 503 (after the checks above it: 400, 401, 404,
    // 403), unless the route allows it or maintenanceBypass lets this request through. The session
    // keeps its selection: maintenance is temporary.
    const checkMaintenance = route?.allowMaintenance !== true
    if (explicit !== undefined && explicit !== null) {
      // A resolver made with { anonymous: 'allow' } lets a request without a user into an existing,
      // active schema (no membership to check: there is no user); with a user, the usual checks.
      const info = userId === null && anonymousAllowed(request, explicit) ? checkAnonymous(snapshot, explicit) : tenancy.check(explicit)
      if (checkMaintenance) tenancy.assertAvailable(info.schema)
      tenancy.set(info, false)
    } else if (linked !== undefined) {
      // A link into a schema (audit log): this request only, same checks, and only from this site.
      assertSameSite(request, options.trustedOrigins)
      const info = tenancy.check(linked)
      if (checkMaintenance) tenancy.assertAvailable(info.schema)
      tenancy.set(info, false)
    } else {
      const selected = options.sessionSchema ? sessionOf(request)?.get('boardinghouseSchema') : undefined
      if (typeof selected === 'string' && selected !== '' && tenancy.allowed(selected)) {
        const info = infoOf(snapshot.schemas.get(selected) as SchemaInfo)
        if (checkMaintenance) tenancy.assertAvailable(info.schema) // refused, not deselected
        tenancy.set(info, false)
      } else if (selected !== undefined && selected !== null) {
        // Revoked, deactivated, dropped, or never valid: forget it, and run THIS request with no
        // schema. Never auto-select here: the request was meant for the stale schema (a POST for
        // acme must not land in the user's other schema).
        tenancy.set(null, true)
      } else if (userId !== null && isSafeMethod(request.method)) {
        // Auto-selection: only when the session holds no selection at all, and only on a safe
        // (GET/HEAD) request, which shows the user where they are before any write can follow.
        const only = tenancy.onlyMembership()
        if (only !== null) {
          // selected and kept even when in maintenance: this request is refused, the next one after it ends is not
          tenancy.set(only, options.sessionSchema && sessionOf(request) !== undefined)
          if (checkMaintenance) tenancy.assertAvailable(only.schema)
        }
      }
    }
    if (route?.requireSchema === true && store.schema === null) {
      throw new BoardinghouseErrors.NO_SCHEMA('this route needs one')
    }
  }

  function linkedSchema (request: FastifyRequest): string | undefined {
    const param = options.schemaLinkParam
    if (param === false || (request.method !== 'GET' && request.method !== 'HEAD')) return undefined
    const value = (request.query as Record<string, unknown> | undefined)?.[param]
    return typeof value === 'string' ? value : Array.isArray(value) ? String(value[0]) : undefined
  }

  return function resolveSchema (request, reply, done) {
    const store = storeFor(null, { userId: null, requestId: request.id })
    let pending: Promise<void> | undefined
    try {
      options.impersonation?.current?.login(request) // the test kit, when installed: logs in a verified identity
      pending = resolve(request, store)
    } catch (err) {
      refuse(reply, done, err as Error)
      return
    }
    if (pending === undefined) tenantStorage.run(store, done)
    else pending.then(() => { tenantStorage.run(store, done) }, (err: Error) => { refuse(reply, done, err) })
  }
}

/** Fails the request with `err`; a refusal for maintenance puts its Retry-After on the reply (kept by any error handler). */
function refuse (reply: FastifyReply, done: HookHandlerDoneFunction, err: Error): void {
  if (isMaintenanceError(err)) reply.header('retry-after', String(err.retryAfter))
  done(err)
}
