import type { ClientBase } from 'pg'
import { AgentIdError } from '@agentid/core'

/** One numbered PostgreSQL schema step (this engine's own numbering; SQLite's is db/migrations.ts). */
export interface PgMigration { readonly version: number; readonly name: string; readonly sql: string }

/**
 * Advisory lock keys (pg_advisory_lock(classid, objid)): classid 'agid' in ASCII, one objid per use.
 * migrate: schema steps; log: assigns log indices and security-event sequence numbers in commit
 * order (held until the writing transaction ends); lists: creates status lists; sequencer: the one
 * log sequencer/checkpoint signer among the instances.
 */
export const LOCK_CLASS = 0x61676964
export const LOCK = { migrate: 1, log: 2, lists: 3, sequencer: 4, issuerInit: 5 } as const
/** Advisory lock class 'agcs' (console sessions): objid hashtext(principal), one sign-in of a principal at a time. */
export const SESSION_LOCK_CLASS = 0x61676373

// Version 1 is the schema SQLite reaches at its migration 7 (initial schema, settings, delegations,
// security events, issuer log, approvals, SVID authorities), in PostgreSQL types: times are unix
// seconds (BIGINT), JSON columns UTF-8 JSON text, BLOBs BYTEA.
const PG_1 = `
CREATE TABLE identifiers (
  did               TEXT PRIMARY KEY,
  provider          TEXT NOT NULL,
  alias             TEXT UNIQUE,
  controller_key_id TEXT,
  services_json     TEXT NOT NULL DEFAULT '[]',
  created_at        BIGINT NOT NULL,
  ord               BIGSERIAL
);
CREATE TABLE keys (
  kid            TEXT PRIMARY KEY,
  kms            TEXT NOT NULL,
  type           TEXT NOT NULL,
  public_key_hex TEXT NOT NULL,
  meta_json      TEXT,
  identifier_did TEXT REFERENCES identifiers(did),
  ord            BIGSERIAL
);
CREATE INDEX keys_identifier_did ON keys(identifier_did);
CREATE TABLE private_keys (
  alias      TEXT PRIMARY KEY,
  type       TEXT NOT NULL,
  ciphertext BYTEA NOT NULL,
  ord        BIGSERIAL
);
CREATE TABLE orchestrators (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  key_hash   TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL,
  removed_at BIGINT
);
CREATE TABLE agents (
  did               TEXT PRIMARY KEY,
  orchestrator_id   TEXT NOT NULL REFERENCES orchestrators(id),
  controller        TEXT NOT NULL,
  purpose           TEXT NOT NULL,
  claims_json       TEXT NOT NULL,
  key_custody       TEXT NOT NULL CHECK (key_custody IN ('agent', 'issuer')),
  status            TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
  created_at        BIGINT NOT NULL,
  revoked_at        BIGINT,
  revocation_reason TEXT
);
CREATE INDEX agents_orchestrator_id ON agents(orchestrator_id);
CREATE INDEX agents_status ON agents(status);
CREATE INDEX agents_controller ON agents(controller);
CREATE INDEX agents_purpose ON agents(purpose);
CREATE INDEX agents_created ON agents(created_at, did);
CREATE TABLE status_lists (
  id         TEXT PRIMARY KEY CHECK (id ~ '^[1-9][0-9]{0,8}$'),
  purpose    TEXT NOT NULL,
  entries    BIGINT NOT NULL CHECK (entries > 0),
  next_index BIGINT NOT NULL CHECK (next_index >= 0 AND next_index <= entries),
  bits       BYTEA NOT NULL,
  version    BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE credentials (
  id                TEXT PRIMARY KEY,
  agent_did         TEXT NOT NULL REFERENCES agents(did),
  kind              TEXT NOT NULL CHECK (kind IN ('identity', 'delegation')),
  format            TEXT NOT NULL,
  jwt               TEXT NOT NULL,
  status_list_id    TEXT NOT NULL REFERENCES status_lists(id),
  status_index      BIGINT NOT NULL,
  issued_at         BIGINT NOT NULL,
  expires_at        BIGINT NOT NULL,
  revoked_at        BIGINT,
  revocation_reason TEXT,
  UNIQUE (status_list_id, status_index)
);
CREATE INDEX credentials_agent_did ON credentials(agent_did);
CREATE TABLE proof_nonces (
  nonce      TEXT PRIMARY KEY,
  expires_at BIGINT NOT NULL
);
CREATE INDEX proof_nonces_expires_at ON proof_nonces(expires_at);
CREATE TABLE challenges (
  nonce      TEXT PRIMARY KEY,
  expires_at BIGINT NOT NULL,
  used       SMALLINT NOT NULL DEFAULT 0 CHECK (used IN (0, 1))
);
CREATE INDEX challenges_expires_at ON challenges(expires_at);
-- The issuer log: log_index is assigned by the writing transaction under the 'log' advisory lock
-- (max + 1), so indices are gapless and in commit order.
CREATE TABLE audit_events (
  id           BIGSERIAL PRIMARY KEY,
  at           BIGINT NOT NULL,
  actor        TEXT NOT NULL,
  action       TEXT NOT NULL,
  subject      TEXT,
  details_json TEXT,
  log_index    BIGINT NOT NULL UNIQUE CHECK (log_index >= 0)
);
CREATE INDEX audit_events_at ON audit_events(at);
CREATE INDEX audit_events_subject ON audit_events(subject);
CREATE INDEX audit_events_credential_id ON audit_events (((details_json::jsonb) ->> 'credentialId'));
CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE delegations (
  id                TEXT PRIMARY KEY,
  parent_id         TEXT REFERENCES delegations (id),
  delegator         TEXT NOT NULL,
  delegatee         TEXT NOT NULL,
  status_list_id    TEXT NOT NULL REFERENCES status_lists (id),
  status_index      BIGINT NOT NULL,
  created_at        BIGINT NOT NULL,
  expires_at        BIGINT NOT NULL,
  revoked_at        BIGINT,
  revocation_reason TEXT,
  UNIQUE (status_list_id, status_index)
);
CREATE INDEX delegations_delegator ON delegations (delegator);
CREATE INDEX delegations_delegatee ON delegations (delegatee);
CREATE INDEX delegations_parent ON delegations (parent_id);
-- seq is assigned under the 'log' advisory lock too (max + 1): a reader resuming after seq n never
-- misses an event committed later with a smaller number.
CREATE TABLE security_events (
  seq         BIGINT PRIMARY KEY CHECK (seq > 0),
  jti         TEXT NOT NULL UNIQUE,
  txn         TEXT NOT NULL,
  at          BIGINT NOT NULL,
  claims_json TEXT NOT NULL
);
CREATE TABLE log_tiles (
  level  BIGINT NOT NULL,
  idx    BIGINT NOT NULL,
  hashes BYTEA NOT NULL,
  PRIMARY KEY (level, idx)
);
CREATE TABLE log_checkpoints (
  size       BIGINT PRIMARY KEY,
  note       TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE log_cosignatures (
  size       BIGINT NOT NULL REFERENCES log_checkpoints (size),
  witness    TEXT NOT NULL,
  line       TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (size, witness)
);
CREATE TABLE approvers (
  id                TEXT PRIMARY KEY,
  name              TEXT NOT NULL,
  scope_json        TEXT NOT NULL,
  user_json         TEXT,
  enrol_hash        TEXT UNIQUE,
  enrol_expires_at  BIGINT NOT NULL,
  reg_challenge     TEXT,
  webauthn_id       TEXT UNIQUE,
  public_key_cose   BYTEA,
  alg               BIGINT,
  sign_count        BIGINT NOT NULL DEFAULT 0,
  credential_id     TEXT UNIQUE,
  credential_jwt    TEXT,
  status_list_id    TEXT REFERENCES status_lists (id),
  status_index      BIGINT,
  created_at        BIGINT NOT NULL,
  enrolled_at       BIGINT,
  revoked_at        BIGINT,
  revocation_reason TEXT,
  UNIQUE (status_list_id, status_index)
);
CREATE TABLE approval_requests (
  id           TEXT PRIMARY KEY,
  requested_by TEXT NOT NULL,
  agent        TEXT NOT NULL,
  controller   TEXT NOT NULL,
  call_json    TEXT NOT NULL,
  status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied')),
  created_at   BIGINT NOT NULL,
  expires_at   BIGINT NOT NULL,
  decided_at   BIGINT,
  approver_id  TEXT REFERENCES approvers (id),
  receipt_json TEXT
);
CREATE INDEX approval_requests_created ON approval_requests (created_at, id);
CREATE INDEX approval_requests_status ON approval_requests (status);
CREATE TABLE svid_authorities (
  id           TEXT PRIMARY KEY,
  trust_domain TEXT NOT NULL,
  key_sealed   BYTEA NOT NULL,
  cert_der     BYTEA NOT NULL,
  not_before   BIGINT NOT NULL,
  not_after    BIGINT NOT NULL,
  created_at   BIGINT NOT NULL
);
CREATE INDEX svid_authorities_trust_domain ON svid_authorities (trust_domain, not_after);
`

// The group commit's jobs in one round trip: agentid_run_jobs(jobs jsonb) runs each job (an array of
// ops, as built by writeOps) in its own subtransaction (BEGIN … EXCEPTION), so a failing job rolls
// back alone, and returns one outcome per job: null when committed-to-be, else { i, state, message }
// where i is the failing op, state its SQLSTATE ('AIDNC' no row changed, 'AIDEX' expectation not met).
// The caller holds the 'log' advisory lock (audit indices: max + 1).
const PG_2 = `
CREATE FUNCTION agentid_run_jobs(jobs jsonb) RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
  job jsonb; op jsonb; a jsonb; i int; n bigint; t text; out jsonb := '[]'::jsonb;
BEGIN
  FOR job IN SELECT value FROM jsonb_array_elements(jobs) LOOP
    i := -1;
    BEGIN
      FOR op IN SELECT value FROM jsonb_array_elements(job) LOOP
        i := i + 1;
        a := op->'args';
        CASE op->>'op'
        WHEN 'nonceInsert' THEN
          INSERT INTO proof_nonces (nonce, expires_at) VALUES (a->>0, (a->>1)::bigint);
        WHEN 'challengeUse' THEN
          UPDATE challenges SET used = 1 WHERE nonce = a->>0 AND used = 0 AND expires_at >= (a->>1)::bigint;
          GET DIAGNOSTICS n = ROW_COUNT;
          IF n = 0 AND op ? 'onNoChange' THEN RAISE EXCEPTION 'no change' USING ERRCODE = 'AIDNC'; END IF;
        WHEN 'agentCount' THEN
          SELECT count(*) INTO n FROM agents WHERE did = a->>0;
          IF n <> (op->'expect'->>'equals')::bigint THEN RAISE EXCEPTION 'expectation' USING ERRCODE = 'AIDEX'; END IF;
        WHEN 'agentStatus' THEN
          SELECT status INTO t FROM agents WHERE did = a->>0;
          IF t IS NULL OR t IS DISTINCT FROM op->'expect'->>'equals' THEN RAISE EXCEPTION 'expectation' USING ERRCODE = 'AIDEX'; END IF;
        WHEN 'agentInsert' THEN
          INSERT INTO agents (did, orchestrator_id, controller, purpose, claims_json, key_custody, status, created_at)
            VALUES (a->>0, a->>1, a->>2, a->>3, a->>4, a->>5, 'active', (a->>6)::bigint);
        WHEN 'credInsert' THEN
          INSERT INTO credentials (id, agent_did, kind, format, jwt, status_list_id, status_index, issued_at, expires_at)
            VALUES (a->>0, a->>1, a->>2, a->>3, a->>4, a->>5, (a->>6)::bigint, (a->>7)::bigint, (a->>8)::bigint);
        WHEN 'listAdvance' THEN
          NULL; -- allocate recorded the index
        WHEN 'auditInsert' THEN
          INSERT INTO audit_events (at, actor, action, subject, details_json, log_index)
            VALUES ((a->>0)::bigint, a->>1, a->>2, a->>3, a->>4, (SELECT coalesce(max(log_index), -1) + 1 FROM audit_events));
        WHEN 'delegInsert' THEN
          INSERT INTO delegations (id, parent_id, delegator, delegatee, status_list_id, status_index, created_at, expires_at)
            VALUES (a->>0, a->>1, a->>2, a->>3, a->>4, (a->>5)::bigint, (a->>6)::bigint, (a->>7)::bigint);
        WHEN 'delegRevokedAt' THEN
          -- expects a row whose revoked_at is null
          SELECT count(*) INTO n FROM delegations WHERE id = a->>0 AND revoked_at IS NULL;
          IF n = 0 THEN RAISE EXCEPTION 'expectation' USING ERRCODE = 'AIDEX'; END IF;
        ELSE
          RAISE EXCEPTION 'unknown write op %', op->>'op' USING ERRCODE = 'AIDOP';
        END CASE;
      END LOOP;
      out := out || 'null'::jsonb;
    EXCEPTION WHEN OTHERS THEN
      out := out || jsonb_build_array(jsonb_build_object('i', i, 'state', SQLSTATE, 'message', SQLERRM));
    END;
  END LOOP;
  RETURN out;
END
$fn$;
`

// Insertion order of credentials: issued_at has one-second resolution, so a spawn and its renewal in
// the same second tied and were ordered by their random ids. SQLite breaks the tie with its rowid.
// Added without a default, then given one: no table rewrite (a large table would hold the migration
// lock and outlast the statement timeout); rows from before have no seq and sort first in their second.
const PG_3 = `
CREATE SEQUENCE credentials_seq;
ALTER TABLE credentials ADD COLUMN seq BIGINT;
ALTER TABLE credentials ALTER COLUMN seq SET DEFAULT nextval('credentials_seq');
ALTER SEQUENCE credentials_seq OWNED BY credentials.seq;
`

// The group commit in one round trip and one statement, run outside an explicit transaction: the
// function takes the 'log' advisory lock itself, so the lock is held for the function and its commit
// only (not across round trips that wait for the issuer's event loop: with several instances, every
// other writer waited for them), and it returns each committed job's log indices (of its
// 'auditInsert' ops, in op order), so no look-up follows the commit. A job's outcome: an array of
// log indices when written, else { i, state, message } as agentid_run_jobs (kept for instances of
// the previous build during a rolling upgrade). The single statement commits (durably, at
// synchronous_commit = on) before the server answers Sync, so nothing is acknowledged before then.
const PG_4 = `
CREATE FUNCTION agentid_commit_jobs(jobs jsonb) RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
  job jsonb; op jsonb; a jsonb; i int; n bigint; t text; idx jsonb; out jsonb := '[]'::jsonb;
BEGIN
  PERFORM pg_advisory_xact_lock(${LOCK_CLASS}, ${LOCK.log});
  FOR job IN SELECT value FROM jsonb_array_elements(jobs) LOOP
    i := -1;
    idx := '[]'::jsonb;
    BEGIN
      FOR op IN SELECT value FROM jsonb_array_elements(job) LOOP
        i := i + 1;
        a := op->'args';
        CASE op->>'op'
        WHEN 'nonceInsert' THEN
          INSERT INTO proof_nonces (nonce, expires_at) VALUES (a->>0, (a->>1)::bigint);
        WHEN 'challengeUse' THEN
          UPDATE challenges SET used = 1 WHERE nonce = a->>0 AND used = 0 AND expires_at >= (a->>1)::bigint;
          GET DIAGNOSTICS n = ROW_COUNT;
          IF n = 0 AND op ? 'onNoChange' THEN RAISE EXCEPTION 'no change' USING ERRCODE = 'AIDNC'; END IF;
        WHEN 'agentCount' THEN
          SELECT count(*) INTO n FROM agents WHERE did = a->>0;
          IF n <> (op->'expect'->>'equals')::bigint THEN RAISE EXCEPTION 'expectation' USING ERRCODE = 'AIDEX'; END IF;
        WHEN 'agentStatus' THEN
          SELECT status INTO t FROM agents WHERE did = a->>0;
          IF t IS NULL OR t IS DISTINCT FROM op->'expect'->>'equals' THEN RAISE EXCEPTION 'expectation' USING ERRCODE = 'AIDEX'; END IF;
        WHEN 'agentInsert' THEN
          INSERT INTO agents (did, orchestrator_id, controller, purpose, claims_json, key_custody, status, created_at)
            VALUES (a->>0, a->>1, a->>2, a->>3, a->>4, a->>5, 'active', (a->>6)::bigint);
        WHEN 'credInsert' THEN
          INSERT INTO credentials (id, agent_did, kind, format, jwt, status_list_id, status_index, issued_at, expires_at)
            VALUES (a->>0, a->>1, a->>2, a->>3, a->>4, a->>5, (a->>6)::bigint, (a->>7)::bigint, (a->>8)::bigint);
        WHEN 'listAdvance' THEN
          NULL; -- allocate recorded the index
        WHEN 'auditInsert' THEN
          INSERT INTO audit_events (at, actor, action, subject, details_json, log_index)
            VALUES ((a->>0)::bigint, a->>1, a->>2, a->>3, a->>4, (SELECT coalesce(max(log_index), -1) + 1 FROM audit_events))
            RETURNING log_index INTO n;
          idx := idx || to_jsonb(n);
        WHEN 'delegInsert' THEN
          INSERT INTO delegations (id, parent_id, delegator, delegatee, status_list_id, status_index, created_at, expires_at)
            VALUES (a->>0, a->>1, a->>2, a->>3, a->>4, (a->>5)::bigint, (a->>6)::bigint, (a->>7)::bigint);
        WHEN 'delegRevokedAt' THEN
          SELECT count(*) INTO n FROM delegations WHERE id = a->>0 AND revoked_at IS NULL;
          IF n = 0 THEN RAISE EXCEPTION 'expectation' USING ERRCODE = 'AIDEX'; END IF;
        ELSE
          RAISE EXCEPTION 'unknown write op %', op->>'op' USING ERRCODE = 'AIDOP';
        END CASE;
      END LOOP;
      out := out || jsonb_build_array(idx);
    EXCEPTION WHEN OTHERS THEN
      out := out || jsonb_build_array(jsonb_build_object('i', i, 'state', SQLSTATE, 'message', SQLERRM));
    END;
  END LOOP;
  RETURN out;
END
$fn$;
`

// A spawn job's backend CPU in agentid_commit_jobs (bench/pg-commit-cpu.mjs): audit_events_at goes
// (no query reads audit events by time; SQLite dropped it in its migration 9), the next log index is
// read once per batch instead of by a subquery per audit row (kept in a variable, restored when a
// job rolls back, so indices stay gapless), and jobs and ops are walked by position (job->k, a plain
// expression) instead of a SELECT over jsonb_array_elements (an executor start per job). Same
// signature, outcomes and locking as version 4.
const PG_5 = `
DROP INDEX IF EXISTS audit_events_at;
CREATE OR REPLACE FUNCTION agentid_commit_jobs(jobs jsonb) RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
  job jsonb; op jsonb; a jsonb; i int; n bigint; t text; idx jsonb; out jsonb := '[]'::jsonb;
  nxt bigint; job_nxt bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(${LOCK_CLASS}, ${LOCK.log});
  -- The next log index, read once per batch: every writer of audit_events holds the 'log' lock.
  SELECT coalesce(max(log_index), -1) + 1 INTO nxt FROM audit_events;
  FOR j IN 0 .. jsonb_array_length(jobs) - 1 LOOP
    job := jobs->j;
    i := -1;
    idx := '[]'::jsonb;
    job_nxt := nxt;
    BEGIN
      FOR k IN 0 .. jsonb_array_length(job) - 1 LOOP -- k, not i: a FOR variable is local to its loop
        i := k; -- the failing op's position, for the handler
        op := job->k;
        a := op->'args';
        CASE op->>'op'
        WHEN 'nonceInsert' THEN
          INSERT INTO proof_nonces (nonce, expires_at) VALUES (a->>0, (a->>1)::bigint);
        WHEN 'challengeUse' THEN
          UPDATE challenges SET used = 1 WHERE nonce = a->>0 AND used = 0 AND expires_at >= (a->>1)::bigint;
          GET DIAGNOSTICS n = ROW_COUNT;
          IF n = 0 AND op ? 'onNoChange' THEN RAISE EXCEPTION 'no change' USING ERRCODE = 'AIDNC'; END IF;
        WHEN 'agentCount' THEN
          SELECT count(*) INTO n FROM agents WHERE did = a->>0;
          IF n <> (op->'expect'->>'equals')::bigint THEN RAISE EXCEPTION 'expectation' USING ERRCODE = 'AIDEX'; END IF;
        WHEN 'agentStatus' THEN
          SELECT status INTO t FROM agents WHERE did = a->>0;
          IF t IS NULL OR t IS DISTINCT FROM op->'expect'->>'equals' THEN RAISE EXCEPTION 'expectation' USING ERRCODE = 'AIDEX'; END IF;
        WHEN 'agentInsert' THEN
          INSERT INTO agents (did, orchestrator_id, controller, purpose, claims_json, key_custody, status, created_at)
            VALUES (a->>0, a->>1, a->>2, a->>3, a->>4, a->>5, 'active', (a->>6)::bigint);
        WHEN 'credInsert' THEN
          INSERT INTO credentials (id, agent_did, kind, format, jwt, status_list_id, status_index, issued_at, expires_at)
            VALUES (a->>0, a->>1, a->>2, a->>3, a->>4, a->>5, (a->>6)::bigint, (a->>7)::bigint, (a->>8)::bigint);
        WHEN 'listAdvance' THEN
          NULL; -- allocate recorded the index
        WHEN 'auditInsert' THEN
          INSERT INTO audit_events (at, actor, action, subject, details_json, log_index)
            VALUES ((a->>0)::bigint, a->>1, a->>2, a->>3, a->>4, nxt);
          idx := idx || to_jsonb(nxt);
          nxt := nxt + 1;
        WHEN 'delegInsert' THEN
          INSERT INTO delegations (id, parent_id, delegator, delegatee, status_list_id, status_index, created_at, expires_at)
            VALUES (a->>0, a->>1, a->>2, a->>3, a->>4, (a->>5)::bigint, (a->>6)::bigint, (a->>7)::bigint);
        WHEN 'delegRevokedAt' THEN
          SELECT count(*) INTO n FROM delegations WHERE id = a->>0 AND revoked_at IS NULL;
          IF n = 0 THEN RAISE EXCEPTION 'expectation' USING ERRCODE = 'AIDEX'; END IF;
        ELSE
          RAISE EXCEPTION 'unknown write op %', op->>'op' USING ERRCODE = 'AIDOP';
        END CASE;
      END LOOP;
      out := out || jsonb_build_array(idx);
    EXCEPTION WHEN OTHERS THEN
      nxt := job_nxt; -- variables are not rolled back with the job's subtransaction
      out := out || jsonb_build_array(jsonb_build_object('i', i, 'state', SQLSTATE, 'message', SQLERRM));
    END;
  END LOOP;
  RETURN out;
END
$fn$;
`

// One statement less per spawn job: an 'agentCount' expecting 0 directly followed by the
// 'agentInsert' of the same DID (a spawn's "DID not taken" check) is not run; the insert's primary key
// checks it, and a unique violation on agents_pkey is reported as that count's expectation failing
// (op index and state as before, so the caller's error is the same). Otherwise as version 5.
const PG_6 = `
CREATE OR REPLACE FUNCTION agentid_commit_jobs(jobs jsonb) RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
  job jsonb; op jsonb; a jsonb; i int; n bigint; t text; idx jsonb; out jsonb := '[]'::jsonb;
  nxt bigint; job_nxt bigint; absent_at int; con text;
BEGIN
  PERFORM pg_advisory_xact_lock(${LOCK_CLASS}, ${LOCK.log});
  -- The next log index, read once per batch: every writer of audit_events holds the 'log' lock.
  SELECT coalesce(max(log_index), -1) + 1 INTO nxt FROM audit_events;
  FOR j IN 0 .. jsonb_array_length(jobs) - 1 LOOP
    job := jobs->j;
    i := -1;
    idx := '[]'::jsonb;
    job_nxt := nxt;
    absent_at := NULL;
    BEGIN
      FOR k IN 0 .. jsonb_array_length(job) - 1 LOOP -- k, not i: a FOR variable is local to its loop
        i := k; -- the failing op's position, for the handler
        op := job->k;
        a := op->'args';
        CASE op->>'op'
        WHEN 'nonceInsert' THEN
          INSERT INTO proof_nonces (nonce, expires_at) VALUES (a->>0, (a->>1)::bigint);
        WHEN 'challengeUse' THEN
          UPDATE challenges SET used = 1 WHERE nonce = a->>0 AND used = 0 AND expires_at >= (a->>1)::bigint;
          GET DIAGNOSTICS n = ROW_COUNT;
          IF n = 0 AND op ? 'onNoChange' THEN RAISE EXCEPTION 'no change' USING ERRCODE = 'AIDNC'; END IF;
        WHEN 'agentCount' THEN
          IF op->'expect'->>'equals' = '0' AND job->(k + 1)->>'op' = 'agentInsert' AND job->(k + 1)->'args'->>0 = a->>0 THEN
            absent_at := k; -- the next op's insert checks it: agents_pkey (handler below)
          ELSE
            SELECT count(*) INTO n FROM agents WHERE did = a->>0;
            IF n <> (op->'expect'->>'equals')::bigint THEN RAISE EXCEPTION 'expectation' USING ERRCODE = 'AIDEX'; END IF;
          END IF;
        WHEN 'agentStatus' THEN
          SELECT status INTO t FROM agents WHERE did = a->>0;
          IF t IS NULL OR t IS DISTINCT FROM op->'expect'->>'equals' THEN RAISE EXCEPTION 'expectation' USING ERRCODE = 'AIDEX'; END IF;
        WHEN 'agentInsert' THEN
          INSERT INTO agents (did, orchestrator_id, controller, purpose, claims_json, key_custody, status, created_at)
            VALUES (a->>0, a->>1, a->>2, a->>3, a->>4, a->>5, 'active', (a->>6)::bigint);
        WHEN 'credInsert' THEN
          INSERT INTO credentials (id, agent_did, kind, format, jwt, status_list_id, status_index, issued_at, expires_at)
            VALUES (a->>0, a->>1, a->>2, a->>3, a->>4, a->>5, (a->>6)::bigint, (a->>7)::bigint, (a->>8)::bigint);
        WHEN 'listAdvance' THEN
          NULL; -- allocate recorded the index
        WHEN 'auditInsert' THEN
          INSERT INTO audit_events (at, actor, action, subject, details_json, log_index)
            VALUES ((a->>0)::bigint, a->>1, a->>2, a->>3, a->>4, nxt);
          idx := idx || to_jsonb(nxt);
          nxt := nxt + 1;
        WHEN 'delegInsert' THEN
          INSERT INTO delegations (id, parent_id, delegator, delegatee, status_list_id, status_index, created_at, expires_at)
            VALUES (a->>0, a->>1, a->>2, a->>3, a->>4, (a->>5)::bigint, (a->>6)::bigint, (a->>7)::bigint);
        WHEN 'delegRevokedAt' THEN
          SELECT count(*) INTO n FROM delegations WHERE id = a->>0 AND revoked_at IS NULL;
          IF n = 0 THEN RAISE EXCEPTION 'expectation' USING ERRCODE = 'AIDEX'; END IF;
        ELSE
          RAISE EXCEPTION 'unknown write op %', op->>'op' USING ERRCODE = 'AIDOP';
        END CASE;
      END LOOP;
      out := out || jsonb_build_array(idx);
    EXCEPTION WHEN OTHERS THEN
      nxt := job_nxt; -- variables are not rolled back with the job's subtransaction
      GET STACKED DIAGNOSTICS con = CONSTRAINT_NAME;
      IF SQLSTATE = '23505' AND con = 'agents_pkey' AND absent_at IS NOT NULL AND i = absent_at + 1 THEN
        -- the DID was taken: the count's expectation failed, as if it had read the row
        out := out || jsonb_build_array(jsonb_build_object('i', absent_at, 'state', 'AIDEX', 'message', 'expectation'));
      ELSE
        out := out || jsonb_build_array(jsonb_build_object('i', i, 'state', SQLSTATE, 'message', SQLERRM));
      END IF;
    END;
  END LOOP;
  RETURN out;
END
$fn$;
`

// Operator console sessions, shared by every instance (SQLite's migration 10): the id's SHA-256, never
// the id; principal 'admin' or an orchestrator's id; the hash of the key signed in with.
const PG_7 = `
CREATE TABLE console_sessions (
  id_hash    TEXT PRIMARY KEY,
  principal  TEXT NOT NULL,
  key_hash   TEXT NOT NULL,
  csrf       TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  last_seen  BIGINT NOT NULL
);
CREATE INDEX console_sessions_principal ON console_sessions (principal, last_seen);
CREATE INDEX console_sessions_last_seen ON console_sessions (last_seen);
CREATE INDEX console_sessions_created ON console_sessions (created_at);
`

// The approval webhook's outbox (SQLite's migration 11, webhooks/store.ts): times in unix milliseconds.
// The sender claims due rows with FOR UPDATE SKIP LOCKED and a lease (storage/sql-tx.ts).
const PG_8 = `
CREATE TABLE webhook_outbox (
  id             TEXT PRIMARY KEY,
  type           TEXT NOT NULL,
  subject        TEXT NOT NULL,
  payload        TEXT NOT NULL,
  state          TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
  created_ms     BIGINT NOT NULL,
  next_ms        BIGINT NOT NULL,
  attempts       INTEGER NOT NULL DEFAULT 0,
  lease_owner    TEXT,
  lease_until_ms BIGINT,
  done_ms        BIGINT,
  last_error     TEXT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_ms) WHERE state = 'pending';
CREATE INDEX webhook_outbox_done ON webhook_outbox (done_ms) WHERE state <> 'pending';
CREATE INDEX webhook_outbox_subject ON webhook_outbox (subject);
CREATE TABLE webhook_attempts (
  event_id    TEXT NOT NULL REFERENCES webhook_outbox (id) ON DELETE CASCADE,
  attempt     INTEGER NOT NULL,
  at_ms       BIGINT NOT NULL,
  duration_ms BIGINT NOT NULL,
  status      INTEGER,
  error       TEXT,
  PRIMARY KEY (event_id, attempt)
);
`

// The outbox by creation, for the operators' listing (SQLite's migration 12): ids compared bytewise, as
// the listing orders them (COLLATE "C"), so the index gives the order and the cursor's range.
const PG_9 = `
CREATE INDEX webhook_outbox_created ON webhook_outbox (created_ms, id COLLATE "C");
CREATE INDEX webhook_outbox_state_created ON webhook_outbox (state, created_ms, id COLLATE "C");
`

/**
 * The PostgreSQL schema, in order. Append new steps; never edit a released one.
 * @example
 * PG_MIGRATIONS[PG_MIGRATIONS.length - 1]!.version // the schema version this build expects
 */
export const PG_MIGRATIONS: readonly PgMigration[] = Object.freeze([
  { version: 1, name: 'initial schema (SQLite 1-7)', sql: PG_1 },
  { version: 2, name: 'group commit in one round trip', sql: PG_2 },
  { version: 3, name: 'credentials in insertion order', sql: PG_3 },
  { version: 4, name: 'group commit in one statement, returning log indices', sql: PG_4 },
  { version: 5, name: 'group commit: fewer statements and index entries per job', sql: PG_5 },
  { version: 6, name: 'group commit: a new agent DID checked by its primary key', sql: PG_6 },
  { version: 7, name: 'console sessions', sql: PG_7 },
  { version: 8, name: 'approval webhook outbox', sql: PG_8 },
  { version: 9, name: 'approval webhook outbox by creation', sql: PG_9 },
])

/**
 * Brings a PostgreSQL database to the latest version. The steps applied are rows of
 * `agentid_migrations`; the whole run holds the session advisory lock ('agid', 1), so instances
 * starting together wait for one another and apply each step once; each step commits with its row
 * in one transaction (PostgreSQL DDL is transactional: a crash leaves the previous version). A
 * database newer than this build is refused (ERR_CONFLICT, reason schema_too_new).
 * @example
 * const { from, to } = await migratePg(client) // { from: 0, to: 1 } on an empty database
 */
export async function migratePg(client: ClientBase, migrations: readonly PgMigration[] = PG_MIGRATIONS): Promise<{ from: number; to: number }> {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new TypeError(`migratePg: migration #${i} has version ${m.version}, expected ${i + 1}`)
  })
  await client.query('SELECT pg_advisory_lock($1, $2)', [LOCK_CLASS, LOCK.migrate])
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS agentid_migrations (
      version    INTEGER PRIMARY KEY,
      name       TEXT NOT NULL,
      applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`)
    const from = await pgVersion(client)
    if (from > migrations.length) {
      throw new AgentIdError('ERR_CONFLICT', `database schema version ${from} is newer than this issuer (${migrations.length})`, {
        details: { reason: 'schema_too_new', found: from, expected: migrations.length },
      })
    }
    for (const m of migrations.slice(from)) {
      await client.query('BEGIN')
      try {
        await client.query(m.sql)
        await client.query('INSERT INTO agentid_migrations (version, name) VALUES ($1, $2)', [m.version, m.name])
        await client.query('COMMIT')
      } catch (error) {
        await client.query('ROLLBACK')
        throw error
      }
    }
    return { from, to: await pgVersion(client) }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_CLASS, LOCK.migrate])
  }
}

/** The number of PostgreSQL migrations applied (0 on an empty database). */
export async function pgVersion(client: ClientBase): Promise<number> {
  if ((await client.query<{ t: string | null }>("SELECT to_regclass('agentid_migrations') AS t")).rows[0]?.t == null) return 0
  const r = await client.query<{ n: number | null }>('SELECT max(version) AS n FROM agentid_migrations')
  return r.rows[0]?.n ?? 0
}
