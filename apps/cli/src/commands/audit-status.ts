// The status-list check of `agentid audit verify`: which revocation bits the issuer log says must be
// set (issuing entries name each credential's or link's status entry, revocation entries name what
// they took down), compared with the status lists the issuer serves. Entry shapes: apps/issuer README
// "The issuer log".
import type { StatusList } from '@agentid/core'

/** A status entry as a log entry names it. */
export interface LoggedStatus { list: string; index: number }

/** One disagreement between the log and the status lists. */
export type StatusMismatch =
  | { kind: 'set-without-revocation'; list: string; index: number; id: string; issuedAt: number }
  | { kind: 'revoked-but-clear'; list: string; index: number; id: string; revokedAt: number }
  | { kind: 'set-without-issuance'; list: string; index: number }
  | { kind: 'index-reused'; list: string; index: number; id: string; issuedAt: number; otherId: string; otherIssuedAt: number }
  | { kind: 'index-out-of-range'; list: string; index: number; id: string; issuedAt: number }
  | { kind: 'malformed-status'; id: string; issuedAt: number }

/** What could not be checked: entries written before status entries were logged, or logged without details. */
export interface NotCheckable {
  /** Issuing entries naming no status entry. */
  issued: number
  /** Revoked ids whose status entry the log does not name. */
  revoked: number
  /** Set bits that no logged status entry owns, in a log with issuing entries of the first kind. */
  unattributedBits: number
  /** Entries logged with `detailsOmitted` (over 64 KiB) that would have named statuses or revocations. */
  omitted: number
}

/** Status list ids are the issuer's (`1`, `2`, …); anything that is not a plain path segment is refused. */
const LIST_ID = /^[A-Za-z0-9._~-]{1,64}$/

const ISSUING: Record<string, ['credential' | 'delegation', string, string][]> = {
  'agent.spawned': [['credential', 'credentialId', 'status'], ['delegation', 'delegationId', 'delegationStatus']],
  'agent.renewed': [['credential', 'credentialId', 'status']],
  'approver.enrolled': [['credential', 'credentialId', 'status']],
  'delegation.granted': [['delegation', 'delegationId', 'status']],
  'delegation.registered': [['delegation', 'delegationId', 'status']],
}

const MAX_INDEX = 2 ** 32 - 1
const MAX_LISTS = 2 ** 20

/**
 * The bits a log says must be set, fed one parsed entry at a time in log order. A status entry is kept
 * as one number (list number × 2³² + index), so a million-entry log costs a few maps of numbers, and
 * no entry is kept.
 */
export class StatusLedger {
  /** List id → its number in the bit keys, in order of first use. */
  readonly #listNo = new Map<string, number>()
  readonly #listIds: string[] = []
  /** Bit key → the log index of the entry that issued it. */
  readonly #issuedAt = new Map<number, number>()
  /** Credential id / link id → its bit key. */
  readonly #credentials = new Map<string, number>()
  readonly #delegations = new Map<string, number>()
  /** Bit key → the log index of the entry that revoked it. */
  readonly #revoked = new Map<number, number>()
  /** Status entries used twice: the second use (the first is in #issuedAt). */
  readonly #reused: { bit: number; id: string; issuedAt: number }[] = []
  readonly #malformed: StatusMismatch[] = []
  readonly notCheckable: NotCheckable = { issued: 0, revoked: 0, unattributedBits: 0, omitted: 0 }

  /** Number of status entries the log names. */
  get statuses(): number {
    return this.#issuedAt.size
  }

  /** The ids of the lists the log names, sorted. */
  lists(): string[] {
    return [...this.#listIds].sort()
  }

  add(e: { action?: unknown; details?: unknown; detailsOmitted?: unknown }, index: number): void {
    const action = typeof e.action === 'string' ? e.action : ''
    const d = (typeof e.details === 'object' && e.details !== null ? e.details : {}) as Record<string, unknown>
    const issuing = Object.hasOwn(ISSUING, action) ? ISSUING[action]! : undefined
    const revoking = action === 'agent.revoked' || action === 'credential.revoked' || action === 'delegation.revoked' || action === 'approver.revoked'
    if (e.detailsOmitted === true) {
      if (issuing || revoking) this.notCheckable.omitted++
      return
    }
    if (issuing) {
      for (const [kind, idField, statusField] of issuing) {
        const id = d[idField]
        if (typeof id !== 'string') continue // a spawn without a granted tool profile has no link
        this.#issue(kind === 'credential' ? this.#credentials : this.#delegations, id, d[statusField], index)
      }
      return
    }
    if (!revoking) return
    const ids = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : [])
    const credentials = action === 'agent.revoked' ? ids(d.credentials) : action === 'credential.revoked' || action === 'approver.revoked' ? ids(d.credentialId) : []
    const delegations = action === 'agent.revoked' || action === 'delegation.revoked' ? ids(d.delegations) : []
    for (const id of credentials) this.#revoke(this.#credentials, id, index)
    for (const id of delegations) this.#revoke(this.#delegations, id, index)
  }

  #issue(byId: Map<string, number>, id: string, status: unknown, index: number): void {
    if (status === undefined) {
      // Nothing kept: a revocation of an id with no known bit is counted not checkable (#revoke).
      this.notCheckable.issued++
      return
    }
    const s = status as Partial<LoggedStatus> | null
    const ok = typeof s === 'object' && s !== null && typeof s.list === 'string' && LIST_ID.test(s.list) && Number.isSafeInteger(s.index) && s.index! >= 0 && s.index! <= MAX_INDEX
    let listNo = ok ? this.#listNo.get(s.list!) : undefined
    if (ok && listNo === undefined && this.#listIds.length < MAX_LISTS) {
      listNo = this.#listIds.push(s.list!) - 1
      this.#listNo.set(s.list!, listNo)
    }
    if (listNo === undefined) {
      this.#malformed.push({ kind: 'malformed-status', id, issuedAt: index })
      return
    }
    const bit = listNo * 2 ** 32 + s!.index!
    if (this.#issuedAt.has(bit)) {
      this.#reused.push({ bit, id, issuedAt: index })
      return
    }
    this.#issuedAt.set(bit, index)
    byId.set(id, bit)
  }

  #revoke(byId: Map<string, number>, id: string, index: number): void {
    const bit = byId.get(id)
    if (bit === undefined) {
      // Issued before status entries were logged (or never logged as issued: the sequence check's job).
      this.notCheckable.revoked++
      return
    }
    if (!this.#revoked.has(bit)) this.#revoked.set(bit, index)
  }

  #split(bit: number): { list: string; index: number } {
    return { list: this.#listIds[Math.floor(bit / 2 ** 32)]!, index: bit % 2 ** 32 }
  }

  /**
   * Every disagreement between the log and `lists` (list id → the list as served, verified). A
   * revocation logged at or after entry `servedAfter` may postdate the served lists: its bit being
   * clear is not a mismatch. Lists missing from `lists` are not compared.
   */
  compare(lists: ReadonlyMap<string, StatusList>, servedAfter = Number.POSITIVE_INFINITY): { mismatches: StatusMismatch[]; bits: number; revoked: number } {
    // Bit keys first; the ids they belong to are looked up once, for the mismatches only.
    const found: { kind: StatusMismatch['kind']; bit: number; at: number }[] = []
    let bits = 0
    let revoked = 0
    const served = this.#listIds.map((id) => lists.get(id))
    for (const [bit, issuedAt] of this.#issuedAt) {
      const list = served[Math.floor(bit / 2 ** 32)]
      if (!list) continue
      const index = bit % 2 ** 32
      if (index >= list.length) {
        found.push({ kind: 'index-out-of-range', bit, at: issuedAt })
        continue
      }
      bits++
      const set = list.get(index) !== 0
      const revokedAt = this.#revoked.get(bit)
      if (revokedAt !== undefined) revoked++
      if (set && revokedAt === undefined) found.push({ kind: 'set-without-revocation', bit, at: issuedAt })
      else if (!set && revokedAt !== undefined && revokedAt < servedAfter) found.push({ kind: 'revoked-but-clear', bit, at: revokedAt })
    }
    const mismatches: StatusMismatch[] = [...this.#malformed]
    const owner = found.length > 0 || this.#reused.length > 0 ? this.#owners() : new Map<number, string>()
    for (const r of this.#reused) mismatches.push({ kind: 'index-reused', ...this.#split(r.bit), id: r.id, issuedAt: r.issuedAt, otherId: owner.get(r.bit)!, otherIssuedAt: this.#issuedAt.get(r.bit)! })
    for (const f of found) {
      const where = this.#split(f.bit)
      const id = owner.get(f.bit)!
      if (f.kind === 'revoked-but-clear') mismatches.push({ kind: f.kind, ...where, id, revokedAt: f.at })
      else if (f.kind === 'set-without-revocation' || f.kind === 'index-out-of-range') mismatches.push({ kind: f.kind, ...where, id, issuedAt: f.at })
    }
    // Set bits no logged status entry owns. With issuing entries that named no status (written before
    // status entries were logged), such a bit may be one of theirs: not checkable, not a mismatch.
    let unattributed = 0
    for (const [list, servedList] of lists) {
      const listNo = this.#listNo.get(list)
      for (const index of setBits(servedList)) {
        if (listNo !== undefined && this.#issuedAt.has(listNo * 2 ** 32 + index)) continue
        if (this.notCheckable.issued > 0) unattributed++
        else mismatches.push({ kind: 'set-without-issuance', list, index })
      }
    }
    this.notCheckable.unattributedBits = unattributed
    return { mismatches, bits, revoked }
  }

  // Bit key → the credential or link first issued with it.
  #owners(): Map<number, string> {
    const out = new Map<number, string>()
    for (const byId of [this.#credentials, this.#delegations]) for (const [id, bit] of byId) if (!out.has(bit)) out.set(bit, id)
    return out
  }
}

/** Indices of the non-zero entries of a one-bit list (zero bytes skipped: a list is mostly zeros). */
function* setBits(list: StatusList): Generator<number> {
  const bytes = list.bytes
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!
    if (b === 0) continue
    for (let bit = 0; bit < 8; bit++) if (b & (0x80 >> bit)) yield i * 8 + bit
  }
}

/** One line per mismatch, naming the credential or link and its bit. */
export function describeMismatch(m: StatusMismatch): string {
  switch (m.kind) {
    case 'set-without-revocation':
      return `${m.list}#${m.index}: bit set but no entry revokes ${m.id} (issued by entry ${m.issuedAt})`
    case 'revoked-but-clear':
      return `${m.list}#${m.index}: ${m.id} revoked by entry ${m.revokedAt} but its bit is clear`
    case 'set-without-issuance':
      return `${m.list}#${m.index}: bit set but no entry issued this status entry`
    case 'index-reused':
      return `${m.list}#${m.index}: used by ${m.otherId} (entry ${m.otherIssuedAt}) and again by ${m.id} (entry ${m.issuedAt})`
    case 'index-out-of-range':
      return `${m.list}#${m.index}: ${m.id} (entry ${m.issuedAt}) names an index past the end of the list`
    case 'malformed-status':
      return `entry ${m.issuedAt}: the status entry of ${m.id} is malformed`
  }
}
