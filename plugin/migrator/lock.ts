/** The migrate run's session-level advisory lock, on a connection of its own, kept alive and watched. */
import type { RawConnection } from '../db.js'
import { BoardinghouseErrors } from '../errors.js'

/** Advisory lock key shared by `migrate` (exclusive) and tenant creation (shared). */
export const MIGRATION_LOCK_KEY = 0x62686d67 // 'bhmg'

/** How often the lock's connection is probed (a query also resets any idle timeout on it). */
const LOCK_HEARTBEAT_MS = 5000

/** The first and the longest pause between two tries of a taken advisory lock. */
const LOCK_RETRY_FIRST_MS = 5
const LOCK_RETRY_MAX_MS = 250

/**
 * Waits for an advisory lock by trying it (`pg_try_advisory_*`) until `tryLock` resolves true,
 * never by blocking inside a statement: a backend waiting in a statement holds a snapshot, and
 * CREATE INDEX CONCURRENTLY waits for every older snapshot of the database, so a blocked waiter
 * of a lock held during an online migration would hang with it (undetected by PostgreSQL: the
 * holder is an idle session). Between tries nothing is held: a waiting transaction (read
 * committed, no statement running) has no snapshot.
 */
export async function waitForLock (tryLock: () => Promise<boolean>): Promise<void> {
  for (let tries = 0; !(await tryLock()); tries++) await lockRetryPause(tries)
}

/** The pause before try number `tries + 1` of a taken lock: 5 ms, doubling up to 250 ms. */
export async function lockRetryPause (tries: number): Promise<void> {
  const pause = Math.min(LOCK_RETRY_FIRST_MS * 2 ** Math.min(tries, 16), LOCK_RETRY_MAX_MS)
  await new Promise((resolve) => setTimeout(resolve, pause))
}

/**
 * Marks the queries of a session waiting for the migration lock: pg_stat_activity shows it in the
 * backend's last query while it waits (a waiter holds nothing: pg_locks shows no ungranted lock).
 */
export const WAITING_MARKER = '/* boardinghouse: waiting for the migration lock */'

/** True while a migrate holds the migration lock (its session-level exclusive advisory lock). */
const MIGRATION_RUNNING_SQL = `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND granted AND mode = 'ExclusiveLock'
  AND database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
  AND classid = 0 AND objid = ${MIGRATION_LOCK_KEY} AND objsubid = 1) AS running ${WAITING_MARKER}`

/** Waits (reading pg_locks, holding nothing) until no migrate holds the migration lock: a tenant creation's wait. */
export async function waitWhileMigrating (connection: RawConnection): Promise<void> {
  for (let tries = 0; ; tries++) {
    const { rows } = await connection.query(MIGRATION_RUNNING_SQL)
    if ((rows[0] as { running?: boolean } | undefined)?.running !== true) return
    await lockRetryPause(tries)
  }
}

/** SQLSTATE of MIGRATION_LOCK_SHARED_SQL when a migrate holds the lock: roll back, wait (waitWhileMigrating), try again. */
export const MIGRATION_RUNNING_STATE = 'BHMIG'

/**
 * Tenant creation's share of the migration lock, inside its transaction: tried, not waited for in
 * the statement (see waitForLock); raises MIGRATION_RUNNING_STATE while a migrate holds it.
 */
export const MIGRATION_LOCK_SHARED_SQL = `DO $bh$ BEGIN IF NOT pg_try_advisory_xact_lock_shared(${MIGRATION_LOCK_KEY}) THEN
  RAISE EXCEPTION 'a migrate is running' USING ERRCODE = '${MIGRATION_RUNNING_STATE}'; END IF; END $bh$`

interface PgClientLike {
  on: (event: 'error' | 'end', listener: (err?: Error) => void) => unknown
  off?: (event: 'error' | 'end', listener: (err?: Error) => void) => unknown
  connection?: { stream?: { setKeepAlive?: (enable: boolean, delay: number) => unknown } }
}

/**
 * The session-level advisory lock of a migrate run, on a connection of its own. The connection is
 * kept from idling out (idle timeouts off for the session, TCP keepalive, a query every 5 s) and
 * watched: an 'error' or 'end' of the client, or a failed probe, marks the lock lost; check()
 * throws FST_BH_MIGRATION_LOCK_LOST from then on.
 */
export class MigrationLock {
  lost: Error | null = null
  private timer: NodeJS.Timeout | null = null
  private readonly cleanups: Array<() => Promise<void>> = []
  private readonly onError = (err?: Error): void => { this.markLost(err?.message ?? 'its connection failed', err) }
  private readonly onEnd = (): void => { this.markLost('its connection ended') }

  constructor (private readonly connection: RawConnection) {}

  private markLost (reason: string, cause?: unknown): void {
    this.lost ??= new BoardinghouseErrors.MIGRATION_LOCK_LOST(reason, { cause: cause ?? new Error(reason) })
  }

  async acquire (): Promise<void> {
    const client = this.connection as unknown as PgClientLike
    client.on('error', this.onError)
    client.on('end', this.onEnd)
    client.connection?.stream?.setKeepAlive?.(true, 10_000)
    const { rows } = await this.connection.query("SELECT current_setting('server_version_num')::int AS v")
    const version = Number((rows[0] as { v: number } | undefined)?.v ?? 0)
    await this.connection.query(`SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0${version >= 140000 ? '; SET idle_session_timeout = 0' : ''}`)
    await waitForLock(async () => (await this.connection.query(`SELECT pg_try_advisory_lock(${MIGRATION_LOCK_KEY}) AS ok ${WAITING_MARKER}`)).rows[0]?.ok === true)
    this.timer = setInterval(() => { this.probe().catch(() => {}) }, LOCK_HEARTBEAT_MS)
    this.timer.unref()
  }

  private async probe (): Promise<void> {
    if (this.lost !== null) return
    try {
      await this.connection.query('SELECT 1')
    } catch (err) {
      this.markLost(err instanceof Error ? err.message : String(err), err)
    }
  }

  /** Throws FST_BH_MIGRATION_LOCK_LOST unless the lock's connection answers now. */
  async check (): Promise<void> {
    await this.probe()
    if (this.lost !== null) throw this.lost
  }

  /** Runs `fn` when the run ends, before the lock is released (the online-DDL sessions close). */
  onRelease (fn: () => Promise<void>): void {
    this.cleanups.push(fn)
  }

  async release (): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer)
    for (const fn of this.cleanups.splice(0)) await fn().catch(() => {})
    if (this.lost === null) await this.connection.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`).catch(() => {})
    const client = this.connection as unknown as PgClientLike
    client.off?.('error', this.onError)
    client.off?.('end', this.onEnd)
    // Still listening for 'error': a late error of the closed connection must not go unhandled.
    client.on('error', () => {})
  }
}
