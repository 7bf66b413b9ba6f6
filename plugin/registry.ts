/**
 * The in-process registry of schemas and memberships (DESIGN.md §5): a request or a runInSchema
 * call looks tenants up here, not in the database. Loaded in one round trip, reloaded after any
 * change made through the library, on a change notice from another process, or after `ttl` ms.
 */
import { QueryTypes, type Sequelize } from 'sequelize'
import { DOMAIN_TABLE, MEMBERSHIP_TABLE, SCHEMA_TABLE, type UserId } from '../models/index.js'
import { runWithSchema } from './context.js'
import { BoardinghouseErrors } from './errors.js'
import type { SchemaMaintenance } from './maintenance.js'
import { isValidSchemaName } from './names.js'
import { isUndefinedTable, sqlState } from './pg-errors.js'

export interface SchemaInfo {
  /** The PostgreSQL schema name. */
  schema: string
  /** The display name. */
  name: string
  isActive: boolean
  createdAt: Date
  updatedAt: Date
  /** Its maintenance state (since, retryAfter, by), or null when it is not in maintenance. */
  maintenance: SchemaMaintenance | null
}

/** A host mapped to a schema (`public.boardinghouse_domain`). */
export interface DomainInfo {
  /** The host, normalised: lower-case, punycode, no port, no trailing dot. */
  host: string
  /** The schema it maps to. */
  schema: string
  /** Whether it is the schema's primary domain (at most one per schema). */
  isPrimary: boolean
  createdAt: Date
}

/** A schema as a request may select it (the same shape as request.ts's TenantInfo). */
export interface TenantInfo {
  /** The PostgreSQL schema name. */
  schema: string
  /** Its display name. */
  name: string
}

export interface RegistrySnapshot {
  readonly schemas: ReadonlyMap<string, SchemaInfo>
  /** user id (as a string) → schema names the user is a member of (active or not). */
  readonly members: ReadonlyMap<string, ReadonlySet<string>>
  readonly loadedAt: number
  /** Every active schema, sorted by name: what an admin may select. Computed once per snapshot (frozen). */
  readonly allActive: readonly TenantInfo[]
  /** The active schemas a user (by userKey) is a member of, sorted by name: what they may select. Computed once per snapshot (frozen). */
  selectable: (userKey: string) => readonly TenantInfo[]
  /** host → its domain entry (every mapped host, whatever the state of its schema). */
  readonly domains: ReadonlyMap<string, DomainInfo>
  /** schema → its domains, the primary first, then by host. Computed once per snapshot (frozen). */
  domainsOf: (schema: string) => readonly DomainInfo[]
}

const NONE: readonly TenantInfo[] = Object.freeze([])

/** A snapshot with its per-user lists computed once: a request reads them instead of building them. */
export function buildSnapshot (schemas: ReadonlyMap<string, SchemaInfo>, members: ReadonlyMap<string, ReadonlySet<string>>, loadedAt: number, domains: ReadonlyMap<string, DomainInfo> = new Map()): RegistrySnapshot {
  const infos = new Map<string, TenantInfo>()
  for (const s of schemas.values()) {
    if (s.isActive && isValidSchemaName(s.schema)) infos.set(s.schema, Object.freeze({ schema: s.schema, name: s.name }))
  }
  const sorted = (names: Iterable<string>): readonly TenantInfo[] =>
    Object.freeze([...names].filter((n) => infos.has(n)).sort().map((n) => infos.get(n) as TenantInfo))
  const allActive = sorted(infos.keys())
  const byUser = new Map<string, readonly TenantInfo[]>()
  for (const [user, names] of members) byUser.set(user, sorted(names))
  const bySchema = new Map<string, DomainInfo[]>()
  for (const d of domains.values()) {
    let list = bySchema.get(d.schema)
    if (list === undefined) bySchema.set(d.schema, list = [])
    list.push(Object.freeze({ ...d }))
  }
  const byPrimaryThenHost = (a: DomainInfo, b: DomainInfo): number =>
    a.isPrimary !== b.isPrimary ? (a.isPrimary ? -1 : 1) : a.host < b.host ? -1 : a.host > b.host ? 1 : 0
  for (const list of bySchema.values()) Object.freeze(list.sort(byPrimaryThenHost))
  const noDomains: readonly DomainInfo[] = Object.freeze([])
  return { schemas, members, loadedAt, allActive, selectable: (key) => byUser.get(key) ?? NONE, domains, domainsOf: (schema) => bySchema.get(schema) ?? noDomains }
}

export function userKey (userId: UserId): string {
  return typeof userId === 'number' ? String(userId) : userId
}

interface SchemaRow {
  schema_name: string
  name: string
  is_active: boolean
  created_at: string
  updated_at: string
  maintenance_since: string | null
  maintenance_retry_after: number | null
  maintenance_by: SchemaMaintenance['by'] | null
}

/** A registry row's maintenance columns as the snapshot holds them (frozen), or null when not in maintenance. */
export function maintenanceOf (row: { maintenance_since: string | Date | null, maintenance_retry_after: number | null, maintenance_by: SchemaMaintenance['by'] | null }): SchemaMaintenance | null {
  if (row.maintenance_since === null || row.maintenance_by === null) return null
  return Object.freeze({ since: new Date(row.maintenance_since), retryAfter: row.maintenance_retry_after, by: row.maintenance_by })
}
interface MembershipRow { schema_name: string, user_id: string | number }
interface DomainRow { host: string, schema_name: string, is_primary: boolean, created_at: string }

export class SchemaRegistry {
  private snapshot: RegistrySnapshot | null = null
  private loading: Promise<RegistrySnapshot> | null = null
  private loadingGeneration = -1
  private generation = 0

  constructor (private readonly sequelize: Sequelize, private readonly ttl: number) {}

  /** Forgets what is cached; the next read reloads. */
  invalidate (): void {
    this.generation++
    this.snapshot = null
  }

  /** The cached snapshot, loading it when missing or older than the TTL. */
  async get (): Promise<RegistrySnapshot> {
    const snapshot = this.snapshot
    if (snapshot !== null && Date.now() - snapshot.loadedAt < this.ttl) return snapshot
    return await this.load()
  }

  /** The cached snapshot if it is fresh, without any I/O. */
  peek (): RegistrySnapshot | null {
    const snapshot = this.snapshot
    return snapshot !== null && Date.now() - snapshot.loadedAt < this.ttl ? snapshot : null
  }

  private async load (): Promise<RegistrySnapshot> {
    // Join a load in flight only if it started after the last change: an older one may miss it.
    if (this.loading !== null && this.loadingGeneration === this.generation) return await this.loading
    const generation = this.generation
    const loading = (async () => {
      // All reads in one query and one round trip, in public whatever the caller's context.
      const [row] = await runWithSchema(null, async () => await this.sequelize.query<{ schemas: SchemaRow[], members: MembershipRow[], domains: DomainRow[] }>(
        `SELECT (SELECT coalesce(json_agg(s), '[]') FROM (SELECT schema_name, name, is_active, created_at, updated_at, maintenance_since, maintenance_retry_after, maintenance_by FROM public.${SCHEMA_TABLE}) s) AS schemas,
                (SELECT coalesce(json_agg(m), '[]') FROM (SELECT schema_name, user_id::text AS user_id FROM public.${MEMBERSHIP_TABLE}) m) AS members,
                (SELECT coalesce(json_agg(d), '[]') FROM (SELECT host, schema_name, is_primary, created_at FROM public.${DOMAIN_TABLE}) d) AS domains`,
        { type: QueryTypes.SELECT, logging: false })).catch((err: unknown) => {
        if (isUndefinedTable(err)) throw new BoardinghouseErrors.NOT_MIGRATED(`table public.${SCHEMA_TABLE} or public.${DOMAIN_TABLE} is missing`, { cause: err })
        // 42703 undefined_column: the library's later migrations (maintenance columns) have not run
        if (sqlState(err) === '42703') throw new BoardinghouseErrors.NOT_MIGRATED(`a column of public.${SCHEMA_TABLE} is missing (${err instanceof Error ? err.message : String(err)})`, { cause: err })
        throw err
      })
      const schemas = new Map<string, SchemaInfo>()
      for (const r of row?.schemas ?? []) {
        schemas.set(r.schema_name, { schema: r.schema_name, name: r.name, isActive: r.is_active, createdAt: new Date(r.created_at), updatedAt: new Date(r.updated_at), maintenance: maintenanceOf(r) })
      }
      const members = new Map<string, Set<string>>()
      for (const r of row?.members ?? []) {
        const key = userKey(r.user_id)
        let set = members.get(key)
        if (set === undefined) members.set(key, set = new Set())
        set.add(r.schema_name)
      }
      const domains = new Map<string, DomainInfo>()
      for (const r of row?.domains ?? []) {
        domains.set(r.host, { host: r.host, schema: r.schema_name, isPrimary: r.is_primary, createdAt: new Date(r.created_at) })
      }
      const snapshot = buildSnapshot(schemas, members, Date.now(), domains)
      // A change that happened while loading makes this load stale: keep it for this caller only.
      if (generation === this.generation) this.snapshot = snapshot
      return snapshot
    })()
    this.loading = loading
    this.loadingGeneration = generation
    try {
      return await loading
    } finally {
      if (this.loading === loading) this.loading = null
    }
  }
}

const registries = new WeakMap<Sequelize, SchemaRegistry>()

/** The registry of a Sequelize instance: shared by every Boardinghouse on it, so a change made through one is seen by all at once. */
export function registryFor (sequelize: Sequelize, ttl: number): SchemaRegistry {
  let registry = registries.get(sequelize)
  if (registry === undefined) registries.set(sequelize, registry = new SchemaRegistry(sequelize, ttl))
  return registry
}
