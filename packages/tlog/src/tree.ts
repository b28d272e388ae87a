import { HASH_SIZE, consistencyProof, hashChildren, hashLeaf, inclusionProof, treeHash, type HashSource } from './merkle.js'
import { isSize } from './util.js'

/**
 * An append-only Merkle tree held in memory: every complete subtree hash, one contiguous buffer
 * per level (~ 64 bytes per leaf). Proofs and historical roots for any size up to `size` read
 * O(log n) stored nodes.
 * @example
 * const tree = new MerkleTree()
 * tree.appendEntry(new TextEncoder().encode('one'))
 * tree.inclusionProof(0, tree.size)
 */
export class MerkleTree implements HashSource {
  /** One buffer per tree level; level k holds the complete subtrees of 2^k leaves, in order. */
  protected levels: Uint8Array[]
  /** How many nodes each level holds. */
  protected counts: number[]

  /** @param state - buffers and counts to start from (a subclass's view of another tree's memory) */
  constructor(state?: { levels: readonly Uint8Array[]; counts: readonly number[] }) {
    this.levels = state ? [...state.levels] : [this.allocate(HASH_SIZE * 1024)]
    this.counts = state ? [...state.counts] : [0]
  }

  /** Number of leaves. */
  get size(): number {
    return this.counts[0] ?? 0
  }

  /** Appends a leaf by its hash (RFC 9162 leaf hash); returns its index. */
  append(leafHash: Uint8Array): number {
    if (leafHash.length !== HASH_SIZE) throw new TypeError('a leaf hash is 32 bytes')
    const index = this.size
    let hash = leafHash
    let level = 0
    let i = index
    for (;;) {
      this.#put(level, i, hash)
      if (i % 2 === 0) break
      hash = hashChildren(this.node(level, i - 1), hash)
      level++
      i = (i - 1) / 2
    }
    return index
  }

  /** Appends an entry (hashes it with hashLeaf); returns its index. */
  appendEntry(entry: Uint8Array): number {
    return this.append(hashLeaf(entry))
  }

  nodeHash(level: number, index: number): Uint8Array {
    const count = this.counts[level] ?? 0
    if (!Number.isInteger(index) || index < 0 || index >= count) throw new RangeError(`no complete node at level ${level} index ${index}`)
    return this.node(level, index)
  }

  /** RFC 9162 root of the first `size` leaves (default: all). */
  root(size = this.size): Uint8Array {
    this.#checkSize(size)
    return treeHash(this, size)
  }

  inclusionProof(index: number, size = this.size): Uint8Array[] {
    this.#checkSize(size)
    return inclusionProof(this, index, size)
  }

  consistencyProof(size1: number, size2 = this.size): Uint8Array[] {
    this.#checkSize(size2)
    return consistencyProof(this, size1, size2)
  }

  /**
   * The bytes of tlog-tile `level`/`index` with `width` hashes: nodes at tree level 8·level,
   * concatenated (a copy). The tile must lie within the tree.
   */
  tile(level: number, index: number, width: number): Uint8Array {
    const treeLevel = level * 8
    const first = index * 256
    if (!Number.isInteger(width) || width < 1 || width > 256) throw new RangeError('width must be 1..256')
    if (first + width > (this.counts[treeLevel] ?? 0)) throw new RangeError('tile is beyond the tree')
    return this.levels[treeLevel]!.slice(first * HASH_SIZE, (first + width) * HASH_SIZE)
  }

  /** New zeroed bytes for a level; a subclass may place them elsewhere (shared memory). */
  protected allocate(bytes: number): Uint8Array {
    return new Uint8Array(bytes)
  }

  /** A stored node: a view of the level's buffer (a subclass over shared memory returns a copy). */
  protected node(level: number, index: number): Uint8Array {
    return this.levels[level]!.subarray(index * HASH_SIZE, (index + 1) * HASH_SIZE)
  }

  #checkSize(size: number): void {
    if (!isSize(size) || size > this.size) throw new RangeError(`size must be at most ${this.size}`)
  }

  #put(level: number, index: number, hash: Uint8Array): void {
    while (this.levels.length <= level) {
      this.levels.push(this.allocate(HASH_SIZE * 64))
      this.counts.push(0)
    }
    let bytes = this.levels[level]!
    if ((index + 1) * HASH_SIZE > bytes.length) {
      // A new buffer, never one resized in place: whoever holds the old one still reads it intact.
      const grown = this.allocate(bytes.length * 2)
      grown.set(bytes.subarray(0, (this.counts[level] ?? 0) * HASH_SIZE))
      this.levels[level] = grown
      bytes = grown
    }
    bytes.set(hash, index * HASH_SIZE)
    this.counts[level] = index + 1
  }
}
