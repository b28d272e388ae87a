// The PostgreSQL engine of the issuer's storage (node-postgres). Several issuer processes may share
// one database: every write transaction takes the cluster-wide 'log' advisory lock with its first
// statement and holds it to its end (the log sequencer's own tiles and checkpoints excepted), so
// writers are serialized as SQLite serializes them in one file (check-then-write stays atomic across instances, the log and the event sequence are gapless and in commit order, and there
// is one lock order, so no deadlock), while reads run in parallel on the pool. Status indices are
// handed out in blocks by `allocate` (row-locked UPDATE … RETURNING), never twice; single-use values
// (proof jtis, challenges) rest on PRIMARY KEY / conditional UPDATE, so they are single-use across
// instances.
import { createHash } from 'node:crypto'
import pg from 'pg'
import { AgentIdError, type AgentIdErrorCode } from '@agentid/core'
import { LOCK, LOCK_CLASS, migratePg } from './pg-migrations.js'
import { PG_LOG_LOCK, pgTx, type DatabaseNow, type Query } from './sql-tx.js'
import { pgConsole } from './pg-console.js'
import { pgConsoleSessions } from './pg-sessions.js'
import { databaseUnavailable } from './unavailable.js'
import { writeOps } from '../domain/store.js'
import type { ConsoleReads, ConsoleSessionStore, IssuerStorage, OrchestratorRow, StatusIndexBlock, StorageTx, WriteOp } from './types.js'

const INT8 = 20
const NUMERIC = 1700
// BIGINT (unix seconds, counts, indices) as JS numbers: every value stored is below 2^53.
const types = {
  getTypeParser: (oid: number, format?: 'text' | 'binary') =>
    oid === INT8 || oid === NUMERIC ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text'),
}

// Statements with parameters run as named prepared statements (parsed once per connection).
const names = new Map<string, string>()
function prepared(sql: string, args: readonly unknown[] | undefined): string | pg.QueryConfig {
  if (args === undefined) return sql
  let name = names.get(sql)
  if (name === undefined) names.set(sql, (name = `aid_${createHash('sha256').update(sql).digest('hex').slice(0, 20)}`))
  return { name, text: sql, values: args as unknown[] }
}

// PostgreSQL's deadlock_detected and serialization_failure: the transaction is retried.
const RETRYABLE = new Set(['40P01', '40001'])

export interface PgStorageOptions {
  /** Connections in the pool (default 10). */
  max?: number
  /** Statements slower than this are cancelled, ms (default 30,000). */
  statementTimeoutMs?: number
  /**
   * How long to wait for a connection (a new one, or a free one of the pool), ms (default 10,000).
   * With the server unreachable or blackholed, requests fail after this instead of waiting forever.
   */
  connectTimeoutMs?: number
  /**
   * Tests only: the database's clock (unix ms) as the statements that judge by it see it (webhook
   * leases, console session expiry in a sign-in's prune). Default: the database's own clock, which
   * every instance shares whatever its own clock says.
   */
  databaseClock?: () => number
}

/**
 * Opens a PostgreSQL storage on `url` (postgres:// or postgresql://) and migrates it (once, under an
 * advisory lock, when several instances start together).
 * @example
 * const storage = await openPgStorage('postgres://agentid@db/agentid')
 * try { await storage.agents.get(did) } finally { await storage.close() }
 */
export async function openPgStorage(url: string, options: PgStorageOptions = {}): Promise<PgStorage> {
  if (typeof url !== 'string' || !/^postgres(ql)?:\/\/\S+$/.test(url)) throw new TypeError('openPgStorage: url must be a postgres:// URL')
  const statementTimeout = options.statementTimeoutMs ?? 30_000
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    types,
    statement_timeout: statementTimeout,
    // The server cancels a slow statement itself; a server that does not answer at all (blackholed,
    // a dead peer) is given up on by the client a little later, and TCP keep-alive finds dead peers.
    query_timeout: statementTimeout + 5_000,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    keepAlive: true,
    application_name: 'agentid-issuer',
  })
  pool.on('error', () => { /* an idle connection dropped: the pool replaces it on next use */ })
  // pg-pool takes its own error listener off a client it hands out: a connection reset while a client
  // is checked out was an unhandled 'error' event, which ended the process. The query in flight fails
  // anyway, and the pool drops the broken client when it is released.
  pool.on('connect', (client) => client.on('error', () => {}))
  try {
    const client = await pool.connect()
    try {
      await migratePg(client)
    } finally {
      client.release()
    }
  } catch (cause) {
    await pool.end().catch(() => {})
    if (cause instanceof AgentIdError) throw cause
    throw new AgentIdError('ERR_INTERNAL', 'cannot open the PostgreSQL database', { cause, details: { reason: 'db_open_failed' } })
  }
  return new PgStorage(pool, options.databaseClock)
}

interface Job { ops: readonly WriteOp[]; resolve: (logIndices: readonly number[]) => void; reject: (e: unknown) => void }

type Seen = { agent: boolean; nonce: boolean; orchestrator?: OrchestratorRow | undefined }
interface SeenRead { did: string | null; nonce: string | null; keyHash: string | null; resolve: (r: Seen) => void; reject: (e: unknown) => void }

// A spawn's early read (agents.seen) for every read queued, in one statement: one row per read, in
// the order of the arrays (WITH ORDINALITY), as the one-read statement of sql-tx.ts would answer each.
// orchestrators.key_hash is UNIQUE (LIMIT 1 keeps the look-up one per read, by the index, whatever
// the join order a young table's statistics suggest). Scalar sub-selects on the primary keys, not
// EXISTS: a correlated EXISTS may be planned as a hashed subplan, which reads
// every agent and nonce into a hash table at each execution (the generic plan on a young database).
const SEEN_MANY = `SELECT (SELECT true FROM agents a WHERE a.did = r.did) IS NOT NULL AS agent,
  (SELECT true FROM proof_nonces n WHERE n.nonce = r.nonce) IS NOT NULL AS nonce, o.id, o.name, o.key_hash, o.created_at, o.removed_at
  FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS r(did, nonce, key_hash, k)
  LEFT JOIN LATERAL (SELECT * FROM orchestrators o WHERE o.key_hash = r.key_hash AND o.removed_at IS NULL LIMIT 1) o ON true ORDER BY r.k`
type SeenRow = [boolean, boolean, string | null, string, string, number, number | null]

export class PgStorage implements IssuerStorage {
  readonly engine = 'postgres' as const
  readonly ops = writeOps
  readonly #q: Query
  readonly #tx: StorageTx
  readonly console: ConsoleReads
  readonly consoleSessions: ConsoleSessionStore
  #queue: Job[] = []
  #flushing = false
  #reads: SeenRead[] = []
  #reading = false
  readonly #agents: StorageTx['agents']
  #closed = false
  /** Database round trips made (for the bench: round trips per spawn). */
  roundTrips = 0

  readonly #dbNow: DatabaseNow

  constructor(readonly pool: pg.Pool, databaseClock?: () => number) {
    this.#dbNow = databaseClock ? () => databaseClock() : () => null
    this.#q = async (sql, args) => {
      this.roundTrips++
      return pool.query(prepared(sql, args) as pg.QueryConfig) as never
    }
    this.#tx = pgTx(this.#q, false, (fn) => this.transaction(fn), this.#dbNow)
    this.console = pgConsole(this.#q)
    this.consoleSessions = pgConsoleSessions(this.#q, pool, this.#dbNow)
    this.#agents = { ...this.#tx.agents, seen: (did, nonce, keyHash) => this.#seen(did, nonce, keyHash) }
  }

  get orchestrators() { return this.#tx.orchestrators }
  get agents() { return this.#agents }
  get credentials() { return this.#tx.credentials }
  get delegations() { return this.#tx.delegations }
  get nonces() { return this.#tx.nonces }
  get challenges() { return this.#tx.challenges }
  get audit() { return this.#tx.audit }
  get logState() { return this.#tx.logState }
  get events() { return this.#tx.events }
  get settings() { return this.#tx.settings }
  get consoleSessionRows() { return this.#tx.consoleSessionRows }
  get veramo() { return this.#tx.veramo }
  get svidAuthorities() { return this.#tx.svidAuthorities }
  get approvers() { return this.#tx.approvers }
  get approvalRequests() { return this.#tx.approvalRequests }
  get webhooks() { return this.#tx.webhooks }
  get statusLists(): StorageTx['statusLists'] {
    return { ...this.#tx.statusLists, allocate: (count, entries, at) => this.#allocate(count, entries, at) }
  }

  // The 'log' lock is taken with the first statement that is not the log's own state (in the same
  // round trip as BEGIN when it is the first): the sequencer's tiles and checkpoint are written by
  // the one holder of the 'log-sequencer' lock, so its transaction need not stop every other
  // writer while it waits for round trips (with several instances, every commit queued behind it).
  async transaction<T>(fn: (tx: StorageTx) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect()
      let broken = false
      let begin: Promise<unknown> | undefined
      let lock: Promise<unknown> | undefined
      try {
        const run = (sql: string, args?: readonly unknown[]) => {
          this.roundTrips++
          return client.query(prepared(sql, args) as pg.QueryConfig)
        }
        const logStateQ: Query = async (sql, args) => {
          await (begin ??= run('BEGIN'))
          return run(sql, args) as never
        }
        const q: Query = async (sql, args) => {
          await (lock ??= begin ? begin.then(() => run(PG_LOG_LOCK)) : (begin = run(`BEGIN; ${PG_LOG_LOCK}`)))
          return run(sql, args) as never
        }
        try {
          const tx = pgTx(q, true, () => { throw new Error('nested transaction') }, this.#dbNow)
          const logState = pgTx(logStateQ, true, () => { throw new Error('nested transaction') }).logState
          const result = await fn({ ...tx, logState, statusLists: { ...tx.statusLists, allocate: () => Promise.reject(new Error('allocate runs outside transactions')) } })
          if (begin) await run('COMMIT')
          return result
        } catch (error) {
          // A dead or silent connection is dropped (the server rolls back) rather than waited on.
          if (databaseUnavailable(error)) broken = true
          else if (begin) await client.query('ROLLBACK').catch(() => { broken = true })
          const code = (error as { code?: string }).code
          if (attempt < 5 && code !== undefined && RETRYABLE.has(code)) continue
          throw error
        }
      } finally {
        client.release(broken)
      }
    }
  }

  // A block of indices of the open list, or of a new one: the list row is locked (FOR UPDATE) while
  // next_index moves, and only one instance creates a list at a time (advisory lock 'lists').
  async #allocate(count: number, entries: number, at: number): Promise<StatusIndexBlock> {
    if (!Number.isSafeInteger(count) || count < 1) throw new TypeError('allocate: count must be a positive integer')
    const client = await this.pool.connect()
    try {
      const q = async <R>(sql: string, args?: unknown[]) => {
        this.roundTrips++
        return (await client.query(sql, args)).rows as R[]
      }
      for (;;) {
        // FOR UPDATE in the CTE: a waiting allocator reads the row as the previous one committed it.
        const [got] = await q<{ id: string; from: number; to: number }>(`WITH o AS (SELECT id, next_index FROM status_lists
            WHERE purpose = 'revocation' AND next_index < entries ORDER BY id::bigint LIMIT 1 FOR UPDATE)
          UPDATE status_lists s SET next_index = least(o.next_index + $1, s.entries) FROM o WHERE s.id = o.id
          RETURNING s.id, o.next_index AS from, s.next_index AS to`, [count])
        if (got && got.to > got.from) return { listId: got.id, from: got.from, to: got.to }
        await q('BEGIN')
        try {
          await q('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, LOCK.lists])
          const [open] = await q<{ id: string }>("SELECT id FROM status_lists WHERE purpose = 'revocation' AND next_index < entries LIMIT 1")
          if (!open) {
            const [max] = await q<{ n: number | null }>('SELECT max(id::bigint) AS n FROM status_lists')
            await q("INSERT INTO status_lists (id, purpose, entries, next_index, bits, version, updated_at) VALUES ($1, 'revocation', $2, 0, $3, 1, $4)",
              [String((max?.n ?? 0) + 1), entries, Buffer.alloc(Math.ceil(entries / 8)), at])
          }
          await q('COMMIT')
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {})
          throw error
        }
      }
    } finally {
      client.release()
    }
  }

  // The spawns' early reads (agents.seen), read together: reads queued while one is in flight (or in
  // the same turn of the event loop) go in one statement, one round trip and one executor start for
  // all (SEEN_MANY), as the group commit does for writes. Each read is sent after its call, so it
  // sees every write acknowledged before it. Reads in a transaction are not queued (pgTx's own).
  #seen(did: string | null, nonce: string | null, keyHash: string | undefined): Promise<Seen> {
    return new Promise<Seen>((resolve, reject) => {
      this.#reads.push({ did, nonce, keyHash: keyHash ?? null, resolve, reject })
      if (!this.#reading) {
        this.#reading = true
        setImmediate(() => void this.#readSeen())
      }
    })
  }

  async #readSeen(): Promise<void> {
    while (this.#reads.length > 0) {
      const batch = this.#reads.splice(0, 256)
      let rows: SeenRow[]
      try {
        if (batch.length === 1) {
          // Alone: the one-read statement (the same answer, no arrays to build or unnest).
          const r = batch[0]!
          this.#tx.agents.seen(r.did, r.nonce, r.keyHash ?? undefined).then(r.resolve, r.reject)
          continue
        }
        this.roundTrips++
        rows = (await this.pool.query({
          ...(prepared(SEEN_MANY, []) as pg.QueryConfig),
          values: [batch.map((r) => r.did), batch.map((r) => r.nonce), batch.map((r) => r.keyHash)],
          rowMode: 'array',
        })).rows as SeenRow[]
      } catch (error) {
        // The database unreachable or too slow: every read fails with it (not tried again one by
        // one, which would double the wait). Otherwise one read's value refused by the server (a DID
        // with a NUL character, say) failed the statement: each read is then made alone, so only
        // that one fails, with its own error.
        if (databaseUnavailable(error)) for (const r of batch) r.reject(error)
        else for (const r of batch) this.#tx.agents.seen(r.did, r.nonce, r.keyHash ?? undefined).then(r.resolve, r.reject)
        continue
      }
      batch.forEach((r, k) => {
        const row = rows[k]
        if (!row) return r.reject(new Error('agents.seen: no row for a read'))
        const [agent, used, id, name, key_hash, created_at, removed_at] = row
        r.resolve({ agent, nonce: used, orchestrator: r.keyHash === null || id === null ? undefined : { id, name, key_hash, created_at, removed_at } })
      })
    }
    this.#reading = false
  }

  commit(ops: readonly WriteOp[]): Promise<readonly number[]> {
    if (this.#closed) return Promise.reject(new AgentIdError('ERR_UNAVAILABLE', 'the storage is closed'))
    return new Promise<readonly number[]>((resolve, reject) => {
      this.#queue.push({ ops, resolve, reject })
      if (!this.#flushing) {
        this.#flushing = true
        setImmediate(() => void this.#flush())
      }
    })
  }

  // One batch at a time, in one round trip: every job in one call of agentid_commit_jobs (migration
  // 4), a single statement in its own transaction that takes the 'log' lock, runs each job in a
  // subtransaction (a failing job rolls back alone and is rejected alone) and commits before the
  // answer arrives. Jobs queued meanwhile form the next batch.
  async #flush(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, 256)
      let results: (number[] | { i: number; state: string; message: string })[]
      try {
        this.roundTrips++
        const r = await this.pool.query(prepared('SELECT agentid_commit_jobs($1::jsonb) AS r', [JSON.stringify(batch.map((job) => job.ops))]) as pg.QueryConfig)
        results = (r.rows[0] as { r: typeof results }).r
      } catch (error) {
        for (const job of batch) job.reject(error)
        continue
      }
      batch.forEach((job, k) => {
        const o = results[k] ?? { i: -1, state: 'AIDOP', message: 'no outcome' }
        if (Array.isArray(o)) job.resolve(o)
        else job.reject(jobFailure(job.ops, o))
      })
    }
    this.#flushing = false
  }

  async tryExclusive<T>(name: 'log-sequencer', fn: () => Promise<T>): Promise<T | undefined> {
    if (name !== 'log-sequencer') throw new TypeError(`unknown lock ${String(name)}`)
    const client = await this.pool.connect()
    try {
      const got = (await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS ok', [LOCK_CLASS, LOCK.sequencer])).rows[0]!.ok
      if (!got) return undefined
      try {
        return await fn()
      } finally {
        await client.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_CLASS, LOCK.sequencer])
      }
    } finally {
      client.release()
    }
  }

  async exclusive<T>(name: 'issuer-init', fn: () => Promise<T>): Promise<T> {
    if (name !== 'issuer-init') throw new TypeError(`unknown lock ${String(name)}`)
    const client = await this.pool.connect()
    try {
      await client.query('SELECT pg_advisory_lock($1, $2)', [LOCK_CLASS, LOCK.issuerInit])
      try {
        return await fn()
      } finally {
        await client.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_CLASS, LOCK.issuerInit])
      }
    } finally {
      client.release()
    }
  }

  async close(): Promise<void> {
    this.#closed = true
    while (this.#flushing || this.#queue.length > 0) await new Promise((r) => setTimeout(r, 5))
    await this.pool.end()
  }
}

// A failed job's outcome from agentid_commit_jobs mapped as runOp maps it (SQLite).
function jobFailure(ops: readonly WriteOp[], o: { i: number; state: string; message: string }): Error {
  const w = ops[o.i]
  const mapped = (f: { code: string; message: string }) => new AgentIdError(f.code as AgentIdErrorCode, f.message)
  if (w?.onUnique && o.state === '23505') return mapped(w.onUnique)
  if (w?.onNoChange && o.state === 'AIDNC') return mapped(w.onNoChange)
  if (w?.expect && o.state === 'AIDEX') return mapped(w.expect.failure)
  return Object.assign(new Error(o.message), { code: o.state })
}
