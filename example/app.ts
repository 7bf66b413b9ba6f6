/**
 * The example app: users in public, items per tenant schema, sessions in Postgres, and the
 * boardinghouse plugin resolving each request's schema from the session.
 *
 * Two faces on the same routes and data:
 * - a JSON API: `POST /login`, `POST /logout`, `GET /me`, `GET /items`, `POST /items`;
 * - server-rendered pages (example/pages.ts): `/`, `/login`, `/app/items…`, `/app/audit`,
 *   `/app/admin…`, with a schema selector in the header bar that posts to the library's switch route.
 */
import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import fastifyFormbody from '@fastify/formbody'
import fastifyCsrfProtection from '@fastify/csrf-protection'
import { ValidationError, type Sequelize } from 'sequelize'
import boardinghouse from '../plugin/index.js'
import { installErrorHandlers } from './errors.js'
import { html } from './html.js'
import { defineExampleModels, exampleAuditModels, exampleTenantModels, type ExampleModels, type UserAttributes } from './models/index.js'
import { registerPages } from './pages.js'
import { verifyPassword } from './passwords.js'
import { SequelizeSessionStore } from './session-store.js'
import { csrfField, textField } from './views.js'
import { ExampleErrors, field, isFormPost, safePath, sendPage, viewerOf } from './web.js'

declare module 'fastify' {
  interface Session {
    userId?: number
    username?: string
    isAdmin?: boolean
  }
}

export interface ExampleAppOptions {
  sequelize: Sequelize
  /** Secret signing session cookies (≥ 32 characters). @default random per process */
  sessionSecret?: string
  logger?: FastifyServerOptions['logger']
}

/** The example's audited models: their changes go to the audit log (`migrate` needs the same option). */
export { exampleAuditModels }

/** Where an audited object is shown: the library adds `?__schema=<its schema>` to make audit log links. */
export function exampleObjectUrl (entry: { model: string, objectPk: string | null }): string | null {
  return entry.model === 'Item' && entry.objectPk !== null ? `/app/items/${entry.objectPk}` : null
}

const loginBody = {
  type: 'object',
  required: ['username', 'password'],
  properties: { username: { type: 'string', minLength: 1, maxLength: 100 }, password: { type: 'string', minLength: 1, maxLength: 200 } }
} as const

async function authenticate (models: ExampleModels, username: string, password: string): Promise<UserAttributes | null> {
  if (username === '' || password === '' || username.length > 100 || password.length > 200) return null
  const row = await models.User.findOne({ where: { username } })
  const user = row?.get({ plain: true }) as UserAttributes | undefined
  if (user === undefined || !(await verifyPassword(password, user.passwordHash))) return null
  return user
}

async function logIn (request: FastifyRequest, user: UserAttributes): Promise<void> {
  await request.session.regenerate()
  request.session.set('userId', user.id)
  request.session.set('username', user.username)
  request.session.set('isAdmin', user.isAdmin)
}

async function loginPage (request: FastifyRequest, reply: FastifyReply, o: { username?: string, error?: string | null, next?: string, status?: number } = {}): Promise<FastifyReply> {
  const v = viewerOf(request, reply)
  const error = o.error ?? null
  const content = html`
    ${v.username !== null ? html`<p>You are signed in as <strong>${v.username}</strong>. Log in below to switch users, or <a href="/">go to the home page</a>.</p>` : null}
    <form class="stack card" method="post" action="/login" novalidate>
      ${csrfField(v)}
      <input type="hidden" name="next" value="${o.next ?? '/'}">
      ${error !== null ? html`<p class="error" role="alert" id="login-error">${error}</p>` : null}
      ${textField({ name: 'username', label: 'User name', value: o.username ?? '', required: true, maxlength: 100, autocomplete: 'username', autofocus: true })}
      ${textField({ name: 'password', label: 'Password', type: 'password', required: true, maxlength: 200, autocomplete: 'current-password' })}
      <div class="actions"><button type="submit">Log in</button></div>
    </form>
    <p class="hint">Demo users (the password is the user name): <strong>alice</strong> (Acme and Globex), <strong>bob</strong> (Globex), <strong>admin</strong> (administrator).</p>`
  return await sendPage(request, reply, { status: o.status ?? 200, title: 'Log in', section: 'login', content })
}

export async function buildExampleApp (options: ExampleAppOptions): Promise<FastifyInstance> {
  const { sequelize } = options
  const models = defineExampleModels(sequelize)
  const { Item, Session } = models
  const app = Fastify({ logger: options.logger ?? false })

  // First, so that every route (the library's switch route too) inherits them.
  installErrorHandlers(app)

  await app.register(fastifyCookie)
  await app.register(fastifySession, {
    secret: options.sessionSecret ?? randomBytes(32).toString('hex'),
    store: new SequelizeSessionStore(Session),
    saveUninitialized: false,
    // SameSite=Lax: the browser does not send the cookie on cross-site POSTs (the switch route also checks Origin)
    cookie: { secure: 'auto', httpOnly: true, sameSite: 'lax', maxAge: 8 * 60 * 60 * 1000 }
  })
  // HTML forms; the library's switch route reuses this parser.
  await app.register(fastifyFormbody)
  await app.register(fastifyCsrfProtection, { sessionPlugin: '@fastify/session' })

  // Pages for logged-in users: anonymous visitors are sent to the login form (before the library's
  // hook, so that a page that needs a schema does not answer "no schema" to someone not logged in).
  app.addHook('onRequest', async function requireLogin (request, reply) {
    const access = request.routeOptions.config.access
    if (access === undefined || request.session.get('userId') !== undefined) return
    if (request.method === 'GET' || request.method === 'HEAD') {
      return await reply.redirect(`/login?next=${encodeURIComponent(request.url)}`, 303)
    }
    throw new ExampleErrors.LOGIN_REQUIRED()
  })
  // Every POST a cross-site HTML form could make carries a CSRF token: the item, admin, login and
  // logout forms and the header's schema selector (the library's switch route). preValidation
  // runs before body validation, which strips unknown fields such as _csrf from the switch route's body.
  // JSON bodies are not checked: a browser sends them cross-site only after a CORS preflight,
  // which this app does not answer, and SameSite=Lax keeps the cookie off cross-site POSTs.
  app.addHook('preValidation', function csrf (request, reply, done) {
    if (request.method !== 'GET' && request.method !== 'HEAD' && request.method !== 'OPTIONS' && isFormPost(request)) {
      app.csrfProtection(request, reply, done)
      return
    }
    done()
  })
  app.addHook('preHandler', async function requireAdmin (request) {
    if (request.routeOptions.config.access === 'admin' && !request.boardinghouse.isAdmin) throw new ExampleErrors.ADMIN_ONLY()
  })

  await app.register(boardinghouse, {
    sequelize,
    tenantModels: exampleTenantModels,
    auditModels: exampleAuditModels,
    objectUrl: exampleObjectUrl,
    getUserId: (request) => request.session.get('userId') ?? null,
    isAdmin: (request) => request.session.get('isAdmin') === true
  })

  // ---------------------------------------------------------------- login (JSON and form)

  app.get<{ Querystring: { next?: string } }>('/login', async (request, reply) =>
    await loginPage(request, reply, { next: safePath(request.query.next, '/') }))

  app.post<{ Body: { username: string, password: string } }>('/login', {
    schema: { body: loginBody },
    attachValidation: true
  }, async (request, reply) => {
    if (isFormPost(request)) {
      const username = field(request.body, 'username').trim()
      const next = safePath(field(request.body, 'next'), '/')
      const user = await authenticate(models, username, field(request.body, 'password'))
      if (user === null) {
        const missing = username === '' || field(request.body, 'password') === ''
        return await loginPage(request, reply, {
          username,
          next,
          status: missing ? 400 : 401,
          error: missing ? 'Enter your user name and your password.' : 'Unknown user or wrong password.'
        })
      }
      await logIn(request, user)
      return await reply.redirect(next, 303)
    }
    if (request.validationError !== undefined) throw request.validationError
    const user = await authenticate(models, request.body.username, request.body.password)
    if (user === null) {
      return await reply.code(401).send({ statusCode: 401, code: 'INVALID_LOGIN', error: 'Unauthorized', message: 'Unknown user or wrong password' })
    }
    await logIn(request, user)
    return { user: { id: user.id, username: user.username } }
  })

  app.post('/logout', async (request, reply) => {
    await request.session.destroy()
    if (isFormPost(request)) return await reply.redirect('/login', 303)
    return { ok: true }
  })

  // ---------------------------------------------------------------- JSON API

  app.get('/me', async (request) => {
    const userId = request.session.get('userId')
    return {
      user: userId === undefined ? null : { id: userId, username: request.session.get('username') ?? null },
      schema: request.tenant?.schema ?? null,
      schemas: request.boardinghouse.schemas.map((s) => s.schema)
    }
  })

  app.get('/items', { config: { boardinghouse: { requireSchema: true } } }, async (request) => ({
    schema: request.tenant?.schema ?? null,
    items: (await Item.findAll({ order: [['id', 'ASC']] })).map((i) => ({ id: i.get('id'), title: i.get('title') }))
  }))

  app.post<{ Body: { title: string } }>('/items', {
    config: { boardinghouse: { requireSchema: true } },
    schema: { body: { type: 'object', required: ['title'], properties: { title: { type: 'string' } } } }
  }, async (request, reply) => {
    try {
      const item = await Item.create({ title: request.body.title.trim() })
      return await reply.code(201).send({ id: item.get('id'), title: item.get('title') })
    } catch (err) {
      if (err instanceof ValidationError) {
        return await reply.code(400).send({ statusCode: 400, code: 'INVALID_ITEM', error: 'Bad Request', message: 'title must be 1 to 200 characters' })
      }
      throw err
    }
  })

  // ---------------------------------------------------------------- pages

  registerPages(app, models)

  return app
}
