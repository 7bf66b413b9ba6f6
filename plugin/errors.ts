import createError from '@fastify/error'

/** Message arguments (filling the %s in order), optionally followed by `{ cause }`. */
type ErrorArgs = Array<string | number | { cause: unknown }>

function define<C extends string, S extends number> (code: C, message: string, statusCode: S): createError.FastifyErrorConstructor<{ code: C, statusCode: S }, ErrorArgs> {
  return createError<C, S, ErrorArgs>(code, message, statusCode)
}

/**
 * Every error the library raises, with a stable code and the HTTP status a route would answer.
 * The README's errors table lists each of them (a test checks it).
 */
export const BoardinghouseErrors = {
  INVALID_OPTION: define('FST_BH_INVALID_OPTION', 'Invalid boardinghouse option: %s', 500),
  INVALID_SCHEMA_NAME: define('FST_BH_INVALID_SCHEMA_NAME', 'Invalid schema name %s: %s', 400),
  INVALID_DISPLAY_NAME: define('FST_BH_INVALID_DISPLAY_NAME', 'Invalid display name for schema "%s": %s', 400),
  INVALID_INPUT: define('FST_BH_INVALID_INPUT', 'Invalid input: %s', 400),
  TEMPLATE_SCHEMA: define('FST_BH_TEMPLATE_SCHEMA', 'Schema "__template__" holds the tenant structure and cannot be used as a tenant', 400),
  SCHEMA_EXISTS: define('FST_BH_SCHEMA_EXISTS', 'Schema "%s" already exists', 409),
  SCHEMA_NOT_FOUND: define('FST_BH_SCHEMA_NOT_FOUND', 'Schema "%s" not found', 404),
  SCHEMA_INACTIVE: define('FST_BH_SCHEMA_INACTIVE', 'Schema "%s" is not active', 404),
  // maintenance mode (plugin/maintenance.ts): a request or job for a schema in maintenance; retryable
  SCHEMA_MAINTENANCE: define('FST_BH_SCHEMA_MAINTENANCE', 'Schema "%s" is in maintenance; retry after %s seconds', 503),
  NOT_MIGRATED: define('FST_BH_NOT_MIGRATED', 'The database is not migrated: %s. Run `boardinghouse migrate` first', 500),
  CLONE_FAILED: define('FST_BH_CLONE_FAILED', 'Creating schema "%s" failed: %s', 500),
  CLONE_UNSUPPORTED: define('FST_BH_CLONE_UNSUPPORTED', 'The template holds an object that cannot be cloned: %s', 500),
  MIGRATION_FAILED: define('FST_BH_MIGRATION_FAILED', 'Migration "%s" failed in schema "%s": %s', 500),
  MIGRATION_LOCK_LOST: define('FST_BH_MIGRATION_LOCK_LOST', 'The migration lock was lost (%s): this migrate stopped, its schema in progress rolled back; run migrate again', 500),
  TENANT_TABLE_IN_PUBLIC: define('FST_BH_TENANT_TABLE_IN_PUBLIC', 'Tenant table "%s" exists in schema public; tenant tables may only exist in tenant schemas', 500),
  TEMPLATE_SHADOWS_SHARED: define('FST_BH_TEMPLATE_SHADOWS_SHARED', 'Table "%s" of shared model "%s" also exists in __template__: every schema would get a copy that raw queries read instead of the shared table', 500),
  SHARED_REFERENCES_TENANT: define('FST_BH_SHARED_REFERENCES_TENANT', 'Shared model "%s" has a foreign key to tenant model "%s"; a table in public cannot reference a table that exists once per schema', 500),
  UNKNOWN_MODEL: define('FST_BH_UNKNOWN_MODEL', 'Model "%s" is not defined on this Sequelize instance', 500),
  SETTINGS_CONFLICT: define('FST_BH_SETTINGS_CONFLICT', 'Another Boardinghouse on this Sequelize instance has %s = %s, this one asks for %s: the setting belongs to the Sequelize instance; give the same value or none', 500),
  TENANCY_UNAVAILABLE: define('FST_BH_TENANCY_UNAVAILABLE', 'request.boardinghouse is only available after the onRequest hook of fastify-boardinghouse', 500),
  TRANSACTION_SCHEMA_MISMATCH: define('FST_BH_TRANSACTION_SCHEMA_MISMATCH', 'A transaction opened in schema "%s" was used while schema "%s" is active', 500),
  INVALID_USER_ID: define('FST_BH_INVALID_USER_ID', 'Invalid user id: %s', 400),
  NO_SCHEMA: define('FST_BH_NO_SCHEMA', 'No schema is selected: %s', 400),
  UNAUTHENTICATED: define('FST_BH_UNAUTHENTICATED', 'Log in to select a schema', 401),
  FORBIDDEN_SCHEMA: define('FST_BH_FORBIDDEN_SCHEMA', 'You may not use schema "%s"', 403),
  CROSS_SITE: define('FST_BH_CROSS_SITE', 'Cross-site request refused: %s', 403),
  INVALID_SWITCH_REQUEST: define('FST_BH_INVALID_SWITCH_REQUEST', 'Invalid switch request: %s', 400),
  INVALID_REDIRECT: define('FST_BH_INVALID_REDIRECT', 'Invalid redirect target %s: only a same-origin path is allowed', 400),
  TENANT_MODEL_NEEDS_SCHEMA: define('FST_BH_TENANT_MODEL_NEEDS_SCHEMA', 'Tenant models need a schema (--schema): %s', 400),
  INVALID_DUMP: define('FST_BH_INVALID_DUMP', 'Invalid dump data: %s', 400),
  LOAD_FAILED: define('FST_BH_LOAD_FAILED', 'Loading failed, nothing was written: %s', 400),
  CONFIG_NOT_FOUND: define('FST_BH_CONFIG_NOT_FOUND', 'Config module not found: %s', 500),
  NO_DATABASE_URL: define('FST_BH_NO_DATABASE_URL', 'DATABASE_URL is not set', 500),
  TYPESCRIPT_LOADER: define('FST_BH_TYPESCRIPT_LOADER', 'Loading %s needs a TypeScript loader: install tsx (npm install --save-dev tsx), or write the file in JavaScript', 500),
  INVALID_JOB_CONTEXT: define('FST_BH_INVALID_JOB_CONTEXT', 'Invalid job context: %s', 400),
  NO_JOB_CONTEXT: define('FST_BH_NO_JOB_CONTEXT', 'The job carries no tenant context: %s', 400),
  INVALID_HOST: define('FST_BH_INVALID_HOST', 'Invalid host %s: %s', 400),
  INVALID_TENANT_HEADER: define('FST_BH_INVALID_TENANT_HEADER', 'Invalid %s header: %s', 400),
  DOMAIN_TAKEN: define('FST_BH_DOMAIN_TAKEN', 'Host "%s" is already mapped to another schema', 409),
  CREATE_HOOK_FAILED: define('FST_BH_CREATE_HOOK_FAILED', 'The creation hook of schema "%s" failed, nothing was created: %s', 500),
  DROP_REFUSED: define('FST_BH_DROP_REFUSED', 'Dropping schema "%s" was refused by a beforeDrop hook, nothing changed: %s', 409),
  // staged migrations and rollback (plugin/migrator/fleet.ts, rollback.ts)
  MIGRATIONS_FAILED: define('FST_BH_MIGRATIONS_FAILED', '%s; failures: %s', 500),
  UNKNOWN_MIGRATION: define('FST_BH_UNKNOWN_MIGRATION', 'Migration "%s" %s; nothing was undone', 400),
  IRREVERSIBLE_MIGRATION: define('FST_BH_IRREVERSIBLE_MIGRATION', 'Cannot roll back: %s; nothing was undone', 400),
  MAINTENANCE_UNAVAILABLE: define('FST_BH_MAINTENANCE_UNAVAILABLE', 'Maintenance mode is not available to migrate: %s', 500),
  // pending schemas (plugin/pending.ts)
  PENDING_FILL_FAILED: define('FST_BH_PENDING_FILL_FAILED', 'Filling the pending schemas failed (the spares made so far are kept): %s', 500)
} as const

export type BoardinghouseErrorCode = `FST_BH_${keyof typeof BoardinghouseErrors}`
