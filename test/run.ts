/**
 * `npm test`: runs every test file with node's own runner against DATABASE_URL, or, when it is
 * unset, against an embedded PostgreSQL started here for the run and removed afterwards.
 * Extra arguments are passed to `node --test` (e.g. file names).
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EmbeddedPostgresError, startEmbeddedPostgres, type EmbeddedDatabase } from '../example/embedded-db.js'

const args = process.argv.slice(2)
const files = args.filter((a) => !a.startsWith('-'))
const flags = args.filter((a) => a.startsWith('-'))
const testFiles = files.length > 0
  ? files
  : readdirSync('test').filter((f) => f.endsWith('.test.ts')).sort().map((f) => join('test', f))

let embedded: EmbeddedDatabase | undefined
let dataDir: string | undefined
const env = { ...process.env }
if (env.DATABASE_URL === undefined || env.DATABASE_URL === '') {
  dataDir = mkdtempSync(join(tmpdir(), 'bh-test-pg-'))
  const { chmodSync } = await import('node:fs')
  chmodSync(dataDir, 0o777)
  try {
    embedded = await startEmbeddedPostgres({ dir: join(dataDir, 'data'), persistent: false, log: (line) => { console.log(`# ${line}`) } })
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true })
    console.error(`npm test: the embedded PostgreSQL (DATABASE_URL is unset) did not start: ${err instanceof EmbeddedPostgresError ? err.message : String(err)}`)
    process.exit(1)
  }
  env.DATABASE_URL = embedded.url
  console.log(`# DATABASE_URL unset: using embedded PostgreSQL at ${embedded.url.replace(/:[^:@/]+@/, ':***@')}`)
}

const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...flags, ...testFiles], { stdio: 'inherit', env })
const code: number = await new Promise((resolve) => child.on('exit', (c, signal) => resolve(c ?? (signal !== null ? 1 : 0))))
if (embedded !== undefined) await embedded.stop()
if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true })
process.exit(code)
