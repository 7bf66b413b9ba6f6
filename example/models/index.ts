/**
 * The example app's models. `Item` is a tenant model (one `items` table per schema); `User` and
 * `Session` are shared models (one table each, in public).
 */
import { DataTypes, type Model, type ModelStatic, type Sequelize } from 'sequelize'

export interface ItemAttributes {
  id: number
  title: string
  createdAt: Date
  updatedAt: Date
}

export interface UserAttributes {
  id: number
  username: string
  passwordHash: string
  isAdmin: boolean
}

export interface SessionAttributes {
  sid: string
  data: Record<string, unknown>
  expiresAt: Date
}

export type ItemModel = ModelStatic<Model<ItemAttributes, Partial<ItemAttributes>>>
export type UserModel = ModelStatic<Model<UserAttributes, Partial<UserAttributes>>>
export type SessionModel = ModelStatic<Model<SessionAttributes, Partial<SessionAttributes>>>

export interface ExampleModels { Item: ItemModel, User: UserModel, Session: SessionModel }

export function defineExampleModels (sequelize: Sequelize): ExampleModels {
  const existing = sequelize.models.Item as ItemModel | undefined
  if (existing !== undefined) {
    return { Item: existing, User: sequelize.models.User as UserModel, Session: sequelize.models.Session as SessionModel }
  }
  const Item = sequelize.define<Model<ItemAttributes, Partial<ItemAttributes>>>('Item', {
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    title: { type: DataTypes.STRING(200), allowNull: false, validate: { notEmpty: true, len: [1, 200] } },
    createdAt: { type: DataTypes.DATE, field: 'created_at' },
    updatedAt: { type: DataTypes.DATE, field: 'updated_at' }
  }, { tableName: 'items' })
  const User = sequelize.define<Model<UserAttributes, Partial<UserAttributes>>>('User', {
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    username: { type: DataTypes.STRING(100), allowNull: false, unique: true },
    passwordHash: { type: DataTypes.TEXT, allowNull: false, field: 'password_hash' },
    isAdmin: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false, field: 'is_admin' }
  }, { tableName: 'users', schema: 'public', timestamps: false })
  const Session = sequelize.define<Model<SessionAttributes, Partial<SessionAttributes>>>('Session', {
    sid: { type: DataTypes.STRING(255), primaryKey: true },
    data: { type: DataTypes.JSONB, allowNull: false },
    expiresAt: { type: DataTypes.DATE, allowNull: false, field: 'expires_at' }
  }, { tableName: 'sessions', schema: 'public', timestamps: false })
  return { Item, User, Session }
}

/** Names of the example's tenant models. */
export const exampleTenantModels = ['Item']

/** Names of the example's audited models (the plugin and migrate use the same list). */
export const exampleAuditModels = ['Item']
