// Red team: the console's own consistency check on logs past 2^32 leaves, against @agentid/tlog's
// proofs over a tree of identical leaves (a complete subtree's hash depends only on its height, so
// no 4 billion leaves are hashed). A size whose low 32 bits are a power of two is not one.
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { consistencyProof, hashChildren, hashLeaf, treeHash, type HashSource } from '@agentid/tlog'
import { verifyConsistency } from '../src/merkle'

const heights = [hashLeaf(new TextEncoder().encode('same entry'))]
for (let h = 1; h <= 53; h++) heights.push(hashChildren(heights[h - 1]!, heights[h - 1]!))
const synthetic: HashSource = { nodeHash: (level) => heights[level]! }

describe('verifyConsistency past 2^32 leaves', () => {
  const cases: [number, number][] = [
    [2 ** 32 + 1, 2 ** 32 + 3], // low 32 bits 1: a bitwise power-of-two test says yes
    [2 ** 33 + 2 ** 5, 2 ** 34], // low 32 bits 2^5
    [2 ** 40 + 2 ** 31, 2 ** 41 + 7], // low 32 bits 2^31 (a negative int32)
    [2 ** 32, 2 ** 32 + 5], // a real power of two
    [2 ** 50 - 3, 2 ** 50 + 2 ** 32 + 1],
  ]
  it.each(cases)('accepts the reference proof from %d to %d, refuses it altered', async (size1, size2) => {
    const root1 = treeHash(synthetic, size1)
    const root2 = treeHash(synthetic, size2)
    const proof = consistencyProof(synthetic, size1, size2)
    expect(await verifyConsistency(size1, size2, root1, root2, proof)).toBe(true)
    const altered = proof.map((h, i) => (i === proof.length - 1 ? createHash('sha256').update(h).digest() : h))
    expect(await verifyConsistency(size1, size2, root1, root2, altered)).toBe(false)
  })
})
