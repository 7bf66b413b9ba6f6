/**
 * The one seam the test kit (`fastify-boardinghouse/testing`, plugin/testing/) plugs into: each
 * registration of the Fastify plugin owns a slot, empty unless code calls the kit's
 * `installTestKit(app)`. No request can fill it: a request only ever meets what an installed kit
 * does with it (verify the kit's signed identity header), and with the slot empty the request
 * path reads one property and goes on as without the kit. Not exported by the package's main entry.
 */
import type { FastifyRequest } from 'fastify'

/** What an installed test kit does on each request, inside the plugin's onRequest hook. */
export interface Impersonator {
  /**
   * Runs first, before the app's `getUserId`: a request carrying a valid identity header is logged
   * in the way the app's login route would do it (by default, `request.session.set('userId', …)`).
   */
  login: (request: FastifyRequest) => void
  /** The schema the request's verified identity asks for, or undefined: selected like a resolver's, with the same checks. */
  selection: (request: FastifyRequest) => string | undefined
}

/** A plugin registration's slot. */
export interface ImpersonationSlot {
  current: Impersonator | null
}

/** Keyed by the registration's Boardinghouse (`app.boardinghouse`). */
const slots = new WeakMap<object, ImpersonationSlot>()

/** The plugin's side: the empty slot of a new registration. */
export function impersonationSlot (bh: object): ImpersonationSlot {
  const slot: ImpersonationSlot = { current: null }
  slots.set(bh, slot)
  return slot
}

/** The kit's side: the slot of the registration whose Boardinghouse is `bh`, if it is one. */
export function findImpersonationSlot (bh: object): ImpersonationSlot | undefined {
  return slots.get(bh)
}
