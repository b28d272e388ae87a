// What the issuer's operations return, and the helpers that turn rows into it.
import { AgentIdError, type AgentClaims } from '@agentid/core'
import type { CredentialFormat } from './input.js'
import type { OrchestratorRow } from './store.js'

export interface OrchestratorView { id: string; name: string; createdAt: string; removedAt: string | null; activeAgents?: number }
export interface CredentialView {
  id: string; status: 'active' | 'revoked' | 'expired'; issuedAt: string; expiresAt: string
  revokedAt: string | null; revocationReason: string | null; statusListCredential: string; statusListIndex: number
}
export interface AgentView {
  did: string; orchestrator: string; keyCustody: 'agent' | 'issuer'; status: 'active' | 'revoked'; claims: AgentClaims
  createdAt: string; revokedAt: string | null; revocationReason: string | null; credentials: CredentialView[]
}
export interface IssuedCredential {
  /** `jwt`: `credential` is a compact JWT VC; `di`: a VC 2.0 credential object with a Data Integrity proof. */
  did: string; format: CredentialFormat; credential: string | Record<string, unknown>; credentialId: string; expiresAt: string
  status: { statusListCredential: string; statusListIndex: number }
}

export const iso = (sec: number) => new Date(sec * 1000).toISOString()
export const isoOrNull = (sec: number | null) => (sec === null ? null : iso(sec))

export function notFound(what: string): never {
  throw new AgentIdError('ERR_NOT_FOUND', `${what} not found`)
}

export function orchestratorView(row: OrchestratorRow): OrchestratorView {
  return { id: row.id, name: row.name, createdAt: iso(row.created_at), removedAt: isoOrNull(row.removed_at) }
}
