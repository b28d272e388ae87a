// The token endpoint's keys: a DPoP proof's jwk and a client's did:key are imported once and then
// reused; reuse must never let a signature by another key through, and a jwk that is not a usable
// public key is refused before any signature check.
import { createHash, generateKeyPairSync, randomUUID, sign as cryptoSign, type KeyObject } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { base64urlEncode, generateEd25519KeyPair } from '@agentid/core'
import { verifyClientAssertion } from '../src/oauth/client-assertion.js'
import { DpopNonces, verifyDpopProof } from '../src/oauth/dpop.js'
import { OAuthError } from '../src/oauth/errors.js'

const TOKEN_URL = 'https://issuer.example/v1/token'
const NOW = 1_800_000_000

function compact(header: Record<string, unknown>, payload: Record<string, unknown>, key: KeyObject, alg = 'EdDSA'): string {
  const input = `${base64urlEncode(JSON.stringify({ alg, ...header }))}.${base64urlEncode(JSON.stringify(payload))}`
  const signature = alg === 'ES256' ? cryptoSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }) : cryptoSign(null, Buffer.from(input), key)
  return `${input}.${base64urlEncode(signature)}`
}

async function errorOf(run: () => unknown): Promise<string | undefined> {
  try {
    await run()
  } catch (error) {
    if (error instanceof OAuthError) return error.error
    throw error
  }
  return undefined
}

function edKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return { privateKey, jwk: { kty: 'OKP', crv: 'Ed25519', x: publicKey.export({ format: 'jwk' }).x as string } as Record<string, unknown> }
}

describe('DPoP proof keys at the token endpoint', () => {
  const nonces = new DpopNonces(() => NOW)
  const nonce = nonces.issue()
  const claims = () => ({ htm: 'POST', htu: TOKEN_URL, iat: NOW, jti: randomUUID(), nonce })
  const check = (proof: string) => verifyDpopProof(proof, { method: 'POST', url: TOKEN_URL, now: NOW, nonces })

  it('one key, many proofs: each verifies, with the RFC 7638 thumbprint; another key signing under the known jwk is refused', async () => {
    const a = edKey()
    const b = edKey()
    const jkt = createHash('sha256').update(`{"crv":"Ed25519","kty":"OKP","x":"${a.jwk.x as string}"}`).digest('base64url')
    for (let i = 0; i < 3; i++) expect((await check(compact({ typ: 'dpop+jwt', jwk: a.jwk }, claims(), a.privateKey))).jkt).toBe(jkt)
    expect(await errorOf(() => check(compact({ typ: 'dpop+jwt', jwk: a.jwk }, claims(), b.privateKey)))).toBe('invalid_dpop_proof')
    const good = compact({ typ: 'dpop+jwt', jwk: a.jwk }, claims(), a.privateKey)
    const [h, , s] = good.split('.') as [string, string, string]
    expect(await errorOf(() => check(`${h}.${base64urlEncode(JSON.stringify({ ...claims(), htu: 'https://evil.example/v1/token' }))}.${s}`))).toBe('invalid_dpop_proof')
    expect(await errorOf(() => check(`${good}=`))).toBe('invalid_dpop_proof')
  })

  it('ES256 keys too, and a P-256 point off the curve is refused', async () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const jwk = ec.publicKey.export({ format: 'jwk' }) as Record<string, string>
    const proof = () => compact({ typ: 'dpop+jwt', jwk }, claims(), ec.privateKey, 'ES256')
    expect((await check(proof())).jti).toBeTypeOf('string')
    expect((await check(proof())).jti).toBeTypeOf('string')
    const y = Buffer.from(jwk.y!, 'base64url')
    y[31]! ^= 1
    expect(await errorOf(() => check(compact({ typ: 'dpop+jwt', jwk: { ...jwk, y: y.toString('base64url') } }, claims(), ec.privateKey, 'ES256')))).toBe('invalid_dpop_proof')
  })

  it('refuses a jwk that is not a usable public key: private members, short or small-order x, use enc, key_ops without verify, another alg', async () => {
    const a = edKey()
    const privateJwk = { ...a.jwk, d: a.privateKey.export({ format: 'jwk' }).d }
    const identity = Buffer.alloc(32)
    identity[0] = 1
    for (const jwk of [
      privateJwk,
      { ...a.jwk, x: (a.jwk.x as string).slice(0, 40) },
      { ...a.jwk, x: identity.toString('base64url') },
      { ...a.jwk, use: 'enc' },
      { ...a.jwk, key_ops: ['sign'] },
      { ...a.jwk, alg: 'ES256' },
      { ...a.jwk, k: 'c2VjcmV0' },
    ]) {
      expect(await errorOf(() => check(compact({ typ: 'dpop+jwt', jwk }, claims(), a.privateKey))), JSON.stringify(jwk)).toBe('invalid_dpop_proof')
    }
    // The members allowing the key change nothing, the thumbprint included.
    const plain = await check(compact({ typ: 'dpop+jwt', jwk: a.jwk }, claims(), a.privateKey))
    const marked = await check(compact({ typ: 'dpop+jwt', jwk: { ...a.jwk, use: 'sig', key_ops: ['verify'], alg: 'EdDSA' } }, claims(), a.privateKey))
    expect(marked.jkt).toBe(plain.jkt)
  })

  it('refuses crit, a proof that has expired (exp), non-strict JSON or base64url', async () => {
    const a = edKey()
    expect(await errorOf(() => check(compact({ typ: 'dpop+jwt', jwk: a.jwk, crit: ['exp'] }, claims(), a.privateKey)))).toBe('invalid_dpop_proof')
    expect(await errorOf(() => check(compact({ typ: 'dpop+jwt', jwk: a.jwk }, { ...claims(), exp: NOW - 120 }, a.privateKey)))).toBe('invalid_dpop_proof')
    const input = `${base64urlEncode('{"typ":"dpop+jwt","typ":"dpop+jwt","alg":"EdDSA","jwk":' + JSON.stringify(a.jwk) + '}')}.${base64urlEncode(JSON.stringify(claims()))}`
    expect(await errorOf(() => check(`${input}.${base64urlEncode(cryptoSign(null, Buffer.from(input), a.privateKey))}`))).toBe('invalid_dpop_proof')
  })
})

describe('client keys at the token endpoint', () => {
  it('a known client: the next assertion still needs its own key; another key under its DID is refused', () => {
    const agent = generateEd25519KeyPair()
    const other = generateEd25519KeyPair()
    const assertion = (key: KeyObject) => compact({ typ: 'JWT' }, { iss: agent.did, sub: agent.did, aud: TOKEN_URL, iat: NOW, exp: NOW + 60, jti: randomUUID() }, key)
    const check = (a: string) => verifyClientAssertion(a, { clientId: agent.did, audiences: [TOKEN_URL], now: NOW })
    expect(check(assertion(agent.privateKey)).did).toBe(agent.did)
    expect(check(assertion(agent.privateKey)).did).toBe(agent.did)
    expect(() => check(assertion(other.privateKey))).toThrow(OAuthError)
    expect(check(assertion(agent.privateKey)).did).toBe(agent.did)
  })
})
