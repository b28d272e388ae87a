import type { Database } from 'better-sqlite3'
import { AgentIdError } from '@agentid/core'
import { APPROVALS_MIGRATION_SQL } from '../approvals/store.js'
import { WEBHOOKS_LISTING_MIGRATION_SQL, WEBHOOKS_MIGRATION_SQL } from '../webhooks/store.js'

/** One numbered schema step. Applied once, in one transaction, then recorded in `PRAGMA user_version`. */
export interface Migration {
  /** 1, 2, 3, … with no gaps: the schema version after this step. */
  readonly version: number
  readonly name: string
  readonly sql: string
}

// All times are unix seconds (INTEGER). JSON columns hold UTF-8 JSON text.
const MIGRATION_1 = `
-- Veramo stores (DIDManager / KeyManager / KMS), implemented without TypeORM.
CREATE TABLE identifiers (
  did               TEXT PRIMARY KEY,
  provider          TEXT NOT NULL,
  alias             TEXT UNIQUE,
  controller_key_id TEXT,
  services_json     TEXT NOT NULL DEFAULT '[]',
  created_at        INTEGER NOT NULL
) STRICT;

CREATE TABLE keys (
  kid            TEXT PRIMARY KEY,
  kms            TEXT NOT NULL,
  type           TEXT NOT NULL,
  public_key_hex TEXT NOT NULL,
  meta_json      TEXT,
  identifier_did TEXT REFERENCES identifiers(did)
) STRICT;
CREATE INDEX keys_identifier_did ON keys(identifier_did);

-- AES-256-GCM sealed private keys; the alias is the AAD, so a row's ciphertext cannot move to another row.
CREATE TABLE private_keys (
  alias      TEXT PRIMARY KEY,
  type       TEXT NOT NULL,
  ciphertext BLOB NOT NULL
) STRICT;

-- Orchestrators authenticate with API keys; only SHA-256 (hex) of each key is stored.
CREATE TABLE orchestrators (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  key_hash   TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  removed_at INTEGER
) STRICT;

CREATE TABLE agents (
  did               TEXT PRIMARY KEY,
  orchestrator_id   TEXT NOT NULL REFERENCES orchestrators(id),
  controller        TEXT NOT NULL,
  purpose           TEXT NOT NULL,
  claims_json       TEXT NOT NULL,
  key_custody       TEXT NOT NULL CHECK (key_custody IN ('agent', 'issuer')),
  status            TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
  created_at        INTEGER NOT NULL,
  revoked_at        INTEGER,
  revocation_reason TEXT
) STRICT;
CREATE INDEX agents_orchestrator_id ON agents(orchestrator_id);
CREATE INDEX agents_status ON agents(status);
CREATE INDEX agents_controller ON agents(controller);
CREATE INDEX agents_purpose ON agents(purpose);

-- Bitstring status lists: bits is the uncompressed bitstring; version increases on every change (ETag).
CREATE TABLE status_lists (
  id         TEXT PRIMARY KEY,
  purpose    TEXT NOT NULL,
  entries    INTEGER NOT NULL CHECK (entries > 0),
  next_index INTEGER NOT NULL CHECK (next_index >= 0),
  bits       BLOB NOT NULL,
  version    INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE credentials (
  id                TEXT PRIMARY KEY,
  agent_did         TEXT NOT NULL REFERENCES agents(did),
  kind              TEXT NOT NULL CHECK (kind IN ('identity', 'delegation')),
  format            TEXT NOT NULL,
  jwt               TEXT NOT NULL,
  status_list_id    TEXT NOT NULL REFERENCES status_lists(id),
  status_index      INTEGER NOT NULL,
  issued_at         INTEGER NOT NULL,
  expires_at        INTEGER NOT NULL,
  revoked_at        INTEGER,
  revocation_reason TEXT,
  UNIQUE (status_list_id, status_index)
) STRICT;
CREATE INDEX credentials_agent_did ON credentials(agent_did);

-- Replay cache for proofs of possession, and issued challenges.
CREATE TABLE proof_nonces (
  nonce      TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX proof_nonces_expires_at ON proof_nonces(expires_at);

CREATE TABLE challenges (
  nonce      TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL,
  used       INTEGER NOT NULL DEFAULT 0 CHECK (used IN (0, 1))
) STRICT;
CREATE INDEX challenges_expires_at ON challenges(expires_at);

-- Append-only issuer log.
CREATE TABLE audit_events (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  at           INTEGER NOT NULL,
  actor        TEXT NOT NULL,
  action       TEXT NOT NULL,
  subject      TEXT,
  details_json TEXT
) STRICT;
CREATE INDEX audit_events_at ON audit_events(at);
CREATE INDEX audit_events_subject ON audit_events(subject);
`

// Issuer-wide settings (the admin key's hash, …).
const MIGRATION_2 = `
CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
`

// Delegation links the issuer signed (roots) or registered (links signed by agents): `id` is the
// link's jti. Revoking one revokes its descendants (recursive over parent_id) through status bits.
const MIGRATION_3 = `
CREATE TABLE delegations (
  id                TEXT PRIMARY KEY,
  parent_id         TEXT REFERENCES delegations (id),
  delegator         TEXT NOT NULL,
  delegatee         TEXT NOT NULL,
  status_list_id    TEXT NOT NULL REFERENCES status_lists (id),
  status_index      INTEGER NOT NULL,
  created_at        INTEGER NOT NULL,
  expires_at        INTEGER NOT NULL,
  revoked_at        INTEGER,
  revocation_reason TEXT,
  UNIQUE (status_list_id, status_index)
) STRICT;
CREATE INDEX delegations_delegator ON delegations (delegator);
CREATE INDEX delegations_delegatee ON delegations (delegatee);
CREATE INDEX delegations_parent ON delegations (parent_id);
`

// Security Event Tokens (RFC 8417) the issuer publishes on its event stream (GET /v1/events): one row
// per event, written in the transaction of the revocation it reports. `seq` is the stream's durable
// sequence (the SSE event id, resumed with Last-Event-ID); `claims_json` is the SET's claim set, signed
// when served (Ed25519 is deterministic: every instance serves the same bytes for a row).
const MIGRATION_4 = `
CREATE TABLE security_events (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  jti         TEXT NOT NULL UNIQUE,
  txn         TEXT NOT NULL,
  at          INTEGER NOT NULL,
  claims_json TEXT NOT NULL
) STRICT;
`

// The issuer log (C2SP tlog-tiles, RFC 9162): every audit event is a log entry. Its index is assigned
// by the INSERT itself (max + 1, inside the event's transaction), so an acknowledged event is in the
// log exactly once. Existing events are numbered in id order. log_tiles keeps the level-0 tiles (leaf
// hashes) the sequencer has integrated; log_checkpoints the signed checkpoints; log_cosignatures the
// witnesses' cosignature lines per checkpoint.
const MIGRATION_5 = `
ALTER TABLE audit_events ADD COLUMN log_index INTEGER;
UPDATE audit_events SET log_index = r.n
  FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM audit_events) AS r
  WHERE audit_events.id = r.id;
CREATE UNIQUE INDEX audit_events_log_index ON audit_events (log_index);
CREATE INDEX audit_events_credential_id ON audit_events (json_extract(details_json, '$.credentialId'));
CREATE TRIGGER audit_events_logged BEFORE INSERT ON audit_events WHEN NEW.log_index IS NULL
  BEGIN SELECT RAISE(ABORT, 'audit event without a log index'); END;
CREATE TABLE log_tiles (
  level  INTEGER NOT NULL,
  idx    INTEGER NOT NULL,
  hashes BLOB NOT NULL,
  PRIMARY KEY (level, idx)
) STRICT;
CREATE TABLE log_checkpoints (
  size       INTEGER PRIMARY KEY,
  note       TEXT NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;
CREATE TABLE log_cosignatures (
  size       INTEGER NOT NULL REFERENCES log_checkpoints (size),
  witness    TEXT NOT NULL,
  line       TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (size, witness)
) STRICT;
`

// The SPIFFE CAs of the SVIDs (one or two per trust domain: a successor overlaps the old one). The
// P-256 key is PKCS#8 sealed with AES-256-GCM (HKDF info agentid/issuer/svid-ca/v1), AAD 'svid-ca:' || id.
const MIGRATION_7 = `
CREATE TABLE svid_authorities (
  id           TEXT PRIMARY KEY,
  trust_domain TEXT NOT NULL,
  key_sealed   BLOB NOT NULL,
  cert_der     BLOB NOT NULL,
  not_before   INTEGER NOT NULL,
  not_after    INTEGER NOT NULL,
  created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX svid_authorities_trust_domain ON svid_authorities (trust_domain, not_after);
`

// The console and GET /v1/agents page agents in (created_at, did) order: without this index every page
// sorted the whole table (≈ 380 ms per page at 100,000 agents). PostgreSQL's schema has it from its start.
const MIGRATION_8 = `
CREATE INDEX agents_created ON agents (created_at, did);
`

// No query reads audit events by time (the log reads them by log_index, the console by subject, the
// renewal checks by credentialId): the index on `at` cost every audit insert (every spawn) a B-tree
// insert and its page in the WAL for nothing. PostgreSQL's schema keeps its copy (harmless there).
const MIGRATION_9 = `
DROP INDEX IF EXISTS audit_events_at;
`

// Operator console sessions (src/console/sessions.ts), in the database so that a restart keeps them and
// every instance on a shared database knows them. The id is never stored, only its SHA-256 (base64url).
// principal: 'admin' or an orchestrator's id; key_hash: the hash of the key signed in with. Indexed for
// the per-principal cap (least recently used first) and the prune of expired rows.
const MIGRATION_10 = `
CREATE TABLE console_sessions (
  id_hash    TEXT PRIMARY KEY,
  principal  TEXT NOT NULL,
  key_hash   TEXT NOT NULL,
  csrf       TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_seen  INTEGER NOT NULL
) STRICT;
CREATE INDEX console_sessions_principal ON console_sessions (principal, last_seen);
CREATE INDEX console_sessions_last_seen ON console_sessions (last_seen);
CREATE INDEX console_sessions_created ON console_sessions (created_at);
`

/**
 * The issuer's schema, in order. Append new steps; never edit a released one.
 * @example
 * MIGRATIONS[MIGRATIONS.length - 1]!.version // the schema version this build expects
 */
export const MIGRATIONS: readonly Migration[] = Object.freeze([
  { version: 1, name: 'initial schema', sql: MIGRATION_1 },
  { version: 2, name: 'settings', sql: MIGRATION_2 },
  { version: 3, name: 'delegations', sql: MIGRATION_3 },
  { version: 4, name: 'security events', sql: MIGRATION_4 },
  { version: 5, name: 'issuer log', sql: MIGRATION_5 },
  { version: 6, name: 'approvals', sql: APPROVALS_MIGRATION_SQL },
  { version: 7, name: 'svid authorities', sql: MIGRATION_7 },
  { version: 8, name: 'agents by creation', sql: MIGRATION_8 },
  { version: 9, name: 'no audit index by time', sql: MIGRATION_9 },
  { version: 10, name: 'console sessions', sql: MIGRATION_10 },
  { version: 11, name: 'approval webhook outbox', sql: WEBHOOKS_MIGRATION_SQL },
  { version: 12, name: 'approval webhook outbox by creation', sql: WEBHOOKS_LISTING_MIGRATION_SQL },
])

/** The schema version this build writes. */
export const SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]!.version

/**
 * Brings the database to {@link SCHEMA_VERSION}. Each pending step runs in its own `BEGIN IMMEDIATE`
 * transaction together with its `PRAGMA user_version` bump, so a crash leaves the previous version
 * intact and two processes never apply the same step. A database newer than this build is refused
 * (`ERR_CONFLICT`) rather than used with a schema the code does not know.
 * @returns the versions before and after.
 * @example
 * const { from, to } = migrate(db) // { from: 0, to: 1 } on a fresh file
 */
export function migrate(db: Database, migrations: readonly Migration[] = MIGRATIONS): { from: number; to: number } {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new TypeError(`migrate: migration #${i} has version ${m.version}, expected ${i + 1}`)
  })
  const latest = migrations.length
  const from = userVersion(db)
  if (from > latest) {
    throw new AgentIdError('ERR_CONFLICT', `database schema version ${from} is newer than this issuer (${latest})`, {
      details: { reason: 'schema_too_new', found: from, expected: latest },
    })
  }
  for (const m of migrations) {
    db.transaction(() => {
      // Re-read inside the write lock: another process may have applied this step meanwhile.
      if (userVersion(db) >= m.version) return
      db.exec(m.sql)
      db.pragma(`user_version = ${m.version}`)
    }).immediate()
  }
  return { from, to: userVersion(db) }
}

/**
 * `PRAGMA user_version`: the number of migrations applied.
 * @example
 * userVersion(openDatabase(file)) === SCHEMA_VERSION // true
 */
export function userVersion(db: Database): number {
  return db.pragma('user_version', { simple: true }) as number
}
