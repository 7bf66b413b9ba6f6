/**
 * Pending schemas (option `pendingSchemas`): spare schemas cloned from the template ahead of time,
 * so that `createSchema` claims one, renaming it in one transaction, instead of replaying the
 * clone DDL. The pool lives in `public.boardinghouse_pending` (one row per spare) and is shared by
 * every process on the database.
 *
 * - A spare has an internal name, `__pending_<16 hex>__`: never a valid tenant name (it starts with
 *   "_"), so it can never be selected, resolved, dumped, loaded or registered; it is not in the
 *   registry (`boardinghouse_schema`), so it is never listed or migrated.
 * - Claim (schema-admin.ts runs `claimStatements` in its creation transaction): lock one spare's row
 *   `FOR UPDATE SKIP LOCKED` (a concurrent claim takes another, or none), check it, `ALTER SCHEMA …
 *   RENAME TO` the tenant's name, rewrite what names the schema as text, delete its row; the
 *   creation transaction then registers the tenant, copies the template's ledger and sends the
 *   notice, as a clone does. All or nothing: a process killed at any point loses no spare and
 *   hands none out twice.
 * - What names the schema after a rename: objects refer to each other by OID (column types,
 *   `nextval('seq'::regclass)` defaults, views, foreign keys, triggers, policies, OWNED BY), so they
 *   follow the rename. Text does not: function bodies are copied from the template unchanged by a
 *   clone too (they name objects unqualified), and the one place the clone DDL writes the new
 *   schema's name is a function's pinned `SET search_path` (clone/sql.ts emitSetting). The fill
 *   records, per such function, its search_path as the clone DDL wrote it, cut at the spare's name
 *   (`rewrites`: `{ fn: oid, pieces }`); the claim sets it again with the tenant's name in the cuts
 *   (`ALTER ROUTINE … SET search_path TO …`, which PostgreSQL stores in the same place of
 *   `proconfig`, normalised as for CREATE FUNCTION). A claimed spare is then indistinguishable from a
 *   fresh clone (test/pending.test.ts compares them with test/fixtures/schema-fingerprint.sql).
 * - Template changes: spares are dropped and re-cloned, not migrated. A spare records the template
 *   version it was cloned at (the ledger and generation of clone/cache.ts, plus the clone and
 *   fingerprint formats); a claim takes only spares of the current version, so a claimed schema is
 *   always at the template's head; refills drop the others. Migrating spares instead would make
 *   them copies of a migrated schema (attribute numbers left by dropped columns, column order
 *   after ADD COLUMN…), not of a fresh clone, and could not follow DDL run by hand in the template
 *   (`invalidate()`), which has no migration; a spare holds no data, so re-cloning loses nothing.
 * - Tampering: the fill stores a fingerprint of every catalog row of the spare (catalog, OID, xmin:
 *   any ALTER, GRANT, COMMENT, CREATE or DROP in it changes it), the main-fork size of its tables
 *   and materialized views (0: no rows ever written) and its sequences' state (never called).
 *   A claim recomputes it (a few index scans of the catalog, no deparsing: bench:create reports
 *   `claim_check_ms`); a spare that differs, or whose schema is gone, is discarded (dropped, its
 *   row deleted, reported as a `pendingError` event) and the claim takes the next.
 * - Refill: after each createSchema (claimed or not) and after a migrate that changed the template,
 *   in the background, off the request, one spare per transaction on one pooled connection at a
 *   time, at most REFILL_BATCH spares per run (a run is started again while creations keep
 *   coming). Fills of all processes are serialised by an advisory lock and count the ready spares
 *   under it: the pool is topped up to N, never past it, and a refill is idempotent; a background
 *   refill skips (quietly) while a migrate or another process's fill holds its lock. A refill's
 *   failure is reported (`pendingError`), never thrown to a request. `fillPending(n)` fills the
 *   whole way, waiting for a migrate in progress.
 */
import { randomBytes } from 'node:crypto'
import type { Sequelize } from 'sequelize'
import { CLONE_FORMAT, STALE_TEMPLATE_STATE, TEMPLATE_VERSION_SQL, renderCloneDDL, splitSettingList, templateVersionCheck, type CloneDDLCache } from './clone/index.js'
import { withConnection, type RawConnection } from './db.js'
import { BoardinghouseErrors } from './errors.js'
import { MIGRATION_LOCK_KEY, MIGRATION_LOCK_SHARED_SQL, waitWhileMigrating } from './migrator/index.js'
import { PENDING_SCHEMA_PATTERN, describe, quoteIdent, quoteLiteral } from './names.js'
import { MAX_PENDING_SCHEMAS } from './options.js'
import { isUndefinedTable, sqlState } from './pg-errors.js'

export const PENDING_TABLE = 'boardinghouse_pending'

/** Spare schemas' names, `__pending_<16 hex>__` (names.ts; the table's CHECK says the same). */
const PENDING_NAME_SQL = quoteLiteral(PENDING_SCHEMA_PATTERN)

function spareName (): string {
  return `__pending_${randomBytes(8).toString('hex')}__`
}

/** Serialises the fills of every process (transaction-level): each counts the ready spares under it. */
export const PENDING_LOCK_KEY = 0x62687064 // 'bhpd'
/** Bump with a migration replacing boardinghouse_pending_fingerprint: spares fingerprinted the old way become stale (re-cloned), not "tampered". */
const FINGERPRINT_FORMAT = '1'
/** Spares a background refill run creates at most (it runs again while creations keep coming). */
export const REFILL_BATCH = 10
/** Spares dropped per transaction (each DROP SCHEMA … CASCADE locks every object of the spare). */
const DROP_BATCH = 4
/** Spares a claim examines at most (each failed check discards one) before it gives up and the creation clones. */
const CLAIM_EXAMINE = 4
/** SQLSTATE raised inside a background fill when a migrate holds the migration lock, or another fill the fill lock: the run stops, quietly. */
const MIGRATING_STATE = 'BHMIG'

/** The version a spare must have to be claimed: the template's (ledger and generation), the clone DDL's format, the fingerprint's. */
const CURRENT_VERSION_SQL = `((${TEMPLATE_VERSION_SQL}) || ${quoteLiteral(`:${CLONE_FORMAT}:${FINGERPRINT_FORMAT}`)})`

/** The fingerprint of the schema named by `name` (an SQL expression), NULL for none (the migration's function). */
function fingerprintOf (name: string): string {
  return `public.boardinghouse_pending_fingerprint((SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = ${name}))`
}

/** The claim's condition, for the creation transaction's registry, ledger and notice statements. */
export const CLAIMED_CONDITION = "pg_catalog.current_setting('boardinghouse.claimed', true) <> ''"

/**
 * The claim's statements, for a creation transaction (after its BEGIN): wait for a migrate in
 * progress (as a clone does), then claim a spare of the template's current version as `schema`
 * (`boardinghouse_claim_pending`, migrations/20260107000000-boardinghouse-pending.js), discarding
 * up to CLAIM_EXAMINE spares that fail their check. Its row carries the outcome (`readClaim`), and
 * `boardinghouse.claimed` is set for the rest of the transaction.
 */
export function claimStatements (schema: string): string[] {
  return [
    MIGRATION_LOCK_SHARED_SQL, // tried, never waited for in the transaction: createSchema waits outside it and tries again
    `SELECT c.claimed AS "bhClaimed", pg_catalog.array_to_string(c.discarded, ',') AS "bhDiscarded"
     FROM public.boardinghouse_claim_pending(${quoteLiteral(schema)}, ${CURRENT_VERSION_SQL}, ${CLAIM_EXAMINE}) c`,
    'SET LOCAL search_path = public'
  ]
}

/** What a claim did, read from the creation transaction's results. */
export interface ClaimOutcome {
  /** The spare's former name, or null when none was claimed. */
  claimed: string | null
  /** Spares discarded by their check. */
  discarded: string[]
}

export function readClaim (rows: ReadonlyArray<Record<string, unknown>>): ClaimOutcome {
  const row = rows.find((r) => Object.hasOwn(r, 'bhClaimed'))
  const claimed = typeof row?.bhClaimed === 'string' && row.bhClaimed !== '' ? row.bhClaimed : null
  const discarded = typeof row?.bhDiscarded === 'string' && row.bhDiscarded !== '' ? row.bhDiscarded.split(',') : []
  return { claimed, discarded }
}

/**
 * The pieces of a function's search_path setting as the clone DDL wrote it (clone/sql.ts
 * emitSetting), cut where it names the spare; null when it does not name it.
 */
export function searchPathPieces (entry: string, spare: string): string[] | null {
  const prefix = 'search_path='
  if (!entry.startsWith(prefix)) return null
  const elements = splitSettingList(entry.slice(prefix.length))
  if (!elements.includes(spare)) return null
  const pieces: string[] = []
  let current = ''
  elements.forEach((element, i) => {
    if (i > 0) current += ', '
    if (element === spare) {
      pieces.push(current)
      current = ''
    } else {
      current += element === '' ? "''" : quoteIdent(element)
    }
  })
  pieces.push(current)
  return pieces
}

type Results = Array<{ rows: Array<Record<string, unknown>> }> | { rows: Array<Record<string, unknown>> }

/** A message's rows, whether it held one statement or several. */
function rowsOf (results: Results): Array<Record<string, unknown>> {
  return Array.isArray(results) ? results.flatMap((r) => r.rows) : results.rows
}

async function run (connection: RawConnection, statements: string[]): Promise<Array<Record<string, unknown>>> {
  return rowsOf(await connection.query(statements.join(';\n')) as unknown as Results)
}

/** A spare as `pendingStatus()` shows it. */
export interface PendingSpare {
  /** Its internal name. */
  schema: string
  /** 'ready': at the template's current version and as cloned; 'stale': of an older template version; 'tampered': changed since it was cloned (or its schema is gone). */
  state: 'ready' | 'stale' | 'tampered'
  createdAt: Date
}

/** The pool as the database holds it (every process's spares). */
export interface PendingPoolState {
  /** Spares a createSchema can claim now. */
  ready: number
  /** Spares of an older template version (the next refill drops them). */
  stale: number
  /** Spares changed by hand since they were cloned (the claim that meets one discards it). */
  tampered: string[]
  /** `__pending_…__` schemas without a row (the next refill drops them). */
  orphans: string[]
  /** Every spare, oldest first. */
  spares: PendingSpare[]
}

/** The pool, and this process's part in it. */
export interface PendingStatus extends PendingPoolState {
  /** The `pendingSchemas` option of this instance. */
  target: number
  /** A background refill of this instance is running. */
  refilling: boolean
  /** createSchema calls of this instance that claimed a spare, and that found none ready and cloned. */
  claimed: number
  missed: number
}

/** What `fillPending` did. */
export interface PendingFillResult {
  /** Spares cloned. */
  created: number
  /** Stale spares and orphan schemas dropped. */
  dropped: number
  /** Spares ready afterwards. */
  ready: number
}

/**
 * The pool's state, for `pendingStatus()` and the doctor: one round trip, a fingerprint check per
 * spare of the current version.
 */
export async function readPendingState (sequelize: Sequelize): Promise<PendingPoolState> {
  return await withConnection(sequelize, async (connection) => {
    let rows: Array<Record<string, unknown>>
    try {
      rows = await run(connection, [
        `SELECT 'spare' AS kind, bh_spare.schema_name AS schema, bh_spare.created_at,
           CASE WHEN bh_spare.template_version IS DISTINCT FROM bh_current.version THEN 'stale'
                WHEN ${fingerprintOf('bh_spare.schema_name')} IS NOT DISTINCT FROM bh_spare.fingerprint THEN 'ready'
                ELSE 'tampered' END AS state
         FROM public.${PENDING_TABLE} bh_spare, (SELECT ${CURRENT_VERSION_SQL} AS version) bh_current
         UNION ALL
         SELECT 'orphan', n.nspname::text, NULL, NULL FROM pg_catalog.pg_namespace n
         WHERE n.nspname ~ ${PENDING_NAME_SQL} AND NOT EXISTS (SELECT 1 FROM public.${PENDING_TABLE} p WHERE p.schema_name = n.nspname::text)
         ORDER BY 1, 3, 2`
      ])
    } catch (err) {
      if (isUndefinedTable(err)) throw new BoardinghouseErrors.NOT_MIGRATED(`table public.${PENDING_TABLE} is missing`, { cause: err })
      throw err
    }
    const spares: PendingSpare[] = rows.filter((r) => r.kind === 'spare')
      .map((r) => ({ schema: String(r.schema), state: r.state as PendingSpare['state'], createdAt: new Date(r.created_at as string | Date) }))
    return {
      ready: spares.filter((s) => s.state === 'ready').length,
      stale: spares.filter((s) => s.state === 'stale').length,
      tampered: spares.filter((s) => s.state === 'tampered').map((s) => s.schema),
      orphans: rows.filter((r) => r.kind === 'orphan').map((r) => String(r.schema)),
      spares
    }
  })
}

export interface PendingPoolDeps {
  sequelize: Sequelize
  clone: CloneDDLCache
  /** The `pendingSchemas` option. */
  target: number
  /** A problem off the request path (a refill that failed, a spare discarded): reported, never thrown. */
  onProblem: (schema: string | null, error: Error) => void
}

function asError (err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

/** One instance's side of the pool: its claims' bookkeeping, its background refills, fillPending and status. */
export class PendingPool {
  /** Fills of this instance, one after another. */
  private chain: Promise<unknown> = Promise.resolve()
  /** A background run is queued or running; `again`: asked for again while it ran. */
  private background = false
  private again = false
  private timer: NodeJS.Immediate | null = null
  private closed = false
  private templateChangedDuringMigrate = false
  private claims = 0
  private misses = 0

  constructor (private readonly deps: PendingPoolDeps) {}

  /** Whether createSchema tries to claim a spare. */
  get enabled (): boolean {
    return this.deps.target > 0
  }

  /** After a claim attempt committed: its bookkeeping and its discarded spares' reports. */
  claimed (outcome: ClaimOutcome): void {
    if (outcome.claimed !== null) this.claims++
    else this.misses++
    for (const schema of outcome.discarded) {
      this.deps.onProblem(schema, new Error(`pending schema "${schema}" changed since it was cloned (or is gone): discarded, not handed out`))
    }
  }

  /** A claim that failed for another reason than the tenant's name: reported; createSchema clones instead. */
  claimFailed (err: unknown): void {
    this.misses++
    this.deps.onProblem(null, new Error(`claiming a pending schema failed, cloned instead: ${asError(err).message}`, { cause: err }))
  }

  /** migrate changed the template (migrator's onTemplateChanged): refill once the migrate is over. */
  templateChanged (): void {
    this.templateChangedDuringMigrate = true
  }

  /** migrate is over: drop the spares it made stale and refill, in the background. */
  migrateEnded (): void {
    if (!this.templateChangedDuringMigrate) return
    this.templateChangedDuringMigrate = false
    this.schedule()
  }

  /** Starts a background refill soon (off the caller's path), unless one is queued; one running runs again. */
  schedule (): void {
    if (!this.enabled || this.closed) return
    if (this.background) {
      this.again = true
      return
    }
    if (this.timer !== null) return
    this.timer = setImmediate(() => {
      this.timer = null
      if (this.closed || this.background) return
      this.background = true
      const runs = async (): Promise<void> => {
        try {
          do {
            this.again = false
            await this.fillTo(this.deps.target, REFILL_BATCH, true)
          } while (this.again && !this.closed)
        } catch (err) {
          this.deps.onProblem(null, new BoardinghouseErrors.PENDING_FILL_FAILED(err instanceof Error ? err.message : String(err), { cause: err }))
        } finally {
          this.background = false
        }
      }
      this.chain = this.chain.then(runs, runs)
    })
  }

  /** Tops the pool up to `n` spares (default: the option), dropping stale spares and orphans first; waits for a migrate in progress. */
  async fill (n: unknown = this.deps.target): Promise<PendingFillResult> {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_PENDING_SCHEMAS) {
      throw new BoardinghouseErrors.INVALID_INPUT(`fillPending: the number of spares must be an integer from 0 to ${MAX_PENDING_SCHEMAS}, not ${describe(n)}`)
    }
    const target = n
    const job = async (): Promise<PendingFillResult> => {
      try {
        return await this.fillTo(target, Infinity, false)
      } catch (err) {
        if (err instanceof BoardinghouseErrors.PENDING_FILL_FAILED) throw err
        throw new BoardinghouseErrors.PENDING_FILL_FAILED(err instanceof Error ? err.message : String(err), { cause: err })
      }
    }
    const result = this.chain.then(job, job)
    this.chain = result.catch(() => {})
    return await result
  }

  async status (): Promise<PendingStatus> {
    const state = await readPendingState(this.deps.sequelize)
    return { target: this.deps.target, ...state, refilling: this.background, claimed: this.claims, missed: this.misses }
  }

  /** Stops background refills: a queued one never starts, a running one stops after its current spare (awaited). */
  async close (): Promise<void> {
    this.closed = true
    if (this.timer !== null) clearImmediate(this.timer)
    this.timer = null
    await this.chain.catch(() => {})
  }

  /**
   * Drops stale spares and orphans, then clones spares one per transaction until `target` are ready
   * or `limit` were made. A background run stops quietly while a migrate holds its lock, and after
   * close().
   */
  private async fillTo (target: number, limit: number, background: boolean): Promise<PendingFillResult> {
    const { sequelize } = this.deps
    let dropped = 0
    for (;;) {
      const n = await withConnection(sequelize, async (connection) => await this.dropStale(connection, background))
      if (n === null) {
        if (background) return { created: 0, dropped, ready: -1 }
        await withConnection(sequelize, waitWhileMigrating)
        continue
      }
      dropped += n
      if (n < DROP_BATCH) break
    }
    let created = 0
    let ready = -1
    while (created < limit && !(background && this.closed)) {
      const outcome = await withConnection(sequelize, async (connection) => await this.fillOne(connection, target, background))
      if (outcome === null) {
        if (background) break
        await withConnection(sequelize, waitWhileMigrating) // a migrate is running: wait outside the transaction
        continue
      }
      ready = outcome.ready
      if (!outcome.created) break
      created++
    }
    return { created, dropped, ready }
  }

  /**
   * The statement that takes the migration lock, shared: tried, raising MIGRATING_STATE while a
   * migrate holds it, never waited for inside the transaction (an online migration's CREATE INDEX
   * CONCURRENTLY waits for every older snapshot, this transaction's too: waiting here would hang
   * both). A background run then stops; fillPending waits outside the transaction and tries again.
   */
  private migrationLock (_background: boolean): string {
    return `DO $bh$ BEGIN IF NOT pg_catalog.pg_try_advisory_xact_lock_shared(${MIGRATION_LOCK_KEY}) THEN
           RAISE EXCEPTION 'a migrate is running' USING ERRCODE = '${MIGRATING_STATE}'; END IF; END $bh$`
  }

  /** One transaction: drops up to DROP_BATCH stale spares and orphan schemas; returns how many (null: a migrate is running). */
  private async dropStale (connection: RawConnection, background: boolean): Promise<number | null> {
    try {
      const rows = await run(connection, [
        'BEGIN',
        'SET LOCAL search_path = pg_catalog, public',
        this.migrationLock(background),
        `DO $bh$
DECLARE
  v_version text := ${CURRENT_VERSION_SQL};
  v_name text;
  v_dropped int := 0;
BEGIN
  FOR v_name IN SELECT p.schema_name FROM public.${PENDING_TABLE} p WHERE p.template_version IS DISTINCT FROM v_version
      ORDER BY p.created_at LIMIT ${DROP_BATCH} FOR UPDATE SKIP LOCKED LOOP
    EXECUTE pg_catalog.format('DROP SCHEMA IF EXISTS %I CASCADE', v_name);
    DELETE FROM public.${PENDING_TABLE} WHERE schema_name = v_name;
    v_dropped := v_dropped + 1;
  END LOOP;
  FOR v_name IN SELECT n.nspname::text FROM pg_catalog.pg_namespace n WHERE n.nspname ~ ${PENDING_NAME_SQL}
      AND NOT EXISTS (SELECT 1 FROM public.${PENDING_TABLE} p WHERE p.schema_name = n.nspname::text)
      ORDER BY 1 LIMIT ${DROP_BATCH} - v_dropped LOOP
    EXECUTE pg_catalog.format('DROP SCHEMA IF EXISTS %I CASCADE', v_name);
    v_dropped := v_dropped + 1;
  END LOOP;
  PERFORM pg_catalog.set_config('boardinghouse.dropped', v_dropped::text, true);
END $bh$`,
        `SELECT pg_catalog.current_setting('boardinghouse.dropped')::int AS "bhDropped"`,
        'COMMIT'
      ])
      return Number(rows.find((r) => Object.hasOwn(r, 'bhDropped'))?.bhDropped ?? 0)
    } catch (err) {
      await connection.query('ROLLBACK').catch(() => {})
      if (sqlState(err) === MIGRATING_STATE) return null
      if (isUndefinedTable(err)) throw new BoardinghouseErrors.NOT_MIGRATED(`table public.${PENDING_TABLE} is missing`, { cause: err })
      throw err
    }
  }

  /**
   * One transaction: under the fill lock, counts the ready spares and, below `target`, clones one
   * (the clone DDL of the template's current version, rendered with its internal name), records its
   * version, fingerprint and search_path rewrites. Null: a migrate or another fill is running
   * (background only).
   */
  private async fillOne (connection: RawConnection, target: number, background: boolean): Promise<{ created: boolean, ready: number } | null> {
    for (let attempt = 0; ; attempt++) {
      const { version, ddl } = await this.deps.clone.get(connection)
      const name = spareName()
      try {
        const head = await run(connection, [
          'BEGIN',
          'SET LOCAL search_path = pg_catalog, public',
          this.migrationLock(background),
          // a background fill never waits for another process's fill: that one tops the pool up
          background
            ? `DO $bh$ BEGIN IF NOT pg_catalog.pg_try_advisory_xact_lock(${PENDING_LOCK_KEY}) THEN
                 RAISE EXCEPTION 'another process is filling the pool' USING ERRCODE = '${MIGRATING_STATE}'; END IF; END $bh$`
            : `SELECT pg_catalog.pg_advisory_xact_lock(${PENDING_LOCK_KEY})`,
          templateVersionCheck(version),
          `SELECT count(*)::int AS "bhReady" FROM public.${PENDING_TABLE} WHERE template_version = ${CURRENT_VERSION_SQL}`
        ])
        const ready = Number(head.find((r) => Object.hasOwn(r, 'bhReady'))?.bhReady ?? 0)
        if (ready >= target) {
          await connection.query('ROLLBACK')
          return { created: false, ready }
        }
        const configs = await run(connection, [
          `CREATE SCHEMA ${quoteIdent(name)}`,
          `SET LOCAL search_path = ${quoteIdent(name)}, public`,
          'SET LOCAL check_function_bodies = off',
          renderCloneDDL(ddl, name),
          'SET LOCAL search_path = pg_catalog, public',
          `SELECT p.oid::text AS "bhFn", c.entry AS "bhConfig" FROM pg_catalog.pg_proc p, pg_catalog.unnest(p.proconfig) AS c(entry)
           WHERE p.pronamespace = (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = ${quoteLiteral(name)}) AND c.entry LIKE 'search\\_path=%'`
        ])
        const rewrites: Array<{ fn: string, pieces: string[] }> = []
        for (const r of configs) {
          if (typeof r.bhFn !== 'string' || typeof r.bhConfig !== 'string') continue
          const pieces = searchPathPieces(r.bhConfig, name)
          if (pieces !== null) rewrites.push({ fn: r.bhFn, pieces })
        }
        await run(connection, [
          `INSERT INTO public.${PENDING_TABLE} (schema_name, template_version, fingerprint, rewrites)
           VALUES (${quoteLiteral(name)}, ${CURRENT_VERSION_SQL}, ${fingerprintOf(quoteLiteral(name))}, ${quoteLiteral(JSON.stringify(rewrites))}::jsonb)`,
          'COMMIT'
        ])
        return { created: true, ready: ready + 1 }
      } catch (err) {
        await connection.query('ROLLBACK').catch(() => {})
        const code = sqlState(err)
        if (code === STALE_TEMPLATE_STATE && attempt === 0) { this.deps.clone.forget(); continue }
        if (code === MIGRATING_STATE) return null
        if (isUndefinedTable(err)) throw new BoardinghouseErrors.NOT_MIGRATED(`table public.${PENDING_TABLE} is missing`, { cause: err })
        throw err
      }
    }
  }
}
