// Property tests: proofs from MerkleTree for random tree sizes against a naive recomputation of the
// RFC 9162 §2.1 definitions (MTH, PATH, PROOF/SUBPROOF) over the leaf list.
import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MerkleTree, rootFromInclusionProof, verifyConsistency, verifyInclusion } from '@agentid/tlog'

const sha = (...parts: Uint8Array[]) => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest()
}
const leafHash = (i: number) => sha(Buffer.from([0]), Buffer.from(`entry ${i}`))
const k = (n: number) => 2 ** Math.ceil(Math.log2(n) - 1) // largest power of two < n (n ≥ 2)

function mth(d: Buffer[]): Buffer {
  if (d.length === 0) return sha()
  if (d.length === 1) return d[0] as Buffer
  const s = k(d.length)
  return sha(Buffer.from([1]), mth(d.slice(0, s)), mth(d.slice(s)))
}
function path(m: number, d: Buffer[]): Buffer[] {
  if (d.length <= 1) return []
  const s = k(d.length)
  return m < s ? [...path(m, d.slice(0, s)), mth(d.slice(s))] : [...path(m - s, d.slice(s)), mth(d.slice(0, s))]
}
function subproof(m: number, d: Buffer[], b: boolean): Buffer[] {
  if (m === d.length) return b ? [] : [mth(d)]
  const s = k(d.length)
  return m <= s ? [...subproof(m, d.slice(0, s), b), mth(d.slice(s))] : [...subproof(m - s, d.slice(s), false), mth(d.slice(0, s))]
}

const hex = (a: Uint8Array[]) => a.map((x) => Buffer.from(x).toString('hex'))
const MAX = 700
const leaves = Array.from({ length: MAX }, (_, i) => leafHash(i))
const tree = new MerkleTree()
for (const l of leaves) tree.append(l)

describe('MerkleTree against the RFC definitions', () => {
  it('naive helpers reproduce the RFC 6962 vector roots', () => {
    expect(mth([]).toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  })
  it('roots', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX }), (n) => {
        expect(Buffer.from(tree.root(n)).equals(mth(leaves.slice(0, n)))).toBe(true)
      }),
      { numRuns: 200 },
    )
  })
  it('inclusion proofs equal PATH and verify; a wrong index or size does not', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n - 1 }))), ([n, m]) => {
        const d = leaves.slice(0, n)
        const proof = tree.inclusionProof(m, n)
        expect(hex(proof)).toEqual(hex(path(m, d)))
        const root = mth(d)
        verifyInclusion(m, n, d[m] as Buffer, proof, root)
        if (n > 1) {
          const other = (m + 1) % n
          expect(() => verifyInclusion(other, n, d[m] as Buffer, proof, root)).toThrow()
        }
        // (A proof for size n can also fit size n+1 when the extra leaf only extends the right edge,
        // so the size is not a useful negative; a wrong root, a longer proof and a flipped bit are.)
        expect(() => verifyInclusion(m, n, d[m] as Buffer, proof, mth(d.slice(0, n - 1)))).toThrow()
        expect(() => verifyInclusion(m, n, d[m] as Buffer, [...proof, root], root)).toThrow()
        if (proof.length > 0) {
          const bad = proof.map((p) => Buffer.from(p))
          ;(bad[m % bad.length] as Buffer)[n % 32] ^= 0x80
          expect(() => verifyInclusion(m, n, d[m] as Buffer, bad, root)).toThrow()
        }
      }),
      { numRuns: 300 },
    )
  })
  it('consistency proofs equal PROOF and verify; a tampered proof does not', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: MAX }).chain((n) => fc.tuple(fc.integer({ min: 1, max: n }), fc.constant(n), fc.nat())),
        ([m, n, salt]) => {
          const proof = tree.consistencyProof(m, n)
          expect(hex(proof)).toEqual(m === n ? [] : hex(subproof(m, leaves.slice(0, n), true)))
          const r1 = mth(leaves.slice(0, m))
          const r2 = mth(leaves.slice(0, n))
          verifyConsistency(m, n, r1, r2, proof)
          if (proof.length > 0) {
            const bad = proof.map((p) => Buffer.from(p))
            const i = salt % bad.length
            ;(bad[i] as Buffer)[salt % 32] ^= 1
            expect(() => verifyConsistency(m, n, r1, r2, bad)).toThrow()
            expect(() => verifyConsistency(m, n, r1, r2, proof.slice(0, -1))).toThrow()
            expect(() => verifyConsistency(m, n, r1, r2, [...proof, r1])).toThrow()
          }
          if (m < n) expect(() => verifyConsistency(m, n, r2, r1, proof)).toThrow()
        },
      ),
      { numRuns: 300 },
    )
  })
  it('works past 2^32 leaves in index arithmetic (no 32-bit shifts)', () => {
    // A single-leaf path at a huge index: the sibling walk must use exact arithmetic.
    const size = 2 ** 40 + 3
    const index = 2 ** 40 + 2
    const proof = Array.from({ length: 2 }, (_, i) => leafHash(i))
    // index is the last leaf of a 3-leaf right edge: proof = [sibling subtree (2 leaves) , left 2^40 subtree]
    const r = rootFromInclusionProof(index, size, leafHash(9), proof)
    expect(r).toHaveLength(32)
  })
})
