/**
 * `npm run example`: migrates, seeds on first run and serves the example app on PORT (3000).
 * Uses DATABASE_URL, or else an embedded PostgreSQL with its data in example/.data (git-ignored).
 */
import { mkdirSync, chmodSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Sequelize } from 'sequelize'
import { Boardinghouse } from '../plugin/index.js'
import { buildExampleApp } from './app.js'
import { EmbeddedPostgresError, startEmbeddedPostgres, type EmbeddedDatabase } from './embedded-db.js'
import { loadConfig, optionsFromConfig } from '../plugin/config.js'
import { defineExampleModels } from './models/index.js'
import { DEMO_USERS, seed } from './seed.js'

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'
let embedded: EmbeddedDatabase | undefined
let url = process.env.DATABASE_URL
if (url === undefined || url === '') {
  const dir = process.env.EXAMPLE_DATA_DIR ?? fileURLToPath(new URL('./.data/', import.meta.url))
  mkdirSync(dir, { recursive: true })
  chmodSync(dir, 0o777)
  console.log(`DATABASE_URL is unset: starting an embedded PostgreSQL (data in ${dir})`)
  try {
    embedded = await startEmbeddedPostgres({ dir: join(dir, 'pg'), persistent: true, label: process.env.EXAMPLE_DATA_DIR ?? 'example/.data', log: console.log })
  } catch (err) {
    console.error(`npm run example: the embedded PostgreSQL did not start: ${err instanceof EmbeddedPostgresError ? err.message : String(err)}`)
    process.exit(1)
  }
  url = embedded.url
  console.log(`embedded PostgreSQL ready: DATABASE_URL=${url} (e.g. DATABASE_URL=${url} npm run cli -- schema list)`)
}

const sequelize = new Sequelize(url, { logging: false, pool: { max: 10 } })
const models = defineExampleModels(sequelize)
// The same config as the CLI (npm run cli): models, migration folders and audited models.
const { config } = await loadConfig(fileURLToPath(new URL('./boardinghouse.config.ts', import.meta.url)))
const bh = new Boardinghouse(optionsFromConfig(config, sequelize))
const migrated = await bh.migrate()
console.log(`migrated: ${migrated.shared.length} shared, ${migrated.template.length} in the template, ${migrated.migratedSchemas} schemas`)
if (await seed(bh, models)) console.log('seeded the demo users and schemas')

const app = await buildExampleApp({ sequelize, sessionSecret: process.env.SESSION_SECRET, logger: { level: process.env.LOG_LEVEL ?? 'warn' } })
await app.listen({ port, host })
const address = app.server.address()
const actualPort = typeof address === 'object' && address !== null ? address.port : port
console.log(`fastify-boardinghouse example listening on http://${host}:${actualPort}/`)
console.log(`demo logins (password = user name): ${DEMO_USERS.map((u) => u.username).join(', ')}`)

let closing = false
async function shutdown (): Promise<void> {
  if (closing) return
  closing = true
  await app.close()
  await sequelize.close()
  await embedded?.stop()
  process.exit(0)
}
process.on('SIGINT', () => { void shutdown() })
process.on('SIGTERM', () => { void shutdown() })
