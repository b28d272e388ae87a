// Red team of the verifier's Ed25519 backends (libsodium under a raw key where core's addon loads,
// node:crypto otherwise and for offloaded checks): a did:key whose key is of small order or not
// canonical. libsodium refuses such a key inside its verify; node:crypto's cofactorless equation
// accepts a signature made for it (under the identity point, any R = [S]B), and the key was refused
// only after the signature. The outcome must not depend on the backend, nor on offloadSignatures.
import { createHash, randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { describe, expect, it, vi } from 'vitest'
import { leBytes, leNumber } from '../../core/test/helpers.js'

type Core = typeof import('@agentid/core')
type VerifierModule = typeof import('@agentid/verifier')
type Keys = typeof import('../src/keys.js')
type Fixtures = typeof import('./fixtures.js')

/** Fresh core, verifier and fixtures whose Ed25519 backend is chosen with AGENTID_ED25519 = `env`. */
async function load(env: string): Promise<{ core: Core; verifier: VerifierModule; keys: Keys; fx: Fixtures; name: string }> {
  vi.resetModules()
  vi.stubEnv('AGENTID_ED25519', env)
  const core = await import('@agentid/core')
  const name = core.ed25519Backend()
  vi.unstubAllEnvs()
  const verifier = await import('@agentid/verifier')
  const keys = await import('../src/keys.js')
  const fx = await import('./fixtures.js')
  return { core, verifier, keys, fx, name }
}

// Loaded anew for each backend and used before the next is loaded: the verifier imports some of its
// modules on first use (presentations), which would otherwise come from the other backend's registry.
const ENVS = ['', 'node:crypto'] as const

// The curve arithmetic core depends on (not a dependency of the verifier's own).
const { ed25519 } = createRequire(new URL('../../core/package.json', import.meta.url))('@noble/curves/ed25519') as typeof import('@noble/curves/ed25519')
const Point = ed25519.ExtendedPoint
const L = ed25519.CURVE.n
const hex = (h: string) => Buffer.from(h, 'hex')
const order8 = Point.fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a')

/** Weak Ed25519 keys a did:key can carry (its syntax is checked before the signature, its point after). */
const WEAK: readonly (readonly [string, Buffer])[] = [
  ['identity', hex('0100000000000000000000000000000000000000000000000000000000000000')],
  ['identity, sign bit set (x = 0)', hex('0100000000000000000000000000000000000000000000000000000000000080')],
  ['identity as y = p + 1', hex('eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')],
  ['order 2 (y = p - 1)', hex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')],
  ['order 2, sign bit set (speccheck 10/11)', hex('ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff')],
  ['order 4 as y = p', hex('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f')],
  ['order 8', Buffer.from(order8.toRawBytes())],
  ['order 8, its negation', Buffer.from(order8.negate().toRawBytes())],
]

/**
 * A signature over `data` that node:crypto's cofactorless equation accepts under the small-order key
 * `key` without any secret: R = [S]B - [t]A, ground until [h]A = [t]A.
 */
function forge(key: Buffer, data: Uint8Array): Buffer {
  const A = Point.fromHex(key, true) // zip215: takes the non-canonical encodings too
  for (;;) {
    const S = leNumber(randomBytes(32)) % L
    const t = BigInt(randomBytes(1)[0]! & 7)
    const R = Point.BASE.multiply(S === 0n ? 1n : S).subtract(A.multiplyUnsafe(t))
    const Renc = R.toRawBytes()
    const h = leNumber(createHash('sha512').update(Renc).update(key).update(data).digest()) % L
    if (A.multiplyUnsafe(h).equals(A.multiplyUnsafe(t))) return Buffer.concat([Renc, leBytes(S === 0n ? 1n : S)])
  }
}

interface Outcome {
  code: string
  message?: string
  didKeyError?: unknown
}

async function outcome(p: Promise<unknown> | (() => unknown)): Promise<Outcome | 'accepted'> {
  try {
    await (typeof p === 'function' ? p() : p)
    return 'accepted'
  } catch (error) {
    const e = error as { code?: string; message: string; details?: { didKeyError?: unknown } }
    expect(typeof e.code, String(error)).toBe('string')
    return { code: e.code!, message: e.message, didKeyError: e.details?.didKeyError }
  }
}

const KEY_REFUSED = { code: 'ERR_DID_UNRESOLVABLE', didKeyError: 'invalidPublicKey' }

describe('a weak did:key gets one answer on every backend, offloaded or not', () => {
  it('the forged signatures do satisfy node:crypto\'s equation (the premise): libsodium refuses them inside its verify', async () => {
    const sodium = await load(ENVS[0])
    const node = await load(ENVS[1])
    expect([sodium.name, node.name]).toEqual(['libsodium', 'node:crypto'])
    const data = Buffer.from('eyJhbGciOiJFZERTQSJ9.e30')
    for (const [name, key] of WEAK) {
      const sig = forge(key, data)
      expect(node.core.hasSmallOrderR(sig), name).toBe(false)
      expect(node.core.verifyJwsSignatureRaw.length).toBe(2)
      await expect(outcome(() => node.core.verifyJwsSignatureRaw({ signingInput: data.toString(), signature: sig }, key)), name).resolves.toBe('accepted')
      await expect(outcome(() => sodium.core.verifyJwsSignatureRaw({ signingInput: data.toString(), signature: sig }, key)), name).resolves.toMatchObject({ code: 'ERR_SIGNATURE_INVALID' })
    }
  })

  it('a credential issued under it (a trusted issuer that is such a did:key): ERR_DID_UNRESOLVABLE, invalidPublicKey, whether its signature holds or not', async () => {
    for (const [name, key] of WEAK) {
      const results = new Set<string>()
      for (const env of ENVS) {
        const b = await load(env)
        const weak = b.core.encodeDidKey(key)
        for (const bad of [false, true]) {
          const signer = {
            did: weak,
            keyId: `${weak}#${weak.slice(8)}`,
            alg: 'EdDSA' as const,
            sign: async (data: Uint8Array) => {
              const sig = forge(key, data)
              if (bad) sig[40]! ^= 1
              return sig
            },
          }
          const jwt = await b.fx.credential({ signer })
          const server = b.fx.statusServer({ [b.fx.LIST_URL]: await b.fx.statusListJwt(b.core.StatusList.create()) })
          for (const offloadSignatures of [false, true]) {
            const v = b.verifier.createVerifier({ trustedIssuers: [weak], fetch: server, clock: b.fx.testClock(), statusTtlMs: 1000, statusGraceMs: 0, offloadSignatures })
            const got = await outcome(v.verifyAgentCredential(jwt))
            expect(got, `${name}, ${b.name}, offload ${offloadSignatures}, bad signature ${bad}`).toMatchObject(KEY_REFUSED)
            results.add(JSON.stringify(got))
          }
        }
      }
      expect([...results].length, name).toBe(1) // the same message too
    }
  })

  it('a presentation signed under it: ERR_SIGNATURE_INVALID with one message, on every backend, offloaded or not', async () => {
    for (const [name, key] of WEAK) {
      const results = new Set<string>()
      for (const env of ENVS) {
        const b = await load(env)
        const weak = b.core.encodeDidKey(key)
        const signer = { did: weak, keyId: `${weak}#${weak.slice(8)}`, alg: 'EdDSA' as const, sign: async (data: Uint8Array) => forge(key, data) }
        const server = b.fx.statusServer({ [b.fx.LIST_URL]: await b.fx.statusListJwt(b.core.StatusList.create()) })
        const jwt = await b.core.signJwt(
          { typ: b.verifier.PRESENTATION_TYP, kid: signer.keyId },
          { iss: weak, aud: 'https://erp.example', iat: b.fx.NOW, exp: b.fx.NOW + 60, jti: 'presentation-weak-0001', vp: { type: ['VerifiablePresentation'], verifiableCredential: [await b.fx.credential({ sub: weak })] } },
          signer,
        )
        for (const offloadSignatures of [false, true]) {
          const v = b.verifier.createVerifier({ trustedIssuers: [b.fx.issuer.did], fetch: server, clock: b.fx.testClock(), statusTtlMs: 1000, statusGraceMs: 0, offloadSignatures })
          const got = await outcome(v.verifyPresentation(jwt, { audience: 'https://erp.example' }))
          expect(got, `${name}, ${b.name}, offload ${offloadSignatures}`).toMatchObject({ code: 'ERR_SIGNATURE_INVALID' })
          results.add(JSON.stringify(got))
        }
      }
      expect([...results], name).toHaveLength(1)
    }
  })

  it('VerificationKey (delegation links, lineage entries, credentials): a resolved weak key is refused before the signature, on each path, first use or later', async () => {
    for (const [name, key] of WEAK) {
      const results = new Set<string>()
      for (const env of ENVS) {
        const b = await load(env)
        const weak = b.core.encodeDidKey(key)
        const signingInput = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0'
        const jws = { signingInput, signature: forge(key, Buffer.from(signingInput)) }
        for (const via of ['sync', 'async', 'offload'] as const) {
          const resolver = new b.keys.KeyResolver({ resolve: async () => { throw new Error('not used') } } as never, 16, 60_000, () => 0, true)
          const keys = resolver.keysForSync(weak, 'assertionMethod')!
          expect(keys).toHaveLength(1)
          for (let use = 0; use < 2; use++) {
            const got = await outcome(via === 'sync' ? () => b.keys.verifyUnderAnyKeySync(keys, jws) : b.keys.verifyUnderAnyKey(keys, jws, via === 'offload'))
            expect(got, `${name}, ${b.name}, ${via}, use ${use}`).toMatchObject(KEY_REFUSED)
            results.add(JSON.stringify(got))
          }
        }
      }
      expect([...results], name).toHaveLength(1)
    }
  })

  it('a sound key still verifies, and a bad signature under it is ERR_SIGNATURE_INVALID, on each path', async () => {
    for (const env of ENVS) {
      const b = await load(env)
      const pair = b.core.generateEd25519KeyPair()
      const jws = b.core.decodeJwt(await b.core.signJwt({}, { sub: 'x' }, b.core.signerFromJwk(pair.privateJwk)))
      const bad = { ...jws, signature: Buffer.from(jws.signature) }
      bad.signature[5]! ^= 1
      for (const via of ['sync', 'async', 'offload'] as const) {
        const resolver = new b.keys.KeyResolver({ resolve: async () => { throw new Error('not used') } } as never, 16, 60_000, () => 0, true)
        const keys = resolver.keysForSync(pair.did, 'assertionMethod')!
        const run = (j: typeof jws) => (via === 'sync' ? () => b.keys.verifyUnderAnyKeySync(keys, j) : b.keys.verifyUnderAnyKey(keys, j, via === 'offload'))
        expect(await outcome(run(bad)), `${b.name} ${via}`).toMatchObject({ code: 'ERR_SIGNATURE_INVALID' })
        expect(await outcome(run(jws)), `${b.name} ${via}`).toBe('accepted')
        expect(await outcome(run(bad)), `${b.name} ${via}`).toMatchObject({ code: 'ERR_SIGNATURE_INVALID' })
      }
    }
  })
})

describe('DPoP proofs (EdDSA on libsodium under the jwk\'s raw key, or node:crypto; offloaded: node:crypto)', () => {
  const URL_ = 'https://erp.example/invoices'
  const NOW_SEC = 1_800_000_000
  const b64u = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  const seed = createHash('sha256').update('dpop red team key').digest()
  const { scalar, pointBytes } = ed25519.utils.getExtendedPublicKey(seed)
  const jwk = { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(pointBytes).toString('base64url') }
  let counter = 0

  /** A proof under `header.jwk` (default: the key above) whose signature `signature` makes from the signing input. */
  function proof(signature: (input: string) => Uint8Array, header: Record<string, unknown> = {}): string {
    const input = `${b64u({ typ: 'dpop+jwt', alg: 'EdDSA', jwk, ...header })}.${b64u({ jti: `rt-${++counter}`, htm: 'GET', htu: URL_, iat: NOW_SEC })}`
    return `${input}.${Buffer.from(signature(input)).toString('base64url')}`
  }
  const honest = (input: string) => ed25519.sign(Buffer.from(input), seed)
  // R = identity, S = h·a: node:crypto's equation holds; libsodium refuses R of small order.
  const identityR = (input: string) => {
    const R = Buffer.concat([Buffer.from([1]), Buffer.alloc(31)])
    const h = leNumber(createHash('sha512').update(R).update(pointBytes).update(input).digest()) % L
    return Buffer.concat([R, leBytes((h * scalar) % L)])
  }
  const weakKey = { kty: 'OKP', crv: 'Ed25519', x: Buffer.concat([Buffer.from([1]), Buffer.alloc(31)]).toString('base64url') }
  const cases: Record<string, [() => string, Outcome | 'accepted']> = {
    honest: [() => proof(honest), 'accepted'],
    'identity R by the key holder': [() => proof(identityR), { code: 'ERR_SIGNATURE_INVALID', message: 'dpop: proof signature does not verify under its jwk' }],
    'a bit flipped': [() => proof((i) => { const s = honest(i); s[33]! ^= 1; return s }), { code: 'ERR_SIGNATURE_INVALID', message: 'dpop: proof signature does not verify under its jwk' }],
    '63 bytes': [() => proof((i) => honest(i).subarray(0, 63)), { code: 'ERR_SIGNATURE_INVALID', message: 'dpop: proof signature does not verify under its jwk' }],
    '65 bytes': [() => proof((i) => Buffer.concat([honest(i), Buffer.alloc(1)])), { code: 'ERR_SIGNATURE_INVALID', message: 'dpop: proof signature does not verify under its jwk' }],
    'the identity point as jwk, any R = [S]B': [() => proof(() => Buffer.concat([Buffer.from(Point.BASE.toRawBytes()), leBytes(1n)]), { jwk: weakKey }), { code: 'ERR_MALFORMED', message: 'dpop: jwk is not a valid public key' }],
  }

  it.each(Object.keys(cases))('%s: one answer on both backends, offloaded or not', async (name) => {
    const [make, expected] = cases[name]!
    const seen = new Set<string>()
    for (const env of ENVS) {
      const b = await load(env)
      for (const offloadSignatures of [false, true]) {
        for (let use = 0; use < 2; use++) { // the second with the proof's header and key cached
          const ctx = { method: 'GET', url: URL_, now: () => NOW_SEC * 1000, clockSkewSec: 60, maxAgeSec: 60, replayCache: b.verifier.createMemoryReplayCache({ clock: () => NOW_SEC * 1000 }), offloadSignatures }
          const got = await outcome(b.verifier.verifyDpopProof(make(), ctx))
          const summary = got === 'accepted' ? got : { code: got.code, message: got.message }
          expect(summary, `${b.name}, offload ${offloadSignatures}, use ${use}`).toEqual(expected)
          seen.add(JSON.stringify(summary))
        }
      }
    }
    expect([...seen]).toHaveLength(1)
  })
})
