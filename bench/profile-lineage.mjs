// One lineage case alone, for a CPU profile:
//   mkdir -p bench/results/profile-lineage
//   node --cpu-prof --cpu-prof-dir=bench/results/profile-lineage bench/profile-lineage.mjs [cold|warm] [hops] > bench/results/profile-lineage/window.json
//   node bench/cpuprofile-summary.mjs bench/results/profile-lineage/*.cpuprofile bench/results/profile-lineage/window.json
// Same set-up as the `lineage` suite (lineage.mjs): cold, lineages of `hops` hops (default 8) never
// seen, every actor's credential memoized; warm, a known 7-hop prefix plus one new hop. Signs the pool
// first (untimed), then verifies for about 5 s. Prints the window's bounds on the profiler's clock
// (monotonic µs) and the number of calls, as profile-chain.mjs does.
import { signerFromKeyObject } from '@agentid/core'
import { appendHop, httpArgs } from '@agentid/lineage'
import { createMemoryReplayCache, createVerifier } from '@agentid/verifier'
import { credentialJwt, keyFromLabel, localFetch, statusListJwt } from './lib/tokens.mjs'

const mode = process.argv[2] ?? 'cold'
const hops = Number(process.argv[3] ?? 8)
const now = Math.floor(Date.now() / 1000)
const issuer = keyFromLabel('issuer')
const agents = Array.from({ length: 9 }, (_, i) => {
  const key = keyFromLabel(`lineage-agent-${i}`)
  return { ...key, signer: signerFromKeyObject(key.privateKey, key.did, key.keyId), credential: credentialJwt(issuer, { sub: key.did, jti: `urn:uuid:lineage-${i}`, index: i + 1, now }) }
})
const url = (i) => `https://svc-${i}.payments.example`
const ARGS = httpArgs('https://svc-8.payments.example/v1/charges', '{"amount":100,"currency":"EUR"}')
const COMMAND = 'POST /v1/charges'
const verifier = createVerifier({ trustedIssuers: [issuer.did], fetch: localFetch(statusListJwt(issuer, now)), statusTtlMs: 3_600_000, replayCache: createMemoryReplayCache({ maxEntries: 4_000_000 }) })
for (const a of agents) await verifier.verifyAgentCredential(a.credential)

async function lineageOf(n, { open = false } = {}) {
  let lineage
  for (let i = 0; i < n; i++) {
    const last = i === n - 1 && !open
    lineage = await appendHop(lineage, {
      signer: agents[i].signer, credential: agents[i].credential, clock: Date.now,
      target: last ? url(8) : url(i + 1), ...(last ? {} : { callee: agents[i + 1].did }),
      command: last ? COMMAND : 'POST /v1/step', args: last ? ARGS : { step: i }, ttlSec: 300, user: 'user-1',
    })
  }
  return lineage
}
const options = { audience: url(8), command: COMMAND, args: ARGS }
const prefix = await lineageOf(7, { open: true })
{
  const last = JSON.parse(Buffer.from(prefix.split('~')[6].split('.')[1], 'base64url').toString())
  await verifier.verifyLineage(prefix, { audience: last.aud, command: last.cmd, argsDigest: last.arg })
}
const make = mode === 'warm'
  ? () => appendHop(prefix, { signer: agents[7].signer, credential: agents[7].credential, clock: Date.now, target: url(8), command: COMMAND, args: ARGS, ttlSec: 300, user: 'user-1' })
  : () => lineageOf(hops)
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
