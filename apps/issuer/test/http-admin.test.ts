// Admin routes: listing agents, revocation (with cascade), orchestrators; and what orchestrators may see.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeDidKey, decodeJwt, publicKeyFromRaw, StatusList, verifyCompactJws } from '@agentid/core'
import {
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

interface AgentView { did: string; orchestrator: string; status: string; claims: { controller: string; purpose: string }; revokedAt: string | null; revocationReason: string | null; credentials: { id: string; status: string; revocationReason: string | null }[] }
interface Page { agents: AgentView[]; nextCursor: string | null }

const list = async (key: string, query = '') => {
  const res = await h.app.inject({ method: 'GET', url: `/v1/agents${query}`, headers: bearer(key) })
  expect(res.statusCode, res.body).toBe(200)
  return res.json() as Page
}

/** The served status list `url`, its JWT verified with the issuer's did:key, decoded. */
async function servedList(url: string): Promise<StatusList> {
  const res = await h.app.inject({ method: 'GET', url: new URL(url).pathname })
  expect(res.statusCode).toBe(200)
  const jws = verifyCompactJws(res.body, publicKeyFromRaw(decodeDidKey(h.issuerDid).publicKey))
  expect(jws.header.alg).toBe('EdDSA')
  const { payload } = decodeJwt(res.body)
  expect(payload.iss).toBe(h.issuerDid)
  const subject = (payload.vc as { credentialSubject: { encodedList: string; statusPurpose: string } }).credentialSubject
  expect(subject.statusPurpose).toBe('revocation')
  return StatusList.decode(subject.encodedList)
}

describe('GET /v1/agents', () => {
  // 12 agents: acme spawns 8 (4 "billing" of controller A, 4 "support" of controller B), globex 4.
  const mine: string[] = []
  const theirs: string[] = []
  let h0: number
  beforeAll(async () => {
    h0 = h.clock.now
    for (let i = 0; i < 8; i++) {
      const k = namedKey()
      // Two agents per second: created_at ties are broken by DID in the cursor.
      h.clock.now = h0 + Math.floor(i / 2) * 1000
      await spawnAgent(h, k, { claims: i % 2 ? { purpose: 'support', controller: 'did:web:b.example' } : { purpose: 'billing', controller: 'did:web:a.example' } })
      mine.push(k.did)
    }
    for (let i = 0; i < 4; i++) {
      const k = namedKey()
      await spawnAgent(h, k, { apiKey: h.other.apiKey, claims: { purpose: 'globex work' } })
      theirs.push(k.did)
    }
    h.clock.now = h0 + 10_000
  })

  it('the admin lists everyone; an orchestrator only its own', async () => {
    const all = await list(h.adminKey, '?limit=500')
    expect(all.agents.map((a) => a.did)).toEqual(expect.arrayContaining([...mine, ...theirs]))
    expect(all.nextCursor).toBeNull()
    const own = await list(h.orch.apiKey, '?limit=500')
    expect(own.agents.every((a) => a.orchestrator === h.orch.id)).toBe(true)
    expect(own.agents.map((a) => a.did)).toEqual(expect.arrayContaining(mine))
    expect(own.agents.some((a) => theirs.includes(a.did))).toBe(false)
    const other = await list(h.other.apiKey, '?limit=500')
    expect(other.agents.map((a) => a.did).sort()).toEqual([...theirs].sort())
    // Naming itself is allowed; naming another orchestrator is refused.
    expect((await list(h.orch.apiKey, `?orchestrator=${h.orch.name}`)).agents.length).toBe(own.agents.length)
    expect((await list(h.orch.apiKey, `?orchestrator=${h.orch.id}`)).agents.length).toBe(own.agents.length)
    expectError(await h.app.inject({ method: 'GET', url: `/v1/agents?orchestrator=${h.other.name}`, headers: bearer(h.orch.apiKey) }), 403, 'ERR_FORBIDDEN')
  })

  it('filters by controller, purpose, orchestrator and status', async () => {
    const byController = await list(h.adminKey, `?controller=${encodeURIComponent('did:web:a.example')}`)
    expect(byController.agents.map((a) => a.did).sort()).toEqual(mine.filter((_, i) => i % 2 === 0).sort())
    const byPurpose = await list(h.adminKey, '?purpose=support')
    expect(byPurpose.agents.map((a) => a.did).sort()).toEqual(mine.filter((_, i) => i % 2 === 1).sort())
    const both = await list(h.adminKey, `?purpose=support&controller=${encodeURIComponent('did:web:a.example')}`)
    expect(both.agents).toEqual([])
    const byOrchName = await list(h.adminKey, `?orchestrator=${h.other.name}`)
    expect(byOrchName.agents.map((a) => a.did).sort()).toEqual([...theirs].sort())
    const byOrchId = await list(h.adminKey, `?orchestrator=${h.other.id}`)
    expect(byOrchId.agents.map((a) => a.did).sort()).toEqual([...theirs].sort())
    expect((await list(h.adminKey, '?orchestrator=nobody')).agents).toEqual([])

    const victim = theirs[0]!
    const revoke = await h.app.inject({ method: 'POST', url: `/v1/agents/${victim}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'decommissioned' } })
    expect(revoke.statusCode).toBe(200)
    const revoked = await list(h.adminKey, `?status=revoked&orchestrator=${h.other.id}`)
    expect(revoked.agents.map((a) => a.did)).toEqual([victim])
    expect(revoked.agents[0]).toMatchObject({ status: 'revoked', revocationReason: 'decommissioned' })
    const active = await list(h.adminKey, `?status=active&orchestrator=${h.other.id}`)
    expect(active.agents.map((a) => a.did).sort()).toEqual(theirs.slice(1).sort())
    expect(active.agents.every((a) => a.status === 'active')).toBe(true)
  })

  it('pages with limit and cursor: every agent exactly once, in order, for every page size', async () => {
    const everyone = (await list(h.adminKey, '?limit=500')).agents.map((a) => a.did)
    expect(everyone.length).toBeGreaterThanOrEqual(12)
    for (const limit of [1, 2, 3, 5, 7, everyone.length, everyone.length + 1]) {
      const seen: string[] = []
      let cursor: string | null = null
      let pages = 0
      do {
        const page: Page = await list(h.adminKey, `?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`)
        expect(page.agents.length).toBeLessThanOrEqual(limit)
        if (page.nextCursor !== null) expect(page.agents.length).toBe(limit)
        seen.push(...page.agents.map((a) => a.did))
        cursor = page.nextCursor
        expect(++pages).toBeLessThanOrEqual(everyone.length + 1)
      } while (cursor !== null)
      expect(seen, `limit ${limit}`).toEqual(everyone)
      expect(new Set(seen).size).toBe(seen.length)
    }
  })

  it('pages with filters: an orchestrator walks only its own agents', async () => {
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const page: Page = await list(h.orch.apiKey, `?limit=3&purpose=billing${cursor ? `&cursor=${cursor}` : ''}`)
      seen.push(...page.agents.map((a) => a.did))
      cursor = page.nextCursor
    } while (cursor !== null)
    expect(seen.sort()).toEqual(mine.filter((_, i) => i % 2 === 0).sort())
  })

  it('an agent spawned while paging appears once, on a later page', async () => {
    const first = await list(h.adminKey, '?limit=4')
    const late = namedKey()
    await spawnAgent(h, late) // created at h0 + 10 s, after every agent so far
    const seen = [...first.agents.map((a) => a.did)]
    let cursor = first.nextCursor
    while (cursor !== null) {
      const page: Page = await list(h.adminKey, `?limit=4&cursor=${cursor}`)
      seen.push(...page.agents.map((a) => a.did))
      cursor = page.nextCursor
    }
    expect(seen.filter((d) => d === late.did)).toHaveLength(1)
    expect(new Set(seen).size).toBe(seen.length)
  })

  it('needs a key', async () => {
    expectError(await h.app.inject({ method: 'GET', url: '/v1/agents' }), 401, 'ERR_UNAUTHENTICATED')
  })
})

describe('POST /v1/agents/:did/revoke', () => {
  it('revokes the agent and every credential it holds; each bit is set in the served, signed list', async () => {
    const alice = namedKey()
    const bob = namedKey()
    const issued: SpawnResult[] = [await spawnAgent(h, alice)]
    for (let i = 0; i < 2; i++) {
      const res = await h.app.inject({ method: 'POST', url: `/v1/agents/${alice.did}/renew`, payload: { proof: await proof(h, alice, { purpose: 'renew' }) } })
      expect(res.statusCode).toBe(201)
      issued.push(res.json() as SpawnResult)
    }
    const bystander = await spawnAgent(h, bob)
    // The first credential is revoked on its own beforehand: the cascade takes the rest.
    const single = await h.app.inject({ method: 'POST', url: `/v1/credentials/${issued[0]!.credentialId}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'rotated' } })
    expect(single.statusCode).toBe(200)

    const verifier = verifierFor(h)
    for (const c of issued.slice(1)) await verifier.verifyAgentCredential(c.credential)
    const res = await h.app.inject({ method: 'POST', url: `/v1/agents/${alice.did}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'compromised' } })
    expect(res.statusCode).toBe(200)
    const body = res.json() as { did: string; revokedCredentials: string[]; alreadyRevoked: boolean }
    expect(body.did).toBe(alice.did)
    expect(body.alreadyRevoked).toBe(false)
    expect(body.revokedCredentials.sort()).toEqual(issued.slice(1).map((c) => c.credentialId).sort())

    for (const c of issued) {
      const list = await servedList(c.status.statusListCredential)
      expect(list.get(c.status.statusListIndex), c.credentialId).toBe(1)
      await expect(verifierFor(h).verifyAgentCredential(c.credential)).rejects.toMatchObject({ name: 'VerificationError', code: 'ERR_REVOKED' })
    }
    expect((await servedList(bystander.status.statusListCredential)).get(bystander.status.statusListIndex)).toBe(0)
    expect((await verifierFor(h).verifyAgentCredential(bystander.credential)).did).toBe(bob.did)

    const view = (await h.app.inject({ method: 'GET', url: `/v1/agents/${alice.did}`, headers: bearer(h.adminKey) })).json() as AgentView
    expect(view).toMatchObject({ status: 'revoked', revocationReason: 'compromised' })
    expect(view.revokedAt).not.toBeNull()
    expect(view.credentials.every((c) => c.status === 'revoked')).toBe(true)
    expect(view.credentials.find((c) => c.id === issued[0]!.credentialId)!.revocationReason).toBe('rotated')

    // Revoked is final: renewal is refused and nothing is written.
    const before = counts(h)
    expectError(await h.app.inject({ method: 'POST', url: `/v1/agents/${alice.did}/renew`, payload: { proof: await proof(h, alice, { purpose: 'renew' }) } }), 403, 'ERR_REVOKED')
    expect(counts(h)).toEqual(before)
    // Revoking again changes nothing.
    const again = await h.app.inject({ method: 'POST', url: `/v1/agents/${alice.did}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'again' } })
    expect(again.statusCode).toBe(200)
    expect(again.json()).toMatchObject({ revokedCredentials: [], alreadyRevoked: true })
    expect(counts(h)).toEqual(before)
  })

  it('is for the admin only; unknown agents are 404', async () => {
    const alice = namedKey()
    await spawnAgent(h, alice)
    expectError(await h.app.inject({ method: 'POST', url: `/v1/agents/${alice.did}/revoke`, headers: bearer(h.orch.apiKey), payload: { reason: 'x' } }), 403, 'ERR_FORBIDDEN')
    expectError(await h.app.inject({ method: 'POST', url: `/v1/agents/${alice.did}/revoke`, payload: { reason: 'x' } }), 401, 'ERR_UNAUTHENTICATED')
    expectError(await h.app.inject({ method: 'POST', url: `/v1/agents/${namedKey().did}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'x' } }), 404, 'ERR_NOT_FOUND')
    expect((await h.app.inject({ method: 'GET', url: `/v1/agents/${alice.did}`, headers: bearer(h.adminKey) })).json().status).toBe('active')
  })
})

describe('POST /v1/credentials/:id/revoke', () => {
  it('revokes one credential; the agent and its other credentials stay valid', async () => {
    const alice = namedKey()
    const first = await spawnAgent(h, alice)
    const second = (await h.app.inject({ method: 'POST', url: `/v1/agents/${alice.did}/renew`, payload: { proof: await proof(h, alice, { purpose: 'renew' }) } })).json() as SpawnResult
    const res = await h.app.inject({ method: 'POST', url: `/v1/credentials/${first.credentialId}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'key rotation' } })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ id: first.credentialId, agent: alice.did, alreadyRevoked: false })
    await expect(verifierFor(h).verifyAgentCredential(first.credential)).rejects.toMatchObject({ code: 'ERR_REVOKED' })
    expect((await verifierFor(h).verifyAgentCredential(second.credential)).did).toBe(alice.did)
    expect((await servedList(first.status.statusListCredential)).get(first.status.statusListIndex)).toBe(1)
    expect((await servedList(second.status.statusListCredential)).get(second.status.statusListIndex)).toBe(0)
    const view = (await h.app.inject({ method: 'GET', url: `/v1/agents/${alice.did}`, headers: bearer(h.adminKey) })).json() as AgentView
    expect(view.status).toBe('active')
    expect(Object.fromEntries(view.credentials.map((c) => [c.id, c.status]))).toEqual({ [first.credentialId]: 'revoked', [second.credentialId]: 'active' })

    const again = await h.app.inject({ method: 'POST', url: `/v1/credentials/${first.credentialId}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'again' } })
    expect(again.statusCode).toBe(200)
    expect(again.json().alreadyRevoked).toBe(true)
  })

  it('is for the admin only; unknown credentials are 404', async () => {
    const alice = namedKey()
    const spawned = await spawnAgent(h, alice)
    expectError(await h.app.inject({ method: 'POST', url: `/v1/credentials/${spawned.credentialId}/revoke`, headers: bearer(h.orch.apiKey), payload: { reason: 'x' } }), 403, 'ERR_FORBIDDEN')
    expectError(await h.app.inject({ method: 'POST', url: `/v1/credentials/${spawned.credentialId}/revoke`, payload: { reason: 'x' } }), 401, 'ERR_UNAUTHENTICATED')
    expectError(await h.app.inject({ method: 'POST', url: '/v1/credentials/urn:uuid:00000000-0000-4000-8000-000000000000/revoke', headers: bearer(h.adminKey), payload: { reason: 'x' } }), 404, 'ERR_NOT_FOUND')
    await verifierFor(h).verifyAgentCredential(spawned.credential)
  })
})

describe('orchestrators', () => {
  it('add, list, remove; the removed key is refused (401) and its name stays taken', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/v1/orchestrators', headers: bearer(h.adminKey), payload: { name: 'initech' } })
    expect(res.statusCode).toBe(201)
    expect(res.headers['cache-control']).toBe('no-store')
    const added = res.json() as { id: string; name: string; apiKey: string; createdAt: string; removedAt: string | null }
    expect(added).toMatchObject({ name: 'initech', removedAt: null })
    expect(added.id).toMatch(/^orch_/)
    expect(added.apiKey).toMatch(/^aid_orch_[A-Za-z0-9_-]{43}$/)
    // Stored as a hash only.
    const row = h.service.store.db.prepare('SELECT * FROM orchestrators WHERE id = ?').get(added.id) as Record<string, unknown>
    expect(JSON.stringify(row)).not.toContain(added.apiKey)

    const dup = await h.app.inject({ method: 'POST', url: '/v1/orchestrators', headers: bearer(h.adminKey), payload: { name: 'initech' } })
    expectError(dup, 409, 'ERR_CONFLICT')

    const alice = namedKey()
    await spawnAgent(h, alice, { apiKey: added.apiKey })
    const listed = await h.app.inject({ method: 'GET', url: '/v1/orchestrators', headers: bearer(h.adminKey) })
    expect(listed.statusCode).toBe(200)
    const orchestrators = (listed.json() as { orchestrators: { id: string; name: string; activeAgents: number }[] }).orchestrators
    expect(orchestrators.map((o) => o.name)).toEqual(expect.arrayContaining(['acme', 'globex', 'initech']))
    expect(orchestrators.find((o) => o.id === added.id)!.activeAgents).toBe(1)
    expect(listed.body).not.toMatch(/aid_orch_|key_hash|keyHash/)

    const removed = await h.app.inject({ method: 'DELETE', url: `/v1/orchestrators/${added.id}`, headers: bearer(h.adminKey) })
    expect(removed.statusCode).toBe(200)
    expect(removed.json()).toMatchObject({ id: added.id, name: 'initech' })
    expect(removed.json().removedAt).not.toBeNull()
    expectError(await h.app.inject({ method: 'POST', url: '/v1/challenges', headers: bearer(added.apiKey) }), 401, 'ERR_UNAUTHENTICATED')
    expectError(await h.app.inject({ method: 'GET', url: '/v1/agents', headers: bearer(added.apiKey) }), 401, 'ERR_UNAUTHENTICATED')
    const before = counts(h)
    expectError(await h.app.inject({ method: 'POST', url: '/v1/agents', headers: bearer(added.apiKey), payload: { ...claims, proof: await proof(h, namedKey()) } }), 401, 'ERR_UNAUTHENTICATED')
    expect(counts(h)).toEqual(before)
    // Its agents stay until revoked explicitly.
    expect((await h.app.inject({ method: 'GET', url: `/v1/agents/${alice.did}`, headers: bearer(h.adminKey) })).json().status).toBe('active')
    // Removing twice, or an unknown one, is 404; the name stays taken.
    expectError(await h.app.inject({ method: 'DELETE', url: `/v1/orchestrators/${added.id}`, headers: bearer(h.adminKey) }), 404, 'ERR_NOT_FOUND')
    expectError(await h.app.inject({ method: 'DELETE', url: '/v1/orchestrators/nobody', headers: bearer(h.adminKey) }), 404, 'ERR_NOT_FOUND')
    expectError(await h.app.inject({ method: 'POST', url: '/v1/orchestrators', headers: bearer(h.adminKey), payload: { name: 'initech' } }), 409, 'ERR_CONFLICT')
    const after = (await h.app.inject({ method: 'GET', url: '/v1/orchestrators', headers: bearer(h.adminKey) })).json() as { orchestrators: { id: string; removedAt: string | null }[] }
    expect(after.orchestrators.find((o) => o.id === added.id)!.removedAt).not.toBeNull()
  })

  it('removes by name', async () => {
    const added = (await h.app.inject({ method: 'POST', url: '/v1/orchestrators', headers: bearer(h.adminKey), payload: { name: 'hooli' } })).json() as { id: string; apiKey: string }
    const res = await h.app.inject({ method: 'DELETE', url: '/v1/orchestrators/hooli', headers: bearer(h.adminKey) })
    expect(res.statusCode).toBe(200)
    expect(res.json().id).toBe(added.id)
    expectError(await h.app.inject({ method: 'POST', url: '/v1/challenges', headers: bearer(added.apiKey) }), 401, 'ERR_UNAUTHENTICATED')
  })

  it('are managed by the admin only', async () => {
    for (const key of [h.orch.apiKey, h.other.apiKey]) {
      expectError(await h.app.inject({ method: 'POST', url: '/v1/orchestrators', headers: bearer(key), payload: { name: 'rogue' } }), 403, 'ERR_FORBIDDEN')
      expectError(await h.app.inject({ method: 'GET', url: '/v1/orchestrators', headers: bearer(key) }), 403, 'ERR_FORBIDDEN')
      expectError(await h.app.inject({ method: 'DELETE', url: `/v1/orchestrators/${h.other.id}`, headers: bearer(key) }), 403, 'ERR_FORBIDDEN')
    }
    expectError(await h.app.inject({ method: 'POST', url: '/v1/orchestrators', payload: { name: 'rogue' } }), 401, 'ERR_UNAUTHENTICATED')
    expectError(await h.app.inject({ method: 'GET', url: '/v1/orchestrators' }), 401, 'ERR_UNAUTHENTICATED')
    expectError(await h.app.inject({ method: 'DELETE', url: `/v1/orchestrators/${h.other.id}` }), 401, 'ERR_UNAUTHENTICATED')
    // Nothing changed: both still work.
    for (const key of [h.orch.apiKey, h.other.apiKey]) expect((await h.app.inject({ method: 'POST', url: '/v1/challenges', headers: bearer(key) })).statusCode).toBe(201)
    expect(h.service.store.orchestrators.byName('rogue')).toBeUndefined()
  })
})
