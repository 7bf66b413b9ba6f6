/**
 * The fleet checks of doctor around the structure comparison: the registry against PostgreSQL's
 * schemas, the ledgers against the template's head, rows left behind by schemas that are gone,
 * audit triggers, tenant tables in public, and the template's emptiness and guard. Each check is
 * one query over every schema.
 */
import type { Sequelize } from 'sequelize'
import { DOMAIN_TABLE, MEMBERSHIP_TABLE, SCHEMA_TABLE, TENANT_MIGRATION_TABLE } from '../../models/index.js'
import { BoardinghouseErrors } from '../errors.js'
import { AUDIT_TRIGGER, GUARD_TRIGGER, type AuditTarget } from '../migrator/index.js'
import { missingAuditTriggers } from '../migrator/triggers.js'
import { TEMPLATE_SCHEMA, quoteLiteral } from '../names.js'
import type { Query } from './structure.js'
import type { DoctorFinding } from './types.js'

const T = quoteLiteral(TEMPLATE_SCHEMA)
const TEMPLATE_OID = `(SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = ${T})`
const LIBRARY_TABLES = [SCHEMA_TABLE, MEMBERSHIP_TABLE, TENANT_MIGRATION_TABLE, DOMAIN_TABLE]

/** Throws FST_BH_NOT_MIGRATED unless the library's tables and the template exist. */
export async function assertMigrated (query: Query): Promise<void> {
  const [row] = await query<{ missing: string[], template: boolean }>(
    `SELECT ARRAY(SELECT t FROM unnest(ARRAY[:tables]::text[]) WITH ORDINALITY AS u(t, o) WHERE to_regclass('public.' || t) IS NULL ORDER BY o) AS missing,
            EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = ${T}) AS template`, { tables: LIBRARY_TABLES })
  const missing = row?.missing ?? LIBRARY_TABLES
  if (missing.length === LIBRARY_TABLES.length) {
    throw new BoardinghouseErrors.NOT_MIGRATED(`it holds none of the library's tables (public.${SCHEMA_TABLE}, public.${TENANT_MIGRATION_TABLE}…)`)
  }
  if (missing.length > 0) throw new BoardinghouseErrors.NOT_MIGRATED(`table ${missing.map((t) => `public.${t}`).join(', ')} is missing`)
  if (row?.template !== true) throw new BoardinghouseErrors.NOT_MIGRATED(`schema ${TEMPLATE_SCHEMA} is missing`)
}

function plural (n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`
}

/** Registry, ledgers, orphan rows, public and the template: every check but the audit triggers and the structure. */
export async function fleetFindings (query: Query, tenantTables: string[]): Promise<{ schemas: number, findings: DoctorFinding[] }> {
  const findings: DoctorFinding[] = []

  // the registry against pg_namespace
  const [registry] = await query<{ present: number, missing: string[] | null }>(
    `SELECT count(*) FILTER (WHERE n.oid IS NOT NULL)::int AS present,
            array_agg(r.schema_name::text ORDER BY r.schema_name) FILTER (WHERE n.oid IS NULL) AS missing
     FROM public.${SCHEMA_TABLE} r LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = r.schema_name::name`)
  for (const schema of registry?.missing ?? []) {
    findings.push({ code: 'registry_without_schema', schema, message: `the registry lists schema "${schema}", which does not exist: restore it, or drop it from the registry with deleteSchema("${schema}", { drop: true })`, fixable: false })
  }

  // schemas that look like tenants (tables of the template's, or ledger rows) and are not registered;
  // a name starting with "_" is the library's own (the template, spare schemas), never a tenant's
  const unregistered = await query<{ schema: string, tables: number, ledger: number }>(
    `WITH candidates AS MATERIALIZED (
       SELECT n.oid, n.nspname FROM pg_catalog.pg_namespace n
       WHERE n.nspname NOT IN ('public', 'information_schema') AND left(n.nspname, 3) <> 'pg_' AND left(n.nspname, 1) <> '_'
         AND NOT EXISTS (SELECT 1 FROM public.${SCHEMA_TABLE} r WHERE r.schema_name::name = n.nspname)),
     template AS (SELECT t.relname FROM pg_catalog.pg_class t WHERE t.relnamespace = ${TEMPLATE_OID} AND t.relkind IN ('r', 'p')),
     tables AS (SELECT c.relnamespace AS oid, count(*)::int AS n FROM candidates k CROSS JOIN template
                JOIN pg_catalog.pg_class c ON c.relname = template.relname AND c.relnamespace = k.oid AND c.relkind IN ('r', 'p') GROUP BY 1),
     ledger AS (SELECT l.schema_name::name AS nspname, count(*)::int AS n FROM public.${TENANT_MIGRATION_TABLE} l
                WHERE l.schema_name::name IN (SELECT nspname FROM candidates) GROUP BY 1)
     SELECT k.nspname::text AS schema, coalesce(t.n, 0) AS tables, coalesce(l.n, 0) AS ledger
     FROM candidates k LEFT JOIN tables t ON t.oid = k.oid LEFT JOIN ledger l ON l.nspname = k.nspname
     WHERE t.n IS NOT NULL OR l.n IS NOT NULL ORDER BY 1`)
  for (const u of unregistered) {
    const signs = [u.tables > 0 ? `${plural(u.tables, 'table')} of the template's` : '', u.ledger > 0 ? plural(u.ledger, 'ledger row') : ''].filter((s) => s !== '').join(' and ')
    findings.push({ code: 'schema_without_registry', schema: u.schema, message: `schema "${u.schema}" looks like a tenant (${signs}) but the registry does not list it`, fixable: false, rows: u.ledger })
  }

  // each registered schema's ledger against the template's (its head)
  const ledgers = await query<{ schema: string, missing: string[], extra: string[] }>(
    `WITH head AS (SELECT name FROM public.${TENANT_MIGRATION_TABLE} WHERE schema_name = ${T}),
     s AS (SELECT r.schema_name::text AS schema FROM public.${SCHEMA_TABLE} r WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.nspname = r.schema_name::name))
     SELECT * FROM (
       SELECT s.schema,
         ARRAY(SELECT h.name FROM head h WHERE NOT EXISTS (SELECT 1 FROM public.${TENANT_MIGRATION_TABLE} l WHERE l.schema_name = s.schema AND l.name = h.name) ORDER BY 1) AS missing,
         ARRAY(SELECT l.name FROM public.${TENANT_MIGRATION_TABLE} l WHERE l.schema_name = s.schema AND NOT EXISTS (SELECT 1 FROM head h WHERE h.name = l.name) ORDER BY 1) AS extra
       FROM s) x
     WHERE cardinality(missing) > 0 OR cardinality(extra) > 0 ORDER BY 1`)
  for (const l of ledgers) {
    if (l.missing.length > 0) {
      findings.push({ code: 'ledger_behind', schema: l.schema, message: `schema "${l.schema}" is behind the template's ledger head by ${plural(l.missing.length, 'migration')}: ${l.missing.join(', ')} (run migrate)`, fixable: false, migrations: l.missing })
    }
    if (l.extra.length > 0) {
      findings.push({ code: 'ledger_ahead', schema: l.schema, message: `schema "${l.schema}"'s ledger lists ${plural(l.extra.length, 'migration')} the template's does not: ${l.extra.join(', ')}`, fixable: false, migrations: l.extra })
    }
  }

  // rows of schemas that do not exist
  const orphans = await query<{ what: 'membership' | 'domain' | 'ledger', schema: string, n: number, registered: boolean }>(
    `SELECT o.*, EXISTS (SELECT 1 FROM public.${SCHEMA_TABLE} r WHERE r.schema_name = o.schema) AS registered FROM (
       SELECT 'membership' AS what, m.schema_name::text AS schema, count(*)::int AS n FROM public.${MEMBERSHIP_TABLE} m
         WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.nspname = m.schema_name::name) GROUP BY 2
       UNION ALL
       SELECT 'domain', d.schema_name::text, count(*)::int FROM public.${DOMAIN_TABLE} d
         WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.nspname = d.schema_name::name) GROUP BY 2
       UNION ALL
       SELECT 'ledger', l.schema_name::text, count(*)::int FROM public.${TENANT_MIGRATION_TABLE} l
         WHERE l.schema_name <> ${T} AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.nspname = l.schema_name::name) GROUP BY 2) o
     ORDER BY 2, 1`)
  for (const o of orphans) {
    if (o.what === 'ledger') {
      findings.push({
        code: 'ledger_orphan',
        schema: o.schema,
        message: `${plural(o.n, 'ledger row')} of schema "${o.schema}", which does not exist${o.registered ? ' (kept while the registry lists it)' : ''}`,
        fixable: !o.registered,
        rows: o.n
      })
    } else {
      const noun = o.what === 'membership' ? plural(o.n, 'membership') : plural(o.n, 'domain')
      findings.push({ code: o.what === 'membership' ? 'membership_orphan' : 'domain_orphan', schema: o.schema, message: `${noun} of schema "${o.schema}", which does not exist`, fixable: false, rows: o.n })
    }
  }

  // tables of public named like a tenant model's table or a table of the template
  const inPublic = await query<{ table: string, model: boolean }>(
    `SELECT c.relname::text AS table, c.relname::text IN (:tables) AS model FROM pg_catalog.pg_class c
     WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
       AND (c.relname::text IN (:tables) OR c.relname IN (SELECT t.relname FROM pg_catalog.pg_class t WHERE t.relnamespace = ${TEMPLATE_OID} AND t.relkind IN ('r', 'p', 'v', 'm', 'f')))
     ORDER BY 1`, { tables: tenantTables.length > 0 ? tenantTables : [''] })
  for (const p of inPublic) {
    findings.push({ code: 'tenant_table_in_public', schema: 'public', object: p.table, message: `table public.${p.table} has the name of ${p.model ? 'a tenant model\'s table' : 'a table of the template'}: a query run with no schema active would reach it`, fixable: false })
  }

  // the template: no rows, and the row guard on every table
  const template = await query<{ table: string, rows: boolean, guard: string | null }>(
    `SELECT c.relname::text AS table,
       (xpath('/row/x/text()', query_to_xml(format('SELECT EXISTS (SELECT 1 FROM %I.%I) AS x', ${T}, c.relname), false, true, '')))[1]::text = 'true' AS rows,
       (SELECT tg.tgenabled::text FROM pg_catalog.pg_trigger tg WHERE tg.tgrelid = c.oid AND tg.tgname = :guard) AS guard
     FROM pg_catalog.pg_class c WHERE c.relnamespace = ${TEMPLATE_OID} AND c.relkind IN ('r', 'p') ORDER BY 1`, { guard: GUARD_TRIGGER })
  for (const t of template) {
    if (t.rows) findings.push({ code: 'template_has_rows', schema: TEMPLATE_SCHEMA, object: t.table, message: `template table ${TEMPLATE_SCHEMA}.${t.table} holds rows: every schema created now gets none of them, and the template must stay empty`, fixable: false })
    if (t.guard === null || t.guard === 'D') {
      findings.push({ code: 'template_guard_missing', schema: TEMPLATE_SCHEMA, object: t.table, message: `template table ${TEMPLATE_SCHEMA}.${t.table} ${t.guard === null ? 'lacks its row guard (migrate adds it)' : 'has its row guard disabled'}`, fixable: false })
    }
  }
  return { schemas: registry?.present ?? 0, findings }
}

/** The audited tables lacking the audit trigger: in public, the template and every registered schema. */
export async function auditFindings (sequelize: Sequelize, targets: AuditTarget[]): Promise<DoctorFinding[]> {
  const findings: DoctorFinding[] = []
  for (const where of ['public', 'template', 'tenants'] as const) {
    for (const { schema, target } of await missingAuditTriggers(sequelize, targets, where)) {
      findings.push(auditFinding(schema, target, `table ${schema}.${target.table} (model ${target.model}) lacks the audit trigger`))
    }
  }
  return findings
}

export function auditFinding (schema: string, target: AuditTarget, message: string): DoctorFinding {
  return { code: 'audit_trigger_missing', schema, object: target.table, message, fixable: true }
}

/**
 * A missing audit trigger is one finding, not two: the structure comparison's trigger findings for
 * `table.boardinghouse_audit` are left out where the audit check reports the trigger missing in that
 * schema, or in the template (the schemas that have it are right).
 */
export function withoutAuditDuplicates (findings: DoctorFinding[]): DoctorFinding[] {
  const missing = new Set(findings.filter((f) => f.code === 'audit_trigger_missing').map((f) => `${f.schema ?? ''}\u0000${f.object ?? ''}`))
  return findings.filter((f) => {
    if (f.code !== 'trigger_differs' || f.difference === 'changed' || f.object === undefined || !f.object.endsWith(`.${AUDIT_TRIGGER}`)) return true
    const table = f.object.slice(0, -AUDIT_TRIGGER.length - 1)
    return !missing.has(`${f.schema ?? ''}\u0000${table}`) && !missing.has(`${TEMPLATE_SCHEMA}\u0000${table}`)
  })
}
