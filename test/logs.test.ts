/** Every log line of a tenant request carries its schema (`logBinding`), under a configurable name, or none. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import boardinghouse, { type BoardinghousePluginOptions } from '../plugin/index.js'
import { setupBoardinghouse } from './helpers.js'

test('request.log carries the request\'s schema, re-bound on activate/deactivate, renamed or off by option', async (t) => {
  const { bh, sequelize } = await setupBoardinghouse(t)
  await bh.createSchema('acme')
  await bh.createSchema('globex')
  await bh.grant('acme', 1)
  await bh.grant('globex', 1)

  const build = async (options: Partial<BoardinghousePluginOptions>): Promise<{ lines: Array<Record<string, unknown>>, inject: (path: string) => Promise<number> }> => {
    const lines: Array<Record<string, unknown>> = []
    const stream = new Writable({ write (chunk: Buffer, _enc, done) { for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>); done() } })
    const app = Fastify({ logger: { level: 'info', stream } })
    await app.register(fastifyCookie)
    await app.register(fastifySession, { secret: 'a'.repeat(32) + 'logs-secret-logs', cookie: { secure: false } })
    await app.register(boardinghouse, { sequelize, tenantModels: ['Item'], listen: false, getUserId: () => 1, schemaFrom: (r) => (r.query as { s?: string }).s ?? null, ...options })
    app.get('/hello', async (request) => {
      request.log.info({ marker: 'first' }, 'in the schema')
      if ((request.query as { s?: string }).s === 'acme') {
        request.boardinghouse.activate('globex')
        request.log.info({ marker: 'switched' }, 'in another')
        request.boardinghouse.deactivate()
        request.log.info({ marker: 'none' }, 'in none')
      }
      return { ok: true }
    })
    t.after(async () => { await app.close() })
    await app.ready()
    return { lines, inject: async (path) => (await app.inject(path)).statusCode }
  }

  const byMarker = (lines: Array<Record<string, unknown>>, marker: string): Record<string, unknown> => {
    const line = lines.find((l) => l.marker === marker)
    assert.ok(line !== undefined, `no log line ${marker}`)
    return line
  }

  const plain = await build({})
  assert.equal(await plain.inject('/hello?s=acme'), 200)
  assert.equal(byMarker(plain.lines, 'first').schema, 'acme')
  assert.equal(byMarker(plain.lines, 'switched').schema, 'globex') // re-bound from the request's own logger, never stacked
  assert.equal(JSON.stringify(byMarker(plain.lines, 'switched')).match(/"schema"/g)?.length, 1)
  assert.equal('schema' in byMarker(plain.lines, 'none'), false)
  // Fastify's own "request completed" line is written by reply.log, made before the hook ran: it has no binding
  assert.ok(plain.lines.some((l) => l.msg === 'request completed' && 'schema' in l === false))

  const renamed = await build({ logBinding: 'tenant_schema' })
  assert.equal(await renamed.inject('/hello?s=globex'), 200)
  assert.equal(byMarker(renamed.lines, 'first').tenant_schema, 'globex')
  assert.equal('schema' in byMarker(renamed.lines, 'first'), false)

  const off = await build({ logBinding: false })
  assert.equal(await off.inject('/hello?s=globex'), 200)
  assert.equal('schema' in byMarker(off.lines, 'first'), false)

  await assert.rejects(build({ logBinding: 'not a name' as string }), { code: 'FST_BH_INVALID_OPTION' })
  await assert.rejects(build({ logBinding: 3 as unknown as string }), { code: 'FST_BH_INVALID_OPTION' })
})
