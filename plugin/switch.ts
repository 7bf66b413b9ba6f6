/**
 * The switch route: `POST /__change_schema__` with `{ schema }` (JSON or form) selects a schema for
 * the session, after the checks of `request.boardinghouse.activate`; an empty or null schema
 * deselects. Never by GET, and never from another site (Origin / Sec-Fetch-Site are checked).
 */
import { parse as parseQuery } from 'node:querystring'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { emitSwitched } from './boardinghouse.js'
import { BoardinghouseErrors } from './errors.js'
import { isMaintenanceError } from './maintenance.js'
import { describe } from './names.js'
import { assertSameSite } from './same-site.js'
import { tenancyOf, type TenantInfo } from './request.js'

export interface SwitchRouteOptions {
  path: string
  /** Origins (scheme://host[:port]) besides the request's own that may post to the route. */
  trustedOrigins: readonly string[]
}

interface SwitchBody { schema?: string | null, next?: string }

const REDIRECT_BASE = 'http://boardinghouse.invalid'

/**
 * A redirect target from user input (`next`), as the `Location` to send: a same-origin path (one
 * leading slash, no scheme or host, no backslash, no control characters, at most 2048 characters),
 * parsed as a WHATWG URL against a dummy origin, required to stay on that origin, and re-serialised
 * (path, query, fragment) so that every character outside printable ASCII is percent-encoded: no
 * input can make a header the runtime refuses. Dot segments are resolved first, and a result that
 * would read as another host (`/.//evil.example` → `//evil.example`) is refused. Null when unsafe.
 */
export function safeRedirectPath (next: string): string | null {
  if (next.length > 2048 || !/^\/(?![/\\])[^\\\u0000-\u001f\u007f]*$/.test(next)) return null
  let url: URL
  try {
    url = new URL(next, REDIRECT_BASE)
  } catch {
    return null
  }
  if (url.origin !== REDIRECT_BASE) return null
  const out = url.pathname + url.search + url.hash
  return /^\/(?![/\\])[\x21-\x7e]*$/.test(out) ? out : null
}

/** Whether `next` is a same-origin path the switch route redirects to (see safeRedirectPath). */
export function isSafeNext (next: string): boolean {
  return safeRedirectPath(next) !== null
}

/**
 * Refuses bodies whose `schema` or `next` is repeated (an array), an object, or sent as a bracketed
 * form key (`schema[]=a`, `schema[x]=a`): body validation would strip or coerce them, and the
 * request would silently read as a deselect.
 */
function assertPlainSwitchBody (body: unknown): void {
  if (typeof body !== 'object' || body === null) return
  for (const [key, value] of Object.entries(body)) {
    if (/^(schema|next)\[/.test(key)) throw new BoardinghouseErrors.INVALID_SWITCH_REQUEST(`field ${describe(key)}: send "${key.slice(0, key.indexOf('['))}" once, as a plain value`)
    if ((key === 'schema' || key === 'next') && typeof value === 'object' && value !== null) {
      throw new BoardinghouseErrors.INVALID_SWITCH_REQUEST(`"${key}" must be ${key === 'schema' ? 'a string or null' : 'a string'}, sent once`)
    }
  }
}

export function registerSwitchRoute (app: FastifyInstance, options: SwitchRouteOptions): void {
  app.register(async function changeSchemaRoute (instance) {
    if (!instance.hasContentTypeParser('application/x-www-form-urlencoded')) {
      instance.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) => {
        done(null, parseQuery(body as string))
      })
    }
    instance.post<{ Body: SwitchBody }>(options.path, {
      // a session whose selection is in maintenance may still switch away (switching into one is refused: activate)
      config: { boardinghouse: { allowMaintenance: true } },
      schema: {
        body: {
          type: 'object',
          properties: {
            schema: { anyOf: [{ type: 'string', maxLength: 256 }, { type: 'null' }] },
            next: { type: 'string', maxLength: 2048 }
          },
          additionalProperties: false
        }
      },
      preValidation: async function plainSwitchBody (request) { assertPlainSwitchBody(request.body) }
    }, async function changeSchema (request: FastifyRequest<{ Body: SwitchBody }>, reply: FastifyReply) {
      assertSameSite(request, options.trustedOrigins)
      const tenancy = tenancyOf(request)
      if (tenancy.userId === null) throw new BoardinghouseErrors.UNAUTHENTICATED()
      const body = request.body ?? {}
      const next = body.next === undefined || body.next === '' ? null : safeRedirectPath(body.next)
      if (next === null && body.next !== undefined && body.next !== '') throw new BoardinghouseErrors.INVALID_REDIRECT(describe(body.next))
      let selected: TenantInfo | null = null
      const from = request.tenant?.schema ?? null
      if (body.schema === undefined || body.schema === null || body.schema === '') {
        tenancy.deactivate({ persist: true })
      } else {
        try {
          selected = tenancy.activate(body.schema, { persist: true })
        } catch (err) {
          // into a schema in maintenance: 503 with its Retry-After on the reply (kept by any error handler)
          if (isMaintenanceError(err)) void reply.header('retry-after', String(err.retryAfter))
          throw err
        }
      }
      const to = selected?.schema ?? null
      emitSwitched(request.server.boardinghouse, { schema: to, from, to, userId: String(tenancy.userId) })
      if (next !== null) return await reply.redirect(next, 303)
      return { schema: selected?.schema ?? null, name: selected?.name ?? null }
    })
  })
}
