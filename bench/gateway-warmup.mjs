// How a fresh gateway's CPU per call falls over its first calls (why the gateway suite's first timed
// round is its worst):
//   node bench/gateway-warmup.mjs [--chunks 24] [--calls 250] [--concurrency 4] [--flags "--max-semi-space-size=16"]
// The processes of the `gateway` suite (lib/gateway-setup.mjs; `--flags`: node options for the gateway
// process, through NODE_OPTIONS); right after start, `chunks` chunks of `calls` gateway calls (closed loop,
// `concurrency` in flight), no warm-up: per chunk, the gateway's CPU per call (all threads, /proc) and its
// main thread's (the event loop; the rest is V8's compiler and GC helper threads), and the upstream's.
import { cpuSeconds, mainThreadCpuSeconds } from './lib/issuer-process.mjs'
import { startGatewayBench } from './lib/gateway-setup.mjs'

const args = process.argv.slice(2)
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt)
const CHUNKS = Number(opt('--chunks', 24))
const CALLS = Number(opt('--calls', 250))
const CONCURRENCY = Number(opt('--concurrency', 4))
const flags = opt('--flags', '')
const log = (m) => process.stderr.write(`  [gateway-warmup] ${m}\n`)

if (flags) process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} ${flags}`.trim()
const bench = await startGatewayBench({ log })
if (flags) delete process.env.NODE_OPTIONS
try {
  const { cases, signProofs, gateway, upstream } = bench
  const rows = []
  let next = 0
  for (let c = 0; c < CHUNKS; c++) {
    signProofs(CALLS + 64)
    const all0 = cpuSeconds(gateway.pid)
    const main0 = mainThreadCpuSeconds(gateway.pid)
    const up0 = cpuSeconds(upstream.pid)
    const t0 = performance.now()
    let left = CALLS
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (left-- > 0) await cases.gateway(next++)
    }))
    const ms = performance.now() - t0
    const per = (s) => ((s * 1e6) / CALLS).toFixed(0)
    rows.push({ calls: (c + 1) * CALLS, all: per(cpuSeconds(gateway.pid) - all0), main: per(mainThreadCpuSeconds(gateway.pid) - main0), upstream: per(cpuSeconds(upstream.pid) - up0), ms: (ms / CALLS).toFixed(2) })
  }
  console.log('calls so far | gateway CPU µs/call (all threads) | main thread | upstream | wall ms/call')
  for (const r of rows) console.log(`${String(r.calls).padStart(6)} | ${r.all.padStart(6)} | ${r.main.padStart(6)} | ${r.upstream.padStart(6)} | ${r.ms}`)
} finally {
  await bench.close()
}
