/**
 * The template's write guard, the audit triggers, and the template's bookkeeping, as the migrator
 * keeps them up to date (each function runs on the caller's context: transaction and search_path).
 */
import { QueryTypes, type Sequelize } from 'sequelize'
import { SCHEMA_TABLE } from '../../models/index.js'
import { GUARD_TRIGGER_PREFIX } from '../clone/index.js'
import { tablesOfSchema } from './catalog.js'
import { TEMPLATE_SCHEMA, quoteIdent, quoteLiteral } from '../names.js'

export const GUARD_TRIGGER = `${GUARD_TRIGGER_PREFIX}_template_guard`


/** An audited model's table and the trigger arguments. */
export interface AuditTarget {
  model: string
  table: string
  tenant: boolean
  pkColumn: string
  reprColumn: string
}

export const AUDIT_TRIGGER = 'boardinghouse_audit'


/**
 * The guard covers tables from the migrations before the current one; a migration that creates a
 * table and fills it in one go is caught here, and its schema's run rolls back.
 */
export async function assertTemplateEmpty (sequelize: Sequelize): Promise<void> {
  const tables = await sequelize.query<{ relname: string }>(
    `SELECT t.relname FROM (${tablesOfSchema(':template')}) t ORDER BY 1`,
    { replacements: { template: TEMPLATE_SCHEMA }, type: QueryTypes.SELECT, logging: false })
  if (tables.length === 0) return
  const probe = tables.map(({ relname }) =>
    `SELECT ${quoteLiteral(relname)} AS relname WHERE EXISTS (SELECT 1 FROM ${quoteIdent(TEMPLATE_SCHEMA)}.${quoteIdent(relname)})`).join(' UNION ALL ')
  const filled = await sequelize.query<{ relname: string }>(probe, { type: QueryTypes.SELECT, logging: false })
  if (filled.length > 0) {
    throw new Error(`schema "${TEMPLATE_SCHEMA}" holds the tenant template and no data, but table ${filled.map((f) => `"${f.relname}"`).join(', ')} got rows; a migration that writes rows should skip it: if (context.isTemplate) return`)
  }
}

/** Counts a change of the template's structure: part of the clone DDL cache key. */
export async function bumpTemplateGeneration (sequelize: Sequelize): Promise<void> {
  await sequelize.query('UPDATE public.boardinghouse_template_state SET generation = generation + 1', { logging: false })
}

/** (schema, target) pairs whose table lacks the audit trigger: in the template, or in every tenant schema. */
export async function missingAuditTriggers (sequelize: Sequelize, targets: AuditTarget[], where: 'public' | 'template' | 'tenants'): Promise<Array<{ schema: string, target: AuditTarget }>> {
  const tenantTargets = targets.filter((a) => a.tenant === (where !== 'public'))
  if (tenantTargets.length === 0) return []
  const schemas = where === 'tenants'
    ? `SELECT schema_name FROM public.${SCHEMA_TABLE}`
    : `SELECT ${quoteLiteral(where === 'public' ? 'public' : TEMPLATE_SCHEMA)}::text AS schema_name`
  // The audit triggers are read once (hashed), not probed per table: with thousands of schemas a
  // per-row probe planned on stale catalog statistics can be a scan of pg_trigger for each table.
  const rows = await sequelize.query<{ schema_name: string, relname: string }>(
    `WITH audited AS MATERIALIZED (SELECT tgrelid FROM pg_catalog.pg_trigger WHERE tgname = :trigger)
     SELECT s.schema_name, c.relname FROM (${schemas}) s
     JOIN pg_catalog.pg_namespace n ON n.nspname = s.schema_name
     JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname IN (:tables) AND c.relkind IN ('r', 'p')
     WHERE c.oid NOT IN (SELECT tgrelid FROM audited)
     ORDER BY 1, 2`,
    { replacements: { tables: tenantTargets.map((a) => a.table), trigger: AUDIT_TRIGGER }, type: QueryTypes.SELECT, logging: false })
  const byTable = new Map(tenantTargets.map((a) => [a.table, a]))
  return rows.map((r) => ({ schema: r.schema_name, target: byTable.get(r.relname) as AuditTarget }))
}

/** Creates the audit trigger on each (schema, table) given (from missingAuditTriggers); returns how many. */
export async function ensureAuditTriggers (sequelize: Sequelize, pairs: Array<{ schema: string, target: AuditTarget }>): Promise<number> {
  for (const { schema, target } of pairs) {
    const table = `${quoteIdent(schema)}.${quoteIdent(target.table)}`
    await sequelize.query(`CREATE TRIGGER ${quoteIdent(AUDIT_TRIGGER)} AFTER INSERT OR UPDATE OR DELETE ON ${table}
      FOR EACH ROW EXECUTE FUNCTION public.boardinghouse_audit(${[target.model, target.pkColumn, target.reprColumn].map(quoteLiteral).join(', ')})`, { logging: false })
  }
  return pairs.length
}

/** Attaches the row guard to every template table that lacks it: the database refuses rows in the template. Returns how many. */
export async function guardTemplate (sequelize: Sequelize): Promise<number> {
  const tables = await sequelize.query<{ relname: string }>(
    `SELECT c.relname FROM (${tablesOfSchema(':template')}) c
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = :guard)`,
    { replacements: { template: TEMPLATE_SCHEMA, guard: GUARD_TRIGGER }, type: QueryTypes.SELECT, logging: false })
  for (const { relname } of tables) {
    await sequelize.query(`CREATE TRIGGER ${quoteIdent(GUARD_TRIGGER)} BEFORE INSERT OR UPDATE ON ${quoteIdent(TEMPLATE_SCHEMA)}.${quoteIdent(relname)}
      FOR EACH ROW EXECUTE FUNCTION public.boardinghouse_refuse_template_write()`, { logging: false })
  }
  return tables.length
}
