import { test } from 'node:test'
import assert from 'node:assert/strict'
import { quoteLiteral } from '../plugin/names.js'
import { QueryTypes } from 'sequelize'
import { runWithSchema } from '../plugin/context.js'
import { createBoardinghouse } from '../plugin/boardinghouse.js'
import { defineExampleModels } from '../example/models/index.js'
import { adminUrl, connect, sequelizeFor, setupBoardinghouse } from './helpers.js'

const VALUES = ['plain', '', "it's", 'back\\slash', "\\'", "\\'; SELECT 1; --", 'a\\\\b', '\\', "''\\''", 'ünïcödé \\n']

test('quoteLiteral reads back as the same string with standard_conforming_strings on and off', async (t) => {
  const client = await connect(t, adminUrl())
  for (const setting of ['on', 'off']) {
    await client.query(`SET standard_conforming_strings = ${setting}; SET escape_string_warning = off`)
    for (const value of VALUES) {
      // simple protocol, several statements: what the library sends
      const results = await client.query(`SELECT 1; SELECT ${quoteLiteral(value)}::text AS v`) as unknown as Array<{ rows: Array<{ v?: string }> }>
      assert.equal(results[1]?.rows[0]?.v, value, `standard_conforming_strings=${setting}: ${JSON.stringify(value)}`)
    }
  }
  assert.equal(quoteLiteral("it's"), "'it''s'", 'values without a backslash keep the plain form')
  assert.throws(() => quoteLiteral('a\u0000b'))
})

test('audit settings carry a request id with backslashes and quotes on a connection with standard_conforming_strings=off', async (t) => {
  const { bh, sequelize: setup, url } = await setupBoardinghouse(t, { auditModels: ['Item'] })
  await bh.createSchema('acme')
  await setup.query('DO $$ BEGIN EXECUTE format(\'ALTER DATABASE %I SET standard_conforming_strings = off\', current_database()); END $$')
  // Sequelize sets standard_conforming_strings=on on each connection unless told not to
  const sequelize = sequelizeFor(t, url, { standardConformingStrings: false })
  defineExampleModels(sequelize)
  createBoardinghouse({ sequelize, tenantModels: ['Item'], auditModels: ['Item'] })
  const [off] = await sequelize.query<{ s: string }>('SHOW standard_conforming_strings', { type: QueryTypes.SELECT }) as Array<{ s?: string, standard_conforming_strings?: string }>
  assert.equal(off?.standard_conforming_strings, 'off')
  const requestId = "req\\'; SELECT 1; --\\"
  const rows = await runWithSchema('acme', async () => await sequelize.query<{ id: string }>("SELECT current_setting('boardinghouse.request_id') AS id", { type: QueryTypes.SELECT }), { requestId })
  assert.equal(rows[0]?.id, requestId)
})
