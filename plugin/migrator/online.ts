/**
 * Online migrations: a migration file exporting `transaction = false` runs outside a transaction,
 * for statements PostgreSQL refuses in one (CREATE INDEX CONCURRENTLY, REINDEX CONCURRENTLY) or
 * that should not hold a transaction's locks for long (ALTER TABLE … VALIDATE CONSTRAINT).
 *
 * - A schema's migrations are cut into segments: each run of transactional migrations is one
 *   transaction with its ledger rows, as before; each online migration is a segment of its own.
 * - An online migration runs in its schema under that schema's session-level advisory lock, the
 *   key of the transactional segments' transaction-level lock, held on a connection of its own
 *   (outside the pool, one per schema migrated at once, closed at the end of the run): two runs
 *   never run it in one schema at once, nor a transactional segment of that schema meanwhile.
 * - Under the lock it reads the ledger (done: skip), repairs what a killed or failed CONCURRENTLY
 *   left behind (INVALID indexes of the schema: DROP INDEX CONCURRENTLY), runs, checks that it left
 *   no INVALID index, and only then writes its ledger row (in a short transaction of its own).
 * - A failure leaves no ledger row; the INVALID indexes it left are dropped at once if possible,
 *   else by the next run.
 */
import type { Sequelize } from 'sequelize'
import { openOwnConnection, type RawConnection } from '../db.js'
import { quoteIdent } from '../names.js'
import { tablesOfSchema } from './catalog.js'
import type { LoadedMigration } from './files.js'
import { MIGRATION_LOCK_KEY, waitForLock, type MigrationLock } from './lock.js'

/** Whether a migration runs outside a transaction (its file exports `transaction = false`). */
export function isOnline (migration: LoadedMigration): boolean {
  return !migration.transaction
}

export type Segment = { online: false, migrations: LoadedMigration[] } | { online: true, migration: LoadedMigration }

/** Cuts an ordered set into runs of transactional migrations and single online ones, in order. */
export function segments (migrations: readonly LoadedMigration[]): Segment[] {
  const out: Segment[] = []
  for (const m of migrations) {
    const last = out[out.length - 1]
    if (isOnline(m)) out.push({ online: true, migration: m })
    else if (last !== undefined && !last.online) last.migrations.push(m)
    else out.push({ online: false, migrations: [m] })
  }
  return out
}

/**
 * The connections (outside the pool) on which online migrations hold their schema's session lock:
 * opened on first use, one per schema migrated at once, reused, and closed when the run's
 * migration lock is released.
 */
export class OnlineSessions {
  private readonly idle: Session[] = []
  private readonly open: Session[] = []

  constructor (private readonly sequelize: Sequelize) {}

  /** The sessions of a run (its migration lock): created once, closed with the lock's release. */
  static of (sequelize: Sequelize, lock: MigrationLock): OnlineSessions {
    let sessions = perRun.get(lock)
    if (sessions === undefined) {
      const created = new OnlineSessions(sequelize)
      perRun.set(lock, created)
      lock.onRelease(async () => { await created.close() })
      sessions = created
    }
    return sessions
  }

  async take (): Promise<Session> {
    const reused = this.idle.pop()
    if (reused !== undefined && reused.lost === null) return reused
    if (reused !== undefined) await reused.close()
    const session = await Session.open(this.sequelize)
    this.open.push(session)
    return session
  }

  give (session: Session): void {
    if (session.lost === null) this.idle.push(session)
    else void session.close()
  }

  async close (): Promise<void> {
    this.idle.length = 0
    await Promise.all(this.open.splice(0).map(async (s) => { await s.close() }))
  }
}

const perRun = new WeakMap<MigrationLock, OnlineSessions>()

interface PgEvents { on: (event: 'error' | 'end', listener: (err?: Error) => void) => unknown }

/** One own connection: holds one schema's session lock at a time; watched ('error', 'end'). */
export class Session {
  lost: string | null = null

  private constructor (readonly connection: RawConnection, private readonly closeConnection: () => Promise<void>) {
    const events = connection as unknown as PgEvents
    events.on('error', (err) => { this.lost ??= err?.message ?? 'its connection failed' })
    events.on('end', () => { this.lost ??= 'its connection ended' })
  }

  static async open (sequelize: Sequelize): Promise<Session> {
    const { connection, close } = await openOwnConnection(sequelize)
    const session = new Session(connection, close)
    try {
      const { rows } = await connection.query("SELECT current_setting('server_version_num')::int AS v")
      const version = Number((rows[0] as { v: number } | undefined)?.v ?? 0)
      // Idle while the online DDL runs on a pool connection: no idle timeout may end it (and its lock).
      await connection.query(`SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0${version >= 140000 ? '; SET idle_session_timeout = 0' : ''}`)
    } catch (err) {
      await close()
      throw err
    }
    return session
  }

  async close (): Promise<void> {
    this.lost ??= 'closed'
    await this.closeConnection()
  }

  /** Throws unless the connection (and so the session lock) is alive now. */
  async check (): Promise<void> {
    if (this.lost === null) {
      try {
        await this.connection.query('SELECT 1')
      } catch (err) {
        this.lost ??= err instanceof Error ? err.message : String(err)
      }
    }
    if (this.lost !== null) throw new Error(`the connection holding the schema's online-migration lock was lost (${this.lost}): run migrate again`)
  }
}

/** An index of a schema that is INVALID (a CONCURRENTLY build or rebuild that failed or was killed). */
export interface InvalidIndex {
  name: string
  table: string
  /** The backend building an index on that table now (pg_stat_progress_create_index), if any. */
  buildingPid: number | null
}

/** INVALID plain indexes of `schema` (partitioned parents, invalid until attached, are not counted). */
export async function invalidIndexes (connection: RawConnection, schema: string): Promise<InvalidIndex[]> {
  // From the schema's tables (pg_depend) to their indexes (pg_index's index on indrelid): no scan
  // of pg_index or pg_class, which hold every schema's.
  const { rows } = await connection.query(
    `SELECT c.relname AS name, t.relname AS "table",
            (SELECT p.pid FROM pg_catalog.pg_stat_progress_create_index p WHERE p.relid = i.indrelid LIMIT 1) AS building
     FROM (${tablesOfSchema('$1')}) t
     JOIN pg_catalog.pg_index i ON i.indrelid = t.oid
     JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
     WHERE c.relkind = 'i' AND NOT i.indisvalid
     ORDER BY 1`, [schema])
  return rows.map((r) => ({ name: r.name as string, table: r.table as string, buildingPid: r.building === null ? null : Number(r.building) }))
}

/**
 * Drops the INVALID indexes of `schema` (DROP INDEX CONCURRENTLY, one statement per message, outside
 * a transaction): what a killed or failed CREATE INDEX / REINDEX CONCURRENTLY leaves. Refuses, changing
 * nothing, while an index build runs on one of their tables (another session's: let it finish).
 * Returns the names dropped.
 */
export async function repairInvalidIndexes (connection: RawConnection, schema: string): Promise<string[]> {
  const invalid = await invalidIndexes(connection, schema)
  const building = invalid.find((i) => i.buildingPid !== null)
  if (building !== undefined) {
    throw new Error(`index "${schema}"."${building.name}" is INVALID and backend ${String(building.buildingPid)} is building an index on "${building.table}" now: let it finish (or cancel it), then run migrate again`)
  }
  for (const { name } of invalid) {
    await connection.query(`DROP INDEX CONCURRENTLY IF EXISTS ${quoteIdent(schema)}.${quoteIdent(name)}`)
  }
  return invalid.map((i) => i.name)
}

/** Where a schema's run was (see failure.ts's RunState); the online step updates it. */
export interface OnlineState { migration?: string, stage: 'begin' | 'migrating' | 'commit' }

export interface OnlineStep {
  schema: string
  migration: LoadedMigration
  lock: MigrationLock
  state: OnlineState
  /** Names recorded for the schema (read under the session lock). */
  executed: () => Promise<string[]>
  /** Runs the migration's up() in the schema, outside a transaction. */
  run: () => Promise<void>
  /** Writes the ledger row (and the schema's after-migration work), in a transaction. */
  record: () => Promise<void>
}

/**
 * Runs one online migration in one schema (see the header). Resolves to whether it ran (false: the
 * ledger already had it).
 */
export async function runOnline (sessions: OnlineSessions, step: OnlineStep): Promise<boolean> {
  const { schema, migration, lock, state } = step
  if (lock.lost !== null) throw lock.lost
  const session = await sessions.take()
  const { connection } = session
  let locked = false
  try {
    await waitForLock(async () => (await connection.query(`SELECT pg_try_advisory_lock(${MIGRATION_LOCK_KEY}, hashtext($1)) AS ok`, [schema])).rows[0]?.ok === true)
    locked = true
    if ((await step.executed()).includes(migration.name)) return false
    await repairInvalidIndexes(connection, schema)
    state.stage = 'migrating'
    state.migration = migration.name
    try {
      await step.run()
      await lock.check()
      const left = await invalidIndexes(connection, schema)
      if (left.length > 0) throw new Error(`it left INVALID index ${left.map((i) => `"${i.name}"`).join(', ')} (a CONCURRENTLY build failed without an error reaching the migration)`)
      await session.check()
    } catch (err) {
      // Best effort: drop what a failed CONCURRENTLY left now (else the next run does).
      if (session.lost === null) await repairInvalidIndexes(connection, schema).catch(() => {})
      throw err
    }
    state.stage = 'commit'
    await step.record()
    return true
  } finally {
    if (locked && session.lost === null) {
      await connection.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY}, hashtext($1))`, [schema]).catch(() => { session.lost ??= 'unlock failed' })
    }
    sessions.give(session)
  }
}
