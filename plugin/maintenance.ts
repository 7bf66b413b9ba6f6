/**
 * Maintenance mode per schema: its state as the registry snapshot carries it, the validation of
 * `setMaintenance` / `clearMaintenance` options (bad input is FST_BH_INVALID_INPUT, 400), and the
 * refusal a request or a job meets while its schema is in maintenance: FST_BH_SCHEMA_MAINTENANCE
 * (503) with the Retry-After to send. The writes are schema-admin.ts's; the request path's check is
 * request.ts's, the jobs' jobs.ts's; both read the snapshot only (no query).
 *
 * Who put a schema in maintenance is recorded: 'manual' (an operator: the API's default, the CLI)
 * or 'migrate' (the migrator). 'manual' outranks 'migrate': a 'migrate' set never changes a manual
 * maintenance, a 'migrate' clear ends only a 'migrate' one (so a rerun after a crash can clear its
 * own leftovers and never an operator's), and a 'manual' set or clear takes over or ends either.
 */
import { BoardinghouseErrors } from './errors.js'
import { describe } from './names.js'

/** Who put a schema in maintenance. */
export type MaintenanceBy = 'manual' | 'migrate'

/** A schema's maintenance state (`SchemaInfo.maintenance`), or null when it is not in maintenance. */
export interface SchemaMaintenance {
  /** When it entered maintenance (kept when a later set changes retryAfter or takes it over). */
  readonly since: Date
  /** Seconds its requests are told to wait (Retry-After), or null for DEFAULT_MAINTENANCE_RETRY_AFTER. */
  readonly retryAfter: number | null
  readonly by: MaintenanceBy
}

export interface SetMaintenanceOptions {
  /** The Retry-After (whole seconds, 1–86400) of the schema's 503 answers. @default null (DEFAULT_MAINTENANCE_RETRY_AFTER, 60) */
  retryAfter?: number | null
  /** Who sets it. A 'migrate' set leaves a 'manual' maintenance as it is. @default 'manual' */
  by?: MaintenanceBy
}

export interface ClearMaintenanceOptions {
  /** Who clears it: 'manual' ends any maintenance, 'migrate' only one set by 'migrate'. @default 'manual' */
  by?: MaintenanceBy
}

/** The Retry-After (seconds) sent for a schema in maintenance that was set without one. */
export const DEFAULT_MAINTENANCE_RETRY_AFTER = 60
/** The longest Retry-After a maintenance may give (one day); the database's CHECK agrees. */
export const MAX_MAINTENANCE_RETRY_AFTER = 86_400

const BY = new Set<unknown>(['manual', 'migrate'])

function optionsObject (options: unknown, what: string, keys: readonly string[]): Record<string, unknown> {
  if (options === undefined) return {}
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new BoardinghouseErrors.INVALID_INPUT(`the options of ${what} must be an object, not ${describe(options)}`)
  }
  for (const key of Object.keys(options)) {
    if (!keys.includes(key)) throw new BoardinghouseErrors.INVALID_INPUT(`${what}: unknown option ${describe(key)} (allowed: ${keys.join(', ')})`)
  }
  return options as Record<string, unknown>
}

function byOf (value: unknown, what: string): MaintenanceBy {
  if (value === undefined) return 'manual'
  if (!BY.has(value)) throw new BoardinghouseErrors.INVALID_INPUT(`${what}: by must be 'manual' or 'migrate', not ${describe(value)}`)
  return value as MaintenanceBy
}

/** Whether `value` is a valid Retry-After: a whole number of seconds from 1 to MAX_MAINTENANCE_RETRY_AFTER. */
export function isRetryAfter (value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_MAINTENANCE_RETRY_AFTER
}

/** `setMaintenance`'s options, validated (FST_BH_INVALID_INPUT, 400). */
export function setMaintenanceOptions (options: unknown): { retryAfter: number | null, by: MaintenanceBy } {
  const o = optionsObject(options, 'setMaintenance', ['retryAfter', 'by'])
  const retryAfter = o.retryAfter ?? null
  if (retryAfter !== null && !isRetryAfter(retryAfter)) {
    throw new BoardinghouseErrors.INVALID_INPUT(`setMaintenance: retryAfter must be a whole number of seconds from 1 to ${MAX_MAINTENANCE_RETRY_AFTER}, not ${describe(retryAfter)}`)
  }
  return { retryAfter, by: byOf(o.by, 'setMaintenance') }
}

/** `clearMaintenance`'s options, validated (FST_BH_INVALID_INPUT, 400). */
export function clearMaintenanceOptions (options: unknown): { by: MaintenanceBy } {
  return { by: byOf(optionsObject(options, 'clearMaintenance', ['by']).by, 'clearMaintenance') }
}

/** The Retry-After (seconds) to send for a maintenance. */
export function retryAfterOf (maintenance: SchemaMaintenance): number {
  return maintenance.retryAfter ?? DEFAULT_MAINTENANCE_RETRY_AFTER
}

/** The refusal of a request or job for a schema in maintenance: FST_BH_SCHEMA_MAINTENANCE (503). */
export type MaintenanceError = InstanceType<typeof BoardinghouseErrors.SCHEMA_MAINTENANCE> & {
  /** The schema in maintenance. */
  readonly schema: string
  /** Seconds to wait before retrying (what the Retry-After header says). */
  readonly retryAfter: number
  /** `{ 'retry-after': '<seconds>' }`: Fastify's default error handler sends an error's `headers`. */
  readonly headers: Readonly<Record<string, string>>
}

/** FST_BH_SCHEMA_MAINTENANCE for `schema`, carrying its Retry-After (as `retryAfter` and in `headers`). */
export function maintenanceError (schema: string, maintenance: SchemaMaintenance): MaintenanceError {
  const retryAfter = retryAfterOf(maintenance)
  const err = new BoardinghouseErrors.SCHEMA_MAINTENANCE(schema, retryAfter)
  return Object.assign(err, { schema, retryAfter, headers: Object.freeze({ 'retry-after': String(retryAfter) }) })
}

/** Whether `err` is a maintenance refusal (FST_BH_SCHEMA_MAINTENANCE with its Retry-After). */
export function isMaintenanceError (err: unknown): err is MaintenanceError {
  return err instanceof BoardinghouseErrors.SCHEMA_MAINTENANCE && isRetryAfter((err as { retryAfter?: unknown }).retryAfter)
}
