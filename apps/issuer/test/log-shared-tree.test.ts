// The log's tree in shared memory: the same hashes, roots, proofs and tiles as @agentid/tlog's
// MerkleTree, and a view (the event loop's) that reads a snapshot across the writer's growth.
import { Worker } from 'node:worker_threads'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MerkleTree, hashLeaf } from '@agentid/tlog'
import { SharedTree } from '../src/log/shared-tree.js'

const entry = (i: number) => new TextEncoder().encode(`entry ${i}`)
const hex = (xs: Uint8Array[]) => xs.map((x) => Buffer.from(x).toString('hex'))

function both(n: number) {
  const shared = new SharedTree()
  const reference = new MerkleTree()
  for (let i = 0; i < n; i++) {
    shared.appendEntry(entry(i))
    reference.appendEntry(entry(i))
  }
  return { shared, reference }
}

describe('SharedTree', () => {
  it('has the roots, inclusion and consistency proofs and tiles of MerkleTree, for random sizes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1500 }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 1, max: n }), fc.integer({ min: 0, max: n - 1 }))), ([n, size, index]) => {
        const { shared, reference } = both(n)
        const view = SharedTree.view(shared.snapshot())
        for (const t of [shared, view]) {
          expect(t.size).toBe(n)
          expect(Buffer.from(t.root(size)).equals(reference.root(size))).toBe(true)
          if (index < size) expect(hex(t.inclusionProof(index, size))).toEqual(hex(reference.inclusionProof(index, size)))
          expect(hex(t.consistencyProof(size, n))).toEqual(hex(reference.consistencyProof(size, n)))
          const width = Math.min(256, n)
          expect(Buffer.from(t.tile(0, 0, width)).equals(reference.tile(0, 0, width))).toBe(true)
        }
      }),
      { numRuns: 40 },
    )
  })

  it('a view reads its snapshot after the writer grew and moved its buffers; a later snapshot reads the rest', () => {
    const tree = new SharedTree()
    for (let i = 0; i < 100; i++) tree.appendEntry(entry(i))
    const early = SharedTree.view(tree.snapshot())
    const root100 = Buffer.from(tree.root(100))
    for (let i = 100; i < 5000; i++) tree.appendEntry(entry(i)) // level 0 outgrows its first buffer (1,024 hashes)
    expect(early.size).toBe(100)
    expect(Buffer.from(early.root()).equals(root100)).toBe(true)
    expect(() => early.nodeHash(0, 100)).toThrow(RangeError)
    const later = SharedTree.view(tree.snapshot())
    expect(later.size).toBe(5000)
    expect(Buffer.from(later.nodeHash(0, 4999)).equals(hashLeaf(entry(4999)))).toBe(true)
    expect(Buffer.from(later.root()).equals(tree.root())).toBe(true)
  })

  it('a view is read-only and reads nothing beyond its snapshot', () => {
    const tree = new SharedTree()
    tree.appendEntry(entry(0))
    const view = SharedTree.view(tree.snapshot())
    expect(() => view.append(hashLeaf(entry(1)))).toThrow(TypeError)
    expect(() => view.root(2)).toThrow(RangeError)
    expect(() => view.tile(0, 0, 2)).toThrow(RangeError)
  })

  it('another thread reads the tree through a posted snapshot: the same memory, not a copy', async () => {
    const tree = new SharedTree()
    for (let i = 0; i < 300; i++) tree.appendEntry(entry(i))
    const worker = new Worker(`
      const { parentPort, workerData } = require('node:worker_threads')
      const level0 = new Uint8Array(workerData.levels[0])
      parentPort.on('message', (i) => parentPort.postMessage(Buffer.from(level0.subarray(i * 32, i * 32 + 32)).toString('hex')))
    `, { eval: true, workerData: tree.snapshot() })
    const read = (i: number) => new Promise<string>((resolve, reject) => {
      worker.once('message', resolve).once('error', reject)
      worker.postMessage(i)
    })
    try {
      expect(await read(0)).toBe(Buffer.from(hashLeaf(entry(0))).toString('hex'))
      // A leaf appended after the snapshot was posted is in the buffer the worker holds: shared, not cloned.
      tree.appendEntry(entry(300))
      expect(await read(300)).toBe(Buffer.from(hashLeaf(entry(300))).toString('hex'))
    } finally {
      await worker.terminate()
    }
  })
})
