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
 * Ids per shard the memory replay cache aims at when it holds `maxEntries`. Its ids are spread over a
 * fixed number of Maps, so that no Map grows large: when a Map outgrows its table V8 rehashes every
 * entry into a new one on the caller's thread (bench/map-growth.mjs: 0.02 ms for a Map of 2,048
 * entries, 1.0 ms at 4,096, 25 ms at 65,536, where the table passes ~128 KB and goes to large-object
 * space). 1,024 on average leaves room for the spread of a random hash below 4,096.
 */
const SHARD_TARGET = 1024
/** Most shards (a cache of 64 M ids): the slot array is allocated at creation, the shards on first use. */
const MAX_SHARDS = 65_536
/** Expired entries of its shard a store drops, at most, besides the one room needs. */
const DROP_PER_STORE = 4

/** One shard: its ids with their expiry, and the same pairs in a binary min-heap by expiry. */
class Shard {
  readonly ids = new Map<string, number>()
  // Parallel arrays of the heap: expiry and id. A pair whose expiry is no longer its id's (the id
  // expired and was stored again) is stale and is dropped without touching `ids` when it surfaces.
  readonly exps: number[] = []
  readonly keys: string[] = []

  push(exp: number, key: string): void {
    const { exps, keys } = this
    let i = exps.length
    exps.push(exp)
    keys.push(key)
    while (i > 0) {
      const parent = (i - 1) >> 1
      const pe = exps[parent]!
      if (pe <= exp) break
      exps[i] = pe
      keys[i] = keys[parent]!
      i = parent
    }
    exps[i] = exp
    keys[i] = key
  }

  /** Removes the earliest pair; returns true when it was its id's entry (which is then deleted). */
  pop(): boolean {
    const { exps, keys, ids } = this
    const exp = exps[0]!
    const key = keys[0]!
    const lastExp = exps.pop()!
    const lastKey = keys.pop()!
    const n = exps.length
    if (n > 0) {
      let i = 0
      for (;;) {
        let child = 2 * i + 1
        if (child >= n) break
        if (child + 1 < n && exps[child + 1]! < exps[child]!) child++
        if (exps[child]! >= lastExp) break
        exps[i] = exps[child]!
        keys[i] = keys[child]!
        i = child
      }
      exps[i] = lastExp
      keys[i] = lastKey
    }
    if (ids.get(key) !== exp) return false
    ids.delete(key)
    return true
  }
}

/**
 * An in-process {@link ReplayCache}: bounded, entries dropped once expired. When it is full of live
 * entries it refuses new ids rather than forget one that could then be replayed. One process only:
 * a service with several instances needs a shared store behind the same interface.
 *
 * Its ids are spread over Maps of about a thousand ids each (one per 1,024 of `maxEntries`, a power of
 * two) by a hash of the whole id keyed with a random seed per cache, so a client choosing its ids cannot
 * pile them into one Map: an id costs one Map look-up at any size, and no call rehashes more than one
 * small Map. Each Map keeps its ids in a heap by expiry, so an expired id is found without a walk.
 * @example
 * const verifier = createVerifier({ trustedIssuers, replayCache: createMemoryReplayCache({ maxEntries: 10_000 }) })
 */
export function createMemoryReplayCache(options: MemoryReplayCacheOptions = {}): ReplayCache {
  const max = options.maxEntries ?? 100_000
  if (!Number.isSafeInteger(max) || max < 1) throw new TypeError('createMemoryReplayCache: maxEntries must be a positive integer')
  const now = options.clock ?? Date.now
  if (typeof now !== 'function') throw new TypeError('createMemoryReplayCache: clock must be a function')
  return new ShardedCache(max, now)
}

/**
 * The memory replay cache. Its steps are methods shared by every cache, so V8 optimizes them once per
 * process rather than once per cache (a closure per cache is compiled anew for each); `checkAndStore`
 * is bound, so it may still be called detached from its object, and the object is frozen, as before.
 */
class ShardedCache implements ReplayCache {
  readonly #max: number
  readonly #now: () => number
  readonly #mask: number
  readonly #shards: (Shard | undefined)[]
  // The hash key: an Int32Array, whose elements V8 reads as int32 whatever their value.
  readonly #seed = crypto.getRandomValues(new Int32Array(2))
  // Entries held (live or expired, not yet dropped); never above max.
  #size = 0
  // At most the earliest expiry held: lowered by every store, made exact by a scan that finds nothing
  // expired. Before then no entry can have expired, so a full cache refuses without a scan.
  #earliest = Number.POSITIVE_INFINITY
  // Where the next scan of a full cache starts, so that scans share the work round the shards.
  #cursor = 0

  constructor(max: number, now: () => number) {
    this.#max = max
    this.#now = now
    const count = shardsFor(max)
    this.#mask = count - 1
    this.#shards = new Array<Shard | undefined>(count).fill(undefined)
    this.checkAndStore = this.checkAndStore.bind(this)
    Object.freeze(this)
  }

  checkAndStore(key: string, expiresAtMs: number): boolean {
    if (typeof key !== 'string') throw new TypeError('checkAndStore: key must be a string')
    const clock = this.#now
    const t = clock()
    const seed = this.#seed
    const slot = halfSipHash32(key, seed[0]!, seed[1]!) & this.#mask
    let shard = this.#shards[slot]
    const known = shard?.ids.get(key)
    if (known !== undefined && known > t) return false
    if (!(expiresAtMs > t)) return true // already expired: nothing to remember, nothing it could replay
    if (shard === undefined) shard = this.#shards[slot] = new Shard()
    // A few of this shard's expired entries: ids expire as they come, so stores keep pace with expiry.
    const { exps } = shard
    for (let n = 0; n < DROP_PER_STORE && exps.length > 0 && exps[0]! <= t; n++) if (shard.pop()) this.#size--
    if (known === undefined) {
      if (this.#size >= this.#max && !this.#makeRoom(t)) return false
      this.#size++
    } else if (!shard.ids.has(key)) this.#size++ // its expired entry was just dropped: its room is free
    shard.ids.set(key, expiresAtMs) // an expired entry stored again: its old pair goes stale
    shard.push(expiresAtMs, key)
    if (expiresAtMs < this.#earliest) this.#earliest = expiresAtMs
    return true
  }

  /** For tests: entries held, heap pairs (held plus stale), Map entries, shards made and their count. */
  static stats(cache: ShardedCache): { size: number; pairs: number; mapped: number; shardsMade: number; shardCount: number; largest: number } {
    let pairs = 0
    let mapped = 0
    let shardsMade = 0
    let largest = 0
    for (const shard of cache.#shards) {
      if (shard === undefined) continue
      shardsMade++
      pairs += shard.exps.length
      mapped += shard.ids.size
      largest = Math.max(largest, shard.ids.size)
    }
    return { size: cache.#size, pairs, mapped, shardsMade, shardCount: cache.#shards.length, largest }
  }

  /** Drops expired entries until one is free; false when every entry held is live. */
  #makeRoom(t: number): boolean {
    if (t < this.#earliest) return false
    const shards = this.#shards
    const mask = this.#mask
    let least = Number.POSITIVE_INFINITY
    for (let n = 0; n <= mask; n++) {
      const shard = shards[this.#cursor]
      if (shard !== undefined) {
        const { exps } = shard
        while (exps.length > 0 && exps[0]! <= t) {
          if (shard.pop() && --this.#size < this.#max) return true
        }
        if (exps.length > 0 && exps[0]! < least) least = exps[0]!
      }
      this.#cursor = (this.#cursor + 1) & mask
    }
    this.#earliest = least // every shard seen, nothing expired left in any: exact
    return false
  }
}

/** Internal, for tests: what a memory replay cache holds (not exported by index.ts). */
export function memoryReplayCacheStats(cache: ReplayCache): ReturnType<typeof ShardedCache.stats> {
  if (!(cache instanceof ShardedCache)) throw new TypeError('memoryReplayCacheStats: not a memory replay cache')
  return ShardedCache.stats(cache)
}

/** Shards for a cache of `max` ids: a power of two, about SHARD_TARGET ids each when full. */
function shardsFor(max: number): number {
  let n = 1
  while (n < MAX_SHARDS && n * SHARD_TARGET < max) n *= 2
  return n
}

/** Xored into the key's second word for an id with a code unit over 255 (hashed as UTF-16LE, not Latin-1). */
export const WIDE = 0x5bd1e995

/**
 * HalfSipHash-c-d with a 32-bit result (Aumasson and Bernstein's reference `halfsiphash`, outlen 4) of
 * `s` under the 64-bit key (k0, k1), given as two little-endian words; c compression rounds per 32-bit
 * word, d finalization rounds. `s` is taken as its Latin-1 bytes, four characters to a word, when every
 * code unit is below 256 (ids are ASCII), else as its UTF-16LE bytes, two code units to a word, under the
 * key with WIDE xored into k1, so that no Latin-1 id and no wider id are hashed under the same key. A
 * keyed PRF: without the key no set of ids can be chosen to share a shard, which a plain multiplicative
 * or Murmur-style hash does not give (they have collisions that hold for every seed). The cache uses 1-3,
 * the rounds of Rust's SipHash-1-3 and of Linux's hsiphash; the tests check 2-4 against the reference
 * vectors through this same code.
 */
export function halfSipHash32(s: string, k0: number, k1: number, c = 1, d = 3): number {
  const n = s.length
  let v0 = k0 | 0
  let v1 = k1 | 0
  let v2 = (0x6c796765 ^ k0) | 0
  let v3 = (0x74656462 ^ k1) | 0
  let i = 0
  const whole = n & ~3
  for (; i < whole; i += 4) {
    const c0 = s.charCodeAt(i)
    const c1 = s.charCodeAt(i + 1)
    const c2 = s.charCodeAt(i + 2)
    const c3 = s.charCodeAt(i + 3)
    if ((c0 | c1 | c2 | c3) > 255) return wideHalfSipHash32(s, k0, (k1 ^ WIDE) | 0, c, d)
    const m = c0 | (c1 << 8) | (c2 << 16) | (c3 << 24)
    v3 ^= m
    for (let r = 0; r < c; r++) {
      v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16)
      v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2
      v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0
      v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16)
    }
    v0 ^= m
  }
  // The last 0-3 characters with the length (mod 256) in the top byte.
  let m = (n << 24) | 0
  for (let shift = 0; i < n; i++, shift += 8) {
    const u = s.charCodeAt(i)
    if (u > 255) return wideHalfSipHash32(s, k0, (k1 ^ WIDE) | 0, c, d)
    m |= u << shift
  }
  return finish(v0, v1, v2, v3, m, c, d)
}

/** halfSipHash32 of the UTF-16LE bytes of `s`, two code units to a word. */
function wideHalfSipHash32(s: string, k0: number, k1: number, c: number, d: number): number {
  const n = s.length
  let v0 = k0 | 0
  let v1 = k1 | 0
  let v2 = (0x6c796765 ^ k0) | 0
  let v3 = (0x74656462 ^ k1) | 0
  const whole = n & ~1
  for (let i = 0; i < whole; i += 2) {
    const m = s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16)
    v3 ^= m
    for (let r = 0; r < c; r++) {
      v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16)
      v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2
      v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0
      v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16)
    }
    v0 ^= m
  }
  return finish(v0, v1, v2, v3, ((n * 2) << 24) | (n & 1 ? s.charCodeAt(n - 1) : 0), c, d)
}

/** The last block `m` (tail bytes, byte length on top) and the finalization rounds. */
function finish(v0: number, v1: number, v2: number, v3: number, m: number, c: number, d: number): number {
  v3 ^= m
  for (let r = 0; r < c; r++) {
    v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16)
    v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2
    v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0
    v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16)
  }
  v0 ^= m
  v2 ^= 0xff
  for (let r = 0; r < d; r++) {
    v0 = (v0 + v1) | 0; v1 = (v1 << 5) | (v1 >>> 27); v1 ^= v0; v0 = (v0 << 16) | (v0 >>> 16)
    v2 = (v2 + v3) | 0; v3 = (v3 << 8) | (v3 >>> 24); v3 ^= v2
    v0 = (v0 + v3) | 0; v3 = (v3 << 7) | (v3 >>> 25); v3 ^= v0
    v2 = (v2 + v1) | 0; v1 = (v1 << 13) | (v1 >>> 19); v1 ^= v2; v2 = (v2 << 16) | (v2 >>> 16)
  }
  return (v1 ^ v3) >>> 0
}
