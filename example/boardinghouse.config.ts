/** The example app's config for the `boardinghouse` CLI (`npm run cli -- <args>`). */
import { defineConfig } from '../plugin/config.js'
import { defineExampleModels, exampleAuditModels, exampleTenantModels } from './models/index.js'

export default defineConfig({
  models: (sequelize) => { defineExampleModels(sequelize) },
  tenantModels: exampleTenantModels,
  auditModels: exampleAuditModels,
  sharedMigrations: './migrations/shared',
  tenantMigrations: './migrations/tenant'
})
