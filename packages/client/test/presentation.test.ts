import { AGENTID_CONTEXT_V1, decodeJwt, generateEd25519KeyPair, signerFromJwk, signJwt, StatusList, VC_CONTEXT_V1 } from '@agentid/core'
import { createPresentation, PRESENTATION_TYP } from '@agentid/client'
import { delegate } from '@agentid/delegation'
import { createVerifier, PRESENTATION_TYP as VERIFIER_TYP, VerificationError } from '@agentid/verifier'
import { describe, expect, it } from 'vitest'

const T = 1_800_000_000
const AUD = 'https://erp.example'
const LIST = 'https://issuer.example/v1/status-lists/1'
const issuer = signerFromJwk(generateEd25519KeyPair().privateJwk)
const alice = generateEd25519KeyPair()
const mallory = generateEd25519KeyPair()

async function identity(sub: string): Promise<string> {
  return signJwt({ typ: 'JWT' }, {
    iss: issuer.did, sub, nbf: T - 10, exp: T + 3600, jti: 'urn:uuid:7d1f0a52-7a39-4c3e-9a4c-2f1b3c4d5e6f',
    vc: {
      '@context': [VC_CONTEXT_V1, AGENTID_CONTEXT_V1],
      type: ['VerifiableCredential', 'AgentIdentityCredential'],
      credentialSubject: { id: sub, purpose: 'triage', controller: 'did:web:acme.example', model: { name: 'm', version: '1' }, toolProfile: ['mcp://erp/tools/invoices.read'], policyTier: 'standard', dataAccessClass: 'internal' },
      credentialStatus: { type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: '3', statusListCredential: LIST },
    },
  }, issuer)
}

async function statusList(): Promise<string> {
  return signJwt({ typ: 'JWT' }, {
    iss: issuer.did, jti: LIST, iat: T - 60, nbf: T - 60,
    vc: { '@context': [VC_CONTEXT_V1], type: ['VerifiableCredential', 'BitstringStatusListCredential'], credentialSubject: { id: `${LIST}#list`, type: 'BitstringStatusList', statusPurpose: 'revocation', encodedList: StatusList.create().encode() } },
  }, issuer)
}

describe('createPresentation', () => {
  it('builds what the verifier accepts, once', async () => {
    const credential = await identity(alice.did)
    const body = await statusList()
    const verifier = createVerifier({ trustedIssuers: [issuer.did], clock: () => T * 1000, fetch: async () => ({ ok: true, status: 200, text: async () => body }) })
    const vp = await createPresentation({ privateJwk: alice.privateJwk, credential, audience: AUD, nonce: 'n-1', clock: () => T * 1000 })
    const result = await verifier.verifyPresentation(vp, { audience: AUD, nonce: 'n-1' })
    expect(result.agent.did).toBe(alice.did)
    expect(result.capabilities).toEqual([{ resource: 'mcp://erp/tools/invoices.read', actions: ['*'] }])
    const error = await verifier.verifyPresentation(vp, { audience: AUD, nonce: 'n-1' }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(VerificationError)
    expect((error as VerificationError).code).toBe('ERR_REPLAY')
  })

  it('carries a delegation chain the verifier checks as a whole', async () => {
    const body = await statusList()
    const verifier = createVerifier({ trustedIssuers: [issuer.did], clock: () => T * 1000, fetch: async () => ({ ok: true, status: 200, text: async () => body }) })
    const chain = await delegate({ signer: issuer, to: alice.did, capabilities: [{ resource: 'mcp://erp/tools/*', actions: ['invoke'] }], expiresIn: 600, clock: () => T * 1000 })
    const vp = await createPresentation({ privateJwk: alice.privateJwk, credential: await identity(alice.did), audience: AUD, delegationChain: chain, clock: () => T * 1000 })
    const result = await verifier.verifyPresentation(vp, { audience: AUD })
    expect(result.capabilities).toEqual([{ resource: 'mcp://erp/tools/*', actions: ['invoke'] }])
    expect(result.delegation?.root).toBe(issuer.did)
  })

  it('writes the documented header and claims', async () => {
    const credential = await identity(alice.did)
    const signer = signerFromJwk(alice.privateJwk)
    const vp = await createPresentation({ signer, credential, audience: AUD, delegationChain: ['a.b.c'], ttlSec: 120, clock: () => T * 1000 })
    const { header, payload } = decodeJwt(vp)
    expect(PRESENTATION_TYP).toBe(VERIFIER_TYP)
    expect(header).toEqual({ alg: 'EdDSA', typ: 'agentid-vp+jwt', kid: alice.keyId })
    expect(payload).toMatchObject({ iss: alice.did, aud: AUD, iat: T, exp: T + 120, vp: { type: ['VerifiablePresentation'], verifiableCredential: [credential], delegationChain: ['a.b.c'] } })
    expect(payload.jti).toMatch(/^[0-9a-f-]{36}$/)
    expect('nonce' in payload).toBe(false)
  })

  it('refuses misuse with a TypeError', async () => {
    const credential = await identity(alice.did)
    const base = { privateJwk: alice.privateJwk, credential, audience: AUD }
    await expect(createPresentation({ credential, audience: AUD })).rejects.toBeInstanceOf(TypeError)
    await expect(createPresentation({ ...base, audience: '' })).rejects.toBeInstanceOf(TypeError)
    await expect(createPresentation({ ...base, ttlSec: 301 })).rejects.toBeInstanceOf(TypeError)
    await expect(createPresentation({ ...base, credential: 'not a jwt' })).rejects.toBeInstanceOf(TypeError)
    await expect(createPresentation({ ...base, privateJwk: mallory.privateJwk })).rejects.toBeInstanceOf(TypeError) // alice's credential
    await expect(createPresentation({ ...base, delegationChain: [] })).rejects.toBeInstanceOf(TypeError)
  })
})
