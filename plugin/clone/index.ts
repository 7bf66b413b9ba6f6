/**
 * Tenant cloning (DESIGN.md §3): `generateCloneDDL` reads the template's catalog (queries.ts) and
 * writes DDL that recreates it, step by step (generate.ts); `renderCloneDDL` puts the new schema's
 * name into it (render.ts); `CloneDDLCache` keeps the generated DDL per template version (cache.ts).
 */
export { GUARD_TRIGGER_PREFIX, generateCloneDDL } from './generate.js'
export { CloneUnsupportedError } from './queries.js'
export { renderCloneDDL } from './render.js'
export { splitSettingList } from './sql.js'
export { CLONE_FORMAT, CloneDDLCache, STALE_TEMPLATE_STATE, TEMPLATE_VERSION_SQL, templateVersionCheck, type CloneDDL } from './cache.js'
