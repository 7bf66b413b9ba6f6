import { test } from 'node:test'
import assert from 'node:assert/strict'
import { performance } from 'node:perf_hooks'
import { QueryTypes } from 'sequelize'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import { defineExampleModels } from '../example/models/index.js'
import { EXAMPLE_TENANT_MIGRATIONS, createTestDatabase, sequelizeFor, setupBoardinghouse, runCli, type CliRun } from './helpers.js'


test('the domain table: add, remove, list; one primary per schema; a dropped schema takes its domains', async (t) => {
  const { bh, sequelize } = await setupBoardinghouse(t)
  await bh.createSchema('acme')
  await bh.createSchema('globex')
  const rows = async (): Promise<unknown[]> => await sequelize.query('SELECT host, schema_name, is_primary FROM public.boardinghouse_domain ORDER BY host', { type: QueryTypes.SELECT })

  await t.test('add normalises the host; primary moves; re-adding is idempotent', async () => {
    const added = await bh.addDomain('acme', 'Shop.ACME.test.', { primary: true })
    assert.equal(added.host, 'shop.acme.test')
    assert.equal(added.schema, 'acme')
    assert.equal(added.isPrimary, true)
    await bh.addDomain('acme', 'acme.test')
    await bh.addDomain('acme', 'bücher.test')
    assert.deepEqual((await bh.domainsOf('acme')).map((d) => [d.host, d.isPrimary]), [['shop.acme.test', true], ['acme.test', false], ['xn--bcher-kva.test', false]])
    await bh.addDomain('acme', 'ACME.test', { primary: true })
    assert.deepEqual((await bh.domainsOf('acme')).map((d) => [d.host, d.isPrimary]), [['acme.test', true], ['shop.acme.test', false], ['xn--bcher-kva.test', false]])
    await bh.addDomain('acme', 'acme.test') // primary unset: keeps its flag
    assert.equal((await bh.domainsOf('acme'))[0]?.isPrimary, true)
    assert.deepEqual(await bh.domainsOf('globex'), [])
    assert.deepEqual((await bh.listDomains()).map((d) => d.host), ['acme.test', 'shop.acme.test', 'xn--bcher-kva.test'])
  })

  await t.test('bad input: taken host 409, invalid host 400, unknown schema 404; nothing changed', async () => {
    const before = await rows()
    const cases: Array<[() => Promise<unknown>, number, string]> = [
      [async () => await bh.addDomain('globex', 'acme.test'), 409, 'FST_BH_DOMAIN_TAKEN'],
      [async () => await bh.addDomain('globex', 'ACME.TEST.', { primary: true }), 409, 'FST_BH_DOMAIN_TAKEN'],
      [async () => await bh.addDomain('globex', 'xn--bcher-kva.test'), 409, 'FST_BH_DOMAIN_TAKEN'],
      [async () => await bh.addDomain('globex', 'globex.test:8080'), 400, 'FST_BH_INVALID_HOST'],
      [async () => await bh.addDomain('globex', 'globex..test'), 400, 'FST_BH_INVALID_HOST'],
      [async () => await bh.addDomain('globex', '10.0.0.1'), 400, 'FST_BH_INVALID_HOST'],
      [async () => await bh.addDomain('globex', '[::1]'), 400, 'FST_BH_INVALID_HOST'],
      [async () => await bh.addDomain('globex', 'a.test, b.test'), 400, 'FST_BH_INVALID_HOST'],
      [async () => await bh.addDomain('globex', 'xn--zz.test'), 400, 'FST_BH_INVALID_HOST'],
      [async () => await bh.addDomain('globex', ''), 400, 'FST_BH_INVALID_HOST'],
      [async () => await bh.addDomain('globex', 42 as never), 400, 'FST_BH_INVALID_HOST'],
      [async () => await bh.addDomain('globex', 'globex.test', { primary: 'yes' as never }), 400, 'FST_BH_INVALID_INPUT'],
      [async () => await bh.addDomain('nosuch', 'nosuch.test'), 404, 'FST_BH_SCHEMA_NOT_FOUND'],
      [async () => await bh.addDomain('__template__', 'template.test'), 400, 'FST_BH_TEMPLATE_SCHEMA'],
      [async () => await bh.addDomain('Acme', 'x.test'), 400, 'FST_BH_INVALID_SCHEMA_NAME'],
      [async () => await bh.removeDomain('acme.test:80'), 400, 'FST_BH_INVALID_HOST'],
      [async () => await bh.domainsOf('nosuch'), 404, 'FST_BH_SCHEMA_NOT_FOUND']
    ]
    for (const [call, status, code] of cases) {
      await assert.rejects(call, (err: Error & { code?: string, statusCode?: number }) => {
        assert.equal(err.code, code, String(call))
        assert.equal(err.statusCode, status, String(call))
        return true
      })
    }
    assert.deepEqual(await rows(), before)
    assert.deepEqual((await bh.domainsOf('globex')), [])
  })

  await t.test('the database refuses what the library would: a host in two schemas, two primaries, unnormalised hosts', async () => {
    const before = await rows()
    for (const sql of [
      "INSERT INTO public.boardinghouse_domain (host, schema_name) VALUES ('acme.test', 'globex')",
      "UPDATE public.boardinghouse_domain SET is_primary = true WHERE host = 'shop.acme.test'",
      "INSERT INTO public.boardinghouse_domain (host, schema_name) VALUES ('Globex.test', 'globex')",
      "INSERT INTO public.boardinghouse_domain (host, schema_name) VALUES ('globex.test:80', 'globex')",
      "INSERT INTO public.boardinghouse_domain (host, schema_name) VALUES ('globex.test.', 'globex')",
      "INSERT INTO public.boardinghouse_domain (host, schema_name) VALUES ('globex..test', 'globex')",
      "INSERT INTO public.boardinghouse_domain (host, schema_name) VALUES ('nosuch.test', 'nosuch')"
    ]) {
      await assert.rejects(sequelize.query(sql), (err: { parent?: { code?: string } }) => {
        assert.match(err.parent?.code ?? '', /^23(505|514|503)$/, sql) // unique, check, foreign key
        return true
      })
    }
    assert.deepEqual(await rows(), before)
  })

  await t.test('remove; a dropped schema takes its domains; a deactivated one keeps them', async () => {
    assert.equal(await bh.removeDomain('SHOP.acme.test.'), true)
    assert.equal(await bh.removeDomain('shop.acme.test'), false)
    await bh.addDomain('globex', 'globex.test', { primary: true })
    await bh.deleteSchema('globex')
    assert.deepEqual((await bh.domainsOf('globex')).map((d) => d.host), ['globex.test'])
    await bh.deleteSchema('globex', { drop: true })
    assert.deepEqual(await rows(), [{ host: 'acme.test', schema_name: 'acme', is_primary: true }, { host: 'xn--bcher-kva.test', schema_name: 'acme', is_primary: false }])
    assert.equal(bh.registry.peek()?.domains.has('globex.test') ?? (await bh.registry.get()).domains.has('globex.test'), false)
    // the host is free again
    await bh.createSchema('globex')
    assert.equal((await bh.addDomain('globex', 'globex.test')).schema, 'globex')
  })
})

test('a domain added through one process is seen by another (two Sequelize instances, LISTEN/NOTIFY)', async (t) => {
  const { bh: a, url } = await setupBoardinghouse(t)
  const other = sequelizeFor(t, url)
  defineExampleModels(other)
  const b = new Boardinghouse({ sequelize: other, tenantModels: ['Item'], tenantMigrations: EXAMPLE_TENANT_MIGRATIONS })
  await a.listen()
  await b.listen()
  t.after(async () => { await a.close(); await b.close() })
  // negative control: a third instance that does not listen keeps its cached snapshot
  const third = sequelizeFor(t, url)
  defineExampleModels(third)
  const deaf = new Boardinghouse({ sequelize: third, tenantModels: ['Item'], tenantMigrations: EXAMPLE_TENANT_MIGRATIONS })
  await a.createSchema('acme')
  await deaf.registry.get()
  const seen = async (host: string): Promise<string | undefined> => (b.registry.peek() ?? await b.registry.get()).domains.get(host)?.schema
  assert.equal(await seen('acme.test'), undefined) // b has it cached now
  const until = async (probe: () => Promise<boolean>): Promise<number> => {
    const start = performance.now()
    while (performance.now() - start < 1000) {
      if (await probe()) return performance.now() - start
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
    throw new Error('not seen within 1 s')
  }
  await a.addDomain('acme', 'acme.test')
  t.diagnostic(`addDomain seen by the other instance after ${(await until(async () => await seen('acme.test') === 'acme')).toFixed(1)} ms`)
  assert.equal((await deaf.registry.get()).domains.has('acme.test'), false, 'the instance without listen() still has the old snapshot')
  await a.removeDomain('acme.test')
  t.diagnostic(`removeDomain seen after ${(await until(async () => await seen('acme.test') === undefined)).toFixed(1)} ms`)
  await a.addDomain('acme', 'acme.test')
  await until(async () => await seen('acme.test') === 'acme')
  await a.deleteSchema('acme', { drop: true })
  t.diagnostic(`a drop's cascade seen after ${(await until(async () => await seen('acme.test') === undefined)).toFixed(1)} ms`)
})

test('the CLI: schema domain add, remove, list', async (t) => {
  const url = await createTestDatabase(t)
  const env = { ...process.env, DATABASE_URL: url }
  const cli = async (...args: string[]): Promise<CliRun> => await runCli(env, ...args)
  const oneLineError = (r: { code: number | null, stderr: string }, code: string): void => {
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stderr, new RegExp(`^boardinghouse: ${code}: [^\n]*\n$`))
  }
  assert.equal((await cli('migrate')).code, 0)
  assert.equal((await cli('schema', 'create', 'acme')).code, 0)
  assert.equal((await cli('schema', 'create', 'globex')).code, 0)
  let r = await cli('schema', 'domain', 'add', 'acme', 'Shop.Acme.TEST.', '--primary')
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stdout, 'mapped shop.acme.test to acme (primary)\n')
  assert.equal((await cli('schema', 'domain', 'add', 'acme', 'acme.test')).stdout, 'mapped acme.test to acme\n')
  assert.equal((await cli('schema', 'domain', 'add', 'globex', 'globex.test')).code, 0)
  assert.equal((await cli('schema', 'domain', 'list', 'acme')).stdout, 'shop.acme.test\tacme\t(primary)\nacme.test\tacme\n')
  r = await cli('schema', 'domain', 'list', '--json')
  assert.deepEqual(JSON.parse(r.stdout), [
    { host: 'shop.acme.test', schema: 'acme', isPrimary: true }, { host: 'acme.test', schema: 'acme', isPrimary: false }, { host: 'globex.test', schema: 'globex', isPrimary: false }])
  oneLineError(await cli('schema', 'domain', 'add', 'globex', 'acme.test'), 'FST_BH_DOMAIN_TAKEN')
  oneLineError(await cli('schema', 'domain', 'add', 'globex', '127.0.0.1'), 'FST_BH_INVALID_HOST')
  oneLineError(await cli('schema', 'domain', 'add', 'nosuch', 'nosuch.test'), 'FST_BH_SCHEMA_NOT_FOUND')
  oneLineError(await cli('schema', 'domain', 'list', 'nosuch'), 'FST_BH_SCHEMA_NOT_FOUND')
  assert.equal((await cli('schema', 'domain', 'remove', 'ACME.test')).stdout, 'removed ACME.test\n')
  assert.equal((await cli('schema', 'domain', 'remove', 'acme.test')).stdout, 'acme.test was not mapped\n')
  // nothing else changed
  assert.equal((await cli('schema', 'domain', 'list')).stdout, 'shop.acme.test\tacme\t(primary)\nglobex.test\tglobex\n')
})
