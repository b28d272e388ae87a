import { join } from 'node:path'
import BetterSqlite3 from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openDatabase } from '../src/db/open.js'
import { migrate, MIGRATIONS, SCHEMA_VERSION, userVersion } from '../src/db/migrations.js'
import { expectAgentIdError, tempDir } from './engine-helpers.js'

const TABLES = [
  'agents', 'audit_events', 'challenges', 'credentials', 'identifiers', 'keys', 'orchestrators',
  'private_keys', 'proof_nonces', 'status_lists',
]

describe('openDatabase', () => {
  let dir: string
  let cleanup: () => void
  beforeEach(() => ({ dir, cleanup } = tempDir()))
  afterEach(() => cleanup())

  it('creates every table on a fresh file and records the schema version', () => {
    const db = openDatabase(join(dir, 'issuer.db'))
    try {
      const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").pluck().all()
      expect(tables).toEqual(expect.arrayContaining(TABLES))
      expect(userVersion(db)).toBe(SCHEMA_VERSION)
      expect(SCHEMA_VERSION).toBe(MIGRATIONS.length)
    } finally {
      db.close()
    }
  })

  it('sets WAL, synchronous=FULL, foreign keys and a busy timeout', () => {
    const db = openDatabase(join(dir, 'issuer.db'))
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
      expect(db.pragma('synchronous', { simple: true })).toBe(2) // FULL
      expect(db.pragma('foreign_keys', { simple: true })).toBe(1)
      expect(db.pragma('busy_timeout', { simple: true })).toBe(5000)
    } finally {
      db.close()
    }
  })

  it('is idempotent on reopen and keeps the data', () => {
    const file = join(dir, 'issuer.db')
    const first = openDatabase(file)
    first.prepare("INSERT INTO orchestrators (id, name, key_hash, created_at) VALUES ('o1', 'ops', 'h', 1)").run()
    first.close()
    const second = openDatabase(file)
    try {
      expect(userVersion(second)).toBe(SCHEMA_VERSION)
      expect(migrate(second)).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION })
      expect(second.prepare('SELECT name FROM orchestrators').pluck().all()).toEqual(['ops'])
    } finally {
      second.close()
    }
  })

  it('migration 9 drops the unused audit index by time, on a database made at version 8', () => {
    const db = new BetterSqlite3(join(dir, 'issuer.db'))
    try {
      expect(migrate(db, MIGRATIONS.slice(0, 8))).toEqual({ from: 0, to: 8 })
      db.prepare("INSERT INTO audit_events (at, actor, action, log_index) VALUES (1, 'issuer', 'x', 0)").run()
      const auditIndexes = () => db.prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'audit_events' AND sql IS NOT NULL ORDER BY name").pluck().all()
      expect(auditIndexes()).toContain('audit_events_at')
      expect(migrate(db)).toEqual({ from: 8, to: SCHEMA_VERSION })
      expect(auditIndexes()).toEqual(['audit_events_credential_id', 'audit_events_log_index', 'audit_events_subject'])
      expect(db.prepare('SELECT count(*) FROM audit_events').pluck().get()).toBe(1)
    } finally {
      db.close()
    }
  })

  it('refuses a database written by a newer issuer', async () => {
    const file = join(dir, 'issuer.db')
    const db = openDatabase(file)
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`)
    db.close()
    await expectAgentIdError(() => openDatabase(file), 'ERR_CONFLICT', 'schema_too_new')
  })

  it('enforces foreign keys and CHECK constraints', () => {
    const db = openDatabase(join(dir, 'issuer.db'))
    try {
      const agent = db.prepare(
        "INSERT INTO agents (did, orchestrator_id, controller, purpose, claims_json, key_custody, status, created_at) VALUES ('did:key:z1', ?, 'c', 'p', '{}', ?, 'active', 1)",
      )
      expect(() => agent.run('missing', 'agent')).toThrow(/FOREIGN KEY/)
      db.prepare("INSERT INTO orchestrators (id, name, key_hash, created_at) VALUES ('o1', 'ops', 'h', 1)").run()
      expect(() => agent.run('o1', 'nobody')).toThrow(/CHECK/)
      agent.run('o1', 'issuer')
      db.prepare("INSERT INTO status_lists (id, purpose, entries, next_index, bits, version, updated_at) VALUES ('s1', 'revocation', 8, 0, x'00', 1, 1)").run()
      const credential = db.prepare(
        "INSERT INTO credentials (id, agent_did, kind, format, jwt, status_list_id, status_index, issued_at, expires_at) VALUES (?, 'did:key:z1', 'identity', 'jwt', 'j', 's1', ?, 1, 2)",
      )
      credential.run('c1', 0)
      expect(() => credential.run('c2', 0)).toThrow(/UNIQUE/) // one credential per status slot
    } finally {
      db.close()
    }
  })
})

describe('migrate', () => {
  let dir: string
  let cleanup: () => void
  beforeEach(() => ({ dir, cleanup } = tempDir()))
  afterEach(() => cleanup())

  it('applies each step in one transaction: a failing step leaves the previous version intact', () => {
    const db = openDatabase(join(dir, 'issuer.db'))
    try {
      const broken = [...MIGRATIONS, { version: SCHEMA_VERSION + 1, name: 'broken', sql: 'CREATE TABLE half_done (x INTEGER); SELECT no_such_function();' }]
      expect(() => migrate(db, broken)).toThrow()
      expect(userVersion(db)).toBe(SCHEMA_VERSION)
      expect(db.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'half_done'").pluck().get()).toBe(0)

      const next = [...MIGRATIONS, { version: SCHEMA_VERSION + 1, name: 'next', sql: 'CREATE TABLE next_step (x INTEGER) STRICT;' }]
      expect(migrate(db, next)).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION + 1 })
      expect(migrate(db, next)).toEqual({ from: SCHEMA_VERSION + 1, to: SCHEMA_VERSION + 1 })
    } finally {
      db.close()
    }
  })

  it('refuses numbering with gaps', () => {
    const db = openDatabase(join(dir, 'issuer.db'))
    try {
      expect(() => migrate(db, [{ version: 2, name: 'gap', sql: '' }])).toThrow(TypeError)
    } finally {
      db.close()
    }
  })
})
