/** Seeds the demo users and schemas on first run (idempotent). */
import type { Boardinghouse } from '../plugin/index.js'
import type { ExampleModels } from './models/index.js'
import { hashPassword } from './passwords.js'

export const DEMO_USERS = [
  { username: 'alice', schemas: ['acme', 'globex'], isAdmin: false },
  { username: 'bob', schemas: ['globex'], isAdmin: false },
  { username: 'admin', schemas: [], isAdmin: true }
] as const

export const DEMO_SCHEMAS = [
  { schema: 'acme', name: 'Acme Corporation', items: ['Anvil', 'Rocket skates'] },
  { schema: 'globex', name: 'Globex', items: ['Doomsday device'] }
] as const

/** Returns true when it seeded, false when the users existed already. */
export async function seed (bh: Boardinghouse, models: ExampleModels): Promise<boolean> {
  if (await models.User.count() > 0) return false
  for (const s of DEMO_SCHEMAS) {
    if (await bh.getSchema(s.schema) === null) await bh.createSchema(s.schema, { name: s.name })
    await bh.runInSchema(s.schema, async () => {
      if (await models.Item.count() === 0) await models.Item.bulkCreate(s.items.map((title) => ({ title })))
    })
  }
  for (const u of DEMO_USERS) {
    // demo passwords equal the user names
    const user = await models.User.create({ username: u.username, passwordHash: await hashPassword(u.username), isAdmin: u.isAdmin })
    for (const schema of u.schemas) await bh.grant(schema, user.get('id') as number)
  }
  return true
}
