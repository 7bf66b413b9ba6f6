/**
 * The clone DDL cache: the template's DDL is generated from the catalog once per template version
 * and generator format, stored in public.boardinghouse_template_ddl for every process, and kept in
 * memory by each Boardinghouse. A clone transaction checks the version it was generated for.
 */
import { SCHEMA_TABLE, TENANT_MIGRATION_TABLE } from '../../models/index.js'
import type { RawConnection } from '../db.js'
import { BoardinghouseErrors } from '../errors.js'
import { TEMPLATE_SCHEMA, quoteLiteral } from '../names.js'
import { generateCloneDDL } from './generate.js'

export interface CloneDDL {
  /** The template's version (ledger and generation) the DDL was generated from. */
  version: string
  ddl: string
}

/** SQLSTATE raised inside the clone transaction when the template changed since the DDL was generated. */
export const STALE_TEMPLATE_STATE = 'BHTPL'

/** The template's version: its migrations and the generation counter migrate bumps on any other change of its structure. */
export const TEMPLATE_VERSION_SQL = `SELECT md5(coalesce((SELECT string_agg(name, ',' ORDER BY name) FROM public.${TENANT_MIGRATION_TABLE}
    WHERE schema_name = ${quoteLiteral(TEMPLATE_SCHEMA)}), '') || ':' || (SELECT generation FROM public.boardinghouse_template_state)) AS version`

/** A statement of a clone transaction: raises STALE_TEMPLATE_STATE unless the template is still at `version` (its DDL's). */
export function templateVersionCheck (version: string): string {
  return `DO $bh$ BEGIN IF (${TEMPLATE_VERSION_SQL}) IS DISTINCT FROM ${quoteLiteral(version)} THEN
         RAISE EXCEPTION 'the template changed since its DDL was read' USING ERRCODE = '${STALE_TEMPLATE_STATE}'; END IF; END $bh$`
}

/** Bump when generateCloneDDL's output changes for the same template: cached DDL of older formats is regenerated. */
export const CLONE_FORMAT = '1'
const TEMPLATE_DDL_TABLE = 'boardinghouse_template_ddl'

async function ensureMigrated (connection: RawConnection): Promise<void> {
  const { rows } = await connection.query(
    `SELECT to_regclass('public.${SCHEMA_TABLE}') IS NOT NULL AS registry,
            EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1) AS template`, [TEMPLATE_SCHEMA])
  const row = rows[0] as { registry: boolean, template: boolean } | undefined
  if (row?.registry !== true) throw new BoardinghouseErrors.NOT_MIGRATED(`table public.${SCHEMA_TABLE} is missing`)
  if (row.template !== true) throw new BoardinghouseErrors.NOT_MIGRATED(`schema ${TEMPLATE_SCHEMA} is missing`)
}

export class CloneDDLCache {
  private cached: CloneDDL | null = null
  /** Set by invalidate(): the template may have changed outside `migrate`; the next clone regenerates its DDL. */
  private templateDirty = false

  /** Forgets the DDL held in memory (the stored row stays valid for its version). */
  forget (): void {
    this.cached = null
  }

  /** The template may have changed outside migrate: the next read bumps its generation and regenerates. */
  markTemplateDirty (): void {
    this.templateDirty = true
  }

  /** migrate changed the template (and bumped its generation itself). */
  templateChanged (): void {
    this.cached = null
    this.templateDirty = false
  }

  /**
   * After invalidate(): bumps the template's generation now (a no-op otherwise). The stored DDL may
   * predate DDL run directly in the template; a new generation keys a new DDL row (the old one is
   * deleted when it is stored), makes other processes' clone transactions refuse the DDL they
   * cached, and makes pending schemas cloned before it stale (plugin/pending.ts).
   */
  async settle (connection: RawConnection): Promise<void> {
    if (!this.templateDirty) return
    await connection.query('UPDATE public.boardinghouse_template_state SET generation = generation + 1')
    this.templateDirty = false
    this.cached = null
  }

  /**
   * The template's clone DDL: from memory, else from the database's cache table (one row per
   * template version and generator format), else generated from the catalog and stored.
   */
  async get (connection: RawConnection): Promise<CloneDDL> {
    if (this.cached !== null) return this.cached
    await ensureMigrated(connection)
    await this.settle(connection)
    const { rows } = await connection.query(
      `SELECT v.version || ':' || $1 AS version, d.ddl FROM (${TEMPLATE_VERSION_SQL}) v
       LEFT JOIN public.${TEMPLATE_DDL_TABLE} d ON d.version = v.version || ':' || $1`, [CLONE_FORMAT])
    const row = rows[0] as { version: string, ddl: string | null }
    let ddl = row.ddl
    if (ddl === null) {
      try {
        ddl = await generateCloneDDL(connection)
      } catch (err) {
        throw new BoardinghouseErrors.CLONE_UNSUPPORTED(err instanceof Error ? err.message : String(err), { cause: err })
      }
      await connection.query(
        `WITH stored AS (INSERT INTO public.${TEMPLATE_DDL_TABLE} (version, ddl) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING)
         DELETE FROM public.${TEMPLATE_DDL_TABLE} WHERE version <> $1`, [row.version, ddl])
    }
    // The clone transaction compares the ledger part of the version with the template's current one.
    this.cached = { version: row.version.slice(0, row.version.lastIndexOf(':')), ddl }
    return this.cached
  }
}
