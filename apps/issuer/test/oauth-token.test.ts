// The OAuth 2.0 token endpoint (client_credentials, private_key_jwt, DPoP) and its metadata, in process:
// a real IssuerService on a temporary SQLite file, driven with app.inject().
import { createHash, randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose'
import type { LightMyRequestResponse } from 'fastify'
import { base64urlEncode, decodeJwt, publicKeyFromRaw, base64urlDecode, verifyJwsSignature } from '@agentid/core'
import { BASE_URL, bearer, harness, namedKey, signRaw, spawnAgent, verifierFor, type Harness, type NamedKey } from './http-fixtures.js'

const TOKEN_URL = `${BASE_URL}/v1/token`
const RESOURCE = 'https://erp.example/api'
const FORM = 'application/x-www-form-urlencoded'

interface DpopKey { alg: 'EdDSA' | 'ES256'; privateKey: CryptoKey; jwk: JWK; jkt: string }
async function dpopKey(alg: 'EdDSA' | 'ES256' = 'EdDSA'): Promise<DpopKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
  const jwk = await exportJWK(publicKey)
  return { alg, privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') }
}

function expectOAuthError(res: LightMyRequestResponse, status: number, error: string, description?: RegExp): void {
  expect(res.statusCode, `${res.statusCode} ${res.body}`).toBe(status)
  expect(String(res.headers['content-type'])).toMatch(/^application\/json/)
  const body = JSON.parse(res.body) as Record<string, unknown>
  expect(body.error).toBe(error)
  if (description) expect(body.error_description).toMatch(description)
  expect(typeof body.error_description).toBe('string')
  for (const k of Object.keys(body)) expect(['error', 'error_description']).toContain(k)
  expect(res.body).not.toMatch(/\n\s+at |node_modules|\.ts:\d+|stack/)
}

describe('OAuth token endpoint', () => {
  let h: Harness
  let alice: NamedKey
  let dkey: DpopKey
  const nowSec = () => Math.floor(h.clock.now / 1000)

  beforeAll(async () => {
    h = await harness()
    alice = namedKey()
    await spawnAgent(h, alice, { claims: { toolProfile: ['mcp://erp/tools/invoices.read', 'mcp://crm/*'], dataAccessClass: 'internal' } })
    dkey = await dpopKey()
  })
  afterAll(async () => h.close())

  const assertion = (key: NamedKey = alice, over: Record<string, unknown> = {}) =>
    signRaw(key, { alg: 'EdDSA', typ: 'JWT' }, { iss: key.did, sub: key.did, aud: TOKEN_URL, exp: nowSec() + 60, iat: nowSec(), jti: randomUUID(), ...over })

  const proofFor = (k: DpopKey, o: { nonce?: string | undefined; htm?: string; htu?: string; jti?: string; iat?: number; typ?: string } = {}) =>
    new SignJWT({ htm: o.htm ?? 'POST', htu: o.htu ?? TOKEN_URL, jti: o.jti ?? randomUUID(), ...(o.nonce === undefined ? {} : { nonce: o.nonce }) })
      .setProtectedHeader({ alg: k.alg, typ: o.typ ?? 'dpop+jwt', jwk: k.jwk })
      .setIssuedAt(o.iat ?? nowSec())
      .sign(k.privateKey)

  let nonce: string | undefined
  async function currentNonce(): Promise<string> {
    if (nonce) return nonce
    const res = await post(await formFor(), { dpop: await proofFor(dkey) })
    expectOAuthError(res, 400, 'use_dpop_nonce')
    nonce = String(res.headers['dpop-nonce'])
    return nonce
  }

  async function formFor(over: Record<string, string | undefined> = {}): Promise<string> {
    const base: Record<string, string | undefined> = {
      grant_type: 'client_credentials',
      client_id: alice.did,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await assertion(),
      resource: RESOURCE,
      authorization_details: JSON.stringify([{ type: 'agentid_action', actions: ['read'], locations: ['mcp://erp/tools/invoices.read'], datatypes: ['internal'] }]),
      ...over,
    }
    return new URLSearchParams(Object.entries(base).filter((e): e is [string, string] => e[1] !== undefined)).toString()
  }

  function post(payload: string, headers: Record<string, string | string[]> = {}, contentType = FORM) {
    return h.app.inject({ method: 'POST', url: '/v1/token', headers: { 'content-type': contentType, ...headers }, payload })
  }

  async function request(over: Record<string, string | undefined> = {}, proof?: string) {
    return post(await formFor(over), { dpop: proof ?? (await proofFor(dkey, { nonce: await currentNonce() })) })
  }

  it('serves RFC 8414 metadata and the JWKS', async () => {
    const meta = (await h.app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json()
    expect(meta).toEqual({
      issuer: BASE_URL,
      token_endpoint: TOKEN_URL,
      jwks_uri: `${BASE_URL}/v1/jwks`,
      response_types_supported: [],
      grant_types_supported: ['client_credentials'],
      token_endpoint_auth_methods_supported: ['private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['EdDSA', 'Ed25519'],
      dpop_signing_alg_values_supported: ['EdDSA', 'ES256', 'Ed25519'],
      authorization_details_types_supported: ['agentid_action'],
    })
    const jwks = (await h.app.inject({ method: 'GET', url: '/v1/jwks' })).json()
    expect(jwks.keys).toHaveLength(1)
    expect(jwks.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', kid: h.service.issuer.keyId, alg: 'EdDSA' })
    expect(jwks.keys[0].d).toBeUndefined()
  })

  it('asks for a DPoP nonce, then issues a DPoP-bound at+jwt with the requested details', async () => {
    const first = await post(await formFor(), { dpop: await proofFor(dkey) })
    expectOAuthError(first, 400, 'use_dpop_nonce')
    const serverNonce = String(first.headers['dpop-nonce'])
    expect(serverNonce.length).toBeGreaterThan(10)
    const res = await post(await formFor({ expires_in: '300' }), { dpop: await proofFor(dkey, { nonce: serverNonce }) })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.headers['cache-control']).toBe('no-store')
    const body = res.json()
    expect(body.token_type).toBe('DPoP')
    expect(body.expires_in).toBe(300)
    expect(body.authorization_details).toEqual([{ type: 'agentid_action', actions: ['read'], locations: ['mcp://erp/tools/invoices.read'], datatypes: ['internal'] }])
    const token = decodeJwt(body.access_token)
    expect(token.header).toEqual({ alg: 'EdDSA', typ: 'at+jwt', kid: h.service.issuer.keyId })
    verifyJwsSignature(token, publicKeyFromRaw(base64urlDecode(h.service.engine.issuer.publicJwk.x)))
    const c = token.payload as Record<string, any>
    expect(c.iss).toBe(h.issuerDid)
    expect(c.aud).toBe(RESOURCE)
    expect(c.sub).toBe(alice.did)
    expect(c.client_id).toBe(alice.did)
    expect(c.cnf).toEqual({ jkt: dkey.jkt })
    expect(c.exp - c.iat).toBe(300)
    expect(c.exp - nowSec()).toBeLessThanOrEqual(300)
    expect(typeof c.jti).toBe('string')
    expect(c.authorization_details).toEqual(body.authorization_details)
  })

  it("issues tokens that @agentid/verifier's verifyRequest accepts at the resource (and refuses elsewhere)", async () => {
    const res = await request()
    expect(res.statusCode, res.body).toBe(200)
    const token = res.json().access_token as string
    const url = `${RESOURCE}/invoices`
    const rsProof = await new SignJWT({ htm: 'GET', htu: url, jti: randomUUID(), ath: createHash('sha256').update(token).digest('base64url') })
      .setProtectedHeader({ alg: dkey.alg, typ: 'dpop+jwt', jwk: dkey.jwk })
      .setIssuedAt(nowSec())
      .sign(dkey.privateKey)
    const verifier = verifierFor(h, { resourceAudience: RESOURCE })
    const verified = await verifier.verifyRequest({ method: 'GET', url, headers: { authorization: `DPoP ${token}`, dpop: rsProof } })
    expect(verified.agent).toBe(alice.did)
    expect(verified.issuer).toBe(h.issuerDid)
    expect(verified.authorizationDetails).toEqual([{ type: 'agentid_action', actions: ['read'], locations: ['mcp://erp/tools/invoices.read'], datatypes: ['internal'] }])
    await expect(verifierFor(h, { resourceAudience: 'https://other.example' }).verifyRequest({ method: 'GET', url, headers: { authorization: `DPoP ${token}`, dpop: rsProof } }))
      .rejects.toMatchObject({ code: 'ERR_AUDIENCE_MISMATCH' })
  })

  it('defaults to 120 s; binds to an ES256 DPoP key; accepts a prefix pattern of the profile and the issuer URL as aud', async () => {
    const es = await dpopKey('ES256')
    const res = await post(
      await formFor({ client_assertion: await assertion(alice, { aud: BASE_URL }), client_id: undefined, authorization_details: JSON.stringify([{ type: 'agentid_action', actions: ['read'], locations: ['mcp://crm/contacts'] }]) }),
      { dpop: await proofFor(es, { nonce: await currentNonce() }) },
    )
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json().expires_in).toBe(120)
    const c = decodeJwt(res.json().access_token).payload as Record<string, any>
    expect(c.exp - c.iat).toBe(120)
    expect(c.cnf.jkt).toBe(es.jkt)
  })

  it('refuses the wrong content type, repeated parameters, a missing or unknown grant_type', async () => {
    const form = await formFor()
    const dpop = await proofFor(dkey, { nonce: await currentNonce() })
    expectOAuthError(await post(JSON.stringify(Object.fromEntries(new URLSearchParams(form))), { dpop }, 'application/json'), 400, 'invalid_request')
    expectOAuthError(await post(form, { dpop }, 'text/plain'), 400, 'invalid_request')
    expectOAuthError(await post(form + '&grant_type=client_credentials', { dpop }), 400, 'invalid_request')
    expectOAuthError(await request({ grant_type: undefined }), 400, 'invalid_request')
    expectOAuthError(await request({ grant_type: 'password' }), 400, 'unsupported_grant_type')
    expectOAuthError(await request({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange' }), 400, 'unsupported_grant_type')
    expectOAuthError(await post('x'.repeat(70 * 1024), { dpop }), 400, 'invalid_request')
  })

  it('refuses missing, invalid, replayed, foreign-key client assertions', async () => {
    const mallory = namedKey()
    expectOAuthError(await request({ client_assertion: undefined }), 401, 'invalid_client')
    expectOAuthError(await request({ client_assertion_type: undefined }), 401, 'invalid_client')
    expectOAuthError(await request({ client_assertion: 'not.a.jwt' }), 401, 'invalid_client')
    // Signed by another key, claiming to be alice.
    const forged = await signRaw(mallory, { alg: 'EdDSA' }, { iss: alice.did, sub: alice.did, aud: TOKEN_URL, exp: nowSec() + 60, jti: randomUUID() })
    expectOAuthError(await request({ client_assertion: forged }), 401, 'invalid_client', /not signed by the key/)
    // A valid assertion of an unregistered agent.
    expectOAuthError(await request({ client_assertion: await assertion(mallory), client_id: mallory.did }), 401, 'invalid_client')
    expectOAuthError(await request({ client_assertion: await assertion(alice, { aud: 'https://elsewhere.example' }) }), 401, 'invalid_client')
    expectOAuthError(await request({ client_assertion: await assertion(alice, { exp: nowSec() + 3600 }) }), 401, 'invalid_client')
    expectOAuthError(await request({ client_assertion: await assertion(alice, { exp: nowSec() - 1 }) }), 401, 'invalid_client')
    expectOAuthError(await request({ client_assertion: await assertion(alice, { sub: mallory.did }) }), 401, 'invalid_client')
    expectOAuthError(await request({ client_id: mallory.did }), 401, 'invalid_client')
    const once = await assertion()
    expect((await request({ client_assertion: once })).statusCode).toBe(200)
    expectOAuthError(await request({ client_assertion: once }), 401, 'invalid_client', /used before/)
  })

  it('refuses a missing, doubled, mismatched, replayed, unsigned or HMAC DPoP proof', async () => {
    const n = await currentNonce()
    const form = await formFor()
    expectOAuthError(await post(form), 400, 'invalid_dpop_proof')
    expectOAuthError(await post(form, { dpop: [await proofFor(dkey, { nonce: n }), await proofFor(dkey, { nonce: n })] }), 400, 'invalid_dpop_proof', /exactly one/)
    expectOAuthError(await request({}, await proofFor(dkey, { nonce: n, htm: 'GET' })), 400, 'invalid_dpop_proof')
    expectOAuthError(await request({}, await proofFor(dkey, { nonce: n, htu: `${BASE_URL}/v1/other` })), 400, 'invalid_dpop_proof')
    expectOAuthError(await request({}, await proofFor(dkey, { nonce: n, typ: 'JWT' })), 400, 'invalid_dpop_proof')
    expectOAuthError(await request({}, await proofFor(dkey, { nonce: n, iat: nowSec() - 600 })), 400, 'invalid_dpop_proof')
    expectOAuthError(await request({}, await proofFor(dkey, { nonce: 'stale-nonce' })), 400, 'use_dpop_nonce')
    const jti = randomUUID()
    expect((await request({}, await proofFor(dkey, { nonce: n, jti }))).statusCode).toBe(200)
    expectOAuthError(await request({}, await proofFor(dkey, { nonce: n, jti })), 400, 'invalid_dpop_proof', /used before/)
    const enc = (v: unknown) => base64urlEncode(Buffer.from(JSON.stringify(v)))
    const claims = { htm: 'POST', htu: TOKEN_URL, jti: randomUUID(), iat: nowSec(), nonce: n }
    expectOAuthError(await request({}, `${enc({ alg: 'none', typ: 'dpop+jwt', jwk: dkey.jwk })}.${enc(claims)}.`), 400, 'invalid_dpop_proof')
    const secret = new TextEncoder().encode('0123456789abcdef0123456789abcdef')
    const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: base64urlEncode(secret) } }).sign(secret)
    expectOAuthError(await request({}, hs), 400, 'invalid_dpop_proof', /alg/)
    expectOAuthError(await request({}, 'garbage'), 400, 'invalid_dpop_proof')
  })

  it('refuses authorization_details wider than the tool profile or data class, or malformed', async () => {
    const details = (v: unknown) => ({ authorization_details: typeof v === 'string' ? v : JSON.stringify(v) })
    const detail = { type: 'agentid_action', actions: ['read'], locations: ['mcp://erp/tools/invoices.read'] }
    expectOAuthError(await request(details([{ ...detail, locations: ['mcp://erp/tools/invoices.write'] }])), 400, 'invalid_authorization_details')
    expectOAuthError(await request(details([{ ...detail, locations: ['mcp://erp/*'] }])), 400, 'invalid_authorization_details')
    expectOAuthError(await request(details([{ ...detail, locations: ['mcp://crm'] }])), 400, 'invalid_authorization_details')
    expectOAuthError(await request(details([{ ...detail, datatypes: ['confidential'] }])), 400, 'invalid_authorization_details')
    expectOAuthError(await request(details([{ ...detail, datatypes: ['secret'] }])), 400, 'invalid_authorization_details')
    expectOAuthError(await request(details([{ ...detail, type: 'payment_initiation' }])), 400, 'invalid_authorization_details')
    expectOAuthError(await request(details([{ ...detail, actions: [] }])), 400, 'invalid_authorization_details')
    expectOAuthError(await request(details({ ...detail })), 400, 'invalid_authorization_details')
    expectOAuthError(await request(details('[{"type": "agentid_action",')), 400, 'invalid_authorization_details', /not valid JSON/)
    expectOAuthError(await request(details('[{"type":"agentid_action","actions":["read"],"locations":["mcp://crm/x"],"__proto__":{"admin":true}}]')), 400, 'invalid_authorization_details')
  })

  it('refuses expires_in over 300 s and a missing or relative resource', async () => {
    expectOAuthError(await request({ expires_in: '301' }), 400, 'invalid_request', /at most 300/)
    expectOAuthError(await request({ expires_in: '-5' }), 400, 'invalid_request')
    expectOAuthError(await request({ resource: undefined }), 400, 'invalid_target')
    expectOAuthError(await request({ resource: '/api' }), 400, 'invalid_target')
  })

  it('logs each issued token; rotates DPoP nonces, accepting the previous one', async () => {
    const res = await request()
    expect(res.statusCode, res.body).toBe(200)
    const jti = (decodeJwt(res.json().access_token).payload as { jti: string }).jti
    const row = h.service.store.db.prepare("SELECT * FROM audit_events WHERE action = 'token.issued' ORDER BY rowid DESC LIMIT 1").get() as { subject: string; details_json: string }
    expect(row.subject).toBe(alice.did)
    expect(JSON.parse(row.details_json)).toMatchObject({ tokenId: jti, resource: RESOURCE, jkt: dkey.jkt })
    // Start 1 s into a nonce window (300 s, shared-key nonces are per window), so that each +301 s step
    // below moves exactly one window: from a window's last second, one step crossed two, and the
    // previous nonce was already stale (a flaky failure, 1 run in 300).
    h.clock.now = (Math.floor(h.clock.now / 300_000) + 1) * 300_000 + 1_000
    nonce = undefined
    const old = await currentNonce()
    h.clock.now += 301_000
    expect((await request({}, await proofFor(dkey, { nonce: old }))).statusCode).toBe(200) // previous: still accepted
    h.clock.now += 301_000
    const stale = await request({}, await proofFor(dkey, { nonce: old }))
    expectOAuthError(stale, 400, 'use_dpop_nonce')
    expect(stale.headers['dpop-nonce']).not.toBe(old)
    nonce = String(stale.headers['dpop-nonce'])
    expect((await request()).statusCode).toBe(200)
  })

  it('refuses a revoked agent', async () => {
    const bob = namedKey()
    await spawnAgent(h, bob)
    const revoke = await h.app.inject({ method: 'POST', url: `/v1/agents/${bob.did}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'test' } })
    expect(revoke.statusCode, revoke.body).toBe(200)
    expectOAuthError(await request({ client_id: bob.did, client_assertion: await assertion(bob), authorization_details: undefined }), 401, 'invalid_client', /revoked/)
  })
})
