/**
 * dumpdata / loaddata: exact round trips of every column type, a schema's dump loaded into
 * another schema, load order, all-or-nothing loads (every error leaves rows and sequences as they
 * were), sequences after a load, streaming and early stops, and the CLI end to end.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createWriteStream, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { QueryTypes, type Sequelize } from 'sequelize'
import { createTestDatabase, sequelizeFor } from './helpers.js'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import { DEFAULT_MAX_VALUE_LENGTH, JsonNumber, dumpDataBatches, dumpDataText, parseExact, readDumpObjects, stringifyExact, writeDump, type DumpObject, type LoadSource } from '../plugin/data/index.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TENANT_MODELS = ['Item', 'Child', 'Parent', 'Everything', 'Pair', 'Wide']
const TENANT_TABLES = ['items', 'children', 'parents', 'everything', 'pairs', 'wide']
const WIDE_COLUMNS = 120

// ---------------------------------------------------------------- the app under test, as a CLI config module

const TENANT_MIGRATION = `
export async function up ({ context: { sequelize } }) {
  await sequelize.query(\`
    CREATE TABLE items (id serial PRIMARY KEY, title varchar(200) NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
    CREATE TYPE mood AS ENUM ('happy', 'sad', 'in between');
    CREATE TABLE everything (
      id serial PRIMARY KEY,
      ts timestamptz, ts_local timestamp, d date, tm time, tmtz timetz, iv interval,
      dec numeric(30,10), big bigint, j json, jb jsonb, tags text[], nums int[], bin bytea,
      flag boolean, uid uuid, mood mood, f float8, r real, ch char(5),
      big_arr bigint[], dec_arr numeric[], bin_arr bytea[], ts_arr timestamptz[], moods mood[], grid int[][],
      seq_no bigint GENERATED ALWAYS AS IDENTITY,
      txt text, txt_len int GENERATED ALWAYS AS (length(txt)) STORED,
      extra text
    );
    CREATE TABLE parents (id serial PRIMARY KEY, name text NOT NULL);
    CREATE TABLE children (id serial PRIMARY KEY, parent_id int NOT NULL REFERENCES parents (id), name text NOT NULL);
    CREATE TABLE pairs (a int, b text, note text, PRIMARY KEY (a, b));
    CREATE TABLE wide (id serial PRIMARY KEY, ${Array.from({ length: WIDE_COLUMNS }, (_, i) => `c${i + 1} int`).join(', ')});
  \`)
}
`

function configModule (): string {
  const exampleModels = pathToFileURL(join(ROOT, 'example/models/index.ts')).href
  return `
import { defineExampleModels } from ${JSON.stringify(exampleModels)}

export function defineDataModels (sequelize) {
  const { DataTypes } = sequelize.constructor
  const plain = { timestamps: false }
  // Child first: the dump must still put Parent before it
  sequelize.define('Child', {
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    parentId: { type: DataTypes.INTEGER, field: 'parent_id', references: { model: 'parents', key: 'id' } },
    name: DataTypes.TEXT
  }, { ...plain, tableName: 'children' })
  sequelize.define('Parent', {
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    name: DataTypes.TEXT
  }, { ...plain, tableName: 'parents' })
  sequelize.define('Everything', {
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    ts: DataTypes.DATE,
    tsLocal: { type: DataTypes.DATE, field: 'ts_local' },
    d: DataTypes.DATEONLY,
    tm: DataTypes.TIME,
    tmtz: DataTypes.STRING,
    iv: DataTypes.STRING,
    decimalValue: { type: DataTypes.DECIMAL(30, 10), field: 'dec' },
    big: DataTypes.BIGINT,
    j: DataTypes.JSON,
    jb: DataTypes.JSONB,
    tags: DataTypes.ARRAY(DataTypes.TEXT),
    nums: DataTypes.ARRAY(DataTypes.INTEGER),
    bin: DataTypes.BLOB,
    flag: DataTypes.BOOLEAN,
    uid: DataTypes.UUID,
    mood: DataTypes.ENUM('happy', 'sad', 'in between'),
    f: DataTypes.DOUBLE,
    r: DataTypes.REAL,
    ch: DataTypes.CHAR(5),
    bigArr: { type: DataTypes.ARRAY(DataTypes.BIGINT), field: 'big_arr' },
    decArr: { type: DataTypes.ARRAY(DataTypes.DECIMAL), field: 'dec_arr' },
    binArr: { type: DataTypes.ARRAY(DataTypes.BLOB), field: 'bin_arr' },
    tsArr: { type: DataTypes.ARRAY(DataTypes.DATE), field: 'ts_arr' },
    moods: DataTypes.ARRAY(DataTypes.TEXT),
    grid: DataTypes.ARRAY(DataTypes.INTEGER),
    seqNo: { type: DataTypes.BIGINT, field: 'seq_no' },
    txt: DataTypes.TEXT,
    txtLen: { type: DataTypes.INTEGER, field: 'txt_len' }
    // "extra" is a column outside the model
  }, { ...plain, tableName: 'everything' })
  sequelize.define('Pair', {
    a: { type: DataTypes.INTEGER, primaryKey: true },
    b: { type: DataTypes.TEXT, primaryKey: true },
    note: DataTypes.TEXT
  }, { ...plain, tableName: 'pairs' })
  const wide = { id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true } }
  for (let i = 1; i <= ${WIDE_COLUMNS}; i++) wide['v' + i] = { type: DataTypes.INTEGER, field: 'c' + i }
  sequelize.define('Wide', wide, { ...plain, tableName: 'wide' })
}

export default {
  models: (sequelize) => { defineExampleModels(sequelize); defineDataModels(sequelize) },
  tenantModels: ${JSON.stringify(TENANT_MODELS)},
  tenantMigrations: './tenant',
  sharedMigrations: ${JSON.stringify(join(ROOT, 'example/migrations/shared'))}
}
`
}

interface Fixture { bh: Boardinghouse, sequelize: Sequelize, url: string, dir: string, config: string }

async function setup (t: { after: (fn: () => Promise<void>) => void }, extra: { auditModels?: string[], poolMax?: number } = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'bh-data-'))
  t.after(async () => { rmSync(dir, { recursive: true, force: true }) })
  mkdirSync(join(dir, 'tenant'))
  writeFileSync(join(dir, 'tenant', '20260101000000-create-tables.mjs'), TENANT_MIGRATION)
  const config = join(dir, 'boardinghouse.config.mjs')
  writeFileSync(config, configModule())
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url, extra.poolMax !== undefined ? { pool: { max: extra.poolMax } } : {})
  const mod = await import(pathToFileURL(config).href) as { default: { models: (s: Sequelize) => void } }
  mod.default.models(sequelize) // the same models the CLI defines, BEFORE the Boardinghouse
  const bh = new Boardinghouse({
    sequelize,
    tenantModels: TENANT_MODELS,
    tenantMigrations: join(dir, 'tenant'),
    sharedMigrations: join(ROOT, 'example/migrations/shared'),
    ...(extra.auditModels !== undefined ? { auditModels: extra.auditModels } : {})
  })
  await bh.migrate()
  return { bh, sequelize, url, dir, config }
}

// ---------------------------------------------------------------- helpers

async function rows<T extends object = Record<string, unknown>> (sequelize: Sequelize, sql: string, replacements: Record<string, unknown> = {}): Promise<T[]> {
  return await sequelize.query<T>(sql, { type: QueryTypes.SELECT, replacements, logging: false })
}

async function exec (sequelize: Sequelize, sql: string): Promise<void> {
  await sequelize.query(sql, { logging: false })
}

/** Every row (as text) and every sequence state of a schema's tenant tables: equal means nothing was written. */
async function snapshot (sequelize: Sequelize, schema: string): Promise<string> {
  const parts: string[] = []
  for (const table of [...TENANT_TABLES].sort()) {
    const [r] = await rows<{ n: string, digest: string | null }>(sequelize,
      `SELECT count(*)::text AS n, md5(string_agg(t::text, E'\\n' ORDER BY t::text)) AS digest FROM "${schema}"."${table}" t`)
    parts.push(`${table}:${r?.n ?? '?'}:${r?.digest ?? ''}`)
  }
  const seqs = await rows<{ sequencename: string, last_value: string | null }>(sequelize,
    'SELECT sequencename, last_value::text FROM pg_sequences WHERE schemaname = :schema ORDER BY 1', { schema })
  for (const s of seqs) parts.push(`${s.sequencename}=${s.last_value ?? 'unused'}`)
  return parts.join('\n')
}

/** `SELECT t::text` of a table, in primary key order. */
async function tableText (sequelize: Sequelize, schema: string, table: string, order = '1'): Promise<string[]> {
  return (await rows<{ t: string }>(sequelize, `SELECT t::text AS t FROM "${schema}"."${table}" t ORDER BY ${order}`)).map((r) => r.t)
}

async function collect<T> (iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of iterable) out.push(x)
  return out
}

function source (name: string, objects: unknown[]): LoadSource {
  return { name, objects }
}

interface FstError { code: string, message: string }

async function rejectsWith (promise: Promise<unknown>, code: string, message?: RegExp): Promise<FstError> {
  let caught: FstError | undefined
  await assert.rejects(promise, (err: FstError) => { caught = err; return true })
  assert.equal(caught?.code, code, caught?.message)
  if (message !== undefined) assert.match(caught?.message ?? '', message)
  return caught as FstError
}

const EVERYTHING_ROWS = `
INSERT INTO everything (ts, ts_local, d, tm, tmtz, iv, dec, big, j, jb, tags, nums, bin, flag, uid, mood, f, r, ch,
                        big_arr, dec_arr, bin_arr, ts_arr, moods, grid, txt, extra) VALUES
  ('2024-02-29 23:59:59.123456+05:30', '1999-12-31 23:59:59.999999', '2024-02-29', '23:59:59.999999', '12:34:56.789012+02:30',
   '1 year 2 mons 3 days 04:05:06.789', '12345678901234567890.0123456789', 9007199254740993,
   '{"b":1,"a":[1,2.50],"big":123456789012345678901234567890,"z":-0,"e":1e5}',
   '{"a": 1.0, "big": 12345678901234567890, "nested": {"x": [null, true, "sé\\n\\"q\\""]}, "tiny": 0.1000000000000000055511151231257827}',
   ARRAY['a', NULL, 'NULL', 'with "quotes", {braces}', '', 'new
line'], ARRAY[1, NULL, -3], '\\x000102ff00'::bytea, true, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'in between', 0.1, 0.1, 'ab',
   ARRAY[9223372036854775807, NULL, -9223372036854775808], ARRAY[1.50, NULL, 'NaN', 0.000000000000000000001]::numeric[], ARRAY['\\x00'::bytea, NULL, '\\x'::bytea],
   ARRAY['2024-01-01 00:00:00.000001+00'::timestamptz, 'infinity'], ARRAY['happy', 'sad']::mood[], '{{1,2},{3,NULL}}', 'hello', 'outside the model'),
  ('infinity', '-infinity', '0044-03-15 BC', '00:00', '00:00+00', '-1 days +00:00:00.000001', '-0.0000000001', -9223372036854775808,
   '[]', '{}', '{}', '[0:2]={7,8,9}', '\\x'::bytea, false, '00000000-0000-0000-0000-000000000000', 'sad', 'NaN', '-Infinity', '     ',
   '{}', '{}', '{}', '{}', '{}', '[1:2][0:0]={{1},{2}}', '', NULL),
  (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'null', 'null', NULL, NULL, NULL, NULL, NULL, NULL, '-0', '1.17549435e-38', NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
INSERT INTO everything DEFAULT VALUES;
`

async function seedAcme (sequelize: Sequelize): Promise<void> {
  const wideColumns = Array.from({ length: WIDE_COLUMNS }, (_, i) => `c${i + 1}`).join(', ')
  const wideValues = Array.from({ length: WIDE_COLUMNS }, (_, i) => String(i * 1000 + 7)).join(', ')
  await exec(sequelize, `SET search_path = acme; ${EVERYTHING_ROWS}
    INSERT INTO parents (id, name) VALUES (3, 'p3'), (1, 'p1'), (2, 'p2');
    INSERT INTO children (id, parent_id, name) VALUES (20, 1, 'c20'), (10, 3, 'c10'), (30, 3, 'c30');
    INSERT INTO pairs VALUES (2, 'b', 'two b'), (1, 'z', NULL), (1, 'a', 'one a');
    INSERT INTO wide (${wideColumns}) VALUES (${wideValues}), (${wideValues.replace(/7/g, '8')});
    INSERT INTO items (title, created_at, updated_at) SELECT 'item ' || g, '2024-01-01 00:00:00.000001+00'::timestamptz + g * interval '1 microsecond', now() FROM generate_series(1, 1200) g;
    SET search_path = public`)
  // a schema's own sequences keep counting: setval past the rows inserted with explicit ids
  await exec(sequelize, "SELECT setval('acme.parents_id_seq', 3); SELECT setval('acme.children_id_seq', 30)")
}

/** The dump of a schema as objects, through the text the CLI writes (parseExact: what readDumpObjects does). */
async function dumpObjects (bh: Boardinghouse, schema: string, models?: string[]): Promise<DumpObject[]> {
  return (await collect(dumpDataText(bh, { schema, ...(models !== undefined ? { models } : {}) }))).map((t) => parseExact(t) as DumpObject)
}

// ---------------------------------------------------------------- the API

test('dumpData / loadData', async (t) => {
  const { bh, sequelize, url, config } = await setup(t)
  await bh.createSchema('acme')
  await seedAcme(sequelize)

  await t.test('every column type survives a round trip exactly (SELECT t::text compared)', async () => {
    await bh.createSchema('initech')
    const dump = await dumpObjects(bh, 'acme')
    const result = await bh.loadData([source('acme.json', dump)], { schema: 'initech' })
    assert.equal(result.objects, dump.length)
    assert.deepEqual(result.byModel, { Item: 1200, Parent: 3, Child: 3, Everything: 4, Pair: 3, Wide: 2 })
    for (const table of TENANT_TABLES) {
      assert.deepEqual(await tableText(sequelize, 'initech', table), await tableText(sequelize, 'acme', table), table)
    }
    // per column too, with IS NOT DISTINCT FROM (text equality above also catches -0 and NaN)
    const [diff] = await rows<{ n: string }>(sequelize, `SELECT count(*)::text AS n FROM acme.everything a FULL JOIN initech.everything b USING (id)
      WHERE (a.ts, a.ts_local, a.d, a.tm, a.tmtz, a.iv, a.dec, a.big, a.j::text, a.jb, a.tags, a.nums, a.bin, a.flag, a.uid, a.mood::text, a.f, a.r, a.ch,
             a.big_arr, a.dec_arr, a.bin_arr, a.ts_arr, a.moods::text[], a.grid, a.seq_no, a.txt, a.txt_len, a.extra)
        IS DISTINCT FROM
            (b.ts, b.ts_local, b.d, b.tm, b.tmtz, b.iv, b.dec, b.big, b.j::text, b.jb, b.tags, b.nums, b.bin, b.flag, b.uid, b.mood::text, b.f, b.r, b.ch,
             b.big_arr, b.dec_arr, b.bin_arr, b.ts_arr, b.moods::text[], b.grid, b.seq_no, b.txt, b.txt_len, b.extra)`)
    assert.equal(diff?.n, '0')
  })

  await t.test('the format: attribute names, pk apart, exact strings for NUMERIC, BIGINT, bytea; PostgreSQL\'s own text', async () => {
    const dump = await dumpObjects(bh, 'acme', ['Everything'])
    const [first, second, third, empty] = dump as [DumpObject, DumpObject, DumpObject, DumpObject]
    assert.equal(first.model, 'Everything')
    assert.equal(first.pk, 1)
    assert.equal(first.schema, 'acme')
    const f = first.fields
    assert.equal('id' in f, false, 'the pk is not repeated in fields')
    assert.equal('txtLen' in f, false, 'generated columns are not dumped')
    assert.equal(f.extra, 'outside the model', 'a column outside the model is dumped under its column name')
    assert.equal(f.ts, '2024-02-29T18:29:59.123456+00:00')
    assert.equal(f.tsLocal, '1999-12-31T23:59:59.999999')
    assert.equal(f.d, '2024-02-29')
    assert.equal(f.tm, '23:59:59.999999')
    assert.equal(f.iv, '1 year 2 mons 3 days 04:05:06.789')
    assert.equal(f.decimalValue, '12345678901234567890.0123456789')
    assert.equal(f.big, '9007199254740993')
    assert.equal(f.bin, '\\x000102ff00')
    assert.equal(f.f, 0.1)
    assert.equal(f.r, 0.1)
    assert.equal(f.flag, true)
    assert.equal(f.uid, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')
    assert.equal(f.mood, 'in between')
    assert.equal(f.ch, 'ab   ')
    assert.deepEqual(f.tags, ['a', null, 'NULL', 'with "quotes", {braces}', '', 'new\nline'])
    assert.deepEqual(f.nums, [1, null, -3])
    assert.deepEqual(f.grid, [[1, 2], [3, null]])
    assert.deepEqual(f.bigArr, ['9223372036854775807', null, '-9223372036854775808'])
    assert.deepEqual(f.decArr, ['1.50', null, 'NaN', '0.000000000000000000001'])
    assert.deepEqual(f.binArr, ['\\x00', null, '\\x'])
    assert.deepEqual(f.tsArr, ['2024-01-01T00:00:00.000001+00:00', 'infinity'])
    assert.equal(typeof f.seqNo, 'string')
    const jb = f.jb as Record<string, unknown>
    assert.ok(jb.a instanceof JsonNumber && jb.a.text === '1.0', 'jsonb 1.0 stays 1.0')
    assert.ok(jb.big instanceof JsonNumber && jb.big.text === '12345678901234567890')
    assert.deepEqual((jb.nested as { x: unknown[] }).x, [null, true, 'sé\n"q"'])
    const j = f.j as Record<string, unknown>
    assert.deepEqual(Object.keys(j), ['b', 'a', 'big', 'z', 'e'], 'json keeps its key order')
    assert.equal(stringifyExact(j), '{"b":1,"a":[1,2.50],"big":123456789012345678901234567890,"z":-0,"e":1e5}')
    assert.equal(second.fields.ts, 'infinity')
    assert.equal(second.fields.d, '0044-03-15 BC')
    assert.equal(second.fields.f, 'NaN')
    assert.equal(second.fields.nums, '[0:2]={7,8,9}', 'arrays with other lower bounds travel as their text')
    assert.equal(second.fields.grid, '[1:2][0:0]={{1},{2}}')
    assert.deepEqual(second.fields.tags, [])
    assert.equal(second.fields.r, '-Infinity')
    assert.ok(third.fields.f instanceof JsonNumber && third.fields.f.text === '-0')
    assert.equal(third.fields.r, 1.1754944e-38)
    assert.equal(third.fields.jb, null)
    assert.equal(third.fields.j, null)
    assert.deepEqual(third.jsonNull, ['j', 'jb'], 'json and jsonb holding JSON null (not SQL NULL) are listed in jsonNull')
    assert.equal(empty.jsonNull, undefined)
    for (const [key, value] of Object.entries(empty.fields)) {
      if (key !== 'seqNo') assert.equal(value, null, `${key} is null`)
    }
    // composite keys: an object; a wide table (more than 100 json_build_object arguments)
    const pairs = await dumpObjects(bh, 'acme', ['Pair'])
    assert.deepEqual(pairs.map((p) => p.pk), [{ a: 1, b: 'a' }, { a: 1, b: 'z' }, { a: 2, b: 'b' }])
    assert.deepEqual(pairs[0]?.fields, { note: 'one a' })
    const [wide] = await dumpObjects(bh, 'acme', ['Wide'])
    assert.equal(Object.keys(wide?.fields ?? {}).length, WIDE_COLUMNS)
    assert.equal(wide?.fields.v120, 119007)
  })

  await t.test('order: parents before children, each model by primary key; a load of it succeeds with foreign keys enforced', async () => {
    const dump = await dumpObjects(bh, 'acme', ['Child', 'Parent'])
    assert.deepEqual(dump.map((o) => `${o.model}:${String(o.pk)}`), ['Parent:1', 'Parent:2', 'Parent:3', 'Child:10', 'Child:20', 'Child:30'])
    const all = await dumpObjects(bh, 'acme')
    const models = [...new Set(all.map((o) => o.model))]
    assert.ok(models.indexOf('Parent') < models.indexOf('Child'), models.join(','))
    assert.deepEqual(models, ['Item', 'Parent', 'Child', 'Everything', 'Pair', 'Wide'])
    const items = all.filter((o) => o.model === 'Item').map((o) => o.pk as number)
    assert.deepEqual(items, [...items].sort((a, b) => a - b))
    await bh.createSchema('ordered')
    await bh.loadData([source('family.json', dump)], { schema: 'ordered' })
    assert.deepEqual(await tableText(sequelize, 'ordered', 'children'), await tableText(sequelize, 'acme', 'children'))
    // the same objects children first: the database refuses them
    await bh.createSchema('reversed')
    const before = await snapshot(sequelize, 'reversed')
    await rejectsWith(bh.loadData([source('reversed.json', [...dump].reverse())], { schema: 'reversed' }), 'FST_BH_LOAD_FAILED',
      /reversed\.json: object 1 \(Child, pk 30 in schema reversed\): insert or update on table "children" violates foreign key constraint/)
    assert.equal(await snapshot(sequelize, 'reversed'), before)
  })

  await t.test('sequences (serial and identity) move past the loaded keys, never backwards', async () => {
    const [item] = await rows<{ id: number }>(sequelize, "INSERT INTO initech.items (title) VALUES ('next') RETURNING id")
    assert.equal(item?.id, 1201)
    const [e] = await rows<{ id: number, seq_no: string }>(sequelize, 'INSERT INTO initech.everything DEFAULT VALUES RETURNING id, seq_no::text')
    const [max] = await rows<{ m: string }>(sequelize, 'SELECT max(seq_no)::text AS m FROM acme.everything')
    assert.equal(e?.id, 5)
    assert.equal(BigInt(e?.seq_no ?? '0'), BigInt(max?.m ?? '0') + 1n)
    // a sequence already ahead stays where it is
    await bh.createSchema('ahead')
    await exec(sequelize, "SELECT setval('ahead.parents_id_seq', 1000)")
    await bh.loadData([source('parents.json', await dumpObjects(bh, 'acme', ['Parent']))], { schema: 'ahead' })
    const [seq] = await rows<{ last_value: string }>(sequelize, 'SELECT last_value::text FROM ahead.parents_id_seq')
    assert.equal(seq?.last_value, '1000')
    // and through the model: Sequelize's INSERT in the schema does not collide
    await bh.runInSchema('initech', async () => {
      const child = await bh.options.sequelize.models.Child?.create({ parentId: 1, name: 'new' })
      assert.equal(child?.get('id'), 31)
    })
  })

  await t.test('without --schema each tenant object goes to its own schema; shared objects go to public', async () => {
    await bh.createSchema('globex')
    const acme = await dumpObjects(bh, 'acme', ['Parent'])
    const globex = acme.map((o) => ({ ...o, schema: 'globex', pk: (o.pk as number) + 100 }))
    await exec(sequelize, "INSERT INTO public.users (id, username, password_hash) VALUES (1, 'alice', 'x'), (2, 'bob', 'y')")
    const users = await collect(bh.dumpData())
    assert.deepEqual(users.map((u) => [u.model, u.pk, u.schema]), [['User', 1, null], ['User', 2, null]])
    await exec(sequelize, 'DELETE FROM public.users')
    const r = await bh.loadData([source('mixed.json', [...users, ...globex])])
    assert.deepEqual(r.byModel, { User: 2, Parent: 3 })
    assert.deepEqual((await rows<{ id: number }>(sequelize, 'SELECT id FROM globex.parents ORDER BY id')).map((x) => x.id), [101, 102, 103])
    assert.deepEqual((await rows<{ username: string }>(sequelize, 'SELECT username FROM public.users ORDER BY id')).map((x) => x.username), ['alice', 'bob'])
    const [u] = await rows<{ id: number }>(sequelize, "INSERT INTO public.users (username, password_hash) VALUES ('carol', 'z') RETURNING id")
    assert.equal(u?.id, 3)
    // generated columns given in a dump are skipped (the database computes them); jsonNull gives JSON null
    await bh.loadData([source('hand.json', [{ model: 'Everything', pk: 99, schema: 'globex', fields: { txt: 'abc', txtLen: 999, jb: null, j: { a: 1 } }, jsonNull: ['jb'] }])])
    const [e] = await rows<{ txt_len: number, jb: string, j: string }>(sequelize, 'SELECT txt_len, jb::text AS jb, j::text AS j FROM globex.everything WHERE id = 99')
    assert.deepEqual(e, { txt_len: 3, jb: 'null', j: '{"a":1}' })
  })

  await t.test('every load error leaves everything as it was (rows and sequences)', async () => {
    await bh.createSchema('target')
    await exec(sequelize, "INSERT INTO target.parents (name) VALUES ('already here')")
    const good = await dumpObjects(bh, 'acme')
    const before = await snapshot(sequelize, 'target')
    const publicBefore = await tableText(sequelize, 'public', 'users')
    const item = (pk: unknown, fields: Record<string, unknown> = { title: 'x' }, schema: string | null = 'target'): Record<string, unknown> => ({ model: 'Item', pk, schema, fields })
    const cases: Array<{ name: string, sources: LoadSource[], options?: { schema?: string }, code: string, message: RegExp }> = [
      { name: 'no schema anywhere', sources: [source('a.json', [item(1), item(2, {}, null)])], code: 'FST_BH_INVALID_DUMP', message: /a\.json: object 2 \(Item\): a tenant model's object needs a schema/ },
      { name: 'into the template', sources: [source('a.json', good)], options: { schema: '__template__' }, code: 'FST_BH_TEMPLATE_SCHEMA', message: /__template__/ },
      { name: 'an object for the template', sources: [source('a.json', [item(1), item(2, {}, '__template__')])], code: 'FST_BH_TEMPLATE_SCHEMA', message: /__template__/ },
      { name: 'unknown schema', sources: [source('a.json', good)], options: { schema: 'nosuch' }, code: 'FST_BH_SCHEMA_NOT_FOUND', message: /"nosuch"/ },
      { name: 'an object for an unknown schema', sources: [source('a.json', [item(1), item(2, {}, 'nosuch')])], code: 'FST_BH_SCHEMA_NOT_FOUND', message: /"nosuch"/ },
      { name: 'an invalid schema name', sources: [source('a.json', [item(1, {}, 'No"Such')])], code: 'FST_BH_INVALID_SCHEMA_NAME', message: /No/ },
      { name: 'unknown model', sources: [source('a.json', [item(1), { model: 'Nope', pk: 1, schema: 'target', fields: {} }])], code: 'FST_BH_INVALID_DUMP', message: /a\.json: object 2: unknown model "Nope"/ },
      { name: 'the library\'s own model', sources: [source('a.json', [{ model: 'BoardinghouseSchema', pk: 'x', schema: null, fields: {} }])], code: 'FST_BH_INVALID_DUMP', message: /unknown model "BoardinghouseSchema"/ },
      { name: 'unknown field', sources: [source('a.json', [item(1), item(2, { title: 'x', colour: 'red' })])], code: 'FST_BH_INVALID_DUMP', message: /a\.json: object 2 \(Item\): unknown field "colour"/ },
      { name: 'a column name for an attribute', sources: [source('a.json', [item(1, { title: 'x', created_at: '2024-01-01' })])], code: 'FST_BH_INVALID_DUMP', message: /unknown field "created_at"/ },
      { name: 'not an object', sources: [source('a.json', [item(1), [1, 2]])], code: 'FST_BH_INVALID_DUMP', message: /a\.json: object 2: not an object/ },
      { name: 'wrong type', sources: [source('a.json', [item(1), { model: 'Everything', pk: 1, schema: 'target', fields: { big: 'many' } }])], code: 'FST_BH_LOAD_FAILED', message: /a\.json: object 2 \(Everything, pk 1 in schema target\): invalid input syntax for type bigint: "many"/ },
      { name: 'duplicate key in one batch', sources: [source('a.json', [item(1), item(2), item(1)])], code: 'FST_BH_LOAD_FAILED', message: /a\.json: object 3 \(Item, pk 1 in schema target\): duplicate key value violates unique constraint "items_pkey" \(Key \(id\)=\(1\) already exists\.\)/ },
      { name: 'duplicate of a row already there', sources: [source('a.json', [{ model: 'Parent', pk: 1, schema: 'target', fields: { name: 'again' } }])], code: 'FST_BH_LOAD_FAILED', message: /object 1 \(Parent, pk 1 in schema target\): duplicate key/ },
      { name: 'foreign key', sources: [source('a.json', [{ model: 'Child', pk: 1, schema: 'target', fields: { parentId: 999, name: 'orphan' } }])], code: 'FST_BH_LOAD_FAILED', message: /violates foreign key constraint/ },
      { name: 'not null', sources: [source('a.json', [item(1, { title: null })])], code: 'FST_BH_LOAD_FAILED', message: /null value in column "title"/ },
      { name: 'jsonNull on a column that is not json', sources: [source('a.json', [{ model: 'Everything', pk: 1, schema: 'target', fields: { txt: null }, jsonNull: ['txt'] }])], code: 'FST_BH_INVALID_DUMP', message: /"txt" in "jsonNull" is not a json or jsonb field/ },
      { name: 'an unknown key in an object', sources: [source('a.json', [{ model: 'Item', pk: 1, schema: 'target', fields: { title: 'x' }, extra: true }])], code: 'FST_BH_INVALID_DUMP', message: /unknown key "extra"/ },
      { name: 'a composite pk given as a scalar', sources: [source('a.json', [{ model: 'Pair', pk: 1, schema: 'target', fields: {} }])], code: 'FST_BH_INVALID_DUMP', message: /composite/ },
      { name: 'the second source fails after the first loaded', sources: [source('one.json', good.filter((o) => o.model === 'Item')), source('two.json', [item(5000), item(5001, { title: 'y'.repeat(201) })])], options: { schema: 'target' }, code: 'FST_BH_LOAD_FAILED', message: /two\.json: object 2 \(Item, pk 5001 in schema target\): value too long/ }
    ]
    for (const c of cases) {
      await rejectsWith(bh.loadData(c.sources, c.options ?? {}), c.code, c.message).catch((err: unknown) => { throw new Error(`${c.name}: ${(err as Error).message}`) })
      assert.equal(await snapshot(sequelize, 'target'), before, c.name)
    }
    assert.deepEqual(await tableText(sequelize, 'public', 'users'), publicBefore)
  })

  await t.test('a load failing at its LAST object (after 1,200 rows in 3 batches and 5 models) leaves the database unchanged', async () => {
    await bh.createSchema('last')
    const before = await snapshot(sequelize, 'last')
    const dump = await dumpObjects(bh, 'acme')
    const lastPair = dump[dump.length - 1] as DumpObject
    assert.equal(lastPair.model, 'Wide')
    const broken = [...dump.slice(0, -1), { ...lastPair, fields: { ...lastPair.fields, v1: 'one' } }]
    const err = await rejectsWith(bh.loadData([source('big.json', broken)], { schema: 'last' }), 'FST_BH_LOAD_FAILED',
      new RegExp(`big\\.json: object ${dump.length} \\(Wide, pk 2 in schema last\\): invalid input syntax for type integer: "one"`))
    assert.equal((err as unknown as { position: number }).position, dump.length)
    assert.equal(await snapshot(sequelize, 'last'), before)
    // the same objects load once fixed
    await bh.loadData([source('big.json', dump)], { schema: 'last' })
    assert.deepEqual(await tableText(sequelize, 'last', 'items'), await tableText(sequelize, 'acme', 'items'))
  })

  await t.test('dump errors', async () => {
    await rejectsWith(collect(bh.dumpData({ models: ['Item', 'User', 'Parent'] })), 'FST_BH_TENANT_MODEL_NEEDS_SCHEMA', /: Item, Parent$/)
    await rejectsWith(collect(bh.dumpData({ schema: 'acme', models: ['Nope'] })), 'FST_BH_UNKNOWN_MODEL', /"Nope"/)
    await rejectsWith(collect(bh.dumpData({ schema: 'nosuch' })), 'FST_BH_SCHEMA_NOT_FOUND', /"nosuch"/)
    await rejectsWith(collect(bh.dumpData({ schema: '__template__' })), 'FST_BH_TEMPLATE_SCHEMA')
    await rejectsWith(collect(bh.dumpData({ schema: 'a"b' })), 'FST_BH_INVALID_SCHEMA_NAME')
    // without a model list and with --schema: the tenant models only; without: the shared ones only
    assert.deepEqual([...new Set((await collect(bh.dumpData({ schema: 'acme' }))).map((o) => o.model))], ['Item', 'Parent', 'Child', 'Everything', 'Pair', 'Wide'])
    assert.deepEqual([...new Set((await collect(bh.dumpData())).map((o) => o.model))], ['User'])
    // a named shared model with a schema: both
    assert.deepEqual([...new Set((await collect(bh.dumpData({ schema: 'acme', models: ['User', 'Parent'] }))).map((o) => `${o.model}:${String(o.schema)}`))], ['User:null', 'Parent:acme'])
  })

  await t.test('objects larger than the write and batch buffers, through files in both formats', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bh-big-'))
    t.after(() => { rmSync(dir, { recursive: true, force: true }) })
    await bh.createSchema('bigsrc')
    await exec(sequelize, `INSERT INTO bigsrc.everything (txt, jb, tags) SELECT repeat('é€', 200000 * g), jsonb_build_object('k', repeat('x', 300000)), ARRAY[repeat('y', 100000)]
      FROM generate_series(1, 3) g; INSERT INTO bigsrc.everything (txt) SELECT 'small ' || g FROM generate_series(1, 2000) g`)
    for (const format of ['json', 'ndjson'] as const) {
      const file = join(dir, `big.${format}`)
      const out = createWriteStream(file)
      const count = await writeDump(dumpDataBatches(bh, { schema: 'bigsrc', models: ['Everything'] }), format, out)
      out.end()
      await once(out, 'finish')
      assert.equal(count, 2003)
      await bh.createSchema(`big${format}`)
      const r = await bh.loadData([{ name: file, objects: readDumpObjects(file) }], { schema: `big${format}` })
      assert.equal(r.objects, 2003)
      assert.deepEqual(await tableText(sequelize, `big${format}`, 'everything'), await tableText(sequelize, 'bigsrc', 'everything'), format)
    }
  })

  await t.test('a dump reads one snapshot, and stopping early gives its connection back', async () => {
    const iterator = bh.dumpData({ schema: 'acme', models: ['Parent', 'Child'] })[Symbol.asyncIterator]()
    const first = await iterator.next()
    assert.equal((first.value as DumpObject).pk, 1)
    await exec(sequelize, "INSERT INTO acme.parents (id, name) VALUES (4, 'late'); INSERT INTO acme.children (id, parent_id, name) VALUES (40, 4, 'late')")
    const rest: DumpObject[] = []
    for (let r = await iterator.next(); r.done !== true; r = await iterator.next()) rest.push(r.value)
    assert.deepEqual(rest.map((o) => `${o.model}:${String(o.pk)}`), ['Parent:2', 'Parent:3', 'Child:10', 'Child:20', 'Child:30'])
    await exec(sequelize, 'DELETE FROM acme.children WHERE id = 40; DELETE FROM acme.parents WHERE id = 4')

    // one pool connection: a dump abandoned after its first object must not keep it
    const small = sequelizeFor(t, url, { pool: { max: 1, acquire: 5000 } })
    const mod = await import(pathToFileURL(config).href) as { default: { models: (s: Sequelize) => void } }
    mod.default.models(small)
    const bh1 = new Boardinghouse({ sequelize: small, tenantModels: TENANT_MODELS })
    for await (const o of bh1.dumpData({ schema: 'acme' })) { assert.equal(o.model, 'Item'); break }
    const [one] = await rows<{ one: number }>(small, 'SELECT 1 AS one')
    assert.equal(one?.one, 1)
    const idle = await rows<{ n: string }>(sequelize, "SELECT count(*)::text AS n FROM pg_stat_activity WHERE datname = current_database() AND state LIKE 'idle in transaction%'")
    assert.equal(idle[0]?.n, '0')
    // an error inside the consumer's loop too
    await assert.rejects((async () => { for await (const _ of bh1.dumpData({ schema: 'acme' })) throw new Error('consumer failed') })(), /consumer failed/)
    const [again] = await rows<{ one: number }>(small, 'SELECT 1 AS one')
    assert.equal(again?.one, 1)
  })
})

// ---------------------------------------------------------------- reading files

test('readDumpObjects: JSON arrays (any layout) and NDJSON, told apart by the first character', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bh-read-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = (name: string, text: string): string => { const p = join(dir, name); writeFileSync(p, text); return p }
  const pretty = file('pretty.json', '\ufeff \n [\n  {\n    "model": "Item",\n    "pk": 1,\n    "fields": {"n": 1.0, "m": 2, "big": 12345678901234567890, "s": "1.0"}\n  },\n  {"model": "Item", "pk": 2}\n]\n')
  const objects = await collect(readDumpObjects(pretty)) as Array<{ pk: number, fields?: Record<string, unknown> }>
  assert.deepEqual(objects.map((o) => o.pk), [1, 2])
  const fields = objects[0]?.fields ?? {}
  assert.ok(fields.n instanceof JsonNumber && fields.n.text === '1.0')
  assert.equal(fields.m, 2)
  assert.equal(fields.s, '1.0')
  assert.equal(stringifyExact(fields), '{"n":1.0,"m":2,"big":12345678901234567890,"s":"1.0"}')
  const nd = file('x.ndjson', '{"model": "Item", "pk": 1, "fields": {"n": -0}}\r\n\n{"model": "Item", "pk": 2}')
  const ndObjects = await collect(readDumpObjects(nd)) as Array<{ pk: number, fields?: { n: unknown } }>
  assert.deepEqual(ndObjects.map((o) => o.pk), [1, 2])
  assert.ok(ndObjects[0]?.fields?.n instanceof JsonNumber)
  assert.deepEqual(await collect(readDumpObjects(file('blank.json', ' \n\t'))), [])
  assert.deepEqual(await collect(readDumpObjects('-', Readable.from([Buffer.from('[{"pk"'), Buffer.from(': 7}]')]))), [{ pk: 7 }])
  await rejectsWith(collect(readDumpObjects(file('bad.txt', 'model,pk\n'))), 'FST_BH_INVALID_DUMP', /bad\.txt: neither a JSON array nor NDJSON/)
  await rejectsWith(collect(readDumpObjects(file('broken.json', '[{"pk": 1}, {"pk": 2,'))), 'FST_BH_INVALID_DUMP', /broken\.json is not valid JSON after object 1/)
  await rejectsWith(collect(readDumpObjects(file('broken.ndjson', '{"pk": 1}\n{"pk": \n'))), 'FST_BH_INVALID_DUMP', /broken\.ndjson is not valid JSON after object 1/)
  await rejectsWith(collect(readDumpObjects(join(dir, 'missing.json'))), 'FST_BH_INVALID_DUMP', /missing\.json: cannot be read: ENOENT/)
  // stopping early closes the file
  for await (const o of readDumpObjects(pretty)) { assert.ok(o !== null); break }
  assert.ok(existsSync(pretty) && readdirSync(dir).length > 0)
  // JSON.stringify of a JsonNumber gives the nearest double (for callers that do not need exactness)
  assert.equal(JSON.stringify({ n: new JsonNumber('1.0') }), '{"n":1}')
  assert.equal(stringifyExact({ n: new JsonNumber('1.0'), s: 'x' }), '{"n":1.0,"s":"x"}')
})

// ---------------------------------------------------------------- hostile and careless input (issue 8)

test('a load records its caller as the audit user, never the previous user of its pooled connection', async (t) => {
  // one pool connection: the load runs on the connection the previous queries used
  const { bh, sequelize } = await setup(t, { auditModels: ['Item'], poolMax: 1 })
  await bh.createSchema('acme')
  const Item = sequelize.models.Item as NonNullable<typeof sequelize.models.Item>
  const item = (pk: number): Record<string, unknown> => ({ model: 'Item', pk, schema: 'acme', fields: { title: `loaded ${pk}` } })
  const entries = async (): Promise<Array<[string, string | null]>> =>
    (await rows<{ object_pk: string, user_id: string | null }>(sequelize, 'SELECT object_pk, user_id FROM public.boardinghouse_log_entry ORDER BY id')).map((e) => [e.object_pk, e.user_id])
  // a bind query (Sequelize's INSERT), then a load with no user
  await bh.runInSchema('acme', async () => await Item.create({ id: 1, title: 'by 31337' }), { userId: 31337 })
  await bh.loadData([source('a.json', [item(100)])])
  // a query without bind parameters (the per-message prefix), then a load with no user
  await bh.runInSchema('acme', async () => { await sequelize.query("UPDATE items SET title = 'by 31338' WHERE id = 1") }, { userId: 31338 })
  await bh.loadData([source('b.json', [item(101)])])
  // a load in a context with a user records that user
  await bh.runInSchema('acme', async () => { await bh.loadData([source('c.json', [item(102)])]) }, { userId: 7 })
  // and a normal request's attribution still works afterwards
  await bh.runInSchema('acme', async () => await Item.create({ id: 2, title: 'by 8' }), { userId: 8 })
  await bh.runInSchema('acme', async () => await Item.create({ id: 3, title: 'anonymous' }))
  assert.deepEqual(await entries(), [['1', '31337'], ['100', null], ['1', '31338'], ['101', null], ['102', '7'], ['2', '8'], ['3', null]])
  // a refused load leaves no audit entry
  const before = await entries()
  await rejectsWith(bh.loadData([source('d.json', [item(200), item(100)])]), 'FST_BH_LOAD_FAILED', /d\.json: object 2 \(Item, pk 100 in schema acme\): duplicate key/)
  assert.deepEqual(await entries(), before)
})

test('loadData refuses hostile input, naming the file and position', async (t) => {
  const { bh, sequelize } = await setup(t)
  await bh.createSchema('acme')
  const dir = mkdtempSync(join(tmpdir(), 'bh-hostile-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const before = await snapshot(sequelize, 'acme')
  const usersBefore = await tableText(sequelize, 'public', 'users')
  const unchanged = async (what: string): Promise<void> => {
    assert.equal(await snapshot(sequelize, 'acme'), before, what)
    assert.deepEqual(await tableText(sequelize, 'public', 'users'), usersBefore, what)
  }
  const load = async (name: string, objects: AsyncIterable<unknown> | unknown[]): Promise<unknown> => await bh.loadData([{ name, objects }])
  const good = '{"model": "Item", "pk": 1, "schema": "acme", "fields": {"title": "ok"}}'
  const withTitle = (pk: number, bytes: Buffer): Buffer => Buffer.concat([Buffer.from(`{"model": "Item", "pk": ${pk}, "schema": "acme", "fields": {"title": "bad `), bytes, Buffer.from('"}}')])

  await t.test('invalid UTF-8 (bad bytes, overlong and surrogate encodings, a truncated sequence), in json, ndjson and stdin', async () => {
    const cases: Array<[string, Buffer]> = [
      ['a stray byte', Buffer.from([0xff])],
      ['an overlong "/"', Buffer.from([0xc0, 0xaf])],
      ['an overlong NUL', Buffer.from([0xe0, 0x80, 0x80])],
      ['an encoded surrogate', Buffer.from([0xed, 0xa0, 0x80])],
      ['a truncated sequence', Buffer.from([0xe2, 0x82, 0x20])],
      ['beyond U+10FFFF', Buffer.from([0xf4, 0x90, 0x80, 0x80])]
    ]
    for (const [what, bytes] of cases) {
      for (const format of ['json', 'ndjson', 'stdin'] as const) {
        const head = Buffer.from(format === 'json' ? `[${good},\n` : `${good}\n`)
        const body = Buffer.concat([head, withTitle(2, bytes), Buffer.from(format === 'json' ? ']\n' : '\n')])
        const offset = head.length + withTitle(2, Buffer.alloc(0)).length - 3
        const name = format === 'stdin' ? '<stdin>' : join(dir, `bad.${format}`)
        if (format !== 'stdin') writeFileSync(name, body)
        const objects = format === 'stdin' ? readDumpObjects('-', Readable.from([body.subarray(0, offset + 1), body.subarray(offset + 1)])) : readDumpObjects(name)
        await rejectsWith(load(name, objects), 'FST_BH_INVALID_DUMP', new RegExp(`${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid UTF-8 at byte ${offset} \\(line 2\\) after object 1`))
          .catch((err: unknown) => { throw new Error(`${what}, ${format}: ${(err as Error).message}`) })
        await unchanged(`${what}, ${format}`)
      }
    }
    // a truncated sequence at the very end of the input
    const end = join(dir, 'end.ndjson')
    writeFileSync(end, Buffer.concat([Buffer.from(`${good}\n`), Buffer.from([0xe2, 0x82])]))
    await rejectsWith(load(end, readDumpObjects(end)), 'FST_BH_INVALID_DUMP', new RegExp(`end\\.ndjson: invalid UTF-8 at byte ${good.length + 1} \\(line 2\\) after object 1`))
    // valid multi-byte text across chunk boundaries still loads
    const fine = Buffer.from(`[{"model": "Item", "pk": 9, "schema": "acme", "fields": {"title": "é€😀"}}]`)
    await bh.createSchema('fine')
    const split = Array.from({ length: fine.length }, (_, i) => fine.subarray(i, i + 1))
    await bh.loadData([{ name: '-', objects: readDumpObjects('-', Readable.from(split)) }], { schema: 'fine' })
    const [title] = await rows<{ title: string }>(sequelize, 'SELECT title FROM fine.items')
    assert.equal(title?.title, 'é€😀')
  })

  await t.test('a number, boolean, object or array for a text column is refused (not coerced to its text)', async () => {
    const cases: Array<[unknown, string]> = [[5, 'a number'], [new JsonNumber('1.0'), 'a number'], [true, 'a boolean'], [{ a: 1 }, 'an object'], [['x'], 'an array']]
    for (const [value, what] of cases) {
      await rejectsWith(load('a.json', [JSON.parse(good), { model: 'Item', pk: 2, schema: 'acme', fields: { title: value } }]), 'FST_BH_INVALID_DUMP',
        new RegExp(`a\\.json: object 2 \\(Item\\): "title" is a text field: it takes a string or null, not ${what}`))
      await unchanged(what)
    }
    // a text part of a composite key, elements of a text array
    await rejectsWith(load('a.json', [{ model: 'Pair', pk: { a: 1, b: 2 }, schema: 'acme', fields: {} }]), 'FST_BH_INVALID_DUMP',
      /a\.json: object 1 \(Pair\): "b" is a text field: it takes a string or null, not a number/)
    await rejectsWith(load('a.json', [{ model: 'Everything', pk: 1, schema: 'acme', fields: { tags: ['a', 1] } }]), 'FST_BH_INVALID_DUMP',
      /a\.json: object 1 \(Everything\): "tags" is a text array field: its elements take a string or null, not a number/)
    // through a file too
    const file = join(dir, 'number.ndjson')
    writeFileSync(file, `${good}\n{"model": "Item", "pk": 2, "schema": "acme", "fields": {"title": 12345678901234567890}}\n`)
    await rejectsWith(load(file, readDumpObjects(file)), 'FST_BH_INVALID_DUMP', /number\.ndjson: object 2 \(Item\): "title" is a text field/)
    await unchanged('file')
    // strings and nulls still load; a number for a non-text column is still the column type's business
    await bh.createSchema('texts')
    await bh.loadData([source('ok.json', [{ model: 'Everything', pk: 1, schema: 'texts', fields: { txt: 'x', tags: ['a', null], ch: null, big: 5, decimalValue: 1.5 } }])])
    const [e] = await rows<{ t: string }>(sequelize, "SELECT (txt, tags, big, dec)::text AS t FROM texts.everything")
    assert.equal(e?.t, '(x,"{a,NULL}",5,1.5000000000)')
  })

  await t.test('a shared model\'s object with a schema is refused', async () => {
    await rejectsWith(load('u.json', [{ model: 'User', pk: 5, schema: 'acme', fields: { username: 'mallory', passwordHash: 'x' } }]), 'FST_BH_INVALID_DUMP',
      /u\.json: object 1 \(User\): a shared model's object must have "schema": null, not "acme"/)
    await rejectsWith(bh.loadData([source('u.json', [{ model: 'User', pk: 5, schema: 'public', fields: { username: 'mallory', passwordHash: 'x' } }])], { schema: 'acme' }), 'FST_BH_INVALID_DUMP',
      /u\.json: object 1 \(User\): a shared model's object must have "schema": null, not "public"/)
    await unchanged('shared')
  })

  await t.test('an invalid schema in a dump names the file and the object', async () => {
    await rejectsWith(load('s.json', [JSON.parse(good), { model: 'Item', pk: 2, schema: 'No"Such', fields: { title: 'x' } }]), 'FST_BH_INVALID_SCHEMA_NAME',
      /"No\\"Such" \(s\.json: object 2, Item\): must start with a lowercase letter/)
    await unchanged('schema')
  })

  await t.test('a value larger than maxValueLength is refused while it is read; the default is documented', async () => {
    assert.equal(DEFAULT_MAX_VALUE_LENGTH, 16 * 1024 * 1024)
    for (const format of ['json', 'ndjson'] as const) {
      for (const [length, max] of [[5000, 1000], [100000, 20000]] as const) {
        const file = join(dir, `long.${format}`)
        const object = `{"model": "Item", "pk": 2, "schema": "acme", "fields": {"title": "${'x'.repeat(length)}"}}`
        writeFileSync(file, format === 'json' ? `[${good},\n${object}]` : `${good}\n${object}\n`)
        await rejectsWith(load(file, readDumpObjects(file, undefined, { maxValueLength: max })), 'FST_BH_INVALID_DUMP',
          new RegExp(`long\\.${format}: object 2 \\(line 2\\): a value is longer than ${max} characters \\(maxValueLength\\)`))
        await unchanged(`${format} ${length}`)
      }
      // a long number too; a value of exactly the maximum is read
      const file = join(dir, `number.${format}`)
      writeFileSync(file, `[{"n": 1${'0'.repeat(2000)}}]`)
      await rejectsWith(collect(readDumpObjects(file, undefined, { maxValueLength: 1000 })), 'FST_BH_INVALID_DUMP', /object 1 \(line 1\): a value is longer than 1000 characters/)
      writeFileSync(file, `[{"s": "${'y'.repeat(1000)}"}]`)
      assert.deepEqual(await collect(readDumpObjects(file, undefined, { maxValueLength: 1000 })), [{ s: 'y'.repeat(1000) }])
    }
  })

  await t.test('deep nesting is refused with the file and position, not "Maximum call stack size exceeded"', async () => {
    for (const format of ['json', 'ndjson'] as const) {
      const file = join(dir, `deep.${format}`)
      const deep = `{"model": "Everything", "pk": 2, "schema": "acme", "fields": {"j": ${'['.repeat(100000)}${']'.repeat(100000)}}}`
      writeFileSync(file, format === 'json' ? `[${good},\n${deep}]` : `${good}\n${deep}\n`)
      await rejectsWith(load(file, readDumpObjects(file)), 'FST_BH_INVALID_DUMP', new RegExp(`deep\\.${format}: object 2 \\(line 2\\): nested deeper than 1000 levels`))
      await unchanged(format)
    }
    // objects from the API: nested too deeply to encode
    let value: unknown = 1
    for (let i = 0; i < 100000; i++) value = [value]
    await rejectsWith(load('a.json', [JSON.parse(good), { model: 'Everything', pk: 2, schema: 'acme', fields: { j: value } }]), 'FST_BH_INVALID_DUMP',
      /a\.json: object 2 \(Everything\): a value is nested too deeply/)
    await unchanged('api')
    // 1,000 levels are fine
    await bh.createSchema('deep')
    await bh.loadData([source('ok.json', [{ model: 'Everything', pk: 1, schema: 'deep', fields: { j: JSON.parse('['.repeat(999) + ']'.repeat(999)) } }])])
  })

  await t.test('a syntax error names the exact object and line, also past the first 16 KiB', async () => {
    const lines = Array.from({ length: 300 }, (_, i) => `{"model": "Item", "pk": ${i + 1}, "schema": "acme", "fields": {"title": "item ${i + 1}"}}`)
    const nd = join(dir, 'late.ndjson')
    writeFileSync(nd, [...lines, '{"model": "Item", "pk": 301, "fields": {"title": }}', ...lines].join('\n'))
    await rejectsWith(load(nd, readDumpObjects(nd)), 'FST_BH_INVALID_DUMP', /late\.ndjson is not valid JSON after object 300 \(line 301\)/)
    const json = join(dir, 'late.json')
    writeFileSync(json, '[\n' + [...lines, '{"model": "Item", "pk": 301, "fields": {"title": }}'].join(',\n') + '\n]')
    await rejectsWith(load(json, readDumpObjects(json)), 'FST_BH_INVALID_DUMP', /late\.json is not valid JSON after object 300 \(line 302\)/)
    await unchanged('syntax')
  })
})

// ---------------------------------------------------------------- the CLI

interface Run { code: number | null, stdout: string, stderr: string }

async function run (args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<Run> {
  return await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'plugin/cli.ts', ...args], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('error', reject)
    child.on('close', (code) => { resolve({ code, stdout, stderr }) })
    child.stdin.on('error', () => {})
    child.stdin.end(input ?? '')
  })
}

test('boardinghouse dumpdata / loaddata', async (t) => {
  const { bh, sequelize, url, config } = await setup(t)
  await bh.createSchema('acme')
  await seedAcme(sequelize)
  const env = { ...process.env, DATABASE_URL: url }
  const cli = async (...args: string[]): Promise<Run> => await run(['--config', config, ...args], env)
  const cliWithInput = async (input: string, ...args: string[]): Promise<Run> => await run(['--config', config, ...args], env, input)
  const oneLineError = (r: Run, code: string, message?: RegExp): void => {
    assert.equal(r.code, 1, r.stderr)
    const lines = r.stderr.trim().split('\n')
    assert.equal(lines.length, 1, r.stderr)
    assert.match(lines[0] ?? '', new RegExp(`^boardinghouse: ${code}: `))
    if (message !== undefined) assert.match(lines[0] ?? '', message)
  }
  const dir = mkdtempSync(join(tmpdir(), 'bh-cli-data-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })

  await t.test('dumpdata --schema to stdout (a JSON array, one object per line) and loaddata --schema from the file', async () => {
    const r = await cli('dumpdata', '--schema', 'acme')
    assert.equal(r.code, 0, r.stderr)
    const lines = r.stdout.split('\n')
    assert.equal(lines[0], '[')
    assert.equal(lines.at(-2), ']')
    assert.equal(lines.length, 1200 + 3 + 3 + 4 + 3 + 2 + 3)
    assert.match(lines[1] ?? '', /^\{"model" : "Item", "pk" : 1, "schema" : "acme", "fields" : \{/)
    assert.deepEqual(JSON.parse(r.stdout).length, 1215)
    const file = join(dir, 'acme.json')
    writeFileSync(file, r.stdout)
    await bh.createSchema('initech')
    const load = await cli('loaddata', '--schema', 'initech', file)
    assert.equal(load.code, 0, load.stderr)
    assert.equal(load.stdout, `loaded 1215 objects from 1 file (Item 1200, Parent 3, Child 3, Everything 4, Pair 3, Wide 2)\n`)
    for (const table of TENANT_TABLES) assert.deepEqual(await tableText(sequelize, 'initech', table), await tableText(sequelize, 'acme', table), table)
  })

  await t.test('--format ndjson, --output, models, and stdin (-)', async () => {
    const file = join(dir, 'family.ndjson')
    const r = await cli('dumpdata', '--schema', 'acme', 'Child', 'Parent', 'Everything', '--output', file)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, `dumped 10 objects to ${file}\n`)
    const text = readFileSync(file, 'utf8')
    assert.deepEqual(text.trim().split('\n').map((l) => { const o = JSON.parse(l) as DumpObject; return `${o.model}:${String(o.pk)}` }),
      ['Parent:1', 'Parent:2', 'Parent:3', 'Child:10', 'Child:20', 'Child:30', 'Everything:1', 'Everything:2', 'Everything:3', 'Everything:4'])
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('partial')), [])
    const fmt = await cli('dumpdata', '--schema', 'acme', 'Pair', '--format', 'ndjson')
    assert.equal(fmt.stdout.split('\n').length, 4)
    assert.equal(fmt.stdout[0], '{')
    await bh.createSchema('piped')
    const load = await cliWithInput(text, 'loaddata', '--schema', 'piped', '-')
    assert.equal(load.code, 0, load.stderr)
    assert.match(load.stdout, /^loaded 10 objects from 1 file \(Parent 3, Child 3, Everything 4\)/)
    assert.deepEqual(await tableText(sequelize, 'piped', 'everything'), await tableText(sequelize, 'acme', 'everything'))
    const shared = await cli('dumpdata')
    assert.equal(shared.code, 0, shared.stderr)
    assert.equal(shared.stdout, '[\n]\n')
  })

  await t.test('errors: exit 1, one line, nothing written', async () => {
    await bh.createSchema('clean')
    const before = await snapshot(sequelize, 'clean')
    const file = join(dir, 'acme.json')
    oneLineError(await cli('dumpdata', 'Item'), 'FST_BH_TENANT_MODEL_NEEDS_SCHEMA', /: Item$/)
    oneLineError(await cli('dumpdata', '--schema', 'acme', 'Nope'), 'FST_BH_UNKNOWN_MODEL', /"Nope"/)
    oneLineError(await cli('dumpdata', '--schema', 'nosuch'), 'FST_BH_SCHEMA_NOT_FOUND')
    oneLineError(await cli('dumpdata', '--schema', '__template__'), 'FST_BH_TEMPLATE_SCHEMA')
    const format = await cli('dumpdata', '--schema', 'acme', '--format', 'xml') // a usage error: exit 2
    assert.equal(format.code, 2, format.stderr)
    assert.match(format.stderr, /^boardinghouse: FST_BH_INVALID_OPTION: .*--format[^\n]*\n$/)
    const failed = await cli('dumpdata', '--schema', 'nosuch', '--output', join(dir, 'none.json'))
    oneLineError(failed, 'FST_BH_SCHEMA_NOT_FOUND')
    assert.equal(existsSync(join(dir, 'none.json')), false)
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('partial')), [])
    oneLineError(await cli('loaddata', '--schema', '__template__', file), 'FST_BH_TEMPLATE_SCHEMA')
    oneLineError(await cli('loaddata', '--schema', 'nosuch', file), 'FST_BH_SCHEMA_NOT_FOUND')
    oneLineError(await cli('loaddata', file), 'FST_BH_LOAD_FAILED', /acme\.json: object 1 \(Item, pk 1 in schema acme\): duplicate key value/)
    oneLineError(await cli('loaddata', '--schema', 'clean', file, join(dir, 'missing.json')), 'FST_BH_INVALID_DUMP', /missing\.json: cannot be read/)
    oneLineError(await cliWithInput('{"model": "Item", "pk": 1, "fields": {"title": "x"}}\n', 'loaddata', '-'), 'FST_BH_INVALID_DUMP', /<stdin>: object 1 \(Item\): a tenant model's object needs a schema/)
    oneLineError(await cliWithInput('[{"model": "Item", "pk": 1, "schema": "clean", "fields": {"title": "x", "color": 1}}]', 'loaddata', '-'), 'FST_BH_INVALID_DUMP', /<stdin>: object 1 \(Item\): unknown field "color"/)
    oneLineError(await cliWithInput('[{"model": "Item", "pk": 1, "schema": "clean", "fields": {"title": "x"}}, {"model": "Item", "pk": 1, "schema": "clean", "fields": {"title": "x"}}]', 'loaddata', '-'), 'FST_BH_LOAD_FAILED', /<stdin>: object 2 \(Item, pk 1 in schema clean\): duplicate key/)
    oneLineError(await cliWithInput('[{"model": "Item", "pk": 1, "schema": "clean"', 'loaddata', '-'), 'FST_BH_INVALID_DUMP', /<stdin> is not valid JSON after object 0/)
    const usage = await cli('loaddata')
    assert.equal(usage.code, 2)
    assert.equal(await snapshot(sequelize, 'clean'), before)
  })
})
