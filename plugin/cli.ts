#!/usr/bin/env node
/**
 * The `boardinghouse` command (commander): migrate, and schema create / list / delete / activate / grant /
 * revoke. The database comes from DATABASE_URL, the app's models and migration folders from a
 * config module (--config, default boardinghouse.config.* in the current directory).
 */
import { createWriteStream, existsSync, readFileSync, realpathSync, renameSync, rmSync } from 'node:fs'
import { once } from 'node:events'
import { Writable } from 'node:stream'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Command, CommanderError } from 'commander'
import { Sequelize } from 'sequelize'
import { loadConfig, optionsFromConfig } from './config.js'
import { dumpDataBatches, readDumpObjects, writeDump, type DumpFormat } from './data/index.js'
import { formatDoctorReport } from './doctor/index.js'
import { BoardinghouseErrors } from './errors.js'
import { addMigrateCommand } from './cli-migrate.js'
import type { MigrateProgress } from './migrator/index.js'
import { MAX_PENDING_SCHEMAS } from './options.js'
import { Boardinghouse } from './boardinghouse.js'
import { DEFAULT_MAINTENANCE_RETRY_AFTER, MAX_MAINTENANCE_RETRY_AFTER, isRetryAfter, retryAfterOf, type SchemaMaintenance } from './maintenance.js'

export interface CliIO {
  out: (text: string) => void
  err: (text: string) => void
  isTTY: boolean
  env: NodeJS.ProcessEnv
}

const defaultIO: CliIO = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  isTTY: process.stderr.isTTY === true,
  env: process.env
}

async function open (configPath: string | undefined, io: CliIO): Promise<{ bh: Boardinghouse, close: () => Promise<void> }> {
  const url = io.env.DATABASE_URL
  if (url === undefined || url === '') throw new BoardinghouseErrors.NO_DATABASE_URL()
  const { config } = await loadConfig(configPath)
  const sequelize = new Sequelize(url, { logging: false, ...config.sequelize, dialect: 'postgres' })
  try {
    await config.models?.(sequelize)
    const bh = new Boardinghouse(optionsFromConfig(config, sequelize))
    return { bh, close: async () => { await bh.close(); await sequelize.close() } }
  } catch (err) {
    await sequelize.close()
    throw err
  }
}

/** This package's version (package.json is one folder up from plugin/ in source, two from dist/plugin/). */
export function packageVersion (): string {
  for (const rel of ['../package.json', '../../package.json']) {
    const path = fileURLToPath(new URL(rel, import.meta.url))
    if (!existsSync(path)) continue
    const pkg = JSON.parse(readFileSync(path, 'utf8')) as { name?: string, version?: string }
    if (pkg.name === 'fastify-boardinghouse' && typeof pkg.version === 'string') return pkg.version
  }
  return 'unknown'
}

const ENVIRONMENT_HELP = `
Environment:
  DATABASE_URL  the PostgreSQL database, e.g. postgres://user:password@host:5432/app (required by every command)

The config module (${'`'}--config${'`'}) names the app's models and migration folders; .js, .mjs and .cjs load as they are,
.ts/.mts/.cts need tsx (npm install --save-dev tsx).
`

/** Errors of the command line itself (a bad option value): exit 2, like commander's own usage errors. */
const usageErrors = new WeakSet<object>()

function usageError (message: string): Error {
  const err = new BoardinghouseErrors.INVALID_OPTION(message)
  usageErrors.add(err)
  return err
}

/** Thrown by a command that printed its whole result and exits non-zero (doctor with findings): main prints nothing more. */
class CommandExit extends Error {
  constructor (readonly exitCode: number) { super(`exit ${exitCode}`) }
}

export function buildProgram (io: CliIO = defaultIO): Command {
  const program = new Command('boardinghouse')
    .description('Postgres schema-per-tenant multi-tenancy for Fastify and Sequelize')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('-c, --config <path>', 'config module (default: boardinghouse.config.* in the current directory)')
    .addHelpText('after', ENVIRONMENT_HELP)
    .exitOverride()
    // commander's own error messages are printed by main(), as one line
    .configureOutput({ writeOut: io.out, writeErr: io.err, outputError: () => {} })

  const withApi = async <T>(fn: (bh: Boardinghouse) => Promise<T>): Promise<T> => {
    const { bh, close } = await open(program.opts<{ config?: string }>().config, io)
    try {
      return await fn(bh)
    } finally {
      await close()
    }
  }

  // migrate, migrate status, migrate down (plugin/cli-migrate.ts)
  addMigrateCommand(program, { io, withApi, usageError })

  const schema = program.command('schema').description('manage tenant schemas')
  schema.command('create <name>')
    .description('create a schema cloned from __template__')
    .option('--name <display>', 'display name (default: the schema name)')
    .action(async (name: string, opts: { name?: string }) => {
      await withApi(async (bh) => {
        const s = await bh.createSchema(name, opts.name !== undefined ? { name: opts.name } : {})
        io.out(`created schema ${s.schema} (${s.name})\n`)
      })
    })
  schema.command('list')
    .description('list schemas')
    .option('--json', 'print JSON')
    .option('--all', 'include deactivated schemas')
    .action(async (opts: { json?: boolean, all?: boolean }) => {
      await withApi(async (bh) => {
        const list = await bh.listSchemas({ includeInactive: opts.all === true })
        if (opts.json === true) {
          io.out(JSON.stringify(list.map((s) => ({ schema: s.schema, name: s.name, isActive: s.isActive, createdAt: s.createdAt.toISOString(), maintenance: maintenanceJson(s.maintenance) }))) + '\n')
        } else {
          for (const s of list) io.out(`${s.schema}\t${s.name}${s.isActive ? '' : '\t(inactive)'}${maintenanceText(s.maintenance)}\n`)
        }
      })
    })
  schema.command('delete <name>')
    .description('deactivate a schema, or drop it with --drop')
    .option('--drop', 'drop the schema and all its rows')
    .action(async (name: string, opts: { drop?: boolean }) => {
      await withApi(async (bh) => {
        await bh.deleteSchema(name, { drop: opts.drop === true })
        io.out(opts.drop === true ? `dropped schema ${name}\n` : `deactivated schema ${name}\n`)
      })
    })
  schema.command('activate <name>')
    .description('reactivate a deactivated schema')
    .action(async (name: string) => {
      await withApi(async (bh) => {
        await bh.activateSchema(name)
        io.out(`activated schema ${name}\n`)
      })
    })
  schema.command('grant <name> <userId>')
    .description('make a user a member of a schema')
    .action(async (name: string, userId: string) => {
      await withApi(async (bh) => {
        await bh.grant(name, userId)
        io.out(`granted ${userId} on ${name}\n`)
      })
    })
  schema.command('revoke <name> <userId>')
    .description("remove a user's membership of a schema")
    .action(async (name: string, userId: string) => {
      await withApi(async (bh) => {
        const removed = await bh.revoke(name, userId)
        io.out(removed ? `revoked ${userId} on ${name}\n` : `${userId} was not a member of ${name}\n`)
      })
    })

  // ---------------------------------------------------------------- maintenance mode
  const maintenance = schema.command('maintenance').description('put a schema in maintenance (its requests answer 503 with Retry-After), or end it')
  maintenance.command('on <name>')
    .description('put a schema in maintenance, or change its --retry-after')
    .option('--retry-after <seconds>', `the Retry-After of its 503 answers, 1 to ${MAX_MAINTENANCE_RETRY_AFTER} (default: ${DEFAULT_MAINTENANCE_RETRY_AFTER})`, (v) => {
      const n = /^[0-9]+$/.test(v) ? Number(v) : NaN
      if (!isRetryAfter(n)) throw usageError(`--retry-after must be a whole number of seconds from 1 to ${MAX_MAINTENANCE_RETRY_AFTER}, not ${JSON.stringify(v)}`)
      return n
    })
    .action(async (name: string, opts: { retryAfter?: number }) => {
      await withApi(async (bh) => {
        const m = await bh.setMaintenance(name, opts.retryAfter !== undefined ? { retryAfter: opts.retryAfter } : {})
        io.out(`schema ${name} in maintenance since ${m.since.toISOString()} (retry after ${retryAfterOf(m)} s)\n`)
      })
    })
  maintenance.command('off <name>')
    .description("end a schema's maintenance (whoever set it)")
    .action(async (name: string) => {
      await withApi(async (bh) => {
        io.out(await bh.clearMaintenance(name) ? `schema ${name} out of maintenance\n` : `schema ${name} was not in maintenance\n`)
      })
    })

  schema.command('pending')
    .description('the pool of spare schemas cloned ahead of time (pendingSchemas): show it, or fill it')
    .option('--fill <n>', 'top the pool up to N ready spares (dropping stale ones first), then show it', (v) => {
      const n = Number(v)
      if (!/^\d+$/.test(v) || !Number.isInteger(n) || n > MAX_PENDING_SCHEMAS) throw usageError(`--fill must be an integer from 0 to ${MAX_PENDING_SCHEMAS}, not ${JSON.stringify(v)}`)
      return n
    })
    .option('--status', 'show the pool (the default)')
    .option('--json', 'print the status as JSON')
    .action(async (opts: { fill?: number, status?: boolean, json?: boolean }) => {
      await withApi(async (bh) => {
        if (opts.fill !== undefined) {
          const r = await bh.fillPending(opts.fill)
          if (opts.json !== true) io.out(`filled: ${r.created} created, ${r.dropped} stale or orphaned dropped\n`)
        }
        const s = await bh.pendingStatus()
        if (opts.json === true) {
          io.out(JSON.stringify({ ready: s.ready, stale: s.stale, tampered: s.tampered, orphans: s.orphans, target: s.target }) + '\n')
        } else {
          io.out(`pending schemas: ${s.ready} ready (pendingSchemas ${s.target}), ${s.stale} stale, ${s.tampered.length} tampered, ${s.orphans.length} orphaned\n`)
          for (const spare of s.spares) io.out(`${spare.schema}\t${spare.state}\t${spare.createdAt.toISOString()}\n`)
          for (const orphan of s.orphans) io.out(`${orphan}\torphan\n`)
        }
      })
    })

  const domain = schema.command('domain').description("manage the hosts mapped to schemas (resolvers.domain())")
  domain.command('add <name> <host>')
    .description('map a host to a schema (stored lower-case, punycode, without port or trailing dot)')
    .option('--primary', "make it the schema's primary domain")
    .action(async (name: string, host: string, opts: { primary?: boolean }) => {
      await withApi(async (bh) => {
        const d = await bh.addDomain(name, host, opts.primary === true ? { primary: true } : {})
        io.out(`mapped ${d.host} to ${d.schema}${d.isPrimary ? ' (primary)' : ''}\n`)
      })
    })
  domain.command('remove <host>')
    .description('unmap a host')
    .action(async (host: string) => {
      await withApi(async (bh) => {
        io.out(await bh.removeDomain(host) ? `removed ${host}\n` : `${host} was not mapped\n`)
      })
    })
  domain.command('list [name]')
    .description("list a schema's hosts, or every mapped host")
    .option('--json', 'print JSON')
    .action(async (name: string | undefined, opts: { json?: boolean }) => {
      await withApi(async (bh) => {
        const list = name !== undefined ? await bh.domainsOf(name) : await bh.listDomains()
        if (opts.json === true) {
          io.out(JSON.stringify(list.map((d) => ({ host: d.host, schema: d.schema, isPrimary: d.isPrimary }))) + '\n')
        } else {
          for (const d of list) io.out(`${d.host}\t${d.schema}${d.isPrimary ? '\t(primary)' : ''}\n`)
        }
      })
    })

  program.command('doctor')
    .description("check every schema against the registry, the ledger and the template's structure (read-only); exit 1 with findings")
    .option('--json', 'print one JSON document (for CI)')
    .option('--fix', 'first repair what is safe (missing audit triggers, orphan ledger rows); exit 1 if anything is left')
    .action(async (opts: { json?: boolean, fix?: boolean }) => {
      const fix = opts.fix === true
      const report = await withApi(async (bh) => await bh.doctor({ fix }))
      io.out(opts.json === true ? JSON.stringify(report) + '\n' : formatDoctorReport(report, { fix }))
      if (report.findings.length > 0) throw new CommandExit(1)
    })

  program.command('dumpdata [models...]')
    .description('dump rows as JSON: with --schema the tenant models of that schema, without it the shared models (or the MODELs named)')
    .option('--schema <name>', 'the tenant schema to dump tenant models from')
    .option('-o, --output <file>', 'write to this file (default: stdout)')
    .option('--format <format>', 'json (an array, one object per line) or ndjson (default: ndjson for a .ndjson/.jsonl output file, else json)')
    .action(async (models: string[], opts: { schema?: string, output?: string, format?: string }) => {
      const format = opts.format ?? (opts.output !== undefined && /\.(ndjson|jsonl)$/i.test(opts.output) ? 'ndjson' : 'json')
      if (format !== 'json' && format !== 'ndjson') throw usageError(`--format must be json or ndjson, not ${JSON.stringify(format)}`)
      await withApi(async (bh) => {
        const texts = dumpDataBatches(bh, { ...(opts.schema !== undefined ? { schema: opts.schema } : {}), models })
        if (opts.output === undefined) {
          const out = io === defaultIO ? process.stdout : new Writable({ write (chunk: Buffer, _encoding, done) { io.out(chunk.toString()); done() } })
          await writeDump(texts, format as DumpFormat, out)
          return
        }
        // written next to the target and renamed when complete: a failed dump leaves no file
        const target = opts.output
        const partial = `${target}.${process.pid}.partial`
        const file = createWriteStream(partial, { flags: 'wx' })
        try {
          await once(file, 'open')
          const count = await writeDump(texts, format as DumpFormat, file)
          file.end()
          await once(file, 'finish')
          renameSync(partial, target)
          io.out(`dumped ${count} objects to ${target}\n`)
        } catch (err) {
          file.destroy()
          rmSync(partial, { force: true })
          throw err
        }
      })
    })

  program.command('loaddata <files...>')
    .description('load dump files (JSON array or NDJSON; - reads stdin) all or nothing, in one transaction')
    .option('--schema <name>', 'load every tenant object into this schema, whatever schema it was dumped from')
    .action(async (files: string[], opts: { schema?: string }) => {
      await withApi(async (bh) => {
        const sources = files.map((f) => ({ name: f === '-' ? '<stdin>' : f, objects: readDumpObjects(f) }))
        const r = await bh.loadData(sources, opts.schema !== undefined ? { schema: opts.schema } : {})
        const models = Object.entries(r.byModel).map(([m, n]) => `${m} ${n}`).join(', ')
        io.out(`loaded ${r.objects} objects from ${files.length} ${files.length === 1 ? 'file' : 'files'}${models !== '' ? ` (${models})` : ''}\n`)
      })
    })
  return program
}

/**
 * Runs the CLI; resolves to the exit code: 0, 2 for a usage error (unknown command or option, missing
 * argument, bad option value), 1 for a failure while running. Errors print as one line:
 * `boardinghouse: CODE: message` (`boardinghouse: message` for commander's usage errors).
 */
export async function main (argv: string[], io: CliIO = defaultIO): Promise<number> {
  const program = buildProgram(io)
  try {
    await program.parseAsync(argv, { from: 'user' })
    return 0
  } catch (err) {
    if (err instanceof CommandExit) return err.exitCode
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) return 0
      // no command given: commander printed the help instead of an error line
      if (err.code !== 'commander.help') io.err(`boardinghouse: ${firstLine(err.message).replace(/^error: /, '')} (see boardinghouse --help)\n`)
      return 2
    }
    const e = err as { code?: string, message?: string }
    const code = typeof e.code === 'string' && e.code.startsWith('FST_BH_') ? `${e.code}: ` : ''
    io.err(`boardinghouse: ${code}${firstLine(e.message ?? String(err))}\n`)
    return typeof err === 'object' && err !== null && usageErrors.has(err) ? 2 : 1
  }
}

/** A schema's maintenance in `schema list`: nothing when not in maintenance. */
function maintenanceText (m: SchemaMaintenance | null): string {
  return m === null ? '' : `\t(maintenance since ${m.since.toISOString()}, retry after ${retryAfterOf(m)} s, by ${m.by})`
}

function maintenanceJson (m: SchemaMaintenance | null): { since: string, retryAfter: number | null, by: string } | null {
  return m === null ? null : { since: m.since.toISOString(), retryAfter: m.retryAfter, by: m.by }
}

function firstLine (text: string): string {
  return text.split('\n')[0] ?? ''
}

const invoked = process.argv[1]
if (invoked !== undefined && import.meta.url === pathToFileURL(realpathSync(invoked)).href) {
  process.exitCode = await main(process.argv.slice(2))
}
