/**
 * The Fastify plugin: registers the tenant API as `app.boardinghouse`, resolves each request's
 * schema (plugin/request.ts), serves the switch route (plugin/switch.ts) and keeps the cache in step
 * with other processes (plugin/notify.ts).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { resolvePluginOptions, type BoardinghousePluginOptions } from './options.js'
import { decorateTenancy, resolveSchemaHook, tenancyOf, type BoardinghouseRouteConfig, type RequestTenancy, type TenantInfo } from './request.js'
import { registerSwitchRoute } from './switch.js'
import { assertSessionAvailable } from './session.js'
import { Boardinghouse } from './boardinghouse.js'
import { impersonationSlot } from './impersonation.js'

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

/** Registers the tenant API, the request hook, the switch route and the change listener; options.ts validates every option. */
export async function boardinghouse (app: FastifyInstance, options: BoardinghousePluginOptions): Promise<void> {
  const o = resolvePluginOptions(options)
  assertSessionAvailable(app, [...o.needsSession])

  const bh = new Boardinghouse(o.api)
  // refills of pending schemas run off the request path: their problems go to the app's log
  bh.on('pendingError', ({ schema, error }) => { app.log.warn({ err: error, spare: schema }, 'fastify-boardinghouse: pending schemas: ' + error.message) })
  await bh.check()
  await bh.registry.get()
  if (o.listen) {
    await bh.listen((err) => { app.log.warn({ err }, 'fastify-boardinghouse: change listener connection lost; retrying') })
  }

  app.decorate('boardinghouse', bh)
  app.decorateRequest('tenant', null)
  decorateTenancy(app)
  app.decorateRequest('boardinghouse', {
    getter (this: FastifyRequest) { return tenancyOf(this) }
  })
  const { getUserId, isAdmin, schemaFrom, schemaLinkParam, objectUrl, trustedOrigins, sessionSchema } = o
  // empty unless code installs fastify-boardinghouse/testing on this app (plugin/impersonation.ts)
  const impersonation = impersonationSlot(bh)
  app.addHook('onRequest', resolveSchemaHook({ bh, getUserId, isAdmin, schemaFrom, schemaLinkParam, objectUrl, trustedOrigins, sessionSchema, logBinding: o.logBinding, maintenanceBypass: o.maintenanceBypass, impersonation }))
  if (o.changeSchemaRoute !== false) registerSwitchRoute(app, { path: o.changeSchemaRoute, trustedOrigins })
  app.addHook('onClose', async function stopListening () { await bh.close() })
}
