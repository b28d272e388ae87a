// One cold Data Integrity case of the `di` suite alone, for a CPU profile or a CPU-time figure:
//   node bench/profile-di.mjs [ours|plain|both] [--ms 5000] [--rounds 6]
//   node --cpu-prof --cpu-prof-dir=DIR bench/profile-di.mjs ours > DIR/window.json
//   node bench/cpuprofile-summary.mjs DIR/*.cpuprofile DIR/window.json
// The same 300 credentials, verifier (memoSize 1, list and issuer DID cached) and plain
// @digitalbazaar/vc call as di.mjs. `both` alternates the two cases in --rounds rounds of --ms / rounds each and prints
// the CPU time per verification (process.cpuUsage) of each round and the ratio plain / ours: the
// figure a loaded machine moves least. The last line is the window (for a single case).
import { performance } from 'node:perf_hooks'
import { createVerifier } from '@agentid/verifier'
import { coldDiPool, plainVerify } from './lib/di.mjs'
import { median, round } from './lib/measure.mjs'

const args = process.argv.slice(2)
const which = args.find((a) => !a.startsWith('--')) ?? 'ours'
const msAt = args.indexOf('--ms')
const MS = msAt === -1 ? 5000 : Number(args[msAt + 1])
const roundsAt = args.indexOf('--rounds')
const ROUNDS = roundsAt === -1 ? 6 : Number(args[roundsAt + 1])
const POOL = 300

const { pool, options } = await coldDiPool(POOL)
const verifier = createVerifier(options)
let nOurs = 0
let nPlain = 0
const cases = {
  ours: () => verifier.verifyAgentCredential(pool[nOurs++ % POOL]),
  plain: async () => {
    if (!(await plainVerify(pool[nPlain++ % POOL])).verified) throw new Error('plain @digitalbazaar/vc did not verify')
  },
}
for (const fn of Object.values(cases)) await round(fn, { minMs: 500, batch: 8 })

/** CPU µs per call of `fn` over at least `ms`. */
async function cpuRound(fn, ms) {
  const counter = fn === cases.ours ? () => nOurs : () => nPlain
  const n0 = counter()
  const cpu0 = process.cpuUsage()
  await round(fn, { minMs: ms, batch: 8 })
  const cpu = process.cpuUsage(cpu0)
  return (cpu.user + cpu.system) / (counter() - n0)
}

if (which === 'both') {
  const rounds = { ours: [], plain: [] }
  for (let r = 0; r < ROUNDS; r++) {
    for (const k of r % 2 ? ['plain', 'ours'] : ['ours', 'plain']) rounds[k].push(await cpuRound(cases[k], MS / ROUNDS))
  }
  const ratios = rounds.ours.map((o, i) => rounds.plain[i] / o)
  const f = (xs) => xs.map((x) => x.toFixed(0)).join(', ')
  console.log(`CPU µs per verification: ours ${f(rounds.ours)} (median ${median(rounds.ours).toFixed(0)}); plain ${f(rounds.plain)} (median ${median(rounds.plain).toFixed(0)})`)
  console.log(`plain / ours per round (ours as throughput ÷ plain's): ${ratios.map((x) => x.toFixed(2)).join(', ')}; median ${median(ratios).toFixed(2)}`)
} else {
  const fn = cases[which]
  if (!fn) throw new Error(`unknown case ${which}`)
  const counter = which === 'ours' ? () => nOurs : () => nPlain
  const before = counter()
  const cpu0 = process.cpuUsage()
  const from = process.hrtime.bigint()
  const t0 = performance.now()
  await round(fn, { minMs: MS, batch: 8 })
  const to = process.hrtime.bigint()
  const cpu = process.cpuUsage(cpu0)
  const calls = counter() - before
  console.log(JSON.stringify({ case: which, fromUs: Number(from / 1000n), toUs: Number(to / 1000n), calls, usPerCall: +(((performance.now() - t0) * 1000) / calls).toFixed(1), cpuUsPerCall: +((cpu.user + cpu.system) / calls).toFixed(1) }))
}
