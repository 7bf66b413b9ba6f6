/**
 * The domain table's writes: map a host to a schema, unmap it. Like the registry writes of
 * schema-admin.ts, each change sends its NOTIFY inside its own transaction (the change and the
 * notice commit together) and invalidates this process's registry after the commit; the hosts are
 * read from the registry snapshot (one query loads schemas, memberships and domains).
 */
import { QueryTypes, type Sequelize, type Transaction } from 'sequelize'
import { DOMAIN_TABLE, SCHEMA_TABLE } from '../models/index.js'
import { runWithSchema } from './context.js'
import { BoardinghouseErrors } from './errors.js'
import { encodeNotice } from './events.js'
import { normalizeHost } from './host.js'
import { assertSchemaName, describe } from './names.js'
import { CHANNEL } from './notify.js'
import { sqlState } from './pg-errors.js'
import type { DomainInfo, SchemaRegistry } from './registry.js'

export interface AddDomainOptions {
  /** Make it the schema's primary domain (the previous primary, if any, stops being one). Unset: a new host is not primary, an existing one keeps its flag. */
  primary?: boolean
}

export interface DomainAdminDeps {
  sequelize: Sequelize
  registry: SchemaRegistry
  /** The payload of this process's change notices (read at each change). */
  noticeId: () => string
  /** Emits a committed change's lifecycle event in this process (domainAdded, domainRemoved). */
  emit?: (kind: 'domainAdded' | 'domainRemoved', key: { schema: string, host: string }) => void
}

interface DomainRow { host: string, schema_name: string, is_primary: boolean, created_at: Date | string }

function infoOf (row: DomainRow): DomainInfo {
  return { host: row.host, schema: row.schema_name, isPrimary: row.is_primary, createdAt: new Date(row.created_at) }
}

export class DomainAdmin {
  constructor (private readonly deps: DomainAdminDeps) {}

  private async inTransaction<T> (fn: (transaction: Transaction) => Promise<T>): Promise<T> {
    return await runWithSchema(null, async () => await this.deps.sequelize.transaction(async (transaction) => await fn(transaction)))
  }

  private async select<T extends object> (sql: string, replacements: Record<string, unknown>, transaction: Transaction): Promise<T[]> {
    return await this.deps.sequelize.query<T>(sql, { replacements, type: QueryTypes.SELECT, transaction, logging: false })
  }

  /**
   * Maps `host` (normalised first) to `schema`. Idempotent for the same schema; a host mapped to
   * another schema is refused with FST_BH_DOMAIN_TAKEN (409), an unknown schema with
   * FST_BH_SCHEMA_NOT_FOUND (404), an invalid host with FST_BH_INVALID_HOST (400): nothing changes.
   */
  async addDomain (schema: string, host: string, options: AddDomainOptions = {}): Promise<DomainInfo> {
    assertSchemaName(schema)
    const normalized = normalizeHost(host, { allowPort: false })
    if (typeof options !== 'object' || options === null) throw new BoardinghouseErrors.INVALID_INPUT(`the options of addDomain must be an object, not ${describe(options)}`)
    const primary = options.primary
    if (primary !== undefined && typeof primary !== 'boolean') throw new BoardinghouseErrors.INVALID_INPUT(`addDomain's primary must be a boolean, not ${describe(primary)}`)
    let info: DomainInfo
    let added = false
    try {
      info = await this.inTransaction(async (transaction) => {
        // The schema row, locked against other domain changes of the same schema (grants, which only
        // take KEY SHARE, are not blocked): one primary is decided at a time.
        const target = await this.select(`SELECT 1 FROM public.${SCHEMA_TABLE} WHERE schema_name = :schema FOR NO KEY UPDATE`, { schema }, transaction)
        if (target.length === 0) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(schema)
        const [existing] = await this.select<DomainRow>(`SELECT host, schema_name, is_primary, created_at FROM public.${DOMAIN_TABLE} WHERE host = :host FOR UPDATE`, { host: normalized }, transaction)
        if (existing !== undefined && existing.schema_name !== schema) throw new BoardinghouseErrors.DOMAIN_TAKEN(normalized)
        if (primary === true) {
          await this.select(`UPDATE public.${DOMAIN_TABLE} SET is_primary = false WHERE schema_name = :schema AND is_primary AND host <> :host RETURNING 1`, { schema, host: normalized }, transaction)
        }
        const isPrimary = primary ?? existing?.is_primary ?? false
        const [row] = await this.select<DomainRow>(
          `INSERT INTO public.${DOMAIN_TABLE} (host, schema_name, is_primary, created_at) VALUES (:host, :schema, :isPrimary, now())
           ON CONFLICT (host) DO UPDATE SET is_primary = EXCLUDED.is_primary WHERE ${DOMAIN_TABLE}.schema_name = EXCLUDED.schema_name
           RETURNING host, schema_name, is_primary, created_at`, { host: normalized, schema, isPrimary }, transaction)
        if (row === undefined) throw new BoardinghouseErrors.DOMAIN_TAKEN(normalized)
        added = existing === undefined
        const payload = added ? encodeNotice(this.deps.noticeId(), 'domainAdded', { schema, host: normalized }) : this.deps.noticeId()
        await this.select('SELECT pg_notify(:channel, :payload)', { channel: CHANNEL, payload }, transaction)
        return infoOf(row)
      })
    } catch (err) {
      // a concurrent addDomain of the same host for another schema committed first
      if (sqlState(err) === '23505') throw new BoardinghouseErrors.DOMAIN_TAKEN(normalized, { cause: err })
      throw err
    }
    this.deps.registry.invalidate()
    if (added) this.deps.emit?.('domainAdded', { schema, host: normalized })
    return info
  }

  /** Unmaps `host` (normalised first); resolves to false when it was not mapped. */
  async removeDomain (host: string): Promise<boolean> {
    const normalized = normalizeHost(host, { allowPort: false })
    const schema = await this.inTransaction(async (transaction) => {
      const [deleted] = await this.select<{ schema_name: string }>(`DELETE FROM public.${DOMAIN_TABLE} WHERE host = :host RETURNING schema_name`, { host: normalized }, transaction)
      if (deleted === undefined) return null
      // the notice commits with the change, and carries its event
      await this.select('SELECT pg_notify(:channel, :payload)', { channel: CHANNEL, payload: encodeNotice(this.deps.noticeId(), 'domainRemoved', { schema: deleted.schema_name, host: normalized }) }, transaction)
      return deleted.schema_name
    })
    if (schema === null) return false
    this.deps.registry.invalidate()
    this.deps.emit?.('domainRemoved', { schema, host: normalized })
    return true
  }
}
