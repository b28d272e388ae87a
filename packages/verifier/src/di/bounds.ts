import { MAX_DI_BYTES, MAX_DI_DEPTH, MAX_DI_NODES, parseStrictJsonObject, VerificationError } from '@agentid/core'

// Bounds of a Data Integrity credential, checked before any JSON-LD processing: expansion and
// RDFC-1.0 cost grows with the document (and worse than linearly with blank nodes), so a hostile
// document must be refused for the price of a walk over at most MAX_NODES values.
// The limits live in @agentid/core (limits.ts), where the issuer's input validation derives its own.
export { MAX_DI_BYTES, MAX_DI_DEPTH, MAX_DI_NODES }

export interface BoundedCredential {
  /** A private JSON copy: the caller's object is never handed to JSON-LD (getters, later mutation). */
  readonly credential: Record<string, unknown>
  /** The JSON text: the memo key is its SHA-256. */
  readonly json: string
}

function malformed(message: string, details: Record<string, unknown> = {}): never {
  throw new VerificationError('ERR_MALFORMED', message, { details })
}

/** Refuses nesting deeper than MAX_DI_DEPTH, more than MAX_DI_NODES values, and anything that is not JSON data. */
function walk(root: unknown): void {
  const stack: Array<[unknown, number]> = [[root, 1]]
  let nodes = 0
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!
    if (++nodes > MAX_DI_NODES) malformed(`credential has more than ${MAX_DI_NODES} JSON values`)
    if (value === null || typeof value === 'string' || typeof value === 'boolean') continue
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) malformed('credential holds a number that JSON cannot represent')
      continue
    }
    if (typeof value !== 'object') malformed('credential holds a value that is not JSON data', { type: typeof value })
    if (depth > MAX_DI_DEPTH) malformed(`credential is nested deeper than ${MAX_DI_DEPTH}`)
    if (Array.isArray(value)) {
      for (const v of value) stack.push([v, depth + 1])
    } else {
      const proto: unknown = Object.getPrototypeOf(value)
      if (proto !== Object.prototype && proto !== null) malformed('credential holds an object that is not plain JSON')
      // Contexts come from the top-level @context only, which the verifier pins. An embedded one
      // could reach a context that jsonld's process-wide cache holds (another loader in the same
      // process tagged it static) without asking our loader.
      if (depth > 1 && Object.hasOwn(value, '@context')) malformed('embedded @context is not accepted')
      for (const v of Object.values(value)) stack.push([v, depth + 1])
    }
  }
}

/**
 * Checks a Data Integrity credential (an object, or JSON text starting with `{`) against the bounds
 * and returns a private copy with its JSON text. Throws VerificationError ERR_MALFORMED.
 */
export function boundCredential(input: unknown): BoundedCredential {
  let json: string
  if (typeof input === 'string') {
    // Characters first (free), bytes second: a UTF-8 byte count never undercounts characters.
    if (input.length > MAX_DI_BYTES || Buffer.byteLength(input, 'utf8') > MAX_DI_BYTES) malformed(`credential is larger than ${MAX_DI_BYTES} bytes`)
    // Duplicate member names refused: JSON-LD and our claim parser must read the same document.
    const parsed = parseStrictJsonObject(input, { maxDepth: MAX_DI_DEPTH, what: 'credential' })
    walk(parsed)
    return { credential: parsed, json: input }
  }
  if (typeof input !== 'object' || input === null || Array.isArray(input)) malformed('credential must be a compact JWT, a JSON object or its JSON text')
  walk(input)
  try {
    json = JSON.stringify(input)
  } catch (cause) {
    throw new VerificationError('ERR_MALFORMED', 'credential is not JSON data', { cause })
  }
  if (Buffer.byteLength(json, 'utf8') > MAX_DI_BYTES) malformed(`credential is larger than ${MAX_DI_BYTES} bytes`)
  return { credential: JSON.parse(json) as Record<string, unknown>, json }
}
