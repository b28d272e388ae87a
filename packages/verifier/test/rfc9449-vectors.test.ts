// The RFC 9449 examples in vectors/dpop (copied from ../shared/vectors/dpop) read as the RFC says them.
// verify-request.test.ts already checks that the three example proofs verify (jkt, ath) and that each
// negative context case is refused; this file adds what it leaves out: the proofs decode to the header
// and claims the RFC prints, the RFC 7638 thumbprint input, the OAuth error each refusal maps to (with
// the nonce to use, and the WWW-Authenticate challenge of Figures 15-16), and that the other figures
// (token response, access-token JWT, introspection) name the same key, and the §7.2 header cases with
// the RFC's literal header values.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { base64urlDecode, VerificationError } from '@agentid/core'
import { createMemoryReplayCache, createVerifier, dpopChallenge, verifyDpopProof } from '@agentid/verifier'
import { calculateJwkThumbprint, type JWK } from 'jose'
import { describe, expect, it } from 'vitest'

interface Vectors {
  proof_public_jwk: JWK
  proof_jwk_thumbprint_input: string
  proof_jkt: string
  access_token: string
  access_token_ath: string
  proofs: { id: string; compact: string; header: Record<string, unknown>; payload: Record<string, unknown>; valid_context: { method: string; url: string; now: number; access_token: string | null; bound_jkt?: string } }[]
  negative_context_cases: { id: string; proof: string | null; context: Record<string, unknown>; expected: string }[]
  access_token_jwt_example: { compact: string; header: Record<string, unknown>; payload: Record<string, unknown> }
  introspection_response_example: { body: Record<string, any> }
  token_response_example: { body: Record<string, unknown> }
  nonce_examples: { as_nonce: string; next_nonce: string; payload_with_nonce: Record<string, unknown> }
  www_authenticate_examples: { no_auth: string; bad_binding: string }
  error_codes: string[]
}

const vectors = JSON.parse(readFileSync(new URL('../../../vectors/dpop/rfc9449-examples.json', import.meta.url), 'utf8')) as Vectors
const byId = new Map(vectors.proofs.map((p) => [p.id, p]))

function segment(compact: string, i: 0 | 1): Record<string, unknown> {
  return JSON.parse(base64urlDecode(compact.split('.')[i]!, 'segment').toString('utf8')) as Record<string, unknown>
}

/** RFC 7235 challenge: scheme and auth-params (quoted strings unescaped). */
function parseChallenge(value: string): { scheme: string; params: Record<string, string> } {
  const m = /^\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*(.*)$/.exec(value)
  if (!m) throw new Error(`not a challenge: ${value}`)
  const params: Record<string, string> = {}
  const re = /\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))\s*(?:,|$)/gy
  let rest = m[2]!
  let p: RegExpExecArray | null
  re.lastIndex = 0
  while (rest.length > 0 && (p = re.exec(rest)) !== null) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!
    if (re.lastIndex >= rest.length) { rest = ''; break }
  }
  return { scheme: m[1]!, params }
}

function context(now: number, c: Record<string, unknown>) {
  const t = () => now * 1000
  return {
    method: c.method as string,
    url: c.url as string,
    now: t,
    clockSkewSec: 60,
    maxAgeSec: 60,
    replayCache: createMemoryReplayCache({ clock: t }),
    ...(c.access_token === undefined || c.access_token === null ? {} : { accessToken: c.access_token as string }),
    ...(c.bound_jkt === undefined ? {} : { jkt: c.bound_jkt as string }),
    ...(c.server_nonce === undefined ? {} : { nonce: c.server_nonce as string }),
  }
}

describe('RFC 9449 examples: what the figures say', () => {
  it('each example proof decodes to the header and claims the RFC prints (typ dpop+jwt, ES256, the public jwk)', () => {
    expect(vectors.proofs).toHaveLength(3)
    for (const p of vectors.proofs) {
      expect(p.compact.split('.'), p.id).toHaveLength(3)
      expect(segment(p.compact, 0), p.id).toEqual(p.header)
      expect(segment(p.compact, 1), p.id).toEqual(p.payload)
      expect(p.header).toMatchObject({ typ: 'dpop+jwt', alg: 'ES256', jwk: vectors.proof_public_jwk })
      expect(Object.keys(p.header.jwk as object).sort()).toEqual(['crv', 'kty', 'x', 'y'])
      expect(p.payload.htm).toBe(p.valid_context.method)
      expect(p.payload.htu).toBe(p.valid_context.url)
      expect(p.payload.iat).toBe(p.valid_context.now)
      // An ES256 signature is r || s, 64 bytes.
      expect(base64urlDecode(p.compact.split('.')[2]!, 'signature')).toHaveLength(64)
    }
    // Only the resource request (Figure 13) carries ath, the hash of the Figure 6 access token.
    expect(byId.get('rfc9449-fig13-resource-request')!.payload.ath).toBe(vectors.access_token_ath)
    expect(byId.get('rfc9449-fig2-token-request')!.payload.ath).toBeUndefined()
  })

  it('the RFC 7638 thumbprint input of the proof key and its SHA-256 (jkt)', async () => {
    const { crv, kty, x, y } = vectors.proof_public_jwk
    expect(JSON.stringify({ crv, kty, x, y })).toBe(vectors.proof_jwk_thumbprint_input)
    expect(createHash('sha256').update(vectors.proof_jwk_thumbprint_input).digest('base64url')).toBe(vectors.proof_jkt)
    expect(await calculateJwkThumbprint(vectors.proof_public_jwk, 'sha256')).toBe(vectors.proof_jkt)
  })

  it('Figures 6, 8-9 and 11 bind the token to the same key (token_type DPoP, cnf.jkt = the proofs\' jkt)', () => {
    expect(vectors.token_response_example.body.token_type).toBe('DPoP')
    expect(vectors.token_response_example.body.access_token).toBe(vectors.access_token)
    const jwt = vectors.access_token_jwt_example
    expect(segment(jwt.compact, 0)).toEqual(jwt.header)
    expect(segment(jwt.compact, 1)).toEqual(jwt.payload)
    expect(jwt.payload.cnf).toEqual({ jkt: vectors.proof_jkt })
    expect(vectors.introspection_response_example.body.cnf).toEqual({ jkt: vectors.proof_jkt })
    expect(vectors.introspection_response_example.body.sub).toBe(jwt.payload.sub)
  })

  it('Figure 8\'s access token fails closed at verifyRequest: its issuer is not trusted and its key unpublished', async () => {
    const fig13 = byId.get('rfc9449-fig13-resource-request')!
    const now = fig13.valid_context.now
    const verifier = createVerifier({ trustedIssuers: ['did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp'], clock: () => now * 1000 })
    const error = await verifier.verifyRequest({
      method: 'GET',
      url: fig13.valid_context.url,
      headers: { authorization: `DPoP ${vectors.access_token_jwt_example.compact}`, dpop: fig13.compact },
    }, { audience: 'https://resource.example.org' }).then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(VerificationError)
    expect(dpopChallenge(error)?.status).toBe(401)
  })

  it('every refusal names the OAuth error the RFC gives it (invalid_dpop_proof, use_dpop_nonce, invalid_token)', async () => {
    const named = vectors.negative_context_cases.filter((n) => n.proof !== null && /^reject (invalid_dpop_proof|use_dpop_nonce|invalid_token)\b/.test(n.expected))
    expect(named.map((n) => n.id).sort()).toEqual(['ath-mismatch', 'htm-mismatch', 'htu-mismatch-host', 'jkt-mismatch', 'nonce-required-missing'])
    for (const n of named) {
      const expected = /^reject (\S+)/.exec(n.expected)![1]!
      expect(vectors.error_codes).toContain(expected)
      const p = byId.get(n.proof!)!
      const error = await verifyDpopProof(p.compact, context(n.context.now as number, n.context)).then(() => undefined, (e: unknown) => e)
      expect(error, n.id).toBeInstanceOf(VerificationError)
      expect((error as VerificationError).details?.dpopError, n.id).toBe(expected)
    }
    // The other refusals are proof problems: invalid_dpop_proof.
    for (const id of ['htu-mismatch-path', 'iat-too-old', 'iat-in-future', 'ath-missing-at-resource']) {
      const n = vectors.negative_context_cases.find((c) => c.id === id)!
      const error = await verifyDpopProof(byId.get(n.proof!)!.compact, context(n.context.now as number, n.context)).then(() => undefined, (e: unknown) => e)
      expect((error as VerificationError).details?.dpopError, id).toBe('invalid_dpop_proof')
    }
  })

  it('§7.2 literally: the example token as Bearer is refused (401); two Authorization headers are invalid_request (400, Figure 19)', async () => {
    const fig13 = byId.get('rfc9449-fig13-resource-request')!
    const now = fig13.valid_context.now
    const verifier = createVerifier({ trustedIssuers: ['did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp'], clock: () => now * 1000 })
    const refusal = (headers: Record<string, string | string[]>) =>
      verifier.verifyRequest({ method: 'GET', url: fig13.valid_context.url, headers }, { audience: 'https://resource.example.org' }).then(() => undefined, (e: unknown) => e)
    const asBearer = vectors.negative_context_cases.find((c) => c.id === 'dpop-bound-token-as-bearer')!.context
    const bearer = dpopChallenge(await refusal({ authorization: asBearer.authorization as string, dpop: fig13.compact }))!
    expect(bearer.status).toBe(401)
    expect(parseChallenge(bearer.headers['www-authenticate']!).scheme).toBe('DPoP')
    const two = vectors.negative_context_cases.find((c) => c.id === 'two-authorization-headers')!.context
    const twice = dpopChallenge(await refusal({ authorization: two.authorization as string[], dpop: fig13.compact }))!
    expect(twice.status).toBe(400)
    expect(parseChallenge(twice.headers['www-authenticate']!).params.error).toBe('invalid_request')
  })

  it('§8: a proof without the server nonce gets use_dpop_nonce, 401 at a resource, and the nonce to use (Figure 20)', async () => {
    const n = vectors.negative_context_cases.find((c) => c.id === 'nonce-required-missing')!
    expect(n.context.server_nonce).toBe(vectors.nonce_examples.as_nonce)
    const error = await verifyDpopProof(byId.get(n.proof!)!.compact, context(n.context.now as number, n.context)).then(() => undefined, (e: unknown) => e)
    const challenge = dpopChallenge(error)!
    expect(challenge.status).toBe(401)
    expect(challenge.headers['dpop-nonce']).toBe(vectors.nonce_examples.as_nonce)
    expect(parseChallenge(challenge.headers['www-authenticate']!)).toMatchObject({ scheme: 'DPoP', params: { error: 'use_dpop_nonce' } })
    // Figure 21's claims are Figure 2's plus that nonce.
    const { nonce, ...rest } = vectors.nonce_examples.payload_with_nonce
    expect(nonce).toBe(vectors.nonce_examples.as_nonce)
    expect(rest).toEqual(byId.get('rfc9449-fig2-token-request')!.payload)
    expect(vectors.nonce_examples.next_nonce).not.toBe(vectors.nonce_examples.as_nonce)
  })

  it('Figures 15-16: the challenge has the RFC\'s form (scheme DPoP, error, algs)', async () => {
    const figure16 = parseChallenge(vectors.www_authenticate_examples.bad_binding)
    expect(figure16).toEqual({ scheme: 'DPoP', params: { error: 'invalid_token', error_description: 'Invalid DPoP key binding', algs: 'ES256' } })
    expect(parseChallenge(vectors.www_authenticate_examples.no_auth)).toEqual({ scheme: 'DPoP', params: { algs: 'ES256 PS256' } })
    const n = vectors.negative_context_cases.find((c) => c.id === 'jkt-mismatch')!
    const error = await verifyDpopProof(byId.get(n.proof!)!.compact, context(n.context.now as number, n.context)).then(() => undefined, (e: unknown) => e)
    const ours = parseChallenge(dpopChallenge(error)!.headers['www-authenticate']!)
    expect(ours.scheme).toBe(figure16.scheme)
    expect(ours.params.error).toBe(figure16.params.error)
    expect(ours.params.algs!.split(' ')).toContain('ES256')
  })
})
