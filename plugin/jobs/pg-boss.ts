/**
 * `fastify-boardinghouse/pg-boss`: pg-boss jobs that run in the tenant context they were sent in.
 *
 *   await send(boss, 'report', { month: 3 })                 // inside a request or runInSchema
 *   await work(boss, bh, 'report', async (job) => ...)
 *
 * The context goes into the job's data under `__boardinghouse`; the worker re-checks it for each
 * job and runs the handler in it, or fails that job with the FST_BH_* error (stored in its output).
 * `pg-boss` (10 or later: handlers receive arrays of jobs) is an optional peer dependency.
 */
import type PgBoss from 'pg-boss'
import { runInJobContext, storedJobContext, withJobContext, type JobContextOptions, type JobTenancy } from '../jobs.js'

export { JOB_CONTEXT_KEY, jobContext, runInJobContext, withJobContext } from '../jobs.js'
export type { JobContext, JobContextOptions, JobTenancy } from '../jobs.js'

/** `boss.send(name, data, options)` with the calling context recorded in the data (none outside a context). */
export async function send (boss: PgBoss, name: string, data: object = {}, options: PgBoss.SendOptions = {}): Promise<string | null> {
  return await boss.send(name, withJobContext(data), options)
}

/**
 * `boss.schedule(name, cron, data, options)` with the calling context recorded in the data: every
 * job the schedule creates carries it, and each is checked when it runs.
 */
export async function schedule (boss: PgBoss, name: string, cron: string, data: object = {}, options: PgBoss.ScheduleOptions = {}): Promise<void> {
  await boss.schedule(name, cron, withJobContext(data), options)
}

export type WorkOptions = PgBoss.WorkOptions & JobContextOptions

/** A handler of one job, run in that job's context. */
export type TenantJobHandler<ReqData, Result = unknown> = (job: PgBoss.Job<ReqData>) => Promise<Result>

/**
 * `boss.work(name, options, handler)` with one handler call per job, each in the context stored in
 * that job's data (see runInJobContext). Each job is completed (with the handler's result) or
 * failed (with the error: a refused context never reaches the handler) on its own, so a batch
 * (`batchSize`) may mix tenants and outcomes. Resolves to the worker id, as `boss.work` does.
 */
export async function work<ReqData, Result = unknown> (boss: PgBoss, bh: JobTenancy, name: string, handler: TenantJobHandler<ReqData, Result>): Promise<string>
export async function work<ReqData, Result = unknown> (boss: PgBoss, bh: JobTenancy, name: string, options: WorkOptions, handler: TenantJobHandler<ReqData, Result>): Promise<string>
export async function work<ReqData, Result = unknown> (
  boss: PgBoss, bh: JobTenancy, name: string, ...args: [TenantJobHandler<ReqData, Result>] | [WorkOptions, TenantJobHandler<ReqData, Result>]
): Promise<string> {
  const [options, handler] = args.length === 1 ? [{}, args[0]] : args
  const { allowMissing, isAdmin, ...workOptions } = options
  const contextOptions: JobContextOptions = {}
  if (allowMissing !== undefined) contextOptions.allowMissing = allowMissing
  if (isAdmin !== undefined) contextOptions.isAdmin = isAdmin
  return await boss.work<ReqData>(name, { ...workOptions, includeMetadata: false }, async (jobs) => {
    for (const job of jobs) {
      let result: Result
      try {
        result = await runInJobContext(bh, storedJobContext(job.data), async () => await handler(job), contextOptions)
      } catch (err) {
        await boss.fail(name, job.id, err as object)
        continue
      }
      await boss.complete(name, job.id, result as object)
    }
  })
}
