/**
 * The clone DDL's text form: a header line recording where the new schema's name goes, the
 * builder that writes it, and `renderCloneDDL`, which puts the name there and changes nothing else.
 */
import { quoteIdent } from '../names.js'

const HEADER = '-- fastify-boardinghouse clone DDL v1; target schema at:'
/** Stands for the new schema's name until `renderCloneDDL`. Not valid SQL, so unrendered DDL fails instead of running. */
const TARGET_MARKER = '<target schema>'

/**
 * Returns `ddl` (from `generateCloneDDL`) with the new schema's name, quoted, at the offsets the
 * DDL recorded for it, and nothing else changed.
 */
export function renderCloneDDL (ddl: string, schema: string): string {
  if (typeof schema !== 'string' || schema === '') throw new TypeError('renderCloneDDL: schema must be a non-empty string')
  const newline = ddl.indexOf('\n')
  const header = newline < 0 ? ddl : ddl.slice(0, newline)
  if (!header.startsWith(HEADER)) throw new Error('renderCloneDDL: not DDL from generateCloneDDL (header line missing)')
  const list = header.slice(HEADER.length).trim()
  if (!/^(\d+(,\d+)*)?$/.test(list)) throw new Error('renderCloneDDL: malformed header line')
  const offsets = list === '' ? [] : list.split(',').map(Number)
  const body = newline < 0 ? '' : ddl.slice(newline + 1)
  const target = quoteIdent(schema)
  let out = ''
  let from = 0
  for (const at of offsets) {
    if (at < from || !body.startsWith(TARGET_MARKER, at)) throw new Error(`renderCloneDDL: no target-schema marker at offset ${at}; was the DDL edited?`)
    out += body.slice(from, at) + target
    from = at + TARGET_MARKER.length
  }
  return out + body.slice(from)
}

/** Accumulates DDL text and the offsets of target-schema markers in it. */
export class DDLBuilder {
  private readonly parts: string[] = []
  private length = 0
  private readonly targets: number[] = []

  add (text: string): this {
    this.parts.push(text)
    this.length += text.length
    return this
  }

  /** Appends the marker for the new schema's (quoted) name. */
  target (): this {
    this.targets.push(this.length)
    return this.add(TARGET_MARKER)
  }

  /** Appends one statement: `text` + ';' + newline. */
  statement (text: string): this {
    return this.add(text + ';\n')
  }

  section (title: string): this {
    return this.add(`\n-- ${title}\n`)
  }

  toString (): string {
    return `${HEADER} ${this.targets.join(',')}\n${this.parts.join('')}`
  }
}
