/**
 * bench:create: how long `createSchema` takes with the 26-table fixture template
 * (test/fixtures/bench-tenant-template.sql, DESIGN.md §3), at ~0 and at 1,000 tenants, against
 * the baseline of bringing a fresh schema to the same state by running the tenant migration; and
 * with a pending schema ready (option pendingSchemas: createSchema claims a spare, a rename), against
 * the clone measured in the same run, plus the background refill's rate while requests run.
 *
 *   npm run bench:create        (DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/postgres;
 *                                BENCH_TENANTS=100 for a quick smoke run instead of 1,000)
 *
 * Prints progress lines, then one JSON object as the last line.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { QueryTypes, type Sequelize } from 'sequelize'
import { Umzug, memoryStorage } from 'umzug'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import { runWithSchema } from '../plugin/context.js'
import { TEMPLATE_SCHEMA, quoteIdent } from '../plugin/names.js'
import { SequelizeWithDataTypes, type MigrationContext } from '../plugin/migrator/index.js'
import { GUARD_TRIGGER_PREFIX } from '../plugin/clone/index.js'
import { log, makeSequelize, median, migrationFolder, percentile, promisePool, round1, round2, runBench, serverVersion, timed, withBenchDatabase, elapsedSeconds, tenantCount, createSchemaTolerant } from './common.js'

const TEMPLATE_SQL = fileURLToPath(new URL('../test/fixtures/bench-tenant-template.sql', import.meta.url))
const PUBLIC_SQL = fileURLToPath(new URL('../test/fixtures/bench-public.sql', import.meta.url))
const FINGERPRINT_SQL = fileURLToPath(new URL('../test/fixtures/schema-fingerprint.sql', import.meta.url))

const SERIAL_RUNS = 30
const BASELINE_RUNS = 10
const TARGET_TENANTS = tenantCount()
const FILL_CONCURRENCY = 2
/** Spares kept ready for the pending runs, and spares cloned for the refill-rate measurement. */
const PENDING_POOL = 5
const REFILL_SPARES = 20
/** Request workers while the refill runs (the pool has 5 connections: the refill takes one). */
const REQUEST_WORKERS = 4

/**
 * The one tenant migration: reads the fixture and runs it as one raw query. The migrator runs it
 * with search_path = <schema>, public, so the unqualified DDL lands in the schema being migrated.
 * Lines creating or filling public tables are left out (bench-public.sql runs once, in public);
 * the current fixture has none, the filter keeps it right if they are added.
 */
const TENANT_MIGRATION = `// bench:create tenant migration: the 26-table fixture template, as one raw query.
const { readFileSync } = require('node:fs')
const FILE = ${JSON.stringify(TEMPLATE_SQL)}

module.exports = {
  async up ({ context: { queryInterface } }) {
    const sql = readFileSync(FILE, 'utf8').split('\\n')
      .filter((line) => !line.startsWith('CREATE TABLE IF NOT EXISTS public.') && !line.startsWith('INSERT INTO public.'))
      .join('\\n')
    await queryInterface.sequelize.query(sql)
  }
}
`

interface MigrationModule {
  up: (params: { context: MigrationContext }) => Promise<void>
}

/**
 * Baseline: bring a fresh schema to the template's state by running the tenant migration through
 * umzug, the way the library migrates a schema (Migrator.runSet): one Sequelize transaction,
 * opened and run inside the library's tenant context for that schema (runWithSchema with the
 * transaction in the store), so every query of the migration, `queryInterface.sequelize.query(sql)`
 * included, joins that transaction and carries `SET search_path TO "<schema>", public` in the same
 * message. Same SQL file, same server, same connection pool, one transaction: BEGIN, CREATE SCHEMA,
 * the fixture as one simple-protocol query, COMMIT. The only thing left out is the ledger (umzug
 * keeps its record in memory here, one small INSERT in the library), which favours the baseline.
 */
async function migrateFreshSchema (sequelize: Sequelize, schema: string, migration: MigrationModule): Promise<number> {
  const { ms } = await timed(async () => {
    await runWithSchema(schema, async () => await sequelize.transaction(async (transaction) =>
      await runWithSchema(schema, async () => {
        await sequelize.query(`CREATE SCHEMA ${quoteIdent(schema)}`)
        const context: MigrationContext = {
          queryInterface: sequelize.getQueryInterface(),
          Sequelize: SequelizeWithDataTypes,
          sequelize,
          schema,
          isTemplate: false,
          transaction,
          options: { userIdType: 'integer' }
        }
        const umzug = new Umzug<MigrationContext>({
          migrations: [{ name: '001-bench-template', up: async ({ context: ctx }) => { await migration.up({ context: ctx }) } }],
          context,
          storage: memoryStorage(),
          logger: undefined
        })
        const ran = await umzug.up()
        if (ran.length !== 1) throw new Error(`baseline: expected 1 migration to run in ${schema}, ran ${ran.length}`)
      }, { transaction })))
  })
  return ms
}

/**
 * Rows of compare_to_template(schema) (test/fixtures/schema-fingerprint.sql): empty for a
 * correct copy of the template. The template's row guard triggers are expected to be missing
 * from tenants (tenants hold rows): those rows are left out.
 */
async function templateDifferences (sequelize: Sequelize, schema: string): Promise<Array<{ kind: string, detail: string }>> {
  const rows = await runWithSchema(null, async () => await sequelize.query<{ kind: string, detail: string }>(
    'SELECT kind, detail FROM public.compare_to_template(:schema, :template)',
    { replacements: { schema, template: TEMPLATE_SCHEMA }, type: QueryTypes.SELECT }))
  return rows.filter((r) => !(r.kind === 'missing_in_clone' && r.detail.startsWith('trg|') && r.detail.includes(GUARD_TRIGGER_PREFIX)))
}

async function dropSchema (sequelize: Sequelize, schema: string): Promise<void> {
  await runWithSchema(null, async () => await sequelize.query(`DROP SCHEMA ${quoteIdent(schema)} CASCADE`))
}

function fmt (ms: number): string {
  return `${ms.toFixed(1)} ms`
}

/**
 * `count` serial createSchema calls, with `baselines` baseline runs spread evenly between them
 * (clone, clone, baseline, clone, clone, baseline...): both sides see the same machine state.
 */
async function alternate (bh: Boardinghouse, sequelize: Sequelize, migration: MigrationModule, prefix: string, count: number, baselines: number, checkOne: boolean): Promise<{ clone: number[], baseline: number[], baselineDiffs: number }> {
  const clone: number[] = []
  const baseline: number[] = []
  let baselineDiffs = -1
  const every = Math.max(1, Math.floor(count / baselines))
  for (let i = 0; i < count; i++) {
    const schema = `${prefix}_${String(i).padStart(3, '0')}`
    clone.push((await timed(async () => await bh.createSchema(schema))).ms)
    if (baseline.length < baselines && (i % every === every - 1)) {
      const base = `${prefix}_base_${String(baseline.length).padStart(2, '0')}`
      baseline.push(await migrateFreshSchema(sequelize, base, migration))
      if (checkOne && baselineDiffs < 0) baselineDiffs = (await templateDifferences(sequelize, base)).length
      await dropSchema(sequelize, base) // untimed: keep the tenant count honest
    }
  }
  return { clone, baseline, baselineDiffs }
}

/**
 * `count` serial createSchema calls on `bh` (pendingSchemas set), each with a spare ready: the pool
 * is topped up (and the refill the previous claim started is waited for) before each, untimed.
 * Fails unless every call was a claim.
 */
async function pendingRuns (bh: Boardinghouse, prefix: string, count: number): Promise<number[]> {
  const ms: number[] = []
  const claimedBefore = (await bh.pendingStatus()).claimed
  for (let i = 0; i < count; i++) {
    // the refill the previous claim scheduled runs after this fill; the second fill waits for it:
    // nothing of the pool runs during the timed claim
    await bh.fillPending()
    await new Promise((resolve) => setImmediate(resolve))
    await bh.fillPending()
    ms.push((await timed(async () => await bh.createSchema(`${prefix}_${String(i).padStart(3, '0')}`))).ms)
  }
  const claimed = (await bh.pendingStatus()).claimed - claimedBefore
  if (claimed !== count) throw new Error(`pending runs: ${claimed} of ${count} creations claimed a spare`)
  await bh.fillPending()
  return ms
}

/** The claim's check of one spare (boardinghouse_pending_fingerprint), median of 20, ms. */
async function claimCheckMs (sequelize: Sequelize): Promise<number> {
  const [spare] = await runWithSchema(null, async () => await sequelize.query<{ oid: string }>(
    'SELECT n.oid::text AS oid FROM public.boardinghouse_pending p JOIN pg_namespace n ON n.nspname = p.schema_name LIMIT 1', { type: QueryTypes.SELECT }))
  if (spare === undefined) throw new Error('no spare to check')
  const ms: number[] = []
  for (let i = 0; i < 20; i++) {
    ms.push((await timed(async () => await runWithSchema(null, async () => await sequelize.query(
      `SELECT public.boardinghouse_pending_fingerprint(${Number(spare.oid)}::oid)`, { type: QueryTypes.SELECT })))).ms)
  }
  return median(ms)
}

/** Runs REQUEST_WORKERS request loops (a tenant query each, random tenants) until `stop()`; resolves to the requests done. */
function requestLoad (bh: Boardinghouse, sequelize: Sequelize, tenants: string[]): { stop: () => Promise<number> } {
  let running = true
  let done = 0
  const worker = async (lane: number): Promise<void> => {
    let i = lane
    while (running) {
      const schema = tenants[(i * 7919) % tenants.length] as string
      i++
      await bh.runInSchema(schema, async () => await sequelize.query('SELECT count(*) FROM users', { type: QueryTypes.SELECT }))
      done++
    }
  }
  const workers = Promise.all(Array.from({ length: REQUEST_WORKERS }, async (_, lane) => { await worker(lane) }))
  return { stop: async () => { running = false; await workers; return done } }
}

runBench('bench:create', async () => {
  const result = await withBenchDatabase(async (url) => {
    const sequelize = makeSequelize(url, 5)
    const folder = migrationFolder('bh-bench-create-')
    try {
      const version = await serverVersion(sequelize)
      log(`PostgreSQL ${version}`)
      const migrationPath = folder.write('001-bench-template.cjs', TENANT_MIGRATION)
      const migration = createRequire(import.meta.url)(migrationPath) as MigrationModule

      // Public tables the template references (countries, plans), once, in public.
      await runWithSchema(null, async () => await sequelize.query(readFileSync(PUBLIC_SQL, 'utf8')))
      const bh = new Boardinghouse({ sequelize, tenantMigrations: folder.dir })
      const migrated = await timed(async () => await bh.migrate())
      log(`migrate(): template ${migrated.value.template.join(', ')} in ${fmt(migrated.ms)}`)
      await runWithSchema(null, async () => await sequelize.query(readFileSync(FINGERPRINT_SQL, 'utf8')))

      // Warm-up of the baseline path (module load, umzug, JIT), not counted, like first_ms for clones.
      const warm = await migrateFreshSchema(sequelize, 'warm_base', migration)
      await dropSchema(sequelize, 'warm_base')
      log(`baseline warm-up (not counted): ${fmt(warm)}`)

      // (1) ~0 tenants: the first createSchema generates the DDL from the template's catalog.
      const first = await timed(async () => await bh.createSchema('first_000'))
      const firstDiffs = await templateDifferences(sequelize, 'first_000')
      log(`first createSchema (DDL generation included): ${fmt(first.ms)}; compare_to_template: ${firstDiffs.length} difference(s)`)
      for (const d of firstDiffs.slice(0, 10)) log(`  difference: ${d.kind} ${d.detail}`)

      const low = await alternate(bh, sequelize, migration, 'low', SERIAL_RUNS, BASELINE_RUNS, true)
      const p50 = percentile(low.clone, 50)
      const p90 = percentile(low.clone, 90)
      const migP50 = median(low.baseline)
      log(`createSchema x${low.clone.length} at ~0 tenants: p50 ${fmt(p50)}, p90 ${fmt(p90)}, min ${fmt(Math.min(...low.clone))}, max ${fmt(Math.max(...low.clone))}`)
      log(`migrations baseline x${low.baseline.length}: p50 ${fmt(migP50)} (min ${fmt(Math.min(...low.baseline))}, max ${fmt(Math.max(...low.baseline))}); compare_to_template on one: ${low.baselineDiffs} difference(s)`)
      log(`ratio migrations/clone: ${(migP50 / p50).toFixed(2)}`)

      // (1b) The same with a pending schema ready: a claim instead of a clone.
      const pendingBh = new Boardinghouse({ sequelize, tenantMigrations: folder.dir, pendingSchemas: PENDING_POOL })
      const filled = await timed(async () => await pendingBh.fillPending())
      log(`fillPending(${PENDING_POOL}): ${filled.value.created} spares in ${fmt(filled.ms)}`)
      const pendingLow = await pendingRuns(pendingBh, 'plow', SERIAL_RUNS)
      const pendingP50 = percentile(pendingLow, 50)
      const pendingP90 = percentile(pendingLow, 90)
      const pendingDiffs = await templateDifferences(sequelize, 'plow_000')
      const checkLow = await claimCheckMs(sequelize)
      log(`createSchema with a spare ready x${pendingLow.length} at ~0 tenants: p50 ${fmt(pendingP50)}, p90 ${fmt(pendingP90)}, min ${fmt(Math.min(...pendingLow))}, max ${fmt(Math.max(...pendingLow))}; ratio clone/pending ${(p50 / pendingP50).toFixed(1)}; compare_to_template on one: ${pendingDiffs.length} difference(s); the claim's check of a spare: ${fmt(checkLow)}`)

      // (2) Fill up to 1,000 tenants, FILL_CONCURRENCY at a time.
      const existing = (await bh.listSchemas()).length
      const fill = Array.from({ length: TARGET_TENANTS - existing }, (_, i) => `fill_${String(i).padStart(4, '0')}`)
      log(`filling ${fill.length} tenants (concurrency ${FILL_CONCURRENCY}) to reach ${TARGET_TENANTS}`)
      const fillStart = elapsedSeconds()
      let done = 0
      let windowStart = elapsedSeconds()
      let windowDone = 0
      const spurious = { count: 0 }
      await promisePool(fill, FILL_CONCURRENCY, async (schema) => {
        await createSchemaTolerant(bh, schema, spurious)
        done++
        if (done % 100 === 0 || done === fill.length) {
          const now = elapsedSeconds()
          log(`  ${existing + done} tenants (last ${done - windowDone}: ${((now - windowStart) * 1000 / (done - windowDone)).toFixed(0)} ms/tenant wall at concurrency ${FILL_CONCURRENCY})`)
          windowStart = now
          windowDone = done
        }
      })
      bh.registry.invalidate()
      const tenants = (await bh.listSchemas()).length
      log(`filled in ${(elapsedSeconds() - fillStart).toFixed(1)} s; ${tenants} tenants registered; ${spurious.count} spurious FST_BH_SCHEMA_NOT_FOUND from createSchema for schemas it had created`)
      if (tenants !== TARGET_TENANTS) throw new Error(`expected ${TARGET_TENANTS} tenants, found ${tenants}`)

      // (3) At 1,000 tenants: 30 more serially, baselines interleaved again.
      const high = await alternate(bh, sequelize, migration, 'high', SERIAL_RUNS, BASELINE_RUNS, false)
      const p50High = percentile(high.clone, 50)
      const p90High = percentile(high.clone, 90)
      const migP50High = median(high.baseline)
      log(`createSchema x${high.clone.length} at ${TARGET_TENANTS} tenants: p50 ${fmt(p50High)}, p90 ${fmt(p90High)}, min ${fmt(Math.min(...high.clone))}, max ${fmt(Math.max(...high.clone))}`)
      log(`migrations baseline x${high.baseline.length} at ${TARGET_TENANTS}: p50 ${fmt(migP50High)}; ratio ${(migP50High / p50High).toFixed(2)}`)
      pendingBh.registry.invalidate()
      const pendingHigh = await pendingRuns(pendingBh, 'phigh', SERIAL_RUNS)
      const pendingP50High = percentile(pendingHigh, 50)
      const pendingP90High = percentile(pendingHigh, 90)
      const pendingDiffsHigh = await templateDifferences(sequelize, 'phigh_000')
      const checkHigh = await claimCheckMs(sequelize)
      log(`createSchema with a spare ready x${pendingHigh.length} at ${TARGET_TENANTS} tenants: p50 ${fmt(pendingP50High)}, p90 ${fmt(pendingP90High)}; ratio clone/pending ${(p50High / pendingP50High).toFixed(1)}; compare_to_template on one: ${pendingDiffsHigh.length} difference(s); the claim's check: ${fmt(checkHigh)}`)

      // (3b) The refill's rate: REFILL_SPARES spares cloned by fillPending, alone and while requests run
      // (REQUEST_WORKERS loops of a tenant query), and the requests' rate with and without it.
      const tenantNames = (await bh.listSchemas()).map((t) => t.schema)
      const idleFill = await timed(async () => await pendingBh.fillPending(PENDING_POOL + REFILL_SPARES))
      const idleRate = idleFill.value.created / (idleFill.ms / 1000)
      // back to PENDING_POOL spares (claims), untimed
      for (let i = 0; i < REFILL_SPARES; i++) await pendingBh.createSchema(`pdrain_${String(i).padStart(2, '0')}`)
      await pendingBh.close()
      const quiet = requestLoad(bh, sequelize, tenantNames)
      await new Promise((resolve) => setTimeout(resolve, 3000))
      const quietRate = (await quiet.stop()) / 3
      const refillBh = new Boardinghouse({ sequelize, tenantMigrations: folder.dir, pendingSchemas: 0 })
      const loaded = requestLoad(bh, sequelize, tenantNames)
      const loadedFill = await timed(async () => await refillBh.fillPending(PENDING_POOL + REFILL_SPARES))
      const loadedRate = loadedFill.value.created / (loadedFill.ms / 1000)
      const loadedRequests = (await loaded.stop()) / (loadedFill.ms / 1000)
      log(`refill: ${idleFill.value.created} spares at ${idleRate.toFixed(1)}/s alone, ${loadedFill.value.created} at ${loadedRate.toFixed(1)}/s while ${REQUEST_WORKERS} request loops ran; requests ${quietRate.toFixed(0)}/s without the refill, ${loadedRequests.toFixed(0)}/s during it`)

      // Diagnostics: DDL generation against a 1,000-tenant catalog, and the registry reload that
      // every createSchema does (it invalidates the cache, then reads its own entry back).
      bh.invalidate()
      const firstHigh = await timed(async () => await bh.createSchema('high_first'))
      const highDiffs = await templateDifferences(sequelize, 'high_first')
      log(`createSchema after invalidate() at ${TARGET_TENANTS} (DDL generation again): ${fmt(firstHigh.ms)}; compare_to_template: ${highDiffs.length} difference(s)`)
      const reloads: number[] = []
      for (let i = 0; i < 5; i++) {
        bh.registry.invalidate()
        reloads.push((await timed(async () => await bh.listSchemas())).ms)
      }
      log(`registry reload at ${TARGET_TENANTS} tenants: median ${fmt(median(reloads))}`)

      return {
        p50_ms: round1(p50),
        p90_ms: round1(p90),
        p50_ms_at_1000: round1(p50High),
        p90_ms_at_1000: round1(p90High),
        first_ms: round1(first.ms),
        migrations_p50_ms: round1(migP50),
        ratio_vs_migrations: round1(migP50 / p50),
        tenants: TARGET_TENANTS,
        server_version: version,
        migrations_p50_ms_at_1000: round1(migP50High),
        ratio_vs_migrations_at_1000: round1(migP50High / p50High),
        first_ms_at_1000: round1(firstHigh.ms),
        registry_reload_ms_at_1000: round1(median(reloads)),
        clone_differences: firstDiffs.length + highDiffs.length,
        spurious_not_found: spurious.count,
        p50_ms_pending: round1(pendingP50),
        p90_ms_pending: round1(pendingP90),
        p50_ms_pending_at_1000: round1(pendingP50High),
        p90_ms_pending_at_1000: round1(pendingP90High),
        ratio_clone_vs_pending: round1(p50 / pendingP50),
        ratio_clone_vs_pending_at_1000: round1(p50High / pendingP50High),
        claim_check_ms: round2(checkLow),
        claim_check_ms_at_1000: round2(checkHigh),
        pending_differences: pendingDiffs.length + pendingDiffsHigh.length,
        refill_spares_per_s: round1(loadedRate),
        refill_spares_per_s_idle: round1(idleRate),
        requests_per_s_during_refill: Math.round(loadedRequests),
        requests_per_s_without_refill: Math.round(quietRate)
      }
    } finally {
      folder.cleanup()
      await sequelize.close()
    }
  })
  return { ...result, wall_s: round1(elapsedSeconds()) }
})
