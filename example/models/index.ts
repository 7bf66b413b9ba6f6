/** The example app's models: `Item` is a tenant model (one `items` table per schema). */
import { DataTypes, type Model, type ModelStatic, type Sequelize } from 'sequelize'

export interface ItemAttributes {
  id: number
  title: string
  createdAt: Date
  updatedAt: Date
}

export type ItemModel = ModelStatic<Model<ItemAttributes, Partial<ItemAttributes>>>

export function defineExampleModels (sequelize: Sequelize): { Item: ItemModel } {
  const existing = sequelize.models.Item as ItemModel | undefined
  if (existing !== undefined) return { Item: existing }
  const Item = sequelize.define<Model<ItemAttributes, Partial<ItemAttributes>>>('Item', {
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    title: { type: DataTypes.STRING(200), allowNull: false, validate: { notEmpty: true, len: [1, 200] } },
    createdAt: { type: DataTypes.DATE, field: 'created_at' },
    updatedAt: { type: DataTypes.DATE, field: 'updated_at' }
  }, { tableName: 'items' })
  return { Item }
}

/** Names of the example's tenant models. */
export const exampleTenantModels = ['Item']
