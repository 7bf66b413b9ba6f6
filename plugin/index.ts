/**
 * fastify-boardinghouse: Postgres schema-per-tenant multi-tenancy for Fastify and Sequelize.
 * This module exports the tenant API (usable without Fastify), its types and errors.
 */
export { Boardinghouse, createBoardinghouse, normalizeUserId } from './tenants.js'
export type { CreateSchemaOptions, DeleteSchemaOptions, ListSchemasOptions, RunInSchemaOptions, SchemaInfo } from './tenants.js'
export type { BoardinghouseOptions } from './options.js'
export type { MigrateOptions, MigrateProgress, MigrateResult, MigrationContext, MigrationPhase } from './migrator.js'
export { BoardinghouseErrors } from './errors.js'
export type { BoardinghouseErrorCode } from './errors.js'
export { TEMPLATE_SCHEMA, assertSchemaName, isValidSchemaName, quoteIdent, schemaNameProblem } from './names.js'
export { currentSchema } from './context.js'
export { defineConfig } from './config.js'
export type { BoardinghouseConfig } from './config.js'
export { defineModels } from '../models/index.js'
export type { BoardinghouseModels, MembershipAttributes, SchemaAttributes, UserId, UserIdType } from '../models/index.js'
