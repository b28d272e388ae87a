// The chain suite's cold rows alone, in CPU time, without the peers (about 1 minute instead of 3):
//   node bench/chain-cold-cpu.mjs            (env DEPTHS=1,4,8 POOL=1200 ROUNDS=5 MS=1000)
// Same set-up as chain.mjs (a pool of POOL chains per depth with new agents on every link, cycled;
// the issuer's DID and the status list cached), raw node:crypto verifies of one link interleaved
// with the cold cases, and the cold cost in raw verifies in CPU time (process.cpuUsage, all threads)
// per round and its median. LINKMEMO / DIDCACHE set the verifier's linkMemoSize / didCacheSize.
import { verify as cryptoVerify } from 'node:crypto'
import { createVerifier } from '@agentid/verifier'
import { ACTION, agentidChain, RESOURCE } from './lib/chains.mjs'
import { measureInterleaved, median } from './lib/measure.mjs'
import { keyFromLabel, localFetch, statusListJwt } from './lib/tokens.mjs'
const DEPTHS = (process.env.DEPTHS ?? '1,4,8').split(',').map(Number)
const POOL = Number(process.env.POOL ?? 1200)
const now = Math.floor(Date.now() / 1000)
const issuer = keyFromLabel('issuer')
const opts = { trustedIssuers: [issuer.did], fetch: localFetch(statusListJwt(issuer, now)), statusTtlMs: 3_600_000 }
const pools = {}
for (const d of DEPTHS) { pools[d] = []; for (let i = 0; i < POOL; i++) pools[d].push(await agentidChain(issuer, d, `chain/${d}/${i}`)) }
const cold = createVerifier({ ...opts, ...(process.env.LINKMEMO ? { linkMemoSize: Number(process.env.LINKMEMO) } : {}), ...(process.env.DIDCACHE ? { didCacheSize: Number(process.env.DIDCACHE) } : {}) })
const request = (c) => ({ invoker: c.invoker, resource: RESOURCE, action: ACTION })
for (const d of DEPTHS) await cold.verifyDelegation(pools[d][0].chain, request(pools[d][0]))
const link = pools[DEPTHS[0]][0].chain[0]
const dot = link.lastIndexOf('.')
const signingInput = Buffer.from(link.slice(0, dot), 'ascii')
const signature = Buffer.from(link.slice(dot + 1), 'base64url')
const cases = { raw: { fn: () => cryptoVerify(null, signingInput, issuer.publicKey, signature), sync: true, batch: 256 } }
const next = {}
for (const d of DEPTHS) { next[d] = 0; cases[`cold${d}`] = { fn: () => { const c = pools[d][next[d]++ % POOL]; return cold.verifyDelegation(c.chain, request(c)) }, batch: 8 } }
const r = await measureInterleaved(cases, { rounds: Number(process.env.ROUNDS ?? 5), minMs: Number(process.env.MS ?? 1000), alternate: true })
console.log('raw cpu µs/op', r.raw.cpuRounds.map((x) => x.toFixed(1)).join(' '))
for (const d of DEPTHS) {
  const cpu = r[`cold${d}`].cpuRounds.map((c, i) => c / r.raw.cpuRounds[i])
  console.log(`depth ${d}: cpu ratio median ${median(cpu).toFixed(2)} (target ${(1.2 * d).toFixed(1)}) rounds ${cpu.map((x) => x.toFixed(2)).join(' ')}; µs/op ${median(r[`cold${d}`].cpuRounds).toFixed(0)}`)
}
