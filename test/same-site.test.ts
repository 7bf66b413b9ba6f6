/**
 * plugin/same-site.ts: which requests the switch route (and audit links) take as coming from this
 * site. `Sec-Fetch-Site` is set by the browser and cannot be set by a page's script: when it says
 * same-origin (or none: typed in the address bar), that is trusted as it is, so a TLS proxy in
 * front of a plain-HTTP app (whose `request.protocol` is http while the browser's Origin is https)
 * does not turn every switch into a 403. Without it (older browsers), Origin is compared.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify, { type FastifyInstance } from 'fastify'
import { assertSameSite } from '../plugin/same-site.js'
import { buildTestApp, login } from './fixtures/app.js'
import { setupBoardinghouse } from './helpers.js'

async function checkApp (options: { trustProxy?: boolean } = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, trustProxy: options.trustProxy ?? false })
  app.post('/check', async (request) => {
    assertSameSite(request, ['https://partner.example'])
    return { ok: true }
  })
  await app.ready()
  return app
}

test('assertSameSite: Sec-Fetch-Site is trusted when present, Origin is compared when it is absent', async (t) => {
  const app = await checkApp()
  t.after(async () => { await app.close() })
  const host = 'app.example'
  const cases: Array<[string, Record<string, string>, 200 | 403]> = [
    ['no browser headers (not a browser)', {}, 200],
    ['own Origin over http', { origin: 'http://app.example' }, 200],
    ['own Origin and same-origin', { origin: 'http://app.example', 'sec-fetch-site': 'same-origin' }, 200],
    // the bug: a TLS proxy without trustProxy; the app sees http, the browser sends https
    ['TLS proxy: https Origin over http, same-origin', { origin: 'https://app.example', 'sec-fetch-site': 'same-origin' }, 200],
    ['TLS proxy: https Origin over http, none', { origin: 'https://app.example', 'sec-fetch-site': 'none' }, 200],
    ['TLS proxy, old browser (no Sec-Fetch-Site): Origin differs in scheme', { origin: 'https://app.example' }, 403],
    ['foreign Origin, no Sec-Fetch-Site', { origin: 'https://evil.example' }, 403],
    ['foreign Origin, cross-site', { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }, 403],
    ['cross-site without Origin', { 'sec-fetch-site': 'cross-site' }, 403],
    ['same-site (a sibling subdomain) without Origin', { 'sec-fetch-site': 'same-site' }, 403],
    ['same-site with own-looking Origin', { origin: 'http://app.example', 'sec-fetch-site': 'same-site' }, 403],
    ['an unknown Sec-Fetch-Site value', { origin: 'http://app.example', 'sec-fetch-site': 'bogus' }, 403],
    ['trusted Origin, cross-site', { origin: 'https://partner.example', 'sec-fetch-site': 'cross-site' }, 200],
    ['trusted Origin, no Sec-Fetch-Site', { origin: 'https://partner.example' }, 200],
    ['Origin "null" (sandboxed or opaque), no Sec-Fetch-Site', { origin: 'null' }, 403]
  ]
  for (const [name, headers, status] of cases) {
    const res = await app.inject({ method: 'POST', url: '/check', headers: { host, ...headers } })
    assert.equal(res.statusCode, status, `${name}: ${res.body}`)
    if (status === 403) assert.equal(res.json().code, 'FST_BH_CROSS_SITE', name)
  }
})

test('assertSameSite: with trustProxy, the forwarded scheme makes an https Origin this site', async (t) => {
  const app = await checkApp({ trustProxy: true })
  t.after(async () => { await app.close() })
  const res = await app.inject({ method: 'POST', url: '/check', headers: { host: 'app.example', 'x-forwarded-proto': 'https', origin: 'https://app.example' } })
  assert.equal(res.statusCode, 200, res.body)
  const foreign = await app.inject({ method: 'POST', url: '/check', headers: { host: 'app.example', 'x-forwarded-proto': 'https', origin: 'https://evil.example' } })
  assert.equal(foreign.statusCode, 403)
})

test('the switch route behind a TLS proxy without trustProxy: same-origin switches, cross-site does not', async (t) => {
  const { bh, sequelize } = await setupBoardinghouse(t)
  for (const s of ['acme', 'globex']) {
    await bh.createSchema(s)
    await bh.grant(s, 1)
  }
  const app = await buildTestApp({ sequelize })
  t.after(async () => { await app.close() })
  const alice = await login(app, 1)
  const change = async (schema: string, headers: Record<string, string>) =>
    await app.inject({ method: 'POST', url: '/__change_schema__', payload: { schema }, headers: { cookie: alice, host: 'app.example', ...headers } })
  const whoami = async () => (await app.inject({ method: 'GET', url: '/whoami', headers: { cookie: alice } })).json().tenant

  const switched = await change('acme', { origin: 'https://app.example', 'sec-fetch-site': 'same-origin' })
  assert.equal(switched.statusCode, 200, switched.body)
  assert.deepEqual(switched.json(), { schema: 'acme', name: 'acme' })
  assert.deepEqual(await whoami(), { schema: 'acme', name: 'acme' })

  const refused = await change('globex', { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' })
  assert.equal(refused.statusCode, 403)
  assert.equal(refused.json().code, 'FST_BH_CROSS_SITE')
  const oldBrowser = await change('globex', { origin: 'https://app.example' })
  assert.equal(oldBrowser.statusCode, 403, 'without Sec-Fetch-Site the Origin must match the request as the app sees it')
  assert.equal(oldBrowser.json().code, 'FST_BH_CROSS_SITE')
  assert.deepEqual(await whoami(), { schema: 'acme', name: 'acme' }, 'refused switches changed nothing')
})
