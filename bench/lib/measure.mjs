// Throughput measurement: timed rounds of at least `minMs` each, after a warm-up; medians.
import { performance } from 'node:perf_hooks'

/**
 * Runs `fn` (sync or async) for at least `minMs` ms, in batches; returns ops per second. Starts with a
 * full collection (under --expose-gc) unless `gc: false` (the caller did it), outside the timed window.
 */
export async function round(fn, { minMs = 1000, batch = 64, sync = false, gc = true } = {}) {
  if (gc) globalThis.gc?.()
  let ops = 0
  const start = performance.now()
  let elapsed = 0
  do {
    if (sync) for (let i = 0; i < batch; i++) fn()
    else for (let i = 0; i < batch; i++) await fn()
    ops += batch
    elapsed = performance.now() - start
  } while (elapsed < minMs)
  return (ops * 1000) / elapsed
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/**
 * Measures several cases in one process, interleaved: a warm-up round of each, then round r of
 * every case before round r + 1 of any, so that drift of a shared machine hits all cases alike.
 * `cases`: { key: { fn, sync?, batch?, before? } }. Returns { key: { median, rounds, cpuRounds } }:
 * ops/s per round, and the process's CPU time (user + system, all threads) per op in µs per round,
 * which a loaded machine moves less than wall time (a process waiting for a core uses none).
 * `before(lastOpsPerSec)`, when given, runs untimed before the case's warm-up (with 0) and before
 * each of its rounds (with its last figure): to prepare what the round will use up.
 * `alternate`: odd rounds run the cases in reverse order, so that no case always runs first (or
 * always right after another): for ratios of cases that each depend on what ran before them.
 * `settleMs` (default `minMs`): after the full collection, the case runs that long untimed before
 * its windows open. A forced collection between rounds finds none of a case's short-lived objects
 * alive (nothing is in flight), so V8 clears their maps and deoptimizes the code that depended on them ("marking dependent
 * code … for deoptimization, reason: weak objects" under --trace-deopt, every round); re-optimizing it
 * ran on V8's compiler threads inside the next CPU window (≈ 10 % of a lineage round's CPU time, none
 * of its wall time). Traffic never lets every such object die at once; the settle run re-optimizes first
 * (250 ms was too short: a depth-8 lineage's verifyLineageWith was still being re-optimized in the window).
 */
export async function measureInterleaved(cases, { rounds = 5, minMs = 1000, warmupMs = 500, settleMs = minMs, alternate = false, log = () => {} } = {}) {
  const out = {}
  for (const [key, c] of Object.entries(cases)) {
    await c.before?.(0)
    out[key] = { median: 0, rounds: [], cpuRounds: [], warmup: await round(c.fn, { ...c, minMs: warmupMs }) }
  }
  for (let r = 0; r < rounds; r++) {
    const order = Object.entries(cases)
    if (alternate && r % 2 === 1) order.reverse()
    for (const [key, c] of order) {
      await c.before?.(out[key].rounds.at(-1) ?? out[key].warmup)
      // The full collection of what earlier cases and `before` left runs before both windows: it was
      // outside the wall-time window but inside the CPU one, which charged it (the whole live heap
      // marked, every pool of the suite) to whichever case came next, most to cases with few ops.
      globalThis.gc?.()
      if (settleMs > 0 && globalThis.gc !== undefined) await round(c.fn, { ...c, minMs: settleMs, gc: false })
      const cpu0 = process.cpuUsage()
      const t0 = performance.now()
      const opsPerSec = await round(c.fn, { ...c, minMs, gc: false })
      const cpu = process.cpuUsage(cpu0)
      out[key].rounds.push(opsPerSec)
      out[key].cpuRounds.push((cpu.user + cpu.system) / ((opsPerSec * (performance.now() - t0)) / 1000))
    }
    log(`round ${r + 1}/${rounds} done`)
  }
  for (const v of Object.values(out)) v.median = median(v.rounds)
  return out
}

/** Coefficient of variation (standard deviation / mean) of a list of figures. */
export function cv(values) {
  const mean = values.reduce((a, b) => a + b, 0) / values.length
  if (!(mean > 0)) return Infinity
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length
  return Math.sqrt(variance) / mean
}

/**
 * Why a ratio measured over rounds cannot be judged, or null: its per-round figures (and those of
 * the reference it divides by) vary by more than `maxCv`, or a figure is not a positive number.
 * A row given `noisy` prints "noisy" instead of met / MISSED.
 */
export function noisyReason(series, { maxCv = 0.15 } = {}) {
  for (const [name, values] of Object.entries(series)) {
    if (values.some((v) => !(Number.isFinite(v) && v > 0))) return `${name}: a figure is not positive`
    const c = cv(values)
    if (c > maxCv) return `${name}: per-round CV ${(c * 100).toFixed(0)} % > ${(maxCv * 100).toFixed(0)} %`
  }
  return null
}
