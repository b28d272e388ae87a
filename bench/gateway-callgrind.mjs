// Instructions the gateway executes per tool call, counted by callgrind: a measure that other processes on
// the machine do not move (unlike CPU time), for a before/after of two builds:
//   node bench/gateway-callgrind.mjs [--warm 3000] [--calls 500] [--rounds 2] [--settle 20] [--compare LABEL=PATH/main.js ...]
// (Needs the rawClient load generator, suiteSetup's default: the access token is renewed during the run.)
// The suite's processes and setup (lib/gateway-setup.mjs suiteSetup); every gateway runs under
// `valgrind --tool=callgrind --instr-atstart=no` (its JIT code included: --smc-check=all-non-file). Each is
// warmed with `--warm` calls (closed loop, 2 in flight: V8 has optimized the path, bench/gateway-warmup.mjs),
// then, in `--rounds` rounds alternating between the builds, counted over `--calls` calls: instrumentation
// on, the calls, a dump. Instructions (Ir) of all the gateway's threads and of its main thread, per call.
// Slow: valgrind runs the gateway some 50x slower. Output files stay in a temporary directory, printed.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startGatewayBench, suiteSetup } from './lib/gateway-setup.mjs'

const args = process.argv.slice(2)
const opt = (name, dflt) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt)
const WARM = opt('--warm', 3000)
const CALLS = opt('--calls', 500)
const ROUNDS = opt('--rounds', 2)
// Uncounted calls after each round's new access token: its first verification and the recompilation of what it
// deoptimized (under valgrind the compiler threads run in turn with the main thread, so V8 re-optimizes slowly).
const SETTLE = opt('--settle', 20)
const compare = Object.fromEntries(args.flatMap((a, i) => (args[i - 1] === '--compare' ? [a.split('=')] : [])))
const out = mkdtempSync(join(tmpdir(), 'agentid-gateway-callgrind-'))
const log = (m) => process.stderr.write(`  [gateway-callgrind] ${m}\n`)

const bench = await startGatewayBench({
  log, compare, ...suiteSetup(),
  gatewayWrap: (label) => ['valgrind', '--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes', '--smc-check=all-non-file', `--callgrind-out-file=${join(out, `${label}.%p`)}`],
})
/** Ir summed over a dump's files (one per thread); `main`: the first thread's alone. */
function instructions(label, pid, part) {
  let all = 0
  let main = 0
  for (const f of readdirSync(out).filter((n) => n.startsWith(`${label}.${pid}.${part}-`))) {
    const m = /^totals:\s+(\d+)/m.exec(readFileSync(join(out, f), 'utf8'))
    const ir = m ? Number(m[1]) : 0
    all += ir
    if (f.endsWith('-01')) main = ir
  }
  return { all, main }
}
try {
  const labels = bench.gateways.map((g) => g.label)
  const pids = Object.fromEntries(bench.gateways.map((g) => [g.label, g.process.pid]))
  const loop = async (label, n, from) => {
    let next = 0
    await Promise.all([0, 1].map(async () => {
      while (next < n) await bench.cases[label](from + next++)
    }))
  }
  let id = 0
  // Warmed in turns of 500 calls (the builds' compiler threads meet the same conditions), proofs signed for
  // each turn: under valgrind a call takes milliseconds, and a proof's iat must stay in its window.
  log(`warming each build (${WARM} calls)`)
  for (let done = 0; done < WARM; done += 500) {
    const n = Math.min(500, WARM - done)
    await bench.renewTokens() // an access token lives at most 300 s; the warm-up takes minutes
    for (const label of labels) {
      bench.signProofs(n + 64)
      await loop(label, n, id)
      id += n
    }
  }
  const per = Object.fromEntries(labels.map((l) => [l, []]))
  let part = 0
  for (let r = 0; r < ROUNDS; r++) {
    part++
    const order = r % 2 === 0 ? labels : [...labels].reverse()
    await bench.renewTokens()
    for (const label of order) {
      // The new token verified and cached before counting (one full token check is not a call's cost).
      bench.signProofs(CALLS + 64 + SETTLE)
      await loop(label, SETTLE, id)
      id += SETTLE
      execFileSync('callgrind_control', ['-i', 'on', String(pids[label])], { stdio: 'ignore' })
      await loop(label, CALLS, id)
      id += CALLS
      execFileSync('callgrind_control', ['-i', 'off', String(pids[label])], { stdio: 'ignore' })
      execFileSync('callgrind_control', ['-d', String(pids[label])], { stdio: 'ignore' })
      const { all, main } = instructions(label, pids[label], part)
      per[label].push({ all: all / CALLS, main: main / CALLS })
      log(`${label} round ${r + 1}: ${(all / CALLS / 1e6).toFixed(3)} M instructions per call (main thread ${(main / CALLS / 1e6).toFixed(3)} M)`)
    }
  }
  for (const label of labels) console.log(`${label}: instructions per call ${per[label].map((x) => (x.all / 1e6).toFixed(3)).join(', ')} M (main thread ${per[label].map((x) => (x.main / 1e6).toFixed(3)).join(', ')} M); ${CALLS} calls per round`)
  if (labels.length > 1) for (const label of labels.slice(1)) console.log(`${label} / ${labels[0]} (all threads, mean of rounds): ${(per[label].reduce((s, x) => s + x.all, 0) / per[labels[0]].reduce((s, x) => s + x.all, 0)).toFixed(3)}`)
  console.log(`callgrind files: ${out}`)
} finally {
  await bench.close()
}
