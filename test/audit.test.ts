import { test } from 'node:test'
import assert from 'node:assert/strict'
import { QueryTypes } from 'sequelize'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import type { AuditEntry } from '../plugin/audit.js'
import { TEMPLATE_SCHEMA } from '../plugin/names.js'
import { buildTestApp, login } from './fixtures/app.js'
import { EXAMPLE_SHARED_MIGRATIONS, EXAMPLE_TENANT_MIGRATIONS, setupBoardinghouse } from './helpers.js'

test('the audit log', async (t) => {
  // acme exists before auditing is turned on: migrate must add the trigger to it
  const { bh: plain, sequelize } = await setupBoardinghouse(t, { sharedMigrations: EXAMPLE_SHARED_MIGRATIONS })
  await plain.createSchema('acme')
  const bh = new Boardinghouse({ sequelize, tenantModels: ['Item'], tenantMigrations: EXAMPLE_TENANT_MIGRATIONS, sharedMigrations: EXAMPLE_SHARED_MIGRATIONS, auditModels: ['Item', 'User'] })
  await bh.migrate()
  await bh.createSchema('globex') // cloned after: the trigger comes with the template
  const Item = sequelize.models.Item as NonNullable<typeof sequelize.models.Item>
  const User = sequelize.models.User as NonNullable<typeof sequelize.models.User>
  const count = async (): Promise<number> => Number((await sequelize.query<{ n: string }>('SELECT count(*) AS n FROM public.boardinghouse_log_entry', { type: QueryTypes.SELECT }))[0]?.n)
  const latest = async (schema: string, userId?: number): Promise<AuditEntry[]> => await bh.runInSchema(schema, async () => await bh.auditLog({ limit: 20 }), userId !== undefined ? { userId } : {})

  await t.test('instance changes: create, update, delete, with the schema and the user of the context', async () => {
    const item = await bh.runInSchema('acme', async () => await Item.create({ title: 'anvil' }), { userId: 7 })
    await bh.runInSchema('acme', async () => { await item.update({ title: 'big anvil' }) }, { userId: 8 })
    await bh.runInSchema('acme', async () => { await item.destroy() })
    const [del, upd, cre] = await latest('acme')
    assert.deepEqual([cre?.action, cre?.model, cre?.schema, cre?.userId, cre?.objectPk, cre?.objectRepr], ['create', 'Item', 'acme', '7', String(item.get('id')), 'anvil'])
    assert.deepEqual(cre?.changedFields, ['createdAt', 'id', 'title', 'updatedAt'])
    assert.deepEqual([upd?.action, upd?.userId, upd?.objectRepr, upd?.changedFields], ['update', '8', 'big anvil', ['title', 'updatedAt']])
    assert.deepEqual([del?.action, del?.userId, del?.changedFields], ['delete', null, []])
  })

  await t.test('bulk and raw SQL changes are logged row by row', async () => {
    const before = await count()
    await bh.runInSchema('globex', async () => {
      await Item.bulkCreate([{ title: 'a' }, { title: 'b' }, { title: 'c' }])
      await Item.update({ title: 'x' }, { where: {} })
      await sequelize.query("UPDATE items SET title = 'y' WHERE title = 'x'")
      await Item.destroy({ where: {} })
    }, { userId: 9 })
    assert.equal(await count() - before, 12)
    const entries = await latest('globex')
    assert.ok(entries.slice(0, 12).every((e) => e.schema === 'globex' && e.userId === '9'))
  })

  await t.test('an entry follows its change: a rolled back change leaves none', async () => {
    const before = await count()
    await bh.runInSchema('acme', async () => {
      const transaction = await sequelize.transaction()
      await Item.create({ title: 'ghost' }, { transaction })
      await Item.bulkCreate([{ title: 'ghost2' }], { transaction })
      await transaction.rollback()
    })
    assert.equal(await count(), before)
    await bh.runInSchema('acme', async () => { await sequelize.transaction(async (transaction) => { await Item.create({ title: 'kept' }, { transaction }) }) })
    assert.equal(await count(), before + 1)
  })

  await t.test('shared models are logged with no schema; reading is scoped to the schema and shared entries', async () => {
    await User.create({ username: 'carol', passwordHash: 'x' })
    const acme = await latest('acme')
    assert.equal(acme[0]?.model, 'User')
    assert.equal(acme[0]?.schema, null)
    assert.equal(acme[0]?.objectRepr, 'carol')
    assert.ok(acme.every((e) => e.schema === 'acme' || e.schema === null))
    assert.ok(!acme.some((e) => e.schema === 'globex'))
    const all = await bh.auditLog({ allSchemas: true, limit: 500 })
    assert.ok(all.some((e) => e.schema === 'globex') && all.some((e) => e.schema === 'acme'))
    assert.ok((await bh.auditLog({ schema: null })).every((e) => e.schema === null))
    await assert.rejects(bh.auditLog({ schema: 'Bad"' }), { code: 'FST_BH_INVALID_SCHEMA_NAME' })
  })

  await t.test('the template keeps refusing rows, and its audit trigger is cloned', async () => {
    await assert.rejects(sequelize.query(`INSERT INTO "${TEMPLATE_SCHEMA}".items (title) VALUES ('x')`), /no data/)
    const triggers = await sequelize.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE t.tgname = 'boardinghouse_audit' AND n.nspname IN ('acme', 'globex', '__template__')",
      { type: QueryTypes.SELECT })
    assert.equal(triggers[0]?.n, '3')
  })

  await t.test('over HTTP: the request user and id; links land in the right schema for members only, never cross-site', async () => {
    await bh.grant('acme', 1)
    await bh.grant('globex', 2)
    await bh.grant('globex', 1)
    const app = await buildTestApp({ sequelize, auditModels: ['Item', 'User'], admins: [99], objectUrl: (e) => e.model === 'Item' ? `/items/${e.objectPk ?? ''}` : null })
    t.after(async () => { await app.close() })
    const alice = await login(app, 1)
    const bob = await login(app, 2)
    const admin = await login(app, 99)
    await app.inject({ method: 'POST', url: '/__change_schema__', payload: { schema: 'acme' }, headers: { cookie: alice } })
    const created = await app.inject({ method: 'POST', url: '/items', payload: { title: 'rocket' }, headers: { cookie: alice } })
    const id = (created.json() as { id: number }).id
    const log = (await app.inject({ method: 'GET', url: '/audit', headers: { cookie: alice } })).json() as Array<AuditEntry & { link: string | null }>
    const entry = log.find((e) => e.objectPk === String(id) && e.action === 'create' && e.schema === 'acme')
    assert.ok(entry !== undefined)
    assert.equal(entry.userId, '1')
    assert.match(entry.requestId ?? '', /^req-/)
    assert.equal(entry.link, `/items/${id}?__schema=acme`)
    assert.ok(log.every((e) => e.schema === 'acme' || e.schema === null))

    // alice has switched to globex since: the link still opens the object in acme, for that request only
    await app.inject({ method: 'POST', url: '/__change_schema__', payload: { schema: 'globex' }, headers: { cookie: alice } })
    const followed = await app.inject({ method: 'GET', url: entry.link, headers: { cookie: alice, 'sec-fetch-site': 'same-origin' } })
    assert.deepEqual(followed.json(), { schema: 'acme', id, title: 'rocket' })
    assert.equal(((await app.inject({ method: 'GET', url: '/whoami', headers: { cookie: alice } })).json() as { tenant: { schema: string } }).tenant.schema, 'globex')

    const stranger = await app.inject({ method: 'GET', url: entry.link, headers: { cookie: bob } })
    assert.equal(stranger.statusCode, 403)
    assert.equal((stranger.json() as { code: string }).code, 'FST_BH_FORBIDDEN_SCHEMA')
    const crossSite = await app.inject({ method: 'GET', url: entry.link, headers: { cookie: alice, 'sec-fetch-site': 'cross-site' } })
    assert.equal(crossSite.statusCode, 403)
    assert.equal((crossSite.json() as { code: string }).code, 'FST_BH_CROSS_SITE')
    const anonymous = await app.inject({ method: 'GET', url: entry.link })
    assert.equal(anonymous.statusCode, 401)
    await app.inject({ method: 'GET', url: '/whoami', headers: { cookie: bob } }) // auto-selection (bob's one schema) happens on a GET only
    const posted = await app.inject({ method: 'POST', url: `/items?__schema=acme`, payload: { title: 'sneaky' }, headers: { cookie: bob } })
    assert.notEqual((posted.json() as { title?: string }).title, undefined)
    assert.equal(await bh.runInSchema('acme', async () => await Item.count({ where: { title: 'sneaky' } })), 0, 'the link parameter never applies to a POST')

    assert.equal((await app.inject({ method: 'GET', url: '/audit?all=1', headers: { cookie: alice } })).statusCode, 403)
    assert.equal((await app.inject({ method: 'GET', url: '/audit?schema=acme', headers: { cookie: bob } })).statusCode, 403)
    const every = (await app.inject({ method: 'GET', url: '/audit?all=1', headers: { cookie: admin } })).json() as AuditEntry[]
    assert.ok(every.some((e) => e.schema === 'globex') && every.some((e) => e.schema === 'acme'))
  })

  await t.test('request input is a 400 (FST_BH_INVALID_INPUT) naming the field, never an options error', async () => {
    const app = await buildTestApp({ sequelize, auditModels: ['Item', 'User'] })
    t.after(async () => { await app.close() })
    const alice = await login(app, 1)
    await app.inject({ method: 'POST', url: '/__change_schema__', payload: { schema: 'acme' }, headers: { cookie: alice } })
    const get = async (query: string) => await app.inject({ method: 'GET', url: `/audit?${query}`, headers: { cookie: alice } })
    const all = (await get('limit=500')).json() as AuditEntry[]
    assert.ok(all.length >= 2)
    const page = (await get(`limit=1&before=${all[0]?.id ?? ''}&model=Item`)).json() as AuditEntry[]
    assert.deepEqual(page.map((e) => e.id), [all.find((e, i) => i > 0 && e.model === 'Item')?.id])
    for (const [query, field] of [['limit=abc', 'limit'], ['limit=0', 'limit'], ['limit=501', 'limit'], ['limit=1.5', 'limit'],
      ['before=x', 'before'], ['before=1e3', 'before'], ['before=1&before=2', 'before'], ['model=Item&model=User', 'model']]) {
      const res = await get(query as string)
      assert.equal(res.statusCode, 400, `${query}: ${res.body}`)
      const body = res.json() as { code: string, message: string }
      assert.equal(body.code, 'FST_BH_INVALID_INPUT', query)
      assert.match(body.message, new RegExp(`\\b${field}\\b`), query)
    }
    // the API refuses the same input with the same code, and other ill-typed fields too
    for (const query of [{ limit: '5' }, { before: -1 }, { before: 1.5 }, { model: ['Item'] }, { objectPk: { a: 1 } }, { allSchemas: 'yes' }, { includeShared: 1 }, { schema: 5 }, { nope: 1 }]) {
      await assert.rejects(bh.runInSchema('acme', async () => await bh.auditLog(query as never)), { code: 'FST_BH_INVALID_INPUT' }, JSON.stringify(query))
    }
    await assert.rejects(bh.auditLog(null as never), { code: 'FST_BH_INVALID_INPUT' })
    // an entry id as a number still pages
    assert.deepEqual((await bh.runInSchema('acme', async () => await bh.auditLog({ limit: 1, before: Number(all[0]?.id) } as never))).map((e) => e.id), [all[1]?.id])
  })
})
