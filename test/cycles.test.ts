/**
 * No circular imports in plugin/: every .ts file under it is parsed with the TypeScript compiler,
 * its relative imports and re-exports become edges, and every cycle is named. Type-only edges
 * (`import type`, `export type … from`, an import whose every name is `type`, `import('…').T` in a
 * type) make no runtime cycle but still tie the files together: they count, and are reported apart
 * from runtime cycles.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

interface Edge { to: string, typeOnly: boolean }
/** File (relative to the root) → the files it imports, one edge per import or re-export. */
type Graph = Map<string, Edge[]>

const PLUGIN = fileURLToPath(new URL('../plugin/', import.meta.url))

function tsFiles (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => join(e.parentPath, e.name))
    .sort()
}

/** Every module specifier of `source` with whether the reference is for types only. */
function moduleReferences (fileName: string, source: string): Array<{ specifier: string, typeOnly: boolean }> {
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS)
  const out: Array<{ specifier: string, typeOnly: boolean }> = []
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause
      const bindings = clause?.namedBindings
      // elided by the compiler: `import type`, or only `{ type A, type B }` (no default, no namespace)
      const typeOnly = clause !== undefined && (clause.isTypeOnly || (clause.name === undefined && bindings !== undefined &&
        ts.isNamedImports(bindings) && bindings.elements.length > 0 && bindings.elements.every((e) => e.isTypeOnly)))
      out.push({ specifier: node.moduleSpecifier.text, typeOnly })
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier !== undefined && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.exportClause
      const typeOnly = node.isTypeOnly || (clause !== undefined && ts.isNamedExports(clause) && clause.elements.length > 0 && clause.elements.every((e) => e.isTypeOnly))
      out.push({ specifier: node.moduleSpecifier.text, typeOnly })
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression)) {
      out.push({ specifier: node.moduleReference.expression.text, typeOnly: node.isTypeOnly })
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] !== undefined && ts.isStringLiteral(node.arguments[0])) {
      out.push({ specifier: node.arguments[0].text, typeOnly: false })
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      out.push({ specifier: node.argument.literal.text, typeOnly: true })
    }
    ts.forEachChild(node, visit)
  }
  visit(sf)
  return out
}

/** The import graph of the .ts files under `root`; edges leaving `root` are dropped. Throws on a relative import that names no file. */
function importGraph (root: string): Graph {
  const graph: Graph = new Map()
  for (const file of tsFiles(root)) {
    const edges: Edge[] = []
    for (const { specifier, typeOnly } of moduleReferences(file, readFileSync(file, 'utf8'))) {
      if (!specifier.startsWith('.')) continue
      const base = resolve(dirname(file), specifier)
      const target = [base.replace(/\.js$/, '.ts'), base, `${base}.ts`, join(base, 'index.ts')].find((p) => p.endsWith('.ts') && existsSync(p))
      if (target === undefined) throw new Error(`${relative(root, file)}: import ${JSON.stringify(specifier)} names no .ts file`)
      const to = relative(root, target)
      if (!to.startsWith('..')) edges.push({ to, typeOnly })
    }
    graph.set(relative(root, file), edges)
  }
  return graph
}

/**
 * Every elementary cycle of `graph`, each as its files from the smallest name back to it
 * (`a.ts → b.ts → a.ts`), sorted. Edges that `use` rejects are left out.
 */
function findCycles (graph: Graph, use: (edge: Edge) => boolean = () => true): string[][] {
  const cycles: string[][] = []
  const nodes = [...graph.keys()].sort()
  for (const start of nodes) {
    // only cycles whose smallest node is `start`: each cycle is found once
    const path: string[] = [start]
    const onPath = new Set(path)
    const walk = (node: string): void => {
      const next = [...new Set((graph.get(node) ?? []).filter(use).map((e) => e.to))].sort()
      for (const to of next) {
        if (to === start) cycles.push([...path, start])
        else if (to > start && !onPath.has(to) && graph.has(to)) {
          path.push(to); onPath.add(to)
          walk(to)
          path.pop(); onPath.delete(to)
        }
      }
    }
    walk(start)
  }
  return cycles.sort((a, b) => a.join(' ').localeCompare(b.join(' ')))
}

/** Runtime cycles (every edge a runtime import) and those that only close through a type-only import. */
function classifyCycles (graph: Graph): { runtime: string[][], typeOnly: string[][] } {
  const runtime = findCycles(graph, (e) => !e.typeOnly)
  const runtimeKeys = new Set(runtime.map((c) => c.join(' → ')))
  const typeOnly = findCycles(graph).filter((c) => !runtimeKeys.has(c.join(' → ')))
  return { runtime, typeOnly }
}

function report ({ runtime, typeOnly }: { runtime: string[][], typeOnly: string[][] }): string {
  const lines: string[] = []
  if (runtime.length > 0) lines.push(`${runtime.length} runtime import cycle(s):`, ...runtime.map((c) => '  ' + c.join(' → ')))
  if (typeOnly.length > 0) lines.push(`${typeOnly.length} cycle(s) closed only by type-only imports:`, ...typeOnly.map((c) => '  ' + c.join(' → ')))
  return lines.join('\n')
}

test('findCycles names every cycle once, and keeps type-only ones apart', () => {
  const g = (edges: Record<string, Array<string | [string, 'type']>>): Graph =>
    new Map(Object.entries(edges).map(([from, tos]) => [from, tos.map((to) => typeof to === 'string' ? { to, typeOnly: false } : { to: to[0], typeOnly: true })]))
  assert.deepEqual(findCycles(g({ a: ['b'], b: ['c'], c: ['d'], d: [] })), [], 'a chain has no cycle')
  assert.deepEqual(findCycles(g({ a: ['b', 'c'], b: ['d'], c: ['d'], d: [] })), [], 'a diamond has no cycle')
  assert.deepEqual(findCycles(g({ a: ['b'], b: ['c'], c: ['a', 'd'], d: [] })), [['a', 'b', 'c', 'a']])
  assert.deepEqual(findCycles(g({ a: ['a'] })), [['a', 'a']], 'a file importing itself')
  assert.deepEqual(findCycles(g({ a: ['b'], b: ['a', 'c'], c: ['b'] })), [['a', 'b', 'a'], ['b', 'c', 'b']], 'two cycles through one file')
  assert.deepEqual(findCycles(g({ a: ['b', 'b'], b: ['a'] })), [['a', 'b', 'a']], 'two imports of one file are one edge')
  const mixed = classifyCycles(g({ a: ['b'], b: [['a', 'type'], 'c'], c: ['d'], d: ['c'] }))
  assert.deepEqual(mixed, { runtime: [['c', 'd', 'c']], typeOnly: [['a', 'b', 'a']] })
  assert.equal(report(mixed), '1 runtime import cycle(s):\n  c → d → c\n1 cycle(s) closed only by type-only imports:\n  a → b → a')
})

test('importGraph reads every kind of import and re-export, type-only or not', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bh-cycles-'))
  t.after(() => { rmSync(dir, { recursive: true, force: true }) })
  const files: Record<string, string> = {
    'a.ts': "import { b } from './b.js'\nimport type { C } from './c.js'\nexport const a = b\nexport type { C }",
    'b.ts': "import { type A } from './a.js'\nexport * from './sub/index.js'\nexport const b = 1\nexport type X = A",
    'c.ts': "export type C = import('./a.js').A\nexport async function load (): Promise<unknown> { return await import('./d.js') }",
    'd.ts': "import fs from 'node:fs'\nimport { outside } from '../outside.js'\nexport { a } from './a.js'\nexport const d = [fs, outside]",
    'sub/index.ts': "import * as c from '../c.js'\nexport const sub = c"
  }
  for (const [name, text] of Object.entries(files)) {
    const path = join(dir, 'plugin', name)
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, text)
  }
  writeFileSync(join(dir, 'outside.ts'), 'export const outside = 1')
  const graph = importGraph(join(dir, 'plugin'))
  assert.deepEqual(Object.fromEntries(graph), {
    'a.ts': [{ to: 'b.ts', typeOnly: false }, { to: 'c.ts', typeOnly: true }],
    'b.ts': [{ to: 'a.ts', typeOnly: true }, { to: join('sub', 'index.ts'), typeOnly: false }],
    'c.ts': [{ to: 'a.ts', typeOnly: true }, { to: 'd.ts', typeOnly: false }],
    'd.ts': [{ to: 'a.ts', typeOnly: false }],
    [join('sub', 'index.ts')]: [{ to: 'c.ts', typeOnly: false }]
  })
  assert.deepEqual(classifyCycles(graph), {
    runtime: [['a.ts', 'b.ts', 'sub/index.ts', 'c.ts', 'd.ts', 'a.ts']],
    typeOnly: [['a.ts', 'b.ts', 'a.ts'], ['a.ts', 'b.ts', 'sub/index.ts', 'c.ts', 'a.ts'], ['a.ts', 'c.ts', 'a.ts'], ['a.ts', 'c.ts', 'd.ts', 'a.ts']]
  })
  writeFileSync(join(dir, 'plugin', 'd.ts'), "import { gone } from './gone.js'")
  assert.throws(() => importGraph(join(dir, 'plugin')), /d\.ts: import "\.\/gone\.js" names no \.ts file/)
})

test('plugin/ has no circular imports', () => {
  const graph = importGraph(PLUGIN)
  assert.ok(graph.size >= 10 && [...graph.values()].some((edges) => edges.length > 0), 'the graph was read')
  const cycles = classifyCycles(graph)
  assert.equal(report(cycles), '', report(cycles))
})
