// Warm verifyLineage (7 known + 1 new hop) of several builds in one process, interleaved, in CPU time,
// beside the raw node:crypto verify of one hop: the same lineages for every build. Each argument is a
// checkout whose packages are built (dist/). Env R (rounds, default 16), M (calls per round, 1,500).
//   node bench/lineage-warm-ab.mjs /path/to/base /path/to/change
import { verify as cryptoVerify } from 'node:crypto'
const roots = process.argv.slice(2)
const ROUNDS = Number(process.env.R ?? 16), M = Number(process.env.M ?? 1500)
const lib = await import('./lib/tokens.mjs')
const { credentialJwt, keyFromLabel, localFetch, statusListJwt } = lib
const core = await import(`${roots[0]}/packages/core/dist/index.js`)
const lin = await import(`${roots[0]}/packages/lineage/dist/index.js`)
const now = Math.floor(Date.now() / 1000)
const issuer = keyFromLabel('issuer')
const agents = Array.from({ length: 9 }, (_, i) => { const key = keyFromLabel(`lineage-agent-${i}`); return { ...key, signer: core.signerFromKeyObject(key.privateKey, key.did, key.keyId), credential: credentialJwt(issuer, { sub: key.did, jti: `urn:uuid:lineage-${i}`, index: i + 1, now }) } })
const url = (i) => `https://svc-${i}.payments.example`
const ARGS = lin.httpArgs('https://svc-8.payments.example/v1/charges', '{"amount":100,"currency":"EUR"}')
const COMMAND = 'POST /v1/charges'
let prefix
for (let i = 0; i < 7; i++) prefix = await lin.appendHop(prefix, { signer: agents[i].signer, credential: agents[i].credential, clock: Date.now, target: url(i + 1), callee: agents[i + 1].did, command: 'POST /v1/step', args: { step: i }, ttlSec: 300, user: 'user-1' })
const pool = []
for (let i = 0; i < (ROUNDS + 1) * M; i++) pool.push(await lin.appendHop(prefix, { signer: agents[7].signer, credential: agents[7].credential, clock: Date.now, target: url(8), command: COMMAND, args: ARGS, ttlSec: 300, user: 'user-1' }))
const options = { audience: url(8), command: COMMAND, args: ARGS }
const verifiers = []
for (const root of roots) {
  const v = await import(`${root}/packages/verifier/dist/index.js`)
  const verifier = v.createVerifier({ trustedIssuers: [issuer.did], fetch: localFetch(statusListJwt(issuer, now)), statusTtlMs: 3_600_000, replayCache: v.createMemoryReplayCache({ maxEntries: 4_000_000 }) })
  for (const a of agents) await verifier.verifyAgentCredential(a.credential)
  const last = JSON.parse(Buffer.from(prefix.split('~')[6].split('.')[1], 'base64url').toString())
  await verifier.verifyLineage(prefix, { audience: last.aud, command: last.cmd, argsDigest: last.arg })
  verifiers.push(verifier)
}
const sample = pool[0].split('~')[7]; const dot = sample.lastIndexOf('.')
const input = Buffer.from(sample.slice(0, dot), 'ascii'), sig = Buffer.from(sample.slice(dot + 1), 'base64url'), key = agents[7].publicKey
const cpu = () => { const u = process.cpuUsage(); return u.user + u.system }
// warm-up: M calls each
let next = 0
for (const v of verifiers) for (let i = 0; i < M; i++) await v.verifyLineage(pool[i], options)
next = M
const per = roots.map(() => []), raws = []
for (let r = 0; r < ROUNDS; r++) {
  let c0 = cpu(); for (let i = 0; i < M; i++) cryptoVerify(null, input, key, sig); raws.push((cpu() - c0) / M)
  const order = r % 2 ? [...verifiers.keys()].reverse() : [...verifiers.keys()]
  for (const k of order) { const v = verifiers[k]; c0 = cpu(); for (let i = 0; i < M; i++) await v.verifyLineage(pool[next + i], options); per[k].push((cpu() - c0) / M) }
  next += M
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1] }
console.log(`raw ${med(raws).toFixed(1)} us/call`)
roots.forEach((root, k) => console.log(`${root}: warm ${med(per[k]).toFixed(1)} us/call, raw/warm per round median ${med(per[k].map((w, r) => raws[r] / w)).toFixed(3)}`))
if (roots.length === 2) console.log(`speed-up ${roots[1]} vs ${roots[0]}: ${med(per[0].map((a, r) => a / per[1][r])).toFixed(3)}`)
