// The scratch buffer that decodes payloads and holds signing inputs grows to the largest ordinary token
// and no further: a huge input (a caller's own maxBytes, a JWS handed to verifyJwsSignature) is served
// from a buffer of its own, which is not kept, and gets the same answers as a small one.
import { decodeJwt, generateEd25519KeyPair, signerFromJwk, signJwt, VerificationError, verifyJwsSignature, verifyJwsSignatureRaw } from '@agentid/core'
import { describe, expect, it } from 'vitest'
import { scratchBytesKept } from '../src/jws.js'
import { decodeDidKey } from '../src/did-key.js'

const KEPT_MAX = 3 * 64 * 1024

describe('the scratch buffer', () => {
  it('is not kept at the size of a huge input, and the huge input still verifies (or not) as a small one', async () => {
    const alice = generateEd25519KeyPair()
    const signer = signerFromJwk(alice.privateJwk)
    const raw = decodeDidKey(alice.did).publicKey
    const small = decodeJwt(await signJwt({ typ: 'JWT' }, { sub: 'a' }, signer))
    verifyJwsSignatureRaw(small, raw)
    expect(scratchBytesKept()).toBeLessThanOrEqual(KEPT_MAX)

    // 2 MB of payload: decoded with a caller's maxBytes, then its signature checked on both paths.
    const big = await signJwt({ typ: 'JWT' }, { sub: 'a', pad: 'x'.repeat(2_000_000) }, signer)
    const decoded = decodeJwt(big, 4_000_000)
    expect(decoded.payload.pad).toHaveLength(2_000_000)
    verifyJwsSignatureRaw(decoded, raw)
    verifyJwsSignature(decoded, alice.publicJwk)
    expect(scratchBytesKept()).toBeLessThanOrEqual(KEPT_MAX)

    // A flipped byte in the huge input is refused: the one-off buffer holds this input, not stale bytes.
    const flipped = { signingInput: `${decoded.signingInput.slice(0, -1)}${decoded.signingInput.endsWith('A') ? 'B' : 'A'}`, signature: decoded.signature }
    expect(() => verifyJwsSignatureRaw(flipped, raw)).toThrow(VerificationError)
    expect(() => verifyJwsSignature(flipped, alice.publicJwk)).toThrow(VerificationError)
    // A non-ASCII huge input is still refused as such.
    const wide = { signingInput: `${decoded.signingInput}\u00e9`, signature: decoded.signature }
    expect(() => verifyJwsSignatureRaw(wide, raw)).toThrow(/not ASCII/)

    // A token right at the kept bound's input size keeps the buffer at most at the bound, and small ones still verify.
    const mid = decodeJwt(await signJwt({ typ: 'JWT' }, { sub: 'a', pad: 'y'.repeat(40_000) }, signer))
    verifyJwsSignatureRaw(mid, raw)
    expect(scratchBytesKept()).toBeLessThanOrEqual(KEPT_MAX)
    expect(scratchBytesKept()).toBeGreaterThanOrEqual(3 * mid.signingInput.length)
    verifyJwsSignatureRaw(small, raw)
    expect(decodeJwt(await signJwt({ typ: 'JWT' }, { sub: 'b' }, signer)).payload.sub).toBe('b')
  })
})
