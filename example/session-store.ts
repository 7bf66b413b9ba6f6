/**
 * A session store for @fastify/session in the example's Postgres (public.sessions), through
 * Sequelize. (connect-pg-simple, the usual choice, is built on express-session's Store class.)
 */
import type { Session } from 'fastify'
import type { SessionStore } from '@fastify/session'
import { Op } from 'sequelize'
import type { SessionModel } from './models/index.js'

type Callback = (err?: unknown) => void
type GetCallback = (err: unknown, session?: Session | null) => void

const DAY = 24 * 60 * 60 * 1000

export class SequelizeSessionStore implements SessionStore {
  constructor (private readonly Session: SessionModel) {}

  set (sid: string, session: Session, callback: Callback): void {
    const cookie = (session as { cookie?: unknown }).cookie as { expires?: string | Date | null } | undefined
    const expiresAt = cookie?.expires != null ? new Date(cookie.expires) : new Date(Date.now() + DAY)
    this.Session.upsert({ sid, data: JSON.parse(JSON.stringify(session)) as Record<string, unknown>, expiresAt })
      .then(() => callback(), callback)
  }

  get (sid: string, callback: GetCallback): void {
    this.Session.findOne({ where: { sid, expiresAt: { [Op.gt]: new Date() } } })
      .then((row) => callback(null, row === null ? null : row.get('data') as Session), (err) => callback(err))
  }

  destroy (sid: string, callback: Callback): void {
    this.Session.destroy({ where: { sid } }).then(() => callback(), callback)
  }

  /** Removes expired sessions. */
  async prune (): Promise<number> {
    return await this.Session.destroy({ where: { expiresAt: { [Op.lte]: new Date() } } })
  }
}
