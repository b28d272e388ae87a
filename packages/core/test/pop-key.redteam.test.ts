// Red team: proofs of possession under keys and nonces R that the did:key gate lets through or that
// only the signature check refuses (mixed-order keys, keys and R off the curve, R with a torsion
// part). Run on both backends (the unit-node-crypto project runs pop-*.test.ts on node:crypto): the
// PoP now checks the signature with libsodium on the caller's thread, node:crypto on the pool.
import { createHash } from 'node:crypto'
import { ed25519 } from '@noble/curves/ed25519'
import { describe, expect, it } from 'vitest'
import { createProofOfPossession, ed25519Backend, encodeDidKey, verifyProofOfPossession, type Signer } from '@agentid/core'
import { leBytes, leNumber, rejected } from './helpers.js'

const Point = ed25519.ExtendedPoint
const L = ed25519.CURVE.n
const mod = (x: bigint) => ((x % L) + L) % L
const audience = encodeDidKey(Point.BASE.multiply(7n).toRawBytes())
const now = 1_800_000_000
const options = { audience, purpose: 'spawn' as const, now }
let counter = 0
const bytes = (n: number) => createHash('sha512').update(`pop-key.redteam ${counter++}`).digest().subarray(0, n)
const challenge = (R: Uint8Array, A: Uint8Array, input: Uint8Array) => mod(leNumber(createHash('sha512').update(R).update(A).update(input).digest()))
// A torsion point of order 8 (speccheck's), and of order 2 (4 times it).
const T8 = Point.fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a')

/** A proof whose iss is the did:key of `key`, signed by `sign` over the signing input. */
function proofBy(key: Uint8Array, sign: (input: Uint8Array) => Uint8Array): Promise<string> {
  const did = encodeDidKey(key)
  const signer: Signer = { did, keyId: `${did}#${did.slice(8)}`, alg: 'EdDSA', sign: async (input: Uint8Array) => sign(input) }
  return createProofOfPossession({ signer, audience, purpose: 'spawn', clock: () => now * 1000 })
}
/** RFC 8032's signature with secret scalar `a` under the key `A` given (which need not be aB), nonce fixed by the test. */
const signAs = (a: bigint, A: Uint8Array) => (input: Uint8Array) => {
  const r = mod(leNumber(bytes(64)))
  const R = Point.BASE.multiply(r).toRawBytes()
  return Buffer.concat([R, leBytes(mod(r + challenge(R, A, input) * a))])
}
async function code(proof: string): Promise<string> {
  try {
    await verifyProofOfPossession(proof, options)
    return 'ok'
  } catch (error) {
    return (error as { code?: string }).code ?? String(error)
  }
}

describe(`verifyProofOfPossession (red team, ${ed25519Backend()})`, () => {
  it('a mixed-order key (aB + T): accepted exactly when the cofactorless equation holds (k T = 0), as on the other backend', async () => {
    let seen = { ok: 0, refused: 0 }
    for (const [torsion, order] of [[T8, 8n], [T8.multiply(4n), 2n]] as const) {
      for (let i = 0; i < 48; i++) {
        const a = mod(leNumber(bytes(64)))
        const A = Point.BASE.multiply(a).add(torsion).toRawBytes()
        let k = 0n
        const proof = await proofBy(A, (input) => {
          const signature = signAs(a, A)(input)
          k = challenge(signature.subarray(0, 32), A, input)
          return signature
        })
        const expected = k % order === 0n ? 'ok' : 'ERR_SIGNATURE_INVALID'
        expect(await code(proof), `order ${order}, k mod ${order} = ${k % order}`).toBe(expected)
        seen = expected === 'ok' ? { ...seen, ok: seen.ok + 1 } : { ...seen, refused: seen.refused + 1 }
      }
    }
    expect(seen.ok).toBeGreaterThan(3) // both verdicts were tried
    expect(seen.refused).toBeGreaterThan(3)
  })

  it('a key off the curve, R off the curve, R with a torsion part, S + L: ERR_SIGNATURE_INVALID, never another error', async () => {
    const offCurve = () => {
      for (;;) {
        const y = Buffer.from(bytes(32))
        y[31]! &= 0x7f
        try {
          Point.fromHex(y)
        } catch {
          return y
        }
      }
    }
    for (let i = 0; i < 8; i++) {
      const a = mod(leNumber(bytes(64)))
      const A = Point.BASE.multiply(a).toRawBytes()
      expect(await code(await proofBy(offCurve(), () => bytes(64)))).toBe('ERR_SIGNATURE_INVALID')
      const honest = await proofBy(A, signAs(a, A))
      expect(await code(honest)).toBe('ok')
      const tampered = (edit: (s: Buffer) => Buffer) => proofBy(A, (input) => edit(Buffer.from(signAs(a, A)(input))))
      expect(await code(await tampered((s) => Buffer.concat([offCurve(), s.subarray(32)])))).toBe('ERR_SIGNATURE_INVALID')
      expect(await code(await tampered((s) => Buffer.concat([Point.fromHex(s.subarray(0, 32)).add(T8).toRawBytes(), s.subarray(32)])))).toBe('ERR_SIGNATURE_INVALID')
      expect(await code(await tampered((s) => Buffer.concat([s.subarray(0, 32), leBytes(leNumber(s.subarray(32)) + L)])))).toBe('ERR_SIGNATURE_INVALID')
    }
  })

  it('a key given as its negation (sign bit flipped) signs only with the negated scalar', async () => {
    const a = mod(leNumber(bytes(64)))
    const negated = Buffer.from(Point.BASE.multiply(a).toRawBytes())
    negated[31]! ^= 0x80
    expect(await code(await proofBy(negated, signAs(a, negated)))).toBe('ERR_SIGNATURE_INVALID')
    expect(await code(await proofBy(negated, signAs(mod(L - a), negated)))).toBe('ok')
  })
})
