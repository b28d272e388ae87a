import { VerificationError } from './errors.js'

export interface StrictJsonOptions {
  /** Maximum nesting of objects and arrays (default 32). */
  maxDepth?: number
  /** What is being parsed, for the error message. */
  what?: string
}

/**
 * Parses JSON that must be an object, refusing duplicate member names at any depth and nesting
 * deeper than `maxDepth`. JSON.parse keeps the last duplicate silently; two parsers disagreeing
 * on which one counts is a classic signature-bypass, so we refuse the ambiguity outright.
 * @example
 * parseStrictJsonObject('{"a":1}') // { a: 1 }
 */
export function parseStrictJsonObject(text: string, options: StrictJsonOptions = {}): Record<string, unknown> {
  const value = parseStrictJson(text, options)
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new VerificationError('ERR_MALFORMED', `${options.what ?? 'JSON'} is not a JSON object`)
  }
  return value as Record<string, unknown>
}

/**
 * Parses any JSON value (a request body: an object, or a JSON-RPC batch array) with the same rules
 * as {@link parseStrictJsonObject}: duplicate member names at any depth and nesting deeper than
 * `maxDepth` are refused. Throws VerificationError `ERR_MALFORMED`; a server turns it into its own
 * 400 (the issuer's `ERR_INVALID_INPUT`).
 * @example
 * parseStrictJson('[{"a":1},{"a":2}]') // [{ a: 1 }, { a: 2 }]
 * parseStrictJson('{"a":1,"a":2}') // throws ERR_MALFORMED (duplicate member name)
 */
export function parseStrictJson(text: string, options: StrictJsonOptions = {}): unknown {
  const what = options.what ?? 'JSON'
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (cause) {
    throw new VerificationError('ERR_MALFORMED', `${what} is not valid JSON`, { cause })
  }
  if (typeof value === 'object' && value !== null) checkStructure(text, value, options.maxDepth ?? 32, what)
  checkWellFormed(text, value, what)
  return value
}

// A UTF-16 code unit of a surrogate pair without its other half: no Unicode scalar value, so UTF-8
// cannot carry it, and encoders replace it with U+FFFD (two texts that differ compare equal after).
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/

/**
 * Refuses a lone surrogate anywhere in the parsed value (member names too), whether the text held it
 * raw or as a `\uD800` escape. Cheap when the text has neither: one regular-expression scan.
 */
function checkWellFormed(text: string, value: unknown, what: string): void {
  // A text without `\u` holds no escape at all: indexOf finds that far faster than the escape
  // expression scans (~ 270 ns for a 900-character delegation link payload, on every link).
  if (!LONE_SURROGATE.test(text) && (text.indexOf('\\u') === -1 || !SURROGATE_ESCAPE.test(text))) return
  const walk = (v: unknown): void => {
    if (typeof v === 'string') {
      if (LONE_SURROGATE.test(v)) throw new VerificationError('ERR_MALFORMED', `${what} holds a lone surrogate (not Unicode text)`)
    } else if (Array.isArray(v)) {
      for (const item of v) walk(item)
    } else if (typeof v === 'object' && v !== null) {
      for (const [key, item] of Object.entries(v)) {
        walk(key)
        walk(item)
      }
    }
  }
  walk(value)
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

/**
 * Decodes bytes as UTF-8, refusing invalid sequences (overlongs, encoded surrogates, truncated
 * sequences, stray continuation bytes) instead of replacing them with U+FFFD: signed JSON must mean
 * one text. A byte-order mark is kept (and then refused by JSON parsing). Throws ERR_MALFORMED.
 * @example
 * decodeUtf8Strict(Buffer.from('{"a":1}'), 'JWT payload') // '{"a":1}'
 */
export function decodeUtf8Strict(bytes: Uint8Array, what = 'text'): string {
  try {
    return utf8.decode(bytes)
  } catch (cause) {
    throw new VerificationError('ERR_MALFORMED', `${what} is not valid UTF-8`, { cause })
  }
}

/**
 * Duplicate members and nesting of text that JSON.parse has already accepted as `value`, without
 * building a set of names per object: every `:` outside a string separates one member, and an object
 * that JSON.parse read with a duplicate name has one own property fewer than the members its text
 * holds. So the text has a duplicate exactly when its count of members exceeds the number of own
 * properties of all the objects of `value`. Strings are skipped with indexOf (native), only the few
 * characters between them are looked at. When the counts differ, or the nesting is too deep, the
 * exact walk ({@link findStructureError}) runs and throws what it finds first, as it always did.
 */
function checkStructure(text: string, value: unknown, maxDepth: number, what: string): void {
  let members = 0
  let depth = 0
  const n = text.length
  let i = 0
  while (i < n) {
    const quote = text.indexOf('"', i)
    const end = quote === -1 ? n : quote
    for (let j = i; j < end; j++) {
      const c = text.charCodeAt(j)
      if (c === 0x3a /* : */) members++
      else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
        if (++depth > maxDepth) return findStructureError(text, maxDepth, what)
      } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--
    }
    if (quote === -1) break
    // The string's closing quote: the next one preceded by an even number of backslashes (JSON.parse
    // accepted the text, so it exists).
    let close = text.indexOf('"', quote + 1)
    for (;;) {
      let b = close - 1
      while (text.charCodeAt(b) === 0x5c /* \ */) b--
      if ((close - 1 - b) % 2 === 0) break
      close = text.indexOf('"', close + 1)
    }
    i = close + 1
  }
  if (members !== ownMembers(value)) findStructureError(text, maxDepth, what)
}

// Own properties of every object in a JSON.parse result (arrays counted through their items). A for-in
// loop, not Object.keys: no array per object (JSON.parse objects have their own properties only, but
// an enumerable property someone added to Object.prototype is not counted).
function ownMembers(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0
  let count = 0
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) count += ownMembers(value[i])
    return count
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue
    count += 1 + ownMembers((value as Record<string, unknown>)[key])
  }
  return count
}

// Walks text that JSON.parse has already accepted, so only structure needs tracking here: throws at
// the first duplicate member name or container nested deeper than maxDepth, in text order.
function findStructureError(text: string, maxDepth: number, what: string): void {
  // One entry per open container: a Set of member names for objects, null for arrays.
  const stack: (Set<string> | null)[] = []
  let expectKey = false
  const n = text.length
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22 /* " */) {
      const start = i
      let escaped = false
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i)
        if (d === 0x5c /* \ */) { escaped = true; i++; continue }
        if (d === 0x22) break
      }
      const top = stack[stack.length - 1]
      if (expectKey && top) {
        const key = escaped ? (JSON.parse(text.slice(start, i + 1)) as string) : text.slice(start + 1, i)
        if (top.has(key)) throw new VerificationError('ERR_MALFORMED', `${what} has a duplicate member name`, { details: { member: key } })
        top.add(key)
        expectKey = false
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (stack.length >= maxDepth) throw new VerificationError('ERR_MALFORMED', `${what} is nested deeper than ${maxDepth}`)
      const isObject = c === 0x7b
      stack.push(isObject ? new Set() : null)
      expectKey = isObject
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop()
      expectKey = false
    } else if (c === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] != null
    }
  }
}
