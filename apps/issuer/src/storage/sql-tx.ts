// The resource methods of StorageTx over one "run a query" function, in PostgreSQL's dialect
// ($n parameters). Used by the PostgreSQL engine for the pool (one statement, autocommit) and for
// the connection of a transaction.
import { AgentIdError } from '@agentid/core'
import { StatusList } from '@agentid/core'
import type { AgentFilter, AgentRow, ApprovalRequestRow, ApproverRow, WebhookAttemptRow, WebhookEventRow, CredentialRow, DelegationRow, EventRow, IdentifierRow, KeyRow, OrchestratorRow, PrivateKeyRow, SecurityEventRow, StatusIndexBlock, StatusListRow, StorageTx, SvidAuthorityRow } from './types.js'
import type { CheckpointRow, CosignatureRow } from '../log/store.js'
import { LOCK, LOCK_CLASS } from './pg-migrations.js'

export interface QueryResultLike<R> { rows: R[]; rowCount: number | null }
export type Query = <R = Record<string, unknown>>(sql: string, args?: readonly unknown[]) => Promise<QueryResultLike<R>>

/** What a method that must run in a transaction does outside one: opens one. */
export type InTransaction = <T>(fn: (tx: StorageTx) => Promise<T>) => Promise<T>

/** The SQL of the audit append: the caller holds the 'log' advisory lock (taken in an earlier statement). */
export const PG_AUDIT_INSERT = `INSERT INTO audit_events (at, actor, action, subject, details_json, log_index)
  VALUES ($1, $2, $3, $4, $5, (SELECT coalesce(max(log_index), -1) + 1 FROM audit_events)) RETURNING log_index`
export const PG_LOG_LOCK = `SELECT pg_advisory_xact_lock(${LOCK_CLASS}, ${LOCK.log})`

// Every column of CredentialRow (not seq, the insertion order, which only sorts).
const CREDENTIAL_COLUMNS = 'id, agent_did, kind, format, jwt, status_list_id, status_index, issued_at, expires_at, revoked_at, revocation_reason'

/** The database clock's stand-in (unix ms) a test gives, or null: the database's own clock. */
export type DatabaseNow = () => number | null
/** The database's now in unix ms (clock_timestamp()), or the stand-in in parameter `param` when it is not null. */
export const PG_NOW_MS = (param: string) => `coalesce(${param}::bigint, (extract(epoch from clock_timestamp()) * 1000)::bigint)`

const first = async <R>(p: Promise<QueryResultLike<R>>): Promise<R | undefined> => (await p).rows[0]
const changed = async (p: Promise<QueryResultLike<unknown>>): Promise<boolean> => ((await p).rowCount ?? 0) > 0

/**
 * @param q - runs one statement (on the pool, or on the transaction's connection)
 * @param inTx - true on a transaction's connection whose 'log' lock is taken; false: writes that need
 *   the lock open their own transaction through `open`
 * @param dbNowMs - the test's stand-in for the database's clock (PgStorageOptions.databaseClock); null: the database's own
 */
export function pgTx(q: Query, inTx: boolean, open: InTransaction, dbNowMs: DatabaseNow = () => null): StorageTx {
  const tx: StorageTx = {
    orchestrators: {
      insert: async (r) => void (await q('INSERT INTO orchestrators (id, name, key_hash, created_at) VALUES ($1, $2, $3, $4)', [r.id, r.name, r.key_hash, r.created_at])),
      byKeyHash: (hash) => first<OrchestratorRow>(q('SELECT * FROM orchestrators WHERE key_hash = $1 AND removed_at IS NULL', [hash])),
      byId: (id) => first<OrchestratorRow>(q('SELECT * FROM orchestrators WHERE id = $1', [id])),
      byName: (name) => first<OrchestratorRow>(q('SELECT * FROM orchestrators WHERE name = $1', [name])),
      list: async () => (await q<OrchestratorRow>('SELECT * FROM orchestrators ORDER BY created_at, name')).rows,
      remove: (id, at) => changed(q('UPDATE orchestrators SET removed_at = $1 WHERE id = $2 AND removed_at IS NULL', [at, id])),
      activeAgentCount: async (id) => (await first<{ n: number }>(q("SELECT count(*) AS n FROM agents WHERE orchestrator_id = $1 AND status = 'active'", [id])))!.n,
    },
    agents: {
      insert: async (r) => void (await q(`INSERT INTO agents (did, orchestrator_id, controller, purpose, claims_json, key_custody, status, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, 'active', $7)`, [r.did, r.orchestrator_id, r.controller, r.purpose, r.claims_json, r.key_custody, r.created_at])),
      get: (did) => first<AgentRow>(q('SELECT * FROM agents WHERE did = $1', [did])),
      seen: async (did, nonce, keyHash) => {
        if (keyHash === undefined) {
          return (await first<{ agent: boolean; nonce: boolean }>(q(`SELECT EXISTS (SELECT 1 FROM agents WHERE did = $1) AS agent,
            EXISTS (SELECT 1 FROM proof_nonces WHERE nonce = $2) AS nonce`, [did, nonce])))!
        }
        // One row whatever the key: the orchestrator's columns are null when no active one has it.
        const r = (await first<Omit<OrchestratorRow, 'id'> & { id: string | null; agent: boolean; nonce: boolean }>(q(`SELECT EXISTS (SELECT 1 FROM agents WHERE did = $1) AS agent,
          EXISTS (SELECT 1 FROM proof_nonces WHERE nonce = $2) AS nonce, o.id, o.name, o.key_hash, o.created_at, o.removed_at
          FROM (VALUES (1)) AS one LEFT JOIN orchestrators o ON o.key_hash = $3 AND o.removed_at IS NULL`, [did, nonce, keyHash])))!
        const { agent, nonce: used, ...orchestrator } = r
        return { agent, nonce: used, orchestrator: orchestrator.id === null ? undefined : orchestrator as OrchestratorRow }
      },
      revoke: (did, at, reason) => changed(q("UPDATE agents SET status = 'revoked', revoked_at = $1, revocation_reason = $2 WHERE did = $3 AND status = 'active'", [at, reason, did])),
      list: async (f: AgentFilter) => {
        const where: string[] = []
        const args: unknown[] = []
        const arg = (v: unknown) => `$${args.push(v)}`
        if (f.orchestratorId !== undefined) where.push(`orchestrator_id = ${arg(f.orchestratorId)}`)
        if (f.status !== undefined) where.push(`status = ${arg(f.status)}`)
        if (f.controller !== undefined) where.push(`controller = ${arg(f.controller)}`)
        if (f.purpose !== undefined) where.push(`purpose = ${arg(f.purpose)}`)
        // COLLATE "C": the same byte order as SQLite's default BINARY collation.
        if (f.after !== undefined) where.push(`(created_at, did COLLATE "C") > (${arg(f.after.createdAt)}, ${arg(f.after.did)} COLLATE "C")`)
        const sql = `SELECT * FROM agents ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at, did COLLATE "C" LIMIT ${arg(f.limit)}`
        return (await q<AgentRow>(sql, args)).rows
      },
    },
    credentials: {
      insert: async (r) => void (await q(`INSERT INTO credentials (id, agent_did, kind, format, jwt, status_list_id, status_index, issued_at, expires_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, [r.id, r.agent_did, r.kind, r.format, r.jwt, r.status_list_id, r.status_index, r.issued_at, r.expires_at])),
      get: (id) => first<CredentialRow>(q(`SELECT ${CREDENTIAL_COLUMNS} FROM credentials WHERE id = $1`, [id])),
      byAgent: async (did) => (await q<CredentialRow>(`SELECT ${CREDENTIAL_COLUMNS} FROM credentials WHERE agent_did = $1 ORDER BY issued_at, seq NULLS FIRST`, [did])).rows,
      activeByAgent: async (did) => (await q<CredentialRow>(`SELECT ${CREDENTIAL_COLUMNS} FROM credentials WHERE agent_did = $1 AND revoked_at IS NULL ORDER BY issued_at, seq NULLS FIRST`, [did])).rows,
      revoke: (id, at, reason) => changed(q('UPDATE credentials SET revoked_at = $1, revocation_reason = $2 WHERE id = $3 AND revoked_at IS NULL', [at, reason, id])),
    },
    delegations: {
      insert: async (r) => void (await q(`INSERT INTO delegations (id, parent_id, delegator, delegatee, status_list_id, status_index, created_at, expires_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, [r.id, r.parent_id, r.delegator, r.delegatee, r.status_list_id, r.status_index, r.created_at, r.expires_at])),
      get: (id) => first<DelegationRow>(q('SELECT * FROM delegations WHERE id = $1', [id])),
      activeSubtree: async (id) => (await q<DelegationRow>(`WITH RECURSIVE tree(id) AS (SELECT id FROM delegations WHERE id = $1
        UNION SELECT d.id FROM delegations d JOIN tree t ON d.parent_id = t.id)
        SELECT d.* FROM delegations d JOIN tree t ON d.id = t.id WHERE d.revoked_at IS NULL`, [id])).rows,
      activeOfAgent: async (did) => (await q<DelegationRow>(`WITH RECURSIVE tree(id) AS (SELECT id FROM delegations WHERE delegator = $1 OR delegatee = $1
        UNION SELECT d.id FROM delegations d JOIN tree t ON d.parent_id = t.id)
        SELECT d.* FROM delegations d JOIN tree t ON d.id = t.id WHERE d.revoked_at IS NULL`, [did])).rows,
      revoke: (id, at, reason) => changed(q('UPDATE delegations SET revoked_at = $1, revocation_reason = $2 WHERE id = $3 AND revoked_at IS NULL', [at, reason, id])),
    },
    statusLists: {
      get: (id) => first<StatusListRow>(q('SELECT * FROM status_lists WHERE id = $1', [id])),
      version: async (id) => (await first<{ version: number }>(q('SELECT version FROM status_lists WHERE id = $1', [id])))?.version,
      all: async () => (await q<Pick<StatusListRow, 'id' | 'version' | 'entries' | 'next_index'>>('SELECT id, version, entries, next_index FROM status_lists ORDER BY id::bigint')).rows,
      allocate: () => { throw new Error('allocate runs on the storage, in its own transaction') },
      advance: async (id, nextIndex) => void (await q('UPDATE status_lists SET next_index = greatest(next_index, $1) WHERE id = $2', [nextIndex, id])),
      setRevoked: async (listId, indices, at) => {
        // FOR UPDATE: two revocations of one list (in any instance) never overwrite each other's bits.
        const row = await first<{ bits: Buffer }>(q('SELECT bits FROM status_lists WHERE id = $1 FOR UPDATE', [listId]))
        if (!row) throw new AgentIdError('ERR_INTERNAL', `status list ${listId} is missing`)
        const list = StatusList.fromBytes(row.bits)
        for (const i of indices) list.set(i, 1)
        await q('UPDATE status_lists SET bits = $1, version = version + 1, updated_at = $2 WHERE id = $3', [Buffer.from(list.bytes), at, listId])
      },
    },
    nonces: {
      use: (nonce, expiresAt) => changed(q('INSERT INTO proof_nonces (nonce, expires_at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING', [nonce, expiresAt])),
      seen: async (nonce) => (await q('SELECT 1 FROM proof_nonces WHERE nonce = $1', [nonce])).rows.length > 0,
      purge: async (before) => (await q('DELETE FROM proof_nonces WHERE expires_at < $1', [before])).rowCount ?? 0,
    },
    challenges: {
      insert: async (nonce, expiresAt) => void (await q('INSERT INTO challenges (nonce, expires_at) VALUES ($1, $2)', [nonce, expiresAt])),
      use: (nonce, now) => changed(q('UPDATE challenges SET used = 1 WHERE nonce = $1 AND used = 0 AND expires_at >= $2', [nonce, now])),
      purge: async (before) => (await q('DELETE FROM challenges WHERE expires_at < $1', [before])).rowCount ?? 0,
    },
    audit: {
      append: async (at, actor, action, subject, details = {}) => {
        if (!inTx) return open((t) => t.audit.append(at, actor, action, subject, details))
        return (await first<{ log_index: number }>(q(PG_AUDIT_INSERT, [at, actor, action, subject, JSON.stringify(details)])))!.log_index
      },
      range: async (from, to) => (await q<EventRow>('SELECT log_index, at, actor, action, subject, details_json FROM audit_events WHERE log_index >= $1 AND log_index < $2 ORDER BY log_index', [from, to])).rows,
      count: async () => (await first<{ n: number }>(q('SELECT coalesce(max(log_index), -1) + 1 AS n FROM audit_events')))!.n,
      ofCredential: async (id) => (await first<{ log_index: number }>(q(`SELECT log_index FROM audit_events WHERE ((details_json::jsonb) ->> 'credentialId') = $1
        AND action IN ('agent.spawned', 'agent.renewed') ORDER BY log_index LIMIT 1`, [id])))?.log_index,
      last: async (action, subject) => (await first<{ n: number | null }>(q('SELECT max(log_index) AS n FROM audit_events WHERE action = $1 AND subject = $2', [action, subject])))!.n ?? undefined,
      lastOfCredential: async (action, id) => (await first<{ n: number | null }>(q(`SELECT max(log_index) AS n FROM audit_events WHERE action = $1 AND ((details_json::jsonb) ->> 'credentialId') = $2`, [action, id])))!.n ?? undefined,
    },
    logState: {
      tiles: async () => (await q<{ idx: number; hashes: Buffer }>('SELECT idx, hashes FROM log_tiles WHERE level = 0 ORDER BY idx')).rows,
      putTile: async (idx, hashes) => void (await q('INSERT INTO log_tiles (level, idx, hashes) VALUES (0, $1, $2) ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes WHERE length(excluded.hashes) >= length(log_tiles.hashes)', [idx, Buffer.from(hashes)])),
      latestCheckpoint: () => first<CheckpointRow>(q('SELECT * FROM log_checkpoints ORDER BY size DESC LIMIT 1')),
      latestCosigned: (size, cosigners) => first<CheckpointRow>(q(`SELECT c.* FROM log_checkpoints c WHERE c.size >= $1
        AND (SELECT count(*) FROM log_cosignatures s WHERE s.size = c.size) >= $2 ORDER BY c.size DESC LIMIT 1`, [size, cosigners])),
      putCheckpoint: async (r) => void (await q('INSERT INTO log_checkpoints (size, note, created_at) VALUES ($1, $2, $3) ON CONFLICT (size) DO NOTHING', [r.size, r.note, r.created_at])),
      cosignatures: async (size) => (await q<CosignatureRow>('SELECT * FROM log_cosignatures WHERE size = $1 ORDER BY witness COLLATE "C"', [size])).rows,
      putCosignature: async (r) => void (await q('INSERT INTO log_cosignatures (size, witness, line, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (size, witness) DO NOTHING', [r.size, r.witness, r.line, r.created_at])),
    },
    events: {
      insert: async (jti, txn, at, claims) => {
        if (!inTx) return open((t) => t.events.insert(jti, txn, at, claims))
        return (await first<{ seq: number }>(q(`INSERT INTO security_events (seq, jti, txn, at, claims_json)
          VALUES ((SELECT coalesce(max(seq), 0) + 1 FROM security_events), $1, $2, $3, $4) RETURNING seq`, [jti, txn, at, JSON.stringify(claims)])))!.seq
      },
      after: async (seq, limit) => (await q<SecurityEventRow>('SELECT seq, claims_json FROM security_events WHERE seq > $1 ORDER BY seq LIMIT $2', [seq, limit])).rows,
      head: async () => (await first<{ n: number | null }>(q('SELECT max(seq) AS n FROM security_events')))!.n ?? 0,
      oldest: async () => (await first<{ n: number | null }>(q('SELECT min(seq) AS n FROM security_events')))!.n,
      prune: async (before) => (await q('DELETE FROM security_events WHERE at < $1 AND seq < (SELECT max(seq) FROM security_events)', [before])).rowCount ?? 0,
    },
    settings: {
      get: async (key) => (await first<{ value: string }>(q('SELECT value FROM settings WHERE key = $1', [key])))?.value,
      put: async (key, value) => void (await q('INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value])),
    },
    consoleSessionRows: {
      deletePrincipal: async (principal) => (await q('DELETE FROM console_sessions WHERE principal = $1', [principal])).rowCount ?? 0,
    },
    approvers: {
      insert: async (r) => void (await q(`INSERT INTO approvers (id, name, scope_json, user_json, enrol_hash, enrol_expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [r.id, r.name, r.scope_json, r.user_json, r.enrol_hash, r.enrol_expires_at, r.created_at])),
      get: (id) => first<ApproverRow>(q('SELECT * FROM approvers WHERE id = $1', [id])),
      byEnrolHash: (hash) => first<ApproverRow>(q('SELECT * FROM approvers WHERE enrol_hash = $1', [hash])),
      byWebauthnId: (id) => first<ApproverRow>(q('SELECT * FROM approvers WHERE webauthn_id = $1', [id])),
      list: async () => (await q<ApproverRow>('SELECT * FROM approvers ORDER BY created_at, id COLLATE "C"')).rows,
      setChallenge: (id, challenge) => changed(q('UPDATE approvers SET reg_challenge = $1 WHERE id = $2 AND enrol_hash IS NOT NULL', [challenge, id])),
      enrol: (id, enrolHash, e) => changed(q(`UPDATE approvers SET enrol_hash = NULL, reg_challenge = NULL, webauthn_id = $1, public_key_cose = $2, alg = $3, sign_count = $4,
        credential_id = $5, credential_jwt = $6, status_list_id = $7, status_index = $8, enrolled_at = $9
        WHERE id = $10 AND enrol_hash = $11 AND revoked_at IS NULL`, [e.webauthnId, Buffer.from(e.cose), e.alg, e.counter, e.credentialId, e.jwt, e.listId, e.index, e.at, id, enrolHash])),
      setCounter: async (id, counter) => void (await q('UPDATE approvers SET sign_count = $1 WHERE id = $2', [counter, id])),
      revoke: (id, at, reason) => changed(q('UPDATE approvers SET revoked_at = $1, revocation_reason = $2, enrol_hash = NULL WHERE id = $3 AND revoked_at IS NULL', [at, reason, id])),
    },
    approvalRequests: {
      insert: async (r) => void (await q(`INSERT INTO approval_requests (id, requested_by, agent, controller, call_json, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [r.id, r.requested_by, r.agent, r.controller, r.call_json, r.created_at, r.expires_at])),
      get: (id) => first<ApprovalRequestRow>(q('SELECT * FROM approval_requests WHERE id = $1', [id])),
      decide: (id, status, at, approverId, receiptJson) => changed(q(`UPDATE approval_requests SET status = $1, decided_at = $2, approver_id = $3, receipt_json = $4
        WHERE id = $5 AND status = 'pending' AND expires_at > $2`, [status, at, approverId, receiptJson, id])),
      list: async (status, limit) => (await q<ApprovalRequestRow>(`SELECT * FROM approval_requests WHERE ($1::text IS NULL OR status = $1)
        ORDER BY created_at DESC, id COLLATE "C" DESC LIMIT $2`, [status, limit])).rows,
    },
    webhooks: {
      enqueue: async (r) => void (await q('INSERT INTO webhook_outbox (id, type, subject, payload, created_ms, next_ms) VALUES ($1, $2, $3, $4, $5, $6)',
        [r.id, r.type, r.subject, r.payload, r.created_ms, r.next_ms])),
      // SKIP LOCKED: a sender claiming at the same moment passes over the rows this one is taking instead
      // of waiting for them; once this statement commits their lease keeps every other sender off.
      // Leases are set and judged by the database's clock (the lease is a duration it adds to its own
      // now), never the caller's: an instance whose clock ran ahead by more than a lease took over an
      // event another instance was still delivering, and the receiver got it twice at once. Whether an
      // event is due (next_ms, written from the senders' clocks) is still the caller's judgement.
      claim: async (owner, nowMs, leaseUntilMs, limit) => (await q<WebhookEventRow>(`WITH t AS (SELECT ${PG_NOW_MS('$5')} AS now_ms),
        c AS (SELECT id FROM webhook_outbox
          WHERE state = 'pending' AND next_ms <= $3 AND (lease_until_ms IS NULL OR lease_until_ms <= (SELECT now_ms FROM t))
          ORDER BY next_ms, id COLLATE "C" LIMIT $4 FOR UPDATE SKIP LOCKED)
        UPDATE webhook_outbox o SET lease_owner = $1, lease_until_ms = (SELECT now_ms FROM t) + $2::bigint FROM c WHERE o.id = c.id RETURNING o.*`,
      [owner, leaseUntilMs - nowMs, nowMs, limit, dbNowMs()])).rows,
      // One statement: the attempt row is written only when the lease was still this owner's.
      settle: async (id, owner, a, next) => ((await q(`WITH u AS (UPDATE webhook_outbox SET attempts = attempts + 1, state = $1, next_ms = $2, done_ms = $3,
          last_error = $4, lease_owner = NULL, lease_until_ms = NULL WHERE id = $5 AND lease_owner = $6 AND state = 'pending' RETURNING id, attempts)
        INSERT INTO webhook_attempts (event_id, attempt, at_ms, duration_ms, status, error) SELECT id, attempts, $7::bigint, $8::bigint, $9::integer, $4::text FROM u`,
      [next.state, next.state === 'pending' ? next.nextMs : a.atMs, next.state === 'pending' ? null : next.doneMs, a.error, id, owner, a.atMs, a.durationMs, a.status])).rowCount ?? 0) > 0,
      nextDueMs: async () => (await first<{ n: number | null }>(q("SELECT min(greatest(next_ms, coalesce(lease_until_ms, 0))) AS n FROM webhook_outbox WHERE state = 'pending'")))!.n ?? undefined,
      get: (id) => first<WebhookEventRow>(q('SELECT * FROM webhook_outbox WHERE id = $1', [id])),
      bySubject: async (subject) => (await q<WebhookEventRow>('SELECT * FROM webhook_outbox WHERE subject = $1 ORDER BY created_ms, id COLLATE "C"', [subject])).rows,
      attempts: async (id) => (await q<WebhookAttemptRow>('SELECT * FROM webhook_attempts WHERE event_id = $1 ORDER BY attempt', [id])).rows,
      prune: async (beforeMs) => (await q("DELETE FROM webhook_outbox WHERE state <> 'pending' AND done_ms < $1", [beforeMs])).rowCount ?? 0,
      // The listing's shape decides the statement, so each is one range walk down an index (PG_9).
      list: async (state, before, limit) => {
        const where = [...(state === null ? [] : ['state = $2']), ...(before ? [`(created_ms, id COLLATE "C") < ($${state === null ? 2 : 3}::bigint, $${state === null ? 3 : 4}::text)`] : [])]
        const args = [limit, ...(state === null ? [] : [state]), ...(before ? [before.createdMs, before.id] : [])]
        return (await q<WebhookEventRow>(`SELECT * FROM webhook_outbox ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_ms DESC, id COLLATE "C" DESC LIMIT $1`, args)).rows
      },
      requeue: (id, nowMs) => first<WebhookEventRow>(q(`UPDATE webhook_outbox SET state = 'pending', next_ms = $1, done_ms = NULL, lease_owner = NULL, lease_until_ms = NULL
        WHERE id = $2 AND state <> 'pending' RETURNING *`, [nowMs, id])),
    },
    svidAuthorities: {
      unexpired: async (td, now) => (await q<SvidAuthorityRow>('SELECT * FROM svid_authorities WHERE trust_domain = $1 AND not_after > $2 ORDER BY not_before, id COLLATE "C"', [td, now])).rows,
      insert: async (r) => void (await q('INSERT INTO svid_authorities (id, trust_domain, key_sealed, cert_der, not_before, not_after, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)',
        [r.id, r.trust_domain, r.key_sealed, r.cert_der, r.not_before, r.not_after, r.created_at])),
    },
    veramo: {
      upsertIdentifier: async (r, createdAt) => void (await q(`INSERT INTO identifiers (did, provider, alias, controller_key_id, services_json, created_at) VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (did) DO UPDATE SET provider = excluded.provider, alias = excluded.alias, controller_key_id = excluded.controller_key_id, services_json = excluded.services_json`,
      [r.did, r.provider, r.alias, r.controller_key_id, r.services_json, createdAt])),
      identifier: (by) => 'did' in by
        ? first<IdentifierRow>(q('SELECT did, provider, alias, controller_key_id, services_json FROM identifiers WHERE did = $1', [by.did]))
        : first<IdentifierRow>(q('SELECT did, provider, alias, controller_key_id, services_json FROM identifiers WHERE alias = $1', [by.alias])),
      identifiers: async (f) => {
        const where: string[] = []
        const args: unknown[] = []
        if (f.alias !== undefined) where.push(`alias = $${args.push(f.alias)}`)
        if (f.provider !== undefined) where.push(`provider = $${args.push(f.provider)}`)
        return (await q<IdentifierRow>(`SELECT did, provider, alias, controller_key_id, services_json FROM identifiers ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, ord`, args)).rows
      },
      deleteIdentifier: async (did) => {
        if (!inTx) return open((t) => t.veramo.deleteIdentifier(did))
        await q('UPDATE keys SET identifier_did = NULL WHERE identifier_did = $1', [did])
        return changed(q('DELETE FROM identifiers WHERE did = $1', [did]))
      },
      upsertKey: async (r, did) => void (await q(`INSERT INTO keys (kid, kms, type, public_key_hex, meta_json, identifier_did) VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (kid) DO UPDATE SET kms = excluded.kms, type = excluded.type, public_key_hex = excluded.public_key_hex, meta_json = excluded.meta_json,
        identifier_did = coalesce(excluded.identifier_did, keys.identifier_did)`, [r.kid, r.kms, r.type, r.public_key_hex, r.meta_json, did])),
      key: (kid) => first<KeyRow>(q('SELECT kid, kms, type, public_key_hex, meta_json FROM keys WHERE kid = $1', [kid])),
      keysOf: async (did) => (await q<KeyRow>('SELECT kid, kms, type, public_key_hex, meta_json FROM keys WHERE identifier_did = $1 ORDER BY ord', [did])).rows,
      keys: async () => (await q<KeyRow>('SELECT kid, kms, type, public_key_hex, meta_json FROM keys ORDER BY ord')).rows,
      deleteKey: (kid) => changed(q('DELETE FROM keys WHERE kid = $1', [kid])),
      putPrivateKey: (r) => changed(q('INSERT INTO private_keys (alias, type, ciphertext) VALUES ($1, $2, $3) ON CONFLICT (alias) DO NOTHING', [r.alias, r.type, r.ciphertext])),
      privateKey: (alias) => first<PrivateKeyRow>(q('SELECT alias, type, ciphertext FROM private_keys WHERE alias = $1', [alias])),
      privateKeys: async () => (await q<PrivateKeyRow>('SELECT alias, type, ciphertext FROM private_keys ORDER BY ord')).rows,
      deletePrivateKey: (alias) => changed(q('DELETE FROM private_keys WHERE alias = $1', [alias])),
    },
  }
  return tx
}

export type { StatusIndexBlock }
