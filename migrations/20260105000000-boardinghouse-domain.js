// @ts-check
// The library's own shared migration: the domain table, host → schema, for routing requests by
// host (`resolvers.domain()`). A host maps to one schema (the primary key), a schema has at most
// one primary domain (a partial unique index), and a dropped schema takes its domains with it (the
// foreign key cascades). Hosts are stored as the library normalises them: lower-case, punycode,
// no port, no trailing dot; the CHECK keeps anything else out, whoever writes the row.

/** @param {{ context: { queryInterface: import('sequelize').QueryInterface } }} params */
export async function up ({ context }) {
  await context.queryInterface.sequelize.query(`
    CREATE TABLE public.boardinghouse_domain (
      host varchar(253) PRIMARY KEY
        CONSTRAINT boardinghouse_domain_host_valid CHECK (
          host = lower(host) AND host ~ '^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$' AND host !~ '[.][.]'
          AND host !~ '(^|[.])-|-($|[.])' AND host !~ '[.]$' AND position(':' in host) = 0),
      schema_name varchar(63) NOT NULL REFERENCES public.boardinghouse_schema (schema_name) ON DELETE CASCADE ON UPDATE RESTRICT,
      is_primary boolean NOT NULL DEFAULT false,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE UNIQUE INDEX boardinghouse_domain_one_primary ON public.boardinghouse_domain (schema_name) WHERE is_primary;
    CREATE INDEX boardinghouse_domain_schema_idx ON public.boardinghouse_domain (schema_name);
  `)
}

/** @param {{ context: { queryInterface: import('sequelize').QueryInterface } }} params */
export async function down ({ context }) {
  await context.queryInterface.sequelize.query('DROP TABLE IF EXISTS public.boardinghouse_domain')
}
