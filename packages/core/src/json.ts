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
  const what = options.what ?? 'JSON'
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (cause) {
    throw new VerificationError('ERR_MALFORMED', `${what} is not valid JSON`, { cause })
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new VerificationError('ERR_MALFORMED', `${what} is not a JSON object`)
  }
  checkStructure(text, options.maxDepth ?? 32, what)
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
  if (typeof value === 'object' && value !== null) checkStructure(text, options.maxDepth ?? 32, what)
  return value
}

// Walks text that JSON.parse has already accepted, so only structure needs tracking here.
function checkStructure(text: string, maxDepth: number, what: string): void {
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
