/**
 * The example app's pages in a real browser (headless Chromium) on a real PostgreSQL: logging in,
 * the header's schema selector, items per schema, the audit log and its links into a schema,
 * refusals (not offered, crafted POST, schema link, cross-site), and the admins' schema page.
 * Saves screenshots of the main pages at 1280 and 375 px under test/.artifacts/screenshots/.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { BrowserContext, Page } from 'playwright-core'
import { Boardinghouse } from '../plugin/index.js'
import { buildExampleApp, exampleAuditModels } from '../example/app.js'
import { defineExampleModels } from '../example/models/index.js'
import { seed } from '../example/seed.js'
import { EXAMPLE_SHARED_MIGRATIONS, EXAMPLE_TENANT_MIGRATIONS, createTestDatabase, sequelizeFor } from './helpers.js'
import { SCREENSHOT_DIR, launchChromium, navigation, screenshots, visit, type PageChecks } from './fixtures/browser.js'

function assertTidy (name: string, checks: { wide: PageChecks, narrow: PageChecks }): void {
  for (const [width, c] of Object.entries(checks)) {
    assert.deepEqual(c.unlabelled, [], `${name} (${width}): every form control has a label`)
    assert.equal(c.h1, 1, `${name} (${width}): one h1`)
    assert.equal(c.main, 1, `${name} (${width}): one main landmark`)
    assert.ok(c.overflow <= 0, `${name} (${width}): no horizontal scrolling (overflow ${c.overflow}px)`)
  }
}

const header = (page: Page) => page.getByRole('banner')
const selector = (page: Page) => header(page).getByLabel('Schema', { exact: true })
const status = async (page: Page): Promise<string> => (await page.locator('#schema-status').innerText()).replace(/\s+/g, ' ').trim()
const heading = async (page: Page): Promise<string> => (await page.locator('h1').innerText()).trim()
const mainText = async (page: Page): Promise<string> => (await page.locator('main').innerText()).replace(/\s+/g, ' ')
const itemTitles = async (page: Page): Promise<string[]> => await page.locator('main td[data-label="Title"]').allInnerTexts()
const offered = async (page: Page): Promise<string[]> => await selector(page).locator('option').allInnerTexts()

/** Uses the header's selector: picks `label`, presses Switch; returns the status of the page it lands on. */
async function switchTo (page: Page, label: string): Promise<number> {
  await selector(page).selectOption({ label })
  return await navigation(page, async () => { await header(page).getByRole('button', { name: 'Switch', exact: true }).click() })
}

async function logIn (page: Page, base: string, username: string, password = username): Promise<number> {
  await visit(page, `${base}/login`)
  await page.getByLabel('User name').fill(username)
  await page.getByLabel('Password').fill(password)
  return await navigation(page, async () => { await page.getByRole('button', { name: 'Log in' }).click() })
}

/** A crafted POST to the switch route: the header's own form (with its CSRF token), given another option. */
async function craftedSwitch (page: Page, schema: string): Promise<number> {
  return await navigation(page, async () => {
    await page.evaluate((name) => {
      const select = document.querySelector<HTMLSelectElement>('#schema-select')
      if (select === null || select.form === null) throw new Error('no schema selector')
      select.add(new Option(name, name))
      select.value = name
      select.form.submit()
    }, schema)
  })
}

async function cookieHeader (context: BrowserContext): Promise<string> {
  return (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ')
}

test('the example app in a browser: schema selector, items, audit log links, refusals, admin', { timeout: 300_000 }, async (t) => {
  const started = Date.now()
  const browser = await launchChromium(t) // first: fails at once, and clearly, without Chromium

  const url = await createTestDatabase(t)
  const sequelize = sequelizeFor(t, url)
  const models = defineExampleModels(sequelize)
  const bh = new Boardinghouse({ sequelize, tenantModels: ['Item'], auditModels: exampleAuditModels, sharedMigrations: EXAMPLE_SHARED_MIGRATIONS, tenantMigrations: EXAMPLE_TENANT_MIGRATIONS })
  await bh.migrate()
  assert.equal(await seed(bh, models), true)
  const app = await buildExampleApp({ sequelize, sessionSecret: 'b'.repeat(40) })
  t.after(async () => { await app.close() })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  const newPage = async (): Promise<{ context: BrowserContext, page: Page }> => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
    t.after(async () => { await context.close() })
    return { context, page: await context.newPage() }
  }
  const alice = await newPage()
  const bob = await newPage()
  const admin = await newPage()
  let magnetLink = ''

  await t.test('alice logs in; a wrong password is refused with a message', async () => {
    const { page } = alice
    assert.equal(await visit(page, `${base}/app/items`), 200)
    assert.equal(new URL(page.url()).pathname, '/login', 'anonymous: sent to the login form')
    assertTidy('login', await screenshots(page, 'login'))
    await page.getByLabel('User name').fill('alice')
    await page.getByLabel('Password').fill('wrong')
    assert.equal(await navigation(page, async () => { await page.getByRole('button', { name: 'Log in' }).click() }), 401)
    assert.match(await page.getByRole('alert').innerText(), /Unknown user or wrong password/)
    assert.equal(await page.getByLabel('User name').inputValue(), 'alice', 'the form keeps the user name')
    await page.getByLabel('Password').fill('alice')
    await navigation(page, async () => { await page.getByRole('button', { name: 'Log in' }).click() })
    assert.equal(new URL(page.url()).pathname, '/app/items', 'back to the page asked for')
    assert.match(await header(page).innerText(), /Signed in as alice/)
    await visit(page, `${base}/`)
    assert.equal(await heading(page), 'Hello, alice')
    assertTidy('home', await screenshots(page, 'home'))
  })

  await t.test('alice: no schema selected, then the header selector switches between acme and globex', async () => {
    const { page } = alice
    assert.equal(await visit(page, `${base}/app/items`), 400)
    assert.equal(await heading(page), 'No schema selected')
    assert.match(await status(page), /No schema selected/)
    assertTidy('no-schema', await screenshots(page, 'no-schema'))
    assert.deepEqual(await offered(page), ['No schema', 'Acme Corporation', 'Globex'])

    assert.equal(await switchTo(page, 'Acme Corporation'), 200)
    assert.equal(new URL(page.url()).pathname, '/app/items')
    assert.match(await status(page), /^Showing data from Acme Corporation \(acme\)$/)
    assert.deepEqual(await itemTitles(page), ['Anvil', 'Rocket skates'])

    // by keyboard: the skip link comes first; then the selector, arrow down to Globex, Tab to Switch, Enter
    await page.keyboard.press('Tab')
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to main content')
    await selector(page).focus()
    await page.keyboard.press('ArrowDown')
    await page.keyboard.press('Tab')
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Switch')
    assert.notEqual(await page.evaluate(() => getComputedStyle(document.activeElement as Element).outlineStyle), 'none', 'focus is visible')
    await navigation(page, async () => { await page.keyboard.press('Enter') })
    assert.match(await status(page), /^Showing data from Globex \(globex\)$/)
    assert.deepEqual(await itemTitles(page), ['Doomsday device'], "globex's items only")

    assert.equal(await switchTo(page, 'Acme Corporation'), 200)
    assert.deepEqual(await itemTitles(page), ['Anvil', 'Rocket skates'], "acme's items only")
  })

  await t.test('alice creates an item; an invalid title re-renders the form with the message', async () => {
    const { page } = alice
    await navigation(page, async () => { await page.getByRole('link', { name: 'New item' }).click() })
    await page.getByLabel('Title').fill('   ')
    assert.equal(await navigation(page, async () => { await page.getByRole('button', { name: 'Create item' }).click() }), 400)
    assert.match(await page.getByRole('alert').innerText(), /Enter a title/)
    assert.equal(await page.getByLabel('Title').getAttribute('aria-invalid'), 'true')
    await page.getByLabel('Title').fill('Giant magnet')
    assert.equal(await navigation(page, async () => { await page.getByRole('button', { name: 'Create item' }).click() }), 200)
    assert.equal(await heading(page), 'Giant magnet')
    assert.match(await page.getByRole('status').innerText(), /Created “Giant magnet” in Acme Corporation/)
    assert.match(await mainText(page), /created by alice/)
    await visit(page, `${base}/app/items`)
    assert.deepEqual(await itemTitles(page), ['Anvil', 'Rocket skates', 'Giant magnet'])
    assertTidy('items', await screenshots(page, 'items'))
    await page.screenshot({ path: `${SCREENSHOT_DIR}readme-items-1280x800.png` }) // the README's (example/screenshot.png)
  })

  await t.test('the audit log lists the new item, and its link opens it in acme even after switching away', async () => {
    const { page } = alice
    await navigation(page, async () => { await header(page).getByRole('link', { name: 'Audit log' }).click() })
    const link = page.getByRole('link', { name: 'Giant magnet' })
    magnetLink = await link.getAttribute('href') ?? ''
    assert.match(magnetLink, /^\/app\/items\/3\?__schema=acme$/)
    assert.match(await mainText(page), /Entries of Acme Corporation/)
    assertTidy('audit', await screenshots(page, 'audit'))

    await switchTo(page, 'Globex')
    assert.match(await status(page), /Showing data from Globex/)
    assert.doesNotMatch(await mainText(page), /Giant magnet/, "globex's log does not show acme's entries")
    assert.equal(await visit(page, `${base}/app/items/3`), 404, 'there is no item 3 in globex')
    assert.match(await mainText(page), /There is no item 3 in Globex/)

    await visit(page, `${base}/app/audit`)
    await page.getByLabel('Show entries of').selectOption({ label: 'Acme Corporation' })
    await navigation(page, async () => { await page.getByRole('button', { name: 'Show' }).click() })
    assert.equal(await navigation(page, async () => { await page.getByRole('link', { name: 'Giant magnet' }).click() }), 200)
    assert.equal(new URL(page.url()).pathname + new URL(page.url()).search, magnetLink)
    assert.equal(await heading(page), 'Giant magnet')
    assert.match(await status(page), /Showing data from Acme Corporation \(acme\) for this page only .* Your selected schema is Globex/)
    assertTidy('item-linked', await screenshots(page, 'item-linked'))
    await visit(page, `${base}/app/items`)
    assert.match(await status(page), /^Showing data from Globex/, 'the link did not change the selection')
    assert.deepEqual(await itemTitles(page), ['Doomsday device'])
  })

  await t.test('bob is not offered acme, and a crafted switch or schema link to it is refused with the reason', async () => {
    const { page } = bob
    await logIn(page, base, 'bob')
    assert.match(await status(page), /^Showing data from Globex/, "bob's only schema is selected for him")
    assert.deepEqual(await offered(page), ['No schema', 'Globex'])

    const crafted = await craftedSwitch(page, 'acme')
    assert.equal(crafted, 403)
    assert.equal(await heading(page), 'Schema not allowed')
    assert.match(await mainText(page), /You may not use schema "acme": you are not a member of it/)
    assert.match(await mainText(page), /FST_BH_FORBIDDEN_SCHEMA/)
    assertTidy('forbidden', await screenshots(page, 'forbidden'))

    assert.equal(await visit(page, `${base}${magnetLink}`), 403, 'the audit link does not open acme for bob')
    assert.equal(await heading(page), 'Schema not allowed')
    await visit(page, `${base}/app/items`)
    assert.match(await status(page), /^Showing data from Globex/)
  })

  await t.test('cross-site POSTs are refused', async () => {
    const cookie = await cookieHeader(bob.context)
    const home = await (await fetch(`${base}/`, { headers: { cookie } })).text()
    const token = /name="_csrf" value="([^"]+)"/.exec(home)?.[1] ?? ''
    assert.notEqual(token, '')
    const post = async (headers: Record<string, string>, body: string) => await fetch(`${base}/__change_schema__`, {
      method: 'POST', redirect: 'manual', body, headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', ...headers }
    })
    const form = new URLSearchParams({ _csrf: token, schema: 'globex', next: '/app/items' }).toString()
    const foreign = await post({ origin: 'https://evil.example' }, form)
    assert.equal(foreign.status, 403)
    assert.match(await foreign.text(), /Request from another site refused/)
    assert.equal((await post({ origin: base }, form)).status, 303, 'the same request from this site goes through')
    const noToken = await post({ origin: base }, new URLSearchParams({ schema: 'globex', next: '/' }).toString())
    assert.equal(noToken.status, 403)
    assert.match(await noToken.text(), /Form expired/)

    // a real cross-site form: a page on http://localhost:<port> posting to http://127.0.0.1:<port>
    const evil = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html')
      res.end(`<form method="post" action="${base}/__change_schema__"><input name="schema" value=""><input name="next" value="/"></form>
        <script>document.forms[0].submit()</script>`)
    })
    evil.listen(0, '127.0.0.1')
    await once(evil, 'listening')
    t.after(() => { evil.close() })
    const { page } = bob
    const response = page.waitForResponse(`${base}/__change_schema__`)
    await page.goto(`http://localhost:${(evil.address() as AddressInfo).port}/`)
    const refused = await response
    assert.equal(refused.status(), 403)
    assert.equal(await refused.request().headerValue('sec-fetch-site'), 'cross-site')
    assert.doesNotMatch(await refused.request().headerValue('cookie') ?? '', /sessionId=/, 'SameSite=Lax: no session cookie on a cross-site POST')
    await page.waitForURL(`${base}/__change_schema__`)
    assert.equal(await heading(page), 'Form expired')
    await visit(page, `${base}/app/items`)
    assert.match(await status(page), /^Showing data from Globex/, "bob's selection did not change")
  })

  await t.test('admin creates a schema, grants bob, and bob reaches it; deactivate, reactivate, revoke, drop', async () => {
    const { page } = admin
    await logIn(page, base, 'admin')
    assert.match(await header(page).innerText(), /Signed in as admin \(admin\)/)
    assert.deepEqual(await offered(page), ['No schema', 'Acme Corporation', 'Globex'], 'admins may select every active schema')
    await navigation(page, async () => { await header(page).getByRole('link', { name: 'Schemas' }).click() })
    assert.equal(await heading(page), 'Schemas')

    await page.getByLabel('Schema name').fill('Initech Inc')
    assert.equal(await navigation(page, async () => { await page.getByRole('button', { name: 'Create schema' }).click() }), 400)
    assert.match(await mainText(page), /The schema name must start with a lowercase letter/)
    await page.getByLabel('Schema name').fill('initech')
    await page.getByLabel('Display name').fill('Initech')
    assert.equal(await navigation(page, async () => { await page.getByRole('button', { name: 'Create schema' }).click() }), 200)
    assert.match(await page.getByRole('status').innerText(), /Created schema Initech \(initech\)/)

    await page.getByLabel('Add a member to Initech').fill('nobody')
    assert.equal(await navigation(page, async () => { await page.getByRole('button', { name: 'Grant access to Initech' }).click() }), 400)
    assert.match(await mainText(page), /There is no user named “nobody”/)
    await page.getByLabel('Add a member to Initech').fill('bob')
    await navigation(page, async () => { await page.getByRole('button', { name: 'Grant access to Initech' }).click() })
    assert.match(await page.getByRole('status').innerText(), /bob may now use Initech/)
    assertTidy('admin', await screenshots(page, 'admin'))

    await visit(bob.page, `${base}/app/items`)
    assert.deepEqual(await offered(bob.page), ['No schema', 'Globex', 'Initech'])
    assert.equal(await switchTo(bob.page, 'Initech'), 200)
    assert.match(await status(bob.page), /^Showing data from Initech \(initech\)$/)
    assert.match(await mainText(bob.page), /No items in Initech yet/)

    await navigation(page, async () => { await page.getByRole('button', { name: 'Deactivate Initech' }).click() })
    assert.match(await page.getByRole('status').innerText(), /Deactivated initech/)
    await visit(bob.page, `${base}/app/items`)
    assert.deepEqual(await offered(bob.page), ['No schema', 'Globex'], 'a deactivated schema is not offered')
    assert.equal(await craftedSwitch(bob.page, 'initech'), 404)
    assert.equal(await heading(bob.page), 'Schema deactivated')
    assert.equal(await craftedSwitch(bob.page, 'nosuch'), 404)
    assert.equal(await heading(bob.page), 'Schema not found')
    await visit(bob.page, `${base}/app/items`)
    assert.match(await status(bob.page), /^Showing data from Globex/, 'his other schema, his only one now, is selected')
    await navigation(page, async () => { await page.getByRole('button', { name: 'Reactivate Initech' }).click() })
    await navigation(page, async () => { await page.getByRole('button', { name: 'Revoke bob from Initech' }).click() })
    assert.match(await page.getByRole('status').innerText(), /bob may no longer use Initech/)
    await visit(bob.page, `${base}/app/items`)
    assert.deepEqual(await offered(bob.page), ['No schema', 'Globex'])

    await navigation(page, async () => { await page.getByRole('link', { name: 'Drop… Initech' }).click() })
    assert.equal(await heading(page), 'Drop Initech?')
    assertTidy('drop', await screenshots(page, 'drop'))
    await navigation(page, async () => { await page.getByRole('button', { name: 'Drop initech' }).click() })
    assert.match(await page.getByRole('status').innerText(), /Dropped Initech \(initech\)/)
    assert.equal(await bh.getSchema('initech'), null)

    await navigation(page, async () => { await header(page).getByRole('link', { name: 'Audit log' }).click() })
    await page.getByLabel('All schemas').check()
    await navigation(page, async () => { await page.getByRole('button', { name: 'Show' }).click() })
    assert.match(await mainText(page), /Entries of every schema/)
    assert.equal(await page.getByRole('link', { name: 'Giant magnet' }).getAttribute('href'), magnetLink)

    assert.equal(await visit(bob.page, `${base}/app/admin`), 403, 'bob is no admin')
    assert.equal(await heading(bob.page), 'Administrators only')
  })

  t.diagnostic(`browser test took ${Date.now() - started} ms`)
})
