import { describe, expect, it } from 'vitest'
import { timeOrderedUuid } from '../src/domain/ids.js'

describe('timeOrderedUuid', () => {
  it('is a UUID version 7 carrying the time in its first 48 bits', () => {
    const ms = Date.UTC(2026, 11, 6, 10, 0, 0, 123)
    const id = timeOrderedUuid(ms)
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(ms)
  })

  it('sorts in time order and differs within one millisecond', () => {
    const ids = Array.from({ length: 2000 }, (_, i) => timeOrderedUuid(1_780_000_000_000 + Math.floor(i / 10)))
    const byTime = ids.filter((_, i) => i % 10 === 0)
    expect([...byTime].sort()).toEqual(byTime)
    expect(new Set(ids).size).toBe(ids.length)
  })

  it('refuses what is not a unix time in milliseconds', () => {
    for (const bad of [-1, 2 ** 48, Number.NaN, Infinity]) expect(() => timeOrderedUuid(bad)).toThrow(TypeError)
  })
})
