import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { BoardinghouseErrors } from '../plugin/errors.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

test('every error code is in the README errors table with its status, and the table has no others', () => {
  const table = new Map<string, number>()
  for (const m of readme.matchAll(/^\| `(FST_BH_[A-Z_]+)` \| (\d{3}) \|/gm)) table.set(m[1] as string, Number(m[2]))
  const codes = Object.values(BoardinghouseErrors).map((E) => new E())
  for (const err of codes) {
    assert.equal(table.get(err.code), err.statusCode, `${err.code} in the README errors table with status ${String(err.statusCode)}`)
  }
  assert.deepEqual([...table.keys()].sort(), codes.map((e) => e.code).sort())
})

test('the README gives the two commands and the test command', () => {
  assert.match(readme, /npm install && npm run example/)
  assert.match(readme, /^npm test/m)
})

/*
 * Every ```ts block of the README is code a user copies: each is written to a consumer app (a block
 * starting with `// <path>.ts` is that file, any other is a script), type-checked with a
 * consumer's strict settings (module NodeNext, strict, skipLibCheck false) against the package's
 * own types, and run against a real database: the scripts, and the CLI with the README's config.
 */
interface Block { heading: string, file: string, code: string }

function readmeBlocks (): Block[] {
  const blocks: Block[] = []
  let heading = ''
  let n = 0
  const lines = readme.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string
    if (/^#{2,3} /.test(line)) heading = line.replace(/^#+ /, '')
    if (line !== '```ts') continue
    const body: string[] = []
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i] as string)
    const code = body.join('\n') + '\n'
    const named = /^\/\/ ([\w./-]+\.ts)$/.exec(body[0] ?? '')
    blocks.push({ heading, file: named !== null ? named[1] as string : `readme-${++n}-${heading.toLowerCase().replace(/[^a-z]+/g, '-').replace(/^-|-$/g, '')}.ts`, code })
  }
  return blocks
}

// Code around the README's fragments (blocks that use a `bh` set up elsewhere), by heading.
const PRELUDES: Record<string, string> = {
  API: `import { createWriteStream } from 'node:fs'
import { once } from 'node:events'
import { Sequelize } from 'sequelize'
import { createBoardinghouse, dumpDataText, readDumpObjects, writeDump } from 'fastify-boardinghouse'
import { defineModels } from './models.js'
const sequelize = new Sequelize(process.env.DATABASE_URL!, { logging: false })
defineModels(sequelize)
const bh = createBoardinghouse({ sequelize, tenantModels: ['Item'], tenantMigrations: './migrations/tenant' })
await bh.migrate()
await bh.createSchema('acme')
await bh.createSchema('initech')
const file = createWriteStream('acme.json')
await writeDump(dumpDataText(bh, { schema: 'acme' }), 'json', file)
file.end()
await once(file, 'finish')
`
}
const EPILOGUES: Record<string, string> = {
  API: 'console.log(\'README-OK\')\nawait sequelize.close()\n',
  'Usage with Fastify': `const address = app.server.address() as import('node:net').AddressInfo
const res = await fetch(\`http://127.0.0.1:\${address.port}/items\`)
const body = await res.json() as { code?: string }
if (res.status !== 400 || body.code !== 'FST_BH_NO_SCHEMA') throw new Error(\`/items answered \${res.status} \${JSON.stringify(body)}\`)
await app.boardinghouse.createSchema('acme')
const titles = await app.boardinghouse.runInSchema('acme', async () => { await Item.create({ title: 'anvil' }); return (await Item.findAll()).map((i) => i.title) })
if (titles.join() !== 'anvil') throw new Error(titles.join())
console.log('README-OK')
await app.close()
`,
  'Usage without Fastify': 'console.log(\'README-OK\')\n',
  'Background jobs': 'console.log(\'README-OK\')\n',
  // maintenance mode: the values the README's comments give
  'Maintenance mode': `const got = JSON.stringify([state.retryAfter, state.by, state.since instanceof Date, during, admin, count, ended, after])
if (got !== JSON.stringify([120, 'manual', true, '503 120 FST_BH_SCHEMA_MAINTENANCE', '200 -', 0, true, '200 -'])) throw new Error(got)
console.log('README-OK')
await app.close()
await sequelize.close()
`,
  // the doctor found the two hand-made changes, fixed the audit trigger and left the column
  'Checking a fleet: doctor': `if (report.findings.map((f) => \`\${f.schema} \${f.code}\`).join() !== 'acme column_differs,globex audit_trigger_missing') throw new Error(JSON.stringify(report))
if (fixed.fixed.length !== 1 || fixed.findings.map((f) => f.code).join() !== 'column_differs') throw new Error(JSON.stringify(fixed))
console.log('README-OK')
`,
  // every resolver of the routing example, with the checks their results pass
  'Routing by host, header or path': `await bh.createSchema('globex')
await bh.grant('globex', 42) // two schemas: no auto-selection when no resolver gives one
const ask = async (url: string, headers: Record<string, string>): Promise<string> => {
  const res = await app.inject({ url, headers: { authorization: 'Bearer token-of-42', ...headers } })
  return \`\${res.statusCode} \${(res.json() as { code?: string, tenant?: string | null }).code ?? (res.json() as { tenant?: string | null }).tenant ?? ''}\`
}
const seen = [
  await ask('/items', { host: 'SHOP.acme.example.:443' }), await ask('/items', { host: 'acme.example.com' }), await ask('/items', { host: 'www.example.com' }),
  await ask('/items', { host: 'nosuch.example.com' }), await ask('/items', { host: '127.0.0.1' }), await ask('/items', { host: 'www.example.com', 'x-forwarded-host': 'acme.example.com' }),
  await ask('/t/acme/items', {}), await ask('/api/items', { 'x-tenant': 'acme' }), await ask('/api/items', { 'x-tenant': 'acme, globex' }), await ask('/api/items', {})
].join('; ')
const expected = '200 acme; 200 acme; 400 FST_BH_NO_SCHEMA; 404 FST_BH_SCHEMA_NOT_FOUND; 400 FST_BH_INVALID_HOST; 200 acme; 200 ; 200 ; 400 FST_BH_INVALID_TENANT_HEADER; 400 FST_BH_NO_SCHEMA'
if (seen !== expected) throw new Error(seen)
const anonymous = await app.inject({ url: '/items', headers: { host: 'acme.example.com' } })
if (anonymous.statusCode !== 401) throw new Error(anonymous.body)
console.log('README-OK')
await app.close()
await sequelize.close()
`,
  // the events were heard in order, the hooks seeded and dumped the tenant, and the process exits (listener closed)
  'Lifecycle events': `if (log.join('|') !== 'local created acme (Acme Inc.)|user 42 joined acme|dropped acme') throw new Error(log.join('|'))
if (titles.join() !== 'Welcome to acme') throw new Error(titles.join())
if (!(await import('node:fs')).readFileSync('acme-before-drop.json', 'utf8').includes('Welcome to acme')) throw new Error('no dump')
if ((await bh.getSchema('acme')) !== null) throw new Error('acme still exists')
console.log('README-OK')
await bh.close()
await sequelize.close()
`,
  // the staged run and the rollbacks did what the comments say, and the newcomer has no items table
  'Staged migrations and rollback': `const [[newcomer]] = await sequelize.query("SELECT to_regclass('newcomer.items')::text AS t") as [[{ t: string | null }], unknown]
const seen = JSON.stringify({ partial: [partial.migrations, partial.templateKept !== null], behind: status.behind.map((b) => b.schema), staged: [staged.migratedSchemas, staged.failures], full: [full.rolledBackSchemas, full.template], newcomer: newcomer?.t ?? null })
const expected = JSON.stringify({ partial: [['20260102000000-index-items-title'], true], behind: ['eu_globex', 'eu_initech'], staged: [2, []], full: [3, ['20260102000000-index-items-title', '20260101000000-create-items']], newcomer: null })
if (seen !== expected) throw new Error(seen)
console.log('README-OK')
await sequelize.close()
`,
  // a node:test file run as a script: its tests run after this, and a failing one makes the exit code 1
  'Testing your app': 'after(() => { console.log(\'README-OK\') })\n',
  // the outage handler: a route failing with a connection error answers 503 with Retry-After
  'The example app': `app.get('/boom', async () => { throw new ConnectionError(new Error('connect ECONNREFUSED 127.0.0.1:1')) })
const res = await app.inject('/boom')
if (res.statusCode !== 503 || res.headers['retry-after'] !== '5' || res.body.includes('ECONNREFUSED')) throw new Error(res.body)
console.log('README-OK')
await app.close()
`
}

test('every TypeScript block of the README type-checks as a consumer\'s code and runs against PostgreSQL', async (t) => {
  const { mkdirSync, mkdtempSync, rmSync, writeFileSync } = await import('node:fs')
  const { dirname, join } = await import('node:path')
  const { spawnSync, spawn } = await import('node:child_process')
  const { fileURLToPath } = await import('node:url')
  const { createTestDatabase } = await import('./helpers.js')
  const root = fileURLToPath(new URL('..', import.meta.url))
  const blocks = readmeBlocks()
  assert.ok(blocks.length >= 6, `README blocks: ${blocks.map((b) => b.file).join(', ')}`)
  for (const required of ['models.ts', 'app.ts', 'boardinghouse.config.ts', 'migrations/tenant/20260101000000-create-items.ts', 'migrations/shared/20260101000000-create-plans.ts']) {
    assert.ok(blocks.some((b) => b.file === required), `the README shows ${required}`)
  }
  mkdirSync(join(root, 'test/.artifacts'), { recursive: true })
  const app = mkdtempSync(join(root, 'test/.artifacts/readme-')) // inside the project: node_modules resolve
  t.after(() => { rmSync(app, { recursive: true, force: true }) })
  const scripts: Block[] = []
  for (const b of blocks) {
    const script = !b.file.includes('/') && !['models.ts', 'boardinghouse.config.ts'].includes(b.file)
    const code = script ? (PRELUDES[b.heading] ?? '') + b.code + (EPILOGUES[b.heading] ?? '') : b.code
    if (script) {
      assert.ok(!b.file.startsWith('readme-') || PRELUDES[b.heading] !== undefined || /^import /m.test(b.code), `${b.heading}: a fragment needs a prelude in test/readme.test.ts`)
      scripts.push({ ...b, code })
    }
    mkdirSync(dirname(join(app, b.file)), { recursive: true })
    writeFileSync(join(app, b.file), code)
  }
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'readme-app', private: true, type: 'module' }))
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      strict: true,
      skipLibCheck: false,
      noEmit: true,
      types: ['node'],
      // the package's own types (the source of its .d.ts), as the package name
      paths: {
        'fastify-boardinghouse': [join(root, 'plugin/index.ts')],
        'fastify-boardinghouse/bullmq': [join(root, 'plugin/jobs/bullmq.ts')],
        'fastify-boardinghouse/pg-boss': [join(root, 'plugin/jobs/pg-boss.ts')],
        'fastify-boardinghouse/testing': [join(root, 'plugin/testing/index.ts')]
      }
    },
    include: ['**/*.ts']
  }))
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(app, 'tsconfig.json')], { encoding: 'utf8' })
  assert.equal(tsc.status, 0, `tsc --strict on the README's code:\n${tsc.stdout}${tsc.stderr}`)

  const runIn = async (args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null, out: string }> => await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 60_000) // a script that does not end (an open handle) fails
    child.on('error', reject)
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out }) })
  })
  for (const s of scripts) {
    const url = await createTestDatabase(t)
    // NODE_TEST_CONTEXT (set by `node --test` for this file) would make a README test file report to this runner, not to its output
    const { NODE_TEST_CONTEXT: _runner, ...env } = process.env
    const r = await runIn(['--import', 'tsx', s.file], { ...env, DATABASE_URL: url, PORT: '0', SESSION_SECRET: 's'.repeat(40) })
    assert.equal(r.code, 0, `${s.heading} (${s.file}) exited ${String(r.code)}:\n${r.out}`)
    assert.match(r.out, /README-OK/, `${s.heading}: ${r.out}`)
  }
  const url = await createTestDatabase(t)
  const cli = async (...args: string[]): Promise<{ code: number | null, out: string }> => await runIn(['--import', 'tsx', join(root, 'plugin/cli.ts'), ...args], { ...process.env, DATABASE_URL: url })
  const migrated = await cli('migrate')
  assert.equal(migrated.code, 0, migrated.out)
  // the library's own shared migrations, and the README's one shared migration (plans)
  const shared = readdirSync(join(root, 'migrations')).filter((f) => f.endsWith('.js')).length + 1
  const tenantMigrations = blocks.filter((b) => b.file.startsWith('migrations/tenant/')).length // create-items, and the online index
  assert.match(migrated.out, new RegExp(`migrated: ${shared} shared, ${tenantMigrations} in the template`))
  assert.equal((await cli('schema', 'create', 'acme')).code, 0)
  const listed = await cli('schema', 'list')
  assert.equal(listed.out.trim(), 'acme\tacme')
})
