import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { base64urlDecode, decodeDidKey, generateEd25519KeyPair, privateKeyFromSeed } from '@agentid/core'

describe('generateEd25519KeyPair', () => {
  it('gives a consistent key pair: the JWKs are what node:crypto exports, the DID names the public key, signatures verify', () => {
    const pair = generateEd25519KeyPair()
    expect(pair.privateKey.asymmetricKeyType).toBe('ed25519')
    expect(pair.privateKey.export({ format: 'jwk' })).toEqual(pair.privateJwk)
    expect(pair.publicKey.export({ format: 'jwk' })).toEqual(pair.publicJwk)
    expect(createPublicKey(createPrivateKey({ key: pair.privateJwk, format: 'jwk' })).export({ format: 'jwk' })).toEqual(pair.publicJwk)
    expect(Buffer.from(decodeDidKey(pair.did).publicKey)).toEqual(Buffer.from(base64urlDecode(pair.publicJwk.x)))
    expect(pair.keyId).toBe(`${pair.did}#${pair.did.slice('did:key:'.length)}`)
    const message = Buffer.from('agentid')
    expect(verify(null, message, pair.publicKey, sign(null, message, pair.privateKey))).toBe(true)
  })

  it('gives a new key every time (2,000 pairs, no repeat)', () => {
    const dids = new Set<string>()
    for (let i = 0; i < 2000; i++) dids.add(generateEd25519KeyPair().did)
    expect(dids.size).toBe(2000)
  })
})

describe('privateKeyFromSeed', () => {
  it('imports a 32-byte seed as the key whose JWK d is that seed; other lengths are a TypeError', () => {
    const pair = generateEd25519KeyPair()
    const key = privateKeyFromSeed(base64urlDecode(pair.privateJwk.d))
    expect(key.export({ format: 'jwk' })).toEqual(pair.privateJwk)
    expect(() => privateKeyFromSeed(new Uint8Array(31))).toThrow(TypeError)
    expect(() => privateKeyFromSeed(new Uint8Array(64))).toThrow(TypeError)
  })
})
