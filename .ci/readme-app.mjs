// Writes the README's ```ts blocks as files of a consumer app (a block starting with `// <path>.ts`
// is that file; the others are scripts named readme-<n>-<heading>.ts) into the folder given.
// Used by .ci/run's consumer job; test/readme.test.ts applies the same rules.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

const [readmePath, outDir] = process.argv.slice(2)
const lines = readFileSync(readmePath, 'utf8').split('\n')
let heading = ''
let n = 0
for (let i = 0; i < lines.length; i++) {
  if (/^#{2,3} /.test(lines[i])) heading = lines[i].replace(/^#+ /, '')
  if (lines[i] !== '```ts') continue
  const body = []
  for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i])
  const named = /^\/\/ ([\w./-]+\.ts)$/.exec(body[0] ?? '')
  const file = named !== null ? named[1] : `readme-${++n}-${heading.toLowerCase().replace(/[^a-z]+/g, '-').replace(/^-|-$/g, '')}.ts`
  if (named === null && !body.some((l) => l.startsWith('import '))) {
    console.log(`skipped ${file}: a fragment (test/readme.test.ts runs it with a prelude)`)
    continue
  }
  mkdirSync(dirname(join(outDir, file)), { recursive: true })
  writeFileSync(join(outDir, file), body.join('\n') + '\n')
  console.log(file)
}
