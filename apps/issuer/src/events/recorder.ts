import type { Store } from '../domain/store.js'
import type { EventBus } from './bus.js'
import { revocationSets, type RevocationRecord } from './sets.js'

/**
 * Writes the security events of revocations into the database, inside the revocation's own
 * transaction (a revocation and its events commit together or not at all), and announces them on
 * the bus once the transaction has returned.
 */
export class RevocationEvents {
  private announce = false

  constructor(
    private readonly store: Store,
    private readonly issuer: string,
    readonly bus: EventBus,
  ) {}

  /**
   * Records one revocation: call it inside the transaction that revokes. Delegation links are given
   * by id; their signers are read here. Nothing is written when nothing was revoked.
   * @example
   * store.transaction(() => { …revoke…; events.revoked({ at, credentials: ids, delegations: links }) })
   */
  revoked(record: { at: number; agent?: string | undefined; credentials: readonly string[]; delegations: readonly string[] }): void {
    const delegations = record.delegations.map((id) => ({ id, iss: this.store.delegations.get(id)?.delegator ?? this.issuer }))
    const full: RevocationRecord = { at: record.at, credentials: record.credentials, delegations, ...(record.agent !== undefined ? { agent: record.agent } : {}) }
    const sets = revocationSets(this.issuer, full)
    if (sets.length === 0) return
    for (const set of sets) this.store.events.insert(set.jti, set.txn, set.iat, { ...set })
    // Announced after the synchronous transaction returns (committed, or rolled back: then the
    // readers find nothing new). One announcement per turn of the event loop.
    if (this.announce) return
    this.announce = true
    queueMicrotask(() => {
      this.announce = false
      let head: number
      try {
        head = this.store.events.head()
      } catch {
        return // the stream's poll picks the events up
      }
      this.bus.publish(head)
    })
  }
}
