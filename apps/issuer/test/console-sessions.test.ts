// ConsoleSessions (src/console/sessions.ts) over the issuer's store, one suite on each engine (SQLite
// file, PostgreSQL database): idle and absolute expiry, the per-principal cap (least recently used
// first), lastSeen written at most once per step, a session known to a second storage on the same
// database (a restart, another instance) and ended there, the principal re-read (orchestrator disabled,
// admin key replaced), and hostile rows and cookies: shapes never looked up, ids never issued, stored
// hashes that are not ours, malformed and expired rows, a clock moved back. The PostgreSQL run is
// skipped with its reason when the server is absent, and fails under AGENTID_REQUIRE_SERVICES=1.
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { ConsoleSessions, CLOCK_SKEW_SEC, PRUNE_PER_SIGN_IN, isSessionIdShape, sameSecret } from '../src/console/sessions.js'
import { ensureAdminKey } from '../src/domain/access.js'
import { hashApiKey, newApiKey } from '../src/domain/api-keys.js'
import { PgStorage, SqliteStorage, type ConsoleSessionStore, type IssuerStorage } from '../src/storage/index.js'
import { expectAgentIdError } from './engine-helpers.js'
import { pgAbsent, REQUIRE_SERVICES } from './pg-helpers.js'
import { storageEngines } from './storage-engines.js'

const absent = await pgAbsent()
if (absent !== null && !REQUIRE_SERVICES) console.warn(`skipping the PostgreSQL run of apps/issuer/test/console-sessions.test.ts: ${absent}`)

const T0 = 1_800_000_000_000 // ms
const sha = (id: string) => hashApiKey(id) // any hex SHA-256 will do where only the shape matters
const b64Hash = (id: string) => Buffer.from(hashApiKey(id), 'hex').toString('base64url') // how the store names a session id

/** A statement on either engine (`?` placeholders), as a test's view of the table. */
async function raw(s: IssuerStorage, sql: string, args: unknown[] = []): Promise<Record<string, unknown>[]> {
  if (s instanceof SqliteStorage) {
    const st = s.db.prepare(sql)
    if (st.reader) return st.all(...args) as Record<string, unknown>[]
    st.run(...args)
    return []
  }
  let i = 0
  return (await (s as PgStorage).pool.query(sql.replace(/\?/g, () => `$${++i}`), args)).rows as Record<string, unknown>[]
}
const count = async (s: IssuerStorage, where = '1 = 1', args: unknown[] = []) => Number((await raw(s, `SELECT count(*) AS n FROM console_sessions WHERE ${where}`, args))[0]!.n)

describe('ConsoleSessions without a store', () => {
  const none = {} as ConsoleSessionStore
  it('compares secrets in full', () => {
    expect(sameSecret('abc', 'abc')).toBe(true)
    expect(sameSecret('abc', 'abd')).toBe(false)
    expect(sameSecret('abc', 'abcd')).toBe(false)
    expect(sameSecret('', '')).toBe(false)
  })

  it('refuses timeouts and caps that make no sense', () => {
    expect(() => new ConsoleSessions(none, { idleSec: 0 })).toThrow(TypeError)
    expect(() => new ConsoleSessions(none, { idleSec: 600, maxAgeSec: 60 })).toThrow(TypeError)
    expect(() => new ConsoleSessions(none, { idleSec: 1.5 })).toThrow(TypeError)
    expect(() => new ConsoleSessions(none, { maxPerPrincipal: 0 })).toThrow(TypeError)
    expect(() => new ConsoleSessions(none, { maxPerPrincipal: 2.5 })).toThrow(TypeError)
  })

  it('writes lastSeen every 60 s, or every tenth of a shorter idle timeout', () => {
    expect(new ConsoleSessions(none).touchStepSec).toBe(60)
    expect(new ConsoleSessions(none, { idleSec: 300 }).touchStepSec).toBe(30)
    expect(new ConsoleSessions(none, { idleSec: 10 }).touchStepSec).toBe(1)
  })

  it('never looks up an id of another shape, and refuses a key hash or principal that is not one', async () => {
    const sessions = new ConsoleSessions(none) // any store call would throw: none is made
    for (const bad of [undefined, null, '', 'x'.repeat(42), `${'x'.repeat(43)}=`, `${'x'.repeat(42)} `, `${'x'.repeat(42)}.`, 42, ['a'.repeat(43)], { id: 'a'.repeat(43) }]) {
      await expectAgentIdError(() => sessions.open(bad), 'ERR_UNAUTHENTICATED', 'no_session')
      expect(await sessions.get(bad)).toBeUndefined()
      expect(await sessions.delete(bad)).toBe(false)
    }
    await expect(sessions.create({ kind: 'admin' }, 'not-a-hash')).rejects.toThrow(TypeError)
    await expect(sessions.create({ kind: 'admin' }, sha('k').toUpperCase())).rejects.toThrow(TypeError)
    await expect(sessions.create({ kind: 'cli' } as never, sha('k'))).rejects.toThrow(TypeError)
    await expect(sessions.create({ kind: 'orchestrator', id: 'admin', name: 'x' }, sha('k'))).rejects.toThrow(TypeError)
    await expect(sessions.endOrchestrator('admin')).rejects.toThrow(TypeError)
    await expect(sessions.endOrchestrator('')).rejects.toThrow(TypeError)
  })
})

describe.each(storageEngines(absent))('ConsoleSessions on $name', (engine) => {
  const run = engine.name === 'postgres' && absent !== null && !REQUIRE_SERVICES ? it.skip : it
  let opened: IssuerStorage[] = []
  let cleanup: (() => Promise<void>) | undefined

  afterEach(async () => {
    for (const s of opened.reverse()) await s.close()
    opened = []
    await cleanup?.()
    cleanup = undefined
  })

  const adminKey = newApiKey('admin')
  const acmeKey = newApiKey('orch')
  const globexKey = newApiKey('orch')
  const acme = { kind: 'orchestrator' as const, id: 'orch_acme', name: 'acme' }
  const globex = { kind: 'orchestrator' as const, id: 'orch_globex', name: 'globex' }

  /** A fresh database with the admin key and two orchestrators, and a way to open it again. */
  async function setup(): Promise<{ storage: IssuerStorage; reopen: () => Promise<IssuerStorage>; clock: { now: number } }> {
    const f = await engine.fresh()
    cleanup = f.cleanup
    // PostgreSQL judges expiry in a sign-in's prune by the database's clock: here, the test's clock.
    const clock = { now: T0 }
    const reopen = async () => {
      const s = await f.open({ databaseClock: () => clock.now })
      opened.push(s)
      return s
    }
    const storage = await reopen()
    await storage.settings.put('admin_key_hash', hashApiKey(adminKey))
    await storage.orchestrators.insert({ id: acme.id, name: acme.name, key_hash: hashApiKey(acmeKey), created_at: 1 })
    await storage.orchestrators.insert({ id: globex.id, name: globex.name, key_hash: hashApiKey(globexKey), created_at: 1 })
    return { storage, reopen, clock }
  }
  const make = (storage: IssuerStorage, clock: { now: number }, o: { idleSec?: number; maxAgeSec?: number; maxPerPrincipal?: number } = {}) =>
    new ConsoleSessions(storage.consoleSessions, { ...o, clock: () => clock.now })

  run('ends a session idle too long, and any session past its absolute lifetime however active', async () => {
    const { storage, clock } = await setup()
    const sessions = make(storage, clock, { idleSec: 60, maxAgeSec: 300 })
    const { id } = await sessions.create({ kind: 'admin' }, hashApiKey(adminKey))
    for (let i = 0; i < 5; i++) {
      clock.now += 59_000
      expect(await sessions.get(id)).toBeDefined()
      expect(sessions.expiresIn((await sessions.get(id))!)).toBe(Math.min(60, 300 - 59 * (i + 1)))
    }
    clock.now += 6_000 // 301 s after creation, 6 s after the last use
    await expectAgentIdError(() => sessions.open(id), 'ERR_UNAUTHENTICATED', 'expired')
    const idle = await sessions.create({ kind: 'admin' }, hashApiKey(adminKey))
    clock.now += 60_000
    await expectAgentIdError(() => sessions.open(idle.id), 'ERR_UNAUTHENTICATED', 'expired')
    expect(await count(storage)).toBe(0) // refused rows are deleted
  })

  run('keeps at most maxPerPrincipal sessions per principal, dropping its least recently used; others keep theirs', async () => {
    const { storage, clock } = await setup()
    const sessions = make(storage, clock, { maxPerPrincipal: 3 })
    const made = []
    for (let i = 0; i < 3; i++) {
      made.push(await sessions.create({ kind: 'admin' }, hashApiKey(adminKey)))
      clock.now += 61_000 // one touch step apart, so least recently used is well defined
    }
    const [a, b, c] = made as [typeof made[0], typeof made[0], typeof made[0]]
    const theirs = [await sessions.create(acme, hashApiKey(acmeKey)), await sessions.create(acme, hashApiKey(acmeKey)), await sessions.create(acme, hashApiKey(acmeKey))]
    expect(await sessions.get(a.id)).toBeDefined() // a is now the most recent (written: it moved by more than a step)
    clock.now += 1_000
    const d = await sessions.create({ kind: 'admin' }, hashApiKey(adminKey))
    expect(await count(storage, 'principal = ?', ['admin'])).toBe(3)
    expect(await sessions.get(b.id)).toBeUndefined()
    for (const s of [a, c, d, ...theirs]) expect(await sessions.get(s.id)).toBeDefined()
    // Many sign-ins in one second: still the cap, and the newest always kept.
    for (let i = 0; i < 5; i++) {
      const e = await sessions.create({ kind: 'admin' }, hashApiKey(adminKey))
      expect(await sessions.get(e.id)).toBeDefined()
    }
    expect(await count(storage, 'principal = ?', ['admin'])).toBe(3)
    expect(await count(storage, 'principal = ?', [acme.id])).toBe(3)
  })

  // Red team: the cap ranked every row of the principal by last_seen, dead ones too, so a session past its
  // absolute lifetime but used lately, or one stamped ahead by an instance whose clock is fast, kept its
  // place and the principal's live session was evicted instead.
  run('the cap never evicts a live session to keep a dead one (past its lifetime, or stamped in the future)', async () => {
    const { storage, clock } = await setup()
    const sessions = make(storage, clock, { idleSec: 900, maxAgeSec: 3600, maxPerPrincipal: 2 })
    const old = await sessions.create({ kind: 'admin' }, hashApiKey(adminKey))
    let live: Awaited<ReturnType<typeof sessions.create>> | undefined
    for (const sec of [800, 1600, 2400, 3000, 3590]) {
      clock.now = T0 + sec * 1000
      expect(await sessions.get(old.id)).toBeDefined() // in use throughout: at 3590 its last_seen is the newest
      if (sec === 3000) live = await sessions.create({ kind: 'admin' }, hashApiKey(adminKey))
    }
    clock.now = T0 + 3650_000 // old is past its 3600 s lifetime; live was used 650 s ago (idle 900 s)
    const next = await sessions.create({ kind: 'admin' }, hashApiKey(adminKey))
    expect(await sessions.get(live!.id)).toBeDefined()
    expect(await sessions.get(next.id)).toBeDefined()
    expect(await sessions.get(old.id)).toBeUndefined()

    // A sign-in on an instance whose clock is a minute fast (past the skew tolerated), then one on this one.
    clock.now += 60_000
    const ahead = await sessions.create({ kind: 'admin' }, hashApiKey(adminKey))
    clock.now -= 60_000
    const after = await sessions.create({ kind: 'admin' }, hashApiKey(adminKey))
    for (const s of [next, after]) expect(await sessions.get(s.id)).toBeDefined()
    await expectAgentIdError(() => sessions.open(ahead.id), 'ERR_UNAUTHENTICATED', 'no_session') // dead here: ranked last, then pruned
  })

  run('sign-ins of one principal racing on two storages keep the cap exactly', async () => {
    const { storage: a, reopen, clock } = await setup()
    const b = engine.name === 'postgres' ? await reopen() : a // SQLite: one storage per file per process
    const [onA, onB] = [make(a, clock, { maxPerPrincipal: 3 }), make(b, clock, { maxPerPrincipal: 3 })]
    await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? onA : onB).create({ kind: 'admin' }, hashApiKey(adminKey))))
    // SQLite: one writer, each job sees the previous one's rows; PostgreSQL: the principal's advisory
    // lock (without it, 10 racers left 4 to 7 rows here).
    expect(await count(a)).toBe(3)
    clock.now += 1_000
    const last = await onA.create({ kind: 'admin' }, hashApiKey(adminKey))
    expect(await count(a)).toBe(3)
    expect(await onB.get(last.id)).toBeDefined()
  })

  run('gives each session its own random id and CSRF token; stores only the id\'s SHA-256; logout and disabling delete', async () => {
    const { storage, clock } = await setup()
    const sessions = make(storage, clock)
    const x = await sessions.create(acme, hashApiKey(acmeKey))
    const y = await sessions.create({ kind: 'admin' }, hashApiKey(adminKey))
    expect(isSessionIdShape(x.id)).toBe(true)
    expect(x.id).not.toBe(y.id)
    expect(x.session.csrf).not.toBe(y.session.csrf)
    expect(x.session.csrf).not.toBe(x.id)
    const rows = await raw(storage, 'SELECT * FROM console_sessions ORDER BY principal')
    expect(rows.map((r) => r.id_hash).sort()).toEqual([b64Hash(x.id), b64Hash(y.id)].sort())
    expect(JSON.stringify(rows)).not.toContain(x.id)
    expect(JSON.stringify(rows)).not.toContain(y.id)
    expect(await sessions.open(x.id)).toEqual({ principal: acme, csrf: x.session.csrf, createdAt: T0 / 1000, lastSeen: T0 / 1000 })
    await sessions.endOrchestrator(acme.id)
    await expectAgentIdError(() => sessions.open(x.id), 'ERR_UNAUTHENTICATED', 'no_session')
    expect(await sessions.get(y.id)).toBeDefined()
    expect(await sessions.delete(y.id)).toBe(true)
    expect(await sessions.delete(y.id)).toBe(false)
    expect(await count(storage)).toBe(0)
  })

  run('writes lastSeen only when it moved by more than the step; the session ends between idle - step and idle after its last request', async () => {
    const { storage, clock } = await setup()
    const sessions = make(storage, clock, { idleSec: 600 })
    const { id } = await sessions.create({ kind: 'admin' }, hashApiKey(adminKey))
    const stored = async () => Number((await raw(storage, 'SELECT last_seen FROM console_sessions'))[0]!.last_seen)
    const t0 = T0 / 1000
    for (const dt of [1, 30, 60]) {
      clock.now = T0 + dt * 1000
      expect((await sessions.open(id)).lastSeen).toBe(t0)
      expect(await stored()).toBe(t0) // no write
    }
    clock.now = T0 + 61_000
    expect((await sessions.open(id)).lastSeen).toBe(t0 + 61)
    expect(await stored()).toBe(t0 + 61)
    // Last request at t0 + 120, 59 s after the stored time: not written. The session ends at t0 + 61 + 600,
    // 541 s (idle - 59) after that request: sooner than idle by less than a step, never later.
    clock.now = T0 + 120_000
    expect(sessions.expiresIn(await sessions.open(id))).toBe(541)
    expect(await stored()).toBe(t0 + 61)
    clock.now = T0 + 661_000
    await expectAgentIdError(() => sessions.open(id), 'ERR_UNAUTHENTICATED', 'expired')
  })

  run('a second storage on the same database (a restart, another instance) knows the session; logout and disabling on one end it on the other', async () => {
    const { storage: a, reopen, clock } = await setup()
    const onA = make(a, clock)
    const first = await onA.create({ kind: 'admin' }, hashApiKey(adminKey))
    const orch = await onA.create(globex, hashApiKey(globexKey))
    let b: IssuerStorage
    if (engine.name === 'sqlite') {
      // One storage per file per process: the restart closes it first.
      await a.close()
      opened = opened.filter((s) => s !== a)
      b = await reopen()
    } else {
      b = await reopen()
    }
    const onB = make(b, clock)
    expect((await onB.open(first.id)).csrf).toBe(first.session.csrf)
    expect((await onB.open(orch.id)).principal).toEqual(globex)
    if (engine.name === 'postgres') {
      expect(await onB.delete(first.id)).toBe(true)
      await expectAgentIdError(() => onA.open(first.id), 'ERR_UNAUTHENTICATED', 'no_session')
      await a.orchestrators.remove(globex.id, T0 / 1000)
      await expectAgentIdError(() => onB.open(orch.id), 'ERR_UNAUTHENTICATED', 'principal_disabled')
      await expectAgentIdError(() => onA.open(orch.id), 'ERR_UNAUTHENTICATED', 'no_session')
    }
  })

  run('re-reads the principal: a disabled orchestrator\'s sessions all end, a replaced admin key ends the admin\'s, a renamed orchestrator shows its name', async () => {
    const { storage, clock } = await setup()
    const sessions = make(storage, clock)
    const [o1, o2] = [await sessions.create(acme, hashApiKey(acmeKey)), await sessions.create(acme, hashApiKey(acmeKey))]
    const other = await sessions.create(globex, hashApiKey(globexKey))
    const admin = await sessions.create({ kind: 'admin' }, hashApiKey(adminKey))
    await raw(storage, 'UPDATE orchestrators SET name = ? WHERE id = ?', ['acme-renamed', acme.id])
    expect((await sessions.open(o1.id)).principal).toEqual({ ...acme, name: 'acme-renamed' })
    await storage.orchestrators.remove(acme.id, T0 / 1000)
    await expectAgentIdError(() => sessions.open(o1.id), 'ERR_UNAUTHENTICATED', 'principal_disabled')
    expect(await count(storage, 'principal = ?', [acme.id])).toBe(0) // o2 went with it
    await expectAgentIdError(() => sessions.open(o2.id), 'ERR_UNAUTHENTICATED', 'no_session')
    expect(await sessions.get(other.id)).toBeDefined()
    await storage.settings.put('admin_key_hash', hashApiKey(newApiKey('admin')))
    await expectAgentIdError(() => sessions.open(admin.id), 'ERR_UNAUTHENTICATED', 'key_replaced')
    expect(await count(storage, 'principal = ?', ['admin'])).toBe(0)
  })

  run('rotating the admin key away and back never brings back a session made with the old key (red team)', async () => {
    const { storage, clock } = await setup()
    const sessions = make(storage, clock)
    const deps = { storage, now: () => Math.floor(clock.now / 1000) }
    await ensureAdminKey(deps, adminKey) // the key already stored: nothing written, the session stays
    const admin = await sessions.create({ kind: 'admin' }, hashApiKey(adminKey))
    const orch = await sessions.create(acme, hashApiKey(acmeKey))
    await ensureAdminKey(deps, newApiKey('admin')) // replaced (no console request in between: the row was never refused)
    await ensureAdminKey(deps, adminKey) // and put back
    await expectAgentIdError(() => sessions.open(admin.id), 'ERR_UNAUTHENTICATED', 'no_session')
    expect(await count(storage, 'principal = ?', ['admin'])).toBe(0)
    expect(await sessions.get(orch.id)).toBeDefined() // an orchestrator's sessions are not the admin key's
    expect((await sessions.open((await sessions.create({ kind: 'admin' }, hashApiKey(adminKey))).id)).principal).toEqual({ kind: 'admin' })
  })

  run('refuses rows it did not make: an id never issued, a stored hash that is not ours, another key, a malformed row, an unknown orchestrator', async () => {
    const { storage, clock } = await setup()
    const sessions = make(storage, clock)
    const t = T0 / 1000
    const csrf = randomBytes(32).toString('base64url')
    const insert = (idHash: string, principal: string, keyHash: string, c = csrf, created = t, seen = t) =>
      raw(storage, 'INSERT INTO console_sessions (id_hash, principal, key_hash, csrf, created_at, last_seen) VALUES (?, ?, ?, ?, ?, ?)', [idHash, principal, keyHash, c, created, seen])
    const id = () => randomBytes(32).toString('base64url')
    // The right shape, never issued.
    await expectAgentIdError(() => sessions.open(id()), 'ERR_UNAUTHENTICATED', 'no_session')
    // The id stored as is (not its hash), and a hash of another encoding: the cookie does not find them.
    const plain = id()
    await insert(plain, 'admin', hashApiKey(adminKey))
    await expectAgentIdError(() => sessions.open(plain), 'ERR_UNAUTHENTICATED', 'no_session')
    const hex = id()
    await insert(hashApiKey(hex), 'admin', hashApiKey(adminKey))
    await expectAgentIdError(() => sessions.open(hex), 'ERR_UNAUTHENTICATED', 'no_session')
    // A row of the admin made with another key (a key hash that is not the admin's): refused, deleted.
    const forged = id()
    await insert(b64Hash(forged), 'admin', sha('another admin key'))
    await expectAgentIdError(() => sessions.open(forged), 'ERR_UNAUTHENTICATED', 'key_replaced')
    // An orchestrator's session with another orchestrator's key.
    const crossed = id()
    await insert(b64Hash(crossed), acme.id, hashApiKey(globexKey))
    await expectAgentIdError(() => sessions.open(crossed), 'ERR_UNAUTHENTICATED', 'key_replaced')
    // An orchestrator that does not exist.
    const ghost = id()
    await insert(b64Hash(ghost), 'orch_ghost', hashApiKey(acmeKey))
    await expectAgentIdError(() => sessions.open(ghost), 'ERR_UNAUTHENTICATED', 'principal_disabled')
    // Malformed: a CSRF token of another shape, last use before creation.
    const badCsrf = id()
    await insert(b64Hash(badCsrf), 'admin', hashApiKey(adminKey), 'short')
    await expectAgentIdError(() => sessions.open(badCsrf), 'ERR_UNAUTHENTICATED', 'malformed')
    const backwards = id()
    await insert(b64Hash(backwards), 'admin', hashApiKey(adminKey), csrf, t, t - 10)
    await expectAgentIdError(() => sessions.open(backwards), 'ERR_UNAUTHENTICATED', 'malformed')
    // Every refused row is gone; the two the cookie never found are left for the prune.
    expect(await count(storage)).toBe(2)
  })

  run('a clock moved back: a few seconds (another instance\'s skew) are tolerated, more ends the session; lastSeen never moves back', async () => {
    const { storage, clock } = await setup()
    const sessions = make(storage, clock)
    const { id } = await sessions.create({ kind: 'admin' }, hashApiKey(adminKey))
    clock.now = T0 + 120_000
    await sessions.open(id) // lastSeen = t0 + 120
    clock.now = T0 + 120_000 - CLOCK_SKEW_SEC * 1000
    expect((await sessions.open(id)).lastSeen).toBe(T0 / 1000 + 120)
    clock.now = T0 + 120_000 - (CLOCK_SKEW_SEC + 1) * 1000
    await expectAgentIdError(() => sessions.open(id), 'ERR_UNAUTHENTICATED', 'clock')
    expect(await count(storage)).toBe(0)
    // The store's touch never moves lastSeen back, whoever calls it.
    const s2 = await sessions.create({ kind: 'admin' }, hashApiKey(adminKey))
    const h = b64Hash(s2.id)
    await storage.consoleSessions.touch(h, 5)
    expect(Number((await raw(storage, 'SELECT last_seen FROM console_sessions WHERE id_hash = ?', [h]))[0]!.last_seen)).toBe(Math.floor(clock.now / 1000))
  })

  // PostgreSQL only: SQLite has one process per file, whose clock is the one clock.
  // PostgreSQL only (SQLite has one process per file, one clock): not defined for SQLite rather than skipped.
  if (engine.name === 'postgres') run('an instance whose clock is well ahead or behind prunes by the database\'s clock, not its own (red team)', async () => {
    const f = await engine.fresh()
    cleanup = f.cleanup
    const storage = await f.open() // the database's own clock
    opened.push(storage)
    await storage.settings.put('admin_key_hash', hashApiKey(adminKey))
    await storage.orchestrators.insert({ id: acme.id, name: acme.name, key_hash: hashApiKey(acmeKey), created_at: 1 })
    await storage.orchestrators.insert({ id: globex.id, name: globex.name, key_hash: hashApiKey(globexKey), created_at: 1 })
    const on = (offsetMs: number) => new ConsoleSessions(storage.consoleSessions, { idleSec: 900, clock: () => Date.now() + offsetMs })
    const right = on(0)
    const live = await right.create({ kind: 'admin' }, hashApiKey(adminKey))
    const nowSec = Math.floor(Date.now() / 1000)
    await raw(storage, 'INSERT INTO console_sessions (id_hash, principal, key_hash, csrf, created_at, last_seen) VALUES (?, ?, ?, ?, ?, ?)',
      ['dead', acme.id, hashApiKey(acmeKey), randomBytes(32).toString('base64url'), nowSec - 5000, nowSec - 2000])
    await on(2 * 3600_000).create(globex, hashApiKey(globexKey)) // two hours ahead: every session looked idle to it
    await on(-2 * 3600_000).create(globex, hashApiKey(globexKey)) // two hours behind: every session looked stamped in the future
    expect((await right.open(live.id)).principal).toEqual({ kind: 'admin' })
    expect(await count(storage, 'id_hash = ?', ['dead'])).toBe(0) // what is expired by the database's clock still goes
  })

  run('a sign-in prunes expired rows, at most PRUNE_PER_SIGN_IN of them', async () => {
    const { storage, clock } = await setup()
    const sessions = make(storage, clock, { idleSec: 600, maxAgeSec: 3600 })
    const t = T0 / 1000
    const csrf = randomBytes(32).toString('base64url')
    const rows: [string, number, number][] = []
    for (let i = 0; i < 120; i++) rows.push([`idle${i}`, t - 5000, t - 600]) // idle: last use 600 s ago
    for (let i = 0; i < 20; i++) rows.push([`old${i}`, t - 3600, t - 10]) // past the absolute lifetime
    for (let i = 0; i < 20; i++) rows.push([`future${i}`, t + 3600, t + 3600]) // stamped by a clock far ahead
    for (let i = 0; i < 7; i++) rows.push([`live${i}`, t - 700, t - 599]) // alive
    for (const [h, created, seen] of rows) {
      await raw(storage, 'INSERT INTO console_sessions (id_hash, principal, key_hash, csrf, created_at, last_seen) VALUES (?, ?, ?, ?, ?, ?)', [h, 'orch_many', sha('k'), csrf, created, seen])
    }
    await sessions.create({ kind: 'admin' }, hashApiKey(adminKey))
    expect(await count(storage)).toBe(rows.length + 1 - PRUNE_PER_SIGN_IN)
    await sessions.create({ kind: 'admin' }, hashApiKey(adminKey))
    expect(await count(storage, "id_hash LIKE 'live%'")).toBe(7)
    expect(await count(storage)).toBe(7 + 2)
  })
})
