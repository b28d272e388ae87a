// Suite "gateway": per-call overhead of agentid-gateway over a direct call to the same upstream.
// The upstream is the Streamable HTTP fixture server (test/fixtures/http-server.mjs, its own process,
// bearer secret); the gateway is apps/gateway/dist/main.js (its own process) with a real policy folder
// and the real issuer (status list fetched and cached as in production): lib/gateway-setup.mjs. One MCP
// session per path, opened by an SDK Client; each timed call is the same tools/call (`echo`) POSTed on it
// with node:http (BENCH_GATEWAY_CLIENT=sdk: the SDK Client's callTool), at a fixed rate of RATE calls/s
// (open loop: calls start on schedule whether or not earlier ones finished) in interleaved rounds. The access token is obtained before timing and the DPoP proofs (one per request, as the guard
// requires) are signed before each round. Overhead = gateway − direct, at p50 and at p99. See README.md.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks'
import { cpuSeconds, percentile } from './lib/issuer-process.mjs'
import { gatewayNoisy } from './lib/gateway-noisy.mjs'
import { startGatewayBench, suiteSetup } from './lib/gateway-setup.mjs'
import { progress, report } from './lib/suite.mjs'

const RATE = Number(process.env.BENCH_GATEWAY_RATE ?? 500)
const DURATION_MS = Number(process.env.BENCH_GATEWAY_MS ?? 10_000) // per path
const ROUNDS = 5
// Per path, before timing. A fresh gateway's CPU per call falls from ~2.3 ms over its first 300 calls
// to its steady ~0.8-1.1 ms only after ~4,000 calls (JIT; bench/gateway-warmup.mjs), and the upstream
// warms likewise: 1.5 s (750 calls) timed the first round at 1.5-2x the steady cost. 8 s at 500/s is
// 4,000 calls per path, the same for both paths.
const WARMUP_MS = Number(process.env.BENCH_GATEWAY_WARMUP_MS ?? 8000)
// How the load generator sends each call (BENCH_GATEWAY_CLIENT): `raw` (default) node:http on the session
// the SDK client opened, `sdk` the SDK client's callTool (see lib/gateway-setup.mjs: suiteSetup).
// The MCP server both paths call: `lean` (default) lib/lean-upstream.mjs, `sdk` the SDK fixture
// (test/fixtures/http-server.mjs), whose own collection pauses put 1-18 ms in both paths' p99.
const UPSTREAM = process.env.BENCH_GATEWAY_UPSTREAM ?? 'lean'
const log = (m) => progress('gateway', m)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** An error and its cause, one line: fetch's "fetch failed" says nothing without its cause. */
const describe = (e) => `${String(e?.message ?? e).slice(0, 160)}${e?.cause ? ` (${e.cause.code ?? ''} ${String(e.cause.message ?? e.cause).slice(0, 120)})` : ''}`

/**
 * Calls `call` RATE times a second for `ms` (open loop); latencies in ms from each call's start. Also
 * how long the load generator itself stalled meanwhile (its event loop's longest delay, its longest GC
 * pause): a latency includes any stall of the process that starts and times the call.
 */
async function phase(call, ms) {
  const n = Math.round((ms * RATE) / 1000)
  const interval = 1000 / RATE
  const latencies = []
  const inflight = []
  let errors = 0
  let firstError
  const loop = monitorEventLoopDelay({ resolution: 1 })
  let gcMax = 0
  const gcs = new PerformanceObserver((list) => { for (const e of list.getEntries()) gcMax = Math.max(gcMax, e.duration) })
  gcs.observe({ entryTypes: ['gc'] })
  loop.enable()
  const t0 = performance.now()
  for (let i = 0; i < n; i++) {
    const wait = t0 + i * interval - performance.now()
    if (wait >= 1) await sleep(wait)
    const start = performance.now()
    inflight.push(call(i).then(
      () => void latencies.push(performance.now() - start),
      (e) => { errors++; firstError ??= e },
    ))
  }
  await Promise.all(inflight)
  const elapsed = (performance.now() - t0) / 1000
  loop.disable()
  gcs.disconnect()
  return { latencies, errors, firstError, rate: n / elapsed, stall: { loopMaxMs: loop.max / 1e6, gcMaxMs: gcMax } }
}

let bench
let result
try {
  // The gateway's log and audit lines (≈ 300 KB/s at 500 calls/s) go to a file, as in a deployment: through
  // a pipe, this process had to drain them, during the gateway's rounds only.
  bench = await startGatewayBench({ prof: process.env.BENCH_PROF, log, ...suiteSetup() })
  const { gateway, upstream, cases, signProofs } = bench

  log(`warm-up: ${WARMUP_MS} ms per path at ${RATE}/s`)
  const warmupFailures = []
  signProofs(Math.ceil((WARMUP_MS * RATE) / 1000) + 64)
  for (const [name, call] of Object.entries(cases)) {
    const w = await phase(call, WARMUP_MS)
    // A path that fails every call is broken: stop. Some failures on a starved machine (the load generator's
    // fetch refused a connection) make the run noisy, not void.
    if (w.errors === w.latencies.length + w.errors) throw new Error(`warm-up ${name}: every call failed, first: ${describe(w.firstError)}`)
    if (w.errors) warmupFailures.push(`${name} ${w.errors} (first: ${describe(w.firstError)})`)
  }

  const all = { direct: [], gateway: [] }
  const rates = { direct: [], gateway: [] }
  const perRound = { direct: [], gateway: [] } // { p50, p99 } of each round
  const stalls = { direct: [], gateway: [] } // the load generator's own longest stalls, each round
  let errors = 0
  let firstError
  let gatewayCpu = 0
  let gatewaySys = 0
  let upstreamCpu = 0 // during the direct rounds: what one call costs an SDK server, for scale
  const roundMs = DURATION_MS / ROUNDS
  const nowUs = () => Number(process.hrtime.bigint() / 1000n) // the profiler's clock (monotonic µs)
  const window = { fromUs: 0, toUs: 0, calls: 0 }
  log(`timing: ${ROUNDS} interleaved rounds of ${roundMs} ms per path at ${RATE} calls/s`)
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? ['gateway', 'direct'] : ['direct', 'gateway']
    for (const name of order) {
      if (name === 'gateway') signProofs(Math.ceil((roundMs * RATE) / 1000) + 64)
      // The load generator's garbage so far (the proofs just signed, the last round's calls) is collected
      // before the round rather than in a pause that every call in flight would wait out (under --expose-gc).
      globalThis.gc?.()
      bench.gcPauses() // from here on
      if (window.fromUs === 0) window.fromUs = nowUs()
      const cpu0 = cpuSeconds(gateway.pid)
      const sys0 = cpuSeconds(gateway.pid, 'system')
      const up0 = cpuSeconds(upstream.pid)
      const p = await phase(cases[name], roundMs)
      if (name === 'gateway') {
        gatewayCpu += cpuSeconds(gateway.pid) - cpu0
        gatewaySys += cpuSeconds(gateway.pid, 'system') - sys0
      }
      else upstreamCpu += cpuSeconds(upstream.pid) - up0
      all[name].push(...p.latencies)
      rates[name].push(p.rate)
      const sorted = [...p.latencies].sort((a, b) => a - b)
      perRound[name].push({ p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) })
      stalls[name].push({ ...p.stall, children: bench.gcPauses() })
      errors += p.errors
      firstError ??= p.firstError
    }
    log(`round ${r + 1}/${ROUNDS} done`)
  }
  window.toUs = nowUs()
  window.calls = all.gateway.length
  if (process.env.BENCH_PROF) {
    // The timed rounds, for `node bench/cpuprofile-summary.mjs <gateway .cpuprofile> <this file>` (µs per gateway call;
    // the direct rounds in between leave the gateway idle).
    writeFileSync(join(process.env.BENCH_PROF, 'gateway-window.json'), `${JSON.stringify(window)}\n`)
  }
  if (errors) {
    const lines = bench.gatewayTail().split('\n').filter((l) => /"level":(40|50)/.test(l))
    log(`gateway errors (last warning lines):\n${lines.slice(-5).join('\n')}`)
  }
  const stats = {}
  for (const [name, values] of Object.entries(all)) {
    values.sort((a, b) => a - b)
    stats[name] = { calls: values.length, p50: percentile(values, 0.5), p90: percentile(values, 0.9), p99: percentile(values, 0.99), rate: rates[name].reduce((a, b) => a + b, 0) / rates[name].length }
  }
  const over50 = stats.gateway.p50 - stats.direct.p50
  const over99 = stats.gateway.p99 - stats.direct.p99
  const f3 = (v) => v.toFixed(3)
  const judged = { stats, perRound, rates, rate: RATE, errors, warmupFailures }
  const noisy50 = gatewayNoisy('p50', judged)
  const noisy99 = gatewayNoisy('p99', judged)
  result = {
    suite: 'gateway',
    title: `MCP tools/call through agentid-gateway vs direct, same HTTP upstream (${UPSTREAM === 'lean' ? 'lean MCP server' : 'SDK McpServer'}) and tool, ${RATE} calls/s open loop, ${DURATION_MS / 1000} s per path`,
    rows: [
      { figure: 'direct p50', value: stats.direct.p50, unit: 'ms' },
      { figure: 'direct p99', value: stats.direct.p99, unit: 'ms' },
      { figure: 'via gateway p50', value: stats.gateway.p50, unit: 'ms' },
      { figure: 'via gateway p99', value: stats.gateway.p99, unit: 'ms' },
      { figure: 'gateway overhead p50 (gateway − direct)', value: over50 * 1000, unit: 'µs', target: { max: 1000 }, ...(noisy50 ? { noisy: noisy50 } : {}) },
      { figure: 'gateway overhead p99 (gateway − direct)', value: over99 * 1000, unit: 'µs', target: { max: 2000 }, ...(noisy99 ? { noisy: noisy99 } : {}) },
    ],
    notes: [
      `ms to 3 places: direct p50 ${f3(stats.direct.p50)} p90 ${f3(stats.direct.p90)} p99 ${f3(stats.direct.p99)}; gateway p50 ${f3(stats.gateway.p50)} p90 ${f3(stats.gateway.p90)} p99 ${f3(stats.gateway.p99)}; overhead p50 ${f3(over50)} p99 ${f3(over99)}`,
      `per round (ms): direct p50 ${perRound.direct.map((x) => f3(x.p50)).join(', ')}, p99 ${perRound.direct.map((x) => f3(x.p99)).join(', ')}; gateway p50 ${perRound.gateway.map((x) => f3(x.p50)).join(', ')}, p99 ${perRound.gateway.map((x) => f3(x.p99)).join(', ')}`,
      `load generator's own longest stall per round (ms), event loop / GC pause: direct ${stalls.direct.map((x) => `${x.loopMaxMs.toFixed(1)}/${x.gcMaxMs.toFixed(1)}`).join(', ')}; gateway ${stalls.gateway.map((x) => `${x.loopMaxMs.toFixed(1)}/${x.gcMaxMs.toFixed(1)}`).join(', ')}; longest GC pause per round (ms, --trace-gc) of the upstream on the direct path ${stalls.direct.map((x) => x.children.upstream.toFixed(1)).join(', ')}, of the gateway / the upstream on the gateway path ${stalls.gateway.map((x) => `${x.children.gateway.toFixed(1)}/${x.children.upstream.toFixed(1)}`).join(', ')}`,
      `calls timed: direct ${stats.direct.calls}, gateway ${stats.gateway.calls}; achieved rate ${Math.round(stats.direct.rate)}/s and ${Math.round(stats.gateway.rate)}/s; errors ${errors}${firstError ? ` (first: ${describe(firstError)})` : ''}${warmupFailures.length ? `; warm-up failures: ${warmupFailures.join(', ')}` : ''}`,
      `CPU per call (user + system, /proc): gateway process ${Math.round((gatewayCpu / stats.gateway.calls) * 1e6)} µs (system ${Math.round((gatewaySys / stats.gateway.calls) * 1e6)}); upstream process on a direct call ${Math.round((upstreamCpu / stats.direct.calls) * 1e6)} µs`,
      'client, upstream and gateway share this machine; each call: DPoP-bound token + fresh proof verified, status list (cached), Cedar decision, audit line, forward over the gateway\'s upstream session',
    ],
    data: { rate: RATE, durationMs: DURATION_MS, rounds: ROUNDS, stats, perRound, stalls, noisy: { p50: noisy50, p99: noisy99 }, overhead: { p50: over50, p99: over99 }, gatewayCpuPerCallUs: (gatewayCpu / stats.gateway.calls) * 1e6, upstreamCpuPerDirectCallUs: (upstreamCpu / stats.direct.calls) * 1e6, errors },
  }
} finally {
  await bench?.close()
}
report(result)
