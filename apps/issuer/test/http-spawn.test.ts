// Spawn (both custody modes), challenges, agent records and renewal, through the HTTP API.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { base64urlDecode, decodeJwt, didFromPublicJwk, signerFromJwk } from '@agentid/core'
import { renew as clientRenew, spawn as clientSpawn, type Fetch } from '@agentid/client'
import {
  BASE_URL,
  bearer,
  claims,
  counts,
  expectError,
  harness,
  namedKey,
  proof,
  spawnAgent,
  verifierFor,
  type Harness,
  type SpawnResult,
} from './http-fixtures.js'

let h: Harness
beforeAll(async () => { h = await harness() })
afterAll(async () => { await h.close() })

const nowSec = () => Math.floor(h.clock.now / 1000)

interface AgentView {
  did: string; orchestrator: string; keyCustody: string; status: string; claims: unknown; revokedAt: string | null
  credentials: { id: string; status: string; statusListCredential: string; statusListIndex: number; expiresAt: string }[]
}

describe('POST /v1/challenges', () => {
  it('gives any authenticated caller a single-use nonce valid two minutes', async () => {
    for (const key of [h.orch.apiKey, h.adminKey]) {
      const res = await h.app.inject({ method: 'POST', url: '/v1/challenges', headers: bearer(key) })
      expect(res.statusCode).toBe(201)
      const body = res.json() as { nonce: string; expiresAt: string }
      expect(body.nonce).toMatch(/^[A-Za-z0-9_-]{32}$/)
      expect(Date.parse(body.expiresAt) / 1000).toBe(nowSec() + 120)
    }
  })

  it('two challenges differ', async () => {
    const a = (await h.app.inject({ method: 'POST', url: '/v1/challenges', headers: bearer(h.orch.apiKey) })).json()
    const b = (await h.app.inject({ method: 'POST', url: '/v1/challenges', headers: bearer(h.orch.apiKey) })).json()
    expect(a.nonce).not.toBe(b.nonce)
  })

  it('needs a key', async () => {
    expectError(await h.app.inject({ method: 'POST', url: '/v1/challenges' }), 401, 'ERR_UNAUTHENTICATED')
  })
})

describe('POST /v1/agents, agent-held key', () => {
  it('registers the DID of the proof and issues a credential the verifier accepts', async () => {
    const alice = namedKey()
    const before = counts(h)
    const res = await h.app.inject({ method: 'POST', url: '/v1/agents', headers: bearer(h.orch.apiKey), payload: { ...claims, proof: await proof(h, alice) } })
    expect(res.statusCode).toBe(201)
    expect(res.headers['cache-control']).toBe('no-store')
    const body = res.json() as SpawnResult
    expect(body.did).toBe(alice.did)
    expect(body.keyCustody).toBe('agent')
    expect(body).not.toHaveProperty('privateJwk')
    expect(body).not.toHaveProperty('logIndex') // named only when the server serves the issuer log
    // A UUID version 7 made at the issuer's clock: credential ids are appended to their indexes.
    expect(body.credentialId).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(parseInt(body.credentialId.slice(9, 17) + body.credentialId.slice(18, 22), 16)).toBe(h.clock.now)
    expect(Date.parse(body.expiresAt) / 1000).toBe(nowSec() + 3600)
    expect(body.status.statusListCredential).toMatch(new RegExp(`^${BASE_URL}/v1/status-lists/[1-9][0-9]*$`))
    expect(Number.isInteger(body.status.statusListIndex)).toBe(true)

    const agent = await verifierFor(h).verifyAgentCredential(body.credential)
    expect(agent.did).toBe(alice.did)
    expect(agent.issuer).toBe(h.issuerDid)
    expect(agent.credentialId).toBe(body.credentialId)
    expect(agent.claims).toEqual(claims)
    expect(agent.status).toEqual(body.status)
    expect(agent.expiresAt).toBe(nowSec() + 3600)

    const after = counts(h)
    expect(after.agents).toBe(before.agents + 1)
    expect(after.credentials).toBe(before.credentials + 1)
    expect(after.proof_nonces).toBe(before.proof_nonces + 1)
    expect(after.audit_events).toBe(before.audit_events + 1)
  })

  it('accepts an explicit did matching the proof, and lifetimeSec', async () => {
    const alice = namedKey()
    const body = await spawnAgent(h, alice, { lifetimeSec: 600 })
    expect(body.did).toBe(alice.did)
    expect(Date.parse(body.expiresAt) / 1000).toBe(nowSec() + 600)
    expect(decodeJwt(body.credential).payload.exp).toBe(nowSec() + 600)
  })

  it('with a challenge nonce: spends the challenge', async () => {
    const alice = namedKey()
    const { nonce } = (await h.app.inject({ method: 'POST', url: '/v1/challenges', headers: bearer(h.orch.apiKey) })).json() as { nonce: string }
    const used = () => (h.service.store.db.prepare('SELECT used FROM challenges WHERE nonce = ?').get(nonce) as { used: number }).used
    expect(used()).toBe(0)
    const res = await h.app.inject({ method: 'POST', url: '/v1/agents', headers: bearer(h.orch.apiKey), payload: { ...claims, did: alice.did, proof: await proof(h, alice, { nonce }) } })
    expect(res.statusCode).toBe(201)
    expect(used()).toBe(1)
    await verifierFor(h).verifyAgentCredential((res.json() as SpawnResult).credential)
  })

  it('two concurrent spawns with one proof: one wins, the other is a replay', async () => {
    const alice = namedKey()
    const p = await proof(h, alice)
    const send = () => h.app.inject({ method: 'POST', url: '/v1/agents', headers: bearer(h.orch.apiKey), payload: { ...claims, proof: p } })
    const before = counts(h)
    const results = await Promise.all([send(), send(), send()])
    const statuses = results.map((r) => r.statusCode).sort()
    expect(statuses).toEqual([201, 409, 409])
    for (const r of results.filter((x) => x.statusCode === 409)) expect(['ERR_REPLAY', 'ERR_CONFLICT']).toContain(expectError(r, 409, r.json().error.code).code)
    expect(counts(h).agents).toBe(before.agents + 1)
    expect(counts(h).credentials).toBe(before.credentials + 1)
  })
})

describe('POST /v1/agents, one DID at once', () => {
  it('two concurrent spawns of one DID with two proofs: one wins, the other is a conflict (refused at commit)', async () => {
    const bob = namedKey()
    const [p1, p2] = [await proof(h, bob), await proof(h, bob)]
    const send = (p: string) => h.app.inject({ method: 'POST', url: '/v1/agents', headers: bearer(h.orch.apiKey), payload: { ...claims, proof: p } })
    const before = counts(h)
    const results = await Promise.all([send(p1), send(p2)])
    expect(results.map((r) => r.statusCode).sort()).toEqual([201, 409])
    expectError(results.find((r) => r.statusCode === 409)!, 409, 'ERR_CONFLICT')
    expect(counts(h).agents).toBe(before.agents + 1)
    expect(counts(h).credentials).toBe(before.credentials + 1)
  })
})

describe('POST /v1/agents, issuer-generated key', () => {
  let body: SpawnResult
  beforeAll(async () => {
    const res = await h.app.inject({ method: 'POST', url: '/v1/agents', headers: bearer(h.orch.apiKey), payload: { ...claims, keyCustody: 'issuer' } })
    expect(res.statusCode).toBe(201)
    expect(res.headers['cache-control']).toBe('no-store')
    body = res.json() as SpawnResult
  })

  it('returns the private key once, for the DID it names', async () => {
    expect(body.keyCustody).toBe('issuer')
    const jwk = body.privateJwk!
    expect(jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519' })
    expect(jwk.d).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(didFromPublicJwk({ kty: 'OKP', crv: 'Ed25519', x: jwk.x })).toBe(body.did)
    expect(signerFromJwk(jwk as never).did).toBe(body.did)
    const agent = await verifierFor(h).verifyAgentCredential(body.credential)
    expect(agent.did).toBe(body.did)
  })

  it('does not keep the private key: not in any table, not in the database files, not in the agent record', async () => {
    const d = body.privateJwk!.d
    const raw = base64urlDecode(d, 'd')
    const db = h.service.store.db
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((t) => t.name)
    expect(tables).toEqual(expect.arrayContaining(['agents', 'credentials', 'audit_events', 'keys', 'private_keys', 'settings']))
    let cells = 0
    for (const table of tables) {
      for (const row of db.prepare(`SELECT * FROM "${table}"`).all() as Record<string, unknown>[]) {
        for (const value of Object.values(row)) {
          cells++
          if (typeof value === 'string') {
            expect(value.includes(d), `${table} holds d`).toBe(false)
            expect(Buffer.from(value, 'utf8').includes(raw)).toBe(false)
          } else if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
            const buf = Buffer.from(value)
            expect(buf.includes(raw), `${table} holds d (raw)`).toBe(false)
            expect(buf.includes(Buffer.from(d)), `${table} holds d (text)`).toBe(false)
          }
        }
      }
    }
    expect(cells).toBeGreaterThan(0)
    // The bytes of the database, its WAL and shared memory: neither the text nor the raw key.
    const files = readdirSync(h.dir).filter((f) => f.startsWith('issuer.db'))
    expect(files).toContain('issuer.db')
    for (const f of files) {
      const bytes = readFileSync(join(h.dir, f))
      expect(bytes.includes(Buffer.from(d)), `${f} holds d`).toBe(false)
      expect(bytes.includes(raw), `${f} holds d (raw)`).toBe(false)
    }
    const view = await h.app.inject({ method: 'GET', url: `/v1/agents/${body.did}`, headers: bearer(h.orch.apiKey) })
    expect(view.statusCode).toBe(200)
    expect(view.body.includes(d)).toBe(false)
    expect((view.json() as AgentView).keyCustody).toBe('issuer')
  })

  it('the returned key renews the credential', async () => {
    const key = { signer: signerFromJwk(body.privateJwk as never) }
    const p = await proof(h, key as never, { purpose: 'renew' })
    const res = await h.app.inject({ method: 'POST', url: `/v1/agents/${body.did}/renew`, payload: { proof: p } })
    expect(res.statusCode).toBe(201)
    expect((await verifierFor(h).verifyAgentCredential((res.json() as SpawnResult).credential)).did).toBe(body.did)
  })
})

describe('GET /v1/agents/:did', () => {
  it('shows the owner and the admin the record and its credentials; another orchestrator gets 404', async () => {
    const alice = namedKey()
    const spawned = await spawnAgent(h, alice)
    for (const key of [h.orch.apiKey, h.adminKey]) {
      const res = await h.app.inject({ method: 'GET', url: `/v1/agents/${alice.did}`, headers: bearer(key) })
      expect(res.statusCode).toBe(200)
      const view = res.json() as AgentView
      expect(view).toMatchObject({ did: alice.did, orchestrator: h.orch.id, keyCustody: 'agent', status: 'active', claims, revokedAt: null })
      expect(view.credentials).toHaveLength(1)
      expect(view.credentials[0]).toMatchObject({ id: spawned.credentialId, status: 'active', ...spawned.status, expiresAt: spawned.expiresAt })
      expect(res.body).not.toContain(spawned.credential) // the record does not hand out the JWT
    }
    expectError(await h.app.inject({ method: 'GET', url: `/v1/agents/${alice.did}`, headers: bearer(h.other.apiKey) }), 404, 'ERR_NOT_FOUND')
    expectError(await h.app.inject({ method: 'GET', url: `/v1/agents/${namedKey().did}`, headers: bearer(h.adminKey) }), 404, 'ERR_NOT_FOUND')
    expectError(await h.app.inject({ method: 'GET', url: `/v1/agents/${alice.did}` }), 401, 'ERR_UNAUTHENTICATED')
  })

  it('a DID percent-encoded in the path is the same agent', async () => {
    const alice = namedKey()
    await spawnAgent(h, alice)
    const res = await h.app.inject({ method: 'GET', url: `/v1/agents/${encodeURIComponent(alice.did)}`, headers: bearer(h.adminKey) })
    expect(res.statusCode).toBe(200)
    expect(res.json().did).toBe(alice.did)
  })

  it('marks an expired credential expired', async () => {
    const alice = namedKey()
    await spawnAgent(h, alice, { lifetimeSec: 60 })
    const saved = h.clock.now
    h.clock.now += 61_000
    try {
      const view = (await h.app.inject({ method: 'GET', url: `/v1/agents/${alice.did}`, headers: bearer(h.adminKey) })).json() as AgentView
      expect(view.credentials[0]!.status).toBe('expired')
      expect(view.status).toBe('active')
    } finally {
      h.clock.now = saved
    }
  })
})

describe('POST /v1/agents/:did/renew', () => {
  it('issues a fresh credential for the same DID and claims, without an API key', async () => {
    const alice = namedKey()
    const first = await spawnAgent(h, alice)
    const before = counts(h)
    const res = await h.app.inject({ method: 'POST', url: `/v1/agents/${alice.did}/renew`, payload: { proof: await proof(h, alice, { purpose: 'renew' }), lifetimeSec: 900 } })
    expect(res.statusCode).toBe(201)
    expect(res.headers['cache-control']).toBe('no-store')
    const renewed = res.json() as SpawnResult
    expect(renewed.did).toBe(alice.did)
    expect(renewed).not.toHaveProperty('logIndex')
    expect(renewed.credentialId).not.toBe(first.credentialId)
    expect(renewed.status).not.toEqual(first.status)
    expect(Date.parse(renewed.expiresAt) / 1000).toBe(nowSec() + 900)
    const agent = await verifierFor(h).verifyAgentCredential(renewed.credential)
    expect(agent.claims).toEqual(claims)
    const after = counts(h)
    expect(after.agents).toBe(before.agents)
    expect(after.credentials).toBe(before.credentials + 1)
    expect(after.proof_nonces).toBe(before.proof_nonces + 1)
    const view = (await h.app.inject({ method: 'GET', url: `/v1/agents/${alice.did}`, headers: bearer(h.orch.apiKey) })).json() as AgentView
    expect(view.credentials.map((c) => c.id).sort()).toEqual([first.credentialId, renewed.credentialId].sort())
  })

  it('with a challenge nonce', async () => {
    const alice = namedKey()
    await spawnAgent(h, alice)
    const { nonce } = (await h.app.inject({ method: 'POST', url: '/v1/challenges', headers: bearer(h.orch.apiKey) })).json() as { nonce: string }
    const res = await h.app.inject({ method: 'POST', url: `/v1/agents/${alice.did}/renew`, payload: { proof: await proof(h, alice, { purpose: 'renew', nonce }) } })
    expect(res.statusCode).toBe(201)
    const again = await h.app.inject({ method: 'POST', url: `/v1/agents/${alice.did}/renew`, payload: { proof: await proof(h, alice, { purpose: 'renew', nonce }) } })
    expectError(again, 409, 'ERR_REPLAY')
  })
})

describe('@agentid/client against the API', () => {
  const fetch: Fetch = async (url, init) => {
    const res = await h.app.inject({ method: init.method as 'GET', url: url.slice(BASE_URL.length), headers: init.headers, ...(init.body === undefined ? {} : { payload: init.body }) })
    return { ok: res.statusCode < 300, status: res.statusCode, json: async () => res.json() }
  }

  it('spawns in both custody modes and renews', async () => {
    const held = await clientSpawn({ issuerUrl: BASE_URL, fetch, apiKey: h.orch.apiKey, claims })
    expect(held.keyCustody).toBe('agent')
    const minted = await clientSpawn({ issuerUrl: BASE_URL, fetch, apiKey: h.orch.apiKey, claims, keyCustody: 'issuer' })
    expect(minted.keyCustody).toBe('issuer')
    for (const a of [held, minted]) {
      expect((await verifierFor(h).verifyAgentCredential(a.credential)).did).toBe(a.did)
      const renewed = await clientRenew({ issuerUrl: BASE_URL, fetch, privateJwk: a.privateJwk })
      expect((await verifierFor(h).verifyAgentCredential(renewed.credential)).did).toBe(a.did)
    }
    await expect(clientSpawn({ issuerUrl: BASE_URL, fetch, apiKey: h.adminKey, claims })).rejects.toMatchObject({ code: 'ERR_FORBIDDEN' })
  })
})
