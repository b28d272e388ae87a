import type { IssuerStorage, StorageTx } from '../storage/types.js'
import type { EventBus } from './bus.js'
import { revocationSets, type RevocationRecord } from './sets.js'

/**
 * Writes the security events of revocations into the database, inside the revocation's own
 * transaction (a revocation and its events commit together or not at all), and announces them on
 * the bus once the transaction has returned.
 */
export class RevocationEvents {
  private written = false
  private announcing = false

  constructor(
    private readonly storage: IssuerStorage,
    private readonly issuer: string,
    readonly bus: EventBus,
  ) {}

  /**
   * Records one revocation: call it inside the transaction that revokes (its `tx`), then
   * {@link announce} once that transaction has committed. Delegation links are given by id; their
   * signers are read here. Nothing is written when nothing was revoked.
   * @example
   * await storage.transaction(async (tx) => { …revoke…; await events.revoked(tx, { at, credentials: ids, delegations: links }) })
   * events.announce()
   */
  async revoked(tx: StorageTx, record: { at: number; agent?: string | undefined; credentials: readonly string[]; delegations: readonly string[] }): Promise<void> {
    const delegations: { id: string; iss: string }[] = []
    for (const id of record.delegations) delegations.push({ id, iss: (await tx.delegations.get(id))?.delegator ?? this.issuer })
    const full: RevocationRecord = { at: record.at, credentials: record.credentials, delegations, ...(record.agent !== undefined ? { agent: record.agent } : {}) }
    const sets = revocationSets(this.issuer, full)
    for (const set of sets) await tx.events.insert(set.jti, set.txn, set.iat, { ...set })
    if (sets.length > 0) this.written = true
  }

  /**
   * Tells every instance's event stream that events were committed (after the revoking transaction
   * returns; after a rollback the readers find nothing new). One announcement per turn of the event loop.
   */
  announce(): void {
    if (!this.written || this.announcing) return
    this.announcing = true
    queueMicrotask(() => {
      this.written = false
      this.announcing = false
      this.storage.events.head().then((head) => this.bus.publish(head), () => { /* the stream's poll picks the events up */ })
    })
  }
}
