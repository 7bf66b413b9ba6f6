/**
 * The example's page layout: a header bar (user, active schema, schema selector), landmarks, a
 * skip link, and a small inline stylesheet. Every value goes through the escaping `html` tag.
 */
import { createHash } from 'node:crypto'
import { html, raw, type Html, type HtmlValue } from './html.js'

/** A schema as the views show it. */
export interface SchemaView {
  schema: string
  name: string
}

/** Who is looking, and in which schema: what the header bar shows. */
export interface Viewer {
  username: string | null
  isAdmin: boolean
  /** Schemas this user may select. */
  schemas: readonly SchemaView[]
  /** The schema this request runs in. */
  tenant: SchemaView | null
  /** The session's selection (differs from `tenant` on a page opened through a schema link). */
  selected: SchemaView | null
  /** True when the page was opened in `tenant` through a schema link (audit log), for this request only. */
  linked: boolean
  /** A CSRF token for this session (created on first use). */
  csrf: () => string
  /** The request path, without the query. */
  path: string
}

export type Section = 'home' | 'items' | 'audit' | 'admin' | 'login' | null

export interface PageOptions {
  title: string
  content: Html
  section?: Section
  /** Where the schema selector returns to. @default the current path */
  switchNext?: string
  /** A one-off message (after a redirect). */
  flash?: string | null
}

const STYLES = `
:root{--fg:#1b1f24;--muted:#57606a;--bg:#f6f8fa;--card:#fff;--line:#d0d7de;--accent:#0b5cad;--bar:#1f2d3d;--ok-bg:#dafbe1;--ok-fg:#0f5323;--warn-bg:#fff8c5;--warn-fg:#5c4400;--err-bg:#ffebe9;--err-fg:#a40e26;--danger:#b42318;--focus:#f59e0b;color-scheme:light}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--accent)}
:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
.skip{position:absolute;left:.5rem;top:-4rem;background:#fff;color:var(--fg);padding:.5rem .75rem;border-radius:6px;z-index:10}
.skip:focus{top:.5rem}
.bar{background:var(--bar);color:#fff}
.wrap{max-width:76rem;margin:0 auto;padding-left:1rem;padding-right:1rem}
.bar .wrap{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1rem;padding-top:.6rem;padding-bottom:.6rem}
.brand{color:#fff;font-weight:700;font-size:1.1rem;text-decoration:none}
.bar nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.25rem .9rem}
.bar nav a{color:#dce6f0;text-decoration:none;border-bottom:2px solid transparent;padding:.15rem 0}
.bar nav a:hover,.bar nav a[aria-current=page]{color:#fff;border-bottom-color:#fff}
.tools{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem .75rem;margin-left:auto}
.switch{display:flex;align-items:center;gap:.4rem;margin:0}
.switch label{font-weight:600}
.switch select{max-width:14rem}
.user{display:flex;align-items:center;gap:.5rem;margin:0}
.user form{margin:0}
.status{border-bottom:1px solid var(--line)}
.status .wrap{display:flex;flex-wrap:wrap;align-items:center;gap:.35rem 1rem;padding-top:.5rem;padding-bottom:.5rem}
.status p{margin:0}
.status.on{background:var(--ok-bg);color:var(--ok-fg)}
.status.off{background:var(--warn-bg);color:var(--warn-fg)}
.status.link{background:#ddf4ff;color:#0a3069}
.status form{margin:0}
.status button{padding:.15rem .7rem}
main{display:block;padding-top:1rem;padding-bottom:2rem}
main:focus{outline:none}
h1{font-size:1.6rem;line-height:1.25;margin:.25rem 0 1rem}
h2{font-size:1.2rem;margin:1.5rem 0 .5rem}
code,.code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.9em}
.muted{color:var(--muted)}
.flash{background:var(--ok-bg);color:var(--ok-fg);border:1px solid #8fd3a0;border-radius:6px;padding:.6rem .8rem}
.error{background:var(--err-bg);color:var(--err-fg);border:1px solid #f1a9a9;border-radius:6px;padding:.6rem .8rem}
.error>:first-child,.flash>:first-child{margin-top:0}
.error>:last-child,.flash>:last-child{margin-bottom:0}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem;margin:0 0 1rem}
.card h2,.card h3{margin-top:0}
.cards{display:grid;gap:1rem;grid-template-columns:repeat(auto-fill,minmax(16rem,1fr));padding:0;list-style:none}
.cards.wide{grid-template-columns:repeat(auto-fill,minmax(min(20rem,100%),1fr))}
form.stack{display:grid;gap:.75rem;max-width:28rem}
.field{display:grid;gap:.25rem}
.field label{font-weight:600}
.hint{font-size:.9rem;color:var(--muted);margin:0}
.field .problem{color:var(--err-fg);font-size:.95rem;margin:0}
input[type=text],input[type=password],input[type=search],select{font:inherit;color:var(--fg);background:#fff;border:1px solid #6e7781;border-radius:6px;padding:.4rem .55rem;min-width:0;max-width:100%}
input[aria-invalid=true]{border-color:var(--danger);box-shadow:0 0 0 1px var(--danger)}
button,.button{font:inherit;display:inline-block;border:1px solid var(--accent);background:var(--accent);color:#fff;border-radius:6px;padding:.4rem .9rem;cursor:pointer;text-decoration:none;line-height:1.5}
button.secondary,.button.secondary{background:#fff;color:var(--accent)}
button.danger{background:var(--danger);border-color:var(--danger)}
button.quiet{background:transparent;border-color:#8da2b8;color:#fff;padding:.2rem .6rem}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:.75rem 0}
.actions form{margin:0}
.actions.tight{margin:0}
.vh{position:absolute!important;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.inline{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin:0}
.inline .field{flex:1 1 10rem}
.inline.narrow .field{flex:0 1 22rem}
table{width:100%;border-collapse:collapse;background:var(--card);border:1px solid var(--line);border-radius:8px}
th,td{text-align:left;padding:.5rem .75rem;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#eef1f4;font-weight:600}
td form{display:inline;margin:0}
.badge{display:inline-block;font-size:.8rem;font-weight:600;border-radius:999px;padding:.05rem .55rem;border:1px solid currentColor}
.badge.on{color:var(--ok-fg);background:var(--ok-bg)}
.badge.off{color:#57606a;background:#eaeef2}
ul.members{list-style:none;padding:0;margin:.25rem 0 .75rem;display:flex;flex-wrap:wrap;gap:.5rem}
ul.members li{display:flex;align-items:center;gap:.35rem;background:#eef1f4;border-radius:999px;padding:.1rem .25rem .1rem .75rem}
ul.members button{padding:.05rem .5rem;font-size:.85rem}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:0}
dl.facts dt{font-weight:600}
dl.facts dd{margin:0}
@media (max-width:40rem){
 .tools{margin-left:0;width:100%;justify-content:space-between}
 .switch{flex:1 1 100%}
 .switch select{max-width:none;flex:1 1 auto;min-width:0}
 h1{font-size:1.35rem}
 table.stack,table.stack tbody,table.stack tr,table.stack td{display:block;width:100%}
 table.stack{border:0;background:none}
 table.stack thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
 table.stack tr{background:var(--card);border:1px solid var(--line);border-radius:8px;margin-bottom:.75rem}
 table.stack td{display:flex;gap:.75rem;border:0;padding:.35rem .75rem}
 table.stack td::before{content:attr(data-label);font-weight:600;min-width:5.5rem;color:var(--muted)}
}
`.trim()

/** The Content-Security-Policy of every page: no scripts at all, only this stylesheet, forms to this site. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `style-src 'sha256-${createHash('sha256').update(STYLES).digest('base64')}'`,
  "img-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'"
].join('; ')

export function csrfField (v: Viewer): Html {
  return html`<input type="hidden" name="_csrf" value="${v.csrf()}">`
}

/** A form that selects `schema` (null: none) through the library's switch route, then returns to `next`. */
export function switchButton (v: Viewer, schema: SchemaView | null, next: string, label: string, className = ''): Html {
  return html`<form method="post" action="/__change_schema__">${csrfField(v)}<input type="hidden" name="schema" value="${schema?.schema ?? ''}"><input type="hidden" name="next" value="${next}"><button type="submit" class="${className}">${label}</button></form>`
}

function schemaSelector (v: Viewer, next: string): Html {
  if (v.schemas.length === 0) return html`<p class="switch">No schemas available</p>`
  const current = v.linked ? v.selected?.schema : v.tenant?.schema
  return html`<form class="switch" method="post" action="/__change_schema__">
    ${csrfField(v)}<input type="hidden" name="next" value="${next}">
    <label for="schema-select">Schema</label>
    <select id="schema-select" name="schema" aria-describedby="schema-status">
      <option value=""${current === undefined ? raw(' selected') : ''}>No schema</option>
      ${v.schemas.map((s) => html`<option value="${s.schema}"${s.schema === current ? raw(' selected') : ''}>${s.name}</option>`)}
    </select>
    <button type="submit">Switch</button>
  </form>`
}

function statusBar (v: Viewer): Html {
  if (v.username === null) return html``
  if (v.tenant !== null && v.linked) {
    return html`<div class="status link"><div class="wrap">
      <p id="schema-status">Showing data from <strong>${v.tenant.name}</strong> <span class="code">(${v.tenant.schema})</span> for this page only (opened from a link).
      ${v.selected === null ? 'No schema is selected.' : html`Your selected schema is ${v.selected.name}.`}</p>
      ${switchButton(v, v.tenant, v.path, `Switch to ${v.tenant.name}`, 'secondary')}
    </div></div>`
  }
  if (v.tenant !== null) {
    return html`<div class="status on"><div class="wrap"><p id="schema-status">Showing data from <strong>${v.tenant.name}</strong> <span class="code">(${v.tenant.schema})</span></p></div></div>`
  }
  return html`<div class="status off"><div class="wrap"><p id="schema-status"><strong>No schema selected.</strong>
    ${v.schemas.length > 0 ? 'Choose one with the Schema selector to see its data.' : 'You are not a member of any schema yet: ask an administrator.'}</p></div></div>`
}

function navLink (href: string, label: string, section: Section, current: Section): Html {
  return html`<li><a href="${href}"${section === current ? raw(' aria-current="page"') : ''}>${label}</a></li>`
}

/** A whole page. */
export function layout (v: Viewer, o: PageOptions): string {
  const next = o.switchNext ?? v.path
  const section = o.section ?? null
  const title = v.tenant !== null ? `${o.title} · ${v.tenant.name}` : o.title
  const page = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Boardinghouse example</title>
<style>${raw(STYLES)}</style>
</head>
<body>
<a class="skip" href="#main">Skip to main content</a>
<header>
  <div class="bar"><div class="wrap">
    <a class="brand" href="/">Boardinghouse</a>
    ${v.username !== null
      ? html`<nav aria-label="Main"><ul>
        ${navLink('/', 'Home', 'home', section)}
        ${navLink('/app/items', 'Items', 'items', section)}
        ${navLink('/app/audit', 'Audit log', 'audit', section)}
        ${v.isAdmin ? navLink('/app/admin', 'Schemas', 'admin', section) : null}
      </ul></nav>
      <div class="tools">
        ${schemaSelector(v, next)}
        <div class="user"><span>Signed in as <strong>${v.username}</strong>${v.isAdmin ? ' (admin)' : ''}</span>
          <form method="post" action="/logout">${csrfField(v)}<button type="submit" class="quiet">Log out</button></form></div>
      </div>`
      : html`<nav aria-label="Main" class="tools"><ul>${navLink('/login', 'Log in', 'login', section)}</ul></nav>`}
  </div></div>
  ${statusBar(v)}
</header>
<main id="main" class="wrap" tabindex="-1">
${o.flash !== undefined && o.flash !== null ? html`<p class="flash" role="status">${o.flash}</p>` : null}
<h1>${o.title}</h1>
${o.content}
</main>
</body>
</html>
`
  return page.value
}

/** A labelled text input with an optional hint and error message (wired with aria-describedby). */
export function textField (o: { name: string, label: string, value?: string, error?: string | null, hint?: string, type?: 'text' | 'password', required?: boolean, maxlength?: number, autocomplete?: string, autofocus?: boolean, id?: string }): Html {
  const id = o.id ?? `field-${o.name}`
  const described = [o.hint !== undefined ? `${id}-hint` : null, o.error != null ? `${id}-error` : null].filter((x) => x !== null).join(' ')
  const attrs: HtmlValue[] = [
    o.required === true ? raw(' required') : null,
    o.maxlength !== undefined ? html` maxlength="${o.maxlength}"` : null,
    o.autocomplete !== undefined ? html` autocomplete="${o.autocomplete}"` : null,
    o.autofocus === true ? raw(' autofocus') : null,
    o.error != null ? raw(' aria-invalid="true"') : null,
    described !== '' ? html` aria-describedby="${described}"` : null
  ]
  return html`<div class="field">
    <label for="${id}">${o.label}</label>
    ${o.hint !== undefined ? html`<p class="hint" id="${id}-hint">${o.hint}</p>` : null}
    <input type="${o.type ?? 'text'}" id="${id}" name="${o.name}" value="${o.value ?? ''}"${attrs}>
    ${o.error != null ? html`<p class="problem" id="${id}-error">${o.error}</p>` : null}
  </div>`
}

/** A date as `YYYY-MM-DD HH:MM UTC` in a <time> element. */
export function time (date: Date | string | null | undefined): Html {
  if (date === null || date === undefined) return html``
  const d = new Date(date)
  if (Number.isNaN(d.getTime())) return html``
  return html`<time datetime="${d.toISOString()}">${d.toISOString().slice(0, 16).replace('T', ' ')} UTC</time>`
}
