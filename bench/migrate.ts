/**
 * bench:migrate: `migrate()` across 1,000 tenant schemas: with nothing to do, and with one new
 * migration (ADD COLUMN + CREATE INDEX on 3 tables) on the default 4 connections vs on one, and the
 * same work as an online migration (the columns in a transactional migration, the indexes built
 * with CREATE INDEX CONCURRENTLY in an online one: `transaction = false`); then, grown to 10,000
 * schemas, a no-op `migrate()` again (`noop_s_10000`).
 *
 *   npm run bench:migrate       (DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/postgres;
 *                                BENCH_TENANTS=100 for a quick smoke run instead of 1,000;
 *                                BENCH_NOOP_TENANTS=500 for the big no-op instead of 10,000, 0 to skip it;
 *                                BENCH_ONLINE=0 to leave the online-DDL runs out)
 *
 * Targets (issue 12): noop_s_10000 <= 0.2 s, parallel_s <= 2 s at 1,000 schemas.
 * `round_trips_per_schema`: queries the process sent (pg's Client#query, every connection) per
 * schema in the last parallel run. The machine may be shared: `node_cpu_s_*` and `pg_cpu_s_*` (CPU
 * seconds of this process and of its PostgreSQL backends per run) depend less on what else runs,
 * `machine_busy_share` tells how busy it was.
 *
 * Prints progress lines, then one JSON object as the last line.
 */
import { readFileSync, readdirSync } from 'node:fs'
import pg from 'pg'
import { QueryTypes, type Sequelize } from 'sequelize'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import { runWithSchema } from '../plugin/context.js'
import type { MigrateResult } from '../plugin/migrator/index.js'
import { createSchemaTolerant, elapsedSeconds, log, makeSequelize, median, migrationFolder, promisePool, round1, round2, runBench, serverVersion, tenantCount, timed, withBenchDatabase } from './common.js'

const SCHEMAS = tenantCount()
const NOOP_SCHEMAS = ((): number => {
  const value = Number(process.env.BENCH_NOOP_TENANTS ?? 10_000)
  if (!Number.isInteger(value) || (value !== 0 && value < SCHEMAS)) throw new Error(`BENCH_NOOP_TENANTS must be 0 or an integer >= BENCH_TENANTS (${SCHEMAS})`)
  return value
})()
const CREATE_CONCURRENCY = 2
const CONCURRENCY = 4 // the library's default migrationConcurrency
const NOOP_RUNS = 3
type Mode = 'parallel' | 'serial' | 'online'
/** Order of the timed runs, each with a new migration of equal work: alternated (ABBA...) so drift hits each. */
const ALL_RUNS: Mode[] = ['parallel', 'serial', 'online', 'online', 'serial', 'parallel', 'parallel', 'serial', 'online', 'online', 'serial', 'parallel']
/** BENCH_ONLINE=0 leaves the online runs out (to measure a library version without online migrations). */
const ORDER: Mode[] = process.env.BENCH_ONLINE === '0' ? ALL_RUNS.filter((m) => m !== 'online') : ALL_RUNS
const TABLES = ['items', 'projects', 'notes'] as const

const CLK_TCK = 100 // Linux USER_HZ

/**
 * CPU seconds (user + system) of this database's PostgreSQL backends, sampled from /proc every
 * 100 ms while a run goes on (the server runs on this machine): backends that end during the run
 * (recycled pool connections, the lock's and the online sessions' own) count up to their last sample.
 */
class BackendCpu {
  private readonly start = new Map<number, number>()
  private readonly last = new Map<number, number>()
  private timer: NodeJS.Timeout | null = null

  constructor (private readonly database: string) {}

  private sample (into: Map<number, number>): void {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue
      try {
        const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8')
        if (!cmdline.startsWith('postgres: ') || !cmdline.includes(` ${this.database} `)) continue
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
        into.set(Number(entry), (Number(fields[11]) + Number(fields[12])) / CLK_TCK)
      } catch {
        // gone meanwhile
      }
    }
  }

  begin (): void {
    this.start.clear()
    this.last.clear()
    this.sample(this.start)
    this.timer = setInterval(() => { this.sample(this.last) }, 100)
  }

  /** CPU seconds used since begin() by this database's backends. */
  end (): number {
    if (this.timer !== null) clearInterval(this.timer)
    this.sample(this.last)
    let sum = 0
    for (const [pid, s] of this.last) sum += s - (this.start.get(pid) ?? 0)
    return sum
  }
}

/** The machine's busy CPU share (all processes, /proc/stat) between two samples. */
function machineCpu (): { busy: number, total: number } {
  try {
    const v = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number)
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0)
    return { busy: total - (v[3] ?? 0) - (v[4] ?? 0), total }
  } catch {
    return { busy: 0, total: 0 }
  }
}

/** Queries sent by this process (every pg client: pool, lock and online-DDL connections). */
let queriesSent = 0
const originalQuery = pg.Client.prototype.query
pg.Client.prototype.query = function countedQuery (this: pg.Client, ...args: unknown[]) {
  queriesSent++
  return (originalQuery as (...a: unknown[]) => unknown).apply(this, args)
} as typeof pg.Client.prototype.query

// The template: the example's items table plus two more, in two migration files (sequelize-cli style).
const CREATE_ITEMS = `module.exports = {
  async up ({ context: { queryInterface, Sequelize } }) {
    await queryInterface.createTable('items', {
      id: { type: Sequelize.INTEGER, primaryKey: true, autoIncrement: true },
      title: { type: Sequelize.STRING(200), allowNull: false },
      created_at: { type: Sequelize.DATE, allowNull: false, defaultValue: Sequelize.fn('now') },
      updated_at: { type: Sequelize.DATE, allowNull: false, defaultValue: Sequelize.fn('now') }
    })
  }
}
`

const CREATE_PROJECTS_NOTES = `module.exports = {
  async up ({ context: { queryInterface, Sequelize } }) {
    await queryInterface.createTable('projects', {
      id: { type: Sequelize.INTEGER, primaryKey: true, autoIncrement: true },
      name: { type: Sequelize.STRING(120), allowNull: false, unique: true },
      archived: { type: Sequelize.BOOLEAN, allowNull: false, defaultValue: false },
      created_at: { type: Sequelize.DATE, allowNull: false, defaultValue: Sequelize.fn('now') }
    })
    await queryInterface.createTable('notes', {
      id: { type: Sequelize.BIGINT, primaryKey: true, autoIncrement: true },
      item_id: { type: Sequelize.INTEGER, allowNull: false, references: { model: 'items', key: 'id' }, onDelete: 'CASCADE' },
      project_id: { type: Sequelize.INTEGER, references: { model: 'projects', key: 'id' } },
      body: { type: Sequelize.TEXT, allowNull: false },
      created_at: { type: Sequelize.DATE, allowNull: false, defaultValue: Sequelize.fn('now') }
    })
    await queryInterface.addIndex('notes', ['item_id', 'created_at'], { name: 'notes_item_created_idx' })
  }
}
`

/** Migration number `n`: a column and an index on each of the 3 tables (the same work every time). */
function addColumnMigration (n: number): string {
  const column = `extra_${n}`
  return `module.exports = {
  async up ({ context: { queryInterface, Sequelize } }) {
    for (const table of ${JSON.stringify(TABLES)}) {
      await queryInterface.addColumn(table, '${column}', { type: Sequelize.INTEGER, allowNull: true })
      await queryInterface.addIndex(table, ['${column}'], { name: table + '_${column}_idx' })
    }
  }
}
`
}

/** Migration number `n` as online DDL: the 3 indexes of addColumnMigration, built CONCURRENTLY outside a transaction. */
function onlineIndexMigration (n: number): string {
  const column = `extra_${n}`
  return `module.exports = {
  transaction: false,
  async up ({ context: { queryInterface } }) {
    for (const table of ${JSON.stringify(TABLES)}) {
      await queryInterface.addIndex(table, ['${column}'], { name: table + '_${column}_idx', concurrently: true })
    }
  }
}
`
}

/** addColumnMigration without its indexes (they come with onlineIndexMigration). */
function columnOnlyMigration (n: number): string {
  const column = `extra_${n}`
  return `module.exports = {
  async up ({ context: { queryInterface, Sequelize } }) {
    for (const table of ${JSON.stringify(TABLES)}) {
      await queryInterface.addColumn(table, '${column}', { type: Sequelize.INTEGER, allowNull: true })
    }
  }
}
`
}

/** Schemas (template included) where migration `n`'s index is VALID on all 3 tables. */
async function schemasWithValidIndex (sequelize: Sequelize, n: number): Promise<number> {
  const rows = await sequelize.query<{ n: string }>(
    `SELECT count(*) AS n FROM (
       SELECT c.relnamespace FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
       WHERE c.relname IN (:names) AND i.indisvalid GROUP BY c.relnamespace HAVING count(*) = :count) s`,
    { replacements: { names: TABLES.map((t) => `${t}_extra_${n}_idx`), count: TABLES.length }, type: QueryTypes.SELECT })
  return Number(rows[0]?.n ?? 0)
}

/** Schemas (template included) where migration `n`'s column exists on all 3 tables. */
async function schemasWithColumn (sequelize: Sequelize, n: number): Promise<number> {
  const rows = await runWithSchema(null, async () => await sequelize.query<{ n: string }>(
    `SELECT count(*) AS n FROM (
       SELECT c.relnamespace FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
       WHERE a.attname = :column AND NOT a.attisdropped AND c.relname IN (:tables) AND c.relkind = 'r'
       GROUP BY c.relnamespace HAVING count(*) = :count) s`,
    { replacements: { column: `extra_${n}`, tables: [...TABLES], count: TABLES.length }, type: QueryTypes.SELECT }))
  return Number(rows[0]?.n ?? 0)
}

runBench('bench:migrate', async () => {
  const result = await withBenchDatabase(async (url, database) => {
    const sequelize = makeSequelize(url, 5)
    const folder = migrationFolder('bh-bench-migrate-')
    try {
      const version = await serverVersion(sequelize)
      log(`PostgreSQL ${version}`)
      folder.write('001-create-items.cjs', CREATE_ITEMS)
      folder.write('002-create-projects-notes.cjs', CREATE_PROJECTS_NOTES)
      // Migrator loads the folder once per instance: a new instance sees files added since.
      const make = (): Boardinghouse => new Boardinghouse({ sequelize, tenantMigrations: folder.dir })
      const bh = make()
      const first = await timed(async () => await bh.migrate())
      log(`migrate(): template ${first.value.template.join(', ')} in ${first.ms.toFixed(0)} ms`)

      log(`creating ${SCHEMAS} tenant schemas (createSchema, concurrency ${CREATE_CONCURRENCY})`)
      const names = Array.from({ length: SCHEMAS }, (_, i) => `tenant_${String(i).padStart(4, '0')}`)
      let done = 0
      const spurious = { count: 0 }
      const created = await timed(async () => await promisePool(names, CREATE_CONCURRENCY, async (schema) => {
        await createSchemaTolerant(bh, schema, spurious)
        if (++done % 200 === 0) log(`  ${done} schemas`)
      }))
      log(`created ${SCHEMAS} schemas in ${(created.ms / 1000).toFixed(1)} s (${(created.ms / SCHEMAS).toFixed(1)} ms/schema wall); ${spurious.count} spurious FST_BH_SCHEMA_NOT_FOUND from createSchema for schemas it had created`)

      // (a) Nothing to do: a new instance each time, as a deploy's `migrate` command would be.
      const noop: number[] = []
      for (let i = 0; i < NOOP_RUNS; i++) {
        const run = await timed(async () => await make().migrate())
        const r = run.value
        if (r.migratedSchemas !== 0 || r.template.length !== 0 || r.upToDateSchemas !== SCHEMAS) {
          throw new Error(`no-op migrate did work: ${JSON.stringify(r)}`)
        }
        noop.push(run.ms / 1000)
        log(`no-op migrate() #${i + 1}: ${run.ms.toFixed(0)} ms (${r.upToDateSchemas} up to date)`)
      }

      // (b) One new migration per run, alternating 4 connections, 1, and online DDL on 4.
      const times: Record<Mode, number[]> = { parallel: [], serial: [], online: [] }
      const nodeCpuShare: Record<Mode, number[]> = { parallel: [], serial: [], online: [] }
      let roundTrips = 0
      const pgCpu: Record<Mode, number[]> = { parallel: [], serial: [], online: [] }
      const nodeCpuS: Record<Mode, number[]> = { parallel: [], serial: [], online: [] }
      const busyShare: number[] = []
      for (const [i, mode] of ORDER.entries()) {
        const n = i + 3
        const file = `${String(n).padStart(3, '0')}-add-extra-${n}`
        if (mode === 'online') {
          folder.write(`${file}-a.cjs`, columnOnlyMigration(n))
          folder.write(`${file}-b-online.cjs`, onlineIndexMigration(n))
        } else {
          folder.write(`${file}.cjs`, addColumnMigration(n))
        }
        const instance = make()
        let last = 0
        const backends = new BackendCpu(database)
        backends.begin()
        const machine0 = machineCpu()
        const cpu = process.cpuUsage()
        const sent = queriesSent
        const run = await timed(async (): Promise<MigrateResult> => await instance.migrate({
          ...(mode === 'serial' ? { concurrency: 1 } : {}),
          onProgress: (p) => {
            if (p.phase === 'tenants' && p.done - last >= 250) { last = p.done; log(`    ${p.done}/${p.total}`) }
          }
        }))
        if (mode === 'parallel') roundTrips = (queriesSent - sent) / SCHEMAS
        const used = process.cpuUsage(cpu)
        const nodeCpu = (used.user + used.system) / 1e6
        const machine1 = machineCpu()
        const pgUsed = backends.end()
        pgCpu[mode].push(pgUsed)
        nodeCpuS[mode].push(nodeCpu)
        if (machine1.total > machine0.total) busyShare.push((machine1.busy - machine0.busy) / (machine1.total - machine0.total))
        nodeCpuShare[mode].push(nodeCpu / (run.ms / 1000))
        if (run.value.migratedSchemas !== SCHEMAS) throw new Error(`migration ${n} migrated ${run.value.migratedSchemas} schemas, expected ${SCHEMAS}`)
        const withColumn = await schemasWithColumn(sequelize, n)
        if (withColumn !== SCHEMAS + 1) throw new Error(`migration ${n}: column found in ${withColumn} schemas, expected ${SCHEMAS + 1}`)
        const withIndex = await schemasWithValidIndex(sequelize, n)
        if (withIndex !== SCHEMAS + 1) throw new Error(`migration ${n}: valid indexes in ${withIndex} schemas, expected ${SCHEMAS + 1}`)
        times[mode].push(run.ms / 1000)
        const how = mode === 'serial' ? '1 connection' : mode === 'online' ? `online DDL, concurrency ${CONCURRENCY}` : `concurrency ${CONCURRENCY}`
        log(`migration ${n} (${how}): ${(run.ms / 1000).toFixed(2)} s across ${run.value.migratedSchemas} schemas + template; this Node process used ${nodeCpu.toFixed(2)} s CPU (${(100 * nodeCpu / (run.ms / 1000)).toFixed(0)}% of one core), its PostgreSQL backends ${pgUsed.toFixed(2)} s; ${((queriesSent - sent) / SCHEMAS).toFixed(1)} queries per schema; machine ${(100 * (busyShare[busyShare.length - 1] ?? 0)).toFixed(0)}% busy`)
      }
      const parallel = median(times.parallel)
      const serial = median(times.serial)
      const online = times.online.length > 0 ? median(times.online) : NaN
      log(`parallel runs: ${times.parallel.map((s) => s.toFixed(2)).join(', ')} s; serial runs: ${times.serial.map((s) => s.toFixed(2)).join(', ')} s; online runs: ${times.online.map((s) => s.toFixed(2)).join(', ')} s`)
      log(`speedup serial/parallel (medians): ${(serial / parallel).toFixed(2)}`)

      // (c) Grown to NOOP_SCHEMAS schemas, nothing to do.
      const noopBig: number[] = []
      if (NOOP_SCHEMAS > 0) {
        const more = Array.from({ length: NOOP_SCHEMAS - SCHEMAS }, (_, i) => `tenant_${String(SCHEMAS + i).padStart(5, '0')}`)
        log(`creating ${more.length} more tenant schemas (${NOOP_SCHEMAS} in all)`)
        let added = 0
        const bhMore = make()
        const grown = await timed(async () => await promisePool(more, CREATE_CONCURRENCY, async (schema) => {
          await createSchemaTolerant(bhMore, schema, spurious)
          if (++added % 1000 === 0) log(`  ${added} schemas`)
        }))
        log(`created them in ${(grown.ms / 1000).toFixed(1)} s`)
        for (let i = 0; i < NOOP_RUNS; i++) {
          const run = await timed(async () => await make().migrate())
          const r = run.value
          if (r.migratedSchemas !== 0 || r.template.length !== 0 || r.upToDateSchemas !== NOOP_SCHEMAS) {
            throw new Error(`no-op migrate at ${NOOP_SCHEMAS} did work: ${JSON.stringify(r)}`)
          }
          noopBig.push(run.ms / 1000)
          log(`no-op migrate() at ${NOOP_SCHEMAS} schemas #${i + 1}: ${run.ms.toFixed(0)} ms`)
        }
      }

      return {
        schemas: SCHEMAS,
        noop_s: round2(median(noop)),
        noop_s_10000: NOOP_SCHEMAS === 10_000 ? round2(median(noopBig)) : null,
        noop_big_schemas: NOOP_SCHEMAS,
        noop_big_s: noopBig.length > 0 ? round2(median(noopBig)) : null,
        parallel_s: round2(parallel),
        serial_s: round2(serial),
        online_s: times.online.length > 0 ? round2(online) : null,
        parallel_speedup: round1(serial / parallel),
        round_trips_per_schema: round1(roundTrips),
        concurrency: CONCURRENCY,
        server_version: version,
        noop_runs_s: noop.map(round2),
        parallel_runs_s: times.parallel.map(round2),
        serial_runs_s: times.serial.map(round2),
        online_runs_s: times.online.map(round2),
        noop_big_runs_s: noopBig.map(round2),
        node_cpu_share_parallel: round2(median(nodeCpuShare.parallel)),
        node_cpu_share_serial: round2(median(nodeCpuShare.serial)),
        node_cpu_share_online: nodeCpuShare.online.length > 0 ? round2(median(nodeCpuShare.online)) : null,
        // CPU seconds per run (medians): what the work costs, whatever else runs on the machine
        node_cpu_s_parallel: round2(median(nodeCpuS.parallel)),
        node_cpu_s_serial: round2(median(nodeCpuS.serial)),
        pg_cpu_s_parallel: round2(median(pgCpu.parallel)),
        pg_cpu_s_serial: round2(median(pgCpu.serial)),
        pg_cpu_s_online: pgCpu.online.length > 0 ? round2(median(pgCpu.online)) : null,
        machine_busy_share: round2(median(busyShare)),
        create_ms_per_schema: round1(created.ms / SCHEMAS),
        spurious_not_found: spurious.count
      }
    } finally {
      folder.cleanup()
      await sequelize.close()
    }
  })
  return { ...result, wall_s: round1(elapsedSeconds()) }
})
