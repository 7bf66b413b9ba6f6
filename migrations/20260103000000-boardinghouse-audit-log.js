// @ts-check
// The library's own shared migration: the audit log (django's LogEntry, with the schema), the
// trigger function that writes it in the same statement, so in the same transaction, as the
// change, and a generation counter of the template's structure (clone DDL cache key).

/** @param {{ context: { queryInterface: import('sequelize').QueryInterface, options: { userIdType: string } } }} params */
export async function up ({ context }) {
  await context.queryInterface.sequelize.query(`
    CREATE TABLE public.boardinghouse_log_entry (
      id bigserial PRIMARY KEY,
      action_time timestamptz NOT NULL DEFAULT now(),
      user_id text,
      action text NOT NULL CHECK (action IN ('create', 'update', 'delete')),
      model text NOT NULL,
      object_pk text,
      object_repr text,
      changed_fields jsonb NOT NULL DEFAULT '[]',
      schema_name varchar(63),
      request_id text
    );
    CREATE INDEX boardinghouse_log_entry_schema_idx ON public.boardinghouse_log_entry (schema_name, id DESC);
    CREATE INDEX boardinghouse_log_entry_model_pk_idx ON public.boardinghouse_log_entry (model, object_pk);

    -- TG_ARGV: model name, primary key column, column giving a short text of the object
    CREATE FUNCTION public.boardinghouse_audit() RETURNS trigger
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

    CREATE TABLE public.boardinghouse_template_state (
      id int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
      generation bigint NOT NULL DEFAULT 0
    );
    INSERT INTO public.boardinghouse_template_state (id, generation) VALUES (1, 0);
  `)
}

/** @param {{ context: { queryInterface: import('sequelize').QueryInterface } }} params */
export async function down ({ context }) {
  await context.queryInterface.sequelize.query(`
    DROP TABLE IF EXISTS public.boardinghouse_template_state;
    DROP FUNCTION IF EXISTS public.boardinghouse_audit() CASCADE;
    DROP TABLE IF EXISTS public.boardinghouse_log_entry;
  `)
}
