// Verified delegation links memoized by their exact bytes: a hit skips decoding, parsing and the
// signature, never time, revocation, linkage, root trust, the request or the invoker; a hit whose
// key is no longer the signer's is checked again. And the default resolver's did:key fast path.
import { generateEd25519KeyPair, signerFromJwk, StatusList, VerificationError, type Signer, type VerificationErrorCode } from '@agentid/core'
import { delegate, type Capability } from '@agentid/delegation'
import { createVerifier, type DidResolver, type Verifier, type VerifierOptions } from '@agentid/verifier'
import { Resolver } from 'did-resolver'
import { getResolver } from 'key-did-resolver'
import { beforeEach, describe, expect, it } from 'vitest'
import { alice, bob, issuer, LIST_URL, NOW, statusListJwt, statusServer, testClock } from './fixtures.js'

const carol = generateEd25519KeyPair()
const aliceSigner = signerFromJwk(alice.privateJwk)
const bobSigner = signerFromJwk(bob.privateJwk)
const ERP: Capability[] = [{ resource: 'mcp://erp/tools/*', actions: ['*'] }]
const READ: Capability[] = [{ resource: 'mcp://erp/tools/invoices/read', actions: ['invoke'] }]
const REQUEST = { invoker: carol.did, resource: 'mcp://erp/tools/invoices/read', action: 'invoke' } as const
const status = (index: number) => ({ type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: String(index), statusListCredential: LIST_URL }) as const

let list: StatusList
let server: ReturnType<typeof statusServer>
let clock: ReturnType<typeof testClock>
const at = () => clock()

function make(extra: Partial<VerifierOptions> = {}): Verifier {
  return createVerifier({ trustedIssuers: [issuer.did], fetch: server, clock, statusTtlMs: 1000, statusGraceMs: 0, ...extra })
}

async function refresh(): Promise<void> {
  server = statusServer({ [LIST_URL]: await statusListJwt(list) })
}

beforeEach(async () => {
  list = StatusList.create()
  await refresh()
  clock = testClock()
})

/** root (signed by `root`) → alice → bob → carol; status entries 1, 2, 3. */
async function chain(root: Signer = issuer): Promise<string[]> {
  const r = await delegate({ signer: root, to: alice.did, capabilities: ERP, caveats: { remainingDepth: 3 }, expiresIn: 3600, statusEntry: status(1), clock: at })
  const ab = await delegate({ signer: aliceSigner, to: bob.did, parent: r, capabilities: ERP, expiresIn: 1800, statusEntry: status(2), clock: at })
  return delegate({ signer: bobSigner, to: carol.did, parent: ab, capabilities: READ, expiresIn: 600, statusEntry: status(3), clock: at })
}

async function expectCode(p: Promise<unknown>, code: VerificationErrorCode, link?: number): Promise<void> {
  const error = await p.then(() => null, (e: unknown) => e)
  expect(error).toBeInstanceOf(VerificationError)
  expect((error as VerificationError).code).toBe(code)
  if (link !== undefined) expect((error as VerificationError).details.link).toBe(link)
}

describe('verifyDelegation: memoized links', () => {
  it('the leaf capabilities handed back are frozen: a caller cannot widen what a later call with the same (memoized) chain grants', async () => {
    const v = make()
    const c = await chain()
    const first = await v.verifyDelegation(c, REQUEST)
    expect(Object.isFrozen(first.leaf.capabilities)).toBe(true)
    expect(() => (first.leaf.capabilities as Capability[]).push({ resource: 'mcp://erp/tools/*', actions: ['*'] })).toThrow(TypeError)
    await expectCode(v.verifyDelegation(c, { ...REQUEST, resource: 'mcp://erp/tools/payroll/run' }), 'ERR_NOT_AUTHORIZED', 2)
  })

  it('the same chain again is a memo hit (the parsed leaf comes back), a new array of the same strings too', async () => {
    const v = make()
    const c = await chain()
    const first = await v.verifyDelegation(c, REQUEST)
    const again = await v.verifyDelegation([...c], REQUEST)
    expect(again.leaf.capabilities).toBe(first.leaf.capabilities)
    // With room for one link, the leaf is evicted by the links of another chain: parsed anew.
    const small = make({ linkMemoSize: 1 })
    const a = await small.verifyDelegation(c, REQUEST)
    await small.verifyDelegation(await chain(), REQUEST)
    const b = await small.verifyDelegation(c, REQUEST)
    expect(b.leaf.capabilities).not.toBe(a.leaf.capabilities)
    expect(b).toEqual(a)
  })

  it('a hit is still refused once a link expires or before it is valid', async () => {
    const v = make()
    const c = await chain()
    await v.verifyDelegation(c, REQUEST)
    clock.set((NOW + 600 + 60) * 1000) // the leaf's exp + skew
    await expectCode(v.verifyDelegation(c, REQUEST), 'ERR_EXPIRED', 2)
    clock.set((NOW - 61) * 1000)
    await expectCode(v.verifyDelegation(c, REQUEST), 'ERR_NOT_YET_VALID', 0)
    clock.set(NOW * 1000)
    expect((await v.verifyDelegation(c, REQUEST)).links).toBe(3)
  })

  it('a hit on the verifier that memoized the chain is refused once the list says revoked', async () => {
    let body = await statusListJwt(list)
    const fetch = async () => ({ ok: true, status: 200, text: async () => body })
    const v = make({ fetch })
    const c = await chain()
    await v.verifyDelegation(c, REQUEST)
    list.set(3, 1) // bob → carol
    body = await statusListJwt(list)
    clock.advance(1001)
    await expectCode(v.verifyDelegation(c, REQUEST), 'ERR_REVOKED', 2)
  })

  it('a hit is still checked against the request, the invoker, the root and the linkage', async () => {
    const v = make({ trustedRoots: { 'mcp://crm/': [alice.did] } })
    const c = await chain()
    await v.verifyDelegation(c, REQUEST)
    await expectCode(v.verifyDelegation(c, { ...REQUEST, resource: 'mcp://erp/tools/payroll/run' }), 'ERR_NOT_AUTHORIZED')
    await expectCode(v.verifyDelegation(c, { ...REQUEST, action: 'delete' }), 'ERR_NOT_AUTHORIZED')
    await expectCode(v.verifyDelegation(c, { ...REQUEST, invoker: bob.did }), 'ERR_KEY_MISMATCH')
    // Memoized links spliced out of order, or with one dropped: the linkage is checked on every call.
    await expectCode(v.verifyDelegation([c[0]!, c[2]!], REQUEST), 'ERR_DELEGATION_BROKEN', 1)
    await expectCode(v.verifyDelegation([c[1]!, c[2]!], REQUEST), 'ERR_DELEGATION_BROKEN', 0)
    // alice is a root for mcp://crm/ only: the memoized alice → bob → carol links prove nothing on erp.
    await expectCode(v.verifyDelegation(c.slice(1), REQUEST), 'ERR_DELEGATION_BROKEN', 0)
  })

  it('a memoized link whose key is no longer its signer\'s is checked again (did:web root rotated its key)', async () => {
    const web = 'did:web:root.example'
    const doc = (k: ReturnType<typeof generateEd25519KeyPair>) => ({
      '@context': 'https://www.w3.org/ns/did/v1',
      id: web,
      verificationMethod: [{ id: `${web}#key-1`, type: 'JsonWebKey2020', controller: web, publicKeyJwk: k.publicJwk }],
      assertionMethod: [`${web}#key-1`],
      capabilityDelegation: [`${web}#key-1`],
    })
    const keys = generateEd25519KeyPair()
    let current = doc(keys)
    const inner = new Resolver(getResolver())
    const resolver = { resolve: async (did: string, o?: unknown) => (did === web ? { didDocument: current, didResolutionMetadata: {}, didDocumentMetadata: {} } : inner.resolve(did, o as never)) } as unknown as DidResolver
    const v = make({ trustedIssuers: [web, issuer.did], resolver }) // issuer: the status list's signer
    const root = { ...signerFromJwk(keys.privateJwk), did: web, keyId: `${web}#key-1` }
    // Links living 3 h, longer than the DID cache's 1 h.
    const r = await delegate({ signer: root, to: alice.did, capabilities: ERP, expiresIn: 3 * 3600, statusEntry: status(1), clock: at })
    const c = await delegate({ signer: aliceSigner, to: bob.did, parent: r, capabilities: READ, expiresIn: 3 * 3600, statusEntry: status(2), clock: at })
    const request = { ...REQUEST, invoker: bob.did }
    const first = await v.verifyDelegation(c, request)
    expect((await v.verifyDelegation(c, request)).leaf.capabilities).toBe(first.leaf.capabilities)
    // key-1 now names another key. Once the DID cache entry is stale (1 h), the root link's memo
    // entry no longer matches a key of its signer: its signature is checked again, and fails.
    current = doc(generateEd25519KeyPair())
    clock.advance(3_600_001)
    await refresh()
    await expectCode(v.verifyDelegation(c, request), 'ERR_SIGNATURE_INVALID', 0)
    // Back to the old key: checked again under it, accepted.
    current = doc(keys)
    clock.advance(3_600_001)
    expect((await v.verifyDelegation(c, request)).links).toBe(2)
  })
})

describe('the default resolver reads an Ed25519 did:key from the DID itself', () => {
  it('verifies chains and credentials without did-resolver; other DIDs still go to it', async () => {
    const v = make()
    const c = await chain()
    expect((await v.verifyDelegation(c, REQUEST)).root).toBe(issuer.did)
    // A did:key of another key type, or another method, is what key-did-resolver says of it.
    const p256 = 'did:key:zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169'
    const w = make({ trustedIssuers: [p256, 'did:web:nowhere.example'] })
    const fake = { ...signerFromJwk(alice.privateJwk), did: p256, keyId: `${p256}#${p256.slice(8)}` }
    const viaP256 = await delegate({ signer: fake, to: carol.did, capabilities: READ, expiresIn: 600, clock: at })
    await expectCode(w.verifyDelegation(viaP256, REQUEST), 'ERR_DID_UNRESOLVABLE', 0)
    const web = { ...signerFromJwk(alice.privateJwk), did: 'did:web:nowhere.example', keyId: 'did:web:nowhere.example#k' }
    const viaWeb = await delegate({ signer: web, to: carol.did, capabilities: READ, expiresIn: 600, clock: at })
    await expectCode(w.verifyDelegation(viaWeb, REQUEST), 'ERR_DID_UNRESOLVABLE', 0)
  })

  it('refuses a link signed by another key than the did:key names', async () => {
    const v = make({ trustedIssuers: [issuer.did] })
    const forged = { ...signerFromJwk(bob.privateJwk), did: alice.did, keyId: `${alice.did}#${alice.did.slice(8)}` }
    const r = await delegate({ signer: issuer, to: alice.did, capabilities: ERP, expiresIn: 3600, clock: at })
    const c = await delegate({ signer: forged, to: carol.did, parent: r, capabilities: READ, expiresIn: 600, clock: at })
    await expectCode(v.verifyDelegation(c, REQUEST), 'ERR_SIGNATURE_INVALID', 1)
    await expectCode(v.verifyDelegation(c, REQUEST), 'ERR_SIGNATURE_INVALID', 1) // a failure is not memoized
  })

  it('a did:key\'s first check (its key imported for that call only) and later ones (its KeyObject) refuse a forged link alike', async () => {
    const v = make({ linkMemoSize: 1 })
    // root → alice → bob: alice signs the leaf.
    const r = await delegate({ signer: issuer, to: alice.did, capabilities: ERP, caveats: { remainingDepth: 3 }, expiresIn: 3600, statusEntry: status(1), clock: at })
    const good = await delegate({ signer: aliceSigner, to: bob.did, parent: r, capabilities: READ, expiresIn: 600, statusEntry: status(2), clock: at })
    const REQUEST = { invoker: bob.did, resource: 'mcp://erp/tools/invoices/read', action: 'invoke' } as const
    // alice's key is used for the first time on a link whose signature is broken: refused.
    const broken = [...good]
    const last = broken[1]!
    broken[1] = last.slice(0, -4) + (last.endsWith('AAAA') ? 'BBBA' : 'AAAA')
    await expectCode(v.verifyDelegation(broken, REQUEST), 'ERR_SIGNATURE_INVALID', 1)
    // Then with her KeyObject: the good chain passes, the broken one is still refused.
    await expect(v.verifyDelegation(good, REQUEST)).resolves.toMatchObject({ links: 2 })
    await expectCode(v.verifyDelegation(broken, REQUEST), 'ERR_SIGNATURE_INVALID', 1)
    // A new verifier: the good chain on first use of every key, then again.
    const w = make({ linkMemoSize: 1 })
    await expect(w.verifyDelegation(good, REQUEST)).resolves.toMatchObject({ links: 2 })
    await expect(w.verifyDelegation(good, REQUEST)).resolves.toMatchObject({ links: 2 })
  })
})
