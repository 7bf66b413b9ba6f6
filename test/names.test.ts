import { test } from 'node:test'
import assert from 'node:assert/strict'
import { assertSchemaName, isValidSchemaName, quoteIdent, schemaNameProblem, TEMPLATE_SCHEMA } from '../plugin/names.js'

const BAD: Array<[unknown, RegExp]> = [
  ['Acme', /lowercase/],
  ['1abc', /lowercase/],
  ['pg_x', /pg_/],
  ['public', /reserved/],
  ['information_schema', /reserved/],
  ['_private', /_/],
  ['a"; drop schema public; --', /lowercase/],
  ['a'.repeat(64), /63 bytes/],
  ['café', /lowercase/],
  ['ünïcode', /lowercase/],
  ['a-b', /lowercase/],
  ['a b', /lowercase/],
  ['', /empty/],
  ['a\u0000b', /lowercase/],
  [42, /string/],
  [null, /string/]
]

test('schema names: the invalid and reserved are refused with the reason', () => {
  for (const [name, reason] of BAD) {
    assert.equal(isValidSchemaName(name), false, String(name))
    assert.match(schemaNameProblem(name) ?? '', reason, String(name))
    assert.throws(() => assertSchemaName(name), (err: Error & { code?: string, statusCode?: number }) => {
      assert.equal(err.code, 'FST_BH_INVALID_SCHEMA_NAME')
      assert.equal(err.statusCode, 400)
      return true
    })
  }
})

test('schema names: the template has its own code', () => {
  assert.throws(() => assertSchemaName(TEMPLATE_SCHEMA), { code: 'FST_BH_TEMPLATE_SCHEMA' })
})

test('schema names: valid ones pass, up to 63 bytes', () => {
  for (const name of ['a', 'acme', 'acme_2', 'x'.repeat(63), 'p', 'pg', 'pgx', 'public2', 'z9_']) {
    assert.equal(schemaNameProblem(name), null, name)
    assert.doesNotThrow(() => assertSchemaName(name))
  }
})

test('quoteIdent doubles quotes and refuses NUL', () => {
  assert.equal(quoteIdent('acme'), '"acme"')
  assert.equal(quoteIdent('a"b'), '"a""b"')
  assert.throws(() => quoteIdent('a\u0000'))
})
