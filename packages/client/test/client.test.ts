import { decodeJwt, signJwt, verifyProofOfPossession, VerificationError, generateEd25519KeyPair, POP_TYP } from '@agentid/core'
import { createProofOfPossession, generateAgentKey, signerFromJwk } from '@agentid/client'
import { describe, expect, it } from 'vitest'

const ISSUER = 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp'
const T = 1_800_000_000

async function code(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn()
  } catch (e) {
    expect(e).toBeInstanceOf(VerificationError)
    return (e as VerificationError).code
  }
  throw new Error('expected a VerificationError')
}

describe('agent keys and signers', () => {
  it('generates a did:key whose signer signs as that DID', async () => {
    const key = generateAgentKey()
    expect(key.did).toMatch(/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/)
    const signer = signerFromJwk(key.privateJwk)
    expect(signer.did).toBe(key.did)
    expect(signer.keyId).toBe(`${key.did}#${key.did.slice(8)}`)
  })

  it('refuses a private JWK whose x does not match d, or that is not Ed25519', () => {
    const a = generateAgentKey()
    const b = generateAgentKey()
    for (const bad of [{ ...a.privateJwk, x: b.publicJwk.x }, { ...a.privateJwk, crv: 'X25519' }, a.publicJwk, { ...a.privateJwk, d: 'AAAA' }, null, 'jwk']) {
      expect(() => signerFromJwk(bad)).toThrowError(expect.objectContaining({ code: 'ERR_INVALID_INPUT' }))
    }
  })
})

describe('proof of possession', () => {
  const key = generateAgentKey()
  const signer = signerFromJwk(key.privateJwk)
  const clock = () => T * 1000
  const opts = { audience: ISSUER, purpose: 'spawn' as const, now: T }

  it('round-trips', async () => {
    const proof = await createProofOfPossession({ signer, audience: ISSUER, purpose: 'spawn', nonce: 'challenge-1', clock })
    expect(decodeJwt(proof).header.typ).toBe(POP_TYP)
    const verified = await verifyProofOfPossession(proof, opts)
    expect(verified).toMatchObject({ did: key.did, nonce: 'challenge-1', iat: T, exp: T + 60 })
  })

  it('refuses another audience, another purpose, another agent', async () => {
    const proof = await createProofOfPossession({ signer, audience: ISSUER, purpose: 'spawn', clock })
    expect(await code(() => verifyProofOfPossession(proof, { ...opts, audience: 'did:web:other.example' }))).toBe('ERR_AUDIENCE_MISMATCH')
    expect(await code(() => verifyProofOfPossession(proof, { ...opts, purpose: 'renew' }))).toBe('ERR_MALFORMED')
    expect(await code(() => verifyProofOfPossession(proof, { ...opts, expectedDid: generateAgentKey().did }))).toBe('ERR_KEY_MISMATCH')
  })

  it('refuses expired and future proofs', async () => {
    const proof = await createProofOfPossession({ signer, audience: ISSUER, purpose: 'spawn', clock })
    expect(await code(() => verifyProofOfPossession(proof, { ...opts, now: T + 60 + 31 }))).toBe('ERR_EXPIRED')
    expect(await code(() => verifyProofOfPossession(proof, { ...opts, now: T - 31 }))).toBe('ERR_NOT_YET_VALID')
  })

  it('refuses a proof signed by a key other than its iss', async () => {
    const mallory = signerFromJwk(generateEd25519KeyPair().privateJwk)
    const forged = await signJwt({ typ: POP_TYP, kid: signer.keyId }, { iss: key.did, sub: key.did, aud: ISSUER, purpose: 'spawn', iat: T, exp: T + 60, jti: 'x'.repeat(20) }, mallory)
    expect(await code(() => verifyProofOfPossession(forged, opts))).toBe('ERR_SIGNATURE_INVALID')
    const otherKid = await signJwt({ typ: POP_TYP }, { iss: key.did, sub: key.did, aud: ISSUER, purpose: 'spawn', iat: T, exp: T + 60, jti: 'x'.repeat(20) }, mallory)
    expect(await code(() => verifyProofOfPossession(otherKid, opts))).toBe('ERR_KEY_MISMATCH')
  })

  it('refuses wrong typ, long lifetimes, bad jti, sub != iss', async () => {
    const base = { iss: key.did, sub: key.did, aud: ISSUER, purpose: 'spawn', iat: T, exp: T + 60, jti: 'x'.repeat(20) }
    const cases: [Record<string, unknown>, Record<string, unknown>][] = [
      [{ typ: 'JWT' }, base],
      [{ typ: POP_TYP }, { ...base, exp: T + 3600 }],
      [{ typ: POP_TYP }, { ...base, exp: T }],
      [{ typ: POP_TYP }, { ...base, jti: 'short' }],
      [{ typ: POP_TYP }, { ...base, jti: 42 }],
      [{ typ: POP_TYP }, { ...base, sub: generateAgentKey().did }],
      [{ typ: POP_TYP }, { ...base, iat: String(T) }],
      [{ typ: POP_TYP }, { ...base, nonce: 7 }],
    ]
    for (const [header, payload] of cases) {
      const token = await signJwt(header, payload, signer)
      expect(await code(() => verifyProofOfPossession(token, opts)), JSON.stringify(payload)).toBe('ERR_MALFORMED')
    }
  })

  it('refuses non-tokens and oversized tokens', async () => {
    for (const bad of [undefined, 42, '', 'a.b.c', 'x'.repeat(9000)]) expect(await code(() => verifyProofOfPossession(bad, opts))).toBe('ERR_MALFORMED')
  })

  it('misuse is a TypeError', async () => {
    await expect(createProofOfPossession({ signer, audience: ISSUER, purpose: 'spawn', ttlSec: 301 })).rejects.toThrow(TypeError)
    await expect(createProofOfPossession({ signer, audience: '', purpose: 'spawn' })).rejects.toThrow(TypeError)
  })
})
