// The replay cache and the presentation constants (internal module; exported by index.ts): kept apart
// from presentation.ts, which createVerifier loads at the first verifyPresentation or verifyDelegation
// only (with @agentid/delegation), so that a service verifying credentials never loads them.

/** `typ` of a presentation: never confused with a credential, a proof of possession or an access token. */
export const PRESENTATION_TYP = 'agentid-vp+jwt'
/** Longest lifetime (`exp - iat`) of a presentation, in seconds. */
export const MAX_PRESENTATION_LIFETIME_SEC = 300

/**
 * Remembers presentation ids until they expire, so each is accepted once. Share one store between
 * the instances of a service (e.g. Redis `SET key 1 NX PXAT expiresAtMs`).
 */
export interface ReplayCache {
  /**
   * Records `key` until `expiresAtMs` (ms since the epoch) and returns true, or returns false when
   * `key` is already recorded and not expired (a replay) or cannot be recorded. Must be atomic.
   */
  checkAndStore(key: string, expiresAtMs: number): boolean | Promise<boolean>
}

export interface MemoryReplayCacheOptions {
  /** Most ids held at once. Default 100,000. When every one is still live, new ids are refused (fail closed). */
  maxEntries?: number
  /** Clock in milliseconds since the epoch. Default `Date.now`. */
  clock?: () => number
}

/**
 * An in-process {@link ReplayCache}: bounded, entries dropped once expired. When it is full of live
 * entries it refuses new ids rather than forget one that could then be replayed. One process only:
 * a service with several instances needs a shared store behind the same interface.
 * @example
 * const verifier = createVerifier({ trustedIssuers, replayCache: createMemoryReplayCache({ maxEntries: 10_000 }) })
 */
export function createMemoryReplayCache(options: MemoryReplayCacheOptions = {}): ReplayCache {
  const max = options.maxEntries ?? 100_000
  if (!Number.isSafeInteger(max) || max < 1) throw new TypeError('createMemoryReplayCache: maxEntries must be a positive integer')
  const now = options.clock ?? Date.now
  if (typeof now !== 'function') throw new TypeError('createMemoryReplayCache: clock must be a function')
  const seen = new Map<string, number>()
  // Earliest expiry among the entries left by the last full sweep: no sweep before then can free room.
  let nextSweepAt = 0
  // Expiry of the entry at the head when last looked at: the head is not walked again before then
  // (the walk, an iterator and an entry pair, ran on every call) unless the head may have changed.
  let headExpiresAt = 0

  function sweep(t: number): void {
    // Insertion order roughly follows expiry: drop the expired head cheaply.
    if (t >= headExpiresAt) {
      headExpiresAt = Number.POSITIVE_INFINITY
      for (const [key, expiresAt] of seen) {
        if (expiresAt > t) {
          headExpiresAt = expiresAt
          break
        }
        seen.delete(key)
      }
    }
    if (seen.size < max || t < nextSweepAt) return
    let earliest = Number.POSITIVE_INFINITY
    for (const [key, expiresAt] of seen) {
      if (expiresAt <= t) seen.delete(key)
      else if (expiresAt < earliest) earliest = expiresAt
    }
    nextSweepAt = earliest
    headExpiresAt = 0 // the head may have gone
  }

  return Object.freeze({
    checkAndStore(key: string, expiresAtMs: number): boolean {
      const t = now()
      const known = seen.get(key)
      if (known !== undefined && known > t) return false
      if (!(expiresAtMs > t)) return true // already expired: nothing to remember, nothing it could replay
      sweep(t)
      if (known === undefined && seen.size >= max) return false
      if (known !== undefined) {
        seen.delete(key) // an expired entry stored again goes to the tail: the head may change
        headExpiresAt = 0
      } else if (seen.size === 0) headExpiresAt = expiresAtMs
      seen.set(key, expiresAtMs)
      return true
    },
  })
}
