// One chain case alone, for a CPU profile:
//   node --cpu-prof --cpu-prof-dir=bench/results/profile-chain bench/profile-chain.mjs [cold|warm] [depth] > bench/results/profile-chain/window.json
//   node bench/cpuprofile-summary.mjs bench/results/profile-chain/*.cpuprofile bench/results/profile-chain/window.json
// Verifies chains of `depth` links (default 8) for 5 s: cold, a pool of chains larger than the
// default memo and DID cache (new agents every call); warm, the same chain again. Prints the
// window's bounds on the profiler's clock (monotonic µs) and the number of calls.
import { createVerifier } from '@agentid/verifier'
import { ACTION, agentidChain, RESOURCE } from './lib/chains.mjs'
import { round } from './lib/measure.mjs'
import { keyFromLabel, localFetch, statusListJwt } from './lib/tokens.mjs'

const mode = process.argv[2] ?? 'cold'
const depth = Number(process.argv[3] ?? 8)
const pool = mode === 'cold' ? Math.ceil(2400 / depth) : 1
const now = Math.floor(Date.now() / 1000)
const issuer = keyFromLabel('issuer')
const verifier = createVerifier({ trustedIssuers: [issuer.did], fetch: localFetch(statusListJwt(issuer, now)), statusTtlMs: 3_600_000 })
const chains = []
for (let i = 0; i < pool; i++) chains.push(await agentidChain(issuer, depth, `profile/${i}`))
let next = 0
const call = () => {
  const c = chains[next++ % pool]
  return verifier.verifyDelegation(c.chain, { invoker: c.invoker, resource: RESOURCE, action: ACTION })
}
await round(call, { minMs: 500 })
const before = next
const from = process.hrtime.bigint()
await round(call, { minMs: 5000 })
const to = process.hrtime.bigint()
const calls = next - before
const ms = Number(to - from) / 1e6
console.log(JSON.stringify({ fromUs: Number(from / 1000n), toUs: Number(to / 1000n), calls, opsPerSec: Math.round((calls * 1000) / ms), usPerCall: +((ms * 1000) / calls).toFixed(1) }))
