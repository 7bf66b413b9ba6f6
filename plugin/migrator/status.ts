/**
 * `migrate status` / `--dry-run`: which migrations have not run, where, from the ledgers alone. It
 * only reads (a few queries, whatever the number of schemas) and takes no lock: it answers while a
 * migrate holds the migration lock, and what it reports may be changing under such a run.
 */
import { QueryTypes, type Sequelize } from 'sequelize'
import { SCHEMA_TABLE, TENANT_MIGRATION_TABLE } from '../../models/index.js'
import { runWithSchema } from '../context.js'
import { BoardinghouseErrors } from '../errors.js'
import { TEMPLATE_SCHEMA, describe, quoteIdent, quoteLiteral } from '../names.js'
import type { LoadedMigration } from './files.js'
import { registeredSchemas, select, targetingOf, type MigrationTargeting } from './targets.js'

export interface SchemaStatus {
  schema: string
  /** Tenant migrations not recorded in the schema's ledger, in the order they would run. */
  pending: string[]
}

export interface MigrationStatus {
  /** Shared migrations (the library's, then the app's) that have not run in public. */
  shared: string[]
  /** Tenant migrations that have not run in `__template__` (it migrates first, whatever the targeting). */
  template: string[]
  /** Targeted tenant schemas that are behind, by name, each with what it lacks. */
  behind: SchemaStatus[]
  /** Targeted tenant schemas at the head. */
  upToDateSchemas: number
  /** Tenant schemas the targeting covers (every registered one without `schemas`/`exclude`). */
  targetedSchemas: number
  /** Patterns of `schemas` that matched no schema, and of `exclude` that left none out. */
  unmatched: string[]
}

export interface StatusSets { library: LoadedMigration[], shared: LoadedMigration[], tenant: LoadedMigration[] }

/** Reads the status; `targeting` is validated like migrate's (FST_BH_INVALID_INPUT). */
export async function migrationStatus (sequelize: Sequelize, sharedMigrationsTable: string, sets: StatusSets, targeting: MigrationTargeting): Promise<MigrationStatus> {
  if (typeof targeting !== 'object' || targeting === null || Array.isArray(targeting)) {
    throw new BoardinghouseErrors.INVALID_INPUT(`migrationStatus's targeting must be an object, not ${describe(targeting)}`)
  }
  for (const key of Object.keys(targeting)) {
    if (key !== 'schemas' && key !== 'exclude') throw new BoardinghouseErrors.INVALID_INPUT(`migrationStatus has no option ${describe(key)}`)
  }
  const target = targetingOf(targeting)
  return await runWithSchema(null, async () => {
    const q = async <T extends object>(sql: string, replacements: Record<string, unknown> = {}): Promise<T[]> =>
      await sequelize.query<T>(sql, { replacements, type: QueryTypes.SELECT, logging: false })
    const [present] = await q<{ lib: boolean, app: boolean, ledger: boolean, registry: boolean }>(
      `SELECT to_regclass('public.boardinghouse_meta') IS NOT NULL AS lib, to_regclass(:app) IS NOT NULL AS app,
              to_regclass('public.${TENANT_MIGRATION_TABLE}') IS NOT NULL AS ledger, to_regclass('public.${SCHEMA_TABLE}') IS NOT NULL AS registry`,
      { app: `public.${quoteIdent(sharedMigrationsTable)}` })

    // Shared: what the two umzug storages (SequelizeStorage, column "name") recorded.
    const ran = new Set<string>()
    if (present?.lib === true) for (const r of await q<{ name: string }>('SELECT name FROM public.boardinghouse_meta')) ran.add(r.name)
    const appRan = new Set<string>()
    if (present?.app === true) for (const r of await q<{ name: string }>(`SELECT name FROM public.${quoteIdent(sharedMigrationsTable)}`)) appRan.add(r.name)
    const shared = [...sets.library.filter((m) => !ran.has(m.name)), ...sets.shared.filter((m) => !appRan.has(m.name))].map((m) => m.name)

    // Tenants: the template and every schema behind, with its pending names, in one query.
    const names = sets.tenant.map((m) => m.name)
    const all = present?.registry === true ? await registeredSchemas(sequelize) : []
    const selection = target === null ? { schemas: all, unmatched: [] } : select(all, target)
    const targeted = new Set(selection.schemas)
    let rows: Array<{ schema_name: string, pending: string[] }>
    if (names.length === 0) {
      rows = []
    } else if (present?.ledger !== true) {
      rows = [TEMPLATE_SCHEMA, ...all].map((schema) => ({ schema_name: schema, pending: names }))
    } else {
      rows = await q<{ schema_name: string, pending: string[] }>(
        `SELECT s.schema_name, ARRAY(SELECT u.n FROM unnest(ARRAY[:names]::text[]) WITH ORDINALITY u(n, i)
                                      WHERE NOT EXISTS (SELECT 1 FROM public.${TENANT_MIGRATION_TABLE} m WHERE m.schema_name = s.schema_name AND m.name = u.n)
                                      ORDER BY u.i) AS pending
         FROM (SELECT ${quoteLiteral(TEMPLATE_SCHEMA)}::text AS schema_name${present.registry ? ` UNION ALL SELECT schema_name FROM public.${SCHEMA_TABLE}` : ''}) s
         WHERE (SELECT count(*) FROM public.${TENANT_MIGRATION_TABLE} m WHERE m.schema_name = s.schema_name AND m.name = ANY(ARRAY[:names]::text[])) < :count`,
        { names, count: names.length })
    }
    const template = rows.find((r) => r.schema_name === TEMPLATE_SCHEMA)?.pending ?? []
    const behind = rows.filter((r) => r.schema_name !== TEMPLATE_SCHEMA && targeted.has(r.schema_name))
      .map((r) => ({ schema: r.schema_name, pending: r.pending }))
      .sort((a, b) => a.schema < b.schema ? -1 : a.schema > b.schema ? 1 : 0)
    return { shared, template, behind, upToDateSchemas: targeted.size - behind.length, targetedSchemas: targeted.size, unmatched: selection.unmatched }
  })
}
