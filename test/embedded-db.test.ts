/**
 * The embedded PostgreSQL of `npm test` / `npm run example` without DATABASE_URL: a data folder the
 * server user cannot reach, a server left running by a killed process, and one-line failures.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { EmbeddedPostgresError, runningServer, startEmbeddedPostgres } from '../example/embedded-db.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

async function selectOne (url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    return (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]?.one ?? 0
  } finally {
    await client.end()
  }
}

function privateFolder (t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'bh-private-')) // 0700
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

test('a data folder inside a private (0700) folder works: as root the data moves where the postgres user can reach it', async (t) => {
  const dir = join(privateFolder(t), 'pg')
  const lines: string[] = []
  const db = await startEmbeddedPostgres({ dir, persistent: false, label: 'private/pg', log: (l) => lines.push(l) })
  let stopped = false
  t.after(async () => { if (!stopped) await db.stop() })
  assert.equal(await selectOne(db.url), 1)
  if (process.getuid?.() === 0) {
    assert.notEqual(db.dataDir, dir)
    assert.ok(lines.some((l) => l.includes('the postgres user cannot reach private/pg')), lines.join('\n'))
  } else {
    assert.equal(db.dataDir, dir)
  }
  assert.equal(runningServer(db.dataDir), db.pid)
  await db.stop()
  stopped = true
  assert.equal(runningServer(db.dataDir), null)
})

test('a server left running by a killed process (kill -9) is found on the next start and stopped', async (t) => {
  const dir = join(privateFolder(t), 'pg')
  const script = `import { startEmbeddedPostgres } from './example/embedded-db.ts'
const db = await startEmbeddedPostgres({ dir: ${JSON.stringify(dir)}, persistent: true })
console.log('ready ' + db.pid + ' ' + db.dataDir)
setInterval(() => {}, 1000)`
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
  let ready: string | undefined
  for await (const line of createInterface({ input: child.stdout as NodeJS.ReadableStream })) {
    if (line.startsWith('ready ')) { ready = line; break }
  }
  assert.ok(ready !== undefined, 'the first process started its server')
  const [, pidText, dataDir] = ready.split(' ') as [string, string, string]
  const stalePid = Number(pidText)
  child.kill('SIGKILL')
  await once(child, 'exit')
  assert.equal(runningServer(dataDir), stalePid, 'the server outlived the killed process')

  const lines: string[] = []
  const db = await startEmbeddedPostgres({ dir, persistent: false, label: 'example/.data', log: (l) => lines.push(l) })
  t.after(async () => { await db.stop() })
  assert.ok(lines.some((l) => l.startsWith(`a PostgreSQL for example/.data is still running, pid ${stalePid}`)), lines.join('\n'))
  assert.notEqual(db.pid, stalePid)
  assert.equal(runningServer(dataDir), db.pid)
  assert.throws(() => process.kill(stalePid, 0), { code: 'ESRCH' })
  assert.equal(await selectOne(db.url), 1)
})

test('a server that cannot start rejects with a one-line reason, and leaves nothing running', async (t) => {
  const dir = join(privateFolder(t), 'pg')
  const first = await startEmbeddedPostgres({ dir, persistent: true })
  await first.stop()
  writeFileSync(join(first.dataDir, 'PG_VERSION'), '9\n') // a cluster of another major version
  const err = await startEmbeddedPostgres({ dir, persistent: true }).then(() => null, (e: unknown) => e)
  assert.ok(err instanceof EmbeddedPostgresError, String(err))
  assert.doesNotMatch(err.message, /\n/)
  assert.doesNotMatch(err.message, /undefined/)
  assert.match(err.message, /PostgreSQL exited before accepting connections .*incompatible/)
  assert.equal(runningServer(first.dataDir), null)
  rmSync(first.dataDir, { recursive: true, force: true })
})

test('a data folder that cannot be made rejects with a one-line reason', async (t) => {
  const parent = privateFolder(t)
  writeFileSync(join(parent, 'file'), '')
  const err = await startEmbeddedPostgres({ dir: join(parent, 'file', 'pg'), persistent: false, label: 'file/pg' }).then(() => null, (e: unknown) => e)
  assert.ok(err instanceof EmbeddedPostgresError, String(err))
  assert.doesNotMatch(err.message, /\n|undefined/)
  assert.match(err.message, /^cannot create the data folder file\/pg: (EEXIST|ENOTDIR): /)
})
