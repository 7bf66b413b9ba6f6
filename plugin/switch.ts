/**
 * The switch route: `POST /__change_schema__` with `{ schema }` (JSON or form) selects a schema for
 * the session, after the checks of `request.boardinghouse.activate`; an empty or null schema
 * deselects. Never by GET, and never from another site (Origin / Sec-Fetch-Site are checked).
 */
import { parse as parseQuery } from 'node:querystring'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BoardinghouseErrors } from './errors.js'
import { describe } from './names.js'
import { assertSameSite } from './same-site.js'
import { tenancyOf, type TenantInfo } from './request.js'

export interface SwitchRouteOptions {
  path: string
  /** Origins (scheme://host[:port]) besides the request's own that may post to the route. */
  trustedOrigins: readonly string[]
}

interface SwitchBody { schema?: string | null, next?: string }

/** A same-origin path: starts with one slash, no scheme, no backslash, no control characters. */
export function isSafeNext (next: string): boolean {
  return /^\/(?![/\\])[^\\\u0000-\u001f\u007f]*$/.test(next) && next.length <= 2048
}

export function registerSwitchRoute (app: FastifyInstance, options: SwitchRouteOptions): void {
  app.register(async function changeSchemaRoute (instance) {
    if (!instance.hasContentTypeParser('application/x-www-form-urlencoded')) {
      instance.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) => {
        done(null, parseQuery(body as string))
      })
    }
    instance.post<{ Body: SwitchBody }>(options.path, {
      schema: {
        body: {
          type: 'object',
          properties: {
            schema: { anyOf: [{ type: 'string', maxLength: 256 }, { type: 'null' }] },
            next: { type: 'string', maxLength: 2048 }
          },
          additionalProperties: false
        }
      }
    }, async function changeSchema (request: FastifyRequest<{ Body: SwitchBody }>, reply: FastifyReply) {
      assertSameSite(request, options.trustedOrigins)
      const tenancy = tenancyOf(request)
      if (tenancy.userId === null) throw new BoardinghouseErrors.UNAUTHENTICATED()
      const body = request.body ?? {}
      const next = body.next
      if (next !== undefined && next !== '' && !isSafeNext(next)) throw new BoardinghouseErrors.INVALID_REDIRECT(describe(next))
      let selected: TenantInfo | null = null
      if (body.schema === undefined || body.schema === null || body.schema === '') {
        tenancy.deactivate({ persist: true })
      } else {
        selected = tenancy.activate(body.schema, { persist: true })
      }
      if (next !== undefined && next !== '') return await reply.redirect(next, 303)
      return { schema: selected?.schema ?? null, name: selected?.name ?? null }
    })
  })
}
