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
