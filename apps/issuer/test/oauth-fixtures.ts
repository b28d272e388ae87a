// Shared fixtures of the token-endpoint tests (oauth-*.test.ts): an agent's side of POST /v1/token
// (client assertion, actor token, DPoP proof with the server nonce), RFC 6749 error assertions, and
// an identity provider's keys made with jose.
import { randomUUID } from 'node:crypto'
import { expect } from 'vitest'
import { calculateJwkThumbprint, CompactSign, exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose'
import type { LightMyRequestResponse } from 'fastify'
import { BASE_URL, signRaw, type Harness, type NamedKey } from './http-fixtures.js'

export const TOKEN_URL = `${BASE_URL}/v1/token`
export const RESOURCE = 'https://erp.example/api'
export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
export const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt'

export interface DpopKey { alg: 'EdDSA' | 'ES256'; privateKey: CryptoKey; jwk: JWK; jkt: string }
export async function dpopKey(alg: 'EdDSA' | 'ES256' = 'EdDSA'): Promise<DpopKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
  const jwk = await exportJWK(publicKey)
  return { alg, privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') }
}

/** Asserts an RFC 6749 §5.2 error: status, `{ error, error_description }` only, no stack. */
export function expectOAuthError(res: LightMyRequestResponse, status: number, error: string, description?: RegExp): void {
  expect(res.statusCode, `${res.statusCode} ${res.body}`).toBe(status)
  expect(String(res.headers['content-type'])).toMatch(/^application\/json/)
  const body = JSON.parse(res.body) as Record<string, unknown>
  expect(body.error, res.body).toBe(error)
  expect(typeof body.error_description).toBe('string')
  if (description) expect(body.error_description).toMatch(description)
  for (const k of Object.keys(body)) expect(['error', 'error_description']).toContain(k)
  expect(res.body).not.toMatch(/\n\s+at |node_modules|\.ts:\d+|stack/)
}

/** Decoded payload of a compact JWT (no verification: the tests verify signatures separately). */
export function payloadOf(jwt: string): Record<string, any> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, any>
}

/** The agent side of the token endpoint for one harness: assertions, actor tokens, DPoP with the nonce. */
export function tokenClient(h: Harness, dkey: DpopKey) {
  const nowSec = () => Math.floor(h.clock.now / 1000)
  let nonce: string | undefined

  /** A JWT signed by `key` the way client assertions and actor tokens are (`over` replaces claims). */
  const agentJwt = (key: NamedKey, over: Record<string, unknown> = {}) =>
    signRaw(key, { alg: 'EdDSA', typ: 'JWT' }, { iss: key.did, sub: key.did, aud: TOKEN_URL, exp: nowSec() + 60, iat: nowSec(), jti: randomUUID(), ...over })

  const proof = (o: { nonce?: string; jti?: string; key?: DpopKey } = {}) => {
    const k = o.key ?? dkey
    return new SignJWT({ htm: 'POST', htu: TOKEN_URL, jti: o.jti ?? randomUUID(), ...(o.nonce === undefined ? {} : { nonce: o.nonce }) })
      .setProtectedHeader({ alg: k.alg, typ: 'dpop+jwt', jwk: k.jwk })
      .setIssuedAt(nowSec())
      .sign(k.privateKey)
  }

  const post = (payload: string, headers: Record<string, string | string[]> = {}) =>
    h.app.inject({ method: 'POST', url: '/v1/token', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, payload })

  const encode = (fields: Record<string, string | undefined>) =>
    new URLSearchParams(Object.entries(fields).filter((e): e is [string, string] => e[1] !== undefined)).toString()

  async function currentNonce(): Promise<string> {
    if (nonce) return nonce
    // Parameters are checked before the proof, the client assertion only after it: a placeholder will do.
    const form = encode({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: 'x', resource: RESOURCE })
    const res = await post(form, { dpop: await proof() })
    expectOAuthError(res, 400, 'use_dpop_nonce')
    nonce = String(res.headers['dpop-nonce'])
    return nonce
  }

  /** POSTs `fields` (undefined drops one) with a fresh DPoP proof carrying the server nonce; `raw` is appended as is. */
  async function send(fields: Record<string, string | undefined>, o: { raw?: string; proof?: string } = {}) {
    const body = encode(fields) + (o.raw ?? '')
    return post(body, { dpop: o.proof ?? (await proof({ nonce: await currentNonce() })) })
  }

  /** The client_credentials form for `agent`. */
  async function clientCredentials(agent: NamedKey, over: Record<string, string | undefined> = {}) {
    return {
      grant_type: 'client_credentials',
      client_id: agent.did,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await agentJwt(agent),
      resource: RESOURCE,
      ...over,
    }
  }

  /** The token-exchange form for `agent` acting for the user of `subjectToken`. */
  async function exchange(agent: NamedKey, subjectToken: string | undefined, over: Record<string, string | undefined> = {}) {
    return {
      grant_type: TOKEN_EXCHANGE,
      client_id: agent.did,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await agentJwt(agent),
      resource: RESOURCE,
      subject_token: subjectToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
      actor_token: await agentJwt(agent),
      actor_token_type: JWT_TYPE,
      ...over,
    }
  }

  return { nowSec, agentJwt, proof, post, currentNonce, send, clientCredentials, exchange }
}

/** An identity provider's signing key made with jose, and user tokens signed with it. */
export interface TestIdp {
  issuer: string
  alg: 'RS256' | 'ES256' | 'PS256' | 'EdDSA'
  kid: string
  publicJwk: JWK
  /** A user's token for `aud` (default: the agentid issuer), `sub`, valid 10 minutes from `now`. */
  userToken(now: number, claims?: JWTPayload, header?: Record<string, unknown>): Promise<string>
  /** A token whose payload is exactly `payloadText` (duplicate members, odd bytes), signed with the IdP's key. */
  rawUserToken(payloadText: string | Uint8Array, header?: Record<string, unknown>): Promise<string>
}

export async function testIdp(issuer: string, alg: TestIdp['alg'] = 'ES256'): Promise<TestIdp> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
  const kid = randomUUID()
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }
  return {
    issuer,
    alg,
    kid,
    publicJwk,
    userToken: (now, claims = {}, header = {}) =>
      new SignJWT({ iss: issuer, aud: BASE_URL, sub: 'user-42@idp', iat: now, exp: now + 600, jti: randomUUID(), scope: 'openid email', ...claims })
        .setProtectedHeader({ alg, kid, typ: 'at+jwt', ...header })
        .sign(privateKey),
    rawUserToken: (payloadText, header = {}) =>
      new CompactSign(typeof payloadText === 'string' ? new TextEncoder().encode(payloadText) : payloadText)
        .setProtectedHeader({ alg, kid, typ: 'at+jwt', ...header })
        .sign(privateKey),
  }
}
