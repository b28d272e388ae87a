// What the HTTP suites (spawn, token) share: the built issuer in a child process on a fresh data dir,
// a closed-loop load generator with latency percentiles, a keep-alive POST over Node's http client,
// and the CPU time of a process from /proc.
import { spawn as spawnProcess } from 'node:child_process'
import http from 'node:http'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const benchDir = fileURLToPath(new URL('..', import.meta.url))

export function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : NaN
}

/** Runs `op` with `concurrency` in flight for `ms`; returns throughput and latency percentiles. */
export async function load(op, { concurrency, ms, max = Infinity }) {
  let started = 0
  let done = 0
  let errors = 0
  let firstError
  const latencies = []
  const t0 = performance.now()
  const deadline = t0 + ms
  async function worker() {
    while (performance.now() < deadline && started < max) {
      const i = started++
      const s = performance.now()
      try {
        await op(i)
        latencies.push(performance.now() - s)
        done++
      } catch (e) {
        errors++
        firstError ??= e
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const elapsed = (performance.now() - t0) / 1000
  latencies.sort((a, b) => a - b)
  return { opsPerSec: done / elapsed, done, errors, firstError: firstError ? String(firstError.message ?? firstError) : null, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) }
}

// utime + stime of a process, from /proc (Linux), in seconds; NaN elsewhere.
export function cpuSeconds(pid, which = 'both') {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    const user = Number(fields[11]) / 100
    const system = Number(fields[12]) / 100
    return which === 'user' ? user : which === 'system' ? system : user + system
  } catch {
    return NaN
  }
}

/** utime + stime of the main thread (the event loop) of a process, in seconds; NaN elsewhere than Linux. */
export function mainThreadCpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return NaN
  }
}

/**
 * Starts `apps/issuer/dist/main.js` on `dataDir` (port 0, a random admin key); resolves once it
 * listens. `BENCH_PROF=<dir>` writes a CPU profile of it. `root`: another checkout whose build to run.
 */
export async function startIssuer(dataDir, env = {}, root = join(benchDir, '..')) {
  const adminKey = 'aid_admin_' + Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url')
  // Port 0: the issuer binds a free port and says which in its start-up line on stderr, so the
  // bench never talks to some other process that happens to hold a port it guessed.
  // BENCH_CALLGRIND=<dir>: the issuer runs under callgrind, instrumentation off until the caller
  // turns it on (`callgrind_control -i on <pid>`), one output file per thread (spawn-http-cpu.mjs).
  const cg = process.env.BENCH_CALLGRIND
  const node = [...(process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : []), join(root, 'apps/issuer/dist/main.js')]
  const child = spawnProcess(cg ? 'valgrind' : process.execPath, cg ? ['--tool=callgrind', '--instr-atstart=no', '--separate-threads=yes', `--callgrind-out-file=${cg}/callgrind.out.%p`, process.execPath, ...node] : node, {
    env: { ...process.env, AGENTID_DATA_DIR: dataDir, AGENTID_PORT: '0', AGENTID_ADMIN_KEY: adminKey, AGENTID_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const url = await new Promise((resolve, reject) => {
    let seen = ''
    const timer = setTimeout(() => reject(new Error('issuer did not start in time')), cg ? 300_000 : 30_000)
    child.stderr.on('data', (chunk) => {
      seen += chunk
      process.stderr.write(chunk)
      const m = /"msg":"agentid issuer listening","url":"([^"]+)"/.exec(seen)
      if (m) {
        clearTimeout(timer)
        resolve(m[1])
      }
    })
    child.once('exit', (code) => reject(new Error(`issuer exited with ${code}`)))
  })
  return { child, url, adminKey }
}

/** Stops an issuer started by startIssuer and waits for it to exit. */
export async function stopIssuer(child) {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  await new Promise((r) => child.once('exit', r))
}

/**
 * A POST over Node's http client with keep-alive (undici's fetch costs the load generator ~4× more
 * CPU per request, and on a 2-core machine the generator's CPU is taken from the server).
 * Resolves with { status, headers, body } whatever the status.
 */
export function poster(baseUrl, { concurrency }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency })
  const { hostname, port } = new URL(baseUrl)
  return (path, body, headers) => new Promise((resolve, reject) => {
    const req = http.request({ host: hostname, port, path, method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }))
    })
    req.on('error', reject)
    req.end(body)
  })
}
