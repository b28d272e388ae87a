// argsDigest's one-pass RFC 8785 serialization against `canonicalize` (the reference it stands in for)
// and the ES6 number-formatting vectors: the same bytes for every JSON value, the same refusals.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import fc from 'fast-check'
import { argsDigest } from '@agentid/lineage'
import { describe, expect, it } from 'vitest'

const canonicalize = createRequire(import.meta.url)('canonicalize') as (input: unknown) => string
const digestOf = (text: string) => createHash('sha256').update(text, 'utf8').digest('base64url')

describe('argsDigest one-pass RFC 8785', () => {
  it('digests what canonicalize writes, for random JSON values (unicode names, doubles, nesting)', () => {
    const value = fc.letrec((tie) => ({
      json: fc.oneof({ depthSize: 'small' }, fc.constant(null), fc.boolean(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer(), fc.string({ unit: 'binary' }), tie('array'), tie('object')),
      array: fc.array(tie('json'), { maxLength: 5 }),
      object: fc.dictionary(fc.string({ unit: 'binary', maxLength: 6 }), tie('json'), { maxKeys: 5 }),
    })).json
    fc.assert(fc.property(value, (v) => {
      expect(argsDigest(v)).toBe(digestOf(canonicalize(v)))
    }), { numRuns: 500 })
  })

  it('formats numbers as the ES6 vectors say', () => {
    const lines = readFileSync(new URL('./vectors/es6testfile-first-1000.derived.txt', import.meta.url), 'utf8').trim().split('\n')
    expect(lines.length).toBeGreaterThan(900)
    for (const line of lines) {
      const [hex, expected] = line.split(',')
      const number = Buffer.from(hex!.padStart(16, '0'), 'hex').readDoubleBE(0)
      expect(argsDigest({ n: [number] })).toBe(digestOf(`{"n":[${expected}]}`))
    }
  })

  it('members whose value is undefined are left out; toJSON, classes, holes and symbols are not read as JSON', () => {
    expect(argsDigest({ b: undefined, a: 1 })).toBe(digestOf('{"a":1}'))
    expect(argsDigest(Object.assign(Object.create(null), { z: 1, a: [true, null] }))).toBe(digestOf('{"a":[true,null],"z":1}'))
    for (const bad of [{ a: [1, undefined] }, [1, , 2], { toJSON: () => 1 }, { a: Symbol('x') }, new (class A {})(), { a: 1n }, { a: -Infinity }]) {
      expect(() => argsDigest(bad), String(bad)).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_INPUT' }))
    }
  })

  it('a wide value (over the one pass\'s 10,000 values) digests the same through the two-pass path', () => {
    const wide = Array.from({ length: 20_000 }, (_, i) => ({ i, s: `v${i}` }))
    expect(argsDigest(wide)).toBe(digestOf(canonicalize(wide)))
  })
})
