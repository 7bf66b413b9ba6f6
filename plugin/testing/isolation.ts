/**
 * `checkIsolation`: does any of an app's own routes show one tenant's data to another? Two fresh
 * schemas, each seeded by the app's `seed(schema, marker)` with a distinct marker; every route is
 * called as a member of each (a user per schema, then one user who is a member of both, so that a
 * cache keyed by the user but not the schema shows too), in a fixed order (so a cache filled by
 * the first call is read by the next); a response holding the other schema's marker is a leak.
 * A route must also show its own marker and answer 2xx/3xx (else the check would prove nothing):
 * both can be relaxed per route. Throws an `IsolationError` (an `AssertionError`) naming every
 * route, schema, user and foreign marker; the schemas are dropped either way.
 */
import { AssertionError } from 'node:assert'
import { randomBytes, randomInt, randomUUID } from 'node:crypto'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import type { UserId } from '../../models/index.js'
import type { Boardinghouse } from '../boardinghouse.js'
import { BoardinghouseErrors } from '../errors.js'
import { installTestKit, installedKit, type TestKit, type TestKitOptions } from './identity.js'
import type { TestSchema } from './fixture.js'

/** What a route's `url`, `headers` and `payload` functions, and the `request` option, receive. */
export interface IsolationCallContext {
  /** The schema the call is made in. */
  schema: string
  /** The user the call is made as (a member of `schema`). */
  userId: UserId
  /** The marker seeded in `schema`. */
  marker: string
}

type OrOf<T> = T | ((context: IsolationCallContext) => T)

/** A route to check; a string is a GET of that URL. */
export interface IsolationRoute {
  /** @default 'GET' */
  method?: InjectOptions['method']
  url: OrOf<string>
  headers?: OrOf<Record<string, string>>
  payload?: OrOf<InjectOptions['payload']>
  /** The response must show its own schema's marker: proof that the route reads tenant data. @default true */
  expectOwnMarker?: boolean
  /** The statuses that count as answered. @default any 2xx or 3xx */
  expectStatus?: number | readonly number[]
}

export interface IsolationUsers {
  /** The member of the first schema only. */
  a?: UserId
  /** The member of the second schema only. */
  b?: UserId
  /** A member of both schemas, calling in each; `null`: no such pass. */
  both?: UserId | null
}

export interface IsolationCheckOptions extends Pick<TestKitOptions, 'login' | 'userIdKey' | 'bh'> {
  /** The app (fastify-boardinghouse registered; made ready). */
  app: FastifyInstance
  /** A kit already installed on the app; without it, one is installed for the check (with `login`, `userIdKey`, `bh`) and removed after. */
  kit?: TestKit
  /** The routes to call. */
  routes: ReadonlyArray<string | IsolationRoute>
  /**
   * Writes `marker` into the schema's data the routes read, as the app would (it runs with the
   * schema active: models and raw queries reach it). May return more markers of that schema to look for.
   */
  seed: (schema: string, marker: string) => unknown
  /** The users to call as (their ids must be valid for `userIdType`). @default fresh ids */
  users?: IsolationUsers
  /** More inject options for every call (e.g. the host or header an app resolves the schema from). */
  request?: (context: IsolationCallContext) => Partial<InjectOptions>
}

/** One thing the check found. */
export interface IsolationProblem {
  kind: 'foreign-marker' | 'missing-own-marker' | 'status'
  /** `GET /items` */
  route: string
  schema: string
  userId: string
  status: number
  /** For `foreign-marker`: the marker seen, and the schema it was seeded in. */
  marker?: string
  markerSchema?: string
  /** One line saying it all. */
  message: string
}

/** The check's failure: an AssertionError whose message lists every problem; `problems` has them one by one. */
export class IsolationError extends AssertionError {
  readonly problems: readonly IsolationProblem[]

  constructor (problems: readonly IsolationProblem[]) {
    const leaks = problems.filter((p) => p.kind === 'foreign-marker').length
    const head = leaks > 0
      ? `isolation check failed: ${leaks} response${leaks === 1 ? '' : 's'} showed another tenant's data`
      : 'isolation check failed: it proved nothing for some routes'
    super({ message: [head, ...problems.map((p) => `  ${p.message}`)].join('\n') })
    this.name = 'IsolationError'
    this.problems = problems
  }
}

/** What a passing check did. */
export interface IsolationReport {
  /** The two schemas (dropped since). */
  schemas: readonly [string, string]
  /** Schema → the markers looked for. */
  markers: Readonly<Record<string, readonly string[]>>
  /** `GET /items`, … */
  routes: readonly string[]
  /** Calls made. */
  requests: number
}

function defaultUsers (bh: Boardinghouse): Required<IsolationUsers> {
  switch (bh.options.userIdType) {
    case 'uuid': return { a: randomUUID(), b: randomUUID(), both: randomUUID() }
    case 'string': {
      const run = randomBytes(4).toString('hex')
      return { a: `isolation-${run}-a`, b: `isolation-${run}-b`, both: `isolation-${run}-both` }
    }
    default: {
      const base = 1_000_000_000 + randomInt(0, 1_000_000_000)
      return { a: base, b: base + 1, both: base + 2 }
    }
  }
}

function routeOf (r: string | IsolationRoute): IsolationRoute {
  if (typeof r === 'string') return { url: r }
  if (typeof r !== 'object' || r === null || (typeof r.url !== 'string' && typeof r.url !== 'function')) {
    throw new BoardinghouseErrors.INVALID_OPTION('each route is a URL or { method?, url, headers?, payload?, expectOwnMarker?, expectStatus? }')
  }
  return r
}

function valueOf<T> (v: OrOf<T> | undefined, context: IsolationCallContext): T | undefined {
  return typeof v === 'function' ? (v as (c: IsolationCallContext) => T)(context) : v
}

function statusOk (route: IsolationRoute, status: number): boolean {
  const expected = route.expectStatus
  if (expected === undefined) return status >= 200 && status < 400
  return typeof expected === 'number' ? status === expected : expected.includes(status)
}

function excerpt (text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text
}

/**
 * Checks that none of `routes` shows one tenant's data in another (see the file's comment).
 * Resolves to what it did; rejects with an IsolationError naming each leak.
 */
export async function checkIsolation (options: IsolationCheckOptions): Promise<IsolationReport> {
  if (typeof options !== 'object' || options === null) throw new BoardinghouseErrors.INVALID_OPTION('checkIsolation needs { app, routes, seed }')
  const { app, routes: given, seed } = options
  if (!Array.isArray(given) || given.length === 0) throw new BoardinghouseErrors.INVALID_OPTION('routes must be a non-empty array')
  if (typeof seed !== 'function') throw new BoardinghouseErrors.INVALID_OPTION('seed must be a function (schema, marker) => …')
  const routes = given.map(routeOf)
  const ownKit = options.kit === undefined
  let kit = options.kit
  if (kit === undefined) {
    await app.ready()
    const bh = options.bh ?? (app as unknown as { boardinghouse?: Boardinghouse }).boardinghouse
    if (bh !== undefined && installedKit(bh) !== undefined) {
      throw new BoardinghouseErrors.INVALID_OPTION('a test kit is installed on this app: pass it as checkIsolation({ kit })')
    }
    kit = await installTestKit(app, { prefix: 'isolation', ...(options.login === undefined ? {} : { login: options.login }), ...(options.userIdKey === undefined ? {} : { userIdKey: options.userIdKey }), ...(options.bh === undefined ? {} : { bh: options.bh }) })
  }
  const { bh } = kit
  const users = { ...defaultUsers(bh), ...options.users }
  let schemas: TestSchema[] = []
  let failed = false
  try {
    schemas = await kit.schemas(2)
    const [a, b] = schemas.map((s) => s.schema) as [string, string]
    await bh.grant(a, users.a)
    await bh.grant(b, users.b)
    if (users.both !== null) {
      await bh.grant(a, users.both)
      await bh.grant(b, users.both)
    }
    const run = randomBytes(4).toString('hex')
    const marker = { [a]: `bhmark${run}a`, [b]: `bhmark${run}b` } as Record<string, string>
    const markers: Record<string, string[]> = {}
    for (const schema of [a, b]) {
      const own = marker[schema] as string
      const extra = await bh.runInSchema(schema, async () => await seed(schema, own))
      markers[schema] = [own, ...(Array.isArray(extra) ? extra.filter((m): m is string => typeof m === 'string' && m !== '') : [])]
    }
    const calls: Array<[UserId, string]> = [[users.a, a], [users.b, b]]
    if (users.both !== null) calls.push([users.both, a], [users.both, b])

    const problems: IsolationProblem[] = []
    const names: string[] = []
    let requests = 0
    for (const route of routes) {
      const method = route.method ?? 'GET'
      let name = ''
      for (const [userId, schema] of calls) {
        const context: IsolationCallContext = { schema, userId, marker: marker[schema] as string }
        const url = valueOf(route.url, context) as string
        name = `${String(method)} ${url}`
        const extra = options.request?.(context) ?? {}
        const headers = { ...(extra.headers as Record<string, string> | undefined), ...valueOf(route.headers, context) }
        const payload = valueOf(route.payload, context)
        const res: LightMyRequestResponse = await kit.inject({ userId, schema }, { ...extra, method, url, headers, ...(payload === undefined ? {} : { payload }) })
        requests++
        const seen = `${JSON.stringify(res.headers)}\n${res.body}`
        const where = `${name} as user ${String(userId)} in schema "${schema}"`
        const base = { route: name, schema, userId: String(userId), status: res.statusCode }
        for (const [other, list] of Object.entries(markers)) {
          if (other === schema) continue
          for (const m of list) {
            if (seen.includes(m)) problems.push({ ...base, kind: 'foreign-marker', marker: m, markerSchema: other, message: `${where}: shows "${m}", seeded in schema "${other}"` })
          }
        }
        if (!statusOk(route, res.statusCode)) {
          problems.push({ ...base, kind: 'status', message: `${where}: answered ${res.statusCode} ${excerpt(res.body)}` })
        } else if (route.expectOwnMarker !== false && !(markers[schema] as string[]).some((m) => seen.includes(m))) {
          problems.push({ ...base, kind: 'missing-own-marker', message: `${where}: does not show its own schema's marker "${marker[schema] as string}" (set expectOwnMarker: false for a route that shows no seeded data)` })
        }
      }
      names.push(name)
    }
    if (problems.length > 0) throw new IsolationError(problems)
    return { schemas: [a, b], markers, routes: names, requests }
  } catch (err) {
    failed = true
    throw err
  } finally {
    // the check's own failure is the one to report, even if dropping its schemas fails too
    if (failed) await dropAll(kit, ownKit, schemas).catch(() => {})
    else await dropAll(kit, ownKit, schemas)
  }
}

async function dropAll (kit: TestKit, ownKit: boolean, schemas: readonly TestSchema[]): Promise<void> {
  if (ownKit) await kit.cleanup()
  else for (const s of schemas) await s.drop()
}
