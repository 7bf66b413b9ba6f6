/**
 * Requests as a given user in a given schema, without a login route: `installTestKit(app)` fills
 * the plugin's impersonation slot (plugin/impersonation.ts) for this app only. A request carrying
 * `kit.headers({ userId, schema })` is then logged in inside the plugin's onRequest hook, before
 * the app's `getUserId` runs, the way the app's login route would (by default
 * `request.session.set('userId', id)`, with any session plugin that has get/set), and the schema is
 * selected for that request like a resolver's result, with the same checks (401, 403 not a
 * member, 404 unknown or inactive). Nothing else is bypassed.
 *
 * The guard: the header is an HMAC-SHA256 over the identity with a key drawn when the kit is
 * installed and kept in this process's memory only. Without an installed kit the header means
 * nothing; a header not signed by this app's kit (forged, altered, from another kit, from before a
 * `cleanup()`) is ignored (the request stays anonymous) and logged. The kit refuses to install when
 * NODE_ENV is "production".
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest, InjectOptions, LightMyRequestResponse } from 'fastify'
import type { UserId } from '../../models/index.js'
import type { Boardinghouse } from '../boardinghouse.js'
import { BoardinghouseErrors } from '../errors.js'
import { findImpersonationSlot, type ImpersonationSlot, type Impersonator } from '../impersonation.js'
import { assertSchemaName } from '../names.js'
import { sessionOf } from '../session.js'
import { SchemaFixtureImpl, type SchemaFixture, type SchemaFixtureOptions } from './fixture.js'

/** The request header carrying a signed test identity. */
export const TEST_IDENTITY_HEADER = 'x-boardinghouse-test-identity'

/** Who a test request is from, and in which schema it runs. */
export interface TestIdentity {
  /** The user (checked against `userIdType` when signed). */
  userId: UserId
  /** The schema the request runs in, with the switch route's checks; none: the app's usual selection (session, auto-selection). */
  schema?: string | null
  /** More session values set with the user, e.g. `{ isAdmin: true }` (JSON values). */
  session?: Readonly<Record<string, unknown>>
}

/** What a kit's `login` receives: the identity as signed (user id normalised). */
export interface VerifiedIdentity {
  userId: string | number
  schema: string | null
  session: Readonly<Record<string, unknown>>
}

export interface TestKitOptions extends SchemaFixtureOptions {
  /**
   * Logs a verified identity in, as the app's login route would; runs before `getUserId`. The
   * default writes `session` and then `userIdKey` into `request.session` (any session plugin with
   * get/set). An app that authenticates otherwise sets what its `getUserId` reads.
   */
  login?: (request: FastifyRequest, identity: VerifiedIdentity) => void
  /** The session key the default `login` writes the user id to (what the app's `getUserId` reads). @default 'userId' */
  userIdKey?: string
  /** The Boardinghouse of the plugin's registration, when it is not `app.boardinghouse` (registered in an encapsulated context). */
  bh?: Boardinghouse
}

/** An installed test kit: signed identities for `app.inject`, and test schemas. */
export interface TestKit extends SchemaFixture {
  readonly app: FastifyInstance
  /** The header that makes a request come from `identity`: `app.inject({ url, headers: kit.headers({ userId: 42, schema }) })`. */
  headers: (identity: TestIdentity) => Record<string, string>
  /** `app.inject` as `identity` (its headers merged into `options`). */
  inject: (identity: TestIdentity, options: InjectOptions | string) => Promise<LightMyRequestResponse>
  /** Drops the kit's schemas and uninstalls it: its headers mean nothing any more. */
  cleanup: () => Promise<void>
}

const MAX_HEADER = 8192

function b64 (data: Buffer | string): string {
  return Buffer.from(data).toString('base64url')
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.getPrototypeOf(value) === Object.prototype
}

/** The kits installed, by the impersonator each put in its slot (for checkIsolation to find one). */
const kits = new WeakMap<Impersonator, TestKitImpl>()

class TestKitImpl extends SchemaFixtureImpl implements TestKit {
  private readonly key = randomBytes(32)
  private readonly identities = new WeakMap<FastifyRequest, VerifiedIdentity>()
  private installed = true
  readonly impersonator: Impersonator

  constructor (readonly app: FastifyInstance, bh: Boardinghouse, private readonly slot: ImpersonationSlot, options: TestKitOptions) {
    super(bh, options)
    const userIdKey = options.userIdKey ?? 'userId'
    const login = options.login ?? ((request: FastifyRequest, identity: VerifiedIdentity): void => {
      const session = sessionOf(request)
      if (session === undefined) {
        throw new BoardinghouseErrors.INVALID_OPTION('the test kit\'s default login writes request.session, and this app has no session plugin: give installTestKit a login function that sets what getUserId reads')
      }
      for (const [name, value] of Object.entries(identity.session)) session.set(name, value)
      session.set(userIdKey, identity.userId)
    })
    this.impersonator = {
      login: (request) => {
        const identity = this.verify(request)
        if (identity === undefined) return
        this.identities.set(request, identity)
        login(request, identity)
      },
      selection: (request) => this.identities.get(request)?.schema ?? undefined
    }
  }

  private mac (body: string): Buffer {
    return createHmac('sha256', this.key).update(body).digest()
  }

  headers (identity: TestIdentity): Record<string, string> {
    if (!this.installed) throw new BoardinghouseErrors.INVALID_OPTION('this test kit was cleaned up: install a new one')
    if (!isPlainObject(identity)) throw new BoardinghouseErrors.INVALID_INPUT('a test identity is an object { userId, schema?, session? }')
    const userId = this.bh.normalizeUserId(identity.userId)
    const schema = identity.schema ?? null
    if (schema !== null) assertSchemaName(schema)
    const session = identity.session ?? {}
    if (!isPlainObject(session)) throw new BoardinghouseErrors.INVALID_INPUT('a test identity\'s session is an object of session values')
    const body = b64(JSON.stringify({ v: 1, u: userId, s: schema, d: session }))
    return { [TEST_IDENTITY_HEADER]: `${body}.${b64(this.mac(body))}` }
  }

  async inject (identity: TestIdentity, options: InjectOptions | string): Promise<LightMyRequestResponse> {
    const o: InjectOptions = typeof options === 'string' ? { url: options } : options
    return await this.app.inject({ ...o, headers: { ...o.headers, ...this.headers(identity) } })
  }

  /** The request's identity if its header is one this kit signed; a header that is not is logged and ignored. */
  private verify (request: FastifyRequest): VerifiedIdentity | undefined {
    const raw = request.headers[TEST_IDENTITY_HEADER]
    if (raw === undefined) return undefined
    const identity = typeof raw === 'string' && raw.length <= MAX_HEADER ? this.parse(raw) : undefined
    if (identity === undefined) request.log.warn(`fastify-boardinghouse/testing: ignored a ${TEST_IDENTITY_HEADER} header this app's test kit did not sign`)
    return identity
  }

  private parse (raw: string): VerifiedIdentity | undefined {
    const [body, mac, extra] = raw.split('.')
    if (body === undefined || mac === undefined || extra !== undefined) return undefined
    const given = Buffer.from(mac, 'base64url')
    const expected = this.mac(body)
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined
    let value: unknown
    try {
      value = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'))
    } catch {
      return undefined
    }
    if (!isPlainObject(value) || value.v !== 1) return undefined
    const { u, s, d } = value
    if ((typeof u !== 'string' && typeof u !== 'number') || (s !== null && typeof s !== 'string') || !isPlainObject(d)) return undefined
    return { userId: u, schema: s, session: d }
  }

  async cleanup (): Promise<void> {
    try {
      await this.dropSchemas()
    } finally {
      this.uninstall()
    }
  }

  uninstall (): void {
    this.installed = false
    if (this.slot.current === this.impersonator) this.slot.current = null
  }

  override async [Symbol.asyncDispose] (): Promise<void> {
    await this.cleanup()
  }
}

/**
 * Installs the test kit on `app` (after registering fastify-boardinghouse; the app is made ready).
 * Only code does this: a test's setup. One kit per app at a time; `cleanup()` uninstalls it.
 */
export async function installTestKit (app: FastifyInstance, options: TestKitOptions = {}): Promise<TestKit> {
  if (process.env.NODE_ENV === 'production') {
    throw new BoardinghouseErrors.INVALID_OPTION('the test kit (fastify-boardinghouse/testing) refuses to install when NODE_ENV is "production"')
  }
  if (typeof options !== 'object' || options === null) throw new BoardinghouseErrors.INVALID_OPTION('the test kit\'s options must be an object')
  if (options.login !== undefined && typeof options.login !== 'function') throw new BoardinghouseErrors.INVALID_OPTION('login must be a function')
  if (options.userIdKey !== undefined && (typeof options.userIdKey !== 'string' || options.userIdKey === '')) throw new BoardinghouseErrors.INVALID_OPTION('userIdKey must be a non-empty string')
  await app.ready()
  const bh = options.bh ?? (app as unknown as { boardinghouse?: Boardinghouse }).boardinghouse
  const slot = typeof bh === 'object' && bh !== null ? findImpersonationSlot(bh) : undefined
  if (bh === undefined || slot === undefined) {
    throw new BoardinghouseErrors.INVALID_OPTION('installTestKit needs an app with fastify-boardinghouse registered (or, registered in an encapsulated context, its app.boardinghouse as the bh option)')
  }
  if (slot.current !== null) throw new BoardinghouseErrors.INVALID_OPTION('a test kit is already installed on this app: cleanup() it first (or pass it on: checkIsolation({ kit }))')
  const kit = new TestKitImpl(app, bh, slot, options)
  slot.current = kit.impersonator
  kits.set(kit.impersonator, kit)
  return kit
}

/** The kit installed on the registration of `bh`, if any. */
export function installedKit (bh: Boardinghouse): TestKit | undefined {
  const current = findImpersonationSlot(bh)?.current
  return current === null || current === undefined ? undefined : kits.get(current)
}
