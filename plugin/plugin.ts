/**
 * The Fastify plugin: registers the tenant API as `app.boardinghouse`, resolves each request's
 * schema (plugin/request.ts), serves the switch route (plugin/switch.ts) and keeps the cache in step
 * with other processes (plugin/notify.ts).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { UserId } from '../models/index.js'
import { BoardinghouseErrors } from './errors.js'
import type { BoardinghouseOptions } from './options.js'
import { decorateTenancy, resolveSchemaHook, tenancyOf, type BoardinghouseRouteConfig, type RequestTenancy, type SchemaResolver, type TenantInfo } from './request.js'
import { registerSwitchRoute } from './switch.js'
import { assertSessionAvailable, sessionOf } from './session.js'
import type { AuditEntry } from './audit.js'
import { Boardinghouse } from './boardinghouse.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The tenant API (create, list, grant, migrate, runInSchema…). */
    boardinghouse: Boardinghouse
  }
  interface FastifyRequest {
    /** The schema this request runs in, or null. */
    tenant: TenantInfo | null
    /** The request's view of tenancy: selectable schemas, activate, deactivate. */
    boardinghouse: RequestTenancy
  }
  interface Session {
    // merges with the Session of @fastify/session (or of @fastify/secure-session's SessionData) when present
  /** The schema selected for this session (written by the switch route). */
    boardinghouseSchema?: string | null
  }
  interface FastifyContextConfig {
    boardinghouse?: BoardinghouseRouteConfig
  }
}

/** Options of the Fastify plugin: the tenant API's, plus the request layer's. */
export interface BoardinghousePluginOptions extends BoardinghouseOptions {
  /** The user behind a request, or null. @default reads `request.session.get('userId')` */
  getUserId?: (request: FastifyRequest) => UserId | null | undefined | Promise<UserId | null | undefined>
  /** Whether this user may select any active schema. @default () => false */
  isAdmin?: (request: FastifyRequest, userId: UserId) => boolean | Promise<boolean>
  /** Resolves a request's schema by other means (subdomain, header); not stored in the session. @default undefined */
  schemaFrom?: SchemaResolver
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
}

const PLUGIN_KEYS = new Set(['getUserId', 'isAdmin', 'schemaFrom', 'changeSchemaRoute', 'trustedOrigins', 'sessionSchema', 'listen', 'schemaLinkParam', 'objectUrl'])

function defaultGetUserId (request: FastifyRequest): UserId | null | undefined {
  const value = sessionOf(request)?.get('userId')
  return typeof value === 'string' || typeof value === 'number' ? value : null
}

function optionalFunction<T> (value: unknown, name: string): T | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'function') throw new BoardinghouseErrors.INVALID_OPTION(`${name} must be a function`)
  return value as T
}

export async function boardinghouse (app: FastifyInstance, options: BoardinghousePluginOptions): Promise<void> {
  const getUserId = optionalFunction<BoardinghousePluginOptions['getUserId']>(options.getUserId, 'getUserId') ?? defaultGetUserId
  const isAdmin = optionalFunction<BoardinghousePluginOptions['isAdmin']>(options.isAdmin, 'isAdmin') ?? (() => false)
  const schemaFrom = optionalFunction<SchemaResolver>(options.schemaFrom, 'schemaFrom')
  const route = options.changeSchemaRoute ?? '/__change_schema__'
  if (route !== false && (typeof route !== 'string' || !route.startsWith('/'))) {
    throw new BoardinghouseErrors.INVALID_OPTION('changeSchemaRoute must be a path starting with "/" or false')
  }
  const trustedOrigins = options.trustedOrigins ?? []
  if (!Array.isArray(trustedOrigins) || !trustedOrigins.every((o) => typeof o === 'string' && /^https?:\/\/[^/]+$/.test(o))) {
    throw new BoardinghouseErrors.INVALID_OPTION('trustedOrigins must be an array of origins like "https://example.com"')
  }
  if (options.listen !== undefined && typeof options.listen !== 'boolean') throw new BoardinghouseErrors.INVALID_OPTION('listen must be a boolean')
  const schemaLinkParam = options.schemaLinkParam ?? '__schema'
  if (schemaLinkParam !== false && (typeof schemaLinkParam !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/.test(schemaLinkParam))) {
    throw new BoardinghouseErrors.INVALID_OPTION('schemaLinkParam must be a query parameter name or false')
  }
  const objectUrl = optionalFunction<(entry: AuditEntry) => string | null>(options.objectUrl, 'objectUrl')
  if (options.sessionSchema !== undefined && typeof options.sessionSchema !== 'boolean') throw new BoardinghouseErrors.INVALID_OPTION('sessionSchema must be a boolean')
  const sessionSchema = options.sessionSchema ?? true
  if (route !== false && !sessionSchema) throw new BoardinghouseErrors.INVALID_OPTION('changeSchemaRoute stores the choice in the session: it needs sessionSchema (or set changeSchemaRoute: false)')
  assertSessionAvailable(app, [...(sessionSchema ? ['sessionSchema (the selection kept in the session)'] : []), ...(route !== false ? ['changeSchemaRoute (the switch route)'] : [])])

  const bh = new Boardinghouse(options, PLUGIN_KEYS)
  await bh.check()
  await bh.registry.get()
  if (options.listen !== false) {
    await bh.listen((err) => { app.log.warn({ err }, 'fastify-boardinghouse: change listener connection lost; retrying') })
  }

  app.decorate('boardinghouse', bh)
  app.decorateRequest('tenant', null)
  decorateTenancy(app)
  app.decorateRequest('boardinghouse', {
    getter (this: FastifyRequest) { return tenancyOf(this) }
  })
  app.addHook('onRequest', resolveSchemaHook({ bh, getUserId, isAdmin, schemaFrom, schemaLinkParam, objectUrl, trustedOrigins, sessionSchema }))
  if (route !== false) registerSwitchRoute(app, { path: route, trustedOrigins })
  app.addHook('onClose', async function stopListening () { await bh.close() })
}
