/**
 * The CLI's `migrate` command: `migrate` (targeted and staged), `migrate status` / `migrate
 * --dry-run` (read-only, no lock) and `migrate down`. Option values are checked before connecting
 * (a usage error, exit 2); failures while running exit 1, each failed schema on its own line.
 */
import { Option, type Command } from 'commander'
import cliProgress from 'cli-progress'
import type { Boardinghouse } from './boardinghouse.js'
import { BoardinghouseErrors } from './errors.js'
import { schemaNameProblem } from './names.js'
import { listed, type MigrateBatch, type MigrateProgress, type MigrationFailure } from './migrator/fleet.js'
import type { MigrationStatus } from './migrator/status.js'
import { patternProblem } from './migrator/targets.js'

/** What the migrate command needs of the CLI (plugin/cli.ts). */
export interface MigrateCommandDeps {
  io: { out: (text: string) => void, err: (text: string) => void, isTTY: boolean }
  withApi: <T>(fn: (bh: Boardinghouse) => Promise<T>) => Promise<T>
  usageError: (message: string) => Error
}

interface MigrateCliOptions {
  concurrency?: number
  schema?: string[]
  exclude?: string[]
  canary?: string[]
  batch?: number
  maxFailures?: number
  maintenance?: true | number
  to?: string
  step?: number
  dryRun?: boolean
  json?: boolean
}

/** Progress on multi-schema work: a bar on a terminal, a plain line per tenth otherwise. */
function progressReporter (io: MigrateCommandDeps['io'], verb: string): { onProgress: (p: MigrateProgress) => void, onBatch: (b: MigrateBatch) => void, stop: () => void } {
  let bar: cliProgress.SingleBar | null = null
  let lastTenth = -1
  let canaryFailed = 0
  return {
    onProgress (p) {
      if (p.phase === 'shared') {
        io.err(`shared migrations: ${p.total} ran\n`)
        return
      }
      if (p.phase === 'template') {
        io.err(`template ${p.schema ?? ''} ${verb}\n`)
        return
      }
      if (p.phase === 'canary') {
        const failed = (p.failed ?? 0) > canaryFailed
        canaryFailed = p.failed ?? 0
        io.err(`canary ${p.schema ?? ''} ${failed ? 'failed' : verb} (${p.done}/${p.total})\n`)
        return
      }
      if (io.isTTY) {
        if (bar === null) {
          bar = new cliProgress.SingleBar({ format: 'schemas [{bar}] {value}/{total} {schema}', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic)
          bar.start(p.total, 0, { schema: '' })
        }
        bar.update(p.done, { schema: p.schema ?? '' })
        return
      }
      const tenth = Math.floor((p.done * 10) / p.total)
      if (tenth !== lastTenth || p.done === p.total) {
        lastTenth = tenth
        io.err(`schemas ${verb}: ${p.done}/${p.total}${p.failed !== undefined && p.failed > 0 ? ` (${p.failed} failed)` : ''}\n`)
      }
    },
    onBatch (b) {
      bar?.stop()
      bar = null
      io.err(`batch ${b.batch}/${b.batches}: ${b.schemas.length} schemas, ${b.succeeded} ${verb}, ${b.failed} failed (${b.done}/${b.total} done)\n`)
    },
    stop () { bar?.stop() }
  }
}

/** The table of `migrate status`: one line per schema behind, then a summary. */
function statusTable (s: MigrationStatus): string {
  const rows: string[] = []
  if (s.shared.length > 0) rows.push(`public (shared)\t${s.shared.length}\t${s.shared.join(', ')}`)
  if (s.template.length > 0) rows.push(`__template__\t${s.template.length}\t${s.template.join(', ')}`)
  for (const b of s.behind) rows.push(`${b.schema}\t${b.pending.length}\t${b.pending.join(', ')}`)
  const parts = [`${s.behind.length} of ${s.targetedSchemas} targeted schemas behind`]
  if (s.template.length > 0) parts.push('the template behind')
  if (s.shared.length > 0) parts.push(`${s.shared.length} shared migrations pending`)
  const summary = rows.length === 0 ? `everything is up to date (${s.targetedSchemas} targeted schemas)\n` : parts.join(', ') + '\n'
  return (rows.length > 0 ? ['SCHEMA\tBEHIND\tPENDING', ...rows].join('\n') + '\n' : '') + summary
}

function describeTargeting (o: MigrateCliOptions): string {
  return [...(o.schema ?? []).map((p) => `--schema ${p}`), ...(o.exclude ?? []).map((p) => `--exclude ${p}`)].join(' ')
}

const positive = (flag: string, min: number, usageError: (m: string) => Error) => (v: string): number => {
  const n = Number(v)
  if (!/^\d+$/.test(v) || !Number.isInteger(n) || n < min) throw usageError(`${flag} must be ${min === 0 ? 'a non-negative' : 'a positive'} integer, not ${JSON.stringify(v)}`)
  return n
}

const list = (flag: string, check: (item: string) => string | null, usageError: (m: string) => Error) => (v: string, previous: string[] | undefined): string[] => {
  const items = v.split(',').map((s) => s.trim())
  for (const item of items) {
    const problem = check(item)
    if (problem !== null) throw usageError(`${flag} ${JSON.stringify(item)} ${problem}`)
  }
  return [...(previous ?? []), ...items]
}

/** Options that only some actions take: given elsewhere, a usage error. */
const ONLY: Record<string, { flag: string, actions: Array<'migrate' | 'status' | 'down'> }> = {
  concurrency: { flag: '--concurrency', actions: ['migrate', 'down'] },
  canary: { flag: '--canary', actions: ['migrate', 'down'] },
  batch: { flag: '--batch', actions: ['migrate', 'down'] },
  maxFailures: { flag: '--max-failures', actions: ['migrate', 'down'] },
  maintenance: { flag: '--maintenance', actions: ['migrate', 'down'] },
  to: { flag: '--to', actions: ['down'] },
  step: { flag: '--step', actions: ['down'] },
  dryRun: { flag: '--dry-run', actions: ['migrate'] }
}

export function addMigrateCommand (program: Command, deps: MigrateCommandDeps): void {
  const { io, withApi, usageError } = deps
  program.command('migrate')
    .description('run shared migrations once, then tenant migrations in __template__ and every (targeted) schema that is behind; `migrate status` shows what is behind, `migrate down` rolls back')
    .argument('[action]', 'status (what is behind, read-only) or down (roll back); none: migrate')
    .option('--concurrency <n>', 'schemas migrated at once', positive('--concurrency', 1, usageError))
    .option('--schema <pattern>', 'only these schemas: a name or a * pattern; repeatable, or comma-separated', list('--schema', patternProblem, usageError))
    .option('--exclude <pattern>', 'leave these schemas out: a name or a * pattern; repeatable, or comma-separated', list('--exclude', patternProblem, usageError))
    .option('--canary <names>', 'migrate these schemas first, one after another; stop if one fails (comma-separated)', list('--canary', (n) => schemaNameProblem(n), usageError))
    .option('--batch <n>', 'migrate the other schemas in batches of N, a line after each', positive('--batch', 1, usageError))
    .option('--max-failures <k>', 'go on after up to K failed schemas, report each at the end (default 0: stop at the first)', positive('--max-failures', 0, usageError))
    .addOption(new Option('--maintenance [seconds]', 'put each schema in maintenance mode while it migrates (503, Retry-After: seconds)').argParser(positive('--maintenance', 1, usageError)))
    .option('--to <name>', 'down: undo this migration and every later one')
    .option('--step <n>', 'down: undo the last N migrations (default 1)', positive('--step', 1, usageError))
    .option('--dry-run', 'show what migrate would run (as migrate status) and run nothing')
    .option('--json', 'print the result (or the status) as JSON')
    .action(async (action: string | undefined, opts: MigrateCliOptions) => {
      if (action !== undefined && action !== 'status' && action !== 'down') throw usageError(`unknown migrate action ${JSON.stringify(action)}: status or down`)
      const kind = action ?? 'migrate'
      for (const [key, rule] of Object.entries(ONLY)) {
        if ((opts as Record<string, unknown>)[key] !== undefined && !rule.actions.includes(kind)) throw usageError(`${rule.flag} does not apply to ${kind === 'migrate' ? 'migrate' : `migrate ${kind}`}`)
      }
      if (opts.to !== undefined && opts.step !== undefined) throw usageError('--to and --step cannot be given together')
      const targeting = { ...(opts.schema !== undefined ? { schemas: opts.schema } : {}), ...(opts.exclude !== undefined ? { exclude: opts.exclude } : {}) }
      const targeted = opts.schema !== undefined || opts.exclude !== undefined
      await withApi(async (bh) => {
        if (kind === 'status' || opts.dryRun === true) {
          const s = await bh.migrationStatus(targeting)
          for (const p of s.unmatched) io.err(`boardinghouse: warning: pattern ${JSON.stringify(p)} matched no schema\n`)
          if (opts.json === true) {
            io.out(JSON.stringify(s) + '\n')
          } else if (targeted && s.targetedSchemas === 0) {
            io.out(`no schema matches ${describeTargeting(opts)}: nothing ${opts.dryRun === true ? 'would be migrated' : 'to show'}\n`)
          } else {
            io.out(statusTable(s))
            if (opts.dryRun === true) io.out('dry run: nothing was migrated\n')
          }
          return
        }
        const verb = kind === 'down' ? 'rolled back' : 'migrated'
        const reporter = progressReporter(io, verb)
        const staging = {
          ...targeting,
          ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
          ...(opts.canary !== undefined ? { canary: opts.canary } : {}),
          ...(opts.batch !== undefined ? { batch: opts.batch, onBatch: reporter.onBatch } : {}),
          ...(opts.maxFailures !== undefined ? { maxFailures: opts.maxFailures } : {}),
          ...(opts.maintenance !== undefined ? { maintenance: opts.maintenance === true ? true : { retryAfter: opts.maintenance } } : {}),
          onProgress: reporter.onProgress
        }
        let failures: MigrationFailure[]
        let unmatched: string[]
        let json: unknown
        try {
          if (kind === 'down') {
            const r = await bh.migrateDown({ ...staging, ...(opts.to !== undefined ? { to: opts.to } : {}), ...(opts.step !== undefined ? { step: opts.step } : {}) })
            reporter.stop()
            ;({ failures, unmatched } = r)
            json = r
            if (targeted && r.targetedSchemas === 0) {
              if (opts.json !== true) io.out(`no schema matches ${describeTargeting(opts)}: nothing was rolled back\n`)
            } else if (opts.json !== true) {
              io.out(r.migrations.length === 0
                ? 'rolled back: nothing (no migration ran)\n'
                : `rolled back: ${r.migrations.join(', ')} in ${r.rolledBackSchemas} schemas (${r.unchangedSchemas} had none of them); the template: ${r.template.length > 0 ? `rolled back (${r.template.length})` : r.templateKept ?? 'had none of them'}\n`)
            }
          } else {
            const r = await bh.migrate(staging)
            reporter.stop()
            ;({ failures, unmatched } = r)
            json = r
            if (targeted && r.targetedSchemas === 0) {
              if (opts.json !== true) io.out(`no schema matches ${describeTargeting(opts)}: nothing was migrated\n`)
            } else if (opts.json !== true) {
              io.out(`migrated: ${r.shared.length} shared, ${r.template.length} in the template, ${r.migratedSchemas} schemas brought up to date, ${r.upToDateSchemas} already were${r.failures.length > 0 ? `, ${r.failures.length} failed` : ''}\n`)
            }
          }
        } catch (err) {
          reporter.stop()
          const e = err as Error & { code?: string, failures?: MigrationFailure[], result?: unknown }
          if (opts.json === true) io.out(JSON.stringify({ error: { code: e.code, message: e.message }, failures: e.failures ?? [], result: e.result ?? null }) + '\n')
          if (e.code === 'FST_BH_MIGRATIONS_FAILED') for (const f of e.failures ?? []) io.err(failureLine(f))
          throw err
        }
        if (opts.json === true) io.out(JSON.stringify(json) + '\n')
        for (const p of unmatched) io.err(`boardinghouse: warning: pattern ${JSON.stringify(p)} matched no schema\n`)
        if (failures.length > 0) {
          // tolerated by --max-failures, but the command still fails: each schema, then the error line
          for (const f of failures) io.err(failureLine(f))
          throw new BoardinghouseErrors.MIGRATIONS_FAILED(`${failures.length} ${failures.length === 1 ? 'schema' : 'schemas'} failed (within --max-failures ${opts.maxFailures ?? 0}: every other schema was ${verb})`, listed(failures))
        }
      })
    })
}

function failureLine (f: MigrationFailure): string {
  return `failed: schema ${f.schema}, migration ${f.migration}: ${f.message}\n`
}
