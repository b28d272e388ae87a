// Raw-key verification on libsodium (sodium-native) or node:crypto: the same answers, the same errors.
import { createRequire } from 'node:module'
import { verify as cryptoVerify } from 'node:crypto'
import {
  decodeDidKey,
  decodeJwt,
  ed25519Backend,
  generateEd25519KeyPair,
  hasSmallOrderR,
  publicKeyFromRaw,
  signerFromJwk,
  signJwt,
  VerificationError,
  verifyJwsSignature,
  verifyJwsSignatureRaw,
} from '@agentid/core'
import { describe, expect, it, vi } from 'vitest'
import { readVector, speccheckThroughGates, thrown } from './helpers.js'

type EdModule = typeof import('../src/ed25519.js')
const speccheck = readVector<any>('ed25519/speccheck/cases.annotated.json')
const wycheproof = readVector<any>('ed25519/wycheproof/ed25519_test.json')

/** A fresh copy of the backend module, with AGENTID_ED25519 set (or not) before its first check. */
async function backend(env: string | undefined): Promise<EdModule> {
  vi.resetModules()
  if (env === undefined) vi.stubEnv('AGENTID_ED25519', '')
  else vi.stubEnv('AGENTID_ED25519', env)
  const m = await import('../src/ed25519.js')
  m.ed25519Backend() // chosen now, while the variable is set
  vi.unstubAllEnvs()
  return m
}
// The package's own instance chooses with the environment as the process has it.
const defaultBackend = ed25519Backend()

/** The code of the VerificationError that `fn` throws (the test fails when it throws nothing). */
function code(fn: () => unknown): string {
  const error = thrown(fn)
  expect(error).toBeInstanceOf(VerificationError)
  return (error as VerificationError).code
}

describe('ed25519Backend', () => {
  it('is libsodium wherever sodium-native is installed (CI must not fall back silently)', () => {
    let installed = true
    try {
      createRequire(import.meta.url).resolve('sodium-native', { paths: [new URL('../', import.meta.url).pathname] })
    } catch {
      installed = false
    }
    expect(installed).toBe(true) // an optional dependency, but installed by this workspace
    expect(defaultBackend).toBe('libsodium')
    expect(ed25519Backend()).toBe('libsodium')
  })

  it('requires the prebuilt addon itself, not sodium-native\'s index.js and require-addon (16 modules, about 1 MB of a verifier\'s peak RSS); same answers as sodium-native', async () => {
    const m = await backend(undefined)
    const data = Buffer.from('signed bytes')
    const pair = generateEd25519KeyPair()
    const raw = decodeDidKey(pair.did).publicKey
    const jws = decodeJwt(await signJwt({}, { sub: 'a' }, signerFromJwk(pair.privateJwk)))
    expect(m.ed25519VerifyRaw(Buffer.from(jws.signingInput), jws.signature, raw)).toBe(true)
    const require = createRequire(import.meta.url)
    const loaded = Object.keys(require.cache)
    expect(loaded.some((p) => /sodium-native[\\/]prebuilds[\\/].*\.node$/.test(p))).toBe(true)
    expect(loaded.filter((p) => /sodium-native[\\/]index\.js$|node_modules[\\/](require-addon|bare-[a-z-]+)[\\/]/.test(p))).toEqual([])
    // The addon called directly gives what sodium-native's own function gives, also on bad signatures.
    const sodiumNative = createRequire(new URL('../src/ed25519.ts', import.meta.url))('sodium-native') as { crypto_sign_verify_detached(s: Uint8Array, m: Uint8Array, k: Uint8Array): boolean }
    for (let i = 0; i < 64; i++) {
      const sig = Buffer.from(jws.signature)
      if (i > 0) sig[i]! ^= 1 << i % 8
      const input = Buffer.from(jws.signingInput)
      expect(m.ed25519VerifyRaw(input, sig, raw)).toBe(sodiumNative.crypto_sign_verify_detached(sig, input, raw))
    }
    expect(m.ed25519VerifyRaw(data, Buffer.alloc(64), raw)).toBe(false)
    // A key of 32 elements but not 32 bytes is refused before the addon (whose C assert would abort).
    expect(() => m.ed25519VerifyRaw(data, jws.signature, new Uint16Array(32) as never)).toThrow(TypeError)
  })

  it('AGENTID_ED25519=node:crypto selects node:crypto; libsodium requires it', async () => {
    expect((await backend('node:crypto')).ed25519Backend()).toBe('node:crypto')
    expect((await backend(undefined)).ed25519Backend()).toBe('libsodium')
    expect((await backend('libsodium')).ed25519Backend()).toBe('libsodium')
  })

  it('any other value of AGENTID_ED25519 is refused, on every check (never read as unset)', async () => {
    for (const value of ['node', 'NODE:CRYPTO', 'sodium', ' node:crypto']) {
      vi.resetModules()
      vi.stubEnv('AGENTID_ED25519', value)
      const m: EdModule = await import('../src/ed25519.js')
      expect(() => m.ed25519Backend()).toThrow(/AGENTID_ED25519 must be node:crypto or libsodium/)
      expect(() => m.ed25519VerifyRaw(Buffer.from('x'), Buffer.alloc(64), Buffer.alloc(32, 1))).toThrow(TypeError)
      expect(() => m.ed25519Backend()).toThrow(TypeError)
      vi.unstubAllEnvs()
    }
  })
})

describe('both backends give the same answer', async () => {
  const sodium = await backend(undefined)
  const node = await backend('node:crypto')
  expect([sodium.ed25519Backend(), node.ed25519Backend()]).toEqual(['libsodium', 'node:crypto'])

  it('on every Wycheproof vector whose R and key pass the gates (and node:crypto as is on the rest)', () => {
    const tests = wycheproof.testGroups.flatMap((g: any) => g.tests.map((t: any) => ({ pk: Buffer.from(g.publicKey.pk, 'hex'), msg: Buffer.from(t.msg, 'hex'), sig: Buffer.from(t.sig, 'hex'), result: t.result })))
    expect(tests.length).toBeGreaterThan(100)
    let gated = 0
    for (const t of tests) {
      const n = node.ed25519VerifyRaw(t.msg, t.sig, t.pk)
      expect(n).toBe(cryptoVerify(null, t.msg, publicKeyFromRaw(t.pk), t.sig.length === 64 ? t.sig : Buffer.alloc(64)) && t.sig.length === 64)
      if (t.sig.length === 64 && hasSmallOrderR(t.sig)) continue
      gated++
      expect(sodium.ed25519VerifyRaw(t.msg, t.sig, t.pk)).toBe(n)
      expect(n).toBe(t.result === 'valid')
    }
    expect(gated).toBeGreaterThan(100)
  })

  it('on a signature that is not 64 bytes, a longer view whose first 64 bytes verify included', async () => {
    const pair = generateEd25519KeyPair()
    const raw = decodeDidKey(pair.did).publicKey
    const jws = decodeJwt(await signJwt({}, { sub: 'wide' }, signerFromJwk(pair.privateJwk)))
    const data = Buffer.from(jws.signingInput)
    const twice = Buffer.concat([jws.signature, jws.signature])
    const wide = new Uint16Array(twice.buffer, twice.byteOffset, 64) // 64 units, 128 bytes, the valid signature first
    for (const m of [sodium, node]) {
      expect(m.ed25519VerifyRaw(data, jws.signature, raw)).toBe(true)
      expect(m.ed25519VerifyRaw(data, wide as never, raw)).toBe(false)
      expect(m.ed25519VerifyRaw(data, twice, raw)).toBe(false)
      expect(m.ed25519VerifyRaw(data, twice.subarray(0, 63), raw)).toBe(false)
    }
    expect(code(() => verifyJwsSignatureRaw({ signingInput: jws.signingInput, signature: wide as never }, raw))).toBe('ERR_SIGNATURE_INVALID')
  })

  it('on keys that are not curve points: no backend verifies anything under them', async () => {
    const { ed25519 } = await import('@noble/curves/ed25519')
    const pair = generateEd25519KeyPair()
    const jws = decodeJwt(await signJwt({}, { sub: 'off' }, signerFromJwk(pair.privateJwk)))
    const data = Buffer.from(jws.signingInput)
    let offCurve = 0
    for (let y = 2; y < 64; y++) {
      const key = Buffer.alloc(32)
      key[0] = y
      try {
        ed25519.ExtendedPoint.fromHex(key)
        continue
      } catch {
        offCurve++
      }
      for (const m of [sodium, node]) {
        let outcome: boolean | 'threw'
        try {
          outcome = m.ed25519VerifyRaw(data, jws.signature, key)
        } catch {
          outcome = 'threw'
        }
        expect(outcome).not.toBe(true)
      }
      expect(code(() => verifyJwsSignatureRaw(jws, key))).toBe('ERR_SIGNATURE_INVALID')
    }
    expect(offCurve).toBeGreaterThan(10)
  })

  it('on the 12 speccheck cases, behind the R check and the did:key gate: libsodium\'s own results', () => {
    const results = (m: EdModule) => speccheckThroughGates(speccheck.cases, (message, sig, key) => m.ed25519VerifyRaw(message, sig, key))
    const expected = speccheck.cases.map((c: any) => c.libsodium_result === 'V')
    expect(results(sodium)).toEqual(expected)
    expect(results(node)).toEqual(expected)
  })

  it('on random keys, messages and bit flips', async () => {
    for (let i = 0; i < 50; i++) {
      const pair = generateEd25519KeyPair()
      const raw = decodeDidKey(pair.did).publicKey
      const jws = decodeJwt(await signJwt({}, { sub: `x${i}`, n: 'é'.repeat(i) }, signerFromJwk(pair.privateJwk)))
      const data = Buffer.from(jws.signingInput)
      expect(sodium.ed25519VerifyRaw(data, jws.signature, raw)).toBe(true)
      expect(node.ed25519VerifyRaw(data, jws.signature, raw)).toBe(true)
      const flipped = Buffer.from(jws.signature)
      flipped[i % 64]! ^= 1 << i % 8
      expect(sodium.ed25519VerifyRaw(data, flipped, raw)).toBe(false)
      expect(node.ed25519VerifyRaw(data, flipped, raw)).toBe(false)
    }
  })
})

describe('verifyJwsSignatureRaw', async () => {
  const pair = generateEd25519KeyPair()
  const raw = decodeDidKey(pair.did).publicKey
  const jws = decodeJwt(await signJwt({}, { sub: 'agent' }, signerFromJwk(pair.privateJwk)))

  it('accepts what verifyJwsSignature accepts under the same key', () => {
    expect(() => verifyJwsSignature(jws, pair.publicJwk)).not.toThrow()
    expect(() => verifyJwsSignatureRaw(jws, raw)).not.toThrow()
    expect(() => verifyJwsSignatureRaw(jws, Buffer.from(raw))).not.toThrow()
  })

  it('refuses another key, a changed input or signature, with ERR_SIGNATURE_INVALID', () => {
    const other = decodeDidKey(generateEd25519KeyPair().did).publicKey
    expect(code(() => verifyJwsSignatureRaw(jws, other))).toBe('ERR_SIGNATURE_INVALID')
    expect(code(() => verifyJwsSignatureRaw({ ...jws, signingInput: `${jws.signingInput}A` }, raw))).toBe('ERR_SIGNATURE_INVALID')
    const sig = Buffer.from(jws.signature)
    sig[63]! ^= 0x80
    expect(code(() => verifyJwsSignatureRaw({ ...jws, signature: sig }, raw))).toBe('ERR_SIGNATURE_INVALID')
    expect(code(() => verifyJwsSignatureRaw({ ...jws, signature: jws.signature.subarray(0, 63) }, raw))).toBe('ERR_SIGNATURE_INVALID')
    expect(code(() => verifyJwsSignatureRaw({ ...jws, signature: 'not bytes' as never }, raw))).toBe('ERR_SIGNATURE_INVALID')
  })

  it('refuses a signing input that is not ASCII, the long é case included, with ERR_MALFORMED', () => {
    expect(code(() => verifyJwsSignatureRaw({ ...jws, signingInput: `${jws.signingInput}é` }, raw))).toBe('ERR_MALFORMED')
    const n = 3000
    expect(code(() => verifyJwsSignatureRaw({ ...jws, signingInput: 'é'.repeat(n) + 'a'.repeat(n) }, raw))).toBe('ERR_MALFORMED')
    expect(code(() => verifyJwsSignatureRaw({ ...jws, signingInput: 42 as never }, raw))).toBe('ERR_MALFORMED')
  })

  it('refuses a small-order R before the equation', () => {
    const sig = Buffer.concat([Buffer.from([1]), Buffer.alloc(63)])
    expect(() => verifyJwsSignatureRaw({ ...jws, signature: sig }, raw)).toThrow(expect.objectContaining({ code: 'ERR_SIGNATURE_INVALID', details: { reason: 'small-order R' } }))
  })

  it('takes only a 32-byte key (a TypeError, as for a wrong key type elsewhere)', () => {
    for (const key of [raw.subarray(0, 31), Buffer.alloc(33), 'abc', null, pair.publicJwk]) {
      expect(() => verifyJwsSignatureRaw(jws, key as never)).toThrow(TypeError)
    }
  })
})
