/**
 * Imports the app's config modules and migration files. `.ts`/`.mts`/`.cts` files need a
 * TypeScript loader: tsx, an optional peer dependency, registered on the first such file; without
 * it, Node's own type stripping (Node ≥ 22.18) is tried, and failing that the file is refused with
 * FST_BH_TYPESCRIPT_LOADER naming tsx. Plain `.js`/`.mjs`/`.cjs` files never need it.
 */
import { extname } from 'node:path'
import { pathToFileURL } from 'node:url'
import { BoardinghouseErrors } from './errors.js'

const TS_EXTENSIONS = new Set(['.ts', '.mts', '.cts'])

export function isTypeScriptFile (path: string): boolean {
  return TS_EXTENSIONS.has(extname(path)) && !path.endsWith('.d.ts')
}

let tsx: Promise<boolean> | undefined

/** Registers tsx once, if it is installed; resolves to whether it is. */
async function registerTsx (): Promise<boolean> {
  tsx ??= (async () => {
    try {
      const { register } = await import('tsx/esm/api')
      register()
      return true
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return false
      throw err
    }
  })()
  return await tsx
}

// The errors of importing a .ts file that no loader (or only Node's type stripping) handles.
const LOADER_ERRORS = new Set(['ERR_UNKNOWN_FILE_EXTENSION', 'ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX', 'ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING', 'ERR_INVALID_TYPESCRIPT_SYNTAX'])

/** `import()`s a file of the app's: a config module or a migration. */
export async function importFile (path: string): Promise<Record<string, unknown>> {
  const typescript = isTypeScriptFile(path)
  const withTsx = typescript ? await registerTsx() : false
  try {
    return await import(pathToFileURL(path).href) as Record<string, unknown>
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (typescript && !withTsx && (code === undefined || LOADER_ERRORS.has(code) || code === 'ERR_MODULE_NOT_FOUND')) {
      throw new BoardinghouseErrors.TYPESCRIPT_LOADER(path, { cause: err })
    }
    throw err
  }
}
