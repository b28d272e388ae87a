// The revocation cascade (DESIGN.md "Revocation"): one function computes what revoking an agent, a
// credential or a delegation link takes down, and either applies it (rows, status bits, security
// events, the audit event) or, as a dry run, only reports it. The issuer's revoke routes and the
// console's blast-radius preview both call it, so the preview is what the revocation will do.
import { AgentIdError } from '@agentid/core'
import type { RevocationEvents } from '../events/recorder.js'
import type { StatusLists } from './status-lists.js'
import type { CredentialRow, DelegationRow } from './store.js'
import type { StorageTx } from '../storage/types.js'

/** What to revoke. */
export type RevocationTarget =
  | { kind: 'agent'; did: string }
  | { kind: 'credential'; id: string }
  | { kind: 'delegation'; id: string }

/** A credential the cascade revokes. */
export interface CascadeCredential { id: string; agent: string; expiresAt: number }
/** A delegation link the cascade revokes. */
export interface CascadeDelegation { id: string; parentId: string | null; delegator: string; delegatee: string; expiresAt: number }

/** Everything one revocation takes down (or would, for a dry run). */
export interface RevocationEffect {
  target: RevocationTarget
  /** The agent the target belongs to (the agent itself, a credential's holder); null for a delegation link. */
  owner: string | null
  /** The agent whose record becomes revoked (agent targets that are still active), else null. */
  agent: string | null
  /** Unrevoked credentials whose status bit is set. */
  credentials: CascadeCredential[]
  /** Unrevoked delegation links (and every link below them) whose status bit is set. */
  delegations: CascadeDelegation[]
  /**
   * Agents other than the target that were the delegatee of a revoked link: they keep their
   * identity credentials but lose the capabilities those links carried. Sorted.
   */
  downstreamAgents: string[]
  /** True when nothing was (or would be) changed. */
  alreadyRevoked: boolean
}

export type CascadeMode = { dryRun: true } | { dryRun: false; at: number; reason: string; actor: string }

export interface RevocationCascadeDeps {
  /** The transaction the cascade reads and writes in. */
  tx: StorageTx
  statusLists: StatusLists
  events: RevocationEvents
}

const credentialOf = (c: CredentialRow): CascadeCredential => ({ id: c.id, agent: c.agent_did, expiresAt: c.expires_at })
const delegationOf = (d: DelegationRow): CascadeDelegation => ({ id: d.id, parentId: d.parent_id, delegator: d.delegator, delegatee: d.delegatee, expiresAt: d.expires_at })

/**
 * Computes the cascade of revoking `target` and, unless `mode.dryRun`, applies it: agent row,
 * credential rows, delegation rows, their status bits, the security events and one audit event.
 * Call it inside one storage transaction (its `tx`) so that what is computed is what is written.
 * Throws ERR_NOT_FOUND for an unknown target.
 * @example
 * await storage.transaction((tx) => revocationCascade({ tx, statusLists, events }, { kind: 'agent', did }, { dryRun: false, at, reason, actor: 'admin' }))
 */
export async function revocationCascade(deps: RevocationCascadeDeps, target: RevocationTarget, mode: CascadeMode): Promise<RevocationEffect> {
  const { tx: store } = deps
  let agent: string | null = null
  let credentials: CredentialRow[] = []
  let delegations: DelegationRow[] = []
  let subject: string
  switch (target.kind) {
    case 'agent': {
      const row = (await store.agents.get(target.did))
      if (!row) throw new AgentIdError('ERR_NOT_FOUND', 'agent not found')
      agent = row.status === 'active' ? row.did : null
      credentials = (await store.credentials.activeByAgent(row.did))
      // Every delegation the agent signed or received goes too, with the links below them.
      delegations = (await store.delegations.activeOfAgent(row.did))
      subject = row.did
      break
    }
    case 'credential': {
      const row = (await store.credentials.get(target.id))
      if (!row) throw new AgentIdError('ERR_NOT_FOUND', 'credential not found')
      credentials = row.revoked_at === null ? [row] : []
      subject = row.agent_did
      break
    }
    case 'delegation': {
      if (!(await store.delegations.get(target.id))) throw new AgentIdError('ERR_NOT_FOUND', 'delegation not found')
      delegations = (await store.delegations.activeSubtree(target.id))
      subject = target.id
      break
    }
  }
  const targetDid = target.kind === 'agent' ? target.did : null
  const downstreamAgents = [...new Set(delegations.map((d) => d.delegatee).filter((did) => did !== targetDid))].sort()
  const effect: RevocationEffect = {
    target,
    owner: target.kind === 'delegation' ? null : subject,
    agent,
    credentials: credentials.map(credentialOf),
    delegations: delegations.map(delegationOf),
    downstreamAgents,
    alreadyRevoked: agent === null && credentials.length === 0 && delegations.length === 0,
  }
  if (mode.dryRun) return effect

  const { at, reason, actor } = mode
  if (agent !== null) await store.agents.revoke(agent, at, reason)
  for (const c of credentials) await store.credentials.revoke(c.id, at, reason)
  for (const d of delegations) await store.delegations.revoke(d.id, at, reason)
  const bits = [...credentials, ...delegations].map((r) => ({ listId: r.status_list_id, index: r.status_index }))
  if (bits.length > 0) await deps.statusLists.setRevoked(store, bits)
  const credentialIds = effect.credentials.map((c) => c.id)
  const delegationIds = effect.delegations.map((d) => d.id)
  await deps.events.revoked(store, { at, agent: agent ?? undefined, credentials: credentialIds, delegations: delegationIds })
  if (!effect.alreadyRevoked) {
    if (target.kind === 'agent') await store.audit.append(at, actor, 'agent.revoked', subject, { reason, credentials: credentialIds, delegations: delegationIds })
    else if (target.kind === 'credential') await store.audit.append(at, actor, 'credential.revoked', subject, { credentialId: target.id, reason })
    else await store.audit.append(at, actor, 'delegation.revoked', subject, { reason, delegations: delegationIds })
  }
  return effect
}
