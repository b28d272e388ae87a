// Verified delegation links memoized by their exact bytes (internal; used by delegation.ts).
//
// What a link's bytes alone decide is kept: its decoded, well-formed content and that its signature
// verified under a key of its signer. What depends on the call or on time is not: linkage to the
// previous link (iss, parentHash), depth and attenuation against the parent, nbf/exp against the
// clock, the root's trust for the resource, the request and the invoker, and revocation status are
// all checked on every call, hit or miss. On a hit the key that verified the signature must still be
// one of the signer's keys for the purpose (the DID cache's current resolution), or the signature is
// checked again.
import type { CapabilityLink } from '@agentid/delegation'
import type { VerificationKey } from './keys.js'
import { BoundedCache } from './lru.js'

/** A link whose signature verified, by the base64url SHA-256 of its compact JWT (its linkHash). */
export interface MemoizedLink {
  readonly link: CapabilityLink
  /** The JWS header's kid, to look the signer's keys up again on a hit. */
  readonly kid: string | undefined
  /** The key its signature verified under. */
  readonly key: VerificationKey
}

/** Default number of links memoized per verifier: an entry is the parsed link, about 1 KB. */
export const DEFAULT_LINK_MEMO_SIZE = 1_000

export class LinkMemo {
  private readonly cache: BoundedCache<string, MemoizedLink>

  constructor(size: number) {
    this.cache = new BoundedCache(size)
  }

  get(hash: string): MemoizedLink | undefined {
    return this.cache.get(hash)
  }

  set(hash: string, entry: MemoizedLink): void {
    this.cache.set(hash, Object.freeze(entry))
  }

  clear(): void {
    this.cache.clear()
  }
}
