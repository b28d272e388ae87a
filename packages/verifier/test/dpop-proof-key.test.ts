// verifyDpopProof's key handling: the proof's jwk is imported once per key (node:crypto) and its
// members that restrict the key (alg, use, key_ops) are honoured; keys that are not keys are refused.
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import { VerificationError, type VerificationErrorCode } from '@agentid/core'
import { createMemoryReplayCache, verifyDpopProof, type DpopProofContext } from '@agentid/verifier'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose'
import { describe, expect, it } from 'vitest'

const URL_ = 'https://erp.example/invoices'
const NOW_SEC = 1_800_000_000
let counter = 0

const b64u = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')

function ctx(over: Partial<DpopProofContext> = {}): DpopProofContext {
  return { method: 'GET', url: URL_, now: () => NOW_SEC * 1000, clockSkewSec: 60, maxAgeSec: 60, replayCache: createMemoryReplayCache({ clock: () => NOW_SEC * 1000 }), ...over }
}

/** A proof signed with node:crypto: any header, any signature bytes. */
function rawProof(privateKey: KeyObject, header: Record<string, unknown>, o: { alg?: string; signature?: (s: Buffer) => string } = {}): string {
  const input = `${b64u({ typ: 'dpop+jwt', alg: o.alg ?? 'EdDSA', ...header })}.${b64u({ jti: `p-${++counter}`, htm: 'GET', htu: URL_, iat: NOW_SEC })}`
  const sig = o.alg === 'ES256' ? sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }) : sign(null, Buffer.from(input), privateKey)
  return `${input}.${o.signature ? o.signature(sig) : sig.toString('base64url')}`
}

function edKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const x = publicKey.export({ format: 'jwk' }).x as string
  return { privateKey, jwk: { kty: 'OKP', crv: 'Ed25519', x } as Record<string, unknown> }
}

async function expectCode(promise: Promise<unknown>, code: VerificationErrorCode): Promise<VerificationError> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error, `expected ${code}`).toBeInstanceOf(VerificationError)
  expect((error as VerificationError).code).toBe(code)
  return error as VerificationError
}

describe('verifyDpopProof: the proof key', () => {
  it('the same key for many proofs: each verifies with the RFC 7638 thumbprint jose computes', async () => {
    for (const alg of ['EdDSA', 'ES256'] as const) {
      const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
      const jwk = await exportJWK(publicKey)
      const jkt = await calculateJwkThumbprint(jwk, 'sha256')
      const c = ctx({ jkt })
      for (let i = 0; i < 3; i++) {
        const proof = await new SignJWT({ jti: `p-${++counter}`, htm: 'GET', htu: URL_, iat: NOW_SEC }).setProtectedHeader({ typ: 'dpop+jwt', alg, jwk }).sign(privateKey)
        const verified = await verifyDpopProof(proof, c)
        expect(verified.jkt).toBe(jkt)
        expect(verified.alg).toBe(alg)
      }
    }
  })

  it('a signature by another key is refused, also once the jwk is known (imported)', async () => {
    const a = edKey()
    const b = edKey()
    await verifyDpopProof(rawProof(a.privateKey, { jwk: a.jwk }), ctx())
    await expectCode(verifyDpopProof(rawProof(b.privateKey, { jwk: a.jwk }), ctx()), 'ERR_SIGNATURE_INVALID')
  })

  it('offloadSignatures: the same checks on the thread pool (EdDSA and ES256)', async () => {
    const a = edKey()
    const b = edKey()
    const c = ctx({ offloadSignatures: true })
    expect((await verifyDpopProof(rawProof(a.privateKey, { jwk: a.jwk }), c)).alg).toBe('EdDSA')
    await expectCode(verifyDpopProof(rawProof(b.privateKey, { jwk: a.jwk }), c), 'ERR_SIGNATURE_INVALID')
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const jwk = ec.publicKey.export({ format: 'jwk' }) as JWK
    expect((await verifyDpopProof(rawProof(ec.privateKey, { jwk }, { alg: 'ES256' }), c)).alg).toBe('ES256')
    const good = rawProof(ec.privateKey, { jwk }, { alg: 'ES256' })
    const [h, p, s] = good.split('.') as [string, string, string]
    await expectCode(verifyDpopProof(`${h}.${p}.${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`, c), 'ERR_SIGNATURE_INVALID')
  })

  it('a tampered payload, a truncated, padded or non-canonical signature are refused', async () => {
    const a = edKey()
    const good = rawProof(a.privateKey, { jwk: a.jwk })
    const [h, p, s] = good.split('.') as [string, string, string]
    const tampered = `${h}.${b64u({ jti: 'x', htm: 'GET', htu: URL_, iat: NOW_SEC })}.${s}`
    await expectCode(verifyDpopProof(tampered, ctx()), 'ERR_SIGNATURE_INVALID')
    await expectCode(verifyDpopProof(`${h}.${p}.${s.slice(0, -4)}`, ctx()), 'ERR_SIGNATURE_INVALID')
    await expectCode(verifyDpopProof(`${h}.${p}.${s}==`, ctx()), 'ERR_SIGNATURE_INVALID')
    // The last character of a 64-byte signature carries 4 unused bits: setting one names the same bytes.
    const last = s[s.length - 1]!
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    const sibling = alphabet[alphabet.indexOf(last) ^ 1]!
    await expectCode(verifyDpopProof(`${h}.${p}.${s.slice(0, -1)}${sibling}`, ctx()), 'ERR_SIGNATURE_INVALID')
    await verifyDpopProof(good, ctx())
  })

  it('jwk members that restrict the key: another alg, use "enc", key_ops without "verify"', async () => {
    const a = edKey()
    await expectCode(verifyDpopProof(rawProof(a.privateKey, { jwk: { ...a.jwk, alg: 'ES256' } }), ctx()), 'ERR_UNSUPPORTED_ALG')
    await expectCode(verifyDpopProof(rawProof(a.privateKey, { jwk: { ...a.jwk, use: 'enc' } }), ctx()), 'ERR_UNSUPPORTED_ALG')
    await expectCode(verifyDpopProof(rawProof(a.privateKey, { jwk: { ...a.jwk, key_ops: ['sign'] } }), ctx()), 'ERR_UNSUPPORTED_ALG')
    await expectCode(verifyDpopProof(rawProof(a.privateKey, { jwk: { ...a.jwk, key_ops: 'verify' } }), ctx()), 'ERR_UNSUPPORTED_ALG')
    // The same members allowing the key are fine, and the thumbprint ignores them.
    const v = await verifyDpopProof(rawProof(a.privateKey, { jwk: { ...a.jwk, alg: 'EdDSA', use: 'sig', key_ops: ['verify'] } }), ctx())
    await verifyDpopProof(rawProof(a.privateKey, { jwk: { ...a.jwk, alg: 'Ed25519' } }, { alg: 'Ed25519' }), ctx()) // RFC 9864 name, in the jwk too
    expect(v.jkt).toBe(createHash('sha256').update(`{"crv":"Ed25519","kty":"OKP","x":"${a.jwk.x as string}"}`).digest('base64url'))
  })

  it('an x that is not a key: short, padded, small-order; an EC point off the curve', async () => {
    const a = edKey()
    await expectCode(verifyDpopProof(rawProof(a.privateKey, { jwk: { ...a.jwk, x: (a.jwk.x as string).slice(0, 40) } }), ctx()), 'ERR_MALFORMED')
    await expectCode(verifyDpopProof(rawProof(a.privateKey, { jwk: { ...a.jwk, x: `${a.jwk.x as string}=` } }), ctx()), 'ERR_MALFORMED')
    // The identity point (y = 1): every signature "verifies" under some small-order keys in lax implementations.
    const identity = Buffer.alloc(32)
    identity[0] = 1
    await expectCode(verifyDpopProof(rawProof(a.privateKey, { jwk: { ...a.jwk, x: identity.toString('base64url') } }), ctx()), 'ERR_MALFORMED')
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const jwk = ec.publicKey.export({ format: 'jwk' }) as JWK
    const y = Buffer.from(jwk.y!, 'base64url')
    y[31]! ^= 1
    await expectCode(verifyDpopProof(rawProof(ec.privateKey, { jwk: { ...jwk, y: y.toString('base64url') } }, { alg: 'ES256' }), ctx()), 'ERR_MALFORMED')
    await verifyDpopProof(rawProof(ec.privateKey, { jwk }, { alg: 'ES256' }), ctx())
  })

  it('a header seen before (decoded and checked once per exact segment): every check that depends on the call or the payload still runs', async () => {
    const a = edKey()
    const b = edKey()
    const header = { jwk: a.jwk }
    const first = await verifyDpopProof(rawProof(a.privateKey, header), ctx())
    // The same header segment again: an alg list without EdDSA refuses it, as it refused it before it was known.
    await expectCode(verifyDpopProof(rawProof(a.privateKey, header), ctx({ algorithms: ['ES256'] })), 'ERR_UNSUPPORTED_ALG')
    // Signed by another key under the known header; a payload that is not JSON; another token's key binding.
    await expectCode(verifyDpopProof(rawProof(b.privateKey, header), ctx()), 'ERR_SIGNATURE_INVALID')
    const known = rawProof(a.privateKey, header).split('.')[0]
    await expectCode(verifyDpopProof(`${known}.${b64u('{"jti":"x","jti":"y"}')}.${'A'.repeat(86)}`, ctx()), 'ERR_MALFORMED')
    await expectCode(verifyDpopProof(rawProof(a.privateKey, header), ctx({ jkt: 'another-thumbprint' })), 'ERR_KEY_MISMATCH')
    // A replayed proof with a known header is refused by the replay cache.
    const replayCache = createMemoryReplayCache({ clock: () => NOW_SEC * 1000 })
    const proof = rawProof(a.privateKey, header)
    await verifyDpopProof(proof, ctx({ replayCache }))
    await expectCode(verifyDpopProof(proof, ctx({ replayCache })), 'ERR_REPLAY')
    const again = await verifyDpopProof(rawProof(a.privateKey, header), ctx())
    expect(again.jkt).toBe(first.jkt)
    expect(again.jwk).toEqual(first.jwk)
    expect(Object.isFrozen(again.jwk)).toBe(true)
  })
})
