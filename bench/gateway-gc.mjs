// What the gateway's garbage collector does per tool call: node bench/gateway-gc.mjs [--ms 8000] [--rate 500] [--path gateway|direct]
// The processes of the `gateway` suite (lib/gateway-setup.mjs; node:http load generator, the gateway's log to a
// file), the process under test (the gateway, or the upstream on the direct path) run with --trace-gc-nvp. After
// a warm-up of `--ms` at `--rate` calls/s (open loop), the same again is measured: per young-generation
// collection the bytes allocated, promoted (they survived two collections) and the pause, then per call
// the bytes promoted and the number of full (mark-compact) collections. Bytes promoted per call are what
// the full collections must later reclaim; on an idle machine they depend on what the code keeps
// reachable, not on the machine's speed.
import { startGatewayBench, suiteSetup } from './lib/gateway-setup.mjs'

const args = process.argv.slice(2)
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt)
const MS = Number(opt('--ms', 8000))
const RATE = Number(opt('--rate', 500))
const PATH = opt('--path', 'gateway')
if (PATH !== 'gateway' && PATH !== 'direct') throw new Error('--path must be gateway or direct')
const nvp = ['--trace-gc-nvp']
const bench = await startGatewayBench({ ...suiteSetup(), ...(PATH === 'gateway' ? { gatewayFlags: nvp } : { upstreamFlags: nvp }) })
const child = PATH === 'gateway' ? bench.gateway : bench.upstream
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
async function phase(ms) {
  const n = Math.round((ms * RATE) / 1000)
  const t0 = performance.now()
  const inflight = []
  for (let i = 0; i < n; i++) {
    const wait = t0 + (i * 1000) / RATE - performance.now()
    if (wait >= 1) await sleep(wait)
    inflight.push(bench.cases[PATH](i))
  }
  await Promise.all(inflight)
  return n
}
try {
  bench.signProofs(Math.ceil((MS * RATE) / 1000) + 64)
  await phase(MS)
  const lines = []
  let buffer = ''
  child.stdout.on('data', (chunk) => {
    buffer += chunk
    const parts = buffer.split('\n')
    buffer = parts.pop()
    for (const l of parts) if (l.includes('pause=')) lines.push(Object.fromEntries(l.trim().split(/\s+/).map((kv) => kv.split('='))))
  })
  bench.signProofs(Math.ceil((MS * RATE) / 1000) + 64)
  const calls = await phase(MS)
  await sleep(200)
  const young = lines.filter((l) => l.gc === 's' || l.gc === 'mmc')
  const full = lines.filter((l) => l.gc === 'mc' || l.gc === 'ms')
  const sum = (list, k) => list.reduce((a, l) => a + Number(l[k] ?? 0), 0)
  for (const l of lines) console.log(`${l.gc.padEnd(3)} pause ${Number(l.pause).toFixed(1).padStart(5)} ms  allocated ${(Number(l.allocated) / 1e6).toFixed(1).padStart(5)} MB  promoted ${(Number(l.promoted) / 1e6).toFixed(2).padStart(5)} MB`)
  console.log(`${PATH}: ${calls} calls at ${RATE}/s over ${MS} ms; ${young.length} young collections, ${full.length} full; per call: allocated ${(sum(lines, 'allocated') / calls / 1024).toFixed(1)} KB, promoted ${(sum(lines, 'promoted') / calls / 1024).toFixed(2)} KB; longest pause ${Math.max(0, ...lines.map((l) => Number(l.pause))).toFixed(1)} ms`)
} finally {
  await bench.close()
}
