/**
 * bench:request: requests per second of `GET /items` (one indexed read, `Item.findByPk(1)`) through
 * fastify-boardinghouse, tenants mixed, against a baseline app that is the same Fastify + cookie +
 * session (in-memory store) + route + query without the plugin, reading one schema whose
 * search_path is fixed on its connections. Ratio = median plugin req/s ÷ median baseline req/s.
 *
 *   npm run bench:request      (DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/postgres)
 *   BENCH_QUICK=1 npm run bench:request     smoke run: 10/50/500 tenants, 3 rounds of 2 s
 *
 * Scenarios, in one database: 10 tenants, 50, then 10,000 (created incrementally; one user per
 * tenant, granted with bh.grant). For each: a fresh server child (bench/request-server.ts: both apps
 * in one process, cold cache and pools), every user logged in on both apps and every plugin session
 * used once (each response checked), a warm-up, then ROUNDS timed autocannon runs per target in rotated
 * order. Every response body of every run is checked against the tenant of the cookie it was sent
 * with; any error, timeout, non-2xx or wrong body fails the run.
 *
 * Targets: `plugin` (the tenant from the session's selection); `baseline` (the ratio's denominator);
 * `mixed`, a diagnostic on the baseline app: tenants mixed by schema-qualified names without the
 * plugin, i.e. PostgreSQL's own cost of touching many schemas; `subdomain` and `domain`, the plugin
 * app with the tenant found by `resolvers.subdomain()` (Host `t0042.bench.test`) and
 * `resolvers.domain()` (Host `t0042.shop.example`, from the domain table), same user, same checks:
 * `ratio_<resolver>_vs_session` compares them with `plugin`. Per run: req/s, latency, CPU per request of the server process and of the
 * app's PostgreSQL backends (/proc), and how busy other processes kept the machine (it is shared).
 * After the rounds: pg messages per request (counted in the child), a registry reload's time, for
 * the largest scenario a run with only 50 of its tenants in play, and after the 50-tenant
 * scenario a cross-check with each app in a process of its own (Node 20's AsyncLocalStorage turns
 * on promise hooks for the whole process, so in one process the baseline pays part of the plugin's
 * cost).
 *
 * Knobs: BENCH_CONNECTIONS (64), BENCH_ROUNDS, BENCH_ROUND_S, BENCH_STEPS ("10,50,10000"),
 * BENCH_PROF=1 (server children run with --cpu-prof; paths printed), BENCH_SEPARATE=1 (one process
 * per app in every scenario), BENCH_CROSSCHECK=0 (skip the cross-check), BENCH_TARGETS (comma list
 * of the targets besides plugin and baseline, default "mixed,subdomain,domain"; "" = none).
 *
 * Prints per-run lines, a summary per scenario, and one JSON object as the last line.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import pg from 'pg'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import { runWithSchema } from '../plugin/context.js'
import { defineExampleModels, type ItemModel } from '../example/models/index.js'
import type { AppKind, ChildMessage, ParentMessage } from './request-server.js'
import { DOMAIN_SUFFIX, SUBDOMAIN_BASE } from './request-hosts.js'
import { createSchemaTolerant, elapsedSeconds, log, makeSequelize, median, promisePool, round1, round2, runBench, serverVersion, withBenchDatabase } from './common.js'

const QUICK = process.env.BENCH_QUICK === '1'
/** Tenant counts of the scenarios, in order. */
const STEPS: readonly number[] = process.env.BENCH_STEPS !== undefined && process.env.BENCH_STEPS !== ''
  ? process.env.BENCH_STEPS.split(',').map(Number)
  : QUICK ? [10, 50, 500] : [10, 50, 10_000]
if (!STEPS.every((n, i) => Number.isInteger(n) && n >= 1 && n <= 10_000 && (i === 0 || n > (STEPS[i - 1] as number)))) {
  throw new Error('BENCH_STEPS must be increasing integers in 1..10000')
}
const ROUNDS = intEnv('BENCH_ROUNDS', QUICK ? 3 : 5)
const ROUND_S = intEnv('BENCH_ROUND_S', QUICK ? 2 : 6)
const WARMUP_S = QUICK ? 1 : 3
const CROSSCHECK_ROUNDS = QUICK ? 3 : 4
const DIAG_REQUESTS = QUICK ? 1000 : 3000
const CONNECTIONS = intEnv('BENCH_CONNECTIONS', 64)
const POOL = 10
const ITEMS_PER_TENANT = 3
const CREATE_CONCURRENCY = 2
const BASELINE_SCHEMA = 't0000'
const ACTIVE_SUBSET = 50
const PROFILE = process.env.BENCH_PROF === '1'
const SEPARATE = process.env.BENCH_SEPARATE === '1'
const CROSSCHECK = process.env.BENCH_CROSSCHECK !== '0' && !SEPARATE
/** Before a timed run, wait (0.5 s samples) for the machine to be under QUIET_BUSY busy: at most QUIET_MAX_WAIT_S, QUIET_BUDGET_S per scenario. */
const QUIET_BUSY = 0.25
const QUIET_MAX_WAIT_S = 3
const QUIET_BUDGET_S = QUICK ? 6 : 20
const KINDS: readonly AppKind[] = ['plugin', 'baseline']

const EXAMPLE_TENANT_MIGRATIONS = fileURLToPath(new URL('../example/migrations/tenant/', import.meta.url))
const SERVER_SCRIPT = fileURLToPath(new URL('./request-server.ts', import.meta.url))

function intEnv (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`)
  return value
}

const schemaName = (i: number): string => `t${String(i).padStart(4, '0')}`
const userIdOf = (i: number): number => i + 1
const itemTitle = (schema: string, k: number): string => `${schema}:item-${k}`
/** The exact body `GET /items` must answer for a user of `schema` (findByPk(1) is the first item). */
const expectedBody = (schema: string): string => JSON.stringify({ schema, title: itemTitle(schema, 1) })
const r3 = (x: number): number => Math.round(x * 1000) / 1000

// ------------------------------------------------------------------ tenants

async function createTenants (bh: Boardinghouse, Item: ItemModel, from: number, to: number, spurious: { count: number }): Promise<void> {
  if (to <= from) return
  const indexes = Array.from({ length: to - from }, (_, k) => from + k)
  const total = indexes.length
  const every = total >= 2000 ? 1000 : total >= 200 ? 100 : total
  const t0 = elapsedSeconds()
  let done = 0
  log(`creating tenants ${schemaName(from)}…${schemaName(to - 1)} (${total}, concurrency ${CREATE_CONCURRENCY}): createSchema, ${ITEMS_PER_TENANT} items, grant(user ${userIdOf(from)}…)`)
  await promisePool(indexes, CREATE_CONCURRENCY, async (i) => {
    const schema = schemaName(i)
    await createSchemaTolerant(bh, schema, spurious)
    // runWithSchema, not bh.runInSchema: the latter reloads the registry that every create invalidates.
    await runWithSchema(schema, async () => {
      await Item.bulkCreate(Array.from({ length: ITEMS_PER_TENANT }, (_, k) => ({ title: itemTitle(schema, k + 1) })))
    })
    await bh.grant(schema, userIdOf(i))
    await bh.addDomain(schema, `${schema}.${DOMAIN_SUFFIX}`)
    done++
    if (done % every === 0 || done === total) {
      const s = elapsedSeconds() - t0
      log(`  ${from + done} tenants (${s.toFixed(1)} s, ${(s * 1000 / done).toFixed(1)} ms/tenant wall)`)
    }
  })
}

// ------------------------------------------------------------------ the server children

type ReadyMessage = Extract<ChildMessage, { type: 'ready' }>
type Outgoing = ParentMessage extends infer M ? M extends { id: number } ? Omit<M, 'id'> : never : never

class ServerChild {
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (m: ChildMessage) => void, reject: (e: Error) => void }>()
  private exited: Error | null = null
  readonly ready: Promise<ReadyMessage>

  constructor (readonly child: ChildProcess, readonly label: string) {
    this.ready = new Promise<ReadyMessage>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`${label}: server child not ready after 60 s`)) }, 60_000)
      child.on('message', (message: ChildMessage) => {
        if (message.type === 'ready') { clearTimeout(timer); resolve(message); return }
        const waiter = this.pending.get(message.id)
        if (waiter !== undefined) { this.pending.delete(message.id); waiter.resolve(message) }
      })
      child.on('exit', (code, signal) => {
        clearTimeout(timer)
        this.exited = new Error(`${label}: server child exited (code ${String(code)}, signal ${String(signal)})`)
        reject(this.exited)
        for (const waiter of this.pending.values()) waiter.reject(this.exited)
        this.pending.clear()
      })
    })
  }

  async call<T extends ChildMessage['type']> (message: Outgoing, reply: T): Promise<Extract<ChildMessage, { type: T }>> {
    if (this.exited !== null) throw this.exited
    const id = this.nextId++
    const answer = new Promise<ChildMessage>((resolve, reject) => { this.pending.set(id, { resolve, reject }) })
    this.child.send({ ...message, id } as ParentMessage)
    const got = await answer
    if (got.type !== reply) throw new Error(`${this.label}: expected '${reply}' from the server child, got '${got.type}'`)
    return got as Extract<ChildMessage, { type: T }>
  }

  async stop (): Promise<void> {
    if (this.exited !== null) return
    const gone = new Promise<void>((resolve) => { this.child.once('exit', () => { resolve() }) })
    await this.call({ type: 'stop' }, 'stopped')
    await gone
  }
}

interface Servers {
  port: Record<AppKind, number>
  child: Record<AppKind, ServerChild>
  applicationName: Record<AppKind, string>
  all: ServerChild[]
  profileDir: string | null
}

async function startServers (url: string, label: string, separate: boolean): Promise<Servers> {
  const profileDir = PROFILE ? `/tmp/bh-bench-request-prof-${label}-${process.pid}` : null
  const spawn = (apps: readonly AppKind[]): ServerChild => new ServerChild(fork(SERVER_SCRIPT, [], {
    execArgv: ['--import', 'tsx', ...(profileDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`])],
    env: { ...process.env, BENCH_DATABASE_URL: url, BENCH_POOL: String(POOL), BENCH_BASELINE_SCHEMA: BASELINE_SCHEMA, BENCH_APPS: apps.join(',') },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  }), `${label}/${apps.join('+')}`)
  const children = separate ? KINDS.map((k) => spawn([k])) : [spawn(KINDS)]
  const readies = await Promise.all(children.map(async (c) => await c.ready))
  const port = {} as Record<AppKind, number>
  const child = {} as Record<AppKind, ServerChild>
  let applicationName = {} as Record<AppKind, string>
  readies.forEach((ready, n) => {
    applicationName = ready.applicationNames
    for (const kind of KINDS) {
      const p = ready.ports[kind]
      if (p !== undefined) { port[kind] = p; child[kind] = children[n] as ServerChild }
    }
  })
  return { port, child, applicationName, all: children, profileDir }
}

// ------------------------------------------------------------------ CPU accounting

const CLK_TCK = 100 // Linux USER_HZ

/** CPU seconds (user + system) of each PostgreSQL backend whose application_name is `name`, by pid. */
async function backendCpu (monitor: pg.Client, name: string): Promise<Map<number, number>> {
  const { rows } = await monitor.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1', [name])
  const out = new Map<number, number>()
  for (const { pid } of rows) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ') // fields from #3 (state) on
      out.set(pid, (Number(fields[11]) + Number(fields[12])) / CLK_TCK)
    } catch {
      // not on this machine (remote server) or gone: no number
    }
  }
  return out
}

function machineCpu (): { busy: number, total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? ''
    const v = line.trim().split(/\s+/).slice(1).map(Number)
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0)
    const idle = (v[3] ?? 0) + (v[4] ?? 0)
    return { busy: total - idle, total }
  } catch {
    return { busy: 0, total: 0 }
  }
}

/** Waits (0.5 s samples) until the machine is under QUIET_BUSY busy, within the budget; returns the seconds waited. */
async function awaitQuiet (budget: { s: number }): Promise<number> {
  const t0 = elapsedSeconds()
  const limit = Math.min(QUIET_MAX_WAIT_S, budget.s)
  for (;;) {
    const a = machineCpu()
    await new Promise((resolve) => setTimeout(resolve, 500))
    const b = machineCpu()
    const busy = b.total === a.total ? 0 : (b.busy - a.busy) / (b.total - a.total)
    const waited = elapsedSeconds() - t0
    if (busy < QUIET_BUSY || waited >= limit) {
      budget.s = Math.max(0, budget.s - waited)
      return waited
    }
  }
}

// ------------------------------------------------------------------ targets and autocannon runs

/**
 * What a run hits: the plugin app; the baseline (one schema); or, as a diagnostic, the baseline
 * app reading each user's own schema by qualified name, without the plugin ('mixed').
 */
type Target = 'plugin' | 'baseline' | 'mixed' | 'subdomain' | 'domain'
const ALL_TARGETS: readonly Target[] = ['plugin', 'baseline', 'mixed', 'subdomain', 'domain']
const RESOLVER_TARGETS = ['subdomain', 'domain'] as const
const TARGETS: readonly Target[] = ((): Target[] => {
  const raw = process.env.BENCH_TARGETS
  const extra = raw === undefined ? ['mixed', 'subdomain', 'domain'] : raw.split(',').map((t) => t.trim()).filter((t) => t !== '')
  for (const t of extra) if (!ALL_TARGETS.includes(t as Target)) throw new Error(`BENCH_TARGETS: unknown target ${t} (${ALL_TARGETS.join(', ')})`)
  return ['plugin', 'baseline', ...extra.filter((t) => t !== 'plugin' && t !== 'baseline') as Target[]]
})()
const TARGET_APP: Record<Target, AppKind> = { plugin: 'plugin', baseline: 'baseline', mixed: 'baseline', subdomain: 'plugin', domain: 'plugin' }
const TARGET_PATH: Record<Target, string> = { plugin: '/items', baseline: '/items', mixed: '/items/mixed', subdomain: '/items/subdomain', domain: '/items/domain' }

/** A logged-in user: its session cookie, the schema its requests must read, and the Host it sends (resolver targets). */
interface User { cookie: string, schema: string, expect: string, host?: string }

interface Run {
  target: Target
  rps: number
  total: number
  p50: number
  p99: number
  errors: number
  timeouts: number
  non2xx: number
  mismatches: number
  /** Server process CPU per completed request (µs). */
  serverUs: number
  /** PostgreSQL backend CPU of the app's connections per completed request (µs); NaN if unreadable. */
  pgUs: number
  /** Share of the machine (all cores) that was busy, and busy with processes other than this benchmark's. */
  busy: number
  foreign: number
}

function counter (users: readonly User[]): () => User {
  let next = Math.floor(Math.random() * users.length)
  return () => users[next++ % users.length] as User
}

/**
 * One autocannon run, for `seconds` or (with `amount`) until that many responses arrived. The
 * users' cookies are used in turn across all connections, so consecutive requests belong to
 * different users (tenants); every 200 response must be exactly the body expected for its user.
 */
async function cannon (servers: Servers, monitor: pg.Client, target: Target, users: readonly User[], seconds: number, amount?: number): Promise<Run> {
  const nextUser = amount === undefined ? counter(users) : (() => { let i = 0; return () => users[i++ % users.length] as User })()
  let mismatches = 0
  let firstMismatch = ''
  const request: autocannon.Request = {
    method: 'GET',
    path: TARGET_PATH[target],
    setupRequest: (req, context) => {
      const user = nextUser()
      ;(context as { expect?: string }).expect = user.expect
      return { ...req, headers: { ...req.headers, cookie: user.cookie, ...(user.host === undefined ? {} : { host: user.host }) } }
    },
    onResponse: (status, body, context) => {
      if (status === 200 && body !== (context as { expect?: string }).expect) {
        mismatches++
        if (firstMismatch === '') firstMismatch = `${body} (expected ${(context as { expect?: string }).expect ?? '?'})`
      }
    }
  }
  const app = TARGET_APP[target]
  const child = servers.child[app]
  const cpu0 = await child.call({ type: 'cpu' }, 'cpu')
  const pg0 = await backendCpu(monitor, servers.applicationName[app])
  const own0 = process.cpuUsage()
  const m0 = machineCpu()
  const result = await autocannon({
    url: `http://127.0.0.1:${servers.port[app]}`,
    connections: amount === undefined ? CONNECTIONS : Math.min(CONNECTIONS, amount),
    duration: seconds,
    ...(amount === undefined ? {} : { amount }),
    requests: [request]
  })
  const m1 = machineCpu()
  const own = process.cpuUsage(own0)
  const pg1 = await backendCpu(monitor, servers.applicationName[app])
  const cpu1 = await child.call({ type: 'cpu' }, 'cpu')
  let pgSeconds = 0
  for (const [pid, s] of pg1) pgSeconds += s - (pg0.get(pid) ?? 0)
  const serverSeconds = ((cpu1.userUs + cpu1.systemUs) - (cpu0.userUs + cpu0.systemUs)) / 1e6
  const total = result.requests.total
  const machineSeconds = (m1.total - m0.total) / CLK_TCK
  const busySeconds = (m1.busy - m0.busy) / CLK_TCK
  if (firstMismatch !== '') log(`  ${target}: BODY FROM THE WRONG SCHEMA, e.g. ${firstMismatch}`)
  return {
    target,
    rps: result.requests.average,
    total,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    mismatches,
    serverUs: total === 0 ? NaN : serverSeconds * 1e6 / total,
    pgUs: pg1.size === 0 || total === 0 ? NaN : pgSeconds * 1e6 / total,
    busy: machineSeconds > 0 ? busySeconds / machineSeconds : NaN,
    foreign: machineSeconds > 0 ? Math.max(0, busySeconds - serverSeconds - pgSeconds - (own.user + own.system) / 1e6) / machineSeconds : NaN
  }
}

function bad (run: Run): number {
  return run.errors + run.timeouts + run.non2xx + run.mismatches
}

function assertGood (run: Run, what: string): void {
  if (bad(run) > 0) {
    throw new Error(`${what}: ${bad(run)} bad responses (errors ${run.errors}, timeouts ${run.timeouts}, non-2xx ${run.non2xx}, bodies from the wrong schema ${run.mismatches})`)
  }
}

function pct (x: number): string {
  return Number.isNaN(x) ? '?' : `${(x * 100).toFixed(0)}%`
}

function fmtRun (run: Run): string {
  return `${run.target.padEnd(8)} ${run.rps.toFixed(0).padStart(6)} req/s  p50 ${run.p50.toFixed(1)} ms  p99 ${run.p99.toFixed(1)} ms  ` +
    `server ${run.serverUs.toFixed(0)} µs/req  pg ${Number.isNaN(run.pgUs) ? '?' : run.pgUs.toFixed(0)} µs/req  machine ${pct(run.busy)} busy (${pct(run.foreign)} other processes)  ` +
    `errors ${run.errors} timeouts ${run.timeouts} non2xx ${run.non2xx} wrong-schema ${run.mismatches}`
}

// ------------------------------------------------------------------ logins

/** Logs users in on one app (autocannon, POST /login per user) and returns their session cookies, in order. */
async function loginMany (port: number, count: number): Promise<string[]> {
  const cookies = new Array<string | undefined>(count)
  let next = 0
  let failures = 0
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: Math.min(32, count),
    amount: count,
    requests: [{
      method: 'POST',
      path: '/login',
      headers: { 'content-type': 'application/json' },
      setupRequest: (req, context) => {
        const i = next++
        ;(context as { i?: number }).i = i
        return { ...req, body: JSON.stringify({ userId: userIdOf(i) }) }
      },
      onResponse: (status, _body, context, headers) => {
        const i = (context as { i?: number }).i as number
        const raw = (headers as Record<string, string | string[] | undefined>)['set-cookie'] ?? []
        const cookie = (Array.isArray(raw) ? raw : [raw]).map((c) => c.split(';')[0] ?? '').find((c) => c.startsWith('sessionId='))
        if (status !== 200 || cookie === undefined) failures++
        else cookies[i] = cookie
      }
    }]
  })
  const missing = cookies.filter((c) => c === undefined).length
  if (failures > 0 || missing > 0 || result.non2xx > 0 || result.errors > 0) {
    throw new Error(`login on port ${port}: ${failures} failed, ${missing} without a session cookie, ${result.non2xx} non-2xx, ${result.errors} errors`)
  }
  return cookies as string[]
}

/**
 * Logs every user in on both apps, then sends each user's first request to every target (a single
 * pass, every body checked: every plugin user reads its own schema; this also stores the
 * auto-selected schema in each plugin session, as a real first request would).
 */
async function loginAll (servers: Servers, monitor: pg.Client, tenants: number, targets: readonly Target[]): Promise<Record<Target, User[]>> {
  const indexes = Array.from({ length: tenants }, (_, i) => i)
  const cookies = {} as Record<AppKind, string[]>
  for (const kind of KINDS) {
    const t0 = elapsedSeconds()
    cookies[kind] = await loginMany(servers.port[kind], tenants)
    log(`  ${kind}: ${tenants} users logged in (${(elapsedSeconds() - t0).toFixed(1)} s)`)
  }
  const user = (cookie: string | undefined, schema: string, host?: string): User => ({ cookie: cookie as string, schema, expect: expectedBody(schema), ...(host === undefined ? {} : { host }) })
  const users: Record<Target, User[]> = {
    plugin: indexes.map((i) => user(cookies.plugin[i], schemaName(i))),
    baseline: indexes.map((i) => user(cookies.baseline[i], BASELINE_SCHEMA)),
    mixed: indexes.map((i) => user(cookies.baseline[i], schemaName(i))),
    subdomain: indexes.map((i) => user(cookies.plugin[i], schemaName(i), `${schemaName(i)}.${SUBDOMAIN_BASE}`)),
    domain: indexes.map((i) => user(cookies.plugin[i], schemaName(i), `${schemaName(i)}.${DOMAIN_SUFFIX}`))
  }
  for (const target of targets) {
    // The baseline reads one table whatever the user: a sample of its sessions is enough.
    const count = target === 'baseline' ? Math.min(tenants, 500) : tenants
    const t0 = elapsedSeconds()
    const run = await cannon(servers, monitor, target, users[target].slice(0, count), 300, count)
    assertGood(run, `${target}: first request of each user`)
    if (run.total !== count) throw new Error(`${target}: ${run.total} of ${count} first requests answered`)
    const last = users[target][count - 1] as User
    log(`  ${target}: first GET ${TARGET_PATH[target]} of ${count === tenants ? 'all ' : ''}${count} users answered from the expected schema (e.g. user ${count}: ${last.expect}; ${(elapsedSeconds() - t0).toFixed(1)} s)`)
  }
  return users
}

// ------------------------------------------------------------------ one scenario

interface Summary { rps: number, p99: number, serverUs: number, pgUs: number }

interface ScenarioOptions {
  key: string
  tenants: number
  targets: readonly Target[]
  rounds: number
  separate: boolean
  /** Also run with only ACTIVE_SUBSET of the tenants in play. */
  subset: boolean
  /** Count pg messages per request, time a registry reload. */
  diagnostics: boolean
}

interface ScenarioResult {
  tenants: number
  ratio: number
  /** plugin ÷ mixed (no plugin, tenants mixed by qualified names): the plugin alone. */
  ratioVsMixed: number | null
  /** baseline CPU (server + PostgreSQL) per request ÷ plugin's. */
  cpuRatio: number
  /** Per resolver target: its median req/s ÷ plugin's (the session's selection), and plugin CPU per request ÷ its. */
  resolverRatio: Partial<Record<Target, number>>
  resolverCpuRatio: Partial<Record<Target, number>>
  med: Partial<Record<Target, Summary>>
  bad: number
  messagesPerRequest: Partial<Record<Target, number>>
  setPrefixedPerRequest: Partial<Record<Target, number>>
  setOnlyPerRequest: Partial<Record<Target, number>>
  registryReloadMs: number | null
  roundRatios: number[]
  foreign: number
  quietWait: number
  /** Plugin with only ACTIVE_SUBSET users (tenants) in play ÷ baseline. */
  ratioActiveSubset: number | null
}

function summarize (runs: readonly Run[]): Summary {
  return { rps: median(runs.map((r) => r.rps)), p99: median(runs.map((r) => r.p99)), serverUs: median(runs.map((r) => r.serverUs)), pgUs: median(runs.map((r) => r.pgUs)) }
}

async function scenario (url: string, monitor: pg.Client, o: ScenarioOptions): Promise<ScenarioResult> {
  const { key, tenants, targets } = o
  log(`scenario ${key}: ${tenants} tenants, targets ${targets.join(', ')}, ${o.separate ? 'one server child per app' : 'both apps in one server child'}`)
  const servers = await startServers(url, key, o.separate)
  const budget = { s: QUIET_BUDGET_S }
  let quietWait = 0
  try {
    const users = await loginAll(servers, monitor, tenants, targets)
    for (const target of targets) {
      const warm = await cannon(servers, monitor, target, users[target], WARMUP_S)
      log(`  warm-up  ${fmtRun(warm)}`)
      assertGood(warm, `scenario ${key}: ${target} warm-up`)
    }
    const runs: Record<Target, Run[]> = { plugin: [], baseline: [], mixed: [], subdomain: [], domain: [] }
    const roundRatios: number[] = []
    for (let round = 0; round < o.rounds; round++) {
      // Rotated order: every target runs first, second (and third) equally often.
      const order = targets.map((_, k) => targets[(k + round) % targets.length] as Target)
      const got: Partial<Record<Target, Run>> = {}
      for (const target of order) {
        quietWait += await awaitQuiet(budget)
        const run = await cannon(servers, monitor, target, users[target], ROUND_S)
        got[target] = run
        runs[target].push(run)
        log(`  round ${round + 1}/${o.rounds} ${fmtRun(run)}`)
        assertGood(run, `scenario ${key}: ${target} round ${round + 1}`)
      }
      const ratio = (got.plugin as Run).rps / (got.baseline as Run).rps
      roundRatios.push(ratio)
      log(`  round ${round + 1}/${o.rounds} ratio plugin/baseline ${ratio.toFixed(3)}` + (got.mixed === undefined ? '' : `, plugin/mixed ${((got.plugin as Run).rps / got.mixed.rps).toFixed(3)}`))
    }
    const all = targets.flatMap((t) => runs[t])

    let ratioActiveSubset: number | null = null
    if (o.subset) {
      const subset = users.plugin.slice(0, ACTIVE_SUBSET)
      const sp: Run[] = []
      const sb: Run[] = []
      for (let round = 0; round < 2; round++) {
        for (const target of round === 0 ? ['plugin', 'baseline'] as const : ['baseline', 'plugin'] as const) {
          quietWait += await awaitQuiet(budget)
          const run = await cannon(servers, monitor, target, target === 'plugin' ? subset : users.baseline, ROUND_S)
          assertGood(run, `scenario ${key}: ${target} with ${ACTIVE_SUBSET} tenants in play`)
          ;(target === 'plugin' ? sp : sb).push(run)
          log(`  ${ACTIVE_SUBSET} of ${tenants} tenants in play: ${fmtRun(run)}`)
        }
      }
      ratioActiveSubset = median(sp.map((r) => r.rps)) / median(sb.map((r) => r.rps))
    }

    // Diagnostics (not in the ratio): pg messages per request, counted in the child, over a fixed
    // number of requests (all answered before counting stops: none in flight at either end).
    const messagesPerRequest: Partial<Record<Target, number>> = {}
    const setPrefixedPerRequest: Partial<Record<Target, number>> = {}
    const setOnlyPerRequest: Partial<Record<Target, number>> = {}
    let registryReloadMs: number | null = null
    if (o.diagnostics) {
      for (const target of targets) {
        const child = servers.child[TARGET_APP[target]]
        // Requests still in flight when the previous (timed) run stopped must not be counted.
        await new Promise((resolve) => setTimeout(resolve, 1000))
        await child.call({ type: 'count', on: true }, 'count')
        const run = await cannon(servers, monitor, target, users[target], 120, DIAG_REQUESTS)
        const counted = await child.call({ type: 'count', on: false }, 'count')
        assertGood(run, `scenario ${key}: ${target} diagnostic run`)
        const name = servers.applicationName[TARGET_APP[target]]
        messagesPerRequest[target] = (counted.messages[name] ?? 0) / run.total
        setPrefixedPerRequest[target] = (counted.prefixed[name] ?? 0) / run.total
        setOnlyPerRequest[target] = (counted.setOnly[name] ?? 0) / run.total
      }
      const reloads: number[] = []
      for (let i = 0; i < 3; i++) reloads.push((await servers.child.plugin.call({ type: 'reload' }, 'reload')).ms)
      registryReloadMs = median(reloads)
    }

    const med: Partial<Record<Target, Summary>> = {}
    for (const target of targets) med[target] = summarize(runs[target])
    const mp = med.plugin as Summary
    const mb = med.baseline as Summary
    const resolverRatio: Partial<Record<Target, number>> = {}
    const resolverCpuRatio: Partial<Record<Target, number>> = {}
    for (const t of RESOLVER_TARGETS) {
      const m = med[t]
      if (m === undefined) continue
      resolverRatio[t] = m.rps / mp.rps
      resolverCpuRatio[t] = (mp.serverUs + mp.pgUs) / (m.serverUs + m.pgUs)
    }
    const result: ScenarioResult = {
      resolverRatio,
      resolverCpuRatio,
      tenants,
      ratio: mp.rps / mb.rps,
      ratioVsMixed: med.mixed === undefined ? null : mp.rps / med.mixed.rps,
      cpuRatio: (mb.serverUs + mb.pgUs) / (mp.serverUs + mp.pgUs),
      med,
      bad: all.reduce((n, r) => n + bad(r), 0),
      messagesPerRequest,
      setPrefixedPerRequest,
      setOnlyPerRequest,
      registryReloadMs,
      roundRatios,
      foreign: median(all.map((r) => r.foreign)),
      quietWait,
      ratioActiveSubset
    }
    log(`scenario ${key} (${tenants} tenants, ${CONNECTIONS} connections, pool ${POOL}): ratio ${result.ratio.toFixed(3)} ` +
      `(per round: ${roundRatios.map((r) => r.toFixed(3)).join(', ')})` +
      (result.ratioVsMixed === null ? '' : `; plugin/mixed ${result.ratioVsMixed.toFixed(3)}`) +
      `; CPU ratio ${result.cpuRatio.toFixed(3)}` +
      (ratioActiveSubset === null ? '' : `; with ${ACTIVE_SUBSET} tenants in play ${ratioActiveSubset.toFixed(3)}`) +
      Object.entries(resolverRatio).map(([t, v]) => `; ${t}/session ${v.toFixed(3)} (CPU ${(resolverCpuRatio[t as Target] ?? NaN).toFixed(3)})`).join(''))
    for (const target of targets) {
      const m = med[target] as Summary
      const counts = messagesPerRequest[target] === undefined
        ? ''
        : `, ${(messagesPerRequest[target] ?? NaN).toFixed(3)} pg messages/req (${(setPrefixedPerRequest[target] ?? NaN).toFixed(3)} with a SET search_path prefix, ${(setOnlyPerRequest[target] ?? NaN).toFixed(3)} lone SETs)`
      log(`  ${target.padEnd(8)} median ${m.rps.toFixed(0)} req/s, p99 ${m.p99.toFixed(1)} ms, server CPU ${m.serverUs.toFixed(0)} µs/req, pg CPU ${m.pgUs.toFixed(0)} µs/req${counts}`)
    }
    log(`  errors/timeouts/non-2xx/wrong-schema bodies over all timed runs: ${result.bad}; other processes used ${pct(result.foreign)} of the machine ` +
      `(median of the runs; ${quietWait.toFixed(0)} s spent waiting for a quieter machine)` +
      (registryReloadMs === null ? '' : `; registry reload: ${registryReloadMs.toFixed(1)} ms`))
    return result
  } finally {
    for (const child of servers.all) await child.stop()
    if (servers.profileDir !== null) log(`  CPU profile(s) of the server child(ren): ${servers.profileDir}`)
  }
}

// ------------------------------------------------------------------ main

runBench('bench:request', async () => {
  const result = await withBenchDatabase(async (url) => {
    const sequelize = makeSequelize(url, 4)
    const monitor = new pg.Client({ connectionString: url, application_name: 'bh-bench-monitor' })
    await monitor.connect()
    try {
      const version = await serverVersion(sequelize)
      log(`PostgreSQL ${version}; ${QUICK ? 'QUICK run; ' : ''}${ROUNDS} rounds of ${ROUND_S} s per target, ${CONNECTIONS} connections, pool ${POOL}`)
      const { Item } = defineExampleModels(sequelize)
      const bh = new Boardinghouse({ sequelize, tenantModels: ['Item'], tenantMigrations: EXAMPLE_TENANT_MIGRATIONS })
      const migrated = await bh.migrate()
      log(`migrate(): template ${migrated.template.join(', ')}`)

      const spurious = { count: 0 }
      const results: Record<string, ScenarioResult> = {}
      let created = 0
      const largest = STEPS[STEPS.length - 1] as number
      for (const tenants of STEPS) {
        await createTenants(bh, Item, created, tenants, spurious)
        created = tenants
        bh.registry.invalidate()
        const registered = (await bh.listSchemas()).length
        if (registered !== tenants) throw new Error(`expected ${tenants} tenants, found ${registered}`)
        const key = String(tenants)
        results[key] = await scenario(url, monitor, { key, tenants, targets: TARGETS, rounds: ROUNDS, separate: SEPARATE, subset: tenants === largest && tenants > ACTIVE_SUBSET, diagnostics: true })
        if (tenants === 50 && CROSSCHECK) {
          results['50_separate'] = await scenario(url, monitor, { key: '50_separate', tenants, targets: ['plugin', 'baseline'], rounds: CROSSCHECK_ROUNDS, separate: true, subset: false, diagnostics: false })
        }
      }

      const r = (key: string): ScenarioResult => results[key] as ScenarioResult
      const ratioOf = (key: string): number | null => results[key] === undefined ? null : r3(r(key).ratio)
      log('summary (median req/s plugin / baseline = ratio):')
      for (const key of Object.keys(results)) {
        const s = r(key)
        log(`  ${key.padStart(11)}: ${(s.med.plugin as Summary).rps.toFixed(0)} / ${(s.med.baseline as Summary).rps.toFixed(0)} = ${s.ratio.toFixed(3)}` +
          `   (${s.ratioVsMixed === null ? '' : `plugin/mixed ${s.ratioVsMixed.toFixed(3)}, `}CPU ratio ${s.cpuRatio.toFixed(3)}, other processes ${pct(s.foreign)} of the machine)`)
      }
      const extra: Record<string, unknown> = {}
      for (const key of Object.keys(results)) {
        const s = r(key)
        if (key !== '50_separate') extra[`ratio_${key}`] = r3(s.ratio)
        for (const target of TARGETS) {
          const m = s.med[target]
          if (m === undefined) continue
          extra[`rps_${target}_${key}`] = round1(m.rps)
          extra[`p99_ms_${target}_${key}`] = round1(m.p99)
          extra[`server_cpu_us_per_req_${target}_${key}`] = round1(m.serverUs)
          extra[`pg_cpu_us_per_req_${target}_${key}`] = round1(m.pgUs)
          const messages = s.messagesPerRequest[target]
          if (messages !== undefined) extra[`pg_messages_per_req_${target}_${key}`] = round2(messages)
        }
        if (s.ratioVsMixed !== null) extra[`ratio_vs_mixed_${key}`] = r3(s.ratioVsMixed)
        extra[`cpu_ratio_${key}`] = r3(s.cpuRatio)
        extra[`round_ratios_${key}`] = s.roundRatios.map(r3)
        if (s.registryReloadMs !== null) extra[`registry_reload_ms_${key}`] = round1(s.registryReloadMs)
        extra[`other_processes_cpu_${key}`] = round2(s.foreign)
        extra[`bad_responses_${key}`] = s.bad
        if (s.ratioActiveSubset !== null) extra[`ratio_${key}_${ACTIVE_SUBSET}_in_play`] = r3(s.ratioActiveSubset)
        for (const [t, v] of Object.entries(s.resolverRatio)) {
          extra[`ratio_${t}_vs_session_${key}`] = r3(v)
          extra[`cpu_ratio_${t}_vs_session_${key}`] = r3(s.resolverCpuRatio[t as Target] ?? NaN)
        }
      }
      const largestKey = String(largest)
      return {
        ratio: ratioOf('50'),
        ratio_10: ratioOf('10'),
        ratio_subdomain_vs_session: results['50']?.resolverRatio.subdomain === undefined ? null : r3(r('50').resolverRatio.subdomain as number),
        ratio_domain_vs_session: results['50']?.resolverRatio.domain === undefined ? null : r3(r('50').resolverRatio.domain as number),
        [`ratio_${largestKey}`]: ratioOf(largestKey),
        rps_plugin_50: results['50'] === undefined ? null : round1((r('50').med.plugin as Summary).rps),
        rps_baseline_50: results['50'] === undefined ? null : round1((r('50').med.baseline as Summary).rps),
        connections: CONNECTIONS,
        pool: POOL,
        server_version: version,
        quick: QUICK,
        rounds: ROUNDS,
        round_s: ROUND_S,
        ...extra,
        ratio_50_separate_processes: ratioOf('50_separate'),
        spurious_not_found: spurious.count
      }
    } finally {
      await monitor.end()
      await sequelize.close()
    }
  })
  return { ...result, wall_s: round1(elapsedSeconds()) }
})
