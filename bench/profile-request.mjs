// verifyRequest alone (cached token, a fresh pre-signed proof per call), for a CPU profile:
//   node --cpu-prof --cpu-prof-dir=bench/results/profile-request bench/profile-request.mjs > bench/results/profile-request/window.json
//   node bench/cpuprofile-summary.mjs bench/results/profile-request/*.cpuprofile bench/results/profile-request/window.json
// Signs 30,000 proofs, verifies 2,000 as a warm-up, then the rest for at most 5 s, and prints the
// window's bounds on the profiler's clock (monotonic µs) and the number of calls.
import { createMemoryReplayCache, createVerifier } from '@agentid/verifier'
import { accessToken, dpopKey, dpopProof } from './lib/dpop.mjs'
import { keyFromLabel, localFetch, statusListJwt } from './lib/tokens.mjs'

const RESOURCE = 'https://erp.example'
const URL_ = 'https://erp.example/mcp/tools/invoices.read'
const now = Math.floor(Date.now() / 1000)
const issuer = keyFromLabel('issuer')
const key = dpopKey()
const token = accessToken(issuer, { agentDid: keyFromLabel('agent-0').did, jkt: key.jkt, resource: RESOURCE, now })
const verifier = createVerifier({ trustedIssuers: [issuer.did], resourceAudience: RESOURCE, fetch: localFetch(statusListJwt(issuer, now)), statusTtlMs: 3_600_000, replayCache: createMemoryReplayCache({ maxEntries: 1_000_000 }) })
const requests = Array.from({ length: 30_000 }, () => ({ method: 'GET', url: URL_, headers: { authorization: `DPoP ${token}`, dpop: dpopProof(key, { method: 'GET', htu: URL_, iat: now, token }) } }))
let i = 0
for (; i < 2000; i++) await verifier.verifyRequest(requests[i])
const before = i
const from = process.hrtime.bigint()
const stop = performance.now() + 5000
for (; i < requests.length && performance.now() < stop; i++) await verifier.verifyRequest(requests[i])
const to = process.hrtime.bigint()
const calls = i - before
const ms = Number(to - from) / 1e6
console.log(JSON.stringify({ fromUs: Number(from / 1000n), toUs: Number(to / 1000n), calls, opsPerSec: Math.round((calls * 1000) / ms), usPerCall: +((ms * 1000) / calls).toFixed(1) }))
