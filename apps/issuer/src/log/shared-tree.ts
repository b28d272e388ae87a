import { HASH_SIZE, consistencyProof, hashChildren, hashLeaf, inclusionProof, treeHash, type HashSource } from '@agentid/tlog'

/** What another thread needs to read a {@link SharedTree}: its level buffers and how many nodes each holds. */
export interface TreeSnapshot {
  levels: SharedArrayBuffer[]
  counts: number[]
}

/**
 * The issuer log's Merkle tree (RFC 9162), every complete subtree hash kept, one buffer per level
 * (≈ 64 bytes per leaf) — like `MerkleTree` of @agentid/tlog, but in SharedArrayBuffers: the sequencer
 * thread appends, and the event loop reads the same memory through {@link SharedTree.view} (tiles,
 * proofs) without a copy. Safe because a node, once written, never changes: a reader only reads nodes
 * below the counts of a snapshot posted after they were written, and a level that grows is copied
 * into a new buffer, leaving the old one intact for readers that still hold it.
 * @example
 * const tree = new SharedTree()
 * tree.appendEntry(new TextEncoder().encode('one'))
 * const view = SharedTree.view(tree.snapshot()) // in another thread, after a postMessage
 * view.inclusionProof(0, 1)
 */
export class SharedTree implements HashSource {
  #levels: SharedArrayBuffer[]
  #bytes: Uint8Array[]
  #counts: number[]
  readonly #readOnly: boolean

  constructor(snapshot?: TreeSnapshot) {
    this.#readOnly = snapshot !== undefined
    this.#levels = snapshot ? [...snapshot.levels] : [new SharedArrayBuffer(HASH_SIZE * 1024)]
    this.#counts = snapshot ? [...snapshot.counts] : [0]
    this.#bytes = this.#levels.map((b) => new Uint8Array(b))
  }

  /** A read-only tree over another thread's snapshot. */
  static view(snapshot: TreeSnapshot): SharedTree {
    return new SharedTree(snapshot)
  }

  /** The buffers and counts as they are now: post it to the reading thread. */
  snapshot(): TreeSnapshot {
    return { levels: [...this.#levels], counts: [...this.#counts] }
  }

  /** Number of leaves. */
  get size(): number {
    return this.#counts[0] ?? 0
  }

  /** Appends a leaf by its hash; returns its index. */
  append(leafHash: Uint8Array): number {
    if (this.#readOnly) throw new TypeError('a view of a tree is read-only')
    if (leafHash.length !== HASH_SIZE) throw new TypeError('a leaf hash is 32 bytes')
    const index = this.size
    let hash = leafHash
    let level = 0
    let i = index
    for (;;) {
      this.#put(level, i, hash)
      if (i % 2 === 0) break
      hash = hashChildren(this.#get(level, i - 1), hash)
      level++
      i = (i - 1) / 2
    }
    return index
  }

  /** Appends an entry (RFC 9162 leaf hash of it); returns its index. */
  appendEntry(entry: Uint8Array): number {
    return this.append(hashLeaf(entry))
  }

  nodeHash(level: number, index: number): Uint8Array {
    const count = this.#counts[level] ?? 0
    if (!Number.isInteger(index) || index < 0 || index >= count) throw new RangeError(`no complete node at level ${level} index ${index}`)
    return this.#get(level, index)
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

  /** The bytes of tlog-tile `level`/`index` with `width` hashes (a copy); the tile must lie within the tree. */
  tile(level: number, index: number, width: number): Uint8Array {
    const treeLevel = level * 8
    const first = index * 256
    if (!Number.isInteger(width) || width < 1 || width > 256) throw new RangeError('width must be 1..256')
    if (first + width > (this.#counts[treeLevel] ?? 0)) throw new RangeError('tile is beyond the tree')
    return this.#bytes[treeLevel]!.slice(first * HASH_SIZE, (first + width) * HASH_SIZE)
  }

  #checkSize(size: number): void {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.size) throw new RangeError(`size must be at most ${this.size}`)
  }

  // A copy: a subarray of shared memory handed to node:crypto or a Buffer would alias it.
  #get(level: number, index: number): Uint8Array {
    return this.#bytes[level]!.slice(index * HASH_SIZE, (index + 1) * HASH_SIZE)
  }

  #put(level: number, index: number, hash: Uint8Array): void {
    while (this.#levels.length <= level) {
      this.#levels.push(new SharedArrayBuffer(HASH_SIZE * 64))
      this.#bytes.push(new Uint8Array(this.#levels[this.#levels.length - 1]!))
      this.#counts.push(0)
    }
    let bytes = this.#bytes[level]!
    if ((index + 1) * HASH_SIZE > bytes.length) {
      // Readers keep the old buffer until the next snapshot: it is copied, never resized in place.
      const grown = new SharedArrayBuffer(bytes.length * 2)
      const view = new Uint8Array(grown)
      view.set(bytes.subarray(0, this.#counts[level]! * HASH_SIZE))
      this.#levels[level] = grown
      this.#bytes[level] = view
      bytes = view
    }
    bytes.set(hash, index * HASH_SIZE)
    this.#counts[level] = index + 1
  }
}
