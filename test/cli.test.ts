import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createTestDatabase } from './helpers.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

interface Run { code: number | null, stdout: string, stderr: string }

async function run (command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return await new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

test('the boardinghouse CLI', async (t) => {
  const url = await createTestDatabase(t)
  const env = { ...process.env, DATABASE_URL: url }
  const cli = async (...args: string[]): Promise<Run> =>
    await run(process.execPath, ['--import', 'tsx', 'plugin/cli.ts', '--config', 'example/boardinghouse.config.ts', ...args], env)
  const oneLineError = (r: Run, code: string): void => {
    assert.equal(r.code, 1, r.stderr)
    const lines = r.stderr.trim().split('\n')
    assert.equal(lines.length, 1, r.stderr)
    assert.match(lines[0] ?? '', new RegExp(`^boardinghouse: ${code}: `))
  }

  await t.test('migrate, with plain progress lines off a terminal', async () => {
    const r = await cli('migrate')
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^migrated: \d+ shared, 1 in the template, 0 schemas/m)
    assert.match(r.stderr, /template __template__ migrated/)
  })

  await t.test('schema create, list, grant, revoke, delete', async () => {
    let r = await cli('schema', 'create', 'acme', '--name', 'Acme Inc.')
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /created schema acme \(Acme Inc\.\)/)
    assert.equal((await cli('schema', 'create', 'globex')).code, 0)
    r = await cli('schema', 'list', '--json')
    assert.equal(r.code, 0, r.stderr)
    const list = JSON.parse(r.stdout) as Array<{ schema: string, name: string, isActive: boolean }>
    assert.deepEqual(list.map((s) => [s.schema, s.name, s.isActive]), [['acme', 'Acme Inc.', true], ['globex', 'globex', true]])
    assert.match((await cli('schema', 'grant', 'acme', '42')).stdout, /granted 42 on acme/)
    assert.match((await cli('schema', 'revoke', 'acme', '42')).stdout, /revoked 42 on acme/)
    assert.match((await cli('schema', 'revoke', 'acme', '42')).stdout, /was not a member/)
    assert.match((await cli('schema', 'delete', 'globex')).stdout, /deactivated schema globex/)
    r = await cli('schema', 'list')
    assert.equal(r.stdout, 'acme\tAcme Inc.\n')
    r = await cli('schema', 'list', '--all')
    assert.equal(r.stdout, 'acme\tAcme Inc.\nglobex\tglobex\t(inactive)\n')
    assert.match((await cli('schema', 'activate', 'globex')).stdout, /activated schema globex/)
    assert.equal((await cli('schema', 'list')).stdout, 'acme\tAcme Inc.\nglobex\tglobex\n')
    assert.match((await cli('schema', 'delete', 'globex')).stdout, /deactivated schema globex/)
    assert.match((await cli('schema', 'delete', 'globex', '--drop')).stdout, /dropped schema globex/)
    assert.equal((await cli('schema', 'list', '--all')).stdout, 'acme\tAcme Inc.\n')
  })

  await t.test('errors: exit 1 with one line naming the code', async () => {
    oneLineError(await cli('schema', 'create', 'acme'), 'FST_BH_SCHEMA_EXISTS')
    oneLineError(await cli('schema', 'create', 'Acme'), 'FST_BH_INVALID_SCHEMA_NAME')
    oneLineError(await cli('schema', 'create', 'a"; drop schema public; --'), 'FST_BH_INVALID_SCHEMA_NAME')
    oneLineError(await cli('schema', 'create', '__template__'), 'FST_BH_TEMPLATE_SCHEMA')
    oneLineError(await cli('schema', 'grant', 'nosuch', '1'), 'FST_BH_SCHEMA_NOT_FOUND')
    oneLineError(await cli('schema', 'grant', 'acme', 'bob'), 'FST_BH_INVALID_USER_ID')
    oneLineError(await cli('schema', 'delete', 'nosuch'), 'FST_BH_SCHEMA_NOT_FOUND')
    oneLineError(await cli('schema', 'activate', 'nosuch'), 'FST_BH_SCHEMA_NOT_FOUND')
    oneLineError(await run(process.execPath, ['--import', 'tsx', 'plugin/cli.ts', '--config', 'example/boardinghouse.config.ts', 'schema', 'list'], { ...env, DATABASE_URL: '' }), 'FST_BH_NO_DATABASE_URL')
    oneLineError(await run(process.execPath, ['--import', 'tsx', 'plugin/cli.ts', '--config', 'nope.config.ts', 'schema', 'list'], env), 'FST_BH_CONFIG_NOT_FOUND')
    const unknown = await cli('frobnicate')
    assert.equal(unknown.code, 2)
    assert.match(unknown.stderr, /unknown command/)
    // nothing changed
    assert.equal((await cli('schema', 'list', '--all')).stdout, 'acme\tAcme Inc.\n')
  })

  await t.test('usage errors: exit 2 with one line; a failure while running: exit 1', async () => {
    const usage = (r: Run, message: RegExp): void => {
      assert.equal(r.code, 2, r.stderr)
      const lines = r.stderr.trim().split('\n')
      assert.equal(lines.length, 1, r.stderr)
      assert.match(lines[0] ?? '', /^boardinghouse: /)
      assert.match(lines[0] ?? '', message)
      assert.equal(r.stdout, '')
    }
    usage(await cli('frobnicate'), /unknown command 'frobnicate'/)
    usage(await cli('schema', 'frobnicate'), /unknown command 'frobnicate'/)
    usage(await cli('schema', 'list', '--nope'), /unknown option '--nope'/)
    usage(await cli('schema', 'create'), /missing required argument 'name'/)
    usage(await cli('schema', 'grant', 'acme'), /missing required argument 'userId'/)
    usage(await cli('schema', 'create', 'a', 'b'), /too many arguments/)
    usage(await cli('migrate', '--concurrency'), /argument missing/)
    usage(await cli('migrate', '--concurrency', 'zero'), /^boardinghouse: FST_BH_INVALID_OPTION: .*--concurrency must be a positive integer/)
    usage(await cli('dumpdata', '--format', 'xml'), /^boardinghouse: FST_BH_INVALID_OPTION: .*--format/)
    // a usage error is found before any connection: even without DATABASE_URL it is one
    usage(await run(process.execPath, ['--import', 'tsx', 'plugin/cli.ts', 'schema', 'create'], { ...env, DATABASE_URL: '' }), /missing required argument/)
    // failures while running stay 1
    oneLineError(await cli('schema', 'delete', 'nosuch'), 'FST_BH_SCHEMA_NOT_FOUND')
    const refused = await run(process.execPath, ['--import', 'tsx', 'plugin/cli.ts', '--config', 'example/boardinghouse.config.ts', 'schema', 'list'], { ...env, DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' })
    assert.equal(refused.code, 1, refused.stderr)
    assert.match(refused.stderr, /^boardinghouse: [^\n]*ECONNREFUSED[^\n]*\n$/)
    // no command: the help, exit 2
    const none = await cli()
    assert.equal(none.code, 2)
    assert.match(none.stderr, /^Usage: boardinghouse/)
    assert.equal((await cli('schema', 'list', '--all')).stdout, 'acme\tAcme Inc.\n')
  })

  await t.test('npm run cli runs it with the example config', async () => {
    const r = await run('npm', ['run', '--silent', 'cli', '--', 'schema', 'list', '--json'], env)
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual((JSON.parse(r.stdout) as Array<{ schema: string }>).map((s) => s.schema), ['acme'])
  })
})
