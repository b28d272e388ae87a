// SPIFFE IDs on spawn (AGENTID_TRUST_DOMAIN): returned, recorded in the identity credential (JWT and
// Data Integrity), kept on renewal, never set by the caller, and checked by the verifier.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { agentSpiffeId, decodeJwt, parseSpiffeId, VerificationError } from '@agentid/core'
import { configFromEnv } from '../src/config.js'
import { bearer, claims, expectInvalid, harness, namedKey, proof, spawnAgent, verifierFor, type Harness } from './http-fixtures.js'

const TD = 'agents.example.org'
let h: Harness
let plain: Harness
beforeAll(async () => {
  h = await harness({ trustDomain: TD })
  plain = await harness()
})
afterAll(async () => {
  await h.close()
  await plain.close()
})

describe('spawn with a trust domain', () => {
  it('gives an agent-held agent spiffe://<td>/agent/<orchestrator>/<key>, in the response and the credential', async () => {
    const alice = namedKey()
    const res = await spawnAgent(h, alice) as unknown as { spiffeId: string; credential: string; did: string }
    expect(res.spiffeId).toBe(`spiffe://${TD}/agent/acme/${alice.did.slice('did:key:'.length)}`)
    expect(parseSpiffeId(res.spiffeId).trustDomain).toBe(TD)
    const agent = await verifierFor(h).verifyAgentCredential(res.credential)
    expect(agent.claims.spiffeId).toBe(res.spiffeId)
    const view = (await h.app.inject({ method: 'GET', url: `/v1/agents/${alice.did}`, headers: bearer(h.orch.apiKey) })).json()
    expect(view.claims.spiffeId).toBe(res.spiffeId)
  })

  it('does the same for an issuer-generated key and for a Data Integrity credential', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/v1/agents', headers: bearer(h.other.apiKey), payload: { ...claims, keyCustody: 'issuer', format: 'di' } })
    expect(res.statusCode, res.body).toBe(201)
    const body = res.json()
    expect(body.spiffeId).toBe(agentSpiffeId(TD, 'globex', body.did))
    const agent = await verifierFor(h).verifyAgentCredential(body.credential)
    expect(agent.claims.spiffeId).toBe(body.spiffeId)
  })

  it('keeps the SPIFFE ID on renewal', async () => {
    const bob = namedKey()
    const spawned = await spawnAgent(h, bob) as unknown as { spiffeId: string }
    const res = await h.app.inject({ method: 'POST', url: `/v1/agents/${bob.did}/renew`, payload: { proof: await proof(h, bob, { purpose: 'renew' }) } })
    expect(res.statusCode, res.body).toBe(201)
    expect((decodeJwt(res.json().credential).payload.vc as { credentialSubject: { spiffeId: string } }).credentialSubject.spiffeId).toBe(spawned.spiffeId)
  })

  it('refuses a spiffeId chosen by the caller', async () => {
    const mallory = namedKey()
    const res = await h.app.inject({
      method: 'POST', url: '/v1/agents', headers: bearer(h.orch.apiKey),
      payload: { ...claims, proof: await proof(h, mallory), spiffeId: `spiffe://${TD}/agent/acme/admin` },
    })
    expectInvalid(res, 'spiffeId')
  })
})

describe('without a trust domain', () => {
  it('spawns without a SPIFFE ID', async () => {
    const res = await spawnAgent(plain, namedKey()) as unknown as Record<string, unknown>
    expect(res.spiffeId).toBeUndefined()
    expect((await verifierFor(plain).verifyAgentCredential(res.credential as string)).claims.spiffeId).toBeUndefined()
  })
})

describe('AGENTID_TRUST_DOMAIN', () => {
  it('is read and checked exactly', () => {
    expect(configFromEnv({ AGENTID_TRUST_DOMAIN: 'example.org' }).trustDomain).toBe('example.org')
    expect(configFromEnv({}).trustDomain).toBeUndefined()
    for (const bad of ['Example.org', 'example.org:443', 'exa mple.org', 'spiffe://example.org/x/']) {
      let code: string | undefined
      try { configFromEnv({ AGENTID_TRUST_DOMAIN: bad }) } catch (e) { code = (e as { code: string }).code }
      expect(code, bad).toBe('ERR_INVALID_INPUT')
    }
  })
})

describe('the verifier and the spiffeId claim', () => {
  it('refuses a credential whose spiffeId names another agent key (ERR_MALFORMED)', async () => {
    // Signed by the real issuer key, so only the claim check can refuse it.
    const alice = namedKey()
    const spawned = await spawnAgent(h, alice)
    const other = namedKey()
    const payload = decodeJwt(spawned.credential).payload as Record<string, any>
    payload.vc.credentialSubject.spiffeId = agentSpiffeId(TD, 'acme', other.did)
    const forged = await h.service.engine.signJwt({ typ: 'JWT' }, payload)
    const error = await verifierFor(h).verifyAgentCredential(forged).then(() => null, (e: unknown) => e)
    expect(error).toBeInstanceOf(VerificationError)
    expect((error as VerificationError).code).toBe('ERR_MALFORMED')
    // A well-formed but foreign-scheme SPIFFE ID is the issuer's business, not refused.
    payload.vc.credentialSubject.spiffeId = 'spiffe://other.example/workload'
    await expect(verifierFor(h).verifyAgentCredential(await h.service.engine.signJwt({ typ: 'JWT' }, payload))).resolves.toBeTruthy()
    payload.vc.credentialSubject.spiffeId = `spiffe://${TD}/agent/acme/../x`
    const bad = await verifierFor(h).verifyAgentCredential(await h.service.engine.signJwt({ typ: 'JWT' }, payload)).then(() => null, (e: unknown) => e)
    expect((bad as VerificationError).code).toBe('ERR_MALFORMED')
  })
})
