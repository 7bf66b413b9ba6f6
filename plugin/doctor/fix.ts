/**
 * `doctor({ fix: true })`: repairs what is safe to repair without a person's judgement, in one
 * transaction (all of it, or nothing on failure), under the migration lock (a migrate or a schema
 * creation waits, and is waited for):
 * - audit triggers missing in public, the template or a registered schema (as migrate adds them;
 *   a template change bumps its generation: cached clone DDL is refreshed);
 * - ledger rows of schemas that neither exist nor are registered.
 */
import { QueryTypes, type Sequelize } from 'sequelize'
import { SCHEMA_TABLE, TENANT_MIGRATION_TABLE } from '../../models/index.js'
import { runWithSchema } from '../context.js'
import { MIGRATION_LOCK_KEY, WAITING_MARKER, type AuditTarget } from '../migrator/index.js'
import { waitForLock } from '../migrator/lock.js'
import { bumpTemplateGeneration, ensureAuditTriggers, missingAuditTriggers } from '../migrator/triggers.js'
import { TEMPLATE_SCHEMA, quoteLiteral } from '../names.js'
import { assertMigrated, auditFinding } from './fleet.js'
import { queryOn } from './structure.js'
import type { DoctorFinding } from './types.js'

/** Repairs; resolves to what was repaired. Calls `onTemplateChanged` after a commit that changed the template. */
export async function applyFixes (sequelize: Sequelize, targets: AuditTarget[], onTemplateChanged: () => void): Promise<DoctorFinding[]> {
  let templateChanged = false
  const fixed = await runWithSchema(null, async () => await sequelize.transaction(async (transaction) =>
    await runWithSchema(null, async () => {
      const query = queryOn(sequelize)
      await assertMigrated(query)
      // Tried, never waited for in a statement: a waiting statement holds a snapshot, and an online
      // migration's CREATE INDEX CONCURRENTLY waits for every older snapshot (both would hang).
      await waitForLock(async () => (await sequelize.query<{ ok: boolean }>(`SELECT pg_try_advisory_xact_lock(${MIGRATION_LOCK_KEY}) AS ok ${WAITING_MARKER}`,
        { type: QueryTypes.SELECT, logging: false }))[0]?.ok === true)
      const out: DoctorFinding[] = []
      for (const where of ['public', 'template', 'tenants'] as const) {
        const pairs = await missingAuditTriggers(sequelize, targets, where)
        if (pairs.length === 0) continue
        await ensureAuditTriggers(sequelize, pairs)
        if (where === 'template') {
          await bumpTemplateGeneration(sequelize)
          templateChanged = true
        }
        for (const { schema, target } of pairs) out.push(auditFinding(schema, target, `created the audit trigger on ${schema}.${target.table} (model ${target.model})`))
      }
      const deleted = await sequelize.query<{ schema: string, n: number }>(
        `WITH d AS (DELETE FROM public.${TENANT_MIGRATION_TABLE} l
                    WHERE l.schema_name <> ${quoteLiteral(TEMPLATE_SCHEMA)}
                      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.nspname = l.schema_name::name)
                      AND NOT EXISTS (SELECT 1 FROM public.${SCHEMA_TABLE} r WHERE r.schema_name = l.schema_name)
                    RETURNING l.schema_name)
         SELECT schema_name::text AS schema, count(*)::int AS n FROM d GROUP BY 1 ORDER BY 1`,
        { type: QueryTypes.SELECT, logging: false })
      for (const d of deleted) {
        out.push({ code: 'ledger_orphan', schema: d.schema, message: `deleted ${d.n} ledger ${d.n === 1 ? 'row' : 'rows'} of schema "${d.schema}", which does not exist`, fixable: true, rows: d.n })
      }
      return out
    }, { transaction })))
  if (templateChanged) onTemplateChanged()
  return fixed
}
