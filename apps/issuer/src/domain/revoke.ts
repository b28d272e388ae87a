// The revoke routes' entry points (agent, credential, delegation link) and the console's preview:
// each checks the actor and the input, then runs revocationCascade (revocation.ts) in one transaction.
import type { ServiceDeps } from './deps.js'
import { parseDelegationId } from './delegation-input.js'
import { parseAgentDid, parseCredentialId, parseReason } from './input.js'
import { actorName, requireAdmin, type Principal } from './principal.js'
import { revocationCascade, type RevocationEffect, type RevocationTarget } from './revocation.js'

type Deps = Pick<ServiceDeps, 'storage' | 'statusLists' | 'events' | 'now'>

/**
 * Revokes an agent, every credential it holds and every delegation it signed or received (with the
 * links below them), in one transaction (`revocationCascade`). Revoking a revoked agent changes nothing.
 */
export async function revokeAgent(d: Deps, actor: Principal, did: unknown, reason: unknown): Promise<{ did: string; revokedCredentials: string[]; revokedDelegations: string[]; alreadyRevoked: boolean }> {
  requireAdmin(actor)
  const agentDid = parseAgentDid(did)
  const e = await revoke(d, actor, { kind: 'agent', did: agentDid }, parseReason(reason))
  return { did: agentDid, revokedCredentials: e.credentials.map((c) => c.id), revokedDelegations: e.delegations.map((link) => link.id), alreadyRevoked: e.alreadyRevoked }
}

/** Revokes one credential (its row and its status bit, in one transaction). */
export async function revokeCredential(d: Deps, actor: Principal, id: unknown, reason: unknown): Promise<{ id: string; agent: string; alreadyRevoked: boolean }> {
  requireAdmin(actor)
  const credentialId = parseCredentialId(id)
  const e = await revoke(d, actor, { kind: 'credential', id: credentialId }, parseReason(reason))
  return { id: credentialId, agent: e.owner!, alreadyRevoked: e.alreadyRevoked }
}

/** Revokes a delegation and every link below it (rows and status bits, one transaction). */
export async function revokeDelegation(d: Deps, actor: Principal, id: unknown, reason: unknown): Promise<{ id: string; revokedDelegations: string[]; alreadyRevoked: boolean }> {
  requireAdmin(actor)
  const delegationId = parseDelegationId(id)
  const e = await revoke(d, actor, { kind: 'delegation', id: delegationId }, parseReason(reason))
  return { id: delegationId, revokedDelegations: e.delegations.map((link) => link.id), alreadyRevoked: e.alreadyRevoked }
}

/**
 * What revoking `target` would take down (every credential, delegation link and downstream agent),
 * computed by the same cascade that performs the revocation, without changing anything. Admin only.
 */
export function previewRevocation(d: Omit<Deps, 'now'>, actor: Principal, target: RevocationTarget): Promise<RevocationEffect> {
  requireAdmin(actor)
  return d.storage.transaction((tx) => revocationCascade({ tx, statusLists: d.statusLists, events: d.events }, target, { dryRun: true }))
}

async function revoke(d: Deps, actor: Principal, target: RevocationTarget, reason: string): Promise<RevocationEffect> {
  const effect = await d.storage.transaction((tx) => revocationCascade({ tx, statusLists: d.statusLists, events: d.events }, target, { dryRun: false, at: d.now(), reason, actor: actorName(actor) }))
  d.events.announce()
  return effect
}
