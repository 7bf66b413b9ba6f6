/**
 * The models the library owns, all in `public`: the schema registry and the user ↔ schema
 * membership. The user model belongs to the app; a membership stores the app's user id only.
 * The tables are created by the library's own migrations (migrations/), never by `sync`.
 */
import { DataTypes, type Model, type ModelStatic, type Sequelize } from 'sequelize'

export const SCHEMA_TABLE = 'boardinghouse_schema'
export const MEMBERSHIP_TABLE = 'boardinghouse_membership'
export const TENANT_MIGRATION_TABLE = 'boardinghouse_tenant_migration'
export const DOMAIN_TABLE = 'boardinghouse_domain'

export type UserIdType = 'integer' | 'bigint' | 'uuid' | 'string'
export type UserId = string | number

export interface SchemaAttributes {
  /** The PostgreSQL schema name; the primary key, never renamed. */
  schemaName: string
  /** A display name for people. */
  name: string
  isActive: boolean
  createdAt: Date
  updatedAt: Date
  /** When the schema entered maintenance mode, or null when it is not in maintenance. */
  maintenanceSince: Date | null
  /** The Retry-After (seconds, 1–86400) of its requests while in maintenance, or null for the library's default. */
  maintenanceRetryAfter: number | null
  /** Who put it in maintenance: 'manual' (an operator) or 'migrate' (the migrator); null when not in maintenance. */
  maintenanceBy: 'manual' | 'migrate' | null
}

export interface MembershipAttributes {
  schemaName: string
  userId: UserId
  createdAt: Date
}

export type SchemaModel = ModelStatic<Model<SchemaAttributes, Partial<SchemaAttributes>>>
export type MembershipModel = ModelStatic<Model<MembershipAttributes, Partial<MembershipAttributes>>>

export interface BoardinghouseModels {
  Schema: SchemaModel
  Membership: MembershipModel
}

export const SCHEMA_MODEL_NAME = 'BoardinghouseSchema'
export const MEMBERSHIP_MODEL_NAME = 'BoardinghouseMembership'

export function userIdDataType (type: UserIdType): DataTypes.DataType {
  switch (type) {
    case 'integer': return DataTypes.INTEGER
    case 'bigint': return DataTypes.BIGINT
    case 'uuid': return DataTypes.UUID
    case 'string': return DataTypes.STRING(255)
  }
}

/** Defines (once per Sequelize instance) the library's models and returns them. */
export function defineModels (sequelize: Sequelize, userIdType: UserIdType = 'integer'): BoardinghouseModels {
  const existing = sequelize.models[SCHEMA_MODEL_NAME] as SchemaModel | undefined
  if (existing !== undefined) {
    return { Schema: existing, Membership: sequelize.models[MEMBERSHIP_MODEL_NAME] as MembershipModel }
  }
  const Schema = sequelize.define<Model<SchemaAttributes, Partial<SchemaAttributes>>>(SCHEMA_MODEL_NAME, {
    schemaName: { type: DataTypes.STRING(63), primaryKey: true, field: 'schema_name' },
    name: { type: DataTypes.TEXT, allowNull: false },
    isActive: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true, field: 'is_active' },
    createdAt: { type: DataTypes.DATE, field: 'created_at' },
    updatedAt: { type: DataTypes.DATE, field: 'updated_at' },
    maintenanceSince: { type: DataTypes.DATE, allowNull: true, field: 'maintenance_since' },
    maintenanceRetryAfter: { type: DataTypes.INTEGER, allowNull: true, field: 'maintenance_retry_after' },
    maintenanceBy: { type: DataTypes.TEXT, allowNull: true, field: 'maintenance_by' }
  }, { tableName: SCHEMA_TABLE, schema: 'public', timestamps: true })
  const Membership = sequelize.define<Model<MembershipAttributes, Partial<MembershipAttributes>>>(MEMBERSHIP_MODEL_NAME, {
    schemaName: { type: DataTypes.STRING(63), primaryKey: true, field: 'schema_name' },
    userId: { type: userIdDataType(userIdType), primaryKey: true, field: 'user_id' },
    createdAt: { type: DataTypes.DATE, field: 'created_at' }
  }, { tableName: MEMBERSHIP_TABLE, schema: 'public', timestamps: true, updatedAt: false })
  Schema.hasMany(Membership, { foreignKey: 'schemaName', sourceKey: 'schemaName', as: 'memberships', onDelete: 'CASCADE' })
  Membership.belongsTo(Schema, { foreignKey: 'schemaName', targetKey: 'schemaName', as: 'schema' })
  return { Schema, Membership }
}
