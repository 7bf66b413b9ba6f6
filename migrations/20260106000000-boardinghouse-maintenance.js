// @ts-check
// The library's own shared migration: maintenance mode per schema, on the registry row. A schema
// is in maintenance while maintenance_since is set; maintenance_retry_after is the Retry-After
// (seconds) its requests are answered with (null: the library's default), maintenance_by who put it
// there: 'manual' (an operator, `setMaintenance`, the CLI) or 'migrate' (the migrator, which clears
// only its own). The CHECKs keep the three columns consistent, whoever writes the row.

/** @param {{ context: { queryInterface: import('sequelize').QueryInterface } }} params */
export async function up ({ context }) {
  await context.queryInterface.sequelize.query(`
    ALTER TABLE public.boardinghouse_schema
      ADD COLUMN maintenance_since timestamptz,
      ADD COLUMN maintenance_retry_after integer
        CONSTRAINT boardinghouse_schema_maintenance_retry_after_valid CHECK (maintenance_retry_after > 0 AND maintenance_retry_after <= 86400),
      ADD COLUMN maintenance_by text
        CONSTRAINT boardinghouse_schema_maintenance_by_valid CHECK (maintenance_by IN ('manual', 'migrate')),
      ADD CONSTRAINT boardinghouse_schema_maintenance_consistent CHECK (
        (maintenance_since IS NULL) = (maintenance_by IS NULL)
        AND (maintenance_retry_after IS NULL OR maintenance_since IS NOT NULL))
  `)
}

/** @param {{ context: { queryInterface: import('sequelize').QueryInterface } }} params */
export async function down ({ context }) {
  await context.queryInterface.sequelize.query(`
    ALTER TABLE public.boardinghouse_schema
      DROP CONSTRAINT IF EXISTS boardinghouse_schema_maintenance_consistent,
      DROP COLUMN IF EXISTS maintenance_by,
      DROP COLUMN IF EXISTS maintenance_retry_after,
      DROP COLUMN IF EXISTS maintenance_since
  `)
}
