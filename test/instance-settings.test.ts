import { test } from 'node:test'
import assert from 'node:assert/strict'
import { QueryTypes, type Sequelize } from 'sequelize'
import { createBoardinghouse } from '../plugin/boardinghouse.js'
import { withConnection } from '../plugin/db.js'
import { setupBoardinghouse, hasCode } from './helpers.js'

/** Whether a bind query left its tenant's search_path on the (only) pooled connection: 'set' does, 'transaction' does not. */
async function bindQueryLeavesPath (sequelize: Sequelize, run: (fn: () => Promise<unknown>) => Promise<unknown>): Promise<boolean> {
  await run(async () => {
    await withConnection(sequelize, async (c) => { await c.query('RESET search_path') })
    await sequelize.query('SELECT $1::int AS one', { bind: [1], type: QueryTypes.SELECT })
  })
  const path = await withConnection(sequelize, async (c) => String((await c.query('SHOW search_path')).rows[0]?.search_path))
  return /acme/.test(path)
}

/** The audit settings a query of `userId` runs with (empty when audit attribution is off). */
async function auditUser (sequelize: Sequelize, run: (fn: () => Promise<unknown>) => Promise<unknown>): Promise<string> {
  const rows = await run(async () => await sequelize.query<{ u: string }>("SELECT current_setting('boardinghouse.user_id', true) AS u", { type: QueryTypes.SELECT })) as Array<{ u: string | null }>
  return rows[0]?.u ?? ''
}

test('per-Sequelize settings: a second Boardinghouse shares them or fails, never changes them', async (t) => {
  const { bh, sequelize } = await setupBoardinghouse(t, { bindPath: 'transaction', auditModels: ['Item'], auditRepr: { Item: 'title' }, cacheTtl: 5000 }, { pool: { max: 1, min: 0 } })
  await bh.createSchema('acme')
  const inAcme = async (fn: () => Promise<unknown>): Promise<unknown> => await bh.runInSchema('acme', fn, { userId: 7 })
  assert.equal(await bindQueryLeavesPath(sequelize, inAcme), false)
  assert.equal(await auditUser(sequelize, inAcme), '7')

  await t.test('an instance that gives none of them shares the first one\'s', async () => {
    const script = createBoardinghouse({ sequelize, tenantModels: ['Item'] })
    assert.equal(script.options.bindPath, 'transaction')
    assert.deepEqual(script.options.auditModels, ['Item'])
    assert.equal(script.options.cacheTtl, 5000)
    assert.equal(script.registry, bh.registry)
    assert.equal(await bindQueryLeavesPath(sequelize, inAcme), false, 'bindPath is still transaction')
    assert.equal(await auditUser(sequelize, inAcme), '7', 'audit attribution is still on')
  })

  await t.test('the same values are accepted', async () => {
    const same = createBoardinghouse({ sequelize, tenantModels: ['Item'], bindPath: 'transaction', auditModels: [sequelize.models.Item as never], cacheTtl: 5000, userIdType: 'integer' })
    assert.equal(same.options.bindPath, 'transaction')
  })

  await t.test('a different value fails with FST_BH_SETTINGS_CONFLICT, and nothing changes', async () => {
    const conflicting: Array<Record<string, unknown>> = [{ bindPath: 'set' }, { auditModels: [] }, { auditModels: ['Item', 'User'] }, { cacheTtl: 1000 }, { userIdType: 'uuid' }, { auditRepr: { Item: 'id' } }]
    for (const extra of conflicting) {
      assert.throws(() => createBoardinghouse({ sequelize, tenantModels: ['Item'], ...extra }), hasCode('FST_BH_SETTINGS_CONFLICT'), JSON.stringify(extra))
    }
    assert.equal(bh.options.bindPath, 'transaction')
    assert.equal(await bindQueryLeavesPath(sequelize, inAcme), false)
    assert.equal(await auditUser(sequelize, inAcme), '7')
  })
})

test('per-Sequelize settings left at their defaults are fixed by the first instance that gives them', async (t) => {
  // auditing turned on by a later instance (the audit test's pattern): the default had no owner
  const { bh, sequelize } = await setupBoardinghouse(t, {}, { pool: { max: 1, min: 0 } })
  await bh.createSchema('acme')
  const inAcme = async (fn: () => Promise<unknown>): Promise<unknown> => await bh.runInSchema('acme', fn, { userId: 7 })
  assert.equal(await auditUser(sequelize, inAcme), '')
  assert.equal(await bindQueryLeavesPath(sequelize, inAcme), true, "control: the probe sees bindPath 'set'")
  const audited = createBoardinghouse({ sequelize, tenantModels: ['Item'], auditModels: ['Item'] })
  assert.deepEqual(bh.options.auditModels, ['Item'], 'every instance sees the settings in force')
  assert.equal(await auditUser(sequelize, inAcme), '7')
  assert.throws(() => createBoardinghouse({ sequelize, auditModels: [] }), hasCode('FST_BH_SETTINGS_CONFLICT'))
  assert.ok(audited)
  // userIdType and cacheTtl are fixed by the first instance even when defaulted (models and cache are built then)
  assert.throws(() => createBoardinghouse({ sequelize, userIdType: 'uuid' }), hasCode('FST_BH_SETTINGS_CONFLICT'))
  assert.throws(() => createBoardinghouse({ sequelize, cacheTtl: 1000 }), hasCode('FST_BH_SETTINGS_CONFLICT'))
})
