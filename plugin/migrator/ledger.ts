/** The per-schema ledger (public.boardinghouse_tenant_migration) as umzug storage. */
import { QueryTypes, type Sequelize } from 'sequelize'
import type { UmzugStorage } from 'umzug'
import { TENANT_MIGRATION_TABLE } from '../../models/index.js'
import type { MigrationContext } from './context.js'
import { causeMessage } from './failure.js'
import { quoteLiteral } from '../names.js'

/** A migration storage that can also tell the SQL reading what ran (to send it with the schema's lock, in one message). */
export interface LedgerStorage extends UmzugStorage<MigrationContext> {
  /** One SELECT of the executed names (column `name`), with the schema as a literal. */
  readonly executedSql: string
}

/** umzug storage: the rows of the per-schema ledger for one schema. */
export function ledgerStorage (sequelize: Sequelize, schema: string): LedgerStorage {
  const executedSql = `SELECT name FROM public.${TENANT_MIGRATION_TABLE} WHERE schema_name = ${quoteLiteral(schema)} ORDER BY name`
  return {
    executedSql,
    async executed () {
      // Read inside the schema's transaction, after its lock: what a concurrent run committed counts.
      const rows = await sequelize.query<{ name: string }>(executedSql, { type: QueryTypes.SELECT, logging: false })
      return rows.map((r) => r.name)
    },
    async logMigration ({ name }) {
      let rows: Array<{ name: string }>
      try {
        rows = await sequelize.query<{ name: string }>(`INSERT INTO public.${TENANT_MIGRATION_TABLE} (schema_name, name) VALUES (:schema, :name)
          ON CONFLICT (schema_name, name) DO NOTHING RETURNING name`, { replacements: { schema, name }, type: QueryTypes.SELECT, logging: false })
      } catch (err) {
        throw Object.assign(new Error(`recording it in the ledger failed: ${causeMessage(err)}`, { cause: err }), { migration: { name } })
      }
      if (rows.length === 0) {
        throw Object.assign(new Error(`it is already recorded in the ledger (public.${TENANT_MIGRATION_TABLE}) for schema "${schema}": something else recorded it during this run`), { migration: { name } })
      }
    },
    async unlogMigration ({ name }) {
      await sequelize.query(`DELETE FROM public.${TENANT_MIGRATION_TABLE} WHERE schema_name = :schema AND name = :name`,
        { replacements: { schema, name }, logging: false })
    }
  }
}
