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

/**
 * Refuses requests a browser made for another site (a form on evil.example posting here).
 * `Sec-Fetch-Site`, which a browser sets and a page cannot, decides when present: `same-origin` or
 * `none` (the user's own navigation) pass without comparing `Origin` (which behind a TLS proxy
 * without `trustProxy` reads https while `request.protocol` is http); any other value passes only
 * with a trusted `Origin`. Without it (older browsers, other clients) `Origin`, when sent, must be
 * this site or a trusted one.
 */
export function assertSameSite (request: FastifyRequest, trusted: readonly string[]): void {
  const fetchSite = request.headers['sec-fetch-site']
  if (typeof fetchSite === 'string') {
    if (fetchSite === 'same-origin' || fetchSite === 'none') return
    const origin = request.headers.origin
    if (!(typeof origin === 'string' && trusted.includes(origin))) {
      throw new BoardinghouseErrors.CROSS_SITE(`Sec-Fetch-Site is ${describe(fetchSite)}`)
    }
    return
  }
  const origin = request.headers.origin
  if (origin !== undefined) {
    if (typeof origin !== 'string' || (origin !== ownOrigin(request) && !trusted.includes(origin))) {
      throw new BoardinghouseErrors.CROSS_SITE(`Origin ${describe(origin)} is not this site`)
    }
  }
}
