// @ts-check
// Shared migration of the example app (runs once, in public): users and the session store.

/** @param {{ context: import('../../../plugin/index.js').MigrationContext }} params */
export async function up ({ context: { queryInterface, Sequelize } }) {
  await queryInterface.createTable('users', {
    id: { type: Sequelize.INTEGER, primaryKey: true, autoIncrement: true },
    username: { type: Sequelize.STRING(100), allowNull: false, unique: true },
    password_hash: { type: Sequelize.TEXT, allowNull: false },
    is_admin: { type: Sequelize.BOOLEAN, allowNull: false, defaultValue: false }
  })
  await queryInterface.createTable('sessions', {
    sid: { type: Sequelize.STRING(255), primaryKey: true },
    data: { type: Sequelize.JSONB, allowNull: false },
    expires_at: { type: Sequelize.DATE, allowNull: false }
  })
  await queryInterface.addIndex('sessions', ['expires_at'], { name: 'sessions_expires_at_idx' })
}

/** @param {{ context: import('../../../plugin/index.js').MigrationContext }} params */
export async function down ({ context: { queryInterface } }) {
  await queryInterface.dropTable('sessions')
  await queryInterface.dropTable('users')
}
