// @ts-check
// The library's own shared migration: the pool of pending (spare) schemas, cloned from the template
// ahead of time so that createSchema claims one (a rename) instead of cloning (option
// `pendingSchemas`, plugin/pending.ts). One row per spare: its internal name (never a valid tenant
// name: it starts with "_"), the template version it was cloned at (a spare of another version is
// never handed out), a fingerprint of its catalog rows taken when it was cloned (a spare changed by
// hand since is discarded at claim), and the functions whose pinned search_path names it (the claim
// rewrites them for the new name).

/** @param {{ context: { queryInterface: import('sequelize').QueryInterface } }} params */
export async function up ({ context }) {
  await context.queryInterface.sequelize.query(`
    CREATE TABLE public.boardinghouse_pending (
      schema_name varchar(63) PRIMARY KEY
        CONSTRAINT boardinghouse_pending_name_internal CHECK (schema_name ~ '^__pending_[0-9a-f]{16}__$'),
      template_version text NOT NULL,
      fingerprint text NOT NULL,
      rewrites jsonb NOT NULL DEFAULT '[]',
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX boardinghouse_pending_version_idx ON public.boardinghouse_pending (template_version, created_at);
  `)
}

/** @param {{ context: { queryInterface: import('sequelize').QueryInterface } }} params */
export async function down ({ context }) {
  // the spares go with their table: nothing else knows them
  await context.queryInterface.sequelize.query(`
    DO $bh$ DECLARE r record; BEGIN
      IF to_regclass('public.boardinghouse_pending') IS NOT NULL THEN
        FOR r IN SELECT schema_name FROM public.boardinghouse_pending LOOP
          EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', r.schema_name);
        END LOOP;
      END IF;
    END $bh$;
    DROP TABLE IF EXISTS public.boardinghouse_pending;
  `)
}
