// The issuer's CPU per spawn over HTTP, by thread, for one or more builds in interleaved rounds: each
// round starts each build's issuer (`apps/issuer/dist/main.js` of its checkout, fresh data dir,
// SQLite), sends it `--n` agent-held-key spawns (32 in flight, after 500 to warm up) with this
// checkout's load generator, and reads every thread's CPU from /proc before and after.
//   node bench/spawn-http-cpu.mjs [--rounds 5] [--n 5000] name=/path/to/checkout [name=/path …]
// Threads: the event loop (the process's main thread); the others by kind, told apart by when they
// start and what they do: libuv's pool (the Ed25519 signatures, the four threads with near-equal CPU),
// worker threads (the SQLite writer, the log sequencer), V8's platform threads (GC). Printed as the
// event loop, the sum of all, and every other thread above 3 µs per spawn by its start order.
// /proc counts 10 ms ticks: at --n 5000, ±2 µs per thread. CPU time, not wall time: on a shared
// machine it is the steadier figure; the load average is printed with each round.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { execFileSync, spawn as spawnProcess } from 'node:child_process'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createProofOfPossession, generateEd25519KeyPair, signerFromKeyObject } from '@agentid/core'
import { load, poster, startIssuer, stopIssuer } from './lib/issuer-process.mjs'

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : process.argv[i + 1]
}
const ROUNDS = Number(arg('rounds', 5))
const N = Number(arg('n', 5000))
const WARM = 500
const CONCURRENCY = 32
const builds = process.argv.slice(2).filter((a) => a.includes('=') && !a.startsWith('--')).map((a) => {
  const [name, root] = a.split('=')
  return { name, root }
})
if (builds.length === 0) builds.push({ name: 'this', root: new URL('..', import.meta.url).pathname })
const claims = { purpose: 'bench', controller: 'bench', model: { name: 'm', version: '1' }, toolProfile: ['mcp://erp/tools/invoices.read'], policyTier: 'standard', dataAccessClass: 'internal' }

// Every thread of `pid`: tid → { start (clock ticks since boot), us (user + kernel) }.
function threads(pid) {
  const out = new Map()
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      out.set(tid, { start: Number(f[19]), us: (Number(f[11]) + Number(f[12])) * 10_000, sys: Number(f[12]) * 10_000 })
    } catch {
      // the thread ended
    }
  }
  return out
}

async function round(build) {
  const dataDir = mkdtempSync(join(tmpdir(), 'agentid-spawn-http-cpu-'))
  // BENCH_PERF=<dir>: perf samples the event loop thread's CPU (not wall) time in the timed window,
  // JS frames named by V8's perf map: `perf report -i <dir>/perf-<pid>.data --no-children --sort sym`.
  const { child, url, adminKey } = await startIssuer(dataDir, process.env.BENCH_PERF ? { NODE_OPTIONS: '--perf-basic-prof-only-functions' } : {}, build.root)
  try {
    const orch = await (await fetch(`${url}/v1/orchestrators`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` }, body: JSON.stringify({ name: 'bench' }) })).json()
    const issuerDid = (await (await fetch(`${url}/v1/issuer`)).json()).did
    const bodies = []
    for (let i = 0; i < N + WARM; i++) {
      const k = generateEd25519KeyPair()
      const proof = await createProofOfPossession({ signer: signerFromKeyObject(k.privateKey, k.did, k.keyId), audience: issuerDid, purpose: 'spawn', ttlSec: 300 })
      bodies.push(JSON.stringify({ did: k.did, proof, ...claims }))
    }
    const post = poster(url, { concurrency: CONCURRENCY })
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${orch.apiKey}` }
    const op = async (i) => {
      const res = await post('/v1/agents', bodies[i], headers)
      if (res.status !== 201) throw new Error(`HTTP ${res.status} ${res.body.slice(0, 200)}`)
    }
    await load(op, { concurrency: CONCURRENCY, ms: 60_000, max: WARM })
    const before = threads(child.pid)
    const self0 = process.cpuUsage()
    const la = loadavg()[0]
    const perf = process.env.BENCH_PERF
      ? spawnProcess('perf', ['record', '-q', '-g', '-e', 'cpu-clock', '-F', '4999', '-t', String(child.pid), '-o', join(process.env.BENCH_PERF, `perf-${child.pid}.data`)], { stdio: 'ignore' })
      : undefined
    if (perf) await new Promise((r) => setTimeout(r, 500))
    // BENCH_CALLGRIND=<dir>: the issuer runs under callgrind (lib/issuer-process.mjs), instrumented
    // only for the timed window; instructions per thread: `callgrind_annotate <dir>/callgrind.out.<pid>-<thread>`.
    const cg = process.env.BENCH_CALLGRIND
    if (cg) execFileSync('callgrind_control', ['-i', 'on', String(child.pid)], { stdio: 'ignore' })
    const fromUs = Number(process.hrtime.bigint() / 1000n) // the profiler's clock (monotonic µs)
    const result = await load((i) => op(i + WARM), { concurrency: CONCURRENCY, ms: 600_000, max: N })
    const toUs = Number(process.hrtime.bigint() / 1000n)
    if (cg) execFileSync('callgrind_control', ['-d', String(child.pid)], { stdio: 'ignore' })
    if (perf) {
      perf.kill('SIGINT')
      await new Promise((r) => perf.once('exit', r))
    }
    const after = threads(child.pid)
    const self = process.cpuUsage(self0)
    // BENCH_PROF=<dir>: the issuer writes a CPU profile there (startIssuer); this is its window, for
    // `node bench/cpuprofile-groups.mjs <dir>/CPU.*.<pid>.0.001.cpuprofile <dir>/window-<pid>.json`.
    if (process.env.BENCH_PROF) writeFileSync(join(process.env.BENCH_PROF, `window-${child.pid}.json`), `${JSON.stringify({ build: build.name, fromUs, toUs, calls: result.done })}\n`)
    if (result.errors) throw new Error(`${build.name}: ${result.errors} errors, first: ${result.firstError}`)
    const per = (us) => us / result.done
    const order = [...after.keys()].sort((a, b) => after.get(a).start - after.get(b).start || Number(a) - Number(b))
    const byThread = order.map((tid, i) => ({ i, tid, us: per(after.get(tid).us - (before.get(tid)?.us ?? 0)), sys: per(after.get(tid).sys - (before.get(tid)?.sys ?? 0)) }))
    const main = byThread.find((t) => t.tid === String(child.pid))
    return {
      pid: child.pid,
      load: la,
      spawnsPerSec: result.opsPerSec,
      all: byThread.reduce((s, t) => s + t.us, 0),
      kernel: byThread.reduce((s, t) => s + t.sys, 0),
      loop: main.us,
      others: byThread.filter((t) => t.tid !== String(child.pid) && t.us > 3),
      generator: per(self.user + self.system),
    }
  } finally {
    await stopIssuer(child)
    rmSync(dataDir, { recursive: true, force: true })
  }
}

const results = new Map(builds.map((b) => [b.name, []]))
for (let r = 0; r < ROUNDS; r++) {
  for (const build of r % 2 ? [...builds].reverse() : builds) {
    const x = await round(build)
    results.get(build.name).push(x)
    const others = x.others.map((t) => `#${t.i} ${Math.round(t.us)}`).join(', ')
    console.log(`round ${r + 1} ${build.name} (issuer pid ${x.pid}): load ${x.load.toFixed(1)}, ${Math.round(x.spawnsPerSec)} spawns/s; issuer µs per spawn: all ${Math.round(x.all)} (kernel ${Math.round(x.kernel)}), event loop ${Math.round(x.loop)}; other threads by start order: ${others}; load generator ${Math.round(x.generator)}`)
  }
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}
console.log(`\nmedians of ${ROUNDS} rounds, µs per spawn (--n ${N}):`)
console.log('| build | event loop | all threads | kernel | spawns/s |')
console.log('|---|---:|---:|---:|---:|')
for (const [name, xs] of results) {
  console.log(`| ${name} | ${Math.round(median(xs.map((x) => x.loop)))} | ${Math.round(median(xs.map((x) => x.all)))} | ${Math.round(median(xs.map((x) => x.kernel)))} | ${Math.round(median(xs.map((x) => x.spawnsPerSec)))} |`)
}
