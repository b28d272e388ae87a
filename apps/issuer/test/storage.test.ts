// The issuer's storage interface, one suite run on both engines (SQLite file, PostgreSQL database).
// "Two instances" are two storages opened on the same database: two pools on PostgreSQL, two
// connections on the SQLite file. The PostgreSQL run is skipped with its reason printed when the
// server cannot be reached, and fails instead under AGENTID_REQUIRE_SERVICES=1.
import pg from 'pg'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { openPgStorage, PgStorage, PG_MIGRATIONS, migratePg, type IssuerStorage } from '../src/storage/index.js'
import { expectAgentIdError } from './engine-helpers.js'
import { pgAbsent, REQUIRE_SERVICES } from './pg-helpers.js'
import { storageEngines } from './storage-engines.js'

const absent = await pgAbsent()
if (absent !== null && !REQUIRE_SERVICES) console.warn(`skipping the PostgreSQL run of apps/issuer/test/storage.test.ts: ${absent}`)

const engines = storageEngines(absent)

const fail = (code: string) => ({ code, message: code })

describe.each(engines)('storage on $name', (engine) => {
  const run = engine.name === 'postgres' && absent !== null && !REQUIRE_SERVICES ? it.skip : it
  let opened: IssuerStorage[] = []
  let cleanup: (() => Promise<void>) | undefined
  let open: () => Promise<IssuerStorage>
  let url: string | undefined

  async function instances(n: number): Promise<IssuerStorage[]> {
    const f = await engine.fresh()
    cleanup = f.cleanup
    url = f.url
    open = async () => {
      const s = await f.open()
      opened.push(s)
      return s
    }
    // SQLite: one storage per file per process (a transaction holds the file's write lock across its
    // awaits, which a second connection in the same thread cannot wait for); its instances are one.
    const out: IssuerStorage[] = []
    for (let i = 0; i < n; i++) out.push(engine.name === 'sqlite' && i > 0 ? out[0]! : await open())
    return out
  }

  afterEach(async () => {
    for (const s of opened.reverse()) await s.close()
    opened = []
    await cleanup?.()
    cleanup = undefined
  })

  run('reports its engine and reopens an up-to-date database without changes', async () => {
    const [a] = await instances(1)
    expect(a!.engine).toBe(engine.name)
    await a!.settings.put('k', 'v1')
    const b = await open()
    expect(await b.settings.get('k')).toBe('v1')
    await b.settings.put('k', 'v2')
    expect(await a!.settings.get('k')).toBe('v2')
    expect(await a!.settings.get('missing')).toBeUndefined()
  })

  run('orchestrators, agents and credentials: insert, read, keyset listing, revoke once', async () => {
    const [s] = await instances(1)
    await s!.orchestrators.insert({ id: 'orch_1', name: 'alpha', key_hash: 'h1', created_at: 10 })
    await expect(s!.orchestrators.insert({ id: 'orch_2', name: 'alpha', key_hash: 'h2', created_at: 10 })).rejects.toThrow()
    expect((await s!.orchestrators.byKeyHash('h1'))?.id).toBe('orch_1')
    await s!.statusLists.allocate(4, 16, 1)
    for (const [i, did] of ['did:key:zB', 'did:key:zA', 'did:key:zC', 'did:key:za'].entries()) {
      await s!.agents.insert({ did, orchestrator_id: 'orch_1', controller: 'c', purpose: 'p', claims_json: '{}', key_custody: 'agent', created_at: i < 2 ? 100 : 200 })
      await s!.credentials.insert({ id: `urn:uuid:${i}`, agent_did: did, kind: 'identity', format: 'jwt', jwt: 'x', status_list_id: '1', status_index: i, issued_at: 100, expires_at: 999 })
    }
    // Byte order of the DID breaks ties, as SQLite's BINARY collation does ('A' < 'B' < 'a').
    const page1 = await s!.agents.list({ limit: 3 })
    expect(page1.map((r) => r.did)).toEqual(['did:key:zA', 'did:key:zB', 'did:key:zC'])
    const page2 = await s!.agents.list({ limit: 3, after: { createdAt: 200, did: 'did:key:zC' } })
    expect(page2.map((r) => r.did)).toEqual(['did:key:za'])
    expect(await s!.orchestrators.activeAgentCount('orch_1')).toBe(4)
    expect(await s!.agents.revoke('did:key:zA', 300, 'r')).toBe(true)
    expect(await s!.agents.revoke('did:key:zA', 301, 'r')).toBe(false)
    expect((await s!.agents.get('did:key:zA'))).toMatchObject({ status: 'revoked', revoked_at: 300, created_at: 100 })
    // A spawn's early refusals in one read: the agent exists, the proof nonce was used.
    await s!.nonces.use('pop:used', 999)
    expect(await s!.agents.seen('did:key:zA', 'pop:used')).toEqual({ agent: true, nonce: true })
    expect(await s!.agents.seen('did:key:zA', null)).toEqual({ agent: true, nonce: false })
    expect(await s!.agents.seen('did:key:zNew', 'pop:fresh')).toEqual({ agent: false, nonce: false })
    // With an API key hash, the same read finds its active orchestrator (a spawn's authentication).
    const orch1 = await s!.orchestrators.byId('orch_1')
    expect(await s!.agents.seen('did:key:zA', 'pop:fresh', orch1!.key_hash)).toEqual({ agent: true, nonce: false, orchestrator: orch1 })
    expect(await s!.agents.seen(null, null, orch1!.key_hash)).toEqual({ agent: false, nonce: false, orchestrator: orch1 })
    expect(await s!.agents.seen('did:key:zA', 'pop:used', 'no such hash')).toEqual({ agent: true, nonce: true, orchestrator: undefined })
    // Reads made together answer each as alone (PostgreSQL: in one round trip), in their own order;
    // a value the server refuses (a NUL character) fails that read only.
    const trips = () => (s as { roundTrips?: number }).roundTrips ?? 0
    const before = trips()
    const together = await Promise.all([
      s!.agents.seen('did:key:zNew', 'pop:used', orch1!.key_hash),
      s!.agents.seen('did:key:zA', 'pop:fresh'),
      s!.agents.seen(null, null, orch1!.key_hash),
      s!.agents.seen('did:key:zB', 'pop:"{,}\\', 'no such hash'),
    ])
    expect(together).toEqual([
      { agent: false, nonce: true, orchestrator: orch1 },
      { agent: true, nonce: false },
      { agent: false, nonce: false, orchestrator: orch1 },
      { agent: true, nonce: false, orchestrator: undefined },
    ])
    if (engine.name === 'postgres') expect(trips() - before).toBe(1)
    const hostile = await Promise.allSettled([s!.agents.seen('did:key:z\u0000', 'pop:x'), s!.agents.seen('did:key:zA', 'pop:used', orch1!.key_hash)])
    if (engine.name === 'postgres') expect(hostile[0]!.status).toBe('rejected')
    expect(hostile[1]).toEqual({ status: 'fulfilled', value: { agent: true, nonce: true, orchestrator: orch1 } })
    // A removed orchestrator's key finds none, in the same read and alone.
    await s!.orchestrators.insert({ id: 'orch_gone', name: 'gone', key_hash: 'gone-hash', created_at: 1 })
    expect(await s!.agents.seen('did:key:zA', 'pop:used', 'gone-hash')).toMatchObject({ orchestrator: { id: 'orch_gone', name: 'gone', key_hash: 'gone-hash', created_at: 1, removed_at: null } })
    expect(await s!.orchestrators.remove('orch_gone', 5)).toBe(true)
    expect(await s!.agents.seen('did:key:zA', 'pop:used', 'gone-hash')).toEqual({ agent: true, nonce: true, orchestrator: undefined })
    expect(await s!.orchestrators.byKeyHash('gone-hash')).toBeUndefined()
    expect(await s!.agents.list({ limit: 10, status: 'revoked' })).toHaveLength(1)
    expect(await s!.credentials.revoke('urn:uuid:1', 300, 'r')).toBe(true)
    expect(await s!.credentials.activeByAgent('did:key:zA')).toEqual([])
    expect((await s!.credentials.byAgent('did:key:zA'))[0]).toMatchObject({ status_index: 1, revoked_at: 300 })
    // The same status index twice is refused by the schema.
    await expect(s!.credentials.insert({ id: 'urn:uuid:dup', agent_did: 'did:key:zB', kind: 'identity', format: 'jwt', jwt: 'x', status_list_id: '1', status_index: 0, issued_at: 1, expires_at: 2 })).rejects.toThrow()
  })

  run('reads made together, the database unreachable: each fails once with the connection error', async () => {
    if (engine.name !== 'postgres') return
    // Nothing listens on port 1: the batched read fails with ECONNREFUSED, and is not made again one
    // by one (which, with a blackholed server, would wait the connect timeout twice).
    const s = new PgStorage(new pg.Pool({ connectionString: 'postgres://agentid@127.0.0.1:1/none', connectionTimeoutMillis: 2000 }))
    try {
      const reads = await Promise.allSettled([s.agents.seen('did:key:zA', 'pop:a'), s.agents.seen('did:key:zB', 'pop:b', 'h'), s.agents.seen(null, null, 'h')])
      for (const r of reads) expect(r).toMatchObject({ status: 'rejected', reason: { code: 'ECONNREFUSED' } })
      expect(s.roundTrips).toBe(1)
    } finally {
      await s.close()
    }
  })

  run('an agent\'s credentials come in insertion order, also when issued in the same second', async () => {
    const [s] = await instances(1)
    await s!.orchestrators.insert({ id: 'orch_1', name: 'alpha', key_hash: 'h1', created_at: 10 })
    await s!.statusLists.allocate(8, 16, 1)
    await s!.agents.insert({ did: 'did:key:zA', orchestrator_id: 'orch_1', controller: 'c', purpose: 'p', claims_json: '{}', key_custody: 'agent', created_at: 100 })
    // Ids in descending byte order, so an id tie-break would reverse them.
    const ids = ['urn:uuid:f', 'urn:uuid:c', 'urn:uuid:a', 'urn:uuid:0']
    for (const [i, id] of ids.entries()) {
      await s!.credentials.insert({ id, agent_did: 'did:key:zA', kind: 'identity', format: 'jwt', jwt: 'x', status_list_id: '1', status_index: i, issued_at: 100, expires_at: 999 })
    }
    expect((await s!.credentials.byAgent('did:key:zA')).map((c) => c.id)).toEqual(ids)
    expect((await s!.credentials.activeByAgent('did:key:zA')).map((c) => c.id)).toEqual(ids)
    expect(Object.keys((await s!.credentials.byAgent('did:key:zA'))[0]!).sort()).toEqual(Object.keys((await s!.credentials.get(ids[0]!))!).sort())
    expect(Object.keys((await s!.credentials.get(ids[0]!))!)).not.toContain('seq')
  })

  run('allocate: blocks are contiguous, fill a list, then open the next; never overlap across instances', async () => {
    const [a, b] = await instances(2)
    expect(await a!.statusLists.allocate(5, 16, 1)).toEqual({ listId: '1', from: 0, to: 5 })
    expect(await b!.statusLists.allocate(20, 16, 1)).toEqual({ listId: '1', from: 5, to: 16 })
    expect(await a!.statusLists.allocate(1, 16, 1)).toEqual({ listId: '2', from: 0, to: 1 })
    await expect(a!.statusLists.allocate(0, 16, 1)).rejects.toThrow(TypeError)
    await expect(a!.statusLists.allocate(1.5, 16, 1)).rejects.toThrow(TypeError)
    const blocks = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? a! : b!).statusLists.allocate(3, 64, 1)))
    const taken = new Set<string>()
    for (const k of blocks) for (let i = k.from; i < k.to; i++) {
      const key = `${k.listId}#${i}`
      expect(taken.has(key), key).toBe(false)
      taken.add(key)
    }
    // A block stops at the end of its list: 5 blocks fill list 2 (15 left of 16), 22 each fill lists 3
    // and 4 (64 = 21 × 3 + 1), the last 11 go to list 5.
    expect(taken.size).toBe(176)
    const lists = await a!.statusLists.all()
    expect(lists.map((l) => l.id)).toEqual(['1', '2', '3', '4', '5'])
    // PostgreSQL records an allocation at once (several instances); SQLite when the write that uses
    // an index commits (statusListAdvance), so a refused write consumes none.
    if (engine.name === 'postgres') expect(lists.map((l) => l.next_index)).toEqual([16, 16, 64, 64, 33])
    else expect(lists.map((l) => l.next_index)).toEqual([16, 16, 64, 64, 0]) // a list left full is marked full
    for (let i = 0; i < 33; i++) expect(taken.has(`5#${i}`)).toBe(true)
  })

  run('a nonce and a challenge are single-use across instances', async () => {
    const [a, b] = await instances(2)
    const uses = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a! : b!).nonces.use('pop:j1', 100)))
    expect(uses.filter(Boolean)).toHaveLength(1)
    expect(await b!.nonces.seen('pop:j1')).toBe(true)
    expect(await b!.nonces.seen('pop:j2')).toBe(false)
    await a!.challenges.insert('c1', 100)
    const taken = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a! : b!).challenges.use('c1', 50)))
    expect(taken.filter(Boolean)).toHaveLength(1)
    await a!.challenges.insert('c2', 100)
    expect(await a!.challenges.use('c2', 101)).toBe(false) // expired
    expect(await a!.challenges.use('unknown', 1)).toBe(false)
    expect(await a!.nonces.purge(101)).toBe(1)
    expect(await a!.challenges.purge(101)).toBe(2)
  })

  run('transaction: all or nothing; audit indices gapless and unique across instances', async () => {
    const [a, b] = await instances(2)
    await expect(a!.transaction(async (tx) => {
      await tx.settings.put('t', 'x')
      await tx.audit.append(1, 'test', 'rolled.back', null)
      throw new Error('boom')
    })).rejects.toThrow('boom')
    expect(await b!.settings.get('t')).toBeUndefined()
    expect(await b!.audit.count()).toBe(0)
    const indices = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? a! : b!).transaction(async (tx) => {
      await tx.settings.put(`k${i}`, String(i))
      return tx.audit.append(i, 'test', 'write', `s${i}`, { credentialId: `urn:uuid:${i}` })
    })))
    expect([...indices].sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i))
    expect(await a!.audit.count()).toBe(40)
    const rows = await b!.audit.range(0, 100)
    expect(rows.map((r) => r.log_index)).toEqual(Array.from({ length: 40 }, (_, i) => i))
    expect(await a!.audit.append(99, 'test', 'agent.spawned', 'x', { credentialId: 'urn:uuid:c' })).toBe(40)
    expect(await a!.audit.ofCredential('urn:uuid:c')).toBe(40)
    expect(await a!.audit.last('write', 's3')).toBe(indices[3])
    expect(await a!.audit.lastOfCredential('write', 'urn:uuid:5')).toBe(indices[5])
    expect(await a!.audit.last('write', 'none')).toBeUndefined()
  })

  run('group commit: each job alone; a failing job rolls back its own writes with its code', async () => {
    const [s, other] = await instances(2)
    await s!.challenges.insert('fresh', 2_000_000_000)
    const o = s!.ops
    const jobs = [
      s!.commit([o.nonceUse('a', 9, fail('ERR_REPLAY')), o.audit(1, 't', 'ok', 'a')]),
      s!.commit([o.nonceUse('a', 9, fail('ERR_REPLAY')), o.audit(1, 't', 'dup', 'b')]),
      s!.commit([o.audit(1, 't', 'unknown-challenge', 'c'), o.challengeUse('nope', 1, fail('ERR_REPLAY'))]),
      s!.commit([o.challengeUse('fresh', 1, fail('ERR_REPLAY')), o.audit(1, 't', 'challenge', 'd')]),
      s!.commit([o.audit(1, 't', 'revoked', 'e'), o.agentActive('did:key:none', fail('ERR_REVOKED'))]),
      s!.commit([o.agentAbsent('did:key:none', fail('ERR_CONFLICT')), o.audit(1, 't', 'absent', 'f')]),
    ]
    const settled = await Promise.allSettled(jobs)
    expect(settled.map((x) => x.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'fulfilled', 'rejected', 'fulfilled'])
    await expectAgentIdError(() => jobs[1]!, 'ERR_REPLAY')
    await expectAgentIdError(() => jobs[2]!, 'ERR_REPLAY')
    await expectAgentIdError(() => jobs[4]!, 'ERR_REVOKED')
    const actions = (await other!.audit.range(0, 10)).map((r) => r.action)
    expect(actions).toEqual(['ok', 'challenge', 'absent'])
    await expectAgentIdError(() => other!.commit([o.challengeUse('fresh', 1, fail('ERR_REPLAY'))]), 'ERR_REPLAY')
    await expectAgentIdError(() => other!.commit([o.nonceUse('a', 9, fail('ERR_REPLAY'))]), 'ERR_REPLAY')
    expect(await other!.audit.count()).toBe(3)
    // A spawn's job: agent, credential on an allocated index, audit; the same index again conflicts.
    await s!.orchestrators.insert({ id: 'orch_1', name: 'n', key_hash: 'h', created_at: 1 })
    const slot = await s!.statusLists.allocate(1, 16, 1)
    const agent = { did: 'did:key:z1', orchestrator_id: 'orch_1', controller: 'c', purpose: 'p', claims_json: '{}', key_custody: 'agent' as const, created_at: 1 }
    const cred = { id: 'urn:uuid:1', agent_did: 'did:key:z1', kind: 'identity' as const, format: 'jwt', jwt: 'j', status_list_id: slot.listId, status_index: slot.from, issued_at: 1, expires_at: 2 }
    await s!.commit([o.agentAbsent(agent.did, fail('ERR_CONFLICT')), o.agentInsert(agent), o.credentialInsert(cred), o.statusListAdvance(slot.listId, slot.from + 1), o.audit(1, 't', 'agent.spawned', agent.did)])
    await expectAgentIdError(() => other!.commit([o.agentAbsent(agent.did, fail('ERR_CONFLICT')), o.agentInsert(agent)]), 'ERR_CONFLICT')
    // The insert's own unique check, mapped: the job fails with its failure, and nothing of it is kept.
    await expectAgentIdError(() => other!.commit([o.audit(1, 't', 'dup-insert', agent.did), o.agentInsert(agent, fail('ERR_CONFLICT'))]), 'ERR_CONFLICT')
    expect((await other!.audit.range(0, 10)).map((r) => r.action)).not.toContain('dup-insert')
    await expect(other!.commit([o.credentialInsert({ ...cred, id: 'urn:uuid:2' })])).rejects.toThrow()
    expect(await other!.credentials.get('urn:uuid:2')).toBeUndefined()
    expect((await other!.agents.get(agent.did))?.status).toBe('active')
  })

  run('group commit: a job resolves with the log indices of its audit events, across instances', async () => {
    const [a, b] = await instances(2)
    const o = a!.ops
    // Jobs from both instances at once, with 0, 1 or 2 audit events (and one failing job between them).
    const jobs = Array.from({ length: 30 }, (_, k) => {
      const s = k % 2 ? b! : a!
      const audits = Array.from({ length: k % 3 }, (_, j) => o.audit(1, 't', `job${k}.${j}`, `s${k}`))
      return s.commit(k === 7 ? [o.audit(1, 't', 'failed', 'x'), o.agentActive('did:key:none', fail('ERR_REVOKED'))] : [o.nonceUse(`n${k}`, 9, fail('ERR_REPLAY')), ...audits])
    })
    const settled = await Promise.allSettled(jobs)
    expect(settled[7]!.status).toBe('rejected')
    const rows = await b!.audit.range(0, 100)
    expect(rows.map((r) => r.log_index)).toEqual(rows.map((_, i) => i)) // gapless: the failed job's event is not there
    const indexOf = new Map(rows.map((r) => [r.action, r.log_index]))
    settled.forEach((x, k) => {
      if (k === 7) return
      expect(x.status).toBe('fulfilled')
      const got = (x as PromiseFulfilledResult<readonly number[]>).value
      expect(got).toEqual(Array.from({ length: k % 3 }, (_, j) => indexOf.get(`job${k}.${j}`)))
    })
    expect(rows.length).toBe(settled.reduce((n, _, k) => n + (k === 7 ? 0 : k % 3), 0))
  })

  run('status bits: concurrent revocations of one list from two instances all land', async () => {
    const [a, b] = await instances(2)
    await a!.statusLists.allocate(64, 131_072, 1)
    const v0 = (await a!.statusLists.version('1'))!
    await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 ? a! : b!).transaction((tx) => tx.statusLists.setRevoked('1', [i * 3, i * 3 + 1], 5))))
    const row = (await b!.statusLists.get('1'))!
    const bit = (i: number) => (row.bits[i >> 3]! >> (7 - (i & 7))) & 1
    for (let i = 0; i < 16; i++) expect([bit(i * 3), bit(i * 3 + 1), bit(i * 3 + 2)]).toEqual([1, 1, 0])
    expect(row.version).toBe(v0 + 16)
    await expectAgentIdError(() => a!.transaction((tx) => tx.statusLists.setRevoked('9', [1], 5)), 'ERR_INTERNAL')
  })

  run('security events: sequence in commit order across instances; after, head, oldest, prune', async () => {
    const [a, b] = await instances(2)
    expect(await a!.events.head()).toBe(0)
    expect(await a!.events.oldest()).toBeNull()
    const seqs = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a! : b!).transaction((tx) => tx.events.insert(`jti${i}`, `txn${i}`, i, { n: i }))))
    expect([...seqs].sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    expect((await b!.events.after(7, 10)).map((r) => r.seq)).toEqual([8, 9, 10])
    await expect(a!.events.insert('jti0', 't', 1, {})).rejects.toThrow()
    expect(await a!.events.prune(100)).toBe(9) // the head is kept
    expect(await a!.events.oldest()).toBe(10)
    expect(await a!.events.head()).toBe(10)
  })

  run('delegations: subtree and links of an agent, unrevoked', async () => {
    const [s] = await instances(1)
    const k = await s!.statusLists.allocate(3, 16, 1)
    const link = (id: string, parent: string | null, from: string, to: string, i: number) =>
      s!.delegations.insert({ id, parent_id: parent, delegator: from, delegatee: to, status_list_id: k.listId, status_index: i, created_at: 1, expires_at: 9 })
    await link('d1', null, 'did:web:i', 'did:key:a', 0)
    await link('d2', 'd1', 'did:key:a', 'did:key:b', 1)
    await link('d3', 'd2', 'did:key:b', 'did:key:c', 2)
    expect((await s!.delegations.activeSubtree('d2')).map((r) => r.id).sort()).toEqual(['d2', 'd3'])
    expect(await s!.delegations.revoke('d3', 2, 'r')).toBe(true)
    expect((await s!.delegations.activeOfAgent('did:key:a')).map((r) => r.id).sort()).toEqual(['d1', 'd2'])
    expect((await s!.delegations.get('d3'))?.revoked_at).toBe(2)
  })

  run('log state and Veramo rows round-trip', async () => {
    const [s] = await instances(1)
    await s!.logState.putTile(0, new Uint8Array([1, 2, 3]))
    await s!.logState.putTile(0, new Uint8Array([1, 2, 3, 4]))
    expect((await s!.logState.tiles()).map((t) => [t.idx, [...t.hashes]])).toEqual([[0, [1, 2, 3, 4]]])
    // A tile never shrinks: a stale sequencer (its lock's connection lost mid-turn) writing the shorter
    // partial tile it computed must not undo the longer one another instance wrote and signed over.
    await s!.logState.putTile(0, new Uint8Array([1, 2]))
    expect((await s!.logState.tiles()).map((t) => [t.idx, [...t.hashes]])).toEqual([[0, [1, 2, 3, 4]]])
    await s!.logState.putCheckpoint({ size: 3, note: 'n3', created_at: 1 })
    await s!.logState.putCheckpoint({ size: 5, note: 'n5', created_at: 2 })
    await s!.logState.putCosignature({ size: 3, witness: 'w', line: 'l', created_at: 1 })
    expect((await s!.logState.latestCheckpoint())?.size).toBe(5)
    expect((await s!.logState.latestCosigned(1, 1))?.size).toBe(3)
    expect(await s!.logState.latestCosigned(4, 1)).toBeUndefined()
    expect((await s!.logState.cosignatures(3)).map((c) => c.line)).toEqual(['l'])
    await s!.veramo.upsertIdentifier({ did: 'did:key:z', provider: 'did:key', alias: 'issuer', controller_key_id: 'k1', services_json: '[]' }, 1)
    await s!.veramo.upsertKey({ kid: 'k1', kms: 'local', type: 'Ed25519', public_key_hex: 'aa', meta_json: null }, 'did:key:z')
    await s!.veramo.upsertKey({ kid: 'k1', kms: 'local', type: 'Ed25519', public_key_hex: 'bb', meta_json: '{}' }, null)
    expect((await s!.veramo.keysOf('did:key:z')).map((k) => k.public_key_hex)).toEqual(['bb'])
    expect((await s!.veramo.identifier({ alias: 'issuer' }))?.did).toBe('did:key:z')
    expect(await s!.veramo.identifiers({ provider: 'did:web' })).toEqual([])
    expect(await s!.veramo.putPrivateKey({ alias: 'k1', type: 'Ed25519', ciphertext: Buffer.from([9]) })).toBe(true)
    expect(await s!.veramo.putPrivateKey({ alias: 'k1', type: 'Ed25519', ciphertext: Buffer.from([8]) })).toBe(false)
    expect([...(await s!.veramo.privateKey('k1'))!.ciphertext]).toEqual([9])
    expect(await s!.veramo.deleteIdentifier('did:key:z')).toBe(true)
    expect(await s!.veramo.deleteIdentifier('did:key:z')).toBe(false)
    expect(await s!.veramo.keysOf('did:key:z')).toEqual([])
    expect((await s!.veramo.key('k1'))?.kid).toBe('k1')
  })

  run('SVID authorities: unexpired ones of a trust domain, oldest first; an id is stored once', async () => {
    const [s] = await instances(1)
    const row = (id: string, td: string, notBefore: number, notAfter: number) => ({ id, trust_domain: td, key_sealed: Buffer.from([1, 2]), cert_der: Buffer.from([3]), not_before: notBefore, not_after: notAfter, created_at: notBefore })
    await s!.svidAuthorities.insert(row('b', 'td.example', 20, 200))
    await s!.svidAuthorities.insert(row('a', 'td.example', 20, 300))
    await s!.svidAuthorities.insert(row('old', 'td.example', 1, 50))
    await s!.svidAuthorities.insert(row('z', 'other.example', 5, 500))
    expect((await s!.svidAuthorities.unexpired('td.example', 49)).map((r) => r.id)).toEqual(['old', 'a', 'b'])
    expect((await s!.svidAuthorities.unexpired('td.example', 50)).map((r) => r.id)).toEqual(['a', 'b'])
    expect(await s!.svidAuthorities.unexpired('td.example', 300)).toEqual([])
    const [got] = await s!.svidAuthorities.unexpired('other.example', 0)
    expect({ ...got, key_sealed: [...got!.key_sealed], cert_der: [...got!.cert_der] }).toEqual({ ...row('z', 'other.example', 5, 500), key_sealed: [1, 2], cert_der: [3] })
    await expect(s!.svidAuthorities.insert(row('a', 'td.example', 1, 2))).rejects.toThrow()
    // In a transaction: gone with its rollback.
    await expect(s!.transaction(async (tx) => { await tx.svidAuthorities.insert(row('r', 'td.example', 1, 900)); throw new Error('rollback') })).rejects.toThrow('rollback')
    expect((await s!.svidAuthorities.unexpired('td.example', 0)).map((r) => r.id)).not.toContain('r')
  })

  run('console reads: filters, search, keyset pages newest first, counts, facets, brief, graph and timeline', async () => {
    const [s] = await instances(1)
    await s!.orchestrators.insert({ id: 'o1', name: 'acme', key_hash: 'h1', created_at: 1 })
    await s!.orchestrators.insert({ id: 'o2', name: 'globex', key_hash: 'h2', created_at: 1 })
    const claims = (model: string, version: string, tier: string) => JSON.stringify({ model: { provider: 'p', name: model, version }, policyTier: tier, dataAccessClass: 'internal' })
    const agents = [
      { did: 'did:key:zB', o: 'o1', controller: 'did:web:acme.example', purpose: 'Invoice triage', claims: claims('Reasoner', '1', 'standard'), at: 100 },
      { did: 'did:key:zA', o: 'o1', controller: 'did:web:acme.example', purpose: 'payments', claims: claims('reasoner', '2', 'elevated'), at: 100 },
      { did: 'did:key:za', o: 'o1', controller: 'did:web:other.example', purpose: 'search', claims: claims('Other', '1', 'standard'), at: 200 },
      { did: 'did:key:zC', o: 'o2', controller: 'did:web:globex.example', purpose: 'triage', claims: '{}', at: 300 },
    ]
    for (const a of agents) await s!.agents.insert({ did: a.did, orchestrator_id: a.o, controller: a.controller, purpose: a.purpose, claims_json: a.claims, key_custody: 'agent', created_at: a.at })
    await s!.agents.revoke('did:key:zA', 400, 'r')
    const dids = (rows: { did: string }[]) => rows.map((r) => r.did)
    const c = s!.console
    // Newest first; byte order of the DID breaks ties ('B' > 'A').
    expect(dids(await c.agentPage({}, 10))).toEqual(['did:key:zC', 'did:key:za', 'did:key:zB', 'did:key:zA'])
    expect(dids(await c.agentPage({}, 2, { createdAt: 200, did: 'did:key:za' }))).toEqual(['did:key:zB', 'did:key:zA'])
    expect(dids(await c.agentPage({}, 10, { createdAt: 100, did: 'did:key:zB' }))).toEqual(['did:key:zA'])
    expect(dids(await c.agentPage({ orchestratorId: 'o1', status: 'active' }, 10))).toEqual(['did:key:za', 'did:key:zB'])
    expect(dids(await c.agentPage({ model: 'reasoner' }, 10))).toEqual(['did:key:zA']) // exact match
    expect(dids(await c.agentPage({ modelVersion: '1', policyTier: 'standard', dataAccessClass: 'internal' }, 10))).toEqual(['did:key:za', 'did:key:zB'])
    expect(dids(await c.agentPage({ controller: 'did:web:acme.example', purpose: 'payments' }, 10))).toEqual(['did:key:zA'])
    expect(dids(await c.agentPage({ createdFrom: 100, createdTo: 200 }, 10))).toEqual(['did:key:zB', 'did:key:zA'])
    // q: case-insensitive substring of DID, purpose, controller or model name; % and _ are literal.
    expect(dids(await c.agentPage({ q: 'REASONER' }, 10))).toEqual(['did:key:zB', 'did:key:zA'])
    expect(dids(await c.agentPage({ q: 'triage' }, 10))).toEqual(['did:key:zC', 'did:key:zB'])
    expect(dids(await c.agentPage({ q: 'globex' }, 10))).toEqual(['did:key:zC'])
    expect(await c.agentPage({ q: '%' }, 10)).toEqual([])
    expect(await c.agentPage({ q: "'; DROP TABLE agents; --" }, 10)).toEqual([])
    expect(await c.agentCounts({ orchestratorId: 'o1' })).toEqual({ active: 2, revoked: 1 })
    expect(await c.agentCounts({ orchestratorId: 'o1', status: 'active' })).toEqual({ active: 2, revoked: 1 }) // every filter but status
    expect(await c.agentCounts({ orchestratorId: 'nobody' })).toEqual({ active: 0, revoked: 0 })
    expect(await c.facets()).toEqual({
      controllers: ['did:web:acme.example', 'did:web:globex.example', 'did:web:other.example'],
      purposes: ['Invoice triage', 'payments', 'search', 'triage'],
      models: ['Other', 'Reasoner', 'reasoner'], modelVersions: ['1', '2'], policyTiers: ['elevated', 'standard'],
    })
    expect((await c.facets('o2')).controllers).toEqual(['did:web:globex.example'])
    expect((await c.facets('o2')).models).toEqual([])
    expect((await c.agentsBrief(['did:key:zA', 'did:key:unknown', 'did:key:zC'])).sort((x, y) => (x.did < y.did ? -1 : 1)))
      .toEqual([{ did: 'did:key:zA', orchestrator_id: 'o1', status: 'revoked', purpose: 'payments' }, { did: 'did:key:zC', orchestrator_id: 'o2', status: 'active', purpose: 'triage' }])
    expect(await c.agentsBrief([])).toEqual([])

    // Links: issuer → zB → zA → za, and an unrelated one; an agent holds the chain above it and its own links, and sees those below.
    const k = await s!.statusLists.allocate(4, 16, 1)
    const link = (id: string, parent: string | null, from: string, to: string, i: number) =>
      s!.delegations.insert({ id, parent_id: parent, delegator: from, delegatee: to, status_list_id: k.listId, status_index: k.from + i, created_at: 10 + i, expires_at: 99 })
    await link('l1', null, 'did:web:issuer', 'did:key:zB', 0)
    await link('l2', 'l1', 'did:key:zB', 'did:key:zA', 1)
    await link('l3', 'l2', 'did:key:zA', 'did:key:za', 2)
    await link('l4', null, 'did:web:issuer', 'did:key:zC', 3)
    const around = await c.delegationsAround('did:key:zA', 10)
    expect(around.map((l) => [l.id, l.above])).toEqual([['l1', 1], ['l2', 1], ['l3', 1]]) // its own links count as held
    expect((await c.delegationsAround('did:key:za', 10)).map((l) => [l.id, l.above])).toEqual([['l1', 1], ['l2', 1], ['l3', 1]])
    expect((await c.delegationsAround('did:key:zB', 10)).map((l) => [l.id, l.above])).toEqual([['l1', 1], ['l2', 1], ['l3', 0]])
    expect((await c.delegationsAround('did:key:zA', 2)).map((l) => l.id)).toEqual(['l1', 'l2'])
    expect(await c.delegationsAround('did:key:nobody', 10)).toEqual([])
    await s!.audit.append(1, 'orchestrator:o1', 'agent.spawned', 'did:key:zA')
    await s!.audit.append(2, 'did:key:zB', 'delegation.registered', 'did:key:zB', { delegatee: 'did:key:zA', id: 'l2' })
    await s!.audit.append(3, 'did:key:zB', 'delegation.registered', 'did:key:zB', { delegatee: 'did:key:zC' })
    await s!.audit.append(4, 'admin', 'delegation.revoked', 'l3')
    await s!.audit.append(5, 'admin', 'agent.revoked', 'did:key:zC')
    const timeline = await c.eventsOfAgent('did:key:zA', ['l1', 'l2', 'l3'], 10)
    expect(timeline.map((e) => [e.log_index, e.action, e.subject])).toEqual([[3, 'delegation.revoked', 'l3'], [1, 'delegation.registered', 'did:key:zB'], [0, 'agent.spawned', 'did:key:zA']])
    expect((await c.eventsOfAgent('did:key:zA', ['l3'], 2)).map((e) => e.log_index)).toEqual([3, 1])
    expect(await c.eventsOfAgent('did:key:nobody', [], 10)).toEqual([])
  })

  run('tryExclusive: one holder of the log sequencer at a time', async () => {
    const [a, b] = await instances(2)
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    const first = a!.tryExclusive('log-sequencer', async () => { await held; return 'a' })
    await new Promise((r) => setTimeout(r, 50))
    const second = await b!.tryExclusive('log-sequencer', async () => 'b')
    release()
    expect(await first).toBe('a')
    // SQLite: one process owns the file, so the lock is always this process's.
    expect(second).toBe(engine.name === 'sqlite' ? 'b' : undefined)
    expect(await b!.tryExclusive('log-sequencer', async () => 'b')).toBe('b')
  })

  if (engine.name === 'postgres') {
    run("the log sequencer's tiles and checkpoint hold back no writer; any other write holds the 'log' lock to its end", async () => {
      const [a, b] = await instances(2)
      const o = b!.ops
      const within = <T>(ms: number, p: Promise<T>) => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms))])
      let during: readonly number[] | undefined
      await a!.transaction(async (tx) => {
        await tx.logState.putTile(0, new Uint8Array(32))
        during = await within(5000, b!.commit([o.audit(1, 't', 'during-tiles', 's')]))
        await tx.logState.putCheckpoint({ size: 1, note: 'n', created_at: 1 })
      })
      expect(during).toEqual([0])
      expect((await b!.logState.latestCheckpoint())?.size).toBe(1)
      let open = true
      let doneWhileOpen: boolean | undefined
      let pending: Promise<void> | undefined
      await a!.transaction(async (tx) => {
        await tx.audit.append(1, 't', 'in-tx', 's')
        pending = b!.commit([o.audit(1, 't', 'after', 's')]).then(() => { doneWhileOpen = open })
        await new Promise((r) => setTimeout(r, 300))
        open = false
      })
      await pending
      expect(doneWhileOpen).toBe(false)
      expect((await b!.audit.range(0, 10)).map((r) => r.action)).toEqual(['during-tiles', 'in-tx', 'after'])
    })

    run('migrations: instances starting together migrate once; a newer schema is refused', async () => {
      await instances(0)
      const starts = await Promise.all(Array.from({ length: 4 }, () => open()))
      expect(starts).toHaveLength(4)
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      try {
        expect((await c.query('SELECT version FROM agentid_migrations ORDER BY version')).rows.map((r) => r.version)).toEqual(PG_MIGRATIONS.map((m) => m.version))
        expect(await migratePg(c)).toEqual({ from: PG_MIGRATIONS.length, to: PG_MIGRATIONS.length })
        await c.query("INSERT INTO agentid_migrations (version, name) VALUES (99, 'future')")
      } finally {
        await c.end()
      }
      await expectAgentIdError(() => openPgStorage(url!), 'ERR_CONFLICT', 'schema_too_new')
    })

    run('refuses a URL that is not postgres://, and an unreachable server with ERR_INTERNAL', async () => {
      await expect(openPgStorage('mysql://x/y')).rejects.toThrow(TypeError)
      await expect(openPgStorage('postgres://')).rejects.toThrow(TypeError)
      await expectAgentIdError(() => openPgStorage('postgres://nobody@127.0.0.1:1/none'), 'ERR_INTERNAL', 'db_open_failed')
    })
  }
})

beforeAll(() => {
  if (absent !== null && REQUIRE_SERVICES) console.error(`AGENTID_REQUIRE_SERVICES=1: ${absent}`)
})

describe('AGENTID_DATABASE_URL', () => {
  it('selects PostgreSQL with a postgres:// URL; SQLite stays the default; other values are refused', async () => {
    const { configFromEnv } = await import('../src/config.js')
    expect(configFromEnv({}).databaseUrl).toBeUndefined()
    expect(configFromEnv({ AGENTID_DATABASE_URL: '' }).databaseUrl).toBeUndefined()
    expect(configFromEnv({ AGENTID_DATABASE_URL: 'postgres://u@db:5432/agentid' }).databaseUrl).toBe('postgres://u@db:5432/agentid')
    expect(configFromEnv({ AGENTID_DATABASE_URL: 'postgresql://db/agentid?sslmode=require' }).databaseUrl).toBe('postgresql://db/agentid?sslmode=require')
    for (const bad of ['mysql://db/x', 'postgres://', 'postgres://db/x y', 'file:issuer.db', ' postgres://db/x', 'POSTGRES://db/x']) {
      await expectAgentIdError(() => configFromEnv({ AGENTID_DATABASE_URL: bad }), 'ERR_INVALID_INPUT')
    }
  })
})
