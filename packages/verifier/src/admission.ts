// Which verified credentials enter the memo (internal; used by verifier.ts).
//
// A service that sees a stream of credentials once each (new agents, short-lived ones) gained nothing
// from memoizing them on first sight, and paid for it: each memo entry outlived V8's young-generation
// collections, was promoted, then evicted by the next one-off, and V8 grew its young generation to
// the maximum under that survival rate (bench verify-only: the verifier's own peak RSS). So once the
// memo is full, a credential enters it on its second verification only. The credentials seen once
// are remembered as 32-bit fingerprints in one fixed array: nothing is allocated per credential, and
// a fingerprint collision only admits a credential early (the memo itself is keyed by the full hash).

// base64url character -> its 6 bits (SHA-256 base64url is 43 characters of uniformly random bits).
const SIXBITS = new Uint8Array(128)
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
for (let i = 0; i < 64; i++) SIXBITS[ALPHABET.charCodeAt(i)] = i

/** The largest table: 2^18 fingerprints, 1 MiB. */
const MAX_SLOTS = 1 << 18

/** Fingerprints per bucket: a credential is forgotten only once four others of its bucket came after it. */
const WAYS = 4

export class SecondSight {
  private readonly seen: Int32Array
  /** Next way to overwrite in each bucket (the oldest fingerprint there). */
  private readonly next: Uint8Array
  private readonly mask: number

  /** `memoSize`: the memo's capacity; the table remembers about four times as many credentials. */
  constructor(memoSize: number) {
    let slots = 1024
    while (slots < memoSize * 4 && slots < MAX_SLOTS) slots *= 2
    this.seen = new Int32Array(slots)
    this.next = new Uint8Array(slots / WAYS)
    this.mask = slots / WAYS - 1
  }

  /**
   * True when the credential named by `key` (its SHA-256, base64url) was recorded before; otherwise
   * records it (replacing the oldest fingerprint of its bucket) and returns false. Buckets of four:
   * with one slot per credential, two credentials of one slot seen in turn replaced each other's
   * fingerprint for ever and never entered the memo (about a fifth of 1,000 credentials cycling
   * through a memo of 1,000: bench verify-only's warm pass).
   */
  seenBefore(key: string): boolean {
    const bits = (i: number) => SIXBITS[key.charCodeAt(i) & 0x7f]!
    // Bucket from characters 5 to 7, fingerprint from characters 0 to 4 (30 bits, plus 1 so that no
    // fingerprint is 0, the value of an empty slot).
    const bucket = (bits(5) | (bits(6) << 6) | (bits(7) << 12)) & this.mask
    const print = ((bits(0) | (bits(1) << 6) | (bits(2) << 12) | (bits(3) << 18) | (bits(4) << 24)) + 1) | 0
    const at = bucket * WAYS
    const seen = this.seen
    if (seen[at] === print || seen[at + 1] === print || seen[at + 2] === print || seen[at + 3] === print) return true
    const way = this.next[bucket]!
    seen[at + way] = print
    this.next[bucket] = (way + 1) & (WAYS - 1)
    return false
  }
}
