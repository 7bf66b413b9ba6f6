/**
 * Built-in schema resolvers, usable as the plugin's or a route's `schemaFrom`: by subdomain, by
 * custom domain (the domain table), by header, by route parameter, and the first of several. None
 * makes a query: they parse the request, and `domain()` reads the in-process registry snapshot.
 * What they return goes through the switch route's checks (request.ts: unknown 404, inactive 404,
 * template/invalid 400, non-member 403, admins any active schema).
 *
 * Anonymous requests are refused (401) unless the resolver that matched was made with
 * `{ anonymous: 'allow' }`: each match is recorded per request, and `anonymousAllowed(request,
 * schema)` tells request.ts whether the schema it got came from such a resolver.
 */
import type { FastifyRequest } from 'fastify'
import type { Boardinghouse } from './boardinghouse.js'
import { BoardinghouseErrors } from './errors.js'
import { normalizeHost, requestHost } from './host.js'
import { TEMPLATE_SCHEMA, assertSchemaName, describe, isValidSchemaName } from './names.js'
import type { RegistrySnapshot, TenantInfo } from './registry.js'

/** Resolves a request's schema by other means than the session (subdomain, header, path); request.ts re-exports it. */
export type SchemaResolver = (request: FastifyRequest) => string | null | undefined | Promise<string | null | undefined>

/** Whether a resolver's schema may be entered without a user: `'allow'` (exists and active is enough) or `'deny'` (401). */
export type AnonymousPolicy = 'allow' | 'deny'

export interface ResolverOptions {
  /**
   * `'allow'`: a request without a user enters the schema if it exists and is active (no
   * membership check: there is no user); a request with a user gets the usual checks.
   * @default 'deny' (anonymous requests are refused with FST_BH_UNAUTHENTICATED, 401)
   */
  anonymous?: AnonymousPolicy
}

export interface SubdomainResolverOptions extends ResolverOptions {
  /** The domain tenants are subdomains of: `example.com` serves `acme.example.com` as schema acme. */
  baseDomain: string
  /** Subdomain labels that are not tenants (e.g. `['www', 'api']`): those hosts resolve no schema. @default [] */
  ignore?: readonly string[]
}

/** A resolver made here: a `SchemaResolver` that says how it treats anonymous requests. */
export type BoardinghouseResolver = SchemaResolver & { readonly anonymous: AnonymousPolicy }

interface Match { schema: string, policy: AnonymousPolicy }
const matches = new WeakMap<object, Match>()

function policyOf (options: ResolverOptions | undefined, what: string): AnonymousPolicy {
  if (options === undefined) return 'deny'
  if (typeof options !== 'object' || options === null) throw new BoardinghouseErrors.INVALID_OPTION(`${what}: options must be an object`)
  const policy = options.anonymous ?? 'deny'
  if (policy !== 'allow' && policy !== 'deny') throw new BoardinghouseErrors.INVALID_OPTION(`${what}: anonymous must be 'allow' or 'deny', not ${describe(policy)}`)
  return policy
}

function make (policy: AnonymousPolicy, resolve: (request: FastifyRequest) => string | null | Promise<string | null>): BoardinghouseResolver {
  const resolver = async (request: FastifyRequest): Promise<string | null> => {
    const schema = await resolve(request)
    if (schema !== null) matches.set(request, { schema, policy })
    return schema
  }
  return Object.defineProperty(resolver, 'anonymous', { value: policy, enumerable: true }) as BoardinghouseResolver
}

/**
 * Whether `schema`, as `schemaFrom` returned it for `request`, came from a resolver made with
 * `{ anonymous: 'allow' }` (for request.ts: then an anonymous request is checked by
 * `checkAnonymous`, not refused with 401).
 */
export function anonymousAllowed (request: FastifyRequest, schema: unknown): boolean {
  const match = matches.get(request)
  return match !== undefined && match.policy === 'allow' && match.schema === schema
}

/**
 * The checks for an anonymous request to a schema its resolver allows anonymously: the same as the
 * switch route's minus the user ones (400 template or invalid, 404 unknown or inactive).
 */
export function checkAnonymous (snapshot: RegistrySnapshot, schema: unknown): TenantInfo {
  if (schema === TEMPLATE_SCHEMA) throw new BoardinghouseErrors.TEMPLATE_SCHEMA()
  assertSchemaName(schema)
  const info = snapshot.schemas.get(schema)
  if (info === undefined) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(schema)
  if (!info.isActive) throw new BoardinghouseErrors.SCHEMA_INACTIVE(schema)
  return { schema: info.schema, name: info.name }
}

function optionHost (value: unknown, what: string): string {
  try {
    return normalizeHost(value, { allowPort: false })
  } catch (err) {
    throw new BoardinghouseErrors.INVALID_OPTION(`${what}: ${(err as Error).message}`, { cause: err })
  }
}

/**
 * `acme.example.com` → `acme` (a `-` in the label reads as `_`: `big-co.example.com` → `big_co`).
 * The base domain itself and `ignore`d labels resolve no schema (null); a host outside the base
 * domain resolves none either (so `first()` can try the next resolver). A host under it that names
 * no schema (`a.b.example.com`, `public.example.com`, an unknown label) is FST_BH_SCHEMA_NOT_FOUND
 * (404), and a malformed host FST_BH_INVALID_HOST (400).
 */
function subdomain (options: SubdomainResolverOptions): BoardinghouseResolver {
  if (typeof options !== 'object' || options === null) throw new BoardinghouseErrors.INVALID_OPTION('resolvers.subdomain: options must be an object with baseDomain')
  const policy = policyOf(options, 'resolvers.subdomain')
  const base = optionHost(options.baseDomain, 'resolvers.subdomain baseDomain')
  const ignore = options.ignore ?? []
  if (!Array.isArray(ignore) || !ignore.every((l) => typeof l === 'string')) throw new BoardinghouseErrors.INVALID_OPTION('resolvers.subdomain: ignore must be an array of labels')
  const ignored = new Set(ignore.map((l: string) => l.toLowerCase()))
  const suffix = '.' + base
  return make(policy, (request) => {
    const host = requestHost(request)
    if (host === base || !host.endsWith(suffix)) return null
    const label = host.slice(0, -suffix.length)
    if (ignored.has(label)) return null
    const schema = label.replace(/-/g, '_')
    if (label.includes('.') || !isValidSchemaName(schema)) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(label)
    return schema
  })
}

const HEADER_NAME_RE = /^[a-z0-9!#$%&'*+.^_`|~-]+$/

/**
 * The schema named by a request header (`X-Tenant: acme`). No header: no schema (null). A header
 * sent twice, with several comma-joined values, spaces, quotes, or longer than 63 bytes is refused
 * with FST_BH_INVALID_TENANT_HEADER (400); an invalid name with FST_BH_INVALID_SCHEMA_NAME (400).
 */
function header (name: string, options?: ResolverOptions): BoardinghouseResolver {
  const policy = policyOf(options, 'resolvers.header')
  if (typeof name !== 'string' || !HEADER_NAME_RE.test(name.toLowerCase())) throw new BoardinghouseErrors.INVALID_OPTION(`resolvers.header: ${describe(name)} is not a header name`)
  const key = name.toLowerCase()
  return make(policy, (request) => {
    const raw = request.raw.rawHeaders
    let count = 0
    for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === key) count++
    const value = request.headers[key]
    if (value === undefined && count === 0) return null
    if (count > 1 || Array.isArray(value)) throw new BoardinghouseErrors.INVALID_TENANT_HEADER(key, 'it was sent more than once')
    if (typeof value !== 'string' || value === '') throw new BoardinghouseErrors.INVALID_TENANT_HEADER(key, 'it is empty')
    if (Buffer.byteLength(value, 'utf8') > 63) throw new BoardinghouseErrors.INVALID_TENANT_HEADER(key, 'it is longer than 63 bytes')
    if (value.includes(',')) throw new BoardinghouseErrors.INVALID_TENANT_HEADER(key, 'it holds several comma-joined values')
    // eslint-disable-next-line no-control-regex
    if (/[\s"'`;\u0000-\u001f\u007f]/.test(value)) throw new BoardinghouseErrors.INVALID_TENANT_HEADER(key, 'it holds a space, a quote or a control character')
    return value
  })
}

/** The schema named by a route parameter (`/t/:schema/items`). No such parameter: no schema (null). */
function param (name: string, options?: ResolverOptions): BoardinghouseResolver {
  const policy = policyOf(options, 'resolvers.param')
  if (typeof name !== 'string' || name === '') throw new BoardinghouseErrors.INVALID_OPTION('resolvers.param: the parameter name must be a non-empty string')
  return make(policy, (request) => {
    const value = (request.params as Record<string, unknown> | undefined)?.[name]
    return typeof value === 'string' && value !== '' ? value : null
  })
}

/**
 * The schema a host is mapped to in the domain table (`addDomain`), read from the in-process
 * registry. An unmapped host resolves no schema (null: the app's own hosts are not in the table);
 * a malformed host is FST_BH_INVALID_HOST (400).
 */
function domain (options?: ResolverOptions): BoardinghouseResolver {
  const policy = policyOf(options, 'resolvers.domain')
  return make(policy, async (request) => {
    const host = requestHost(request)
    const bh = (request.server as { boardinghouse?: Boardinghouse }).boardinghouse
    if (bh === undefined) throw new BoardinghouseErrors.INVALID_OPTION('resolvers.domain() needs the fastify-boardinghouse plugin registered')
    const snapshot = bh.registry.peek() ?? await bh.registry.get()
    return snapshot.domains.get(host)?.schema ?? null
  })
}

/**
 * The first schema the resolvers give, in order (null or undefined: try the next). An error of one
 * (a malformed host or header) ends the search: it is the request's answer.
 */
function first (...list: SchemaResolver[]): SchemaResolver {
  if (list.length === 0 || !list.every((r) => typeof r === 'function')) throw new BoardinghouseErrors.INVALID_OPTION('resolvers.first needs one or more resolver functions')
  const chain = [...list]
  return async (request) => {
    for (const resolve of chain) {
      const schema = await resolve(request)
      if (schema !== undefined && schema !== null) return schema
    }
    return null
  }
}

/** The built-in resolvers, for the plugin's or a route's `schemaFrom`. */
export const resolvers = Object.freeze({ subdomain, header, param, domain, first })
