/** Package hygiene: what npm and a consumer see of package.json, and files a clone must have. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown> & {
  dependencies: Record<string, string>, devDependencies: Record<string, string>, peerDependencies: Record<string, string>,
  peerDependenciesMeta: Record<string, { optional?: boolean }>, exports: Record<string, unknown>, bin: Record<string, string>,
  engines: { node: string }, files: string[], keywords: string[], repository: { url: string }, homepage: string
}

test('dependencies: sequelize, pg, pg-hstore are peers; tsx an optional peer; no loader at run time', () => {
  for (const name of ['sequelize', 'pg', 'pg-hstore', 'tsx', 'typescript', 'esbuild']) assert.equal(pkg.dependencies[name], undefined, `${name} is not a dependency`)
  for (const name of ['sequelize', 'pg', 'pg-hstore', 'tsx', 'fastify', '@fastify/session']) assert.ok(pkg.peerDependencies[name] !== undefined, `${name} is a peer`)
  for (const name of ['sequelize', 'pg', 'pg-hstore', 'tsx']) assert.ok(pkg.devDependencies[name] !== undefined, `${name} is a dev dependency, for the tests`)
  for (const name of ['tsx', 'fastify', '@fastify/session']) assert.equal(pkg.peerDependenciesMeta[name]?.optional, true, `${name} is optional`)
  assert.match(pkg.dependencies['fastify-plugin'] ?? '', /^\^6\./)
})

test('package.json: engines, exports, bin, metadata; LICENSE and CHANGELOG shipped', () => {
  assert.equal(pkg.engines.node, '>=22.12.0')
  assert.equal(pkg.exports['./package.json'], './package.json')
  assert.ok(!pkg.bin.boardinghouse?.startsWith('./'), 'a bin path npm does not rewrite')
  assert.ok(existsSync(join(ROOT, 'plugin/cli.ts')))
  assert.match(readFileSync(join(ROOT, 'plugin/cli.ts'), 'utf8'), /^#!\/usr\/bin\/env node\n/)
  assert.ok(pkg.keywords.includes('multi-tenancy'))
  assert.match(pkg.repository.url, /^git\+https:\/\//)
  assert.match(pkg.homepage, /^https:\/\//)
  for (const f of ['LICENSE', 'CHANGELOG.md']) {
    assert.ok(pkg.files.includes(f), `${f} in files`)
    assert.ok(statSync(join(ROOT, f)).size > 100, `${f} exists`)
  }
  assert.match(readFileSync(join(ROOT, 'LICENSE'), 'utf8'), /^MIT License/)
  const build = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { compilerOptions: { inlineSources?: boolean } }
  assert.equal(build.compilerOptions.inlineSources, true, 'the shipped source maps embed their sources')
})

test('nothing reads ../shared: the project carries its own fixtures', () => {
  const offenders: string[] = []
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      if (['node_modules', '.git', 'dist', '.artifacts', '.data'].includes(name)) continue
      const path = join(dir, name)
      if (statSync(path).isDirectory()) walk(path)
      else if (/\.(ts|js|mjs|cjs|sh)$|^run$/.test(name) && /\.\.\/(\.\.\/)?shared\//.test(readFileSync(path, 'utf8'))) offenders.push(path)
    }
  }
  walk(ROOT)
  assert.deepEqual(offenders, [])
  for (const f of ['schema-fingerprint.sql', 'bench-public.sql', 'bench-tenant-template.sql']) assert.ok(existsSync(join(ROOT, 'test/fixtures', f)), f)
})

test('the README Options table is one table: auditModels, auditRepr and bindPath are in it', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Options'), readme.indexOf('The Fastify plugin takes the options above'))
  const table = /\| name \| type \| default \| meaning \|\n(?:\|.*\|\n)+/.exec(section)?.[0] ?? ''
  for (const option of ['sequelize', 'tenantModels', 'cacheTtl', 'auditModels', 'auditRepr', 'bindPath']) assert.match(table, new RegExp(`^\\| \`${option}\` \\|`, 'm'), option)
})

test('every subpath export has its source, and ./testing is one of them', () => {
  const subpaths = Object.keys(pkg.exports).filter((k) => k !== './package.json')
  for (const required of ['.', './bullmq', './pg-boss', './testing']) assert.ok(subpaths.includes(required), `exports ${required}`)
  for (const key of subpaths) {
    const target = pkg.exports[key] as { types: string, default: string }
    const m = /^\.\/dist\/(plugin\/.+)\.js$/.exec(target.default)
    assert.ok(m !== null, `${key}: default is a .js file under dist/plugin`)
    assert.equal(target.types, `./dist/${m[1] as string}.d.ts`, `${key}: types next to it`)
    assert.ok(existsSync(join(ROOT, `${m[1] as string}.ts`)), `${key}: ${m[1] as string}.ts exists`)
  }
})

test('the test kit imports no test framework, and nothing at run time but node builtins and the library', () => {
  const dir = join(ROOT, 'plugin/testing')
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const source = readFileSync(join(dir, name), 'utf8')
    for (const m of source.matchAll(/^(import|export)\s+(type\s+)?[^'"]*?from\s+'([^']+)'/gm)) {
      const [, , typeOnly, spec] = m as unknown as [string, string, string | undefined, string]
      assert.doesNotMatch(spec, /^(node:test|vitest|jest|@jest\/|tap|mocha|ava)/, `${name} imports ${spec}`)
      if (typeOnly === undefined) assert.ok(spec.startsWith('node:') || spec.startsWith('.'), `${name}: a run-time import of ${spec}`)
    }
  }
})
