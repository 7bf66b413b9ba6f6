/**
 * dumpdata / loaddata (django-boardinghouse's `--schema`): the rows of the app's models as JSON
 * objects `{ model, pk, schema, fields }`, dumped from one consistent snapshot and loaded all or
 * nothing. The modules: json (exact numbers), columns (models, tables, column types), dump, read
 * (dump files), load (the Loader). They take the Boardinghouse as a DataHost and do not import it.
 */
export type { DataHost } from './columns.js'
export { dumpData, dumpDataBatches, dumpDataText, writeDump } from './dump.js'
export { JsonNumber, parseExact, stringifyExact } from './json.js'
export { loadData } from './load.js'
export { DEFAULT_MAX_VALUE_LENGTH, MAX_DUMP_DEPTH, readDumpObjects, type ReadDumpOptions } from './read.js'
export type { DumpFormat, DumpObject, DumpOptions, LoadOptions, LoadResult, LoadSource } from './types.js'
