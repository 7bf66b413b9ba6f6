import { BoardinghouseErrors } from './errors.js'

/** The schema that holds an empty copy of every tenant table. Never selectable, never holds data. */
export const TEMPLATE_SCHEMA = '__template__'

/** Names of the spare schemas of the pending pool (plugin/pending.ts): never tenant names (they start with "_"). */
export const PENDING_SCHEMA_PATTERN = '^__pending_[0-9a-f]{16}__$'
const PENDING_SCHEMA_RE = new RegExp(PENDING_SCHEMA_PATTERN)

/** Whether `name` is a spare schema's internal name. */
export function isPendingSchemaName (name: unknown): boolean {
  return typeof name === 'string' && PENDING_SCHEMA_RE.test(name)
}

const NAME_RE = /^[a-z][a-z0-9_]{0,62}$/
const RESERVED = new Set(['public', 'information_schema'])

/** Why `name` cannot be a tenant schema name, or null when it can. */
export function schemaNameProblem (name: unknown): string | null {
  if (typeof name !== 'string') return 'must be a string'
  if (name === TEMPLATE_SCHEMA) return 'is the template schema'
  if (name.length === 0) return 'must not be empty'
  if (Buffer.byteLength(name, 'utf8') > 63) return 'must be at most 63 bytes'
  if (name.startsWith('_')) return 'must not start with "_" (reserved for internal schemas)'
  if (!NAME_RE.test(name)) return 'must start with a lowercase letter and hold only a-z, 0-9 and _'
  if (name.startsWith('pg_')) return 'must not start with "pg_" (reserved by PostgreSQL)'
  if (RESERVED.has(name)) return 'is reserved'
  return null
}

/** True when `name` is a valid tenant schema name (the template is not one). */
export function isValidSchemaName (name: unknown): name is string {
  return schemaNameProblem(name) === null
}

/** Throws FST_BH_TEMPLATE_SCHEMA or FST_BH_INVALID_SCHEMA_NAME unless `name` is a valid tenant schema name. */
export function assertSchemaName (name: unknown): asserts name is string {
  if (name === TEMPLATE_SCHEMA) throw new BoardinghouseErrors.TEMPLATE_SCHEMA()
  const problem = schemaNameProblem(name)
  if (problem !== null) throw new BoardinghouseErrors.INVALID_SCHEMA_NAME(describe(name), problem)
}

/** Quotes an identifier for SQL, whatever it holds. Used for every schema name, even validated ones. */
export function quoteIdent (name: string): string {
  if (name.includes('\u0000')) throw new BoardinghouseErrors.INVALID_SCHEMA_NAME(describe(name), 'contains a NUL byte')
  return '"' + name.replace(/"/g, '""') + '"'
}

/**
 * Quotes a string literal for SQL, whatever `standard_conforming_strings` is: a value with no
 * backslash is `'…'` (read alike either way); one with a backslash is an escape string `E'…'` with
 * backslashes doubled, which no setting reads differently.
 */
export function quoteLiteral (value: string): string {
  if (value.includes('\u0000')) throw new TypeError('string literal contains a NUL byte')
  const quoted = value.replace(/'/g, "''")
  return value.includes('\\') ? "E'" + quoted.replace(/\\/g, '\\\\') + "'" : "'" + quoted + "'"
}

/** A short, printable rendering of a rejected value for error messages. */
export function describe (value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value)
  return text.length > 80 ? text.slice(0, 77) + '..."' : text
}
