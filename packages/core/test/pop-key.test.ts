// The proof of possession's key path: the agent's key is handed to node:crypto as its JWK (no KeyObject),
// on the thread pool. Same verdicts as through a KeyObject, on every public vector.
import { verify as cryptoVerify } from 'node:crypto'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import {
  base64urlEncode,
  createProofOfPossession,
  encodeDidKey,
  generateEd25519KeyPair,
  publicKeyFromRaw,
  signerFromJwk,
  signJwt,
  decodeJwt,
  verifyJwsSignature,
  verifyJwsSignatureAsync,
  verifyProofOfPossession,
  VerificationError,
} from '@agentid/core'
import { readVector, rejected } from './helpers.js'

const wycheproof = readVector<any>('ed25519/wycheproof/ed25519_test.json')
const speccheck = readVector<any>('ed25519/speccheck/cases.annotated.json')
const verifyOnPool = promisify(cryptoVerify as (a: null, d: Buffer, k: unknown, s: Buffer, cb: (e: Error | null, ok: boolean) => void) => void)
const jwkOf = (raw: Uint8Array) => ({ kty: 'OKP' as const, crv: 'Ed25519' as const, x: base64urlEncode(raw) })

async function poolVerdict(msg: Buffer, key: unknown, sig: Buffer): Promise<boolean | 'threw'> {
  try {
    return await verifyOnPool(null, msg, key, sig)
  } catch {
    return 'threw'
  }
}

describe('an Ed25519 key given to verify as its JWK, on the pool: the verdicts of a KeyObject', () => {
  const cases = [
    ...wycheproof.testGroups.flatMap((g: any) => g.tests.map((t: any) => ({ pk: g.publicKey.pk as string, msg: t.msg as string, sig: t.sig as string }))),
    // speccheck: small-order, mixed-order and non-canonical public keys (A), small-order R.
    ...speccheck.cases.map((c: any) => ({ pk: c.pub_key as string, msg: c.message as string, sig: c.signature as string })),
  ]

  it(`${cases.length} Wycheproof and speccheck cases`, async () => {
    expect(cases.length).toBe(151 + 12)
    let accepted = 0
    for (const c of cases) {
      const raw = Buffer.from(c.pk, 'hex')
      const msg = Buffer.from(c.msg, 'hex')
      const sig = Buffer.from(c.sig, 'hex')
      const byObject = await poolVerdict(msg, publicKeyFromRaw(raw), sig)
      expect(await poolVerdict(msg, { key: jwkOf(raw), format: 'jwk' }, sig)).toBe(byObject)
      if (byObject === true) accepted++
    }
    expect(accepted).toBeGreaterThan(50) // the comparison covers both verdicts
  })
})

describe('verifyJwsSignatureAsync with a JWK', () => {
  const alice = generateEd25519KeyPair()
  const mallory = generateEd25519KeyPair()

  it('accepts the signer’s key, refuses another, and refuses what is not a public Ed25519 JWK', async () => {
    const jwt = decodeJwt(await signJwt({ typ: 'JWT' }, { iss: alice.did }, signerFromJwk(alice.privateJwk)))
    await verifyJwsSignatureAsync(jwt, alice.publicJwk)
    await verifyJwsSignatureAsync(jwt, alice.publicKey)
    expect(await rejected(() => verifyJwsSignatureAsync(jwt, mallory.publicJwk))).toMatchObject({ code: 'ERR_SIGNATURE_INVALID' })
    for (const bad of [alice.privateJwk, { ...alice.publicJwk, crv: 'X25519' }, { ...alice.publicJwk, kty: 'EC' }, { kty: 'OKP', crv: 'Ed25519' }, null]) {
      expect(await rejected(() => verifyJwsSignatureAsync(jwt, bad as any))).toBeInstanceOf(TypeError)
      expect(() => verifyJwsSignature(jwt, bad as any)).toThrow(TypeError)
    }
    // An x that is not 32 bytes: node:crypto's import refuses it, reported as a failed check.
    const short = await rejected(() => verifyJwsSignatureAsync(jwt, { ...alice.publicJwk, x: alice.publicJwk.x.slice(0, 40) }))
    expect(short).toBeInstanceOf(VerificationError)
    expect(short.code).toBe('ERR_SIGNATURE_INVALID')
  })
})

describe('verifyProofOfPossession: the agent key', () => {
  const audience = generateEd25519KeyPair().did
  const options = { audience, purpose: 'spawn' as const, now: Math.floor(Date.now() / 1000) }

  it('accepts a proof by the key its iss names, refuses one whose iss names another key', async () => {
    const agent = generateEd25519KeyPair()
    const other = generateEd25519KeyPair()
    const proof = await createProofOfPossession({ signer: signerFromJwk(agent.privateJwk), audience, purpose: 'spawn' })
    expect((await verifyProofOfPossession(proof, options)).did).toBe(agent.did)
    const signer = signerFromJwk(other.privateJwk)
    const forged = await createProofOfPossession({ signer: { ...signer, did: agent.did, keyId: `${agent.did}#${agent.did.slice(8)}`, sign: signer.sign }, audience, purpose: 'spawn' })
    expect(await rejected(() => verifyProofOfPossession(forged, options))).toMatchObject({ code: 'ERR_SIGNATURE_INVALID' })
  })

  it('a small-order key whose signature node:crypto accepts is refused, before the signature (both backends)', async () => {
    // A = the identity point: [S]B = R + [k]A holds for R = B, S = 1 whatever the message, and
    // node:crypto's cofactorless verify accepts it; the point check before the signature refuses the key.
    const identity = Buffer.alloc(32)
    identity[0] = 1
    const basePoint = Buffer.from('5866666666666666666666666666666666666666666666666666666666666666', 'hex')
    const one = Buffer.alloc(32)
    one[0] = 1
    const did = encodeDidKey(identity)
    const signer = { did, keyId: `${did}#${did.slice(8)}`, alg: 'EdDSA' as const, sign: () => Buffer.concat([basePoint, one]) }
    const proof = await createProofOfPossession({ signer, audience, purpose: 'spawn' })
    expect(() => verifyJwsSignature(decodeJwt(proof), jwkOf(identity))).not.toThrow()
    expect(() => verifyJwsSignature(decodeJwt(proof), publicKeyFromRaw(identity))).not.toThrow()
    const error = await rejected(() => verifyProofOfPossession(proof, options))
    expect(error).toBeInstanceOf(VerificationError)
    expect(error.details.didKeyError).toBe('invalidPublicKey')
  })
})
