// Red team: a write or read made on the storage itself (not on a transaction's `tx`) while another
// caller holds a transaction open across its awaits. On SQLite both share the one connection: the write
// ran inside the other caller's transaction and was undone by its rollback though its caller had been
// told it succeeded, and the read saw writes that were never committed. Both engines must keep them
// apart (PostgreSQL runs them on the pool, outside the transaction's connection).
import { afterEach, describe, expect, it } from 'vitest'
import type { IssuerStorage } from '../src/storage/index.js'
import { pgAbsent, REQUIRE_SERVICES } from './pg-helpers.js'
import { storageEngines } from './storage-engines.js'

const absent = await pgAbsent()
if (absent !== null && !REQUIRE_SERVICES) console.warn(`skipping the PostgreSQL run of apps/issuer/test/storage-tx-isolation.redteam.test.ts: ${absent}`)

/** A transaction that writes with `write`, then waits for `release` and rolls back. */
function heldThenRolledBack(s: IssuerStorage, write: (tx: Parameters<Parameters<IssuerStorage['transaction']>[0]>[0]) => Promise<unknown>) {
  let release!: () => void
  let written!: () => void
  const gate = new Promise<void>((r) => { release = r })
  const inside = new Promise<void>((r) => { written = r })
  const done = s.transaction(async (tx) => {
    await write(tx)
    written()
    await gate
    throw new Error('rolled back on purpose')
  })
  return { inside, release, done: done.then(() => 'committed', (e: Error) => e.message) }
}

describe.each(storageEngines(absent))('storage on $name: writes and reads beside an open transaction', (engine) => {
  const run = engine.name === 'postgres' && absent !== null && !REQUIRE_SERVICES ? it.skip : it
  let s: IssuerStorage | undefined
  let cleanup: (() => Promise<void>) | undefined
  afterEach(async () => {
    await s?.close()
    await cleanup?.()
    s = undefined
    cleanup = undefined
  })
  async function fresh(): Promise<IssuerStorage> {
    const f = await engine.fresh()
    cleanup = f.cleanup
    s = await f.open()
    return s
  }

  run('a settings.put made while another transaction is open survives its rollback', async () => {
    const st = await fresh()
    const held = heldThenRolledBack(st, (tx) => tx.settings.put('inside', 'x'))
    await held.inside
    const put = st.settings.put('outside', 'kept')
    setTimeout(held.release, 50)
    await put
    expect(await held.done).toBe('rolled back on purpose')
    expect(await st.settings.get('outside')).toBe('kept')
    expect(await st.settings.get('inside')).toBeUndefined()
  })

  run('an orchestrator inserted beside an open transaction survives its rollback', async () => {
    const st = await fresh()
    const held = heldThenRolledBack(st, (tx) => tx.audit.append(1, 't', 'held', null))
    await held.inside
    const insert = st.orchestrators.insert({ id: 'orch_x', name: 'x', key_hash: 'hx', created_at: 1 })
    setTimeout(held.release, 50)
    await insert
    expect(await held.done).toBe('rolled back on purpose')
    expect((await st.orchestrators.byKeyHash('hx'))?.id).toBe('orch_x')
  })

  run('a read beside an open transaction never sees its uncommitted writes', async () => {
    const st = await fresh()
    await st.settings.put('admin_key_hash', 'old')
    const held = heldThenRolledBack(st, async (tx) => {
      await tx.settings.put('admin_key_hash', 'never-committed')
      await tx.orchestrators.insert({ id: 'orch_ghost', name: 'ghost', key_hash: 'hg', created_at: 1 })
    })
    await held.inside
    const reads = Promise.all([st.settings.get('admin_key_hash'), st.orchestrators.byKeyHash('hg'), st.consoleSessions.get('none')])
    setTimeout(held.release, 50)
    const [key, ghost] = await reads
    expect(key).toBe('old')
    expect(ghost).toBeUndefined()
    expect(await held.done).toBe('rolled back on purpose')
  })

  run('a transaction that calls the storage itself instead of its tx: SQLite refuses (it would wait for itself), PostgreSQL reads committed state', async () => {
    // A transaction's fn uses its tx. On SQLite a call on the storage waits for the open transaction
    // (the one connection); made from inside it, it would wait for itself, so under AGENTID_STRICT_TX
    // (set by the test suites: no promise hooks in production) it is a TypeError instead of a hang.
    expect(process.env.AGENTID_STRICT_TX).toBe('1')
    const st = await fresh()
    await st.settings.put('k', 'v')
    const got = await Promise.race([
      st.transaction(async (tx) => { await tx.settings.put('k2', 'v2'); return st.settings.get('k') }).catch((e: unknown) => e),
      new Promise((r) => setTimeout(() => r('deadlocked'), 3000)),
    ])
    if (engine.name === 'sqlite') {
      expect(got).toBeInstanceOf(TypeError)
      expect(await st.settings.get('k2')).toBeUndefined() // the transaction rolled back
    } else {
      expect(got).toBe('v')
    }
  })
})

describe('SQLite: a callback made inside one transaction and run during a later one', () => {
  it('is outside the later one: its write survives that one\'s rollback', async () => {
    const [engine] = storageEngines('not used')
    const f = await engine!.fresh()
    const st = await f.open()
    try {
      // A timer set inside the first transaction carries its async context; it fires during the second.
      let fired!: Promise<void>
      const armed = new Promise<void>((armedDone) => {
        void st.transaction(async (tx) => {
          await tx.settings.put('first', '1')
          fired = new Promise<void>((resolve) => setTimeout(() => { void st.settings.put('from-callback', 'kept').then(resolve) }, 40))
          armedDone()
        })
      })
      await armed
      const held = heldThenRolledBack(st, (tx) => tx.settings.put('inside', 'x'))
      await held.inside
      setTimeout(held.release, 120)
      await fired
      expect(await held.done).toBe('rolled back on purpose')
      expect(await st.settings.get('from-callback')).toBe('kept')
    } finally {
      await st.close()
      await f.cleanup()
    }
  })
})
