/**
 * bench:memory: PostgreSQL backend memory of a pooled connection serving many tenants. A backend
 * keeps, for its whole life, what it cached for each table it touched (relation and catalog caches,
 * plans, the audit trigger's compiled PL/pgSQL): without recycling it grows with every tenant.
 *
 *   npm run bench:memory        (DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/postgres;
 *                                BENCH_TENANTS=100 for a quick smoke run instead of 1,000)
 *
 * The example app's `items` table, audited; the pool has ONE connection (every query lands on the
 * same backend: the worst case, as in the report). Per tenant: create, read, update, delete an item.
 * Backend memory is the sum of pg_backend_memory_contexts (PostgreSQL 14+) of the pool's backend,
 * sampled every 25 tenants; the maximum sample is reported. Three passes, each on a fresh Sequelize:
 *   1. default:          the library's defaults (a pooled connection is recycled once it served
 *                        more than DEFAULT_POOL_MAX_SCHEMAS = 500 tenant schemas)
 *   2. no_recycling:     `pool: { maxUses: 0 }` (never recycled): the per-schema cost
 *   3. legacy_trigger:   no recycling, with the audit trigger function as it was before migration
 *                        20260104000000 (the whole body in the trigger function, compiled per table)
 * Prints progress lines, then one JSON object as the last line.
 */
import { QueryTypes, Sequelize, type Model, type ModelStatic } from 'sequelize'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import { DEFAULT_POOL_MAX_SCHEMAS, poolMaxUses } from '../plugin/db.js'
import { defineExampleModels } from '../example/models/index.js'
import { fileURLToPath } from 'node:url'
import { log, round2, runBench, serverVersion, tenantCount, withBenchDatabase } from './common.js'

const TENANT_MIGRATIONS = fileURLToPath(new URL('../example/migrations/tenant/', import.meta.url))
const TENANTS = tenantCount()
const SAMPLE_EVERY = 25

interface Pass { backendMb: number, initialMb: number, finalMb: number, perSchemaKb: number, maxUses: number }

function instance (url: string, maxUses?: number): { sequelize: Sequelize, bh: Boardinghouse, Item: ModelStatic<Model> } {
  const sequelize = new Sequelize(url, { dialect: 'postgres', logging: false, pool: { max: 1, min: 0, idle: 600_000, acquire: 120_000, ...(maxUses !== undefined ? { maxUses } : {}) } })
  defineExampleModels(sequelize)
  const bh = new Boardinghouse({ sequelize, tenantModels: ['Item'], tenantMigrations: TENANT_MIGRATIONS, auditModels: ['Item'] })
  return { sequelize, bh, Item: sequelize.models.Item as ModelStatic<Model> }
}

async function backendBytes (sequelize: Sequelize): Promise<number> {
  const rows = await sequelize.query<{ bytes: string }>('SELECT sum(total_bytes)::bigint AS bytes FROM pg_backend_memory_contexts', { type: QueryTypes.SELECT })
  return Number(rows[0]?.bytes ?? 0)
}

async function serve (url: string, schemas: string[], label: string, maxUses?: number): Promise<Pass> {
  const { sequelize, bh, Item } = instance(url, maxUses)
  try {
    const initial = await backendBytes(sequelize)
    let max = initial
    for (const [i, schema] of schemas.entries()) {
      await bh.runInSchema(schema, async () => {
        const item = await Item.create({ title: 'anvil' })
        await Item.findAll({ limit: 10 })
        await item.update({ title: 'big anvil' })
        await item.destroy()
      }, { userId: i })
      if ((i + 1) % SAMPLE_EVERY === 0 || i === schemas.length - 1) max = Math.max(max, await backendBytes(sequelize))
    }
    const final = await backendBytes(sequelize)
    const pass = { backendMb: round2(max / 2 ** 20), initialMb: round2(initial / 2 ** 20), finalMb: round2(final / 2 ** 20), perSchemaKb: round2((max - initial) / schemas.length / 1024), maxUses: poolMaxUses(sequelize) }
    log(`${label}: backend ${pass.initialMb} MB at start, max ${pass.backendMb} MB, ${pass.perSchemaKb} KB per schema (maxUses ${pass.maxUses})`)
    return pass
  } finally {
    await sequelize.close()
  }
}

runBench('bench:memory', async () => await withBenchDatabase(async (url) => {
  const setup = instance(url)
  const server = await serverVersion(setup.sequelize)
  if (Number(server.split('.')[0]) < 14) throw new Error(`PostgreSQL ${server}: pg_backend_memory_contexts needs 14 or later`)
  const schemas = Array.from({ length: TENANTS }, (_, i) => `t${String(i).padStart(5, '0')}`)
  try {
    await setup.bh.migrate()
    for (const [i, schema] of schemas.entries()) {
      await setup.bh.createSchema(schema)
      if ((i + 1) % 250 === 0) log(`created ${i + 1} schemas`)
    }
  } finally {
    await setup.sequelize.close()
  }
  const defaults = await serve(url, schemas, 'default')
  const unbounded = await serve(url, schemas, 'no_recycling', 0)
  // The audit trigger function as it was before the shared writer (the new migration's down()).
  const legacy = instance(url)
  try {
    const file = '../migrations/20260104000000-boardinghouse-audit-shared-writer.js'
    const migration = await import(file) as { down: (p: { context: { queryInterface: unknown } }) => Promise<void> }
    await migration.down({ context: { queryInterface: legacy.sequelize.getQueryInterface() } })
  } finally {
    await legacy.sequelize.close()
  }
  const legacyTrigger = await serve(url, schemas, 'legacy_trigger', 0)
  return {
    bench: 'memory',
    schemas: TENANTS,
    pool_max: 1,
    queries_per_schema: 5,
    backend_mb_default: defaults.backendMb,
    backend_mb_per_schema: Math.round(defaults.perSchemaKb / 1024 * 10_000) / 10_000,
    default_max_schemas_per_connection: DEFAULT_POOL_MAX_SCHEMAS,
    backend_mb_no_recycling: unbounded.backendMb,
    backend_kb_per_schema_no_recycling: unbounded.perSchemaKb,
    backend_mb_legacy_trigger_no_recycling: legacyTrigger.backendMb,
    backend_kb_per_schema_legacy_trigger_no_recycling: legacyTrigger.perSchemaKb,
    backend_mb_initial: defaults.initialMb,
    server_version: server,
    node: process.version
  }
}))
