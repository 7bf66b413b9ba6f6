/** The public types of dumpdata / loaddata. */

/** One row of a dump. */
export interface DumpObject {
  /** The Sequelize model name. */
  model: string
  /** The primary key: its value, an object attribute → value for a composite key, null for none. */
  pk: unknown
  /** The schema the row was dumped from; null for a shared model. */
  schema: string | null
  /** The other columns, keyed by attribute name (columns outside the model by column name). */
  fields: Record<string, unknown>
  /**
   * Present only when some json/jsonb field holds JSON `null` (not SQL NULL): those fields' names.
   * In `fields` both are `null`.
   */
  jsonNull?: string[]
}

export interface DumpOptions {
  /** The tenant schema to dump tenant models from. */
  schema?: string
  /**
   * Model names. Default: with `schema`, the tenant models; without, the shared models. The
   * library's own models (`Boardinghouse*`) are never dumped.
   */
  models?: string[]
}

export type DumpFormat = 'json' | 'ndjson'

/** A named stream of dump objects (the name is used in error messages: a file name). */
export interface LoadSource {
  name: string
  objects: AsyncIterable<unknown> | Iterable<unknown>
}

export interface LoadOptions {
  /** Load every tenant object into this schema, whatever schema it was dumped from. */
  schema?: string
}

export interface LoadResult {
  /** Objects written. */
  objects: number
  /** Objects written per model name. */
  byModel: Record<string, number>
}
