/**
 * `fastify-boardinghouse/bullmq`: BullMQ jobs that run in the tenant context they were enqueued in.
 *
 *   await addJob(queue, 'report', { month: 3 })              // inside a request or runInSchema
 *   new Worker('reports', withTenant(bh, async (job) => ...), { connection })
 *
 * The context goes into the job's data under `__boardinghouse`; the worker re-checks it and runs
 * the processor in it, or fails the job (unrecoverable: no retries) with the FST_BH_* code; a job
 * whose schema is in maintenance is put back, delayed by the maintenance's Retry-After, and runs
 * when it is over (no attempt is used up).
 * `bullmq` is an optional peer dependency of this package.
 */
import { DelayedError, UnrecoverableError, type Job, type JobsOptions, type Processor } from 'bullmq'
import { runInJobContext, storedJobContext, withJobContext, type JobContextOptions, type JobTenancy } from '../jobs.js'

export { JOB_CONTEXT_KEY, jobContext, runInJobContext, withJobContext } from '../jobs.js'
export type { JobContext, JobContextOptions, JobTenancy } from '../jobs.js'

/** An error refusing a job's context: BullMQ does not retry it; `code` and `cause` are the library's. */
export interface JobContextRefusal extends UnrecoverableError {
  readonly code: string
  readonly statusCode: number
}

/** The part of a BullMQ `Queue` that `addJob` uses. */
export interface AddsJobs<NameType extends string, DataType extends object, JobType> {
  add: (name: NameType, data: DataType, opts?: JobsOptions) => Promise<JobType>
}

/** `queue.add(name, data, opts)` with the calling context recorded in the data (none outside a context). */
export async function addJob<NameType extends string, DataType extends object, JobType> (
  queue: AddsJobs<NameType, DataType, JobType>, name: NameType, data: DataType, opts?: JobsOptions
): Promise<JobType> {
  return await queue.add(name, withJobContext(data), opts)
}

// ---------------------------------------------------------------- maintenance mode: retry later, not a failure

const MAINTENANCE = 'FST_BH_SCHEMA_MAINTENANCE'

/**
 * A job refused because its schema is in maintenance is retried later, never failed for good: with
 * the worker's lock token, it is moved back to the delayed set for the maintenance's Retry-After
 * (BullMQ's manual delay: DelayedError; no attempt is used up); without one (the processor called
 * by hand), the library's error is thrown as it is, an ordinary (retryable) failure.
 */
async function deferred (err: unknown, job: Pick<Job, 'moveToDelayed'>, token: string | undefined): Promise<unknown> {
  const e = err as { code?: unknown, retryAfter?: unknown, message?: unknown }
  if (e?.code !== MAINTENANCE || typeof e.retryAfter !== 'number') return null
  if (token === undefined || typeof job.moveToDelayed !== 'function') return err
  await job.moveToDelayed(Date.now() + e.retryAfter * 1000, token)
  return Object.assign(new DelayedError(`${MAINTENANCE}: ${String(e.message)}`), { code: MAINTENANCE, cause: err })
}

function refusal (err: unknown): unknown {
  const e = err as { code?: unknown, statusCode?: unknown, message?: unknown }
  if (typeof e?.code !== 'string' || !e.code.startsWith('FST_BH_')) return err
  const wrapped = new UnrecoverableError(`${e.code}: ${String(e.message)}`) as UnrecoverableError & { code: string, statusCode: unknown, cause: unknown }
  wrapped.code = e.code
  wrapped.statusCode = e.statusCode
  wrapped.cause = err
  return wrapped
}

/**
 * Wraps a processor so that each job runs in the context stored in its data (see runInJobContext).
 * A refused context fails the job without running the processor, as an UnrecoverableError whose
 * message starts with the code. Errors thrown by the processor itself pass through unchanged.
 */
export function withTenant<DataType, ResultType, NameType extends string> (
  bh: JobTenancy, processor: Processor<DataType, ResultType, NameType>, options: JobContextOptions = {}
): Processor<DataType, ResultType, NameType> {
  return async (job, token, signal) => {
    let started = false
    try {
      return await runInJobContext(bh, storedJobContext(job.data), async () => {
        started = true
        return await processor(job, token, signal)
      }, options)
    } catch (err) {
      if (started) throw err
      throw (await deferred(err, job, token)) ?? refusal(err)
    }
  }
}
