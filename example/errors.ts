/**
 * Errors a person can read: for a browser (a page navigation or a form post) an HTML page saying
 * why, with the right status code; for API clients Fastify's usual JSON (`statusCode`, `code`,
 * `error`, `message`).
 */
import { STATUS_CODES } from 'node:http'
import { ConnectionAcquireTimeoutError, ConnectionError } from 'sequelize'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { html, type Html } from './html.js'
import { switchButton } from './views.js'
import { pathOf, sendPage, viewerOf, wantsHtml } from './web.js'

interface Explained { title: string, text: Html }

function explain (request: FastifyRequest, reply: FastifyReply, error: FastifyError, status: number): Explained {
  const v = viewerOf(request, reply)
  switch (error.code) {
    case 'FST_BH_NO_SCHEMA': {
      if (v.username === null) return { title: 'Please log in', text: html`<p>Log in to use this page.</p>` }
      const next = request.method === 'GET' ? pathOf(request) : '/'
      return {
        title: 'No schema selected',
        text: v.schemas.length === 0
          ? html`<p>This page shows the data of one schema, and you are not a member of any schema yet. Ask an administrator to add you to one.</p>`
          : html`<p>This page shows the data of one schema, and none is selected. Choose one with the Schema selector at the top of the page, or here:</p>
            <div class="actions">${v.schemas.map((s) => switchButton(v, s, next, `Use ${s.name}`))}</div>`
      }
    }
    case 'FST_BH_FORBIDDEN_SCHEMA':
      return { title: 'Schema not allowed', text: html`<p>${error.message}: you are not a member of it. Ask an administrator if you need access.</p>` }
    case 'FST_BH_SCHEMA_NOT_FOUND':
      return { title: 'Schema not found', text: html`<p>${error.message}. It may have been dropped.</p>` }
    case 'FST_BH_SCHEMA_INACTIVE':
      return { title: 'Schema deactivated', text: html`<p>${error.message}: an administrator deactivated it, so nobody can select it for now.</p>` }
    case 'FST_BH_INVALID_SCHEMA_NAME':
    case 'FST_BH_TEMPLATE_SCHEMA':
      return { title: 'Invalid schema', text: html`<p>${error.message}.</p>` }
    case 'FST_BH_CROSS_SITE':
      return { title: 'Request from another site refused', text: html`<p>This request came from another site, so it was refused (${error.message}). Use this site's own pages and forms.</p>` }
    case 'FST_BH_INVALID_REDIRECT':
      return { title: 'Invalid return address', text: html`<p>${error.message}.</p>` }
    case 'FST_BH_UNAUTHENTICATED':
    case 'EXAMPLE_LOGIN_REQUIRED':
      return { title: 'Please log in', text: html`<p>${error.message}: <a href="/login">log in</a>.</p>` }
    case 'EXAMPLE_ADMIN_ONLY':
      return { title: 'Administrators only', text: html`<p>${error.message}.</p>` }
    case 'EXAMPLE_ITEM_NOT_FOUND':
      return { title: 'Item not found', text: html`<p>${error.message}. It may have been deleted, or it is in another schema.</p>` }
    case 'FST_CSRF_INVALID_TOKEN':
    case 'FST_CSRF_MISSING_SECRET':
      return { title: 'Form expired', text: html`<p>This form was out of date, or it was not sent from this site, so nothing was changed. Go back, reload the page and try again.</p>` }
    case 'FST_ERR_VALIDATION':
      return { title: 'Invalid request', text: html`<p>${error.message}.</p>` }
  }
  if (status >= 500) return { title: 'Something went wrong', text: html`<p>The server could not complete this request. The error was logged; try again later.</p>` }
  return { title: STATUS_CODES[status] ?? 'Error', text: html`<p>${error.message}</p>` }
}

/** The outage page: no layout (it would read the session and the schemas, from the database that is down). */
async function sendOutagePage (reply: FastifyReply): Promise<FastifyReply> {
  return await reply.code(503).header('retry-after', '5').header('content-type', 'text/html; charset=utf-8')
    .header('content-security-policy', "default-src 'none'").header('cache-control', 'no-store')
    .send(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Service unavailable</title></head><body><h1>Service unavailable</h1><p>${OUTAGE_MESSAGE}.</p></body></html>`)
}

/** Sends the HTML error page. */
async function errorPage (request: FastifyRequest, reply: FastifyReply, error: FastifyError, status: number): Promise<FastifyReply> {
  const { title, text } = explain(request, reply, error, status)
  const content = html`<div class="error" role="alert">${text}</div>
    ${error.code !== undefined && status < 500 ? html`<p class="muted">Status ${status}, error code <code>${error.code}</code>.</p>` : null}
    <p><a href="/">Go to the home page</a></p>`
  return await sendPage(request, reply, { status, title, content, switchNext: request.method === 'GET' ? pathOf(request) : '/' })
}

/**
 * Whether `error` (or what it wraps) says the database cannot be reached: Sequelize's connection
 * errors, the driver's socket errors and dropped connections, and PostgreSQL's connection and
 * shutdown classes (08, 57P0x).
 */
export function isDatabaseOutage (error: unknown): boolean {
  const seen = new Set<unknown>()
  let e: unknown = error
  while (typeof e === 'object' && e !== null && !seen.has(e)) {
    seen.add(e)
    const x = e as { name?: unknown, code?: unknown, message?: unknown, cause?: unknown, original?: unknown, parent?: unknown }
    if (e instanceof ConnectionError || e instanceof ConnectionAcquireTimeoutError) return true
    if (typeof x.code === 'string' && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EPIPE|08...|57P0[1-3]|55000)$/.test(x.code)) return true
    // pg's own error for a connection that died mid-query (terminated backend, server restart) has no code
    if (typeof x.message === 'string' && /^Connection terminated( unexpectedly)?$/.test(x.message)) return true
    e = x.original ?? x.parent ?? x.cause
  }
  return false
}

const OUTAGE_MESSAGE = 'The database is unavailable; try again in a moment'

/** Installs the error and not-found handlers (before the plugins and routes, so they inherit them). */
export function installErrorHandlers (app: FastifyInstance): void {
  app.setErrorHandler(async function exampleErrors (error: FastifyError, request, reply) {
    if (isDatabaseOutage(error)) {
      // 503 and a generic message: the driver's own text (host, port, database name) stays in the log
      request.log.error({ err: error }, 'database unavailable')
      if (!wantsHtml(request)) {
        return await reply.code(503).header('retry-after', '5').send({ statusCode: 503, code: 'EXAMPLE_DATABASE_UNAVAILABLE', error: 'Service Unavailable', message: OUTAGE_MESSAGE })
      }
      return await sendOutagePage(reply)
    }
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
    if (!wantsHtml(request)) throw error // Fastify's default handler: JSON with statusCode, code, error, message
    if (status >= 500) request.log.error({ err: error }, 'request failed')
    return await errorPage(request, reply, error, status)
  })

  app.setNotFoundHandler(async function notFound (request, reply) {
    if (!wantsHtml(request)) {
      return await reply.code(404).send({ message: `Route ${request.method}:${request.url} not found`, error: 'Not Found', statusCode: 404 })
    }
    return await sendPage(request, reply, {
      status: 404,
      title: 'Page not found',
      content: html`<div class="error" role="alert"><p>There is no page at <code>${pathOf(request)}</code>.</p></div><p><a href="/">Go to the home page</a></p>`
    })
  })
}
