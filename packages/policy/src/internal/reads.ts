import type { CompiledPolicy } from './load.js'

/** What the policies of a set can read of a request: everything else is left out of Cedar's input and the memo key. */
export interface Reads {
  /**
   * Attribute names read anywhere (`e.a`, `e has a`, `e has a.b`), whatever `e` is: an entity attribute whose
   * name is not here is never read by any policy (Cedar has no other way to reach an attribute).
   */
  readonly attributes: ReadonlySet<string>
  /** The context attributes read (`context.a`, `context has a`), or 'all' when a policy uses `context` whole. */
  readonly context: ReadonlySet<string> | 'all'
}

const isContext = (e: unknown) => typeof e === 'object' && e !== null && (e as { Var?: unknown }).Var === 'context'

/** Walks the conditions of every policy (their Cedar JSON form). */
export function policyReads(policies: readonly CompiledPolicy[]): Reads {
  const attributes = new Set<string>()
  const context = new Set<string>()
  let allContext = false
  const visit = (node: unknown): void => {
    if (typeof node !== 'object' || node === null) return
    if (Array.isArray(node)) {
      for (const n of node) visit(n)
      return
    }
    if (isContext(node)) {
      // `context` anywhere but as the left side of `.` or `has` (those return before reaching it).
      allContext = true
      return
    }
    const record = node as Record<string, unknown>
    for (const op of ['.', 'has'] as const) {
      const inner = record[op] as { left?: unknown; attr?: unknown } | undefined
      if (!inner || typeof inner !== 'object') continue
      const names = Array.isArray(inner.attr) ? inner.attr : [inner.attr]
      for (const name of names) if (typeof name === 'string') attributes.add(name)
      if (isContext(inner.left)) {
        if (typeof names[0] === 'string') context.add(names[0])
        else allContext = true
        return
      }
    }
    for (const value of Object.values(record)) visit(value)
  }
  for (const p of policies) visit(p.json.conditions)
  return { attributes, context: allContext ? 'all' : context }
}

/** `attrs` restricted to the names in `keep`. */
export function pick<T>(attrs: Record<string, T>, keep: ReadonlySet<string>): Record<string, T> {
  const out: Record<string, T> = {}
  for (const k of Object.keys(attrs)) if (keep.has(k)) out[k] = attrs[k]!
  return out
}
