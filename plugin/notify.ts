/**
 * Cross-process cache invalidation (DESIGN.md §5): every change made through the library is
 * published with NOTIFY; each process LISTENs on a dedicated connection (outside the pool) and drops
 * its cache on a notice from another process. The listener reconnects with backoff, and drops the
 * cache on reconnecting, since notices sent while it was away are lost.
 */
import { randomUUID } from 'node:crypto'
import type { Sequelize } from 'sequelize'
import { connectionConfig, connectionManager, type ConnectionManagerLike, type PgClient } from './sequelize-internals.js'
import { parseNotice, type ParsedNotice } from './events.js'

export const CHANNEL = 'boardinghouse_changes'

type ListenConnection = PgClient

export interface ChangeListenerOptions {
  sequelize: Sequelize
  /** Called on a notice from another process, and after (re)connecting. */
  onChange: () => void
  /** Called after onChange with the event a notice from another process carries (a well-formed one only). */
  onEvent?: (event: ParsedNotice) => void
  /** Called with connection errors (the listener keeps retrying). */
  onError?: (err: unknown) => void
  /** Longest wait between reconnection attempts (ms). @default 5000 */
  maxBackoff?: number
}

export class ChangeListener {
  /** Identifies this process's own notices, which it has already applied. */
  readonly id = randomUUID()
  private connection: ListenConnection | null = null
  private stopped = true
  private backoff = 100
  private timer: NodeJS.Timeout | null = null
  private connecting: Promise<void> | null = null
  private onError: (err: unknown) => void

  constructor (private readonly options: ChangeListenerOptions) {
    this.onError = options.onError ?? (() => {})
  }

  private manager (): ConnectionManagerLike {
    return connectionManager(this.options.sequelize)
  }

  /** True while a LISTEN connection is up. */
  get listening (): boolean {
    return this.connection !== null
  }

  /** Connects and LISTENs; resolves once listening (rejects if the first attempt fails, and keeps retrying). */
  async start (onError?: (err: unknown) => void): Promise<void> {
    if (onError !== undefined) this.onError = onError
    this.stopped = false
    await this.connect(true)
  }

  private async connect (first: boolean): Promise<void> {
    if (this.stopped) return
    this.connecting ??= (async () => {
      const config = connectionConfig(this.options.sequelize)
      let connection: ListenConnection | null = null
      try {
        connection = await this.manager().connect(config)
        connection.on('notification', (msg) => {
          // This process's own notices are skipped (it applied and emitted them at commit); any
          // other notice reloads the registry, and a well-formed one's event is emitted as remote.
          const { sender, event } = parseNotice((msg as { payload?: string }).payload ?? '')
          if (sender === this.id) return
          this.options.onChange()
          if (event !== null) this.options.onEvent?.(event)
        })
        const lost = (err: unknown): void => { this.lost(connection, err) }
        connection.on('error', lost)
        connection.on('end', lost)
        await connection.query(`LISTEN ${CHANNEL}`)
        if (this.stopped) {
          await this.manager().disconnect(connection).catch(() => {})
          return
        }
        this.connection = connection
        this.backoff = 100
        // Whatever changed while nobody listened is unknown: start over.
        this.options.onChange()
      } catch (err) {
        if (connection !== null) await this.manager().disconnect(connection).catch(() => {})
        this.onError(err)
        this.schedule()
        if (first) throw err
      }
    })()
    try {
      await this.connecting
    } finally {
      this.connecting = null
    }
  }

  private lost (connection: ListenConnection | null, err: unknown): void {
    if (connection === null || this.connection !== connection) return
    this.connection = null
    connection.removeAllListeners('notification')
    this.onError(err)
    this.options.onChange()
    this.schedule()
  }

  private schedule (): void {
    if (this.stopped || this.timer !== null) return
    const wait = this.backoff
    this.backoff = Math.min(this.backoff * 2, this.options.maxBackoff ?? 5000)
    this.timer = setTimeout(() => {
      this.timer = null
      this.connect(false).catch(() => {})
    }, wait)
    this.timer.unref()
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    await this.connecting?.catch(() => {})
    const connection = this.connection
    this.connection = null
    if (connection !== null) {
      connection.removeAllListeners('end')
      connection.removeAllListeners('error')
      connection.on('error', () => {})
      await this.manager().disconnect(connection).catch(() => {})
    }
  }
}
