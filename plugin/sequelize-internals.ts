/**
 * The one place this task reaches into Sequelize internals (to be gathered with the others).
 */
import type { Model, ModelStatic } from 'sequelize'

/**
 * Makes every query of `model` name its table schema-qualified (`"public"."plans"`), as if it had
 * been defined with `{ schema }`: sets the `_schema` Sequelize 6 reads in `getTableName()`
 * (QueryGenerator.addSchema) and `options.schema`. Done in place: `Model.schema()` would return a
 * copy that the app's own references do not use.
 */
export function pinModelSchema (model: ModelStatic<Model>, schema: string): void {
  const internal = model as unknown as { _schema?: string, _schemaDelimiter?: string, options: { schema?: string, schemaDelimiter?: string } }
  internal._schema = schema
  internal._schemaDelimiter ??= ''
  internal.options.schema = schema
}
