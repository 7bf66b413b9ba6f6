/**
 * The app's models as the library sees them: which are tenant models (one table per schema) and
 * which shared (in public), their tables, the foreign-key graph, the startup check that keeps the
 * two apart, and the audited models' trigger targets.
 */
import { QueryTypes, type Model, type ModelStatic } from 'sequelize'
import { runWithSchema, type ContextState } from './context.js'
import { BoardinghouseErrors } from './errors.js'
import type { AuditTarget } from './migrator/index.js'
import type { ResolvedOptions } from './options.js'
import { TEMPLATE_SCHEMA } from './names.js'
import { pinModelSchema } from './sequelize-internals.js'

/** A model's table name, and the schema it names (undefined when it names none). */
export function tableOf (model: ModelStatic<Model>): { table: string, schema: string | undefined } {
  const t = model.getTableName() as string | { tableName: string, schema?: string }
  if (typeof t === 'string') return { table: t, schema: undefined }
  return { table: t.tableName, schema: typeof t.schema === 'string' && t.schema !== '' ? t.schema : undefined }
}

/**
 * What a foreign-key attribute points at: a model class, a table given as an object, or a string
 * (a model name or a table name: Sequelize takes either). Undefined for an attribute without one.
 */
export type ReferenceTarget =
  | { kind: 'model', name: string }
  | { kind: 'table', name: string }
  | { kind: 'modelOrTable', name: string }

export function referenceTarget (attribute: unknown): ReferenceTarget | undefined {
  const ref = (attribute as { references?: unknown } | null)?.references
  if (ref === undefined || ref === null) return undefined
  const target = typeof ref === 'string' ? ref : (ref as { model?: unknown }).model
  if (typeof target === 'string') return { kind: 'modelOrTable', name: target }
  if (typeof target === 'function') return { kind: 'model', name: (target as ModelStatic<Model>).name }
  if (typeof target === 'object' && target !== null) {
    const table = (target as { tableName?: unknown }).tableName
    if (typeof table === 'string') return { kind: 'table', name: table }
  }
  return undefined
}

type CatalogOptions = Pick<ResolvedOptions, 'sequelize' | 'tenantModels' | 'auditModels' | 'auditRepr'>

export class ModelCatalog {
  private tenantTables: string[] | null = null

  constructor (private readonly options: CatalogOptions, private readonly context: ContextState) {}

  /** A model given by class or name, resolved (throws FST_BH_UNKNOWN_MODEL for a name not defined). */
  modelClass (m: string | ModelStatic<Model>): ModelStatic<Model> {
    if (typeof m !== 'string') return m
    const model = this.options.sequelize.models[m]
    if (model === undefined) throw new BoardinghouseErrors.UNKNOWN_MODEL(m)
    return model
  }

  /** The tenant models, resolved to classes. */
  tenantModelClasses (): Array<ModelStatic<Model>> {
    return this.options.tenantModels.map((m) => this.modelClass(m))
  }

  /** Table names of the tenant models (a tenant model must not name a schema: the active schema decides). */
  tenantTableNames (): string[] {
    this.tenantTables ??= this.tenantModelClasses().map((m) => {
      const { table, schema } = tableOf(m)
      if (schema !== undefined && schema !== 'public') {
        throw new BoardinghouseErrors.INVALID_OPTION(`tenant model "${m.name}" must not set a schema (it has "${schema}"): the active schema decides`)
      }
      return table
    })
    for (const table of this.tenantTables) this.context.tenantTables.add(table)
    return this.tenantTables
  }

  /** The audited models' tables, with the trigger's arguments. */
  auditTargets (): AuditTarget[] {
    const tenant = new Set(this.tenantModelClasses())
    return this.options.auditModels.map((m) => {
      const model = this.modelClass(m)
      const attributes = model.getAttributes() as Record<string, { field?: string, primaryKey?: boolean }>
      const column = (attr: string): string => attributes[attr]?.field ?? attr
      const pk = model.primaryKeyAttributes[0] ?? 'id'
      const repr = this.options.auditRepr[model.name] ?? ['name', 'title', 'username', 'email', 'label'].find((a) => a in attributes) ?? pk
      if (!(repr in attributes)) throw new BoardinghouseErrors.INVALID_OPTION(`auditRepr names "${repr}", not an attribute of model "${model.name}"`)
      return { model: model.name, table: tableOf(model).table, tenant: tenant.has(model), pkColumn: column(pk), reprColumn: column(repr) }
    })
  }

  /**
   * Startup checks: every tenant model exists and names no schema, no shared model has a foreign key
   * to a tenant model, no tenant table exists in public (where a missing schema would fall through
   * to), and no shared model's table exists in the template (it would shadow public's in every
   * tenant). Pins every shared model to public. Throws the first problem found.
   */
  async check (): Promise<void> {
    const { sequelize } = this.options
    const tenantClasses = this.tenantModelClasses()
    const tenantTables = new Set(this.tenantTableNames())
    const tenantNames = new Set(tenantClasses.map((m) => m.name))
    const sharedTables = new Map<string, string>()
    for (const model of Object.values(sequelize.models)) {
      if (tenantClasses.includes(model)) continue
      // A shared model always reaches public, whatever the search_path (tenant first) holds.
      if (tableOf(model).schema === undefined) pinModelSchema(model, 'public')
      const shared = tableOf(model)
      if (shared.schema === 'public') sharedTables.set(shared.table, model.name)
      for (const attribute of Object.values(model.getAttributes())) {
        const target = referenceTarget(attribute)
        if (target === undefined) continue
        if (tenantTables.has(target.name) || tenantNames.has(target.name)) {
          throw new BoardinghouseErrors.SHARED_REFERENCES_TENANT(model.name, target.name)
        }
      }
    }
    if (tenantTables.size > 0) {
      const found = await runWithSchema(null, async () => await sequelize.query<{ relname: string }>(
        `SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relname IN (:tables) AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1`,
        { replacements: { tables: [...tenantTables] }, type: QueryTypes.SELECT, logging: false }))
      if (found.length > 0) throw new BoardinghouseErrors.TENANT_TABLE_IN_PUBLIC((found[0] as { relname: string }).relname)
    }
    if (sharedTables.size > 0) {
      const shadows = await runWithSchema(null, async () => await sequelize.query<{ relname: string }>(
        `SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = :template AND c.relname IN (:tables) AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1`,
        { replacements: { template: TEMPLATE_SCHEMA, tables: [...sharedTables.keys()] }, type: QueryTypes.SELECT, logging: false }))
      const first = shadows[0]
      if (first !== undefined) throw new BoardinghouseErrors.TEMPLATE_SHADOWS_SHARED(first.relname, sharedTables.get(first.relname) ?? '?')
    }
  }
}
