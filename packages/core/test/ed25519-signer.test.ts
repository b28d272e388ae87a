// Signing with libsodium under a seed (ed25519SeedSigner): the signature node:crypto makes for the same
// key and bytes (Ed25519 is deterministic), or null where the backend is node:crypto.
import { createPrivateKey, createPublicKey, randomBytes, sign as cryptoSign } from 'node:crypto'
import { describe, expect, it, vi } from 'vitest'

// RFC 8032, section 7.1, TEST 1, 2 and 3: secret key (seed), public key, message, signature (hex).
const RFC8032: Array<[string, string, string, string]> = [
  ['9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', '',
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b'],
  ['4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb', '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c', '72',
    '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00'],
  ['c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7', 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025', 'af82',
    '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a'],
]

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const nodeKey = (seed: Uint8Array) => createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' })
const nodeSign = (seed: Uint8Array, data: Uint8Array) => cryptoSign(null, data, nodeKey(seed))
const nodePublic = (seed: Uint8Array) => Buffer.from((createPublicKey(nodeKey(seed)).export({ format: 'jwk' }) as { x: string }).x, 'base64url')

type EdModule = typeof import('../src/ed25519.js')

/** A fresh copy of the backend module, with AGENTID_ED25519 set before its first use. */
async function backend(env: string): Promise<EdModule> {
  vi.resetModules()
  vi.stubEnv('AGENTID_ED25519', env)
  const m = await import('../src/ed25519.js')
  m.ed25519Backend() // chosen now, while the variable is set
  vi.unstubAllEnvs()
  return m
}
const sodium = await backend('libsodium') // this machine has the addon: a missing one fails here
const nodeCrypto = await backend('node:crypto')
const { ed25519SeedSigner } = sodium

describe('ed25519SeedSigner', () => {
  it('refuses a seed that is not 32 bytes of a Uint8Array, on both backends', () => {
    for (const m of [sodium, nodeCrypto]) {
      for (const bad of [new Uint8Array(31), new Uint8Array(33), new Uint8Array(0), new Uint16Array(16), 'a'.repeat(32), null, [...new Uint8Array(32)]]) {
        expect(() => m.ed25519SeedSigner(bad as Uint8Array), String(bad)).toThrow(TypeError)
      }
    }
  })

  it('is null where the backend is node:crypto (AGENTID_ED25519=node:crypto)', () => {
    expect(nodeCrypto.ed25519Backend()).toBe('node:crypto')
    expect(nodeCrypto.ed25519SeedSigner(randomBytes(32))).toBeNull()
  })

  describe('on libsodium', () => {
    it('signs as RFC 8032 says (section 7.1, TEST 1-3) and as node:crypto does (random keys and messages)', () => {
      for (const [seed, publicKey, message, signature] of RFC8032) {
        const signer = ed25519SeedSigner(Buffer.from(seed, 'hex'))!
        expect(Buffer.from(signer.publicKey).toString('hex')).toBe(publicKey)
        expect(signer.sign(Buffer.from(message, 'hex')).toString('hex')).toBe(signature)
      }
      for (let i = 0; i < 200; i++) {
        const seed = randomBytes(32)
        const data = randomBytes(i * 7)
        const signer = ed25519SeedSigner(seed)!
        expect(Buffer.from(signer.publicKey).equals(nodePublic(seed))).toBe(true)
        expect(signer.sign(data).equals(nodeSign(seed, data))).toBe(true)
      }
    })

    it('signs the bytes the engine holds for the view (an offset view, a SharedArrayBuffer, lying own properties)', () => {
      const seed = randomBytes(32)
      const signer = ed25519SeedSigner(seed)!
      const backing = randomBytes(300)
      const view = backing.subarray(17, 217)
      expect(signer.sign(view).equals(nodeSign(seed, Buffer.from(view)))).toBe(true)
      const shared = new Uint8Array(new SharedArrayBuffer(64))
      shared.set(randomBytes(64))
      expect(signer.sign(shared).equals(nodeSign(seed, Buffer.from(shared)))).toBe(true)
      const liar = new Uint8Array(backing.buffer, backing.byteOffset, 100)
      Object.defineProperty(liar, 'byteOffset', { value: 2 ** 30 })
      Object.defineProperty(liar, 'byteLength', { value: 10_000 })
      Object.defineProperty(liar, 'length', { value: 10_000 })
      Object.defineProperty(liar, 'buffer', { value: new ArrayBuffer(8) })
      expect(signer.sign(liar).equals(nodeSign(seed, Buffer.from(backing.subarray(0, 100))))).toBe(true)
      expect(() => signer.sign('text' as unknown as Uint8Array)).toThrow(TypeError)
      expect(() => signer.sign(new Uint16Array(4) as unknown as Uint8Array)).toThrow(TypeError)
    })

    it('keeps its own copy of the seed (the caller may wipe its own), and wipes its key on dispose', () => {
      const seed = randomBytes(32)
      const kept = Buffer.from(seed)
      const signer = ed25519SeedSigner(seed)!
      expect(seed.equals(kept)).toBe(true) // the caller's seed is left as it was
      seed.fill(0)
      const data = Buffer.from('header.payload')
      expect(signer.sign(data).equals(nodeSign(kept, data))).toBe(true)
      const publicKey = signer.publicKey
      publicKey.fill(0) // a copy: the signer's key pair is not changed through it
      expect(signer.sign(data).equals(nodeSign(kept, data))).toBe(true)
      signer.dispose()
      expect(() => signer.sign(data)).toThrow(/disposed/)
      signer.dispose() // twice is harmless
      expect(Object.isFrozen(signer)).toBe(true)
    })
  })
})
