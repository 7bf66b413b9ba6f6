// @ts-check
// Tenant migration of the example app: runs in __template__ and in every tenant schema.

/** @param {{ context: import('../../../plugin/index.js').MigrationContext }} params */
export async function up ({ context: { queryInterface, Sequelize } }) {
  await queryInterface.createTable('items', {
    id: { type: Sequelize.INTEGER, primaryKey: true, autoIncrement: true },
    title: { type: Sequelize.STRING(200), allowNull: false },
    created_at: { type: Sequelize.DATE, allowNull: false, defaultValue: Sequelize.fn('now') },
    updated_at: { type: Sequelize.DATE, allowNull: false, defaultValue: Sequelize.fn('now') }
  })
}

/** @param {{ context: import('../../../plugin/index.js').MigrationContext }} params */
export async function down ({ context: { queryInterface } }) {
  await queryInterface.dropTable('items')
}
