// Removes every known upstream secret from text and JSON values before the gateway sends or logs them.

/** What a secret is replaced with. */
export const REDACTED = '[REDACTED]'

/**
 * The set of secret values the gateway holds, and the one function that scrubs them out.
 * Each secret is matched raw, JSON-escaped and URL-encoded (the forms it takes inside a serialized
 * body, a log line or a URL), and as hex, base64 and base64url bytes (inside a blob, a Basic credential).
 * @example
 * const redactor = createRedactor()
 * redactor.add(token)
 * redactor.redact(`upstream said: ${message}`)
 */
export interface Redactor {
  /** Registers a secret value (idempotent). */
  add(secret: string): void
  /** `text` with every registered secret replaced by {@link REDACTED}. */
  redact(text: string): string
  /** A copy of a JSON-like value with every string (and object key) redacted; the value itself when nothing matched. */
  redactValue<T>(value: T): T
  /** Number of registered secrets. */
  readonly size: number
}

/**
 * The secret as it shows inside encoded bytes: hex (both cases), and base64 / base64url at each of the three
 * byte alignments it can have inside a larger blob (a served file, a Basic credential), keeping only the
 * characters that depend on the secret's bytes alone.
 */
function encodings(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8')
  const hex = bytes.toString('hex')
  const out = [hex, hex.toUpperCase()]
  for (let k = 0; k < 3; k++) {
    const b64 = Buffer.concat([Buffer.alloc(k), bytes]).toString('base64')
    const stable = b64.slice(Math.ceil((8 * k) / 6), Math.floor((8 * (k + bytes.length)) / 6))
    out.push(stable, stable.replace(/\+/g, '-').replace(/\//g, '_'))
  }
  return out
}

/** A new, empty redactor. */
export function createRedactor(): Redactor {
  const secrets = new Set<string>()
  let pattern: RegExp | null = null
  const compile = () => {
    const needles = new Set<string>()
    for (const s of secrets) {
      needles.add(s)
      needles.add(JSON.stringify(s).slice(1, -1))
      needles.add(encodeURIComponent(s))
      for (const encoded of encodings(s)) {
        needles.add(encoded)
        needles.add(encodeURIComponent(encoded))
      }
    }
    const sorted = [...needles].filter((n) => n.length > 0).sort((a, b) => b.length - a.length)
    pattern = sorted.length ? new RegExp(sorted.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g') : null
  }
  const redact = (text: string): string => {
    if (pattern === null) return text
    pattern.lastIndex = 0
    return pattern.test(text) ? text.replace(pattern, REDACTED) : text
  }
  const walk = (value: unknown, depth: number): unknown => {
    if (typeof value === 'string') return redact(value)
    if (value === null || typeof value !== 'object' || depth > 64) return value
    if (Array.isArray(value)) {
      let out: unknown[] | null = null
      for (let i = 0; i < value.length; i++) {
        const v = walk(value[i], depth + 1)
        if (v !== value[i]) (out ??= value.slice())[i] = v
      }
      return out ?? value
    }
    // A copy only once something changed (every result passes through here, nearly always clean): the
    // members before the first change are copied as they are, then each member redacted.
    const record = value as Record<string, unknown>
    let out: Record<string, unknown> | null = null
    for (const k in record) {
      if (!Object.hasOwn(record, k)) continue
      const v = record[k]
      const key = redact(k)
      const next = walk(v, depth + 1)
      if (out === null) {
        if (key === k && next === v) continue
        out = {}
        for (const before in record) {
          if (before === k) break
          if (Object.hasOwn(record, before)) out[before] = record[before]
        }
      }
      out[key] = next
    }
    return out ?? value
  }
  return {
    add(secret) {
      if (secret === '' || secrets.has(secret)) return
      secrets.add(secret)
      compile()
    },
    redact,
    redactValue: <T>(value: T): T => (pattern === null ? value : (walk(value, 0) as T)),
    get size() {
      return secrets.size
    },
  }
}
