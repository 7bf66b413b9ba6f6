/** What a migration receives, and the schema-bound queryInterface it gets. */
import { Sequelize as SequelizeClass, type DataTypes, type QueryInterface, type Sequelize, type Transaction } from 'sequelize'
import type { UserIdType } from '../../models/index.js'
import { queryGeneratorOf } from '../sequelize-internals.js'

/** What a migration receives as `context` (umzug style: `up({ context })`). */
export interface MigrationContext {
  queryInterface: QueryInterface
  /** The Sequelize class, with the DataTypes on it (`Sequelize.STRING`), as sequelize-cli passes it. */
  Sequelize: typeof SequelizeClass & typeof DataTypes
  sequelize: Sequelize
  /** The schema being migrated: 'public' for shared migrations. */
  schema: string
  /** True while migrating `__template__`, which refuses rows: data steps should skip it. */
  isTemplate: boolean
  /**
   * The transaction the schema migrates in; queries made without one join it anyway. Null in an
   * online migration (its file exports `transaction = false`), which runs outside a transaction.
   */
  transaction: Transaction | null
  options: { userIdType: UserIdType }
}

/** The Sequelize class typed with the DataTypes it carries (Sequelize.STRING…), for MigrationContext. */
export const SequelizeWithDataTypes = SequelizeClass as typeof SequelizeClass & typeof DataTypes

/**
 * A queryInterface for one schema. Sequelize's query generator falls back to its `options.schema`,
 * else "public", for addColumn, removeColumn, describeTable (so renameColumn, changeColumn), enum
 * type names and enum lookups: it would alter public.notes from a tenant's migration. This one
 * shares everything with the app's but sees `schema` as its default schema.
 */
export function schemaQueryInterface (queryInterface: QueryInterface, schema: string): QueryInterface {
  if (schema === 'public') return queryInterface
  const generator = queryGeneratorOf(queryInterface)
  const schemaGenerator = Object.create(generator, { options: { value: { ...generator.options, schema }, writable: true } }) as object
  return Object.create(queryInterface, { queryGenerator: { value: schemaGenerator, writable: true } }) as QueryInterface
}
