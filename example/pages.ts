/**
 * The example's HTML pages: home, items of the active schema (list, create, edit, delete), the
 * audit log, and the admins' schema page. Login and logout are in app.ts (they serve JSON too).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ValidationError } from 'sequelize'
import { BoardinghouseErrors, schemaNameProblem, type AuditEntryWithLink, type SchemaInfo } from '../plugin/index.js'
import { html, raw, type Html } from './html.js'
import type { ExampleModels, ItemAttributes, UserAttributes } from './models/index.js'
import { switchButton, csrfField, textField, time, type Viewer } from './views.js'
import { ExampleErrors, field, flash, sendPage, viewerOf } from './web.js'

export const TITLE_MAX = 200
const DISPLAY_NAME_MAX = 100

const withSchema = { access: 'user', boardinghouse: { requireSchema: true } } as const
const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'integer', minimum: 1, maximum: 2147483647 } }
} as const
const schemaParams = {
  type: 'object',
  required: ['schema'],
  properties: { schema: { type: 'string', minLength: 1, maxLength: 64 } }
} as const

interface IdParams { id: number }
interface SchemaParams { schema: string }

/** Why a title is not acceptable, or null. */
export function titleProblem (title: string): string | null {
  if (title === '') return 'Enter a title.'
  if (title.length > TITLE_MAX) return `The title must be at most ${TITLE_MAX} characters (it has ${title.length}).`
  return null
}

function vh (text: string): Html {
  return html`<span class="vh">${text}</span>`
}

/** Usernames of user ids (as the audit log and memberships give them: text). */
async function usernamesOf (models: ExampleModels, ids: Iterable<string | null>): Promise<Map<string, string>> {
  const wanted = [...new Set([...ids].filter((id): id is string => id !== null && /^[0-9]{1,9}$/.test(id)))].map(Number)
  if (wanted.length === 0) return new Map()
  const rows = await models.User.findAll({ where: { id: wanted }, attributes: ['id', 'username'] })
  return new Map(rows.map((r) => [String(r.get('id')), String(r.get('username'))]))
}

function itemOf (row: { get: (options: { plain: true }) => unknown }): ItemAttributes {
  return row.get({ plain: true }) as ItemAttributes
}

export function registerPages (app: FastifyInstance, models: ExampleModels): void {
  const { Item, User } = models
  const bh = app.boardinghouse

  // ------------------------------------------------------------------ home

  app.get('/', async (request, reply) => {
    const tenancy = request.boardinghouse
    if (tenancy.userId === null) return await reply.redirect('/login', 303)
    const v = viewerOf(request, reply)
    const schemas = tenancy.schemas
    const content = html`
      <p>This example keeps each customer's data in a PostgreSQL schema of its own. The header bar shows
      which schema you are looking at; the selector there switches to another one.</p>
      <h2>${tenancy.isAdmin ? 'All active schemas' : 'Your schemas'}</h2>
      ${schemas.length === 0
        ? html`<p>${tenancy.isAdmin ? html`There is no active schema: <a href="/app/admin">create one</a>.` : 'You are not a member of any schema yet: ask an administrator to add you to one.'}</p>`
        : html`<ul class="cards">${schemas.map((s) => html`<li class="card">
            <h3>${s.name}</h3>
            <p class="muted code">${s.schema}</p>
            <div class="actions">${request.tenant?.schema === s.schema
              ? html`<span class="badge on">Selected</span> <a href="/app/items">Open its items</a>`
              : switchButton(v, s, '/app/items', `Use ${s.name}`)}</div>
          </li>`)}</ul>`}
      <h2>Pages</h2>
      <ul>
        <li><a href="/app/items">Items</a>: the items of the selected schema.</li>
        <li><a href="/app/audit">Audit log</a>: who changed what, with links to each object in its schema.</li>
        ${tenancy.isAdmin ? html`<li><a href="/app/admin">Schemas</a>: create, deactivate and drop schemas; add and remove members.</li>` : null}
      </ul>`
    return await sendPage(request, reply, { title: `Hello, ${request.session.get('username') ?? ''}`, section: 'home', content })
  })

  // ------------------------------------------------------------------ items

  function itemForm (v: Viewer, o: { action: string, title: string, error: string | null, submit: string, cancel: string }): Html {
    return html`<form class="stack card" method="post" action="${o.action}" novalidate>
      ${csrfField(v)}
      ${o.error !== null ? html`<p class="error" role="alert">${o.error}</p>` : null}
      ${textField({ name: 'title', label: 'Title', value: o.title, error: o.error, required: true, maxlength: TITLE_MAX, autofocus: true, hint: `1 to ${TITLE_MAX} characters.` })}
      <div class="actions"><button type="submit">${o.submit}</button> <a href="${o.cancel}">Cancel</a></div>
    </form>`
  }

  async function findItem (request: FastifyRequest, id: number): Promise<ItemAttributes> {
    const row = await Item.findByPk(id)
    if (row === null) throw new ExampleErrors.ITEM_NOT_FOUND(String(id), request.tenant?.name ?? 'this schema')
    return itemOf(row)
  }

  app.get('/app/items', { config: withSchema }, async (request, reply) => {
    const v = viewerOf(request, reply)
    const items = (await Item.findAll({ order: [['id', 'ASC']] })).map(itemOf)
    const content = html`
      <div class="actions"><a class="button" href="/app/items/new">New item</a></div>
      ${items.length === 0
        ? html`<p>No items in ${request.tenant?.name} yet.</p>`
        : html`<table class="stack">
            <caption class="vh">Items of ${request.tenant?.name}</caption>
            <thead><tr><th scope="col">Title</th><th scope="col">Created</th><th scope="col">Actions</th></tr></thead>
            <tbody>${items.map((i) => html`<tr>
              <td data-label="Title"><a href="/app/items/${i.id}">${i.title}</a></td>
              <td data-label="Created">${time(i.createdAt)}</td>
              <td data-label="Actions"><div class="actions tight">
                <a href="/app/items/${i.id}/edit">Edit${vh(` ${i.title}`)}</a>
                <form method="post" action="/app/items/${i.id}/delete">${csrfField(v)}<button type="submit" class="secondary">Delete${vh(` ${i.title}`)}</button></form>
              </div></td>
            </tr>`)}</tbody>
          </table>`}`
    return await sendPage(request, reply, { title: 'Items', section: 'items', content })
  })

  app.get('/app/items/new', { config: withSchema }, async (request, reply) => {
    const v = viewerOf(request, reply)
    return await sendPage(request, reply, {
      title: 'New item',
      section: 'items',
      content: itemForm(v, { action: '/app/items', title: '', error: null, submit: 'Create item', cancel: '/app/items' })
    })
  })

  app.post('/app/items', { config: withSchema }, async (request, reply) => {
    const title = field(request.body, 'title').trim()
    const problem = titleProblem(title)
    if (problem === null) {
      try {
        const item = itemOf(await Item.create({ title }))
        flash(request, `Created “${item.title}” in ${request.tenant?.name ?? ''}.`)
        return await reply.redirect(`/app/items/${item.id}`, 303)
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err
      }
    }
    return await sendPage(request, reply, {
      status: 400,
      title: 'New item',
      section: 'items',
      content: itemForm(viewerOf(request, reply), { action: '/app/items', title, error: problem ?? 'The title is not valid.', submit: 'Create item', cancel: '/app/items' })
    })
  })

  app.get<{ Params: IdParams }>('/app/items/:id', { config: withSchema, schema: { params: idParams } }, async (request, reply) => {
    const v = viewerOf(request, reply)
    const item = await findItem(request, request.params.id)
    const history = await request.boardinghouse.auditLog({ model: 'Item', objectPk: item.id, limit: 20 })
    const names = await usernamesOf(models, history.map((e) => e.userId))
    const content = html`
      <dl class="facts card">
        <dt>Title</dt><dd>${item.title}</dd>
        <dt>Schema</dt><dd>${request.tenant?.name} <span class="code muted">(${request.tenant?.schema})</span></dd>
        <dt>Created</dt><dd>${time(item.createdAt)}</dd>
        <dt>Updated</dt><dd>${time(item.updatedAt)}</dd>
      </dl>
      ${v.linked
        ? html`<p>This page was opened from a link, in ${request.tenant?.name}. To edit or delete the item, switch to that schema with the button above.</p>`
        : html`<div class="actions">
            <a class="button" href="/app/items/${item.id}/edit">Edit${vh(` ${item.title}`)}</a>
            <form method="post" action="/app/items/${item.id}/delete">${csrfField(v)}<button type="submit" class="danger">Delete${vh(` ${item.title}`)}</button></form>
            <a href="/app/items">Back to the items</a>
          </div>`}
      <h2>History</h2>
      ${history.length === 0
        ? html`<p class="muted">No recorded changes.</p>`
        : html`<ul>${history.map((e) => html`<li>${time(e.actionTime)}: ${e.action === 'create' ? 'created' : e.action === 'update' ? 'changed' : 'deleted'} by ${e.userId === null ? 'the system' : names.get(e.userId) ?? `user ${e.userId}`}${e.changedFields.length > 0 && e.action === 'update' ? ` (${e.changedFields.filter((f) => f !== 'updatedAt').join(', ')})` : ''}</li>`)}</ul>`}`
    return await sendPage(request, reply, { title: item.title, section: 'items', content, switchNext: '/app/items' })
  })

  app.get<{ Params: IdParams }>('/app/items/:id/edit', { config: withSchema, schema: { params: idParams } }, async (request, reply) => {
    const item = await findItem(request, request.params.id)
    return await sendPage(request, reply, {
      title: `Edit “${item.title}”`,
      section: 'items',
      switchNext: '/app/items',
      content: itemForm(viewerOf(request, reply), { action: `/app/items/${item.id}`, title: item.title, error: null, submit: 'Save', cancel: `/app/items/${item.id}` })
    })
  })

  app.post<{ Params: IdParams }>('/app/items/:id', { config: withSchema, schema: { params: idParams } }, async (request, reply) => {
    const item = await findItem(request, request.params.id)
    const title = field(request.body, 'title').trim()
    const problem = titleProblem(title)
    if (problem === null) {
      try {
        await Item.update({ title }, { where: { id: item.id } })
        flash(request, `Saved “${title}”.`)
        return await reply.redirect(`/app/items/${item.id}`, 303)
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err
      }
    }
    return await sendPage(request, reply, {
      status: 400,
      title: `Edit “${item.title}”`,
      section: 'items',
      switchNext: '/app/items',
      content: itemForm(viewerOf(request, reply), { action: `/app/items/${item.id}`, title, error: problem ?? 'The title is not valid.', submit: 'Save', cancel: `/app/items/${item.id}` })
    })
  })

  app.post<{ Params: IdParams }>('/app/items/:id/delete', { config: withSchema, schema: { params: idParams } }, async (request, reply) => {
    const item = await findItem(request, request.params.id)
    await Item.destroy({ where: { id: item.id } })
    flash(request, `Deleted “${item.title}” from ${request.tenant?.name ?? ''}.`)
    return await reply.redirect('/app/items', 303)
  })

  // ------------------------------------------------------------------ audit log

  app.get<{ Querystring: { schema?: string, all?: string } }>('/app/audit', {
    config: { access: 'user' },
    schema: { querystring: { type: 'object', properties: { schema: { type: 'string', maxLength: 64 }, all: { type: 'string', maxLength: 8 } } } }
  }, async (request, reply) => {
    const tenancy = request.boardinghouse
    const all = tenancy.isAdmin && request.query.all === '1'
    const chosen = request.query.schema !== undefined && request.query.schema !== '' ? request.query.schema : null
    // The library checks that this user may read the chosen schema's entries (403/404 otherwise).
    const entries: AuditEntryWithLink[] = await tenancy.auditLog(all ? { allSchemas: true, limit: 100 } : chosen !== null ? { schema: chosen, limit: 100 } : { limit: 100 })
    const names = await usernamesOf(models, entries.map((e) => e.userId))
    const schemaNames = new Map((await bh.listSchemas({ includeInactive: true })).map((s) => [s.schema, s.name]))
    const shown = all ? null : chosen ?? request.tenant?.schema ?? null
    const selectedSchema = chosen ?? request.tenant?.schema ?? null
    const summary = all
      ? 'Entries of every schema, newest first.'
      : shown !== null
        ? `Entries of ${schemaNames.get(shown) ?? shown}, newest first.`
        : 'No schema selected: only entries of shared data are shown. Choose a schema to see its entries.'
    const content = html`
      <form class="inline narrow card" method="get" action="/app/audit">
        <div class="field"><label for="audit-schema">Show entries of</label>
          <select id="audit-schema" name="schema">
            ${selectedSchema === null ? html`<option value="" selected>No schema (shared data only)</option>` : null}
            ${tenancy.schemas.map((s) => html`<option value="${s.schema}"${s.schema === selectedSchema ? raw(' selected') : ''}>${s.name}</option>`)}
          </select></div>
        ${tenancy.isAdmin ? html`<div class="field"><label><input type="checkbox" name="all" value="1"${all ? raw(' checked') : ''}> All schemas</label></div>` : null}
        <button type="submit">Show</button>
      </form>
      <p>${summary}</p>
      ${entries.length === 0
        ? html`<p class="muted">No entries.</p>`
        : html`<table class="stack">
          <caption class="vh">${summary}</caption>
          <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">Object</th><th scope="col">Schema</th><th scope="col">Fields</th></tr></thead>
          <tbody>${entries.map((e) => html`<tr>
            <td data-label="When">${time(e.actionTime)}</td>
            <td data-label="Who">${e.userId === null ? html`<span class="muted">system</span>` : names.get(e.userId) ?? `user ${e.userId}`}</td>
            <td data-label="Action">${e.action}</td>
            <td data-label="Object">${e.link !== null ? html`<a href="${e.link}">${e.objectRepr ?? e.objectPk}</a>` : e.objectRepr ?? e.objectPk} <span class="muted">${e.model} #${e.objectPk}</span></td>
            <td data-label="Schema">${e.schema === null ? html`<span class="muted">shared</span>` : schemaNames.get(e.schema) ?? e.schema}</td>
            <td data-label="Fields">${e.changedFields.filter((f) => f !== 'createdAt' && f !== 'updatedAt' && f !== 'id').join(', ')}</td>
          </tr>`)}</tbody>
        </table>`}`
    return await sendPage(request, reply, { title: 'Audit log', section: 'audit', content })
  })

  // ------------------------------------------------------------------ schemas (admins)

  interface AdminProblems {
    create?: { schema: string, name: string, schemaError: string | null, nameError: string | null }
    grant?: { schema: string, username: string, error: string }
  }

  async function adminPage (request: FastifyRequest, reply: FastifyReply, problems: AdminProblems = {}, status = 200): Promise<FastifyReply> {
    const v = viewerOf(request, reply)
    const schemas: SchemaInfo[] = await bh.listSchemas({ includeInactive: true })
    const members = new Map<string, string[]>()
    for (const s of schemas) members.set(s.schema, await bh.membersOf(s.schema))
    const names = await usernamesOf(models, [...members.values()].flat())
    const create = problems.create
    const content = html`
      <section class="card" aria-labelledby="new-schema">
        <h2 id="new-schema">New schema</h2>
        <form class="inline" method="post" action="/app/admin/schemas">
          ${csrfField(v)}
          ${textField({ name: 'schema', id: 'new-schema-name', label: 'Schema name', value: create?.schema ?? '', error: create?.schemaError ?? null, required: true, maxlength: 63, hint: 'a-z, 0-9 and _, starting with a letter', autocomplete: 'off' })}
          ${textField({ name: 'name', id: 'new-schema-display', label: 'Display name', value: create?.name ?? '', error: create?.nameError ?? null, maxlength: DISPLAY_NAME_MAX, hint: 'Shown to people; defaults to the schema name', autocomplete: 'off' })}
          <button type="submit">Create schema</button>
        </form>
      </section>
      <h2>All schemas</h2>
      ${schemas.length === 0 ? html`<p>No schemas yet.</p>` : null}
      <ul class="cards wide">${schemas.map((s) => {
        const ids = members.get(s.schema) ?? []
        const grant = problems.grant?.schema === s.schema ? problems.grant : undefined
        return html`<li class="card" id="schema-${s.schema}">
          <h3>${s.name} <span class="badge ${s.isActive ? 'on' : 'off'}">${s.isActive ? 'active' : 'deactivated'}</span></h3>
          <p class="muted code">${s.schema}</p>
          <p><strong>Members</strong></p>
          ${ids.length === 0
            ? html`<p class="muted">No members.</p>`
            : html`<ul class="members">${ids.map((id) => {
                const username = names.get(id) ?? id
                return html`<li>${username}<form method="post" action="/app/admin/schemas/${s.schema}/revoke">${csrfField(v)}<input type="hidden" name="username" value="${username}"><button type="submit" class="secondary">Revoke${vh(` ${username} from ${s.name}`)}</button></form></li>`
              })}</ul>`}
          <form class="inline" method="post" action="/app/admin/schemas/${s.schema}/grant">
            ${csrfField(v)}
            ${textField({ name: 'username', id: `grant-${s.schema}`, label: `Add a member to ${s.name}`, value: grant?.username ?? '', error: grant?.error ?? null, required: true, maxlength: 100, autocomplete: 'off', hint: 'User name' })}
            <button type="submit">Grant${vh(` access to ${s.name}`)}</button>
          </form>
          <div class="actions">
            <form method="post" action="/app/admin/schemas/${s.schema}/${s.isActive ? 'deactivate' : 'activate'}">${csrfField(v)}<button type="submit" class="secondary">${s.isActive ? 'Deactivate' : 'Reactivate'}${vh(` ${s.name}`)}</button></form>
            <a class="button secondary" href="/app/admin/schemas/${s.schema}/drop">Drop…${vh(` ${s.name}`)}</a>
          </div>
        </li>`
      })}</ul>`
    return await sendPage(request, reply, { status, title: 'Schemas', section: 'admin', content })
  }

  const adminOnly = { access: 'admin' } as const

  app.get('/app/admin', { config: adminOnly }, async (request, reply) => await adminPage(request, reply))

  app.post('/app/admin/schemas', { config: adminOnly }, async (request, reply) => {
    const schema = field(request.body, 'schema').trim()
    const name = field(request.body, 'name').trim()
    const nameProblem = schemaNameProblem(schema)
    const problems: AdminProblems['create'] = {
      schema,
      name,
      schemaError: schema === '' ? 'Enter a schema name.' : nameProblem !== null ? `The schema name ${nameProblem}.` : null,
      nameError: name.length > DISPLAY_NAME_MAX ? `The display name must be at most ${DISPLAY_NAME_MAX} characters.` : null
    }
    if (problems.schemaError === null && problems.nameError === null) {
      try {
        const created = await bh.createSchema(schema, { name: name === '' ? schema : name })
        flash(request, `Created schema ${created.name} (${created.schema}).`)
        return await reply.redirect('/app/admin', 303)
      } catch (err) {
        const code = (err as { code?: unknown }).code
        if (code !== 'FST_BH_SCHEMA_EXISTS' && code !== 'FST_BH_INVALID_SCHEMA_NAME' && code !== 'FST_BH_TEMPLATE_SCHEMA') throw err
        problems.schemaError = code === 'FST_BH_SCHEMA_EXISTS' ? `A schema named ${schema} exists already.` : (err as Error).message
      }
    }
    return await adminPage(request, reply, { create: problems }, problems.schemaError !== null && problems.schemaError.includes('exists already') ? 409 : 400)
  })

  app.post<{ Params: SchemaParams }>('/app/admin/schemas/:schema/deactivate', { config: adminOnly, schema: { params: schemaParams } }, async (request, reply) => {
    await bh.deleteSchema(request.params.schema)
    flash(request, `Deactivated ${request.params.schema}: nobody can select it until it is reactivated; its data is kept.`)
    return await reply.redirect('/app/admin', 303)
  })

  app.post<{ Params: SchemaParams }>('/app/admin/schemas/:schema/activate', { config: adminOnly, schema: { params: schemaParams } }, async (request, reply) => {
    await bh.activateSchema(request.params.schema)
    flash(request, `Reactivated ${request.params.schema}.`)
    return await reply.redirect('/app/admin', 303)
  })

  async function existingSchema (name: string): Promise<SchemaInfo> {
    const info = await bh.getSchema(name)
    // the library's own error, so the page says what the switch route would
    if (info === null) throw new BoardinghouseErrors.SCHEMA_NOT_FOUND(name)
    return info
  }

  app.get<{ Params: SchemaParams }>('/app/admin/schemas/:schema/drop', { config: adminOnly, schema: { params: schemaParams } }, async (request, reply) => {
    const v = viewerOf(request, reply)
    const info = await existingSchema(request.params.schema)
    const count = await bh.runInSchema(info.schema, async () => await Item.count(), { includeInactive: true })
    const content = html`
      <div class="error" role="alert"><p>Dropping <strong>${info.name}</strong> (<span class="code">${info.schema}</span>) deletes the schema with its
      ${count} item${count === 1 ? '' : 's'}, its memberships and its migration history. This cannot be undone.
      To hide it but keep its data, deactivate it instead.</p></div>
      <div class="actions">
        <form method="post" action="/app/admin/schemas/${info.schema}/drop">${csrfField(v)}<button type="submit" class="danger">Drop ${info.schema}</button></form>
        <a href="/app/admin">Cancel</a>
      </div>`
    return await sendPage(request, reply, { title: `Drop ${info.name}?`, section: 'admin', content })
  })

  app.post<{ Params: SchemaParams }>('/app/admin/schemas/:schema/drop', { config: adminOnly, schema: { params: schemaParams } }, async (request, reply) => {
    const info = await existingSchema(request.params.schema)
    await bh.deleteSchema(info.schema, { drop: true })
    flash(request, `Dropped ${info.name} (${info.schema}) and all its data.`)
    return await reply.redirect('/app/admin', 303)
  })

  async function userNamed (username: string): Promise<UserAttributes | null> {
    if (username === '' || username.length > 100) return null
    const row = await User.findOne({ where: { username } })
    return row === null ? null : row.get({ plain: true }) as UserAttributes
  }

  app.post<{ Params: SchemaParams }>('/app/admin/schemas/:schema/grant', { config: adminOnly, schema: { params: schemaParams } }, async (request, reply) => {
    const info = await existingSchema(request.params.schema)
    const username = field(request.body, 'username').trim()
    const user = await userNamed(username)
    if (user === null) {
      const error = username === '' ? 'Enter a user name.' : `There is no user named “${username}”.`
      return await adminPage(request, reply, { grant: { schema: info.schema, username, error } }, 400)
    }
    await bh.grant(info.schema, user.id)
    flash(request, `${user.username} may now use ${info.name}.`)
    return await reply.redirect('/app/admin', 303)
  })

  app.post<{ Params: SchemaParams }>('/app/admin/schemas/:schema/revoke', { config: adminOnly, schema: { params: schemaParams } }, async (request, reply) => {
    const info = await existingSchema(request.params.schema)
    const user = await userNamed(field(request.body, 'username').trim())
    const revoked = user !== null && await bh.revoke(info.schema, user.id)
    flash(request, revoked && user !== null ? `${user.username} may no longer use ${info.name}.` : 'Nothing to revoke: that user was not a member.')
    return await reply.redirect('/app/admin', 303)
  })
}
