// What one Map.set costs when it makes a Map outgrow its table (V8 rehashes every entry into a new table,
// on the caller's thread; a table past ~128 KB, from 8,192 entries up, goes to large-object space):
//   node bench/map-growth.mjs
// Keys shaped like the replay cache's (`dpop <jkt> <jti>`), hashed beforehand; per size, 7 Maps filled
// to exactly that many entries, then the one set that grows each, timed; min and median in ms.
// The memory replay cache (packages/verifier createMemoryReplayCache) spreads its ids over Maps of about
// 1,024 each for this reason; bench/replay-cache-cost.mjs measures it beside one Map of every id.
for (const N of [1024, 2048, 4096, 8192, 16384, 65536]) {
  const keys = Array.from({ length: N + 1 }, (_, i) => `dpop 1bGx0yKq3x7vHjWkRZ2Yc9fQm5ZtP0LrSx4uVwAaB8E ${crypto.randomUUID()}-${i}`)
  for (const k of keys) new Map([[k, 1]]) // each key's hash computed once, as a cache's keys have it
  const ms = []
  for (let r = 0; r < 7; r++) {
    const m = new Map()
    for (let i = 0; i < N; i++) m.set(keys[i], i)
    const t = process.hrtime.bigint()
    m.set(keys[N], N)
    ms.push(Number(process.hrtime.bigint() - t) / 1e6)
  }
  ms.sort((a, b) => a - b)
  console.log(`set that grows a Map of ${String(N).padStart(6)} entries: min ${ms[0].toFixed(3)} ms, median ${ms[3].toFixed(3)} ms`)
}
