// What a hop binds: the command and the RFC 8785 digest of the arguments, for HTTP and for MCP.
import { createHash, hash } from 'node:crypto'
import { createRequire } from 'node:module'
import { AgentIdError, decodeUtf8Strict, parseStrictJson } from '@agentid/core'

// canonicalize 2.x is CommonJS (`module.exports = serialize`), typed as an ES default export.
const canonicalize = createRequire(import.meta.url)('canonicalize') as (input: unknown) => string | undefined

/** Deepest nesting of arguments (or an output) accepted for a digest. */
export const MAX_ARGS_DEPTH = 64

function invalid(message: string): never {
  throw new AgentIdError('ERR_INVALID_INPUT', `arguments: ${message}`)
}

// Only JSON values, nested at most MAX_ARGS_DEPTH: checked without recursion (a hostile depth cannot overflow the stack).
// Two parallel stacks (values, depths), not a pair per value: it runs on every call's arguments.
function checkJsonValue(root: unknown): void {
  const stack: unknown[] = [root]
  const depths: number[] = [0]
  let seen = 0
  while (stack.length > 0) {
    const value = stack.pop()
    const depth = depths.pop()!
    if (++seen > 1_000_000) invalid('more than 1,000,000 values')
    if (value === null || typeof value === 'string' || typeof value === 'boolean') continue
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) invalid('a number is not finite')
      continue
    }
    if (typeof value !== 'object') invalid(`a ${typeof value} is not a JSON value`)
    if (depth >= MAX_ARGS_DEPTH) invalid(`nested deeper than ${MAX_ARGS_DEPTH}`)
    if (Array.isArray(value)) {
      for (const v of value) {
        stack.push(v)
        depths.push(depth + 1)
      }
      continue
    }
    const proto = Object.getPrototypeOf(value)
    if (proto !== Object.prototype && proto !== null) invalid('only plain objects, arrays and JSON scalars are allowed')
    for (const key in value) {
      if (!Object.hasOwn(value, key)) continue
      const v = (value as Record<string, unknown>)[key]
      if (v === undefined) continue
      stack.push(v)
      depths.push(depth + 1)
    }
  }
}

/**
 * SHA-256 (base64url) of the RFC 8785 (JCS) canonical form of a JSON value: a hop's `arg`, a receipt's
 * `out`. `undefined` counts as `null` (no arguments). Object members whose value is `undefined` are
 * left out, as in JSON. Anything else that is not JSON (a function, a bigint, NaN, a Date, a class
 * instance) or nested deeper than 64 throws AgentIdError ERR_INVALID_INPUT.
 * @example
 * argsDigest({ amount: 100, currency: 'EUR' }) === argsDigest({ currency: 'EUR', amount: 100 }) // true
 */
export function argsDigest(args: unknown): string {
  const value = args === undefined ? null : args
  let canonical = canonicalJson(value)
  if (canonical === undefined) {
    // What the one pass leaves (see canonicalJson): checked, then serialized, as always.
    checkJsonValue(value)
    canonical = canonicalize(value)
    if (typeof canonical !== 'string') invalid('not a JSON value')
  }
  return hash('sha256', canonical, 'base64url')
}

// Values the one pass reads before leaving a value to the two-pass path (which counts up to 1,000,000).
const ONE_PASS_MAX_VALUES = 10_000
let onePassValues = 0

/**
 * The RFC 8785 form of a JSON value in one pass, byte for byte what `canonicalize` writes (members
 * sorted by UTF-16 code units, JSON.stringify for every string, member name and number), or undefined
 * when the value is anything checkJsonValue might refuse or canonicalize might read otherwise: a
 * non-finite number, undefined in an array, a symbol, a bigint, a function, an object that is not a
 * plain object or array or has a toJSON, nesting of MAX_ARGS_DEPTH, more than 10,000 values. Those go
 * through checkJsonValue and canonicalize as before, with their errors. Saves a walk, the closures
 * and the intermediate strings of `canonicalize` on every call's arguments.
 */
function canonicalJson(value: unknown): string | undefined {
  onePassValues = 0
  return jcs(value, 0)
}

// Array.prototype.sort's order for strings (UTF-16 code units, which `<` compares), by insertion for
// the few names of an object of arguments (the built-in sort costs more to call than that).
function sortNames(keys: string[]): void {
  if (keys.length > 16) {
    keys.sort()
    return
  }
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!
    let j = i - 1
    while (j >= 0 && keys[j]! > key) {
      keys[j + 1] = keys[j]!
      j--
    }
    keys[j + 1] = key
  }
}

function jcs(value: unknown, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value)
    case 'number':
      return Number.isFinite(value) ? String(value) : undefined // JSON.stringify's form of a finite number
    case 'boolean':
      return value ? 'true' : 'false'
    case 'object':
      break
    default:
      return undefined
  }
  if (value === null) return 'null'
  if (depth >= MAX_ARGS_DEPTH || ++onePassValues > ONE_PASS_MAX_VALUES) return undefined
  const proto = Object.getPrototypeOf(value)
  if ((value as { toJSON?: unknown }).toJSON !== undefined) return undefined
  if (proto === Array.prototype) {
    const list = value as unknown[]
    let out = '['
    for (let i = 0; i < list.length; i++) {
      const item = list[i]
      const text = item === undefined ? undefined : jcs(item, depth + 1)
      if (text === undefined) return undefined
      out += i === 0 ? text : `,${text}`
    }
    return `${out}]`
  }
  if (proto !== Object.prototype && proto !== null) return undefined
  const object = value as Record<string, unknown>
  const keys = Object.keys(object)
  if (keys.length > 1) sortNames(keys)
  let out = '{'
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!
    const member = object[key]
    if (member === undefined) continue
    const text = jcs(member, depth + 1)
    if (text === undefined) return undefined
    out += `${out.length === 1 ? '' : ','}${JSON.stringify(key)}:${text}`
  }
  return `${out}}`
}

/**
 * The command of an HTTP call: the method in upper case, a space, the path (as the WHATWG URL parser
 * normalises it; no query).
 * @example
 * httpCommand('post', 'https://pay.example/v1/charges?x=1') // 'POST /v1/charges'
 */
export function httpCommand(method: string, url: string | URL): string {
  if (typeof method !== 'string' || !/^[A-Za-z]{1,32}$/.test(method)) throw new TypeError('httpCommand: method must be an HTTP method')
  return `${method.toUpperCase()} ${new URL(url).pathname}`
}

/** A body as `httpArgs` takes it: text, bytes, or an already-parsed JSON value (Express `req.body`). */
export type HttpBody = string | Uint8Array | ArrayBuffer | URLSearchParams | null | undefined | Record<string, unknown> | unknown[]

/**
 * The arguments of an HTTP call, the value whose digest a hop binds: `{ query?, body? }` with `query`
 * the raw query string (no `?`) when there is one, and `body`, when there is one, the body parsed as
 * JSON, or `{ sha256 }` (base64url of the bytes) when it is not JSON or not JSON every parser reads
 * alike (not UTF-8, a member name twice, a lone surrogate, a number no double holds exactly such as
 * 12345678901234567891). Caller and service compute it the same way from what each holds (text,
 * bytes, or the JSON value a body parser produced; for such bodies only text or bytes agree).
 * @example
 * httpArgs('https://pay.example/v1/charges', '{"amount":100}') // { body: { amount: 100 } }
 */
export function httpArgs(url: string | URL, body?: HttpBody): { query?: string; body?: unknown } {
  const search = new URL(url).search
  const out: { query?: string; body?: unknown } = {}
  if (search.length > 1) out.query = search.slice(1)
  if (body === undefined || body === null) return out
  let bytes: Buffer | undefined
  if (typeof body === 'string') bytes = Buffer.from(body, 'utf8')
  else if (body instanceof URLSearchParams) bytes = Buffer.from(body.toString(), 'utf8')
  else if (body instanceof Uint8Array) bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  else if (body instanceof ArrayBuffer) bytes = Buffer.from(body)
  if (bytes === undefined) {
    out.body = body // an already-parsed JSON value
    return out
  }
  if (bytes.length === 0) return out
  const value = exactJson(bytes)
  out.body = value === NOT_EXACT ? { sha256: createHash('sha256').update(bytes).digest('base64url') } : value
  return out
}

const NOT_EXACT = Symbol('not exact JSON')

/**
 * The JSON value of a body when every JSON parser reads it as that one value, else NOT_EXACT: the bytes
 * are UTF-8, no object repeats a member name (JSON.parse keeps the last, other parsers the first or
 * refuse), no lone surrogate, and every number is exactly the double JSON.parse makes of it
 * (12345678901234567891, 0.10000000000000000001 or 1e400 are not: a big-integer or decimal parser,
 * or a service forwarding the body as is, would see another value than the one digested). Such a body
 * is digested as bytes, so that no other body has its digest.
 */
function exactJson(bytes: Buffer): unknown {
  let text: string
  let value: unknown
  try {
    text = decodeUtf8Strict(bytes, 'body')
    value = parseStrictJson(text, { what: 'body', maxDepth: MAX_ARGS_DEPTH })
  } catch {
    return NOT_EXACT
  }
  return numbersExact(text) ? value : NOT_EXACT
}

// A number token of JSON text (outside strings), and its parts.
const NUMBER = /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y
const DECIMAL = /^-?([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/

// The value of a decimal literal as (digits without leading or trailing zeros, exponent): equal pairs are equal numbers.
function decimalValue(literal: string): string {
  const m = DECIMAL.exec(literal)
  if (!m) return literal
  const fraction = m[2] ?? ''
  let digits = (m[1]! + fraction).replace(/^0+/, '')
  if (digits === '') return '0'
  let exponent = BigInt(m[3] ?? '0') - BigInt(fraction.length)
  const trailing = digits.length - digits.replace(/0+$/, '').length
  digits = digits.slice(0, digits.length - trailing)
  exponent += BigInt(trailing)
  return `${literal.startsWith('-') ? '-' : ''}${digits}e${exponent}`
}

// True when every number of (valid) JSON text is exactly the double it parses to.
function numbersExact(text: string): boolean {
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
      continue
    }
    if (c === 0x22) {
      inString = true
      continue
    }
    if (c !== 0x2d && (c < 0x30 || c > 0x39)) continue
    NUMBER.lastIndex = i
    const m = NUMBER.exec(text)
    if (!m) return false
    const literal = m[0]
    i += literal.length - 1
    // Short integers are exact: skip the arithmetic for the common case.
    if (literal.length <= 15 && !/[.eE]/.test(literal)) continue
    const double = Number(literal)
    if (!Number.isFinite(double)) return false
    if (decimalValue(literal) !== decimalValue(String(double))) return false
  }
  return true
}

/**
 * The target of an MCP call: `mcp://<server>/<name>` (a tool or prompt name, or a resource URI).
 * @example
 * mcpTarget('erp', 'invoices.read') // 'mcp://erp/invoices.read'
 */
export function mcpTarget(server: string, name: string): string {
  if (typeof server !== 'string' || !/^[A-Za-z0-9._-]{1,128}$/.test(server)) throw new TypeError('mcpTarget: server must be 1 to 128 characters of [A-Za-z0-9._-]')
  if (typeof name !== 'string' || name === '') throw new TypeError('mcpTarget: name is required')
  return `mcp://${server}/${name}`
}

/**
 * The command of an MCP request: its method, a space, the tool or prompt name or resource URI.
 * @example
 * mcpCommand('tools/call', 'invoices.read') // 'tools/call invoices.read'
 */
export function mcpCommand(method: 'tools/call' | 'resources/read' | 'prompts/get', name: string): string {
  if (method !== 'tools/call' && method !== 'resources/read' && method !== 'prompts/get') throw new TypeError('mcpCommand: method must be tools/call, resources/read or prompts/get')
  if (typeof name !== 'string' || name === '') throw new TypeError('mcpCommand: name is required')
  return `${method} ${name}`
}
