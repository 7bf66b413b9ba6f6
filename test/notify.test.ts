import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { performance } from 'node:perf_hooks'
import { connect, setupBoardinghouse } from './helpers.js'

interface Server { port: number, child: ChildProcess }

async function startServer (t: { after: (fn: () => Promise<void>) => void }, url: string): Promise<Server> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/server.ts'], { env: { ...process.env, DATABASE_URL: url }, stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  })
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })
  const [first] = await once(lines, 'line') as [string]
  return { port: (JSON.parse(first) as { port: number }).port, child }
}

async function http (server: Server, method: string, path: string, body?: unknown, cookie?: string): Promise<{ status: number, json: Record<string, unknown>, cookie: string | undefined }> {
  const res = await fetch(`http://127.0.0.1:${server.port}${path}`, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...(cookie !== undefined ? { cookie } : {}) },
    body: body !== undefined ? JSON.stringify(body) : undefined
  })
  const setCookie = res.headers.get('set-cookie')
  return { status: res.status, json: await res.json() as Record<string, unknown>, cookie: setCookie?.split(';')[0] }
}

/** Polls `probe` until it is true; returns the milliseconds it took. */
async function until (probe: () => Promise<boolean>, limitMs: number): Promise<number> {
  const start = performance.now()
  while (performance.now() - start < limitMs) {
    if (await probe()) return performance.now() - start
  }
  throw new Error(`not within ${limitMs} ms`)
}

test('a revoke in one process is refused by another on its next requests (LISTEN/NOTIFY)', async (t) => {
  const { bh, url } = await setupBoardinghouse(t)
  await bh.createSchema('acme')
  await bh.createSchema('globex')
  await bh.grant('acme', 1)
  await bh.grant('globex', 1)
  const [a, b] = await Promise.all([startServer(t, url), startServer(t, url)])
  const login = await http(b, 'POST', '/test/login', { userId: 1 })
  const cookie = login.cookie as string
  assert.equal((await http(b, 'POST', '/__change_schema__', { schema: 'acme' }, cookie)).status, 200)
  assert.equal((await http(b, 'GET', '/items', undefined, cookie)).json.schema, 'acme')

  const refused = async (): Promise<boolean> => (await http(b, 'GET', '/items', undefined, cookie)).json.schema !== 'acme'
  assert.equal(await refused(), false)
  assert.deepEqual((await http(a, 'POST', '/test/revoke', { schema: 'acme', userId: 1 })).json, { removed: true })
  const delay = await until(refused, 5000)
  t.diagnostic(`revoke seen by the other process after ${delay.toFixed(1)} ms`)
  // the session forgot acme; with globex left alone, it is selected
  assert.equal((await http(b, 'GET', '/items', undefined, cookie)).json.schema, 'globex')
  assert.equal((await http(b, 'POST', '/__change_schema__', { schema: 'acme' }, cookie)).status, 403)

  await t.test('the listener reconnects after its connection is killed, and catches up', async () => {
    const killer = await connect(t, url)
    const { rows } = await killer.query("SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN boardinghouse_changes'")
    assert.equal((rows[0] as { n: number }).n, 2)
    await http(a, 'POST', '/test/grant', { schema: 'acme', userId: 1 })
    const seen = await until(async () => (await http(b, 'POST', '/__change_schema__', { schema: 'acme' }, cookie)).status === 200, 10_000)
    t.diagnostic(`grant seen after the listener was killed: ${seen.toFixed(1)} ms`)
    await until(async () => (await http(b, 'GET', '/test/listening')).json.listening === true, 10_000)
    await http(a, 'POST', '/test/revoke', { schema: 'acme', userId: 1 })
    const again = await until(refused, 5000)
    t.diagnostic(`revoke seen after reconnecting: ${again.toFixed(1)} ms`)
  })
})
