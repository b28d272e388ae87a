// The audit events' time (isoTime): exactly Date's toISOString, whatever the clock gives, in any order.
import { describe, expect, it } from 'vitest'
import { isoTime } from '../src/guard.js'

describe('isoTime', () => {
  it('is new Date(ms).toISOString() across seconds, back and forth, fractions, negatives and long years', () => {
    const base = Date.UTC(2026, 11, 7, 0, 59, 59, 998)
    const times = [base, base + 1, base + 2, base + 1, base - 1000, base + 999, base + 1000, base + 0.9, base - 0.5, 0, -0, -0.5, -1, -999, -1000, -1001, 1.7, 999.999,
      Date.UTC(9999, 11, 31, 23, 59, 59, 999), Date.UTC(10000, 0, 1), Date.UTC(-1, 0, 1, 0, 0, 0, 5), -62167219200000, 8.64e15, -8.64e15]
    let seed = 7
    for (let i = 0; i < 2000; i++) {
      seed = (seed * 1103515245 + 12345) % 2147483648
      times.push(base + (seed % 5000) - 2500, (seed / 2147483648 - 0.5) * 2e14)
    }
    for (const ms of times) expect([ms, isoTime(ms)]).toEqual([ms, new Date(ms).toISOString()])
  })

  it('throws as toISOString does for a time that is not one', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, 8.64e15 + 1, -8.64e15 - 1]) {
      expect(() => isoTime(bad)).toThrow(RangeError)
      expect(() => new Date(bad).toISOString()).toThrow(RangeError)
    }
  })
})
