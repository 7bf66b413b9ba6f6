/** The migrate run's session-level advisory lock, on a connection of its own, kept alive and watched. */
import type { RawConnection } from '../db.js'
import { BoardinghouseErrors } from '../errors.js'

/** Advisory lock key shared by `migrate` (exclusive) and tenant creation (shared). */
export const MIGRATION_LOCK_KEY = 0x62686d67 // 'bhmg'

/** How often the lock's connection is probed (a query also resets any idle timeout on it). */
const LOCK_HEARTBEAT_MS = 5000

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
    await this.connection.query(`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`)
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

  async release (): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer)
    if (this.lost === null) await this.connection.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`).catch(() => {})
    const client = this.connection as unknown as PgClientLike
    client.off?.('error', this.onError)
    client.off?.('end', this.onEnd)
    // Still listening for 'error': a late error of the closed connection must not go unhandled.
    client.on('error', () => {})
  }
}
