// Verified delegation links memoized by their exact bytes (internal; used by delegation.ts).
//
// What a link's bytes alone decide is kept: its decoded, well-formed content and that its signature
// verified under a key of its signer. What depends on the call or on time is not: linkage to the
// previous link (iss, parentHash), depth against the parent, nbf/exp against the clock, the root's
// trust for the resource, the request and the invoker, and revocation status are all checked on
// every call, hit or miss. Attenuation against the parent is a function of both links' bytes, which
// the parentHash compared on every call fixes: it is checked once per link. On a hit the key that
// verified the signature must still be one of the signer's keys for the purpose (the DID cache's
// current resolution), or the signature is checked again.
import type { CapabilityLink } from '@agentid/delegation'
import type { VerificationKey } from './keys.js'
import { BoundedCache } from './lru.js'

/** A link whose signature verified, by its compact JWT (the exact string: a valid link is ASCII). */
export interface MemoizedLink {
  readonly link: CapabilityLink
  /**
   * Its linkHash (base64url SHA-256), which its child must name: not computed again on a hit. Null when
   * it was verified as a leaf (nothing named it): computed on a hit that has a child.
   */
  readonly hash: string | null
  /** The JWS header's kid, to look the signer's keys up again on a hit; undefined when `key` is null (nothing is looked up). */
  readonly kid: string | undefined
  /**
   * The key its signature verified under; null when the signer is a did:key, whose one key is the
   * DID itself (the key resolver refuses a document naming another): the key cannot have changed,
   * so it is not looked up again on a hit, and the entry keeps no KeyObject (a native handle that
   * every garbage collection must process, for nothing).
   */
  readonly key: VerificationKey | null
  /**
   * It passed the attenuation check against the link its parentHash names (whose bytes that hash
   * fixes, so the verdict cannot change): skipped on a hit. False for a root.
   */
  readonly attenuates: boolean
}

/** Default number of links memoized per verifier: an entry is the link's text and its parsed form, about 2.5 KB. */
export const DEFAULT_LINK_MEMO_SIZE = 1_000
/**
 * Longest link memoized. The key is the link's own text (looking it up costs a string hash, where a
 * SHA-256 cost 4 µs per link and was half of a warm depth-8 chain), so an entry holds it: this bound
 * keeps the memo within size × (4 KiB + the parsed link). Links are about 1.2 KB; a longer one is
 * verified in full on every call.
 */
export const MAX_MEMOIZED_LINK_CHARS = 4096

export class LinkMemo {
  private readonly cache: BoundedCache<string, MemoizedLink>

  constructor(size: number) {
    this.cache = new BoundedCache(size)
  }

  get(token: string): MemoizedLink | undefined {
    return token.length > MAX_MEMOIZED_LINK_CHARS ? undefined : this.cache.get(token)
  }

  set(token: string, entry: MemoizedLink): void {
    if (token.length <= MAX_MEMOIZED_LINK_CHARS) this.cache.set(token, Object.freeze(entry))
  }

  clear(): void {
    this.cache.clear()
  }
}
