import { createHash } from 'node:crypto'
import { AgentIdError, MIN_STATUS_LIST_ENTRIES, StatusList, STATUS_LIST_CREDENTIAL, VC_CONTEXT_V1 } from '@agentid/core'
import { statusListDocument } from './di.js'
import type { WriteOp } from './store.js'
import type { IssuerStorage, StatusIndexBlock, StorageTx } from '../storage/types.js'

/** A signed status-list credential ready to serve. */
export interface SignedStatusList {
  jwt: string
  etag: string
  version: number
}

/** A status-list credential secured with a Data Integrity proof, as JSON text ready to serve. */
export interface SignedDiStatusList {
  json: string
  etag: string
  version: number
}

export interface StatusListOptions {
  storage: IssuerStorage
  baseUrl: string
  /** Signs the list credential with the issuer key. */
  sign: (payload: Record<string, unknown>) => Promise<string>
  issuerDid: string
  /** Signs the unsigned VC 2.0 list credential with a Data Integrity proof (for `Accept: application/vc+ld+json`). */
  signDi?: (credential: Record<string, unknown>, nowSec: number) => Promise<Record<string, unknown>>
  now: () => number
  /** Entries per list (at least the spec minimum, 131,072). */
  entries?: number
  /** Lifetime of a signed list credential, seconds (re-signed when older than half of it). */
  listValiditySec?: number
  /** Indices taken from the storage at a time (64). */
  blockSize?: number
}

/**
 * Allocates status-list indices and serves signed lists. Indices come from the storage in blocks
 * (`statusLists.allocate`): on PostgreSQL a block is recorded as taken before it is returned, so
 * several issuer processes on one database never hand out the same index; on SQLite (one process)
 * it is reserved in memory and recorded by the write that uses each index. Each index is written
 * with its credential in the caller's transaction, so a failed spawn writes nothing; its index is
 * simply never used. UNIQUE (status_list_id, status_index) in the schema makes a duplicate
 * impossible even so.
 */
export class StatusLists {
  private block: StatusIndexBlock | undefined
  private next = 0
  private pending: Promise<StatusIndexBlock> | undefined
  private readonly signed = new Map<string, SignedStatusList & { signedAt: number }>()
  private readonly signing = new Map<string, Promise<SignedStatusList & { signedAt: number }>>()
  private readonly signedDi = new Map<string, SignedDiStatusList & { signedAt: number }>()
  private readonly signingDi = new Map<string, Promise<SignedDiStatusList & { signedAt: number }>>()
  private readonly entries: number
  private readonly validity: number
  private readonly blockSize: number

  constructor(private readonly o: StatusListOptions) {
    this.entries = o.entries ?? MIN_STATUS_LIST_ENTRIES
    this.validity = o.listValiditySec ?? 86_400
    this.blockSize = o.blockSize ?? 64
    if (this.entries < MIN_STATUS_LIST_ENTRIES) throw new TypeError(`a status list has at least ${MIN_STATUS_LIST_ENTRIES} entries`)
  }

  /** The public URL of list `id`. */
  url(id: string): string {
    return `${this.o.baseUrl}/v1/status-lists/${id}`
  }

  /** Reserves the next free index (taking a new block from the storage when this one is used up). */
  async reserve(): Promise<{ listId: string; index: number; url: string }> {
    for (;;) {
      if (this.block && this.next < this.block.to) {
        const index = this.next++
        return { listId: this.block.listId, index, url: this.url(this.block.listId) }
      }
      // Concurrent callers share one allocation; the first to resume installs the block.
      const pending = (this.pending ??= this.o.storage.statusLists.allocate(this.blockSize, this.entries, this.o.now()).finally(() => { this.pending = undefined }))
      const block = await pending
      if (this.block !== block && (!this.block || this.next >= this.block.to)) {
        this.block = block
        this.next = block.from
      }
    }
  }

  /** The write op recording, in the caller's group-committed job, that `index` of `listId` is used. */
  commitOp(listId: string, index: number): WriteOp {
    return this.o.storage.ops.statusListAdvance(listId, index + 1)
  }

  /** Sets the revocation bit of each (list, index), inside the caller's transaction `tx`. */
  async setRevoked(tx: StorageTx, entries: readonly { listId: string; index: number }[]): Promise<void> {
    const now = this.o.now()
    for (const [listId, indices] of byList(entries)) await tx.statusLists.setRevoked(listId, indices, now)
  }

  /** The signed list `id` (cached per version; re-signed when half its validity has passed). */
  get(id: string): Promise<SignedStatusList> {
    return this.cachedSignature(id, this.signed, this.signing, () => this.sign(id))
  }

  /** The list `id` as a Data Integrity-signed VC 2.0 credential (cached per version like the JWT, with its own ETag). */
  getDi(id: string): Promise<SignedDiStatusList> {
    return this.cachedSignature(id, this.signedDi, this.signingDi, () => this.signDi(id))
  }

  // One signature per list version and form: reused while fresh; concurrent requests share one signing.
  private async cachedSignature<T extends { version: number; signedAt: number }>(
    id: string,
    signed: Map<string, T>,
    signing: Map<string, Promise<T>>,
    sign: () => Promise<T>,
  ): Promise<T> {
    const version = await this.o.storage.statusLists.version(id)
    if (version === undefined) throw new AgentIdError('ERR_NOT_FOUND', 'no such status list', { details: { id } })
    const cached = signed.get(id)
    if (cached && cached.version === version && this.o.now() - cached.signedAt < this.validity / 2) return cached
    const key = `${id}@${version}`
    let pending = signing.get(key)
    if (!pending) {
      pending = sign().finally(() => signing.delete(key))
      signing.set(key, pending)
    }
    return pending
  }

  private async signDi(id: string): Promise<SignedDiStatusList & { signedAt: number }> {
    if (!this.o.signDi) throw new AgentIdError('ERR_NOT_FOUND', 'status lists are served as JWTs only', { details: { id } })
    const row = (await this.o.storage.statusLists.get(id))!
    const now = this.o.now()
    const url = this.url(id)
    const credential = await this.o.signDi(
      statusListDocument(this.o.issuerDid, { url, encodedList: StatusList.fromBytes(row.bits).encode(), validFrom: now, validUntil: now + this.validity }),
      now,
    )
    const json = JSON.stringify(credential)
    const entry = { json, version: row.version, etag: `"${createHash('sha256').update(json).digest('base64url').slice(0, 27)}"`, signedAt: now }
    const latest = this.signedDi.get(id)
    if (!latest || latest.version <= row.version) this.signedDi.set(id, entry)
    return entry
  }

  private async sign(id: string): Promise<SignedStatusList & { signedAt: number }> {
    const row = (await this.o.storage.statusLists.get(id))!
    const now = this.o.now()
    const url = this.url(id)
    const jwt = await this.o.sign({
      iss: this.o.issuerDid,
      jti: url,
      iat: now,
      nbf: now,
      exp: now + this.validity,
      vc: {
        '@context': [VC_CONTEXT_V1],
        type: ['VerifiableCredential', STATUS_LIST_CREDENTIAL],
        credentialSubject: {
          id: `${url}#list`,
          type: 'BitstringStatusList',
          statusPurpose: 'revocation',
          encodedList: StatusList.fromBytes(row.bits).encode(),
        },
      },
    })
    const entry = { jwt, version: row.version, etag: `"${createHash('sha256').update(jwt).digest('base64url').slice(0, 27)}"`, signedAt: now }
    const latest = this.signed.get(id)
    if (!latest || latest.version <= row.version) this.signed.set(id, entry)
    return entry
  }
}

function byList(entries: readonly { listId: string; index: number }[]): Map<string, number[]> {
  const out = new Map<string, number[]>()
  for (const e of entries) out.set(e.listId, [...(out.get(e.listId) ?? []), e.index])
  return out
}
