// The issuer's side of delegation (DESIGN.md "Delegation", "Revocation"): root capability links it
// signs to agents and status entries for links agents sign to each other. Revocation cascades: revocation.ts.
import { createHash, randomUUID } from 'node:crypto'
import { AgentIdError, verifyProofOfPossession, type BitstringStatusListEntry } from '@agentid/core'
import { delegate, type Capability, type Caveats } from '@agentid/delegation'
import type { IssuerEngine } from '../veramo/engine.js'
import type { StatusLists } from './status-lists.js'
import type { WriteOp } from './store.js'
import type { IssuerStorage } from '../storage/types.js'

/** A root link signed by the issuer, not yet stored: `ops` commit its row and status index. */
export interface RootLink {
  id: string
  jwt: string
  statusEntry: BitstringStatusListEntry
  /** Its status entry as the log names it (README "Log entries"). */
  status: LoggedStatus
  ops: WriteOp[]
}

/** A status entry as a log entry names it: the list's id (served at `/v1/status-lists/<list>`) and the index. */
export interface LoggedStatus { list: string; index: number }

export interface DelegationsOptions {
  store: IssuerStorage
  statusLists: StatusLists
  engine: IssuerEngine
  now: () => number
}

function entry(slot: { url: string; index: number }): BitstringStatusListEntry {
  return {
    id: `${slot.url}#${slot.index}`,
    type: 'BitstringStatusListEntry',
    statusPurpose: 'revocation',
    statusListIndex: String(slot.index),
    statusListCredential: slot.url,
  }
}

/** Delegation rows and their status entries; the service wraps these per route. */
export class Delegations {
  constructor(private readonly o: DelegationsOptions) {}

  /**
   * Signs a root link from the issuer to `did` with a reserved status entry. Nothing is stored: the
   * caller commits `ops` in its own group-committed job (with the agent row, at spawn).
   */
  async rootLink(did: string, capabilities: readonly Capability[], caveats: Caveats, lifetimeSec: number): Promise<RootLink> {
    const at = this.o.now()
    const id = `urn:uuid:${randomUUID()}`
    const slot = await this.o.statusLists.reserve()
    const statusEntry = entry(slot)
    const [jwt] = await delegate({
      signer: this.o.engine.signer(),
      to: did,
      capabilities,
      caveats,
      expiresIn: lifetimeSec,
      statusEntry,
      id,
      clock: () => at * 1000,
    })
    const row = {
      id, parent_id: null, delegator: this.o.engine.issuer.did, delegatee: did, status_list_id: slot.listId, status_index: slot.index,
      created_at: at, expires_at: at + lifetimeSec,
    }
    return {
      id,
      jwt: jwt!,
      statusEntry,
      status: { list: slot.listId, index: slot.index },
      ops: [
        this.o.store.ops.delegationInsert(row, { code: 'ERR_CONFLICT', message: 'the delegation exists' }),
        this.o.statusLists.commitOp(slot.listId, slot.index),
      ],
    }
  }

  /**
   * Allocates a status entry for a link the delegator (proven by a proof of possession, purpose
   * `delegate`) is about to sign below `parentId`, and records it. The parent must exist, be
   * unrevoked and unexpired, and name the delegator as its delegatee.
   */
  async register(request: { proof: string; parentId: string; delegatee: string }): Promise<{ id: string; statusEntry: BitstringStatusListEntry; expiresAt: number }> {
    const { store } = this.o
    const proof = await verifyProofOfPossession(request.proof, { audience: this.o.engine.issuer.did, purpose: 'delegate', now: this.o.now() })
    if (await store.nonces.seen(`pop:${proof.jti}`)) throw new AgentIdError('ERR_REPLAY', 'this proof of possession was used before')
    const parent = await store.delegations.get(request.parentId)
    if (!parent) throw new AgentIdError('ERR_NOT_FOUND', 'parent delegation not found')
    if (parent.delegatee !== proof.did) throw new AgentIdError('ERR_FORBIDDEN', 'the parent delegation was not granted to the proof\'s DID')
    if (parent.revoked_at !== null) throw new AgentIdError('ERR_REVOKED', 'the parent delegation has been revoked')
    const at = this.o.now()
    if (parent.expires_at <= at) throw new AgentIdError('ERR_EXPIRED', 'the parent delegation has expired')
    const id = `urn:uuid:${randomUUID()}`
    const slot = await this.o.statusLists.reserve()
    const row = {
      id, parent_id: parent.id, delegator: proof.did, delegatee: request.delegatee, status_list_id: slot.listId, status_index: slot.index,
      created_at: at, expires_at: parent.expires_at, // the link is clamped to its parent's exp
    }
    await store.commit([
      store.ops.nonceUse(`pop:${proof.jti}`, proof.exp, { code: 'ERR_REPLAY', message: 'this proof of possession was used before' }),
      ...(proof.nonce !== null ? [store.ops.challengeUse(proof.nonce, at, { code: 'ERR_REPLAY', message: 'the challenge is unknown, expired or used' })] : []),
      // Re-checked in the job: a revocation may have committed since the read above.
      store.ops.delegationActive(parent.id, { code: 'ERR_REVOKED', message: 'the parent delegation has been revoked' }),
      store.ops.delegationInsert(row, { code: 'ERR_CONFLICT', message: 'the delegation exists' }),
      this.o.statusLists.commitOp(slot.listId, slot.index),
      store.ops.audit(at, `agent:${proof.did}`, 'delegation.registered', proof.did, { delegationId: id, parentId: parent.id, delegatee: request.delegatee, proofSha256: createHash('sha256').update(request.proof).digest('hex'), status: { list: slot.listId, index: slot.index } }),
    ])
    return { id, statusEntry: entry(slot), expiresAt: row.expires_at }
  }
}
