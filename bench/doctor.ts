/**
 * bench:doctor: `doctor()` over 1,000 tenant schemas of the 26-table fixture template
 * (test/fixtures/bench-tenant-template.sql) with a few faults planted, median of RUNS runs, against
 * the baseline of one plain catalog query over every schema in the same run (each column's type and
 * default, each index's and constraint's definition: what any structure check must at least read).
 * The run fails unless every doctor run finds exactly the planted faults.
 *
 *   npm run bench:doctor        (DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/postgres;
 *                                BENCH_TENANTS=100 for a quick smoke run instead of 1,000)
 *
 * Prints progress lines, then one JSON object as the last line.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { DataTypes, QueryTypes, type Sequelize } from 'sequelize'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import { runWithSchema } from '../plugin/context.js'
import type { DoctorFinding } from '../plugin/doctor/index.js'
import { createSchemaTolerant, elapsedSeconds, log, makeSequelize, median, migrationFolder, promisePool, round2, runBench, serverVersion, tenantCount, timed, withBenchDatabase } from './common.js'

const TEMPLATE_SQL = fileURLToPath(new URL('../test/fixtures/bench-tenant-template.sql', import.meta.url))
const PUBLIC_SQL = fileURLToPath(new URL('../test/fixtures/bench-public.sql', import.meta.url))

const SCHEMAS = tenantCount()
const CREATE_CONCURRENCY = 2
const RUNS = 5
const MIGRATION = '001-bench-template'

/** The one tenant migration: the fixture as one raw query (as bench:create runs it). */
const TENANT_MIGRATION = `const { readFileSync } = require('node:fs')
module.exports = {
  async up ({ context: { queryInterface } }) {
    await queryInterface.sequelize.query(readFileSync(${JSON.stringify(TEMPLATE_SQL)}, 'utf8'))
  }
}
`

const name = (i: number): string => `t_${String(i).padStart(4, '0')}`

/** The faults planted, by the finding each gives: [code, schema]. */
function plantFaults (): { sql: string, expected: Array<[string, string]> } {
  const at = (fraction: number): string => name(Math.floor(SCHEMAS * fraction))
  const [index, column, audit, dropped, behind] = [at(0.1), at(0.3), at(0.5), at(0.7), at(0.9)]
  return {
    sql: `DROP INDEX ${index}.users_email_lower_uq;
      ALTER TABLE ${column}.customers ALTER COLUMN name TYPE varchar(300);
      DROP TRIGGER boardinghouse_audit ON ${audit}.users;
      DROP SCHEMA ${dropped} CASCADE;
      DELETE FROM public.boardinghouse_tenant_migration WHERE schema_name = '${behind}';
      INSERT INTO public.boardinghouse_tenant_migration (schema_name, name) VALUES ('ghost', '${MIGRATION}')`,
    expected: [
      ['index_differs', index], ['column_differs', column], ['audit_trigger_missing', audit],
      ['ledger_orphan', dropped], ['registry_without_schema', dropped], ['ledger_behind', behind], ['ledger_orphan', 'ghost']
    ]
  }
}

function summary (findings: DoctorFinding[]): string {
  return findings.map((f) => `${f.code} ${f.schema ?? '-'}`).sort().join('; ')
}

/**
 * The baseline: one query reading every column, index and constraint definition of every registered
 * schema, with JIT off as doctor runs (JIT would add ~0.7 s of compilation to it).
 */
async function catalogQuery (sequelize: Sequelize): Promise<number> {
  const rows = await runWithSchema(null, async () => await sequelize.query<{ n: string }>(`SET LOCAL jit = off;
    WITH s AS (SELECT n.oid FROM pg_namespace n WHERE n.nspname::text IN (SELECT schema_name::text FROM public.boardinghouse_schema))
    SELECT (SELECT sum(length(format_type(a.atttypid, a.atttypmod)) + coalesce(length(pg_get_expr(d.adbin, d.adrelid)), 0))
              FROM s JOIN pg_class c ON c.relnamespace = s.oid JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
              LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum)
         + (SELECT sum(length(pg_get_indexdef(i.indexrelid))) FROM s JOIN pg_class c ON c.relnamespace = s.oid JOIN pg_index i ON i.indexrelid = c.oid)
         + (SELECT sum(length(pg_get_constraintdef(k.oid))) FROM s JOIN pg_constraint k ON k.connamespace = s.oid) AS n`,
  { type: QueryTypes.SELECT, logging: false }))
  return Number(rows.at(-1)?.n ?? 0)
}

runBench('bench:doctor', async () => {
  const result = await withBenchDatabase(async (url) => {
    const sequelize = makeSequelize(url, 5)
    const folder = migrationFolder('bh-bench-doctor-')
    try {
      const version = await serverVersion(sequelize)
      log(`PostgreSQL ${version}`)
      folder.write(`${MIGRATION}.cjs`, TENANT_MIGRATION)
      await runWithSchema(null, async () => await sequelize.query(readFileSync(PUBLIC_SQL, 'utf8')))
      // one audited tenant model, so that the audit trigger check has work to do
      sequelize.define('BenchUser', { email: DataTypes.TEXT }, { tableName: 'users', timestamps: false })
      const bh = new Boardinghouse({ sequelize, tenantModels: ['BenchUser'], auditModels: ['BenchUser'], tenantMigrations: folder.dir })
      await bh.migrate()

      log(`creating ${SCHEMAS} schemas (concurrency ${CREATE_CONCURRENCY})`)
      const spurious = { count: 0 }
      let done = 0
      await promisePool(Array.from({ length: SCHEMAS }, (_, i) => name(i)), CREATE_CONCURRENCY, async (schema) => {
        await createSchemaTolerant(bh, schema, spurious)
        if (++done % 100 === 0) log(`  ${done} schemas`)
      })

      const clean = await timed(async () => await bh.doctor())
      log(`doctor on the clean fleet: ${clean.value.findings.length} findings, ${clean.value.schemas} schemas, ${(clean.ms / 1000).toFixed(2)} s (warm-up, not counted)`)
      if (clean.value.findings.length > 0) throw new Error(`the clean fleet has findings: ${summary(clean.value.findings)}`)

      const faults = plantFaults()
      await runWithSchema(null, async () => await sequelize.query(faults.sql))
      const expected = faults.expected.map(([code, schema]) => `${code} ${schema}`).sort().join('; ')
      log(`planted ${faults.expected.length} faults: ${expected}`)

      const doctor: number[] = []
      const baseline: number[] = []
      let findings = 0
      for (let run = 0; run < RUNS; run++) {
        // alternated, so that drift hits both
        const b = await timed(async () => await catalogQuery(sequelize))
        const d = await timed(async () => await bh.doctor())
        const got = summary(d.value.findings)
        if (got !== expected) throw new Error(`run ${run}: doctor found ${got}; planted ${expected}`)
        findings = d.value.findings.length
        doctor.push(d.ms / 1000)
        baseline.push(b.ms / 1000)
        log(`run ${run + 1}/${RUNS}: doctor ${d.ms.toFixed(0)} ms (${findings} findings), one catalog query ${b.ms.toFixed(0)} ms`)
      }
      const doctorS = median(doctor)
      const baselineS = median(baseline)
      log(`doctor median ${doctorS.toFixed(2)} s; one catalog query over all schemas median ${baselineS.toFixed(2)} s; ratio ${(doctorS / baselineS).toFixed(1)}`)
      return {
        schemas: SCHEMAS,
        doctor_s: round2(doctorS),
        findings,
        baseline_catalog_query_s: round2(baselineS),
        ratio_vs_catalog_query: round2(doctorS / baselineS),
        runs: RUNS,
        doctor_min_s: round2(Math.min(...doctor)),
        doctor_max_s: round2(Math.max(...doctor)),
        server_version: version,
        spurious_not_found: spurious.count
      }
    } finally {
      folder.cleanup()
      await sequelize.close()
    }
  })
  return { ...result, wall_s: round2(elapsedSeconds()) }
})
