// Issue 11: every JWS header and JWT payload the project reads is decoded by core's strict rules.
import { decodeJwtParts, decodeJsonSegment, VerificationError } from '@agentid/core'
import { describe, expect, it } from 'vitest'

const seg = (text: string | Uint8Array): string => Buffer.from(text).toString('base64url')
const SIG = seg(new Uint8Array(64))

function code(fn: () => unknown): string | undefined {
  try {
    fn()
    return undefined
  } catch (error) {
    expect(error).toBeInstanceOf(VerificationError)
    return (error as VerificationError).code
  }
}

describe('decodeJwtParts (foreign JWTs: any alg)', () => {
  it('decodes an RS256 or ES256 token strictly', () => {
    const { header, payload } = decodeJwtParts(`${seg('{"alg":"RS256","kid":"k"}')}.${seg('{"sub":"user-42","aud":["a","b"]}')}.${SIG}`)
    expect(header).toEqual({ alg: 'RS256', kid: 'k' })
    expect(payload).toEqual({ sub: 'user-42', aud: ['a', 'b'] })
  })

  it('refuses duplicate members in the payload or the header, at any depth, also spelled with escapes', () => {
    for (const [h, p] of [
      ['{"alg":"ES256"}', '{"sub":"admin","sub":"user-42"}'],
      ['{"alg":"ES256"}', '{"sub":"user-42","s\\u0075b":"admin"}'],
      ['{"alg":"ES256"}', '{"may_act":{"sub":"a","sub":"b"}}'],
      ['{"alg":"ES256","alg":"none"}', '{"sub":"x"}'],
    ]) {
      expect(code(() => decodeJwtParts(`${seg(h!)}.${seg(p!)}.${SIG}`)), p).toBe('ERR_MALFORMED')
    }
  })

  it('refuses what is not three strict segments, or too large', () => {
    for (const token of [42, '', 'a.b', 'a.b.c.d', `.${seg('{}')}.${SIG}`, `${seg('{"alg":"ES256"}')}=.${seg('{}')}.${SIG}`, `${seg('{"alg":"ES256"}')}.${seg('[]')}.${SIG}`, `${seg('{"alg":"ES256"}')}.${seg('{}')}.a+b`]) {
      expect(code(() => decodeJwtParts(token)), String(token)).toBe('ERR_MALFORMED')
    }
    expect(code(() => decodeJwtParts(`${seg('{"alg":"ES256"}')}.${seg(`{"x":"${'a'.repeat(100)}"}`)}.${SIG}`, 64))).toBe('ERR_MALFORMED')
  })

  it('decodeJsonSegment: strict base64url, a JSON object', () => {
    expect(decodeJsonSegment(seg('{"a":1}'), 'x', 4)).toEqual({ a: 1 })
    expect(code(() => decodeJsonSegment(`${seg('{"a":1}')}=`, 'x', 4))).toBe('ERR_MALFORMED')
    expect(code(() => decodeJsonSegment(seg('{"a":[[[[1]]]]}'), 'x', 4))).toBe('ERR_MALFORMED')
  })
})

describe('signed JSON is Unicode text: invalid UTF-8 and lone surrogates are refused, not turned into U+FFFD', async () => {
  const { decodeJwt, decodeCompactJws, decodeUtf8Strict, generateEd25519KeyPair, parseStrictJsonObject, signCompactJws, signerFromJwk } = await import('@agentid/core')
  const signer = signerFromJwk(generateEd25519KeyPair().privateJwk)
  const bytes = (...parts: (string | number[])[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))))

  const BAD_UTF8: [string, Buffer][] = [
    ['a lone continuation byte', bytes('{"sub":"a', [0x80], '"}')],
    ['a truncated sequence', bytes('{"sub":"a', [0xe2, 0x82], '"}')],
    ['an overlong "/"', bytes('{"sub":"a', [0xc0, 0xaf], '"}')],
    ['an encoded surrogate (CESU-8)', bytes('{"sub":"a', [0xed, 0xa0, 0x80], '"}')],
    ['a code point past U+10FFFF', bytes('{"sub":"a', [0xf4, 0x90, 0x80, 0x80], '"}')],
    ['invalid UTF-8 in a member name', bytes('{"s', [0xff], 'b":"a"}')],
  ]

  it.each(BAD_UTF8)('a signed payload holding %s', async (_name, payload) => {
    const token = await signCompactJws({ alg: 'EdDSA', typ: 'JWT' }, payload, signer)
    expect(decodeCompactJws(token).payload.equals(payload)).toBe(true) // the bytes are what was signed
    expect(code(() => decodeJwt(token))).toBe('ERR_MALFORMED')
  })

  it('a header holding invalid UTF-8', () => {
    const header = seg(bytes('{"alg":"EdDSA","kid":"', [0xc3, 0x28], '"}'))
    expect(code(() => decodeCompactJws(`${header}.${seg('{}')}.${SIG}`))).toBe('ERR_MALFORMED')
  })

  it.each([
    ['a high surrogate alone', '{"sub":"\\ud800"}'],
    ['a low surrogate alone', '{"sub":"x\\uDC00y"}'],
    ['two high surrogates', '{"sub":"\\ud800\\ud800"}'],
    ['reversed halves', '{"sub":"\\udc00\\ud800"}'],
    ['one in a member name', '{"s\\ud800":1}'],
    ['one deep inside', '{"vc":{"a":[{"b":"\\uDBFF"}]}}'],
  ])('a lone surrogate: %s', async (_name, payload) => {
    const token = await signCompactJws({ alg: 'EdDSA', typ: 'JWT' }, payload, signer)
    expect(code(() => decodeJwt(token))).toBe('ERR_MALFORMED')
    expect(code(() => parseStrictJsonObject(payload))).toBe('ERR_MALFORMED')
  })

  it('well-formed text passes, pairs and astral characters included, raw or escaped', async () => {
    for (const payload of ['{"sub":"caf\u00e9 \u{1F600}"}', '{"sub":"\\ud83d\\ude00"}', '{"sub":"\\u00e9"}']) {
      const token = await signCompactJws({ alg: 'EdDSA', typ: 'JWT' }, payload, signer)
      expect(decodeJwt(token).payload.sub).toBe(JSON.parse(payload).sub)
    }
    expect(decodeUtf8Strict(Buffer.from('h\u00e9'))).toBe('h\u00e9')
  })

  it('a byte-order mark before the JSON is refused', async () => {
    const token = await signCompactJws({ alg: 'EdDSA', typ: 'JWT' }, bytes([0xef, 0xbb, 0xbf], '{"sub":"a"}'), signer)
    expect(code(() => decodeJwt(token))).toBe('ERR_MALFORMED')
  })
})

describe('signatures whose R is a small-order point are refused (libsodium strict verification)', async () => {
  const { createHash, verify: cryptoVerify } = await import('node:crypto')
  const { base64urlDecode, base64urlEncode, decodeDidKey, generateEd25519KeyPair, hasSmallOrderR, publicKeyFromRaw, verifyJwsSignature, verifyJwsSignatureAsync } = await import('@agentid/core')
  const { readVector, speccheckThroughGates } = await import('./helpers.js')
  const speccheck = readVector<any>('ed25519/speccheck/cases.annotated.json')
  const wycheproof = readVector<any>('ed25519/wycheproof/ed25519_test.json')
  const L = (1n << 252n) + 27742317777372353535851937790883648493n
  const le = (bytes: Uint8Array): bigint => BigInt(`0x${Buffer.from(bytes).reverse().toString('hex') || '0'}`)
  const toLe = (n: bigint): Buffer => Buffer.from(n.toString(16).padStart(64, '0'), 'hex').reverse()

  /** What the key holder can make: R = identity (order 1), S = k·a, so [S]B = R + [k]A holds without the cofactor. */
  function smallOrderRSignature(seed: Buffer, publicKey: Buffer, message: Buffer, r: Buffer): Buffer {
    const h = createHash('sha512').update(seed).digest()
    const a = Buffer.from(h.subarray(0, 32))
    a[0]! &= 248
    a[31]! &= 127
    a[31]! |= 64
    const k = le(createHash('sha512').update(Buffer.concat([r, publicKey, message])).digest()) % L
    return Buffer.concat([r, toLe((k * le(a)) % L)])
  }

  it('a JWS its own key holder signed with R = identity passes node:crypto but not verifyJwsSignature', async () => {
    const alice = generateEd25519KeyPair()
    const seed = base64urlDecode(alice.privateJwk.d)
    const raw = Buffer.from(decodeDidKey(alice.did).publicKey)
    const key = publicKeyFromRaw(raw)
    const signingInput = `${seg('{"alg":"EdDSA"}')}.${seg('{"sub":"x"}')}`
    const identity = Buffer.concat([Buffer.from([1]), Buffer.alloc(31)])
    const signature = smallOrderRSignature(seed, raw, Buffer.from(signingInput), identity)
    expect(cryptoVerify(null, Buffer.from(signingInput), key, signature)).toBe(true) // the equation holds
    expect(hasSmallOrderR(signature)).toBe(true)
    expect(code(() => verifyJwsSignature({ signingInput, signature }, key))).toBe('ERR_SIGNATURE_INVALID')
    await expect(verifyJwsSignatureAsync({ signingInput, signature }, key)).rejects.toMatchObject({ code: 'ERR_SIGNATURE_INVALID', details: { reason: 'small-order R' } })
    expect(base64urlEncode(signature)).toHaveLength(86)
  })

  it('flags every small-order R encoding, canonical or not, either sign', () => {
    const ys = ['0000000000000000000000000000000000000000000000000000000000000000', '0100000000000000000000000000000000000000000000000000000000000000',
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', 'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f']
    for (const y of ys) {
      for (const sign of [0, 0x80]) {
        const r = Buffer.from(y, 'hex')
        r[31] = (r[31]! & 0x7f) | sign
        expect(hasSmallOrderR(Buffer.concat([r, Buffer.alloc(32)])), `${y} ${sign}`).toBe(true)
      }
    }
    expect(hasSmallOrderR(Buffer.alloc(16))).toBe(false)
  })

  // Recorded: speccheck cases 0, 2, 8, 9 have a small-order R (8 and 9 non-canonical). With this check
  // and the did:key gate on A, our stack now matches libsodium and the recommended strict result on
  // all 12 cases (before it, case 2 — small R, mixed-order A — was accepted).
  it('speccheck: R check + did:key gate + node:crypto = libsodium on all 12 cases', () => {
    expect(speccheck.cases.map((c: any) => hasSmallOrderR(Buffer.from(c.signature, 'hex')))).toEqual([true, false, true, false, false, false, false, false, true, true, false, false])
    const ours = speccheckThroughGates(speccheck.cases, (message, sig, key) => cryptoVerify(null, message, publicKeyFromRaw(key), sig))
    expect(ours).toEqual(speccheck.cases.map((c: any) => c.libsodium_result === 'V'))
    expect(ours).toEqual(speccheck.cases.map((c: any) => c.recommended_strict_result === 'valid'))
  })

  // Recorded: no Wycheproof "valid" vector has a small-order R (the check refuses nothing honest);
  // of the invalid 64-byte signatures, the ones it flags are all refused by node:crypto as well.
  it('wycheproof: no valid signature is flagged', () => {
    const tests = wycheproof.testGroups.flatMap((g: any) => g.tests.map((t: any) => ({ pk: g.publicKey.pk as string, ...t })))
    const flagged = tests.filter((t: any) => Buffer.from(t.sig, 'hex').length === 64 && hasSmallOrderR(Buffer.from(t.sig, 'hex')))
    expect(flagged.filter((t: any) => t.result === 'valid')).toEqual([])
    for (const t of flagged) expect(cryptoVerify(null, Buffer.from(t.msg, 'hex'), publicKeyFromRaw(Buffer.from(t.pk, 'hex')), Buffer.from(t.sig, 'hex'))).toBe(false)
    expect(tests.filter((t: any) => t.result === 'valid').length).toBeGreaterThan(50)
  })
})
