import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openDatabase, openWriterConnection } from '../src/db/open.js'
import { Store } from '../src/domain/store.js'
import { expectAgentIdError, tempDir } from './engine-helpers.js'

const builtWorker = existsSync(fileURLToPath(new URL('../dist/db/writer-worker.js', import.meta.url)))

describe('Store.commit (group commit)', () => {
  let dir: string
  let cleanup: () => void
  beforeEach(() => ({ dir, cleanup } = tempDir()))
  afterEach(() => cleanup())

  it('opens the writer connection with the same settings (synchronous=FULL)', () => {
    const file = join(dir, 'issuer.db')
    const main = openDatabase(file)
    const writer = openWriterConnection(file)
    try {
      expect(writer.pragma('journal_mode', { simple: true })).toBe('wal')
      expect(writer.pragma('synchronous', { simple: true })).toBe(2)
      expect(writer.pragma('foreign_keys', { simple: true })).toBe(1)
      expect(writer.pragma('busy_timeout', { simple: true })).toBe(5000)
    } finally {
      writer.close()
      main.close()
    }
  })

  it('commits each job alone: a failing job rolls back its own writes and rejects with its code', async () => {
    const db = openDatabase(join(dir, 'issuer.db'))
    const store = new Store(db)
    try {
      store.challenges.insert('fresh', 2_000_000_000)
      const fail = (code: string) => ({ code, message: code })
      const jobs = [
        store.commit([store.ops.nonceUse('a', 9, fail('ERR_REPLAY')), store.ops.audit(1, 't', 'ok', 'a')]),
        store.commit([store.ops.nonceUse('a', 9, fail('ERR_REPLAY')), store.ops.audit(1, 't', 'dup', 'b')]),
        store.commit([store.ops.audit(1, 't', 'unknown-challenge', 'c'), store.ops.challengeUse('nope', 1, fail('ERR_REPLAY'))]),
        store.commit([store.ops.challengeUse('fresh', 1, fail('ERR_REPLAY')), store.ops.audit(1, 't', 'challenge', 'd')]),
        store.commit([store.ops.audit(1, 't', 'revoked', 'e'), store.ops.agentActive('did:key:none', fail('ERR_REVOKED'))]),
        store.commit([store.ops.agentAbsent('did:key:none', fail('ERR_CONFLICT')), store.ops.audit(1, 't', 'absent', 'f')]),
      ]
      const settled = await Promise.allSettled(jobs)
      expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled', 'rejected', 'fulfilled'])
      await expectAgentIdError(() => jobs[1]!, 'ERR_REPLAY')
      await expectAgentIdError(() => jobs[2]!, 'ERR_REPLAY')
      await expectAgentIdError(() => jobs[4]!, 'ERR_REVOKED')
      // Durable and visible to this (reading) connection once resolved.
      expect(db.prepare("SELECT action FROM audit_events WHERE actor = 't' ORDER BY id").pluck().all()).toEqual(['ok', 'challenge', 'absent'])
      expect(db.prepare('SELECT used FROM challenges WHERE nonce = ?').pluck().get('fresh')).toBe(1)
      await expectAgentIdError(() => store.commit([store.ops.challengeUse('fresh', 1, fail('ERR_REPLAY'))]), 'ERR_REPLAY')
      // The batches ran on the writer thread when it is built (else in this thread).
      expect((store as unknown as { writer: unknown }).writer !== null).toBe(builtWorker)
    } finally {
      await store.closeWriter()
      db.close()
    }
  })

  it('rejects other failures with the SqliteError code and drains before closing', async () => {
    const db = openDatabase(join(dir, 'issuer.db'))
    const store = new Store(db)
    try {
      const bad = store.commit([store.ops.credentialInsert({
        id: 'x', agent_did: 'did:key:missing', kind: 'identity', format: 'jwt', jwt: 'j', status_list_id: '1', status_index: 0, issued_at: 1, expires_at: 2,
      })])
      const good = store.commit([store.ops.audit(1, 't', 'ok', null)])
      const closing = store.closeWriter()
      await expect(bad).rejects.toMatchObject({ code: 'SQLITE_CONSTRAINT_FOREIGNKEY' })
      await expect(good).resolves.toEqual([0]) // the log index of its audit event
      await closing
      expect(db.prepare("SELECT count(*) FROM audit_events WHERE actor = 't'").pluck().get()).toBe(1)
    } finally {
      db.close()
    }
  })
})
