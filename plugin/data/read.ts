/**
 * Reading dump files: JSON arrays and NDJSON, tokenized piece by piece (stream-json), strict UTF-8,
 * with limits on value length and nesting so that memory stays bounded and errors name their place.
 */
import { createReadStream } from 'node:fs'
import type { Readable } from 'node:stream'
import { jsonParser, type Token } from 'stream-json/parser.js'
import streamArray from 'stream-json/streamers/stream-array.js'
import streamValues from 'stream-json/streamers/stream-values.js'
import { BoardinghouseErrors } from '../errors.js'
import { describe } from '../names.js'
import { exactNumberToken } from './json.js'

/** Limits of readDumpObjects. */
export interface ReadDumpOptions {
  /**
   * The longest string or number (in characters) a dump may hold; a longer one is refused with
   * FST_BH_INVALID_DUMP while it is read, so memory stays bounded. Default 16 MiB (16,777,216).
   */
  maxValueLength?: number
}

/** readDumpObjects' default maxValueLength: 16 MiB characters. */
export const DEFAULT_MAX_VALUE_LENGTH = 16 * 1024 * 1024

/** How deep a dump object may nest (the object itself is level 1). */
export const MAX_DUMP_DEPTH = 1000

/** First non-blank byte of the chunks so far (skipping a UTF-8 BOM), or -1. */
function firstSignificantByte (chunks: Buffer[]): number {
  let index = 0
  for (const chunk of chunks) {
    for (let i = 0; i < chunk.length; i++, index++) {
      const b = chunk[i] as number
      if (index < 3 && (b === 0xef || b === 0xbb || b === 0xbf)) continue
      if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d) continue
      return b
    }
  }
  return -1
}

/** Invalid UTF-8 in a dump file, at a byte offset of the file. */
class Utf8Error extends Error {
  constructor (readonly offset: number) { super(`invalid UTF-8 at byte ${offset}`) }
}

/**
 * The index in `b` of the first byte of an invalid UTF-8 sequence (stray and overlong bytes,
 * encoded surrogates, beyond U+10FFFF), or -1. A sequence cut off by the end of `b` is invalid
 * only when `final`.
 */
function firstInvalidUtf8 (b: Uint8Array, final: boolean): number {
  let i = 0
  while (i < b.length) {
    const c = b[i] as number
    if (c < 0x80) { i++; continue }
    let n: number
    let lo = 0x80
    let hi = 0xbf
    if (c >= 0xc2 && c <= 0xdf) n = 1
    else if (c >= 0xe0 && c <= 0xef) { n = 2; if (c === 0xe0) lo = 0xa0; if (c === 0xed) hi = 0x9f }
    else if (c >= 0xf0 && c <= 0xf4) { n = 3; if (c === 0xf0) lo = 0x90; if (c === 0xf4) hi = 0x8f }
    else return i
    for (let k = 1; k <= n; k++) {
      if (i + k >= b.length) return final ? i : -1
      const d = b[i + k] as number
      if (d < (k === 1 ? lo : 0x80) || d > (k === 1 ? hi : 0xbf)) return i
    }
    i += n + 1
  }
  return -1
}

/** The bytes at the end of `b` that start a multi-byte sequence not complete yet (at most 3). */
function incompleteTail (b: Buffer): Buffer {
  for (let k = 1; k <= Math.min(3, b.length); k++) {
    const c = b[b.length - k] as number
    if ((c & 0xc0) === 0x80) continue // a continuation byte
    const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1
    return need > k ? b.subarray(b.length - k) : b.subarray(b.length)
  }
  return b.subarray(b.length)
}

/**
 * The text of `head` then `rest`, decoded as UTF-8 across chunk boundaries, without a leading BOM.
 * Invalid UTF-8 is not replaced: the valid text before it is yielded, then a Utf8Error thrown.
 */
async function * decoded (head: Buffer[], rest: AsyncIterator<Buffer>): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true }) // (it drops a leading BOM)
  let before = 0 // bytes before the current chunk
  let tail: Buffer = Buffer.alloc(0) // the end of the previous chunks: an incomplete sequence
  const invalid = (chunk: Buffer | null): { text: string, error: Utf8Error } => {
    const bytes = chunk === null ? tail : Buffer.concat([tail, chunk])
    const bad = Math.max(0, firstInvalidUtf8(bytes, true))
    const start = before - tail.length
    const text = new TextDecoder('utf-8', { ignoreBOM: start > 0 }).decode(bytes.subarray(0, bad))
    return { text, error: new Utf8Error(start + bad) }
  }
  const chunks = async function * (): AsyncGenerator<Buffer> {
    yield * head
    for (;;) {
      const r = await rest.next()
      if (r.done === true) return
      yield r.value
    }
  }
  for await (const chunk of chunks()) {
    let text: string
    try {
      text = decoder.decode(chunk, { stream: true })
    } catch {
      const { text: valid, error } = invalid(chunk)
      if (valid !== '') yield valid
      throw error
    }
    tail = chunk.length >= 4 ? incompleteTail(chunk) : incompleteTail(Buffer.concat([tail, chunk]))
    before += chunk.length
    if (text !== '') yield text
  }
  let end: string
  try {
    end = decoder.decode()
  } catch {
    const { text: valid, error } = invalid(null)
    if (valid !== '') yield valid
    throw error
  }
  if (end !== '') yield end
}

/** A dump that breaks a limit of readDumpObjects (the reader adds file and position). */
class LimitError extends Error {}

/** stream-chain's markers (registered symbols): no value, and several values. */
const NONE = Symbol.for('object-stream.none')
const MANY = Symbol.for('object-stream.many')

function isMany (result: unknown): result is { values: unknown[] } {
  return typeof result === 'object' && result !== null && (result as Record<symbol, unknown>)[MANY] === 1
}

/** The values of a stream-chain result: none, one value, or many(values). */
function manyValues (result: unknown): unknown[] {
  if (result === NONE) return []
  return isMany(result) ? result.values : [result]
}

/** Characters handed to the JSON tokenizer at a time. */
const PARSE_PIECE = 16384

function dumpFileName (path: string): string {
  return path === '-' ? '<stdin>' : path
}

/** The first chunks of `bytes` up to the first non-blank byte, and that byte (-1: none, a blank file). */
async function sniff (bytes: AsyncIterator<Buffer>, name: string): Promise<{ head: Buffer[], first: number }> {
  const head: Buffer[] = []
  let first = -1
  try {
    while (first === -1) {
      const r = await bytes.next()
      if (r.done === true) break
      head.push(r.value)
      first = firstSignificantByte(head)
    }
  } catch (err) {
    throw new BoardinghouseErrors.INVALID_DUMP(`${name}: cannot be read: ${(err as Error).message}`, { cause: err })
  }
  if (first !== -1 && first !== 0x5b && first !== 0x7b) { // [ or {
    throw new BoardinghouseErrors.INVALID_DUMP(`${name}: neither a JSON array nor NDJSON (it starts with ${describe(String.fromCharCode(first))})`)
  }
  return { head, first }
}

/**
 * stream-json's tokenizer, then streamArray (a JSON array) or streamValues (NDJSON, as JSON
 * Streaming), driven line by line (pieces of at most 16 Ki characters), pull-based: only the
 * objects of one small piece exist at a time, and an error is known to lie in its piece, so the
 * object count and line it reports are exact. Tokens are checked against the limits as they come.
 * (Not JSON.parse per line: it cannot keep numbers like 1.0 exact, and it interns short string
 * values in the old generation, which a million-row load pays for in RSS.)
 */
class DumpTokenizer {
  /** Objects yielded so far. */
  private count = 0
  /** The line being read (1-based). */
  private line = 1
  private depth = 0
  /** Characters fed since a piece last gave a token: a value (or blank space) being read. */
  private sinceToken = 0
  private readonly parse: (chunk: string | symbol) => unknown
  private readonly element: (token: Token) => unknown
  private readonly maxDepth: number

  constructor (array: boolean, private readonly maxValueLength: number) {
    this.parse = jsonParser({ jsonStreaming: !array, streamValues: false, packValues: true }) as unknown as (chunk: string | symbol) => unknown
    this.element = (array ? streamArray() : streamValues()) as unknown as (token: Token) => unknown
    this.maxDepth = MAX_DUMP_DEPTH + (array ? 1 : 0)
  }

  /** The objects `text` (the next decoded text of the file) completes. */
  * objects (text: string): Generator<unknown, void, undefined> {
    let i = 0
    while (i < text.length) {
      const newline = text.indexOf('\n', i)
      const end = newline === -1 || newline + 1 - i > PARSE_PIECE ? Math.min(text.length, i + PARSE_PIECE) : newline + 1
      const piece = i === 0 && end === text.length ? text : text.slice(i, end)
      const tokens = this.parse(piece)
      if (tokens === NONE || (isMany(tokens) && tokens.values.length === 0)) {
        this.sinceToken += piece.length
        if (this.sinceToken > this.maxValueLength) throw this.tooLong()
      } else {
        this.sinceToken = 0
        for (const token of manyValues(tokens)) {
          const item = this.take(token as Token)
          if (item === NONE) continue
          if (isMany(item)) {
            for (const one of item.values) { this.count++; yield (one as { value: unknown }).value }
          } else {
            this.count++
            yield (item as { value: unknown }).value
          }
        }
      }
      if (end === newline + 1) this.line++
      i = end
    }
  }

  /** The objects the end of the input completes. */
  * end (): Generator<unknown, void, undefined> {
    for (const token of manyValues(this.parse(NONE))) {
      for (const item of manyValues(this.take(token as Token))) {
        this.count++
        yield (item as { value: unknown }).value
      }
    }
  }

  /** FST_BH_INVALID_DUMP for an error met reading file `name`, with the object and line. */
  refusal (name: string, err: unknown): unknown {
    const { count, line } = this
    if ((err as { code?: string }).code?.startsWith('FST_BH_') === true) return err
    if (err instanceof Utf8Error) return new BoardinghouseErrors.INVALID_DUMP(`${name}: ${err.message} (line ${line}) after object ${count}`)
    if (err instanceof LimitError) return new BoardinghouseErrors.INVALID_DUMP(`${name}: object ${count + 1} (line ${line}): ${err.message}`)
    const what = (err as { code?: string }).code?.startsWith('E') === true ? 'cannot be read' : 'is not valid JSON'
    return new BoardinghouseErrors.INVALID_DUMP(`${name} ${what} after object ${count} (line ${line}): ${(err as Error).message}`, { cause: err })
  }

  /** Checks a token against the limits; its object, when it completes one, or NONE. */
  private take (token: Token): unknown {
    switch (token.name) {
      case 'startObject': case 'startArray':
        if (++this.depth > this.maxDepth) throw new LimitError(`nested deeper than ${MAX_DUMP_DEPTH} levels`)
        break
      case 'endObject': case 'endArray':
        this.depth--
        break
      case 'stringValue': case 'keyValue': case 'numberValue':
        if ((token.value as string).length > this.maxValueLength) throw this.tooLong()
    }
    return this.element(exactNumberToken(token))
  }

  private tooLong (): LimitError {
    return new LimitError(`a value is longer than ${this.maxValueLength} characters (maxValueLength)`)
  }
}

/**
 * Streams the objects of a dump file (`-` = stdin): a JSON array or NDJSON (one object per line;
 * read as a JSON stream, so objects may also span lines), told apart by the first non-blank
 * character. A blank file holds no objects. Numbers a double would change come as JsonNumber.
 * `input` replaces the file (tests, other sources). Refused with FST_BH_INVALID_DUMP, naming the
 * file, object and line: invalid UTF-8, invalid JSON, a string or number longer than
 * `maxValueLength`, nesting deeper than MAX_DUMP_DEPTH.
 */
export async function * readDumpObjects (path: string, input?: Readable, options: ReadDumpOptions = {}): AsyncGenerator<unknown, void, undefined> {
  const name = dumpFileName(path)
  const stream = input ?? (path === '-' ? process.stdin : createReadStream(path))
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>
  const bytes: AsyncIterator<Buffer> = {
    next: async () => {
      const r = await chunks.next()
      return r.done === true ? r : { done: false, value: typeof r.value === 'string' ? Buffer.from(r.value) : r.value }
    }
  }
  try {
    const { head, first } = await sniff(bytes, name)
    if (first === -1) return
    const tokenizer = new DumpTokenizer(first === 0x5b, options.maxValueLength ?? DEFAULT_MAX_VALUE_LENGTH)
    try {
      for await (const text of decoded(head, bytes)) yield * tokenizer.objects(text)
      yield * tokenizer.end()
    } catch (err) {
      throw tokenizer.refusal(name, err)
    }
  } finally {
    await chunks.return?.()
    if (input === undefined && path !== '-') stream.destroy()
  }
}
