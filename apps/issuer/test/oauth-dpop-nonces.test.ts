// DPoP nonces under a key shared by every issuer instance on one database: stateless, accepted by
// any instance for the window they were issued in and the next one.
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { DpopNonces } from '../src/oauth/dpop.js'

describe('DpopNonces with a shared key', () => {
  const key = randomBytes(32)
  const at = (t: { now: number }) => () => t.now

  it('a nonce one instance issues is accepted by another with the same key, not with another key', () => {
    const t = { now: 1_000_000 }
    const a = new DpopNonces(at(t), 300, key)
    const b = new DpopNonces(at(t), 300, Buffer.from(key))
    const other = new DpopNonces(at(t), 300, randomBytes(32))
    const nonce = a.issue()
    expect(b.accepts(nonce)).toBe(true)
    expect(other.accepts(nonce)).toBe(false)
    expect(b.issue()).toBe(nonce)
  })

  it('accepted in its window and the next, refused after', () => {
    const t = { now: 300 * 1000 }
    const a = new DpopNonces(at(t), 300, key)
    const nonce = a.issue()
    t.now += 299
    expect(a.accepts(nonce)).toBe(true)
    t.now += 300
    expect(a.accepts(nonce)).toBe(true)
    t.now += 1
    expect(a.accepts(nonce)).toBe(false)
    // A nonce of a future window (forged from a stolen format) is refused too.
    const future = new DpopNonces(() => t.now + 600, 300, key).issue()
    expect(a.accepts(future)).toBe(false)
  })

  it('refuses malformed and altered nonces', () => {
    const t = { now: 1_000_000 }
    const a = new DpopNonces(at(t), 300, key)
    const nonce = a.issue()
    const [w, mac] = nonce.split('.') as [string, string]
    const flipped = `${w}.${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`
    for (const bad of [undefined, null, 42, '', nonce + 'x', `0${nonce}`, flipped, `${Number(w) + 1}.${mac}`, `${w}.${mac}.${mac}`, 'x'.repeat(100), `${w} .${mac}`, `-${w}.${mac}`]) {
      expect(a.accepts(bad), String(bad)).toBe(false)
    }
    expect(() => new DpopNonces(at(t), 300, randomBytes(16))).toThrow(TypeError)
  })
})
