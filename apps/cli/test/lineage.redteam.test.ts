// `agentid lineage inspect` red team: its verdict per entry agrees with the verifier on the actors' keys.
import { encodeDidKey, generateEd25519KeyPair, signCompactJws, signerFromJwk, type Signer } from '@agentid/core'
import { HOP_TYP } from '@agentid/lineage'
import { describe, expect, it } from 'vitest'
import { cli } from './fixtures.js'

// The identity point as a did:key, and a signature that verifies under it for any message: with A the
// identity, the cofactorless equation [S]B = R + [k]A is [S]B = R, so R = B and S = 1 always pass.
const weak = encodeDidKey(Buffer.concat([Buffer.from([1]), Buffer.alloc(31)]))
const BASE_POINT = Buffer.from('5866666666666666666666666666666666666666666666666666666666666666', 'hex')
const ONE = Buffer.concat([Buffer.from([1]), Buffer.alloc(31)])

describe('agentid lineage inspect (red team)', () => {
  it('refuses an entry "signed" under a small-order did:key (anyone can make that signature), as verifyLineage does', async () => {
    const now = Math.floor(Date.now() / 1000)
    const claims = {
      txn: 'txn-weak-key-0001', idx: 0, prv: 'A'.repeat(43), iss: weak, crd: 'B'.repeat(43), sts: ['https://issuer.example/v1/status-lists/1', '1'],
      aud: 'https://tool.example', cmd: 'POST /charges', arg: 'C'.repeat(43), iat: now, exp: now + 60, jti: 'weak-key-entry-0001',
    }
    const forger = { did: weak, keyId: `${weak}#${weak.slice(8)}`, sign: async () => Buffer.concat([BASE_POINT, ONE]) } as unknown as Signer
    const forged = await signCompactJws({ alg: 'EdDSA', typ: HOP_TYP }, JSON.stringify(claims), forger)
    const out = await cli(['lineage', 'inspect', '--json', forged])
    expect(out.code).toBe(1)
    expect(out.json().entries[0]).toMatchObject({ actor: weak, verdict: 'refused', error: { code: 'ERR_SIGNATURE_INVALID', reason: 'signature' } })
  })

  it('refuses an entry whose header kid names another key than its signer\'s, as verifyLineage does (ERR_KEY_MISMATCH)', async () => {
    const [a, other] = [generateEd25519KeyPair(), generateEd25519KeyPair()]
    const now = Math.floor(Date.now() / 1000)
    const claims = {
      txn: 'txn-kid-check-0001', idx: 0, prv: 'A'.repeat(43), iss: a.did, crd: 'B'.repeat(43), sts: ['https://issuer.example/v1/status-lists/1', '1'],
      aud: 'https://tool.example', cmd: 'POST /charges', arg: 'C'.repeat(43), iat: now, exp: now + 60, jti: 'kid-check-entry-0001',
    }
    const entry = (kid: string) => signCompactJws({ alg: 'EdDSA', typ: HOP_TYP, kid }, JSON.stringify(claims), signerFromJwk(a.privateJwk))
    const multibase = a.did.slice('did:key:'.length)
    for (const kid of [`${a.did}#${multibase}`, `#${multibase}`]) {
      const out = await cli(['lineage', 'inspect', '--json', await entry(kid)])
      expect([out.code, out.json().entries[0].verdict], kid).toEqual([0, 'ok'])
    }
    for (const kid of ['', `${other.did}#${other.did.slice(8)}`, `${a.did}#other`, multibase]) {
      const out = await cli(['lineage', 'inspect', '--json', await entry(kid)])
      expect(out.code, kid).toBe(1)
      expect(out.json().entries[0], kid).toMatchObject({ verdict: 'refused', error: { code: 'ERR_KEY_MISMATCH', reason: 'signer-key' } })
    }
  })
})
