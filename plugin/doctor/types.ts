/** What `doctor` reports: one finding per problem, each with a stable code. */

/** Codes of the structure comparison: one per catalog kind. */
export type StructureFindingCode =
  | 'table_differs'
  | 'view_differs'
  | 'column_differs'
  | 'constraint_differs'
  | 'index_differs'
  | 'trigger_differs'
  | 'function_differs'
  | 'sequence_differs'
  | 'type_differs'

export type DoctorFindingCode =
  /** The registry lists a schema PostgreSQL does not have. */
  | 'registry_without_schema'
  /** A schema that looks like a tenant (tables of the template, or ledger rows) is not in the registry. */
  | 'schema_without_registry'
  /** A schema's ledger lacks migrations the template's ledger (its head) lists. */
  | 'ledger_behind'
  /** A schema's ledger lists migrations the template's does not. */
  | 'ledger_ahead'
  /** Ledger rows of a schema that does not exist (fixable when the registry does not list it either). */
  | 'ledger_orphan'
  /** Memberships of a schema that does not exist. */
  | 'membership_orphan'
  /** Domains of a schema that does not exist. */
  | 'domain_orphan'
  /** An audited model's table lacks the audit trigger (fixable). */
  | 'audit_trigger_missing'
  /** A table of `public` has the name of a tenant model's table or of a template table. */
  | 'tenant_table_in_public'
  /** A template table holds rows. */
  | 'template_has_rows'
  /** A template table lacks the row guard, or has it disabled. */
  | 'template_guard_missing'
  /** A schema is still in the maintenance a `migrate --maintenance` set, and no migrate runs (a run that was killed; fixable). */
  | 'maintenance_left_by_migrate'
  /** A spare schema of the pending pool differs from its fingerprint (it is dropped, never handed out, at the next claim or fill). */
  | 'pending_tampered'
  /** A schema named like a spare that the pool's table does not list (the next fill drops it). */
  | 'pending_orphan'
  | StructureFindingCode

export interface DoctorFinding {
  code: DoctorFindingCode
  /** The schema the finding is about (`public`, `__template__` or a tenant), or null. */
  schema: string | null
  /** The object: a table, `table.column`, `table.constraint`, an index, `table.trigger`, `function(args)`, a type. */
  object?: string
  /** One line for a person. */
  message: string
  /** Whether `doctor({ fix: true })` repairs it. */
  fixable: boolean
  /** Structure findings: the object is missing in the schema, extra in it, or changed. */
  difference?: 'missing' | 'extra' | 'changed'
  /** Structure findings: the definition the template's implies for this schema (missing, changed). */
  expected?: string
  /** Structure findings: the definition found in the schema (extra, changed). */
  actual?: string
  /** ledger_behind / ledger_ahead: the migrations' names. */
  migrations?: string[]
  /** Orphan findings: how many rows; schema_without_registry: the ledger rows. */
  rows?: number
}

export interface DoctorOptions {
  /** Repair what is safe to repair (missing audit triggers, orphan ledger rows), in one transaction. @default false */
  fix?: boolean
}

export interface DoctorReport {
  /** True when no finding is left. */
  ok: boolean
  /** Tenant schemas checked (registered and present). */
  schemas: number
  /** What is wrong (after `fix`: what is left for a person). */
  findings: DoctorFinding[]
  /** With `fix`: what was repaired (else empty). */
  fixed: DoctorFinding[]
  /** The pending pool (option `pendingSchemas`): spares ready, stale (older template), tampered, and orphan schemas. */
  pending: { ready: number, stale: number, tampered: number, orphans: number }
}
