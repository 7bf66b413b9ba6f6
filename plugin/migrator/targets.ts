/**
 * Which tenant schemas a migrate, status or rollback covers: `schemas` and `exclude`, each a list of
 * names and `*` patterns, matched against the registry (active and inactive schemas alike). The
 * template is never a target: it always migrates first and alone.
 */
import { QueryTypes, type Sequelize } from 'sequelize'
import { SCHEMA_TABLE } from '../../models/index.js'
import { BoardinghouseErrors } from '../errors.js'
import { TEMPLATE_SCHEMA, describe } from '../names.js'

export interface MigrationTargeting {
  /** Tenant schemas to cover: names and `*` patterns (`eu_*`); default every schema. */
  schemas?: string | readonly string[]
  /** Tenant schemas to leave out: names and `*` patterns. */
  exclude?: string | readonly string[]
}

/** Targeting after validation: `schemas: null` is every schema. */
export interface Targeting { schemas: string[] | null, exclude: string[] }

const PATTERN_RE = /^[a-z0-9_*]+$/

/** Why `pattern` cannot be a schema pattern, or null when it can. */
export function patternProblem (pattern: unknown): string | null {
  if (typeof pattern !== 'string') return 'must be a string'
  if (pattern === '') return 'must not be empty'
  if (pattern === TEMPLATE_SCHEMA) return 'is the template, which always migrates first and alone: it cannot be targeted'
  if (pattern.length > 63) return 'must be at most 63 characters'
  if (!PATTERN_RE.test(pattern)) return 'may hold only a-z, 0-9, _ and the wildcard *'
  return null
}

/** A list option given as one string or an array of strings; each may hold several, comma-separated. */
export function listOption (what: string, value: unknown): string[] {
  const items = typeof value === 'string' ? [value] : Array.isArray(value) ? value as unknown[] : null
  if (items === null) throw new BoardinghouseErrors.INVALID_INPUT(`${what} must be a string or an array of strings, not ${describe(value)}`)
  const out: string[] = []
  for (const item of items) {
    if (typeof item !== 'string') throw new BoardinghouseErrors.INVALID_INPUT(`${what} must hold strings, not ${describe(item)}`)
    out.push(...item.split(',').map((s) => s.trim()))
  }
  return out
}

function patterns (what: string, value: unknown): string[] {
  const list = listOption(what, value)
  for (const p of list) {
    const problem = patternProblem(p)
    if (problem !== null) throw new BoardinghouseErrors.INVALID_INPUT(`${what} pattern ${describe(p)} ${problem}`)
  }
  return [...new Set(list)]
}

/** Validates `schemas` and `exclude` (FST_BH_INVALID_INPUT); null when neither was given. */
export function targetingOf (options: { schemas?: unknown, exclude?: unknown }): Targeting | null {
  if (options.schemas === undefined && options.exclude === undefined) return null
  const schemas = options.schemas === undefined ? null : patterns('schemas', options.schemas)
  if (schemas !== null && schemas.length === 0) throw new BoardinghouseErrors.INVALID_INPUT('schemas must name at least one schema or pattern')
  return { schemas, exclude: options.exclude === undefined ? [] : patterns('exclude', options.exclude) }
}

function matcher (pattern: string): (name: string) => boolean {
  if (!pattern.includes('*')) return (name) => name === pattern
  const re = new RegExp('^' + pattern.split('*').join('[a-z0-9_]*') + '$')
  return (name) => re.test(name)
}

export interface Selection {
  /** The targeted tenant schemas, sorted by name. */
  schemas: string[]
  /** Patterns of `schemas` that matched no schema, and of `exclude` that left out none. */
  unmatched: string[]
}

/** Applies the targeting to the registered schema names (`all`). */
export function select (all: readonly string[], targeting: Targeting): Selection {
  const unmatched: string[] = []
  let chosen: string[] = [...all]
  if (targeting.schemas !== null) {
    const tests = targeting.schemas.map((p) => ({ p, test: matcher(p), hit: false }))
    chosen = all.filter((name) => {
      let hit = false
      for (const t of tests) if (t.test(name)) { t.hit = true; hit = true }
      return hit
    })
    unmatched.push(...tests.filter((t) => !t.hit).map((t) => t.p))
  }
  const excludes = targeting.exclude.map((p) => ({ p, test: matcher(p), hit: false }))
  chosen = chosen.filter((name) => {
    let hit = false
    for (const t of excludes) if (t.test(name)) { t.hit = true; hit = true }
    return !hit
  })
  unmatched.push(...excludes.filter((t) => !t.hit).map((t) => t.p))
  return { schemas: chosen.sort(), unmatched }
}

/** The registered tenant schemas, by name; none when the registry does not exist yet. */
export async function registeredSchemas (sequelize: Sequelize): Promise<string[]> {
  const present = await sequelize.query<{ present: boolean }>(`SELECT to_regclass('public.${SCHEMA_TABLE}') IS NOT NULL AS present`,
    { type: QueryTypes.SELECT, logging: false })
  if (present[0]?.present !== true) return []
  const names = await sequelize.query<{ schema_name: string }>(`SELECT schema_name FROM public.${SCHEMA_TABLE} ORDER BY schema_name`,
    { type: QueryTypes.SELECT, logging: false })
  return names.map((r) => r.schema_name)
}
