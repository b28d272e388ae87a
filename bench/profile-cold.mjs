// The cold path alone, for a CPU profile:
//   node --cpu-prof --cpu-prof-dir=bench/results/profile bench/profile-cold.mjs > bench/results/profile/window.json
//   node bench/cpuprofile-summary.mjs bench/results/profile/*.cpuprofile bench/results/profile/window.json
// Verifies distinct credentials (each misses the memo; list and issuer DID cached) for 5 s and
// prints the window's bounds on the profiler's clock (monotonic µs) and the number of calls.
import { round } from './lib/measure.mjs'
import { verifySetup } from './lib/setup.mjs'

const s = await verifySetup({ pool: 40_000 })
await round(s.cold, { minMs: 500 })
const before = s.coldCalls()
const from = process.hrtime.bigint()
await round(s.cold, { minMs: 5000 })
const to = process.hrtime.bigint()
const calls = s.coldCalls() - before
const ms = Number(to - from) / 1e6
console.log(JSON.stringify({ fromUs: Number(from / 1000n), toUs: Number(to / 1000n), calls, opsPerSec: Math.round((calls * 1000) / ms), usPerCall: +((ms * 1000) / calls).toFixed(1) }))
