/**
 * Lifecycle events: a typed wrapper around node:events' EventEmitter, and the change notice that
 * carries an event to the other processes (the NOTIFY each change sends inside its transaction).
 *
 * A notice's payload is JSON: `{ "v": 1, "id": <sender>, "kind": <event>, "key": { schema, … } }`,
 * at most NOTICE_MAX_BYTES. A payload that is not such an object (an older process's bare id, bad
 * JSON, an unknown version or kind, a malformed key, too long) still makes the receiver reload its
 * registry, and emits nothing.
 *
 * Listeners run after the change committed (or the switch was made); one that throws or returns a
 * rejected promise never fails the change or the request: its error goes to the `listenerError`
 * listeners, or, when there are none, to `process.emitWarning` (type BoardinghouseListenerError).
 */
import { EventEmitter } from 'node:events'
import type { MaintenanceBy } from './maintenance.js'

/** Where an event was heard: 'local' (this process made the change) or 'remote' (another process did, heard over LISTEN). */
export type EventOrigin = 'local' | 'remote'

interface Base {
  /** The schema the event is about. */
  schema: string
  origin: EventOrigin
}

export interface SchemaEvent extends Base {}
export interface MembershipEvent extends Base {
  /** The user id, as a string (as in `membersOf`). */
  userId: string
}
export interface DomainEvent extends Base {
  /** The host name, lower-case, without port or trailing dot. */
  host: string
}
export interface SchemaMigratedEvent extends Base {
  /** How many tenant migrations ran in the schema. */
  migrations: number
}
export interface MaintenanceStartedEvent extends Base {
  /** The Retry-After (seconds) its requests get, or null for the default (60). */
  retryAfter: number | null
  /** Who put it in maintenance. */
  by: MaintenanceBy
}
export interface MaintenanceEndedEvent extends Base {
  /** Who had put it in maintenance (the maintenance that ended). */
  by: MaintenanceBy
}
export interface MigratedEvent {
  /** Always null: a run covers every schema (`schemaMigrated` names each). */
  schema: null
  /** Tenant schemas migrated in this run. */
  migratedSchemas: number
  origin: EventOrigin
}
export interface SwitchedEvent {
  /** The schema selected (null: deselected). */
  schema: string | null
  from: string | null
  to: string | null
  /** The user who switched (as a string). */
  userId: string
  /** Switches are session changes: heard in the process that served the request only. */
  origin: 'local'
}
/** A problem of the pending schemas off the request path (plugin/pending.ts): a refill failed, a spare was discarded. */
export interface PendingErrorEvent {
  /** The spare concerned (its internal name), or null for a refill. */
  schema: string | null
  error: Error
  /** Heard in the process whose pool work it was only. */
  origin: 'local'
}
export interface ListenerErrorEvent {
  /** The event whose listener failed. */
  event: Exclude<keyof BoardinghouseEventMap, 'listenerError'>
  error: unknown
}

/** Every event of `bh.on(name, listener)`, with its payload. */
export interface BoardinghouseEventMap {
  schemaCreated: SchemaEvent & { name: string }
  schemaDeactivated: SchemaEvent
  schemaActivated: SchemaEvent
  schemaDropped: SchemaEvent
  membershipGranted: MembershipEvent
  membershipRevoked: MembershipEvent
  domainAdded: DomainEvent
  domainRemoved: DomainEvent
  schemaMigrated: SchemaMigratedEvent
  migrated: MigratedEvent
  maintenanceStarted: MaintenanceStartedEvent
  maintenanceEnded: MaintenanceEndedEvent
  switched: SwitchedEvent
  pendingError: PendingErrorEvent
  listenerError: ListenerErrorEvent
}

export type BoardinghouseEventName = keyof BoardinghouseEventMap
export type BoardinghouseListener<E extends BoardinghouseEventName> = (payload: BoardinghouseEventMap[E]) => void | Promise<void>

/** An event's payload without its origin: what a change records and a notice carries. */
export type EventKey<E extends BoardinghouseEventName> = Omit<BoardinghouseEventMap[E], 'origin'>

/** The events a change notice may carry (switches are not broadcast). */
export type NoticeKind = Exclude<BoardinghouseEventName, 'switched' | 'pendingError' | 'listenerError'>

export interface ParsedNotice<E extends NoticeKind = NoticeKind> {
  sender: string
  kind: E
  key: EventKey<E>
}

export const NOTICE_VERSION = 1
/** PostgreSQL refuses payloads of 8,000 bytes or more; ours stay well under. */
export const NOTICE_MAX_BYTES = 2000

const isString = (v: unknown): v is string => typeof v === 'string' && v !== ''
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0
const isBy = (v: unknown): v is MaintenanceBy => v === 'manual' || v === 'migrate'
const isRetryAfter = (v: unknown): v is number | null => v === null || (typeof v === 'number' && Number.isInteger(v) && v >= 1)

/** Per kind: the key's fields and their checks (a notice with others, or missing ones, is refused). */
const KEY_FIELDS: { [K in NoticeKind]: Record<keyof EventKey<K>, (v: unknown) => boolean> } = {
  schemaCreated: { schema: isString, name: (v) => typeof v === 'string' },
  schemaDeactivated: { schema: isString },
  schemaActivated: { schema: isString },
  schemaDropped: { schema: isString },
  membershipGranted: { schema: isString, userId: isString },
  membershipRevoked: { schema: isString, userId: isString },
  domainAdded: { schema: isString, host: isString },
  domainRemoved: { schema: isString, host: isString },
  schemaMigrated: { schema: isString, migrations: isCount },
  migrated: { schema: (v) => v === null, migratedSchemas: isCount },
  maintenanceStarted: { schema: isString, retryAfter: isRetryAfter, by: isBy },
  maintenanceEnded: { schema: isString, by: isBy }
}

/** The payload of a notice carrying `kind`, or the bare sender id if it would be too long. */
export function encodeNotice<E extends NoticeKind> (sender: string, kind: E, key: EventKey<E>): string {
  const payload = JSON.stringify({ v: NOTICE_VERSION, id: sender, kind, key })
  return Buffer.byteLength(payload) < NOTICE_MAX_BYTES ? payload : sender
}

/**
 * The notice in a payload: its sender (also for a bare id, with no event), and the event if the
 * payload is a well-formed notice of this version; null when the payload is neither.
 */
export function parseNotice (payload: string): { sender: string | null, event: ParsedNotice | null } {
  if (Buffer.byteLength(payload) >= NOTICE_MAX_BYTES || !payload.startsWith('{')) return { sender: payload, event: null }
  let value: unknown
  try {
    value = JSON.parse(payload)
  } catch {
    return { sender: null, event: null }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { sender: null, event: null }
  const v = value as { v?: unknown, id?: unknown, kind?: unknown, key?: unknown }
  const sender = isString(v.id) ? v.id : null
  if (sender === null || v.v !== NOTICE_VERSION || typeof v.kind !== 'string' || !Object.hasOwn(KEY_FIELDS, v.kind)) return { sender, event: null }
  const kind = v.kind as NoticeKind
  const fields = KEY_FIELDS[kind] as Record<string, (x: unknown) => boolean>
  const key = v.key
  if (typeof key !== 'object' || key === null || Array.isArray(key)) return { sender, event: null }
  const entries = Object.entries(key)
  if (entries.length !== Object.keys(fields).length || !entries.every(([k, x]) => Object.hasOwn(fields, k) && (fields[k] as (x: unknown) => boolean)(x))) {
    return { sender, event: null }
  }
  return { sender, event: { sender, kind, key: Object.fromEntries(entries) as EventKey<NoticeKind> } }
}

/** A typed EventEmitter for the lifecycle events; emit() isolates the listeners' failures. */
export class BoardinghouseEmitter {
  private readonly emitter = new EventEmitter()

  on<E extends BoardinghouseEventName> (event: E, listener: BoardinghouseListener<E>): this {
    this.emitter.on(event, listener)
    return this
  }

  once<E extends BoardinghouseEventName> (event: E, listener: BoardinghouseListener<E>): this {
    this.emitter.once(event, listener)
    return this
  }

  off<E extends BoardinghouseEventName> (event: E, listener: BoardinghouseListener<E>): this {
    this.emitter.off(event, listener)
    return this
  }

  listenerCount (event: BoardinghouseEventName): number {
    return this.emitter.listenerCount(event)
  }

  /**
   * Calls each listener of `event` with `payload` (frozen), in order. A listener's throw or
   * rejection is reported (listenerError, else a process warning) and does not stop the others.
   */
  emit<E extends Exclude<BoardinghouseEventName, 'listenerError'>> (event: E, payload: BoardinghouseEventMap[E]): void {
    const frozen = Object.freeze({ ...payload })
    for (const listener of this.emitter.rawListeners(event) as Array<(p: unknown) => unknown>) {
      try {
        const out = listener.call(this.emitter, frozen)
        if (out !== null && typeof out === 'object' && typeof (out as Promise<unknown>).then === 'function') {
          (out as Promise<unknown>).then(undefined, (error: unknown) => { this.failed(event, error) })
        }
      } catch (error) {
        this.failed(event, error)
      }
    }
  }

  private failed (event: ListenerErrorEvent['event'], error: unknown): void {
    const listeners = this.emitter.rawListeners('listenerError') as Array<(p: ListenerErrorEvent) => unknown>
    for (const listener of listeners) {
      try {
        const out = listener.call(this.emitter, { event, error })
        if (out instanceof Promise) out.catch((e: unknown) => { warn(event, e) })
      } catch (e) {
        warn(event, e)
      }
    }
    if (listeners.length === 0) warn(event, error)
  }
}

function warn (event: string, error: unknown): void {
  const message = error instanceof Error ? error.message : String(error)
  process.emitWarning(`a "${event}" listener failed: ${message}`, { type: 'BoardinghouseListenerError', detail: error instanceof Error ? error.stack : undefined })
}
