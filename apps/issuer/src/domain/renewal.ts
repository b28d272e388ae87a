// Renewing an active agent's identity credential: the agent proves possession of its key.
import { AgentIdError, verifyProofOfPossession, type AgentClaims } from '@agentid/core'
import type { ServiceDeps } from './deps.js'
import { parseAgentDid, parseRenewRequest } from './input.js'
import { issueCredential, sha256Hex, type IssueDeps } from './issue.js'
import { notFound, type IssuedCredential } from './views.js'

/** Renews an active agent's identity credential; the agent proves possession of its key. */
export async function renew(d: IssueDeps & Pick<ServiceDeps, 'attestation' | 'maxTtl'>, did: unknown, body: unknown): Promise<IssuedCredential & { logIndex: number }> {
  const agentDid = parseAgentDid(did)
  const request = parseRenewRequest(body, d.maxTtl)
  const proof = await verifyProofOfPossession(request.proof, { audience: d.engine.issuer.did, purpose: 'renew', now: d.now(), expectedDid: agentDid })
  const agent = await d.storage.agents.get(agentDid)
  if (!agent) notFound('agent')
  if (agent.status !== 'active') throw new AgentIdError('ERR_REVOKED', 'the agent has been revoked')
  const stored = JSON.parse(agent.claims_json) as AgentClaims
  // New evidence replaces the attestation recorded at spawn (for this credential); without, it is kept.
  const claims = request.evidence === undefined ? stored : await d.attestation.apply({ ...stored, attestation: undefined } as AgentClaims, request.evidence, proof.nonce, d.now())
  return issueCredential(d, agentDid, claims, request.lifetimeSec, request.format, (row, at) => [
    d.storage.ops.nonceUse(`pop:${proof.jti}`, proof.exp, { code: 'ERR_REPLAY', message: 'this proof of possession was used before' }),
    ...(proof.nonce !== null ? [d.storage.ops.challengeUse(proof.nonce, at, { code: 'ERR_REPLAY', message: 'the challenge is unknown, expired or used' })] : []),
    d.storage.ops.agentActive(agentDid, { code: 'ERR_REVOKED', message: 'the agent has been revoked' }),
    d.storage.ops.credentialInsert(row),
    d.storage.ops.audit(at, `agent:${agentDid}`, 'agent.renewed', agentDid, { credentialId: row.id, credentialSha256: sha256Hex(row.jwt), status: { list: row.status_list_id, index: row.status_index } }),
  ])
}
