// Red team, scale-out: PostgreSQL faults under a real issuer process. The issuer reaches PostgreSQL
// through a TCP proxy in the test, which blackholes (holds every connection, forwards nothing) or
// cuts (resets) its connections; the shared server is never stopped. Needs PostgreSQL at
// 127.0.0.1:5432 (or AGENTID_TEST_PG_URL): skipped with the reason printed when absent, failed when
// AGENTID_REQUIRE_SERVICES=1.
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { signCompactJws, signerFromJwk, signJwt, type Ed25519PrivateJwk } from '@agentid/core'
import { afterAll, describe, expect, it } from 'vitest'
import { agentHeldSpawn, api, cleanup, sleep, startIssuer } from './harness.js'
import { proxiedUrl } from './redteam-scale-proxy.js'
import { pgAbsent, tempPgDatabase } from '../apps/issuer/test/pg-helpers.js'

const absent = await pgAbsent()
const REQUIRE = process.env.AGENTID_REQUIRE_SERVICES === '1'
if (absent !== null && !REQUIRE) console.warn(`skipping test/redteam-scale-pg.test.ts: ${absent}`)
const suite = absent === null || REQUIRE ? describe : describe.skip

const closers: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => {})
  await cleanup()
})

/** A database, a proxy to the server, one issuer on the database through the proxy, an orchestrator. */
async function issuerBehindProxy() {
  if (absent !== null) throw new Error(`AGENTID_REQUIRE_SERVICES=1 but ${absent}`)
  const db = await tempPgDatabase()
  closers.push(db.drop)
  const { proxy, url: viaProxy } = await proxiedUrl(db.url, 5432)
  closers.push(() => proxy.close())
  const issuer = await startIssuer({ env: { AGENTID_DATABASE_URL: viaProxy, AGENTID_SECRET: randomBytes(32).toString('base64url') } })
  closers.push(async () => void (await issuer.kill()))
  const did = ((await api(issuer, 'GET', '/v1/issuer')).body as { did: string }).did
  const orch = await api(issuer, 'POST', '/v1/orchestrators', { key: issuer.adminKey, json: { name: 'faults' } })
  expect(orch.status, orch.text).toBe(201)
  const orchKey = (orch.body as { apiKey: string }).apiKey
  const spawn = async (i: string, timeoutMs = 120_000) => {
    const a = await agentHeldSpawn(did, i)
    const r = await api(issuer, 'POST', '/v1/agents', { key: orchKey, json: a.body, timeoutMs })
    return Object.assign(r, { agent: a })
  }
  return { db, proxy, issuer, did, orchKey, spawn }
}

/** POST /v1/token (client_credentials, DPoP with `nonce` when given) for `agent`: status, error, DPoP-Nonce. */
async function tokenRequest(base: string, agent: { did: string; privateJwk: Ed25519PrivateJwk }, nonce?: string) {
  const tokenUrl = `${base}/v1/token`
  const signer = signerFromJwk(agent.privateJwk)
  const now = Math.floor(Date.now() / 1000)
  const jti = () => Math.random().toString(36).slice(2) + Date.now().toString(36)
  const assertion = await signJwt({ typ: 'JWT' }, { iss: agent.did, sub: agent.did, aud: tokenUrl, iat: now, exp: now + 60, jti: jti() }, signer)
  const dpop = await signCompactJws({ typ: 'dpop+jwt', alg: 'EdDSA', jwk: { kty: 'OKP', crv: 'Ed25519', x: agent.privateJwk.x } }, JSON.stringify({ htm: 'POST', htu: tokenUrl, iat: now, jti: jti(), ...(nonce ? { nonce } : {}) }), signer)
  const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: agent.did, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion, resource: 'https://api.example/' })
  const r = await fetch(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', dpop }, body: form.toString(), signal: AbortSignal.timeout(120_000) })
  const body = (await r.json().catch(() => ({}))) as { error?: string }
  return { status: r.status, error: body.error, nonce: r.headers.get('dpop-nonce') ?? undefined }
}

suite('PostgreSQL faults under one issuer', () => {
  it('blackholed PostgreSQL: requests answer 503 ERR_UNAVAILABLE in bounded time (not hang), readiness says so; back: works without a restart', async () => {
    const { proxy, issuer, spawn } = await issuerBehindProxy()
    const before = await spawn('before')
    expect(before.status).toBe(201)
    const agent = { did: before.agent.did, privateJwk: before.agent.privateJwk }
    const first = await tokenRequest(issuer.url, agent)
    expect(first.error).toBe('use_dpop_nonce')

    proxy.blackhole()
    // Generous bounds (a loaded 2-core machine): the point is an answer, not its speed.
    const t0 = Date.now()
    const [spawned, listed, ready, token] = await Promise.all([
      spawn('blackholed').catch((e: Error) => ({ status: -1, text: e.message, body: undefined })),
      api(issuer, 'GET', '/v1/agents', { key: issuer.adminKey, timeoutMs: 120_000 }).catch((e: Error) => ({ status: -1, text: e.message, body: undefined })),
      api(issuer, 'GET', '/readyz', { timeoutMs: 120_000 }).catch((e: Error) => ({ status: -1, text: e.message, body: undefined })),
      tokenRequest(issuer.url, agent, first.nonce).catch((e: Error) => ({ status: -1, error: e.message, nonce: undefined })),
    ])
    const took = Date.now() - t0
    expect(spawned.status, spawned.text).toBe(503)
    expect((spawned.body as { error?: { code?: string } })?.error?.code).toBe('ERR_UNAVAILABLE')
    expect(listed.status, listed.text).toBe(503)
    expect(ready.status, ready.text).toBe(503)
    // The token endpoint answers in OAuth's shape: temporarily_unavailable, 503 (not server_error, 500).
    expect([token.status, token.error]).toEqual([503, 'temporarily_unavailable'])
    expect(took).toBeLessThan(100_000)
    // Liveness stays up: the process is fine, its database is not.
    expect((await api(issuer, 'GET', '/healthz', { timeoutMs: 10_000 })).status).toBe(200)

    proxy.pass()
    let back = 0
    for (let i = 0; i < 120; i++) {
      const r = await spawn(`after-${i}`, 60_000).catch(() => null)
      if (r?.status === 201) { back++; if (back >= 3) break }
      else await sleep(500)
    }
    expect(back, 'spawns after the blackhole lifted').toBe(3)
    expect((await api(issuer, 'GET', '/readyz', { timeoutMs: 30_000 })).status).toBe(200)
  })

  it('every PostgreSQL connection reset mid-load: nothing acknowledged lost or doubled, log gap-free, recovers without a restart', async () => {
    const { db, proxy, issuer, spawn } = await issuerBehindProxy()
    const acked: string[] = []
    let failed = 0
    const statuses = new Map<number, number>()
    let stop = false
    const load = (async () => {
      const workers = Array.from({ length: 6 }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          const r = await spawn(`cut-${w}-${i}`, 60_000).catch(() => null)
          statuses.set(r?.status ?? -1, (statuses.get(r?.status ?? -1) ?? 0) + 1)
          if (r?.status === 201) acked.push((r.body as { credentialId: string }).credentialId)
          else failed++
        }
      })
      await Promise.all(workers)
    })()
    for (let k = 0; k < 5; k++) {
      await sleep(700)
      proxy.cut()
    }
    await sleep(1500)
    stop = true
    await load
    // Recovered: new spawns succeed.
    let ok = 0
    for (let i = 0; i < 40 && ok < 3; i++) {
      const r = await spawn(`cut-after-${i}`, 60_000).catch(() => null)
      if (r?.status === 201) { ok++; acked.push((r.body as { credentialId: string }).credentialId) } else await sleep(250)
    }
    expect(ok, `statuses ${JSON.stringify([...statuses])}; stderr:\n${issuer.stderr().slice(-3000)}`).toBe(3)
    // No 5xx but 503/500 for failures (no hang, no crash).
    for (const s of statuses.keys()) expect([201, 500, 503], `status ${s}`).toContain(s)

    const c = new pg.Client({ connectionString: db.url })
    await c.connect()
    closers.push(() => c.end())
    const ids = new Set((await c.query<{ id: string }>('SELECT id FROM credentials')).rows.map((r) => r.id))
    for (const id of acked) expect(ids.has(id), `acknowledged spawn ${id} lost`).toBe(true)
    const slots = (await c.query<{ s: string }>("SELECT status_list_id || '#' || status_index AS s FROM credentials")).rows.map((r) => r.s)
    expect(new Set(slots).size).toBe(slots.length)
    const [log] = (await c.query<{ n: string; max: string | null }>('SELECT count(*) AS n, max(log_index) AS max FROM audit_events')).rows
    expect(Number(log!.max)).toBe(Number(log!.n) - 1)
    // The log catches up: a checkpoint over every event.
    let size = 0
    for (let k = 0; k < 200 && size < Number(log!.n); k++) {
      const cp = await c.query<{ size: string }>('SELECT max(size) AS size FROM log_checkpoints')
      size = Number(cp.rows[0]!.size ?? 0)
      if (size < Number(log!.n)) await sleep(100)
    }
    expect(size).toBe(Number(log!.n))
    console.info(`redteam-scale-pg cut: ${acked.length} acknowledged, ${failed} failed, statuses ${JSON.stringify([...statuses])}; issuer alive: ${issuer.proc.exitCode === null}`)
    expect(issuer.proc.exitCode).toBeNull()
  })
})
