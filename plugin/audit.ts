/**
 * Reading the audit log (written by the `boardinghouse_audit` trigger, see migrations/): entries of
 * one schema and of shared models by default; across schemas for admins.
 */
import { QueryTypes, type Model, type ModelStatic, type Sequelize } from 'sequelize'
import { runWithSchema } from './context.js'
import { BoardinghouseErrors } from './errors.js'
import { PENDING_SCHEMA_PATTERN, assertSchemaName, describe, quoteLiteral } from './names.js'

export type AuditAction = 'create' | 'update' | 'delete'

export interface AuditEntry {
  id: string
  actionTime: Date
  /** The app's user id (as text) from the request or runInSchema context, or null. */
  userId: string | null
  action: AuditAction
  model: string
  /** The object's primary key, as text. */
  objectPk: string | null
  /** A short text of the object (see `auditRepr`). */
  objectRepr: string | null
  /** Attribute names written (create) or changed (update); empty for delete. */
  changedFields: string[]
  /** The schema of the object; null for shared models. */
  schema: string | null
  requestId: string | null
}

export interface AuditQuery {
  /** Entries of this schema (plus shared ones, see includeShared). @default the active schema */
  schema?: string | null
  /** Entries of every schema (admins only through the request API). @default false */
  allSchemas?: boolean
  /** Include entries of shared models. @default true */
  includeShared?: boolean
  model?: string
  objectPk?: string | number
  /** @default 50, at most 500 */
  limit?: number
  /** Entries older than this entry id (paging). */
  before?: string
}

interface Row {
  id: string
  action_time: Date
  user_id: string | null
  action: AuditAction
  model: string
  object_pk: string | null
  object_repr: string | null
  changed_fields: string[]
  schema_name: string | null
  request_id: string | null
}

const QUERY_KEYS = new Set<string>(['schema', 'allSchemas', 'includeShared', 'model', 'objectPk', 'limit', 'before'])

function invalid (message: string): never {
  throw new BoardinghouseErrors.INVALID_INPUT(`auditLog: ${message}`)
}

/**
 * Checks an audit query's fields, which often come from a request (a query string): a problem is
 * FST_BH_INVALID_INPUT (400) naming the field.
 */
function checkQuery (query: unknown): AuditQuery {
  if (typeof query !== 'object' || query === null || Array.isArray(query)) invalid(`the query must be an object, not ${describe(query)}`)
  const q = query as Record<string, unknown>
  for (const key of Object.keys(q)) if (!QUERY_KEYS.has(key)) invalid(`unknown query field "${key}"`)
  if (q.limit !== undefined && (typeof q.limit !== 'number' || !Number.isInteger(q.limit) || q.limit < 1 || q.limit > 500)) {
    invalid(`limit must be an integer from 1 to 500, not ${describe(q.limit)}`)
  }
  // an entry id: its text (AuditEntry.id), or as a number
  const before = typeof q.before === 'number' && Number.isSafeInteger(q.before) && q.before >= 0 ? String(q.before) : q.before
  if (before !== undefined && (typeof before !== 'string' || !/^[0-9]{1,19}$/.test(before))) invalid(`before must be an entry id (digits), not ${describe(q.before)}`)
  if (q.model !== undefined && typeof q.model !== 'string') invalid(`model must be a model name, not ${describe(q.model)}`)
  if (q.objectPk !== undefined && typeof q.objectPk !== 'string' && typeof q.objectPk !== 'number') invalid(`objectPk must be a string or a number, not ${describe(q.objectPk)}`)
  for (const flag of ['allSchemas', 'includeShared'] as const) {
    if (q[flag] !== undefined && typeof q[flag] !== 'boolean') invalid(`${flag} must be a boolean, not ${describe(q[flag])}`)
  }
  if (q.schema !== undefined && q.schema !== null && typeof q.schema !== 'string') invalid(`schema must be a schema name or null, not ${describe(q.schema)}`)
  return (before === undefined ? q : { ...q, before }) as AuditQuery
}

/** Reads audit entries, newest first; the query's fields are checked (FST_BH_INVALID_INPUT, 400). */
export async function readAuditLog (sequelize: Sequelize, input: AuditQuery, activeSchema: string | null): Promise<AuditEntry[]> {
  const query = checkQuery(input)
  const limit = query.limit ?? 50
  const where: string[] = []
  const replacements: Record<string, unknown> = { limit }
  // pending schemas (plugin/pending.ts) hold no rows: anything logged under a spare's internal name is not a tenant's
  where.push(`(e.schema_name IS NULL OR e.schema_name !~ ${quoteLiteral(PENDING_SCHEMA_PATTERN)})`)
  if (query.allSchemas !== true) {
    const schema = query.schema === undefined ? activeSchema : query.schema
    if (schema !== null) assertSchemaName(schema)
    const includeShared = query.includeShared !== false
    if (schema === null) {
      where.push('schema_name IS NULL')
    } else {
      replacements.schema = schema
      where.push(includeShared ? '(schema_name = :schema OR schema_name IS NULL)' : 'schema_name = :schema')
    }
  }
  if (query.model !== undefined) { where.push('model = :model'); replacements.model = query.model }
  if (query.objectPk !== undefined) { where.push('object_pk = :pk'); replacements.pk = String(query.objectPk) }
  if (query.before !== undefined) {
    where.push('e.id < :before')
    replacements.before = query.before
  }
  const rows = await runWithSchema(null, async () => await sequelize.query<Row>(
    `SELECT e.id::text AS id, e.action_time, e.user_id, e.action, e.model, e.object_pk, e.object_repr, e.changed_fields, e.schema_name, e.request_id
     FROM public.boardinghouse_log_entry e ${where.length > 0 ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY e.id DESC LIMIT :limit`,
    { replacements, type: QueryTypes.SELECT, logging: false }))
  const columnsToAttributes = new Map<string, Map<string, string>>()
  const attributeName = (modelName: string, column: string): string => {
    let map = columnsToAttributes.get(modelName)
    if (map === undefined) {
      map = new Map()
      const model = sequelize.models[modelName] as ModelStatic<Model> | undefined
      for (const [attr, def] of Object.entries(model?.getAttributes() ?? {})) map.set((def as { field?: string }).field ?? attr, attr)
      columnsToAttributes.set(modelName, map)
    }
    return map.get(column) ?? column
  }
  return rows.map((r) => ({
    id: r.id,
    actionTime: r.action_time,
    userId: r.user_id,
    action: r.action,
    model: r.model,
    objectPk: r.object_pk,
    objectRepr: r.object_repr,
    changedFields: r.changed_fields.map((c) => attributeName(r.model, c)),
    schema: r.schema_name,
    requestId: r.request_id
  }))
}
