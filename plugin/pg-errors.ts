/** PostgreSQL errors the library reacts to, read from a pg error or from a Sequelize error wrapping one. */

/** SQLSTATE 42P01: a relation does not exist. */
export const UNDEFINED_TABLE = '42P01'
/** SQLSTATE 3F000: a schema does not exist. */
export const INVALID_SCHEMA_NAME = '3F000'

/** The SQLSTATE of a pg error (`code`) or of the pg error a Sequelize error wraps (`original`, `parent`). */
export function sqlState (err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const e = err as { code?: unknown, original?: { code?: unknown } | null, parent?: { code?: unknown } | null }
  for (const code of [e.code, e.original?.code, e.parent?.code]) {
    if (typeof code === 'string') return code
  }
  return undefined
}

/** True for "relation does not exist" (42P01), e.g. a library table before the first migrate. */
export function isUndefinedTable (err: unknown): boolean {
  return sqlState(err) === UNDEFINED_TABLE
}
