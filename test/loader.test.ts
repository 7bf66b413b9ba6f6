/**
 * tsx is an optional peer: the built CLI, run by plain node, loads .js configs and migrations
 * without it, and refuses a .ts one with FST_BH_TYPESCRIPT_LOADER naming tsx (tsx hidden by a
 * resolve hook, as in an app that did not install it); with tsx there, the same .ts file loads.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { createTestDatabase } from './helpers.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

interface Run { code: number | null, stdout: string, stderr: string }

async function run (args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<Run> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

test('without tsx, .ts configs and migrations are refused with FST_BH_TYPESCRIPT_LOADER; .js ones load', async (t) => {
  // inside the project, so that the build finds node_modules (but not tsx, once hidden)
  mkdirSync(join(ROOT, 'test/.artifacts'), { recursive: true })
  const work = mkdtempSync(join(ROOT, 'test/.artifacts/loader-'))
  t.after(() => { rmSync(work, { recursive: true, force: true }) })
  const build = join(work, 'build')
  const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', build, '--sourceMap', 'false', '--inlineSources', 'false', '--declaration', 'false'], { encoding: 'utf8' })
  assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr)
  // laid out as the package is: <root>/dist/plugin/*.js finds the library's migrations at <root>/migrations
  cpSync(join(ROOT, 'migrations'), join(work, 'migrations'), { recursive: true })
  const hooks = join(work, 'hide-tsx-hooks.mjs')
  writeFileSync(hooks, `export async function resolve (specifier, context, next) {
  if (specifier === 'tsx' || specifier.startsWith('tsx/')) {
    const err = new Error(\`Cannot find package 'tsx' imported from \${context.parentURL}\`)
    err.code = 'ERR_MODULE_NOT_FOUND'
    throw err
  }
  return await next(specifier, context)
}
`)
  const hide = join(work, 'hide-tsx.mjs')
  writeFileSync(hide, `import { register } from 'node:module'\nregister(${JSON.stringify(pathToFileURL(hooks).href)})\n`)

  const app = join(work, 'app')
  mkdirSync(join(app, 'migrations-js'), { recursive: true })
  mkdirSync(join(app, 'migrations-ts'), { recursive: true })
  writeFileSync(join(app, 'package.json'), '{ "type": "module" }\n')
  writeFileSync(join(app, 'migrations-js/01-items.js'), "export async function up ({ context: { queryInterface, Sequelize } }) { await queryInterface.createTable('items', { id: { type: Sequelize.INTEGER, primaryKey: true } }) }\n")
  // an enum: TypeScript that Node's own type stripping (Node >= 22.18) does not take either
  writeFileSync(join(app, 'migrations-ts/01-items.ts'), "import type { QueryInterface } from 'sequelize'\nenum Table { Items = 'items' }\nexport async function up ({ context }: { context: { queryInterface: QueryInterface } }): Promise<void> { await context.queryInterface.createTable(Table.Items, {}) }\n")
  writeFileSync(join(app, 'js.config.js'), "export default { tenantMigrations: './migrations-js' }\n")
  writeFileSync(join(app, 'ts-migrations.config.js'), "export default { tenantMigrations: './migrations-ts' }\n")
  writeFileSync(join(app, 'boardinghouse.config.ts'), "enum Folder { Js = './migrations-js' }\nexport default { tenantMigrations: Folder.Js as string }\n")

  const url = await createTestDatabase(t)
  const env: NodeJS.ProcessEnv = { ...process.env, DATABASE_URL: url }
  delete env.NODE_OPTIONS
  const cli = join(build, 'plugin/cli.js')
  const oneLine = (r: Run, code: string): string => {
    assert.equal(r.code, 1, r.stdout + r.stderr)
    const lines = r.stderr.trim().split('\n')
    assert.equal(lines.length, 1, r.stderr)
    assert.match(lines[0] as string, new RegExp(`^boardinghouse: ${code}: `))
    return lines[0] as string
  }

  const tsConfig = await run(['--import', hide, cli, 'schema', 'list'], env, app)
  assert.match(oneLine(tsConfig, 'FST_BH_TYPESCRIPT_LOADER'), /Loading .*boardinghouse\.config\.ts needs a TypeScript loader: install tsx/)

  const tsMigration = await run(['--import', hide, cli, '--config', 'ts-migrations.config.js', 'migrate'], env, app)
  assert.match(oneLine(tsMigration, 'FST_BH_TYPESCRIPT_LOADER'), /Loading .*migrations-ts\/01-items\.ts needs a TypeScript loader: install tsx/)

  const js = await run(['--import', hide, cli, '--config', 'js.config.js', 'migrate'], env, app)
  assert.equal(js.code, 0, js.stderr)
  assert.match(js.stdout, /^migrated: \d+ shared, 1 in the template/m)

  // the control: with tsx resolvable, the same .ts config loads
  const withTsx = await run([cli, 'schema', 'list', '--json'], env, app)
  assert.equal(withTsx.code, 0, withTsx.stderr)
  assert.equal(withTsx.stdout.trim(), '[]')
})

test('the CLI: --version prints package.json\'s version, --help names DATABASE_URL', async () => {
  const { version } = await import('../package.json', { with: { type: 'json' } }).then((m) => m.default as { version: string })
  const v = await run(['--import', 'tsx', 'plugin/cli.ts', '--version'], process.env, ROOT)
  assert.equal(v.code, 0, v.stderr)
  assert.equal(v.stdout.trim(), version)
  const h = await run(['--import', 'tsx', 'plugin/cli.ts', '--help'], process.env, ROOT)
  assert.equal(h.code, 0, h.stderr)
  assert.match(h.stdout, /^ {2}DATABASE_URL {2}the PostgreSQL database/m)
  assert.match(h.stdout, /-V, --version/)
})
