// Red team: Merkle proofs at sizes up to 2^53 - 1 (the exact-integer bound), over a tree of identical
// leaves (a complete subtree's hash depends only on its height, so nothing near 2^53 leaves is hashed):
// generation and verification agree where 32-bit arithmetic would not, and out-of-range indices and
// rolled-back sizes are refused.
import { describe, expect, it } from 'vitest'
import { consistencyProof, hashChildren, hashLeaf, inclusionProof, treeHash, verifyConsistency, verifyInclusion, type HashSource } from '@agentid/tlog'

const heights = [hashLeaf(new TextEncoder().encode('same entry'))]
for (let h = 1; h <= 53; h++) heights.push(hashChildren(heights[h - 1]!, heights[h - 1]!))
const src: HashSource = { nodeHash: (level) => heights[level]! }
const leaf = heights[0]!
const code = (fn: () => unknown) => {
  try {
    fn()
    return 'ok'
  } catch (e: any) {
    return e.code ?? e.name
  }
}

const M = Number.MAX_SAFE_INTEGER
const SIZES = [M, M - 1, 2 ** 53 - 2, 2 ** 52, 2 ** 52 + 1, 2 ** 52 - 1, 2 ** 33 + 1, 2 ** 32 + 1, 3 * 2 ** 50 + 7]

describe('proofs near 2^53 leaves', () => {
  it('every inclusion and consistency proof generated verifies', () => {
    for (const s of SIZES) {
      const root = treeHash(src, s)
      for (const i of [0, 1, s - 1, s - 2, Math.floor(s / 2), 2 ** 32, 2 ** 31 - 1]) {
        expect(code(() => verifyInclusion(i, s, leaf, inclusionProof(src, i, s), root)), `inclusion ${i} of ${s}`).toBe('ok')
      }
      for (const s1 of [1, 2, 3, s - 1, Math.floor(s / 3), 2 ** 32 + 1]) {
        expect(code(() => verifyConsistency(s1, s, treeHash(src, s1), root, consistencyProof(src, s1, s))), `consistency ${s1} to ${s}`).toBe('ok')
      }
    }
  })

  it('an index at or past the size, a size past 2^53 - 1, and a rollback are refused', () => {
    const s = 2 ** 52 + 1
    const root = treeHash(src, s)
    const proof = inclusionProof(src, s - 1, s)
    expect(code(() => verifyInclusion(s, s, leaf, proof, root))).toBe('ERR_SIGNATURE_INVALID')
    expect(code(() => verifyInclusion(s + 1, s + 2, leaf, proof, treeHash(src, s + 2)))).toBe('ERR_SIGNATURE_INVALID')
    expect(code(() => verifyInclusion(0, 2 ** 53, leaf, inclusionProof(src, 0, M), treeHash(src, M)))).toBe('ERR_MALFORMED')
    expect(code(() => inclusionProof(src, s, s))).toBe('RangeError')
    // The larger tree's proof presented for a rollback (sizes swapped).
    const forward = consistencyProof(src, s - 5, s)
    expect(code(() => verifyConsistency(s, s - 5, root, treeHash(src, s - 5), forward))).toBe('ERR_SIGNATURE_INVALID')
    expect(code(() => consistencyProof(src, s, s - 5))).toBe('RangeError')
  })
})
