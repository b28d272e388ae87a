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
 * Most entries in one generation of the memory replay cache: a Map of up to 4,096 entries keeps its
 * table (capacity 4,096: ~115 KB) in V8's regular heap. When a Map outgrows its table V8 rehashes every
 * entry into a new one, on the event loop, and a table past ~128 KB is allocated in large-object space:
 * one Map holding every id (about 90,000 at 500 proofs/s for the 181 s a DPoP proof is kept) stalled the
 * process at each growth past 4,096 entries (1.0 ms at 4,096, 1.5 ms at 8,192, 25 ms at 65,536, the least of
 * 7 on a loaded 2-core machine: bench/map-growth.mjs), and again every few tens of thousands of ids as
 * deleted entries filled its table.
 */
const GENERATION_ENTRIES = 4096

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
  // Generations of at most GENERATION_ENTRIES ids, oldest first, each with the latest expiry it has held:
  // ids arrive roughly in expiry order, so a generation expires whole and is dropped at once (no entry
  // deleted one by one, no table rehashed past its size).
  const generations: { readonly ids: Map<string, number>; latest: number }[] = []
  let size = 0
  // Earliest expiry among the entries left by the last full sweep: no sweep before then can free room.
  let nextSweepAt = 0

  /** The generation holding `key`, newest first; -1 when none does. */
  function find(key: string): number {
    for (let i = generations.length - 1; i >= 0; i--) if (generations[i]!.ids.has(key)) return i
    return -1
  }

  function sweep(t: number): void {
    // The oldest generations whose every id has expired.
    while (generations.length > 0 && generations[0]!.latest <= t) size -= generations.shift()!.ids.size
    if (size < max || t < nextSweepAt) return
    let earliest = Number.POSITIVE_INFINITY
    for (const generation of generations) {
      for (const [key, expiresAt] of generation.ids) {
        if (expiresAt <= t) {
          generation.ids.delete(key)
          size--
        } else if (expiresAt < earliest) earliest = expiresAt
      }
    }
    for (let i = generations.length - 1; i >= 0; i--) if (generations[i]!.ids.size === 0) generations.splice(i, 1)
    nextSweepAt = earliest
  }

  return Object.freeze({
    checkAndStore(key: string, expiresAtMs: number): boolean {
      const t = now()
      let at = find(key)
      const known = at === -1 ? undefined : generations[at]!.ids.get(key)!
      if (known !== undefined && known > t) return false
      if (!(expiresAtMs > t)) return true // already expired: nothing to remember, nothing it could replay
      sweep(t)
      if (known !== undefined) {
        at = find(key) // the sweep may have dropped it, or its generation
        if (at !== -1) {
          // An expired entry stored again goes to the newest generation.
          generations[at]!.ids.delete(key)
          size--
          if (generations[at]!.ids.size === 0) generations.splice(at, 1)
        }
      } else if (size >= max) return false
      let newest = generations[generations.length - 1]
      if (newest === undefined || newest.ids.size >= GENERATION_ENTRIES) {
        newest = { ids: new Map(), latest: 0 }
        generations.push(newest)
      }
      newest.ids.set(key, expiresAtMs)
      if (expiresAtMs > newest.latest) newest.latest = expiresAtMs
      size++
      return true
    },
  })
}
