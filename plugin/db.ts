/** Access to a dedicated connection of the app's Sequelize pool (through plugin/sequelize-internals.ts). */
import type { Sequelize } from 'sequelize'
import { BoardinghouseErrors } from './errors.js'
import { connectionConfig, connectionManager, poolOptions, pools, wrapPoolValidate, writePool, type PgClient } from './sequelize-internals.js'

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
 * A connection of its own, outside the pool, as withOwnConnection's, for a caller that keeps it
 * across calls (the migrator's online-DDL sessions): `close()` it exactly once.
 */
export async function openOwnConnection (sequelize: Sequelize): Promise<{ connection: RawConnection, close: () => Promise<void> }> {
  const manager = connectionManager(sequelize)
  const connection = await manager.connect(connectionConfig(sequelize))
  let closed = false
  return {
    connection,
    close: async () => {
      if (closed) return
      closed = true
      await manager.disconnect(connection).catch(() => {})
    }
  }
}

/**
 * Tenant schemas a pooled connection may serve before the library's default recycles it (closes it
 * the next time the pool would hand it out, and opens a fresh one), when the app's Sequelize sets no
 * `pool.maxUses`. A PostgreSQL backend keeps what it compiled and cached for every table it touched
 * (relation and catalog caches, plans, PL/pgSQL trigger code) for its whole life: with a connection
 * per pool slot and thousands of tenants, that grows without bound; what grows is per schema
 * touched, so the count is of distinct schemas, not of queries: a connection that keeps serving
 * the same few hundred tenants is never recycled (recycling by uses cost a reconnect every 1,000
 * queries whatever the tenants: bench:request ratio 0.62 instead of 0.95 at 50 tenants).
 */
export const DEFAULT_POOL_MAX_SCHEMAS = 500

/** Distinct schemas each pooled connection served (tracked only on instances with schema recycling). */
const schemasServed = new WeakMap<object, Set<string>>()
const retiredConnections = new WeakSet<object>()

/**
 * Counts `schema` against `connection` (called by the query hook with the schema a query runs in);
 * past `limit` distinct schemas the connection is retired: the pool closes it instead of reusing it.
 */
export function noteSchemaServed (connection: object, schema: string, limit: number): void {
  let seen = schemasServed.get(connection)
  if (seen === undefined) schemasServed.set(connection, seen = new Set())
  if (seen.has(schema)) return
  seen.add(schema)
  if (seen.size > limit) retiredConnections.add(connection)
}

/** Whether the pool will close `connection` instead of handing it out again. */
export function isRetired (connection: object): boolean {
  return retiredConnections.has(connection)
}

/**
 * Turns on the default recycling on the pool(s) of `sequelize` unless the app configured
 * `pool.maxUses` itself (any number; `0` means never recycle, as in sequelize-pool): a connection is
 * closed once it served more than DEFAULT_POOL_MAX_SCHEMAS tenant schemas. Returns that limit
 * (Infinity when the app chose `pool.maxUses`, which sequelize-pool applies itself).
 */
export function applyPoolRecycling (sequelize: Sequelize): number {
  const configured = poolOptions(sequelize).maxUses
  if (configured !== undefined) return Infinity
  for (const p of pools(sequelize)) {
    if (recycling.has(p)) continue
    if (!wrapPoolValidate(p, (c) => typeof c === 'object' && c !== null && retiredConnections.has(c))) {
      throw new BoardinghouseErrors.INVALID_OPTION('the Sequelize pool has no factory validate to extend (sequelize-pool changed): set pool.maxUses on the Sequelize instance')
    }
    recycling.add(p)
  }
  return DEFAULT_POOL_MAX_SCHEMAS
}
const recycling = new WeakSet<object>()

/** The recycling limit in force on the pool of `sequelize` (Infinity for none). */
export function poolMaxUses (sequelize: Sequelize): number {
  return writePool(sequelize)?.maxUsesPerResource ?? Infinity
}
