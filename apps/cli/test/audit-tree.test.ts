// The auditor's frontier tree (src/commands/audit-tree.ts) against @agentid/tlog's MerkleTree: the same
// root at every size and the same tiles, full and partial, while it holds a bounded number of hashes.
import { describe, expect, it } from 'vitest'
import { MerkleTree, hashLeaf, tilesForTreeSize } from '@agentid/tlog'
import { FrontierTree, type ComputedTile } from '../src/commands/audit-tree.js'

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const entry = (i: number) => new TextEncoder().encode(`entry ${i}`)

describe('FrontierTree', () => {
  it('has the root of MerkleTree at every size up to 1,100 and every tile it serves', () => {
    const full: ComputedTile[] = []
    const frontier = new FrontierTree((t) => void full.push(t))
    const tree = new MerkleTree()
    expect(hex(frontier.root())).toBe(hex(tree.root()))
    for (let i = 0; i < 1100; i++) {
      frontier.appendEntry(entry(i))
      tree.appendEntry(entry(i))
      expect(hex(frontier.root()), `size ${tree.size}`).toBe(hex(tree.root()))
      // Every tile of this size: the full ones handed out so far, and the partial ones now.
      const got = new Map([...full, ...frontier.partialTiles()].map((t) => [`${t.level}/${t.index}/${t.width}`, hex(t.hashes)]))
      for (const level of tilesForTreeSize(tree.size)) {
        for (let n = 0; n <= level.fullTiles; n++) {
          const width = n < level.fullTiles ? 256 : level.partialWidth
          if (width === 0) continue
          expect(got.get(`${level.level}/${n}/${width}`), `size ${tree.size} tile ${level.level}/${n}/${width}`).toBe(hex(tree.tile(level.level, n, width)))
        }
      }
      expect(frontier.partialTiles().every((t) => t.width < 256)).toBe(true)
    }
  })

  it('holds a few KiB whatever its size (2^20 leaves, and a tree past tile level 2)', () => {
    const frontier = new FrontierTree()
    const tree = new MerkleTree()
    const leaf = hashLeaf(entry(0))
    for (let i = 0; i < 1 << 20; i++) {
      frontier.append(leaf)
      tree.append(leaf)
    }
    expect(hex(frontier.root())).toBe(hex(tree.root()))
    // 20 levels: three tile levels of 256 hashes, the rest one hash each.
    expect(frontier.heldBytes).toBe((3 * 256 + 18) * 32)
  })

  it('refuses a leaf hash of the wrong length', () => {
    expect(() => new FrontierTree().append(new Uint8Array(31))).toThrow(TypeError)
  })
})
