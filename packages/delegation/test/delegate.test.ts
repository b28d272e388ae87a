import { decodeJwt, generateEd25519KeyPair, signerFromJwk, VerificationError, type AgentIdErrorCode } from '@agentid/core'
import { AGENT_CAPABILITY_CREDENTIAL, delegate, linkHash, parseCapabilityLink, type Capability, type Caveats } from '@agentid/delegation'
import { describe, expect, it } from 'vitest'

const issuerKeys = generateEd25519KeyPair()
const alice = generateEd25519KeyPair()
const bob = generateEd25519KeyPair()
const carol = generateEd25519KeyPair()
const mallory = generateEd25519KeyPair()
const issuer = signerFromJwk(issuerKeys.privateJwk)
const aliceSigner = signerFromJwk(alice.privateJwk)
const bobSigner = signerFromJwk(bob.privateJwk)
const mallorySigner = signerFromJwk(mallory.privateJwk)
const NOW = 1_800_000_000
const clock = () => NOW * 1000

const ALL: Capability[] = [{ resource: 'mcp://erp/tools/*', actions: ['*'] }]
const READ: Capability[] = [{ resource: 'mcp://erp/tools/invoices.read', actions: ['invoke'] }]

async function rootChain(caveats = {}, expiresIn = 3600): Promise<string[]> {
  return delegate({ signer: issuer, to: alice.did, capabilities: ALL, caveats: { remainingDepth: 2, maxDataClass: 'confidential', ...caveats }, expiresIn, clock })
}

async function refusal(promise: Promise<unknown>, code: AgentIdErrorCode): Promise<VerificationError> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error, `expected ${code}`).toBeInstanceOf(VerificationError)
  expect((error as VerificationError).code).toBe(code)
  return error as VerificationError
}

describe('delegate', () => {
  it('signs a root and a child link in the AgentCapabilityCredential format', async () => {
    const root = await rootChain()
    const chain = await delegate({ signer: aliceSigner, to: bob.did, parent: root, capabilities: READ, expiresIn: 600, clock })
    expect(chain).toHaveLength(2)
    expect(chain[0]).toBe(root[0])
    const { header, payload } = decodeJwt(chain[1])
    expect(header).toMatchObject({ alg: 'EdDSA', typ: 'JWT', kid: aliceSigner.keyId })
    expect(payload).toMatchObject({ iss: alice.did, sub: bob.did, nbf: NOW, exp: NOW + 600 })
    expect(payload.jti).toMatch(/^urn:uuid:[0-9a-f-]{36}$/)
    const vc = payload.vc as Record<string, any>
    expect(vc['@context']).toEqual(['https://www.w3.org/2018/credentials/v1', 'https://w3id.org/agentid/v1'])
    expect(vc.type).toEqual(['VerifiableCredential', AGENT_CAPABILITY_CREDENTIAL])
    expect(vc.credentialSubject).toEqual({
      id: bob.did,
      capabilities: READ,
      // Inherited: data class; depth one less than the parent's.
      caveats: { notBefore: NOW, expiresAt: NOW + 600, maxDataClass: 'confidential', remainingDepth: 1 },
      parentHash: linkHash(root[0]!),
    })
    expect(parseCapabilityLink(payload).parentHash).toBe(linkHash(root[0]!))
    expect(decodeJwt(root[0]).payload.vc).not.toHaveProperty('credentialSubject.parentHash')
  })

  it('clamps a lifetime to the parent\'s exp', async () => {
    const root = await rootChain({}, 100)
    const chain = await delegate({ signer: aliceSigner, to: bob.did, parent: root, capabilities: READ, expiresIn: 3600, clock })
    expect(decodeJwt(chain[1]).payload.exp).toBe(NOW + 100)
  })

  it('carries a status entry', async () => {
    const statusEntry = { type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: '3', statusListCredential: 'https://issuer.example/v1/status-lists/1' } as const
    const chain = await delegate({ signer: issuer, to: alice.did, capabilities: ALL, expiresIn: 60, statusEntry, clock })
    expect((decodeJwt(chain[0]).payload.vc as Record<string, unknown>).credentialStatus).toEqual(statusEntry)
  })

  it('refuses a wider capability, naming it', async () => {
    const root = await delegate({ signer: issuer, to: alice.did, capabilities: READ, expiresIn: 600, clock })
    const error = await refusal(delegate({ signer: aliceSigner, to: bob.did, parent: root, capabilities: ALL, expiresIn: 60, clock }), 'ERR_DELEGATION_ESCALATION')
    expect(error.details).toMatchObject({ link: 1, signer: alice.did, capability: ALL[0], action: '*' })
  })

  it.each<[string, Caveats]>([
    ['expiresAt', { expiresAt: NOW + 7200 }],
    ['notBefore', { notBefore: NOW - 10 }],
    ['maxDataClass', { maxDataClass: 'restricted' }],
    ['remainingDepth', { remainingDepth: 2 }],
    ['audience', { audience: ['svc-b'] }],
    ['constraints', { constraints: { region: ['eu', 'us'] } }],
  ])('refuses a wider %s, naming the caveat', async (caveat, caveats) => {
    const root = await rootChain({ audience: ['svc-a'], constraints: { region: ['eu'] } })
    const error = await refusal(delegate({ signer: aliceSigner, to: bob.did, parent: root, capabilities: READ, caveats, expiresIn: 60, clock }), 'ERR_DELEGATION_ESCALATION')
    expect(error.details).toMatchObject({ link: 1, signer: alice.did, caveat })
  })

  it('refuses to delegate below a link with no depth left', async () => {
    const root = await rootChain({ remainingDepth: 0 })
    const error = await refusal(delegate({ signer: aliceSigner, to: bob.did, parent: root, capabilities: READ, expiresIn: 60, clock }), 'ERR_DELEGATION_DEPTH')
    expect(error.details).toMatchObject({ link: 1, caveat: 'remainingDepth' })
    // Depth 1 → 0 → refused one step later.
    const two = await delegate({ signer: aliceSigner, to: bob.did, parent: await rootChain({ remainingDepth: 1 }), capabilities: READ, expiresIn: 60, clock })
    await refusal(delegate({ signer: bobSigner, to: carol.did, parent: two, capabilities: READ, expiresIn: 60, clock }), 'ERR_DELEGATION_DEPTH')
  })

  it('refuses to sign an 11th link (maxChainLength, default 10)', async () => {
    let chain = await delegate({ signer: issuer, to: alice.did, capabilities: ALL, expiresIn: 600, clock })
    let holder = aliceSigner
    for (let i = 1; i < 10; i++) {
      const next = generateEd25519KeyPair()
      chain = await delegate({ signer: holder, to: next.did, parent: chain, capabilities: ALL, expiresIn: 600, clock })
      holder = signerFromJwk(next.privateJwk)
    }
    expect(chain).toHaveLength(10)
    const error = await refusal(delegate({ signer: holder, to: bob.did, parent: chain, capabilities: ALL, expiresIn: 60, clock }), 'ERR_DELEGATION_DEPTH')
    expect(error.details).toMatchObject({ link: 10, maxChainLength: 10 })
    await refusal(delegate({ signer: aliceSigner, to: bob.did, parent: chain.slice(0, 1), capabilities: ALL, expiresIn: 60, clock, maxChainLength: 1 }), 'ERR_DELEGATION_DEPTH')
  })

  it('refuses a signer who is not the parent\'s subject', async () => {
    const root = await rootChain()
    const error = await refusal(delegate({ signer: mallorySigner, to: mallory.did, parent: root, capabilities: READ, expiresIn: 60, clock }), 'ERR_DELEGATION_BROKEN')
    expect(error.details).toMatchObject({ link: 1, signer: mallory.did })
  })

  it('refuses below an expired parent', async () => {
    const root = await rootChain({}, 10)
    await refusal(delegate({ signer: aliceSigner, to: bob.did, parent: root, capabilities: READ, expiresIn: 60, clock: () => (NOW + 20) * 1000 }), 'ERR_EXPIRED')
  })

  it('refuses misuse', async () => {
    await expect(delegate({ signer: issuer, to: 'did:web:x', capabilities: ALL, expiresIn: 60, clock })).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
    await expect(delegate({ signer: issuer, to: alice.did, capabilities: ALL, clock })).rejects.toThrow(TypeError)
    await expect(delegate({ signer: issuer, to: alice.did, capabilities: [], expiresIn: 60, clock })).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
  })
})
