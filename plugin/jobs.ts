/**
 * Background jobs: the calling tenant context as plain JSON (to put in a job's data when it is
 * enqueued) and a runner that re-checks that context in the worker and runs the job in it, failing
 * closed when it is missing, malformed or no longer valid. The queue adapters
 * (`fastify-boardinghouse/bullmq`, `fastify-boardinghouse/pg-boss`) are built on these.
 */
import type { UserId } from '../models/index.js'
import { tenantStorage } from './context.js'
import { BoardinghouseErrors } from './errors.js'
import { maintenanceError, type SchemaMaintenance } from './maintenance.js'
import { describe, schemaNameProblem } from './names.js'

/** The tenant context of a job, as stored in its data: JSON, nothing else. */
export interface JobContext {
  /** The tenant schema the job runs in. */
  schema: string
  /** The user on whose behalf the job was enqueued (audit log, membership re-check), or null. */
  userId: UserId | null
  /** The id of the request that enqueued the job, or null. */
  requestId: string | null
}

/** The key of job data under which the adapters store the context. Reserved: data may not hold it already. */
export const JOB_CONTEXT_KEY = '__boardinghouse'

/**
 * What the job runner needs of the tenant API: public methods of `Boardinghouse` only, so any
 * object offering them (the API, the plugin's `app.boardinghouse`) will do.
 */
export interface JobTenancy {
  /** The registry entry of a schema (active or not), or null; with its maintenance state (absent: not in maintenance). */
  getSchema: (schema: string) => Promise<{ readonly schema: string, readonly isActive: boolean, readonly maintenance?: SchemaMaintenance | null } | null>
  /** The active schemas a user is a member of. */
  schemasForUser: (userId: UserId) => Promise<ReadonlyArray<{ readonly schema: string }>>
  /** Validates a user id against the configured `userIdType` (throws FST_BH_INVALID_USER_ID). */
  normalizeUserId: (userId: unknown) => string | number
  runInSchema: <T>(schema: string, fn: () => Promise<T> | T, options?: { userId?: UserId | null }) => Promise<T>
  runInPublic: <T>(fn: () => Promise<T> | T) => Promise<T>
}

export interface JobContextOptions {
  /**
   * Run a job that carries no context in `public` (no schema; tenant tables answer
   * FST_BH_NO_SCHEMA) instead of refusing it with FST_BH_NO_JOB_CONTEXT. A context that is present
   * is checked all the same. @default false
   */
  allowMissing?: boolean
  /**
   * Whether a user may run jobs in schemas they are not a member of (a job has no request, so the
   * plugin's `isAdmin(request, userId)` cannot be asked). @default () => false
   */
  isAdmin?: (userId: UserId) => boolean | Promise<boolean>
}

const KEYS = new Set(['schema', 'userId', 'requestId'])
const REQUEST_ID_MAX = 255

/**
 * The calling context as plain JSON, to store with a job: `{ schema, userId, requestId }` inside a
 * request or `runInSchema` with a schema active, else null (no schema: nothing to record).
 */
export function jobContext (): JobContext | null {
  const store = tenantStorage.getStore()
  if (store === undefined || store.schema === null) return null
  return { schema: store.schema, userId: store.userId ?? null, requestId: store.requestId ?? null }
}

/**
 * `data` with the calling context under JOB_CONTEXT_KEY (a new object), or `data` unchanged when
 * there is no context. Throws FST_BH_INVALID_JOB_CONTEXT when `data` is not a plain object or
 * already holds the key (a caller may not choose the context a worker will trust).
 */
export function withJobContext<T extends object> (data: T): T {
  if (typeof data !== 'object' || data === null || Array.isArray(data) || !isPlainObject(data)) {
    throw new BoardinghouseErrors.INVALID_JOB_CONTEXT(`job data must be a plain object to carry the context, not ${describeValue(data)}`)
  }
  if (Object.prototype.hasOwnProperty.call(data, JOB_CONTEXT_KEY)) {
    throw new BoardinghouseErrors.INVALID_JOB_CONTEXT(`job data already holds the reserved key "${JOB_CONTEXT_KEY}"`)
  }
  const context = jobContext()
  return context === null ? data : { ...data, [JOB_CONTEXT_KEY]: context }
}

/** The context stored in job data (undefined when there is none), unchecked. */
export function storedJobContext (data: unknown): unknown {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined
  return Object.prototype.hasOwnProperty.call(data, JOB_CONTEXT_KEY) ? (data as Record<string, unknown>)[JOB_CONTEXT_KEY] : undefined
}

function isPlainObject (value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

function describeValue (value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') return 'an object of class ' + ((value as { constructor?: { name?: string } }).constructor?.name ?? 'unknown')
  return `${typeof value} ${describe(value)}`
}

/** Validates a stored context strictly; returns it normalized. Throws FST_BH_INVALID_JOB_CONTEXT. */
export function parseJobContext (bh: Pick<JobTenancy, 'normalizeUserId'>, ctx: unknown): JobContext {
  const invalid = (why: string, cause?: unknown): Error => cause === undefined
    ? new BoardinghouseErrors.INVALID_JOB_CONTEXT(why)
    : new BoardinghouseErrors.INVALID_JOB_CONTEXT(why, { cause })
  if (typeof ctx !== 'object' || ctx === null || Array.isArray(ctx) || !isPlainObject(ctx)) throw invalid(`it must be a plain object, not ${describeValue(ctx)}`)
  const record = ctx as Record<string, unknown>
  for (const key of Object.keys(record)) {
    if (!KEYS.has(key)) throw invalid(`unknown key ${describe(key)} (allowed: schema, userId, requestId)`)
  }
  const { schema, userId, requestId } = record
  const problem = schemaNameProblem(schema)
  if (problem !== null) throw invalid(`schema ${describe(schema)} ${problem}`)
  let user: UserId | null = null
  if (userId !== undefined && userId !== null) {
    try {
      user = bh.normalizeUserId(userId)
    } catch (err) {
      throw invalid(`userId ${describe(userId)} is not a valid user id`, err)
    }
  }
  if (requestId !== undefined && requestId !== null) {
    // eslint-disable-next-line no-control-regex
    if (typeof requestId !== 'string' || requestId === '' || requestId.length > REQUEST_ID_MAX || /[\u0000-\u001f\u007f]/.test(requestId)) {
      throw invalid(`requestId ${describe(requestId)} must be a non-empty string of at most ${REQUEST_ID_MAX} printable characters`)
    }
  }
  return { schema: schema as string, userId: user, requestId: (requestId as string | null | undefined) ?? null }
}

/**
 * Runs `fn` in a job's context after checking it: the context must be well-formed
 * (FST_BH_INVALID_JOB_CONTEXT), present (FST_BH_NO_JOB_CONTEXT, unless `allowMissing`: then `fn`
 * runs in public), name a registered (FST_BH_SCHEMA_NOT_FOUND), active (FST_BH_SCHEMA_INACTIVE)
 * schema, and, with a user, one that user is still a member of or an admin by `isAdmin`
 * (FST_BH_FORBIDDEN_SCHEMA), and not be in maintenance (FST_BH_SCHEMA_MAINTENANCE, 503: retryable,
 * with `retryAfter`; the adapters retry such a job later). `fn` then runs with the schema active and the context's user and
 * request id in the store (audit log), never the caller's.
 */
export async function runInJobContext<T> (bh: JobTenancy, ctx: unknown, fn: () => Promise<T> | T, options: JobContextOptions = {}): Promise<T> {
  if (ctx === undefined || ctx === null) {
    if (options.allowMissing === true) return await bh.runInPublic(fn)
    throw new BoardinghouseErrors.NO_JOB_CONTEXT('enqueue it inside a request or runInSchema, or let the job opt out with { allowMissing: true }')
  }
  const context = parseJobContext(bh, ctx)
  const info = await bh.getSchema(context.schema)
  if (info === null) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(context.schema)
  if (!info.isActive) throw new BoardinghouseErrors.SCHEMA_INACTIVE(context.schema)
  const userId = context.userId
  if (userId !== null) {
    const member = (await bh.schemasForUser(userId)).some((s) => s.schema === context.schema)
    if (!member && !(options.isAdmin !== undefined && await options.isAdmin(userId))) throw new BoardinghouseErrors.FORBIDDEN_SCHEMA(context.schema)
  }
  // maintenance mode: temporary, so checked after the refusals that are not
  const maintenance = info.maintenance ?? null
  if (maintenance !== null) throw maintenanceError(context.schema, maintenance)
  return await bh.runInSchema(context.schema, async () => {
    const store = tenantStorage.getStore()
    if (store === undefined) return await fn()
    const { requestId: _outer, ...rest } = store
    const inner = context.requestId === null ? { ...rest, userId } : { ...rest, userId, requestId: context.requestId }
    return await tenantStorage.run(inner, async () => await fn())
  }, { userId })
}
