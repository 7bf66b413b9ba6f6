/** Access to a dedicated connection of the app's Sequelize pool (through plugin/sequelize-internals.ts). */
import type { Sequelize } from 'sequelize'
import { BoardinghouseErrors } from './errors.js'
import { connectionConfig, connectionManager, poolOptions, pools, writePool, type PgClient } from './sequelize-internals.js'

/** A pg client of the pool (or of its own), for raw SQL. */
export type RawConnection = Pick<PgClient, 'query'>

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
  const max = poolOptions(sequelize).max
  return typeof max === 'number' && max > 0 ? max : 5
}

/**
 * Runs `fn` on a connection of its own, outside the pool (same settings as the pool's), closed
 * afterwards: for a session-long advisory lock that must not take a pool slot.
 */
export async function withOwnConnection<T> (sequelize: Sequelize, fn: (connection: RawConnection) => Promise<T>): Promise<T> {
  const manager = connectionManager(sequelize)
  const connection = await manager.connect(connectionConfig(sequelize))
  try {
    return await fn(connection)
  } finally {
    // The connection may be gone (terminated): the caller's own error is the one to report.
    await manager.disconnect(connection).catch(() => {})
  }
}

/**
 * Uses of a pooled connection after which the library's default recycles it (closes it and opens a
 * fresh one), when the app's Sequelize sets no `pool.maxUses`. A PostgreSQL backend keeps what it
 * compiled and cached for every table it touched (relation and catalog caches, plans, PL/pgSQL
 * trigger code) for its whole life: with a connection per pool slot and thousands of tenants, that
 * grows without bound. Recycling after this many queries bounds it; reconnecting costs a few
 * milliseconds per 1,000 queries.
 */
export const DEFAULT_POOL_MAX_USES = 1000

/**
 * Applies DEFAULT_POOL_MAX_USES to the pool(s) of `sequelize` unless the app configured
 * `pool.maxUses` itself (any number; `0` means never recycle, as in sequelize-pool). Sequelize reads
 * `pool.maxUses` only when it builds its pool, in its constructor, so the default is set on the
 * pool built from it (sequelize-pool's `maxUsesPerResource`, read on each release). Returns the
 * limit in force (Infinity for none).
 */
export function applyPoolRecycling (sequelize: Sequelize): number {
  const configured = poolOptions(sequelize).maxUses
  if (configured !== undefined) return configured === 0 ? Infinity : configured
  for (const p of pools(sequelize)) {
    if (typeof p.maxUsesPerResource !== 'number') {
      throw new BoardinghouseErrors.INVALID_OPTION('the Sequelize pool has no maxUsesPerResource (sequelize-pool changed): set pool.maxUses on the Sequelize instance')
    }
    if (p.maxUsesPerResource === Infinity) p.maxUsesPerResource = DEFAULT_POOL_MAX_USES
  }
  return DEFAULT_POOL_MAX_USES
}

/** The recycling limit in force on the pool of `sequelize` (Infinity for none). */
export function poolMaxUses (sequelize: Sequelize): number {
  return writePool(sequelize)?.maxUsesPerResource ?? Infinity
}
