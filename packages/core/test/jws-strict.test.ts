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
