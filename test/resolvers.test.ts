import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import boardinghouse, { anonymousAllowed, checkAnonymous, normalizeHost, resolvers, type SchemaResolver } from '../plugin/index.js'
import { setupBoardinghouse } from './helpers.js'
import type { Sequelize } from 'sequelize'

const ADMIN = 99

async function buildApp (sequelize: Sequelize, fastifyOptions: { trustProxy?: boolean } = {}): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, ...fastifyOptions })
  await app.register(boardinghouse, {
    sequelize,
    tenantModels: ['Item'],
    sessionSchema: false,
    changeSchemaRoute: false,
    listen: false,
    getUserId: (request) => { const id = request.headers['x-user-id']; return typeof id === 'string' ? Number(id) : null },
    isAdmin: (_request, userId) => userId === ADMIN
  })
  const sub = resolvers.subdomain({ baseDomain: 'Example.COM', ignore: ['www'] })
  const routes: Record<string, SchemaResolver> = {
    '/sub/who': sub,
    '/dom/who': resolvers.domain(),
    '/hdr/who': resolvers.header('X-Tenant'),
    '/t/:schema/who': resolvers.param('schema'),
    '/any/who': resolvers.first(resolvers.domain(), sub, resolvers.header('x-tenant'))
  }
  for (const [url, schemaFrom] of Object.entries(routes)) {
    app.get(url, { config: { boardinghouse: { schemaFrom } } }, async (request) => ({ schema: request.tenant?.schema ?? null }))
  }
  const Item = sequelize.models.Item as NonNullable<typeof sequelize.models.Item>
  app.get('/t/:schema/items', { config: { boardinghouse: { schemaFrom: resolvers.param('schema') } } },
    async (request) => ({ schema: request.tenant?.schema ?? null, titles: (await Item.findAll()).map((i) => i.get('title')) }))
  // the anonymous marker, read as request.ts will read it (the resolver is called by the handler here)
  const allow = resolvers.first(resolvers.header('x-deny'), resolvers.header('x-tenant', { anonymous: 'allow' }))
  app.get('/anonymous', async (request) => {
    const schema = await allow(request)
    const bh = app.boardinghouse
    const allowed = anonymousAllowed(request, schema)
    let info: unknown = null
    try { info = checkAnonymous(bh.registry.peek() ?? await bh.registry.get(), schema) } catch (err) { info = (err as { code: string }).code }
    return { schema, allowed, info }
  })
  await app.ready()
  return app
}

interface Answer { status: number, code: string | undefined, schema: string | null | undefined }

test('the built-in resolvers', async (t) => {
  const { bh, sequelize } = await setupBoardinghouse(t)
  const Item = sequelize.models.Item as NonNullable<typeof sequelize.models.Item>
  for (const s of ['acme', 'globex', 'initech', 'gone', 'big_co']) {
    await bh.createSchema(s)
    await bh.runInSchema(s, async () => { await Item.create({ title: `${s}:first` }) })
  }
  await bh.grant('acme', 1)
  await bh.grant('initech', 1)
  await bh.grant('gone', 1)
  await bh.grant('big_co', 1)
  await bh.grant('globex', 2)
  const hosts: Record<string, string> = { acme: 'shop.acme.test', globex: 'globex.test', initech: 'initech.test', gone: 'gone.test', big_co: 'big.test' }
  for (const [schema, host] of Object.entries(hosts)) await bh.addDomain(schema, host, { primary: true })
  await bh.deleteSchema('initech')
  await bh.deleteSchema('gone', { drop: true })
  const app = await buildApp(sequelize)
  t.after(async () => { await app.close() })

  const ask = async (url: string, headers: Record<string, string | string[]>, user?: number): Promise<Answer> => {
    const res = await app.inject({ method: 'GET', url, headers: { ...headers, ...(user !== undefined ? { 'x-user-id': String(user) } : {}) } })
    const body = res.json() as { code?: string, schema?: string | null }
    return { status: res.statusCode, code: body.code, schema: body.schema }
  }
  const kinds: Record<string, (schema: string) => [string, Record<string, string>]> = {
    subdomain: (s) => ['/sub/who', { host: `${s.replace(/_/g, '-')}.example.com` }],
    domain: (s) => ['/dom/who', { host: hosts[s] as string }],
    header: (s) => ['/hdr/who', { host: 'app.example.org', 'x-tenant': s }],
    param: (s) => [`/t/${s}/who`, { host: 'app.example.org' }],
    'first(domain, subdomain, header)': (s) => ['/any/who', { host: 'app.example.org', 'x-tenant': s }]
  }

  await t.test('member, non-member, admin, anonymous, inactive and dropped schemas, for every resolver', async () => {
    for (const [kind, request] of Object.entries(kinds)) {
      const via = async (schema: string, user?: number): Promise<Answer> => { const [url, headers] = request(schema); return await ask(url, headers, user) }
      assert.deepEqual(await via('acme', 1), { status: 200, code: undefined, schema: 'acme' }, `${kind}: member`)
      assert.deepEqual(await via('big_co', 1), { status: 200, code: undefined, schema: 'big_co' }, `${kind}: member, "-" in a host label reads as "_"`)
      assert.deepEqual(await via('acme', 2), { status: 403, code: 'FST_BH_FORBIDDEN_SCHEMA', schema: undefined }, `${kind}: non-member`)
      assert.deepEqual(await via('acme', ADMIN), { status: 200, code: undefined, schema: 'acme' }, `${kind}: admin`)
      assert.deepEqual(await via('globex', ADMIN), { status: 200, code: undefined, schema: 'globex' }, `${kind}: admin`)
      assert.deepEqual(await via('acme'), { status: 401, code: 'FST_BH_UNAUTHENTICATED', schema: undefined }, `${kind}: anonymous is refused by default`)
      assert.deepEqual(await via('initech', 1), { status: 404, code: 'FST_BH_SCHEMA_INACTIVE', schema: undefined }, `${kind}: inactive`)
      assert.deepEqual(await via('initech', ADMIN), { status: 404, code: 'FST_BH_SCHEMA_INACTIVE', schema: undefined }, `${kind}: inactive, admin`)
      const dropped = await via('gone', 1)
      if (kind === 'domain') {
        // the dropped schema took its domain with it: the host maps to nothing
        assert.deepEqual(dropped, { status: 200, code: undefined, schema: null }, kind)
      } else {
        assert.deepEqual(dropped, { status: 404, code: 'FST_BH_SCHEMA_NOT_FOUND', schema: undefined }, `${kind}: dropped`)
      }
    }
    assert.equal(bh.registry.peek()?.domains.has('gone.test'), false)
  })

  await t.test('rows come from the resolved schema only', async () => {
    const res = await app.inject({ url: '/t/acme/items', headers: { 'x-user-id': '1' } })
    assert.deepEqual(res.json(), { schema: 'acme', titles: ['acme:first'] })
    assert.equal((await app.inject({ url: '/t/globex/items', headers: { 'x-user-id': '1' } })).statusCode, 403)
  })

  await t.test('what resolves no schema: the base domain, ignored labels, other hosts, no header', async () => {
    for (const host of ['example.com', 'www.example.com', 'EXAMPLE.com.', 'app.example.org', 'example.com.evil.test', 'notexample.com']) {
      assert.deepEqual(await ask('/sub/who', { host }, 1), { status: 200, code: undefined, schema: null }, host)
    }
    assert.deepEqual(await ask('/dom/who', { host: 'unmapped.test' }, 1), { status: 200, code: undefined, schema: null })
    assert.deepEqual(await ask('/hdr/who', { host: 'app.example.org' }, 1), { status: 200, code: undefined, schema: null })
    // a well-formed host under the base domain that names no schema is "schema not found"
    for (const host of ['nosuch.example.com', 'a.b.example.com', 'public.example.com', 'pg-x.example.com', 'x--y.example.com']) {
      assert.deepEqual(await ask('/sub/who', { host }, 1), { status: 404, code: 'FST_BH_SCHEMA_NOT_FOUND', schema: undefined }, host)
    }
  })

  await t.test('hosts are normalised: case, port, trailing dot, IDN and punycode', async () => {
    for (const host of ['ACME.Example.COM', 'acme.example.com.', 'acme.example.com:8080', 'Acme.EXAMPLE.com.:443']) {
      assert.deepEqual(await ask('/sub/who', { host }, 1), { status: 200, code: undefined, schema: 'acme' }, host)
    }
    for (const host of ['SHOP.acme.test', 'shop.acme.test.', 'shop.acme.test:3000']) {
      assert.deepEqual(await ask('/dom/who', { host }, 1), { status: 200, code: undefined, schema: 'acme' }, host)
    }
    await bh.addDomain('globex', 'Bücher.TEST')
    assert.deepEqual((await bh.domainsOf('globex')).map((d) => d.host), ['globex.test', 'xn--bcher-kva.test'])
    for (const host of ['xn--bcher-kva.test', 'XN--BCHER-KVA.test.', 'bücher.test', 'BÜCHER.test:80']) {
      assert.deepEqual(await ask('/dom/who', { host }, 2), { status: 200, code: undefined, schema: 'globex' }, host)
    }
  })

  await t.test('malformed hosts: FST_BH_INVALID_HOST (400), for the subdomain and the domain resolver', async () => {
    const bad = ['acme..example.com', 'acme.example.com..', '.acme.example.com', '127.0.0.1', '127.0.0.1:3000', '10.1.2.3', '0x7f.1', '[::1]', '[::1]:3000',
      'acme.example.com, globex.example.com', 'acme.example.com,globex.example.com', 'acme example.com', 'acme.example.com:99999', 'acme.example.com:',
      'acme.example.com:80:80', 'xn--zz.example.com', 'ac_me.example.com', '-acme.example.com', 'acme-.example.com', 'user@acme.example.com',
      `${'a'.repeat(64)}.example.com`, 'acme.example.com/x', '"acme.example.com"']
    for (const url of ['/sub/who', '/dom/who', '/any/who']) {
      for (const host of bad) {
        assert.deepEqual(await ask(url, { host }, 1), { status: 400, code: 'FST_BH_INVALID_HOST', schema: undefined }, `${url} ${host}`)
      }
    }
  })

  await t.test('two Host headers are refused (Node keeps the first one silently)', async () => {
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as net.AddressInfo
    const raw = async (head: string): Promise<string> => await new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1')
      let out = ''
      socket.on('data', (d: Buffer) => { out += d.toString() })
      socket.on('end', () => { resolve(out) })
      socket.on('error', reject)
      socket.write(`GET /sub/who HTTP/1.1\r\n${head}X-User-Id: 1\r\nConnection: close\r\n\r\n`)
    })
    const twice = await raw('Host: acme.example.com\r\nHost: globex.example.com\r\n')
    assert.match(twice, /^HTTP\/1\.1 400 /)
    assert.match(twice, /FST_BH_INVALID_HOST/)
    const once = await raw('Host: acme.example.com\r\n')
    assert.match(once, /^HTTP\/1\.1 200 /)
    assert.match(once, /"schema":"acme"/)
  })

  await t.test('malformed tenant headers: FST_BH_INVALID_TENANT_HEADER (400); invalid names 400', async () => {
    const bad: Array<string | string[]> = ['ac me', ' acme', 'acme ', '"acme"', "'acme'", 'a'.repeat(64), 'acme,globex', 'acme, globex', ['acme', 'globex'], ['acme', 'acme'], 'acme;x', '', 'acme\t']
    for (const value of bad) {
      assert.deepEqual(await ask('/hdr/who', { host: 'app.example.org', 'x-tenant': value }, 1), { status: 400, code: 'FST_BH_INVALID_TENANT_HEADER', schema: undefined }, JSON.stringify(value))
    }
    assert.deepEqual(await ask('/hdr/who', { 'x-tenant': 'a'.repeat(63) }, 1), { status: 404, code: 'FST_BH_SCHEMA_NOT_FOUND', schema: undefined })
    assert.deepEqual(await ask('/hdr/who', { 'x-tenant': 'Acme' }, 1), { status: 400, code: 'FST_BH_INVALID_SCHEMA_NAME', schema: undefined })
    assert.deepEqual(await ask('/hdr/who', { 'x-tenant': '__template__' }, ADMIN), { status: 400, code: 'FST_BH_TEMPLATE_SCHEMA', schema: undefined })
    assert.deepEqual(await ask('/t/__template__/who', {}, ADMIN), { status: 400, code: 'FST_BH_TEMPLATE_SCHEMA', schema: undefined })
    assert.deepEqual(await ask('/t/Acme/who', {}, ADMIN), { status: 400, code: 'FST_BH_INVALID_SCHEMA_NAME', schema: undefined })
    assert.deepEqual(await ask(`/t/${'a'.repeat(64)}/who`, {}, ADMIN), { status: 400, code: 'FST_BH_INVALID_SCHEMA_NAME', schema: undefined })
  })

  await t.test('first(): the first resolver that gives a schema wins; an error of one is the answer', async () => {
    // domain first: the mapped host wins over the header
    assert.deepEqual(await ask('/any/who', { host: 'globex.test', 'x-tenant': 'acme' }, ADMIN), { status: 200, code: undefined, schema: 'globex' })
    assert.deepEqual(await ask('/any/who', { host: 'acme.example.com', 'x-tenant': 'globex' }, ADMIN), { status: 200, code: undefined, schema: 'acme' })
    assert.deepEqual(await ask('/any/who', { host: 'app.example.org' }, 1), { status: 200, code: undefined, schema: null })
    assert.deepEqual(await ask('/any/who', { host: '127.0.0.1', 'x-tenant': 'acme' }, 1), { status: 400, code: 'FST_BH_INVALID_HOST', schema: undefined })
  })

  await t.test('X-Forwarded-Host is read only with trustProxy', async () => {
    const headers = { host: 'www.example.com', 'x-forwarded-host': 'acme.example.com' }
    assert.deepEqual(await ask('/sub/who', headers, 1), { status: 200, code: undefined, schema: null })
    const proxied = await buildApp(sequelize, { trustProxy: true })
    t.after(async () => { await proxied.close() })
    const res = await proxied.inject({ url: '/sub/who', headers: { ...headers, 'x-user-id': '1' } })
    assert.deepEqual(res.json(), { schema: 'acme' })
    const bad = await proxied.inject({ url: '/sub/who', headers: { host: 'www.example.com', 'x-forwarded-host': '127.0.0.1', 'x-user-id': '1' } })
    assert.equal(bad.statusCode, 400)
    assert.equal(bad.json().code, 'FST_BH_INVALID_HOST')
  })

  await t.test('the anonymous marker: allowed only for the schema a resolver made with anonymous: "allow" gave', async () => {
    assert.equal(resolvers.header('x-tenant').anonymous, 'deny')
    assert.equal(resolvers.header('x-tenant', { anonymous: 'allow' }).anonymous, 'allow')
    const get = async (headers: Record<string, string>): Promise<unknown> => (await app.inject({ url: '/anonymous', headers })).json()
    assert.deepEqual(await get({ 'x-tenant': 'acme' }), { schema: 'acme', allowed: true, info: { schema: 'acme', name: 'acme' } })
    assert.deepEqual(await get({ 'x-deny': 'acme' }), { schema: 'acme', allowed: false, info: { schema: 'acme', name: 'acme' } })
    assert.deepEqual(await get({ 'x-tenant': 'initech' }), { schema: 'initech', allowed: true, info: 'FST_BH_SCHEMA_INACTIVE' })
    assert.deepEqual(await get({ 'x-tenant': 'gone' }), { schema: 'gone', allowed: true, info: 'FST_BH_SCHEMA_NOT_FOUND' })
    assert.deepEqual(await get({ 'x-tenant': '__template__' }), { schema: '__template__', allowed: true, info: 'FST_BH_TEMPLATE_SCHEMA' })
    assert.deepEqual(await get({}), { schema: null, allowed: false, info: 'FST_BH_INVALID_SCHEMA_NAME' })
    assert.throws(() => resolvers.header('x-tenant', { anonymous: 'yes' as never }), { code: 'FST_BH_INVALID_OPTION' })
  })

  await t.test('no database query per request, whatever the resolver', async () => {
    const requests = Object.values(kinds).flatMap((k) => [k('acme'), k('globex')])
    for (const [url, headers] of requests) await ask(url, headers, ADMIN)
    let queries = 0
    sequelize.addHook('beforeQuery', 'count-resolvers', () => { queries++ })
    try {
      for (let i = 0; i < 5; i++) {
        for (const [url, headers] of requests) assert.equal((await ask(url, headers, ADMIN)).status, 200, url)
        assert.equal((await ask('/sub/who', { host: 'nosuch.example.com' }, 1)).status, 404)
        assert.equal((await ask('/dom/who', { host: '127.0.0.1' }, 1)).status, 400)
      }
    } finally {
      sequelize.removeHook('beforeQuery', 'count-resolvers')
    }
    t.diagnostic(`${requests.length * 5 + 10} requests, ${queries} queries`)
    assert.equal(queries, 0)
  })
})

test('resolver options are validated', () => {
  for (const make of [
    () => resolvers.subdomain({ baseDomain: '127.0.0.1' }),
    () => resolvers.subdomain({ baseDomain: 'example.com:80' }),
    () => resolvers.subdomain({ baseDomain: 'a..b' }),
    () => resolvers.subdomain(undefined as never),
    () => resolvers.subdomain({ baseDomain: 'example.com', ignore: 'www' as never }),
    () => resolvers.header('x tenant'),
    () => resolvers.header(''),
    () => resolvers.param(''),
    () => resolvers.first(),
    () => resolvers.first('x' as never)
  ]) assert.throws(make, { code: 'FST_BH_INVALID_OPTION' })
  assert.equal(normalizeHost('Bücher.Example.COM.:8443'), 'xn--bcher-kva.example.com')
  assert.throws(() => normalizeHost('example.com:80', { allowPort: false }), { code: 'FST_BH_INVALID_HOST' })
})
