/**
 * A tiny HTML template tag: every interpolated value is escaped, unless it is already `Html`
 * (the result of another `html` template, or of `raw()` for a trusted fragment).
 *
 *   html`<p title="${title}">${name}</p>`   // title and name are escaped
 *   html`<ul>${items.map((i) => html`<li>${i}</li>`)}</ul>`
 */

const kHtml: unique symbol = Symbol('html')

/** Markup that is safe to insert as is. */
export interface Html {
  readonly [kHtml]: true
  readonly value: string
  toString: () => string
}

/** What may be interpolated: text (escaped), numbers, markup, lists of those; null, undefined and false render nothing. */
export type HtmlValue = Html | string | number | boolean | null | undefined | readonly HtmlValue[]

function markup (value: string): Html {
  return { [kHtml]: true, value, toString: () => value }
}

function isHtml (value: unknown): value is Html {
  return typeof value === 'object' && value !== null && (value as { [kHtml]?: unknown })[kHtml] === true
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Escapes text for element content and quoted attribute values. */
export function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] as string)
}

function render (value: HtmlValue): string {
  if (value === null || value === undefined || value === false) return ''
  if (isHtml(value)) return value.value
  if (Array.isArray(value)) return (value as readonly HtmlValue[]).map(render).join('')
  return escapeHtml(String(value))
}

/** The template tag. */
export function html (strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0] ?? ''
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '')
  return markup(out)
}

/** Marks a trusted string as markup (never pass it user input). */
export function raw (trusted: string): Html {
  return markup(trusted)
}
