/**
 * The registry writes (plugin/schema-admin.ts): each change and its NOTIFY commit together (a notice
 * that cannot be sent rolls the change back; a change that fails sends none), drop reads no result
 * by position, and createSchema raises only FST_BH_ errors, 400 for bad input.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type pg from 'pg'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import { connect, hasCode, registryState, setupBoardinghouse, listener } from './helpers.js'


/** The id the instance sends as its NOTIFY payload (the change listener's). */
function changes (bh: Boardinghouse): { id: string } {
  return (bh as unknown as { changes: { id: string } }).changes
}


/** The sender ids of notices (a notice is a JSON event carrying its sender's id: see plugin/events.ts). */
function senders (payloads: string[]): string[] {
  return payloads.map((p) => p.startsWith('{') ? (JSON.parse(p) as { id: string }).id : p)
}

test('schema admin', async (t) => {
  const { bh, sequelize, url } = await setupBoardinghouse(t)
  const notices = await listener(t, url)
  await bh.createSchema('acme', { name: 'Acme' })
  await bh.createSchema('globex')
  await bh.deleteSchema('globex')
  await bh.grant('acme', 1)
  await notices.take()

  await t.test('a committed change sends exactly one notice, with the instance id', async () => {
    const id = changes(bh).id
    await bh.createSchema('initech')
    assert.deepEqual(senders(await notices.take()), [id])
    await bh.grant('initech', 7)
    assert.deepEqual(senders(await notices.take()), [id])
    assert.equal(await bh.revoke('initech', 7), true)
    assert.deepEqual(senders(await notices.take()), [id])
    await bh.deleteSchema('initech')
    assert.deepEqual(senders(await notices.take()), [id])
    await bh.activateSchema('initech')
    assert.deepEqual(senders(await notices.take()), [id])
    await bh.deleteSchema('initech', { drop: true })
    assert.deepEqual(senders(await notices.take()), [id])
  })

  await t.test('a change that fails sends no notice', async () => {
    await assert.rejects(bh.createSchema('acme'), hasCode('FST_BH_SCHEMA_EXISTS', 409))
    await assert.rejects(bh.deleteSchema('nope'), hasCode('FST_BH_SCHEMA_NOT_FOUND', 404))
    await assert.rejects(bh.deleteSchema('nope', { drop: true }), hasCode('FST_BH_SCHEMA_NOT_FOUND', 404))
    await assert.rejects(bh.activateSchema('nope'), hasCode('FST_BH_SCHEMA_NOT_FOUND', 404))
    await assert.rejects(bh.grant('nope', 1), hasCode('FST_BH_SCHEMA_NOT_FOUND', 404))
    await assert.rejects(bh.revoke('nope', 1), hasCode('FST_BH_SCHEMA_NOT_FOUND', 404))
    assert.equal(await bh.revoke('acme', 999), false)
    assert.deepEqual(await notices.take(), [])
  })

  await t.test('a notice that cannot be sent rolls its change back (NOTIFY inside the transaction)', async () => {
    const before = await registryState(sequelize)
    const listenerOf = changes(bh)
    const id = listenerOf.id
    // PostgreSQL refuses a NOTIFY payload of 8000 bytes or more: every pg_notify of this instance fails
    Object.defineProperty(listenerOf, 'id', { value: 'x'.repeat(8001), configurable: true })
    try {
      await assert.rejects(bh.createSchema('hooli'))
      await assert.rejects(bh.deleteSchema('acme'))
      await assert.rejects(bh.deleteSchema('acme', { drop: true }))
      await assert.rejects(bh.activateSchema('globex'))
      await assert.rejects(bh.grant('acme', 2))
      await assert.rejects(bh.revoke('acme', 1))
    } finally {
      Object.defineProperty(listenerOf, 'id', { value: id, configurable: true })
    }
    bh.invalidate()
    assert.deepEqual(await registryState(sequelize), before)
    assert.deepEqual(await notices.take(), [])
    // and the instance still works
    await bh.grant('acme', 2)
    assert.deepEqual(senders(await notices.take()), [id])
    assert.deepEqual(await bh.membersOf('acme'), ['1', '2'])
  })

  await t.test('drop removes the registry row, memberships, ledger and schema, and nothing else', async () => {
    await bh.createSchema('umbrella')
    await bh.grant('umbrella', 3)
    await notices.take()
    const before = await registryState(sequelize)
    await bh.deleteSchema('umbrella', { drop: true })
    const after = await registryState(sequelize)
    const without = (rows: unknown[]): unknown[] => rows.filter((r) => (r as { schema_name: string }).schema_name !== 'umbrella')
    assert.deepEqual(after, {
      schemas: before.schemas.filter((s) => s !== 'umbrella'),
      registry: without(before.registry),
      members: without(before.members),
      ledger: without(before.ledger)
    })
    assert.ok(before.ledger.length > after.ledger.length && before.members.length > after.members.length)
    // a schema that exists in PostgreSQL but not in the registry is not dropped: not found, nothing changes
    await sequelize.query('CREATE SCHEMA orphan')
    const orphaned = await registryState(sequelize)
    await assert.rejects(bh.deleteSchema('orphan', { drop: true }), hasCode('FST_BH_SCHEMA_NOT_FOUND', 404))
    assert.deepEqual(await registryState(sequelize), orphaned)
    await sequelize.query('DROP SCHEMA orphan')
    assert.deepEqual(senders(await notices.take()), [changes(bh).id])
  })

  await t.test('createSchema raises FST_BH_ codes only: bad input is a 400 and changes nothing', async () => {
    const before = await registryState(sequelize)
    const cases: Array<[unknown, unknown, string]> = [
      ['hooli', null, 'FST_BH_INVALID_INPUT'],
      ['hooli', 42, 'FST_BH_INVALID_INPUT'],
      ['hooli', 'Hooli', 'FST_BH_INVALID_INPUT'],
      ['hooli', { name: 42 }, 'FST_BH_INVALID_DISPLAY_NAME'],
      ['hooli', { name: '' }, 'FST_BH_INVALID_DISPLAY_NAME'],
      ['hooli', { name: '   ' }, 'FST_BH_INVALID_DISPLAY_NAME'],
      ['hooli', { name: 'Ho\u0000oli' }, 'FST_BH_INVALID_DISPLAY_NAME'],
      [42, {}, 'FST_BH_INVALID_SCHEMA_NAME'],
      [null, undefined, 'FST_BH_INVALID_SCHEMA_NAME'],
      ['ho\u0000li', {}, 'FST_BH_INVALID_SCHEMA_NAME']
    ]
    for (const [schema, options, code] of cases) {
      await assert.rejects(bh.createSchema(schema as string, options as { name?: string }), hasCode(code, 400), JSON.stringify([schema, options]))
    }
    assert.deepEqual(await registryState(sequelize), before)
    assert.deepEqual(await notices.take(), [])
  })

  await t.test('a lower error escaping createSchema is wrapped in an FST_BH_ code with its cause', async () => {
    const broken = new Boardinghouse({ sequelize, tenantModels: ['Item'] })
    // the registry table missing from the clone transaction's point of view: a database error, not ours
    await sequelize.query('ALTER TABLE public.boardinghouse_tenant_migration RENAME TO bh_ledger_moved')
    try {
      await assert.rejects(broken.createSchema('hooli'), (err: Error & { code?: string, cause?: unknown }) => {
        assert.match(err.code ?? '', /^FST_BH_/)
        assert.ok(err.cause !== undefined)
        return true
      })
    } finally {
      await sequelize.query('ALTER TABLE public.bh_ledger_moved RENAME TO boardinghouse_tenant_migration')
    }
    assert.equal(await bh.getSchema('hooli'), null)
  })
})
