// Cold verifyDelegation calls of one build, for instruction counts (callgrind, main thread):
//   valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=OUT node bench/chain-cold-count.mjs <checkout> <depth> <calls> [warm]
// Signs a pool of 2,400 links of `depth`-link chains (new agents on every link: more than the
// default memo and DID cache hold), runs `warm` cold calls (default 3,000) and then `calls` more.
// Two runs that differ only in `calls` differ by the instructions of those calls: their difference
// divided by the difference in calls is the instructions per call, independent of the machine's load.
// POOL_FILE=path: the pool is read from that file if it exists, else signed and written there (signing
// 2,400 links under callgrind takes minutes; the pool is the same input for every build compared).
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { ACTION, agentidChain, RESOURCE } from './lib/chains.mjs'
import { keyFromLabel, localFetch, statusListJwt } from './lib/tokens.mjs'

const [dir, depthArg, callsArg, warmArg] = process.argv.slice(2)
const depth = Number(depthArg)
const calls = Number(callsArg)
const warm = Number(warmArg ?? 3000)
const { createVerifier } = await import(pathToFileURL(`${dir}/packages/verifier/dist/index.js`).href)
const now = Math.floor(Date.now() / 1000)
const issuer = keyFromLabel('issuer')
const verifier = createVerifier({ trustedIssuers: [issuer.did], fetch: localFetch(statusListJwt(issuer, now)), statusTtlMs: 3_600_000 })
const file = process.env.POOL_FILE
let pool = []
if (file && existsSync(file)) pool = JSON.parse(readFileSync(file, 'utf8'))
else {
  for (let i = 0; i < Math.ceil(2400 / depth); i++) pool.push(await agentidChain(issuer, depth, `count/${depth}/${i}`))
  if (file) writeFileSync(file, JSON.stringify(pool))
}
if (pool[0].chain.length !== depth) throw new Error(`${file} holds chains of ${pool[0].chain.length} links, not ${depth}`)
let next = 0
const call = () => { const c = pool[next++ % pool.length]; return verifier.verifyDelegation(c.chain, { invoker: c.invoker, resource: RESOURCE, action: ACTION }) }
for (let i = 0; i < warm; i++) await call()
for (let i = 0; i < calls; i++) await call()
