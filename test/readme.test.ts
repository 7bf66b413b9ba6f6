import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { BoardinghouseErrors } from '../plugin/errors.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

test('every error code is in the README errors table with its status, and the table has no others', () => {
  const table = new Map<string, number>()
  for (const m of readme.matchAll(/^\| `(FST_BH_[A-Z_]+)` \| (\d{3}) \|/gm)) table.set(m[1] as string, Number(m[2]))
  const codes = Object.values(BoardinghouseErrors).map((E) => new E())
  for (const err of codes) {
    assert.equal(table.get(err.code), err.statusCode, `${err.code} in the README errors table with status ${String(err.statusCode)}`)
  }
  assert.deepEqual([...table.keys()].sort(), codes.map((e) => e.code).sort())
})

test('the README gives the two commands and the test command', () => {
  assert.match(readme, /npm install && npm run example/)
  assert.match(readme, /^npm test/m)
})
