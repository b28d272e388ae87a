// ConsoleSessions (src/console/sessions.ts): idle and absolute expiry, the least recently used session
// dropped past the bound, ids of the wrong shape never looked up, deleteWhere, option checks.
import { describe, expect, it } from 'vitest'
import { ConsoleSessions, isSessionIdShape, sameSecret } from '../src/console/sessions.js'

describe('ConsoleSessions', () => {
  it('ends a session idle too long, and any session past its absolute lifetime however active', () => {
    const clock = { now: 1_000_000 }
    const sessions = new ConsoleSessions({ idleSec: 60, maxAgeSec: 300, clock: () => clock.now })
    const { id } = sessions.create({ kind: 'admin' })
    for (let i = 0; i < 5; i++) {
      clock.now += 59_000
      expect(sessions.get(id)).toBeDefined()
      expect(sessions.expiresIn(sessions.get(id)!)).toBe(Math.min(60, 300 - 59 * (i + 1)))
    }
    clock.now += 6_000 // 301 s after creation, 6 s after the last use
    expect(sessions.get(id)).toBeUndefined()
    const idle = sessions.create({ kind: 'admin' })
    clock.now += 60_000
    expect(sessions.get(idle.id)).toBeUndefined()
    expect(sessions.size).toBe(0)
  })

  it('keeps at most maxSessions, dropping the least recently used', () => {
    const sessions = new ConsoleSessions({ maxSessions: 3 })
    const [a, b, c] = [sessions.create({ kind: 'admin' }), sessions.create({ kind: 'admin' }), sessions.create({ kind: 'admin' })]
    expect(sessions.get(a.id)).toBeDefined() // a is now the most recent
    const d = sessions.create({ kind: 'admin' })
    expect(sessions.size).toBe(3)
    expect(sessions.get(b.id)).toBeUndefined()
    for (const s of [a, c, d]) expect(sessions.get(s.id)).toBeDefined()
  })

  it('gives each session its own random id and CSRF token; refuses ids of another shape', () => {
    const sessions = new ConsoleSessions()
    const x = sessions.create({ kind: 'orchestrator', id: 'orch_1', name: 'acme' })
    const y = sessions.create({ kind: 'admin' })
    expect(x.id).not.toBe(y.id)
    expect(x.session.csrf).not.toBe(y.session.csrf)
    expect(x.session.csrf).not.toBe(x.id)
    for (const bad of [undefined, '', `${x.id}=`, x.id.slice(1), `${x.id} `, 42, ['a'], x.id.toUpperCase() === x.id ? null : x.id.toUpperCase()]) {
      if (bad !== null) expect(sessions.get(bad)).toBeUndefined()
    }
    expect(isSessionIdShape(x.id)).toBe(true)
    expect(sessions.deleteWhere((s) => s.principal.kind === 'orchestrator')).toBe(1)
    expect(sessions.get(x.id)).toBeUndefined()
    expect(sessions.get(y.id)).toBeDefined()
    expect(sessions.delete(y.id)).toBe(true)
    expect(sessions.delete(y.id)).toBe(false)
  })

  it('compares secrets in full', () => {
    expect(sameSecret('abc', 'abc')).toBe(true)
    expect(sameSecret('abc', 'abd')).toBe(false)
    expect(sameSecret('abc', 'abcd')).toBe(false)
    expect(sameSecret('', '')).toBe(false)
  })

  it('refuses timeouts that make no sense', () => {
    expect(() => new ConsoleSessions({ idleSec: 0 })).toThrow(TypeError)
    expect(() => new ConsoleSessions({ idleSec: 600, maxAgeSec: 60 })).toThrow(TypeError)
    expect(() => new ConsoleSessions({ idleSec: 1.5 })).toThrow(TypeError)
  })
})
