// Delegation on the issuer: root links it signs (at spawn with grantToolProfile, and through the admin
// grant route), links agents sign registered with it, and revocation cascading down the chain.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeJwt, VerificationError, type BitstringStatusListEntry } from '@agentid/core'
import { delegate, parseCapabilityLink } from '@agentid/delegation'
import {
  bearer,
  claims,
  expectError,
  expectInvalid,
  harness,
  namedKey,
  proof,
  spawnAgent,
  verifierFor,
  type Harness,
  type NamedKey,
} from './http-fixtures.js'

let h: Harness
beforeAll(async () => { h = await harness() })
afterAll(async () => { await h.close() })

const TOOL = 'mcp://erp/tools/invoices.read'

async function grant(did: string, body: unknown, key = h.adminKey) {
  return h.app.inject({ method: 'POST', url: `/v1/agents/${did}/grants`, headers: bearer(key), payload: body as Record<string, unknown> })
}

async function register(delegator: NamedKey, parentId: string, delegatee: string, o: { purpose?: 'spawn' | 'renew' | 'delegate' } = {}) {
  return h.app.inject({
    method: 'POST',
    url: '/v1/delegations/status',
    payload: { proof: await proof(h, delegator, { purpose: o.purpose ?? 'delegate' }), parentId, delegatee },
  })
}

async function revokeLink(id: string, key = h.adminKey) {
  return h.app.inject({ method: 'POST', url: `/v1/delegations/${id}/revoke`, headers: bearer(key), payload: { reason: 'test' } })
}

/** A root granted by the admin to a fresh agent A, and A's link to a fresh B registered with the issuer. */
async function chainAB(): Promise<{ a: NamedKey; b: NamedKey; rootId: string; childId: string; chain: string[] }> {
  const a = namedKey()
  const b = namedKey()
  await spawnAgent(h, a)
  const res = await grant(a.did, { capabilities: [{ resource: 'mcp://erp/tools/*', actions: ['*'] }], caveats: { remainingDepth: 2 }, lifetimeSec: 3600 })
  expect(res.statusCode, res.body).toBe(201)
  const root = res.json() as { id: string; delegationChain: string[] }
  const reg = await register(a, root.id, b.did)
  expect(reg.statusCode, reg.body).toBe(201)
  const { id, statusEntry } = reg.json() as { id: string; statusEntry: BitstringStatusListEntry }
  const chain = await delegate({
    signer: a.signer, to: b.did, parent: root.delegationChain, id, statusEntry, clock: () => h.clock.now,
    capabilities: [{ resource: TOOL, actions: ['invoke'] }], expiresIn: 600,
  })
  return { a, b, rootId: root.id, childId: id, chain }
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (error) {
    expect(error).toBeInstanceOf(VerificationError)
    return (error as VerificationError).code
  }
  throw new Error('expected a refusal')
}

describe('root links signed by the issuer', () => {
  it('spawn with grantToolProfile returns a root link granting the tool profile; it verifies', async () => {
    const a = namedKey()
    const res = await h.app.inject({
      method: 'POST', url: '/v1/agents', headers: bearer(h.orch.apiKey),
      payload: { ...claims, did: a.did, proof: await proof(h, a), grantToolProfile: true },
    })
    expect(res.statusCode, res.body).toBe(201)
    const body = res.json() as { delegationChain: string[] }
    expect(body.delegationChain).toHaveLength(1)
    const link = parseCapabilityLink(decodeJwt(body.delegationChain[0]!).payload)
    expect(link.iss).toBe(h.issuerDid)
    expect(link.sub).toBe(a.did)
    expect(link.capabilities).toEqual([{ resource: TOOL, actions: ['*'] }])
    expect(link.caveats.maxDataClass).toBe('internal')
    expect(link.credentialStatus?.statusListCredential).toMatch(/\/v1\/status-lists\/\d+$/)
    const row = h.service.store.delegations.get(link.jti!)
    expect(row).toMatchObject({ delegator: h.issuerDid, delegatee: a.did, parent_id: null, revoked_at: null })
    const verified = await verifierFor(h).verifyDelegation(body.delegationChain, { invoker: a.did, resource: TOOL, action: 'invoke' })
    expect(verified.root).toBe(h.issuerDid)
    expect(await refusal(verifierFor(h).verifyDelegation(body.delegationChain, { invoker: a.did, resource: TOOL, action: 'invoke', dataClass: 'restricted' }))).toBe('ERR_NOT_AUTHORIZED')
  })

  it('spawn without grantToolProfile returns no chain; a non-boolean is refused', async () => {
    const a = namedKey()
    const plain = await spawnAgent(h, a)
    expect(plain).not.toHaveProperty('delegationChain')
    const b = namedKey()
    expectInvalid(await h.app.inject({ method: 'POST', url: '/v1/agents', headers: bearer(h.orch.apiKey), payload: { ...claims, did: b.did, proof: await proof(h, b), grantToolProfile: 'yes' } }), 'grantToolProfile')
  })

  it('the admin grants a root link to an active agent; it verifies', async () => {
    const a = namedKey()
    await spawnAgent(h, a)
    const res = await grant(a.did, { capabilities: [{ resource: 'mcp://crm/*', actions: ['read'] }], caveats: { maxDataClass: 'confidential' }, lifetimeSec: 600 })
    expect(res.statusCode, res.body).toBe(201)
    const body = res.json() as { id: string; delegationChain: string[]; expiresAt: string }
    expect(decodeJwt(body.delegationChain[0]!).payload.jti).toBe(body.id)
    await verifierFor(h).verifyDelegation(body.delegationChain, { invoker: a.did, resource: 'mcp://crm/accounts', action: 'read' })
    expect(await refusal(verifierFor(h).verifyDelegation(body.delegationChain, { invoker: a.did, resource: 'mcp://crm/accounts', action: 'write' }))).toBe('ERR_NOT_AUTHORIZED')
  })

  it('refuses hostile grants: bad capabilities, unknown fields, non-admin, unknown or revoked agent', async () => {
    const a = namedKey()
    await spawnAgent(h, a)
    expectInvalid(await grant(a.did, { capabilities: [] }), 'capabilities')
    expectInvalid(await grant(a.did, { capabilities: [{ resource: 'mcp://x/*y', actions: ['read'] }] }), 'capabilities[0].resource')
    expectInvalid(await grant(a.did, { capabilities: [{ resource: 'mcp://x', actions: [] }] }), 'capabilities[0].actions')
    expectInvalid(await grant(a.did, { capabilities: [{ resource: 'mcp://x', actions: ['read'] }], admin: true }), 'admin')
    expectInvalid(await grant(a.did, { capabilities: [{ resource: 'mcp://x', actions: ['read'] }], caveats: { sudo: true } }), 'caveats.sudo')
    expectInvalid(await grant(a.did, { capabilities: [{ resource: 'mcp://x', actions: ['read'] }], lifetimeSec: 10 }), 'lifetimeSec')
    expectError(await grant(a.did, { capabilities: [{ resource: 'mcp://x', actions: ['read'] }] }, h.orch.apiKey), 403, 'ERR_FORBIDDEN')
    expectError(await h.app.inject({ method: 'POST', url: `/v1/agents/${a.did}/grants`, payload: { capabilities: [{ resource: 'mcp://x', actions: ['read'] }] } }), 401, 'ERR_UNAUTHENTICATED')
    expectError(await grant(namedKey().did, { capabilities: [{ resource: 'mcp://x', actions: ['read'] }] }), 404, 'ERR_NOT_FOUND')
    await h.app.inject({ method: 'POST', url: `/v1/agents/${a.did}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'gone' } })
    expectError(await grant(a.did, { capabilities: [{ resource: 'mcp://x', actions: ['read'] }] }), 403, 'ERR_REVOKED')
  })
})

describe('links signed by agents, and revocation', () => {
  it('A→B, registered with the issuer and signed by A, verifies for B', async () => {
    const { b, chain, childId, a } = await chainAB()
    expect(decodeJwt(chain[1]!).payload.jti).toBe(childId)
    const verified = await verifierFor(h).verifyDelegation(chain, { invoker: b.did, resource: TOOL, action: 'invoke' })
    expect(verified.links).toBe(2)
    expect(h.service.store.delegations.get(childId)).toMatchObject({ delegator: a.did, delegatee: b.did, revoked_at: null })
  })

  it('revoking the root revokes the chain below it (ERR_REVOKED)', async () => {
    const { b, chain, rootId, childId } = await chainAB()
    const res = await revokeLink(rootId)
    expect(res.statusCode, res.body).toBe(200)
    expect((res.json() as { revokedDelegations: string[] }).revokedDelegations.sort()).toEqual([rootId, childId].sort())
    expect(await refusal(verifierFor(h).verifyDelegation(chain, { invoker: b.did, resource: TOOL, action: 'invoke' }))).toBe('ERR_REVOKED')
    expect(await refusal(verifierFor(h).verifyDelegation(chain.slice(0, 1), { invoker: chain.length ? decodeJwt(chain[0]!).payload.sub as string : '', resource: TOOL, action: 'invoke' }))).toBe('ERR_REVOKED')
    expect(h.service.store.delegations.get(childId)?.revoked_at).not.toBeNull()
    // Again: nothing left to revoke.
    expect((await revokeLink(rootId)).json()).toMatchObject({ alreadyRevoked: true, revokedDelegations: [] })
    // Below a revoked parent, nothing more is registered.
    const c = namedKey()
    expectError(await register(b, childId, c.did), 403, 'ERR_REVOKED')
  })

  it('revoking the child leaves the root valid', async () => {
    const { a, b, chain, childId } = await chainAB()
    expect((await revokeLink(childId)).json()).toMatchObject({ revokedDelegations: [childId], alreadyRevoked: false })
    expect(await refusal(verifierFor(h).verifyDelegation(chain, { invoker: b.did, resource: TOOL, action: 'invoke' }))).toBe('ERR_REVOKED')
    await verifierFor(h).verifyDelegation(chain.slice(0, 1), { invoker: a.did, resource: TOOL, action: 'invoke' })
  })

  it('revoking agent A revokes the links it received and signed', async () => {
    const { a, b, chain, rootId, childId } = await chainAB()
    const res = await h.app.inject({ method: 'POST', url: `/v1/agents/${a.did}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'compromised' } })
    expect(res.statusCode, res.body).toBe(200)
    expect((res.json() as { revokedDelegations: string[] }).revokedDelegations.sort()).toEqual([rootId, childId].sort())
    expect(await refusal(verifierFor(h).verifyDelegation(chain, { invoker: b.did, resource: TOOL, action: 'invoke' }))).toBe('ERR_REVOKED')
  })

  it('revoking agent B (a delegatee only) revokes the link it received, not its parent', async () => {
    const { a, b, chain, rootId, childId } = await chainAB()
    await spawnAgent(h, b)
    const res = await h.app.inject({ method: 'POST', url: `/v1/agents/${b.did}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'retired' } })
    expect((res.json() as { revokedDelegations: string[] }).revokedDelegations).toEqual([childId])
    expect(h.service.store.delegations.get(rootId)?.revoked_at).toBeNull()
    expect(await refusal(verifierFor(h).verifyDelegation(chain, { invoker: b.did, resource: TOOL, action: 'invoke' }))).toBe('ERR_REVOKED')
    await verifierFor(h).verifyDelegation(chain.slice(0, 1), { invoker: a.did, resource: TOOL, action: 'invoke' })
  })

  it('refuses hostile registrations: another purpose, parent not owned, unknown parent, replay, unknown fields', async () => {
    const { a, b, rootId } = await chainAB()
    const c = namedKey()
    expectError(await register(a, rootId, c.did, { purpose: 'renew' }), 400, 'ERR_MALFORMED')
    expectError(await register(a, rootId, c.did, { purpose: 'spawn' }), 400, 'ERR_MALFORMED')
    // B does not hold the root: its delegatee is A.
    expectError(await register(b, rootId, c.did), 403, 'ERR_FORBIDDEN')
    expectError(await register(a, 'urn:uuid:00000000-0000-4000-8000-000000000000', c.did), 404, 'ERR_NOT_FOUND')
    expectInvalid(await register(a, 'not-an-id', c.did), 'parentId')
    expectInvalid(await register(a, rootId, 'did:web:c.example'), 'delegatee')
    const p = await proof(h, a, { purpose: 'delegate' })
    const once = await h.app.inject({ method: 'POST', url: '/v1/delegations/status', payload: { proof: p, parentId: rootId, delegatee: c.did } })
    expect(once.statusCode, once.body).toBe(201)
    expectError(await h.app.inject({ method: 'POST', url: '/v1/delegations/status', payload: { proof: p, parentId: rootId, delegatee: c.did } }), 409, 'ERR_REPLAY')
    expectInvalid(await h.app.inject({ method: 'POST', url: '/v1/delegations/status', payload: { proof: await proof(h, a, { purpose: 'delegate' }), parentId: rootId, delegatee: c.did, capabilities: [] } }), 'capabilities')
  })

  it('revoking a delegation: admin only, ids checked, unknown ids 404', async () => {
    const { rootId } = await chainAB()
    expectError(await revokeLink(rootId, h.orch.apiKey), 403, 'ERR_FORBIDDEN')
    expectError(await h.app.inject({ method: 'POST', url: `/v1/delegations/${rootId}/revoke`, payload: { reason: 'x' } }), 401, 'ERR_UNAUTHENTICATED')
    expectError(await revokeLink('urn:uuid:00000000-0000-4000-8000-000000000000'), 404, 'ERR_NOT_FOUND')
    expectInvalid(await revokeLink('urn:uuid:nope'), 'id')
    expectInvalid(await h.app.inject({ method: 'POST', url: `/v1/delegations/${rootId}/revoke`, headers: bearer(h.adminKey), payload: {} }), 'reason')
    expect(h.service.store.delegations.get(rootId)?.revoked_at).toBeNull()
  })
})
