import type { Database, Statement } from 'better-sqlite3'
import type { EventRow } from './entry.js'

export interface CheckpointRow { size: number; note: string; created_at: number }

/**
 * The log's writes as group-commit ops (`Store.commit`, by name): on SQLite the sequencer thread's
 * level-0 tiles and checkpoint are committed by the issuer's writer thread, in one job, so that the
 * thread never contends with the writer for the file's write lock. A stored tile never shrinks.
 */
export const LOG_WRITE_SQL = {
  logTilePut: 'INSERT INTO log_tiles (level, idx, hashes) VALUES (0, ?, ?) ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes WHERE length(excluded.hashes) >= length(log_tiles.hashes)',
  logCheckpointPut: 'INSERT INTO log_checkpoints (size, note, created_at) VALUES (?, ?, ?) ON CONFLICT (size) DO NOTHING',
} as const
export interface CosignatureRow { size: number; witness: string; line: string; created_at: number }

/**
 * The issuer log's storage, on the issuer's database: events (audit_events with their log index),
 * level-0 tiles, checkpoints and cosignatures. Statements are prepared once; `transaction` groups
 * what belongs together.
 */
export class LogStore {
  readonly #s: Record<string, Statement>

  constructor(readonly db: Database) {
    const p = (sql: string) => db.prepare(sql)
    this.#s = {
      events: p('SELECT log_index, at, actor, action, subject, details_json FROM audit_events WHERE log_index >= ? AND log_index < ? ORDER BY log_index'),
      size: p('SELECT coalesce(max(log_index), -1) + 1 AS n FROM audit_events'),
      byCredential: p(`SELECT log_index FROM audit_events WHERE json_extract(details_json, '$.credentialId') = ?
        AND action IN ('agent.spawned', 'agent.renewed') ORDER BY log_index LIMIT 1`),
      lastOf: p('SELECT max(log_index) AS n FROM audit_events WHERE action = ? AND subject = ?'),
      lastOfCredential: p(`SELECT max(log_index) AS n FROM audit_events WHERE action = ? AND json_extract(details_json, '$.credentialId') = ?`),
      tiles: p('SELECT idx, hashes FROM log_tiles WHERE level = 0 ORDER BY idx'),
      tilePut: p(LOG_WRITE_SQL.logTilePut),
      latest: p('SELECT * FROM log_checkpoints ORDER BY size DESC LIMIT 1'),
      latestCosigned: p(`SELECT c.* FROM log_checkpoints c WHERE c.size >= ?
        AND (SELECT count(*) FROM log_cosignatures s WHERE s.size = c.size) >= ? ORDER BY c.size DESC LIMIT 1`),
      checkpointPut: p(LOG_WRITE_SQL.logCheckpointPut),
      cosigs: p('SELECT * FROM log_cosignatures WHERE size = ? ORDER BY witness'),
      cosigPut: p('INSERT INTO log_cosignatures (size, witness, line, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (size, witness) DO NOTHING'),
      keyGet: p('SELECT ciphertext FROM private_keys WHERE alias = ?'),
      keyPut: p("INSERT INTO private_keys (alias, type, ciphertext) VALUES (?, 'Ed25519', ?) ON CONFLICT (alias) DO NOTHING"),
    }
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate()
  }

  readonly events = {
    /** Events with log index in [from, to), in order. */
    range: (from: number, to: number) => this.#s.events!.all(from, to) as EventRow[],
    /** Number of events with a log index (the next index). */
    count: () => (this.#s.size!.get() as { n: number }).n,
    /** Index of the spawn or renewal that issued credential `id`. */
    ofCredential: (id: string) => (this.#s.byCredential!.get(id) as { log_index: number } | undefined)?.log_index,
    /** Index of the latest event `action` about `subject`. */
    last: (action: string, subject: string) => (this.#s.lastOf!.get(action, subject) as { n: number | null }).n ?? undefined,
    lastOfCredential: (action: string, credentialId: string) => (this.#s.lastOfCredential!.get(action, credentialId) as { n: number | null }).n ?? undefined,
  }

  readonly tiles = {
    /** Level-0 tiles in index order. */
    all: () => this.#s.tiles!.all() as { idx: number; hashes: Buffer }[],
    put: (idx: number, hashes: Uint8Array) => void this.#s.tilePut!.run(idx, hashes),
  }

  readonly checkpoints = {
    latest: () => this.#s.latest!.get() as CheckpointRow | undefined,
    /** The largest checkpoint of size ≥ `size` with at least `cosigners` cosignatures. */
    latestCosigned: (size: number, cosigners: number) => this.#s.latestCosigned!.get(size, cosigners) as CheckpointRow | undefined,
    put: (row: CheckpointRow) => void this.#s.checkpointPut!.run(row.size, row.note, row.created_at),
    cosignatures: (size: number) => this.#s.cosigs!.all(size) as CosignatureRow[],
    putCosignature: (row: CosignatureRow) => void this.#s.cosigPut!.run(row.size, row.witness, row.line, row.created_at),
  }

  readonly keys = {
    get: (alias: string) => (this.#s.keyGet!.get(alias) as { ciphertext: Buffer } | undefined)?.ciphertext,
    put: (alias: string, sealed: Uint8Array) => this.#s.keyPut!.run(alias, sealed).changes > 0,
  }
}
