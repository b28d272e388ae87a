import { randomBytes } from 'node:crypto'
import type { Database } from 'better-sqlite3'
import { AgentIdError, readBodyCapped } from '@agentid/core'
import {
  TILE_WIDTH,
  encodeEntryBundle,
  formatAddCheckpointRequest,
  formatSignerKey,
  formatTlogProof,
  noteVerifier,
  openNote,
  parseCheckpoint,
  parseNote,
  parseSignerKey,
  tileWidth,
  verifierKeyOf,
  SIG_TYPE_COSIGNATURE_V1,
  SIG_TYPE_ED25519,
  type NoteVerifier,
} from '@agentid/tlog'
import { createCryptoBox } from '../crypto-box.js'
import { entryOf } from './entry.js'
import { Sequencer, type LatestCheckpoint, type PersistLog, type SequencerReport } from './sequencer.js'
import { sequencerInThread, sequencerOnWorker, sequencerWorkerFile, type SequencerEngine, type SequencerHandle } from './sequencer-thread.js'
import { SharedTree } from './shared-tree.js'
import { Store, type WriteOp } from '../domain/store.js'
import { PgStorage } from '../storage/pg.js'
import { SqliteStorage } from '../storage/sqlite.js'
import type { CheckpointRow, CosignatureRow, IssuerStorage } from '../storage/types.js'

/** Settings key of the log's origin, fixed when the first instance opens the log. */
const LOG_ORIGIN_SETTING = 'log.origin'
/** HKDF info of the box that seals the log key (apart from the issuer's other keys). */
export const LOG_KEY_BOX_INFO = 'agentid/issuer/tlog-key/v1'

/**
 * The clock skew allowed between the issuer and a witness: the skew verifiers allow (@agentid/tlog's
 * openCheckpoint ignores a cosignature dated more than `now + 60`).
 */
const MAX_COSIGNATURE_SKEW_SEC = 60

/** A witness the issuer submits checkpoints to (C2SP tlog-witness). */
export interface WitnessConfig {
  /** Submission prefix: the issuer POSTs to `<url>/add-checkpoint`. */
  url: string
  /** The witness's cosignature vkey (type 0x04). */
  vkey: string
}

export interface IssuerLogOptions {
  /** The issuer's storage (SQLite or PostgreSQL). */
  storage?: IssuerStorage
  /** Instead of `storage`: the issuer's SQLite database. */
  db?: Database
  /** The issuer's 32-byte master secret: seals the log key at rest. */
  secret: Uint8Array
  /** The issuer's public base URL; the log origin (and key name) is its host and path, fixed at the log's first checkpoint. */
  baseUrl: string
  witnesses?: readonly WitnessConfig[]
  /** How often new events are integrated and a checkpoint signed (default 250 ms). */
  intervalMs?: number
  /** Milliseconds (default Date.now). A clock given here keeps the sequencer on the event loop (a function cannot cross threads). */
  clock?: () => number
  /**
   * Runs the sequencer on a worker thread with its own database connection (default true; on an
   * in-memory SQLite database, with an injected `clock` or without a built worker file it runs on
   * the event loop).
   */
  worker?: boolean
  fetch?: typeof globalThis.fetch
  /** Told about integrity problems and witness failures. */
  onError?: (message: string, error?: unknown) => void
}

/**
 * The log origin of an issuer: its public base URL without scheme, query or trailing slash.
 * @example
 * logOrigin('https://issuer.example/agentid/') // 'issuer.example/agentid'
 */
export function logOrigin(baseUrl: string): string {
  const u = new URL(baseUrl)
  return `${u.host}${u.pathname.replace(/\/+$/, '')}`
}

/**
 * Parses `AGENTID_LOG_WITNESSES`: a JSON array of `{ "url": …, "vkey": … }`.
 * @example
 * parseWitnesses('[{"url":"http://127.0.0.1:9000","vkey":"w.example+…"}]')
 */
export function parseWitnesses(text: string | undefined): WitnessConfig[] {
  if (text === undefined || text.trim() === '') return []
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (cause) {
    throw new AgentIdError('ERR_INVALID_INPUT', 'AGENTID_LOG_WITNESSES must be a JSON array of { url, vkey }', { cause })
  }
  if (!Array.isArray(value) || value.length > 32) throw new AgentIdError('ERR_INVALID_INPUT', 'AGENTID_LOG_WITNESSES must be a JSON array of at most 32 { url, vkey }')
  return value.map((w, i) => {
    const { url, vkey } = (w ?? {}) as { url?: unknown; vkey?: unknown }
    if (typeof url !== 'string' || !/^https?:\/\/[^\s]+$/.test(url)) throw new AgentIdError('ERR_INVALID_INPUT', `AGENTID_LOG_WITNESSES[${i}].url must be an http(s) URL`)
    if (typeof vkey !== 'string') throw new AgentIdError('ERR_INVALID_INPUT', `AGENTID_LOG_WITNESSES[${i}].vkey is required`)
    let v: NoteVerifier
    try {
      v = noteVerifier(vkey)
    } catch (cause) {
      throw new AgentIdError('ERR_INVALID_INPUT', `AGENTID_LOG_WITNESSES[${i}].vkey is not a verifier key`, { cause })
    }
    if (v.type !== SIG_TYPE_COSIGNATURE_V1) throw new AgentIdError('ERR_INVALID_INPUT', `AGENTID_LOG_WITNESSES[${i}].vkey is not a cosignature (0x04) key`)
    return { url: url.replace(/\/+$/, ''), vkey }
  })
}

interface Witness extends WitnessConfig {
  verifier: NoteVerifier
  /** The size the witness last cosigned, as far as we know (its 409 answers correct it). */
  oldSize: number
}

/**
 * The issuer log: integrates audit events (already numbered in their own transactions) into an
 * RFC 9162 tree, persists level-0 tiles, signs a C2SP checkpoint whenever the tree grew (every
 * `intervalMs`), submits it to the witnesses and keeps their cosignatures. Serves tiles, entry
 * bundles, checkpoints and tlog-proofs. Several instances on one PostgreSQL database: one sequencer
 * at a time (the storage's 'log-sequencer' lock, tried at each tick); the others follow, extending their
 * tree from the events up to the latest stored checkpoint (checked against its signed root) and serve
 * the same tiles, bundles, checkpoints and proofs.
 *
 * The integrating, hashing, tile writing and signing (sequencer.ts) run on a worker thread with its
 * own database connection, off the event loop that answers spawns; the tree it builds is shared
 * memory this thread reads to serve tiles and proofs.
 */
export class IssuerLog {
  readonly origin: string
  /** The log's verifier key (C2SP vkey, type 0x01). */
  readonly vkey: string
  readonly storage: IssuerStorage
  /** The sequencer's tree, as of its latest report (read-only here). */
  #tree: SharedTree
  readonly #sequencer: SequencerHandle
  readonly #witnesses: Witness[]
  readonly #onError: (message: string, error?: unknown) => void
  readonly #clock: () => number
  readonly #fetch: typeof globalThis.fetch
  readonly #intervalMs: number
  #timer: NodeJS.Timeout | undefined
  #latest: LatestCheckpoint | undefined
  #healthy = true
  #submitting: Promise<void> | undefined
  #resubmit = false
  #ticking: Promise<unknown> | undefined
  #closed = false
  readonly #ownWriter: Store | undefined

  private constructor(options: IssuerLogOptions, storage: IssuerStorage, origin: string, vkey: string, sequencer: SequencerHandle, onError: (message: string, error?: unknown) => void, ownWriter: Store | undefined) {
    this.storage = storage
    this.#ownWriter = ownWriter
    this.origin = origin
    this.vkey = vkey
    this.#sequencer = sequencer
    this.#tree = new SharedTree({ levels: [], counts: [] })
    this.#witnesses = (options.witnesses ?? []).map((w) => ({ ...w, verifier: noteVerifier(w.vkey), oldSize: 0 }))
    this.#onError = onError
    this.#clock = options.clock ?? Date.now
    this.#fetch = options.fetch ?? globalThis.fetch
    this.#intervalMs = options.intervalMs ?? 250
  }

  /** Loads (or creates, sealed) the log key, and the tree from the stored tiles; checks it against the latest checkpoint. */
  static async open(options: IssuerLogOptions): Promise<IssuerLog> {
    const storage = options.storage ?? (options.db ? new SqliteStorage(new Store(options.db)) : undefined)
    if (!storage) throw new TypeError('IssuerLog.open: storage or db is required')
    // A store made here for `db` has a writer thread of its own (its group commit, started by the
    // sequencer thread's first write): stop() ends it.
    const ownWriter = options.storage ? undefined : (storage as SqliteStorage).store
    const onError = options.onError ?? ((m: string, e?: unknown) => console.error(`issuer log: ${m}`, e ?? ''))
    // The thread starts (and connects) first: its start overlaps the key's unsealing below.
    const engine = options.worker === false || options.clock ? undefined : workerEngine(storage)
    const file = engine ? sequencerWorkerFile() : undefined
    const sequencer = engine && file
      ? sequencerOnWorker(file, engine, onError, engine.kind === 'sqlite' ? groupCommitted(storage) : undefined)
      : sequencerInThread((keys) => new Sequencer({ storage, ...keys, clock: options.clock ?? Date.now, onError }))
    try {
      const box = createCryptoBox(options.secret, LOG_KEY_BOX_INFO)
      // One origin and one key per database, fixed by the first instance to start: a later base URL
      // (another port, a new host name, a second instance started at the same moment with its own
      // URL) continues the same log instead of opening a second one beside it.
      const { origin, alias, sealed } = await storage.exclusive('issuer-init', async () => {
        const stored = await storage.logState.latestCheckpoint()
        const origin = (await storage.settings.get(LOG_ORIGIN_SETTING))
          ?? (stored ? parseCheckpoint(parseNote(stored.note).text).origin : logOrigin(options.baseUrl))
        await storage.settings.put(LOG_ORIGIN_SETTING, origin)
        const alias = `tlog:${origin}`
        let sealed = (await storage.veramo.privateKey(alias))?.ciphertext
        if (!sealed) {
          const seed = randomBytes(32)
          await storage.veramo.putPrivateKey({ alias, type: 'Ed25519', ciphertext: Buffer.from(box.seal(seed, alias)) })
          seed.fill(0)
          sealed = (await storage.veramo.privateKey(alias))!.ciphertext
        }
        return { origin, alias, sealed }
      })
      const seed = box.open(sealed, alias)
      const signerKey = formatSignerKey(origin, SIG_TYPE_ED25519, seed)
      seed.fill(0)
      const vkey = verifierKeyOf(parseSignerKey(signerKey))
      const log = new IssuerLog(options, storage, origin, vkey, sequencer, onError, ownWriter)
      log.#apply(await sequencer.load({ signerKey, vkey, origin }))
      return log
    } catch (error) {
      await sequencer.close()
      await ownWriter?.closeWriter()
      throw error
    }
  }

  /** True when the sequencer runs on its own thread (with its own database connection). */
  get threaded(): boolean {
    return this.#sequencer.threaded
  }

  #apply(report: SequencerReport): void {
    this.#tree = SharedTree.view(report.tree)
    this.#latest = report.latest
    this.#healthy = report.healthy
    if (report.signed && this.#witnesses.length > 0) this.#kickWitnesses()
  }

  /** False once the stored log was found inconsistent with its own signed checkpoints. */
  get healthy(): boolean {
    return this.#healthy
  }

  /** Size of the latest signed checkpoint (0 before the first). */
  get size(): number {
    return this.#latest?.size ?? 0
  }

  /** Starts integrating and checkpointing every `intervalMs` (or following the instance that does). */
  start(): void {
    if (this.#timer || this.#closed) return
    void this.tick()
    this.#timer = setInterval(() => void this.tick(), this.#intervalMs)
    this.#timer.unref()
  }

  /**
   * Stops the timer, integrates what is committed, waits for witness submissions in flight, and ends
   * the sequencer thread. The log still serves what it holds; it sequences no more.
   */
  async stop(): Promise<void> {
    clearInterval(this.#timer)
    this.#timer = undefined
    if (this.#closed) return
    await this.#ticking
    await this.tick()
    this.#closed = true
    await this.#sequencer.close()
    await this.#submitting
    await this.#ownWriter?.closeWriter()
  }

  /**
   * One turn: sequences when this instance holds the sequencer lock, else follows the one that does.
   * Returns the checkpointed size as this instance knows it.
   */
  async tick(): Promise<number> {
    return this.#turn('tick')
  }

  /**
   * Integrates the events numbered since the last run, persists their level-0 tiles and signs a
   * checkpoint (one transaction). Returns the checkpointed size. Call it only as the sequencer
   * (`tick` does), or in a single process.
   */
  async sequence(): Promise<number> {
    return this.#turn('sequence')
  }

  async #turn(type: 'tick' | 'sequence'): Promise<number> {
    if (this.#ticking) {
      await this.#ticking
      if (type === 'tick') return this.size
    }
    if (this.#closed) return this.size
    const run = (async () => {
      try {
        this.#apply(await (type === 'tick' ? this.#sequencer.tick() : this.#sequencer.sequence()))
      } catch (error) {
        this.#onError('sequencing failed', error)
      }
    })()
    this.#ticking = run
    try {
      await run
    } finally {
      this.#ticking = undefined
    }
    return this.size
  }

  /** The latest stored checkpoint row (size, note, time), if any. */
  latestCheckpoint(): Promise<CheckpointRow | undefined> {
    return this.storage.logState.latestCheckpoint()
  }

  /** The witnesses' cosignatures kept for checkpoint `size`. */
  cosignatures(size: number): Promise<CosignatureRow[]> {
    return this.storage.logState.cosignatures(size)
  }

  /** The latest checkpoint with the cosignatures it has so far. */
  async checkpoint(): Promise<string> {
    if (!this.#latest) throw new AgentIdError('ERR_UNAVAILABLE', 'the log has no checkpoint yet')
    return this.#withCosignatures(this.#latest.size, this.#latest.note)
  }

  async #withCosignatures(size: number, note: string): Promise<string> {
    return note + (await this.storage.logState.cosignatures(size)).map((c) => c.line).join('')
  }

  /** Hashes of tile (level, index) with `width` hashes, when it lies within the latest checkpoint. */
  tile(level: number, index: number, width: number): Uint8Array | undefined {
    if (width > tileWidth(level, index, this.size)) return undefined
    return this.#tree.tile(level, index, width)
  }

  /** Entry bundle `index` with `width` entries, read from the events themselves. */
  async entries(index: number, width: number): Promise<Uint8Array | undefined> {
    if (width > tileWidth(0, index, this.size)) return undefined
    const rows = await this.storage.audit.range(index * TILE_WIDTH, index * TILE_WIDTH + width)
    return encodeEntryBundle(rows.map(entryOf))
  }

  /** The entry at `index` (as served). */
  async entry(index: number): Promise<Uint8Array | undefined> {
    const row = (await this.storage.audit.range(index, index + 1))[0]
    return row ? entryOf(row) : undefined
  }

  /**
   * A C2SP tlog-proof for entry `index` (the entry itself in `extra`), against the most recent
   * checkpoint that covers it and carries every configured witness's cosignature, else the latest.
   */
  async proof(index: number): Promise<string> {
    if (!Number.isSafeInteger(index) || index < 0) throw new AgentIdError('ERR_INVALID_INPUT', 'index must be a non-negative integer', { details: { field: 'index' } })
    if (index >= this.size) {
      if (index < (await this.storage.audit.count())) throw new AgentIdError('ERR_UNAVAILABLE', 'the entry is not in a checkpoint yet; retry in a second')
      throw new AgentIdError('ERR_NOT_FOUND', 'no log entry with this index')
    }
    const entry = (await this.entry(index))!
    const n = this.#witnesses.length
    const chosen = n === 0 ? this.#latest! : ((await this.storage.logState.latestCosigned(index + 1, n)) ?? this.#latest!)
    const proof = this.#tree.inclusionProof(index, chosen.size)
    return formatTlogProof({ extra: entry, index, proof, checkpoint: await this.#withCosignatures(chosen.size, chosen.note) })
  }

  /** Log index of the spawn or renewal that issued credential `id`, if any. */
  indexOfCredential(id: string): Promise<number | undefined> {
    return this.storage.audit.ofCredential(id)
  }

  /** Log index of the latest event `action` about `subject` (e.g. 'agent.revoked', a DID). */
  lastIndex(action: string, subject: string): Promise<number | undefined> {
    return this.storage.audit.last(action, subject)
  }

  lastIndexOfCredential(action: string, credentialId: string): Promise<number | undefined> {
    return this.storage.audit.lastOfCredential(action, credentialId)
  }

  /** A consistency proof between two sizes of the tree. */
  consistencyProof(size1: number, size2: number): Uint8Array[] {
    return this.#tree.consistencyProof(size1, size2)
  }

  #kickWitnesses(): void {
    if (this.#submitting) {
      this.#resubmit = true
      return
    }
    this.#submitting = (async () => {
      do {
        this.#resubmit = false
        const latest = this.#latest!
        await Promise.all(this.#witnesses.map((w) => this.#submit(w, latest).catch((e) => this.#onError(`witness ${w.url} failed`, e))))
      } while (this.#resubmit)
    })().finally(() => {
      this.#submitting = undefined
    })
  }

  /**
   * The witness's cosignature line in its add-checkpoint answer (signature lines, C2SP tlog-witness),
   * kept only if it verifies exactly as it will be served: appended alone to the checkpoint note. (Read
   * as a note appended whole, an answer starting with a blank line moved the note's text boundary, and
   * a line signing that other text was kept: the served checkpoint then carried an invalid signature of
   * a trusted witness, which verifiers refuse whole.)
   */
  #cosignatureOf(w: Witness, note: string, body: string): { line: string; timestamp: number | undefined } {
    const lines = body.split('\n')
    if (lines.length < 2 || lines.pop() !== '' || lines.some((l) => !l.startsWith('\u2014 '))) throw new Error('witness answer is not signature lines')
    const { text } = parseNote(note)
    for (const line of lines) {
      const served = `${note}${line}\n`
      const parsed = parseNote(served)
      const s = parsed.signatures[parsed.signatures.length - 1]!
      if (s.name !== w.verifier.name || s.keyId !== w.verifier.keyId) continue
      if (parsed.text !== text) throw new Error('witness answer changes the checkpoint text')
      // Throws ERR_SIGNATURE_INVALID when the line does not verify over the checkpoint.
      const timestamp = openNote(served, [w.verifier]).verified[0]?.timestamp
      return { line: `${line}\n`, timestamp }
    }
    throw new Error('witness returned no cosignature')
  }

  /**
   * Refuses a cosignature dated more than 60 s ahead of this clock (verifiers ignore one dated more
   * than 60 s ahead of theirs: a witness with a fast clock would count nowhere, and a proof served with
   * it would not meet the quorum it seems to) or before the checkpoint it cosigns was signed (a witness
   * cannot have cosigned it then: its clock is wrong), with the same 60 s allowed for clock skew (the
   * checkpoint's time is whole seconds, and a witness a second slow is still an honest one). Refused,
   * it is reported through onError by the caller, not stored, and the checkpoint is served without it.
   */
  #checkCosignatureTime(timestamp: number | undefined, now: number, latest: LatestCheckpoint): void {
    if (timestamp === undefined) throw new Error('witness cosignature has no readable timestamp')
    if (timestamp > now + MAX_COSIGNATURE_SKEW_SEC) {
      throw new Error(`witness cosignature refused: dated ${timestamp}, ${timestamp - now} s ahead of the issuer's clock (more than ${MAX_COSIGNATURE_SKEW_SEC} s: verifiers would ignore it)`)
    }
    if (timestamp < latest.created_at - MAX_COSIGNATURE_SKEW_SEC) {
      throw new Error(`witness cosignature refused: dated ${timestamp}, ${latest.created_at - timestamp} s before the checkpoint of size ${latest.size} was signed (${latest.created_at}; more than ${MAX_COSIGNATURE_SKEW_SEC} s)`)
    }
  }

  async #submit(w: Witness, latest: LatestCheckpoint): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (w.oldSize > latest.size) w.oldSize = 0
      const proof = w.oldSize === 0 || w.oldSize === latest.size ? [] : this.#tree.consistencyProof(w.oldSize, latest.size)
      const res = await this.#fetch(`${w.url}/add-checkpoint`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain; charset=utf-8' },
        body: formatAddCheckpointRequest(w.oldSize, proof, latest.note),
        signal: AbortSignal.timeout(5000),
      })
      // A witness answers a size or a few cosignature lines: 64 KiB is far more (core's capped reader).
      const body = (await readBodyCapped(res, 64 * 1024)).toString('utf8')
      if (res.status === 409 && (res.headers.get('content-type') ?? '').startsWith('text/x.tlog.size')) {
        const size = /^(0|[1-9][0-9]{0,15})\n$/.exec(body)
        if (!size || Number(size[1]) > latest.size) throw new Error(`witness reports size ${body.trim()}, beyond our checkpoint: it saw another history`)
        w.oldSize = Number(size[1])
        continue
      }
      if (res.status !== 200) throw new Error(`witness answered ${res.status}: ${body.slice(0, 200)}`)
      const { line, timestamp } = this.#cosignatureOf(w, latest.note, body)
      w.oldSize = latest.size // the witness recorded this checkpoint, whether its cosignature is kept or not
      const now = Math.floor(this.#clock() / 1000)
      this.#checkCosignatureTime(timestamp, now, latest)
      await this.storage.logState.putCosignature({ size: latest.size, witness: w.vkey, line, created_at: now })
      return
    }
    throw new Error('witness kept answering 409')
  }
}

// How a SQLite sequencer thread's tiles and checkpoint are stored: one job of the issuer's group
// commit (the writer thread's next batch, its fsync shared), all or nothing, durable when it resolves.
function groupCommitted(storage: IssuerStorage): PersistLog {
  return async ({ tiles, checkpoint }) => {
    await storage.commit([
      ...tiles.map((t): WriteOp => ({ op: 'logTilePut', args: [t.idx, t.hashes] })),
      { op: 'logCheckpointPut', args: [checkpoint.size, checkpoint.note, checkpoint.created_at] },
    ])
  }
}

// Where a sequencer thread can open its own connection to the same database: a SQLite file (not an
// in-memory database, which no other connection sees) or the PostgreSQL URL of the pool.
function workerEngine(storage: IssuerStorage): SequencerEngine | undefined {
  if (storage instanceof SqliteStorage) {
    const db = storage.store.db
    return db.memory ? undefined : { kind: 'sqlite', file: db.name }
  }
  if (storage instanceof PgStorage) {
    const url = storage.pool.options.connectionString
    return typeof url === 'string' ? { kind: 'postgres', url } : undefined
  }
  return undefined
}
