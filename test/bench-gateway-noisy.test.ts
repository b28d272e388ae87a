// The gateway bench's judgement of its own measurement (bench/lib/gateway-noisy.mjs): a run whose
// overhead is meaningless (negative, a starved or stalled reference, a path below the rate, failed
// calls) is "noisy", never "met". No timing here: the figures are given.
import { describe, expect, it } from 'vitest'
// @ts-expect-error: a plain .mjs module of the bench, without types
import { gatewayNoisy } from '../bench/lib/gateway-noisy.mjs'

type P = { p50: number; p99: number }
const round = (p50: number, p99: number): P => ({ p50, p99 })
/** A quiet run: direct ≈ 1 / 2 ms, gateway ≈ 1.6 / 3 ms, 5 rounds at 500/s. */
function quiet() {
  return {
    stats: { direct: round(1.0, 2.0), gateway: round(1.6, 3.0) },
    perRound: { direct: Array.from({ length: 5 }, () => round(1.0, 2.0)), gateway: Array.from({ length: 5 }, () => round(1.6, 3.0)) },
    rates: { direct: [500, 499, 500, 500, 498], gateway: [500, 500, 497, 500, 499] },
    rate: 500,
    errors: 0,
  }
}

describe('gateway bench: noisy runs', () => {
  it('judges a steady run', () => {
    expect(gatewayNoisy('p50', quiet())).toBeNull()
    expect(gatewayNoisy('p99', quiet())).toBeNull()
  })

  it('flags a negative overhead (the direct path p99 of 270 ms on a busy machine)', () => {
    const run = quiet()
    run.stats.direct.p99 = 270
    run.perRound.direct[2] = round(1.0, 270)
    expect(gatewayNoisy('p99', run)).toMatch(/not positive/)
  })

  it('flags a reference whose p99 is far above its p50, even when the overhead looks fine', () => {
    const run = quiet()
    run.stats.direct.p99 = 30
    run.stats.gateway.p99 = 31
    run.perRound.direct = run.perRound.direct.map(() => round(1.0, 30))
    run.perRound.gateway = run.perRound.gateway.map(() => round(1.6, 31))
    expect(gatewayNoisy('p99', run)).toMatch(/stalled the reference/)
  })

  it('flags a starved reference (direct p50 in the hundreds of ms) with a small positive overhead', () => {
    const run = quiet()
    run.stats = { direct: round(300, 900), gateway: round(300.5, 901) }
    run.perRound = { direct: run.perRound.direct.map(() => round(300, 900)), gateway: run.perRound.gateway.map(() => round(300.5, 901)) }
    expect(gatewayNoisy('p50', run)).toMatch(/starved/)
    expect(gatewayNoisy('p99', run)).toMatch(/starved/)
  })

  it('flags a round where the overhead was not positive', () => {
    const run = quiet()
    run.perRound.gateway[1] = round(0.9, 3.0)
    expect(gatewayNoisy('p50', run)).toMatch(/round's p50/)
  })

  it('flags failed calls and a path that did not keep the rate', () => {
    expect(gatewayNoisy('p50', { ...quiet(), errors: 3 })).toMatch(/3 calls failed/)
    expect(gatewayNoisy('p99', { ...quiet(), warmupFailures: ['direct 53 (first: fetch failed)'] })).toMatch(/warm-up: direct 53/)
    const slow = quiet()
    slow.rates.gateway[4] = 250
    expect(gatewayNoisy('p50', slow)).toMatch(/gateway path did not keep the rate/)
  })

  it('flags a reference whose per-round figures swing', () => {
    const run = quiet()
    run.perRound.direct = [1, 1, 1, 3, 1].map((p) => round(p, 2))
    run.perRound.gateway = [1.6, 1.6, 1.6, 3.6, 1.6].map((p) => round(p, 3))
    expect(gatewayNoisy('p50', run)).toMatch(/varies by CV/)
  })
})
