// The memory replay cache at 4,096 to 1,000,000 ids: its longest single checkAndStore and its cost per
// new id, beside the one-Map cache it replaced (b9e1598's, copied below). Needs the verifier built (dist/).
//   node bench/replay-cache-cost.mjs [--sizes 4096,65536,100000,400000,1000000] [--runs 3] [--root <checkout>]
// Every (measure, cache, size, run) is a child process of its own (a fresh heap), the two caches in turns.
// The clock is fake and moves 1 ms per call. Ids are `dpop <jkt> <jti>` built as dpop.ts builds them (a
// template, which V8 keeps as a rope of its parts), a jti fresh from JSON.parse each, before the timed call.
// Two shapes of load:
//   grow:   nothing expires (maxEntries N + 40,000): the cache grows from 0 to N ids.
//   steady: ids live N ms, so N are held once full, each new id replacing one that expired
//           (maxEntries N + N / 8, a deployment sized with headroom).
// Two measures, each in CPU time (process.cpuUsage: time the process was preempted costs nothing; for the
// pause, user time only: the system time of a call is page faults when V8 grows its heap, either cache) with
// --single-threaded (V8's compiler and collector on the main thread, so the process's CPU time is the
// thread's) and --no-incremental-marking (every collection one pause, which the 'gc' observer reports):
//   pause: every call of the fill to N and then of up to 20,000 more (steady: at N held) is timed alone;
//          the longest call outside a collection, and how many took over 1 ms. Run with --max-opt=1
//          (no optimizing compiler: its compiles on this thread take 3-10 ms in the middle of the calls,
//          with either cache), so what is left is the cache's own work, Map rehashes included.
//   cost:  µs of CPU per new id over 20,000 new ids at N held (collections in them subtracted), with the
//          optimizing compiler, after the same run twice on new caches (of at most 65,536 ids) to warm it.
// Heap per id held (cost children): heap used after the fill to N, two full collections, less before, / N,
// the ids' strings included (the new cache reads every character of an id to hash it, which makes V8
// flatten the rope into one string; the one-Map cache keeps the rope, whose jkt part every id shares).
import { spawnSync } from 'node:child_process'
import { PerformanceObserver, performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'

/**
 * The memory replay cache as it was before the shards (b9e1598): one Map of every id. The same steps,
 * written as a class so that its methods are shared by every instance as the new cache's are (V8 then
 * optimizes them in the warm-up, not in the middle of the timed calls, for both).
 */
class OneMap {
  constructor(max, now) {
    this.max = max
    this.now = now
    this.seen = new Map()
    this.nextSweepAt = 0
    this.headExpiresAt = 0
  }
  sweep(t) {
    const seen = this.seen
    if (t >= this.headExpiresAt) {
      this.headExpiresAt = Number.POSITIVE_INFINITY
      for (const [key, expiresAt] of seen) {
        if (expiresAt > t) {
          this.headExpiresAt = expiresAt
          break
        }
        seen.delete(key)
      }
    }
    if (seen.size < this.max || t < this.nextSweepAt) return
    let earliest = Number.POSITIVE_INFINITY
    for (const [key, expiresAt] of seen) {
      if (expiresAt <= t) seen.delete(key)
      else if (expiresAt < earliest) earliest = expiresAt
    }
    this.nextSweepAt = earliest
    this.headExpiresAt = 0
  }
  checkAndStore(key, expiresAtMs) {
    const clock = this.now
    const t = clock()
    const seen = this.seen
    const known = seen.get(key)
    if (known !== undefined && known > t) return false
    if (!(expiresAtMs > t)) return true
    this.sweep(t)
    if (known === undefined && seen.size >= this.max) return false
    if (known !== undefined) {
      seen.delete(key)
      this.headExpiresAt = 0
    } else if (seen.size === 0) this.headExpiresAt = expiresAtMs
    seen.set(key, expiresAtMs)
    return true
  }
}
function oneMapCache(options = {}) {
  const cache = new OneMap(options.maxEntries ?? 100_000, options.clock ?? Date.now)
  cache.checkAndStore = cache.checkAndStore.bind(cache)
  return cache
}

const arg = (name, fallback) => {
  const i = process.argv.indexOf(name)
  return i === -1 ? fallback : process.argv[i + 1]
}

if (process.argv[2] === '--child') {
  const [, , , measure, which, mode, nText, root] = process.argv
  const N = Number(nText)
  const create = which === 'one-map' ? oneMapCache : (await import(root ? `${root}/packages/verifier/dist/index.js` : '@agentid/verifier')).createMemoryReplayCache
  let t = 1_000_000_000_000
  const clock = () => t
  const steady = mode === 'steady'
  const ttl = steady ? N : 1e12
  const options = { maxEntries: steady ? N + Math.floor(N / 8) : N + 40_000, clock }
  const jkt = JSON.parse('"1bGx0yKq3x7vHjWkRZ2Yc9fQm5ZtP0LrSx4uVwAaB8E"') // as a parsed token gives it
  const id = () => `dpop ${jkt} ${JSON.parse(`"${crypto.randomUUID()}"`)}`
  const gcs = []
  const obs = new PerformanceObserver((list) => { for (const e of list.getEntries()) gcs.push([e.startTime, e.startTime + e.duration]) })
  obs.observe({ entryTypes: ['gc'] })
  const inGc = (a, b) => gcs.some(([s, e]) => s < b && e > a)
  const used = () => {
    globalThis.gc()
    globalThis.gc()
    return process.memoryUsage().heapUsed
  }
  let result
  if (measure === 'pause') {
    const cache = create(options)
    const slow = [] // [start, end, CPU ms, ids held] of each call over 0.2 ms
    let refused = 0
    const calls = N + (steady ? Math.min(N, 20_000) : 0)
    for (let i = 0; i < calls; i++) {
      const key = id()
      t++
      const a = performance.now()
      const c = process.cpuUsage()
      const ok = cache.checkAndStore(key, t + ttl)
      const u = process.cpuUsage(c)
      const b = performance.now()
      if (!ok) refused++
      const ms = u.user / 1000 // not u.system: the kernel's time is page faults when V8 grows the heap, for either cache
      if (ms > 0.2) slow.push([a, b, ms, Math.min(i, N)])
    }
    await new Promise((resolve) => setTimeout(resolve, 20)) // the observer's entries come after the calls
    const own = slow.filter(([a, b]) => !inGc(a, b))
    const worst = own.reduce((w, x) => (x[2] > w[2] ? x : w), [0, 0, 0, 0])
    result = { worst: worst[2], worstAt: worst[3], over1: own.filter((x) => x[2] > 1).length, over1Gc: slow.length - own.length, refused }
  } else {
    // The run three times, each on a new cache, by the same code: the first two (at most 65,536 ids)
    // are V8's warm-up.
    for (let r = 0; r < 3; r++) {
      const n = r < 2 ? Math.min(N, 65_536) : N
      const heap0 = used()
      let cache = create(r < 2 ? { ...options, maxEntries: Math.min(options.maxEntries, n + 40_000) } : options)
      let refused = 0
      for (let i = 0; i < n; i++) {
        t++
        if (!cache.checkAndStore(id(), t + ttl)) refused++
      }
      const bytesPerId = (used() - heap0) / n
      const keys = Array.from({ length: 20_000 }, id)
      used() // the batch starts with an empty young generation; the collections in it are subtracted
      gcs.length = 0
      const c0 = process.cpuUsage()
      const w0 = performance.now()
      for (const key of keys) {
        t++
        if (!cache.checkAndStore(key, t + ttl)) refused++
      }
      const w1 = performance.now()
      const cpu = process.cpuUsage(c0)
      await new Promise((resolve) => setTimeout(resolve, 20)) // the observer's last entries
      const gcMs = gcs.filter(([s, e]) => s >= w0 && e <= w1).reduce((sum, [s, e]) => sum + (e - s), 0)
      result = { bytesPerId, usPerNewId: (cpu.user + cpu.system - gcMs * 1000) / 20_000, usWithGc: (cpu.user + cpu.system) / 20_000, refused }
      cache = undefined
    }
  }
  obs.disconnect()
  console.log(JSON.stringify(result))
  process.exit(0)
}

const sizes = arg('--sizes', '4096,65536,100000,400000,1000000').split(',').map(Number)
const runs = Number(arg('--runs', '3'))
const root = arg('--root', '')
const self = fileURLToPath(import.meta.url)
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const flags = { pause: ['--max-opt=1'], cost: [] }
console.log(`${runs} runs per case, the caches in turns; figures: least / median of the runs (load ${(await import('node:os')).loadavg()[0].toFixed(1)})`)
for (const mode of ['grow', 'steady']) {
  for (const N of sizes) {
    const results = { pause: { 'one-map': [], shards: [] }, cost: { 'one-map': [], shards: [] } }
    for (let r = 0; r < runs; r++) {
      for (const measure of ['pause', 'cost']) {
        for (const which of r % 2 === 0 ? ['one-map', 'shards'] : ['shards', 'one-map']) {
          const argv = ['--single-threaded', '--no-incremental-marking', '--expose-gc', '--max-old-space-size=4096', ...flags[measure], self, '--child', measure, which, mode, String(N), root]
          const out = spawnSync(process.execPath, argv, { encoding: 'utf8' })
          if (out.status !== 0) throw new Error(out.stderr)
          results[measure][which].push(JSON.parse(out.stdout))
        }
      }
    }
    for (const which of ['one-map', 'shards']) {
      const p = results.pause[which]
      const c = results.cost[which]
      const f = (rs, k, d = 2) => `${Math.min(...rs.map((x) => x[k])).toFixed(d)} / ${med(rs.map((x) => x[k])).toFixed(d)}`
      console.log(
        `${mode.padEnd(6)} ${String(N).padStart(7)} ${which.padEnd(7)}: longest call outside GC ${f(p, 'worst')} ms (at ${p.map((x) => x.worstAt).join(', ')} ids),` +
          ` calls over 1 ms ${p.map((x) => x.over1).join('/')} (over 0.2 ms in a GC ${p.map((x) => x.over1Gc).join('/')});` +
          ` per new id ${f(c, 'usPerNewId')} µs (GC included ${f(c, 'usWithGc')}); heap per id held ${f(c, 'bytesPerId', 0)} B;` +
          ` refused ${[...p, ...c].map((x) => x.refused).join('/')}`,
      )
    }
  }
}
