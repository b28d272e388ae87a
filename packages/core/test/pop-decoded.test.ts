// A proof of possession decoded once (decodeProofOfPossession) and verified as decoded: the verdicts
// and codes of verifying the token itself, and nothing but what decodeProofOfPossession made is read
// as a decoded proof.
import { describe, expect, it } from 'vitest'
import {
  base64urlEncode,
  createProofOfPossession,
  decodeProofOfPossession,
  generateEd25519KeyPair,
  signerFromJwk,
  signJwt,
  verifyProofOfPossession,
  VerificationError,
} from '@agentid/core'
import { rejected, thrown } from './helpers.js'

const audience = generateEd25519KeyPair().did
const now = Math.floor(Date.now() / 1000)
const options = { audience, purpose: 'spawn' as const, now }
const alice = generateEd25519KeyPair()
const mallory = generateEd25519KeyPair()

async function verdict(token: unknown, opts = options): Promise<string> {
  try {
    return (await verifyProofOfPossession(token, opts)).did
  } catch (error) {
    expect(error).toBeInstanceOf(VerificationError)
    return (error as VerificationError).code
  }
}

describe('decodeProofOfPossession', () => {
  it('names the iss and jti the proof claims, and verifies to what the token verifies to', async () => {
    const proof = await createProofOfPossession({ signer: signerFromJwk(alice.privateJwk), audience, purpose: 'spawn' })
    const decoded = decodeProofOfPossession(proof)
    expect(decoded.token).toBe(proof)
    expect(decoded.iss).toBe(alice.did)
    expect(typeof decoded.jti).toBe('string')
    expect(Object.isFrozen(decoded)).toBe(true)
    const byToken = await verifyProofOfPossession(proof, options)
    expect(await verifyProofOfPossession(decoded, options)).toEqual(byToken)
  })

  it('refuses what the token is refused for, with the same code', async () => {
    const signer = signerFromJwk(alice.privateJwk)
    const proof = await createProofOfPossession({ signer, audience, purpose: 'spawn' })
    const [h, p, s] = proof.split('.') as [string, string, string]
    const otherSig = (await createProofOfPossession({ signer: signerFromJwk(mallory.privateJwk), audience, purpose: 'spawn' })).split('.')[2]!
    const malloryAsAlice = await createProofOfPossession({ signer: { ...signerFromJwk(mallory.privateJwk), did: alice.did, keyId: `${alice.did}#${alice.did.slice(8)}` }, audience, purpose: 'spawn' })
    const cases: [string, string, typeof options?][] = [
      ['another signature', `${h}.${p}.${otherSig}`],
      ['signed by another key', malloryAsAlice],
      ['another audience', proof, { ...options, audience: mallory.did }],
      ['another purpose', proof, { ...options, purpose: 'renew' as any }],
      ['expired', proof, { ...options, now: now + 3600 }],
      ['a typ of a plain JWT', await signJwt({ typ: 'JWT' }, { iss: alice.did, sub: alice.did, aud: audience, purpose: 'spawn', iat: now, exp: now + 60, jti: 'a'.repeat(16) }, signer)],
    ]
    for (const [what, token, opts] of cases) {
      const code = await verdict(token, opts)
      expect(code, what).toMatch(/^ERR_/)
      expect(await verdict(decodeProofOfPossession(token), opts), what).toBe(code)
    }
    expect(s.length).toBeGreaterThan(0)
  })

  it('throws for a token that verifying would refuse before its signature, with the same code', async () => {
    const big = `${base64urlEncode('{"alg":"EdDSA"}')}.${'A'.repeat(9000)}.${'A'.repeat(86)}`
    for (const token of [42, 'a.b', 'x.y.z', big, `${base64urlEncode('{"alg":"HS256"}')}.${base64urlEncode('{}')}.${'A'.repeat(86)}`]) {
      const code = await verdict(token)
      expect(code).toMatch(/^ERR_/)
      expect(thrown(() => decodeProofOfPossession(token))).toMatchObject({ code })
    }
  })

  it('an object it did not make is not a decoded proof: refused as a token that is not a string', async () => {
    const proof = await createProofOfPossession({ signer: signerFromJwk(alice.privateJwk), audience, purpose: 'spawn' })
    const decoded = decodeProofOfPossession(proof)
    const copy = { ...decoded }
    expect(await rejected(() => verifyProofOfPossession(copy, options))).toMatchObject({ code: 'ERR_MALFORMED' })
    expect(await rejected(() => verifyProofOfPossession({ token: proof, iss: alice.did, jti: decoded.jti }, options))).toMatchObject({ code: 'ERR_MALFORMED' })
    // The decoded proof cannot be changed to name another agent.
    expect(() => { (decoded as any).iss = mallory.did }).toThrow(TypeError)
    expect((await verifyProofOfPossession(decoded, options)).did).toBe(alice.did)
  })
})
