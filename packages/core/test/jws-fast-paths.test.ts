// decodeJwt reads a header of signJwt's shape from its bytes (no JSON.parse), checks a payload
// segment's base64url by encoding its bytes back, and verifyJwsSignature checks that the signing
// input is ASCII from its UTF-8 write. Each must refuse everything the strict path refuses and read
// everything else as it does: compared here with the strict path itself (decodeJsonSegment and the
// header checks, checkBase64url's expression, Buffer.byteLength), on crafted and random inputs.
import { decodeJsonSegment, decodeJwt, DEFAULT_MAX_TOKEN_BYTES, generateEd25519KeyPair, signerFromJwk, signJwt, verifyJwsSignature, verifyJwsSignatureAsync, VerificationError } from '@agentid/core'
import { describe, expect, it } from 'vitest'

const seg = (text: string | Uint8Array): string => Buffer.from(text).toString('base64url')
const SIG = seg(new Uint8Array(64))
const PAYLOAD = seg('{"sub":"a"}')

type Outcome = { header: unknown } | { code: string; message: string }

function outcome(fn: () => unknown): Outcome {
  try {
    return { header: fn() }
  } catch (error) {
    if (!(error instanceof VerificationError)) throw error
    return { code: error.code, message: error.message }
  }
}

// The header rules before the template: decodeJsonSegment (strict base64url, UTF-8 and JSON, depth
// 4) and decodeHeader's checks, in their order.
function strictHeader(segment: string): unknown {
  const header = decodeJsonSegment(segment, 'JWS header', 4)
  if (header.alg !== 'EdDSA') throw new VerificationError('ERR_UNSUPPORTED_ALG', 'only alg EdDSA is accepted')
  if ('crit' in header) throw new VerificationError('ERR_MALFORMED', 'JWS header crit extensions are not supported')
  if ('b64' in header) throw new VerificationError('ERR_MALFORMED', 'unencoded JWS payloads are not supported')
  if (header.kid !== undefined && typeof header.kid !== 'string') throw new VerificationError('ERR_MALFORMED', 'JWS header kid is not a string')
  if (header.typ !== undefined && typeof header.typ !== 'string') throw new VerificationError('ERR_MALFORMED', 'JWS header typ is not a string')
  return header
}

function expectSameAsStrict(headerBytes: string | Uint8Array): void {
  const segment = seg(headerBytes)
  const want = outcome(() => strictHeader(segment))
  for (const cache of [false, true]) {
    const got = outcome(() => decodeJwt(`${segment}.${PAYLOAD}.${SIG}`, DEFAULT_MAX_TOKEN_BYTES, cache).header)
    expect(got, `${JSON.stringify(Buffer.from(headerBytes).toString('latin1'))} (cache ${cache})`).toEqual(want)
    if ('header' in got) expect(Object.isFrozen(got.header)).toBe(true)
  }
}

describe('decodeJwt: headers of signJwt shape read without JSON.parse', () => {
  it('reads the headers signJwt writes as the strict parser does', async () => {
    const signer = signerFromJwk(generateEd25519KeyPair().privateJwk)
    for (const typ of ['JWT', 'vc+jwt', 'agentid-pop+jwt', undefined]) {
      const token = await signJwt(typ === undefined ? {} : { typ }, { sub: 'a' }, signer)
      const segment = token.slice(0, token.indexOf('.'))
      expect(decodeJwt(token, DEFAULT_MAX_TOKEN_BYTES, false).header).toEqual(strictHeader(segment))
      expectSameAsStrict(Buffer.from(segment, 'base64url'))
    }
  })

  it('leaves to the strict path, with its outcome, every near miss: duplicates, escapes, non-ASCII, controls, other members or order', () => {
    for (const text of [
      '{"alg":"EdDSA","typ":"JWT","kid":"a","kid":"b"}',
      '{"alg":"EdDSA","typ":"JWT","typ":"x","kid":"k"}',
      '{"alg":"EdDSA","typ":"JWT","kid":"k","alg":"none"}',
      '{"alg":"EdDSA","typ":"JWT","kid":"k","crit":["b64"]}',
      '{"alg":"EdDSA","typ":"JWT","kid":"k","b64":false}',
      '{"alg":"EdDSA","kid":"k","typ":"JWT"}',
      '{"alg":"EdDSA","typ":"JWT","kid":"a\\u0041"}',
      '{"alg":"EdDSA","typ":"JWT","kid":"a\\"b"}',
      '{"alg":"EdDSA","typ":"JWT","kid":"\\ud800"}',
      '{"alg":"EdDSA","typ":"J\\u0057T","kid":"k"}',
      '{"alg":"EdDSA","typ":"JWT","kid":"caf\u00e9"}',
      '{"alg":"EdDSA","typ":"JWT","kid":"a\u0001b"}',
      '{"alg":"EdDSA","typ":"JWT","kid":"a\tb"}',
      '{"alg":"EdDSA","typ":"JWT","kid":"a\u007fb"}',
      '{"alg":"EdDSA","typ":"JWT","kid":"k"} ',
      '{"alg":"EdDSA","typ":"JWT","kid":"k"}}',
      '{"alg":"EdDSA","typ":"JWT","kid":"k" }',
      '{"alg":"EdDSA", "typ":"JWT","kid":"k"}',
      '{"alg":"EdDSA","typ":"JWT","kid":}',
      '{"alg":"EdDSA","typ":"JWT","kid":"}',
      '{"alg":"EdDSA","typ":"JWT","kid":""}',
      '{"alg":"EdDSA","typ":"","kid":"k"}',
      '{"alg":"EdDSA","typ":"JWT","kid":"k","x":1}',
      '{"alg":"EdDSA","typ":"JWT"}',
      '{"alg":"EdDSA","kid":"k"}',
      '{"alg":"EdDSA","kid":5}',
      '{"alg":"EdDSA","typ":7,"kid":"k"}',
      '{"alg":"EdDSA","typ":"JWT","kid":["k"]}',
      '{"alg":"EdDSA2","typ":"JWT","kid":"k"}',
      '{"alg":"ES256","typ":"JWT","kid":"k"}',
      '\ufeff{"alg":"EdDSA","typ":"JWT","kid":"k"}',
    ]) {
      expectSameAsStrict(text)
    }
    // Bytes that are not UTF-8 where the template reads a string, and an overlong encoding of `"`.
    const head = Buffer.from('{"alg":"EdDSA","typ":"JWT","kid":"')
    for (const tail of [[0xff, 0x22, 0x7d], [0xc3, 0x22, 0x7d], [0xc0, 0xa2, 0x22, 0x7d], [0xed, 0xa0, 0x80, 0x22, 0x7d]]) {
      expectSameAsStrict(Buffer.concat([head, Buffer.from(tail)]))
    }
  })

  it('matches the strict path on random mutations of the template', () => {
    // Characters that change how JSON reads a string or an object, and plain ones.
    const pieces = ['"', '\\', ',', ':', '{', '}', '[', ']', ' ', '\n', '\u0000', '\u001f', '\u007f', '\u00e9', '\ud800', '\\u0022', '\\ud800', 'u', 'a', 'k', 'JWT', '"kid":"x"', '"typ":"y"', '"alg":"none"', '"crit":[]']
    const template = '{"alg":"EdDSA","typ":"JWT","kid":"did:key:z6Mk#z6Mk"}'
    let seed = 12345
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n
    }
    for (let i = 0; i < 3000; i++) {
      let text = template
      for (let k = 0, edits = 1 + next(3); k < edits; k++) {
        const at = next(text.length + 1)
        const kind = next(3)
        const piece = pieces[next(pieces.length)]!
        text = kind === 0 ? text.slice(0, at) + piece + text.slice(at) : kind === 1 ? text.slice(0, at) + text.slice(at + 1) : text.slice(0, at) + piece + text.slice(at + 1)
      }
      expectSameAsStrict(text)
    }
  })
})

describe('decodeJwt: the payload segment checked by encoding its bytes back', () => {
  it('refuses every segment that is not canonical unpadded base64url with the messages of the character check', () => {
    const header = seg('{"alg":"EdDSA"}')
    const valid = seg('{"sub":"abc"}') // 13 bytes: 18 characters, 2 trailing bits
    expect(decodeJwt(`${header}.${valid}.${SIG}`).payload).toEqual({ sub: 'abc' })
    const flipLast = valid.slice(0, -1) + String.fromCharCode(valid.charCodeAt(valid.length - 1) + 1)
    for (const [payload, message] of [
      [`${valid}==`, 'JWS payload is not valid unpadded base64url'],
      [`${valid.slice(0, 4)}+${valid.slice(5)}`, 'JWS payload is not valid unpadded base64url'],
      [`${valid.slice(0, 4)}/${valid.slice(5)}`, 'JWS payload is not valid unpadded base64url'],
      [`${valid.slice(0, 4)} ${valid.slice(4)}`, 'JWS payload is not valid unpadded base64url'],
      [`${valid.slice(0, 4)}\n${valid.slice(4)}`, 'JWS payload is not valid unpadded base64url'],
      [`${valid.slice(0, 4)}\u0141${valid.slice(5)}`, 'JWS payload is not valid unpadded base64url'],
      [`${valid.slice(0, 4)}\u0100${valid.slice(5)}`, 'JWS payload is not valid unpadded base64url'],
      [`${valid}AAA`, 'JWS payload is not valid unpadded base64url'],
      [flipLast, 'JWS payload has non-canonical base64url trailing bits'],
    ] as const) {
      const got = outcome(() => decodeJwt(`${header}.${payload}.${SIG}`))
      expect(got, JSON.stringify(payload)).toEqual({ code: 'ERR_MALFORMED', message })
    }
  })

  it('accepts a segment exactly when the character check does (random segments)', () => {
    const header = seg('{"alg":"EdDSA"}')
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/= \u00e9'
    const canonical = (s: string) => /^[A-Za-z0-9_-]*$/.test(s) && s.length % 4 !== 1 && Buffer.from(s, 'base64url').toString('base64url') === s
    let seed = 777
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed % n
    }
    const text = '{"sub":"abcdefghij"}'
    for (let i = 0; i < 2000; i++) {
      let payload = seg(text)
      const at = next(payload.length)
      payload = payload.slice(0, at) + alphabet[next(alphabet.length)] + payload.slice(at + (next(2) === 0 ? 1 : 0))
      const got = outcome(() => decodeJwt(`${header}.${payload}.${SIG}`).payload)
      if (!canonical(payload)) expect(got, payload).toMatchObject({ code: 'ERR_MALFORMED', message: expect.stringMatching(/^JWS payload (is not valid unpadded base64url|has non-canonical base64url trailing bits)$/) })
      else expect('message' in got && /base64url/.test(got.message), payload).toBe(false)
    }
  })
})

describe('verifyJwsSignature: the signing input checked ASCII from its UTF-8 write', () => {
  it('refuses any non-ASCII character at any place, and verifies ASCII input', async () => {
    const { privateJwk, publicKey } = generateEd25519KeyPair()
    const signer = signerFromJwk(privateJwk)
    const input = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhIn0'
    const signature = Buffer.from(await signer.sign(new TextEncoder().encode(input)))
    expect(() => verifyJwsSignature({ signingInput: input, signature }, publicKey)).not.toThrow()
    for (const char of ['\u0080', '\u00e9', '\u0161', '\u0100', '\u2028', '\ud800', '\udc00', '\ud83d\ude00', '\uffff']) {
      for (const at of [0, 1, input.length >> 1, input.length - 1, input.length]) {
        // Replacing a character (same length: a latin1 copy keeps only the low byte) or inserting one.
        for (const lookalike of [input.slice(0, at) + char + input.slice(at + 1), input.slice(0, at) + char + input.slice(at)]) {
          const got = outcome(() => verifyJwsSignature({ signingInput: lookalike, signature }, publicKey))
          expect(got, JSON.stringify(lookalike)).toEqual({ code: 'ERR_MALFORMED', message: 'JWS signing input is not ASCII' })
        }
      }
    }
    expect(outcome(() => verifyJwsSignature({ signingInput: `${input}x`, signature }, publicKey))).toMatchObject({ code: 'ERR_SIGNATURE_INVALID' })
  })

  it('refuses the same non-ASCII inputs on the thread-pool path (verifyJwsSignatureAsync)', async () => {
    const { privateJwk, publicKey } = generateEd25519KeyPair()
    const input = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhIn0'
    const signature = Buffer.from(await signerFromJwk(privateJwk).sign(new TextEncoder().encode(input)))
    await expect(verifyJwsSignatureAsync({ signingInput: input, signature }, publicKey)).resolves.toBeUndefined()
    for (const lookalike of [`\u0161${input.slice(1)}`, `${input}\u00e9`, `${input.slice(0, -1)}\ud800`, '\u00e9'.repeat(1 << 16) + 'a'.repeat(1 << 16)]) {
      await expect(verifyJwsSignatureAsync({ signingInput: lookalike, signature }, publicKey)).rejects.toMatchObject({ code: 'ERR_MALFORMED', message: 'JWS signing input is not ASCII' })
    }
  })

  it('refuses a long input whose first characters alone fill its length in UTF-8 bytes (signed over those bytes)', async () => {
    const { privateJwk, publicKey } = generateEd25519KeyPair()
    const signer = signerFromJwk(privateJwk)
    // Longer than any scratch buffer before it: a buffer of exactly its length held the n 'é's only.
    const n = 1 << 20
    const lookalike = '\u00e9'.repeat(n) + 'a'.repeat(n)
    const signature = Buffer.from(await signer.sign(Buffer.from('\u00e9'.repeat(n), 'utf8')))
    expect(outcome(() => verifyJwsSignature({ signingInput: lookalike, signature }, publicKey))).toEqual({ code: 'ERR_MALFORMED', message: 'JWS signing input is not ASCII' })
  })
})
