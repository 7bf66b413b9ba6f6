import { test } from 'node:test'
import assert from 'node:assert/strict'
import { QueryTypes, type Sequelize } from 'sequelize'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import { defineExampleModels } from '../example/models/index.js'
import { EXAMPLE_TENANT_MIGRATIONS, sequelizeFor, setupBoardinghouse } from './helpers.js'

async function objects (sequelize: Sequelize, schema: string): Promise<{ tables: string[], functions: string[] }> {
  const tables = await sequelize.query<{ relname: string }>(
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :schema AND c.relkind = 'r' ORDER BY 1",
    { replacements: { schema }, type: QueryTypes.SELECT })
  const functions = await sequelize.query<{ proname: string }>(
    'SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = :schema ORDER BY 1',
    { replacements: { schema }, type: QueryTypes.SELECT })
  return { tables: tables.map((r) => r.relname), functions: functions.map((r) => r.proname) }
}

test('DDL run directly in __template__, then invalidate(): new schemas get it, in every process', async (t) => {
  const { bh, sequelize, url } = await setupBoardinghouse(t)
  // A second process with its own Sequelize, its clone DDL cached before the change.
  const s2 = sequelizeFor(t, url)
  defineExampleModels(s2)
  const other = new Boardinghouse({ sequelize: s2, tenantModels: ['Item'], tenantMigrations: EXAMPLE_TENANT_MIGRATIONS })
  await bh.createSchema('before_change') // stores the clone DDL in the database and this process
  await other.createSchema('other_before')
  assert.deepEqual(await objects(sequelize, 'before_change'), { tables: ['items'], functions: [] })

  await sequelize.query(`CREATE TABLE "__template__".notes (id serial PRIMARY KEY, body text NOT NULL);
    CREATE FUNCTION "__template__".shout (t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT upper(t) $$`)

  await t.test('without invalidate() the stored DDL is used (the README says to call it)', async () => {
    await bh.createSchema('no_invalidate')
    assert.deepEqual(await objects(sequelize, 'no_invalidate'), { tables: ['items'], functions: [] })
  })

  await t.test('after invalidate() the new table and function are cloned', async () => {
    bh.invalidate()
    await bh.createSchema('after_change')
    assert.deepEqual(await objects(sequelize, 'after_change'), { tables: ['items', 'notes'], functions: ['shout'] })
    const [row] = await sequelize.query<{ v: string }>("SELECT after_change.shout('hi') AS v", { type: QueryTypes.SELECT })
    assert.equal(row?.v, 'HI')
  })

  await t.test('another process with the old DDL cached clones the new structure too', async () => {
    await other.createSchema('other_after')
    assert.deepEqual(await objects(sequelize, 'other_after'), { tables: ['items', 'notes'], functions: ['shout'] })
  })

  await t.test('one DDL row is kept in the database, for the new version', async () => {
    const rows = await sequelize.query<{ ddl: string }>('SELECT ddl FROM public.boardinghouse_template_ddl', { type: QueryTypes.SELECT })
    assert.equal(rows.length, 1)
    assert.match(rows[0]?.ddl ?? '', /notes/)
  })
})
