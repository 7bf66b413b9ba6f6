/** Migration files: found in a folder, imported, and called in either format. */
import { readdir } from 'node:fs/promises'
import { existsSync } from 'node:fs'
import { extname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { MigrationParams, RunnableMigration } from 'umzug'
import { BoardinghouseErrors } from '../errors.js'
import { importFile } from '../loader.js'
import type { MigrationContext } from './context.js'

export interface LoadedMigration {
  name: string
  path: string
  module: { up: (...args: unknown[]) => Promise<unknown>, down?: (...args: unknown[]) => Promise<unknown> }
  /**
   * False when the file exports `transaction = false` (named, on its default export or on
   * `module.exports`): an online migration, run outside a transaction (plugin/migrator/online.ts).
   */
  transaction: boolean
}

const MIGRATION_EXTENSIONS = new Set(['.js', '.cjs', '.mjs', '.ts', '.cts', '.mts'])

/** The library's own migrations: `migrations/` at the package root (from plugin/migrator/ in source, dist/plugin/migrator/ when built). */
export function libraryMigrationsFolder (): string {
  const fromSource = fileURLToPath(new URL('../../migrations/', import.meta.url))
  return existsSync(join(fromSource, '..', 'package.json')) ? fromSource : fileURLToPath(new URL('../../../migrations/', import.meta.url))
}

/** Loads a folder's migration files, sorted by file name (the migration's name). */
export async function loadMigrations (folder: string | undefined): Promise<LoadedMigration[]> {
  if (folder === undefined) return []
  const dir = resolve(folder)
  let entries: string[]
  try {
    entries = await readdir(dir)
  } catch (err) {
    throw new BoardinghouseErrors.INVALID_OPTION(`migrations folder ${dir} cannot be read`, { cause: err })
  }
  const files = entries.filter((f) => MIGRATION_EXTENSIONS.has(extname(f)) && !f.endsWith('.d.ts')).sort()
  const loaded: LoadedMigration[] = []
  for (const file of files) {
    const path = join(dir, file)
    const imported = await importFile(path) as Record<string, unknown> & { default?: Record<string, unknown> }
    const holder = typeof imported.up === 'function' ? imported : imported.default
    const mod = holder as LoadedMigration['module'] | undefined
    if (mod === undefined || typeof mod.up !== 'function') {
      throw new BoardinghouseErrors.INVALID_OPTION(`migration ${path} exports no up() function`)
    }
    loaded.push({ name: file.slice(0, -extname(file).length), path, module: mod, transaction: transactionOption(path, holder as Record<string, unknown>, imported.default) })
  }
  return loaded
}

/**
 * A migration's `transaction` export (umzug-style per-migration option): on the module with `up`,
 * else on its default export (a CommonJS object whose keys the loader did not list). Only a boolean.
 */
function transactionOption (path: string, mod: Record<string, unknown>, fallback: Record<string, unknown> | undefined): boolean {
  const value = mod.transaction ?? fallback?.transaction
  if (value === undefined) return true
  if (typeof value !== 'boolean') {
    throw new BoardinghouseErrors.INVALID_OPTION(`migration ${path} exports transaction = ${JSON.stringify(value) ?? String(value)}: only false (an online migration, run outside a transaction) or true`)
  }
  return value
}

/**
 * Calls a migration function in either of the two formats: umzug's `up({ context })`, or
 * sequelize-cli's `up(queryInterface, Sequelize)` (recognised by its two declared parameters).
 */
export function toRunnable (m: LoadedMigration): RunnableMigration<MigrationContext> {
  const call = (fn: (...args: unknown[]) => Promise<unknown>) => async (params: MigrationParams<MigrationContext>) =>
    fn.length >= 2 ? await fn(params.context.queryInterface, params.context.Sequelize) : await fn(params)
  const down = m.module.down
  return { name: m.name, path: m.path, up: call(m.module.up), ...(down !== undefined ? { down: call(down) } : {}) }
}
