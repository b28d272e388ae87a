import { existsSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import BetterSqlite3, { type Database, type Statement } from 'better-sqlite3'
import { AgentIdError, type AgentIdErrorCode } from '@agentid/core'
import { prepareOps, runBatch, type JobOutcome, type OpFailure, type WriteOp } from '../db/writer-ops.js'
import { LOG_WRITE_SQL } from '../log/store.js'
import { CONSOLE_SESSION_WRITE_SQL } from '../db/console-sessions.js'

export type { OpFailure, WriteOp } from '../db/writer-ops.js'

// An audit event is an entry of the issuer log (apps/issuer/src/log): its index is assigned here, in
// the event's own transaction (max + 1 over a unique index), so the log holds every committed event once.
const AUDIT_INSERT = `INSERT INTO audit_events (at, actor, action, subject, details_json, log_index)
  VALUES (?, ?, ?, ?, ?, (SELECT coalesce(max(log_index), -1) + 1 FROM audit_events))`

// The statements group-committed jobs may run (by name), on the writer's connection.
const WRITE_SQL: Record<string, string> = {
  nonceInsert: 'INSERT INTO proof_nonces (nonce, expires_at) VALUES (?, ?)',
  challengeUse: 'UPDATE challenges SET used = 1 WHERE nonce = ? AND used = 0 AND expires_at >= ?',
  agentCount: 'SELECT count(*) AS n FROM agents WHERE did = ?',
  agentStatus: 'SELECT status FROM agents WHERE did = ?',
  agentInsert: `INSERT INTO agents (did, orchestrator_id, controller, purpose, claims_json, key_custody, status, created_at)
    VALUES (?, ?, ?, ?, ?, ?, 'active', ?)`,
  credInsert: `INSERT INTO credentials (id, agent_did, kind, format, jwt, status_list_id, status_index, issued_at, expires_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  listAdvance: 'UPDATE status_lists SET next_index = max(next_index, ?) WHERE id = ?',
  auditInsert: `${AUDIT_INSERT} RETURNING log_index`, // the job's log index, returned by commit
  delegInsert: `INSERT INTO delegations (id, parent_id, delegator, delegatee, status_list_id, status_index, created_at, expires_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  delegRevokedAt: 'SELECT revoked_at FROM delegations WHERE id = ?',
  ...LOG_WRITE_SQL, // the log sequencer thread's tiles and checkpoint (log/store.ts)
  ...CONSOLE_SESSION_WRITE_SQL, // the operator console's sessions (db/console-sessions.ts)
}

// The built writer thread: next to this file in dist/, or in dist/ when this runs from src/ (vitest).
function writerWorkerFile(): URL | undefined {
  for (const rel of ['../db/writer-worker.js', '../../dist/db/writer-worker.js']) {
    const url = new URL(rel, import.meta.url)
    if (existsSync(url)) return url
  }
  return undefined
}

function sqliteError(e: { message: string; code?: string }): Error {
  return new BetterSqlite3.SqliteError(e.message, e.code ?? 'SQLITE_ERROR')
}

function settle(batch: readonly { resolve: (logIndices: readonly number[]) => void; reject: (e: unknown) => void }[], outcomes: readonly JobOutcome[]): void {
  batch.forEach((job, i) => {
    const outcome = outcomes[i]!
    if (outcome.ok) job.resolve(outcome.logIndices)
    else if ('agentId' in outcome) job.reject(new AgentIdError(outcome.agentId.code as AgentIdErrorCode, outcome.agentId.message))
    else job.reject(sqliteError(outcome.error))
  })
}

// Rows as SQLite returns them (snake_case). Domain code maps them to API shapes.
export interface OrchestratorRow { id: string; name: string; key_hash: string; created_at: number; removed_at: number | null }
export interface AgentRow {
  did: string; orchestrator_id: string; controller: string; purpose: string; claims_json: string
  key_custody: 'agent' | 'issuer'; status: 'active' | 'revoked'; created_at: number; revoked_at: number | null; revocation_reason: string | null
}
export interface CredentialRow {
  id: string; agent_did: string; kind: 'identity' | 'delegation'; format: string; jwt: string; status_list_id: string; status_index: number
  issued_at: number; expires_at: number; revoked_at: number | null; revocation_reason: string | null
}
export interface DelegationRow {
  id: string; parent_id: string | null; delegator: string; delegatee: string; status_list_id: string; status_index: number
  created_at: number; expires_at: number; revoked_at: number | null; revocation_reason: string | null
}
export interface SecurityEventRow { seq: number; claims_json: string }
export interface StatusListRow { id: string; purpose: string; entries: number; next_index: number; bits: Buffer; version: number; updated_at: number }

export interface AgentFilter {
  orchestratorId?: string
  status?: 'active' | 'revoked'
  controller?: string
  purpose?: string
  /** Keyset cursor: rows strictly after (created_at, did). */
  after?: { createdAt: number; did: string }
  limit: number
}

/** Builders of the write ops that `commit` accepts (on either storage engine). */
export const writeOps = {
  nonceUse: (nonce: string, expiresAt: number, onUnique: OpFailure): WriteOp => ({ op: 'nonceInsert', args: [nonce, expiresAt], onUnique }),
  challengeUse: (nonce: string, now: number, onNoChange: OpFailure): WriteOp => ({ op: 'challengeUse', args: [nonce, now], onNoChange }),
  agentAbsent: (did: string, failure: OpFailure): WriteOp => ({ op: 'agentCount', args: [did], expect: { column: 'n', equals: 0, failure } }),
  agentActive: (did: string, failure: OpFailure): WriteOp => ({ op: 'agentStatus', args: [did], expect: { column: 'status', equals: 'active', failure } }),
  /** With `onUnique`, an agent of the same DID fails the job with it (the primary key is the check: no read first). */
  agentInsert: (row: Omit<AgentRow, 'status' | 'revoked_at' | 'revocation_reason'>, onUnique?: OpFailure): WriteOp =>
    ({ op: 'agentInsert', args: [row.did, row.orchestrator_id, row.controller, row.purpose, row.claims_json, row.key_custody, row.created_at], ...(onUnique ? { onUnique } : {}) }),
  credentialInsert: (row: Omit<CredentialRow, 'revoked_at' | 'revocation_reason'>): WriteOp =>
    ({ op: 'credInsert', args: [row.id, row.agent_did, row.kind, row.format, row.jwt, row.status_list_id, row.status_index, row.issued_at, row.expires_at] }),
  delegationInsert: (row: Omit<DelegationRow, 'revoked_at' | 'revocation_reason'>, onUnique: OpFailure): WriteOp =>
    ({ op: 'delegInsert', args: [row.id, row.parent_id, row.delegator, row.delegatee, row.status_list_id, row.status_index, row.created_at, row.expires_at], onUnique }),
  delegationActive: (id: string, failure: OpFailure): WriteOp => ({ op: 'delegRevokedAt', args: [id], expect: { column: 'revoked_at', equals: null, failure } }),
  statusListAdvance: (id: string, nextIndex: number): WriteOp => ({ op: 'listAdvance', args: [nextIndex, id], deferMax: true }),
  audit: (at: number, actor: string, action: string, subject: string | null, details: Record<string, unknown> = {}): WriteOp =>
    ({ op: 'auditInsert', args: [at, actor, action, subject, JSON.stringify(details)] }),
}

/**
 * The issuer's storage, grouped by resource, on one better-sqlite3 database. Statements are
 * prepared once. Methods do not open transactions: the domain wraps what belongs together in
 * `store.transaction(...)`, so that it commits or rolls back as one.
 */
export class Store {
  private readonly s: Record<string, Statement>

  constructor(readonly db: Database) {
    const p = (sql: string) => db.prepare(sql)
    this.s = {
      orchInsert: p('INSERT INTO orchestrators (id, name, key_hash, created_at) VALUES (?, ?, ?, ?)'),
      orchByHash: p('SELECT * FROM orchestrators WHERE key_hash = ? AND removed_at IS NULL'),
      orchById: p('SELECT * FROM orchestrators WHERE id = ?'),
      orchByName: p('SELECT * FROM orchestrators WHERE name = ?'),
      orchList: p('SELECT * FROM orchestrators ORDER BY created_at, name'),
      orchRemove: p('UPDATE orchestrators SET removed_at = ? WHERE id = ? AND removed_at IS NULL'),
      orchAgentCount: p("SELECT count(*) AS n FROM agents WHERE orchestrator_id = ? AND status = 'active'"),
      agentInsert: p(`INSERT INTO agents (did, orchestrator_id, controller, purpose, claims_json, key_custody, status, created_at)
        VALUES (?, ?, ?, ?, ?, ?, 'active', ?)`),
      agentGet: p('SELECT * FROM agents WHERE did = ?'),
      // A spawn's early reads in one statement (one read transaction, one step): 17-20 against 23-30 µs
      // of CPU for the three statements apart, on 100,000 agents with commits between reads.
      spawnSeen: p(`SELECT (SELECT 1 FROM agents WHERE did = ?) IS NOT NULL AS agent, (SELECT 1 FROM proof_nonces WHERE nonce = ?) IS NOT NULL AS nonce,
        o.id, o.name, o.key_hash, o.created_at, o.removed_at FROM (SELECT 1) LEFT JOIN orchestrators o ON o.key_hash = ? AND o.removed_at IS NULL`).raw(),
      agentRevoke: p("UPDATE agents SET status = 'revoked', revoked_at = ?, revocation_reason = ? WHERE did = ? AND status = 'active'"),
      credInsert: p(`INSERT INTO credentials (id, agent_did, kind, format, jwt, status_list_id, status_index, issued_at, expires_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      credGet: p('SELECT * FROM credentials WHERE id = ?'),
      credByAgent: p('SELECT * FROM credentials WHERE agent_did = ? ORDER BY issued_at, rowid'),
      credActiveByAgent: p('SELECT * FROM credentials WHERE agent_did = ? AND revoked_at IS NULL ORDER BY issued_at, rowid'),
      credRevoke: p('UPDATE credentials SET revoked_at = ?, revocation_reason = ? WHERE id = ? AND revoked_at IS NULL'),
      listGet: p('SELECT * FROM status_lists WHERE id = ?'),
      listOpen: p("SELECT * FROM status_lists WHERE purpose = 'revocation' AND next_index < entries ORDER BY CAST(id AS INTEGER) LIMIT 1"),
      listMaxId: p('SELECT max(CAST(id AS INTEGER)) AS n FROM status_lists'),
      listInsert: p("INSERT INTO status_lists (id, purpose, entries, next_index, bits, version, updated_at) VALUES (?, 'revocation', ?, 0, ?, 1, ?)"),
      listAdvance: p('UPDATE status_lists SET next_index = max(next_index, ?) WHERE id = ?'),
      listWriteBits: p('UPDATE status_lists SET bits = ?, version = version + 1, updated_at = ? WHERE id = ?'),
      listVersion: p('SELECT version FROM status_lists WHERE id = ?'),
      listIds: p('SELECT id, version, entries, next_index FROM status_lists ORDER BY CAST(id AS INTEGER)'),
      nonceInsert: p('INSERT INTO proof_nonces (nonce, expires_at) VALUES (?, ?)'),
      nonceSeen: p('SELECT 1 FROM proof_nonces WHERE nonce = ?'),
      noncePurge: p('DELETE FROM proof_nonces WHERE expires_at < ?'),
      challengeInsert: p('INSERT INTO challenges (nonce, expires_at) VALUES (?, ?)'),
      challengeUse: p('UPDATE challenges SET used = 1 WHERE nonce = ? AND used = 0 AND expires_at >= ?'),
      challengePurge: p('DELETE FROM challenges WHERE expires_at < ?'),
      auditInsert: p(AUDIT_INSERT),
      delegGet: p('SELECT * FROM delegations WHERE id = ?'),
      // The links `id` and every link below it, still unrevoked.
      delegSubtree: p(`WITH RECURSIVE tree(id) AS (SELECT id FROM delegations WHERE id = ?
        UNION SELECT d.id FROM delegations d JOIN tree t ON d.parent_id = t.id)
        SELECT d.* FROM delegations d JOIN tree t ON d.id = t.id WHERE d.revoked_at IS NULL`),
      // The links an agent signed or received, and every link below them, still unrevoked.
      delegOfAgent: p(`WITH RECURSIVE tree(id) AS (SELECT id FROM delegations WHERE delegator = ? OR delegatee = ?
        UNION SELECT d.id FROM delegations d JOIN tree t ON d.parent_id = t.id)
        SELECT d.* FROM delegations d JOIN tree t ON d.id = t.id WHERE d.revoked_at IS NULL`),
      delegRevoke: p('UPDATE delegations SET revoked_at = ?, revocation_reason = ? WHERE id = ? AND revoked_at IS NULL'),
      eventInsert: p('INSERT INTO security_events (jti, txn, at, claims_json) VALUES (?, ?, ?, ?)'),
      eventsAfter: p('SELECT seq, claims_json FROM security_events WHERE seq > ? ORDER BY seq LIMIT ?'),
      eventHead: p('SELECT max(seq) AS n FROM security_events'),
      eventOldest: p('SELECT min(seq) AS n FROM security_events'),
      eventPrune: p('DELETE FROM security_events WHERE at < ? AND seq < (SELECT max(seq) FROM security_events)'),
      settingGet: p('SELECT value FROM settings WHERE key = ?'),
      settingPut: p('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    }
  }

  /** Runs `fn` in one IMMEDIATE transaction: all of it commits, or none of it. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate()
  }

  private readonly queue: { ops: readonly WriteOp[]; resolve: (logIndices: readonly number[]) => void; reject: (e: unknown) => void }[] = []
  private flushScheduled = false
  private inflight: { id: number; batch: Store['queue'] } | undefined
  private nextBatchId = 1
  private writer: Worker | null | undefined // undefined: not started yet; null: commit in this thread
  private writerClosing = false
  private inThreadStmts: Map<string, Statement> | undefined
  private drained: (() => void)[] = []

  /**
   * Group commit: runs the write `ops` of one job atomically and resolves once they are durably
   * committed. Jobs queued in the same event-loop turn, or while the previous batch is committing,
   * share one IMMEDIATE transaction and so one fsync (synchronous=FULL costs ~1 ms per commit here,
   * which would cap spawns near 1,000/s), but each job runs in its own SAVEPOINT: if one of its ops
   * fails, its writes alone are rolled back and its promise rejects (with the op's AgentIdError, or
   * the SqliteError); the others commit. Nothing is half-written, nothing acknowledged before it is on disk.
   * Resolves with the log indices of the job's audit events, in op order.
   *
   * The batches run on a writer thread (`db/writer-worker.ts`) with its own connection to the same
   * file, so the COMMIT's fsync does not block this event loop; this connection keeps serving reads
   * (WAL) and the rare synchronous writes, which wait for the writer's lock (busy_timeout). Neither
   * side holds a write transaction while waiting for the other. Without a built worker file
   * (`dist/db/writer-worker.js`) or for an in-memory database, batches run in this thread instead.
   */
  commit(ops: readonly WriteOp[]): Promise<readonly number[]> {
    return new Promise<readonly number[]>((resolve, reject) => {
      this.queue.push({ ops, resolve, reject })
      if (!this.flushScheduled && !this.inflight) {
        this.flushScheduled = true
        setImmediate(() => this.flush())
      }
    })
  }

  /** Resolves once every queued job is settled; then stops the writer thread (for close). */
  async closeWriter(): Promise<void> {
    while (this.queue.length > 0 || this.inflight || this.flushScheduled) await new Promise<void>((resolve) => this.drained.push(resolve))
    const w = this.writer
    this.writer = null
    if (w) {
      this.writerClosing = true
      w.ref()
      const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()))
      w.postMessage({ type: 'close' })
      await exited
    }
  }

  private startWriter(): Worker | null {
    if (this.writer !== undefined) return this.writer
    this.writer = null
    const file = writerWorkerFile()
    if (!file || this.db.memory) return null
    const w = new Worker(file, { workerData: { file: this.db.name, sql: WRITE_SQL } })
    w.unref()
    w.on('message', (reply: { type: 'done'; id: number; outcomes: JobOutcome[] } | { type: 'failed'; id: number; error: { message: string; code?: string } }) => {
      const done = this.inflight
      this.inflight = undefined
      if (!done || done.id !== reply.id) return
      this.flush() // the next batch starts committing before this one's callers resume
      if (reply.type === 'done') settle(done.batch, reply.outcomes)
      else for (const job of done.batch) job.reject(sqliteError(reply.error))
    })
    const lost = (error: unknown) => {
      if (this.writer === w) this.writer = null // later batches commit in this thread
      const done = this.inflight
      this.inflight = undefined
      if (done) for (const job of done.batch) job.reject(error)
      this.flush()
    }
    w.on('error', lost)
    w.on('exit', (code) => { if (!this.writerClosing) lost(new Error(`the writer thread exited (${code})`)) })
    this.writer = w
    return w
  }

  private flush(): void {
    this.flushScheduled = false
    if (this.inflight) return
    if (this.queue.length === 0) {
      this.writer?.unref()
      for (const resolve of this.drained.splice(0)) resolve()
      return
    }
    const batch = this.queue.splice(0, 512)
    const w = this.startWriter()
    if (w) {
      this.inflight = { id: this.nextBatchId++, batch }
      w.ref() // a process awaiting a commit stays alive until it is settled
      w.postMessage({ type: 'batch', id: this.inflight.id, jobs: batch.map((job) => job.ops) })
      return
    }
    this.flushScheduled = true
    setImmediate(() => this.flush())
    let outcomes: JobOutcome[]
    try {
      outcomes = runBatch(this.db, (this.inThreadStmts ??= prepareOps(this.db, WRITE_SQL)), batch.map((job) => job.ops))
    } catch (error) {
      for (const job of batch) job.reject(error)
      return
    }
    settle(batch, outcomes)
  }

  /** Builders of the write ops that `commit` accepts. */
  readonly ops = writeOps

  readonly orchestrators = {
    insert: (row: Omit<OrchestratorRow, 'removed_at'>) => void this.s.orchInsert!.run(row.id, row.name, row.key_hash, row.created_at),
    byKeyHash: (hash: string) => this.s.orchByHash!.get(hash) as OrchestratorRow | undefined,
    byId: (id: string) => this.s.orchById!.get(id) as OrchestratorRow | undefined,
    byName: (name: string) => this.s.orchByName!.get(name) as OrchestratorRow | undefined,
    list: () => this.s.orchList!.all() as OrchestratorRow[],
    remove: (id: string, at: number) => this.s.orchRemove!.run(at, id).changes > 0,
    activeAgentCount: (id: string) => (this.s.orchAgentCount!.get(id) as { n: number }).n,
  }

  readonly agents = {
    insert: (row: Omit<AgentRow, 'status' | 'revoked_at' | 'revocation_reason'>) =>
      void this.s.agentInsert!.run(row.did, row.orchestrator_id, row.controller, row.purpose, row.claims_json, row.key_custody, row.created_at),
    get: (did: string) => this.s.agentGet!.get(did) as AgentRow | undefined,
    /** Whether an agent of `did` and a proof nonce `nonce` exist, and the live orchestrator of `keyHash` (null: not asked). */
    seen: (did: string | null, nonce: string | null, keyHash: string | null): { agent: boolean; nonce: boolean; orchestrator: OrchestratorRow | undefined } => {
      const [agent, seenNonce, id, name, key_hash, created_at, removed_at] = this.s.spawnSeen!.get(did, nonce, keyHash) as [number, number, string | null, string, string, number, number | null]
      return { agent: agent === 1, nonce: seenNonce === 1, orchestrator: id === null ? undefined : { id, name, key_hash, created_at, removed_at } }
    },
    revoke: (did: string, at: number, reason: string) => this.s.agentRevoke!.run(at, reason, did).changes > 0,
    list: (f: AgentFilter): AgentRow[] => {
      const where: string[] = []
      const args: unknown[] = []
      if (f.orchestratorId !== undefined) { where.push('orchestrator_id = ?'); args.push(f.orchestratorId) }
      if (f.status !== undefined) { where.push('status = ?'); args.push(f.status) }
      if (f.controller !== undefined) { where.push('controller = ?'); args.push(f.controller) }
      if (f.purpose !== undefined) { where.push('purpose = ?'); args.push(f.purpose) }
      if (f.after !== undefined) { where.push('(created_at, did) > (?, ?)'); args.push(f.after.createdAt, f.after.did) }
      const sql = `SELECT * FROM agents ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at, did LIMIT ?`
      return this.db.prepare(sql).all(...args, f.limit) as AgentRow[]
    },
  }

  readonly credentials = {
    insert: (row: Omit<CredentialRow, 'revoked_at' | 'revocation_reason'>) =>
      void this.s.credInsert!.run(row.id, row.agent_did, row.kind, row.format, row.jwt, row.status_list_id, row.status_index, row.issued_at, row.expires_at),
    get: (id: string) => this.s.credGet!.get(id) as CredentialRow | undefined,
    byAgent: (did: string) => this.s.credByAgent!.all(did) as CredentialRow[],
    activeByAgent: (did: string) => this.s.credActiveByAgent!.all(did) as CredentialRow[],
    revoke: (id: string, at: number, reason: string) => this.s.credRevoke!.run(at, reason, id).changes > 0,
  }

  readonly delegations = {
    get: (id: string) => this.s.delegGet!.get(id) as DelegationRow | undefined,
    /** Unrevoked links of the subtree rooted at `id` (itself included). */
    activeSubtree: (id: string) => this.s.delegSubtree!.all(id) as DelegationRow[],
    /** Unrevoked links `did` signed or received, and their descendants. */
    activeOfAgent: (did: string) => this.s.delegOfAgent!.all(did, did) as DelegationRow[],
    revoke: (id: string, at: number, reason: string) => this.s.delegRevoke!.run(at, reason, id).changes > 0,
  }

  readonly statusLists = {
    get: (id: string) => this.s.listGet!.get(id) as StatusListRow | undefined,
    open: () => this.s.listOpen!.get() as StatusListRow | undefined,
    maxId: () => ((this.s.listMaxId!.get() as { n: number | null }).n ?? 0),
    insert: (id: string, entries: number, bits: Uint8Array, at: number) => void this.s.listInsert!.run(id, entries, bits, at),
    advance: (id: string, nextIndex: number) => void this.s.listAdvance!.run(nextIndex, id),
    writeBits: (id: string, bits: Uint8Array, at: number) => void this.s.listWriteBits!.run(bits, at, id),
    version: (id: string) => (this.s.listVersion!.get(id) as { version: number } | undefined)?.version,
    all: () => this.s.listIds!.all() as Pick<StatusListRow, 'id' | 'version' | 'entries' | 'next_index'>[],
  }

  readonly nonces = {
    /** Records a proof's jti; false when it was seen before (a replay). */
    use: (nonce: string, expiresAt: number): boolean => {
      try {
        this.s.nonceInsert!.run(nonce, expiresAt)
        return true
      } catch (error) {
        if ((error as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return false
        throw error
      }
    },
    seen: (nonce: string) => this.s.nonceSeen!.get(nonce) !== undefined,
    purge: (now: number) => this.s.noncePurge!.run(now).changes,
  }

  readonly challenges = {
    insert: (nonce: string, expiresAt: number) => void this.s.challengeInsert!.run(nonce, expiresAt),
    /** Marks a challenge used; false when unknown, expired or already used. */
    use: (nonce: string, now: number) => this.s.challengeUse!.run(nonce, now).changes > 0,
    purge: (now: number) => this.s.challengePurge!.run(now).changes,
  }

  /** Appends one event to the issuer's append-only log (inside the caller's transaction). */
  audit(at: number, actor: string, action: string, subject: string | null, details: Record<string, unknown> = {}): void {
    this.s.auditInsert!.run(at, actor, action, subject, JSON.stringify(details))
  }

  /** The event stream's security events (SETs), in sequence order. */
  readonly events = {
    /** Appends one event (inside the caller's transaction); returns its sequence number. */
    insert: (jti: string, txn: string, at: number, claims: Record<string, unknown>): number =>
      Number(this.s.eventInsert!.run(jti, txn, at, JSON.stringify(claims)).lastInsertRowid),
    /** Up to `limit` events with a sequence number above `seq`, in order. */
    after: (seq: number, limit: number) => this.s.eventsAfter!.all(seq, limit) as SecurityEventRow[],
    /** The highest sequence number written, 0 for none. */
    head: (): number => (this.s.eventHead!.get() as { n: number | null }).n ?? 0,
    /** The lowest sequence number still kept, or null when none is. */
    oldest: (): number | null => (this.s.eventOldest!.get() as { n: number | null }).n,
    /** Deletes events written before `at` (unix seconds), always keeping the newest (the head); returns how many. */
    prune: (at: number): number => this.s.eventPrune!.run(at).changes,
  }

  readonly settings = {
    get: (key: string) => (this.s.settingGet!.get(key) as { value: string } | undefined)?.value,
    put: (key: string, value: string) => void this.s.settingPut!.run(key, value),
  }
}
