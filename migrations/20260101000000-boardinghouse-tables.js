// @ts-check
// The library's own shared migration: the schema registry, memberships, the per-schema ledger of
// tenant migrations, and the database-side guards (schema names are validated and never renamed;
// `__template__` refuses rows). sequelize-cli format, run by `boardinghouse migrate` in public.

/** @param {{ context: { queryInterface: import('sequelize').QueryInterface, options: { userIdType: string } } }} params */
export async function up ({ context }) {
  const userIdSql = { integer: 'integer', bigint: 'bigint', uuid: 'uuid', string: 'varchar(255)' }[context.options.userIdType] ?? 'integer'
  await context.queryInterface.sequelize.query(`
    CREATE TABLE public.boardinghouse_schema (
      schema_name varchar(63) PRIMARY KEY
        CONSTRAINT boardinghouse_schema_name_valid CHECK (
          schema_name ~ '^[a-z][a-z0-9_]{0,62}$' AND schema_name !~ '^pg_'
          AND schema_name NOT IN ('public', 'information_schema') AND octet_length(schema_name) <= 63),
      name text NOT NULL,
      is_active boolean NOT NULL DEFAULT true,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE FUNCTION public.boardinghouse_schema_name_immutable() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
    BEGIN
      IF NEW.schema_name IS DISTINCT FROM OLD.schema_name THEN
        RAISE EXCEPTION 'schema "%" cannot be renamed', OLD.schema_name USING ERRCODE = 'check_violation';
      END IF;
      RETURN NEW;
    END
    $fn$;
    CREATE TRIGGER boardinghouse_schema_name_immutable BEFORE UPDATE OF schema_name ON public.boardinghouse_schema
      FOR EACH ROW EXECUTE FUNCTION public.boardinghouse_schema_name_immutable();

    CREATE TABLE public.boardinghouse_membership (
      schema_name varchar(63) NOT NULL REFERENCES public.boardinghouse_schema (schema_name) ON DELETE CASCADE ON UPDATE RESTRICT,
      user_id ${userIdSql} NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (schema_name, user_id)
    );
    CREATE INDEX boardinghouse_membership_user_idx ON public.boardinghouse_membership (user_id);

    CREATE TABLE public.boardinghouse_tenant_migration (
      schema_name varchar(63) NOT NULL,
      name text NOT NULL,
      run_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (schema_name, name)
    );

    CREATE FUNCTION public.boardinghouse_refuse_template_write() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
    BEGIN
      RAISE EXCEPTION 'schema "%" holds the tenant template and no data: % on "%" refused', TG_TABLE_SCHEMA, TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege', HINT = 'Tenant migrations that write rows can skip the template: context.isTemplate';
    END
    $fn$;
  `)
}

/** @param {{ context: { queryInterface: import('sequelize').QueryInterface } }} params */
export async function down ({ context }) {
  await context.queryInterface.sequelize.query(`
    DROP TABLE IF EXISTS public.boardinghouse_tenant_migration;
    DROP TABLE IF EXISTS public.boardinghouse_membership;
    DROP TABLE IF EXISTS public.boardinghouse_schema;
    DROP FUNCTION IF EXISTS public.boardinghouse_schema_name_immutable();
    DROP FUNCTION IF EXISTS public.boardinghouse_refuse_template_write();
  `)
}
