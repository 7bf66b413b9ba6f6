#!/usr/bin/env bash
# The consumer job: pack the package, install the tarball with its peers (no dev tools) in a new ESM
# app, type-check an app written from the README (module NodeNext, strict, skipLibCheck false)
# against the installed types, run it against PostgreSQL ($DATABASE_URL, a server whose databases
# this job may create), run the installed `boardinghouse` CLI with a plain .js config, require()
# the package from CommonJS, and fail if the runtime tree holds tsx, esbuild or typescript.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
db="bh_consumer_$$"
admin="${DATABASE_URL:?the consumer job needs DATABASE_URL}"
url="$(node -e 'const u = new URL(process.argv[1]); u.pathname = "/" + process.argv[2]; console.log(u.href)' "$admin" "$db")"
cleanup_db () { psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; }
trap 'cleanup_db; rm -rf "$work"' EXIT

echo "== consumer: npm pack"
(cd "$root" && npm pack --silent --pack-destination "$work" >/dev/null)
tarball="$(ls "$work"/fastify-boardinghouse-*.tgz)"
tar tzf "$tarball" > "$work/files"
for f in LICENSE CHANGELOG.md README.md package.json dist/plugin/index.js dist/plugin/index.d.ts dist/plugin/cli.js dist/plugin/testing/index.js dist/plugin/testing/index.d.ts migrations/20260101000000-boardinghouse-tables.js; do
  grep -qx "package/$f" "$work/files" || { echo "$f missing from the tarball"; exit 1; }
done
# source maps: each embeds its sources (the .ts files are not shipped)
tar xzf "$tarball" -C "$work" --wildcards 'package/dist/*.js.map'
for m in $(find "$work/package/dist" -name '*.js.map'); do
  node -e 'const m = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); if (!Array.isArray(m.sourcesContent) || m.sourcesContent.length !== m.sources.length) process.exit(1)' "$m" \
    || { echo "source map $m does not embed its sources"; exit 1; }
done

app="$work/app"
mkdir -p "$app"
cd "$app"
cat > package.json <<'JSON'
{ "name": "consumer-app", "version": "1.0.0", "private": true, "type": "module" }
JSON
start=$(date +%s)
npm install --no-audit --no-fund --silent "$tarball" sequelize pg pg-hstore fastify @fastify/cookie @fastify/session
echo "   runtime install: $(( $(date +%s) - start )) s, $(npm ls --omit=dev --all 2>/dev/null | wc -l || true) lines of npm ls --omit=dev --all ($(npm ls --omit=dev --all --parseable 2>/dev/null | wc -l || true) packages installed), $(du -sh node_modules | cut -f1) node_modules"
npm ls --omit=dev --all > "$work/runtime-tree" 2>/dev/null || true
if grep -v 'UNMET OPTIONAL' "$work/runtime-tree" | grep -E '(^|[ ─])(tsx|esbuild|typescript)@'; then
  echo "the runtime tree of a consumer holds tsx, esbuild or typescript"; exit 1
fi
npm install --no-audit --no-fund --silent --save-dev typescript @types/node
# the queue libraries the README's background-jobs examples use (optional peers of the package)
npm install --no-audit --no-fund --silent bullmq@^6 ioredis@^6 pg-boss@^10

echo "== consumer: type-check the README's app (NodeNext, strict, skipLibCheck false)"
node "$root/.ci/readme-app.mjs" "$root/README.md" src
cat > tsconfig.json <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext",
    "strict": true, "skipLibCheck": false, "types": ["node"],
    "outDir": "dist", "rootDir": "src"
  },
  "include": ["src"]
}
JSON
npx tsc -p tsconfig.json

echo "== consumer: run it against PostgreSQL"
psql "$admin" -qc "CREATE DATABASE $db" >/dev/null
cd dist
DATABASE_URL="$url" node readme-1-usage-without-fastify.js | tee "$work/without.log"
grep -q anvil "$work/without.log"
# the README's test file (node:test) with the installed test kit (fastify-boardinghouse/testing)
DATABASE_URL="$url" node items.test.js > "$work/kit.log" 2>&1 || { cat "$work/kit.log"; echo "the README's test file failed"; exit 1; }
grep -q '^# pass 3$' "$work/kit.log" || { cat "$work/kit.log"; echo "the README's test file did not pass its 3 tests"; exit 1; }
echo "   the README's test file: $(grep -c '^ok ' "$work/kit.log") tests passed with the installed test kit"
# app.js listens until stopped: ask it for /items, then stop it
port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
DATABASE_URL="$url" PORT="$port" SESSION_SECRET="$(node -p "'s'.repeat(40)")" node app.js > "$work/app.log" 2>&1 &
apppid=$!
for _ in $(seq 1 60); do curl -s -o /dev/null "http://127.0.0.1:$port/items" && break; sleep 0.5; done
body="$(curl -s "http://127.0.0.1:$port/items")"
kill "$apppid"; wait "$apppid" 2>/dev/null || true
echo "   GET /items without a session: $body"
echo "$body" | grep -q FST_BH_NO_SCHEMA

echo "== consumer: the installed boardinghouse CLI with a plain .js config"
cat > boardinghouse.config.js <<'JS'
import { defineConfig } from 'fastify-boardinghouse'
import { defineModels } from './models.js'
export default defineConfig({ models: defineModels, tenantModels: ['Item'], tenantMigrations: './migrations/tenant', sharedMigrations: './migrations/shared' })
JS
test "$(npx boardinghouse --version)" = "$(node -p "require('$root/package.json').version")"
npx boardinghouse --help > "$work/help"; grep -q DATABASE_URL "$work/help"
DATABASE_URL="$url" npx boardinghouse migrate
DATABASE_URL="$url" npx boardinghouse schema create globex
DATABASE_URL="$url" npx boardinghouse schema list > "$work/list"; grep -q '^globex' "$work/list"
# a .ts config without tsx installed: one line naming tsx
cp boardinghouse.config.js boardinghouse.config.ts
set +e; out="$(DATABASE_URL="$url" npx boardinghouse --config boardinghouse.config.ts schema list 2>&1)"; rc=$?; set -e
echo "   $out"
[ "$rc" = 1 ] && echo "$out" | grep -q '^boardinghouse: FST_BH_TYPESCRIPT_LOADER: .*install tsx'

echo "== consumer: require() from CommonJS"
cat > require.cjs <<'JS'
const bh = require('fastify-boardinghouse')
const pkg = require('fastify-boardinghouse/package.json')
for (const name of ['default', 'createBoardinghouse', 'Boardinghouse', 'defineConfig', 'loadConfig', 'optionsFromConfig', 'BoardinghouseErrors']) {
  if (bh[name] === undefined) { console.error(`require('fastify-boardinghouse').${name} is undefined`); process.exit(1) }
}
console.log(`   required fastify-boardinghouse ${pkg.version} from CommonJS`)
JS
node require.cjs

echo "== consumer: the test kit subpath (fastify-boardinghouse/testing)"
node --input-type=module -e "
const kit = await import('fastify-boardinghouse/testing')
for (const name of ['installTestKit', 'createSchemaFixture', 'checkIsolation', 'IsolationError']) {
  if (typeof kit[name] !== 'function') { console.error('fastify-boardinghouse/testing has no ' + name); process.exit(1) }
}
console.log('   imported fastify-boardinghouse/testing')
"
echo "== consumer: ok"
