/** The CLI's config module: where the app's models and migration folders are. */
import { existsSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import type { Options as SequelizeOptions, Sequelize } from 'sequelize'
import type { BoardinghouseOptions } from './options.js'
import type { UserIdType } from '../models/index.js'
import { BoardinghouseErrors } from './errors.js'
import { importFile } from './loader.js'

export interface BoardinghouseConfig {
  /** Defines the app's models on the Sequelize instance the CLI creates from DATABASE_URL. */
  models?: (sequelize: Sequelize) => void | Promise<void>
  /** Names of the tenant models (defined by `models`). */
  tenantModels?: string[]
  /** Folder of shared migrations, relative to the config file. */
  sharedMigrations?: string
  /** Folder of tenant migrations, relative to the config file. */
  tenantMigrations?: string
  sharedMigrationsTable?: string
  userIdType?: UserIdType
  migrationConcurrency?: number
  /** Models whose changes go to the audit log (migrate adds their triggers). */
  auditModels?: string[]
  auditRepr?: Record<string, string>
  /** Spare schemas kept cloned ahead of time (the `pendingSchemas` option). */
  pendingSchemas?: number
  /** Extra options for the Sequelize instance (pool size, logging…). */
  sequelize?: Omit<SequelizeOptions, 'dialect'>
}

/** Identity function that types a config module's default export. */
export function defineConfig (config: BoardinghouseConfig): BoardinghouseConfig {
  return config
}

export const DEFAULT_CONFIG_NAMES = ['boardinghouse.config.ts', 'boardinghouse.config.mts', 'boardinghouse.config.js', 'boardinghouse.config.mjs', 'boardinghouse.config.cjs']

export interface LoadedConfig { path: string, config: BoardinghouseConfig }

/** Finds and imports the config module; folder options come back absolute. */
export async function loadConfig (path: string | undefined, cwd = process.cwd()): Promise<LoadedConfig> {
  const candidates = path !== undefined ? [resolve(cwd, path)] : DEFAULT_CONFIG_NAMES.map((n) => resolve(cwd, n))
  const found = candidates.find((c) => existsSync(c))
  if (found === undefined) {
    throw new BoardinghouseErrors.CONFIG_NOT_FOUND(path !== undefined ? candidates[0] as string : `none of ${DEFAULT_CONFIG_NAMES.join(', ')} in ${cwd}`)
  }
  const imported = await importFile(found) as { default?: unknown }
  const raw = (imported.default ?? imported) as BoardinghouseConfig | (() => BoardinghouseConfig | Promise<BoardinghouseConfig>)
  const config = typeof raw === 'function' ? await raw() : raw
  if (typeof config !== 'object' || config === null) throw new BoardinghouseErrors.INVALID_OPTION(`config module ${found} must export an object`)
  const base = dirname(found)
  const abs = (p: string | undefined): string | undefined => p === undefined ? undefined : isAbsolute(p) ? p : resolve(base, p)
  return { path: found, config: { ...config, sharedMigrations: abs(config.sharedMigrations), tenantMigrations: abs(config.tenantMigrations) } }
}

/** The tenant API's options from a loaded config, for a Sequelize instance the caller made. */
export function optionsFromConfig (config: BoardinghouseConfig, sequelize: Sequelize): BoardinghouseOptions {
  return {
    sequelize,
    tenantModels: config.tenantModels ?? [],
    ...(config.sharedMigrations !== undefined ? { sharedMigrations: config.sharedMigrations } : {}),
    ...(config.tenantMigrations !== undefined ? { tenantMigrations: config.tenantMigrations } : {}),
    ...(config.sharedMigrationsTable !== undefined ? { sharedMigrationsTable: config.sharedMigrationsTable } : {}),
    ...(config.userIdType !== undefined ? { userIdType: config.userIdType } : {}),
    ...(config.migrationConcurrency !== undefined ? { migrationConcurrency: config.migrationConcurrency } : {}),
    ...(config.auditModels !== undefined ? { auditModels: config.auditModels } : {}),
    ...(config.auditRepr !== undefined ? { auditRepr: config.auditRepr } : {}),
    ...(config.pendingSchemas !== undefined ? { pendingSchemas: config.pendingSchemas } : {})
  }
}
