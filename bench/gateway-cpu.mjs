// The gateway's CPU per tool call, which a shared machine moves far less than latency:
//   node bench/gateway-cpu.mjs [--ms 10000] [--concurrency 4] [--rounds 6] [--compare LABEL=PATH/main.js ...]
//   BENCH_PROF=DIR node bench/gateway-cpu.mjs        # also a CPU profile of the gateway, and DIR/gateway-window.json
//   node bench/cpuprofile-groups.mjs --gateway DIR/<the gateway's .cpuprofile> DIR/gateway-window.json
// The processes of the `gateway` suite (lib/gateway-setup.mjs), set up as the suite sets them up (suiteSetup:
// the lean upstream, the node:http load generator, the gateway's log to a file); a closed loop of `concurrency` calls in
// flight, gateway and direct in alternating rounds, CPU time (user + system, /proc) of the gateway
// process per gateway call and of the upstream per direct call, per round and the median. `--compare`
// starts another build's gateway beside ours (same issuer, upstream and config; e.g. main's
// apps/gateway/dist/main.js) and measures it in the same rounds: a before/after on one machine state.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { cpuSeconds } from './lib/issuer-process.mjs'
import { startGatewayBench, suiteSetup } from './lib/gateway-setup.mjs'
import { median } from './lib/measure.mjs'

const args = process.argv.slice(2)
const opt = (name, dflt) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt)
const MS = opt('--ms', 10_000)
const CONCURRENCY = opt('--concurrency', 4)
const ROUNDS = opt('--rounds', 6)
const compare = Object.fromEntries(args.flatMap((a, i) => (args[i - 1] === '--compare' ? [a.split('=')] : [])))
const log = (m) => process.stderr.write(`  [gateway-cpu] ${m}\n`)

/** `concurrency` loops calling `call` until `ms` has passed; the number of calls. */
async function closedLoop(call, ms) {
  const end = performance.now() + ms
  let n = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < end) await call(n++)
  }))
  return n
}

// The suite's conditions (gateway.mjs): the lean upstream, the node:http load generator, the gateway's log
// lines to a file; BENCH_GATEWAY_UPSTREAM=sdk and BENCH_GATEWAY_CLIENT=sdk as there.
const bench = await startGatewayBench({ prof: process.env.BENCH_PROF, log, compare, ...suiteSetup() })
try {
  const { upstream, cases, signProofs, gateways } = bench
  const perRoundMs = MS / ROUNDS
  // Proofs for a round: more than a quiet machine can use in it (about 1,500 calls/s at most here).
  const proofsFor = (ms) => Math.ceil(ms * 2) + 64
  signProofs(proofsFor(1000))
  for (const call of Object.values(cases)) await closedLoop(call, 700)
  const pids = { direct: upstream.pid, ...Object.fromEntries(gateways.map((g) => [g.label, g.process.pid])) }
  const labels = Object.keys(pids)
  const cpu = Object.fromEntries(labels.map((l) => [l, []]))
  const calls = Object.fromEntries(labels.map((l) => [l, 0]))
  const window = { fromUs: 0, toUs: 0, calls: 0 }
  const nowUs = () => Number(process.hrtime.bigint() / 1000n)
  for (let r = 0; r < ROUNDS; r++) {
    const order = [...labels]
    for (let k = 0; k < r % labels.length; k++) order.push(order.shift())
    for (const name of order) {
      if (name !== 'direct') signProofs(proofsFor(perRoundMs))
      window.fromUs ||= nowUs()
      const c0 = cpuSeconds(pids[name])
      const n = await closedLoop(cases[name], perRoundMs)
      cpu[name].push(((cpuSeconds(pids[name]) - c0) / n) * 1e6)
      calls[name] += n
    }
  }
  window.toUs = nowUs()
  window.calls = calls.gateway
  if (process.env.BENCH_PROF) writeFileSync(join(process.env.BENCH_PROF, 'gateway-window.json'), `${JSON.stringify(window)}\n`)
  const f = (xs) => xs.map((x) => x.toFixed(0)).join(', ')
  for (const name of labels) {
    const who = name === 'direct' ? 'upstream CPU µs per direct call' : `${name} CPU µs per call`
    console.log(`${who}: ${f(cpu[name])} (median ${median(cpu[name]).toFixed(0)}); ${calls[name]} calls`)
  }
  // Paired within each round (the cases ran back to back), then the median.
  const paired = (a, b) => median(cpu[a].map((x, i) => x / cpu[b][i]))
  console.log(`gateway / upstream (median of per-round ratios): ${paired('gateway', 'direct').toFixed(2)}`)
  for (const name of labels.filter((l) => l !== 'direct' && l !== 'gateway')) console.log(`${name} / gateway (median of per-round ratios): ${paired(name, 'gateway').toFixed(2)}`)
} finally {
  await bench.close()
}
