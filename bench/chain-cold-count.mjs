// Cold verifyDelegation calls of one build, for instruction counts (callgrind, main thread):
//   valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=OUT node bench/chain-cold-count.mjs <checkout> <depth> <calls> [warm]
// Signs a pool of 2,400 links of `depth`-link chains (new agents on every link: more than the
// default memo and DID cache hold), runs `warm` cold calls (default 3,000) and then `calls` more.
// Two runs that differ only in `calls` differ by the instructions of those calls: their difference
// divided by the difference in calls is the instructions per call, independent of the machine's load.
// POOL_FILE=path: the pool is read from that file if it exists, else signed and written there (signing
// 2,400 links under callgrind takes minutes; the pool is the same input for every build compared).
import { pathToFileURL } from 'node:url'
import { coldChainCaller } from './lib/chains.mjs'

const [dir, depthArg, callsArg, warmArg] = process.argv.slice(2)
const depth = Number(depthArg)
const calls = Number(callsArg)
const warm = Number(warmArg ?? 3000)
const { createVerifier } = await import(pathToFileURL(`${dir}/packages/verifier/dist/index.js`).href)
const call = await coldChainCaller(createVerifier, depth, 'count')
for (let i = 0; i < warm; i++) await call()
for (let i = 0; i < calls; i++) await call()
