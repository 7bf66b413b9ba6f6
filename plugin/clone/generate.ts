/**
 * Tenant cloning (DESIGN.md §3): reads the catalog of the template schema once and returns DDL that
 * recreates it, object by object, in a new schema.
 *
 * The DDL names every template object unqualified. It is meant to be replayed as one
 * simple-protocol query, after the caller has made the new schema the first entry of the path:
 *
 *   BEGIN; CREATE SCHEMA "t"; SET LOCAL search_path = "t", public;
 *   SET LOCAL check_function_bodies = off; <renderCloneDDL(ddl, 't')> COMMIT;
 *
 * It is generated with `search_path = "<template>", public`, so the catalog's pretty printers
 * (`pg_get_indexdef(oid, 0, true)`, `pg_get_constraintdef(oid, true)`, `pg_get_viewdef(oid, true)`,
 * `pg_get_triggerdef(oid, true)`, `pg_get_expr(.., true)`, `format_type`, regclass output) print
 * template objects unqualified and objects of other schemas (`public.*`) qualified or resolvable
 * through the same path. The template's name is never searched for or replaced in any text: the
 * one place the new schema's name is needed (a function's pinned `search_path` that names the
 * template) is emitted as a marker whose offsets are recorded in the DDL's first line, and
 * `renderCloneDDL` substitutes those offsets only.
 *
 * Copied: enum types, domains (collation, default, NOT NULL, checks), sequences (type, bounds,
 * start, increment, cache, cycle, UNLOGGED, OWNED BY), functions and procedures (sql, plpgsql or any
 * language with a body; C with probin), tables (defaults, identity with its sequence's name and
 * options, stored/virtual generated columns, NOT NULL, named NOT NULL constraints on PostgreSQL 18,
 * collations, UNLOGGED, access method, reloptions incl. toast.*, tablespace, per-column statistics
 * target, storage, compression, n_distinct), constraints with their names (PK, UNIQUE, CHECK,
 * EXCLUDE, FK incl. to public, deferrable, NOT VALID), indexes with their names (partial,
 * expression, unique, options), REPLICA IDENTITY, CLUSTER ON, views and materialized views (in
 * dependency order; materialized views WITH NO DATA), view column defaults, triggers (enabled
 * state kept; internal ones and those named GUARD_TRIGGER_PREFIX* skipped), rules, extended
 * statistics, comments, row-level security and policies.
 * Refused with CloneUnsupportedError: anything else living in the template (aggregates, window
 * functions, SQL-standard function bodies, TRANSFORM, composite/range/base types, partitioned
 * tables, partitions, inheritance, typed tables, foreign tables, operators, collations, text
 * search objects, extension members, invalid indexes, objects shadowed by pg_catalog ...).
 * Not copied: privileges (GRANT/REVOKE), ownership and security labels: clone objects belong to the
 * role that replays the DDL; the template's revoked privileges (its write guard) must not follow.
 */
import type { RawConnection } from '../db.js'
import { TEMPLATE_SCHEMA, quoteIdent, quoteLiteral } from '../names.js'
import { CloneUnsupportedError, arr, b, os, readCatalog, s, type Catalog, type Row } from './queries.js'
import { DDLBuilder } from './render.js'
import { POLICY_CMD, PARALLEL, REL_KEYWORD, RULE_ENABLE, TRIGGER_ENABLE, VOLATILITY, alterRel, dollarQuote, emitSetting, relOptions, seqOptions, stripSemicolon, topoSort } from './sql.js'

/** Triggers whose name starts with this (the template's write guard) are never copied. */
export const GUARD_TRIGGER_PREFIX = '__boardinghouse'

/**
 * Reads the catalog of `template` on `client` (one dedicated connection; its search_path is set to
 * the template while generating and restored afterwards) and returns DDL that recreates the
 * template in a new schema; pass it through `renderCloneDDL(ddl, schema)` before replaying.
 * Rejects with `CloneUnsupportedError` when the template holds an object it cannot reproduce.
 */
export async function generateCloneDDL (client: RawConnection, template: string = TEMPLATE_SCHEMA): Promise<string> {
  const previous = await client.query("SELECT current_setting('search_path') AS search_path")
  const previousPath = s(previous.rows[0] ?? {}, 'search_path')
  let failed = false
  try {
    await client.query("SELECT set_config('search_path', $1, false)", [`${quoteIdent(template)}, public`])
    return await generate(client, template)
  } catch (err) {
    failed = true
    throw err
  } finally {
    try {
      await client.query("SELECT set_config('search_path', $1, false)", [previousPath])
    } catch (restoreError) {
      // After a failure the connection may be in an aborted transaction (whose ROLLBACK restores the
      // path anyway): the first error is the one to report.
      if (!failed) throw restoreError // eslint-disable-line no-unsafe-finally
    }
  }
}

/** The catalog of one template, indexed and ordered for emission, and the DDL being written. */
interface Clone {
  ddl: DDLBuilder
  template: string
  catalog: Catalog
  /** Columns of each relation (by oid), in attnum order. */
  columnsByRel: Map<string, Row[]>
  /** Identity sequences by `<table oid>.<attnum>` of their column. */
  identitySequences: Map<string, Row>
  /** Domains, each after the domains it is based on. */
  domains: Row[]
  /** Tables, each after the tables whose row type its columns use. */
  tables: Row[]
  /** Views and materialized views, each after the views it reads. */
  views: Row[]
}

/** The template's objects in the order that lets each be created after what it needs. */
async function generate (client: RawConnection, template: string): Promise<string> {
  const c = plan(await readCatalog(client, template), template)
  emitTypes(c) // 1. enums, then domains (base type, collation, NOT NULL)
  emitSequences(c) // 2. all but identity sequences
  c.ddl.section('functions')
  emitFunctions(c, 0) // 3. functions whose signature names no template relation's row type
  emitDomainChecks(c) // 4. domain checks and defaults (they may call functions)
  emitTables(c) // 5. tables and their columns' settings
  emitFunctions(c, 1) // functions naming a table's row type
  emitSequenceOwnership(c) // 6.
  emitConstraints(c, false) // 7. constraints other than foreign keys
  emitTableIndexes(c) // 8. indexes that back no constraint, on tables; replica identity
  emitConstraints(c, true) // 9. foreign keys (they may need the unique indexes above)
  emitViews(c) // 10. views and materialized views, then the latter's indexes
  emitFunctions(c, 2) // functions naming a view's row type
  emitTriggersRulesStatistics(c) // 11. never the template's guard
  emitComments(c) // 12.
  emitRowLevelSecurity(c) // 13. RLS flags and policies
  return c.ddl.toString()
}

function plan (catalog: Catalog, template: string): Clone {
  const identitySequences = new Map<string, Row>()
  for (const q of catalog.sequences) if (os(q, 'deptype') === 'i') identitySequences.set(`${s(q, 'owner_rel')}.${s(q, 'owner_attnum')}`, q)
  const columnsByRel = new Map<string, Row[]>()
  for (const col of catalog.columns) {
    const list = columnsByRel.get(s(col, 'rel'))
    if (list === undefined) columnsByRel.set(s(col, 'rel'), [col])
    else list.push(col)
  }
  const oid = (r: Row): string => s(r, 'oid')
  const tableDeps = (r: Row): string[] => (columnsByRel.get(s(r, 'oid')) ?? []).map((c) => os(c, 'rowtype_rel')).filter((x): x is string => x !== null)
  return {
    ddl: new DDLBuilder(),
    template,
    catalog,
    columnsByRel,
    identitySequences,
    domains: topoSort(catalog.types.filter((t) => s(t, 'kind') === 'd'), oid, (t) => arr(t, 'base_oids'), 'domains'),
    tables: topoSort(catalog.relations.filter((r) => s(r, 'kind') === 'r'), oid, tableDeps, 'tables'),
    views: topoSort(catalog.relations.filter((r) => s(r, 'kind') === 'v' || s(r, 'kind') === 'm'), oid, (r) => arr(r, 'deps'), 'views')
  }
}

function domainConstraints (t: Row): Array<{ name: string, type: string, def: string }> {
  const v = t.constraints
  return Array.isArray(v) ? v as Array<{ name: string, type: string, def: string }> : []
}

function emitTypes ({ ddl, catalog, domains }: Clone): void {
  ddl.section('types')
  for (const t of catalog.types.filter((t) => s(t, 'kind') === 'e')) {
    ddl.statement(`CREATE TYPE ${quoteIdent(s(t, 'name'))} AS ENUM (${arr(t, 'labels').map(quoteLiteral).join(', ')})`)
  }
  for (const t of domains) {
    let text = `CREATE DOMAIN ${quoteIdent(s(t, 'name'))} AS ${s(t, 'base_type')}`
    const collation = os(t, 'collation')
    if (collation !== null) text += ` COLLATE ${collation}`
    const namedNotNull = domainConstraints(t).find((k) => k.type === 'n')
    if (namedNotNull !== undefined) text += ` CONSTRAINT ${quoteIdent(namedNotNull.name)} NOT NULL`
    else if (b(t, 'not_null')) text += ' NOT NULL'
    ddl.statement(text)
  }
}

/** Identity sequences are created with their column; OWNED BY comes after the tables. */
function emitSequences ({ ddl, catalog }: Clone): void {
  ddl.section('sequences')
  for (const q of catalog.sequences) {
    if (os(q, 'deptype') === 'i') continue
    ddl.statement(`CREATE ${s(q, 'persistence') === 'u' ? 'UNLOGGED ' : ''}SEQUENCE ${quoteIdent(s(q, 'name'))} ` +
      seqOptions(s(q, 'type'), s(q, 'start'), s(q, 'increment'), s(q, 'min'), s(q, 'max'), s(q, 'cache'), b(q, 'cycle')))
  }
}

/**
 * Functions and procedures of one group: 0, signatures that name no template relation's row type
 * (before the tables); 1, those naming a table's row type (after the tables); 2, a view's (after the views).
 */
function emitFunctions (c: Clone, phase: 0 | 1 | 2): void {
  for (const f of c.catalog.functions) if (Number(os(f, 'rowtype_phase') ?? 0) === phase) emitFunction(c, f)
}

function emitFunction ({ ddl, template }: Clone, f: Row): void {
  const isProcedure = s(f, 'kind') === 'p'
  ddl.add(`CREATE ${isProcedure ? 'PROCEDURE' : 'FUNCTION'} ${quoteIdent(s(f, 'name'))}(${s(f, 'args')})`)
  if (!isProcedure) ddl.add(` RETURNS ${s(f, 'result')}`)
  ddl.add(`\n LANGUAGE ${quoteIdent(s(f, 'language'))}`)
  if (!isProcedure) {
    ddl.add(` ${VOLATILITY[s(f, 'volatility')] ?? 'VOLATILE'}`)
    ddl.add(b(f, 'strict') ? ' STRICT' : ' CALLED ON NULL INPUT')
    if (b(f, 'leakproof')) ddl.add(' LEAKPROOF')
    ddl.add(` PARALLEL ${PARALLEL[s(f, 'parallel')] ?? 'UNSAFE'} COST ${s(f, 'cost')}`)
    if (b(f, 'retset')) ddl.add(` ROWS ${s(f, 'rows')}`)
    const support = os(f, 'support')
    if (support !== null) ddl.add(` SUPPORT ${support}`)
  }
  if (b(f, 'security_definer')) ddl.add(' SECURITY DEFINER')
  for (const entry of arr(f, 'config')) emitSetting(ddl, entry, template)
  const bin = os(f, 'bin')
  ddl.add('\nAS ')
  if (bin !== null) ddl.add(`${quoteLiteral(bin)}, ${quoteLiteral(s(f, 'src'))}`)
  else ddl.add(dollarQuote(s(f, 'src')))
  ddl.add(';\n')
}

function emitDomainChecks ({ ddl, template, domains }: Clone): void {
  for (const t of domains) {
    for (const k of domainConstraints(t)) {
      if (k.type === 'c') ddl.statement(`ALTER DOMAIN ${quoteIdent(s(t, 'name'))} ADD CONSTRAINT ${quoteIdent(k.name)} ${k.def}`)
      else if (k.type !== 'n') throw new CloneUnsupportedError(template, [`domain constraint ${k.name} of type ${k.type}`])
    }
    const def = os(t, 'default')
    if (def !== null) ddl.statement(`ALTER DOMAIN ${quoteIdent(s(t, 'name'))} SET DEFAULT ${def}`)
  }
}

/** CREATE TABLE for each table, then the columns' settings that CREATE TABLE cannot state. */
function emitTables (c: Clone): void {
  const { ddl } = c
  ddl.section('tables')
  const columnAlters: string[] = []
  for (const t of c.tables) {
    const table = quoteIdent(s(t, 'name'))
    const defs: string[] = []
    for (const col of c.columnsByRel.get(s(t, 'oid')) ?? []) {
      defs.push(columnDefinition(c, t, col, columnAlters))
      columnAlters.push(...columnSettings(table, col))
    }
    let text = `CREATE ${s(t, 'persistence') === 'u' ? 'UNLOGGED ' : ''}TABLE ${table} (\n  ${defs.join(',\n  ')}\n)`
    const am = os(t, 'am')
    if (am !== null) text += ` USING ${quoteIdent(am)}`
    const options = [...relOptions(arr(t, 'options')), ...relOptions(arr(t, 'toast_options'), 'toast.')]
    if (options.length > 0) text += ` WITH (${options.join(', ')})`
    const tablespace = os(t, 'tablespace')
    if (tablespace !== null) text += ` TABLESPACE ${quoteIdent(tablespace)}`
    ddl.statement(text)
  }
  for (const text of columnAlters) ddl.statement(text)
}

/** One column of CREATE TABLE; an identity sequence of another type than the column's adds its ALTER to `alters`. */
function columnDefinition ({ template, identitySequences }: Clone, t: Row, c: Row, alters: string[]): string {
  let def = `${quoteIdent(s(c, 'name'))} ${s(c, 'type')}`
  const collation = os(c, 'collation')
  if (collation !== null) def += ` COLLATE ${collation}`
  const expr = os(c, 'default')
  const generated = s(c, 'generated')
  if (generated === 's' || generated === 'v') {
    if (expr === null) throw new Error(`generateCloneDDL: generated column ${s(t, 'name')}.${s(c, 'name')} has no expression`)
    def += ` GENERATED ALWAYS AS (${expr}) ${generated === 's' ? 'STORED' : 'VIRTUAL'}`
  } else if (generated !== '') {
    throw new CloneUnsupportedError(template, [`column ${s(t, 'name')}.${s(c, 'name')} with attgenerated '${generated}'`])
  } else if (expr !== null) {
    def += ` DEFAULT ${expr}`
  }
  const identity = s(c, 'identity')
  if (identity !== '') {
    const q = identitySequences.get(`${s(t, 'oid')}.${s(c, 'attnum')}`)
    if (q === undefined) throw new Error(`generateCloneDDL: identity column ${s(t, 'name')}.${s(c, 'name')} has no sequence`)
    // the identity sequence takes the column's type; a different one (ALTER SEQUENCE .. AS) is set afterwards
    def += ` GENERATED ${identity === 'a' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY (SEQUENCE NAME ${quoteIdent(s(q, 'name'))} ` +
      seqOptions(null, s(q, 'start'), s(q, 'increment'), s(q, 'min'), s(q, 'max'), s(q, 'cache'), b(q, 'cycle')) + ')'
    if (s(q, 'type') !== s(c, 'type')) alters.push(`ALTER SEQUENCE ${quoteIdent(s(q, 'name'))} AS ${s(q, 'type')}`)
  }
  const nnName = os(c, 'nn_name')
  if (nnName !== null) {
    // PostgreSQL 18+: NOT NULL is a named constraint; a NOT VALID one is added with the other constraints
    if (b(c, 'nn_valid')) def += ` CONSTRAINT ${quoteIdent(nnName)} NOT NULL${b(c, 'nn_noinherit') ? ' NO INHERIT' : ''}`
  } else if (b(c, 'not_null')) {
    def += ' NOT NULL'
  }
  return def
}

/** Storage, compression, statistics target and options of one column, as ALTER TABLE statements. */
function columnSettings (table: string, c: Row): string[] {
  const column = quoteIdent(s(c, 'name'))
  const out: string[] = []
  const storage = os(c, 'storage')
  if (storage !== null) {
    const word = ({ p: 'PLAIN', e: 'EXTERNAL', m: 'MAIN', x: 'EXTENDED' } as Record<string, string>)[storage]
    if (word === undefined) throw new Error(`generateCloneDDL: unknown storage '${storage}'`)
    out.push(`ALTER TABLE ${table} ALTER COLUMN ${column} SET STORAGE ${word}`)
  }
  const compression = os(c, 'compression')
  if (compression !== null) out.push(`ALTER TABLE ${table} ALTER COLUMN ${column} SET COMPRESSION ${compression}`)
  const stattarget = os(c, 'stattarget')
  if (stattarget !== null) out.push(`ALTER TABLE ${table} ALTER COLUMN ${column} SET STATISTICS ${stattarget}`)
  // Options named pg_* are the server's own (some builds stamp every column with one, e.g.
  // pg_attver, and ignore attempts to set it): copy only the user-settable ones.
  const options = arr(c, 'options').filter((o) => !o.startsWith('pg_'))
  if (options.length > 0) out.push(`ALTER TABLE ${table} ALTER COLUMN ${column} SET (${relOptions(options).join(', ')})`)
  return out
}

function emitSequenceOwnership ({ ddl, catalog }: Clone): void {
  for (const q of catalog.sequences) {
    if (os(q, 'deptype') !== 'a') continue
    ddl.statement(`ALTER SEQUENCE ${quoteIdent(s(q, 'name'))} OWNED BY ${quoteIdent(s(q, 'owner_table'))}.${quoteIdent(s(q, 'owner_column'))}`)
  }
}

/** Constraints with their names: all but foreign keys, or (after the indexes they may need) foreign keys only. */
function emitConstraints ({ ddl, catalog }: Clone, foreignKeys: boolean): void {
  ddl.section(foreignKeys ? 'foreign keys' : 'constraints')
  for (const k of catalog.constraints) {
    if ((s(k, 'type') === 'f') !== foreignKeys) continue
    ddl.statement(`ALTER TABLE ${quoteIdent(s(k, 'table'))} ADD CONSTRAINT ${quoteIdent(s(k, 'name'))} ${s(k, 'def')}`)
  }
}

/** Indexes that back no constraint on relations of `kind` (tables, or materialized views), with tablespace and CLUSTER ON. */
function emitIndexes ({ ddl, catalog }: Clone, kind: 'r' | 'm'): void {
  for (const i of catalog.indexes) {
    if (s(i, 'table_kind') !== kind) continue
    if (!b(i, 'backs_constraint')) ddl.statement(s(i, 'def'))
    const tablespace = os(i, 'tablespace')
    if (tablespace !== null) ddl.statement(`ALTER INDEX ${quoteIdent(s(i, 'name'))} SET TABLESPACE ${quoteIdent(tablespace)}`)
    if (b(i, 'clustered')) ddl.statement(`${alterRel(s(i, 'table_kind'))} ${quoteIdent(s(i, 'table'))} CLUSTER ON ${quoteIdent(s(i, 'name'))}`)
  }
}

function emitTableIndexes (c: Clone): void {
  const { ddl, catalog } = c
  ddl.section('indexes')
  emitIndexes(c, 'r')
  for (const t of c.tables) {
    const replident = s(t, 'replident')
    if (replident === 'f') ddl.statement(`ALTER TABLE ${quoteIdent(s(t, 'name'))} REPLICA IDENTITY FULL`)
    else if (replident === 'n') ddl.statement(`ALTER TABLE ${quoteIdent(s(t, 'name'))} REPLICA IDENTITY NOTHING`)
    else if (replident === 'i') {
      const index = catalog.indexes.find((i) => b(i, 'replident') && s(i, 'table') === s(t, 'name'))
      if (index === undefined) throw new Error(`generateCloneDDL: table ${s(t, 'name')} has REPLICA IDENTITY USING INDEX but no such index`)
      ddl.statement(`ALTER TABLE ${quoteIdent(s(t, 'name'))} REPLICA IDENTITY USING INDEX ${quoteIdent(s(index, 'name'))}`)
    }
  }
}

/** Views and materialized views (WITH NO DATA) with their column defaults, then the latter's indexes. */
function emitViews (c: Clone): void {
  const { ddl } = c
  ddl.section('views')
  for (const v of c.views) {
    const name = quoteIdent(s(v, 'name'))
    const query = stripSemicolon(s(v, 'viewdef'))
    const options = relOptions(arr(v, 'options'))
    const withOptions = options.length > 0 ? ` WITH (${options.join(', ')})` : ''
    if (s(v, 'kind') === 'v') {
      ddl.statement(`CREATE VIEW ${name}${withOptions} AS\n${query}`)
    } else {
      const am = os(v, 'am')
      const tablespace = os(v, 'tablespace')
      ddl.statement(`CREATE MATERIALIZED VIEW ${name}${am !== null ? ` USING ${quoteIdent(am)}` : ''}${withOptions}` +
        `${tablespace !== null ? ` TABLESPACE ${quoteIdent(tablespace)}` : ''} AS\n${query}\nWITH NO DATA`)
    }
    for (const col of c.columnsByRel.get(s(v, 'oid')) ?? []) {
      const expr = os(col, 'default')
      if (expr !== null) ddl.statement(`${alterRel(s(v, 'kind'))} ${name} ALTER COLUMN ${quoteIdent(s(col, 'name'))} SET DEFAULT ${expr}`)
    }
  }
  emitIndexes(c, 'm')
}

function emitTriggersRulesStatistics ({ ddl, template, catalog }: Clone): void {
  ddl.section('triggers, rules, statistics')
  for (const tg of catalog.triggers) {
    if (s(tg, 'name').startsWith(GUARD_TRIGGER_PREFIX)) continue
    ddl.statement(s(tg, 'def'))
    const change = TRIGGER_ENABLE[s(tg, 'enabled')]
    if (change !== undefined) ddl.statement(`ALTER TABLE ${quoteIdent(s(tg, 'table'))} ${change} ${quoteIdent(s(tg, 'name'))}`)
  }
  for (const r of catalog.rules) {
    ddl.statement(stripSemicolon(s(r, 'def')))
    const change = RULE_ENABLE[s(r, 'enabled')]
    if (change !== undefined) ddl.statement(`ALTER TABLE ${quoteIdent(s(r, 'table'))} ${change} ${quoteIdent(s(r, 'name'))}`)
  }
  for (const st of catalog.statistics) {
    if (!b(st, 'table_in_template')) throw new CloneUnsupportedError(template, [`statistics object ${s(st, 'name')} on a table outside the template`])
    const kinds = arr(st, 'kinds')
    ddl.statement(`CREATE STATISTICS ${quoteIdent(s(st, 'name'))}${kinds.length > 0 ? ` (${kinds.join(', ')})` : ''} ON ${s(st, 'columns')} FROM ${quoteIdent(s(st, 'table'))}`)
    const target = os(st, 'stattarget')
    if (target !== null) ddl.statement(`ALTER STATISTICS ${quoteIdent(s(st, 'name'))} SET STATISTICS ${target}`)
  }
}

function emitComments ({ ddl, catalog }: Clone): void {
  ddl.section('comments')
  for (const c of catalog.comments) {
    const target = commentTarget(c)
    if (target !== null) ddl.statement(`COMMENT ON ${target} IS ${quoteLiteral(s(c, 'description'))}`)
  }
}

/** What `COMMENT ON` names for one row of Q_COMMENTS; null for a relation kind refused earlier and for the guard trigger. */
function commentTarget (c: Row): string | null {
  const kind = s(c, 'kind')
  const subkind = os(c, 'subkind')
  const name = quoteIdent(s(c, 'name'))
  const parent = quoteIdent(os(c, 'parent') ?? '')
  switch (kind) {
    case 'rel': {
      const keyword = REL_KEYWORD[subkind ?? '']
      return keyword === undefined ? null : `${keyword} ${name}`
    }
    case 'column': return `COLUMN ${parent}.${name}`
    case 'type': return `${subkind === 'd' ? 'DOMAIN' : 'TYPE'} ${name}`
    case 'function': return `${subkind === 'p' ? 'PROCEDURE' : 'FUNCTION'} ${name}(${s(c, 'args')})`
    case 'constraint': return `CONSTRAINT ${name} ON ${subkind === 'domain' ? 'DOMAIN ' : ''}${parent}`
    case 'trigger': return s(c, 'name').startsWith(GUARD_TRIGGER_PREFIX) ? null : `TRIGGER ${name} ON ${parent}`
    case 'policy': return `POLICY ${name} ON ${parent}`
    case 'rule': return `RULE ${name} ON ${parent}`
    default: return `STATISTICS ${name}`
  }
}

function emitRowLevelSecurity ({ ddl, catalog, tables }: Clone): void {
  ddl.section('row-level security')
  for (const t of tables) {
    if (b(t, 'rls')) ddl.statement(`ALTER TABLE ${quoteIdent(s(t, 'name'))} ENABLE ROW LEVEL SECURITY`)
    if (b(t, 'force_rls')) ddl.statement(`ALTER TABLE ${quoteIdent(s(t, 'name'))} FORCE ROW LEVEL SECURITY`)
  }
  for (const p of catalog.policies) {
    const roles = b(p, 'to_public') ? ['PUBLIC', ...arr(p, 'roles').map(quoteIdent)] : arr(p, 'roles').map(quoteIdent)
    let text = `CREATE POLICY ${quoteIdent(s(p, 'name'))} ON ${quoteIdent(s(p, 'table'))} AS ${b(p, 'permissive') ? 'PERMISSIVE' : 'RESTRICTIVE'}` +
      ` FOR ${POLICY_CMD[s(p, 'cmd')] ?? 'ALL'} TO ${roles.join(', ')}`
    const qual = os(p, 'qual')
    if (qual !== null) text += ` USING (${qual})`
    const withCheck = os(p, 'with_check')
    if (withCheck !== null) text += ` WITH CHECK (${withCheck})`
    ddl.statement(text)
  }
}
