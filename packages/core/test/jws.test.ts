import { createHmac, createSecretKey, generateKeyPairSync, verify as cryptoVerify } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  base64urlDecode,
  base64urlEncode,
  decodeCompactJws,
  decodeCompactJwsSegments,
  decodeDidKey,
  decodeJwt,
  DEFAULT_MAX_TOKEN_BYTES,
  encodeDidKey,
  generateEd25519KeyPair,
  jwkThumbprint,
  parsePrivateJwk,
  parsePublicJwk,
  privateKeyFromJwk,
  publicKeyFromJwk,
  publicKeyFromRaw,
  rawPublicKey,
  signCompactJws,
  signerFromJwk,
  signerFromKeyObject,
  signJwt,
  verifyCompactJws,
  verifyJwsSignature,
  VerificationError,
  AgentIdError,
} from '@agentid/core'
import { readVector, rejected, thrown } from './helpers.js'

const rfc = readVector<any>('jose/rfc8037-ed25519-jws.json')
const wycheproof = readVector<any>('ed25519/wycheproof/ed25519_test.json')
const speccheck = readVector<any>('ed25519/speccheck/cases.annotated.json')
const jwc = readVector<any>('jose/wycheproof/json_web_crypto_test.json')

const alice = generateEd25519KeyPair()
const mallory = generateEd25519KeyPair()
const aliceSigner = signerFromJwk(alice.privateJwk)

function expectCode(fn: () => unknown, code: string | readonly string[]): any {
  const error = thrown(fn)
  expect(error).toBeInstanceOf(VerificationError)
  expect(typeof code === 'string' ? [code] : code).toContain(error.code)
  return error
}

function expectInvalidInput(fn: () => unknown): void {
  const error = thrown(fn)
  expect(error).toBeInstanceOf(AgentIdError)
  expect(error).not.toBeInstanceOf(VerificationError)
  expect(error.code).toBe('ERR_INVALID_INPUT')
}

const b64 = (text: string) => base64urlEncode(text)

/** A token from raw header text, payload text and signature bytes (no encoding checks). */
function token(headerJson: string, payload: string, signature: Uint8Array | string): string {
  return `${b64(headerJson)}.${b64(payload)}.${typeof signature === 'string' ? signature : base64urlEncode(signature)}`
}

/** Signs an arbitrary header text (signCompactJws only produces alg EdDSA) with alice's key. */
async function signRawHeader(headerJson: string, payload: string): Promise<string> {
  const signingInput = `${b64(headerJson)}.${b64(payload)}`
  const signature = await aliceSigner.sign(new TextEncoder().encode(signingInput))
  return `${signingInput}.${base64urlEncode(signature)}`
}

describe('RFC 8037 Appendix A (rfc8037-ed25519-jws.json)', () => {
  const a4 = rfc['A.4_sign']

  it('A.1 signs "Example of Ed25519 signing" to the RFC compact JWS, byte for byte', async () => {
    const signer = signerFromJwk(rfc['A.1_private_jwk'])
    const compact = await signCompactJws({ alg: 'EdDSA' }, a4.payload_text, signer)
    expect(compact).toBe(a4.compact)
    expect(compact.split('.')[2]).toBe(a4.signature_b64)
    expect(signer.did).toBe(encodeDidKey(base64urlDecode(rfc['A.2_public_jwk'].x)))
    expect(signer.keyId).toBe(`${signer.did}#${signer.did.slice('did:key:'.length)}`)
    expect(signer.alg).toBe('EdDSA')
  })

  it('byte payloads sign the same as text payloads', async () => {
    const signer = signerFromJwk(rfc['A.1_private_jwk'])
    expect(await signCompactJws({ alg: 'EdDSA' }, new TextEncoder().encode(a4.payload_text), signer)).toBe(a4.compact)
  })

  it('A.4 verifies with the A.2 public JWK (A.5)', () => {
    const jws = verifyCompactJws(a4.compact, publicKeyFromJwk(rfc['A.2_public_jwk']))
    expect(jws.header).toEqual({ alg: 'EdDSA' })
    expect(jws.payload.toString('utf8')).toBe(a4.payload_text)
    expect(jws.signingInput).toBe(a4.signing_input)
    expect(base64urlEncode(jws.signature)).toBe(a4.signature_b64)
  })

  it('A.3: jwkThumbprint reproduces the RFC 7638 thumbprint, ignoring non-required members', () => {
    expect(jwkThumbprint(rfc['A.2_public_jwk'])).toBe(rfc['A.3_thumbprint'].sha256_b64url)
    expect(jwkThumbprint({ ...rfc['A.2_public_jwk'], kid: 'some-kid' })).toBe(rfc['A.3_thumbprint'].sha256_b64url)
    // The thumbprint of the private JWK is that of its public part (d is not a required member).
    expect(jwkThumbprint(rfc['A.1_private_jwk'])).toBe(rfc['A.3_thumbprint'].sha256_b64url)
  })

  it('jwkThumbprint refuses a non-Ed25519 or malformed JWK', () => {
    expectInvalidInput(() => jwkThumbprint({ ...rfc['A.2_public_jwk'], crv: 'X25519' }))
    expectInvalidInput(() => jwkThumbprint({ ...rfc['A.2_public_jwk'], x: `${rfc['A.2_public_jwk'].x}=` }))
    expectInvalidInput(() => jwkThumbprint({ ...rfc['A.2_public_jwk'], x: '"}],"evil":"' }))
  })

  it('the A.1 key is the public key of the DID it names', () => {
    const did = encodeDidKey(base64urlDecode(rfc['A.2_public_jwk'].x))
    expect(base64urlEncode(decodeDidKey(did).publicKey)).toBe(rfc['A.2_public_jwk'].x)
    expect(base64urlEncode(rawPublicKey(publicKeyFromJwk(rfc['A.2_public_jwk'])))).toBe(rfc['A.2_public_jwk'].x)
  })

  describe('derived negatives', () => {
    const byId = Object.fromEntries(rfc.derived_negative_cases.map((c: { id: string }) => [c.id, c]))
    const publicKey = publicKeyFromJwk(rfc['A.2_public_jwk'])

    it('covers every derived case', () => {
      expect(Object.keys(byId).sort()).toEqual(['alg-ed25519-fully-specified', 'alg-none', 'jwk-with-d-as-public', 'payload-changed', 'sig-bitflip', 'wrong-crv'])
    })

    it('sig-bitflip: every one of the 512 single-bit flips is ERR_SIGNATURE_INVALID', () => {
      const signature = base64urlDecode(a4.signature_b64)
      for (let bit = 0; bit < 512; bit++) {
        const flipped = Buffer.from(signature)
        flipped[bit >> 3] ^= 1 << (bit & 7)
        expectCode(() => verifyCompactJws(`${a4.signing_input}.${base64urlEncode(flipped)}`, publicKey), 'ERR_SIGNATURE_INVALID')
      }
    })

    it('payload-changed: ERR_SIGNATURE_INVALID', () => {
      const changed = `${a4.protected_header_b64}.${b64('Example of Ed25519 signinG')}.${a4.signature_b64}`
      expectCode(() => verifyCompactJws(changed, publicKey), 'ERR_SIGNATURE_INVALID')
    })

    it('alg-none: ERR_UNSUPPORTED_ALG, before any signature work', () => {
      const error = expectCode(() => decodeCompactJws(byId['alg-none'].compact), 'ERR_UNSUPPORTED_ALG')
      expect(error.details.alg).toBe('none')
      expectCode(() => verifyCompactJws(byId['alg-none'].compact, publicKey), 'ERR_UNSUPPORTED_ALG')
    })

    it('alg-ed25519-fully-specified: policy is EdDSA only, so ERR_UNSUPPORTED_ALG even when correctly signed', async () => {
      expectCode(() => verifyCompactJws(`${b64('{"alg":"Ed25519"}')}.${a4.payload_b64}.${a4.signature_b64}`, publicKey), 'ERR_UNSUPPORTED_ALG')
      const resigned = await signRawHeader('{"alg":"Ed25519"}', a4.payload_text)
      expectCode(() => verifyCompactJws(resigned, alice.publicKey), 'ERR_UNSUPPORTED_ALG')
      await expect(signCompactJws({ alg: 'Ed25519' }, 'x', aliceSigner)).rejects.toThrow(TypeError)
    })

    it('wrong-crv: parsePublicJwk refuses crv X25519 with ERR_INVALID_INPUT', () => {
      expectInvalidInput(() => parsePublicJwk({ ...rfc['A.2_public_jwk'], crv: 'X25519' }))
      expectInvalidInput(() => publicKeyFromJwk({ ...rfc['A.2_public_jwk'], crv: 'X25519' }))
      expectInvalidInput(() => parsePrivateJwk({ ...rfc['A.1_private_jwk'], crv: 'X25519' }))
    })

    it('jwk-with-d-as-public: parsePublicJwk refuses a JWK with d', () => {
      expectInvalidInput(() => parsePublicJwk(rfc['A.1_private_jwk']))
      expectInvalidInput(() => publicKeyFromJwk(rfc['A.1_private_jwk']))
      // Even an undefined d is a private member by name.
      expectInvalidInput(() => parsePublicJwk({ ...rfc['A.2_public_jwk'], d: undefined }))
    })
  })
})

describe('JWK parsing', () => {
  const pub = rfc['A.2_public_jwk']
  const priv = rfc['A.1_private_jwk']

  it.each([
    ['null', null],
    ['an array', [pub]],
    ['a string', JSON.stringify(pub)],
    ['kty EC', { ...pub, kty: 'EC' }],
    ['kty oct', { kty: 'oct', k: pub.x }],
    ['crv ed25519 (case)', { ...pub, crv: 'ed25519' }],
    ['crv Ed448', { ...pub, crv: 'Ed448' }],
    ['a missing x', { kty: 'OKP', crv: 'Ed25519' }],
    ['x of 31 bytes', { ...pub, x: base64urlEncode(new Uint8Array(31)) }],
    ['x of 33 bytes', { ...pub, x: base64urlEncode(new Uint8Array(33)) }],
    ['x padded', { ...pub, x: `${pub.x}=` }],
    ['x in standard base64', { ...pub, x: Buffer.from(base64urlDecode(pub.x)).toString('base64') }],
    ['x as bytes', { ...pub, x: base64urlDecode(pub.x) }],
  ])('parsePublicJwk refuses %s', (_name, jwk) => {
    expectInvalidInput(() => parsePublicJwk(jwk))
  })

  it('parsePublicJwk returns only kty, crv and x', () => {
    expect(parsePublicJwk({ ...pub, kid: 'k', use: 'sig', alg: 'EdDSA' })).toEqual(pub)
  })

  it.each([
    ['no d', pub],
    ['d of another key', { ...priv, d: alice.privateJwk.d }],
    ['x of another key', { ...priv, x: alice.publicJwk.x }],
    ['d of 31 bytes', { ...priv, d: base64urlEncode(new Uint8Array(31)) }],
    ['d with non-canonical trailing bits', { ...priv, d: priv.d.slice(0, -1) + 'B' }],
  ])('parsePrivateJwk / signerFromJwk / privateKeyFromJwk refuse %s', (_name, jwk) => {
    expectInvalidInput(() => parsePrivateJwk(jwk))
    expectInvalidInput(() => signerFromJwk(jwk))
    expectInvalidInput(() => privateKeyFromJwk(jwk))
  })

  it('signerFromKeyObject refuses public and non-Ed25519 keys (TypeError)', () => {
    expect(() => signerFromKeyObject(alice.publicKey, alice.did, alice.keyId)).toThrow(TypeError)
    const { privateKey } = generateKeyPairSync('x25519')
    expect(() => signerFromKeyObject(privateKey, alice.did, alice.keyId)).toThrow(TypeError)
  })

  it('publicKeyFromRaw refuses anything but 32 bytes (TypeError)', () => {
    expect(() => publicKeyFromRaw(new Uint8Array(31))).toThrow(TypeError)
    expect(() => publicKeyFromRaw(new Uint8Array(33))).toThrow(TypeError)
  })
})

describe('Wycheproof EdDSA verify (ed25519_test.json)', () => {
  const tests = wycheproof.testGroups.flatMap((group: any) => group.tests.map((test: any) => ({ pk: group.publicKey.pk as string, jwk: group.publicKeyJwk, ...test })))
  const header = b64('{"alg":"EdDSA"}')

  it('has all 151 tests and no "acceptable" results', () => {
    expect(tests).toHaveLength(wycheproof.numberOfTests)
    expect(tests.filter((t: any) => t.result === 'acceptable')).toHaveLength(0)
  })

  for (const t of tests) {
    it(`tcId ${t.tcId} (${t.result}; ${t.flags.join(', ') || 'no flags'}): ${t.comment}`, () => {
      const msg = Buffer.from(t.msg, 'hex')
      const sig = Buffer.from(t.sig, 'hex')
      const key = publicKeyFromRaw(Buffer.from(t.pk, 'hex'))
      const valid = t.result === 'valid'

      // Raw node:crypto, the primitive our stack verifies with.
      expect(cryptoVerify(null, msg, key, sig)).toBe(valid)
      // The group's JWK goes through our parser to the same key.
      expect(base64urlEncode(rawPublicKey(publicKeyFromJwk(t.jwk)))).toBe(base64urlEncode(Buffer.from(t.pk, 'hex')))

      // Through verifyJwsSignature, whose signing input is ASCII text.
      if (msg.every((byte) => byte < 0x80)) {
        const check = () => verifyJwsSignature({ signingInput: msg.toString('latin1'), signature: sig }, key)
        // The same key as a JWK (imported for the one check, no KeyObject): the same verdict.
        const checkJwk = () => verifyJwsSignature({ signingInput: msg.toString('latin1'), signature: sig }, { kty: 'OKP', crv: 'Ed25519', x: base64urlEncode(Buffer.from(t.pk, 'hex')) })
        if (valid) {
          expect(check).not.toThrow()
          expect(checkJwk).not.toThrow()
        } else {
          expectCode(check, 'ERR_SIGNATURE_INVALID')
          expectCode(checkJwk, 'ERR_SIGNATURE_INVALID')
        }
      }

      // As a token: a signature that is not 64 bytes never gets past decoding.
      const jwsToken = `${header}.${base64urlEncode(msg)}.${base64urlEncode(sig)}`
      if (sig.length !== 64) {
        expect(valid).toBe(false)
        expectCode(() => decodeCompactJws(jwsToken), 'ERR_SIGNATURE_INVALID')
      } else {
        expect(decodeCompactJws(jwsToken).signature.equals(sig)).toBe(true)
        // The token's signing input is not the signed message, so it must never verify.
        expectCode(() => verifyCompactJws(jwsToken, key), 'ERR_SIGNATURE_INVALID')
      }
    })
  }

  it('exercises verifyJwsSignature on both valid and invalid ASCII messages', () => {
    const ascii = tests.filter((t: any) => Buffer.from(t.msg, 'hex').every((byte) => byte < 0x80))
    expect(ascii.filter((t: any) => t.result === 'valid').length).toBeGreaterThan(10)
    expect(ascii.filter((t: any) => t.result === 'invalid').length).toBeGreaterThan(10)
  })
})

describe('ed25519-speccheck (cases.annotated.json): what our stack does', () => {
  // Observed on Node 20 (OpenSSL 3): cofactorless verification that rejects S >= L and
  // non-canonical R, but accepts small-order A and R and reduces a non-canonical A (case 11).
  //   case:                        0  1  2  3  4  5  6  7  8  9  10 11
  //   recommended_strict_result:   X  X  X  V  X  X  X  X  X  X  X  X   (libsodium, dalek verify_strict)
  //   libsodium:                   X  X  X  V  X  X  X  X  X  X  X  X
  //   node:crypto verify:          V  V  V  V  X  X  X  X  X  X  X  V   (differs on 0, 1, 2, 11)
  //   + did:key gate (default):    X  X  V  V  X  X  X  X  X  X  X  X   (small/non-canonical A refused: 0, 1, 10, 11)
  //   + did:key primeOrderOnly:    X  X  X  X  X  X  X  X  X  X  X  X   (every A in 0-5, 8-11 has a torsion part)
  // So through a did:key, only case 2 (small-order R, mixed-order A) is accepted where the strict
  // policy says invalid: a signer can only produce it with its own key, it forges nothing for others.
  const NODE = [true, true, true, true, false, false, false, false, false, false, false, true]
  const DID_KEY_DEFAULT = [false, false, true, true, false, false, false, false, false, false, false, false]
  const DID_KEY_PRIME_ORDER = NODE.map(() => false)

  it('has the 12 upstream cases', () => {
    expect(speccheck.cases.map((c: any) => c.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
  })

  function stack(c: any, options: { primeOrderOnly?: boolean } | null): boolean {
    const raw = Buffer.from(c.pub_key, 'hex')
    let key = raw as Uint8Array
    if (options) {
      try {
        key = decodeDidKey(encodeDidKey(raw), options).publicKey
      } catch (error) {
        expect(error).toBeInstanceOf(VerificationError)
        expect((error as VerificationError).details.didKeyError).toBe('invalidPublicKey')
        return false
      }
    }
    return cryptoVerify(null, Buffer.from(c.message, 'hex'), publicKeyFromRaw(key), Buffer.from(c.signature, 'hex'))
  }

  it('node:crypto verify, cofactorless: exactly the observed table', () => {
    expect(speccheck.cases.map((c: any) => stack(c, null))).toEqual(NODE)
  })

  it('did:key decode then node:crypto verify (default policy): exactly the observed table', () => {
    expect(speccheck.cases.map((c: any) => stack(c, {}))).toEqual(DID_KEY_DEFAULT)
  })

  it('did:key decode with primeOrderOnly then verify: refuses all, including the strict-valid case 3', () => {
    expect(speccheck.cases.map((c: any) => stack(c, { primeOrderOnly: true }))).toEqual(DID_KEY_PRIME_ORDER)
  })

  it('the table agrees with the recommendation everywhere except the cases named above', () => {
    const strict = speccheck.cases.map((c: any) => c.recommended_strict_result === 'valid')
    const libsodium = speccheck.cases.map((c: any) => c.libsodium_result === 'V')
    expect(strict).toEqual(libsodium)
    const differs = (a: boolean[]) => a.flatMap((v, i) => (v === strict[i] ? [] : [i]))
    expect(differs(NODE)).toEqual([0, 1, 2, 11])
    expect(differs(DID_KEY_DEFAULT)).toEqual([2])
    expect(differs(DID_KEY_PRIME_ORDER)).toEqual([3])
  })
})

describe('hostile compact JWS inputs', () => {
  const claims = { iss: alice.did, sub: 'agent-1' }
  let good = ''
  const ready = signJwt({ typ: 'JWT' }, claims, aliceSigner).then((t) => (good = t))
  const parts = async () => {
    await ready
    return good.split('.') as [string, string, string]
  }

  it('a good token round-trips through decodeJwt and verifyCompactJws', async () => {
    const [h] = await parts()
    const jwt = decodeJwt(good)
    expect(jwt.header).toEqual({ alg: 'EdDSA', typ: 'JWT', kid: alice.keyId })
    expect(jwt.payload).toEqual(claims)
    expect(verifyCompactJws(good, alice.publicKey).payload.toString()).toBe(JSON.stringify(claims))
    expect(h).toBe(b64(JSON.stringify({ alg: 'EdDSA', typ: 'JWT', kid: alice.keyId })))
  })

  it('a header seen before is not decoded again: one frozen object, checks unchanged for any other text', async () => {
    const [h, p, sig] = await parts()
    const other = await signJwt({ typ: 'JWT' }, { iss: alice.did, sub: 'agent-2' }, aliceSigner)
    const first = decodeJwt(good).header
    expect(decodeJwt(other).header).toBe(first)
    expect(Object.isFrozen(first)).toBe(true)
    expect(() => ((first as Record<string, unknown>).alg = 'none')).toThrow(TypeError)
    expect(decodeJwt(good).header.alg).toBe('EdDSA')
    // A header differing in one byte of its text is decoded and checked on its own.
    const padded = b64(JSON.stringify({ alg: 'EdDSA', typ: 'JWT', kid: alice.keyId, crit: ['b64'] }))
    expectCode(() => decodeCompactJws(`${padded}.${p}.${sig}`), 'ERR_MALFORMED')
    const hs = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: alice.keyId }))
    expectCode(() => decodeCompactJws(`${hs}.${p}.${sig}`), 'ERR_UNSUPPORTED_ALG')
    expectCode(() => decodeCompactJws(`${hs}.${p}.${sig}`), 'ERR_UNSUPPORTED_ALG')
    expect(h).not.toBe(hs)
    // Many distinct headers: the map stays bounded and every one is still decoded right.
    for (let i = 0; i < 200; i++) {
      const header = { alg: 'EdDSA', typ: 'JWT', kid: `${alice.keyId}-${i}` }
      expect(decodeCompactJws(`${b64(JSON.stringify(header))}.${p}.${sig}`).header).toEqual(header)
    }
  })

  it('tokens of very different sizes, in any order, decode and verify alike (one scratch buffer is reused)', async () => {
    const tokens: Array<[string, Record<string, unknown>]> = []
    for (const size of [10, 12_000, 3, 24_000, 100, 0]) {
      const claims = { iss: alice.did, pad: 'é'.repeat(size) }
      tokens.push([await signJwt({ typ: 'JWT' }, claims, aliceSigner), claims])
    }
    for (const [token, claims] of [...tokens, ...tokens.reverse()]) {
      const jwt = decodeJwt(token)
      expect(jwt.payload).toEqual(claims)
      verifyJwsSignature(jwt, alice.publicKey)
      expectCode(() => verifyJwsSignature(jwt, mallory.publicKey), 'ERR_SIGNATURE_INVALID')
      // Another token's bytes left in the buffer never count: a token whose payload was swapped fails.
      const [h, , sig] = token.split('.')
      const other = tokens.find(([t]) => t !== token)![0].split('.')[1]
      expectCode(() => verifyJwsSignature(decodeJwt(`${h}.${other}.${sig}`), alice.publicKey), 'ERR_SIGNATURE_INVALID')
    }
  })

  it("another key's signature is ERR_SIGNATURE_INVALID", async () => {
    await ready
    expectCode(() => verifyCompactJws(good, mallory.publicKey), 'ERR_SIGNATURE_INVALID')
  })

  it('alg none with the signature stripped is ERR_UNSUPPORTED_ALG; with two segments ERR_MALFORMED', async () => {
    const [, p] = await parts()
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      const t = `${b64(JSON.stringify({ alg }))}.${p}.`
      expectCode(() => decodeCompactJws(t), 'ERR_UNSUPPORTED_ALG')
      expectCode(() => decodeJwt(t), 'ERR_UNSUPPORTED_ALG')
      expectCode(() => verifyCompactJws(t, alice.publicKey), 'ERR_UNSUPPORTED_ALG')
      expectCode(() => verifyCompactJws(`${b64(JSON.stringify({ alg }))}.${p}`, alice.publicKey), 'ERR_MALFORMED')
    }
  })

  it('HS256 keyed with the Ed25519 public key bytes is ERR_UNSUPPORTED_ALG and never verifies', async () => {
    const [, p] = await parts()
    const raw = rawPublicKey(alice.publicKey)
    for (const [alg, hash] of [['HS256', 'sha256'], ['HS512', 'sha512']] as const) {
      const signingInput = `${b64(JSON.stringify({ alg, kid: alice.keyId }))}.${p}`
      const t = `${signingInput}.${createHmac(hash, raw).update(signingInput).digest('base64url')}`
      const error = expectCode(() => decodeCompactJws(t), 'ERR_UNSUPPORTED_ALG')
      expect(error.details.alg).toBe(alg)
      expectCode(() => verifyCompactJws(t, alice.publicKey), 'ERR_UNSUPPORTED_ALG')
    }
    // Same trick under an EdDSA header: HMAC-SHA512 has the right length but is no signature.
    const signingInput = `${b64('{"alg":"EdDSA"}')}.${p}`
    const t = `${signingInput}.${createHmac('sha512', raw).update(signingInput).digest('base64url')}`
    expect(decodeCompactJws(t).signature).toHaveLength(64)
    expectCode(() => verifyCompactJws(t, alice.publicKey), 'ERR_SIGNATURE_INVALID')
    // And the key type comes from the key object, never from the token: a secret key is API misuse.
    expect(() => verifyCompactJws(good, createSecretKey(raw))).toThrow(TypeError)
    expect(() => verifyCompactJws(good, generateKeyPairSync('x25519').publicKey)).toThrow(TypeError)
  })

  it.each([
    ['missing', '{}', null],
    ['empty', '{"alg":""}', ''],
    ['lower case', '{"alg":"eddsa"}', 'eddsa'],
    ['trailing space', '{"alg":"EdDSA "}', 'EdDSA '],
    ['NUL suffix', '{"alg":"EdDSA\\u0000"}', 'EdDSA\u0000'],
    ['ES256', '{"alg":"ES256"}', 'ES256'],
    ['RS256', '{"alg":"RS256"}', 'RS256'],
    ['ES256K', '{"alg":"ES256K"}', 'ES256K'],
    ['a number', '{"alg":1}', null],
    ['null', '{"alg":null}', null],
    ['an array', '{"alg":["EdDSA"]}', null],
    ['an object', '{"alg":{"EdDSA":true}}', null],
  ])('alg %s is ERR_UNSUPPORTED_ALG', async (_name, headerJson, alg) => {
    const t = await signRawHeader(headerJson, '{}')
    const error = expectCode(() => decodeCompactJws(t), 'ERR_UNSUPPORTED_ALG')
    expect(error.details.alg).toBe(alg)
  })

  it('a tampered payload is ERR_SIGNATURE_INVALID', async () => {
    const [h, , s] = await parts()
    const tampered = `${h}.${b64(JSON.stringify({ ...claims, sub: 'agent-2' }))}.${s}`
    expect(decodeJwt(tampered).payload.sub).toBe('agent-2')
    expectCode(() => verifyCompactJws(tampered, alice.publicKey), 'ERR_SIGNATURE_INVALID')
  })

  it('a tampered header is ERR_SIGNATURE_INVALID', async () => {
    const [, p, s] = await parts()
    const tampered = `${b64(JSON.stringify({ alg: 'EdDSA', typ: 'JWT', kid: mallory.keyId }))}.${p}.${s}`
    expectCode(() => verifyCompactJws(tampered, alice.publicKey), 'ERR_SIGNATURE_INVALID')
  })

  it('a malleated signature (S + L) is ERR_SIGNATURE_INVALID', async () => {
    const [h, p, s] = await parts()
    const sig = base64urlDecode(s)
    const L = 2n ** 252n + 27742317777372353535851937790883648493n
    let S = 0n
    for (let i = 31; i >= 0; i--) S = (S << 8n) | BigInt(sig[32 + i]!)
    let T = S + L
    const malleated = Buffer.from(sig)
    for (let i = 0; i < 32; i++) {
      malleated[32 + i] = Number(T & 0xffn)
      T >>= 8n
    }
    expectCode(() => verifyCompactJws(`${h}.${p}.${base64urlEncode(malleated)}`, alice.publicKey), 'ERR_SIGNATURE_INVALID')
  })

  it('a stripped signature: two segments ERR_MALFORMED, an empty third segment ERR_SIGNATURE_INVALID', async () => {
    const [h, p] = await parts()
    expectCode(() => verifyCompactJws(`${h}.${p}`, alice.publicKey), 'ERR_MALFORMED')
    expectCode(() => verifyCompactJws(`${h}.${p}.`, alice.publicKey), 'ERR_SIGNATURE_INVALID')
    expectCode(() => decodeCompactJws(`${h}.${p}.AA`), 'ERR_SIGNATURE_INVALID')
  })

  it.each([
    ['one segment', (h: string, p: string, s: string) => `${h}${p}${s}`],
    ['four segments', (h: string, p: string, s: string) => `${h}.${p}.${s}.${s}`],
    ['a trailing dot', (h: string, p: string, s: string) => `${h}.${p}.${s}.`],
    ['five segments (JWE shape)', (h: string, p: string, s: string) => `${h}.${p}.${p}.${p}.${s}`],
    ['an empty header', (_h: string, p: string, s: string) => `.${p}.${s}`],
    ['a leading dot', (h: string, p: string, s: string) => `.${h}.${p}.${s}`],
    ['an empty string', () => ''],
    ['dots only', () => '..'],
  ])('%s is ERR_MALFORMED', async (_name, build) => {
    const [h, p, s] = await parts()
    expectCode(() => decodeCompactJws(build(h, p, s)), 'ERR_MALFORMED')
  })

  it('padding "=" in any segment is ERR_MALFORMED', async () => {
    const [h, p, s] = await parts()
    const padded = (segment: string) => segment + '='.repeat((4 - (segment.length % 4)) % 4 || 4)
    expectCode(() => decodeCompactJws(`${padded(h)}.${p}.${s}`), 'ERR_MALFORMED')
    expectCode(() => decodeCompactJws(`${h}.${padded(p)}.${s}`), 'ERR_MALFORMED')
    expectCode(() => decodeCompactJws(`${h}.${p}.${padded(s)}`), 'ERR_MALFORMED')
    expectCode(() => decodeCompactJws(`${h}.${p}.${s}==`), 'ERR_MALFORMED')
  })

  it.each(['+', '/', ' ', '\n', '\t', '%', '\u00e9', '\u0410', '\uff21', '\u0000', '*'])('the character %j in any segment is ERR_MALFORMED', async (ch) => {
    const [h, p, s] = await parts()
    const inject = (segment: string) => segment.slice(0, 4) + ch + segment.slice(5)
    expectCode(() => decodeCompactJws(`${inject(h)}.${p}.${s}`), 'ERR_MALFORMED')
    expectCode(() => decodeCompactJws(`${h}.${inject(p)}.${s}`), 'ERR_MALFORMED')
    expectCode(() => decodeCompactJws(`${h}.${p}.${inject(s)}`), 'ERR_MALFORMED')
  })

  it('base64 (not base64url) of the same bytes is ERR_MALFORMED', () => {
    // 0xfb 0xff encodes to "-_8" in base64url and "+/8" in base64.
    const header = `${b64('{"alg":"EdDSA"}')}`
    const sig = Buffer.alloc(64, 0xff)
    expectCode(() => decodeCompactJws(`${header}.${Buffer.from([0xfb, 0xff]).toString('base64')}.${base64urlEncode(sig)}`), 'ERR_MALFORMED')
    expectCode(() => decodeCompactJws(`${header}.AA.${sig.toString('base64').replace(/=+$/, '')}`), 'ERR_MALFORMED')
  })

  it('non-canonical trailing bits in any segment are ERR_MALFORMED', async () => {
    const [h, p, s] = await parts()
    // Re-encode the last character with a set low bit: decodes to the same bytes under Node's lax decoder.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const noncanonical = (segment: string) => {
      expect(segment.length % 4).not.toBe(0)
      const last = alphabet.indexOf(segment.at(-1)!)
      const changed = segment.slice(0, -1) + alphabet[last | 1]
      expect(changed).not.toBe(segment)
      expect(Buffer.from(changed, 'base64url').equals(Buffer.from(segment, 'base64url'))).toBe(true)
      return changed
    }
    expectCode(() => decodeCompactJws(`${h}.${p}.${noncanonical(s)}`), 'ERR_MALFORMED')
    const header2 = b64('{"alg":"EdDSA","x":12}') // 22 bytes: 30 characters
    expectCode(() => decodeCompactJws(`${noncanonical(header2)}.${p}.${s}`), 'ERR_MALFORMED')
    const payload2 = b64('{"a":1}')
    expectCode(() => decodeCompactJws(`${h}.${noncanonical(payload2)}.${s}`), 'ERR_MALFORMED')
    // A segment of length 1 mod 4 is never valid base64url.
    expectCode(() => decodeCompactJws(`${h}.${p}.${s}AAA`), 'ERR_MALFORMED')
  })

  it.each([
    ['not JSON', 'alg: EdDSA'],
    ['a truncated object', '{"alg":"EdDSA"'],
    ['a JSON array', '["EdDSA"]'],
    ['a JSON string', '"EdDSA"'],
    ['JSON null', 'null'],
    ['a number', '1'],
    ['a BOM before the object', '\ufeff{"alg":"EdDSA"}'],
    ['trailing garbage', '{"alg":"EdDSA"}x'],
    ['two objects', '{"alg":"EdDSA"}{"alg":"none"}'],
    ['a single-quoted object', "{'alg':'EdDSA'}"],
    ['a trailing comma', '{"alg":"EdDSA",}'],
    ['a comment', '{"alg":"EdDSA"/**/}'],
    ['a duplicate alg, last wins in JSON.parse', '{"alg":"none","alg":"EdDSA"}'],
    ['a duplicate alg, first wins elsewhere', '{"alg":"EdDSA","alg":"none"}'],
    ['an escaped duplicate alg', '{"alg":"EdDSA","\\u0061lg":"none"}'],
    ['a fully escaped duplicate', '{"\\u0061\\u006c\\u0067":"none","alg":"EdDSA"}'],
    ['a duplicate kid', '{"alg":"EdDSA","kid":"a","kid":"b"}'],
    ['a crit member', '{"alg":"EdDSA","crit":["exp"],"exp":1}'],
    ['an empty crit', '{"alg":"EdDSA","crit":[]}'],
    ['b64 false', '{"alg":"EdDSA","b64":false,"crit":["b64"]}'],
    ['b64 false without crit', '{"alg":"EdDSA","b64":false}'],
    ['b64 true', '{"alg":"EdDSA","b64":true}'],
    ['kid a number', '{"alg":"EdDSA","kid":1}'],
    ['kid null', '{"alg":"EdDSA","kid":null}'],
    ['typ an array', '{"alg":"EdDSA","typ":["JWT"]}'],
    ['nesting deeper than 4', '{"alg":"EdDSA","x":{"a":{"b":{"c":{}}}}}'],
  ])('a header that is %s is ERR_MALFORMED', async (_name, headerJson) => {
    const t = await signRawHeader(headerJson, '{}')
    expectCode(() => decodeCompactJws(t), 'ERR_MALFORMED')
    expectCode(() => verifyCompactJws(t, alice.publicKey), 'ERR_MALFORMED')
  })

  it('header nesting of exactly 4 is accepted; a __proto__ member does not smuggle alg or crit', async () => {
    expect(decodeCompactJws(await signRawHeader('{"alg":"EdDSA","x":{"a":{"b":{}}}}', '{}')).header.x).toEqual({ a: { b: {} } })
    const proto = await signRawHeader('{"__proto__":{"alg":"EdDSA"}}', '{}')
    expectCode(() => decodeCompactJws(proto), 'ERR_UNSUPPORTED_ALG')
    const protoCrit = decodeCompactJws(await signRawHeader('{"alg":"EdDSA","__proto__":{"crit":["x"]}}', '{}'))
    expect(Object.getPrototypeOf(protoCrit.header)).toBe(Object.prototype)
  })

  it.each([
    ['a duplicate claim', '{"sub":"alice","sub":"mallory"}'],
    ['an escaped duplicate', '{"a":1,"\\u0061":2}'],
    ['an escaped duplicate, escape first', '{"\\u0061":1,"a":2}'],
    ['a duplicate with an escaped quote', '{"a\\"b":1,"a\\u0022b":2}'],
    ['a duplicate with an escaped solidus', '{"a/b":1,"a\\/b":2}'],
    ['a duplicate after a backslash value', '{"a":"\\\\","a":1}'],
    ['a nested duplicate', '{"vc":{"type":["A"],"type":["B"]}}'],
    ['a duplicate in an object inside an array', '{"list":[1,{"a":1,"a":2}]}'],
    ['a duplicate __proto__', '{"__proto__":1,"__proto__":2}'],
    ['a payload that is an array', '[{"sub":"alice"}]'],
    ['a payload that is a string', '"sub"'],
    ['an empty payload', ''],
    ['a payload that is not JSON', 'sub=alice'],
    ['nesting deeper than 16', `${'{"a":'.repeat(16)}{}${'}'.repeat(16)}`],
    ['arrays nested deeper than 16', `{"a":${'['.repeat(16)}${']'.repeat(16)}}`],
    ['very deep nesting', `${'['.repeat(100_000)}${']'.repeat(100_000)}`],
  ])('decodeJwt refuses %s with ERR_MALFORMED', async (_name, payload) => {
    const t = await signCompactJws({ alg: 'EdDSA' }, payload, aliceSigner)
    expect(verifyCompactJws(t, alice.publicKey, 2 ** 20).payload.toString('utf8')).toBe(payload)
    expectCode(() => decodeJwt(t, 2 ** 20), 'ERR_MALFORMED')
  })

  it.each([
    ['the same name in sibling objects', '{"a":{"b":1},"c":{"b":2}}'],
    ['names that differ only after an escape', '{"a\\"b":1,"a":2}'],
    ['a value that looks like a member', '{"a":"x\\",\\"a\\":1","b":2}'],
    ['braces inside strings', '{"a":"{\\"a\\":1}","b":"}{[,"}'],
    ['the same name as key and value', '{"a":"a","b":["a","a"]}'],
    ['nesting of exactly 16', `${'{"a":'.repeat(15)}{}${'}'.repeat(15)}`],
    ['unicode names that differ', '{"\\u00e9":1,"e\\u0301":2}'],
  ])('decodeJwt accepts %s', async (_name, payload) => {
    const t = await signCompactJws({ alg: 'EdDSA' }, payload, aliceSigner)
    expect(decodeJwt(t).payload).toEqual(JSON.parse(payload))
  })

  it('a 10 MB token is ERR_MALFORMED (size checked before parsing)', () => {
    const huge = `${b64('{"alg":"EdDSA"}')}.${'A'.repeat(10 * 1024 * 1024)}.${'A'.repeat(86)}`
    expectCode(() => decodeCompactJws(huge), 'ERR_MALFORMED')
    expectCode(() => decodeJwt(huge), 'ERR_MALFORMED')
    expectCode(() => verifyCompactJws(huge, alice.publicKey), 'ERR_MALFORMED')
    // Garbage of that size is refused for its size too, not its content.
    expectCode(() => decodeCompactJws('.'.repeat(10 * 1024 * 1024)), 'ERR_MALFORMED')
  })

  it('the size cap is DEFAULT_MAX_TOKEN_BYTES inclusive, and configurable', async () => {
    const fits = await signCompactJws({ alg: 'EdDSA' }, 'x'.repeat(1000), aliceSigner)
    expect(() => decodeCompactJws(fits, fits.length)).not.toThrow()
    expectCode(() => decodeCompactJws(fits, fits.length - 1), 'ERR_MALFORMED')
    // header + "." + payload + "." + 86-char signature; a payload of 3n bytes takes 4n characters.
    const overhead = (await signCompactJws({ alg: 'EdDSA' }, '', aliceSigner)).length
    const bytes = ((DEFAULT_MAX_TOKEN_BYTES - overhead) / 4) * 3
    expect(Number.isInteger(bytes)).toBe(true)
    const atCap = await signCompactJws({ alg: 'EdDSA' }, 'x'.repeat(bytes), aliceSigner)
    expect(atCap.length).toBe(DEFAULT_MAX_TOKEN_BYTES)
    expect(() => verifyCompactJws(atCap, alice.publicKey)).not.toThrow()
    const overCap = await signCompactJws({ alg: 'EdDSA' }, 'x'.repeat(bytes + 1), aliceSigner)
    expectCode(() => decodeCompactJws(overCap), 'ERR_MALFORMED')
    expect(() => verifyCompactJws(overCap, alice.publicKey, overCap.length)).not.toThrow()
  })

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a number', 42],
    ['a Buffer', Buffer.from('a.b.c')],
    ['a String object', new String('a.b.c')],
    ['an array of segments', ['eyJhbGciOiJFZERTQSJ9', 'e30', 'AA']],
    ['an object with toString', { toString: () => 'a.b.c' }],
  ])('a non-string token (%s) is ERR_MALFORMED', (_name, value) => {
    expectCode(() => decodeCompactJws(value), 'ERR_MALFORMED')
    expectCode(() => decodeJwt(value), 'ERR_MALFORMED')
    expectCode(() => verifyCompactJws(value, alice.publicKey), 'ERR_MALFORMED')
  })

  it('verifyJwsSignature refuses a non-ASCII signing input instead of truncating it to the signed bytes', async () => {
    // Buffer.from(s, 'ascii') keeps only the low byte of each UTF-16 unit: "\u0161" would become "a".
    const signature = await aliceSigner.sign(new TextEncoder().encode('a.b'))
    expect(() => verifyJwsSignature({ signingInput: 'a.b', signature: Buffer.from(signature) }, alice.publicKey)).not.toThrow()
    for (const lookalike of ['\u0161.b', 'a\u012e.b', 'a.\u0162', '\u0161\u012e\u0162']) {
      expectCode(() => verifyJwsSignature({ signingInput: lookalike, signature: Buffer.from(signature) }, alice.publicKey), 'ERR_MALFORMED')
    }
  })

  it('verifyJwsSignature takes an Ed25519 public JWK and nothing else as a key object', async () => {
    const signature = Buffer.from(await aliceSigner.sign(new TextEncoder().encode('a.b')))
    const x = alice.publicJwk.x
    expect(() => verifyJwsSignature({ signingInput: 'a.b', signature }, { kty: 'OKP', crv: 'Ed25519', x })).not.toThrow()
    expectCode(() => verifyJwsSignature({ signingInput: 'a.c', signature }, { kty: 'OKP', crv: 'Ed25519', x }), 'ERR_SIGNATURE_INVALID')
    expectCode(() => verifyJwsSignature({ signingInput: 'a.b', signature }, { kty: 'OKP', crv: 'Ed25519', x: mallory.publicJwk.x }), 'ERR_SIGNATURE_INVALID')
    // A key of another length is no Ed25519 key: refused, never verified.
    expectCode(() => verifyJwsSignature({ signingInput: 'a.b', signature }, { kty: 'OKP', crv: 'Ed25519', x: x.slice(0, 40) }), 'ERR_SIGNATURE_INVALID')
    for (const bad of [{ kty: 'OKP', crv: 'X25519', x }, { kty: 'EC', crv: 'Ed25519', x }, { kty: 'OKP', crv: 'Ed25519' }, { kty: 'OKP', crv: 'Ed25519', x, d: x }, null]) {
      expect(() => verifyJwsSignature({ signingInput: 'a.b', signature }, bad as never)).toThrow(TypeError)
    }
  })

  it('verifyJwsSignature refuses signatures of the wrong length or type', () => {
    for (const signature of [Buffer.alloc(0), Buffer.alloc(63), Buffer.alloc(65), 'AAAA' as never, null as never]) {
      expectCode(() => verifyJwsSignature({ signingInput: 'a.b', signature }, alice.publicKey), 'ERR_SIGNATURE_INVALID')
    }
  })

  it('signJwt keeps an explicit kid, and an alg smuggled past the types fails closed', async () => {
    const t = await signJwt({ kid: 'custom' }, { a: 1 }, aliceSigner)
    expect(decodeJwt(t).header).toEqual({ alg: 'EdDSA', kid: 'custom' })
    await expect(signJwt({ alg: 'none' } as never, { a: 1 }, aliceSigner)).rejects.toThrow(TypeError)
  })

  it('property: any single-character change to a valid token is refused', async () => {
    await ready
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ '
    fc.assert(
      fc.property(fc.nat(good.length - 1), fc.constantFrom(...alphabet), (position, ch) => {
        fc.pre(good[position] !== ch)
        const mutated = good.slice(0, position) + ch + good.slice(position + 1)
        try {
          verifyCompactJws(mutated, alice.publicKey)
        } catch (error) {
          expect(error).toBeInstanceOf(VerificationError)
          return
        }
        // Only a non-canonical encoding of the same bytes could verify, and that is refused above.
        expect.unreachable(`mutated token verified: ${mutated}`)
      }),
      { numRuns: 1000 },
    )
  })
})

describe('Wycheproof JSON Web Crypto (json_web_crypto_test.json) as parser and alg-policy checks', () => {
  const jwsTests = jwc.testGroups.filter((g: any) => g.comment.startsWith('jws')).flatMap((g: any) => g.tests.map((t: any) => ({ group: g.comment, ...t })))
  const jweTests = jwc.testGroups.filter((g: any) => g.comment.startsWith('jwe')).flatMap((g: any) => g.tests)

  it('has the expected JWS and JWE entries', () => {
    expect(jwsTests).toHaveLength(49)
    expect(jweTests).toHaveLength(34)
  })

  for (const t of jwsTests) {
    it(`tcId ${t.tcId} ${t.group} ${t.comment}: refused`, () => {
      if (typeof t.jws !== 'string') {
        // JSON serialization where compact is expected.
        expect(t.flags).toContain('JsonSerialization')
        expectCode(() => decodeCompactJws(t.jws), 'ERR_MALFORMED')
        expectCode(() => decodeJwt(t.jws), 'ERR_MALFORMED')
        expectCode(() => decodeCompactJws(JSON.stringify(t.jws)), 'ERR_MALFORMED')
        return
      }
      const segments = t.jws.split('.')
      // Three segments with a header: the header always names an HS/ES/RS alg.
      const expected = segments.length === 3 && segments[0] !== '' ? 'ERR_UNSUPPORTED_ALG' : 'ERR_MALFORMED'
      expectCode(() => decodeCompactJws(t.jws), expected)
      expectCode(() => decodeJwt(t.jws), expected)
      expectCode(() => verifyCompactJws(t.jws, alice.publicKey), expected)
    })
  }

  it('no JWE (compact or JSON) is ever accepted as a JWS', () => {
    for (const t of jweTests) {
      expectCode(() => decodeCompactJws(t.jwe), ['ERR_MALFORMED', 'ERR_UNSUPPORTED_ALG'])
    }
  })
})

describe('async signers', () => {
  it('signCompactJws awaits a KMS-style async signer', async () => {
    const signer = { sign: async (data: Uint8Array) => aliceSigner.sign(data) }
    const t = await signCompactJws({ alg: 'EdDSA' }, 'hello', signer)
    expect(verifyCompactJws(t, alice.publicKey).payload.toString()).toBe('hello')
  })

  it('a failing signer rejects, it does not produce a token', async () => {
    const failure = new Error('hsm down')
    expect(await rejected(() => signCompactJws({ alg: 'EdDSA' }, 'x', { sign: async () => Promise.reject(failure) }))).toBe(failure)
  })
})

describe('decodeCompactJwsSegments', () => {
  it('checks what decodeCompactJws checks, in its order, and leaves the payload as its segment', async () => {
    const signer = signerFromJwk(generateEd25519KeyPair().privateJwk)
    const token = await signJwt({ typ: 'JWT' }, { sub: 'a' }, signer)
    const full = decodeCompactJws(token)
    const parts = decodeCompactJwsSegments(token)
    expect(parts.header).toBe(full.header)
    expect(parts.signingInput).toBe(full.signingInput)
    expect(parts.signature.equals(full.signature)).toBe(true)
    expect(parts.payloadSegment).toBe(token.split('.')[1])
    expect(Buffer.from(parts.payloadSegment, 'base64url').equals(full.payload)).toBe(true)
    const [h, p, s] = token.split('.')
    for (const bad of [`${h}.${p}`, `${h}.${p}=.${s}`, `${h}.${p}.${s}A`, `${h}.${p.slice(0, -1)}!.${s}`, `${h}.${p}.${s.slice(0, -4)}`, 42, 'x'.repeat(70_000)]) {
      const expected = thrown(() => decodeCompactJws(bad))
      const got = thrown(() => decodeCompactJwsSegments(bad))
      expect(got).toBeInstanceOf(VerificationError)
      expect((got as VerificationError).code).toBe((expected as VerificationError).code)
      expect((got as Error).message).toBe((expected as Error).message)
    }
  })

  it('charsChecked skips only the character scans: lengths and trailing bits are still refused', async () => {
    const signer = signerFromJwk(generateEd25519KeyPair().privateJwk)
    const token = await signJwt({ typ: 'JWT' }, { sub: 'ab' }, signer)
    const [h, p, s] = token.split('.')
    expect(decodeCompactJwsSegments(token, undefined, true).payloadSegment).toBe(p)
    // A last character with non-zero trailing bits, a length of 4k + 1, a short signature.
    const flip = (seg: string) => seg.slice(0, -1) + (seg.endsWith('B') ? 'C' : 'B') // non-zero trailing bits
    const bad = [`${h}.${p!.length % 4 === 0 ? p : flip(p!)}.${s}`, `${h}.${p}A.${s}`, `${h}.${p}.${s!.slice(0, -4)}`]
    if (p!.length % 4 === 0) bad.shift()
    for (const t of bad) {
      expect(thrown(() => decodeCompactJwsSegments(t, undefined, true))).toBeInstanceOf(VerificationError)
      expect((thrown(() => decodeCompactJwsSegments(t, undefined, true)) as Error).message).toBe((thrown(() => decodeCompactJws(t)) as Error).message)
    }
  })
})
