// Small helpers the verifier's modules share (internal; not exported from index.ts).
import { agentDidFromSpiffeId, parseSpiffeId, parseStatusListIndex, StatusListError, VerificationError, type AgentClaims } from '@agentid/core'

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Freezes a result all the way down: memoized results are shared between callers. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

/** A credential's `statusListIndex` as a number; ERR_MALFORMED naming the spec error otherwise. */
export function statusIndexOf(statusListIndex: string): number {
  try {
    return parseStatusListIndex(statusListIndex)
  } catch (cause) {
    if (cause instanceof StatusListError) {
      throw new VerificationError('ERR_MALFORMED', 'credentialStatus.statusListIndex is invalid', { details: { statusListError: cause.statusListError } })
    }
    throw cause
  }
}

/**
 * A `spiffeId` claim in agentid's scheme (`…/agent/<orchestrator>/<key>`) must name the credential's own
 * agent: an issuer bug or a copied claim naming another agent's key is ERR_MALFORMED.
 */
export function assertSpiffeIdNamesAgent(claims: AgentClaims, did: string): void {
  if (claims.spiffeId === undefined) return
  const named = agentDidFromSpiffeId(parseSpiffeId(claims.spiffeId))
  if (named !== null && named !== did) throw new VerificationError('ERR_MALFORMED', 'spiffeId names another agent than the credential subject', { details: { field: 'spiffeId' } })
}
