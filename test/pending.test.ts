/**
 * Pending schemas (plugin/pending.ts, option pendingSchemas): createSchema claims a spare cloned
 * ahead of time (a rename in one transaction) instead of cloning; the pool is refilled in the
 * background. The template (test/fixtures/pending-migrations/) has functions and a procedure whose
 * pinned search_path names the schema, an enum, a sequence named in a default, identity, a foreign
 * key, a view and a trigger.
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import type pg from 'pg'
import type { Sequelize } from 'sequelize'
import boardinghouse, { resolvers } from '../plugin/index.js'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import type { BoardinghouseOptions } from '../plugin/options.js'
import { PENDING_LOCK_KEY, REFILL_BATCH } from '../plugin/pending.js'
import { defineExampleModels } from '../example/models/index.js'
import { connect, createTestDatabase, hasCode, registryState, sequelizeFor, runCli, type CliRun } from './helpers.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const MIGRATIONS = fileURLToPath(new URL('./fixtures/pending-migrations/', import.meta.url))
const FINGERPRINT = readFileSync(new URL('./fixtures/schema-fingerprint.sql', import.meta.url), 'utf8')
const GUARD = '__boardinghouse_template_guard'

interface World {
  url: string
  sequelize: Sequelize
  bh: Boardinghouse
  client: pg.Client
  /** Another Boardinghouse on the same Sequelize instance (closed when the test ends). */
  make: (options?: Partial<BoardinghouseOptions>) => Boardinghouse
}

/** A fresh database migrated with the pending template, the fingerprint fixture installed, and `bh` (options given). */
async function world (t: TestContext, options: Partial<BoardinghouseOptions> = {}): Promise<World> {
  const instances: Boardinghouse[] = []
  // registered first, so it runs first: background refills stop before the database is dropped
  t.after(async () => { for (const instance of instances) await instance.close() })
  const url = await createTestDatabase(t, 'bh_pending')
  const sequelize = sequelizeFor(t, url)
  defineExampleModels(sequelize)
  const make = (more: Partial<BoardinghouseOptions> = {}): Boardinghouse => {
    const instance = new Boardinghouse({ sequelize, tenantModels: ['Item'], tenantMigrations: MIGRATIONS, ...options, ...more })
    instances.push(instance)
    return instance
  }
  const bh = make()
  await bh.migrate()
  const client = await connect(t, url)
  await client.query(FINGERPRINT)
  return { url, sequelize, bh, client, make }
}

interface Spare { name: string, oid: number | null, version: string }

/** The pool's rows, oldest first, with their schema's OID (null: no such schema). */
async function spares (client: pg.Client): Promise<Spare[]> {
  const { rows } = await client.query(`SELECT p.schema_name AS name, n.oid::int AS oid, p.template_version AS version
    FROM public.boardinghouse_pending p LEFT JOIN pg_namespace n ON n.nspname = p.schema_name ORDER BY p.created_at, p.schema_name`)
  return rows as Spare[]
}

/** Every schema with a spare's internal name. */
async function spareSchemas (client: pg.Client): Promise<string[]> {
  const { rows } = await client.query("SELECT nspname::text AS name FROM pg_namespace WHERE nspname ~ '^__pending_' ORDER BY 1")
  return rows.map((r: { name: string }) => r.name)
}

async function oidOf (client: pg.Client, schema: string): Promise<number | null> {
  const { rows } = await client.query('SELECT oid::int AS oid FROM pg_namespace WHERE nspname = $1', [schema])
  return (rows[0] as { oid: number } | undefined)?.oid ?? null
}

/** No spare lost, none doubled: every row has its schema, every spare schema its row, names distinct. */
async function assertConsistent (client: pg.Client): Promise<Spare[]> {
  const rows = await spares(client)
  assert.deepEqual(rows.filter((r) => r.oid === null), [], 'rows without a schema')
  assert.deepEqual(rows.map((r) => r.name).sort(), await spareSchemas(client), 'spare schemas and rows differ')
  assert.equal(new Set(rows.map((r) => r.name)).size, rows.length)
  return rows
}

/** Waits until `bh` has no background refill queued or running (polling; fails after 60 s). */
async function idle (bh: Boardinghouse): Promise<void> {
  await new Promise((resolve) => setImmediate(resolve))
  const deadline = Date.now() + 60_000
  while ((await bh.pendingStatus()).refilling) {
    if (Date.now() > deadline) throw new Error('the background refill did not finish')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

async function templateLedger (client: pg.Client, schema: string): Promise<string[]> {
  const { rows } = await client.query('SELECT name FROM public.boardinghouse_tenant_migration WHERE schema_name = $1 ORDER BY name', [schema])
  return rows.map((r: { name: string }) => r.name)
}

interface Difference { kind: string, detail: string }

/** compare_to_template(schema, template) (test/fixtures/schema-fingerprint.sql). */
async function compare (client: pg.Client, schema: string, template = '__template__'): Promise<Difference[]> {
  const { rows } = await client.query('SELECT kind, detail FROM public.compare_to_template($1, $2)', [schema, template])
  return rows as Difference[]
}

/** Against __template__: its row guard triggers are not copied to tenants (they hold rows), by design. */
function withoutGuard (rows: Difference[]): Difference[] {
  return rows.filter((r) => !(r.kind === 'missing_in_clone' && r.detail.startsWith('trg|') && r.detail.includes(GUARD)))
}

async function proconfig (client: pg.Client, schema: string): Promise<Record<string, string[] | null>> {
  const { rows } = await client.query(`SELECT p.proname AS name, p.proconfig AS config FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = $1 ORDER BY 1`, [schema])
  return Object.fromEntries(rows.map((r: { name: string, config: string[] | null }) => [r.name, r.config]))
}

test('a claim is the fast path: the spare is renamed, registered at the head, and the pool refilled', async (t) => {
  const { bh, client, sequelize } = await world(t, { pendingSchemas: 3 })
  await bh.fillPending()
  const before = await assertConsistent(client)
  assert.equal(before.length, 3)
  const heard: string[] = []
  bh.on('schemaCreated', (e) => { heard.push(`${e.origin} ${e.schema} ${e.name}`) })

  const info = await bh.createSchema('acme', { name: 'Acme Inc.' })
  assert.equal(info.schema, 'acme')
  assert.equal(info.name, 'Acme Inc.')
  assert.deepEqual(heard, ['local acme Acme Inc.'])
  // the oldest spare became acme: same OID, its internal name gone
  assert.equal(await oidOf(client, 'acme'), before[0]?.oid)
  assert.equal(await oidOf(client, before[0]?.name ?? ''), null)
  assert.ok(!(await spares(client)).some((s) => s.name === before[0]?.name), 'its row is gone')
  assert.deepEqual((await bh.listSchemas()).map((s) => s.schema), ['acme'])
  assert.deepEqual(await templateLedger(client, 'acme'), await templateLedger(client, '__template__'))
  assert.equal((await templateLedger(client, 'acme')).length, 1)
  const status = await bh.pendingStatus()
  assert.equal(status.claimed, 1)
  assert.equal(status.missed, 0)

  // it works as a tenant: its pinned functions read its own tables
  const Item = sequelize.models.Item as NonNullable<typeof sequelize.models.Item>
  await bh.runInSchema('acme', async () => { await Item.create({ title: 'one' }); await Item.create({ title: 'two' }) })
  assert.equal((await client.query('SELECT acme.item_count()::int AS n, acme.public_first()::int AS m')).rows[0].n, 2)
  await client.query('CALL acme.close_item(1)')
  assert.deepEqual((await client.query('SELECT title FROM acme.open_items')).rows, [{ title: 'two' }])
  assert.equal((await client.query("INSERT INTO acme.tickets (note) VALUES ('x') RETURNING no")).rows[0].no, 100)

  // the refill ran in the background, off the request: the pool is back at 3, new spares only
  await idle(bh)
  const after = await assertConsistent(client)
  assert.equal(after.length, 3)
  assert.deepEqual(after.slice(0, 2).map((s) => s.name), before.slice(1).map((s) => s.name))
  assert.equal((await bh.pendingStatus()).ready, 3)
})

test('a claimed spare is indistinguishable from a fresh clone (schema-fingerprint.sql), pinned search_paths included', async (t) => {
  const { bh, client, make } = await world(t, { pendingSchemas: 2 })
  await bh.fillPending()
  const [first, second] = await spares(client)
  await bh.createSchema('claimed_one')
  assert.equal(await oidOf(client, 'claimed_one'), first?.oid, 'it was a claim')
  const cloner = make({ pendingSchemas: 0 })
  const spareOids = (await spares(client)).map((s) => s.oid)
  await cloner.createSchema('fresh_clone')
  assert.ok(!spareOids.includes(await oidOf(client, 'fresh_clone')) && second !== undefined, 'a clone')

  assert.deepEqual(await compare(client, 'claimed_one', 'fresh_clone'), [], 'claimed vs fresh clone')
  assert.deepEqual(await compare(client, 'fresh_clone', 'claimed_one'), [], 'fresh clone vs claimed')
  assert.deepEqual(withoutGuard(await compare(client, 'claimed_one')), [], 'claimed vs the template')
  assert.deepEqual(withoutGuard(await compare(client, 'fresh_clone')), [], 'fresh clone vs the template')
  const claimed = await proconfig(client, 'claimed_one')
  assert.deepEqual(claimed, {
    close_item: ['search_path=claimed_one'],
    item_count: ['search_path=claimed_one, public'],
    public_first: ['search_path=public, claimed_one, pg_temp'],
    touch: ['search_path=claimed_one, public'],
    twice_named: ['search_path=claimed_one, "$user", claimed_one', 'work_mem=8MB'],
    unpinned: ['search_path=""']
  })
  const fresh = await proconfig(client, 'fresh_clone')
  assert.deepEqual(claimed, JSON.parse(JSON.stringify(fresh).replaceAll('fresh_clone', 'claimed_one')))

  await t.test('negative control: a rename alone leaves the spare\'s name in the pinned paths, and the comparison says so', async () => {
    const spare = (await spares(client)).find((s) => s.oid !== null)
    assert.ok(spare !== undefined)
    await client.query(`ALTER SCHEMA "${spare.name}" RENAME TO renamed_only`)
    try {
      const rows = await compare(client, 'renamed_only', 'fresh_clone')
      assert.ok(rows.some((r) => r.kind === 'extra_in_clone' && r.detail.startsWith('func|item_count()') && r.detail.includes(`search_path=${spare.name}, public`)), JSON.stringify(rows))
      assert.ok(rows.some((r) => r.kind === 'missing_in_clone' && r.detail.startsWith('func|item_count()') && r.detail.includes('search_path=$S, public')), JSON.stringify(rows))
    } finally {
      await client.query(`ALTER SCHEMA renamed_only RENAME TO "${spare.name}"`)
    }
  })
})

test('concurrent claims never share a spare: 20 createSchema at once with 5 spares all succeed', async (t) => {
  const { bh, client, url } = await world(t, { pendingSchemas: 5 })
  await bh.fillPending()
  const before = await assertConsistent(client)
  assert.equal(before.length, 5)
  const names = Array.from({ length: 20 }, (_, i) => `c${String(i).padStart(2, '0')}`)
  const problems: string[] = []
  bh.on('pendingError', (e) => { problems.push(e.error.message) })
  const created = await Promise.all(names.map(async (name) => await bh.createSchema(name)))
  assert.deepEqual(problems, [], 'no claim failed (two claims on one spare would: the second finds it renamed)')
  assert.deepEqual(created.map((c) => c.schema), names)
  assert.deepEqual((await bh.listSchemas()).map((s) => s.schema), names)
  const tenantOids: Array<number | null> = []
  for (const name of names) tenantOids.push(await oidOf(client, name))
  // every spare of before went to exactly one tenant (and none is still a spare)
  for (const spare of before) assert.equal(tenantOids.filter((o) => o === spare.oid).length, 1, `${spare.name} claimed once`)
  assert.equal((await spareSchemas(client)).filter((n) => before.some((s) => s.name === n)).length, 0)
  const ledger = await templateLedger(client, '__template__')
  for (const name of names) assert.deepEqual(await templateLedger(client, name), ledger)
  const status = await bh.pendingStatus()
  assert.ok(status.claimed >= 5, `claimed ${status.claimed}`)
  assert.equal(status.claimed + status.missed, 20)
  await idle(bh)
  await assertConsistent(client)

  await t.test('the lock is what keeps claims apart (negative control: the same pick without it hands one spare out twice)', async () => {
    await bh.fillPending()
    const a = await connect(t, url)
    const b = await connect(t, url)
    const version = (await spares(client))[0]?.version ?? ''
    // a claim that waited for another's spare would wait on its rename: fail instead of hanging
    await a.query("SET lock_timeout = '5s'")
    await b.query("SET lock_timeout = '5s'")
    // the pick of boardinghouse_claim_pending, without FOR UPDATE SKIP LOCKED
    const unlocked = 'SELECT p.schema_name AS name FROM public.boardinghouse_pending p WHERE p.template_version = $1 ORDER BY p.created_at, p.schema_name LIMIT 1'
    await a.query('BEGIN')
    await b.query('BEGIN')
    const pickA = (await a.query(unlocked, [version])).rows[0]?.name as string
    const pickB = (await b.query(unlocked, [version])).rows[0]?.name as string
    assert.equal(pickA, pickB, 'without the lock both claims pick the same spare')
    await a.query('ROLLBACK')
    await b.query('ROLLBACK')
    // the claim itself, in two open transactions at once: two spares
    await a.query('BEGIN')
    await b.query('BEGIN')
    const claimA = (await a.query('SELECT claimed FROM public.boardinghouse_claim_pending($1, $2, 4)', ['neg_a', version])).rows[0]?.claimed as string
    const claimB = (await b.query('SELECT claimed FROM public.boardinghouse_claim_pending($1, $2, 4)', ['neg_b', version])).rows[0]?.claimed as string
    assert.ok(claimA.startsWith('__pending_') && claimB.startsWith('__pending_'))
    assert.notEqual(claimA, claimB, 'with the lock they take different spares')
    assert.equal(claimA, pickA)
    await a.query('ROLLBACK')
    await b.query('ROLLBACK')
    await a.end()
    await b.end()
    assert.equal((await assertConsistent(client)).length, 5, 'rolled back claims lose nothing')
  })
})

test('spares are invisible: never listed, selected, resolved, dumped, loaded, audited or migrated', async (t) => {
  const { bh, client, sequelize } = await world(t, { pendingSchemas: 2, auditModels: ['Item'] })
  await bh.fillPending()
  await bh.createSchema('acme')
  await idle(bh)
  const [spare] = await spares(client)
  assert.ok(spare !== undefined)
  const name = spare.name

  assert.deepEqual((await bh.listSchemas({ includeInactive: true })).map((s) => s.schema), ['acme'])
  assert.deepEqual((await bh.registry.get()).allActive.map((s) => s.schema), ['acme'])
  const invalid = hasCode('FST_BH_INVALID_SCHEMA_NAME', 400)
  await assert.rejects(bh.getSchema(name), invalid)
  await assert.rejects(bh.runInSchema(name, () => 1), invalid)
  await assert.rejects(bh.createSchema(name), invalid)
  await assert.rejects(bh.deleteSchema(name, { drop: true }), invalid)
  await assert.rejects(bh.grant(name, 1), invalid)
  await assert.rejects(bh.addDomain(name, 'spare.example.com'), invalid)
  await assert.rejects(bh.auditLog({ schema: name }), invalid)
  await assert.rejects((async () => { for await (const o of bh.dumpData({ schema: name })) void o })(), invalid)
  await assert.rejects(bh.loadData([{ name: 'x.json', objects: [{ model: 'Item', pk: 1, fields: { title: 'x' } }] }], { schema: name }), invalid)
  await assert.rejects(bh.loadData([{ name: 'x.json', objects: [{ model: 'Item', pk: 1, schema: name, fields: { title: 'x' } }] }]),
    (err: unknown) => { assert.match(String((err as Error).message), /__pending_/); assert.equal((err as { statusCode?: number }).statusCode, 400); return true })

  await t.test('requests cannot resolve one', async () => {
    const app = Fastify({ logger: false })
    await app.register(boardinghouse, { sequelize, tenantModels: ['Item'], tenantMigrations: MIGRATIONS, auditModels: ['Item'], sessionSchema: false, changeSchemaRoute: false, listen: false, getUserId: () => 1, isAdmin: () => true })
    app.get('/hdr', { config: { boardinghouse: { schemaFrom: resolvers.header('x-tenant') } } }, async (request) => ({ schema: request.tenant?.schema ?? null }))
    app.get('/t/:schema', { config: { boardinghouse: { schemaFrom: resolvers.param('schema') } } }, async (request) => ({ schema: request.tenant?.schema ?? null }))
    app.get('/sub', { config: { boardinghouse: { schemaFrom: resolvers.subdomain({ baseDomain: 'example.com' }) } } }, async (request) => ({ schema: request.tenant?.schema ?? null }))
    await app.ready()
    try {
      const ok = await app.inject({ url: '/hdr', headers: { 'x-tenant': 'acme' } })
      assert.deepEqual(ok.json(), { schema: 'acme' }, 'the routes do resolve a tenant')
      for (const res of [await app.inject({ url: '/hdr', headers: { 'x-tenant': name } }), await app.inject({ url: `/t/${name}` })]) {
        assert.equal(res.statusCode, 400, res.body)
        assert.equal(res.json().code, 'FST_BH_INVALID_SCHEMA_NAME')
      }
      const sub = await app.inject({ url: '/sub', headers: { host: `${name.replace(/_/g, '-')}.example.com` } })
      assert.equal(sub.statusCode, 400, sub.body)
    } finally {
      await app.close()
    }
  })

  await t.test('the audit log leaves a spare out, even after a write into it (negative control: the row is in the table)', async () => {
    await client.query(`INSERT INTO "${name}".items (title) VALUES ('planted')`)
    await bh.runInSchema('acme', async () => { await (sequelize.models.Item as NonNullable<typeof sequelize.models.Item>).create({ title: 'real' }) })
    const raw = await client.query('SELECT schema_name FROM public.boardinghouse_log_entry ORDER BY id')
    assert.deepEqual(raw.rows.map((r: { schema_name: string }) => r.schema_name), [name, 'acme'])
    assert.deepEqual((await bh.auditLog({ allSchemas: true })).map((e) => e.schema), ['acme'])
    assert.deepEqual((await bh.pendingStatus()).tampered, [name], 'a spare written to is not handed out')
  })

  await t.test('migrate leaves spares alone (they are re-cloned when the template changes)', async () => {
    const ledgerBefore = await client.query("SELECT count(*)::int AS n FROM public.boardinghouse_tenant_migration WHERE schema_name ~ '^__pending_'")
    assert.equal(ledgerBefore.rows[0].n, 0)
    const r = await bh.migrate()
    assert.deepEqual({ migrated: r.migratedSchemas, upToDate: r.upToDateSchemas }, { migrated: 0, upToDate: 1 })
    assert.equal((await client.query("SELECT count(*)::int AS n FROM public.boardinghouse_tenant_migration WHERE schema_name ~ '^__pending_'")).rows[0].n, 0)
  })
})

test('a template migrated while spares exist: stale spares are never claimed, and are re-cloned at the new head', async (t) => {
  const { bh, client, make } = await world(t, { pendingSchemas: 3 })
  await bh.fillPending()
  const old = await spares(client)
  const folder = mkdtempSync(join(tmpdir(), 'bh-pending-'))
  t.after(() => { rmSync(folder, { recursive: true, force: true }) })
  cpSync(MIGRATIONS, folder, { recursive: true })
  writeFileSync(join(folder, '20260201000000-priority.js'), `
export async function up ({ context: { sequelize, schema } }) {
  const s = '"' + schema.replace(/"/g, '""') + '"'
  await sequelize.query(\`ALTER TABLE \${s}.items ADD COLUMN priority int NOT NULL DEFAULT 0;
    CREATE FUNCTION \${s}.urgent() RETURNS bigint LANGUAGE sql STABLE SET search_path = \${s} AS $fn$ SELECT count(*) FROM items WHERE priority > 0 $fn$\`)
}
`)
  // another process migrates (it keeps no pool, so nothing refills behind the test's back)
  await make({ tenantMigrations: folder, pendingSchemas: 0 }).migrate()
  let status = await bh.pendingStatus()
  assert.deepEqual({ ready: status.ready, stale: status.stale }, { ready: 0, stale: 3 })

  await bh.createSchema('after_migrate')
  assert.ok(!old.map((s) => s.oid).includes(await oidOf(client, 'after_migrate')), 'a stale spare was handed out')
  assert.equal((await bh.pendingStatus()).missed, 1)
  assert.deepEqual(await templateLedger(client, 'after_migrate'), await templateLedger(client, '__template__'))
  assert.equal((await templateLedger(client, 'after_migrate')).length, 2)
  assert.deepEqual(withoutGuard(await compare(client, 'after_migrate')), [])

  // the refill that creation started dropped the stale spares and cloned new ones at the head
  await idle(bh)
  status = await bh.pendingStatus()
  assert.deepEqual({ ready: status.ready, stale: status.stale }, { ready: 3, stale: 0 })
  const fresh = await assertConsistent(client)
  assert.ok(fresh.every((s) => !old.some((o) => o.name === s.name)))
  for (const s of old) assert.equal(await oidOf(client, s.name), null, `${s.name} dropped`)
  await bh.createSchema('claimed_at_head')
  assert.equal(await oidOf(client, 'claimed_at_head'), fresh[0]?.oid, 'a claim')
  assert.equal((await templateLedger(client, 'claimed_at_head')).length, 2)
  assert.deepEqual(withoutGuard(await compare(client, 'claimed_at_head')), [])
  assert.deepEqual(await compare(client, 'claimed_at_head', 'after_migrate'), [])
  assert.deepEqual((await proconfig(client, 'claimed_at_head')).urgent, ['search_path=claimed_at_head'])

  await t.test('DDL run by hand in the template, then invalidate(): spares cloned before are not claimed', async () => {
    await idle(bh)
    await bh.fillPending()
    const before = await spares(client)
    await client.query('CREATE TABLE "__template__".by_hand (id int PRIMARY KEY)')
    bh.invalidate()
    await bh.createSchema('after_hand')
    assert.ok(!before.map((s) => s.oid).includes(await oidOf(client, 'after_hand')))
    assert.equal((await client.query("SELECT to_regclass('after_hand.by_hand') IS NOT NULL AS ok")).rows[0].ok, true)
    await idle(bh)
    await bh.createSchema('claimed_after_hand')
    assert.equal((await client.query("SELECT to_regclass('claimed_after_hand.by_hand') IS NOT NULL AS ok")).rows[0].ok, true)
    assert.ok(!before.map((s) => s.oid).includes(await oidOf(client, 'claimed_after_hand')))
  })
})

test('a spare tampered with by hand is discarded, not handed out', async (t) => {
  const { bh, client } = await world(t, { pendingSchemas: 6 })
  await bh.fillPending()
  const problems: Array<{ schema: string | null, message: string }> = []
  bh.on('pendingError', (e) => { problems.push({ schema: e.schema, message: e.error.message }) })
  const [s0, s1, s2, s3, s4, s5] = (await spares(client)).map((s) => s.name) as [string, string, string, string, string, string]
  await client.query(`ALTER TABLE "${s0}".items ADD COLUMN evil int`) // structure
  await client.query(`INSERT INTO "${s1}".items (title) VALUES ('planted')`) // a row
  await client.query(`ALTER FUNCTION "${s2}".item_count() SET search_path = public`) // a function's setting
  await client.query(`SELECT nextval('"${s3}".ticket_seq')`) // a sequence used
  await client.query(`DROP SCHEMA "${s4}" CASCADE`) // gone
  const status = await bh.pendingStatus()
  assert.deepEqual(status.tampered.sort(), [s0, s1, s2, s3, s4].sort())
  assert.equal(status.ready, 1)
  const intact = (await spares(client)).find((s) => s.name === s5)?.oid

  // a claim examines at most 4 spares: s0..s3 are discarded, and this creation clones
  await bh.createSchema('victim')
  assert.ok(!(await spares(client)).some((s) => [s0, s1, s2, s3].includes(s.name)))
  for (const s of [s0, s1, s2, s3]) assert.equal(await oidOf(client, s), null)
  assert.deepEqual(problems.map((p) => p.schema), [s0, s1, s2, s3])
  assert.match(problems[0]?.message ?? '', /changed since it was cloned/)
  assert.equal((await client.query("SELECT to_regclass('victim.items') IS NOT NULL AS ok")).rows[0].ok, true)
  assert.deepEqual((await client.query('SELECT count(*)::int AS n FROM victim.items')).rows, [{ n: 0 }])
  assert.deepEqual(withoutGuard(await compare(client, 'victim')), [])
  // the next discards s4 (its schema is gone) and claims s5, untouched (negative control: the check passes a sound spare)
  await idle(bh)
  await bh.createSchema('second')
  assert.equal(await oidOf(client, 'second'), intact)
  assert.deepEqual(problems.map((p) => p.schema), [s0, s1, s2, s3, s4])
  assert.deepEqual(withoutGuard(await compare(client, 'second')), [])
  await idle(bh)
  await assertConsistent(client)
})

test('a process killed between claim and refill: no spare lost or doubled, the next one tops up', async (t) => {
  const { bh, client, url, make } = await world(t, { pendingSchemas: 3 })
  await bh.fillPending()

  await t.test('closed right after the claim (the refill never started)', async () => {
    const first = make({ pendingSchemas: 3 })
    const before = await spares(client)
    await first.createSchema('k1')
    await first.close()
    await new Promise((resolve) => setTimeout(resolve, 50))
    const rows = await assertConsistent(client)
    assert.deepEqual(rows.map((s) => s.name), before.slice(1).map((s) => s.name))
    assert.equal(await oidOf(client, 'k1'), before[0]?.oid)
    const r = await make({ pendingSchemas: 3 }).fillPending()
    assert.deepEqual({ created: r.created, ready: r.ready }, { created: 1, ready: 3 })
    assert.deepEqual((await bh.fillPending()), { created: 0, dropped: 0, ready: 3 }, 'idempotent')
    assert.equal((await assertConsistent(client)).length, 3)
  })

  await t.test('SIGKILL right after the claim committed', async () => {
    const before = await spares(client)
    const child = await new Promise<{ code: number | null, signal: string | null, out: string, err: string }>((resolve, reject) => {
      const p = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/pending-kill.ts', MIGRATIONS, '3', 'killed'],
        { cwd: ROOT, env: { ...process.env, DATABASE_URL: url }, stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      let err = ''
      p.stdout.on('data', (d: Buffer) => { out += d.toString() })
      p.stderr.on('data', (d: Buffer) => { err += d.toString() })
      p.on('error', reject)
      p.on('close', (code, signal) => { resolve({ code, signal, out, err }) })
    })
    assert.equal(child.signal, 'SIGKILL', child.err)
    assert.match(child.out, /claimed killed/)
    bh.registry.invalidate()
    assert.ok((await bh.getSchema('killed')) !== null)
    assert.equal(await oidOf(client, 'killed'), before[0]?.oid)
    const rows = await assertConsistent(client)
    assert.deepEqual(rows.map((s) => s.name), before.slice(1).map((s) => s.name))
    assert.deepEqual(await templateLedger(client, 'killed'), await templateLedger(client, '__template__'))
    const r = await bh.fillPending()
    assert.deepEqual({ created: r.created, ready: r.ready }, { created: 1, ready: 3 })
    assert.equal((await assertConsistent(client)).length, 3)
  })

  await t.test('a claim whose connection is killed mid-transaction: the spare stays in the pool, the creation clones', async () => {
    const before = await spares(client)
    const problems: string[] = []
    bh.on('pendingError', (e) => { problems.push(e.error.message) })
    const blocker = await connect(t, url)
    await blocker.query('BEGIN; LOCK TABLE public.boardinghouse_schema IN EXCLUSIVE MODE')
    const creating = bh.createSchema('k3')
    // the claim renamed its spare and now waits for the registry table: kill its backend
    const deadline = Date.now() + 20_000
    let killed = 0
    while (killed === 0) {
      if (Date.now() > deadline) throw new Error('the claim never waited on the registry')
      const { rows } = await client.query(`SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%boardinghouse_claim_pending%'`)
      killed = rows.length
      if (killed === 0) await new Promise((resolve) => setTimeout(resolve, 20))
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
    await blocker.query('COMMIT')
    const created = await creating
    assert.equal(created.schema, 'k3')
    assert.ok(!before.map((s) => s.oid).includes(await oidOf(client, 'k3')), 'cloned, not claimed')
    assert.equal(problems.length, 1)
    assert.match(problems[0] ?? '', /^claiming a pending schema failed, cloned instead: /)
    const rows = await assertConsistent(client)
    for (const s of before) assert.ok(rows.some((r) => r.name === s.name && r.oid === s.oid), `${s.name} still a spare`)
    await blocker.end()
  })

  await t.test('a refill killed mid-transaction leaves no half-made spare; the next fill tops up', async () => {
    await idle(bh)
    const spare = (await spares(client))[0]
    assert.ok(spare !== undefined)
    await client.query(`DROP SCHEMA "${spare.name}" CASCADE`)
    await client.query('DELETE FROM public.boardinghouse_pending WHERE schema_name = $1', [spare.name])
    const blocker = await connect(t, url)
    await blocker.query('BEGIN; LOCK TABLE public.boardinghouse_pending IN SHARE MODE')
    const filling = bh.fillPending()
    const deadline = Date.now() + 20_000
    let killed = 0
    while (killed === 0) {
      if (Date.now() > deadline) throw new Error('the fill never waited on the pool table')
      const { rows } = await client.query(`SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO public.boardinghouse_pending%'`)
      killed = rows.length
      if (killed === 0) await new Promise((resolve) => setTimeout(resolve, 20))
    }
    await assert.rejects(filling, hasCode('FST_BH_PENDING_FILL_FAILED', 500))
    await blocker.query('COMMIT')
    await blocker.end()
    const rows = await assertConsistent(client)
    assert.equal(rows.length, 2, 'the killed fill left nothing')
    const r = await bh.fillPending()
    assert.deepEqual({ created: r.created, ready: r.ready }, { created: 1, ready: 3 })
    await assertConsistent(client)
  })
})

test('creation hooks run in the claimed schema; a failure or a taken name leaves the pool and the registry as they were', async (t) => {
  const { bh, client, sequelize } = await world(t, { pendingSchemas: 2 })
  await bh.fillPending()
  const Item = sequelize.models.Item as NonNullable<typeof sequelize.models.Item>
  const before = await spares(client)
  const remove = bh.onCreate(async ({ schema }) => { await Item.create({ title: `welcome to ${schema}` }) })
  await bh.createSchema('hooked')
  remove()
  assert.equal(await oidOf(client, 'hooked'), before[0]?.oid, 'a claim')
  assert.deepEqual((await client.query('SELECT title FROM hooked.items')).rows, [{ title: 'welcome to hooked' }])
  await idle(bh)

  const state = await registryState(sequelize)
  const pool = await spares(client)
  const removeFailing = bh.onCreate(() => { throw new Error('no seed today') })
  await assert.rejects(bh.createSchema('refused'), hasCode('FST_BH_CREATE_HOOK_FAILED', 500))
  removeFailing()
  assert.deepEqual(await registryState(sequelize), state)
  assert.deepEqual(await spares(client), pool, 'the claimed spare came back')
  await assert.rejects(bh.createSchema('hooked'), hasCode('FST_BH_SCHEMA_EXISTS', 409))
  assert.deepEqual(await registryState(sequelize), state)
  assert.deepEqual(await spares(client), pool)
})

test('pendingSchemas and fillPending refuse what the pool cannot hold; a background refill does bounded work', async (t) => {
  const { bh, client, sequelize, make, url } = await world(t)
  for (const bad of [-1, 1.5, 1001, '3', Number.NaN]) {
    assert.throws(() => new Boardinghouse({ sequelize, pendingSchemas: bad as number }), hasCode('FST_BH_INVALID_OPTION', 500))
  }
  for (const bad of [-1, 1.5, 1001, '2']) {
    await assert.rejects(bh.fillPending(bad as number), hasCode('FST_BH_INVALID_INPUT', 400))
  }
  assert.deepEqual(await spares(client), [])
  assert.deepEqual((await bh.pendingStatus()).target, 0)

  // 12 asked for: the refill after a creation makes REFILL_BATCH (10), not more; fillPending the rest
  const big = make({ pendingSchemas: REFILL_BATCH + 2 })
  await big.createSchema('first')
  assert.equal((await big.pendingStatus()).missed, 1)
  await idle(big)
  assert.equal((await assertConsistent(client)).length, REFILL_BATCH)
  const r = await big.fillPending()
  assert.deepEqual({ created: r.created, ready: r.ready }, { created: 2, ready: REFILL_BATCH + 2 })
  // two instances filling at once never pass the target (the fill lock)
  const [x, y] = await Promise.all([make({ pendingSchemas: 0 }).fillPending(REFILL_BATCH + 4), make({ pendingSchemas: 0 }).fillPending(REFILL_BATCH + 4)])
  assert.equal((x?.created ?? 0) + (y?.created ?? 0), 2)
  assert.equal((await assertConsistent(client)).length, REFILL_BATCH + 4)

  await t.test('a background refill skips, quietly, while another process fills', async () => {
    const filler = make({ pendingSchemas: 20 }) // more than are ready: its refill has work to do
    const problems: string[] = []
    filler.on('pendingError', (e) => { problems.push(e.error.message) })
    const other = await connect(t, url)
    await other.query(`SELECT pg_advisory_lock(${PENDING_LOCK_KEY})`)
    const before = (await spares(client)).length
    assert.ok(before < 20)
    await filler.createSchema('second') // a claim: it takes no fill lock
    await idle(filler)
    assert.equal((await spares(client)).length, before - 1, 'no refill while the other fill holds the lock')
    assert.deepEqual(problems, [])
    await other.query(`SELECT pg_advisory_unlock(${PENDING_LOCK_KEY})`)
    // negative control: without the other fill, the same refill runs
    await filler.createSchema('third')
    await idle(filler)
    assert.equal((await spares(client)).length, 20)
    await other.end()
  })

  await t.test('negative control: without the fill lock, two fills both count the same room; with it, the second waits', async () => {
    const a = await connect(t, url)
    const b = await connect(t, url)
    const count = 'SELECT count(*)::int AS n FROM public.boardinghouse_pending'
    assert.equal((await a.query(count)).rows[0].n, 20)
    await a.query('BEGIN')
    await b.query('BEGIN')
    assert.equal((await a.query(count)).rows[0].n, (await b.query(count)).rows[0].n, 'both would create the same missing spares')
    await a.query('ROLLBACK')
    await b.query('ROLLBACK')
    await a.query(`BEGIN; SELECT pg_advisory_xact_lock(${PENDING_LOCK_KEY})`)
    await b.query("BEGIN; SET LOCAL lock_timeout = '200ms'")
    await assert.rejects(b.query(`SELECT pg_advisory_xact_lock(${PENDING_LOCK_KEY})`), (err: unknown) => (err as { code?: string }).code === '55P03')
    await a.query('ROLLBACK')
    await b.query('ROLLBACK')
  })
})

test('CLI: schema pending [--fill N] [--status]', async (t) => {
  const url = await createTestDatabase(t, 'bh_pending_cli')
  const env = { ...process.env, DATABASE_URL: url }
  const cli = async (...args: string[]): Promise<CliRun> => await runCli(env, ...args)
  assert.equal((await cli('migrate')).code, 0)
  let r = await cli('schema', 'pending', '--fill', '2')
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /^filled: 2 created, 0 stale or orphaned dropped\npending schemas: 2 ready \(pendingSchemas 0\), 0 stale, 0 tampered, 0 orphaned\n__pending_[0-9a-f]{16}__\tready\t/)
  r = await cli('schema', 'pending', '--status', '--json')
  assert.equal(r.code, 0, r.stderr)
  assert.deepEqual(JSON.parse(r.stdout), { ready: 2, stale: 0, tampered: [], orphans: [], target: 0 })
  for (const bad of ['abc', '1001', '-1', '1.5']) {
    r = await cli('schema', 'pending', '--fill', bad)
    assert.equal(r.code, 2, r.stderr)
    assert.match(r.stderr.trim(), /^boardinghouse: FST_BH_INVALID_OPTION: .*--fill must be an integer from 0 to 1000/)
    assert.equal(r.stderr.trim().split('\n').length, 1)
  }
  r = await cli('schema', 'pending')
  assert.match(r.stdout, /^pending schemas: 2 ready/)
})
