// The issuer's storage behind one narrow, asynchronous interface, grouped by resource, with two
// engines: embedded SQLite (the default, `sqlite.ts`, wrapping the synchronous `Store`) and
// PostgreSQL (`pg.ts`, node-postgres), selected by AGENTID_DATABASE_URL. Rows keep the column names
// of the schema (snake_case); times are unix seconds. Every method may be called on the storage
// itself (one statement, autocommit) or on the `tx` of `transaction` (all of it commits or none).
import type { writeOps } from '../domain/store.js'
import type { AgentFilter, AgentRow, CredentialRow, DelegationRow, OrchestratorRow, SecurityEventRow, StatusListRow, WriteOp } from '../domain/store.js'
import type { EventRow } from '../log/entry.js'
import type { CheckpointRow, CosignatureRow } from '../log/store.js'
import type { AuditEventRow, ConsoleAgentFilter } from '../console/queries.js'
import type { ApprovalRequestRow, ApproverRow } from '../approvals/store.js'
import type { WebhookAttempt, WebhookAttemptRow, WebhookEventRow, WebhookListCursor, WebhookNext } from '../webhooks/store.js'

export type { ApprovalRequestRow, ApproverRow }
export type { WebhookAttempt, WebhookAttemptRow, WebhookEventRow, WebhookNext }

export type { AgentFilter, AgentRow, CredentialRow, DelegationRow, OrchestratorRow, SecurityEventRow, StatusListRow, WriteOp }
export type { EventRow, CheckpointRow, CosignatureRow }

/** Which engine a storage runs on. */
export type StorageEngine = 'sqlite' | 'postgres'

/** A run of consecutive status-list indices handed out to one caller: [from, to) of list `listId`. */
export interface StatusIndexBlock { listId: string; from: number; to: number }

/** Veramo's tables (DIDManager / KeyManager / KMS), as rows. */
export interface IdentifierRow { did: string; provider: string; alias: string | null; controller_key_id: string | null; services_json: string }
export interface KeyRow { kid: string; kms: string; type: string; public_key_hex: string; meta_json: string | null }
export interface PrivateKeyRow { alias: string; type: string; ciphertext: Buffer }
/** One SPIFFE CA of a trust domain (`svid/authority.ts`): its sealed P-256 key and self-signed certificate. */
export interface SvidAuthorityRow { id: string; trust_domain: string; key_sealed: Buffer; cert_der: Buffer; not_before: number; not_after: number; created_at: number }

/** What one transaction (or the storage, one statement at a time) can read and write. */
export interface StorageTx {
  readonly orchestrators: {
    insert(row: Omit<OrchestratorRow, 'removed_at'>): Promise<void>
    byKeyHash(hash: string): Promise<OrchestratorRow | undefined>
    byId(id: string): Promise<OrchestratorRow | undefined>
    byName(name: string): Promise<OrchestratorRow | undefined>
    list(): Promise<OrchestratorRow[]>
    /** Disables an orchestrator; false when it was already removed or is unknown. */
    remove(id: string, at: number): Promise<boolean>
    activeAgentCount(id: string): Promise<number>
  }
  readonly agents: {
    insert(row: Omit<AgentRow, 'status' | 'revoked_at' | 'revocation_reason'>): Promise<void>
    get(did: string): Promise<AgentRow | undefined>
    /**
     * Whether agent `did` exists and whether proof nonce `nonce` was used, in one read: a spawn's
     * early refusals before it signs (its commit checks both again, atomically). With `keyHash`, the
     * same read also looks up the active orchestrator of that API key hash (as `byKeyHash`), so a
     * spawn authenticates and checks in one database round trip.
     */
    seen(did: string | null, nonce: string | null, keyHash?: string): Promise<{ agent: boolean; nonce: boolean; orchestrator?: OrchestratorRow | undefined }>
    /** Revokes an active agent; false when it was not active. */
    revoke(did: string, at: number, reason: string): Promise<boolean>
    /** Ordered by (created_at, did), keyset-paged. */
    list(filter: AgentFilter): Promise<AgentRow[]>
  }
  readonly credentials: {
    insert(row: Omit<CredentialRow, 'revoked_at' | 'revocation_reason'>): Promise<void>
    get(id: string): Promise<CredentialRow | undefined>
    byAgent(did: string): Promise<CredentialRow[]>
    activeByAgent(did: string): Promise<CredentialRow[]>
    revoke(id: string, at: number, reason: string): Promise<boolean>
  }
  readonly delegations: {
    insert(row: Omit<DelegationRow, 'revoked_at' | 'revocation_reason'>): Promise<void>
    get(id: string): Promise<DelegationRow | undefined>
    /** Unrevoked links of the subtree rooted at `id` (itself included). */
    activeSubtree(id: string): Promise<DelegationRow[]>
    /** Unrevoked links `did` signed or received, and their descendants. */
    activeOfAgent(did: string): Promise<DelegationRow[]>
    revoke(id: string, at: number, reason: string): Promise<boolean>
  }
  readonly statusLists: {
    get(id: string): Promise<StatusListRow | undefined>
    version(id: string): Promise<number | undefined>
    all(): Promise<Pick<StatusListRow, 'id' | 'version' | 'entries' | 'next_index'>[]>
    /**
     * Hands out up to `count` consecutive unused indices of the open revocation list, creating list
     * `max(id) + 1` of `entries` entries when none has room, and records them as used
     * (`next_index`) before returning: no other caller, in this process or another one on the same
     * database, ever gets them. Runs in its own transaction (not inside `transaction`).
     */
    allocate(count: number, entries: number, at: number): Promise<StatusIndexBlock>
    /** Records indices below `nextIndex` of list `id` as used (never lowers it; a no-op where allocate recorded them). */
    advance(id: string, nextIndex: number): Promise<void>
    /** Sets bit `index` of each entry to 1 (revoked), one version bump per list changed; row-locked. */
    setRevoked(listId: string, indices: readonly number[], at: number): Promise<void>
  }
  readonly nonces: {
    /** Records a proof's jti; false when it was seen before (a replay), in any instance. */
    use(nonce: string, expiresAt: number): Promise<boolean>
    seen(nonce: string): Promise<boolean>
    purge(before: number): Promise<number>
  }
  readonly challenges: {
    insert(nonce: string, expiresAt: number): Promise<void>
    /** Marks a challenge used; false when unknown, expired or already used. */
    use(nonce: string, now: number): Promise<boolean>
    purge(before: number): Promise<number>
  }
  /** The issuer's append-only log of audit events (apps/issuer/src/log). */
  readonly audit: {
    /** Appends one event; its log index is the next one, assigned in this transaction. Returns it. */
    append(at: number, actor: string, action: string, subject: string | null, details?: Record<string, unknown>): Promise<number>
    /** Events with log index in [from, to), in order. */
    range(from: number, to: number): Promise<EventRow[]>
    /** Number of events (the next log index). */
    count(): Promise<number>
    /** Index of the spawn or renewal that issued credential `id`. */
    ofCredential(id: string): Promise<number | undefined>
    /** Index of the latest event `action` about `subject`. */
    last(action: string, subject: string): Promise<number | undefined>
    lastOfCredential(action: string, credentialId: string): Promise<number | undefined>
  }
  /** The log's level-0 tiles, checkpoints and witness cosignatures. */
  readonly logState: {
    tiles(): Promise<{ idx: number; hashes: Buffer }[]>
    /** Stores a level-0 tile; a shorter one than stored is ignored (a tile only grows). */
    putTile(idx: number, hashes: Uint8Array): Promise<void>
    latestCheckpoint(): Promise<CheckpointRow | undefined>
    latestCosigned(size: number, cosigners: number): Promise<CheckpointRow | undefined>
    putCheckpoint(row: CheckpointRow): Promise<void>
    cosignatures(size: number): Promise<CosignatureRow[]>
    putCosignature(row: CosignatureRow): Promise<void>
  }
  /** The event stream's security events (SETs), in sequence order. */
  readonly events: {
    /** Appends one event; returns its sequence number (sequence order is commit order). */
    insert(jti: string, txn: string, at: number, claims: Record<string, unknown>): Promise<number>
    after(seq: number, limit: number): Promise<SecurityEventRow[]>
    head(): Promise<number>
    oldest(): Promise<number | null>
    prune(before: number): Promise<number>
  }
  readonly settings: {
    get(key: string): Promise<string | undefined>
    put(key: string, value: string): Promise<void>
  }
  /**
   * The console sessions' rows as part of a transaction (the rest of them: IssuerStorage.consoleSessions):
   * a replaced admin key ends the admin's sessions in the replacement's transaction, so putting the old
   * key back never brings them back.
   */
  readonly consoleSessionRows: {
    /** Deletes every session of `principal` ('admin' or an orchestrator's id); how many there were. */
    deletePrincipal(principal: string): Promise<number>
  }
  /** Human approvers (src/approvals): their one-time enrolment, passkey and approver credential. */
  readonly approvers: {
    insert(row: Pick<ApproverRow, 'id' | 'name' | 'scope_json' | 'user_json' | 'enrol_hash' | 'enrol_expires_at' | 'created_at'>): Promise<void>
    get(id: string): Promise<ApproverRow | undefined>
    byEnrolHash(hash: string): Promise<ApproverRow | undefined>
    byWebauthnId(id: string): Promise<ApproverRow | undefined>
    /** Ordered by (created_at, id). */
    list(): Promise<ApproverRow[]>
    /** Stores the registration challenge of a pending enrolment; false when it is no longer pending. */
    setChallenge(id: string, challenge: string): Promise<boolean>
    /** Spends the enrolment `enrolHash` of an unrevoked approver, recording the passkey and credential; false when spent or revoked. */
    enrol(id: string, enrolHash: string, e: { webauthnId: string; cose: Uint8Array; alg: number; counter: number; credentialId: string; jwt: string; listId: string; index: number; at: number }): Promise<boolean>
    setCounter(id: string, counter: number): Promise<void>
    /** Revokes an unrevoked approver (and its pending enrolment); false when already revoked or unknown. */
    revoke(id: string, at: number, reason: string): Promise<boolean>
  }
  /** Approval requests: the canonical call, its decision and receipt. */
  readonly approvalRequests: {
    insert(row: Pick<ApprovalRequestRow, 'id' | 'requested_by' | 'agent' | 'controller' | 'call_json' | 'created_at' | 'expires_at'>): Promise<void>
    get(id: string): Promise<ApprovalRequestRow | undefined>
    /** Records the decision of a pending request unexpired at `at`; false when decided or expired meanwhile. */
    decide(id: string, status: 'approved' | 'denied', at: number, approverId: string, receiptJson: string): Promise<boolean>
    /** Newest first (created_at, id), optionally of one status. */
    list(status: string | null, limit: number): Promise<ApprovalRequestRow[]>
  }
  /**
   * The approval webhook's outbox (src/webhooks): events enqueued in the transaction of the approval
   * write that causes them; the sender claims due ones under a lease, one holder at a time across
   * instances, and settles each attempt. Times in unix milliseconds.
   */
  readonly webhooks: {
    enqueue(row: Pick<WebhookEventRow, 'id' | 'type' | 'subject' | 'payload' | 'created_ms' | 'next_ms'>): Promise<void>
    /**
     * Leases up to `limit` pending events due at `nowMs` (and not leased past it) to `owner` until
     * `leaseUntilMs`, oldest due first. Atomic: two senders never hold one event at once (PostgreSQL:
     * FOR UPDATE SKIP LOCKED). On PostgreSQL the lease runs on the database's clock: it lasts
     * `leaseUntilMs - nowMs` from the database's now and is free once the database's now passes it,
     * whatever the callers' clocks say (SQLite: the caller's clock, one process per file).
     */
    claim(owner: string, nowMs: number, leaseUntilMs: number, limit: number): Promise<WebhookEventRow[]>
    /** Records attempt `a` of an event `owner` holds and releases it as `next`; false (nothing written) when the lease was lost. */
    settle(id: string, owner: string, a: WebhookAttempt, next: WebhookNext): Promise<boolean>
    /** When the next pending event may be claimed (ms), or undefined when none is pending. */
    nextDueMs(): Promise<number | undefined>
    get(id: string): Promise<WebhookEventRow | undefined>
    /** The events about `subject` (an approval request), oldest first. */
    bySubject(subject: string): Promise<WebhookEventRow[]>
    attempts(id: string): Promise<WebhookAttemptRow[]>
    /** Newest first (created_ms, id), of one state or all, strictly before `before` (the last row of the previous page). */
    list(state: WebhookEventRow['state'] | null, before: WebhookListCursor | undefined, limit: number): Promise<WebhookEventRow[]>
    /**
     * Makes a delivered or given-up event pending and due at `nowMs` (same id, attempts kept); the row
     * after, or undefined when the event is unknown or still pending (nothing written).
     */
    requeue(id: string, nowMs: number): Promise<WebhookEventRow | undefined>
    /** Deletes delivered and given-up events settled before `beforeMs`, with their attempts. */
    prune(beforeMs: number): Promise<number>
  }
  /** The SPIFFE CAs of the SVID issuer, per trust domain. */
  readonly svidAuthorities: {
    /** The CAs of `trustDomain` whose certificate ends after `now`, oldest first (not_before, id). */
    unexpired(trustDomain: string, now: number): Promise<SvidAuthorityRow[]>
    insert(row: SvidAuthorityRow): Promise<void>
  }
  /** Veramo's DID, key and sealed private-key tables. */
  readonly veramo: {
    upsertIdentifier(row: IdentifierRow, createdAt: number): Promise<void>
    identifier(by: { did: string } | { alias: string }): Promise<IdentifierRow | undefined>
    identifiers(filter: { alias?: string; provider?: string }): Promise<IdentifierRow[]>
    /** Unlinks the identifier's keys and deletes it; false when unknown. */
    deleteIdentifier(did: string): Promise<boolean>
    upsertKey(row: KeyRow, identifierDid: string | null): Promise<void>
    key(kid: string): Promise<KeyRow | undefined>
    keysOf(did: string): Promise<KeyRow[]>
    keys(): Promise<KeyRow[]>
    deleteKey(kid: string): Promise<boolean>
    /** Inserts a sealed private key; false when the alias exists (nothing is overwritten). */
    putPrivateKey(row: PrivateKeyRow): Promise<boolean>
    privateKey(alias: string): Promise<PrivateKeyRow | undefined>
    privateKeys(): Promise<PrivateKeyRow[]>
    deletePrivateKey(alias: string): Promise<boolean>
  }
}

/** Values the console's filters can take (at most 200 each). */
export interface ConsoleFacets { controllers: string[]; purposes: string[]; models: string[]; modelVersions: string[]; policyTiers: string[] }

/**
 * The operator console's read queries (`src/console`), SQL per engine: SQLite's json_extract/json_each,
 * PostgreSQL's jsonb operators and arrays. Read-only, outside transactions. Same order on both
 * engines (text compared byte-wise: COLLATE "C" on PostgreSQL, BINARY on SQLite).
 */
export interface ConsoleReads {
  /** One page of agents, newest first: rows strictly before the cursor (created_at, did). */
  agentPage(f: ConsoleAgentFilter, limit: number, before?: { createdAt: number; did: string }): Promise<AgentRow[]>
  /** Agents matching every filter but status, counted per status. */
  agentCounts(f: ConsoleAgentFilter): Promise<{ active: number; revoked: number }>
  /** Values the filters can take, within one orchestrator's agents when given. */
  facets(orchestratorId?: string): Promise<ConsoleFacets>
  /** Owner, status and purpose of the agents among `dids` that the issuer knows. */
  agentsBrief(dids: readonly string[]): Promise<Pick<AgentRow, 'did' | 'orchestrator_id' | 'status' | 'purpose'>[]>
  /** Links around `did` (the chains it holds, above: 1, and the links below), at most `limit`, by (created_at, id). */
  delegationsAround(did: string, limit: number): Promise<(DelegationRow & { above: 0 | 1 })[]>
  /** Events of `did` and of the links `linkIds`, and registrations of links given to it, newest first, cut at `limit`. */
  eventsOfAgent(did: string, linkIds: readonly string[], limit: number): Promise<AuditEventRow[]>
}

/**
 * One operator console session as stored (`console_sessions`, shared by every instance on the
 * database). Never the session id: its SHA-256. `principal` is `'admin'` or an orchestrator's id;
 * `key_hash` is the hash of the key it signed in with (as `settings` and `orchestrators` store it), so
 * a replaced admin key or a disabled orchestrator ends its sessions on every instance.
 */
export interface ConsoleSessionRow { id_hash: string; principal: string; key_hash: string; csrf: string; created_at: number; last_seen: number }

/** A session as read: its row, and what its principal's key is now. */
export interface ConsoleSessionRead extends ConsoleSessionRow {
  /** The orchestrator's name; null for the admin or an orchestrator the database does not have. */
  orchestrator_name: string | null
  /** The hash of the principal's key now (the admin's, or the orchestrator's while it is not disabled); null: none. */
  current_key_hash: string | null
}

/** What a sign-in also removes, in the same transaction as its insert (bounded work). */
export interface ConsoleSessionLimits {
  /** The principal keeps at most this many sessions; its least recently used others go (last_seen, then created_at). */
  maxPerPrincipal: number
  /** Expired sessions removed, at most `prune` of them: used last at or before `idleBefore`, created at or before `createdBefore`, or stamped after `futureAfter` (a clock moved back). */
  idleBefore: number
  createdBefore: number
  futureAfter: number
  prune: number
  /**
   * The caller's now (unix seconds) the three bounds were computed from. PostgreSQL moves them to the
   * database's clock (bound - now + the database's now), shared by every instance, so an instance whose
   * clock is well ahead (or behind) never prunes sessions that look expired (or future) only to it;
   * SQLite (one process per file) keeps the caller's clock.
   */
  now: number
}

/**
 * The operator console's sessions (`src/console/sessions.ts`), SQL per engine: on SQLite the writes are
 * group-committed jobs of the writer thread, on PostgreSQL single statements. Outside transactions.
 */
export interface ConsoleSessionStore {
  /** Stores a new session, then applies `limits` (the cap and the prune), all in one transaction. */
  insert(row: ConsoleSessionRow, limits: ConsoleSessionLimits): Promise<void>
  get(idHash: string): Promise<ConsoleSessionRead | undefined>
  /** Moves `last_seen` forward to `at` (never back). */
  touch(idHash: string, at: number): Promise<void>
  /** Deletes one session; false when there was none. */
  delete(idHash: string): Promise<boolean>
  /** Deletes every session of `principal` ('admin' or an orchestrator's id). */
  deletePrincipal(principal: string): Promise<void>
}

/** The issuer's storage: a {@link StorageTx} that also opens transactions and group-commits jobs. */
export interface IssuerStorage extends StorageTx {
  readonly engine: StorageEngine
  /** Builders of the ops `commit` accepts. */
  readonly ops: typeof writeOps
  /** The operator console's read queries. */
  readonly console: ConsoleReads
  /** The operator console's sessions. */
  readonly consoleSessions: ConsoleSessionStore
  /**
   * Runs `fn` in one transaction: all of it commits, or none of it (`fn` throws). Resolves after the
   * commit is durable. On SQLite, `fn` must await only the `tx` methods (one writer at a time; the
   * transaction is held across the awaits); on PostgreSQL it runs on its own connection.
   */
  transaction<T>(fn: (tx: StorageTx) => Promise<T>): Promise<T>
  /**
   * Group commit (see `Store.commit`): runs the write ops of one job atomically and resolves once
   * they are durably committed; jobs arriving together share a transaction, each in its own
   * savepoint, so one failing job rolls back alone and rejects with its op's AgentIdError.
   * Resolves with the log indices its audit events were given (`ops.audit`, in op order), so the
   * caller needs no look-up to name them.
   */
  commit(ops: readonly WriteOp[]): Promise<readonly number[]>
  /**
   * Runs `fn` while holding the named cluster-wide lock (PostgreSQL: a session advisory lock on a
   * connection kept for it; SQLite: this process is the only one, so always). Resolves to
   * `undefined` without running `fn` when another instance holds it.
   */
  tryExclusive<T>(name: 'log-sequencer', fn: () => Promise<T>): Promise<T | undefined>
  /**
   * Runs `fn` holding the named cluster-wide lock, waiting for it (PostgreSQL: a session advisory
   * lock; SQLite: one process owns the file, so `fn` just runs): e.g. creating the issuer identity once
   * when several instances start together.
   */
  exclusive<T>(name: 'issuer-init', fn: () => Promise<T>): Promise<T>
  /** Waits for queued commits, then closes the connections. */
  close(): Promise<void>
}
