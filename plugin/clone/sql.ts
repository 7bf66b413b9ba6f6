/** Text helpers of the clone DDL: ordering, quoting, options, settings. */
import { quoteIdent, quoteLiteral } from '../names.js'
import type { DDLBuilder } from './render.js'

/** Orders `items` so each comes after the items it depends on (stable otherwise). */
export function topoSort<T> (items: T[], key: (item: T) => string, deps: (item: T) => string[], what: string): T[] {
  const byKey = new Map(items.map((item) => [key(item), item]))
  const state = new Map<string, 'visiting' | 'done'>()
  const out: T[] = []
  const visit = (item: T, path: string[]): void => {
    const k = key(item)
    const st = state.get(k)
    if (st === 'done') return
    if (st === 'visiting') throw new Error(`generateCloneDDL: circular dependency between ${what}: ${[...path, k].join(' -> ')}`)
    state.set(k, 'visiting')
    for (const d of deps(item)) {
      const dep = byKey.get(d)
      if (dep !== undefined && d !== k) visit(dep, [...path, k])
    }
    state.set(k, 'done')
    out.push(item)
  }
  for (const item of items) visit(item, [])
  return out
}

/** A dollar-quote tag that does not occur in `body`. */
export function dollarQuote (body: string): string {
  let tag = '$fn$'
  for (let i = 1; body.includes(tag); i++) tag = `$fn${i}$`
  return tag + body + tag
}

/** `name=value` reloption strings → `WITH (...)` contents. */
export function relOptions (options: string[], prefix = ''): string[] {
  return options.map((opt) => {
    const eq = opt.indexOf('=')
    const name = eq < 0 ? opt : opt.slice(0, eq)
    const value = eq < 0 ? 'true' : opt.slice(eq + 1)
    return `${prefix}${quoteIdent(name)}=${quoteLiteral(value)}`
  })
}

/** Settings whose value is a list of identifiers (pg_dump's variable_is_guc_list_quote). */
const LIST_SETTINGS = new Set(['local_preload_libraries', 'search_path', 'session_preload_libraries', 'shared_preload_libraries', 'temp_tablespaces', 'unix_socket_directories'])

/**
 * Splits a list setting's value into its elements, as PostgreSQL's SplitIdentifierString does:
 * double-quoted elements keep their case ("" is a quote), unquoted ones are trimmed and downcased.
 */
export function splitSettingList (value: string): string[] {
  const out: string[] = []
  let i = 0
  const n = value.length
  const isSpace = (ch: string | undefined): boolean => ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\f' || ch === '\v'
  while (i < n && isSpace(value[i])) i++
  if (i === n) return out
  for (;;) {
    let element: string
    if (value[i] === '"') {
      element = ''
      i++
      for (;;) {
        if (i >= n) throw new Error(`unterminated quoted identifier in setting value ${JSON.stringify(value)}`)
        if (value[i] === '"') {
          if (value[i + 1] === '"') { element += '"'; i += 2; continue }
          i++
          break
        }
        element += value[i]
        i++
      }
    } else {
      const start = i
      while (i < n && value[i] !== ',' && !isSpace(value[i])) i++
      element = value.slice(start, i).replace(/[A-Z]/g, (c) => c.toLowerCase())
      if (element === '') throw new Error(`empty element in setting value ${JSON.stringify(value)}`)
    }
    out.push(element)
    while (i < n && isSpace(value[i])) i++
    if (i === n) break
    if (value[i] !== ',') throw new Error(`malformed list in setting value ${JSON.stringify(value)}`)
    i++
    while (i < n && isSpace(value[i])) i++
  }
  return out
}

/** `SET` clause of a function for one `proconfig` entry; a search_path element naming the template becomes the new schema. */
export function emitSetting (ddl: DDLBuilder, entry: string, template: string): void {
  const eq = entry.indexOf('=')
  if (eq <= 0) throw new Error(`generateCloneDDL: unreadable function setting ${JSON.stringify(entry)}`)
  const name = entry.slice(0, eq)
  const value = entry.slice(eq + 1)
  ddl.add(' SET ' + name.split('.').map(quoteIdent).join('.') + ' TO ')
  if (!LIST_SETTINGS.has(name.toLowerCase())) {
    ddl.add(quoteLiteral(value))
    return
  }
  const elements = splitSettingList(value)
  if (elements.length === 0) { ddl.add("''"); return }
  elements.forEach((element, i) => {
    if (i > 0) ddl.add(', ')
    if (name.toLowerCase() === 'search_path' && element === template) ddl.target()
    else if (element === '') ddl.add("''")
    else ddl.add(quoteIdent(element))
  })
}

export function seqOptions (type: string | null, start: string, increment: string, min: string, max: string, cache: string, cycle: boolean): string {
  return `${type !== null ? `AS ${type} ` : ''}INCREMENT BY ${increment} MINVALUE ${min} MAXVALUE ${max} START WITH ${start} CACHE ${cache} ${cycle ? 'CYCLE' : 'NO CYCLE'}`
}

export function stripSemicolon (def: string): string {
  return def.trim().replace(/;\s*$/, '')
}

export const TRIGGER_ENABLE: Record<string, string> = { D: 'DISABLE TRIGGER', R: 'ENABLE REPLICA TRIGGER', A: 'ENABLE ALWAYS TRIGGER' }
export const RULE_ENABLE: Record<string, string> = { D: 'DISABLE RULE', R: 'ENABLE REPLICA RULE', A: 'ENABLE ALWAYS RULE' }
export const POLICY_CMD: Record<string, string> = { '*': 'ALL', r: 'SELECT', a: 'INSERT', w: 'UPDATE', d: 'DELETE' }
export const VOLATILITY: Record<string, string> = { i: 'IMMUTABLE', s: 'STABLE', v: 'VOLATILE' }
export const PARALLEL: Record<string, string> = { s: 'SAFE', r: 'RESTRICTED', u: 'UNSAFE' }
export const REL_KEYWORD: Record<string, string> = { r: 'TABLE', v: 'VIEW', m: 'MATERIALIZED VIEW', S: 'SEQUENCE', i: 'INDEX' }

/** `ALTER TABLE`/`ALTER VIEW`/`ALTER MATERIALIZED VIEW` for a relation kind. */
export function alterRel (kind: string): string {
  return kind === 'v' ? 'ALTER VIEW' : kind === 'm' ? 'ALTER MATERIALIZED VIEW' : 'ALTER TABLE'
}
