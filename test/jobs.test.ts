/**
 * Background jobs through real queues: BullMQ on the machine's Redis (a unique key prefix per test,
 * obliterated after) and pg-boss on PostgreSQL (its own schema in the test database).
 */
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Queue, Worker, type Job, type Processor } from 'bullmq'
import PgBoss from 'pg-boss'
import { QueryTypes, type Model, type ModelStatic } from 'sequelize'
import { JOB_CONTEXT_KEY, jobContext, runInJobContext, type JobTenancy } from '../plugin/jobs.js'
import { addJob, withJobContext, withTenant } from '../plugin/jobs/bullmq.js'
import { send, work } from '../plugin/jobs/pg-boss.js'
import * as exported from '../plugin/index.js'
import { buildTestApp, login } from './fixtures/app.js'
import { setupBoardinghouse } from './helpers.js'

const REDIS = { host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null }

type Outcome = { status: 'completed', result: unknown } | { status: 'failed', error: Error & { code?: string } }

interface Bull {
  queue: Queue
  /** Starts a worker on the queue (after the jobs are added) and gives each job's outcome. */
  start: (processor: Processor) => (job: Job | string | undefined) => Promise<Outcome>
}

function bull (t: TestContext): Bull {
  const name = 'jobs'
  const prefix = `bhtest-${randomBytes(6).toString('hex')}`
  const queue = new Queue(name, { connection: REDIS, prefix })
  const workers: Worker[] = []
  t.after(async () => {
    for (const w of workers) await w.close()
    await queue.obliterate({ force: true })
    await queue.close()
  })
  return {
    queue,
    start: (processor) => {
      const done = new Map<string, Outcome>()
      const waiting = new Map<string, (o: Outcome) => void>()
      const settle = (id: string | undefined, o: Outcome): void => {
        if (id === undefined) return
        const w = waiting.get(id)
        if (w !== undefined) { waiting.delete(id); w(o) } else done.set(id, o)
      }
      const worker = new Worker(name, processor, { connection: REDIS, prefix, autorun: false })
      worker.on('completed', (job, result) => { settle(job.id, { status: 'completed', result }) })
      worker.on('failed', (job, error) => { settle(job?.id, { status: 'failed', error }) })
      workers.push(worker)
      void worker.run()
      return async (job) => {
        const id = typeof job === 'string' ? job : job?.id
        if (id === undefined) throw new Error('no job id')
        return done.get(id) ?? await new Promise<Outcome>((resolve) => waiting.set(id, resolve))
      }
    }
  }
}

function failedWith (outcome: Outcome, code: string): void {
  assert.equal(outcome.status, 'failed', `expected a failure with ${code}, got ${JSON.stringify(outcome)}`)
  if (outcome.status !== 'failed') return
  assert.equal(outcome.error.code, code)
  assert.ok(outcome.error.message.startsWith(code), outcome.error.message)
}

test('background jobs', async (t) => {
  const { bh, sequelize, url } = await setupBoardinghouse(t, { auditModels: ['Item'] })
  const tenancy: JobTenancy = bh // the API fits the runner's interface
  const Item = sequelize.models.Item as ModelStatic<Model>
  for (const schema of ['acme', 'globex', 'initech']) await bh.createSchema(schema)
  await bh.grant('acme', 1)
  await bh.grant('globex', 2)
  await bh.runInSchema('acme', async () => { await Item.bulkCreate([{ title: 'acme-1' }, { title: 'acme-2' }]) })
  await bh.runInSchema('globex', async () => { await Item.create({ title: 'globex-1' }) })
  const titles = async (): Promise<string[]> => (await Item.findAll({ order: [['id', 'ASC']] })).map((i) => i.get('title') as string)
  const counts = async (): Promise<number[]> => await Promise.all(['acme', 'globex', 'initech'].map(async (s) => await bh.runInSchema(s, async () => await Item.count())))
  const logged = async (): Promise<number> => Number((await sequelize.query<{ n: string }>('SELECT count(*) AS n FROM public.boardinghouse_log_entry', { type: QueryTypes.SELECT }))[0]?.n)

  /** What a processor saw: it reads the items of its schema and, when asked, writes one. */
  const ran: string[] = []
  const readAndWrite = async (data: { write?: string }): Promise<{ schema: string | null, titles: string[], context: unknown }> => {
    ran.push(JSON.stringify(data))
    if (data.write !== undefined) await Item.create({ title: data.write })
    return { schema: bh.currentSchema(), titles: await titles(), context: jobContext() }
  }

  await t.test('jobContext and runInJobContext', async () => {
    assert.equal(jobContext(), null)
    assert.equal(await bh.runInPublic(() => jobContext()), null)
    assert.deepEqual(await bh.runInSchema('acme', () => jobContext(), { userId: 1 }), { schema: 'acme', userId: 1, requestId: null })
    const ctx = JSON.parse(JSON.stringify(await bh.runInSchema('globex', () => jobContext(), { userId: 2 }))) as unknown
    assert.deepEqual(await runInJobContext(tenancy, ctx, titles), ['globex-1'])
    assert.deepEqual(await runInJobContext(tenancy, { schema: 'acme' }, titles), ['acme-1', 'acme-2'])
    // the caller's context does not leak into the job's: the job's user and schema win
    assert.deepEqual(await bh.runInSchema('globex', async () => await runInJobContext(tenancy, { schema: 'acme', userId: null }, () => jobContext()), { userId: 2 }),
      { schema: 'acme', userId: null, requestId: null })
    await assert.rejects(runInJobContext(tenancy, undefined, titles), { code: 'FST_BH_NO_JOB_CONTEXT', statusCode: 400 })
    assert.equal(await runInJobContext(tenancy, null, () => bh.currentSchema(), { allowMissing: true }), null)
    await assert.rejects(runInJobContext(tenancy, undefined, titles, { allowMissing: true }), { code: 'FST_BH_NO_SCHEMA' })
    const bad: unknown[] = ['acme', 42, ['acme'], new Date(), {}, { schema: '__template__' }, { schema: 'public' }, { schema: 'Acme' }, { schema: 'acme', extra: 1 },
      { schema: 'acme', userId: 'x' }, { schema: 'acme', userId: 1.5 }, { schema: 'acme', requestId: 7 }, { schema: 'acme', requestId: 'a\u0000b' }, { schema: 'acme', requestId: 'r'.repeat(256) }]
    for (const ctx of bad) {
      await assert.rejects(runInJobContext(tenancy, ctx, () => { throw new Error('ran') }), { code: 'FST_BH_INVALID_JOB_CONTEXT', statusCode: 400 }, JSON.stringify(ctx))
    }
    await assert.rejects(runInJobContext(tenancy, { schema: 'nowhere' }, titles), { code: 'FST_BH_SCHEMA_NOT_FOUND' })
    await assert.rejects(runInJobContext(tenancy, { schema: 'acme', userId: 2 }, titles), { code: 'FST_BH_FORBIDDEN_SCHEMA', statusCode: 403 })
    assert.deepEqual(await runInJobContext(tenancy, { schema: 'acme', userId: 2 }, titles, { isAdmin: async (id) => id === 2 }), ['acme-1', 'acme-2'])
    await assert.rejects(runInJobContext(tenancy, { schema: 'acme', userId: 3 }, titles, { isAdmin: (id) => id === 2 }), { code: 'FST_BH_FORBIDDEN_SCHEMA' })
  })

  await t.test('the facade: bh.jobContext() and bh.runInJobContext(ctx, fn), also exported from the package', async () => {
    assert.equal(exported.jobContext, jobContext)
    assert.equal(exported.runInJobContext, runInJobContext)
    assert.equal(bh.jobContext(), null)
    const ctx = await bh.runInSchema('acme', () => bh.jobContext(), { userId: 1 })
    assert.deepEqual(ctx, { schema: 'acme', userId: 1, requestId: null })
    const stored = JSON.parse(JSON.stringify(ctx)) as unknown
    // the job runs in the stored schema with the stored user, whatever the caller's context
    assert.deepEqual(await bh.runInSchema('globex', async () => await bh.runInJobContext(stored, async () => ({ titles: await titles(), context: bh.jobContext() })), { userId: 2 }),
      { titles: ['acme-1', 'acme-2'], context: { schema: 'acme', userId: 1, requestId: null } })
    // refusals never run fn and write nothing
    const before = [await counts(), await logged()]
    let calls = 0
    const write = async (): Promise<void> => { calls++; await Item.create({ title: 'facade' }) }
    await assert.rejects(bh.runInJobContext({ schema: 'acme', userId: 2 }, write), { code: 'FST_BH_FORBIDDEN_SCHEMA', statusCode: 403 })
    await assert.rejects(bh.runInJobContext({ schema: 'acme', userId: 'x' }, write), { code: 'FST_BH_INVALID_JOB_CONTEXT' })
    await assert.rejects(bh.runInJobContext(undefined, write), { code: 'FST_BH_NO_JOB_CONTEXT' })
    await assert.rejects(bh.runInJobContext({ schema: 'nowhere' }, write), { code: 'FST_BH_SCHEMA_NOT_FOUND' })
    assert.equal(calls, 0)
    assert.deepEqual([await counts(), await logged()], before)
    // the options reach the runner
    assert.equal(await bh.runInJobContext(undefined, () => bh.currentSchema(), { allowMissing: true }), null)
    assert.deepEqual(await bh.runInJobContext({ schema: 'acme', userId: 2 }, () => bh.jobContext(), { isAdmin: (id) => id === 2 }), { schema: 'acme', userId: 2, requestId: null })
  })

  await t.test('BullMQ: a job runs in the schema it was enqueued in, and reads that schema only', async (t) => {
    const { queue, start } = bull(t)
    const inAcme = await bh.runInSchema('acme', async () => await addJob(queue, 'read', {}), { userId: 1 })
    const inGlobex = await bh.runInSchema('globex', async () => await addJob(queue, 'read', {}), { userId: 2 })
    assert.deepEqual(inAcme.data, { [JOB_CONTEXT_KEY]: { schema: 'acme', userId: 1, requestId: null } })
    const outcome = start(withTenant(bh, async (job) => await readAndWrite(job.data as object)))
    assert.deepEqual(await outcome(inAcme), { status: 'completed', result: { schema: 'acme', titles: ['acme-1', 'acme-2'], context: { schema: 'acme', userId: 1, requestId: null } } })
    assert.deepEqual(await outcome(inGlobex), { status: 'completed', result: { schema: 'globex', titles: ['globex-1'], context: { schema: 'globex', userId: 2, requestId: null } } })
  })

  await t.test('BullMQ: refused contexts never reach the processor and write nothing', async (t) => {
    const { queue, start } = bull(t)
    await bh.createSchema('hooli')
    const deactivated = await bh.runInSchema('hooli', async () => await addJob(queue, 'write', { write: 'hooli-job' }))
    await bh.deleteSchema('hooli') // deactivated after the job was enqueued
    const none = await addJob(queue, 'write', { write: 'no-context' })
    assert.equal(JOB_CONTEXT_KEY in none.data, false)
    const malformed: Array<[unknown, string]> = [
      [{ schema: '__template__' }, 'FST_BH_INVALID_JOB_CONTEXT'],
      [{ schema: 'public' }, 'FST_BH_INVALID_JOB_CONTEXT'],
      ['acme', 'FST_BH_INVALID_JOB_CONTEXT'],
      [{ schema: 'acme', userId: 1, admin: true }, 'FST_BH_INVALID_JOB_CONTEXT'],
      [{ schema: 'acme', userId: 2 }, 'FST_BH_FORBIDDEN_SCHEMA'], // user 2 is a member of globex only
      [{ schema: 'nowhere' }, 'FST_BH_SCHEMA_NOT_FOUND']
    ]
    const forged = await Promise.all(malformed.map(async ([ctx]) => await queue.add('write', { write: 'forged', [JOB_CONTEXT_KEY]: ctx })))
    await bh.runInSchema('acme', async () => {
      await assert.rejects(addJob(queue, 'write', { [JOB_CONTEXT_KEY]: { schema: 'globex' } }), { code: 'FST_BH_INVALID_JOB_CONTEXT' })
      await assert.rejects(addJob(queue, 'write', new Date()), { code: 'FST_BH_INVALID_JOB_CONTEXT' })
    })
    const before = await counts()
    const logBefore = await logged()
    ran.length = 0
    const outcome = start(withTenant(bh, async (job) => await readAndWrite(job.data as object)))
    failedWith(await outcome(deactivated), 'FST_BH_SCHEMA_INACTIVE')
    failedWith(await outcome(none), 'FST_BH_NO_JOB_CONTEXT')
    for (const [i, job] of forged.entries()) failedWith(await outcome(job), (malformed[i] as [unknown, string])[1])
    assert.deepEqual(ran, [])
    assert.deepEqual(await counts(), before)
    await bh.activateSchema('hooli')
    assert.equal(await bh.runInSchema('hooli', async () => await Item.count()), 0)
    assert.equal(await logged(), logBefore)
    // no retries for a refusal, even with attempts left
    const retried = await queue.add('write', { write: 'x', [JOB_CONTEXT_KEY]: { schema: 'public' } }, { attempts: 3 })
    failedWith(await outcome(retried), 'FST_BH_INVALID_JOB_CONTEXT')
    assert.equal((await queue.getJob(retried.id as string))?.attemptsMade, 1)
  })

  await t.test('BullMQ: a job that opts out runs in public', async (t) => {
    const { queue, start } = bull(t)
    const none = await addJob(queue, 'read', {})
    const outcome = start(withTenant(bh, async () => bh.currentSchema(), { allowMissing: true }))
    assert.deepEqual(await outcome(none), { status: 'completed', result: null })
  })

  await t.test('BullMQ: a job scheduler made in a context gives each job that context, checked at each run', async (t) => {
    const { queue } = bull(t)
    await bh.createSchema('umbrella')
    await bh.runInSchema('umbrella', async () => { await Item.create({ title: 'umbrella-1' }) })
    await bh.runInSchema('umbrella', async () => await queue.upsertJobScheduler('tick', { every: 100 }, { name: 'tick', data: withJobContext({}) }))
    const seen: Outcome[] = []
    const worker = new Worker(queue.name, withTenant(bh, async () => await titles()), { connection: REDIS, prefix: queue.opts.prefix as string })
    t.after(async () => { await worker.close() })
    worker.on('completed', (_job, result) => { seen.push({ status: 'completed', result }) })
    worker.on('failed', (_job, error) => { seen.push({ status: 'failed', error }) })
    while (seen.length < 2) await sleep(20)
    await bh.deleteSchema('umbrella')
    const mark = seen.length
    while (!seen.slice(mark).some((o) => o.status === 'failed')) await sleep(20)
    await queue.removeJobScheduler('tick')
    await worker.close()
    const [first, second] = seen
    assert.deepEqual([first, second], [{ status: 'completed', result: ['umbrella-1'] }, { status: 'completed', result: ['umbrella-1'] }])
    // after the deactivation, every run is refused (a run already started may still finish)
    const after = seen.slice(mark)
    const firstRefusal = after.findIndex((o) => o.status === 'failed')
    assert.ok(firstRefusal <= 1, JSON.stringify(after))
    for (const o of after.slice(firstRefusal)) failedWith(o, 'FST_BH_SCHEMA_INACTIVE')
  })

  await t.test('negative control: a BullMQ worker without the adapter does not isolate', async (t) => {
    const { queue, start } = bull(t)
    const inAcme = await bh.runInSchema('acme', async () => await addJob(queue, 'read', {}))
    const outcome = start(async (job) => await readAndWrite(job.data as object))
    const plain = await outcome(inAcme)
    assert.equal(plain.status, 'failed')
    assert.equal(plain.status === 'failed' && plain.error.code, 'FST_BH_NO_SCHEMA')

    // a worker started inside runInSchema runs every job in that schema: globex's job reads acme's rows
    const second = bull(t)
    const inGlobex = await bh.runInSchema('globex', async () => await addJob(second.queue, 'read', {}))
    const leaky = await bh.runInSchema('acme', () => second.start(async (job) => await readAndWrite(job.data as object)))
    const leaked = await leaky(inGlobex)
    assert.equal(leaked.status, 'completed')
    assert.deepEqual(leaked.status === 'completed' && (leaked.result as { titles: string[] }).titles, ['acme-1', 'acme-2'])

    // the same, with the adapter: the job's own schema wins over the worker's
    const third = bull(t)
    const inGlobex2 = await bh.runInSchema('globex', async () => await addJob(third.queue, 'read', {}))
    const isolated = await bh.runInSchema('acme', () => third.start(withTenant(bh, async (job) => await readAndWrite(job.data as object))))
    const fixed = await isolated(inGlobex2)
    assert.deepEqual(fixed.status === 'completed' && (fixed.result as { titles: string[] }).titles, ['globex-1'])
  })

  await t.test('BullMQ: a job enqueued by a request writes as that request\'s user (audit log)', async (t) => {
    const app = await buildTestApp({ sequelize, auditModels: ['Item'] })
    t.after(async () => { await app.close() })
    const { queue, start } = bull(t)
    app.post('/enqueue', async () => {
      const job = await addJob(queue, 'write', { write: 'from-request' })
      return { id: job.id }
    })
    const alice = await login(app, 1)
    await app.inject({ method: 'POST', url: '/__change_schema__', payload: { schema: 'acme' }, headers: { cookie: alice } })
    const res = await app.inject({ method: 'POST', url: '/enqueue', headers: { cookie: alice } })
    const id = (res.json() as { id: string }).id
    const outcome = start(withTenant(app.boardinghouse, async (job) => await readAndWrite(job.data as object)))
    const done = await outcome(id)
    assert.equal(done.status, 'completed', JSON.stringify(done))
    const context = (done.status === 'completed' ? done.result : null) as { context: { requestId: string } }
    assert.match(context.context.requestId, /^req-/)
    const [entry] = await bh.runInSchema('acme', async () => await bh.auditLog({ limit: 1 }))
    assert.deepEqual([entry?.action, entry?.objectRepr, entry?.schema, entry?.userId, entry?.requestId], ['create', 'from-request', 'acme', '1', context.context.requestId])
    await bh.runInSchema('acme', async () => await Item.destroy({ where: { title: 'from-request' } }))
  })

  await t.test('pg-boss', async (t) => {
    const boss = new PgBoss({ connectionString: url, schema: 'pgboss_test', supervise: false, schedule: false, max: 2 })
    boss.on('error', (err) => { console.error('pg-boss:', err) })
    await boss.start()
    t.after(async () => { await boss.stop({ graceful: false, timeout: 2000 }) })
    const queue = `jobs_${randomBytes(4).toString('hex')}`
    await boss.createQueue(queue)
    const finished = async (id: string | null): Promise<{ state: string, output: { code?: string, titles?: string[], schema?: string | null } }> => {
      assert.ok(id !== null)
      for (;;) {
        const job = await boss.getJobById(queue, id)
        if (job !== null && (job.state === 'completed' || job.state === 'failed')) return { state: job.state, output: job.output as never }
        await sleep(50)
      }
    }
    const opts = { retryLimit: 0 }
    const inAcme = await bh.runInSchema('acme', async () => await send(boss, queue, {}, opts), { userId: 1 })
    const inGlobex = await bh.runInSchema('globex', async () => await send(boss, queue, {}, opts), { userId: 2 })
    await bh.createSchema('pied')
    const deactivated = await bh.runInSchema('pied', async () => await send(boss, queue, { write: 'pied-job' }, opts))
    await bh.deleteSchema('pied')
    const none = await send(boss, queue, { write: 'no-context' }, opts)
    const malformed: Array<[unknown, string]> = [
      [{ schema: '__template__' }, 'FST_BH_INVALID_JOB_CONTEXT'],
      [{ schema: 'public' }, 'FST_BH_INVALID_JOB_CONTEXT'],
      [['acme'], 'FST_BH_INVALID_JOB_CONTEXT'],
      [{ schema: 'acme', userId: 1, extra: 'x' }, 'FST_BH_INVALID_JOB_CONTEXT'],
      [{ schema: 'acme', userId: 2 }, 'FST_BH_FORBIDDEN_SCHEMA']
    ]
    const forged = await Promise.all(malformed.map(async ([ctx]) => await boss.send(queue, { write: 'forged', [JOB_CONTEXT_KEY]: ctx }, opts)))
    const before = await counts()
    ran.length = 0
    await work<{ write?: string }>(boss, bh, queue, { batchSize: 4, pollingIntervalSeconds: 0.5 }, async (job) => await readAndWrite(job.data))

    assert.deepEqual(await finished(inAcme), { state: 'completed', output: { schema: 'acme', titles: ['acme-1', 'acme-2'], context: { schema: 'acme', userId: 1, requestId: null } } })
    assert.deepEqual(await finished(inGlobex), { state: 'completed', output: { schema: 'globex', titles: ['globex-1'], context: { schema: 'globex', userId: 2, requestId: null } } })
    assert.equal((await finished(deactivated)).output.code, 'FST_BH_SCHEMA_INACTIVE')
    assert.equal((await finished(none)).output.code, 'FST_BH_NO_JOB_CONTEXT')
    for (const [i, id] of forged.entries()) {
      const done = await finished(id)
      assert.deepEqual([done.state, done.output.code], ['failed', (malformed[i] as [unknown, string])[1]])
    }
    assert.equal(ran.length, 2, 'only the two valid jobs ran')
    assert.deepEqual(await counts(), before)

    // negative control: a pg-boss handler without the adapter runs with no schema
    const plainQueue = `${queue}_plain`
    await boss.createQueue(plainQueue)
    const plainJob = await bh.runInSchema('acme', async () => await send(boss, plainQueue, {}, opts))
    await boss.work(plainQueue, { pollingIntervalSeconds: 0.5 }, async ([job]) => await readAndWrite((job?.data ?? {}) as object))
    assert.ok(plainJob !== null)
    for (;;) {
      const job = await boss.getJobById(plainQueue, plainJob)
      if (job !== null && job.state === 'failed') { assert.equal((job.output as { code?: string }).code, 'FST_BH_NO_SCHEMA'); break }
      assert.notEqual(job?.state, 'completed')
      await sleep(50)
    }
  })
})
