// The token endpoint with a delegation chain (agentid_delegation, on both grants) and the agentid
// claim of client_credentials tokens: a real IssuerService on a temporary SQLite file (app.inject),
// chains granted by the admin and delegated by agents through the issuer's own routes.
import { createHash, randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SignJWT } from 'jose'
import { type BitstringStatusListEntry } from '@agentid/core'
import { delegate } from '@agentid/delegation'
import { bearer, harness, namedKey, proof, spawnAgent, verifierFor, type Harness, type NamedKey, type SpawnResult } from './http-fixtures.js'
import { dpopKey, expectOAuthError, payloadOf, RESOURCE, testIdp, tokenClient, type DpopKey, type TestIdp } from './oauth-fixtures.js'

const TOOLS = 'mcp://erp/tools/*'
const READ_TOOL = 'mcp://erp/tools/invoices.read'
const detail = (locations: string[], actions = ['invoke'], extra: Record<string, unknown> = {}) => ({ type: 'agentid_action', actions, locations, ...extra })

let h: Harness
let idp: TestIdp
let dkey: DpopKey
let c: ReturnType<typeof tokenClient>

beforeAll(async () => {
  idp = await testIdp('https://idp.example')
  h = await harness({ trustedIdps: [{ issuer: idp.issuer, jwks: { keys: [idp.publicJwk] } }] })
  dkey = await dpopKey()
  c = tokenClient(h, dkey)
})
afterAll(async () => { await h.close() })

const PROFILE = { toolProfile: [TOOLS], dataAccessClass: 'confidential' as const }

/** A root granted by the admin to A (tools/*, any action), and A's registered link to B (invoices.read, invoke). */
async function chainAB(o: { rootCaveats?: Record<string, unknown>; childLifetime?: number } = {}) {
  const a = namedKey()
  const b = namedKey()
  const aSpawn = await spawnAgent(h, a, { claims: PROFILE })
  const bSpawn = await spawnAgent(h, b, { claims: PROFILE })
  const res = await h.app.inject({
    method: 'POST', url: `/v1/agents/${a.did}/grants`, headers: bearer(h.adminKey),
    payload: { capabilities: [{ resource: TOOLS, actions: ['*'] }], caveats: { remainingDepth: 2, maxDataClass: 'internal', ...o.rootCaveats }, lifetimeSec: 3600 },
  })
  expect(res.statusCode, res.body).toBe(201)
  const root = res.json() as { id: string; delegationChain: string[] }
  const reg = await h.app.inject({ method: 'POST', url: '/v1/delegations/status', payload: { proof: await proof(h, a, { purpose: 'delegate' }), parentId: root.id, delegatee: b.did } })
  expect(reg.statusCode, reg.body).toBe(201)
  const { id, statusEntry } = reg.json() as { id: string; statusEntry: BitstringStatusListEntry }
  const chain = await delegate({
    signer: a.signer, to: b.did, parent: root.delegationChain, id, statusEntry, clock: () => h.clock.now,
    capabilities: [{ resource: READ_TOOL, actions: ['invoke'] }], expiresIn: o.childLifetime ?? 600,
  })
  return { a, b, aSpawn, bSpawn, rootId: root.id, childId: id, root: root.delegationChain, chain }
}

const withChain = (chain: readonly string[], details: unknown[] = [detail([READ_TOOL])]) => ({
  agentid_delegation: JSON.stringify(chain),
  authorization_details: JSON.stringify(details),
})

describe('access tokens carry the agentid claim', () => {
  let alice: NamedKey
  let spawned: SpawnResult
  beforeAll(async () => {
    alice = namedKey()
    spawned = await spawnAgent(h, alice, { claims: { toolProfile: [READ_TOOL], dataAccessClass: 'internal' } })
  })

  it('client_credentials: the agent claims, the identity credential and its status entry; no delegation, no subjectIssuer', async () => {
    const res = await c.send(await c.clientCredentials(alice))
    expect(res.statusCode, res.body).toBe(200)
    const p = payloadOf(res.json().access_token)
    expect(p.agentid).toEqual({
      claims: expect.objectContaining({ purpose: 'invoice triage', toolProfile: [READ_TOOL], dataAccessClass: 'internal' }),
      credentialId: spawned.credentialId,
      credentialStatus: {
        type: 'BitstringStatusListEntry', statusPurpose: 'revocation',
        statusListIndex: String(spawned.status.statusListIndex), statusListCredential: spawned.status.statusListCredential,
      },
    })
    expect(res.json().issued_token_type).toBeUndefined()
    expect(p.act).toBeUndefined()
  })

  it('rests on the latest identity credential after a renewal; a revoked credential is refused (invalid_client)', async () => {
    const renewed = await h.app.inject({ method: 'POST', url: `/v1/agents/${alice.did}/renew`, payload: { proof: await proof(h, alice, { purpose: 'renew' }), lifetimeSec: 7200 } })
    expect(renewed.statusCode, renewed.body).toBe(201)
    const renewedId = renewed.json().credentialId as string
    const res = await c.send(await c.clientCredentials(alice))
    expect(payloadOf(res.json().access_token).agentid.credentialId).toBe(renewedId)
    for (const id of [renewedId, spawned.credentialId]) {
      const r = await h.app.inject({ method: 'POST', url: `/v1/credentials/${id}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'test' } })
      expect(r.statusCode, r.body).toBe(200)
    }
    expectOAuthError(await c.send(await c.clientCredentials(alice)), 401, 'invalid_client', /identity credential/)
  })

  it('a cached token is refused at the resource once its identity credential is revoked', async () => {
    const bob = namedKey()
    const bobSpawn = await spawnAgent(h, bob)
    const res = await c.send(await c.clientCredentials(bob))
    const token = res.json().access_token as string
    const verifier = verifierFor(h, { resourceAudience: RESOURCE, statusTtlMs: 0 })
    const call = async () => {
      const url = `${RESOURCE}/x`
      const p = await new SignJWT({ htm: 'GET', htu: url, jti: randomUUID(), ath: createHash('sha256').update(token).digest('base64url') })
        .setProtectedHeader({ alg: 'EdDSA', typ: 'dpop+jwt', jwk: dkey.jwk }).setIssuedAt(c.nowSec()).sign(dkey.privateKey)
      return verifier.verifyRequest({ method: 'GET', url, headers: { authorization: `DPoP ${token}`, dpop: p } })
    }
    const ok = await call()
    expect(ok.agentClaims?.purpose).toBe('invoice triage')
    expect(ok.delegation).toBeNull()
    await h.app.inject({ method: 'POST', url: `/v1/credentials/${bobSpawn.credentialId}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'test' } })
    await expect(call()).rejects.toMatchObject({ code: 'ERR_REVOKED' })
  })
})

describe('agentid_delegation: the requested details checked against a delegation chain', () => {
  it('client_credentials with a chain A→B: B gets the details the leaf covers; root and depth are recorded; the token ends with the chain', async () => {
    const { b, chain } = await chainAB({ childLifetime: 90 })
    const res = await c.send(await c.clientCredentials(b, withChain(chain)))
    expect(res.statusCode, res.body).toBe(200)
    const p = payloadOf(res.json().access_token)
    expect(p.agentid.delegation).toEqual({ root: h.issuerDid, depth: 2 })
    // No datatypes asked: those up to the chain's maxDataClass (internal) are written in.
    expect(p.authorization_details).toEqual([detail([READ_TOOL], ['invoke'], { datatypes: ['public', 'internal'] })])
    expect(res.json().authorization_details).toEqual(p.authorization_details)
    expect(res.json().expires_in).toBeLessThanOrEqual(90)
    // Asked datatypes within it are kept as asked.
    const own = await c.send(await c.clientCredentials(b, withChain(chain, [detail([READ_TOOL], ['invoke'], { datatypes: ['public'] })])))
    expect(payloadOf(own.json().access_token).authorization_details).toEqual([detail([READ_TOOL], ['invoke'], { datatypes: ['public'] })])
    const row = h.service.store.db.prepare("SELECT details_json FROM audit_events WHERE action = 'token.issued' ORDER BY rowid DESC LIMIT 1").get() as { details_json: string }
    expect(JSON.parse(row.details_json)).toMatchObject({ delegationRoot: h.issuerDid, delegationDepth: 2 })
  })

  it('the root link alone works for A, with a prefix pattern inside its grant', async () => {
    const { a, root } = await chainAB()
    const res = await c.send(await c.clientCredentials(a, withChain(root, [detail(['mcp://erp/tools/invoices.write', 'mcp://erp/tools/reports/*'], ['invoke', 'list'])])))
    expect(res.statusCode, res.body).toBe(200)
    expect(payloadOf(res.json().access_token).agentid.delegation).toEqual({ root: h.issuerDid, depth: 1 })
  })

  it('refuses details wider than the chain: another location, another action, a data class above maxDataClass, a wider pattern', async () => {
    const { b, chain } = await chainAB()
    const cases = [
      [detail(['mcp://erp/tools/invoices.write'])],
      [detail([READ_TOOL], ['delete'])],
      [detail([READ_TOOL], ['invoke', 'delete'])],
      [detail([READ_TOOL], ['invoke'], { datatypes: ['confidential'] })],
      [detail([READ_TOOL]), detail([TOOLS])],
      [detail([READ_TOOL], ['*'])],
    ]
    for (const details of cases) expectOAuthError(await c.send(await c.clientCredentials(b, withChain(chain, details))), 400, 'invalid_authorization_details')
    // Within the profile (tools/*) but not the chain: the chain is the narrower limit.
    const { a, root } = await chainAB({ rootCaveats: { maxDataClass: 'public' } })
    expectOAuthError(await c.send(await c.clientCredentials(a, withChain(root, [detail([READ_TOOL], ['invoke'], { datatypes: ['internal'] })]))), 400, 'invalid_authorization_details', /maxDataClass/)
  })

  it('refuses a chain whose invoker is another agent, a revoked link, an unregistered link, a tampered link, a broken chain', async () => {
    const { a, b, chain, childId, root } = await chainAB()
    // A (the delegator) presents B's chain.
    expectOAuthError(await c.send(await c.clientCredentials(a, withChain(chain))), 400, 'invalid_grant', /not delegated to this agent/)
    // A link A signed to B without registering it: the issuer cannot revoke it, so it is refused.
    const unregistered = await delegate({ signer: a.signer, to: b.did, parent: root, clock: () => h.clock.now, capabilities: [{ resource: READ_TOOL, actions: ['invoke'] }], expiresIn: 600 })
    expectOAuthError(await c.send(await c.clientCredentials(b, withChain(unregistered))), 400, 'invalid_grant', /registered/)
    // A tampered leaf (signature no longer verifies).
    const [head, body, sig] = chain[1]!.split('.')
    const forged = JSON.parse(Buffer.from(body!, 'base64url').toString('utf8'))
    forged.vc.credentialSubject.capabilities = [{ resource: TOOLS, actions: ['*'] }]
    const tampered = [chain[0]!, `${head}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${sig}`]
    expectOAuthError(await c.send(await c.clientCredentials(b, withChain(tampered, [detail(['mcp://erp/tools/payments.send'])]))), 400, 'invalid_grant')
    // The leaf without its root.
    expectOAuthError(await c.send(await c.clientCredentials(b, withChain([chain[1]!]))), 400, 'invalid_grant')
    // The chain still works for B; then its link is revoked.
    expect((await c.send(await c.clientCredentials(b, withChain(chain)))).statusCode).toBe(200)
    const revoked = await h.app.inject({ method: 'POST', url: `/v1/delegations/${childId}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'test' } })
    expect(revoked.statusCode, revoked.body).toBe(200)
    expectOAuthError(await c.send(await c.clientCredentials(b, withChain(chain))), 400, 'invalid_grant', /revoked/)
  })

  it('revoking the root refuses every chain below it', async () => {
    const { b, chain, rootId } = await chainAB()
    await h.app.inject({ method: 'POST', url: `/v1/delegations/${rootId}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'test' } })
    expectOAuthError(await c.send(await c.clientCredentials(b, withChain(chain))), 400, 'invalid_grant', /revoked/)
  })

  it('refuses a malformed parameter, a chain without details, only wildcard details', async () => {
    const { b, chain } = await chainAB()
    for (const raw of ['not json', '{}', '[]', '[1]', JSON.stringify(Array(11).fill(chain[0]))]) {
      expectOAuthError(await c.send(await c.clientCredentials(b, { agentid_delegation: raw, authorization_details: JSON.stringify([detail([READ_TOOL])]) })), 400, 'invalid_request')
    }
    expectOAuthError(await c.send(await c.clientCredentials(b, { agentid_delegation: JSON.stringify(chain) })), 400, 'invalid_request', /authorization_details/)
    expectOAuthError(await c.send(await c.clientCredentials(b, withChain(chain, [detail(['mcp://erp/tools/*'], ['*'])]))), 400, 'invalid_authorization_details')
  })

  it('token exchange with a chain: the user, the IdP and the delegation are all recorded', async () => {
    const { b, chain } = await chainAB()
    const subject = await idp.userToken(c.nowSec())
    const res = await c.send(await c.exchange(b, subject, withChain(chain)))
    expect(res.statusCode, res.body).toBe(200)
    const p = payloadOf(res.json().access_token)
    expect(p.sub).toBe('user-42@idp')
    expect(p.act).toEqual({ sub: b.did })
    expect(p.agentid.subjectIssuer).toBe(idp.issuer)
    expect(p.agentid.delegation).toEqual({ root: h.issuerDid, depth: 2 })
    // The user's grant and the chain both apply.
    const narrow = await idp.userToken(c.nowSec(), { authorization_details: [detail(['mcp://erp/tools/other'])] })
    expectOAuthError(await c.send(await c.exchange(b, narrow, withChain(chain))), 400, 'invalid_authorization_details')
    // Another agent's chain on an exchange.
    const { chain: foreign } = await chainAB()
    expectOAuthError(await c.send(await c.exchange(b, subject, withChain(foreign))), 400, 'invalid_grant')
  })
})

describe('agentid_delegation on a did:web issuer', () => {
  it('verifies a chain with a link an agent (did:key) signed', async () => {
    const web = await harness({ didWebDomain: 'issuer.test' })
    try {
      expect(web.issuerDid).toBe('did:web:issuer.test')
      const a = namedKey()
      const b = namedKey()
      await spawnAgent(web, a, { claims: PROFILE })
      await spawnAgent(web, b, { claims: PROFILE })
      const res = await web.app.inject({ method: 'POST', url: `/v1/agents/${a.did}/grants`, headers: bearer(web.adminKey), payload: { capabilities: [{ resource: TOOLS, actions: ['*'] }], caveats: { remainingDepth: 1 }, lifetimeSec: 3600 } })
      expect(res.statusCode, res.body).toBe(201)
      const root = res.json() as { id: string; delegationChain: string[] }
      const reg = await web.app.inject({ method: 'POST', url: '/v1/delegations/status', payload: { proof: await proof(web, a, { purpose: 'delegate' }), parentId: root.id, delegatee: b.did } })
      expect(reg.statusCode, reg.body).toBe(201)
      const { id, statusEntry } = reg.json() as { id: string; statusEntry: BitstringStatusListEntry }
      const chain = await delegate({ signer: a.signer, to: b.did, parent: root.delegationChain, id, statusEntry, clock: () => web.clock.now, capabilities: [{ resource: READ_TOOL, actions: ['invoke'] }], expiresIn: 600 })
      const wc = tokenClient(web, dkey)
      const token = await wc.send(await wc.clientCredentials(b, withChain(chain)))
      expect(token.statusCode, token.body).toBe(200)
      expect(payloadOf(token.json().access_token).agentid.delegation).toEqual({ root: 'did:web:issuer.test', depth: 2 })
    } finally {
      await web.close()
    }
  })
})
