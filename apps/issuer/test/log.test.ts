// The issuer log in process: entries numbered with their events, checkpoints, tiles, entry bundles,
// tlog-proofs over HTTP, hostile queries, and tampering with the SQLite rows caught.
import { createHash } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { hashLeaf, decodeEntryBundle, openCheckpoint, verifyTlogProof, parseTlogProof, MerkleTree, createCosigner, generateNoteKey, parseAddCheckpointRequest, parseNote, parseSignerKey, formatSignerKey, SIG_TYPE_COSIGNATURE_V1, SIG_TYPE_ED25519 } from '@agentid/tlog'
import { openDatabase } from '../src/db/open.js'
import { buildServer } from '../src/http/server.js'
import { IssuerLog, logOrigin, parseWitnesses } from '../src/log/log.js'
import { Sequencer } from '../src/log/sequencer.js'
import { bearer, harness, namedKey, spawnAgent, type Harness } from './http-fixtures.js'

let h: Harness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

async function withLog() {
  h = await harness()
  const log = await IssuerLog.open({ db: h.service.store.db, secret: new Uint8Array(32).fill(7), baseUrl: 'http://issuer.test', onError: () => {} })
  const app = buildServer(h.service, { logger: false, log })
  await app.ready()
  // spawnAgent uses h.app: point it at the server that has the log.
  const base = h
  const close = base.close.bind(base)
  base.app = app
  base.close = async () => close()
  return { h: base, log, app }
}

const utf8 = (s: string) => new TextEncoder().encode(s)

/**
 * Logs a new event on `h`'s database, opens a log there with one witness that answers `answer(note)`
 * (fetch stubbed), and runs one turn: returns the stopped log and what it reported through onError.
 */
async function submitToWitness(h: Harness, vkey: string, answer: (note: string) => string) {
  const errors: string[] = []
  const db = h.service.store.db
  await spawnAgent(h, namedKey()) // a new event: the log signs a new checkpoint and submits it
  const log = await IssuerLog.open({
    db, secret: new Uint8Array(32).fill(7), baseUrl: 'http://issuer.test', witnesses: [{ url: 'http://witness.test', vkey }],
    onError: (m) => void errors.push(m),
    fetch: (async (_url: unknown, init: { body: string }) =>
      new Response(answer(parseAddCheckpointRequest(init.body).checkpoint), { status: 200, headers: { 'content-type': 'text/plain' } })) as unknown as typeof fetch,
  })
  log.start()
  await log.stop()
  return { log, errors }
}

describe('issuer log', () => {
  it('origin is the base URL host and path', () => {
    expect(logOrigin('https://issuer.example/agentid/')).toBe('issuer.example/agentid')
    expect(logOrigin('http://127.0.0.1:8080')).toBe('127.0.0.1:8080')
  })

  it('logs every event with the spawn, serves tiles, bundles, a checkpoint and a verifying tlog-proof', async () => {
    const { h, log, app } = await withLog()
    const spawned = await spawnAgent(h, namedKey())
    const logIndex = (spawned as unknown as { logIndex: number }).logIndex
    expect(typeof logIndex).toBe('number')
    expect(logIndex).toBe(await log.indexOfCredential(spawned.credentialId)) // as the commit returned it, no look-up
    // Before sequencing, the proof is not available yet (ERR_UNAVAILABLE), not missing.
    let res = await app.inject({ url: `/v1/log/proof?credential=${encodeURIComponent(spawned.credentialId)}` })
    expect(res.statusCode).toBe(503)
    expect(await log.sequence()).toBeGreaterThan(logIndex)
    const size = log.size
    const cp = openCheckpoint((await app.inject({ url: '/log/checkpoint' })).body, { log: (await app.inject({ url: '/log/key' })).body.trim() })
    expect(cp.size).toBe(size)
    // Entry bundle and tile agree with the checkpoint.
    const bundle = await app.inject({ url: `/log/tile/entries/000.p/${size}` })
    expect(bundle.statusCode).toBe(200)
    const entries = decodeEntryBundle(bundle.rawPayload)
    const tree = new MerkleTree()
    for (const e of entries) tree.appendEntry(e)
    expect(Buffer.from(tree.root()).equals(Buffer.from(cp.rootHash))).toBe(true)
    const tile = await app.inject({ url: `/log/tile/0/000.p/${size}` })
    expect(tile.rawPayload.equals(Buffer.from(tree.tile(0, 0, size)))).toBe(true)
    expect(tile.headers['cache-control']).toContain('max-age=60')
    // The spawn entry names the credential's SHA-256.
    const entry = JSON.parse(Buffer.from(entries[logIndex]!).toString())
    expect(entry).toMatchObject({ action: 'agent.spawned', subject: spawned.did, details: { credentialId: spawned.credentialId, credentialSha256: createHash('sha256').update(spawned.credential).digest('hex') } })
    res = await app.inject({ url: `/v1/log/proof?credential=${encodeURIComponent(spawned.credentialId)}` })
    expect(res.statusCode).toBe(200)
    const parsed = parseTlogProof(res.body)
    expect(verifyTlogProof(res.body, { entry: parsed.extra!, log: log.vkey }).index).toBe(logIndex)
    expect(hashLeaf(parsed.extra!)).toEqual(hashLeaf(entries[logIndex]!))
    // Revocation answers name their entry.
    const rev = await app.inject({ method: 'POST', url: `/v1/agents/${encodeURIComponent(spawned.did)}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'test' } })
    expect(rev.statusCode).toBe(200)
    expect(rev.json().logIndex).toBe(logIndex + 1)
  })

  it('refuses hostile tile paths and proof queries with codes', async () => {
    const { h, log, app } = await withLog()
    await spawnAgent(h, namedKey())
    await log.sequence()
    for (const url of ['/log/tile/0/x000/000', '/log/tile/0/000.p/0', '/log/tile/00/000', '/log/tile/0/001', '/log/tile/0/000.p/255', '/log/tile/entries/000', '/log/tile/64/000', '/log/tile/0/..%2F..%2Fetc']) {
      const res = await app.inject({ url })
      expect(res.statusCode, url).toBe(404)
      expect(res.json().error.code).toBe('ERR_NOT_FOUND')
    }
    for (const url of ['/v1/log/proof', '/v1/log/proof?index=-1', '/v1/log/proof?index=01', '/v1/log/proof?index=1&credential=x', '/v1/log/proof?index=99999999999999999', '/v1/log/proof?foo=1']) {
      const res = await app.inject({ url })
      expect(res.statusCode, url).toBe(400)
      expect(res.json().error.code).toBe('ERR_INVALID_INPUT')
    }
    expect((await app.inject({ url: '/v1/log/proof?index=1000' })).json().error.code).toBe('ERR_NOT_FOUND')
    expect((await app.inject({ url: '/v1/log/proof?credential=urn:uuid:nope' })).json().error.code).toBe('ERR_NOT_FOUND')
  })

  it('an edited audit_events row changes the entry served: the bundle no longer matches the signed tiles', async () => {
    const { h, log, app } = await withLog()
    const spawned = await spawnAgent(h, namedKey())
    await log.sequence()
    const size = log.size
    const tile = (await app.inject({ url: `/log/tile/0/000.p/${size}` })).rawPayload
    h.service.store.db.prepare("UPDATE audit_events SET details_json = json_set(details_json, '$.keyCustody', 'issuer') WHERE subject = ?").run(spawned.did)
    const entries = decodeEntryBundle((await app.inject({ url: `/log/tile/entries/000.p/${size}` })).rawPayload)
    const mismatched = entries.filter((e, i) => !Buffer.from(hashLeaf(e)).equals(tile.subarray(i * 32, i * 32 + 32)))
    expect(mismatched).toHaveLength(1)
  })

  it('a restarted log reloads its tiles; an edited tile row stops it signing', async () => {
    const { h, log } = await withLog()
    await spawnAgent(h, namedKey())
    await log.sequence()
    const db = h.service.store.db
    const again = await IssuerLog.open({ db, secret: new Uint8Array(32).fill(7), baseUrl: 'http://issuer.test', onError: () => {} })
    expect(again.healthy).toBe(true)
    expect(again.vkey).toBe(log.vkey)
    // Another base URL (a new port or host name, a second instance) continues the same log, origin and key.
    const moved = await IssuerLog.open({ db, secret: new Uint8Array(32).fill(7), baseUrl: 'http://127.0.0.1:4321', onError: () => {} })
    expect(moved.healthy).toBe(true)
    expect(moved.origin).toBe('issuer.test')
    expect(moved.vkey).toBe(log.vkey)
    const row = db.prepare('SELECT hashes FROM log_tiles WHERE level = 0 AND idx = 0').get() as { hashes: Buffer }
    row.hashes[0]! ^= 1
    db.prepare('UPDATE log_tiles SET hashes = ? WHERE level = 0 AND idx = 0').run(row.hashes)
    const errors: string[] = []
    const tampered = await IssuerLog.open({ db, secret: new Uint8Array(32).fill(7), baseUrl: 'http://issuer.test', onError: (m) => void errors.push(m) })
    expect(tampered.healthy).toBe(false)
    expect(errors).toHaveLength(1)
    // Another master secret cannot open the sealed log key.
    await expect(IssuerLog.open({ db, secret: new Uint8Array(32).fill(8), baseUrl: 'http://issuer.test' })).rejects.toMatchObject({ code: 'ERR_INTERNAL' })
  })

  it('two instances opening the log at once with different base URLs share one origin and one key', async () => {
    h = await harness()
    const storage = h.service.storage
    const open = (baseUrl: string) => IssuerLog.open({ storage, secret: new Uint8Array(32).fill(7), baseUrl, onError: () => {} })
    const [a, b] = await Promise.all([open('http://a.issuer.test'), open('http://b.issuer.test:8443')])
    try {
      expect(b!.origin).toBe(a!.origin)
      expect(b!.vkey).toBe(a!.vkey)
      // A later start with a third URL, before any checkpoint was signed, continues the same log too.
      const c = await open('http://127.0.0.1:4321')
      expect([c.origin, c.vkey]).toEqual([a!.origin, a!.vkey])
      await c.stop()
    } finally {
      await a!.stop()
      await b!.stop()
    }
  })

  it('sequences on a worker thread with its own connection; stop ends the thread, the log still serves', async () => {
    const { h, log, app } = await withLog()
    expect(log.threaded).toBe(true)
    const spawned = await spawnAgent(h, namedKey())
    const size = await log.sequence()
    expect(size).toBeGreaterThan(0)
    // On the event loop (worker: false) the same stored log reloads to the same checkpoint.
    const local = await IssuerLog.open({ db: h.service.store.db, secret: new Uint8Array(32).fill(7), baseUrl: 'http://issuer.test', worker: false, onError: () => {} })
    expect(local.threaded).toBe(false)
    expect(await local.checkpoint()).toBe(await log.checkpoint())
    await log.stop() // resolves once the thread has exited
    await spawnAgent(h, namedKey())
    expect(await log.tick()).toBe(size)
    expect(await log.sequence()).toBe(size)
    const res = await app.inject({ url: `/v1/log/proof?credential=${encodeURIComponent(spawned.credentialId)}` })
    expect(res.statusCode).toBe(200)
    expect(verifyTlogProof(res.body, { entry: parseTlogProof(res.body).extra!, log: log.vkey }).index).toBeLessThan(size)
    // The event-loop sequencer picks up where the thread stopped.
    expect(await local.sequence()).toBeGreaterThan(size)
    await local.stop()
  })

  it('on SQLite the thread hands its tiles and checkpoint to the group commit; a failed commit fails the turn, the next stores them', async () => {
    // The thread's own write transaction contended with the group-commit writer for the file's one
    // write lock (spinning on BEGIN while the writer committed, the writer sleeping while it held it).
    h = await harness()
    const storage = h.service.storage
    const committed: string[][] = []
    let failNext = false
    const commit = storage.commit.bind(storage)
    storage.commit = async (ops) => {
      committed.push(ops.map((o) => o.op))
      if (failNext) {
        failNext = false
        throw Object.assign(new Error('disk full'), { code: 'SQLITE_FULL' })
      }
      return commit(ops)
    }
    const errors: string[] = []
    const log = await IssuerLog.open({ storage, secret: new Uint8Array(32).fill(7), baseUrl: 'http://issuer.test', onError: (m, e) => void errors.push(`${m}: ${(e as Error | undefined)?.message ?? ''}`) })
    try {
      expect(log.threaded).toBe(true)
      const before = log.size
      await spawnAgent(h, namedKey())
      failNext = true
      expect(await log.sequence()).toBe(before) // not stored: not served
      expect(errors).toEqual(['sequencing failed: disk full'])
      expect((await storage.logState.latestCheckpoint())?.size ?? 0).toBe(before)
      const size = await log.sequence()
      expect(size).toBeGreaterThan(before)
      expect(committed.filter((ops) => ops.includes('logCheckpointPut'))).toEqual([['logTilePut', 'logCheckpointPut'], ['logTilePut', 'logCheckpointPut']])
      expect((await storage.logState.latestCheckpoint())!.note).toBe(await log.checkpoint())
      const tiles = await storage.logState.tiles()
      expect(tiles.map((t) => t.hashes.length / 32)).toEqual([size])
    } finally {
      await log.stop()
    }
  })

  it('loading while another instance signs a checkpoint between its reads stays healthy', async () => {
    // Instances on one database: one loads its tree while the other sequences. The checkpoint the
    // loader reads is read before the tiles (read after it, a newer one looked like missing tiles).
    const { h, log } = await withLog()
    await spawnAgent(h, namedKey())
    await log.sequence()
    await spawnAgent(h, namedKey())
    const racing = new Proxy(log.storage, {
      get(target, p) {
        if (p === 'logState') {
          const state = target.logState
          // The other instance signs a new checkpoint just before this one reads the latest.
          return { ...state, latestCheckpoint: async () => (await log.sequence(), state.latestCheckpoint()) }
        }
        const v = Reflect.get(target, p, target) as unknown
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
      },
    })
    const errors: string[] = []
    // Any signer key: loading signs nothing; the checkpoints are checked with the log's vkey.
    const signerKey = formatSignerKey(log.origin, SIG_TYPE_ED25519, new Uint8Array(32).fill(1))
    const loader = new Sequencer({ storage: racing, signerKey, vkey: log.vkey, origin: log.origin, clock: Date.now, onError: (m) => void errors.push(m) })
    const before = log.size
    const report = await loader.load()
    expect(errors).toEqual([])
    expect(report.healthy).toBe(true)
    expect(report.latest!.size).toBeGreaterThan(before)
    expect(report.latest!.size).toBe(log.size)
  })

  it('an in-memory database keeps the sequencer on the event loop (no other connection sees it)', async () => {
    const db = openDatabase(':memory:')
    const log = await IssuerLog.open({ db, secret: new Uint8Array(32).fill(7), baseUrl: 'http://issuer.test', onError: () => {} })
    expect(log.threaded).toBe(false)
    await log.stop()
    db.close()
  })

  it('an event without a log index is refused by the database', async () => {
    h = await harness()
    expect(() => h!.service.store.db.prepare("INSERT INTO audit_events (at, actor, action) VALUES (1, 'x', 'y')").run()).toThrow(/log index/)
  })

  it('keeps a witness cosignature only when it verifies over the checkpoint as served', async () => {
    // A witness (buggy or hostile) answers with a blank line first, then a cosignature over the whole
    // note it was sent (text, blank line and the log's signature): appended to the note, that line
    // verifies as a signature of another text. Kept, it made the served checkpoint carry an invalid
    // signature of a trusted witness, and every verifier trusting that witness refused every proof.
    h = await harness()
    const { skey, vkey } = generateNoteKey('witness.test/w1', SIG_TYPE_COSIGNATURE_V1)
    const cosigner = createCosigner(parseSignerKey(skey))
    const now = Math.floor(Date.now() / 1000)
    const run = (answer: (note: string) => string) => submitToWitness(h!, vkey, answer)
    // Honest: the cosignature is kept and counts towards a quorum.
    const honest = await run((note) => cosigner.cosign(parseNote(note).text, now))
    expect(honest.errors).toEqual([])
    expect(openCheckpoint(await honest.log.checkpoint(), { log: honest.log.vkey, witnesses: [vkey], quorum: 1 }).cosignatures).toHaveLength(1)
    // Hostile: refused (reported), the checkpoint served stays verifiable by whoever trusts that witness.
    const hostile = await run((note) => `\n${cosigner.cosign(note, now)}`)
    expect(hostile.errors).toHaveLength(1)
    const cp = openCheckpoint(await hostile.log.checkpoint(), { log: hostile.log.vkey, witnesses: [vkey], quorum: 0 })
    expect(cp.cosignatures).toHaveLength(0)
  })

  it('keeps a witness cosignature only when dated within 60 s of the issuer clock and not before its checkpoint', async () => {
    // A witness whose clock is fast dates its cosignatures ahead: verifiers ignore one more than 60 s
    // ahead of theirs, so kept, the served checkpoint seemed cosigned and met no quorum. One dated before
    // the checkpoint was signed comes from a wrong clock too. Both are refused and reported.
    h = await harness()
    const { skey, vkey } = generateNoteKey('witness.test/w1', SIG_TYPE_COSIGNATURE_V1)
    const cosigner = createCosigner(parseSignerKey(skey))
    const at = (offset: number) => (note: string) => cosigner.cosign(parseNote(note).text, Math.floor(Date.now() / 1000) + offset)
    for (const [offset, kept] of [[0, true], [30, true], [-30, true], [75, false], [3600, false], [-3600, false]] as const) {
      const { log, errors } = await submitToWitness(h, vkey, at(offset))
      expect(errors, `offset ${offset}`).toHaveLength(kept ? 0 : 1)
      const served = await log.checkpoint()
      const cosigned = openCheckpoint(served, { log: log.vkey, witnesses: [vkey], quorum: 0, now: Math.floor(Date.now() / 1000) }).cosignatures
      expect(cosigned, `offset ${offset}`).toHaveLength(kept ? 1 : 0)
      // What is served verifies, with the quorum it seems to have, by a verifier on the issuer's clock.
      expect(() => openCheckpoint(served, { log: log.vkey, witnesses: [vkey], quorum: cosigned.length, now: Math.floor(Date.now() / 1000) })).not.toThrow()
      expect(await log.cosignatures(log.size), `offset ${offset}`).toHaveLength(kept ? 1 : 0)
    }
  })

  it('parses AGENTID_LOG_WITNESSES strictly', () => {
    expect(parseWitnesses(undefined)).toEqual([])
    for (const bad of ['{', '{}', '[{"url":"ftp://x","vkey":"a"}]', '[{"url":"http://x"}]', '[{"url":"http://x","vkey":"nope"}]']) {
      expect(() => parseWitnesses(bad), bad).toThrow(expect.objectContaining({ code: 'ERR_INVALID_INPUT' }))
    }
    void utf8
  })
})
