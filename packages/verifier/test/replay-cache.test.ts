import { describe, expect, it } from 'vitest'
import { createMemoryReplayCache, type ReplayCache } from '@agentid/verifier'
import { halfSipHash32, memoryReplayCacheStats, WIDE } from '../src/replay-cache.js'

function testClock(start: number): (() => number) & { set(t: number): void } {
  let t = start
  return Object.assign(() => t, { set: (v: number) => void (t = v) })
}

const store = (cache: ReplayCache, key: string, exp: number): boolean => cache.checkAndStore(key, exp) as boolean

/** A deterministic generator (mulberry32), so a failing sequence can be replayed from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

describe('halfSipHash32', () => {
  // The reference implementation's vectors_hsip32: key 00..07, message the n bytes 00..n-1.
  const vectors = [
    'a9359f5b', '27475ab8', 'fa62a603', '8afee704', '2a6e4689', 'c5fab669', '5863fc23', '8bcf63c5', 'd0b8848f', 'f806e779',
    '94b07934', '08083050', '57f0872f', '77e663ff', 'd6fff87c', '74fe2b97', 'd9b5ac84', 'c474645b', '465b8d9b', '7befe387',
    'e34d1045', '613f62b3', '70f367fe', 'e6adb8bd', '27400c63', '26787875', '4f567b5f', '3ab0e669', 'b0644000', 'ff670fb4',
    '509e338b', '5d589f1a', 'fee72112', '33753259', '6a434f8c', 'fe28b729', 'e75cc6ec', '697e8d54', '63688b0f', '650b62b4',
    'b6bc1840', '5d074505', '2442fd2e', '7bb7863a', '7705d548', 'd75208b1', 'b6d499c8', '0892202e', '69e12ce3', '8db580e5',
    '369764c6', '016e0204', '3b85f3d4', 'fedb66be', '1e692a3a', 'c68984c0', 'a5c5b940', '9be9e88c', '7dbc8140', '7c078ec5',
    'd4e76c73', '428fcbb9', 'bd83997a', '59ea4a74',
  ]
  const le = (h: number) => [h & 255, (h >>> 8) & 255, (h >>> 16) & 255, h >>> 24].map((b) => b.toString(16).padStart(2, '0')).join('')

  it('matches the reference vectors: Latin-1 ids as their bytes, at every length 0-63', () => {
    for (let n = 0; n < 64; n++) {
      const s = String.fromCharCode(...Array.from({ length: n }, (_, i) => i))
      expect(le(halfSipHash32(s, 0x03020100, 0x07060504, 2, 4)), `length ${n}`).toBe(vectors[n])
    }
  })

  it('matches the reference vectors: wider ids as their UTF-16LE bytes (under k1 ^ WIDE), at every even length 2-62', () => {
    for (let n = 2; n < 64; n += 2) {
      let s = '' // the code units 0x0100, 0x0302, ...: the bytes 00 01 02 03 ...; the first is over 255
      for (let i = 0; i < n; i += 2) s += String.fromCharCode(i | ((i + 1) << 8))
      expect(le(halfSipHash32(s, 0x03020100, 0x07060504 ^ WIDE, 2, 4)), `length ${n}`).toBe(vectors[n])
    }
  })

  it('a code unit over 255 anywhere switches to UTF-16 (the same bytes never hash alike in both)', () => {
    const k0 = 0x1234567, k1 = -0x7654321
    // 'AB' as Latin-1 is the bytes 41 42; the one code unit 0x4241 is the same two bytes as UTF-16LE.
    expect(halfSipHash32('AB', k0, k1)).not.toBe(halfSipHash32('\u4241', k0, k1))
    for (const at of [0, 1, 2, 3, 4, 5, 6, 7, 8]) {
      const narrow = 'abcdefghi'
      const wide = narrow.slice(0, at) + '\u0161' + narrow.slice(at + 1) // 'a'..'i' with one high byte added
      expect(halfSipHash32(wide, k0, k1), `at ${at}`).not.toBe(halfSipHash32(narrow, k0, k1))
    }
  })

  it('reads every bit of every code unit, and the length', () => {
    const k0 = 0x1234567, k1 = -0x7654321
    const base = halfSipHash32('dpop abc', k0, k1)
    expect(halfSipHash32('dpop abc\u0000', k0, k1)).not.toBe(base) // a trailing NUL changes the length
    expect(halfSipHash32('dpop ab\u0163', k0, k1)).not.toBe(base) // 'c' (0x63) with a high byte
    expect(halfSipHash32('dpop abc', k0 ^ 1, k1)).not.toBe(base)
    expect(halfSipHash32('dpop abc', k0, k1 ^ (1 << 31))).not.toBe(base)
    expect(halfSipHash32('', k0, k1)).toBe(halfSipHash32('', k0, k1))
  })

  it('spreads ids chosen to collide under an unkeyed hash: only the key decides where they go', () => {
    // Ids differing only in the high byte of their code units (low bits equal: a multiplicative hash
    // reduced mod 2^k sees the same ids), and the same characters in other orders.
    const highOnly = Array.from({ length: 4096 }, (_, i) => `dpop jkt ${String.fromCharCode(0x41 + ((i & 15) << 8), 0x41 + (((i >> 4) & 15) << 8), 0x41 + ((i >> 8) << 8))}`)
    const shuffled = Array.from({ length: 4096 }, (_, i) => {
      const random = rng(i + 1)
      const chars = [...'abcdefghijkl']
      for (let j = chars.length - 1; j > 0; j--) {
        const k = Math.floor(random() * (j + 1))
        ;[chars[j], chars[k]] = [chars[k]!, chars[j]!]
      }
      return `dpop jkt ${chars.join('')}`
    })
    const seed = crypto.getRandomValues(new Int32Array(2))
    expect(new Set(shuffled).size).toBeGreaterThan(4000)
    for (const ids of [highOnly, [...new Set(shuffled)]]) {
      const load = new Array<number>(128).fill(0)
      for (const id of ids) load[halfSipHash32(id, seed[0]!, seed[1]!) & 127]!++
      // ≈ 32 each; a hash that ignored the varied bits would put them all in a few shards.
      expect(Math.max(...load), `${ids.length} ids`).toBeLessThan((ids.length / 128) * 2.5)
    }
  })

  it('ids found to share a shard under one key are spread under another', () => {
    const same: string[] = []
    for (let i = 0; same.length < 512; i++) {
      const id = `dpop jkt ${i}`
      if ((halfSipHash32(id, 1, 2) & 127) === 0) same.push(id)
    }
    const seed = crypto.getRandomValues(new Int32Array(2))
    const load = new Array<number>(128).fill(0)
    for (const id of same) load[halfSipHash32(id, seed[0]!, seed[1]!) & 127]!++
    expect(Math.max(...load)).toBeLessThan(24) // 4 on average
  })
})

describe('createMemoryReplayCache: decisions', () => {
  it('accepts an id once until it expires, then once more', () => {
    const t = testClock(0)
    const cache = createMemoryReplayCache({ clock: t })
    expect(store(cache, 'alice 1', 1000)).toBe(true)
    expect(store(cache, 'alice 1', 1000)).toBe(false)
    expect(store(cache, 'alice 1', 99_999)).toBe(false) // a later expiry does not make it new
    t.set(999)
    expect(store(cache, 'alice 1', 5000)).toBe(false)
    t.set(1000)
    expect(store(cache, 'alice 1', 5000)).toBe(true) // expired: stored again
    expect(store(cache, 'alice 1', 5000)).toBe(false)
    t.set(4999)
    expect(store(cache, 'alice 1', 9000)).toBe(false)
  })

  it('accepts an already-expired id without storing it (it takes no room)', () => {
    const t = testClock(1000)
    const cache = createMemoryReplayCache({ maxEntries: 1, clock: t })
    expect(store(cache, 'mallory', 1000)).toBe(true)
    expect(store(cache, 'mallory', 999)).toBe(true)
    expect(store(cache, 'mallory', Number.NaN)).toBe(true) // not after now: nothing to remember
    expect(memoryReplayCacheStats(cache).size).toBe(0)
    expect(store(cache, 'bob', 2000)).toBe(true) // the one place is still free
    expect(store(cache, 'mallory', 2000)).toBe(false) // and now taken
  })

  it('a cache full of live ids refuses new ones and never forgets a live one', () => {
    const t = testClock(0)
    const cache = createMemoryReplayCache({ maxEntries: 5000, clock: t })
    expect(memoryReplayCacheStats(cache).shardCount).toBe(8)
    for (let i = 0; i < 5000; i++) expect(store(cache, `live ${i}`, 1_000_000 + i)).toBe(true)
    for (let i = 0; i < 2000; i++) expect(store(cache, `new ${i}`, 2_000_000)).toBe(false)
    for (let i = 0; i < 5000; i++) expect(store(cache, `live ${i}`, 3_000_000), `live ${i}`).toBe(false)
    t.set(1_000_000 + 9) // ten expire, in whatever shards they are
    for (let i = 0; i < 10; i++) expect(store(cache, `new ${i}`, 2_000_000)).toBe(true)
    expect(store(cache, 'new 10', 2_000_000)).toBe(false)
    for (let i = 10; i < 5000; i++) expect(store(cache, `live ${i}`, 3_000_000)).toBe(false)
    const s = memoryReplayCacheStats(cache)
    expect(s.size).toBe(5000)
    expect(s.mapped).toBe(5000)
  })

  it('finds expired ids in any shard, wherever they sit in insertion order', () => {
    const t = testClock(0)
    const cache = createMemoryReplayCache({ maxEntries: 4096, clock: t })
    // Long-lived ids first in every shard, then short-lived ones behind them.
    for (let i = 0; i < 4000; i++) expect(store(cache, `long ${i}`, 1_000_000)).toBe(true)
    for (let i = 0; i < 96; i++) expect(store(cache, `short ${i}`, 100 + i)).toBe(true)
    expect(store(cache, 'x', 1_000_000)).toBe(false)
    t.set(100 + 47) // 48 short ones expired
    for (let i = 0; i < 48; i++) expect(store(cache, `x ${i}`, 1_000_000), `x ${i}`).toBe(true)
    expect(store(cache, 'x 48', 1_000_000)).toBe(false)
    for (let i = 48; i < 96; i++) expect(store(cache, `short ${i}`, 1_000_000)).toBe(false) // still live
    t.set(10_000)
    for (let i = 48; i < 96; i++) expect(store(cache, `x ${i}`, 1_000_000)).toBe(true)
  })

  it('an id stored after a full cache was found all live is found when it expires first (the one-Map cache waited for the earliest of the others)', () => {
    const t = testClock(0)
    const cache = createMemoryReplayCache({ maxEntries: 2, clock: t })
    expect(store(cache, 'a', 1000)).toBe(true)
    expect(store(cache, 'b', 500)).toBe(true)
    expect(store(cache, 'c', 600)).toBe(false) // full, all live: the earliest is 500
    t.set(500)
    expect(store(cache, 'c', 600)).toBe(true) // 'b' made room
    t.set(700)
    expect(store(cache, 'd', 900)).toBe(true) // 'c' expired before 'a': room
    expect(store(cache, 'e', 900)).toBe(false)
    expect(store(cache, 'a', 900)).toBe(false)
  })

  it('keeps its bookkeeping when the clock goes backwards, and never drops an id before the clock passed its expiry', () => {
    const t = testClock(10_000)
    const cache = createMemoryReplayCache({ maxEntries: 3, clock: t })
    expect(store(cache, 'a', 11_000)).toBe(true)
    expect(store(cache, 'b', 20_000)).toBe(true)
    t.set(5_000) // back
    expect(store(cache, 'a', 30_000)).toBe(false)
    expect(store(cache, 'b', 30_000)).toBe(false)
    expect(store(cache, 'c', 6_000)).toBe(true)
    expect(store(cache, 'd', 6_000)).toBe(false) // full of ids live at 5,000
    t.set(12_000) // forward: 'a' and 'c' expired
    expect(store(cache, 'd', 13_000)).toBe(true)
    expect(store(cache, 'e', 13_000)).toBe(true)
    expect(store(cache, 'f', 13_000)).toBe(false)
    t.set(0) // far back: the ids dropped at 12,000 may come again, the others may not
    expect(store(cache, 'b', 1)).toBe(false)
    expect(store(cache, 'd', 1)).toBe(false)
    expect(store(cache, 'e', 1)).toBe(false)
    const s = memoryReplayCacheStats(cache)
    expect(s.size).toBeLessThanOrEqual(3)
    expect(s.mapped).toBe(s.size)
  })

  it('a full cache accepts a new id at the very millisecond one expires, in any shard', () => {
    const t = testClock(0)
    const cache = createMemoryReplayCache({ maxEntries: 8000, clock: t })
    for (let i = 0; i < 7980; i++) expect(store(cache, `long ${i}`, 1_000_000)).toBe(true)
    for (let i = 0; i < 20; i++) expect(store(cache, `short ${i}`, 100 * (i + 1))).toBe(true)
    for (let i = 0; i < 20; i++) {
      expect(store(cache, `new ${i}`, 1_000_000)).toBe(false) // full, all live: the earliest is now known
      t.set(100 * (i + 1)) // exactly when 'short i' expires
      expect(store(cache, `new ${i}`, 1_000_000), `new ${i}`).toBe(true)
    }
  })

  it('ids stored while the clock was back are found when they expire, before those stored earlier', () => {
    const t = testClock(0)
    const cache = createMemoryReplayCache({ maxEntries: 2048, clock: t })
    for (let i = 0; i < 2048; i++) expect(store(cache, `a ${i}`, 1000)).toBe(true)
    expect(store(cache, 'b', 1000)).toBe(false) // full, all live until 1,000
    t.set(1000)
    for (let i = 0; i < 40; i++) expect(store(cache, `early ${i}`, 5000)).toBe(true) // room: the 'a's expired
    t.set(0) // back: the 'a's not yet dropped are live again
    let n = 0
    for (let i = 0; i < 40; i++) if (store(cache, `back ${i}`, 10 + i)) n++
    expect(n).toBeGreaterThan(0)
    while (store(cache, `fill ${n}`, 1000)) n++
    for (let i = 0; i < 20; i++) {
      t.set(10 + i) // 'back i' expired, every 'a' still live
      expect(store(cache, `late ${i}`, 1000), `late ${i}`).toBe(true)
    }
  })

  it('takes hostile ids as they are: long, empty, NUL, lone surrogates, non-ASCII, high bytes only', () => {
    const t = testClock(0)
    const cache = createMemoryReplayCache({ maxEntries: 100, clock: t })
    const ids = ['', '\u0000', '\u0000\u0000', 'x'.repeat(1 << 20), `${'x'.repeat(1 << 20)}y`, '\ud800', '\udc00', '\ud800\udc00', '🔑', 'e\u0301', '\u00e9', 'A', '\u0141', '\u0241', 'dpop a b', 'dpop a  b', 'dpop a b ']
    for (const id of ids) expect(store(cache, id, 1000), JSON.stringify(id.slice(0, 8))).toBe(true)
    for (const id of ids) expect(store(cache, id, 1000)).toBe(false)
    expect(memoryReplayCacheStats(cache).size).toBe(ids.length)
    expect(() => cache.checkAndStore(42 as unknown as string, 1000)).toThrow(TypeError)
  })

  it('checkAndStore works detached from its object, and the object is frozen', () => {
    const t = testClock(0)
    const cache = createMemoryReplayCache({ clock: t })
    const { checkAndStore } = cache
    expect(checkAndStore('bob 1', 100)).toBe(true)
    expect(cache.checkAndStore('bob 1', 100)).toBe(false)
    expect(Object.isFrozen(cache)).toBe(true)
    expect(Object.keys(cache)).toEqual(['checkAndStore'])
  })

  it('refuses bad options with a TypeError, as before', () => {
    for (const maxEntries of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '10' as unknown as number]) {
      expect(() => createMemoryReplayCache({ maxEntries }), String(maxEntries)).toThrow(TypeError)
    }
    expect(() => createMemoryReplayCache({ clock: 5 as unknown as () => number })).toThrow(TypeError)
    expect(() => createMemoryReplayCache({ clock: 'now' as unknown as () => number })).toThrow(TypeError)
    expect(store(createMemoryReplayCache({}), 'a', Date.now() + 1000)).toBe(true) // Date.now by default
    expect(store(createMemoryReplayCache(), 'a', Date.now() - 1)).toBe(true)
  })

  it('allocates its shards as they are used: a cache for a million ids starts small', () => {
    const cache = createMemoryReplayCache({ maxEntries: 1_000_000, clock: () => 0 })
    expect(memoryReplayCacheStats(cache)).toMatchObject({ shardCount: 1024, shardsMade: 0, size: 0 })
    store(cache, 'a', 10)
    expect(memoryReplayCacheStats(cache).shardsMade).toBe(1)
    expect(memoryReplayCacheStats(createMemoryReplayCache({ maxEntries: 1 })).shardCount).toBe(1)
    expect(memoryReplayCacheStats(createMemoryReplayCache()).shardCount).toBe(128)
    expect(memoryReplayCacheStats(createMemoryReplayCache({ maxEntries: Number.MAX_SAFE_INTEGER })).shardCount).toBe(65_536)
  })
})

describe('createMemoryReplayCache: memory and spread', () => {
  it('stays bounded under churn: expired ids are dropped as new ones come, across every shard', () => {
    let now = 0
    const cache = createMemoryReplayCache({ maxEntries: 20_000, clock: () => now })
    // 200,000 ids, each living 5,000 ms, one per ms: ≈ 5,000 live at a time, 32 shards.
    for (let i = 0; i < 200_000; i++) {
      now++
      if (cache.checkAndStore(`churn ${i}`, now + 5000) !== true) expect.fail(`churn ${i} refused`)
      if (i % 1000 === 999 && i > 5000) {
        const s = memoryReplayCacheStats(cache)
        expect(s.mapped).toBe(s.size)
        expect(s.size).toBeGreaterThanOrEqual(5000)
        expect(s.size, `at ${i}`).toBeLessThan(5000 + 2 * 32 * 4) // expired ones wait at most a few visits to their shard
        expect(s.pairs).toBe(s.size) // nothing stored twice: no stale pairs
      }
    }
  })

  it('stale pairs of ids stored again do not pile up', () => {
    let now = 0
    const cache = createMemoryReplayCache({ maxEntries: 50, clock: () => now })
    for (let i = 0; i < 100_000; i++) {
      now += 3
      if (cache.checkAndStore(`again ${i % 40}`, now + 2) !== true) expect.fail(`call ${i} refused`) // each expires before it comes back
    }
    const s = memoryReplayCacheStats(cache)
    expect(s.size).toBeLessThanOrEqual(50)
    expect(s.pairs).toBeLessThan(2 * 50)
  })

  it('spreads ids over its shards: none holds more than twice its share', () => {
    const cache = createMemoryReplayCache({ maxEntries: 100_000, clock: () => 0 })
    for (let i = 0; i < 100_000; i++) cache.checkAndStore(`dpop 1bGx0yKq3x7vHjWkRZ2Yc9fQm5ZtP0LrSx4uVwAaB8E ${i}`, 1)
    const s = memoryReplayCacheStats(cache)
    expect(s.size).toBe(100_000)
    expect(s.shardsMade).toBe(128)
    expect(s.largest).toBeLessThan((100_000 / 128) * 1.3) // 781 each on average; far below 4,096
  })
})

describe('createMemoryReplayCache: against a reference model', () => {
  /** The decisions by definition: one Map of every id, every expired one forgotten before each decision. */
  function model(max: number) {
    const live = new Map<string, number>()
    return (key: string, exp: number, t: number): boolean => {
      const known = live.get(key)
      if (known !== undefined && known > t) return false
      if (!(exp > t)) return true
      for (const [k, e] of live) if (e <= t) live.delete(k)
      if (!live.has(key) && live.size >= max) return false
      live.set(key, exp)
      return true
    }
  }

  for (const [max, keys, seed] of [[1, 4, 1], [2, 6, 2], [7, 20, 3], [100, 300, 4], [1500, 3000, 5], [5000, 9000, 6], [5000, 4000, 7]] as const) {
    it(`gives the model's answer to every call (maxEntries ${max}, ${keys} ids, seed ${seed})`, () => {
      const random = rng(seed)
      let t = 1_000_000
      const cache = createMemoryReplayCache({ maxEntries: max, clock: () => t })
      const reference = model(max)
      const ops = max >= 1500 ? 60_000 : 40_000
      for (let n = 0; n < ops; n++) {
        const r = random()
        t += r < 0.6 ? 0 : r < 0.95 ? Math.floor(random() * 4) : Math.floor(random() * (max >= 1500 ? 2000 : 40))
        const key = `id ${Math.floor(random() ** 1.5 * keys)}`
        const e = random()
        const exp = e < 0.05 ? t - Math.floor(random() * 10) : e < 0.1 ? t : t + 1 + Math.floor(random() * (e < 0.9 ? 50 : max >= 1500 ? 20_000 : 500))
        const want = reference(key, exp, t)
        const got = cache.checkAndStore(key, exp)
        if (got !== want) expect.fail(`call ${n}: checkAndStore(${key}, ${exp}) at ${t} gave ${String(got)}, the model ${String(want)}`)
      }
      const s = memoryReplayCacheStats(cache)
      expect(s.mapped).toBe(s.size)
      expect(s.size).toBeLessThanOrEqual(max)
    })
  }

  it('never accepts an id stored before while the clock has not passed its expiry, with a clock that jumps both ways', () => {
    const random = rng(99)
    let t = 1_000_000
    const cache = createMemoryReplayCache({ maxEntries: 3000, clock: () => t })
    // Per id: its expiry and the call that stored it. An id may be dropped only once a call since then
    // saw a time at or past its expiry: `highest` is a stack of the calls whose time no later call reached.
    const stored = new Map<string, { exp: number; at: number }>()
    const highest: { at: number; t: number }[] = []
    const latestSince = (at: number): number => {
      let lo = 0
      let hi = highest.length - 1
      while (lo < hi) {
        const mid = (lo + hi) >> 1
        if (highest[mid]!.at >= at) hi = mid
        else lo = mid + 1
      }
      return highest[lo]!.t
    }
    let accepted = 0
    let refused = 0
    for (let n = 0; n < 60_000; n++) {
      t += Math.floor((random() - 0.3) * 200)
      while (highest.length > 0 && highest[highest.length - 1]!.t <= t) highest.pop()
      highest.push({ at: n, t })
      const key = `id ${Math.floor(random() * 4000)}`
      const exp = t + 1 + Math.floor(random() * 3000)
      const rec = stored.get(key)
      const ok = cache.checkAndStore(key, exp)
      if (rec !== undefined && rec.exp > latestSince(rec.at) && rec.exp > t) expect(ok, `call ${n}: ${key}`).toBe(false)
      if (ok) {
        stored.set(key, { exp, at: n })
        accepted++
      } else refused++
      if (n % 5000 === 0) {
        const s = memoryReplayCacheStats(cache)
        expect(s.mapped).toBe(s.size)
        expect(s.size).toBeLessThanOrEqual(3000)
      }
    }
    expect(accepted).toBeGreaterThan(10_000) // the walk exercised both answers
    expect(refused).toBeGreaterThan(200)
  })
})
