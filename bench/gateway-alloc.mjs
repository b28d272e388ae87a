// Where the gateway allocates, per tool call: node bench/gateway-alloc.mjs [--ms 8000] [--rate 500] [--top 30]
// The suite's processes and setup (lib/gateway-setup.mjs suiteSetup), the gateway started with
// lib/heap-sample-preload.mjs. After a warm-up of `--ms` at `--rate` calls/s (open loop), the same again is
// sampled from its first call until its last is answered (every allocation, freed or not: V8's sampling heap profiler, one sample per ~256 bytes), then
// printed in bytes per call: the total, by allocating function, and by the first function of this
// repository (packages/, apps/) on the allocation's stack ("(none)": Node's own, e.g. socket reads).
// Sampled, so ±2-3 %; unlike bytes promoted it does not depend on how busy the machine is.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startGatewayBench, suiteSetup } from './lib/gateway-setup.mjs'

const args = process.argv.slice(2)
const opt = (name, dflt) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt)
const MS = opt('--ms', 8000)
const RATE = opt('--rate', 500)
const TOP = opt('--top', 30)
const dir = mkdtempSync(join(tmpdir(), 'agentid-gateway-alloc-'))
const file = join(dir, 'gateway.heapprofile')
process.env.HEAP_SAMPLE_OUT = file
const preload = fileURLToPath(new URL('./lib/heap-sample-preload.mjs', import.meta.url))
const bench = await startGatewayBench({ ...suiteSetup(), gatewayFlags: ['--import', preload] })
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
async function phase(from) {
  const n = Math.round((MS * RATE) / 1000)
  const t0 = performance.now()
  const inflight = []
  for (let i = 0; i < n; i++) {
    const wait = t0 + (i * 1000) / RATE - performance.now()
    if (wait >= 1) await sleep(wait)
    inflight.push(bench.cases.gateway(from + i))
  }
  await Promise.all(inflight)
  return n
}
let calls
try {
  bench.signProofs(Math.ceil((MS * RATE) / 1000) + 64)
  const warm = await phase(0)
  bench.signProofs(Math.ceil((MS * RATE) / 1000) + 64)
  bench.gateway.kill('SIGUSR2')
  await sleep(50)
  calls = await phase(warm)
  bench.gateway.kill('SIGUSR2') // every call answered: sampling stops
  for (let waited = 0; waited < 10_000; waited += 100) {
    await sleep(100)
    try {
      JSON.parse(readFileSync(file, 'utf8')) // written whole
      break
    } catch {
      // not written yet
    }
  }
} finally {
  await bench.close()
}
const profile = JSON.parse(readFileSync(file, 'utf8'))
rmSync(dir, { recursive: true, force: true })
const short = (f) => `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(packages|apps)\//, '$1/').replace(/^.*\/node_modules\/(\.pnpm\/)?/, '')}:${f.lineNumber + 1}`
const self = new Map()
const ours = new Map()
let total = 0
const walk = (node, stack) => {
  stack.push(node.callFrame)
  if (node.selfSize > 0) {
    total += node.selfSize
    const leaf = short(node.callFrame)
    self.set(leaf, (self.get(leaf) ?? 0) + node.selfSize)
    let first = '(none)'
    for (let i = stack.length - 1; i >= 0; i--) {
      if (/\/(packages|apps)\//.test(stack[i].url) && !stack[i].url.includes('node_modules')) {
        first = short(stack[i])
        break
      }
    }
    ours.set(first, (ours.get(first) ?? 0) + node.selfSize)
  }
  for (const child of node.children) walk(child, stack)
  stack.pop()
}
walk(profile.head, [])
const show = (title, map) => {
  console.log(`\n${title}`)
  for (const [name, bytes] of [...map].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`${String(Math.round(bytes / calls)).padStart(7)} B  ${name}`)
}
console.log(`gateway: ${calls} calls at ${RATE}/s sampled; allocated ${(total / calls / 1024).toFixed(1)} KB per call`)
show('by allocating function (bytes per call)', self)
show('by the first function of this repository on the stack (bytes per call)', ours)
