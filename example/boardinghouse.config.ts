/** The example app's config for the `boardinghouse` CLI (`npm run cli -- <args>`). */
import { defineConfig } from '../plugin/config.js'
import { defineExampleModels, exampleTenantModels } from './models/index.js'

export default defineConfig({
  models: (sequelize) => { defineExampleModels(sequelize) },
  tenantModels: exampleTenantModels,
  auditModels: ['Item'],
  sharedMigrations: './migrations/shared',
  tenantMigrations: './migrations/tenant'
})
