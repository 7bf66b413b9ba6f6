/** User ids as the membership table stores them, validated against the configured `userIdType`. */
import type { UserIdType } from '../models/index.js'
import { BoardinghouseErrors } from './errors.js'
import { describe } from './names.js'

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** Validates a user id for a `userIdType`. */
export function normalizeUserId (userId: unknown, type: UserIdType): string | number {
  switch (type) {
    case 'integer':
    case 'bigint': {
      const text = typeof userId === 'number' ? String(userId) : typeof userId === 'bigint' ? userId.toString() : userId
      if (typeof text !== 'string' || !/^-?[0-9]{1,19}$/.test(text)) throw new BoardinghouseErrors.INVALID_USER_ID(`${describe(userId)} is not an ${type}`)
      if (type === 'integer' && (Number(text) > 2147483647 || Number(text) < -2147483648)) throw new BoardinghouseErrors.INVALID_USER_ID(`${describe(userId)} is out of range for integer`)
      if (type === 'bigint' && (BigInt(text) > 9223372036854775807n || BigInt(text) < -9223372036854775808n)) throw new BoardinghouseErrors.INVALID_USER_ID(`${describe(userId)} is out of range for bigint`)
      return type === 'integer' ? Number(text) : text
    }
    case 'uuid':
      if (typeof userId !== 'string' || !UUID_RE.test(userId)) throw new BoardinghouseErrors.INVALID_USER_ID(`${describe(userId)} is not a uuid`)
      return userId.toLowerCase()
    case 'string':
      if (typeof userId === 'number' && Number.isSafeInteger(userId)) return String(userId)
      if (typeof userId !== 'string' || userId === '' || userId.length > 255 || userId.includes('\u0000')) throw new BoardinghouseErrors.INVALID_USER_ID(`${describe(userId)} is not a non-empty string of at most 255 characters`)
      return userId
  }
}
