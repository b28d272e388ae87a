import { createHash } from 'node:crypto'
import { decodeJwt, publicKeyFromJwk, verifyJwsSignature } from '@agentid/core'
import { createAgentFetch, generateAgentKey, TokenRequestError, JWT_BEARER_ASSERTION_TYPE, type FetchFunction } from '@agentid/client'
import { describe, expect, it } from 'vitest'

const ISSUER = 'https://issuer.example'
const TOKEN_URL = `${ISSUER}/v1/token`
const RESOURCE = 'https://erp.example'
const T = 1_800_000_000

interface Seen { url: string; method: string; headers: Headers; body: string }

/** A fake issuer + resource: records every request; `handle` answers it. */
function fakeNetwork(handle: (req: Seen, index: number) => Response) {
  const seen: Seen[] = []
  const fetch: FetchFunction = async (input, init) => {
    const req = { url: String(input), method: init?.method ?? 'GET', headers: new Headers(init?.headers), body: typeof init?.body === 'string' ? init.body : init?.body ? new TextDecoder().decode(init.body as ArrayBuffer) : '' }
    seen.push(req)
    return handle(req, seen.length - 1)
  }
  return { fetch, seen }
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } })
const tokenOk = (token: string, expiresIn = 120, nonce = 'n-issuer-2') =>
  json(200, { access_token: token, token_type: 'DPoP', expires_in: expiresIn, authorization_details: [] }, { 'dpop-nonce': nonce })

/** Checks the DPoP proof's header and signature; returns its claims. */
function proofClaims(req: Seen, jwk: { kty: 'OKP'; crv: 'Ed25519'; x: string }): Record<string, unknown> {
  const proof = req.headers.get('dpop')
  expect(proof).toBeTypeOf('string')
  const decoded = decodeJwt(proof!)
  expect(decoded.header).toEqual({ typ: 'dpop+jwt', alg: 'EdDSA', jwk })
  verifyJwsSignature(decoded, publicKeyFromJwk(jwk))
  return decoded.payload
}

describe('createAgentFetch', () => {
  const key = generateAgentKey()
  const jwk = { kty: 'OKP' as const, crv: 'Ed25519' as const, x: key.publicJwk.x }
  const details = [{ type: 'agentid_action', actions: ['read'], locations: [RESOURCE] }]

  it('gets a token (client assertion, DPoP proof, nonce retry) and calls the resource with DPoP + ath', async () => {
    const net = fakeNetwork((req, i) => {
      if (req.url === TOKEN_URL) {
        return i === 0 ? json(400, { error: 'use_dpop_nonce', error_description: 'nonce' }, { 'dpop-nonce': 'n-issuer-1' }) : tokenOk('tok-1')
      }
      return json(200, { ok: true })
    })
    const agentFetch = createAgentFetch({ issuerUrl: `${ISSUER}/`, privateJwk: key.privateJwk, resource: RESOURCE, authorizationDetails: details, fetch: net.fetch, clock: () => T * 1000 })
    const r = await agentFetch(`${RESOURCE}/invoices?page=2#x`, { method: 'post', body: '{"a":1}', headers: { 'content-type': 'application/json' } })
    expect(r.status).toBe(200)
    expect(net.seen.map((s) => s.url)).toEqual([TOKEN_URL, TOKEN_URL, `${RESOURCE}/invoices?page=2#x`])

    // Token requests: form fields and headers.
    for (const [i, req] of net.seen.slice(0, 2).entries()) {
      expect(req.method).toBe('POST')
      expect(req.headers.get('content-type')).toBe('application/x-www-form-urlencoded')
      const form = new URLSearchParams(req.body)
      expect([...form.keys()].sort()).toEqual(['authorization_details', 'client_assertion', 'client_assertion_type', 'client_id', 'grant_type', 'resource'])
      expect(form.get('grant_type')).toBe('client_credentials')
      expect(form.get('client_id')).toBe(key.did)
      expect(form.get('client_assertion_type')).toBe(JWT_BEARER_ASSERTION_TYPE)
      expect(form.get('resource')).toBe(RESOURCE)
      expect(JSON.parse(form.get('authorization_details')!)).toEqual(details)
      const assertion = decodeJwt(form.get('client_assertion')!)
      expect(assertion.header.alg).toBe('EdDSA')
      verifyJwsSignature(assertion, publicKeyFromJwk(jwk))
      expect(assertion.payload).toMatchObject({ iss: key.did, sub: key.did, aud: TOKEN_URL, iat: T })
      expect(assertion.payload.exp).toBeGreaterThan(T)
      expect(assertion.payload.exp).toBeLessThanOrEqual(T + 300)
      expect(assertion.payload.jti).toBeTypeOf('string')
      const claims = proofClaims(req, jwk)
      expect(claims).toMatchObject({ htm: 'POST', htu: TOKEN_URL, iat: T })
      expect(claims.jti).toBeTypeOf('string')
      expect(claims.ath).toBeUndefined()
      if (i === 0) expect(claims.nonce).toBeUndefined()
      else expect(claims.nonce).toBe('n-issuer-1')
    }
    const [a0, a1] = net.seen.slice(0, 2).map((s) => decodeJwt(new URLSearchParams(s.body).get('client_assertion')!).payload.jti)
    expect(a0).not.toBe(a1)

    // The resource request: DPoP scheme, proof with ath, htu without query/fragment, body and headers kept.
    const call = net.seen[2]!
    expect(call.method).toBe('POST')
    expect(call.headers.get('authorization')).toBe('DPoP tok-1')
    expect(call.headers.get('content-type')).toBe('application/json')
    expect(call.body).toBe('{"a":1}')
    const claims = proofClaims(call, jwk)
    expect(claims).toMatchObject({ htm: 'POST', htu: `${RESOURCE}/invoices`, iat: T, ath: createHash('sha256').update('tok-1').digest('base64url') })
    expect(claims.nonce).toBeUndefined()
  })

  it('retries a resource request once on 401 use_dpop_nonce, with the nonce and the same token', async () => {
    let calls = 0
    const net = fakeNetwork((req) => {
      if (req.url === TOKEN_URL) return tokenOk('tok-1')
      calls++
      if (calls === 1) return json(401, { error: { code: 'ERR_REPLAY' } }, { 'www-authenticate': 'DPoP error="use_dpop_nonce", algs="EdDSA ES256"', 'dpop-nonce': 'n-rs-1' })
      if (calls === 3) return json(401, { error: { code: 'ERR_REPLAY' } }, { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': 'n-rs-2' })
      return json(200, { ok: true })
    })
    const agentFetch = createAgentFetch({ issuerUrl: ISSUER, privateJwk: key.privateJwk, resource: RESOURCE, fetch: net.fetch, clock: () => T * 1000 })
    expect((await agentFetch(`${RESOURCE}/a`, { method: 'PUT', body: 'x' })).status).toBe(200)
    const rs = net.seen.filter((s) => s.url !== TOKEN_URL)
    expect(rs).toHaveLength(2)
    expect(rs.map((s) => s.body)).toEqual(['x', 'x'])
    const [p0, p1] = rs.map((s) => proofClaims(s, jwk))
    expect(p0!.nonce).toBeUndefined()
    expect(p1!.nonce).toBe('n-rs-1')
    expect(p0!.jti).not.toBe(p1!.jti)
    expect(rs.map((s) => s.headers.get('authorization'))).toEqual(['DPoP tok-1', 'DPoP tok-1'])

    // The nonce is remembered for the next request; a second refusal in a row is retried once only.
    expect((await agentFetch(`${RESOURCE}/b`)).status).toBe(200)
    const next = net.seen.filter((s) => s.url !== TOKEN_URL)
    expect(proofClaims(next[2]!, jwk).nonce).toBe('n-rs-1')
    expect(proofClaims(next[3]!, jwk).nonce).toBe('n-rs-2')
    // Only one token request in all.
    expect(net.seen.filter((s) => s.url === TOKEN_URL)).toHaveLength(1)

    const stubborn = fakeNetwork((req) => (req.url === TOKEN_URL ? tokenOk('tok-1') : json(401, {}, { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': 'n' })))
    const f2 = createAgentFetch({ issuerUrl: ISSUER, privateJwk: key.privateJwk, resource: RESOURCE, fetch: stubborn.fetch, clock: () => T * 1000 })
    expect((await f2(`${RESOURCE}/c`)).status).toBe(401)
    expect(stubborn.seen.filter((s) => s.url !== TOKEN_URL)).toHaveLength(2)
  })

  it('caches the token until shortly before expires_in, then gets a new one; a fresh proof every request', async () => {
    let now = T * 1000
    let n = 0
    const net = fakeNetwork((req) => (req.url === TOKEN_URL ? tokenOk(`tok-${++n}`, 120, `n-${n}`) : json(200, {})))
    const agentFetch = createAgentFetch({ issuerUrl: ISSUER, privateJwk: key.privateJwk, resource: RESOURCE, fetch: net.fetch, clock: () => now })
    await Promise.all([agentFetch(`${RESOURCE}/1`), agentFetch(`${RESOURCE}/2`)])
    now += 60_000
    await agentFetch(`${RESOURCE}/3`)
    now += 29_000 // 89 s: still before the refresh point (120 - 30)
    await agentFetch(`${RESOURCE}/4`)
    now += 2_000 // 91 s
    await agentFetch(`${RESOURCE}/5`)
    const auth = net.seen.filter((s) => s.url !== TOKEN_URL).map((s) => s.headers.get('authorization'))
    expect(auth).toEqual(['DPoP tok-1', 'DPoP tok-1', 'DPoP tok-1', 'DPoP tok-1', 'DPoP tok-2'])
    const tokenReqs = net.seen.filter((s) => s.url === TOKEN_URL)
    expect(tokenReqs).toHaveLength(2)
    // The refresh uses the nonce the token endpoint gave last time.
    expect(proofClaims(tokenReqs[1]!, jwk).nonce).toBe('n-1')
    const proofs = net.seen.filter((s) => s.url !== TOKEN_URL).map((s) => proofClaims(s, jwk))
    expect(new Set(proofs.map((p) => p.jti)).size).toBe(5)
    expect(proofs.map((p) => p.iat)).toEqual([T, T, T + 60, T + 89, T + 91])
    expect(proofs[4]!.ath).toBe(createHash('sha256').update('tok-2').digest('base64url'))
  })

  it('throws TokenRequestError with the OAuth error code and status when the issuer refuses', async () => {
    const net = fakeNetwork((req) => (req.url === TOKEN_URL ? json(401, { error: 'invalid_client', error_description: 'revoked' }) : json(200, {})))
    const agentFetch = createAgentFetch({ issuerUrl: ISSUER, privateJwk: key.privateJwk, resource: RESOURCE, fetch: net.fetch, clock: () => T * 1000 })
    const error = await agentFetch(`${RESOURCE}/x`).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TokenRequestError)
    expect(error).toMatchObject({ error: 'invalid_client', status: 401 })
    expect(net.seen).toHaveLength(1)
    // use_dpop_nonce is retried once only.
    const loop = fakeNetwork(() => json(400, { error: 'use_dpop_nonce' }, { 'dpop-nonce': 'n' }))
    const f2 = createAgentFetch({ issuerUrl: ISSUER, privateJwk: key.privateJwk, resource: RESOURCE, fetch: loop.fetch, clock: () => T * 1000 })
    expect(await f2(`${RESOURCE}/x`).catch((e: unknown) => e)).toMatchObject({ error: 'use_dpop_nonce', status: 400 })
    expect(loop.seen).toHaveLength(2)
  })
})

describe('createAgentFetch with a token source (a token exchanged by the orchestrator)', () => {
  const key = generateAgentKey()
  const jwk = { kty: 'OKP' as const, crv: 'Ed25519' as const, x: key.publicJwk.x }

  it('asks the source once for concurrent requests, signs its own proofs, asks again before expiry and after invalid_token', async () => {
    let now = T * 1000
    let asked = 0
    const source = async () => ({ accessToken: `src-${++asked}`, expiresIn: 100 })
    let refuseNext = false
    const net = fakeNetwork(() => {
      if (refuseNext) {
        refuseNext = false
        return json(401, { error: { code: 'ERR_EXPIRED' } }, { 'www-authenticate': 'DPoP error="invalid_token"' })
      }
      return json(200, {})
    })
    const agentFetch = createAgentFetch({ privateJwk: key.privateJwk, token: source, fetch: net.fetch, clock: () => now })
    await Promise.all([agentFetch(`${RESOURCE}/1`), agentFetch(`${RESOURCE}/2`)])
    expect(asked).toBe(1)
    now += 74_000 // before the refresh point (100 - 25)
    await agentFetch(`${RESOURCE}/3`)
    now += 2_000 // 76 s: past it
    await agentFetch(`${RESOURCE}/4`)
    expect(asked).toBe(2)
    refuseNext = true
    expect((await agentFetch(`${RESOURCE}/5`)).status).toBe(401)
    await agentFetch(`${RESOURCE}/6`)
    expect(asked).toBe(3)
    // Only the resource was called: the agent never reaches a token endpoint itself.
    expect(net.seen.every((s) => s.url.startsWith(RESOURCE))).toBe(true)
    expect(net.seen.map((s) => s.headers.get('authorization'))).toEqual(['DPoP src-1', 'DPoP src-1', 'DPoP src-1', 'DPoP src-2', 'DPoP src-2', 'DPoP src-3'])
    for (const s of net.seen) {
      const claims = proofClaims(s, jwk)
      expect(claims.ath).toBe(createHash('sha256').update(s.headers.get('authorization')!.slice('DPoP '.length)).digest('base64url'))
    }
  })

  it('fails on a source that gives no token, and passes its errors on', async () => {
    const net = fakeNetwork(() => json(200, {}))
    const bad = [{ accessToken: '', expiresIn: 60 }, { accessToken: 't', expiresIn: 0 }, { accessToken: 't' }, null]
    for (const result of bad) {
      const f = createAgentFetch({ privateJwk: key.privateJwk, token: async () => result as never, fetch: net.fetch })
      await expect(f(`${RESOURCE}/x`)).rejects.toThrow(TypeError)
    }
    const refused = new TokenRequestError('invalid_request', 400, 'subject_token: has expired')
    const f = createAgentFetch({ privateJwk: key.privateJwk, token: () => Promise.reject(refused), fetch: net.fetch })
    await expect(f(`${RESOURCE}/x`)).rejects.toBe(refused)
    expect(net.seen).toHaveLength(0)
  })

  it('is misused with both a source and an issuer, or with neither', () => {
    const token = async () => ({ accessToken: 't', expiresIn: 60 })
    expect(() => createAgentFetch({ privateJwk: key.privateJwk, token, issuerUrl: ISSUER, resource: RESOURCE } as never)).toThrow(TypeError)
    expect(() => createAgentFetch({ privateJwk: key.privateJwk } as never)).toThrow(TypeError)
  })
})
