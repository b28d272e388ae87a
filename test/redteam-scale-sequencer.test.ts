// Red team, scale-out: two issuer processes on one PostgreSQL database while the server terminates
// their connections (pg_terminate_backend, on this test's own database only): the backend holding the
// log sequencer's lock, then every backend of the database mid-load. Afterwards: both instances alive,
// nothing acknowledged lost, the log one gap-free sequence, every stored checkpoint a prefix of one
// tree, both instances serving a checkpoint over every event. Needs PostgreSQL at 127.0.0.1:5432 (or
// AGENTID_TEST_PG_URL): skipped with the reason printed when absent, failed when AGENTID_REQUIRE_SERVICES=1.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { decodeEntryBundle, MerkleTree, openCheckpoint, TILE_WIDTH } from '@agentid/tlog'
import { agentHeldSpawn, api, cleanup, freePort, newAdminKey, sleep, startIssuer } from './harness.js'
import { pgAbsent, tempPgDatabase } from '../apps/issuer/test/pg-helpers.js'

const absent = await pgAbsent()
const REQUIRE = process.env.AGENTID_REQUIRE_SERVICES === '1'
if (absent !== null && !REQUIRE) console.warn(`skipping test/redteam-scale-sequencer.test.ts: ${absent}`)
const suite = absent === null || REQUIRE ? describe : describe.skip

const closers: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => {})
  await cleanup()
})

// The advisory lock keys of apps/issuer/src/storage/pg-migrations.ts: class 'agid', objid 4 = the sequencer.
const LOCK_CLASS = 0x61676964
const SEQUENCER = 4

suite('log sequencer under terminated PostgreSQL connections', () => {
  it('the lock holder terminated, then every backend mid-load: another instance sequences, nothing lost, one gap-free log', async () => {
    if (absent !== null) throw new Error(`AGENTID_REQUIRE_SERVICES=1 but ${absent}`)
    const db = await tempPgDatabase()
    closers.push(db.drop)
    const name = new URL(db.url).pathname.slice(1)
    const adminKey = newAdminKey()
    // One public URL for both (as behind a balancer; the log origin is its host): the first's.
    const port = await freePort()
    const env = { AGENTID_DATABASE_URL: db.url, AGENTID_SECRET: randomBytes(32).toString('base64url'), AGENTID_BASE_URL: `http://127.0.0.1:${port}` }
    const instances = await Promise.all([port, undefined].map((p) => startIssuer({ adminKey, env, ...(p ? { port: p } : {}) })))
    for (const i of instances) closers.push(async () => void (await i.kill()))
    const did = ((await api(instances[0]!, 'GET', '/v1/issuer')).body as { did: string }).did
    const orch = await api(instances[0]!, 'POST', '/v1/orchestrators', { key: adminKey, json: { name: 'seq' } })
    expect(orch.status, orch.text).toBe(201)
    const orchKey = (orch.body as { apiKey: string }).apiKey
    const acked: string[] = []
    let failed = 0
    let n = 0
    const spawnSome = async (count: number) => {
      await Promise.all(Array.from({ length: count }, async () => {
        const a = await agentHeldSpawn(did, `seq-${n}`)
        const r = await api(instances[n++ % 2]!, 'POST', '/v1/agents', { key: orchKey, json: a.body, timeoutMs: 90_000 }).catch(() => null)
        if (r?.status === 201) acked.push((r.body as { credentialId: string }).credentialId)
        else {
          expect([503, 500], r?.text).toContain(r?.status)
          failed++
        }
      }))
    }

    const admin = new pg.Client({ connectionString: db.url })
    await admin.connect()
    closers.push(() => admin.end())
    const holder = async (): Promise<number | undefined> => {
      const r = await admin.query<{ pid: number }>("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND granted", [LOCK_CLASS, SEQUENCER])
      return r.rows[0]?.pid
    }
    const checkpointSize = async () => Number((await admin.query<{ s: string | null }>('SELECT max(size) AS s FROM log_checkpoints')).rows[0]!.s ?? 0)
    const events = async () => Number((await admin.query<{ n: string }>('SELECT count(*) AS n FROM audit_events')).rows[0]!.n)
    const caughtUp = async (limitMs: number) => {
      const until = Date.now() + limitMs
      while (Date.now() < until) {
        if ((await checkpointSize()) === (await events())) return true
        await sleep(100)
      }
      return false
    }

    await spawnSome(6)
    expect(await caughtUp(30_000)).toBe(true)
    // The sequencer's lock is held per turn (every 250 ms), about a millisecond when the turn has
    // little to do: catch its holder a few times, bounded by time rather than by tries, with a trickle
    // of spawns so that turns have work (a quiet machine turns too fast for a fixed number of polls).
    let terminated = 0
    const trickle: Promise<void>[] = []
    const until = Date.now() + 60_000
    for (let k = 0; Date.now() < until && terminated < 3; k++) {
      const pid = await holder()
      if (pid !== undefined) {
        await admin.query('SELECT pg_terminate_backend($1)', [pid])
        terminated++
        await spawnSome(4)
      } else {
        if (k % 200 === 0) trickle.push(spawnSome(2))
        await sleep(1)
      }
    }
    await Promise.all(trickle)
    expect(terminated, 'never caught the sequencer lock held').toBeGreaterThan(0)
    // Every backend of the database (but this one), twice, while spawns run.
    const load = spawnSome(30)
    for (let k = 0; k < 2; k++) {
      await sleep(400)
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name])
    }
    await load
    await spawnSome(4)
    expect(await caughtUp(60_000), `checkpoint ${await checkpointSize()} of ${await events()} events`).toBe(true)

    for (const i of instances) expect(i.proc.exitCode, i.stderr().slice(-2000)).toBeNull()
    const ids = new Set((await admin.query<{ id: string }>('SELECT id FROM credentials')).rows.map((r) => r.id))
    for (const id of acked) expect(ids.has(id), `acknowledged spawn ${id} lost`).toBe(true)
    const [log] = (await admin.query<{ n: string; max: string | null; min: string | null }>('SELECT count(*) AS n, max(log_index) AS max, min(log_index) AS min FROM audit_events')).rows
    expect(Number(log!.min)).toBe(0)
    expect(Number(log!.max)).toBe(Number(log!.n) - 1)
    const total = Number(log!.n)

    // Both instances serve a checkpoint over every event, by the one log key; the bundles rebuild it.
    const vkey = (await api(instances[0]!, 'GET', '/log/key')).text.trim()
    for (const inst of instances) {
      let size = 0
      for (let k = 0; k < 300 && size < total; k++) {
        const r = await api(inst, 'GET', '/log/checkpoint')
        if (r.status === 200) size = openCheckpoint(r.text, { log: vkey }).size
        if (size < total) await sleep(100)
      }
      expect(size, `instance ${inst.url} checkpoint`).toBe(total)
    }
    const tree = new MerkleTree()
    for (let t = 0; t * TILE_WIDTH < total; t++) {
      const width = Math.min(TILE_WIDTH, total - t * TILE_WIDTH)
      const res = await fetch(`${instances[1]!.url}/log/tile/entries/${String(t).padStart(3, '0')}${width === TILE_WIDTH ? '' : `.p/${width}`}`)
      expect(res.status).toBe(200)
      for (const e of decodeEntryBundle(new Uint8Array(await res.arrayBuffer()))) tree.appendEntry(e)
    }
    // One history: every checkpoint stored is a prefix of the same tree; the stored tiles match it.
    for (const { note } of (await admin.query<{ note: string }>('SELECT note FROM log_checkpoints ORDER BY size')).rows) {
      const cp = openCheckpoint(note, { log: vkey })
      expect(Buffer.from(tree.root(cp.size)).equals(Buffer.from(cp.rootHash)), `checkpoint ${cp.size}`).toBe(true)
    }
    const tiles = (await admin.query<{ idx: number; hashes: Buffer }>('SELECT idx, hashes FROM log_tiles WHERE level = 0 ORDER BY idx')).rows
    expect(tiles.reduce((s, t) => s + t.hashes.length / 32, 0)).toBe(total)
    console.info(`redteam-scale-sequencer: lock holder terminated ${terminated}x, all backends 2x; ${acked.length} spawns acknowledged, ${failed} refused; ${total} log entries`)
  })
})
