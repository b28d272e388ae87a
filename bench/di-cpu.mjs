// Cold Data Integrity verification in CPU time, ours beside plain @digitalbazaar/vc, and optionally
// another build of the verifier (a before/after on one machine state):
//   node bench/di-cpu.mjs [--rounds 18] [--ms 600] [--compare LABEL=/path/to/packages/verifier/dist/index.js]
// The credentials, verifier options and plain call of the `di` suite (cold: memoSize 1, 300 credentials
// cycled); each round runs every case for --ms in a rotating order (reversed every other round) and
// takes the process's CPU time (user + system, all threads) per verification. Prints the medians and
// the medians of the per-round ratios plain / case.
import { createVerifier } from '@agentid/verifier'
import { coldDiPool, plainVerify } from './lib/di.mjs'
import { median, round } from './lib/measure.mjs'

const args = process.argv.slice(2)
const opt = (name, dflt) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt)
const ROUNDS = opt('--rounds', 18)
const MS = opt('--ms', 600)
const compare = Object.fromEntries(args.flatMap((a, i) => (args[i - 1] === '--compare' ? [a.split('=')] : [])))
const POOL = 300

const { pool, options } = await coldDiPool(POOL)

const verifiers = { ours: createVerifier(options) }
for (const [label, path] of Object.entries(compare)) verifiers[label] = (await import(path)).createVerifier(options)
const next = {}
const cases = {}
for (const [label, v] of Object.entries(verifiers)) {
  next[label] = 0
  cases[label] = () => v.verifyAgentCredential(pool[next[label]++ % POOL])
}
next.plain = 0
cases.plain = async () => {
  if (!(await plainVerify(pool[next.plain++ % POOL])).verified) throw new Error('plain @digitalbazaar/vc did not verify')
}
for (const fn of Object.values(cases)) await round(fn, { minMs: 500, batch: 8 })

const labels = Object.keys(cases)
const cpu = Object.fromEntries(labels.map((l) => [l, []]))
for (let r = 0; r < ROUNDS; r++) {
  const order = [...labels]
  for (let k = 0; k < r % labels.length; k++) order.push(order.shift())
  if (r % 2) order.reverse()
  for (const label of order) {
    const n0 = next[label]
    const c0 = process.cpuUsage()
    await round(cases[label], { minMs: MS, batch: 8 })
    const c = process.cpuUsage(c0)
    cpu[label].push((c.user + c.system) / (next[label] - n0))
  }
}
for (const label of labels) console.log(`${label.padEnd(8)} CPU µs per verification: median ${median(cpu[label]).toFixed(0)}; rounds ${cpu[label].map((x) => x.toFixed(0)).join(' ')}`)
for (const label of labels.filter((l) => l !== 'plain')) {
  console.log(`plain / ${label} (median of per-round ratios): ${median(cpu.plain.map((p, i) => p / cpu[label][i])).toFixed(2)}`)
}
