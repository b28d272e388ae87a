// verifyLineage of several builds in one process, interleaved, in CPU time, beside the raw node:crypto
// verify of one hop: the same lineages for every build. Each argument is a checkout whose packages are
// built (dist/). Env MODE: warm (7 known + 1 new hop, default) or cold1 / cold4 / cold8 (n new hops);
// R (rounds, default 16), M (calls per round, 1,500 warm; 1,500 / n cold).
//   MODE=cold8 node bench/lineage-ab.mjs /path/to/base /path/to/change
import { verify as cryptoVerify } from 'node:crypto'
import { lineageFixture } from './lib/lineage-fixture.mjs'
import { localFetch, statusListJwt } from './lib/tokens.mjs'
const roots = process.argv.slice(2)
const MODE = process.env.MODE ?? 'warm'
const HOPS = MODE === 'warm' ? 1 : Number(/^cold([148])$/.exec(MODE)?.[1] ?? NaN)
if (!(HOPS > 0)) throw new Error('MODE: warm, cold1, cold4 or cold8')
const ROUNDS = Number(process.env.R ?? 16), M = Number(process.env.M ?? Math.ceil(1500 / HOPS))
const core = await import(`${roots[0]}/packages/core/dist/index.js`)
const lineage = await import(`${roots[0]}/packages/lineage/dist/index.js`)
const now = Math.floor(Date.now() / 1000)
const { issuer, agents, options, lineageOf, warmLineage, memoizePrefix } = lineageFixture({ core, lineage }, { now })
const prefix = await lineageOf(7, { open: true })
const pool = []
for (let i = 0; i < (ROUNDS + 1) * M; i++) pool.push(MODE === 'warm' ? await warmLineage(prefix) : await lineageOf(HOPS))
const verifiers = []
for (const root of roots) {
  const v = await import(`${root}/packages/verifier/dist/index.js`)
  const verifier = v.createVerifier({ trustedIssuers: [issuer.did], fetch: localFetch(statusListJwt(issuer, now)), statusTtlMs: 3_600_000, replayCache: v.createMemoryReplayCache({ maxEntries: 4_000_000 }) })
  for (const a of agents) await verifier.verifyAgentCredential(a.credential)
  await memoizePrefix(verifier, prefix)
  verifiers.push(verifier)
}
const sample = pool[0].split('~').at(-1); const dot = sample.lastIndexOf('.')
const input = Buffer.from(sample.slice(0, dot), 'ascii'), sig = Buffer.from(sample.slice(dot + 1), 'base64url'), key = agents[MODE === 'warm' ? 7 : HOPS - 1].publicKey
const cpu = () => { const u = process.cpuUsage(); return u.user + u.system }
// warm-up: M calls each
let next = 0
for (const v of verifiers) for (let i = 0; i < M; i++) await v.verifyLineage(pool[i], options)
next = M
const per = roots.map(() => []), raws = []
for (let r = 0; r < ROUNDS; r++) {
  let c0 = cpu(); for (let i = 0; i < M * HOPS; i++) cryptoVerify(null, input, key, sig); raws.push((cpu() - c0) / M)
  const order = r % 2 ? [...verifiers.keys()].reverse() : [...verifiers.keys()]
  for (const k of order) { const v = verifiers[k]; c0 = cpu(); for (let i = 0; i < M; i++) await v.verifyLineage(pool[next + i], options); per[k].push((cpu() - c0) / M) }
  next += M
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1] }
console.log(`raw × ${HOPS} ${med(raws).toFixed(1)} us/call`)
roots.forEach((root, k) => console.log(`${root}: ${MODE} ${med(per[k]).toFixed(1)} us/call, (raw × ${HOPS}) / ${MODE} per round median ${med(per[k].map((w, r) => raws[r] / w)).toFixed(3)}`))
if (roots.length === 2) console.log(`speed-up ${roots[1]} vs ${roots[0]}: ${med(per[0].map((a, r) => a / per[1][r])).toFixed(3)}`)
