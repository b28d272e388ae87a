// The SQLite engine of the issuer's storage: the synchronous `Store` (better-sqlite3, WAL,
// synchronous=FULL, group commit on the writer thread) behind the asynchronous interface. One process
// owns the file's writes; `transaction` holds one IMMEDIATE transaction across the awaits of `fn`
// (which awaits only these synchronous-underneath methods), one transaction at a time. What is called on
// the storage itself while a transaction is open waits for it to settle (see #outside).
import { AsyncLocalStorage } from 'node:async_hooks'
import type { Database, Statement } from 'better-sqlite3'
import { AgentIdError, StatusList } from '@agentid/core'
import { Store, writeOps } from '../domain/store.js'
import { LogStore } from '../log/store.js'
import { ConsoleQueries } from '../console/queries.js'
import { ApprovalStore } from '../approvals/store.js'
import { sqliteConsoleSessions } from '../db/console-sessions.js'
import { WebhookStore } from '../webhooks/store.js'
import type { ConsoleReads, ConsoleSessionStore, IdentifierRow, IssuerStorage, KeyRow, PrivateKeyRow, StatusIndexBlock, StorageTx, SvidAuthorityRow, WriteOp } from './types.js'

export class SqliteStorage implements IssuerStorage {
  readonly engine = 'sqlite' as const
  readonly ops = writeOps
  readonly log: LogStore
  readonly #s: Record<string, Statement>
  #tail: Promise<unknown> = Promise.resolve()
  // AGENTID_STRICT_TX=1 (the test suites set it): a call on the storage itself made from inside a
  // transaction's fn, which would wait for that very transaction, throws instead. Only then is an
  // AsyncLocalStorage used: once one runs, Node 20 hooks every promise of the process, which cost the
  // issuer's event loop 5-10 % per spawn and 20 % of its throughput (bench/spawn.mjs, alternated).
  readonly #inside = process.env.AGENTID_STRICT_TX === '1' ? new AsyncLocalStorage<object>() : undefined
  #open: object | undefined

  constructor(readonly store: Store) {
    this.log = new LogStore(store.db)
    const p = (sql: string) => store.db.prepare(sql)
    this.#s = {
      auditIndex: p('SELECT log_index FROM audit_events WHERE rowid = last_insert_rowid()'),
      delegInsert: p(`INSERT INTO delegations (id, parent_id, delegator, delegatee, status_list_id, status_index, created_at, expires_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
      listOpen: p("SELECT id, next_index, entries FROM status_lists WHERE purpose = 'revocation' AND next_index < entries ORDER BY CAST(id AS INTEGER) LIMIT 1"),
      listTake: p('UPDATE status_lists SET next_index = ? WHERE id = ?'),
      idUpsert: p(`INSERT INTO identifiers (did, provider, alias, controller_key_id, services_json, created_at) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (did) DO UPDATE SET provider = excluded.provider, alias = excluded.alias, controller_key_id = excluded.controller_key_id, services_json = excluded.services_json`),
      idByDid: p('SELECT did, provider, alias, controller_key_id, services_json FROM identifiers WHERE did = ?'),
      idByAlias: p('SELECT did, provider, alias, controller_key_id, services_json FROM identifiers WHERE alias = ?'),
      idUnlink: p('UPDATE keys SET identifier_did = NULL WHERE identifier_did = ?'),
      idDelete: p('DELETE FROM identifiers WHERE did = ?'),
      keyUpsert: p(`INSERT INTO keys (kid, kms, type, public_key_hex, meta_json, identifier_did) VALUES (?, ?, ?, ?, ?, ?)
        ON CONFLICT (kid) DO UPDATE SET kms = excluded.kms, type = excluded.type, public_key_hex = excluded.public_key_hex, meta_json = excluded.meta_json,
        identifier_did = coalesce(excluded.identifier_did, keys.identifier_did)`),
      keyGet: p('SELECT kid, kms, type, public_key_hex, meta_json FROM keys WHERE kid = ?'),
      keysOf: p('SELECT kid, kms, type, public_key_hex, meta_json FROM keys WHERE identifier_did = ? ORDER BY rowid'),
      keysAll: p('SELECT kid, kms, type, public_key_hex, meta_json FROM keys ORDER BY rowid'),
      keyDelete: p('DELETE FROM keys WHERE kid = ?'),
      pkPut: p('INSERT INTO private_keys (alias, type, ciphertext) VALUES (?, ?, ?) ON CONFLICT (alias) DO NOTHING'),
      pkGet: p('SELECT alias, type, ciphertext FROM private_keys WHERE alias = ?'),
      pkAll: p('SELECT alias, type, ciphertext FROM private_keys ORDER BY rowid'),
      pkDelete: p('DELETE FROM private_keys WHERE alias = ?'),
      caUnexpired: p('SELECT * FROM svid_authorities WHERE trust_domain = ? AND not_after > ? ORDER BY not_before, id'),
      caInsert: p('INSERT INTO svid_authorities (id, trust_domain, key_sealed, cert_der, not_before, not_after, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    }
    this.#tx = this.#makeTx()
    this.#out = this.#outsideAll(this.#tx)
  }

  /**
   * `f` as called on the storage itself, not on a transaction's `tx`. The storage and an open
   * transaction share this one connection: run while another caller holds BEGIN IMMEDIATE across its
   * awaits, a write landed in that transaction (undone by its rollback though its caller was told it
   * succeeded) and a read saw its uncommitted writes. So while one is open the call waits for it to
   * settle, in the transactions' queue: a transaction's fn must use its `tx`, never the storage itself
   * (it would wait for itself; AGENTID_STRICT_TX=1 makes that a TypeError). With none open (always, on
   * the hot path: its writes are group-committed on the writer thread) it runs at once, as before.
   */
  #outside<A extends unknown[], R>(f: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
    return (...args: A) => {
      if (!this.db.inTransaction) return f(...args)
      if (this.#inside !== undefined && this.#open !== undefined && this.#inside.getStore() === this.#open) {
        return Promise.reject(new TypeError('SqliteStorage: called on the storage from inside a transaction, which it would wait for: use the transaction\'s tx'))
      }
      const run = this.#tail.then(() => f(...args))
      this.#tail = run.catch(() => {})
      return run
    }
  }

  #outsideGroup<G extends object>(group: G): G {
    const out: Record<string, unknown> = {}
    for (const [name, f] of Object.entries(group)) out[name] = typeof f === 'function' ? this.#outside(f as (...args: unknown[]) => Promise<unknown>) : f
    return out as G
  }

  #outsideAll(tx: StorageTx): StorageTx {
    const out: Record<string, unknown> = {}
    for (const [name, group] of Object.entries(tx)) out[name] = this.#outsideGroup(group as object)
    return out as unknown as StorageTx
  }

  readonly #out: StorageTx

  #console: ConsoleReads | undefined
  /** The console's queries: `ConsoleQueries` (SQLite SQL, prepared once) behind promises. */
  get console(): ConsoleReads {
    if (!this.#console) {
      const c = new ConsoleQueries(this.db)
      this.#console = {
        agentPage: async (f, limit, before) => c.agents.page(f, limit, before),
        agentCounts: async (f) => c.agents.counts(f),
        facets: async (o) => c.agents.facets(o),
        agentsBrief: async (dids) => c.agents.brief(dids),
        delegationsAround: async (did, limit) => c.delegations.around(did, limit),
        eventsOfAgent: async (did, ids, limit) => c.events.ofAgent(did, ids, limit),
      }
      this.#console = this.#outsideGroup(this.#console)
    }
    return this.#console
  }

  #sessions: ConsoleSessionStore | undefined
  /** The console's sessions: read on this connection, written by the group commit (the writer thread). */
  get consoleSessions(): ConsoleSessionStore {
    return (this.#sessions ??= this.#outsideGroup(sqliteConsoleSessions(this.db, (ops) => this.store.commit(ops))))
  }

  get db(): Database {
    return this.store.db
  }

  // Every method is the synchronous statement, its result wrapped in a promise (a throw rejects).
  readonly #tx: StorageTx

  #makeTx(): StorageTx {
    const st = this.store
    const s = () => this.#s
    const ap = new ApprovalStore(this.db)
    const wh = new WebhookStore(this.db)
    const a = <A extends unknown[], R>(f: (...args: A) => R) => async (...args: A): Promise<R> => f(...args)
    return {
      orchestrators: {
        insert: a(st.orchestrators.insert), byKeyHash: a(st.orchestrators.byKeyHash), byId: a(st.orchestrators.byId), byName: a(st.orchestrators.byName),
        list: a(st.orchestrators.list), remove: a(st.orchestrators.remove), activeAgentCount: a(st.orchestrators.activeAgentCount),
      },
      agents: {
        insert: a(st.agents.insert), get: a(st.agents.get),
        seen: a((did: string | null, nonce: string | null, keyHash?: string) => {
          const read = st.agents.seen(did, nonce, keyHash ?? null)
          return { agent: read.agent, nonce: read.nonce, ...(keyHash !== undefined ? { orchestrator: read.orchestrator } : {}) }
        }),
        revoke: a(st.agents.revoke), list: a(st.agents.list) },
      credentials: { insert: a(st.credentials.insert), get: a(st.credentials.get), byAgent: a(st.credentials.byAgent), activeByAgent: a(st.credentials.activeByAgent), revoke: a(st.credentials.revoke) },
      delegations: {
        insert: a((r) => void s().delegInsert!.run(r.id, r.parent_id, r.delegator, r.delegatee, r.status_list_id, r.status_index, r.created_at, r.expires_at)),
        get: a(st.delegations.get), activeSubtree: a(st.delegations.activeSubtree), activeOfAgent: a(st.delegations.activeOfAgent), revoke: a(st.delegations.revoke),
      },
      statusLists: {
        get: a(st.statusLists.get), version: a(st.statusLists.version), all: a(st.statusLists.all),
        allocate: a((count: number, entries: number, at: number) => this.#allocate(count, entries, at)),
        advance: a(st.statusLists.advance),
        setRevoked: a((listId: string, indices: readonly number[], at: number) => {
          const row = st.statusLists.get(listId)
          if (!row) throw new AgentIdError('ERR_INTERNAL', `status list ${listId} is missing`)
          const list = StatusList.fromBytes(row.bits)
          for (const i of indices) list.set(i, 1)
          st.statusLists.writeBits(listId, list.bytes, at)
        }),
      },
      nonces: { use: a(st.nonces.use), seen: a(st.nonces.seen), purge: a(st.nonces.purge) },
      challenges: { insert: a(st.challenges.insert), use: a(st.challenges.use), purge: a(st.challenges.purge) },
      audit: {
        append: a((at: number, actor: string, action: string, subject: string | null, details: Record<string, unknown> = {}) => {
          st.audit(at, actor, action, subject, details)
          return (s().auditIndex!.get() as { log_index: number }).log_index
        }),
        range: a(this.log.events.range), count: a(this.log.events.count), ofCredential: a(this.log.events.ofCredential),
        last: a(this.log.events.last), lastOfCredential: a(this.log.events.lastOfCredential),
      },
      logState: {
        tiles: a(this.log.tiles.all), putTile: a(this.log.tiles.put), latestCheckpoint: a(this.log.checkpoints.latest),
        latestCosigned: a(this.log.checkpoints.latestCosigned), putCheckpoint: a(this.log.checkpoints.put),
        cosignatures: a(this.log.checkpoints.cosignatures), putCosignature: a(this.log.checkpoints.putCosignature),
      },
      events: { insert: a(st.events.insert), after: a(st.events.after), head: a(st.events.head), oldest: a(st.events.oldest), prune: a(st.events.prune) },
      settings: { get: a(st.settings.get), put: a(st.settings.put) },
      consoleSessionRows: { deletePrincipal: a((p: string) => this.db.prepare('DELETE FROM console_sessions WHERE principal = ?').run(p).changes) },
      approvers: {
        insert: a(ap.approvers.insert), get: a(ap.approvers.get), byEnrolHash: a(ap.approvers.byEnrolHash), byWebauthnId: a(ap.approvers.byWebauthnId),
        list: a(ap.approvers.list), setChallenge: a(ap.approvers.setChallenge), enrol: a(ap.approvers.enrol), setCounter: a(ap.approvers.setCounter), revoke: a(ap.approvers.revoke),
      },
      approvalRequests: { insert: a(ap.requests.insert), get: a(ap.requests.get), decide: a(ap.requests.decide), list: a(ap.requests.list) },
      webhooks: {
        enqueue: a((r) => wh.insert(r)), claim: a((o: string, n: number, l: number, k: number) => wh.claim(o, n, l, k)),
        settle: a((id: string, o: string, at: Parameters<WebhookStore['settle']>[2], next: Parameters<WebhookStore['settle']>[3]) => wh.settle(id, o, at, next)),
        nextDueMs: a(() => wh.nextDueMs()), get: a((id: string) => wh.get(id)), bySubject: a((s: string) => wh.bySubject(s)),
        attempts: a((id: string) => wh.attempts(id)), prune: a((before: number) => wh.prune(before)),
        list: a((state: Parameters<WebhookStore['list']>[0], before: Parameters<WebhookStore['list']>[1], limit: number) => wh.list(state, before, limit)),
        requeue: a((id: string, now: number) => wh.requeue(id, now)),
      },
      svidAuthorities: {
        unexpired: a((td: string, now: number) => s().caUnexpired!.all(td, now) as SvidAuthorityRow[]),
        insert: a((r: SvidAuthorityRow) => void s().caInsert!.run(r.id, r.trust_domain, r.key_sealed, r.cert_der, r.not_before, r.not_after, r.created_at)),
      },
      veramo: {
        upsertIdentifier: a((r: IdentifierRow, createdAt: number) => void s().idUpsert!.run(r.did, r.provider, r.alias, r.controller_key_id, r.services_json, createdAt)),
        identifier: a((by: { did: string } | { alias: string }) => ('did' in by ? s().idByDid!.get(by.did) : s().idByAlias!.get(by.alias)) as IdentifierRow | undefined),
        identifiers: a((f: { alias?: string; provider?: string }) => {
          const where: string[] = []
          const args: string[] = []
          if (f.alias !== undefined) { where.push('alias = ?'); args.push(f.alias) }
          if (f.provider !== undefined) { where.push('provider = ?'); args.push(f.provider) }
          return this.db.prepare(`SELECT did, provider, alias, controller_key_id, services_json FROM identifiers ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, rowid`).all(...args) as IdentifierRow[]
        }),
        deleteIdentifier: a((did: string) => this.db.transaction(() => { s().idUnlink!.run(did); return s().idDelete!.run(did).changes > 0 })()),
        upsertKey: a((r: KeyRow, did: string | null) => void s().keyUpsert!.run(r.kid, r.kms, r.type, r.public_key_hex, r.meta_json, did)),
        key: a((kid: string) => s().keyGet!.get(kid) as KeyRow | undefined),
        keysOf: a((did: string) => s().keysOf!.all(did) as KeyRow[]),
        keys: a(() => s().keysAll!.all() as KeyRow[]),
        deleteKey: a((kid: string) => s().keyDelete!.run(kid).changes > 0),
        putPrivateKey: a((r: PrivateKeyRow) => s().pkPut!.run(r.alias, r.type, r.ciphertext).changes > 0),
        privateKey: a((alias: string) => s().pkGet!.get(alias) as PrivateKeyRow | undefined),
        privateKeys: a(() => s().pkAll!.all() as PrivateKeyRow[]),
        deletePrivateKey: a((alias: string) => s().pkDelete!.run(alias).changes > 0),
      },
    }
  }

  get orchestrators() { return this.#out.orchestrators }
  get agents() { return this.#out.agents }
  get credentials() { return this.#out.credentials }
  get delegations() { return this.#out.delegations }
  get statusLists() { return this.#out.statusLists }
  get nonces() { return this.#out.nonces }
  get challenges() { return this.#out.challenges }
  get audit() { return this.#out.audit }
  get logState() { return this.#out.logState }
  get events() { return this.#out.events }
  get settings() { return this.#out.settings }
  get consoleSessionRows(): StorageTx['consoleSessionRows'] {
    return { deletePrincipal: (p) => this.transaction((tx) => tx.consoleSessionRows.deletePrincipal(p)) }
  }
  get veramo() { return this.#out.veramo }
  get svidAuthorities() { return this.#out.svidAuthorities }
  get approvers() { return this.#out.approvers }
  get approvalRequests() { return this.#out.approvalRequests }
  // The sender's writes outside a transaction run in one of their own (each of its statements, or none).
  get webhooks(): StorageTx['webhooks'] {
    const w = this.#out.webhooks
    return {
      ...w,
      claim: (...args) => this.transaction((tx) => tx.webhooks.claim(...args)),
      settle: (...args) => this.transaction((tx) => tx.webhooks.settle(...args)),
      prune: (...args) => this.transaction((tx) => tx.webhooks.prune(...args)),
      requeue: (...args) => this.transaction((tx) => tx.webhooks.requeue(...args)),
    }
  }

  #cursor: { id: string; next: number; entries: number } | undefined

  // One process owns the file's writes: indices are handed out from a cursor in memory, starting at
  // the list's next_index (the committed high-water mark), and recorded by the commit that uses them
  // (the statusListAdvance op), so a refused write consumes none. A new list is created on disk.
  #allocate(count: number, entries: number, at: number): StatusIndexBlock {
    if (!Number.isSafeInteger(count) || count < 1) throw new TypeError('allocate: count must be a positive integer')
    if (!this.#cursor || this.#cursor.next >= this.#cursor.entries) {
      const open = this.store.transaction(() => {
        const found = this.#s.listOpen!.get() as { id: string; next_index: number; entries: number } | undefined
        if (found) return found
        const id = String(this.store.statusLists.maxId() + 1)
        this.store.statusLists.insert(id, entries, new Uint8Array(Math.ceil(entries / 8)), at)
        return { id, next_index: 0, entries }
      })
      // A list this cursor already filled in memory but whose last indices are not committed yet
      // still shows next_index < entries: never go back below what was handed out.
      const next = this.#cursor?.id === open.id ? Math.max(this.#cursor.next, open.next_index) : open.next_index
      this.#cursor = { id: open.id, next, entries: open.entries }
      if (next >= open.entries) {
        this.#s.listTake!.run(open.entries, open.id)
        return this.#allocate(count, entries, at)
      }
    }
    const from = this.#cursor.next
    const to = Math.min(from + count, this.#cursor.entries)
    this.#cursor.next = to
    return { listId: this.#cursor.id, from, to }
  }

  transaction<T>(fn: (tx: StorageTx) => Promise<T>): Promise<T> {
    // One transaction at a time in this process; each waits for the previous to settle.
    const run = this.#tail.then(async () => {
      const db = this.db
      db.exec('BEGIN IMMEDIATE')
      const token = {}
      this.#open = token
      try {
        const result = await (this.#inside === undefined ? fn(this.#tx) : this.#inside.run(token, () => fn(this.#tx)))
        db.exec('COMMIT')
        return result
      } catch (error) {
        if (db.inTransaction) db.exec('ROLLBACK')
        throw error
      } finally {
        this.#open = undefined
      }
    })
    this.#tail = run.catch(() => {})
    return run
  }

  commit(ops: readonly WriteOp[]): Promise<readonly number[]> {
    return this.store.commit(ops)
  }

  async tryExclusive<T>(_name: 'log-sequencer', fn: () => Promise<T>): Promise<T | undefined> {
    return fn()
  }

  // One storage per file per process: an in-process queue is the whole exclusion (two starts in one
  // process, e.g. tests, must not interleave their first-start writes).
  #init: Promise<unknown> = Promise.resolve()
  async exclusive<T>(_name: 'issuer-init', fn: () => Promise<T>): Promise<T> {
    const run = this.#init.then(fn, fn)
    this.#init = run.catch(() => {})
    return run
  }

  async close(): Promise<void> {
    await this.#tail
    await this.store.closeWriter()
    this.db.close()
  }
}
