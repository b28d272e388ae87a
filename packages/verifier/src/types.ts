import type { AgentClaims } from '@agentid/core'

/** What `verifyAgentCredential` returns: who the agent is and everything its issuer says about it. */
export interface VerifiedAgent {
  /** The agent's DID (`sub`, = `credentialSubject.id`). */
  readonly did: string
  /** The issuer's DID (`iss`), one of `trustedIssuers`. */
  readonly issuer: string
  /** The credential id (`jti`), if the credential has one. */
  readonly credentialId: string | null
  /** Unix seconds. */
  readonly issuedAt: number | null
  readonly validFrom: number | null
  readonly expiresAt: number
  readonly claims: Readonly<AgentClaims>
  readonly status: { readonly statusListCredential: string; readonly statusListIndex: number }
  /** The credential's `vc.type`. */
  readonly type: readonly string[]
}
