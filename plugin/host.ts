/**
 * Strict host parsing, in one function: what a request's host (or a domain given to `addDomain`)
 * must look like before it is looked up or stored. Lower-cased, port stripped, one trailing dot
 * removed, IDN converted to punycode (node:url domainToASCII, the WHATWG URL rules); IP literals,
 * empty labels (`..`), labels and names too long, and any character outside a-z 0-9 - . refused.
 */
import { domainToASCII, domainToUnicode } from 'node:url'
import type { FastifyRequest } from 'fastify'
import { BoardinghouseErrors } from './errors.js'
import { describe } from './names.js'

const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
/** A last label the WHATWG URL parser reads as a number: the name is an IPv4 address. */
const NUMERIC_LAST_LABEL_RE = /^(?:\d+|0x[0-9a-f]*)$/

function refuse (value: unknown, why: string): never {
  throw new BoardinghouseErrors.INVALID_HOST(describe(value), why)
}

/**
 * The normalised form of a host (`Acme.Example.COM:8080.` → `acme.example.com`, `bücher.de` →
 * `xn--bcher-kva.de`), or FST_BH_INVALID_HOST (400). `allowPort: false` refuses a port (a domain
 * to store names none).
 */
export function normalizeHost (value: unknown, options: { allowPort?: boolean } = {}): string {
  if (typeof value !== 'string') refuse(value, 'must be a string')
  if (value === '') refuse(value, 'must not be empty')
  if (value.length > 300) refuse(value, 'is too long')
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f,;"'`\\/@?#%<>[\]{}|^]/.test(value)) {
    if (value.startsWith('[')) refuse(value, 'IP literals are not tenant hosts')
    refuse(value, 'holds a space, a comma or another character a host name cannot hold')
  }
  let host = value
  const colon = host.indexOf(':')
  if (colon !== -1) {
    const port = host.slice(colon + 1)
    if (host.indexOf(':', colon + 1) !== -1) refuse(value, 'IP literals are not tenant hosts')
    if (options.allowPort === false) refuse(value, 'must not have a port')
    if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) refuse(value, 'has an invalid port')
    host = host.slice(0, colon)
  }
  if (host.endsWith('.')) host = host.slice(0, -1)
  if (host === '') refuse(value, 'has no name')
  if (host.split('.').includes('')) refuse(value, 'has an empty label ("..")')
  const lower = host.toLowerCase()
  if (!/^[\x21-\x7e]*$/.test(lower) || lower.split('.').some((l) => l.startsWith('xn--'))) {
    // unicode (IDN) or punycode: the WHATWG rules convert and validate both ('' when invalid)
    const ascii = domainToASCII(lower)
    if (ascii === '') refuse(value, 'is not a valid internationalised domain name')
    // Runtimes differ on invalid punycode (Node 24 passes `xn--zz` through unchanged): a label is
    // valid punycode only if it decodes to something else, and that encodes back to the same label.
    for (const label of ascii.split('.')) {
      if (!label.startsWith('xn--')) continue
      const decoded = domainToUnicode(label)
      if (decoded === '' || decoded.startsWith('xn--') || domainToASCII(decoded) !== label) refuse(value, 'is not a valid internationalised domain name')
    }
    host = ascii
  } else {
    host = lower
  }
  if (host.length > 253) refuse(value, 'is longer than 253 characters')
  const labels = host.split('.')
  if (NUMERIC_LAST_LABEL_RE.test(labels[labels.length - 1] as string)) refuse(value, 'IP literals are not tenant hosts')
  for (const label of labels) {
    if (!LABEL_RE.test(label)) refuse(value, `label ${describe(label)} must be 1 to 63 of a-z, 0-9 and "-", not starting or ending with "-"`)
  }
  return host
}

/**
 * The normalised host of a request, as Fastify 5's `request.host` gives it: the `Host` header
 * (HTTP/2: `:authority`), or the last `X-Forwarded-Host` value when the connection comes from a
 * proxy trusted by the `trustProxy` option. A request with two `Host` headers, or a `Host` holding
 * several comma-joined values, is refused (FST_BH_INVALID_HOST).
 */
export function requestHost (request: FastifyRequest): string {
  const raw = request.raw.rawHeaders
  let hosts = 0
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === 'host') hosts++
  if (hosts > 1) refuse(request.headers.host, 'the request has two Host headers')
  return normalizeHost(request.host)
}
