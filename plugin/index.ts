/**
 * fastify-boardinghouse: Postgres schema-per-tenant multi-tenancy for Fastify and Sequelize.
 * The default export is the Fastify plugin; the tenant API works without Fastify too.
 */
import fp from 'fastify-plugin'
import { boardinghouse } from './plugin.js'

const plugin = fp(boardinghouse, {
  fastify: '5.x',
  name: 'fastify-boardinghouse'
})

export default plugin
export { plugin as boardinghouse }
export type { AuditEntryWithLink, BoardinghouseRouteConfig, RequestTenancy, SchemaResolver, TenantInfo } from './request.js'
export type { AuditAction, AuditEntry, AuditQuery } from './audit.js'
export { Boardinghouse, createBoardinghouse, normalizeUserId } from './boardinghouse.js'
export type { AddDomainOptions, CreateSchemaOptions, DeleteSchemaOptions, DomainInfo, ListSchemasOptions, RunInSchemaOptions, SchemaInfo } from './boardinghouse.js'
export type { BoardinghouseOptions, BoardinghousePluginOptions } from './options.js'
export type { PendingErrorEvent } from './events.js'
export type { PendingFillResult, PendingSpare, PendingStatus } from './pending.js'
export { jobContext, runInJobContext } from './jobs.js'
export type { JobContext, JobContextOptions, JobTenancy } from './jobs.js'
export type { BeforeDropContext, BeforeDropHook, CreateHook, CreateHookContext } from './schema-admin.js'
export type { BoardinghouseEventMap, BoardinghouseEventName, BoardinghouseListener, DomainEvent, EventOrigin, ListenerErrorEvent, MembershipEvent, MigratedEvent, SchemaEvent, SchemaMigratedEvent, SwitchedEvent } from './events.js'
// maintenance mode
export { DEFAULT_MAINTENANCE_RETRY_AFTER, MAX_MAINTENANCE_RETRY_AFTER, isMaintenanceError } from './maintenance.js'
export type { ClearMaintenanceOptions, MaintenanceBy, MaintenanceError, SchemaMaintenance, SetMaintenanceOptions } from './maintenance.js'
export type { MaintenanceEndedEvent, MaintenanceStartedEvent } from './events.js'
export type { MaintenanceBypass } from './options.js'
export { DEFAULT_MAX_VALUE_LENGTH, JsonNumber, dumpDataText, readDumpObjects, writeDump } from './data/index.js'
export type { DumpFormat, DumpObject, DumpOptions, LoadOptions, LoadResult, LoadSource, ReadDumpOptions } from './data/index.js'
export type { BindPathMode } from './context.js'
export type { MigrateOptions, MigrateProgress, MigrateResult, MigrationContext, MigrationPhase } from './migrator/index.js'
export type { MaintenanceHooks, MigrateBatch, MigrateDownOptions, MigrateDownResult, MigrationFailure, MigrationStatus, MigrationTargeting, SchemaStatus, StagingOptions } from './migrator/index.js'
export type { DoctorFinding, DoctorFindingCode, DoctorOptions, DoctorReport, StructureFindingCode } from './doctor/index.js'
export { BoardinghouseErrors } from './errors.js'
export type { BoardinghouseErrorCode } from './errors.js'
export { TEMPLATE_SCHEMA, assertSchemaName, isValidSchemaName, quoteIdent, schemaNameProblem } from './names.js'
export { currentSchema } from './context.js'
export { safeRedirectPath } from './switch.js'
export { resolvers, anonymousAllowed, checkAnonymous } from './resolvers.js'
export type { AnonymousPolicy, BoardinghouseResolver, ResolverOptions, SubdomainResolverOptions } from './resolvers.js'
export { normalizeHost, requestHost } from './host.js'
export { defineConfig, loadConfig, optionsFromConfig } from './config.js'
export type { BoardinghouseConfig, LoadedConfig } from './config.js'
export { defineModels } from '../models/index.js'
export type { BoardinghouseModels, MembershipAttributes, SchemaAttributes, UserId, UserIdType } from '../models/index.js'
