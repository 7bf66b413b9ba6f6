import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildTestApp, login } from './fixtures/app.js'
import { setupBoardinghouse } from './helpers.js'

/** ≥ 500 hostile or odd schema names, repeatable (seeded). */
function names (): unknown[] {
  let seed = 42
  const rnd = (n: number): number => { seed = (seed * 48271) % 2147483647; return seed % n }
  const alphabet = ['a', 'z', '0', '_', '"', "'", ';', '-', ' ', '\\', '/', '.', '$', '%', '\u0000', 'é', 'ß', 'Ä', '\u202e', '😀', '\n', 'A', 'P', 'G', '*', '(', ')', '=', '\t']
  const fixed: unknown[] = [
    '', ' ', 'acme', 'globex', 'initech', 'secret', '__template__', '__TEMPLATE__', '_template', 'public', 'PUBLIC', 'information_schema', 'pg_catalog', 'pg_toast', 'pg_temp', 'pg_x',
    'acme"; DROP SCHEMA public CASCADE; --', "acme'; DROP TABLE items; --", 'acme, public', 'acme;', '"acme"', 'acme\u0000', 'acme ', ' acme', 'ACME', 'Acme', 'acme\n', 'acme/../globex',
    'a'.repeat(63), 'a'.repeat(64), 'é'.repeat(40), '😀', '1abc', '$1', '%s', '${schema}', '*', 'acme OR 1=1', 'secret--', 'null', 'undefined', 'true', '0', null, 0, 1, true, false, -1
  ]
  const out = [...fixed]
  while (out.length < 600) {
    const len = 1 + rnd(80)
    let s = rnd(3) === 0 ? ['acme', 'globex', 'secret', 'pg_', '__template__'][rnd(5)] as string : ''
    for (let i = 0; i < len; i++) s += alphabet[rnd(alphabet.length)]
    out.push(s)
  }
  return out
}

test('fuzzing the switch route and the session value: only 4xx, never 5xx, never a schema not allowed', async (t) => {
  const { bh, sequelize } = await setupBoardinghouse(t)
  for (const s of ['acme', 'globex', 'secret']) await bh.createSchema(s)
  await bh.grant('acme', 1)
  await bh.grant('globex', 1)
  const app = await buildTestApp({ sequelize })
  t.after(async () => { await app.close() })
  const cookie = await login(app, 1)
  const allowed = new Set(['acme', 'globex'])
  const list = names()
  assert.ok(list.length >= 500)
  let statuses = new Map<number, number>()
  const count = (status: number): void => { statuses.set(status, (statuses.get(status) ?? 0) + 1) }

  for (const name of list) {
    for (const [payload, type] of [[JSON.stringify({ schema: name }), 'application/json'], [`schema=${encodeURIComponent(String(name))}`, 'application/x-www-form-urlencoded']] as const) {
      const res = await app.inject({ method: 'POST', url: '/__change_schema__', payload, headers: { cookie, 'content-type': type } })
      count(res.statusCode)
      assert.ok(res.statusCode < 500, `${res.statusCode} for ${JSON.stringify(name)}: ${res.body}`)
      if (res.statusCode === 200) {
        const selected = (res.json() as { schema: string | null }).schema
        assert.ok(selected === null || allowed.has(selected), `selected ${String(selected)} for ${JSON.stringify(name)}`)
      } else {
        assert.equal(typeof (res.json() as { code?: string }).code, 'string')
      }
      const who = (await app.inject({ method: 'GET', url: '/items', headers: { cookie } }))
      assert.ok(who.statusCode < 500)
      if (who.statusCode === 200) assert.ok(allowed.has((who.json() as { schema: string }).schema))
    }
  }
  t.diagnostic(`switch route statuses: ${JSON.stringify(Object.fromEntries(statuses))}`)

  statuses = new Map()
  for (const value of [...list, { schema: 'secret' }, ['secret'], 1e309]) {
    await app.inject({ method: 'POST', url: '/test/session-schema', payload: { value }, headers: { cookie } })
    const res = await app.inject({ method: 'GET', url: '/items', headers: { cookie } })
    count(res.statusCode)
    assert.ok(res.statusCode < 500, `${res.statusCode} for session value ${JSON.stringify(value)}: ${res.body}`)
    if (res.statusCode === 200) assert.ok(allowed.has((res.json() as { schema: string }).schema), `session value ${JSON.stringify(value)}`)
  }
  t.diagnostic(`session value statuses: ${JSON.stringify(Object.fromEntries(statuses))}`)
  // the database is unharmed
  assert.deepEqual((await bh.listSchemas()).map((s) => s.schema), ['acme', 'globex', 'secret'])
})
