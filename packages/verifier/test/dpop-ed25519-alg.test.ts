// RFC 9864 fully-specified `alg: "Ed25519"` on DPoP proofs: what openid-client v6 sends for an Ed25519
// key (oauth4webapi keyToJws). It is EdDSA over Ed25519: accepted wherever EdDSA is, with the same checks.
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import { VerificationError } from '@agentid/core'
import { createMemoryReplayCache, verifyDpopProof, type DpopProofContext } from '@agentid/verifier'
import { calculateJwkThumbprint, type JWK } from 'jose'
import { describe, expect, it } from 'vitest'

const URL_ = 'https://erp.example/invoices'
const NOW_SEC = 1_800_000_000
let counter = 0
const b64u = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')

function ctx(over: Partial<DpopProofContext> = {}): DpopProofContext {
  return { method: 'GET', url: URL_, now: () => NOW_SEC * 1000, clockSkewSec: 60, maxAgeSec: 60, replayCache: createMemoryReplayCache({ clock: () => NOW_SEC * 1000 }), ...over }
}

function proof(privateKey: KeyObject, jwk: Record<string, unknown>, alg = 'Ed25519', payload: Record<string, unknown> = {}): string {
  const input = `${b64u({ typ: 'dpop+jwt', alg, jwk })}.${b64u({ jti: `p-${++counter}`, htm: 'GET', htu: URL_, iat: NOW_SEC, ...payload })}`
  return `${input}.${sign(null, Buffer.from(input), privateKey).toString('base64url')}`
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  if (error === undefined) return undefined
  expect(error).toBeInstanceOf(VerificationError)
  return (error as VerificationError).code
}

describe('verifyDpopProof: alg Ed25519 (RFC 9864)', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const jwk = { kty: 'OKP', crv: 'Ed25519', x: publicKey.export({ format: 'jwk' }).x }

  it('verifies like EdDSA, with the same thumbprint', async () => {
    const jkt = await calculateJwkThumbprint(jwk as JWK, 'sha256')
    expect((await verifyDpopProof(proof(privateKey, jwk), ctx({ jkt }))).jkt).toBe(jkt)
    expect((await verifyDpopProof(proof(privateKey, jwk, 'EdDSA'), ctx({ jkt }))).jkt).toBe(jkt)
  })

  it('is refused when EdDSA is not allowed, with another key, a P-256 jwk, or a replayed jti', async () => {
    expect(await codeOf(verifyDpopProof(proof(privateKey, jwk), ctx({ algorithms: ['ES256'] })))).toBe('ERR_UNSUPPORTED_ALG')
    expect(await codeOf(verifyDpopProof(proof(generateKeyPairSync('ed25519').privateKey, jwk), ctx()))).toBe('ERR_SIGNATURE_INVALID')
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' })
    expect(await codeOf(verifyDpopProof(proof(privateKey, ec as Record<string, unknown>), ctx()))).toBe('ERR_UNSUPPORTED_ALG')
    const c = ctx()
    const once = proof(privateKey, jwk)
    expect(await codeOf(verifyDpopProof(once, c))).toBeUndefined()
    expect(await codeOf(verifyDpopProof(once, c))).toBe('ERR_REPLAY')
    // Other spellings are not aliases.
    expect(await codeOf(verifyDpopProof(proof(privateKey, jwk, 'ed25519'), ctx()))).toBe('ERR_UNSUPPORTED_ALG')
  })
})
