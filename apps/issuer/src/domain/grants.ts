// Delegation entry points: root links the issuer grants to agents, and links agents register
// before signing them (delegations.ts holds the rows and status entries).
import { AgentIdError, decodeJwt } from '@agentid/core'
import { parseGrantRequest, parseRegisterDelegationRequest } from './delegation-input.js'
import type { ServiceDeps } from './deps.js'
import { parseAgentDid } from './input.js'
import { sha256Hex } from './issue.js'
import { actorName, requireAdmin, type Principal } from './principal.js'
import { iso, notFound } from './views.js'

/**
 * Signs a root capability link from the issuer to an active agent (`{ capabilities, caveats?,
 * lifetimeSec? }`); the link's row and status index commit with a check that the agent is active.
 */
export async function grant(
  d: Pick<ServiceDeps, 'storage' | 'delegations' | 'now' | 'ttl' | 'maxTtl'>,
  actor: Principal,
  did: unknown,
  body: unknown,
): Promise<{ id: string; delegationChain: string[]; expiresAt: string }> {
  requireAdmin(actor)
  const agentDid = parseAgentDid(did)
  const request = parseGrantRequest(body, d.maxTtl)
  const agent = await d.storage.agents.get(agentDid)
  if (!agent) notFound('agent')
  if (agent.status !== 'active') throw new AgentIdError('ERR_REVOKED', 'the agent has been revoked')
  const lifetime = request.lifetimeSec ?? d.ttl
  const root = await d.delegations.rootLink(agentDid, request.capabilities, request.caveats, lifetime)
  const at = d.now()
  await d.storage.commit([
    d.storage.ops.agentActive(agentDid, { code: 'ERR_REVOKED', message: 'the agent has been revoked' }),
    ...root.ops,
    d.storage.ops.audit(at, actorName(actor), 'delegation.granted', agentDid, { delegationId: root.id, delegationSha256: sha256Hex(root.jwt), status: root.status }),
  ])
  const exp = decodeJwt(root.jwt).payload.exp as number
  return { id: root.id, delegationChain: [root.jwt], expiresAt: iso(exp) }
}

/** Registers a link an agent is about to sign below `parentId` (proof of possession, purpose `delegate`): its id and status entry. */
export async function registerDelegation(d: Pick<ServiceDeps, 'delegations'>, body: unknown): Promise<{ id: string; statusEntry: Record<string, unknown>; expiresAt: string }> {
  const registered = await d.delegations.register(parseRegisterDelegationRequest(body))
  return { id: registered.id, statusEntry: { ...registered.statusEntry }, expiresAt: iso(registered.expiresAt) }
}
