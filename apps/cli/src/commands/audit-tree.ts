// The Merkle tree `agentid audit verify` recomputes, held as a frontier: the auditor streams the log's
// entries and keeps only what its checks need, so the tree costs the same for a thousand entries as for
// a billion (a MerkleTree keeps every node, ~64 bytes per entry, and a hostile checkpoint claiming a
// huge size made the auditor hold them until memory ran out).
import { HASH_SIZE, TILE_HEIGHT, TILE_WIDTH, emptyRoot, hashChildren, hashLeaf } from '@agentid/tlog'

/** A tlog tile the frontier computed: `width` hashes of tile level `level`, tile `index`. */
export interface ComputedTile {
  level: number
  index: number
  width: number
  hashes: Uint8Array
}

/**
 * An append-only RFC 9162 tree that keeps, per tree level, the last node (for the root of the current
 * size and the next parent), and at each tile level (tree levels 0, 8, 16, …) the nodes of the tile
 * being filled: at most 256 hashes per tile level, ~8 KiB each. A tile is handed to `onTile` when its
 * last node is appended; `partialTiles` gives the unfinished ones of the current size.
 * @example
 * const tree = new FrontierTree((tile) => check(tile))
 * tree.appendEntry(entry)
 * tree.root() // the root of tree.size entries
 */
export class FrontierTree {
  /** Per tree level: a ring of 1 node, or TILE_WIDTH nodes at a tile level (node i at slot i mod capacity). */
  readonly #levels: Uint8Array[] = []
  #size = 0

  constructor(readonly onTile: (tile: ComputedTile) => void = () => {}) {}

  /** Number of leaves. */
  get size(): number {
    return this.#size
  }

  /** Bytes of hashes held (bounded by the tree's height, not its size). */
  get heldBytes(): number {
    return this.#levels.reduce((n, l) => n + l.length, 0)
  }

  /** Appends an entry (RFC 9162 leaf hash). */
  appendEntry(entry: Uint8Array): void {
    this.append(hashLeaf(entry))
  }

  /** Appends a leaf by its hash. */
  append(leafHash: Uint8Array): void {
    if (leafHash.length !== HASH_SIZE) throw new TypeError('a leaf hash is 32 bytes')
    let hash = leafHash
    let index = this.#size
    for (let level = 0; ; level++) {
      // The left sibling is read before this node may take its slot (a one-node level).
      const parent = index % 2 === 1 ? hashChildren(this.#node(level, index - 1), hash) : undefined
      this.#put(level, index, hash)
      if (parent === undefined) break
      hash = parent
      index = (index - 1) / 2
    }
    this.#size++
  }

  /** The root of the tree's current size (the empty root at 0). */
  root(): Uint8Array {
    let root: Uint8Array | undefined
    // The complete subtrees along the size's binary digits, smallest first, folded right to left.
    for (let level = 0, count = this.#size; count > 0; level++, count = Math.floor(count / 2)) {
      if (count % 2 === 0) continue
      const node = this.#node(level, count - 1)
      root = root === undefined ? node : hashChildren(node, root)
    }
    return root ?? emptyRoot()
  }

  /** The unfinished (partial) tiles of the current size, one per tile level that has one. */
  partialTiles(): ComputedTile[] {
    const out: ComputedTile[] = []
    for (let level = 0; level * TILE_HEIGHT < this.#levels.length; level++) {
      const count = Math.floor(this.#size / 2 ** (level * TILE_HEIGHT))
      const width = count % TILE_WIDTH
      if (width > 0) out.push({ level, index: Math.floor(count / TILE_WIDTH), width, hashes: this.#levels[level * TILE_HEIGHT]!.slice(0, width * HASH_SIZE) })
    }
    return out
  }

  #node(level: number, index: number): Uint8Array {
    const ring = this.#levels[level]!
    const slot = index % (ring.length / HASH_SIZE)
    return ring.subarray(slot * HASH_SIZE, (slot + 1) * HASH_SIZE)
  }

  #put(level: number, index: number, hash: Uint8Array): void {
    if (level === this.#levels.length) this.#levels.push(new Uint8Array((level % TILE_HEIGHT === 0 ? TILE_WIDTH : 1) * HASH_SIZE))
    const ring = this.#levels[level]!
    const capacity = ring.length / HASH_SIZE
    ring.set(hash, (index % capacity) * HASH_SIZE)
    if (capacity === TILE_WIDTH && index % TILE_WIDTH === TILE_WIDTH - 1) {
      this.onTile({ level: level / TILE_HEIGHT, index: (index - (TILE_WIDTH - 1)) / TILE_WIDTH, width: TILE_WIDTH, hashes: ring.slice() })
    }
  }
}
