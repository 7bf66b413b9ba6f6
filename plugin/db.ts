/** Access to a dedicated connection of the app's Sequelize pool (Sequelize internals, pinned by test/context.test.ts). */
import type { Sequelize } from 'sequelize'

export interface RawConnection {
  query: (sql: string, params?: unknown[]) => Promise<{ rows: Array<Record<string, unknown>>, rowCount: number | null }>
}

interface ConnectionManagerLike {
  getConnection: (options?: object) => Promise<RawConnection>
  releaseConnection: (connection: RawConnection) => Promise<void> | void
  connect: (config: object) => Promise<RawConnection>
  disconnect: (connection: RawConnection) => Promise<void>
  destroyConnection?: (connection: RawConnection) => Promise<void>
}

function connectionManager (sequelize: Sequelize): ConnectionManagerLike {
  return (sequelize as unknown as { connectionManager: ConnectionManagerLike }).connectionManager
}

/** Runs `fn` on one connection taken from the pool, and gives it back (also on error). */
export async function withConnection<T> (sequelize: Sequelize, fn: (connection: RawConnection) => Promise<T>): Promise<T> {
  const held = await acquireConnection(sequelize)
  try {
    return await fn(held.connection)
  } finally {
    await held.release()
  }
}

/** A pool connection held by code that cannot run inside a callback (an async generator). */
export interface HeldConnection {
  connection: RawConnection
  /**
   * Gives the connection back to the pool, or with `broken: true` (its state is unknown, e.g. a
   * ROLLBACK failed) destroys it. Call it exactly once, in a `finally`.
   */
  release: (broken?: boolean) => Promise<void>
}

/**
 * Takes one connection from the pool for an async generator, which cannot use withConnection: the
 * caller releases it in a `finally` (that also runs when the consumer stops early).
 */
export async function acquireConnection (sequelize: Sequelize): Promise<HeldConnection> {
  const manager = connectionManager(sequelize)
  const connection = await manager.getConnection({ type: 'SELECT' })
  let released = false
  return {
    connection,
    release: async (broken = false) => {
      if (released) return
      released = true
      if (broken && manager.destroyConnection !== undefined) {
        await manager.destroyConnection(connection)
      } else {
        await manager.releaseConnection(connection)
      }
    }
  }
}

/** The pool's maximum size as configured on the Sequelize instance. */
export function poolMax (sequelize: Sequelize): number {
  const max = (sequelize as unknown as { config: { pool?: { max?: number } } }).config.pool?.max
  return typeof max === 'number' && max > 0 ? max : 5
}

/**
 * Runs `fn` on a connection of its own, outside the pool (same settings as the pool's), closed
 * afterwards: for a session-long advisory lock that must not take a pool slot.
 */
export async function withOwnConnection<T> (sequelize: Sequelize, fn: (connection: RawConnection) => Promise<T>): Promise<T> {
  const manager = connectionManager(sequelize)
  const connection = await manager.connect((sequelize as unknown as { config: object }).config)
  try {
    return await fn(connection)
  } finally {
    await manager.disconnect(connection)
  }
}
