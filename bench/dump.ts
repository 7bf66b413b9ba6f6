/**
 * bench:dump: dumpdata and loaddata of one tenant with 1,000,000 rows, through the CLI, each in a
 * child process whose peak RSS is measured (target: under 200 MB each way).
 *
 *   npm run bench:dump        (DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/postgres;
 *                              BENCH_ROWS=100000 for a quick run; BENCH_FORMAT=ndjson for NDJSON)
 *
 * Creates its own database, a tenant `bench_src` holding the rows (a bigserial key, text, numeric,
 * timestamptz with microseconds, boolean, float8, jsonb), runs
 * `boardinghouse dumpdata --schema bench_src --output <file>` and
 * `boardinghouse loaddata --schema bench_dst <file>`, checks that both schemas hold the same rows
 * (md5 of every row's text), and prints one JSON object as the last line.
 *
 * Peak RSS: each child process is started with this file as an extra `--import`, which (with
 * BH_BENCH_RSS_FD set) only reports `process.resourceUsage().maxRSS` on exit.
 */
import { spawn } from 'node:child_process'
import { statSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath, pathToFileURL } from 'node:url'

const RSS_MARK = 'BH_BENCH_MAX_RSS_KB='

if (process.env.BH_BENCH_RSS_FD === '1') {
  // loaded with --import into a CLI child: report the peak RSS when it exits
  process.on('exit', () => { process.stderr.write(`\n${RSS_MARK}${process.resourceUsage().maxRSS}\n`) })
} else {
  await bench()
}

async function bench (): Promise<void> {
  const { QueryTypes } = await import('sequelize')
  const { Boardinghouse } = await import('../plugin/boardinghouse.js')
  const { log, makeSequelize, migrationFolder, round1, runBench, serverVersion, withBenchDatabase } = await import('./common.js')

  const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000)
  if (!Number.isInteger(ROWS) || ROWS < 1000) throw new Error('BENCH_ROWS must be an integer >= 1000')
  const FORMAT = process.env.BENCH_FORMAT ?? 'json'
  if (FORMAT !== 'json' && FORMAT !== 'ndjson') throw new Error('BENCH_FORMAT must be json or ndjson')
  const ROOT = fileURLToPath(new URL('..', import.meta.url))
  const SELF = pathToFileURL(fileURLToPath(import.meta.url)).href

  const MIGRATION = `
module.exports = {
  async up ({ context: { sequelize } }) {
    await sequelize.query(\`CREATE TABLE bench_rows (
      id bigserial PRIMARY KEY, title text NOT NULL, amount numeric(12,2), created_at timestamptz NOT NULL,
      flag boolean, score float8, payload jsonb)\`)
  }
}
`
  const CONFIG = `
export default {
  models: (sequelize) => {
    const { DataTypes } = sequelize.constructor
    sequelize.define('BenchRow', {
      id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
      title: DataTypes.TEXT,
      amount: DataTypes.DECIMAL(12, 2),
      createdAt: { type: DataTypes.DATE, field: 'created_at' },
      flag: DataTypes.BOOLEAN,
      score: DataTypes.DOUBLE,
      payload: DataTypes.JSONB
    }, { tableName: 'bench_rows', timestamps: false })
  },
  tenantModels: ['BenchRow'],
  tenantMigrations: './tenant'
}
`

  interface ChildRun { ms: number, maxRssMb: number, stdout: string }

  /** Runs the CLI in a child process; its wall time and peak RSS. */
  async function cli (url: string, config: string, args: string[]): Promise<ChildRun> {
    const started = performance.now()
    return await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--import', SELF, join(ROOT, 'plugin/cli.ts'), '--config', config, ...args], {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: url, BH_BENCH_RSS_FD: '1' },
        stdio: ['ignore', 'pipe', 'pipe']
      })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
      child.on('error', reject)
      child.on('close', (code) => {
        const ms = performance.now() - started
        const rss = new RegExp(`${RSS_MARK}(\\d+)`).exec(stderr)
        if (code !== 0 || rss === null) {
          reject(new Error(`boardinghouse ${args.join(' ')} exited with ${String(code)}: ${stderr.replace(new RegExp(`\\n?${RSS_MARK}\\d+\\n?`), '')}`))
          return
        }
        resolve({ ms, maxRssMb: Number(rss[1]) / 1024, stdout })
      })
    })
  }

  runBench('bench:dump', async () => await withBenchDatabase(async (url) => {
    const sequelize = makeSequelize(url, 2)
    const folder = migrationFolder('bh-bench-dump-')
    try {
      const version = await serverVersion(sequelize)
      log(`PostgreSQL ${version}`)
      mkdirSync(join(folder.dir, 'tenant'))
      writeFileSync(join(folder.dir, 'tenant', '001-create-bench-rows.cjs'), MIGRATION)
      const config = folder.write('boardinghouse.config.mjs', CONFIG)
      const { default: cfg } = await import(pathToFileURL(config).href) as { default: { models: (s: typeof sequelize) => void } }
      cfg.models(sequelize)
      const bh = new Boardinghouse({ sequelize, tenantModels: ['BenchRow'], tenantMigrations: join(folder.dir, 'tenant') })
      await bh.migrate()
      await bh.createSchema('bench_src')
      await bh.createSchema('bench_dst')
      log(`filling bench_src.bench_rows with ${ROWS} rows`)
      await sequelize.query(`INSERT INTO bench_src.bench_rows (title, amount, created_at, flag, score, payload)
        SELECT 'row number ' || g, round((g * 1.37)::numeric % 100000, 2),
               timestamptz '2024-01-01 00:00:00+00' + g * interval '1.000001 second',
               g % 2 = 0, g / 7.0::float8, jsonb_build_object('n', g, 'tags', jsonb_build_array('a', 'b'))
        FROM generate_series(1, ${ROWS}) g`)
      await sequelize.query('ANALYZE bench_src.bench_rows')

      const file = join(folder.dir, FORMAT === 'json' ? 'dump.json' : 'dump.ndjson')
      log(`dumpdata --schema bench_src --format ${FORMAT} --output ${file}`)
      const dump = await cli(url, config, ['dumpdata', '--schema', 'bench_src', '--format', FORMAT, '--output', file])
      const fileMb = statSync(file).size / 1024 / 1024
      log(`  ${dump.stdout.trim()}: ${(dump.ms / 1000).toFixed(1)} s, ${fileMb.toFixed(0)} MB, peak RSS ${dump.maxRssMb.toFixed(0)} MB`)

      log('loaddata --schema bench_dst')
      const load = await cli(url, config, ['loaddata', '--schema', 'bench_dst', file])
      log(`  ${load.stdout.trim()}: ${(load.ms / 1000).toFixed(1)} s, peak RSS ${load.maxRssMb.toFixed(0)} MB`)

      const digest = async (schema: string): Promise<string> => {
        const rows = await sequelize.query<{ n: string, d: string }>(
          `SELECT count(*)::text AS n, md5(string_agg(t::text, E'\\n' ORDER BY id)) AS d FROM ${schema}.bench_rows t`, { type: QueryTypes.SELECT })
        return `${rows[0]?.n ?? '?'}:${rows[0]?.d ?? ''}`
      }
      const [src, dst] = [await digest('bench_src'), await digest('bench_dst')]
      if (src !== dst) throw new Error(`bench_dst differs from bench_src: ${dst} vs ${src}`)
      log(`bench_dst holds the same ${ROWS} rows as bench_src (md5 of every row's text)`)
      const [next] = await sequelize.query<{ id: string }>("INSERT INTO bench_dst.bench_rows (title, created_at) VALUES ('next', now()) RETURNING id::text AS id", { type: QueryTypes.SELECT })
      if (next?.id !== String(ROWS + 1)) throw new Error(`the sequence was not moved: next id ${String(next?.id)}`)

      return {
        rows: ROWS,
        dump_rows_per_s: Math.round(ROWS / (dump.ms / 1000)),
        load_rows_per_s: Math.round(ROWS / (load.ms / 1000)),
        dump_max_rss_mb: round1(dump.maxRssMb),
        load_max_rss_mb: round1(load.maxRssMb),
        server_version: version,
        format: FORMAT,
        file_mb: round1(fileMb),
        dump_s: round1(dump.ms / 1000),
        load_s: round1(load.ms / 1000),
        identical: true
      }
    } finally {
      folder.cleanup()
      await sequelize.close()
    }
  }))
}
