import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { base64urlEncode, signJwt, VerificationError, type Signer, type VerificationErrorCode } from '@agentid/core'
import {
  accessTokenHash,
  agentidFastify,
  agentidMiddleware,
  createMemoryReplayCache,
  createVerifier,
  dpopErrorResponse,
  verifyDpopProof,
  verifyFetchRequest,
  type FastifyLike,
  type Verifier,
  type VerifierOptions,
} from '@agentid/verifier'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose'
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { VerificationKey } from '../src/keys.js'
import { alice, bob, issuer, malloryIssuer, NOW, testClock } from './fixtures.js'

const AUD = 'https://erp.example'
const URL_ = 'https://erp.example/invoices/42'
const vectors = JSON.parse(readFileSync(new URL('../../../vectors/dpop/rfc9449-examples.json', import.meta.url), 'utf8')) as {
  proof_jkt: string
  access_token: string
  access_token_ath: string
  proofs: { id: string; compact: string; payload: Record<string, unknown>; valid_context: { method: string; url: string; now: number; access_token: string | null; bound_jkt?: string } }[]
  negative_context_cases: { id: string; proof: string | null; context: Record<string, unknown>; expected: string }[]
}

async function expectCode(promise: Promise<unknown>, code: VerificationErrorCode): Promise<VerificationError> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error, `expected ${code}`).toBeInstanceOf(VerificationError)
  expect((error as VerificationError).code).toBe(code)
  return error as VerificationError
}

interface DpopKey {
  alg: 'EdDSA' | 'ES256'
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey']
  publicJwk: JWK
  jkt: string
}

async function dpopKey(alg: 'EdDSA' | 'ES256'): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  const publicJwk = await exportJWK(publicKey)
  return { alg, privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk, 'sha256') }
}

let edKey: DpopKey
let ecKey: DpopKey
let otherKey: DpopKey
beforeAll(async () => {
  edKey = await dpopKey('EdDSA')
  ecKey = await dpopKey('ES256')
  otherKey = await dpopKey('EdDSA')
})

let counter = 0

interface TokenOptions {
  signer?: Signer
  header?: Record<string, unknown>
  claims?: Record<string, unknown>
  iat?: number
  ttl?: number
  jkt?: string
}

/** Mints an access token exactly as the issuer's token endpoint does. */
async function accessToken(o: TokenOptions = {}): Promise<string> {
  const signer = o.signer ?? issuer
  const iat = o.iat ?? NOW
  return signJwt({ typ: 'at+jwt', kid: signer.keyId, ...o.header }, {
    iss: signer.did,
    aud: AUD,
    sub: alice.did,
    client_id: alice.did,
    iat,
    exp: iat + (o.ttl ?? 300),
    jti: `at-${++counter}`,
    cnf: { jkt: o.jkt ?? edKey.jkt },
    authorization_details: [{ type: 'agentid_action', actions: ['read'], locations: [AUD], datatypes: ['invoice'] }],
    ...o.claims,
  }, signer)
}

interface ProofOptions {
  key?: DpopKey
  method?: string
  url?: string
  token?: string | null
  iat?: number
  header?: Record<string, unknown>
  payload?: Record<string, unknown>
  omit?: string[]
}

/** Signs a DPoP proof with jose, as a client would, every part open to tampering. */
async function proof(o: ProofOptions = {}): Promise<string> {
  const key = o.key ?? edKey
  const payload: Record<string, unknown> = {
    jti: `proof-${++counter}`,
    htm: o.method ?? 'GET',
    htu: o.url ?? URL_,
    iat: o.iat ?? NOW,
    ...(o.token === null || o.token === undefined ? {} : { ath: accessTokenHash(o.token) }),
    ...o.payload,
  }
  for (const name of o.omit ?? []) delete payload[name]
  return new SignJWT(payload).setProtectedHeader({ typ: 'dpop+jwt', alg: key.alg, jwk: key.publicJwk, ...o.header } as never).sign(key.privateKey)
}

function headers(token: string, dpop: string | string[], scheme = 'DPoP'): Record<string, string | string[]> {
  return { authorization: `${scheme} ${token}`, dpop }
}

let clock: ReturnType<typeof testClock>
let verifier: Verifier

function makeVerifier(extra: Partial<VerifierOptions> = {}): Verifier {
  return createVerifier({ trustedIssuers: [issuer.did], clock, resourceAudience: AUD, ...extra })
}

beforeEach(() => {
  clock = testClock()
  verifier = makeVerifier()
})
afterEach(() => {
  vi.restoreAllMocks()
})

describe('verifyRequest: happy path', () => {
  it('verifies an EdDSA-bound request: agent, no user, authorization details, claims', async () => {
    const token = await accessToken()
    const result = await verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token })) })
    expect(result.agent).toBe(alice.did)
    expect(result.user).toBeNull()
    expect(result.act).toBeNull()
    expect(result.issuer).toBe(issuer.did)
    expect(result.authorizationDetails).toEqual([{ type: 'agentid_action', actions: ['read'], locations: [AUD], datatypes: ['invoice'] }])
    expect(result.claims.cnf).toEqual({ jkt: edKey.jkt })
    expect(result.proof.jkt).toBe(edKey.jkt)
    // Every member, in this order, frozen; the second request (token cached) gives the same.
    const members = ['agent', 'user', 'act', 'agentClaims', 'userIssuer', 'delegation', 'authorizationDetails', 'issuer', 'tokenId', 'expiresAt', 'claims', 'audience', 'proof']
    expect(Object.keys(result)).toEqual(members)
    expect(Object.isFrozen(result)).toBe(true)
    const again = await verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token })) })
    expect(Object.keys(again)).toEqual(members)
    expect({ ...again, proof: null }).toEqual({ ...result, proof: null })
  })

  it('verifies an ES256-bound request, with aud a list and the audience given per call', async () => {
    const token = await accessToken({ jkt: ecKey.jkt, claims: { aud: ['https://other.example', 'https://api.example'] } })
    const dpop = await proof({ key: ecKey, method: 'POST', token, url: 'https://api.example/x' })
    const result = await verifier.verifyRequest({ method: 'POST', url: 'https://api.example/x', headers: headers(token, dpop) }, { audience: 'https://api.example' })
    expect(result.proof.alg).toBe('ES256')
  })

  it('token exchange: sub is the user, act.sub the agent', async () => {
    const token = await accessToken({ claims: { sub: 'user:42@acme.example', act: { sub: alice.did } } })
    const result = await verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token })) })
    expect(result.agent).toBe(alice.did)
    expect(result.user).toBe('user:42@acme.example')
    expect(result.act).toEqual({ sub: alice.did })
  })

  it('normalises htu: scheme/host case, default port, query and fragment ignored', async () => {
    const token = await accessToken()
    const dpop = await proof({ token, url: 'HTTPS://ERP.Example:443/invoices/42' })
    await verifier.verifyRequest({ method: 'GET', url: 'https://erp.example/invoices/42?page=2#x', headers: headers(token, dpop) })
  })

  it('accepts a fetch Headers object and header names in any case', async () => {
    const token = await accessToken()
    const dpop = await proof({ token })
    await verifier.verifyRequest({ method: 'GET', url: URL_, headers: new Headers({ Authorization: `DPoP ${token}`, DPoP: dpop }) })
    await verifier.verifyRequest({ method: 'GET', url: URL_, headers: { AUTHORIZATION: `dpop ${token}`, Dpop: await proof({ token }) } })
  })
})

describe('verifyRequest: RFC 9449 negative cases, with our own proofs', () => {
  it('htm mismatch', async () => {
    const token = await accessToken()
    await expectCode(verifier.verifyRequest({ method: 'POST', url: URL_, headers: headers(token, await proof({ token })) }), 'ERR_AUDIENCE_MISMATCH')
  })
  it('htu mismatch: host and path', async () => {
    const token = await accessToken()
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token, url: 'https://evil.example/invoices/42' })) }), 'ERR_AUDIENCE_MISMATCH')
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token, url: 'https://erp.example/other' })) }), 'ERR_AUDIENCE_MISMATCH')
  })
  it('a request path with dot segments or backslashes: the proof names the resolved URL, the router runs the path as sent', async () => {
    const token = await accessToken()
    // A proof made for /invoices/42 would pass for /archive/%2e%2e/invoices/42, which Express routes as /archive/:id/invoices/42.
    // Each twice in a row, and again after an accepted URL: the last URL's answer is kept, and only its own.
    for (let round = 0; round < 2; round++) {
      for (const path of ['/archive/%2e%2e/invoices/42', '/archive/%2e%2e/invoices/42', '/archive/../invoices/42', '/archive/%2E%2e/invoices/42', '/./invoices/42', '/invoices\\42', '/invoices\\42']) {
        const error = await verifier.verifyRequest({ method: 'GET', url: `https://erp.example${path}`, headers: headers(token, await proof({ token })) }).then(() => null, (e: unknown) => e)
        expect(error, path).toBeInstanceOf(VerificationError)
        expect((error as VerificationError).code, path).toBe('ERR_MALFORMED')
      }
      await verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token })) })
      await verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token })) })
    }
  })
  it('iat too old and in the future (60 s window + 60 s skew)', async () => {
    const token = await accessToken()
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token, iat: NOW - 121 })) }), 'ERR_EXPIRED')
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token, iat: NOW + 61 })) }), 'ERR_NOT_YET_VALID')
    await verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token, iat: NOW - 119 })) })
  })
  it('jti replay, and a failed check does not burn the jti', async () => {
    const token = await accessToken()
    const dpop = await proof({ token })
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, dpop) }, { audience: 'https://nope.example' }), 'ERR_AUDIENCE_MISMATCH')
    await verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, dpop) })
    const error = await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, dpop) }), 'ERR_REPLAY')
    expect(error.details.dpopError).toBe('invalid_dpop_proof')
  })
  it('ath mismatch and ath missing', async () => {
    const token = await accessToken()
    const other = await accessToken()
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token: other })) }), 'ERR_KEY_MISMATCH')
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token: null })) }), 'ERR_MALFORMED')
  })
  it('jkt mismatch: the proof key is not the cnf.jkt key', async () => {
    const token = await accessToken()
    const error = await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token, key: otherKey })) }), 'ERR_KEY_MISMATCH')
    expect(error.details.dpopError).toBe('invalid_token')
  })
  it('nonce required and missing or wrong: use_dpop_nonce with the nonce to use', async () => {
    const token = await accessToken()
    const withNonce = makeVerifier({ dpopNonce: () => 'n-1' })
    const error = await expectCode(withNonce.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token })) }), 'ERR_REPLAY')
    expect(error.details).toMatchObject({ dpopError: 'use_dpop_nonce', dpopNonce: 'n-1' })
    await expectCode(withNonce.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token, payload: { nonce: 'n-0' } })) }), 'ERR_REPLAY')
    await withNonce.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token, payload: { nonce: 'n-1' } })) })
    // The per-call option too.
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token })) }, { nonce: 'n-2' }), 'ERR_REPLAY')
  })
  it('a DPoP-bound token presented as Bearer is refused', async () => {
    const token = await accessToken()
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token }), 'Bearer') }), 'ERR_MALFORMED')
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: { authorization: `Bearer ${token}` } }), 'ERR_MALFORMED')
  })
  it('the Authorization value last accepted is kept, and only that very value: any other is checked again', async () => {
    const token = await accessToken()
    await verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token })) })
    for (const [value, dpopError] of [[`Bearer ${token}`, 'invalid_token'], [`Basic ${token}`, 'invalid_token'], [`DPoP ${token}, DPoP ${token}`, 'invalid_request'], [`DPoP ${token}!`, 'invalid_token'], [`DPoP  ${token}`, null], [`dpop ${token} `, null]] as const) {
      const p = await proof({ token })
      const call = verifier.verifyRequest({ method: 'GET', url: URL_, headers: { authorization: value, dpop: p } })
      if (dpopError === null) {
        expect((await call).agent).toBeTypeOf('string') // the same token, spelled otherwise: accepted as before
        continue
      }
      const e = await expectCode(call, 'ERR_MALFORMED')
      expect(e.details.dpopError).toBe(dpopError)
    }
    await verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token })) })
  })
  it('two DPoP headers (kept apart or joined), two Authorization headers, none at all', async () => {
    const token = await accessToken()
    const a = await proof({ token })
    const b = await proof({ token })
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, [a, b]) }), 'ERR_MALFORMED')
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, `${a}, ${b}`) }), 'ERR_MALFORMED')
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: { authorization: `DPoP ${token}` } }), 'ERR_MALFORMED')
    const e = await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: { authorization: [`Bearer ${token}`, `DPoP ${token}`], dpop: a } }), 'ERR_MALFORMED')
    expect(e.details.dpopError).toBe('invalid_request')
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: { dpop: a } }), 'ERR_MALFORMED')
    // Neither proof was consumed.
    await verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, a) })
  })
})

describe('verifyRequest: proofs the RFC vectors cannot express', () => {
  function unsigned(header: Record<string, unknown>, payload: Record<string, unknown>, signature = ''): string {
    return `${base64urlEncode(JSON.stringify(header))}.${base64urlEncode(JSON.stringify(payload))}.${signature}`
  }
  const payload = () => ({ jti: `p-${++counter}`, htm: 'GET', htu: URL_, iat: NOW })

  it('alg none and HS256 are refused', async () => {
    const token = await accessToken()
    const none = unsigned({ typ: 'dpop+jwt', alg: 'none', jwk: edKey.publicJwk }, { ...payload(), ath: accessTokenHash(token) }, 'AAAA')
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, none) }), 'ERR_UNSUPPORTED_ALG')
    const hs = await new SignJWT({ ...payload(), ath: accessTokenHash(token) })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'HS256', jwk: { kty: 'oct', k: 'c2VjcmV0' } } as never)
      .sign(new TextEncoder().encode('secret-secret-secret-secret-32by'))
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, hs) }), 'ERR_UNSUPPORTED_ALG')
  })
  it('a jwk holding the private key (d) is refused', async () => {
    const token = await accessToken()
    const privateJwk = await exportJWK(edKey.privateKey)
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token, header: { jwk: privateJwk } })) }), 'ERR_MALFORMED')
  })
  it('missing jti, wrong typ, missing jwk, a jwk of another alg', async () => {
    const token = await accessToken()
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token, omit: ['jti'] })) }), 'ERR_MALFORMED')
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token, header: { typ: 'JWT' } })) }), 'ERR_MALFORMED')
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token, header: { jwk: undefined } })) }), 'ERR_MALFORMED')
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token, header: { jwk: ecKey.publicJwk } })) }), 'ERR_UNSUPPORTED_ALG')
  })
  it('a proof signed by another key than its jwk', async () => {
    const token = await accessToken()
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token, header: { jwk: otherKey.publicJwk } })) }), 'ERR_SIGNATURE_INVALID')
  })
})

describe('verifyRequest: the access token', () => {
  async function call(token: string): Promise<unknown> {
    return verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token })) })
  }
  it('expired', async () => {
    await expectCode(call(await accessToken({ iat: NOW - 400 })), 'ERR_EXPIRED')
  })
  it('issued in the future', async () => {
    await expectCode(call(await accessToken({ iat: NOW + 120 })), 'ERR_NOT_YET_VALID')
  })
  it('untrusted issuer', async () => {
    await expectCode(call(await accessToken({ signer: malloryIssuer })), 'ERR_UNTRUSTED_ISSUER')
  })
  it('signed by another key than the trusted issuer named in iss', async () => {
    await expectCode(call(await accessToken({ signer: malloryIssuer, claims: { iss: issuer.did }, header: { kid: issuer.keyId } })), 'ERR_SIGNATURE_INVALID')
  })
  it('wrong aud, no aud', async () => {
    await expectCode(call(await accessToken({ claims: { aud: 'https://other.example' } })), 'ERR_AUDIENCE_MISMATCH')
    await expectCode(call(await accessToken({ claims: { aud: undefined } })), 'ERR_MALFORMED')
  })
  it('lifetime longer than 300 s', async () => {
    await expectCode(call(await accessToken({ ttl: 301 })), 'ERR_MALFORMED')
  })
  it('not at+jwt', async () => {
    await expectCode(call(await accessToken({ header: { typ: 'JWT' } })), 'ERR_MALFORMED')
  })
  it('no cnf.jkt, sub not client_id without act, act naming another agent, unknown authorization_details type', async () => {
    await expectCode(call(await accessToken({ claims: { cnf: undefined } })), 'ERR_MALFORMED')
    await expectCode(call(await accessToken({ claims: { sub: bob.did } })), 'ERR_KEY_MISMATCH')
    await expectCode(call(await accessToken({ claims: { sub: 'user:1', act: { sub: bob.did } } })), 'ERR_KEY_MISMATCH')
    await expectCode(call(await accessToken({ claims: { authorization_details: [{ type: 'payment_initiation', actions: ['x'], locations: ['y'] }] } })), 'ERR_MALFORMED')
  })
  it('caches a verified token by its bytes: the second request checks one signature (the proof) and no issuer key', async () => {
    const spy = vi.spyOn(VerificationKey.prototype, 'verify')
    const token = await accessToken()
    await call(token)
    expect(spy).toHaveBeenCalledTimes(1)
    await call(token)
    expect(spy).toHaveBeenCalledTimes(1)
    // Until it expires: the cached token is then refused.
    clock.advance((300 + 61) * 1000)
    await expectCode(verifier.verifyRequest({ method: 'GET', url: URL_, headers: headers(token, await proof({ token, iat: NOW + 361 })) }), 'ERR_EXPIRED')
  })
})

describe('RFC 9449 example proofs (ES256)', () => {
  function ctx(now: number, extra: Record<string, unknown> = {}) {
    const t = () => now * 1000
    return { now: t, clockSkewSec: 60, maxAgeSec: 60, replayCache: createMemoryReplayCache({ clock: t }), ...extra }
  }

  it('the three proofs verify; jkt and ath recompute as the RFC says', async () => {
    expect(accessTokenHash(vectors.access_token)).toBe(vectors.access_token_ath)
    expect(createHash('sha256').update(vectors.access_token).digest('base64url')).toBe(vectors.access_token_ath)
    for (const p of vectors.proofs) {
      const c = p.valid_context
      const verified = await verifyDpopProof(p.compact, {
        method: c.method,
        url: c.url,
        ...ctx(c.now),
        ...(c.access_token === null ? {} : { accessToken: c.access_token }),
        ...(c.bound_jkt === undefined ? {} : { jkt: c.bound_jkt }),
      })
      expect(verified.jkt, p.id).toBe(vectors.proof_jkt)
      if (c.access_token !== null) expect(p.payload.ath).toBe(accessTokenHash(c.access_token))
    }
  })

  it('the negative context cases, literally', async () => {
    const byId = new Map(vectors.proofs.map((p) => [p.id, p]))
    for (const n of vectors.negative_context_cases) {
      if (n.proof === null || n.id === 'two-dpop-headers') continue // covered through verifyRequest above
      const p = byId.get(n.proof)!
      const c = n.context as { method: string; url: string; now: number; access_token?: string; bound_jkt?: string; server_nonce?: string; seen_jti?: string[] }
      const context = {
        method: c.method,
        url: c.url,
        ...ctx(c.now),
        ...(c.access_token === undefined ? {} : { accessToken: c.access_token }),
        ...(c.bound_jkt === undefined ? {} : { jkt: c.bound_jkt }),
        ...(c.server_nonce === undefined ? {} : { nonce: c.server_nonce }),
      }
      if (c.seen_jti) await verifyDpopProof(p.compact, context)
      const outcome = await verifyDpopProof(p.compact, context).then(() => 'valid', (e: unknown) => (e instanceof VerificationError ? 'reject' : 'throw'))
      expect(outcome, n.id).toBe(n.expected.startsWith('valid') ? 'valid' : 'reject')
    }
  })
})

describe('adapters', () => {
  it('Node http middleware: sets req.agentid; 401 with WWW-Authenticate and DPoP-Nonce', async () => {
    const nonceVerifier = makeVerifier({ dpopNonce: () => 'srv-nonce' })
    let mw: ReturnType<typeof agentidMiddleware> | undefined
    const server: Server = createServer((req, res) => {
      mw!(req, res, () => res.end(JSON.stringify({ agent: (req as typeof req & { agentid: { agent: string } }).agentid.agent })))
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    try {
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
      mw = agentidMiddleware(nonceVerifier, { origin })
      const token = await accessToken()
      const url = `${origin}/invoices/42?x=1`
      const refused = await fetch(url, { headers: { authorization: `DPoP ${token}`, dpop: await proof({ token, url }) } })
      expect(refused.status).toBe(401)
      expect(refused.headers.get('www-authenticate')).toContain('error="use_dpop_nonce"')
      expect(refused.headers.get('dpop-nonce')).toBe('srv-nonce')
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('ERR_REPLAY')
      const ok = await fetch(url, { headers: { authorization: `DPoP ${token}`, dpop: await proof({ token, url, payload: { nonce: 'srv-nonce' } }) } })
      expect(ok.status).toBe(200)
      expect(await ok.json()).toEqual({ agent: alice.did })
      const bad = await fetch(url, { headers: { authorization: `DPoP ${token}`, dpop: await proof({ token, url, key: otherKey, payload: { nonce: 'srv-nonce' } }) } })
      expect(bad.status).toBe(401)
      expect(bad.headers.get('www-authenticate')).toContain('error="invalid_token"')
    } finally {
      server.close()
    }
  })

  it('Fastify plugin: a preHandler that sets request.agentid or replies 401', async () => {
    let hook: Parameters<FastifyLike['addHook']>[1] | undefined
    const fastify: FastifyLike = { decorateRequest: () => undefined, addHook: (_name, h) => { hook = h } }
    const done = vi.fn()
    agentidFastify(fastify, { verifier, origin: AUD }, done)
    expect(done).toHaveBeenCalledWith()
    const token = await accessToken()
    const request = { method: 'GET', url: '/invoices/42', headers: {}, raw: { headersDistinct: { authorization: [`DPoP ${token}`], dpop: [await proof({ token })] } }, agentid: null as unknown }
    const reply = { status: 0, headers: {} as Record<string, string>, body: undefined as unknown, code(s: number) { this.status = s; return this }, header(n: string, v: string) { this.headers[n] = v; return this }, send(b: unknown) { this.body = b; return this } }
    await hook!(request as never, reply as never)
    expect((request.agentid as { agent: string }).agent).toBe(alice.did)
    expect(reply.status).toBe(0)
    await hook!(request as never, reply as never) // the same proof again
    expect(reply.status).toBe(401)
    expect(reply.headers['www-authenticate']).toContain('DPoP error=')
  })

  it('fetch API: verifyFetchRequest and dpopErrorResponse', async () => {
    const token = await accessToken()
    const request = new Request(URL_, { headers: { authorization: `DPoP ${token}`, dpop: await proof({ token }) } })
    expect((await verifyFetchRequest(verifier, request)).agent).toBe(alice.did)
    const error = await verifyFetchRequest(verifier, request).catch((e: unknown) => e)
    const response = dpopErrorResponse(error)!
    expect(response.status).toBe(401)
    expect(response.headers.get('www-authenticate')).toContain('DPoP error="invalid_dpop_proof"')
    expect(dpopErrorResponse(new Error('boom'))).toBeUndefined()
  })
})
