/**
 * `doctor` (plugin/doctor/): a clean fleet has no findings; each fault, planted fresh, is found with
 * its code, schema and object and nothing else; `fix` repairs audit triggers and orphan ledger rows,
 * all or nothing, and leaves the rest; without `fix` nothing in the database changes; a database
 * never migrated is one FST_BH_NOT_MIGRATED; the CLI's output, JSON and exit codes.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DataTypes, type Sequelize } from 'sequelize'
import { Boardinghouse } from '../plugin/boardinghouse.js'
import { main, type CliIO } from '../plugin/cli.js'
import type { DoctorFinding, DoctorReport } from '../plugin/doctor/index.js'
import { GUARD_TRIGGER, MIGRATION_LOCK_KEY, WAITING_MARKER } from '../plugin/migrator/index.js'
import { connect, createTestDatabase, hasCode, sequelizeFor } from './helpers.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BASE = '20260101000000-base'
const PINNED = '20260102000000-pinned'

/** A template with a bit of everything: an enum, a view, a trigger and its function (pinned search_path), a sequence owned by a column, an FK, a CHECK. */
const BASE_MIGRATION = `export async function up ({ context: { sequelize, schema } }) {
  const q = '"' + schema.replace(/"/g, '""') + '"'
  await sequelize.query(\`
    CREATE TYPE item_status AS ENUM ('new', 'done');
    CREATE TABLE items (
      id serial PRIMARY KEY,
      title varchar(200) NOT NULL,
      status item_status NOT NULL DEFAULT 'new',
      qty integer NOT NULL DEFAULT 1 CONSTRAINT items_qty_chk CHECK (qty > 0)
    );
    CREATE INDEX items_title_idx ON items (title);
    CREATE TABLE notes (id serial PRIMARY KEY, item_id integer NOT NULL REFERENCES items (id) ON DELETE CASCADE, body text);
    CREATE SEQUENCE ticket_seq OWNED BY items.qty;
    CREATE FUNCTION touch () RETURNS trigger LANGUAGE plpgsql SET search_path = \${q}, public
      AS $fn$ BEGIN NEW.title := btrim(NEW.title); RETURN NEW; END $fn$;
    CREATE TRIGGER items_touch BEFORE INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION touch();
    CREATE VIEW open_items AS SELECT id, title FROM items WHERE status = 'new';
  \`)
}
`
const PINNED_MIGRATION = `export async function up ({ context: { sequelize } }) {
  await sequelize.query('ALTER TABLE notes ADD COLUMN pinned boolean NOT NULL DEFAULT false')
}
`

function migrationsFolder (t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'bh-doctor-'))
  writeFileSync(join(dir, `${BASE}.mjs`), BASE_MIGRATION)
  writeFileSync(join(dir, `${PINNED}.mjs`), PINNED_MIGRATION)
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

async function setup (t: { after: (fn: () => Promise<void> | void) => void }): Promise<{ bh: Boardinghouse, sequelize: Sequelize, url: string }> {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url)
  sequelize.define('Item', { title: DataTypes.STRING(200) }, { tableName: 'items', timestamps: false })
  const bh = new Boardinghouse({ sequelize, tenantModels: ['Item'], auditModels: ['Item'], tenantMigrations: migrationsFolder(t) })
  await bh.migrate()
  return { bh, sequelize, url }
}

type Seen = [code: string, schema: string | null, object: string | null, difference: string | null]

function seen (report: DoctorReport | DoctorFinding[]): Seen[] {
  const findings = Array.isArray(report) ? report : report.findings
  return findings.map((f) => [f.code, f.schema, f.object ?? null, f.difference ?? null])
}

/** Catalog rows (with xmin) of every non-system schema and the library's tables, row by row: equal before and after = nothing written. */
async function snapshot (sequelize: Sequelize): Promise<string[]> {
  const own = "n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'"
  const rows = await sequelize.query<{ r: string }>(`SELECT r FROM (
    SELECT 'ns ' || n.nspname || ' ' || n.xmin AS r FROM pg_namespace n WHERE ${own}
    UNION ALL SELECT 'class ' || n.nspname || '.' || c.relname || ' ' || c.relkind::text || ' ' || c.xmin FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${own}
    UNION ALL SELECT 'attr ' || c.oid || '.' || a.attname || ' ' || a.xmin FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${own} AND a.attnum > 0
    UNION ALL SELECT 'attrdef ' || d.adrelid || '.' || d.adnum || ' ' || d.xmin FROM pg_attrdef d JOIN pg_class c ON c.oid = d.adrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${own}
    UNION ALL SELECT 'index ' || i.indexrelid || ' ' || i.indisvalid || ' ' || i.xmin FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${own}
    UNION ALL SELECT 'trigger ' || t.tgrelid || '.' || t.tgname || ' ' || t.tgenabled::text || ' ' || t.xmin FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${own}
    UNION ALL SELECT 'con ' || n.nspname || '.' || k.conname || ' ' || k.xmin FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace WHERE ${own}
    UNION ALL SELECT 'proc ' || p.oid || ' ' || p.xmin FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE ${own}
    UNION ALL SELECT 'type ' || ty.oid || ' ' || ty.xmin FROM pg_type ty JOIN pg_namespace n ON n.oid = ty.typnamespace WHERE ${own}
    UNION ALL SELECT 'registry ' || schema_name || ' ' || is_active || ' ' || xmin FROM public.boardinghouse_schema
    UNION ALL SELECT 'member ' || schema_name || ' ' || user_id || ' ' || xmin FROM public.boardinghouse_membership
    UNION ALL SELECT 'domain ' || host || ' ' || xmin FROM public.boardinghouse_domain
    UNION ALL SELECT 'ledger ' || schema_name || ' ' || name || ' ' || xmin FROM public.boardinghouse_tenant_migration
    UNION ALL SELECT 'state ' || generation || ' ' || xmin FROM public.boardinghouse_template_state
    UNION ALL SELECT 'ddl ' || version || ' ' || xmin FROM public.boardinghouse_template_ddl
    UNION ALL SELECT 'log ' || count(*) || ' ' || coalesce(max(id), 0) FROM public.boardinghouse_log_entry
  ) x ORDER BY 1`, { type: 'SELECT' as never })
  return rows.map((r) => r.r)
}

/** Faults planted in a fresh schema of their own (`s`, quoted `q`), with the one finding each must give. */
const SCHEMA_FAULTS: Array<{ name: string, plant: (q: string, s: string, bh: Boardinghouse, sequelize: Sequelize) => Promise<unknown>, expect: (s: string) => Seen[], check?: (f: DoctorFinding[], s: string) => void }> = [
  {
    name: 'a column type changed',
    plant: async (q, _s, _bh, db) => await db.query(`ALTER TABLE ${q}.notes ALTER COLUMN body TYPE varchar(500)`),
    expect: (s) => [['column_differs', s, 'notes.body', 'changed']],
    check: ([f]) => { assert.equal(f?.expected, 'text'); assert.equal(f?.actual, 'character varying(500)'); assert.equal(f?.fixable, false) }
  },
  {
    name: 'a default changed',
    plant: async (q, _s, _bh, db) => await db.query(`ALTER TABLE ${q}.items ALTER COLUMN qty SET DEFAULT 2`),
    expect: (s) => [['column_differs', s, 'items.qty', 'changed']],
    check: ([f]) => { assert.equal(f?.expected, 'integer NOT NULL DEFAULT 1'); assert.equal(f?.actual, 'integer NOT NULL DEFAULT 2') }
  },
  {
    name: 'an index dropped',
    plant: async (q, _s, _bh, db) => await db.query(`DROP INDEX ${q}.items_title_idx`),
    expect: (s) => [['index_differs', s, 'items_title_idx', 'missing']],
    check: ([f], s) => { assert.equal(f?.expected, `CREATE INDEX items_title_idx ON ${s}.items USING btree (title)`) }
  },
  {
    name: 'an index left INVALID (a killed CREATE INDEX CONCURRENTLY)',
    plant: async (q, _s, _bh, db) => await db.query(`UPDATE pg_catalog.pg_index SET indisvalid = false WHERE indexrelid = '${q}.items_title_idx'::regclass`),
    expect: (s) => [['index_differs', s, 'items_title_idx', 'changed']],
    check: ([f]) => { assert.match(f?.actual ?? '', / \(INVALID\)$/) }
  },
  {
    name: 'a constraint dropped',
    plant: async (q, _s, _bh, db) => await db.query(`ALTER TABLE ${q}.items DROP CONSTRAINT items_qty_chk`),
    expect: (s) => [['constraint_differs', s, 'items.items_qty_chk', 'missing']]
  },
  {
    name: 'a foreign key pointing into the template',
    plant: async (q, _s, _bh, db) => await db.query(`ALTER TABLE ${q}.notes DROP CONSTRAINT notes_item_id_fkey,
      ADD CONSTRAINT notes_item_id_fkey FOREIGN KEY (item_id) REFERENCES __template__.items (id) ON DELETE CASCADE`),
    expect: (s) => [['constraint_differs', s, 'notes.notes_item_id_fkey', 'changed']],
    check: ([f], s) => { assert.match(f?.actual ?? '', /REFERENCES __template__\.items/); assert.match(f?.expected ?? '', new RegExp(`REFERENCES ${s}\\.items`)) }
  },
  {
    name: 'a trigger dropped',
    plant: async (q, _s, _bh, db) => await db.query(`DROP TRIGGER items_touch ON ${q}.items`),
    expect: (s) => [['trigger_differs', s, 'items.items_touch', 'missing']]
  },
  {
    name: "a function's body changed",
    plant: async (q, _s, _bh, db) => await db.query(`CREATE OR REPLACE FUNCTION ${q}.touch () RETURNS trigger LANGUAGE plpgsql SET search_path = ${q}, public
      AS $fn$ BEGIN RETURN NEW; END $fn$`),
    expect: (s) => [['function_differs', s, 'touch()', 'changed']]
  },
  {
    name: "a function's SET search_path pointing at the template",
    plant: async (q, _s, _bh, db) => await db.query(`ALTER FUNCTION ${q}.touch () SET search_path = __template__, public`),
    expect: (s) => [['function_differs', s, 'touch()', 'changed']],
    check: ([f], s) => { assert.match(f?.actual ?? '', /SET search_path TO \{__template__\}, \{public\}/); assert.match(f?.expected ?? '', new RegExp(`SET search_path TO \\{${s}\\}, \\{public\\}`)) }
  },
  {
    name: 'a view changed',
    plant: async (q, _s, _bh, db) => await db.query(`CREATE OR REPLACE VIEW ${q}.open_items AS SELECT id, title FROM ${q}.items WHERE status = 'done'`),
    expect: (s) => [['view_differs', s, 'open_items', 'changed']]
  },
  {
    name: "a sequence's ownership changed",
    plant: async (q, _s, _bh, db) => await db.query(`ALTER SEQUENCE ${q}.ticket_seq OWNED BY NONE`),
    expect: (s) => [['sequence_differs', s, 'ticket_seq', 'changed']],
    check: ([f], s) => { assert.match(f?.expected ?? '', new RegExp(`OWNED BY ${s}\\.items\\.qty$`)); assert.doesNotMatch(f?.actual ?? '', /OWNED BY/) }
  },
  {
    name: 'an enum value added',
    plant: async (q, _s, _bh, db) => await db.query(`ALTER TYPE ${q}.item_status ADD VALUE 'archived'`),
    expect: (s) => [['type_differs', s, 'item_status', 'changed']]
  },
  {
    name: 'an extra table (its columns, keys and indexes are not listed apart)',
    plant: async (q, _s, _bh, db) => await db.query(`CREATE TABLE ${q}.extra (id serial PRIMARY KEY, label text UNIQUE)`),
    expect: (s) => [['table_differs', s, 'extra', 'extra']]
  },
  {
    name: 'a table dropped',
    plant: async (q, _s, _bh, db) => await db.query(`DROP TABLE ${q}.notes`),
    expect: (s) => [['table_differs', s, 'notes', 'missing']]
  },
  {
    name: 'a missing audit trigger (one finding, fixable)',
    plant: async (q, _s, _bh, db) => await db.query(`DROP TRIGGER boardinghouse_audit ON ${q}.items`),
    expect: (s) => [['audit_trigger_missing', s, 'items', null]],
    check: ([f]) => { assert.equal(f?.fixable, true) }
  },
  {
    name: 'a disabled audit trigger',
    plant: async (q, _s, _bh, db) => await db.query(`ALTER TABLE ${q}.items DISABLE TRIGGER boardinghouse_audit`),
    expect: (s) => [['trigger_differs', s, 'items.boardinghouse_audit', 'changed']]
  },
  {
    name: 'a ledger behind the template',
    plant: async (_q, s, _bh, db) => await db.query('DELETE FROM public.boardinghouse_tenant_migration WHERE schema_name = :s AND name = :name', { replacements: { s, name: PINNED } }),
    expect: (s) => [['ledger_behind', s, null, null]],
    check: ([f]) => { assert.deepEqual(f?.migrations, [PINNED]) }
  },
  {
    name: 'a ledger ahead of the template',
    plant: async (_q, s, _bh, db) => await db.query("INSERT INTO public.boardinghouse_tenant_migration (schema_name, name) VALUES (:s, '20260199000000-elsewhere')", { replacements: { s } }),
    expect: (s) => [['ledger_ahead', s, null, null]],
    check: ([f]) => { assert.deepEqual(f?.migrations, ['20260199000000-elsewhere']) }
  },
  {
    name: 'a schema dropped behind the registry, with its memberships, domains and ledger',
    plant: async (q, s, bh, db) => {
      await bh.grant(s, 7)
      await bh.addDomain(s, `${s.replace(/_/g, '-')}.example.com`)
      await db.query(`DROP SCHEMA ${q} CASCADE`)
    },
    expect: (s) => [['domain_orphan', s, null, null], ['ledger_orphan', s, null, null], ['membership_orphan', s, null, null], ['registry_without_schema', s, null, null]],
    // the ledger rows go with the registry row: left for a person while the registry lists the schema
    check: (found) => { assert.deepEqual(found.map((f) => [f.code, f.fixable, f.rows ?? null]), [['domain_orphan', false, 1], ['ledger_orphan', false, 2], ['membership_orphan', false, 1], ['registry_without_schema', false, null]]) }
  }
]

/** Faults outside a tenant schema, each planted and undone. */
const OTHER_FAULTS: Array<{ name: string, plant: string, undo: string | ((bh: Boardinghouse) => Promise<unknown>), expect: Seen[], check?: (f: DoctorFinding[]) => void }> = [
  {
    name: 'an unregistered schema holding a table of the template',
    plant: 'CREATE SCHEMA lookalike; CREATE TABLE lookalike.items (id int)',
    undo: 'DROP SCHEMA lookalike CASCADE',
    expect: [['schema_without_registry', 'lookalike', null, null]]
  },
  {
    name: 'an unregistered schema with ledger rows',
    plant: `CREATE SCHEMA ledgered; INSERT INTO public.boardinghouse_tenant_migration (schema_name, name) VALUES ('ledgered', '${BASE}')`,
    undo: "DROP SCHEMA ledgered; DELETE FROM public.boardinghouse_tenant_migration WHERE schema_name = 'ledgered'",
    expect: [['schema_without_registry', 'ledgered', null, null]],
    check: ([f]) => { assert.equal(f?.rows, 1) }
  },
  {
    name: 'orphan ledger rows (no schema, no registry row: fixable)',
    plant: `INSERT INTO public.boardinghouse_tenant_migration (schema_name, name) VALUES ('ghost', '${BASE}'), ('ghost', '${PINNED}')`,
    undo: "DELETE FROM public.boardinghouse_tenant_migration WHERE schema_name = 'ghost'",
    expect: [['ledger_orphan', 'ghost', null, null]],
    check: ([f]) => { assert.equal(f?.fixable, true); assert.equal(f?.rows, 2) }
  },
  {
    name: 'a row in the template',
    plant: `ALTER TABLE __template__.items DISABLE TRIGGER "${GUARD_TRIGGER}"; INSERT INTO __template__.items (title) VALUES ('stray');
            ALTER TABLE __template__.items ENABLE TRIGGER "${GUARD_TRIGGER}"`,
    undo: 'DELETE FROM __template__.items',
    expect: [['template_has_rows', '__template__', 'items', null]]
  },
  {
    name: "the template's row guard disabled",
    plant: `ALTER TABLE __template__.notes DISABLE TRIGGER "${GUARD_TRIGGER}"`,
    undo: `ALTER TABLE __template__.notes ENABLE TRIGGER "${GUARD_TRIGGER}"`,
    expect: [['template_guard_missing', '__template__', 'notes', null]]
  },
  {
    name: "a tenant model's table in public",
    plant: 'CREATE TABLE public.items (id int)',
    undo: 'DROP TABLE public.items',
    expect: [['tenant_table_in_public', 'public', 'items', null]]
  },
  {
    name: 'a table of the template in public',
    plant: 'CREATE TABLE public.notes (id int)',
    undo: 'DROP TABLE public.notes',
    expect: [['tenant_table_in_public', 'public', 'notes', null]]
  },
  {
    name: "the template's audit trigger missing (the schemas that have it are not listed)",
    plant: 'DROP TRIGGER boardinghouse_audit ON __template__.items',
    undo: async (bh) => await bh.migrate(), // migrate adds the template's missing audit triggers
    expect: [['audit_trigger_missing', '__template__', 'items', null]]
  }
]

test('doctor', async (t) => {
  const { bh, sequelize, url } = await setup(t)
  await bh.createSchema('acme', { name: 'Acme' })
  await bh.createSchema('globex')
  await bh.grant('acme', 1)
  await bh.addDomain('acme', 'acme.example.com', { primary: true })
  // a schema of the app's own that is no tenant, and an internal one (as spare schemas are named) holding
  // a table of the template: never a finding
  await sequelize.query('CREATE SCHEMA reporting; CREATE TABLE reporting.stats (id int, n bigint); CREATE SCHEMA __spare__; CREATE TABLE __spare__.items (id int)')
  // a schema whose name is also a table's name, and one that needs quoting
  await bh.createSchema('items')
  await bh.createSchema('user')

  await t.test('a clean fleet: no findings', async () => {
    const report = await bh.doctor()
    assert.deepEqual(report, { ok: true, schemas: 4, findings: [], fixed: [], pending: { ready: 0, stale: 0, tampered: 0, orphans: 0 } })
  })

  for (const [i, fault] of SCHEMA_FAULTS.entries()) {
    await t.test(fault.name, async () => {
      const s = `fault_${i}`
      await bh.createSchema(s)
      await fault.plant(`"${s}"`, s, bh, sequelize)
      const report = await bh.doctor()
      assert.deepEqual(seen(report), fault.expect(s), JSON.stringify(report.findings, null, 2))
      assert.equal(report.ok, false)
      for (const f of report.findings) assert.match(f.message, /\S/)
      fault.check?.(report.findings, s)
      await bh.deleteSchema(s, { drop: true })
      assert.deepEqual(seen(await bh.doctor()), [])
    })
  }

  await t.test('a fault in the schema named like its table, and in one that needs quoting', async () => {
    await sequelize.query('DROP INDEX items.items_title_idx; ALTER TABLE "user".items ALTER COLUMN qty SET DEFAULT 3')
    assert.deepEqual(seen(await bh.doctor()), [['index_differs', 'items', 'items_title_idx', 'missing'], ['column_differs', 'user', 'items.qty', 'changed']])
    await sequelize.query('CREATE INDEX items_title_idx ON items.items (title); ALTER TABLE "user".items ALTER COLUMN qty SET DEFAULT 1')
    assert.deepEqual(seen(await bh.doctor()), [])
  })

  for (const fault of OTHER_FAULTS) {
    await t.test(fault.name, async () => {
      await sequelize.query(fault.plant)
      const report = await bh.doctor()
      assert.deepEqual(seen(report), fault.expect, JSON.stringify(report.findings, null, 2))
      fault.check?.(report.findings)
      if (typeof fault.undo === 'string') await sequelize.query(fault.undo)
      else await fault.undo(bh)
      assert.deepEqual(seen(await bh.doctor()), [])
    })
  }

  await t.test('the same number of queries for 4 schemas as for 14, and for 1 fault as for 6', async () => {
    let queries = 0
    sequelize.addHook('beforeQuery', 'doctor-count', () => { queries++ })
    const count = async (): Promise<number> => { queries = 0; await bh.doctor(); return queries }
    try {
      const few = await count()
      for (let i = 0; i < 10; i++) await bh.createSchema(`many_${i}`)
      assert.equal(await count(), few)
      await sequelize.query('DROP INDEX many_0.items_title_idx')
      const oneFault = await count()
      assert.ok(oneFault > few, 'a kind that differs is looked at once more')
      await sequelize.query('DROP INDEX many_1.items_title_idx; DROP INDEX many_2.items_title_idx; DROP INDEX many_3.items_title_idx; DROP INDEX many_4.items_title_idx; DROP INDEX many_5.items_title_idx')
      assert.equal(await count(), oneFault)
    } finally {
      sequelize.removeHook('beforeQuery', 'doctor-count')
      for (let i = 0; i < 10; i++) await bh.deleteSchema(`many_${i}`, { drop: true })
    }
  })

  await t.test('read-only without fix: every catalog row and library row as it was (fix as the control)', async () => {
    await sequelize.query(`DROP TRIGGER boardinghouse_audit ON acme.items; DROP INDEX globex.items_title_idx;
      INSERT INTO public.boardinghouse_tenant_migration (schema_name, name) VALUES ('ghost', '${BASE}')`)
    const before = await snapshot(sequelize)
    const report = await bh.doctor()
    assert.deepEqual(seen(report), [['audit_trigger_missing', 'acme', 'items', null], ['ledger_orphan', 'ghost', null, null], ['index_differs', 'globex', 'items_title_idx', 'missing']])
    assert.deepEqual(await snapshot(sequelize), before)
    // the control: the same snapshot sees the fix's writes
    await bh.doctor({ fix: true })
    assert.notDeepEqual(await snapshot(sequelize), before)
    await sequelize.query('CREATE INDEX items_title_idx ON globex.items (title)')
    assert.deepEqual(seen(await bh.doctor()), [])
  })

  await t.test('fix repairs audit triggers (the template too) and orphan ledger rows, and leaves the rest', async () => {
    await bh.createSchema('gone')
    await sequelize.query(`DROP TRIGGER boardinghouse_audit ON acme.items; DROP TRIGGER boardinghouse_audit ON __template__.items;
      DROP INDEX globex.items_title_idx; DROP SCHEMA gone CASCADE;
      INSERT INTO public.boardinghouse_tenant_migration (schema_name, name) VALUES ('ghost', '${BASE}'), ('ghost', '${PINNED}')`)
    const [generation] = await sequelize.query<{ generation: string }>('SELECT generation FROM public.boardinghouse_template_state', { type: 'SELECT' as never })
    const left: Seen[] = [['index_differs', 'globex', 'items_title_idx', 'missing'], ['ledger_orphan', 'gone', null, null], ['registry_without_schema', 'gone', null, null]]
    const report = await bh.doctor({ fix: true })
    assert.deepEqual(seen(report.fixed), [['audit_trigger_missing', '__template__', 'items', null], ['audit_trigger_missing', 'acme', 'items', null], ['ledger_orphan', 'ghost', null, null]])
    assert.equal(report.fixed.find((f) => f.code === 'ledger_orphan')?.rows, 2)
    assert.deepEqual(seen(report), left)
    assert.equal(report.ok, false)
    assert.equal(report.findings.find((f) => f.code === 'ledger_orphan')?.fixable, false)
    // fixed for good: a second doctor finds only what was left, and so does one with fix
    assert.deepEqual(seen(await bh.doctor()), left)
    const again = await bh.doctor({ fix: true })
    assert.deepEqual(again.fixed, [])
    assert.deepEqual(seen(again), left)
    // the template changed: its generation moved, and a schema created now has the trigger
    const [after] = await sequelize.query<{ generation: string }>('SELECT generation FROM public.boardinghouse_template_state', { type: 'SELECT' as never })
    assert.equal(Number(after?.generation), Number(generation?.generation) + 1)
    await bh.createSchema('after_fix')
    assert.deepEqual(seen(await bh.doctor()), left)
    await bh.deleteSchema('after_fix', { drop: true })
    await bh.deleteSchema('gone', { drop: true })
    await sequelize.query('CREATE INDEX items_title_idx ON globex.items (title)')
    assert.deepEqual(seen(await bh.doctor()), [])
  })

  await t.test('a fix that fails half-way leaves everything as it was', async () => {
    await sequelize.query(`DROP TRIGGER boardinghouse_audit ON acme.items;
      INSERT INTO public.boardinghouse_tenant_migration (schema_name, name) VALUES ('ghost', '${BASE}');
      CREATE FUNCTION public.refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no deletes today'; END $$;
      CREATE TRIGGER refuse_delete BEFORE DELETE ON public.boardinghouse_tenant_migration FOR EACH ROW EXECUTE FUNCTION public.refuse_delete()`)
    const before = await snapshot(sequelize)
    // the audit trigger is created first, then the ledger delete fails: both roll back
    await assert.rejects(bh.doctor({ fix: true }), /no deletes today/)
    assert.deepEqual(await snapshot(sequelize), before)
    assert.deepEqual(seen(await bh.doctor()), [['audit_trigger_missing', 'acme', 'items', null], ['ledger_orphan', 'ghost', null, null]])
    await sequelize.query('DROP TRIGGER refuse_delete ON public.boardinghouse_tenant_migration; DROP FUNCTION public.refuse_delete()')
    const fixed = await bh.doctor({ fix: true })
    assert.equal(fixed.ok, true)
    assert.equal(fixed.fixed.length, 2)
  })

  await t.test("fix waits for a running migrate's lock; without fix, doctor does not", async () => {
    await sequelize.query('DROP TRIGGER boardinghouse_audit ON acme.items')
    const holder = await connect(t, url) // what a running migrate holds
    await holder.query(`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`)
    try {
      // the control: a read-only doctor is not held up
      assert.deepEqual(seen(await bh.doctor()), [['audit_trigger_missing', 'acme', 'items', null]])
      let settled = false
      const fixing = bh.doctor({ fix: true }).finally(() => { settled = true })
      // a waiter holds nothing: its query, marked with WAITING_MARKER, shows in pg_stat_activity
      const waiting = async (): Promise<boolean> => (await holder.query(
        "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
        [WAITING_MARKER])).rowCount === 1
      for (let i = 0; !(await waiting()); i++) {
        assert.ok(i < 500 && !settled, 'fix neither waited for the lock nor stopped')
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      assert.equal(settled, false)
      assert.deepEqual(seen(await bh.doctor()), [['audit_trigger_missing', 'acme', 'items', null]], 'nothing fixed while it waits')
      await holder.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`)
      const report = await fixing
      assert.deepEqual(seen(report.fixed), [['audit_trigger_missing', 'acme', 'items', null]])
      assert.equal(report.ok, true)
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()')
    }
  })

  await t.test("a maintenance a killed migrate left is found and fixed; not while a migrate runs; a manual one never", async () => {
    await bh.setMaintenance('globex', { by: 'migrate' })
    await bh.setMaintenance('items') // manual: the operator's, not a finding
    assert.deepEqual(seen(await bh.doctor()), [['maintenance_left_by_migrate', 'globex', null, null]])
    const holder = await connect(t, url) // a migrate running: its maintenance is expected
    await holder.query(`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`)
    try {
      assert.deepEqual(seen(await bh.doctor()), [])
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()')
    }
    const fixed = await bh.doctor({ fix: true })
    assert.deepEqual(seen(fixed.fixed), [['maintenance_left_by_migrate', 'globex', null, null]])
    assert.equal(fixed.ok, true)
    assert.equal((await bh.getSchema('globex'))?.maintenance ?? null, null)
    assert.notEqual((await bh.getSchema('items'))?.maintenance ?? null, null, 'the manual maintenance is left alone')
    await bh.clearMaintenance('items')
  })

  await t.test("the pending pool's state is reported; a tampered spare and an orphan one are findings", async () => {
    await bh.fillPending(2)
    assert.deepEqual((await bh.doctor()).pending, { ready: 2, stale: 0, tampered: 0, orphans: 0 })
    const [spare] = (await bh.pendingStatus()).spares
    assert.ok(spare !== undefined)
    await sequelize.query(`ALTER TABLE "${spare.schema}".items ADD COLUMN extra int`)
    await sequelize.query('CREATE SCHEMA "__pending_00000000000000ff__"')
    const report = await bh.doctor()
    assert.deepEqual(report.pending, { ready: 1, stale: 0, tampered: 1, orphans: 1 })
    assert.deepEqual(seen(report), [
      ['pending_orphan', '__pending_00000000000000ff__', null, null],
      ['pending_tampered', spare.schema, null, null]
    ].sort((a, b) => String(a[1]) < String(b[1]) ? -1 : 1) as Seen[])
    await sequelize.query('DROP SCHEMA "__pending_00000000000000ff__"')
    await bh.fillPending(0)
  })

  await t.test('bad options', async () => {
    await assert.rejects(bh.doctor({ fix: 'yes' } as never), hasCode('FST_BH_INVALID_OPTION'))
    await assert.rejects(bh.doctor({ repair: true } as never), hasCode('FST_BH_INVALID_OPTION'))
    await assert.rejects(bh.doctor(null as never), hasCode('FST_BH_INVALID_OPTION'))
  })
})

test('doctor on a database never migrated, or without its template: FST_BH_NOT_MIGRATED', async (t) => {
  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url)
  const bh = new Boardinghouse({ sequelize })
  await assert.rejects(bh.doctor(), (err: Error) => hasCode('FST_BH_NOT_MIGRATED')(err) && /none of the library's tables/.test(err.message))
  await assert.rejects(bh.doctor({ fix: true }), hasCode('FST_BH_NOT_MIGRATED'))
  await bh.migrate()
  assert.equal((await bh.doctor()).ok, true)
  await sequelize.query('DROP SCHEMA __template__ CASCADE')
  await assert.rejects(bh.doctor(), (err: Error) => hasCode('FST_BH_NOT_MIGRATED')(err) && /schema __template__ is missing/.test(err.message))
})

interface Captured { code: number, out: string, err: string }

test('boardinghouse doctor: table, --json, --fix and exit codes', async (t) => {
  const url = await createTestDatabase(t)
  const env = { ...process.env, DATABASE_URL: url }
  const cli = async (...args: string[]): Promise<Captured> => {
    let out = ''
    let err = ''
    const io: CliIO = { out: (s) => { out += s }, err: (s) => { err += s }, isTTY: false, env }
    const code = await main(['--config', join(ROOT, 'example/boardinghouse.config.ts'), ...args], io)
    return { code, out, err }
  }
  const sequelize = sequelizeFor(t, url)

  await t.test('never migrated: one line, exit 1', async () => {
    for (const args of [['doctor'], ['doctor', '--json'], ['doctor', '--fix']]) {
      const r = await cli(...args)
      assert.equal(r.code, 1)
      assert.equal(r.out, '')
      assert.match(r.err, /^boardinghouse: FST_BH_NOT_MIGRATED: The database is not migrated: [^\n]+\n$/)
    }
  })

  await t.test('clean: exit 0', async () => {
    assert.equal((await cli('migrate')).code, 0)
    assert.equal((await cli('schema', 'create', 'acme')).code, 0)
    const r = await cli('doctor')
    assert.equal(r.code, 0, r.err)
    assert.equal(r.out, '1 schema checked: no findings\n')
    const json = await cli('doctor', '--json')
    assert.equal(json.code, 0)
    assert.deepEqual(JSON.parse(json.out), { ok: true, schemas: 1, findings: [], fixed: [], pending: { ready: 0, stale: 0, tampered: 0, orphans: 0 } })
  })

  await t.test('findings: a table and exit 1; --json for CI', async () => {
    await sequelize.query('DROP TRIGGER boardinghouse_audit ON acme.items; CREATE TABLE acme.extra (id int)')
    const r = await cli('doctor')
    assert.equal(r.code, 1)
    assert.equal(r.err, '')
    const lines = r.out.trimEnd().split('\n')
    assert.match(lines[0] ?? '', /^SCHEMA +CODE +FIXABLE +MESSAGE$/)
    assert.match(lines[1] ?? '', /^acme +audit_trigger_missing +yes +table acme\.items \(model Item\) lacks the audit trigger$/)
    assert.match(lines[2] ?? '', /^acme +table_differs +no +table extra is not in the template$/)
    assert.equal(lines.at(-1), '1 schema checked: 2 findings, 1 fixable with --fix')
    const json = await cli('doctor', '--json')
    assert.equal(json.code, 1)
    assert.equal(json.out.trimEnd().split('\n').length, 1, 'one JSON document on one line')
    const report = JSON.parse(json.out) as DoctorReport
    assert.equal(report.ok, false)
    assert.equal(report.schemas, 1)
    assert.deepEqual(report.fixed, [])
    assert.deepEqual(report.findings.map((f) => Object.keys(f).sort()), [
      ['code', 'fixable', 'message', 'object', 'schema'],
      ['actual', 'code', 'difference', 'fixable', 'message', 'object', 'schema']
    ])
    assert.deepEqual(report.findings.map((f) => [f.code, f.schema, f.object, f.fixable]), [['audit_trigger_missing', 'acme', 'items', true], ['table_differs', 'acme', 'extra', false]])
  })

  await t.test('--fix: what was fixed, what is left, exit 1 while anything is', async () => {
    const r = await cli('doctor', '--fix')
    assert.equal(r.code, 1, r.err)
    assert.match(r.out, /^fixed \(1\):\nSCHEMA +CODE +MESSAGE\nacme +audit_trigger_missing +created the audit trigger on acme\.items \(model Item\)\n/)
    assert.match(r.out, /\nacme +table_differs +no +table extra is not in the template\n\n1 schema checked: 1 finding left for a person\n$/)
    const json = await cli('doctor', '--fix', '--json')
    assert.equal(json.code, 1)
    const report = JSON.parse(json.out) as DoctorReport
    assert.deepEqual([report.fixed.length, report.findings.map((f) => f.code)], [0, ['table_differs']])
    await sequelize.query('DROP TABLE acme.extra')
    const clean = await cli('doctor', '--fix')
    assert.equal(clean.code, 0)
    assert.equal(clean.out, 'fixed: nothing\n1 schema checked: no findings\n')
  })

  await t.test('a usage error: exit 2', async () => {
    const r = await cli('doctor', '--repair')
    assert.equal(r.code, 2)
    assert.match(r.err, /^boardinghouse: unknown option '--repair'/)
  })

  await t.test('the installed command exits 1 with findings, printing the JSON', async () => {
    await sequelize.query('DROP TRIGGER boardinghouse_audit ON acme.items')
    const r = await new Promise<{ code: number | null, out: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'plugin/cli.ts', '--config', 'example/boardinghouse.config.ts', 'doctor', '--json'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] })
      let out = ''
      child.stdout.on('data', (d: Buffer) => { out += d.toString() })
      child.on('error', reject)
      child.on('close', (code) => { resolve({ code, out }) })
    })
    assert.equal(r.code, 1)
    assert.deepEqual((JSON.parse(r.out) as DoctorReport).findings.map((f) => f.code), ['audit_trigger_missing'])
  })
})
