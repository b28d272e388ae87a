import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto'
import { base58 } from '@scure/base'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  assertEd25519PublicKey,
  base64urlDecode,
  decodeBase58btc,
  decodeDidKey,
  decodeDidKeyUrl,
  didFromPublicJwk,
  encodeDidKey,
  isDidKeySyntax,
  parseDidKeySyntax,
  publicJwkFromDid,
  VerificationError,
  type DidKeyErrorName,
} from '@agentid/core'
import { readVector, thrown } from './helpers.js'

interface NegativeCase {
  id: string
  input: string
  expected: string
  reason: string
  basis: 'spec' | 'policy' | 'spec-ambiguous'
}
const negative = readVector<{ errorNames: string[]; cases: NegativeCase[] }>('did-key/did-key-negative.derived.json')
// Four entries use the 2018/2019 suites (publicKeyBase58, relative ids); one uses JsonWebKey2020 (publicKeyJwk, absolute ids).
interface CcgKeyPair {
  id: string
  publicKeyBase58?: string
  publicKeyJwk?: { x: string }
}
const ccg = readVector<Record<string, { seed: string; verificationKeyPair: CcgKeyPair; keyAgreementKeyPair: CcgKeyPair; didDocument: { verificationMethod: { id: string }[] } }>>(
  'did-key/ed25519-x25519.json',
)

// PKCS8 DER header of an Ed25519 private key (RFC 8410): the 32-byte seed follows it.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

function publicKeyFromSeed(seed: Uint8Array): Uint8Array {
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
  const { x } = createPublicKey(privateKey).export({ format: 'jwk' }) as { x: string }
  return base64urlDecode(x)
}

// The verifier-facing code of each did:key error, as src/did-key.ts documents it.
const CODE_OF: Record<DidKeyErrorName, string> = {
  invalidDid: 'ERR_MALFORMED',
  invalidDidUrl: 'ERR_MALFORMED',
  invalidPublicKeyLength: 'ERR_DID_UNRESOLVABLE',
  invalidPublicKey: 'ERR_DID_UNRESOLVABLE',
  unsupportedPublicKeyType: 'ERR_DID_UNRESOLVABLE',
}

function expectDidKeyError(fn: () => unknown, allowed: readonly string[]): void {
  const error = thrown(fn)
  expect(error).toBeInstanceOf(VerificationError)
  expect(allowed).toContain(error.details.didKeyError)
  expect(error.code).toBe(CODE_OF[error.details.didKeyError as DidKeyErrorName])
}

// Cases whose vector leaves the answer to the implementation: the policy agentid picks.
const POLICY: Record<string, { expected: 'valid' | DidKeyErrorName; primeOrderOnly: 'valid' | DidKeyErrorName }> = {
  // spec-ambiguous 4-component form: strict, only `did:key:z…` is accepted.
  'valid-version-1': { expected: 'invalidDid', primeOrderOnly: 'invalidDid' },
  // An X25519 key is for key agreement only: it must never name a signer.
  'multicodec-x25519-as-signer': { expected: 'unsupportedPublicKeyType', primeOrderOnly: 'unsupportedPublicKeyType' },
  // Valid per spec; refused only under the opt-in prime-order policy.
  'pubkey-mixed-order': { expected: 'valid', primeOrderOnly: 'invalidPublicKey' },
}

function isPlainValid(expected: string): boolean {
  return expected === 'valid' || expected.startsWith('valid (verification method')
}

/** The did:key error names a vector's `expected` text allows ("invalidDid (or methodNotSupported)" → both). */
function allowedErrors(expected: string): string[] {
  return (expected.match(/[A-Za-z]+/g) ?? []).filter((word) => negative.errorNames.includes(word) || word === 'notFound')
}

const VALID_DID = 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp'

describe('did:key negative vectors (did-key-negative.derived.json)', () => {
  it('classifies every case: plain valid, an error list, or an explicit policy', () => {
    expect(negative.cases).toHaveLength(32)
    for (const c of negative.cases) {
      const classified = c.id in POLICY || isPlainValid(c.expected) || (!c.expected.startsWith('valid') && allowedErrors(c.expected).length > 0)
      expect(classified, c.id).toBe(true)
    }
  })

  for (const c of negative.cases) {
    const decode = c.id.startsWith('didurl-') ? decodeDidKeyUrl : decodeDidKey
    const policy = POLICY[c.id]
    const expected: 'valid' | string[] = policy
      ? policy.expected === 'valid' ? 'valid' : [policy.expected]
      : isPlainValid(c.expected) ? 'valid' : allowedErrors(c.expected)

    it(`${c.id} (${c.basis}): ${Array.isArray(expected) ? expected.join(' | ') : 'valid'}`, () => {
      if (expected === 'valid') {
        const key = decode(c.input)
        expect(key.publicKey).toHaveLength(32)
        expect(key.did).toBe(c.input.split('#')[0])
        expect(key.keyId).toBe(`${key.did}#${key.did.slice('did:key:'.length)}`)
      } else {
        expectDidKeyError(() => decode(c.input), expected)
      }
    })

    it(`${c.id} with { primeOrderOnly: true }`, () => {
      const strict = policy ? policy.primeOrderOnly : expected
      if (strict === 'valid') {
        expect(decode(c.input, { primeOrderOnly: true }).publicKey).toHaveLength(32)
      } else {
        expectDidKeyError(() => decode(c.input, { primeOrderOnly: true }), Array.isArray(strict) ? strict : [strict])
      }
    })
  }

  it('the seed-0 key is in the prime-order subgroup', () => {
    expect(decodeDidKey(VALID_DID, { primeOrderOnly: true }).publicKey).toEqual(decodeDidKey(VALID_DID).publicKey)
  })

  it('mixed-order key: accepted by default, refused as invalidPublicKey under primeOrderOnly', () => {
    const mixed = negative.cases.find((c) => c.id === 'pubkey-mixed-order')!.input
    expect(decodeDidKey(mixed).publicKey).toHaveLength(32)
    expectDidKeyError(() => decodeDidKey(mixed, { primeOrderOnly: true }), ['invalidPublicKey'])
    expectDidKeyError(() => decodeDidKeyUrl(`${mixed}#${mixed.slice(8)}`, { primeOrderOnly: true }), ['invalidPublicKey'])
  })

  it('the 4-component form is refused even with a fragment', () => {
    expectDidKeyError(() => decodeDidKeyUrl(`did:key:1:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp#z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp`), ['invalidDid'])
  })

  it('isDidKeySyntax is false for structural errors and true only for well-formed Ed25519 did:keys', () => {
    for (const c of negative.cases) {
      if (c.id.startsWith('didurl-')) continue
      const allowed = POLICY[c.id] ? [POLICY[c.id]!.expected] : isPlainValid(c.expected) ? ['valid'] : allowedErrors(c.expected)
      const structural = !allowed.includes('valid') && !allowed.includes('invalidPublicKey')
      if (structural) expect(isDidKeySyntax(c.input), c.id).toBe(false)
      // Point checks are not part of the cheap syntax check.
      else expect(isDidKeySyntax(c.input), c.id).toBe(true)
    }
    expect(isDidKeySyntax(42)).toBe(false)
    expect(isDidKeySyntax(null)).toBe(false)
    expect(isDidKeySyntax(`${VALID_DID}#${VALID_DID.slice(8)}`)).toBe(false)
  })
})

describe('did:key URLs', () => {
  const own = `${VALID_DID}#${VALID_DID.slice(8)}`

  it('decodeDidKey refuses a DID URL: only decodeDidKeyUrl accepts a fragment', () => {
    expectDidKeyError(() => decodeDidKey(own), ['invalidDid'])
    expect(decodeDidKeyUrl(own).did).toBe(VALID_DID)
    expect(decodeDidKeyUrl(VALID_DID).did).toBe(VALID_DID)
  })

  it.each([
    ['an empty fragment', `${VALID_DID}#`],
    ['a second fragment', `${own}#x`],
    ['another key', `${VALID_DID}#z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG`],
    ['a full DID as fragment', `${VALID_DID}#${VALID_DID}`],
    ['a case-changed fragment', `${VALID_DID}#${VALID_DID.slice(8).toLowerCase()}`],
    ['a key-agreement id', `${VALID_DID}#z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW`],
  ])('refuses %s as invalidDidUrl', (_name, url) => {
    expectDidKeyError(() => decodeDidKeyUrl(url), ['invalidDidUrl'])
  })

  it('refuses a path or query before the fragment as invalidDid', () => {
    expectDidKeyError(() => decodeDidKeyUrl(`${VALID_DID}/path#${VALID_DID.slice(8)}`), ['invalidDid'])
    expectDidKeyError(() => decodeDidKeyUrl(`${VALID_DID}?service=x#${VALID_DID.slice(8)}`), ['invalidDid'])
  })

  it('refuses non-string input with a VerificationError, never a TypeError', () => {
    for (const input of [42, null, undefined, {}, ['did:key:z6Mk'], new String(VALID_DID)]) {
      expectDidKeyError(() => decodeDidKey(input as never), ['invalidDid'])
      expectDidKeyError(() => decodeDidKeyUrl(input as never), ['invalidDid'])
    }
  })
})

describe('did:key structural edge cases', () => {
  const key = decodeDidKey(VALID_DID).publicKey

  function didOf(bytes: number[] | Uint8Array): string {
    return `did:key:z${base58.encode(Uint8Array.from(bytes))}`
  }

  it.each([
    ['a leading zero byte (base58 "1")', didOf([0, 0xed, 0x01, ...key]), ['unsupportedPublicKeyType']],
    ['multicodec 0xed without the varint continuation', didOf([0xed, ...key]), ['invalidDid', 'invalidPublicKeyLength', 'unsupportedPublicKeyType']],
    ['a 5-byte varint', didOf([0xed, 0x81, 0x80, 0x80, 0x80, 0x00, ...key]), ['invalidDid']],
    ['only the multicodec prefix', didOf([0xed, 0x01]), ['invalidPublicKeyLength']],
    ['a private-key multicodec (ed25519-priv 0x1300)', didOf([0x80, 0x26, ...key]), ['unsupportedPublicKeyType']],
    ['an overlong identifier', `did:key:z${'1'.repeat(200)}`, ['invalidDid']],
    ['a leading space', ` ${VALID_DID}`, ['invalidDid']],
    ['a NUL after the identifier', `${VALID_DID}\u0000`, ['invalidDid']],
    ['a fullwidth z', `did:key:\uff5a${VALID_DID.slice(9)}`, ['invalidDid']],
    ['method in upper case', VALID_DID.replace('key', 'KEY'), ['invalidDid']],
  ])('refuses %s', (_name, did, allowed) => {
    expectDidKeyError(() => decodeDidKey(did), allowed)
  })

  it('encodeDidKey refuses anything but 32 bytes with a TypeError (API misuse)', () => {
    expect(() => encodeDidKey(new Uint8Array(31))).toThrow(TypeError)
    expect(() => encodeDidKey(new Uint8Array(33))).toThrow(TypeError)
    expect(() => encodeDidKey(Array.from(key) as never)).toThrow(TypeError)
  })

  it('assertEd25519PublicKey refuses wrong lengths, off-curve and small-order keys', () => {
    expect(() => assertEd25519PublicKey(key)).not.toThrow()
    expectDidKeyError(() => assertEd25519PublicKey(new Uint8Array(31)), ['invalidPublicKeyLength'])
    expectDidKeyError(() => assertEd25519PublicKey(Array.from(key) as never), ['invalidPublicKeyLength'])
    const identity = new Uint8Array(32)
    identity[0] = 1
    expectDidKeyError(() => assertEd25519PublicKey(identity), ['invalidPublicKey'])
    const y2 = new Uint8Array(32)
    y2[0] = 2
    expectDidKeyError(() => assertEd25519PublicKey(y2), ['invalidPublicKey'])
  })

  it('assertEd25519PublicKey after a verified signature still refuses every small-order encoding (either sign) and a non-canonical y', () => {
    expect(() => assertEd25519PublicKey(key, { signatureVerified: true })).not.toThrow()
    const SMALL = ['0000000000000000000000000000000000000000000000000000000000000000', '0100000000000000000000000000000000000000000000000000000000000000', 'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a']
    for (const hex of SMALL) {
      for (const sign of [0, 0x80]) {
        const y = Buffer.from(hex, 'hex')
        y[31] = y[31]! | sign
        expectDidKeyError(() => assertEd25519PublicKey(new Uint8Array(y), { signatureVerified: true }), ['invalidPublicKey'])
      }
    }
    expectDidKeyError(() => assertEd25519PublicKey(new Uint8Array(Buffer.from('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex')), { signatureVerified: true }), ['invalidPublicKey'])
  })
})

describe('did:key test vectors (w3c-ccg ed25519-x25519.json)', () => {
  const dids = Object.keys(ccg)

  it('has the five upstream keys', () => {
    expect(dids).toHaveLength(5)
    expect(dids).toContain(VALID_DID)
  })

  for (const did of dids) {
    const vector = ccg[did]!
    it(`${did}: the seed derives the key, encodes to the DID and decodes back`, () => {
      const pair = vector.verificationKeyPair
      const expectedKey = pair.publicKeyBase58 !== undefined ? base58.decode(pair.publicKeyBase58) : base64urlDecode(pair.publicKeyJwk!.x)
      const publicKey = publicKeyFromSeed(Buffer.from(vector.seed, 'hex'))
      expect(Buffer.from(publicKey).equals(Buffer.from(expectedKey))).toBe(true)
      expect(encodeDidKey(publicKey)).toBe(did)

      const decoded = decodeDidKey(did, { primeOrderOnly: true })
      expect(Buffer.from(decoded.publicKey).equals(Buffer.from(expectedKey))).toBe(true)
      expect(decoded.keyId).toBe(vector.didDocument.verificationMethod[0]!.id)
      expect(decodeDidKeyUrl(decoded.keyId).did).toBe(did)

      expect(didFromPublicJwk(publicJwkFromDid(did))).toBe(did)
    })

    it(`${did}: its X25519 key-agreement key never decodes as a signer`, () => {
      const fragment = vector.keyAgreementKeyPair.id.split('#')[1]!
      expect(fragment.startsWith('z6LS')).toBe(true)
      expectDidKeyError(() => decodeDidKey(`did:key:${fragment}`), ['unsupportedPublicKeyType'])
      expectDidKeyError(() => decodeDidKeyUrl(`${did}#${fragment}`), ['invalidDidUrl'])
    })
  }
})

describe('did:key properties', () => {
  it('round-trips keys derived by node:crypto from random seeds', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (seed) => {
        const publicKey = publicKeyFromSeed(seed)
        const did = encodeDidKey(publicKey)
        expect(did.startsWith('did:key:z6Mk')).toBe(true)
        const decoded = decodeDidKey(did, { primeOrderOnly: true })
        expect(Buffer.from(decoded.publicKey).equals(Buffer.from(publicKey))).toBe(true)
        expect(decodeDidKeyUrl(decoded.keyId).did).toBe(did)
      }),
      { numRuns: 200 },
    )
  })

  it('round-trips keys from generateKeyPairSync', () => {
    fc.assert(
      fc.property(fc.constant(null), () => {
        const { publicKey } = generateKeyPairSync('ed25519')
        const raw = base64urlDecode((publicKey.export({ format: 'jwk' }) as { x: string }).x)
        expect(Buffer.from(decodeDidKey(encodeDidKey(raw)).publicKey).equals(raw)).toBe(true)
      }),
      { numRuns: 100 },
    )
  })

  it('random 32 bytes: decodes to the same bytes or is refused as invalidPublicKey, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        const did = encodeDidKey(bytes)
        try {
          expect(Buffer.from(decodeDidKey(did).publicKey).equals(Buffer.from(bytes))).toBe(true)
        } catch (error) {
          expect(error).toBeInstanceOf(VerificationError)
          expect((error as VerificationError).details.didKeyError).toBe('invalidPublicKey')
        }
      }),
      { numRuns: 300 },
    )
  })

  it('arbitrary strings are refused with a VerificationError only', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string().map((s) => `did:key:z${s}`), fc.string().map((s) => `${VALID_DID}${s}`)), (input) => {
        for (const decode of [decodeDidKey, decodeDidKeyUrl]) {
          try {
            const key = decode(input)
            // Only the canonical DID (or its own key id) decodes.
            expect([VALID_DID, `${VALID_DID}#${VALID_DID.slice(8)}`]).toContain(input)
            expect(key.did).toBe(VALID_DID)
          } catch (error) {
            expect(error).toBeInstanceOf(VerificationError)
          }
        }
      }),
      { numRuns: 500 },
    )
  })
})

describe('did:key base58btc decoding (hand-written, faster than @scure/base)', () => {
  it('decodes as @scure/base does: keys of any bytes, a leading zero byte, a wrong length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 30, maxLength: 34 }), fc.nat({ max: 2 }), (key, zeros) => {
        const bytes = new Uint8Array([...new Uint8Array(zeros), 0xed, 0x01, ...key])
        const did = `did:key:z${base58.encode(bytes)}`
        const valid = zeros === 0 && key.length === 32
        expect(isDidKeySyntax(did)).toBe(valid)
        if (valid) expect(Buffer.from(parseDidKeySyntax(did).publicKey)).toEqual(Buffer.from(key))
      }),
      { numRuns: 2000 },
    )
  })

  it('isDidKeySyntax (decoded without allocating) agrees with parseDidKeySyntax on any bytes and any text', () => {
    const agrees = (did: string) => {
      let parsed = true
      try {
        parseDidKeySyntax(did)
      } catch {
        parsed = false
      }
      expect(isDidKeySyntax(did), did).toBe(parsed)
    }
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 40 }), fc.constantFrom([], [0xed], [0xed, 0x01], [0xec, 0x01], [0xed, 0x81, 0x00], [0]), (tail, head) => {
        agrees(`did:key:z${base58.encode(new Uint8Array([...head, ...tail]))}`)
      }),
      { numRuns: 3000 },
    )
    fc.assert(fc.property(fc.string({ maxLength: 140 }), (s) => agrees(`did:key:z${s}`)), { numRuns: 1000 })
    for (const did of ['did:key:z', 'did:key:z1', `did:key:z1${VALID_DID.slice(9)}`, `${VALID_DID}${'1'.repeat(140)}`, `did:key:z${'z'.repeat(119)}`]) agrees(did)
  })

  it('decodeBase58btc decodes 64-byte signatures (any bytes, leading zeros) as @scure/base does, and refuses a foreign character', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 62, maxLength: 66 }), fc.nat({ max: 3 }), (tail, zeros) => {
        const bytes = new Uint8Array([...new Uint8Array(zeros), ...tail])
        expect(Buffer.from(decodeBase58btc(base58.encode(bytes)))).toEqual(Buffer.from(bytes))
      }),
      { numRuns: 2000 },
    )
    expect(() => decodeBase58btc('3J98t1WpEZ73CNmQviecrnyiWrnqRhWNL0')).toThrow(SyntaxError)
    expect(() => decodeBase58btc('3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLé')).toThrow(SyntaxError)
  })

  it('round-trips 2,000 random 32-byte keys (syntax only)', () => {
    for (let i = 0; i < 2000; i++) {
      const raw = new Uint8Array(randomBytes(32))
      const did = `did:key:z${base58.encode(new Uint8Array([0xed, 0x01, ...raw]))}`
      expect(Buffer.from(parseDidKeySyntax(did).publicKey)).toEqual(Buffer.from(raw))
    }
  })
})
