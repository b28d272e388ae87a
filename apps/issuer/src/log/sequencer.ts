import {
  TILE_WIDTH,
  noteSigner,
  noteVerifier,
  openNote,
  parseCheckpoint,
  parseSignerKey,
  signCheckpoint,
  tileWidth,
  type NoteSigner,
  type NoteVerifier,
} from '@agentid/tlog'
import { entryOf } from './entry.js'
import { SharedTree, type TreeSnapshot } from './shared-tree.js'
import type { CheckpointRow, IssuerStorage } from '../storage/types.js'

/** What a sequencer turn tells the event loop: the log as this instance now knows it. */
export interface SequencerReport {
  /**
   * The latest checkpoint known (signed here or read from the sequencing instance), if any, and when
   * it was made (seconds): a witness's cosignature of it may not be older.
   */
  latest: LatestCheckpoint | undefined
  /** True when this turn signed a new checkpoint (witnesses are then sent it). */
  signed: boolean
  healthy: boolean
  tree: TreeSnapshot
}

/** A checkpoint note, its size and when it was signed (Unix seconds, the log's clock). */
export interface LatestCheckpoint { size: number; note: string; created_at: number }

export interface SequencerOptions {
  storage: IssuerStorage
  /** The C2SP signer key of the log (`PRIVATE+KEY+<origin>+…`). */
  signerKey: string
  /** The log's vkey, checking the checkpoints it reads back. */
  vkey: string
  origin: string
  clock: () => number
  onError: (message: string, error?: unknown) => void
  /**
   * Stores a turn's level-0 tiles and its checkpoint, all or nothing, durably before it resolves
   * (default: one transaction of `storage`). On SQLite the sequencer thread hands them to the
   * issuer's group commit instead (see sequencer-worker.ts).
   */
  persist?: PersistLog
}

/** A turn's writes: the level-0 tiles it changed (each never shorter than stored) and its checkpoint. */
export interface LogWrite {
  tiles: { idx: number; hashes: Uint8Array }[]
  checkpoint: CheckpointRow
}
export type PersistLog = (write: LogWrite) => Promise<void>

/**
 * The CPU side of the issuer log: reads the committed events after the tree's end, computes their
 * RFC 8785 entries and RFC 9162 hashes, persists level-0 tiles and signs a checkpoint (one
 * transaction), or — when another instance holds the storage's 'log-sequencer' lock — follows its
 * checkpoints. Runs on a worker thread with its own database connection (sequencer-worker.ts), so
 * that canonicalizing, hashing, signing and the transaction's lock waits and fsync stay off the
 * issuer's event loop; the tree it builds is shared memory the event loop reads.
 */
export class Sequencer {
  readonly tree = new SharedTree()
  readonly #storage: IssuerStorage
  readonly #signer: NoteSigner
  readonly #verifier: NoteVerifier
  readonly #origin: string
  readonly #clock: () => number
  readonly #onError: (message: string, error?: unknown) => void
  readonly #persist: PersistLog
  #latest: LatestCheckpoint | undefined
  #healthy = true

  constructor(options: SequencerOptions) {
    this.#storage = options.storage
    this.#signer = noteSigner(parseSignerKey(options.signerKey))
    this.#verifier = noteVerifier(options.vkey)
    this.#origin = options.origin
    this.#clock = options.clock
    this.#onError = options.onError
    this.#persist = options.persist ?? ((write) => this.#storage.transaction(async (tx) => {
      for (const t of write.tiles) await tx.logState.putTile(t.idx, t.hashes)
      await tx.logState.putCheckpoint(write.checkpoint)
    }))
  }

  /**
   * The tree from the stored tiles, checked against the latest checkpoint. The checkpoint is read
   * first: tiles and checkpoint are written in one transaction and tiles never shrink, so tiles read
   * after it cover it even when another instance sequences meanwhile (read the other way round, a
   * checkpoint signed between the two reads looked like tiles missing, and the log stopped for good).
   */
  async load(): Promise<SequencerReport> {
    const latest = await this.#storage.logState.latestCheckpoint()
    const tiles = await this.#storage.logState.tiles()
    tiles.forEach((t, i) => {
      const n = t.hashes.length / 32
      const last = i === tiles.length - 1
      if (t.idx !== i || !Number.isInteger(n) || n < 1 || n > TILE_WIDTH || (!last && n !== TILE_WIDTH)) {
        this.#unhealthy(`stored level-0 tile ${t.idx} is malformed or out of sequence`)
        return
      }
      if (!this.#healthy) return
      for (let k = 0; k < n; k++) this.tree.append(t.hashes.subarray(k * 32, (k + 1) * 32))
    })
    if (latest) {
      this.#latest = { size: latest.size, note: latest.note, created_at: latest.created_at }
      const cp = parseCheckpoint(openNote(latest.note, [this.#verifier]).text)
      if (cp.size > this.tree.size || !Buffer.from(this.tree.root(cp.size)).equals(cp.rootHash)) {
        this.#unhealthy(`the stored tiles do not match the latest checkpoint (size ${cp.size}): no new checkpoint will be signed`)
      }
    }
    return this.#report(false)
  }

  /** One turn: sequences when this instance holds the sequencer lock, else follows the one that does. */
  async tick(): Promise<SequencerReport> {
    let signed = false
    try {
      const sequenced = await this.#storage.tryExclusive('log-sequencer', async () => (signed = await this.#sequence()))
      if (sequenced === undefined) await this.#follow()
    } catch (error) {
      this.#onError('sequencing failed', error)
    }
    return this.#report(signed)
  }

  /** A turn as the sequencer, without the lock (a single process, or tests). */
  async sequence(): Promise<SequencerReport> {
    return this.#report(await this.#sequence())
  }

  #report(signed: boolean): SequencerReport {
    return { latest: this.#latest, signed, healthy: this.#healthy, tree: this.tree.snapshot() }
  }

  #unhealthy(message: string): void {
    if (this.#healthy) this.#onError(message)
    this.#healthy = false
  }

  // Extends the tree from the events up to the latest stored checkpoint, which must sign its root.
  async #follow(): Promise<void> {
    if (!this.#healthy) return
    const latest = await this.#storage.logState.latestCheckpoint()
    if (!latest || latest.size <= (this.#latest?.size ?? 0)) return
    const cp = parseCheckpoint(openNote(latest.note, [this.#verifier]).text)
    await this.#integrate(cp.size)
    if (this.tree.size < cp.size || !Buffer.from(this.tree.root(cp.size)).equals(cp.rootHash)) {
      this.#unhealthy(`the events do not match the stored checkpoint of size ${cp.size}`)
      return
    }
    this.#latest = { size: latest.size, note: latest.note, created_at: latest.created_at }
  }

  // Appends the committed events after the tree's end (up to `limit`), in index order.
  async #integrate(limit = Number.MAX_SAFE_INTEGER): Promise<void> {
    for (;;) {
      const from = this.tree.size
      if (from >= limit) return
      const rows = await this.#storage.audit.range(from, Math.min(from + 50_000, limit))
      for (const row of rows) {
        if (row.log_index !== this.tree.size) return // not yet committed in order (cannot happen: one writer at a time)
        this.tree.appendEntry(entryOf(row))
      }
      if (rows.length < 50_000) return
    }
  }

  // Integrates the events numbered since the last run, persists their level-0 tiles and signs a
  // checkpoint (one transaction). True when a new checkpoint was signed.
  async #sequence(): Promise<boolean> {
    if (!this.#healthy) return false
    const from = this.tree.size
    await this.#integrate()
    const size = this.tree.size
    if (size === from && this.#latest !== undefined && this.#latest.size === size) return false
    const note = signCheckpoint({ origin: this.#origin, size, rootHash: this.tree.root(size), extensions: [] }, this.#signer)
    const at = Math.floor(this.#clock() / 1000)
    const firstTile = Math.floor(Math.min(from, this.#latest?.size ?? 0) / TILE_WIDTH)
    const tiles: LogWrite['tiles'] = []
    for (let t = firstTile; t * TILE_WIDTH < size; t++) tiles.push({ idx: t, hashes: this.tree.tile(0, t, tileWidth(0, t, size)) })
    await this.#persist({ tiles, checkpoint: { size, note, created_at: at } })
    this.#latest = { size, note, created_at: at }
    return true
  }
}
