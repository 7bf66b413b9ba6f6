/**
 * Helpers shared by the example's pages and its error handler: who is looking (for the header
 * bar), sending a page with its security headers, one-off messages, and reading form fields.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import createError from '@fastify/error'
import { safeRedirectPath, type RequestTenancy } from '../plugin/index.js'
import { CONTENT_SECURITY_POLICY, layout, type PageOptions, type SchemaView, type Viewer } from './views.js'

declare module 'fastify' {
  interface Session {
    /** A one-off message shown on the next page. */
    flash?: string
  }
  interface FastifyContextConfig {
    /** Who may use a page: 'user' (logged in; else a redirect to /login) or 'admin'. */
    access?: 'user' | 'admin'
  }
}

/** The example's own errors (the library's have codes FST_BH_*). */
export const ExampleErrors = {
  LOGIN_REQUIRED: createError('EXAMPLE_LOGIN_REQUIRED', 'Log in to use this page', 401),
  ADMIN_ONLY: createError('EXAMPLE_ADMIN_ONLY', 'Only administrators may manage schemas', 403),
  ITEM_NOT_FOUND: createError<[string, string]>('EXAMPLE_ITEM_NOT_FOUND', 'There is no item %s in %s', 404)
}

/** The name of the library's schema link parameter (the plugin's `schemaLinkParam` default). */
export const SCHEMA_LINK_PARAM = '__schema'

function sessionOf (request: FastifyRequest): FastifyRequest['session'] | undefined {
  return (request as { session?: FastifyRequest['session'] }).session
}

function tenancyOrNull (request: FastifyRequest): RequestTenancy | null {
  try {
    return request.boardinghouse
  } catch {
    return null // the error happened before the plugin resolved the request
  }
}

/** The request path without its query. */
export function pathOf (request: FastifyRequest): string {
  const url = request.url
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}

/** Who is looking, for the header bar. */
export function viewerOf (request: FastifyRequest, reply: FastifyReply): Viewer {
  const session = sessionOf(request)
  const tenancy = tenancyOrNull(request)
  const loggedIn = tenancy !== null ? tenancy.userId !== null : session?.get('userId') !== undefined
  const schemas: SchemaView[] = loggedIn && tenancy !== null ? tenancy.schemas.map((s) => ({ schema: s.schema, name: s.name })) : []
  const tenant = request.tenant === null ? null : { schema: request.tenant.schema, name: request.tenant.name }
  const selectedName = session?.get('boardinghouseSchema') ?? null
  const selected = schemas.find((s) => s.schema === selectedName) ?? null
  const linkParam = (request.query as Record<string, unknown> | undefined)?.[SCHEMA_LINK_PARAM]
  const linked = tenant !== null && request.method === 'GET' && linkParam === tenant.schema && selectedName !== tenant.schema
  let token: string | undefined
  return {
    username: loggedIn ? session?.get('username') ?? '?' : null,
    isAdmin: loggedIn && (tenancy?.isAdmin ?? session?.get('isAdmin') === true),
    schemas,
    tenant,
    selected,
    linked,
    csrf: () => (token ??= reply.generateCsrf()),
    path: pathOf(request)
  }
}

/** Takes the one-off message stored for this session, if any. */
export function takeFlash (request: FastifyRequest): string | null {
  const session = sessionOf(request)
  const flash = session?.get('flash')
  if (flash === undefined) return null
  session?.set('flash', undefined)
  return flash
}

/** Stores a one-off message for the next page. */
export function flash (request: FastifyRequest, message: string): void {
  request.session.set('flash', message)
}

/** Sends a page (with the layout) and the headers every page gets. */
export async function sendPage (request: FastifyRequest, reply: FastifyReply, options: PageOptions & { status?: number }): Promise<FastifyReply> {
  const viewer = viewerOf(request, reply)
  const body = layout(viewer, { ...options, flash: options.flash ?? takeFlash(request) })
  return await reply
    .code(options.status ?? 200)
    .header('content-type', 'text/html; charset=utf-8')
    .header('content-security-policy', CONTENT_SECURITY_POLICY)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'same-origin')
    .header('cache-control', 'no-store')
    .send(body)
}

/** Content types a cross-site HTML form can send: such POSTs must carry a CSRF token. */
const FORM_TYPES = /^\s*(application\/x-www-form-urlencoded|multipart\/form-data|text\/plain)\s*(;|$)/i

export function isFormPost (request: FastifyRequest): boolean {
  return FORM_TYPES.test(request.headers['content-type'] ?? '')
}

/** Whether to answer with a page (a browser navigation or a form post) rather than JSON. */
export function wantsHtml (request: FastifyRequest): boolean {
  if (isFormPost(request)) return true
  const accept = request.headers.accept
  return typeof accept === 'string' && accept.includes('text/html')
}

/** A form field as a string ('' when missing; the first value when repeated). */
export function field (body: unknown, name: string): string {
  if (typeof body !== 'object' || body === null) return ''
  const value = (body as Record<string, unknown>)[name]
  const first = Array.isArray(value) ? value[0] : value
  return typeof first === 'string' ? first : ''
}

/** A same-origin path, encoded for a `Location` header (the library's `safeRedirectPath`), else `fallback`. */
export function safePath (value: unknown, fallback: string): string {
  return (typeof value === 'string' ? safeRedirectPath(value) : null) ?? fallback
}
