// End to end: three issuer processes on one PostgreSQL database (AGENTID_DATABASE_URL), started
// together, behind a round-robin proxy (the public URL), under concurrent spawn, renew and revoke load;
// one instance is SIGKILLed mid-load. Then an audit on the database and with a verifier: no
// acknowledged write lost, no status index or DID twice, every credential verifies (revoked ones
// refused) against the status lists the proxy serves, the audit log's indices gapless. Needs
// PostgreSQL at 127.0.0.1:5432 (or AGENTID_TEST_PG_URL): skipped with the reason printed when absent,
// failed when AGENTID_REQUIRE_SERVICES=1. Tokens: DPoP nonces issued by one instance are accepted by
// another. The log: one sequencer at a time; every surviving instance serves a checkpoint over every
// event, whose tree the entry bundles rebuild, and tlog-proofs that verify.
import { randomBytes } from 'node:crypto'
import { createServer, request as httpRequest, type Server } from 'node:http'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { createProofOfPossession, signCompactJws, signerFromJwk, signJwt, type Ed25519PrivateJwk } from '@agentid/core'
import { decodeEntryBundle, MerkleTree, openCheckpoint, parseTlogProof, TILE_WIDTH, verifyTlogProof } from '@agentid/tlog'
import { createVerifier } from '@agentid/verifier'
import { agentHeldSpawn, api, cleanup, freePort, newAdminKey, pool, sleep, startIssuer, type IssuerProcess } from './harness.js'
import { pgAbsent, tempPgDatabase } from '../apps/issuer/test/pg-helpers.js'

const absent = await pgAbsent()
const REQUIRE = process.env.AGENTID_REQUIRE_SERVICES === '1'
if (absent !== null && !REQUIRE) console.warn(`skipping test/postgres-instances.test.ts: ${absent}`)
const suite = absent === null || REQUIRE ? describe : describe.skip

const closers: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => {})
  await cleanup()
})

/** A round-robin HTTP proxy over `targets` (skipping none: a dead target answers 502, as a naive balancer would). */
async function roundRobin(targets: () => readonly string[]): Promise<{ url: string; server: Server }> {
  let next = 0
  const server = createServer((req, res) => {
    const list = targets()
    const target = new URL(list[next++ % list.length]!)
    const up = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers)
      r.pipe(res)
    })
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' })
      res.end('{"error":{"code":"ERR_UNAVAILABLE","message":"upstream down"}}')
    })
    req.pipe(up)
  })
  const port = await freePort()
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${port}`, server }
}

/**
 * A DPoP-bound token for `agent` at `tokenUrl` (the public token endpoint), sent to `via`: the first
 * answer is use_dpop_nonce with a nonce, the retry goes to `retryVia` (another instance). Returns the
 * final status and error.
 */
async function token(via: string, retryVia: string, tokenUrl: string, agent: { did: string; privateJwk: Ed25519PrivateJwk }): Promise<{ status: number; error?: string; nonceFrom?: string }> {
  const signer = signerFromJwk(agent.privateJwk)
  const publicJwk = { kty: 'OKP', crv: 'Ed25519', x: agent.privateJwk.x }
  const attempt = async (base: string, nonce?: string) => {
    const now = Math.floor(Date.now() / 1000)
    const assertion = await signJwt({ typ: 'JWT' }, { iss: agent.did, sub: agent.did, aud: tokenUrl, iat: now, exp: now + 60, jti: randomBytes(12).toString('hex') }, signer)
    const dpop = await signCompactJws({ typ: 'dpop+jwt', alg: 'EdDSA', jwk: publicJwk }, JSON.stringify({ htm: 'POST', htu: tokenUrl, iat: now, jti: randomBytes(12).toString('hex'), ...(nonce ? { nonce } : {}) }), signer)
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: agent.did, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion, resource: 'https://api.example/' })
    const r = await fetch(`${base}/v1/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', dpop }, body: form.toString() })
    const body = (await r.json().catch(() => ({}))) as { error?: string }
    return { status: r.status, error: body.error, nonce: r.headers.get('dpop-nonce') ?? undefined }
  }
  const first = await attempt(via)
  if (first.status !== 400 || first.error !== 'use_dpop_nonce' || !first.nonce) return { status: first.status, ...(first.error ? { error: first.error } : {}) }
  const second = await attempt(retryVia, first.nonce)
  return { status: second.status, ...(second.error ? { error: second.error } : {}), nonceFrom: via }
}

suite('three issuer instances on one PostgreSQL database', () => {
  it('spawn/renew/token/revoke load through a round-robin proxy, one instance SIGKILLed: nothing acknowledged lost, nothing doubled', async () => {
    if (absent !== null) throw new Error(`AGENTID_REQUIRE_SERVICES=1 but ${absent}`)
    const db = await tempPgDatabase()
    closers.push(db.drop)
    const adminKey = newAdminKey()
    let instances: IssuerProcess[] = []
    const proxy = await roundRobin(() => instances.map((i) => i.url))
    const env = { AGENTID_DATABASE_URL: db.url, AGENTID_SECRET: randomBytes(32).toString('base64url'), AGENTID_BASE_URL: proxy.url }
    // Started together: migrations and the issuer identity happen once.
    instances = await Promise.all([0, 1, 2].map(() => startIssuer({ adminKey, env })))
    const dids = await Promise.all(instances.map(async (i) => ((await api(i, 'GET', '/v1/issuer')).body as { did: string }).did))
    expect(new Set(dids).size).toBe(1)
    const issuerDid = dids[0]!

    const tokenUrl = `${proxy.url}/v1/token`
    const orch = await api(proxy.url, 'POST', '/v1/orchestrators', { key: adminKey, json: { name: 'pg-load' } })
    expect(orch.status, orch.text).toBe(201)
    const orchKey = (orch.body as { apiKey: string }).apiKey

    interface Spawned { did: string; privateJwk: Ed25519PrivateJwk; credentialId: string; credential: string; index: number; list: string }
    const spawned: Spawned[] = []
    const renewed: { did: string; credentialId: string; credential: string }[] = []
    const revoked: string[] = []
    let tokens = 0
    const revoking = new Set<string>() // credentials a revocation was sent for (acknowledged or not)
    let refused = 0
    const N = 180
    const victim = instances[1]!
    let killed = false
    await pool(Array.from({ length: N }, (_, i) => i), 12, async (i) => {
      if (i === Math.floor(N / 3) && !killed) {
        killed = true
        await victim.kill()
        instances = instances.filter((x) => x !== victim) // the balancer takes it out (after some 502s)
      }
      const kind = i < 20 || spawned.length < 5 ? 'spawn' : ['spawn', 'token', 'renew', 'revoke', 'spawn'][i % 5]!
      if (kind === 'spawn') {
        const a = await agentHeldSpawn(issuerDid, `pg-${i}`)
        const r = await api(proxy.url, 'POST', '/v1/agents', { key: orchKey, json: a.body }).catch(() => null)
        if (r?.status !== 201) { refused++; return }
        const b = r.body as { credentialId: string; credential: string; status: { statusListCredential: string; statusListIndex: number } }
        spawned.push({ did: a.did, privateJwk: a.privateJwk, credentialId: b.credentialId, credential: b.credential, index: b.status.statusListIndex, list: b.status.statusListCredential })
      } else if (kind === 'token') {
        const agent = spawned[(i * 3) % spawned.length]!
        if (revoking.has(agent.credentialId)) return
        // The nonce asked of one live instance, the token of another.
        const live = instances.map((x) => x.url)
        const t = await token(live[i % live.length]!, live[(i + 1) % live.length]!, tokenUrl, agent).catch(() => null)
        if (t?.status === 200) tokens++
        else if (t && !revoking.has(agent.credentialId)) throw new Error(`token refused: ${t.status} ${t.error}`)
        else refused++
      } else if (kind === 'renew') {
        const agent = spawned[i % spawned.length]!
        if (revoked.includes(agent.credentialId)) return
        const proof = await createProofOfPossession({ signer: signerFromJwk(agent.privateJwk), audience: issuerDid, purpose: 'renew', ttlSec: 120 })
        const r = await api(proxy.url, 'POST', `/v1/agents/${encodeURIComponent(agent.did)}/renew`, { json: { proof } }).catch(() => null)
        if (r?.status !== 201) { refused++; return }
        const b = r.body as { credentialId: string; credential: string }
        renewed.push({ did: agent.did, credentialId: b.credentialId, credential: b.credential })
      } else {
        const agent = spawned[(i * 7) % spawned.length]!
        revoking.add(agent.credentialId)
        const r = await api(proxy.url, 'POST', `/v1/credentials/${encodeURIComponent(agent.credentialId)}/revoke`, { key: adminKey, json: { reason: 'load' } }).catch(() => null)
        if (r?.status !== 200) { refused++; return }
        revoked.push(agent.credentialId)
      }
    })
    expect(killed).toBe(true)
    expect(spawned.length).toBeGreaterThan(N / 3)
    expect(renewed.length).toBeGreaterThan(5)
    expect(revoked.length).toBeGreaterThan(5)
    expect(tokens).toBeGreaterThan(5)

    // The audit, on the database.
    const c = new pg.Client({ connectionString: db.url })
    await c.connect()
    closers.push(() => c.end())
    const q = async <R>(sql: string, args: unknown[] = []) => (await c.query(sql, args)).rows as R[]
    const creds = new Map((await q<{ id: string; agent_did: string; status_list_id: string; status_index: string; revoked_at: string | null }>('SELECT id, agent_did, status_list_id, status_index, revoked_at FROM credentials')).map((r) => [r.id, r]))
    for (const s of spawned) {
      expect(creds.get(s.credentialId)?.agent_did, `acknowledged spawn ${s.credentialId} lost`).toBe(s.did)
      expect(Number(creds.get(s.credentialId)!.status_index)).toBe(s.index)
    }
    for (const r of renewed) expect(creds.get(r.credentialId)?.agent_did, `acknowledged renewal ${r.credentialId} lost`).toBe(r.did)
    for (const id of revoked) expect(creds.get(id)?.revoked_at, `acknowledged revocation of ${id} lost`).not.toBeNull()
    const slots = [...creds.values()].map((r) => `${r.status_list_id}#${r.status_index}`)
    expect(new Set(slots).size, 'a status index handed out twice').toBe(slots.length)
    const didRows = await q<{ did: string }>('SELECT did FROM agents')
    expect(new Set(didRows.map((r) => r.did)).size).toBe(didRows.length)
    expect(new Set(spawned.map((s) => s.did)).size).toBe(spawned.length)
    const [log] = await q<{ n: string; max: string | null; min: string | null }>('SELECT count(*) AS n, max(log_index) AS max, min(log_index) AS min FROM audit_events')
    expect(Number(log!.min)).toBe(0)
    expect(Number(log!.max)).toBe(Number(log!.n) - 1) // gapless, unique (UNIQUE index)
    const [marks] = await q<{ n: string }>("SELECT count(*) AS n FROM audit_events WHERE action IN ('agent.spawned', 'agent.renewed', 'credential.revoked')")
    expect(Number(marks!.n)).toBeGreaterThanOrEqual(spawned.length + renewed.length + new Set(revoked).size) // a second revocation of one credential writes nothing
    const [lists] = await q<{ ok: boolean }>('SELECT bool_and(next_index <= entries) AS ok FROM status_lists')
    expect(lists!.ok).toBe(true)

    // The log: every surviving instance ends up serving a checkpoint over all the events, signed by the
    // one log key; the entry bundles rebuild its root; a credential's tlog-proof verifies from each.
    const total = Number(log!.n)
    const vkey = (await api(instances[0]!, 'GET', '/log/key')).text.trim()
    for (const inst of instances) {
      expect((await api(inst, 'GET', '/log/key')).text.trim()).toBe(vkey)
      let size = 0
      for (let k = 0; k < 100 && size < total; k++) {
        const r = await api(inst, 'GET', '/log/checkpoint')
        if (r.status === 200) size = openCheckpoint(r.text, { log: vkey }).size
        if (size < total) await sleep(100)
      }
      expect(size, `instance ${inst.url} checkpoint`).toBe(total)
      const cp = openCheckpoint((await api(inst, 'GET', '/log/checkpoint')).text, { log: vkey })
      const tree = new MerkleTree()
      for (let t = 0; t * TILE_WIDTH < cp.size; t++) {
        const width = Math.min(TILE_WIDTH, cp.size - t * TILE_WIDTH)
        const path = `/log/tile/entries/${String(t).padStart(3, '0')}${width === TILE_WIDTH ? '' : `.p/${width}`}`
        const res = await fetch(`${inst.url}${path}`)
        expect(res.status, path).toBe(200)
        for (const e of decodeEntryBundle(new Uint8Array(await res.arrayBuffer()))) tree.appendEntry(e)
      }
      expect(Buffer.from(tree.root(cp.size)).equals(Buffer.from(cp.rootHash))).toBe(true)
      const proof = await api(inst, 'GET', `/v1/log/proof?credential=${encodeURIComponent(spawned[0]!.credentialId)}`)
      expect(proof.status, proof.text).toBe(200)
      expect(verifyTlogProof(proof.text, { entry: parseTlogProof(proof.text).extra!, log: vkey }).index).toBeGreaterThanOrEqual(0)
    }
    // One history: every checkpoint any sequencer stored (leadership moves when one dies) is a prefix
    // of the same tree.
    const full = new MerkleTree()
    for (const e of decodeEntryBundle(new Uint8Array(await (await fetch(`${instances[0]!.url}/log/tile/entries/000${total >= TILE_WIDTH ? '' : `.p/${total}`}`)).arrayBuffer()))) full.appendEntry(e)
    const stored = await q<{ note: string }>('SELECT note FROM log_checkpoints ORDER BY size')
    expect(stored.length).toBeGreaterThan(0)
    for (const { note } of stored) {
      const cp = openCheckpoint(note, { log: vkey })
      if (cp.size <= full.size) expect(Buffer.from(full.root(cp.size)).equals(Buffer.from(cp.rootHash)), `checkpoint ${cp.size}`).toBe(true)
    }

    // Every acknowledged credential verifies through the proxy's status lists; revoked ones are refused.
    const verifier = createVerifier({ trustedIssuers: [issuerDid], statusTtlMs: 0 })
    closers.push(() => verifier.close())
    const revokedSet = new Set(revoked)
    for (const s of [...spawned, ...renewed]) {
      const outcome = await verifier.verifyAgentCredential(s.credential).then(() => 'OK', (e: { code?: string }) => e.code ?? 'ERROR')
      expect(outcome, s.credentialId).toBe(revokedSet.has(s.credentialId) ? 'ERR_REVOKED' : 'OK')
    }
    console.info(`postgres-instances: ${spawned.length} spawns, ${renewed.length} renewals, ${revoked.length} revocations, ${tokens} tokens (nonce from one instance, token from another) acknowledged; ${refused} refused or failed (instance killed at op ${Math.floor(N / 3)})`)
  })
})
