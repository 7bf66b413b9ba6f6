/**
 * Shared helpers of the benchmarks: a throw-away database per run, timing, percentiles, a small
 * promise pool, temp migration folders, and the rule that the result is the LAST line of output.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import pg from 'pg'
import { QueryTypes, Sequelize } from 'sequelize'
import type { Boardinghouse } from '../plugin/boardinghouse.js'

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres'

const started = performance.now()

export function adminUrl (): string {
  const url = process.env.DATABASE_URL
  return url === undefined || url === '' ? DEFAULT_DATABASE_URL : url
}

function urlForDatabase (database: string): string {
  const url = new URL(adminUrl())
  url.pathname = '/' + database
  return url.toString()
}

async function adminQuery (sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl() })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

/** Tenant count of a run: 1,000, or BENCH_TENANTS for a quick smoke run (the JSON reports it). */
export function tenantCount (): number {
  const value = Number(process.env.BENCH_TENANTS ?? 1000)
  if (!Number.isInteger(value) || value < 50) throw new Error('BENCH_TENANTS must be an integer >= 50')
  return value
}

/** A progress line, prefixed with the seconds since the script started. */
export function log (message: string): void {
  console.log(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}`)
}

/** Seconds since the script started. */
export function elapsedSeconds (): number {
  return (performance.now() - started) / 1000
}

/**
 * Creates a fresh database `bh_bench_<random>`, runs `fn` on its URL, and drops it afterwards
 * (`WITH (FORCE)`, also when `fn` throws or the run is interrupted with Ctrl-C / SIGTERM).
 */
export async function withBenchDatabase<T> (fn: (url: string, name: string) => Promise<T>): Promise<T> {
  const name = `bh_bench_${randomBytes(5).toString('hex')}`
  await adminQuery(`CREATE DATABASE "${name}"`)
  log(`created database ${name}`)
  let dropped = false
  const drop = async (): Promise<void> => {
    if (dropped) return
    dropped = true
    await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
    log(`dropped database ${name}`)
  }
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`${signal}: dropping ${name}`)
    drop().catch((err: unknown) => { console.error(err) }).finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    return await fn(urlForDatabase(name), name)
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await drop()
  }
}

export function makeSequelize (url: string, poolMax: number): Sequelize {
  return new Sequelize(url, { dialect: 'postgres', logging: false, pool: { max: poolMax, min: 0, idle: 60_000, acquire: 120_000 } })
}

export async function serverVersion (sequelize: Sequelize): Promise<string> {
  const rows = await sequelize.query<{ server_version: string }>('SHOW server_version', { type: QueryTypes.SELECT })
  return rows[0]?.server_version ?? 'unknown'
}

/** Milliseconds `fn` took (performance.now()), and its result. */
export async function timed<T> (fn: () => Promise<T>): Promise<{ ms: number, value: T }> {
  const t0 = performance.now()
  const value = await fn()
  return { ms: performance.now() - t0, value }
}

/** Percentile with linear interpolation between closest ranks (p in 0..100). */
export function percentile (values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of no values')
  const sorted = [...values].sort((a, b) => a - b)
  const rank = (p / 100) * (sorted.length - 1)
  const lo = Math.floor(rank)
  const hi = Math.ceil(rank)
  const a = sorted[lo] as number
  const b = sorted[hi] as number
  return a + (b - a) * (rank - lo)
}

export function median (values: readonly number[]): number {
  return percentile(values, 50)
}

export function round1 (value: number): number {
  return Math.round(value * 10) / 10
}

export function round2 (value: number): number {
  return Math.round(value * 100) / 100
}

/**
 * Runs `fn` over `items` with at most `concurrency` in flight (`worker` = 0..concurrency-1 says
 * which lane runs the item); stops scheduling after a failure.
 */
export async function promisePool<T> (items: readonly T[], concurrency: number, fn: (item: T, index: number, worker: number) => Promise<void>): Promise<void> {
  let next = 0
  let failed: unknown = null
  const worker = async (lane: number): Promise<void> => {
    while (failed === null && next < items.length) {
      const index = next++
      try {
        await fn(items[index] as T, index, lane)
      } catch (err) {
        failed ??= err
        return
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async (_, lane) => { await worker(lane) }))
  if (failed !== null) throw failed
}

/**
 * createSchema for the fill-up phases, which run 2 at a time on one Boardinghouse. Concurrent
 * createSchema calls can throw FST_BH_SCHEMA_NOT_FOUND for a schema they did create and register:
 * SchemaRegistry.load() hands a caller that has just invalidated the cache a load that was already
 * in flight, started before the caller's COMMIT (library bug, reported). Such a spurious error is
 * checked against a fresh registry read and counted in `spurious`; any other error is thrown.
 */
export async function createSchemaTolerant (bh: Boardinghouse, schema: string, spurious: { count: number }): Promise<void> {
  try {
    await bh.createSchema(schema)
  } catch (err) {
    if ((err as { code?: string }).code !== 'FST_BH_SCHEMA_NOT_FOUND') throw err
    for (let attempt = 0; attempt < 5; attempt++) {
      bh.registry.invalidate()
      if (await bh.getSchema(schema) !== null) {
        spurious.count++
        return
      }
    }
    throw err
  }
}

/** A temp folder for migration files, removed by `cleanup()`. */
export function migrationFolder (prefix: string): { dir: string, write: (name: string, body: string) => string, cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return {
    dir,
    write: (name, body) => { const path = join(dir, name); writeFileSync(path, body); return path },
    cleanup: () => { rmSync(dir, { recursive: true, force: true }) }
  }
}

/** Runs `main`, prints its result as the last line of output (JSON), and sets the exit code. */
export function runBench (title: string, main: () => Promise<Record<string, unknown>>): void {
  log(`${title}: start (Node ${process.version}, ${process.platform}-${process.arch})`)
  main().then((result) => {
    log(`${title}: done in ${elapsedSeconds().toFixed(1)} s wall`)
    console.log(JSON.stringify({ node: process.version, ...result }))
  }, (err: unknown) => {
    console.error(err)
    log(`${title}: FAILED after ${elapsedSeconds().toFixed(1)} s`)
    process.exitCode = 1
  })
}
