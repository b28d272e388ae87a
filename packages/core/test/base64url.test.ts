import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { AgentIdError, base64urlDecode, base64urlDecodeInput, base64urlEncode, VerificationError } from '@agentid/core'
import { thrown } from './helpers.js'

describe('base64url', () => {
  it('encodes bytes and UTF-8 text without padding', () => {
    expect(base64urlEncode(new Uint8Array([0xfb, 0xff]))).toBe('-_8')
    expect(base64urlEncode('é')).toBe('w6k')
    // A view into a larger buffer encodes only its own bytes.
    expect(base64urlEncode(new Uint8Array([1, 2, 3, 4]).subarray(1, 3))).toBe('AgM')
  })

  it('encodes the bytes of any view, small (copied) or large, as Node encodes them', () => {
    for (const length of [0, 1, 31, 32, 33, 63, 64, 65, 100]) {
      const whole = new Uint8Array(length + 5).map((_, i) => (i * 37 + 11) & 0xff)
      for (const view of [whole.subarray(3, 3 + length), Buffer.from(whole).subarray(2, 2 + length), new Uint8Array(whole.buffer, 1, length)]) {
        expect(base64urlEncode(view)).toBe(Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64url'))
      }
      // Another typed array passed where bytes are expected: its bytes, as before (not its elements).
      const words = new Uint16Array(new Uint8Array(length * 2).map((_, i) => i).buffer)
      expect(base64urlEncode(words as unknown as Uint8Array)).toBe(Buffer.from(words.buffer).toString('base64url'))
    }
  })

  it.each([
    ['padding', 'AA=='],
    ['standard base64', '+/8'],
    ['whitespace', 'AA A'],
    ['a newline', 'AAAA\n'],
    ['length 1 mod 4', 'AAAAA'],
    ['non-canonical trailing bits', 'AB'],
    ['non-ASCII', 'AA\u00c0A'],
  ])('refuses %s as ERR_MALFORMED', (_name, input) => {
    const error = thrown(() => base64urlDecode(input))
    expect(error).toBeInstanceOf(VerificationError)
    expect(error.code).toBe('ERR_MALFORMED')
    const inputError = thrown(() => base64urlDecodeInput(input, 'x'))
    expect(inputError).toBeInstanceOf(AgentIdError)
    expect(inputError).not.toBeInstanceOf(VerificationError)
    expect(inputError.code).toBe('ERR_INVALID_INPUT')
    expect(inputError.cause).toBeInstanceOf(VerificationError)
  })

  it('property: decode(encode(bytes)) is the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        expect(base64urlDecode(base64urlEncode(bytes)).equals(Buffer.from(bytes))).toBe(true)
      }),
    )
  })

  it('property: every accepted string is the canonical encoding of what it decodes to', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ '
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...alphabet), maxLength: 40 }), (text) => {
        let bytes: Buffer
        try {
          bytes = base64urlDecode(text)
        } catch (error) {
          expect((error as VerificationError).code).toBe('ERR_MALFORMED')
          return
        }
        expect(base64urlEncode(bytes)).toBe(text)
      }),
      { numRuns: 2000 },
    )
  })
})
