/**
 * The example app: users in public, items per tenant schema, sessions in Postgres, and the
 * boardinghouse plugin resolving each request's schema from the session.
 */
import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import { ValidationError, type Sequelize } from 'sequelize'
import boardinghouse from '../plugin/index.js'
import { defineExampleModels, exampleTenantModels, type UserAttributes } from './models/index.js'
import { verifyPassword } from './passwords.js'
import { SequelizeSessionStore } from './session-store.js'

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

export async function buildExampleApp (options: ExampleAppOptions): Promise<FastifyInstance> {
  const { sequelize } = options
  const { Item, User, Session } = defineExampleModels(sequelize)
  const app = Fastify({ logger: options.logger ?? false })

  await app.register(fastifyCookie)
  await app.register(fastifySession, {
    secret: options.sessionSecret ?? randomBytes(32).toString('hex'),
    store: new SequelizeSessionStore(Session),
    saveUninitialized: false,
    // SameSite=Lax: the browser does not send the cookie on cross-site POSTs (the switch route also checks Origin)
    cookie: { secure: 'auto', httpOnly: true, sameSite: 'lax', maxAge: 8 * 60 * 60 * 1000 }
  })
  await app.register(boardinghouse, {
    sequelize,
    tenantModels: exampleTenantModels,
    getUserId: (request) => request.session.get('userId') ?? null,
    isAdmin: (request) => request.session.get('isAdmin') === true
  })

  app.post<{ Body: { username: string, password: string } }>('/login', {
    schema: {
      body: {
        type: 'object',
        required: ['username', 'password'],
        properties: { username: { type: 'string', minLength: 1, maxLength: 100 }, password: { type: 'string', minLength: 1, maxLength: 200 } }
      }
    }
  }, async (request, reply) => {
    const row = await User.findOne({ where: { username: request.body.username } })
    const user = row?.get({ plain: true }) as UserAttributes | undefined
    if (user === undefined || !(await verifyPassword(request.body.password, user.passwordHash))) {
      return await reply.code(401).send({ statusCode: 401, code: 'INVALID_LOGIN', error: 'Unauthorized', message: 'Unknown user or wrong password' })
    }
    await request.session.regenerate()
    request.session.set('userId', user.id)
    request.session.set('username', user.username)
    request.session.set('isAdmin', user.isAdmin)
    return { user: { id: user.id, username: user.username } }
  })

  app.post('/logout', async (request) => {
    await request.session.destroy()
    return { ok: true }
  })

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

  return app
}
