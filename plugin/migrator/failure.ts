/** How a schema's failed run is reported: which schema, which migration, at which stage, and why. */
import { BoardinghouseErrors } from '../errors.js'

/** PostgreSQL's own message (and detail) behind a Sequelize error, whose message can be just "Validation error". */
export function causeMessage (err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const parent = (err as { parent?: { message?: string, detail?: string } }).parent
  if (parent?.message !== undefined && parent.message !== '') {
    return parent.detail !== undefined && parent.detail !== '' ? `${parent.message} (${parent.detail})` : parent.message
  }
  return err.message
}

/** Where a schema's run was when it failed (attached to the error by runSet). */
export interface RunState { migration?: string, stage: 'begin' | 'migrating' | 'commit', /** a rollback's run (rollback.ts) */ down?: boolean }

export function wrapFailure (err: unknown, schema: string): Error {
  if (err instanceof BoardinghouseErrors.MIGRATION_LOCK_LOST) return err
  const e = err as { migration?: { name?: string }, cause?: unknown, bhRun?: RunState }
  const state = e.bhRun
  const migration = e.migration?.name ?? state?.migration ?? '(none)'
  const cause = e.migration !== undefined && e.cause !== undefined ? e.cause : err
  const where = state?.stage === 'commit' ? 'while committing the schema\'s transaction: ' : state?.stage === 'begin' ? 'before its first migration: ' : ''
  const reason = (state?.down === true ? 'undoing it (down) failed: ' : '') + where + causeMessage(cause)
  const wrapped = new BoardinghouseErrors.MIGRATION_FAILED(migration, schema, reason, { cause })
  // `reason`: the message without the schema and migration (a fleet run's `failures` list it so)
  return Object.assign(wrapped, { schema, migration, reason })
}

/** True for an error of a connection that is gone (terminated backend, closed socket). */
export function isConnectionLoss (err: unknown): boolean {
  const e = err as { name?: string, code?: string, message?: string, parent?: { code?: string, message?: string } }
  const code = e.parent?.code ?? e.code
  const message = e.parent?.message ?? e.message ?? ''
  return e.name === 'SequelizeConnectionError' || code === '57P01' || code === '57P02' || code === '57P03' ||
    /Connection terminated|connection is closed|ECONNRESET|Client has encountered a connection error/i.test(message)
}
