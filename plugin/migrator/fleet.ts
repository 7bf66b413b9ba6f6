/**
 * Staging a run over the fleet of tenant schemas, for migrate and rollback alike: the options
 * (validated, FST_BH_INVALID_INPUT), canaries first, then batches, each on a bounded number of
 * connections, failures counted against `maxFailures`, and maintenance mode around each schema.
 */
import type { Sequelize } from 'sequelize'
import { BoardinghouseErrors } from '../errors.js'
import { describe, schemaNameProblem } from '../names.js'
import type { MigrationLock } from './lock.js'
import { causeMessage } from './failure.js'
import { listOption, registeredSchemas, select, targetingOf, type MigrationTargeting, type Selection, type Targeting } from './targets.js'

export type MigrationPhase = 'shared' | 'template' | 'canary' | 'tenants'

export interface MigrateProgress {
  phase: MigrationPhase
  /** Schemas (or, for 'shared', migrations) done so far in this phase, failed ones included. */
  done: number
  total: number
  /** The schema just finished, for 'template', 'canary' and 'tenants'. */
  schema?: string
  /** Schemas of this phase that failed so far ('canary' and 'tenants'; only with `maxFailures`). */
  failed?: number
}

/** A completed batch (`batch` option): the next one starts only after this callback resolved. */
export interface MigrateBatch {
  /** 1-based number of this batch, of `batches`. */
  batch: number
  batches: number
  /** The schemas of this batch. */
  schemas: string[]
  /** Of this batch: schemas done, schemas that failed (with `maxFailures`). */
  succeeded: number
  failed: number
  /** Schemas done so far over all batches (failed ones included), of `total`. */
  done: number
  total: number
}

/** A schema whose migration (or rollback) failed: which schema, which migration, and why. */
export interface MigrationFailure {
  schema: string
  migration: string
  message: string
}

/** Maintenance mode of one schema, as migrate uses it (`bh.setMaintenance` / `clearMaintenance`). */
export interface MaintenanceHooks {
  enter: (schema: string, retryAfter?: number) => Promise<void>
  leave: (schema: string) => Promise<void>
}

/** How a run over the tenant schemas is staged (migrate and migrateDown alike). */
export interface StagingOptions extends MigrationTargeting {
  /** Schemas migrated first, one after another, before any other; if one fails the run stops. */
  canary?: string | readonly string[]
  /** Migrate the other schemas in batches of this many; `onBatch` after each. */
  batch?: number
  /** Go on after this many failed schemas; stop once more failed. @default 0 (stop at the first) */
  maxFailures?: number
  /** Put each schema in maintenance mode only while its own transaction runs. */
  maintenance?: boolean | { retryAfter?: number }
  /** Called after each completed batch; the next batch waits for it, and a rejection stops the run. */
  onBatch?: (batch: MigrateBatch) => void | Promise<void>
}

/** The staging after validation. */
export interface FleetPlan {
  targeting: Targeting | null
  canary: string[]
  batch: number | null
  maxFailures: number
  maintenance: { retryAfter?: number } | null
  concurrency: number
  onProgress: (progress: MigrateProgress) => void
  onBatch: ((batch: MigrateBatch) => void | Promise<void>) | null
}

const STAGING_KEYS = ['schemas', 'exclude', 'canary', 'batch', 'maxFailures', 'maintenance', 'onBatch', 'concurrency', 'onProgress']

function integer (what: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new BoardinghouseErrors.INVALID_INPUT(`${what} must be ${min === 0 ? 'a non-negative' : 'a positive'} integer, not ${describe(value)}`)
  }
  return value
}

function fn<T> (what: string, value: unknown): T | null {
  if (value === undefined) return null
  if (typeof value !== 'function') throw new BoardinghouseErrors.INVALID_INPUT(`${what} must be a function, not ${describe(value)}`)
  return value as T
}

/**
 * Validates the options of migrate (or, with `extraKeys`, of migrateDown): unknown keys and
 * ill-typed values are FST_BH_INVALID_INPUT, before anything runs.
 */
export function planOf (what: string, options: unknown, defaults: { concurrency: number, poolMax: number, maintenance: boolean }, extraKeys: readonly string[] = []): FleetPlan {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new BoardinghouseErrors.INVALID_INPUT(`${what}'s options must be an object, not ${describe(options)}`)
  }
  const o = options as Record<string, unknown>
  for (const key of Object.keys(o)) {
    if (!STAGING_KEYS.includes(key) && !extraKeys.includes(key)) throw new BoardinghouseErrors.INVALID_INPUT(`${what} has no option ${describe(key)}`)
  }
  const concurrency = o.concurrency === undefined ? defaults.concurrency : integer(`${what}'s concurrency`, o.concurrency, 1)
  const canary = o.canary === undefined ? [] : [...new Set(listOption('canary', o.canary))]
  for (const name of canary) {
    const problem = schemaNameProblem(name)
    if (problem !== null) throw new BoardinghouseErrors.INVALID_INPUT(`canary ${describe(name)} ${problem} (canaries are schema names, not patterns)`)
  }
  let maintenance: FleetPlan['maintenance'] = null
  if (o.maintenance === true) maintenance = {}
  else if (typeof o.maintenance === 'object' && o.maintenance !== null && !Array.isArray(o.maintenance)) {
    const m = o.maintenance as Record<string, unknown>
    for (const key of Object.keys(m)) if (key !== 'retryAfter') throw new BoardinghouseErrors.INVALID_INPUT(`maintenance has no option ${describe(key)}`)
    maintenance = m.retryAfter === undefined ? {} : { retryAfter: integer('maintenance.retryAfter (seconds)', m.retryAfter, 1) }
  } else if (o.maintenance !== undefined && o.maintenance !== false) {
    throw new BoardinghouseErrors.INVALID_INPUT(`maintenance must be true, false or { retryAfter }, not ${describe(o.maintenance)}`)
  }
  if (maintenance !== null && !defaults.maintenance) {
    throw new BoardinghouseErrors.MAINTENANCE_UNAVAILABLE('this Boardinghouse has no maintenance mode wired to its migrator')
  }
  return {
    targeting: targetingOf(o),
    canary,
    batch: o.batch === undefined ? null : integer('batch', o.batch, 1),
    maxFailures: o.maxFailures === undefined ? 0 : integer('maxFailures', o.maxFailures, 0),
    maintenance,
    concurrency: Math.max(1, Math.min(concurrency, defaults.poolMax)),
    onProgress: fn<FleetPlan['onProgress']>(`${what}'s onProgress`, o.onProgress) ?? (() => {}),
    onBatch: fn<NonNullable<FleetPlan['onBatch']>>(`${what}'s onBatch`, o.onBatch)
  }
}

/** Canaries must be registered and targeted (FST_BH_SCHEMA_NOT_FOUND, FST_BH_INVALID_INPUT). */
export function checkCanaries (plan: FleetPlan, registered: ReadonlySet<string>, targeted: ReadonlySet<string>): void {
  for (const name of plan.canary) {
    if (!registered.has(name)) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(name)
    if (!targeted.has(name)) throw new BoardinghouseErrors.INVALID_INPUT(`canary "${name}" is not among the targeted schemas (schemas/exclude)`)
  }
}

/**
 * The targeted schemas, read from the registry (under the caller's lock), with the canaries
 * checked; null when the plan covers every schema and names no canary (no registry read).
 */
export async function selectTargets (sequelize: Sequelize, plan: FleetPlan): Promise<Selection | null> {
  if (plan.targeting === null && plan.canary.length === 0) return null
  const all = await registeredSchemas(sequelize)
  const selection = plan.targeting === null ? { schemas: all, unmatched: [] } : select(all, plan.targeting)
  checkCanaries(plan, new Set(all), new Set(selection.schemas))
  return selection
}

/** Why a run stopped, for FST_BH_MIGRATIONS_FAILED's message. */
export function whyStopped (plan: FleetPlan, outcome: FleetOutcome): string {
  const skipped = outcome.notStarted.length > 0 ? `; ${outcome.notStarted.length} schemas were not tried` : ''
  if (outcome.stopped === 'canary') {
    const failed = outcome.failures[outcome.failures.length - 1]
    return `the run stopped: canary schema "${failed?.schema ?? '?'}" failed, no other schema was tried after it${skipped}`
  }
  return `the run stopped: ${outcome.failures.length} schemas failed, more than maxFailures (${plan.maxFailures})${skipped}`
}

/** A schema's error, as runOne throws it: MIGRATION_FAILED with `schema`, `migration` and `reason`. */
type SchemaError = Error & { schema?: string, migration?: string, reason?: string }

export function failureOf (err: unknown, schema: string): MigrationFailure {
  const e = err as SchemaError
  return { schema: e.schema ?? schema, migration: e.migration ?? '(none)', message: e.reason ?? causeMessage(err) }
}

export interface FleetOutcome {
  /** Schemas whose run succeeded, in the order they finished. */
  succeeded: string[]
  failures: MigrationFailure[]
  /** The errors behind `failures`, in the same order. */
  errors: Error[]
  /** Schemas never started because the run stopped. */
  notStarted: string[]
  /** Why the run stopped early, or null when every schema was tried. */
  stopped: 'canary' | 'maxFailures' | 'lock' | null
}

/**
 * Puts `schema` in maintenance around `run` (when asked): enter before, leave after it committed or
 * failed. A failure to leave is the schema's failure (it would stay in maintenance).
 */
async function inMaintenance<T> (hooks: MaintenanceHooks | undefined, mode: FleetPlan['maintenance'], schema: string, run: () => Promise<T>): Promise<T> {
  if (mode === null || hooks === undefined) return await run()
  try {
    await hooks.enter(schema, mode.retryAfter)
  } catch (err) {
    throw Object.assign(new BoardinghouseErrors.MIGRATION_FAILED('(none)', schema, `putting the schema in maintenance failed, nothing ran: ${causeMessage(err)}`, { cause: err }),
      { schema, migration: '(none)', reason: `putting the schema in maintenance failed, nothing ran: ${causeMessage(err)}` })
  }
  let result: T
  try {
    result = await run()
  } catch (err) {
    try {
      await hooks.leave(schema)
    } catch (leaveErr) {
      const e = err as SchemaError
      e.reason = `${e.reason ?? causeMessage(err)}; taking the schema out of maintenance failed too: ${causeMessage(leaveErr)}`
    }
    throw err
  }
  try {
    await hooks.leave(schema)
  } catch (err) {
    const reason = `its migrations committed, but taking the schema out of maintenance failed (it still answers 503): ${causeMessage(err)}`
    throw Object.assign(new BoardinghouseErrors.MIGRATION_FAILED('(none)', schema, reason, { cause: err }), { schema, migration: '(none)', reason })
  }
  return result
}

/**
 * Runs `runOne` for each schema: the canaries (those of `schemas` named by `plan.canary`) first,
 * one after another, stopping at the first failure; then the others, in batches if asked, each on
 * up to `plan.concurrency` at once, until more than `plan.maxFailures` failed or the lock is lost.
 * Schemas in flight when the run stops finish (commit or roll back) first.
 */
export async function runFleet (plan: FleetPlan, schemas: readonly string[], lock: MigrationLock, maintenance: MaintenanceHooks | undefined, runOne: (schema: string) => Promise<void>): Promise<FleetOutcome> {
  const behind = new Set(schemas)
  const canaries = plan.canary.filter((s) => behind.has(s))
  const canarySet = new Set(canaries)
  const rest = schemas.filter((s) => !canarySet.has(s))
  const outcome: FleetOutcome = { succeeded: [], failures: [], errors: [], notStarted: [], stopped: null }
  const started = new Set<string>()
  const attempt = async (schema: string): Promise<boolean> => {
    started.add(schema)
    try {
      await inMaintenance(maintenance, plan.maintenance, schema, async () => { await runOne(schema) })
      outcome.succeeded.push(schema)
      return true
    } catch (err) {
      if (err instanceof BoardinghouseErrors.MIGRATION_LOCK_LOST) { outcome.stopped = 'lock'; return false }
      outcome.failures.push(failureOf(err, schema))
      outcome.errors.push(err instanceof Error ? err : new Error(String(err)))
      return false
    }
  }
  const stopping = (): boolean => outcome.stopped !== null || lock.lost !== null

  // 1. Canaries, one after another.
  let canaryFailed = 0
  for (const [i, schema] of canaries.entries()) {
    if (stopping()) break
    if (!await attempt(schema)) {
      if (lock.lost === null && outcome.stopped === null) outcome.stopped = 'canary'
      canaryFailed++
    }
    plan.onProgress({ phase: 'canary', done: i + 1, total: canaries.length, schema, failed: canaryFailed })
  }

  // 2. The others, batch after batch.
  const size = plan.batch ?? Math.max(rest.length, 1)
  const batches: string[][] = []
  for (let i = 0; i < rest.length; i += size) batches.push(rest.slice(i, i + size))
  let done = 0
  let failed = 0
  for (const [index, batch] of batches.entries()) {
    if (stopping()) break
    let next = 0
    let batchFailed = 0
    const worker = async (): Promise<void> => {
      while (!stopping() && next < batch.length) {
        const schema = batch[next++] as string
        const ok = await attempt(schema)
        if (!ok && outcome.stopped !== 'lock') {
          batchFailed++
          failed++
          if (outcome.failures.length > plan.maxFailures) outcome.stopped ??= 'maxFailures'
        }
        if (outcome.stopped === 'lock') return
        done++
        plan.onProgress({ phase: 'tenants', done, total: rest.length, schema, ...(plan.maxFailures > 0 ? { failed } : {}) })
      }
    }
    await Promise.all(Array.from({ length: Math.min(plan.concurrency, batch.length) }, worker))
    if (stopping()) break
    if (plan.batch !== null && plan.onBatch !== null) {
      await plan.onBatch({ batch: index + 1, batches: batches.length, schemas: [...batch], succeeded: batch.length - batchFailed, failed: batchFailed, done, total: rest.length })
    }
  }
  if (lock.lost !== null) outcome.stopped = 'lock'
  outcome.notStarted = schemas.filter((s) => !started.has(s))
  return outcome
}

/** A summary of failures for a message: the first few, then how many more. */
export function listed (failures: readonly MigrationFailure[]): string {
  const shown = failures.slice(0, 5).map((f) => `schema "${f.schema}", migration "${f.migration}": ${f.message}`).join('; ')
  return failures.length > 5 ? `${shown}; and ${failures.length - 5} more (err.failures lists each)` : shown
}

/**
 * The error of a run that stopped at a failure: with `maxFailures` 0, the failing schema's own
 * FST_BH_MIGRATION_FAILED; with `maxFailures` > 0, FST_BH_MIGRATIONS_FAILED listing every failure.
 * Either carries `failures` and `result` (what the run did before it stopped).
 */
export function stoppedError<R> (plan: FleetPlan, why: string, failures: readonly MigrationFailure[], errors: readonly Error[], result: R): Error {
  const first = errors[0]
  if (plan.maxFailures === 0 && first !== undefined) return Object.assign(first, { failures: [...failures], result })
  const err = first !== undefined ? new BoardinghouseErrors.MIGRATIONS_FAILED(why, listed(failures), { cause: first }) : new BoardinghouseErrors.MIGRATIONS_FAILED(why, listed(failures))
  return Object.assign(err, { failures: [...failures], result })
}
