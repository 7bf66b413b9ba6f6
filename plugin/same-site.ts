/**
 * The same-site check of state-changing or schema-selecting requests (the switch route, audit
 * links): a browser's request made for another site is refused.
 */
import type { FastifyRequest } from 'fastify'
import { BoardinghouseErrors } from './errors.js'
import { describe } from './names.js'

/** The request's own origin, as a browser would send it in `Origin`. */
function ownOrigin (request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`
}

/** Refuses requests a browser made for another site (a form on evil.example posting here). */
export function assertSameSite (request: FastifyRequest, trusted: readonly string[]): void {
  const fetchSite = request.headers['sec-fetch-site']
  if (typeof fetchSite === 'string' && fetchSite !== 'same-origin' && fetchSite !== 'none') {
    const origin = request.headers.origin
    if (!(typeof origin === 'string' && trusted.includes(origin))) {
      throw new BoardinghouseErrors.CROSS_SITE(`Sec-Fetch-Site is ${describe(fetchSite)}`)
    }
  }
  const origin = request.headers.origin
  if (origin !== undefined) {
    if (typeof origin !== 'string' || (origin !== ownOrigin(request) && !trusted.includes(origin))) {
      throw new BoardinghouseErrors.CROSS_SITE(`Origin ${describe(origin)} is not this site`)
    }
  }
}
