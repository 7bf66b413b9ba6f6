import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { FastifyInstance } from 'fastify'
import { buildTestApp } from './fixtures/app.js'
import { buildExampleApp } from '../example/app.js'
import { defineExampleModels } from '../example/models/index.js'
import { seed } from '../example/seed.js'
import { Boardinghouse } from '../plugin/index.js'
import { safeRedirectPath } from '../plugin/switch.js'
import { EXAMPLE_SHARED_MIGRATIONS, EXAMPLE_TENANT_MIGRATIONS, createTestDatabase, sequelizeFor, setupBoardinghouse } from './helpers.js'

/** `next` values a hostile user may send: non-ASCII (headers refuse > U+00FF), separators, controls, lone surrogates, dot segments, other sites. */
const HOSTILE: string[] = [
  '/€', '/\u2028', '/\u2029', '/\uff0f', '/\uff0fevil.example', '/\uff3cevil.example', '/é', '/ÿ', '/\u0100', '/😀', '/\ud800', '/\udfff/x', '/a\u0085b',
  '/\u00a0', '/\u200b', '/\ufeff', '/\u202e', '/?q=€', '/?q=\u2028', '/#€', '/#\u2028', '/items?x=1#é', '/a b', '/a\tb', '/\t/evil.example', '/\n', '/\r\nSet-Cookie: a=b',
  '/x\u0000', '/x\u007f', '/%', '/%zz', '/%E2%82', '/%0d%0aSet-Cookie:%20a=b', '/%2f%2fevil.example', '/.//evil.example', '/./\\evil.example', '/a/../..//evil.example', '/..//evil.example',
  '/%2e%2e//evil.example', '//evil.example', '///evil.example', '/\\evil.example', '\\\\evil.example', 'https://evil.example/', 'javascript:alert(1)', 'data:text/html,x', ' /items',
  'items', '?x', '#x', '/"><script>alert(1)</script>', "/'", '/`', '/{}', '/|^', '/<>', `/${'€'.repeat(600)}`, `/${'a'.repeat(2047)}`, `/${'a'.repeat(2048)}`, '/items', '/items?page=2#top'
]

/** `s` with lone surrogates replaced by U+FFFD (String.prototype.toWellFormed, ES2024). */
function wellFormed (s: string): string {
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd')
}

/** application/x-www-form-urlencoded, tolerating lone surrogates (sent as U+FFFD, as a browser would). */
function form (fields: Record<string, string>): string {
  return Object.entries(fields).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(wellFormed(v))}`).join('&')
}

function assertSafeLocation (location: string | null, probe: string): void {
  assert.ok(location !== null, `no Location for ${JSON.stringify(probe)}`)
  assert.match(location, /^\/(?![/\\])[\x21-\x7e]*$/, `Location ${JSON.stringify(location)} for ${JSON.stringify(probe)}`)
}

async function listen (app: FastifyInstance): Promise<string> {
  return (await app.listen({ port: 0, host: '127.0.0.1' })).replace(/\/$/, '')
}

test('safeRedirectPath: a same-origin path, encoded so any runtime takes it as a header, else null', () => {
  assert.equal(safeRedirectPath('/items?page=2#top'), '/items?page=2#top')
  assert.equal(safeRedirectPath('/€'), '/%E2%82%AC')
  assert.equal(safeRedirectPath('/\uff0fevil.example'), '/%EF%BC%8Fevil.example')
  for (const bad of ['//evil.example', '/\\evil.example', '/.//evil.example', '/a/../..//evil.example', 'https://evil.example/', '/\t/evil.example', '/\n', 'items', '', `/${'a'.repeat(2048)}`]) {
    assert.equal(safeRedirectPath(bad), null, JSON.stringify(bad))
  }
  for (const probe of HOSTILE) {
    const out = safeRedirectPath(probe)
    if (out !== null) assertSafeLocation(out, probe)
  }
})

test('hostile `next` on the switch route (JSON and form) against a listening server: 303 or 4xx, and the process lives', async (t) => {
  const { bh, sequelize } = await setupBoardinghouse(t)
  await bh.createSchema('acme')
  await bh.grant('acme', 1)
  const app = await buildTestApp({ sequelize })
  t.after(async () => { await app.close() })
  const base = await listen(app)
  const login = await fetch(`${base}/test/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: 1 }) })
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] as string
  const statuses = new Map<number, number>()
  for (const next of HOSTILE) {
    for (const [type, body] of [
      ['application/json', JSON.stringify({ schema: 'acme', next })],
      ['application/x-www-form-urlencoded', form({ schema: 'acme', next })],
      ['application/x-www-form-urlencoded', `schema=acme&next=${wellFormed(next).replace(/[&%+#]/g, encodeURIComponent)}`] // raw UTF-8 bytes, as a careless client sends them
    ] as const) {
      const res = await fetch(`${base}/__change_schema__`, { method: 'POST', headers: { 'content-type': type, cookie }, body, redirect: 'manual', signal: AbortSignal.timeout(20_000) })
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
      const text = await res.text()
      assert.ok(res.status === 303 || res.status === 400 || res.status === 413, `${res.status} for ${JSON.stringify(next)} (${type}): ${text}`)
      if (res.status === 303) assertSafeLocation(res.headers.get('location'), next)
      else assert.match((JSON.parse(text) as { code: string }).code, /^FST_(BH_INVALID_REDIRECT|ERR_VALIDATION|ERR_CTP_BODY_TOO_LARGE)$/)
    }
  }
  t.diagnostic(`statuses: ${JSON.stringify(Object.fromEntries(statuses))}`)
  // still alive and still serving
  const who = await fetch(`${base}/whoami`, { headers: { cookie } })
  assert.equal(who.status, 200)
  assert.equal((await who.json() as { tenant: { schema: string } }).tenant.schema, 'acme')
})

test('hostile `next` on the example\'s login page and login form: the process lives, redirects stay on the site', async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url)
  const models = defineExampleModels(sequelize)
  const bh = new Boardinghouse({ sequelize, tenantModels: ['Item'], sharedMigrations: EXAMPLE_SHARED_MIGRATIONS, tenantMigrations: EXAMPLE_TENANT_MIGRATIONS })
  await bh.migrate()
  await seed(bh, models)
  const app = await buildExampleApp({ sequelize, sessionSecret: 's'.repeat(40) })
  t.after(async () => { await app.close() })
  const base = await listen(app)
  for (const next of HOSTILE) {
    const page = await fetch(`${base}/login?next=${encodeURIComponent(wellFormed(next))}`, { signal: AbortSignal.timeout(20_000) })
    assert.equal(page.status, 200, JSON.stringify(next))
    const html = await page.text()
    const token = /name="_csrf" value="([^"]+)"/.exec(html)?.[1] ?? ''
    const cookie = (page.headers.get('set-cookie') ?? '').split(';')[0] as string
    const res = await fetch(`${base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: form({ _csrf: token, username: 'alice', password: 'alice', next }),
      redirect: 'manual',
      signal: AbortSignal.timeout(20_000) // a response that never comes (a throw after the handler) must fail, not hang
    })
    assert.equal(res.status, 303, `${res.status} for ${JSON.stringify(next)}: ${(await res.text()).slice(0, 300)}`)
    assertSafeLocation(res.headers.get('location'), next)
  }
  assert.equal((await fetch(`${base}/me`)).status, 200)
})
