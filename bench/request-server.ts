/**
 * The server of bench:request, run by bench/request.ts as a child process (fork, IPC channel):
 * two Fastify apps on two loopback ports, identical but for the plugin.
 *
 * - plugin app: @fastify/cookie + @fastify/session (in-memory store) + fastify-boardinghouse on its
 *   own Sequelize instance (pool BENCH_POOL); `GET /items` reads `Item.findByPk(1)` in the
 *   request's tenant schema.
 * - baseline app: the same Fastify, cookie, session, routes and query on a second Sequelize
 *   instance (same pool settings) whose connections have `search_path` fixed to one schema at
 *   connect time (`-c search_path=...`): no tenancy, no hooks, no per-query SET.
 *
 * Both have a test-only `POST /login {userId}` that stores the user in the session.
 *
 * IPC (parent → child → parent): 'cpu' (process CPU time), 'count' on/off (pg messages sent per
 * app, how many carry a `SET search_path` prefix, how many are a lone SET), 'reload' (time of one registry
 * reload), 'stop'. The child sends `{ type: 'ready', ports }` once both apps listen.
 */
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import pg from 'pg'
import { Sequelize } from 'sequelize'
import boardinghouse, { resolvers } from '../plugin/index.js'
import { defineExampleModels } from '../example/models/index.js'
import { SUBDOMAIN_BASE } from './request-hosts.js'

export type AppKind = 'plugin' | 'baseline'

export type ParentMessage =
  | { type: 'cpu', id: number }
  | { type: 'count', id: number, on: boolean }
  | { type: 'reload', id: number }
  | { type: 'stop', id: number }

export type ChildMessage =
  | { type: 'ready', ports: Partial<Record<AppKind, number>>, applicationNames: Record<AppKind, string>, pid: number }
  | { type: 'cpu', id: number, userUs: number, systemUs: number, rssMb: number, heapMb: number }
  | { type: 'count', id: number, messages: Record<string, number>, prefixed: Record<string, number>, setOnly: Record<string, number> }
  | { type: 'reload', id: number, ms: number, schemas: number }
  | { type: 'stopped', id: number }

/** application_name of each app's connections (the parent finds their backends by it). */
const APPLICATION_NAME: Record<AppKind, string> = { plugin: 'bh-bench-plugin', baseline: 'bh-bench-baseline' }

const SESSION_SECRET = 'bench-request-secret-0123456789abcdef'

function env (name: string): string {
  const value = process.env[name]
  if (value === undefined || value === '') throw new Error(`${name} is unset (bench/request-server.ts is started by bench/request.ts)`)
  return value
}

function makeSequelize (url: string, pool: number, kind: AppKind, searchPath?: string): Sequelize {
  return new Sequelize(url, {
    dialect: 'postgres',
    logging: false,
    pool: { max: pool, min: 0, idle: 60_000, acquire: 120_000 },
    dialectOptions: {
      application_name: APPLICATION_NAME[kind],
      ...(searchPath === undefined ? {} : { options: `-c search_path=${searchPath}` })
    }
  })
}

function sessionUserId (request: FastifyRequest): number | undefined {
  const value = (request.session as unknown as { get: (key: string) => unknown }).get('userId')
  return typeof value === 'number' ? value : undefined
}

/** The app both variants share; `tenancy` registers the plugin after cookie + session. */
async function buildApp (sequelize: Sequelize, kind: AppKind, baselineSchema: string): Promise<FastifyInstance> {
  const { Item } = defineExampleModels(sequelize)
  const app = Fastify({ logger: false })
  await app.register(fastifyCookie)
  await app.register(fastifySession, { secret: SESSION_SECRET, cookie: { secure: false }, saveUninitialized: false })
  if (kind === 'plugin') {
    await app.register(boardinghouse, { sequelize, tenantModels: ['Item'], getUserId: sessionUserId })
  }
  app.post<{ Body: { userId: number } }>('/login', async (request) => {
    request.session.set('userId' as never, request.body.userId as never)
    return { ok: true }
  })
  if (kind === 'plugin') {
    const items = async (request: FastifyRequest): Promise<{ schema: string | null, title: unknown }> => {
      const item = await Item.findByPk(1)
      return { schema: request.tenant?.schema ?? null, title: item?.get('title') ?? null }
    }
    app.get('/items', items)
    // The same read, the tenant found by the built-in resolvers instead of the session's selection
    // (the user's membership is checked as for the session's schema).
    app.get('/items/subdomain', { config: { boardinghouse: { schemaFrom: resolvers.subdomain({ baseDomain: SUBDOMAIN_BASE }) } } }, items)
    app.get('/items/domain', { config: { boardinghouse: { schemaFrom: resolvers.domain() } } }, items)
  } else {
    app.get('/items', async () => {
      const item = await Item.findByPk(1)
      return { schema: baselineSchema, title: item?.get('title') ?? null }
    })
    // Diagnostic, not the baseline: tenants mixed WITHOUT the plugin, by schema-qualified names
    // (`"t0042"."items"`, one model class per schema, cached). The session's user n reads schema
    // t<n-1> (bench/request.ts's naming). It pays PostgreSQL's cost of touching many schemas, and
    // none of the plugin's: plugin ÷ this isolates the plugin, this ÷ baseline the schemas.
    const bySchema = new Map<string, typeof Item>()
    app.get('/items/mixed', async (request, reply) => {
      const userId = sessionUserId(request)
      if (userId === undefined) return await reply.code(401).send({ error: 'not logged in' })
      const schema = `t${String(userId - 1).padStart(4, '0')}`
      let model = bySchema.get(schema)
      if (model === undefined) bySchema.set(schema, model = Item.schema(schema))
      const item = await model.findByPk(1)
      return { schema, title: item?.get('title') ?? null }
    })
  }
  return app
}

// ------------------------------------------------------------------ query counting (diagnostics)

interface CountingClient { connectionParameters?: { application_name?: string } }
const originalQuery = pg.Client.prototype.query
/** Per application_name: messages sent; of them, queries behind a `SET search_path …;` prefix, and lone `SET search_path` messages. */
const messages: Record<string, number> = {}
const prefixed: Record<string, number> = {}
const setOnly: Record<string, number> = {}

function countQueries (on: boolean): void {
  if (!on) {
    pg.Client.prototype.query = originalQuery
    return
  }
  for (const counter of [messages, prefixed, setOnly]) for (const key of Object.keys(counter)) delete counter[key]
  pg.Client.prototype.query = function countedQuery (this: CountingClient, ...args: unknown[]) {
    const name = this.connectionParameters?.application_name ?? 'unknown'
    messages[name] = (messages[name] ?? 0) + 1
    const first = args[0]
    const text = typeof first === 'string' ? first : (first as { text?: string } | null)?.text
    if (typeof text === 'string' && text.startsWith('SET search_path')) {
      const counter = /;\s*\S/.test(text) ? prefixed : setOnly
      counter[name] = (counter[name] ?? 0) + 1
    }
    return (originalQuery as (...a: unknown[]) => unknown).apply(this, args)
  } as typeof originalQuery
}

// ------------------------------------------------------------------ main

async function main (): Promise<void> {
  const url = env('BENCH_DATABASE_URL')
  const pool = Number(env('BENCH_POOL'))
  const baselineSchema = env('BENCH_BASELINE_SCHEMA')
  const kinds = (process.env.BENCH_APPS ?? 'plugin,baseline').split(',') as AppKind[]
  const send = (message: ChildMessage): void => { process.send?.(message) }

  const instances: Array<{ kind: AppKind, app: FastifyInstance, sequelize: Sequelize }> = []
  for (const kind of kinds) {
    const sequelize = makeSequelize(url, pool, kind, kind === 'baseline' ? `${baselineSchema},public` : undefined)
    const app = await buildApp(sequelize, kind, baselineSchema)
    await app.listen({ port: 0, host: '127.0.0.1' })
    instances.push({ kind, app, sequelize })
  }
  const ports: Partial<Record<AppKind, number>> = {}
  for (const { kind, app } of instances) {
    const address = app.server.address()
    ports[kind] = typeof address === 'object' && address !== null ? address.port : 0
  }

  let stopping: Promise<void> | null = null
  const stop = async (): Promise<void> => {
    stopping ??= (async () => {
      countQueries(false)
      for (const { app, sequelize } of instances) {
        await app.close()
        await sequelize.close()
      }
    })()
    await stopping
  }

  process.on('message', (message: ParentMessage) => {
    void (async () => {
      switch (message.type) {
        case 'cpu': {
          const usage = process.cpuUsage()
          const memory = process.memoryUsage()
          send({ type: 'cpu', id: message.id, userUs: usage.user, systemUs: usage.system, rssMb: memory.rss / 2 ** 20, heapMb: memory.heapUsed / 2 ** 20 })
          break
        }
        case 'count':
          send({ type: 'count', id: message.id, messages: { ...messages }, prefixed: { ...prefixed }, setOnly: { ...setOnly } })
          countQueries(message.on)
          break
        case 'reload': {
          const plugin = instances.find((i) => i.kind === 'plugin')
          if (plugin === undefined) throw new Error('no plugin app in this server')
          const bh = plugin.app.boardinghouse
          const t0 = performance.now()
          bh.registry.invalidate()
          const snapshot = await bh.registry.get()
          send({ type: 'reload', id: message.id, ms: performance.now() - t0, schemas: snapshot.schemas.size })
          break
        }
        case 'stop':
          await stop()
          send({ type: 'stopped', id: message.id })
          process.disconnect?.() // → 'disconnect' → exit
          break
      }
    })().catch((err: unknown) => {
      console.error('bench/request-server:', err)
      process.exit(1)
    })
  })
  // The parent went away (crash, Ctrl-C): do not linger.
  process.on('disconnect', () => { void stop().finally(() => process.exit(0)) })
  send({ type: 'ready', ports, applicationNames: APPLICATION_NAME, pid: process.pid })
}

main().catch((err: unknown) => {
  console.error('bench/request-server: failed to start:', err)
  process.exit(1)
})
