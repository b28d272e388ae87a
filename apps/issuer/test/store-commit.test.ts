import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openDatabase, openWriterConnection } from '../src/db/open.js'
import { Store } from '../src/domain/store.js'
import { prepareOps, runBatch } from '../src/db/writer-ops.js'
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
      // Its per-job SAVEPOINT journals stay in memory (2): no temporary file written per batch.
      expect(writer.pragma('temp_store', { simple: true })).toBe(2)
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

  it('advances a status list once per batch, to the largest index among the jobs that committed', async () => {
    const db = openDatabase(join(dir, 'issuer.db'))
    const store = new Store(db)
    try {
      store.statusLists.insert('1', 100, new Uint8Array(13), 1)
      store.statusLists.insert('2', 100, new Uint8Array(13), 1)
      const fail = (code: string) => ({ code, message: code })
      const next = (id: string) => db.prepare('SELECT next_index FROM status_lists WHERE id = ?').pluck().get(id)
      // One turn: one batch. The job that would advance list 1 furthest fails, so its advance is not applied.
      const jobs = [
        store.commit([store.ops.audit(1, 't', 'a', null), store.ops.statusListAdvance('1', 5)]),
        store.commit([store.ops.statusListAdvance('1', 9), store.ops.nonceUse('n', 9, fail('ERR_REPLAY')), store.ops.nonceUse('n', 9, fail('ERR_REPLAY'))]),
        store.commit([store.ops.statusListAdvance('1', 7), store.ops.audit(1, 't', 'b', null)]),
        store.commit([store.ops.statusListAdvance('2', 3)]),
        store.commit([store.ops.statusListAdvance('2', 2)]),
      ]
      expect((await Promise.allSettled(jobs)).map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled'])
      await expectAgentIdError(() => jobs[1]!, 'ERR_REPLAY')
      expect(next('1')).toBe(7)
      expect(next('2')).toBe(3)
      // Never lowered by a later, smaller advance.
      await store.commit([store.ops.statusListAdvance('1', 6)])
      expect(next('1')).toBe(7)
    } finally {
      await store.closeWriter()
      db.close()
    }
  })

  it('runs a deferred advance once per list in a batch', () => {
    const db = openDatabase(join(dir, 'issuer.db'))
    try {
      new Store(db).statusLists.insert('1', 100, new Uint8Array(13), 1)
      const stmts = prepareOps(db, { listAdvance: 'UPDATE status_lists SET next_index = max(next_index, ?) WHERE id = ?' })
      const real = stmts.get('listAdvance')!
      const runs: unknown[][] = []
      stmts.set('listAdvance', { reader: false, run: (...args: unknown[]) => (runs.push(args), real.run(...args)) } as unknown as typeof real)
      const ops = new Store(db).ops
      const outcomes = runBatch(db, stmts, [[ops.statusListAdvance('1', 4)], [ops.statusListAdvance('1', 8)], [ops.statusListAdvance('1', 6)]])
      expect(outcomes.every((o) => o.ok)).toBe(true)
      expect(runs).toEqual([[8, '1']])
      expect(db.prepare("SELECT next_index FROM status_lists WHERE id = '1'").pluck().get()).toBe(8)
    } finally {
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
