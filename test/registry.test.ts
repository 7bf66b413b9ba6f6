/** The registry snapshot's precomputed lists: what each user, and an admin, may select. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { userKey } from '../plugin/registry.js'
import { setupBoardinghouse } from './helpers.js'

test('registry snapshot lists', async (t) => {
  const { bh } = await setupBoardinghouse(t)
  for (const s of ['umbrella', 'acme', 'globex', 'initech']) await bh.createSchema(s, { name: s.toUpperCase() })
  await bh.deleteSchema('globex')
  await bh.grant('umbrella', 1)
  await bh.grant('globex', 1)
  await bh.grant('acme', 1)
  await bh.grant('initech', 2)

  await t.test('a user gets their active memberships sorted by name; an admin every active schema', async () => {
    const snapshot = await bh.registry.get()
    assert.deepEqual(snapshot.selectable(userKey(1)), [{ schema: 'acme', name: 'ACME' }, { schema: 'umbrella', name: 'UMBRELLA' }])
    assert.deepEqual(snapshot.selectable(userKey(2)), [{ schema: 'initech', name: 'INITECH' }])
    assert.deepEqual(snapshot.selectable(userKey(3)), [])
    assert.deepEqual(snapshot.allActive.map((s) => s.schema), ['acme', 'initech', 'umbrella'])
    // the same as schemasForUser, which reads the maps
    assert.deepEqual(snapshot.selectable(userKey(1)).map((s) => s.schema), (await bh.schemasForUser(1)).map((s) => s.schema))
  })

  await t.test('computed once per snapshot and frozen: requests share them safely', async () => {
    const snapshot = await bh.registry.get()
    assert.equal(snapshot.selectable('1'), snapshot.selectable('1'))
    assert.equal(snapshot.allActive, snapshot.allActive)
    assert.ok(Object.isFrozen(snapshot.allActive) && Object.isFrozen(snapshot.allActive[0]))
    assert.ok(Object.isFrozen(snapshot.selectable('1')) && Object.isFrozen(snapshot.selectable('nobody')))
    assert.throws(() => { (snapshot.selectable('1') as Array<unknown>).push({}) }, TypeError)
    assert.equal(snapshot.selectable('1').length, 2)
  })

  await t.test('a change makes a new snapshot with new lists', async () => {
    const before = await bh.registry.get()
    await bh.activateSchema('globex')
    await bh.revoke('umbrella', 1)
    const after = await bh.registry.get()
    assert.notEqual(after, before)
    assert.deepEqual(after.selectable('1').map((s) => s.schema), ['acme', 'globex'])
    assert.deepEqual(after.allActive.map((s) => s.schema), ['acme', 'globex', 'initech', 'umbrella'])
    assert.deepEqual(before.selectable('1').map((s) => s.schema), ['acme', 'umbrella'])
  })
})
