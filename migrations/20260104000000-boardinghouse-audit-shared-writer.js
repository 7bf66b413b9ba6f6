// @ts-check
// The library's own shared migration: the audit trigger function becomes a thin wrapper around one
// non-trigger function that does the work. PL/pgSQL compiles a trigger function once per table
// (and caches its statements' plans per table), in every backend that writes that table: with the
// whole body in the trigger function, that was ~150 KB of backend memory per audited table; a
// regular function is compiled once per backend, so now only the two-statement wrapper is per table
// (~45 KB, measured on PostgreSQL 15 with pg_backend_memory_contexts). Existing triggers keep
// pointing at public.boardinghouse_audit(), replaced in place.

const WRAPPER = `
    CREATE OR REPLACE FUNCTION public.boardinghouse_audit() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
    BEGIN
      -- TG_ARGV: model name, primary key column, column giving a short text of the object
      PERFORM public.boardinghouse_audit_write(TG_OP, TG_TABLE_SCHEMA, TG_ARGV[0], TG_ARGV[1], TG_ARGV[2], to_jsonb(OLD), to_jsonb(NEW));
      RETURN NULL;
    END
    $fn$;`

/** @param {{ context: { queryInterface: import('sequelize').QueryInterface } }} params */
export async function up ({ context }) {
  await context.queryInterface.sequelize.query(`
    CREATE FUNCTION public.boardinghouse_audit_write(op text, table_schema text, model text, pk_column text, repr_column text, old_row jsonb, new_row jsonb)
    RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
    DECLARE
      any_row jsonb := coalesce(new_row, old_row);
      changed jsonb := '[]';
    BEGIN
      IF op = 'UPDATE' THEN
        SELECT coalesce(jsonb_agg(n.key ORDER BY n.key), '[]') INTO changed
          FROM jsonb_each(new_row) n WHERE n.value IS DISTINCT FROM old_row -> n.key;
        IF changed = '[]' THEN RETURN; END IF;
      ELSIF op = 'INSERT' THEN
        SELECT coalesce(jsonb_agg(n.key ORDER BY n.key), '[]') INTO changed FROM jsonb_object_keys(new_row) n(key);
      END IF;
      INSERT INTO public.boardinghouse_log_entry (user_id, action, model, object_pk, object_repr, changed_fields, schema_name, request_id)
      VALUES (nullif(current_setting('boardinghouse.user_id', true), ''),
              CASE op WHEN 'INSERT' THEN 'create' WHEN 'UPDATE' THEN 'update' ELSE 'delete' END,
              model, any_row ->> pk_column, left(any_row ->> repr_column, 200), changed,
              CASE WHEN table_schema = 'public' THEN NULL ELSE table_schema END,
              nullif(current_setting('boardinghouse.request_id', true), ''));
    END
    $fn$;
    ${WRAPPER}
  `)
}

/** @param {{ context: { queryInterface: import('sequelize').QueryInterface } }} params */
export async function down ({ context }) {
  await context.queryInterface.sequelize.query(`
    CREATE OR REPLACE FUNCTION public.boardinghouse_audit() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
    DECLARE
      old_row jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
      new_row jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
      any_row jsonb := coalesce(new_row, old_row);
      changed jsonb := '[]';
    BEGIN
      IF TG_OP = 'UPDATE' THEN
        SELECT coalesce(jsonb_agg(n.key ORDER BY n.key), '[]') INTO changed
          FROM jsonb_each(new_row) n WHERE n.value IS DISTINCT FROM old_row -> n.key;
        IF changed = '[]' THEN RETURN NULL; END IF;
      ELSIF TG_OP = 'INSERT' THEN
        SELECT coalesce(jsonb_agg(n.key ORDER BY n.key), '[]') INTO changed FROM jsonb_object_keys(new_row) n(key);
      END IF;
      INSERT INTO public.boardinghouse_log_entry (user_id, action, model, object_pk, object_repr, changed_fields, schema_name, request_id)
      VALUES (nullif(current_setting('boardinghouse.user_id', true), ''),
              CASE TG_OP WHEN 'INSERT' THEN 'create' WHEN 'UPDATE' THEN 'update' ELSE 'delete' END,
              TG_ARGV[0], any_row ->> TG_ARGV[1], left(any_row ->> TG_ARGV[2], 200), changed,
              CASE WHEN TG_TABLE_SCHEMA = 'public' THEN NULL ELSE TG_TABLE_SCHEMA END,
              nullif(current_setting('boardinghouse.request_id', true), ''));
      RETURN NULL;
    END
    $fn$;
    DROP FUNCTION IF EXISTS public.boardinghouse_audit_write(text, text, text, text, text, jsonb, jsonb);
  `)
}
