/**
 * The session, whichever plugin provides it: any whose `request.session` has `get(key)` and
 * `set(key, value)` (@fastify/session, @fastify/secure-session). Needed only for the selection kept
 * in the session (`sessionSchema`) and the switch route; neither package is a dependency.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { BoardinghouseErrors } from './errors.js'

export interface SessionLike {
  get: (key: string) => unknown
  set: (key: string, value: unknown) => void
}

/** `request.session` when it has get/set, else undefined. */
export function sessionOf (request: FastifyRequest): SessionLike | undefined {
  const session = (request as unknown as { session?: unknown }).session
  if (typeof session !== 'object' || session === null) return undefined
  const s = session as Partial<SessionLike>
  return typeof s.get === 'function' && typeof s.set === 'function' ? session as SessionLike : undefined
}

/** `request.session`, or FST_BH_INVALID_OPTION naming what is missing. */
export function requireSession (request: FastifyRequest): SessionLike {
  const session = sessionOf(request)
  if (session === undefined) throw new BoardinghouseErrors.INVALID_OPTION('request.session has no get() and set(): register a session plugin (@fastify/session, @fastify/secure-session) before fastify-boardinghouse')
  return session
}

/** At registration: refuse the options that need a session when no plugin decorates `request.session`. */
export function assertSessionAvailable (app: FastifyInstance, needs: string[]): void {
  if (needs.length === 0 || app.hasRequestDecorator('session')) return
  throw new BoardinghouseErrors.INVALID_OPTION(`${needs.join(' and ')} need a session (request.session with get/set): register a session plugin such as @fastify/session or @fastify/secure-session before fastify-boardinghouse, or set ${needs.map((n) => `${n.split(' ')[0] as string}: false`).join(' and ')}`)
}
