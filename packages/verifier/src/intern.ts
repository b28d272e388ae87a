import type { AgentClaims } from '@agentid/core'

// Shared copies of the short strings that many credentials repeat (internal; used by verifier.ts).
//
// JSON.parse gives every credential its own copy of each string it holds: the issuer's DID, the
// status list URL, the controller, the model, the tool profile. A memoized VerifiedAgent keeps them
// all, so a stream of new agents promoted about 1.2 KB per memo entry, and V8 grew its young
// generation to the maximum under that survival rate (bench verify-only). Values equal to one seen
// before are replaced by that earlier copy: the same text, one object. Bounded both in entries and
// in string length; when full it is emptied (the values it held stay valid where they are used).

/** Longest string shared: identifiers and names, not free text of unbounded length. */
const MAX_INTERNED_CHARS = 256

export class StringInterner {
  private readonly map = new Map<string, string>()
  constructor(private readonly max: number) {}

  /** `value`, or an earlier string equal to it. */
  intern<T extends string>(value: T): T {
    if (value.length > MAX_INTERNED_CHARS) return value
    const known = this.map.get(value)
    if (known !== undefined) return known as T
    if (this.map.size >= this.max) this.map.clear()
    this.map.set(value, value)
    return value
  }
}

/** The members of AgentClaims that ClaimsInterner compares (a test checks this is every member parseAgentClaims sets). */
export const SHARED_CLAIM_MEMBERS = ['purpose', 'controller', 'model', 'toolProfile', 'policyTier', 'dataAccessClass', 'spiffeId'] as const

/** Claims with at most this many tools are shared (the comparison walks them). */
const MAX_SHARED_TOOLS = 64
/** Claims objects kept per purpose: agents of one purpose rarely differ in more. */
const PER_PURPOSE = 4

/**
 * Shared copies of equal frozen claims (internal; used by verifier.ts). Agents made from one template
 * (purpose, controller, model, tools, tier, data class) carry equal claims; a memoized VerifiedAgent
 * kept its own claims, model and tool list (about 0.2 KB of the 0.6 KB an entry kept). Equal claims are
 * replaced by the earlier frozen object: every member compared by value. Claims with an attestation
 * (arbitrary JSON) are not shared. Bounded like StringInterner: emptied when full.
 */
export class ClaimsInterner {
  private readonly byPurpose = new Map<string, Readonly<AgentClaims>[]>()
  constructor(private readonly max: number) {}

  /** `claims` (frozen, model and toolProfile too), or an earlier frozen claims object equal to it. */
  intern(claims: Readonly<AgentClaims>): Readonly<AgentClaims> {
    if (claims.attestation !== undefined) return claims
    const tools = claims.toolProfile
    if (typeof tools !== 'string' && tools.length > MAX_SHARED_TOOLS) return claims
    const known = this.byPurpose.get(claims.purpose)
    if (known === undefined) {
      if (this.byPurpose.size >= this.max) this.byPurpose.clear()
      this.byPurpose.set(claims.purpose, [claims])
      return claims
    }
    for (let i = 0; i < known.length; i++) if (sameClaims(known[i]!, claims)) return known[i]!
    if (known.length >= PER_PURPOSE) known.shift()
    known.push(claims)
    return claims
  }
}

function sameClaims(a: Readonly<AgentClaims>, b: Readonly<AgentClaims>): boolean {
  if (a.purpose !== b.purpose || a.controller !== b.controller || a.policyTier !== b.policyTier ||
    a.dataAccessClass !== b.dataAccessClass || a.spiffeId !== b.spiffeId || a.attestation !== b.attestation) return false
  if (a.model.provider !== b.model.provider || a.model.name !== b.model.name || a.model.version !== b.model.version) return false
  const x = a.toolProfile
  const y = b.toolProfile
  if (typeof x === 'string' || typeof y === 'string') return x === y
  if (x.length !== y.length) return false
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false
  return true
}
