// The authenticated agent at the token endpoint, and the `agentid` claim of the access tokens it
// gets (contract A): its claims, the identity credential the token rests on and that credential's
// status entry, so that resource servers can check revocation on every request.
import { decodeJwt, parseStatusEntry, type AgentClaims, type BitstringStatusListEntry } from '@agentid/core'
import type { CredentialRow } from '../domain/store.js'
import type { StorageTx } from '../storage/types.js'
import { oauthFail } from './errors.js'

/** The `agentid` claim of an access token. */
export interface AgentIdTokenClaim {
  claims: AgentClaims
  credentialId: string
  credentialStatus: Omit<BitstringStatusListEntry, 'id'>
  /** Only when a delegation chain was presented: its root's DID and its number of links. */
  delegation?: { root: string; depth: number }
  /** Only after token exchange: the issuer URL of the identity provider of the user. */
  subjectIssuer?: string
}

/** An active agent with a valid identity credential. */
export interface AuthenticatedAgent {
  did: string
  claims: AgentClaims
  identity: Pick<AgentIdTokenClaim, 'credentialId' | 'credentialStatus'>
}

// The status entry inside a stored credential (JWT VC or Data Integrity JSON).
function statusOf(row: CredentialRow): Omit<BitstringStatusListEntry, 'id'> {
  const document = row.format === 'di'
    ? (JSON.parse(row.jwt) as { credentialStatus?: unknown })
    : ((decodeJwt(row.jwt).payload as { vc?: { credentialStatus?: unknown } }).vc ?? {})
  const { id: _id, ...entry } = parseStatusEntry(document.credentialStatus)
  return entry
}

/**
 * The client as an agent: registered, active, holding an unrevoked, unexpired identity credential
 * (the latest to expire is the one the token rests on). Anything else is `invalid_client`.
 */
export async function authenticatedAgent(store: Pick<StorageTx, 'agents' | 'credentials'>, did: string, now: number): Promise<AuthenticatedAgent> {
  const agent = await store.agents.get(did)
  if (!agent) oauthFail('invalid_client', 'the client is not a registered agent')
  if (agent!.status !== 'active') oauthFail('invalid_client', 'the agent has been revoked')
  let identity: CredentialRow | undefined
  for (const c of await store.credentials.activeByAgent(did)) {
    if (c.kind === 'identity' && c.expires_at > now && (identity === undefined || c.expires_at > identity.expires_at)) identity = c
  }
  if (!identity) oauthFail('invalid_client', 'the agent holds no valid identity credential')
  return {
    did,
    claims: JSON.parse(agent!.claims_json) as AgentClaims,
    identity: { credentialId: identity!.id, credentialStatus: statusOf(identity!) },
  }
}
