// Cold verifyDelegation of two builds in one process, interleaved, in CPU time beside the raw verify:
//   node bench/chain-cold-ab.mjs /work/wt-base /work/wt-new   (env DEPTHS=1,8 ROUNDS=20 MS=300 POOL=2400)
// Each argument is a checkout whose packages are built (its packages/verifier/dist is imported, and
// with it that checkout's own @agentid/core and @agentid/delegation). Both verifiers get the same
// options and the same chains: POOL links per depth (new agents on every link, so more links and DIDs
// than the default memo and DID cache hold: every call decodes, resolves and verifies every link),
// made once with this checkout's delegate(). Per round, for each depth, raw node:crypto verifies of one
// link and each build's cold calls (order reversed every other round), CPU time per call
// (process.cpuUsage, all threads). Prints per depth each build's median µs per call and in raw
// verifies, and the median of the per-round ratios B / A.
import { verify as cryptoVerify } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import { ACTION, agentidChain, RESOURCE } from './lib/chains.mjs'
import { keyFromLabel, localFetch, statusListJwt } from './lib/tokens.mjs'

const builds = process.argv.slice(2)
if (builds.length !== 2) throw new Error('usage: node bench/chain-cold-ab.mjs <checkout A> <checkout B>')
const DEPTHS = (process.env.DEPTHS ?? '1,8').split(',').map(Number)
const ROUNDS = Number(process.env.ROUNDS ?? 20)
const MS = Number(process.env.MS ?? 300)
const POOL_LINKS = Number(process.env.POOL ?? 2400)
const now = Math.floor(Date.now() / 1000)
const issuer = keyFromLabel('issuer')
const verifiers = []
for (const dir of builds) {
  const { createVerifier } = await import(pathToFileURL(`${dir}/packages/verifier/dist/index.js`).href)
  verifiers.push(createVerifier({ trustedIssuers: [issuer.did], fetch: localFetch(statusListJwt(issuer, now)), statusTtlMs: 3_600_000 }))
}
const pools = {}
for (const d of DEPTHS) {
  pools[d] = []
  for (let i = 0; i < Math.ceil(POOL_LINKS / d); i++) pools[d].push(await agentidChain(issuer, d, `ab/${d}/${i}`))
}
const request = (c) => ({ invoker: c.invoker, resource: RESOURCE, action: ACTION })
const link = pools[DEPTHS[0]][0].chain[0]
const dot = link.lastIndexOf('.')
const signingInput = Buffer.from(link.slice(0, dot), 'ascii')
const signature = Buffer.from(link.slice(dot + 1), 'base64url')

const cpuNow = () => { const u = process.cpuUsage(); return u.user + u.system }
async function timed(fn) {
  const wallEnd = performance.now() + MS
  const from = cpuNow()
  let n = 0
  while (performance.now() < wallEnd) for (let k = 0; k < 8; k++, n++) await fn()
  return (cpuNow() - from) / n
}
const next = DEPTHS.map(() => [0, 0])
const coldCall = (b, di) => { const d = DEPTHS[di]; const pool = pools[d]; return () => { const c = pool[next[di][b]++ % pool.length]; return verifiers[b].verifyDelegation(c.chain, request(c)) } }
const raw = () => { if (!cryptoVerify(null, signingInput, issuer.publicKey, signature)) throw new Error('raw verify failed') }
// Warm-up: every build on every depth, past the JIT's tiers.
for (let di = 0; di < DEPTHS.length; di++) for (let b = 0; b < 2; b++) { const f = coldCall(b, di); for (let i = 0; i < 2400; i++) await f() }
const rows = DEPTHS.map(() => ({ raw: [], a: [], b: [] }))
for (let r = 0; r < ROUNDS; r++) {
  for (let di = 0; di < DEPTHS.length; di++) {
    const order = r % 2 === 0 ? [0, 1] : [1, 0]
    rows[di].raw.push(await timed(raw))
    for (const b of order) rows[di][b === 0 ? 'a' : 'b'].push(await timed(coldCall(b, di)))
  }
}
const median = (xs) => { const s = [...xs].sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2 }
const fmt = (x, d = 2) => x.toFixed(d)
for (let di = 0; di < DEPTHS.length; di++) {
  const { raw: rw, a, b } = rows[di]
  const ratio = a.map((x, i) => b[i] / x)
  const rawA = a.map((x, i) => x / rw[i])
  const rawB = b.map((x, i) => x / rw[i])
  console.log(`depth ${DEPTHS[di]}: raw ${fmt(median(rw), 1)} µs; A ${fmt(median(a), 1)} µs = ${fmt(median(rawA))} raw; B ${fmt(median(b), 1)} µs = ${fmt(median(rawB))} raw; B/A median ${fmt(median(ratio), 3)} (rounds ${fmt(Math.min(...ratio), 3)}–${fmt(Math.max(...ratio), 3)})`)
}
