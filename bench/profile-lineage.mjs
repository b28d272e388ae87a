// One lineage case alone, for a CPU profile:
//   mkdir -p bench/results/profile-lineage
//   node --cpu-prof --cpu-prof-dir=bench/results/profile-lineage bench/profile-lineage.mjs [cold|warm] [hops] > bench/results/profile-lineage/window.json
//   node bench/cpuprofile-summary.mjs bench/results/profile-lineage/*.cpuprofile bench/results/profile-lineage/window.json
// Same set-up as the `lineage` suite (lineage.mjs): cold, lineages of `hops` hops (default 8) never
// seen, every actor's credential memoized; warm, a known 7-hop prefix plus one new hop. Signs the pool
// first (untimed), then verifies for about 5 s. Prints the window's bounds on the profiler's clock
// (monotonic µs) and the number of calls, as profile-chain.mjs does.
//
// Fixed count, for instruction counts: `profile-lineage.mjs cold 8 --calls N [--warmup W]` signs
// W + max(N, 400) lineages (W default 300), verifies W of them (warm-up), then exactly N more, all on a
// fixed clock (a run slowed
// down by valgrind sees the same times), and prints the CPU time of the N calls; `--raw` does the
// same with node:crypto verifying one hop (the floor). The cost of one call is the difference of two
// runs that differ only in N, divided by it, e.g.
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null node bench/profile-lineage.mjs warm 8 --calls 0
//   valgrind --tool=callgrind --callgrind-out-file=/dev/null node bench/profile-lineage.mjs warm 8 --calls 400
// ((I(400) − I(0)) / 400; "Collected" totals are repeatable whatever the machine's load).
import { verify as cryptoVerify } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import * as core from '@agentid/core'
import * as lineage from '@agentid/lineage'
import { createMemoryReplayCache, createVerifier } from '@agentid/verifier'
import { lineageFixture } from './lib/lineage-fixture.mjs'
import { localFetch, statusListJwt } from './lib/tokens.mjs'

const args = process.argv.slice(2)
const flag = (name) => { const i = args.indexOf(name); return i === -1 ? undefined : args.splice(i, 2)[1] }
const fixedCalls = flag('--calls')
// --warmup W: calls before the N measured (default 300); a few thousand let the JIT settle first.
const warmupFlag = flag('--warmup')
const raw = args.includes('--raw') ? (args.splice(args.indexOf('--raw'), 1), true) : false
const mode = args[0] ?? 'cold'
const hops = Number(args[1] ?? 8)
// --pool-file F: the fixed-count pool (and the time it was signed at) read from F, or signed and
// written there: runs under valgrind then spend nothing on signing, and two builds verify the same bytes.
const poolFile = flag('--pool-file')
const saved = poolFile !== undefined && existsSync(poolFile) ? JSON.parse(readFileSync(poolFile, 'utf8')) : undefined
const nowMs = saved?.nowMs ?? Date.now()
// Fixed-count runs read a fixed clock: valgrind slows the run down by ~50×, past the hops' max age.
const clock = fixedCalls === undefined ? Date.now : () => nowMs
const now = Math.floor(nowMs / 1000)
const { issuer, agents, options, lineageOf, warmLineage, memoizePrefix } = lineageFixture({ core, lineage }, { now, clock })
const verifier = createVerifier({ trustedIssuers: [issuer.did], fetch: localFetch(statusListJwt(issuer, now)), statusTtlMs: 3_600_000, clock, replayCache: createMemoryReplayCache({ maxEntries: 4_000_000, clock }) })
for (const a of agents) await verifier.verifyAgentCredential(a.credential)

const prefix = saved?.prefix ?? await lineageOf(7, { open: true })
await memoizePrefix(verifier, prefix)
const make = mode === 'warm' ? () => warmLineage(prefix) : () => lineageOf(hops)

if (fixedCalls !== undefined) {
  const calls = Number(fixedCalls)
  const WARMUP = warmupFlag === undefined ? 300 : Number(warmupFlag)
  if (!(Number.isSafeInteger(WARMUP) && WARMUP >= 0 && WARMUP <= 20_000)) throw new Error('--warmup: 0 to 20000')
  if (raw) {
    const sample = (saved?.pool[0] ?? await lineageOf(1)).split('~')[0]
    const dot = sample.lastIndexOf('.')
    const input = Buffer.from(sample.slice(0, dot), 'ascii')
    const signature = Buffer.from(sample.slice(dot + 1), 'base64url')
    for (let i = 0; i < WARMUP; i++) cryptoVerify(null, input, agents[0].publicKey, signature)
    const cpu = process.cpuUsage()
    for (let i = 0; i < calls; i++) if (!cryptoVerify(null, input, agents[0].publicKey, signature)) throw new Error('raw verify failed')
    const used = process.cpuUsage(cpu)
    console.log(JSON.stringify({ mode: 'raw', calls, cpuUsPerCall: calls ? +((used.user + used.system) / calls).toFixed(1) : null }))
  } else {
    if (!(Number.isSafeInteger(calls) && calls >= 0 && calls <= 20_000)) throw new Error('--calls: 0 to 20000')
    // The same pool whatever N: two runs then differ only in the calls measured.
    const pool = saved?.pool ?? []
    if (saved === undefined) for (let i = 0; i < WARMUP + Math.max(400, calls); i++) pool.push(await make())
    if (pool.length < WARMUP + calls) throw new Error(`--pool-file holds ${pool.length} lineages: fewer than --warmup + --calls`)
    if (poolFile !== undefined && saved === undefined) writeFileSync(poolFile, JSON.stringify({ nowMs, prefix, pool }))
    let next = 0
    for (let i = 0; i < WARMUP; i++) await verifier.verifyLineage(pool[next++], options)
    const cpu = process.cpuUsage()
    for (let i = 0; i < calls; i++) await verifier.verifyLineage(pool[next++], options)
    const used = process.cpuUsage(cpu)
    console.log(JSON.stringify({ mode, hops: mode === 'warm' ? 8 : hops, calls, cpuUsPerCall: calls ? +((used.user + used.system) / calls).toFixed(1) : null }))
  }
  process.exit(0)
}

const count = mode === 'warm' ? 12_000 : Math.ceil(12_000 / hops)
const pool = []
for (let i = 0; i < count; i++) pool.push(await make())
let next = 0
for (let i = 0; i < pool.length / 10; i++) await verifier.verifyLineage(pool[next++], options)
const from = process.hrtime.bigint()
const before = next
while (next < pool.length && process.hrtime.bigint() - from < 5_000_000_000n) await verifier.verifyLineage(pool[next++], options)
const to = process.hrtime.bigint()
const calls = next - before
const ms = Number(to - from) / 1e6
console.log(JSON.stringify({ fromUs: Number(from / 1000n), toUs: Number(to / 1000n), calls, opsPerSec: Math.round((calls * 1000) / ms), usPerCall: +((ms * 1000) / calls).toFixed(1) }))
