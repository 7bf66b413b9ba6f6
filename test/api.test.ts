import { test } from 'node:test'
import assert from 'node:assert/strict'
import { DataTypes, QueryTypes } from 'sequelize'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import { TEMPLATE_SCHEMA } from '../plugin/names.js'
import { defineExampleModels } from '../example/models/index.js'
import { createTestDatabase, EXAMPLE_TENANT_MIGRATIONS, listPgSchemas, sequelizeFor, setupBoardinghouse, hasCode, registryState } from './helpers.js'


test('tenant API', async (t) => {
  const { bh, sequelize } = await setupBoardinghouse(t)
  const Item = sequelize.models.Item as ReturnType<typeof defineExampleModels>['Item']

  await t.test('create clones the template: own tables, registry row, ledger at the head', async () => {
    const acme = await bh.createSchema('acme', { name: 'Acme Inc.' })
    assert.deepEqual({ schema: acme.schema, name: acme.name, isActive: acme.isActive }, { schema: 'acme', name: 'Acme Inc.', isActive: true })
    await bh.createSchema('globex')
    const s = await registryState(sequelize)
    assert.ok(s.schemas.includes('acme') && s.schemas.includes('globex') && s.schemas.includes(TEMPLATE_SCHEMA))
    const ledger = s.ledger as Array<{ schema_name: string, name: string }>
    const names = (schema: string): string[] => ledger.filter((r) => r.schema_name === schema).map((r) => r.name)
    assert.deepEqual(names('acme'), names(TEMPLATE_SCHEMA))
    assert.deepEqual(names('globex'), names(TEMPLATE_SCHEMA))
    assert.ok(names('acme').length > 0)
    // the clone DDL was generated once and stored for other processes, keyed by template version
    const cached = await sequelize.query<{ version: string }>('SELECT version FROM public.boardinghouse_template_ddl', { type: QueryTypes.SELECT })
    assert.equal(cached.length, 1)
    const other = new Boardinghouse({ sequelize, tenantModels: ['Item'] })
    await other.createSchema('hooli')
    await other.deleteSchema('hooli', { drop: true })
    assert.deepEqual(await sequelize.query('SELECT version FROM public.boardinghouse_template_ddl', { type: QueryTypes.SELECT }), cached)
  })

  await t.test('concurrent creates all succeed and each returns its own entry', async () => {
    const names = Array.from({ length: 12 }, (_, i) => `con${i}`)
    const created = await Promise.all(names.map(async (n) => await bh.createSchema(n)))
    assert.deepEqual(created.map((c) => c.schema), names)
    for (const n of names) assert.equal((await bh.getSchema(n))?.isActive, true)
    await Promise.all(names.map(async (n) => { await bh.deleteSchema(n, { drop: true }) }))
  })

  await t.test('runInSchema: each schema sees its own rows only; nested calls restore the outer schema', async () => {
    await bh.runInSchema('acme', async () => { await Item.create({ title: 'anvil' }) })
    await bh.runInSchema('globex', async () => { await Item.create({ title: 'globe' }) })
    const acmeTitles = await bh.runInSchema('acme', async () => (await Item.findAll()).map((i) => i.get('title')))
    assert.deepEqual(acmeTitles, ['anvil'])
    await bh.runInSchema('acme', async () => {
      assert.equal(bh.currentSchema(), 'acme')
      const inner = await bh.runInSchema('globex', async () => {
        const [rows] = await sequelize.query('SELECT title FROM items')
        return rows
      })
      assert.deepEqual(inner, [{ title: 'globe' }])
      assert.equal(bh.currentSchema(), 'acme')
      // raw, bind and replacements queries all stay in acme
      const raw = await sequelize.query<{ title: string }>('SELECT title FROM items', { type: QueryTypes.SELECT })
      const bind = await sequelize.query<{ title: string }>('SELECT title FROM items WHERE title = $1', { bind: ['anvil'], type: QueryTypes.SELECT })
      const repl = await sequelize.query<{ title: string }>('SELECT title FROM items WHERE title = :t', { replacements: { t: 'globe' }, type: QueryTypes.SELECT })
      assert.deepEqual(raw.map((r) => r.title), ['anvil'])
      assert.deepEqual(bind.map((r) => r.title), ['anvil'])
      assert.deepEqual(repl, [])
      const [path] = await sequelize.query<{ search_path: string }>('SHOW search_path', { type: QueryTypes.SELECT })
      assert.equal(path?.search_path, 'acme, public')
    })
    assert.equal(bh.currentSchema(), null)
  })

  await t.test('with no schema active, tenant tables do not exist (public only)', async () => {
    await assert.rejects(Item.findAll(), (err: Error & { code?: string, cause?: Error }) => {
      assert.equal(err.code, 'FST_BH_NO_SCHEMA')
      assert.match(String(err.cause?.message), /relation "items" does not exist/)
      return true
    })
    const [path] = await sequelize.query<{ search_path: string }>('SHOW search_path', { type: QueryTypes.SELECT })
    assert.equal(path?.search_path, 'public')
  })

  await t.test('transactions run in their schema; using one from another schema throws', async () => {
    await bh.runInSchema('acme', async () => {
      await sequelize.transaction(async (transaction) => {
        await Item.create({ title: 'in-tx' }, { transaction })
        const n = await Item.count({ transaction })
        assert.equal(n, 2)
        await assert.rejects(bh.runInSchema('globex', async () => await Item.count({ transaction })), hasCode('FST_BH_TRANSACTION_SCHEMA_MISMATCH'))
      })
    })
    const rolledBack = await bh.runInSchema('acme', async () => {
      const transaction = await sequelize.transaction()
      await Item.create({ title: 'rolled-back' }, { transaction })
      await transaction.rollback()
      return await Item.count({ where: { title: 'rolled-back' } })
    })
    assert.equal(rolledBack, 0)
  })

  await t.test('bad names are refused with a stable code and nothing changes', async () => {
    const before = await registryState(sequelize)
    const cases: Array<[string, string]> = [
      ['Acme', 'FST_BH_INVALID_SCHEMA_NAME'], ['1abc', 'FST_BH_INVALID_SCHEMA_NAME'], ['pg_x', 'FST_BH_INVALID_SCHEMA_NAME'],
      ['public', 'FST_BH_INVALID_SCHEMA_NAME'], [TEMPLATE_SCHEMA, 'FST_BH_TEMPLATE_SCHEMA'],
      ['a"; drop schema public; --', 'FST_BH_INVALID_SCHEMA_NAME'], ['a'.repeat(64), 'FST_BH_INVALID_SCHEMA_NAME'],
      ['ünïcode', 'FST_BH_INVALID_SCHEMA_NAME'], ['_hidden', 'FST_BH_INVALID_SCHEMA_NAME']
    ]
    for (const [name, code] of cases) {
      await assert.rejects(bh.createSchema(name), hasCode(code, 400), name)
      await assert.rejects(bh.deleteSchema(name, { drop: true }), hasCode(code, 400), name)
      await assert.rejects(bh.grant(name, 1), hasCode(code, 400), name)
      await assert.rejects(bh.runInSchema(name, async () => {}), hasCode(code, 400), name)
    }
    assert.deepEqual(await registryState(sequelize), before)
  })

  await t.test('creating a name that exists is a 409 and changes nothing', async () => {
    const before = await registryState(sequelize)
    await assert.rejects(bh.createSchema('acme'), hasCode('FST_BH_SCHEMA_EXISTS', 409))
    await sequelize.query('CREATE SCHEMA handmade')
    await assert.rejects(bh.createSchema('handmade'), hasCode('FST_BH_SCHEMA_EXISTS', 409))
    await sequelize.query('DROP SCHEMA handmade')
    assert.deepEqual(await registryState(sequelize), before)
  })

  await t.test('a failure half-way leaves no schema, no row and no ledger entry', async () => {
    const before = await registryState(sequelize)
    await sequelize.query(`CREATE FUNCTION public.t_doom() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.schema_name = 'doomed' THEN RAISE EXCEPTION 'doomed on purpose'; END IF; RETURN NEW; END $$;
      CREATE TRIGGER t_doom BEFORE INSERT ON public.boardinghouse_schema FOR EACH ROW EXECUTE FUNCTION public.t_doom();`)
    try {
      await assert.rejects(bh.createSchema('doomed'), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'FST_BH_CLONE_FAILED')
        assert.match(err.message, /"doomed".*doomed on purpose/)
        return true
      })
    } finally {
      await sequelize.query('DROP TRIGGER t_doom ON public.boardinghouse_schema; DROP FUNCTION public.t_doom();')
    }
    assert.deepEqual(await registryState(sequelize), before)
    // the connection that failed went back to the pool usable
    await bh.createSchema('initech')
    await bh.deleteSchema('initech', { drop: true })
  })

  await t.test('memberships: grant, list a user\'s schemas, revoke; errors change nothing', async () => {
    await bh.grant('acme', 7)
    await bh.grant('acme', 7) // idempotent
    await bh.grant('globex', '7')
    assert.deepEqual((await bh.schemasForUser(7)).map((s) => s.schema), ['acme', 'globex'])
    assert.deepEqual(await bh.membersOf('acme'), ['7'])
    const before = await registryState(sequelize)
    await assert.rejects(bh.grant('nosuch', 7), hasCode('FST_BH_SCHEMA_NOT_FOUND', 404))
    await assert.rejects(bh.revoke('nosuch', 7), hasCode('FST_BH_SCHEMA_NOT_FOUND', 404))
    await assert.rejects(bh.grant('acme', 'seven'), hasCode('FST_BH_INVALID_USER_ID', 400))
    await assert.rejects(bh.grant('acme', 2 ** 40), hasCode('FST_BH_INVALID_USER_ID', 400))
    await assert.rejects(bh.grant('acme', 1.5), hasCode('FST_BH_INVALID_USER_ID', 400))
    assert.deepEqual(await registryState(sequelize), before)
    assert.equal(await bh.revoke('globex', 7), true)
    assert.equal(await bh.revoke('globex', 7), false)
    assert.deepEqual((await bh.schemasForUser(7)).map((s) => s.schema), ['acme'])
  })

  await t.test('soft delete deactivates; drop removes the schema, its rows, memberships and ledger', async () => {
    await bh.createSchema('umbrella')
    await bh.grant('umbrella', 9)
    await bh.runInSchema('umbrella', async () => { await Item.create({ title: 'u' }) })
    await bh.deleteSchema('umbrella')
    assert.equal((await bh.getSchema('umbrella'))?.isActive, false)
    assert.ok(!(await bh.listSchemas()).some((s) => s.schema === 'umbrella'))
    assert.ok((await bh.listSchemas({ includeInactive: true })).some((s) => s.schema === 'umbrella'))
    assert.deepEqual(await bh.schemasForUser(9), [])
    await assert.rejects(bh.runInSchema('umbrella', async () => {}), hasCode('FST_BH_SCHEMA_INACTIVE', 404))
    assert.equal(await bh.runInSchema('umbrella', async () => await Item.count(), { includeInactive: true }), 1)
    assert.ok((await listPgSchemas(sequelize)).includes('umbrella'))

    await bh.deleteSchema('umbrella', { drop: true })
    const s = await registryState(sequelize)
    assert.ok(!s.schemas.includes('umbrella'))
    assert.ok(!JSON.stringify(s).includes('umbrella'))
    assert.equal(await bh.getSchema('umbrella'), null)
    await assert.rejects(bh.deleteSchema('umbrella'), hasCode('FST_BH_SCHEMA_NOT_FOUND', 404))
    await assert.rejects(bh.deleteSchema('umbrella', { drop: true }), hasCode('FST_BH_SCHEMA_NOT_FOUND', 404))
    await assert.rejects(bh.runInSchema('umbrella', async () => {}), hasCode('FST_BH_SCHEMA_NOT_FOUND', 404))
  })

  await t.test('the database refuses renaming a schema, invalid names and rows in the template', async () => {
    await assert.rejects(sequelize.query("UPDATE public.boardinghouse_schema SET schema_name = 'acme2' WHERE schema_name = 'acme'"), /cannot be renamed/)
    await assert.rejects(sequelize.query("INSERT INTO public.boardinghouse_schema (schema_name, name) VALUES ('Bad\"', 'x')"), /boardinghouse_schema_name_valid/)
    await assert.rejects(sequelize.query(`INSERT INTO "${TEMPLATE_SCHEMA}".items (title) VALUES ('x')`), /holds the tenant template and no data/)
    const [row] = await sequelize.query<{ n: string }>(`SELECT count(*) AS n FROM "${TEMPLATE_SCHEMA}".items`, { type: QueryTypes.SELECT })
    assert.equal(row?.n, '0')
    assert.equal((await bh.getSchema('acme'))?.schema, 'acme')
  })
})

test('startup checks refuse tenant tables in public and shared models pointing at tenant models', async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url)
  defineExampleModels(sequelize)
  const bh = new Boardinghouse({ sequelize, tenantModels: ['Item'], tenantMigrations: EXAMPLE_TENANT_MIGRATIONS })
  await bh.migrate()
  await sequelize.query('CREATE TABLE public.items (id int)')
  await assert.rejects(bh.check(), hasCode('FST_BH_TENANT_TABLE_IN_PUBLIC'))
  await sequelize.query('DROP TABLE public.items')
  await bh.check()

  sequelize.define('Invoice', { itemId: { type: DataTypes.INTEGER, references: { model: 'items', key: 'id' } } }, { tableName: 'invoices' })
  const bh2 = new Boardinghouse({ sequelize, tenantModels: ['Item'] })
  await assert.rejects(bh2.check(), hasCode('FST_BH_SHARED_REFERENCES_TENANT'))

  const bh3 = new Boardinghouse({ sequelize, tenantModels: ['Nope'] })
  await assert.rejects(bh3.check(), hasCode('FST_BH_UNKNOWN_MODEL'))
})

test('options are validated', async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url)
  const bad: unknown[] = [
    null, {}, { sequelize: {} }, { sequelize, nope: 1 }, { sequelize, tenantModels: 'Item' },
    { sequelize, userIdType: 'float' }, { sequelize, migrationConcurrency: 0 }, { sequelize, tenantMigrations: '' }
  ]
  for (const options of bad) {
    assert.throws(() => new Boardinghouse(options as never), hasCode('FST_BH_INVALID_OPTION'), JSON.stringify(options, (k, v) => k === 'sequelize' ? '[sequelize]' : v))
  }
  const caller = { sequelize, tenantModels: ['Item'] }
  const frozen = JSON.stringify(Object.keys(caller))
  const _bh = new Boardinghouse(caller)
  assert.equal(JSON.stringify(Object.keys(caller)), frozen)
  assert.ok(_bh)
})
