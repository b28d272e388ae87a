// decodeJwt keeps checked headers in a cache of repeated headers (one frozen object shared by the
// tokens that carry the same header text); with cacheHeader false it neither reads nor fills it.
import { decodeJwt, generateEd25519KeyPair, signerFromJwk, signJwt, DEFAULT_MAX_TOKEN_BYTES } from '@agentid/core'
import { describe, expect, it } from 'vitest'

describe('decodeJwt: the cache of repeated headers', () => {
  it('shares one frozen header between tokens with the same header text, unless cacheHeader is false', async () => {
    const signer = signerFromJwk(generateEd25519KeyPair().privateJwk)
    const [a, b] = [await signJwt({ typ: 'JWT' }, { sub: 'a' }, signer), await signJwt({ typ: 'JWT' }, { sub: 'b' }, signer)]
    expect(decodeJwt(a).header).toBe(decodeJwt(b).header)
    const [x, y] = [decodeJwt(a, DEFAULT_MAX_TOKEN_BYTES, false), decodeJwt(b, DEFAULT_MAX_TOKEN_BYTES, false)]
    expect(x.header).not.toBe(y.header)
    expect(x.header).not.toBe(decodeJwt(a).header)
    expect(x.header).toEqual(decodeJwt(a).header)
    expect(Object.isFrozen(x.header)).toBe(true)
    expect(x.payload).toEqual({ sub: 'a' })
    // Not filled either: a header first seen uncached is decoded anew by the cached path too.
    const c = await signJwt({ typ: 'vc+jwt' }, { sub: 'c' }, signer)
    const uncached = decodeJwt(c, DEFAULT_MAX_TOKEN_BYTES, false).header
    expect(decodeJwt(c).header).not.toBe(uncached)
  })
})
