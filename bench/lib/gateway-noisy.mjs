// When the gateway suite's overhead (gateway − direct latency) means nothing. A difference of two
// latencies says something only when the reference (direct) is steady and both paths kept the rate:
// on a starved machine the direct path's own p99 can exceed the gateway's (a negative overhead, once
// printed "met"). Such a run is flagged noisy, with the reason, never met.
import { cv } from './measure.mjs'

const f3 = (v) => v.toFixed(3)

/**
 * Why the overhead at `q` ('p50' | 'p99') cannot be judged, or null.
 * `stats`: { direct, gateway }: { p50, p99 } over all rounds (ms); `perRound`: { direct, gateway }:
 * arrays of { p50, p99 } per round; `rates`: { direct, gateway }: achieved calls/s per round; `rate`:
 * the rate asked for; `errors`: failed calls; `warmupFailures`: one line per path whose warm-up had failures.
 */
export function gatewayNoisy(q, { stats, perRound, rates, rate, errors, warmupFailures = [] }) {
  const over = stats.gateway[q] - stats.direct[q]
  if (!(over > 0)) return `the overhead is not positive (${f3(over)} ms): the direct path was slower than the gateway`
  if (errors) return `${errors} calls failed`
  if (warmupFailures.length) return `calls failed in the warm-up: ${warmupFailures.join(', ')}`
  const slow = Object.entries(rates).find(([, r]) => Math.min(...r) < rate * 0.95)
  if (slow) return `the ${slow[0]} path did not keep the rate (${Math.round(Math.min(...slow[1]))}/s of ${rate}/s in a round)`
  const roundOver = perRound.gateway.map((g, i) => g[q] - perRound.direct[i][q])
  if (roundOver.some((x) => !(x > 0))) return `a round's ${q} overhead was not positive (${roundOver.map(f3).join(', ')} ms)`
  const c = cv(perRound.direct.map((x) => x[q]))
  if (c > (q === 'p50' ? 0.25 : 0.5)) return `the direct path's per-round ${q} varies by CV ${(c * 100).toFixed(0)} % (${perRound.direct.map((x) => f3(x[q])).join(', ')} ms)`
  // A reference whose tail is this far from its median was stalled (by the machine, not by its work):
  // the gateway's tail minus it is the difference of two stalls.
  if (q === 'p99' && stats.direct.p99 > 10 * stats.direct.p50) return `the direct path's p99 is ${(stats.direct.p99 / stats.direct.p50).toFixed(0)}× its p50: the machine stalled the reference`
  if (stats.direct[q] > 50) return `the direct path's own ${q} is ${f3(stats.direct[q])} ms: a loopback call to the fixture takes about 1 ms on an idle machine, so this one was starved`
  return null
}
