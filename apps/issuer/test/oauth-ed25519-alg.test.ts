// RFC 9864 fully-specified `alg: "Ed25519"` at the token endpoint: openid-client v6 signs client assertions
// and DPoP proofs with an Ed25519 CryptoKey under that name (oauth4webapi keyToJws). It is EdDSA over
// Ed25519, so it must be accepted exactly where EdDSA is, with the same checks, and nowhere else.
import { createPrivateKey, generateKeyPairSync, randomUUID, sign as cryptoSign, type KeyObject } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { base64urlEncode, generateEd25519KeyPair, signerFromJwk, signJwt } from '@agentid/core'
import { verifyClientAssertion } from '../src/oauth/client-assertion.js'
import { DpopNonces, verifyDpopProof } from '../src/oauth/dpop.js'
import { OAuthError } from '../src/oauth/errors.js'

const TOKEN_URL = 'https://issuer.example/v1/token'
const NOW = 1_800_000_000

function compact(header: Record<string, unknown>, payload: Record<string, unknown>, key: KeyObject): string {
  const input = `${base64urlEncode(JSON.stringify(header))}.${base64urlEncode(JSON.stringify(payload))}`
  return `${input}.${base64urlEncode(cryptoSign(null, Buffer.from(input, 'ascii'), key))}`
}

function oauthErrorOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (error) {
    if (error instanceof OAuthError) return error.error
    throw error
  }
  return undefined
}

async function asyncOAuthErrorOf(promise: Promise<unknown>): Promise<string | undefined> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  if (error === undefined) return undefined
  if (error instanceof OAuthError) return error.error
  throw error
}

describe('client assertion with alg Ed25519 (RFC 9864)', () => {
  const agent = generateEd25519KeyPair()
  const signer = signerFromJwk(agent.privateJwk)
  const pk = createPrivateKey({ key: { ...agent.privateJwk }, format: 'jwk' })
  const claims = () => ({ iss: signer.did, sub: signer.did, aud: TOKEN_URL, iat: NOW, exp: NOW + 60, jti: randomUUID() })
  const check = (assertion: string, clientId: string | undefined = signer.did) => verifyClientAssertion(assertion, { clientId, audiences: [TOKEN_URL], now: NOW })

  it('is accepted when signed by the did:key, like EdDSA', async () => {
    const c = claims()
    const verified = check(compact({ alg: 'Ed25519', kid: signer.keyId }, c, pk))
    expect(verified).toEqual({ did: signer.did, jti: c.jti, exp: c.exp })
    // The EdDSA form still works.
    expect(check(await signJwt({ typ: 'JWT' }, claims(), signer)).did).toBe(signer.did)
  })

  it('is refused with a bad signature, another key, or a tampered payload', async () => {
    const other = createPrivateKey({ key: { ...generateEd25519KeyPair().privateJwk }, format: 'jwk' })
    expect(oauthErrorOf(() => check(compact({ alg: 'Ed25519' }, claims(), other)))).toBe('invalid_client')
    const good = compact({ alg: 'Ed25519' }, claims(), pk)
    const [h, , s] = good.split('.')
    const tampered = `${h}.${base64urlEncode(JSON.stringify({ ...claims(), exp: NOW + 200 }))}.${s}`
    expect(oauthErrorOf(() => check(tampered))).toBe('invalid_client')
    // The header is covered by the signature: the EdDSA header over an Ed25519-signed input does not verify.
    expect(oauthErrorOf(() => check(`${base64urlEncode(JSON.stringify({ alg: 'EdDSA' }))}.${good.split('.')[1]}.${s}`))).toBe('invalid_client')
  })

  it('keeps every other check: aud, exp, iss = sub, client_id, crit, other algs', async () => {
    expect(oauthErrorOf(() => check(compact({ alg: 'Ed25519' }, { ...claims(), aud: 'https://elsewhere.example' }, pk)))).toBe('invalid_client')
    expect(oauthErrorOf(() => check(compact({ alg: 'Ed25519' }, { ...claims(), exp: NOW - 1 }, pk)))).toBe('invalid_client')
    expect(oauthErrorOf(() => check(compact({ alg: 'Ed25519' }, { ...claims(), sub: 'did:key:z6Mkother' }, pk)))).toBe('invalid_client')
    expect(oauthErrorOf(() => check(compact({ alg: 'Ed25519' }, claims(), pk), 'did:key:z6Mkother'))).toBe('invalid_client')
    expect(oauthErrorOf(() => check(compact({ alg: 'Ed25519', crit: ['x'], x: 1 }, claims(), pk)))).toBe('invalid_client')
    expect(oauthErrorOf(() => check(compact({ alg: 'ed25519' }, claims(), pk)))).toBe('invalid_client')
    expect(oauthErrorOf(() => check(compact({ alg: 'Ed448' }, claims(), pk)))).toBe('invalid_client')
  })
})

describe('DPoP proof with alg Ed25519 (RFC 9864) at the token endpoint', () => {
  const nonces = new DpopNonces(() => NOW)
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const jwk = publicKey.export({ format: 'jwk' })
  const proof = (header: Record<string, unknown> = {}, payload: Record<string, unknown> = {}, key: KeyObject = privateKey) =>
    compact({ typ: 'dpop+jwt', alg: 'Ed25519', jwk, ...header }, { htm: 'POST', htu: TOKEN_URL, iat: NOW, jti: randomUUID(), nonce: nonces.issue(), ...payload }, key)
  const check = (p: string) => verifyDpopProof(p, { method: 'POST', url: TOKEN_URL, now: NOW, nonces })

  it('is accepted, with the same thumbprint as the EdDSA form of the same key', async () => {
    const viaEd25519 = await check(proof())
    const viaEdDsa = await check(proof({ alg: 'EdDSA' }))
    expect(viaEd25519.jkt).toBe(viaEdDsa.jkt)
    expect(viaEd25519.iat).toBe(NOW)
  })

  it('is refused with another key, a key of another type, a wrong htu, or no nonce', async () => {
    expect(await asyncOAuthErrorOf(check(proof({}, {}, generateKeyPairSync('ed25519').privateKey)))).toBe('invalid_dpop_proof')
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' })
    expect(await asyncOAuthErrorOf(check(proof({ jwk: ec })))).toBe('invalid_dpop_proof')
    expect(await asyncOAuthErrorOf(check(proof({}, { htu: 'https://issuer.example/other' })))).toBe('invalid_dpop_proof')
    expect(await asyncOAuthErrorOf(check(proof({}, { nonce: undefined })))).toBe('use_dpop_nonce')
    // A private jwk in the header is refused before anything else.
    const priv = privateKey.export({ format: 'jwk' })
    expect(await asyncOAuthErrorOf(check(proof({ jwk: priv })))).toBe('invalid_dpop_proof')
  })
})
