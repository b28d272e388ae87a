// Storage of human approvals: approvers (with their one-time enrolment and their passkey) and approval
// requests (the canonical call, its decision and receipt). Plain statements on the issuer's database;
// the domain (approvals.ts) wraps what belongs together in one transaction.
import type { Database, Statement } from 'better-sqlite3'

/** The migration that creates these tables (numbered in db/migrations.ts). */
export const APPROVALS_MIGRATION_SQL = `
-- People who may approve calls. enrol_hash: SHA-256 (hex) of the one-time enrolment token, cleared once used.
-- The passkey (WebAuthn credential id, COSE public key) and the approver credential are set at enrolment.
CREATE TABLE approvers (
  id                TEXT PRIMARY KEY,
  name              TEXT NOT NULL,
  scope_json        TEXT NOT NULL,
  user_json         TEXT,
  enrol_hash        TEXT UNIQUE,
  enrol_expires_at  INTEGER NOT NULL,
  reg_challenge     TEXT,
  webauthn_id       TEXT UNIQUE,
  public_key_cose   BLOB,
  alg               INTEGER,
  sign_count        INTEGER NOT NULL DEFAULT 0,
  credential_id     TEXT UNIQUE,
  credential_jwt    TEXT,
  status_list_id    TEXT REFERENCES status_lists (id),
  status_index      INTEGER,
  created_at        INTEGER NOT NULL,
  enrolled_at       INTEGER,
  revoked_at        INTEGER,
  revocation_reason TEXT,
  UNIQUE (status_list_id, status_index)
) STRICT;

-- Calls waiting for (or decided by) a human. call_json is the RFC 8785 canonical call the passkey signs.
CREATE TABLE approval_requests (
  id           TEXT PRIMARY KEY,
  requested_by TEXT NOT NULL,
  agent        TEXT NOT NULL,
  controller   TEXT NOT NULL,
  call_json    TEXT NOT NULL,
  status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied')),
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  decided_at   INTEGER,
  approver_id  TEXT REFERENCES approvers (id),
  receipt_json TEXT
) STRICT;
CREATE INDEX approval_requests_created ON approval_requests (created_at, id);
CREATE INDEX approval_requests_status ON approval_requests (status);
`

export interface ApproverRow {
  id: string; name: string; scope_json: string; user_json: string | null; enrol_hash: string | null; enrol_expires_at: number
  reg_challenge: string | null; webauthn_id: string | null; public_key_cose: Buffer | null; alg: number | null; sign_count: number
  credential_id: string | null; credential_jwt: string | null; status_list_id: string | null; status_index: number | null
  created_at: number; enrolled_at: number | null; revoked_at: number | null; revocation_reason: string | null
}

export interface ApprovalRequestRow {
  id: string; requested_by: string; agent: string; controller: string; call_json: string; status: 'pending' | 'approved' | 'denied'
  created_at: number; expires_at: number; decided_at: number | null; approver_id: string | null; receipt_json: string | null
}

/** Prepared statements over the approval tables. */
export class ApprovalStore {
  private readonly s: Record<string, Statement>

  constructor(readonly db: Database) {
    const p = (sql: string) => db.prepare(sql)
    this.s = {
      approverInsert: p(`INSERT INTO approvers (id, name, scope_json, user_json, enrol_hash, enrol_expires_at, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)`),
      approverGet: p('SELECT * FROM approvers WHERE id = ?'),
      approverByEnrol: p('SELECT * FROM approvers WHERE enrol_hash = ?'),
      approverByWebauthn: p('SELECT * FROM approvers WHERE webauthn_id = ?'),
      approverList: p('SELECT * FROM approvers ORDER BY created_at, id'),
      approverEnrolled: p('SELECT * FROM approvers WHERE enrolled_at IS NOT NULL AND revoked_at IS NULL ORDER BY created_at, id'),
      approverChallenge: p('UPDATE approvers SET reg_challenge = ? WHERE id = ? AND enrol_hash IS NOT NULL'),
      approverEnrol: p(`UPDATE approvers SET enrol_hash = NULL, reg_challenge = NULL, webauthn_id = ?, public_key_cose = ?, alg = ?, sign_count = ?,
        credential_id = ?, credential_jwt = ?, status_list_id = ?, status_index = ?, enrolled_at = ?
        WHERE id = ? AND enrol_hash = ? AND revoked_at IS NULL`),
      approverCounter: p('UPDATE approvers SET sign_count = ? WHERE id = ?'),
      approverRevoke: p('UPDATE approvers SET revoked_at = ?, revocation_reason = ?, enrol_hash = NULL WHERE id = ? AND revoked_at IS NULL'),
      requestInsert: p(`INSERT INTO approval_requests (id, requested_by, agent, controller, call_json, created_at, expires_at)
        VALUES (?, ?, ?, ?, ?, ?, ?)`),
      requestGet: p('SELECT * FROM approval_requests WHERE id = ?'),
      requestDecide: p(`UPDATE approval_requests SET status = ?, decided_at = ?, approver_id = ?, receipt_json = ?
        WHERE id = ? AND status = 'pending' AND expires_at > ?`),
      requestList: p('SELECT * FROM approval_requests WHERE (? IS NULL OR status = ?) ORDER BY created_at DESC, id DESC LIMIT ?'),
    }
  }

  readonly approvers = {
    insert: (r: Pick<ApproverRow, 'id' | 'name' | 'scope_json' | 'user_json' | 'enrol_hash' | 'enrol_expires_at' | 'created_at'>) =>
      void this.s.approverInsert!.run(r.id, r.name, r.scope_json, r.user_json, r.enrol_hash, r.enrol_expires_at, r.created_at),
    get: (id: string) => this.s.approverGet!.get(id) as ApproverRow | undefined,
    byEnrolHash: (hash: string) => this.s.approverByEnrol!.get(hash) as ApproverRow | undefined,
    byWebauthnId: (id: string) => this.s.approverByWebauthn!.get(id) as ApproverRow | undefined,
    list: () => this.s.approverList!.all() as ApproverRow[],
    enrolled: () => this.s.approverEnrolled!.all() as ApproverRow[],
    setChallenge: (id: string, challenge: string) => this.s.approverChallenge!.run(challenge, id).changes > 0,
    enrol: (id: string, enrolHash: string, e: { webauthnId: string; cose: Uint8Array; alg: number; counter: number; credentialId: string; jwt: string; listId: string; index: number; at: number }) =>
      this.s.approverEnrol!.run(e.webauthnId, Buffer.from(e.cose), e.alg, e.counter, e.credentialId, e.jwt, e.listId, e.index, e.at, id, enrolHash).changes > 0,
    setCounter: (id: string, counter: number) => void this.s.approverCounter!.run(counter, id),
    revoke: (id: string, at: number, reason: string) => this.s.approverRevoke!.run(at, reason, id).changes > 0,
  }

  readonly requests = {
    insert: (r: Pick<ApprovalRequestRow, 'id' | 'requested_by' | 'agent' | 'controller' | 'call_json' | 'created_at' | 'expires_at'>) =>
      void this.s.requestInsert!.run(r.id, r.requested_by, r.agent, r.controller, r.call_json, r.created_at, r.expires_at),
    get: (id: string) => this.s.requestGet!.get(id) as ApprovalRequestRow | undefined,
    /** Records the decision of a pending, unexpired request; false when it was decided or expired meanwhile. */
    decide: (id: string, status: 'approved' | 'denied', at: number, approverId: string, receiptJson: string) =>
      this.s.requestDecide!.run(status, at, approverId, receiptJson, id, at).changes > 0,
    list: (status: string | null, limit: number) => this.s.requestList!.all(status, status, limit) as ApprovalRequestRow[],
  }
}
