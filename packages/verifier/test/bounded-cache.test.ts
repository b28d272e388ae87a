// BoundedCache evicts the least recently inserted or touched entry. It finds that entry with one Map
// iterator kept across evictions (see lru.ts); this holds it to a plain model (an array in recency
// order) over random sequences of set, get, touch, delete and clear, at several sizes.
import { describe, expect, it } from 'vitest'
import { BoundedCache } from '../src/lru.js'

function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('BoundedCache', () => {
  it('evicts in insertion/touch order, as a model in recency order does', () => {
    for (const max of [1, 2, 3, 7, 64]) {
      for (let seed = 1; seed <= 20; seed++) {
        const random = rng(seed * 131 + max)
        const cache = new BoundedCache<string, number>(max)
        let model: [string, number][] = []
        const keySpace = max * 3 + 2
        for (let step = 0; step < 2000; step++) {
          const key = `k${Math.floor(random() * keySpace)}`
          const op = random()
          if (op < 0.55) {
            cache.set(key, step)
            const at = model.findIndex(([k]) => k === key)
            if (at !== -1) model.splice(at, 1)
            else if (model.length >= max) model.shift()
            model.push([key, step])
          } else if (op < 0.75) {
            const at = model.findIndex(([k]) => k === key)
            const value = cache.get(key)
            expect(value).toBe(at === -1 ? undefined : model[at]![1])
            if (value !== undefined && op < 0.65) {
              cache.touch(key, value)
              model.splice(at, 1)
              model.push([key, value])
            }
          } else if (op < 0.95) {
            cache.delete(key)
            model = model.filter(([k]) => k !== key)
          } else if (op < 0.96) {
            cache.clear()
            model = []
          }
          expect(cache.size).toBe(model.length)
        }
        for (let k = 0; k < keySpace; k++) {
          const entry = model.find(([m]) => m === `k${k}`)
          expect(cache.get(`k${k}`)).toBe(entry?.[1])
        }
      }
    }
  })

  it('keeps evicting the oldest after the cache was emptied by deletes and refilled', () => {
    const cache = new BoundedCache<string, number>(2)
    cache.set('a', 1)
    cache.set('b', 2)
    cache.set('c', 3) // evicts a
    cache.delete('b')
    cache.delete('c')
    cache.set('d', 4)
    cache.set('e', 5)
    cache.set('f', 6) // evicts d
    expect([cache.get('d'), cache.get('e'), cache.get('f')]).toEqual([undefined, 5, 6])
  })
})
