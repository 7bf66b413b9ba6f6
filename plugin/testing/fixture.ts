/**
 * Schemas for tests: each test gets fresh schemas of its own from `bh.createSchema` (a claimed
 * spare, in milliseconds, when the Boardinghouse keeps pending schemas), with members granted, and
 * dropped when the test ends: through the test's `t` (node:test's `after`, Vitest's
 * `onTestFinished`, tap's `teardown`), `await using`, or `dropSchemas()` in an `afterEach` (Jest).
 */
import { randomBytes } from 'node:crypto'
import type { UserId } from '../../models/index.js'
import type { Boardinghouse } from '../boardinghouse.js'
import { BoardinghouseErrors } from '../errors.js'

type Teardown = (fn: () => Promise<void>) => unknown

/**
 * A test context that runs code when its test ends: node:test's `t` (`after`), Vitest's test
 * context (`onTestFinished`), tap's `t` (`teardown`). Jest has none: call `dropSchemas()` in `afterEach`.
 */
export type TestLike = { after: Teardown } | { onTestFinished: Teardown } | { teardown: Teardown }

export interface TestSchemaOptions {
  /** The test whose end drops the schema (see `TestLike`). Without it: `drop()`, `await using`, or `dropSchemas()`. */
  t?: TestLike
  /** Users made members of the schema. @default [] */
  members?: readonly UserId[]
  /** The display name. @default the schema name */
  name?: string
}

/** A schema of one test. `await using s = await kit.schema()` drops it at the end of the block. */
export interface TestSchema extends AsyncDisposable {
  /** The PostgreSQL schema name (unique per process and run: `<prefix>_<run>_<n>`). */
  readonly schema: string
  readonly name: string
  readonly members: readonly UserId[]
  /** Drops the schema (its rows and memberships); a second call, or one after the schema is gone, does nothing. */
  drop: () => Promise<void>
}

export interface SchemaFixtureOptions {
  /** The first part of every schema name (lower-case letters, digits, `_`; at most 20 characters). @default 'test' */
  prefix?: string
}

/** Creates and drops test schemas on one Boardinghouse; `createSchemaFixture(bh)` without Fastify, `installTestKit(app)` with it. */
export interface SchemaFixture extends AsyncDisposable {
  readonly bh: Boardinghouse
  /** A fresh schema, with `members` granted; dropped when `t` ends (if given). */
  schema: (options?: TestSchemaOptions) => Promise<TestSchema>
  /** `count` fresh schemas, each with `members`; all dropped when `t` ends (if given). */
  schemas: (count: number, options?: TestSchemaOptions) => Promise<TestSchema[]>
  /** The schemas this fixture created and has not dropped yet. */
  readonly live: readonly string[]
  /** Drops every schema this fixture created that is still there (Jest: in `afterEach`). */
  dropSchemas: () => Promise<void>
}

const PREFIX_RE = /^[a-z][a-z0-9_]{0,19}$/

function teardownOf (t: unknown): Teardown {
  const o = t as Partial<Record<'after' | 'onTestFinished' | 'teardown', unknown>> | null
  for (const name of ['after', 'onTestFinished', 'teardown'] as const) {
    const fn = o?.[name]
    if (typeof fn === 'function') return (cb) => (fn as Teardown).call(o, cb)
  }
  throw new BoardinghouseErrors.INVALID_OPTION('t must be a test context with after (node:test), onTestFinished (Vitest) or teardown (tap)')
}

function isGone (err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'FST_BH_SCHEMA_NOT_FOUND'
}

export class SchemaFixtureImpl implements SchemaFixture {
  /** Unique per process and run: schemas of test files running at the same time never collide. */
  private readonly run = `${process.pid.toString(36)}${randomBytes(3).toString('hex')}`
  private readonly prefix: string
  private count = 0
  private readonly created = new Set<string>()

  constructor (readonly bh: Boardinghouse, options: SchemaFixtureOptions = {}) {
    const prefix = options.prefix ?? 'test'
    if (typeof prefix !== 'string' || !PREFIX_RE.test(prefix) || prefix.startsWith('pg_')) {
      throw new BoardinghouseErrors.INVALID_OPTION('prefix must be 1 to 20 lower-case letters, digits or _, starting with a letter (not pg_)')
    }
    this.prefix = prefix
  }

  get live (): readonly string[] {
    return [...this.created]
  }

  async schema (options: TestSchemaOptions = {}): Promise<TestSchema> {
    const teardown = options.t === undefined ? undefined : teardownOf(options.t)
    const members = [...(options.members ?? [])]
    const schema = `${this.prefix}_${this.run}_${++this.count}`
    const info = await this.bh.createSchema(schema, options.name === undefined ? {} : { name: options.name })
    this.created.add(schema)
    const test: TestSchema = {
      schema,
      name: info.name,
      members,
      drop: async () => { await this.drop(schema) },
      [Symbol.asyncDispose]: async () => { await this.drop(schema) }
    }
    try {
      for (const userId of members) await this.bh.grant(schema, userId)
    } catch (err) {
      await this.drop(schema)
      throw err
    }
    teardown?.(async () => { await this.drop(schema) })
    return test
  }

  async schemas (count: number, options: TestSchemaOptions = {}): Promise<TestSchema[]> {
    if (!Number.isInteger(count) || count < 1) throw new BoardinghouseErrors.INVALID_OPTION('count must be a positive integer')
    const out: TestSchema[] = []
    try {
      for (let i = 0; i < count; i++) out.push(await this.schema({ ...options, t: undefined }))
    } catch (err) {
      for (const s of out) await s.drop()
      throw err
    }
    if (options.t !== undefined) teardownOf(options.t)(async () => { for (const s of out) await s.drop() })
    return out
  }

  private async drop (schema: string): Promise<void> {
    if (!this.created.has(schema)) return
    try {
      await this.bh.deleteSchema(schema, { drop: true })
    } catch (err) {
      if (!isGone(err)) throw err // dropped by the test itself
    }
    this.created.delete(schema)
  }

  async dropSchemas (): Promise<void> {
    const errors: unknown[] = []
    for (const schema of [...this.created]) {
      try { await this.drop(schema) } catch (err) { errors.push(err) }
    }
    if (errors.length === 1) throw errors[0]
    if (errors.length > 1) throw new AggregateError(errors, `dropping ${errors.length} test schemas failed`)
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.dropSchemas()
  }
}

/**
 * Test schemas on `bh`, without Fastify:
 *
 *   const schemas = createSchemaFixture(bh)
 *   test('…', async (t) => { const { schema } = await schemas.schema({ t, members: [42] }) })
 */
export function createSchemaFixture (bh: Boardinghouse, options: SchemaFixtureOptions = {}): SchemaFixture {
  return new SchemaFixtureImpl(bh, options)
}
