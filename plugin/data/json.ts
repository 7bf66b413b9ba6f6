/**
 * Exact JSON numbers: numbers JavaScript cannot hold as written (`1.0`, `-0`, 20-digit integers
 * inside json/jsonb values) are read as JsonNumber and written back as the same text.
 */
import { randomBytes } from 'node:crypto'
import type { Token } from 'stream-json/parser.js'
import { describe } from '../names.js'

/** Marks JsonNumber placeholders while stringifyExact runs (a random nonce, so no real string matches). */
const MARK = `\u0000bh${randomBytes(6).toString('hex')}:`
const MARK_IN_JSON = JSON.stringify(MARK).slice(1, -1)
const MARK_RE = new RegExp(`"${MARK_IN_JSON.replace(/\\/g, '\\\\')}([-+.0-9eE]+)"`, 'g')
let stringifyingExactly = false

/**
 * A JSON number JavaScript cannot hold as written (`1.0`, `-0`, `1e5`, `12345678901234567890`,
 * `0.1000000000000000055511`): kept as its text, and written back as that text by loadData.
 * `valueOf()` gives the nearest double, so arithmetic works; `JSON.stringify` writes that double.
 */
export class JsonNumber {
  readonly text: string
  constructor (text: string) {
    if (!/^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?$/.test(text)) throw new TypeError(`not a JSON number: ${describe(text)}`)
    this.text = text
  }

  valueOf (): number { return Number(this.text) }
  toString (): string { return this.text }
  toJSON (): number | string { return stringifyingExactly ? MARK + this.text : Number(this.text) }
}

/**
 * True when the JSON number `text.slice(start, end)` reads back as the same text through a double.
 * (Takes bounds so that the common case allocates nothing.)
 */
function isCanonicalNumber (text: string, start = 0, end = text.length): boolean {
  // Fast path: no exponent, at most 15 significant digits (exact through a double, DBL_DIG), no
  // trailing zero after a point, not -0, and not below 1e-6 (JavaScript writes 1e-7).
  const negative = text.charCodeAt(start) === 45
  let digits = 0
  let point = -1
  let leadingZeros = true
  for (let i = negative ? start + 1 : start; i < end; i++) {
    const c = text.charCodeAt(i)
    if (c === 46) { point = i; continue }
    if (c < 48 || c > 57) return roundTrips(text.slice(start, end)) // an exponent
    if (leadingZeros && c === 48) continue
    leadingZeros = false
    digits++
  }
  if (digits > 15) return roundTrips(text.slice(start, end))
  if (point === -1) return !(negative && digits === 0) // -0
  if (text.charCodeAt(end - 1) === 48) return false // 1.50
  if (point === (negative ? start + 2 : start + 1) && text.charCodeAt(point - 1) === 48) {
    // 0.000001 is written as is, 0.0000001 as 1e-7
    let zeros = 0
    while (text.charCodeAt(point + 1 + zeros) === 48) zeros++
    if (zeros >= 6) return false
  }
  return true
}

function roundTrips (number: string): boolean {
  return String(Number(number)) === number
}

/** JSON.stringify that writes JsonNumber values as their exact text. */
export function stringifyExact (value: unknown): string {
  stringifyingExactly = true
  let text: string
  try {
    text = JSON.stringify(value)
  } finally {
    stringifyingExactly = false
  }
  return text.includes(MARK_IN_JSON) ? text.replace(MARK_RE, '$1') : text
}

/** Scans JSON text for a number outside strings that a double would not reproduce. */
function hasInexactNumber (text: string): boolean {
  return rewriteInexactNumbers(text, false) !== null
}

/**
 * With `rewrite`, returns `text` with each inexact number replaced by a marked string (null when
 * there is none); without, returns '' at the first one found, null when there is none.
 */
function rewriteInexactNumbers (text: string, rewrite: boolean): string | null {
  const n = text.length
  let out: string[] | null = null
  let copied = 0
  let i = 0
  while (i < n) {
    const c = text.charCodeAt(i)
    if (c === 34) { // a string: skip to its closing quote
      let e = text.indexOf('"', i + 1)
      for (;;) {
        if (e === -1) return out === null ? null : out.join('') + text.slice(copied) // malformed: JSON.parse will say
        let b = e - 1
        while (text.charCodeAt(b) === 92) b--
        if (((e - 1 - b) & 1) === 0) break
        e = text.indexOf('"', e + 1)
      }
      i = e + 1
    } else if (c === 45 || (c >= 48 && c <= 57)) {
      let j = i + 1
      while (j < n) {
        const d = text.charCodeAt(j)
        if ((d >= 48 && d <= 57) || d === 46 || d === 101 || d === 69 || d === 43 || d === 45) j++
        else break
      }
      if (!isCanonicalNumber(text, i, j)) {
        if (!rewrite) return ''
        out ??= []
        out.push(text.slice(copied, i), '"', MARK_IN_JSON, text.slice(i, j), '"')
        copied = j
      }
      i = j
    } else {
      i++
    }
  }
  return out === null ? null : out.join('') + text.slice(copied)
}

function reviveMarks (_key: string, value: unknown): unknown {
  return typeof value === 'string' && value.startsWith(MARK) ? new JsonNumber(value.slice(MARK.length)) : value
}

/** JSON.parse that keeps numbers a double would change as JsonNumber. */
export function parseExact (text: string): unknown {
  if (!hasInexactNumber(text)) return JSON.parse(text)
  return JSON.parse(rewriteInexactNumbers(text, true) ?? text, reviveMarks)
}

/** stream-json token transform: inexact numbers become JsonNumber values. */
export function exactNumberToken (token: Token): Token {
  if (token.name === 'numberValue' && !isCanonicalNumber(token.value)) {
    return { name: 'stringValue', value: new JsonNumber(token.value) as unknown as string }
  }
  return token
}

/** A plain object (not null, an array or a JsonNumber). */
export function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof JsonNumber)
}
