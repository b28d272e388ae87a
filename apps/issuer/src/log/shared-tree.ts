import { HASH_SIZE, MerkleTree } from '@agentid/tlog'

/** What another thread needs to read a {@link SharedTree}: its level buffers and how many nodes each holds. */
export interface TreeSnapshot {
  levels: SharedArrayBuffer[]
  counts: number[]
}

/**
 * The issuer log's Merkle tree (RFC 9162): `MerkleTree` of @agentid/tlog with its level buffers in
 * SharedArrayBuffers (≈ 64 bytes per leaf): the sequencer thread appends, and the event loop reads
 * the same memory through {@link SharedTree.view} (tiles, proofs) without a copy. Safe because a node, once written, never changes: a reader only reads nodes
 * below the counts of a snapshot posted after they were written, and a level that grows is copied
 * into a new buffer, leaving the old one intact for readers that still hold it.
 * @example
 * const tree = new SharedTree()
 * tree.appendEntry(new TextEncoder().encode('one'))
 * const view = SharedTree.view(tree.snapshot()) // in another thread, after a postMessage
 * view.inclusionProof(0, 1)
 */
export class SharedTree extends MerkleTree {
  readonly #readOnly: boolean

  constructor(snapshot?: TreeSnapshot) {
    super(snapshot ? { levels: snapshot.levels.map((b) => new Uint8Array(b)), counts: snapshot.counts } : undefined)
    this.#readOnly = snapshot !== undefined
  }

  /** A read-only tree over another thread's snapshot. */
  static view(snapshot: TreeSnapshot): SharedTree {
    return new SharedTree(snapshot)
  }

  /** The buffers and counts as they are now: post it to the reading thread. */
  snapshot(): TreeSnapshot {
    return { levels: this.levels.map((b) => b.buffer as SharedArrayBuffer), counts: [...this.counts] }
  }

  override append(leafHash: Uint8Array): number {
    if (this.#readOnly) throw new TypeError('a view of a tree is read-only')
    return super.append(leafHash)
  }

  protected override allocate(bytes: number): Uint8Array {
    return new Uint8Array(new SharedArrayBuffer(bytes))
  }

  // A copy: a subarray of shared memory handed to node:crypto or a Buffer would alias it.
  protected override node(level: number, index: number): Uint8Array {
    return this.levels[level]!.slice(index * HASH_SIZE, (index + 1) * HASH_SIZE)
  }
}
