// @ts-check
// The library's own shared migration: a table caching the template's clone DDL per template
// version, so a process creating its first tenant after a deploy does not regenerate it.

/** @param {{ context: { queryInterface: import('sequelize').QueryInterface } }} params */
export async function up ({ context }) {
  await context.queryInterface.sequelize.query(`
    CREATE TABLE public.boardinghouse_template_ddl (
      version text PRIMARY KEY,
      ddl text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )
  `)
}

/** @param {{ context: { queryInterface: import('sequelize').QueryInterface } }} params */
export async function down ({ context }) {
  await context.queryInterface.sequelize.query('DROP TABLE IF EXISTS public.boardinghouse_template_ddl')
}
