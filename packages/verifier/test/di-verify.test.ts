import { StatusList, VerificationError, type VerificationErrorCode } from '@agentid/core'
import { createVerifier, type Verifier } from '@agentid/verifier'
import { DataIntegrityProof } from '@digitalbazaar/data-integrity'
import { cryptosuite } from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite'
import * as vc from '@digitalbazaar/vc'
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { createDocumentLoader } from '../src/di/document-loader.js'
import { clone, diIssuer, issueDi, unsignedCredential, type DiIssuer } from './di-fixtures.js'
import { alice, claims, LIST_URL, NOW, statusListJwt, statusServer, testClock } from './fixtures.js'

async function expectCode(promise: Promise<unknown>, code: VerificationErrorCode): Promise<VerificationError> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error, `expected ${code}, got ${String(error)}`).toBeInstanceOf(VerificationError)
  expect((error as VerificationError).code, String((error as Error).message)).toBe(code)
  return error as VerificationError
}

let acme: DiIssuer // the trusted issuer
let mallory: DiIssuer
let signed: Record<string, unknown>
let list: StatusList
let server: ReturnType<typeof statusServer>
let clock: ReturnType<typeof testClock>
let verifier: Verifier

beforeAll(async () => {
  acme = await diIssuer()
  mallory = await diIssuer()
  signed = await issueDi(acme)
})

beforeEach(async () => {
  list = StatusList.create()
  server = statusServer({ [LIST_URL]: await statusListJwt(list, { signer: acme.signer }) })
  clock = testClock()
  verifier = createVerifier({ trustedIssuers: [acme.did], fetch: server, clock, statusTtlMs: 1000, statusGraceMs: 0 })
})

afterEach(() => {
  vi.restoreAllMocks()
})

describe('Data Integrity credentials in verifyAgentCredential: accepts', () => {
  it('verifies a credential issued by plain @digitalbazaar/vc, with the same VerifiedAgent as for a JWT', async () => {
    const agent = await verifier.verifyAgentCredential(clone(signed))
    expect(agent.did).toBe(alice.did)
    expect(agent.issuer).toBe(acme.did)
    expect(agent.credentialId).toBe('urn:uuid:6f1c1f3e-8c2a-4b51-9d5c-000000000001')
    expect(agent.claims).toEqual({ ...claims, attestation: { platform: 'tee', measurements: ['a1', 'b2'] } })
    expect(agent.validFrom).toBe(NOW - 10)
    expect(agent.expiresAt).toBe(NOW + 3600)
    expect(agent.status).toEqual({ statusListCredential: LIST_URL, statusListIndex: 7 })
    expect(agent.type).toEqual(['VerifiableCredential', 'AgentIdentityCredential'])
    expect(Object.keys(agent).sort()).toEqual(['claims', 'credentialId', 'did', 'expiresAt', 'issuedAt', 'issuer', 'status', 'type', 'validFrom'])
    expect(Object.isFrozen(agent.claims)).toBe(true)
    expect(server.calls).toBe(1) // the status list, signed by the same did:key as a JWT
  })

  it('accepts the JSON text of the credential, and memoizes by its SHA-256', async () => {
    const text = JSON.stringify(signed)
    const first = await verifier.verifyAgentCredential(text)
    const started = performance.now()
    const again = await verifier.verifyAgentCredential(text)
    expect(again).toBe(first)
    expect(performance.now() - started).toBeLessThan(20)
  })

  it('refuses a revoked credential (same status check as JWTs)', async () => {
    list.set(7, 1)
    server = statusServer({ [LIST_URL]: await statusListJwt(list, { signer: acme.signer }) })
    const v = createVerifier({ trustedIssuers: [acme.did], fetch: server, clock })
    await expectCode(v.verifyAgentCredential(clone(signed)), 'ERR_REVOKED')
  })

  it('refuses a status list signed by another key than the issuer', async () => {
    server = statusServer({ [LIST_URL]: await statusListJwt(list, { signer: mallory.signer }) })
    const v = createVerifier({ trustedIssuers: [acme.did], fetch: server, clock })
    await expectCode(v.verifyAgentCredential(clone(signed)), 'ERR_STATUS_UNAVAILABLE')
  })
})

describe('Data Integrity credentials: hostile input', () => {
  it('refuses a document modified after signing', async () => {
    const c = clone(signed)
    ;(c.credentialSubject as Record<string, unknown>).dataAccessClass = 'restricted'
    await expectCode(verifier.verifyAgentCredential(c), 'ERR_SIGNATURE_INVALID')
    const d = clone(signed)
    d.validUntil = '2099-01-01T00:00:00Z'
    await expectCode(verifier.verifyAgentCredential(d), 'ERR_SIGNATURE_INVALID')
  })

  it('signs toolProfile as JSON: a one-tool list does not turn into a profile name, order is signed', async () => {
    const c = clone(signed)
    const subject = c.credentialSubject as Record<string, unknown>
    subject.toolProfile = (subject.toolProfile as string[])[0]
    await expectCode(verifier.verifyAgentCredential(c), 'ERR_SIGNATURE_INVALID')
    const two = await issueDi(acme, { subject: { id: alice.did, ...claims, toolProfile: ['mcp://a', 'mcp://b'] } })
    expect((await verifier.verifyAgentCredential(clone(two))).claims.toolProfile).toEqual(['mcp://a', 'mcp://b'])
    ;(two.credentialSubject as Record<string, unknown>).toolProfile = ['mcp://b', 'mcp://a']
    await expectCode(verifier.verifyAgentCredential(two), 'ERR_SIGNATURE_INVALID')
  })

  it('refuses a term the contexts do not define (safe mode: it would be dropped, not signed)', async () => {
    const c = clone(signed)
    ;(c.credentialSubject as Record<string, unknown>).adminOverride = true
    await expectCode(verifier.verifyAgentCredential(c), 'ERR_MALFORMED')
  })

  it('refuses a proof by a key that is not the issuer’s', async () => {
    // Mallory signs a credential naming the trusted issuer.
    await expectCode(verifier.verifyAgentCredential(await issueDi(acme, {}, mallory.keyPair)), 'ERR_KEY_MISMATCH')
    // …or points at her key under the issuer's DID.
    const c = clone(signed)
    const proof = c.proof as Record<string, unknown>
    proof.verificationMethod = `${acme.did}#${mallory.did.slice('did:key:'.length)}`
    await expectCode(verifier.verifyAgentCredential(c), 'ERR_KEY_MISMATCH')
    // Her own credential, her own key: not a trusted issuer.
    await expectCode(verifier.verifyAgentCredential(await issueDi(mallory)), 'ERR_UNTRUSTED_ISSUER')
  })

  it('refuses an injected context redefining a term', async () => {
    const c = clone(signed)
    c['@context'] = [...(c['@context'] as string[]), { purpose: 'https://evil.example#purpose' }]
    await expectCode(verifier.verifyAgentCredential(c), 'ERR_MALFORMED')
    // Embedded in the subject: refused before JSON-LD (no embedded contexts at all)…
    const d = clone(signed)
    const subject = d.credentialSubject as Record<string, unknown>
    const redefined = { '@context': { dataAccessClass: 'https://evil.example#dataAccessClass' }, ...subject }
    d.credentialSubject = redefined
    await expectCode(verifier.verifyAgentCredential(d), 'ERR_MALFORMED')
    // …and JSON-LD itself refuses it under our loader: the agentid context is @protected.
    const { proof: _proof, ...unsigned } = clone(signed)
    await expect(cryptosuite.canonize({ ...unsigned, credentialSubject: redefined }, { documentLoader: createDocumentLoader() })).rejects.toThrow(/tried to redefine a protected term/)
    const nquads = await cryptosuite.canonize(unsigned, { documentLoader: createDocumentLoader() })
    for (const term of ['dataAccessClass', 'purpose', 'controller', 'modelName', 'modelVersion', 'modelProvider', 'toolProfile', 'policyTier', 'attestation']) {
      expect(nquads, term).toContain(`<https://w3id.org/agentid#${term}>`)
    }
    expect(nquads).toContain('<https://w3id.org/agentid#AgentIdentityCredential>')
  })

  it('refuses an unknown remote context without any network call', async () => {
    const globalFetch = vi.spyOn(globalThis, 'fetch').mockRejectedValue(new Error('network'))
    const c = clone(signed)
    c['@context'] = [...(c['@context'] as string[]), 'https://evil.example/context.jsonld']
    await expectCode(verifier.verifyAgentCredential(c), 'ERR_MALFORMED')
    const d = clone(signed)
    d.credentialSubject = { '@context': 'https://evil.example/context.jsonld', ...(d.credentialSubject as Record<string, unknown>) }
    await expectCode(verifier.verifyAgentCredential(d), 'ERR_MALFORMED')
    await expectCode(createDocumentLoader()('https://evil.example/context.jsonld'), 'ERR_MALFORMED')
    await expectCode(createDocumentLoader()('https://www.w3.org/ns/credentials/examples/v2'), 'ERR_MALFORMED')
    expect(server.calls).toBe(0)
    expect(globalFetch).not.toHaveBeenCalled()
  })

  it('resolves did:key only, and only Ed25519 keys', async () => {
    const loader = createDocumentLoader()
    await expectCode(loader('did:web:acme.example'), 'ERR_DID_UNRESOLVABLE')
    await expectCode(loader('did:key:zDnaegE6RR3atJtHKwTRTWHsJ3kNHqFwv7n9YjTgmU7TyfU76'), 'ERR_DID_UNRESOLVABLE')
    await expectCode(loader(`${acme.did}#other`), 'ERR_DID_UNRESOLVABLE')
    const doc = (await loader(acme.did)).document as Record<string, unknown>
    expect(doc.assertionMethod).toEqual([`${acme.did}#${acme.did.slice(8)}`])
  })

  it('a trusted did:web issuer is not resolvable offline on this path', async () => {
    const web = 'did:web:acme.example'
    const inner = acme.keyPair.signer()
    const suite = new DataIntegrityProof({ signer: { id: `${web}#key-1`, algorithm: inner.algorithm, sign: (o) => inner.sign(o) }, cryptosuite })
    const credential = await vc.issue({ credential: unsignedCredential(acme, { issuer: web }), suite, documentLoader: createDocumentLoader() })
    const v = createVerifier({ trustedIssuers: [web], fetch: server, clock })
    await expectCode(v.verifyAgentCredential(credential), 'ERR_DID_UNRESOLVABLE')
    expect(server.calls).toBe(0)
  })

  it('refuses another cryptosuite or proof type', async () => {
    for (const change of [{ cryptosuite: 'eddsa-jcs-2022' }, { type: 'Ed25519Signature2020', cryptosuite: undefined }, { cryptosuite: 'ecdsa-rdfc-2019' }]) {
      const c = clone(signed)
      c.proof = JSON.parse(JSON.stringify({ ...(c.proof as object), ...change }))
      await expectCode(verifier.verifyAgentCredential(c), 'ERR_UNSUPPORTED_ALG')
    }
    const set = clone(signed)
    set.proof = [set.proof, set.proof]
    await expectCode(verifier.verifyAgentCredential(set), 'ERR_MALFORMED')
  })

  it('refuses proofPurpose authentication', async () => {
    const c = clone(signed)
    ;(c.proof as Record<string, unknown>).proofPurpose = 'authentication'
    await expectCode(verifier.verifyAgentCredential(c), 'ERR_KEY_MISMATCH')
    // Signed that way by the issuer's own key, too.
    const suite = new DataIntegrityProof({ signer: acme.keyPair.signer(), cryptosuite })
    const auth = await vc.issue({
      credential: unsignedCredential(acme),
      suite,
      documentLoader: createDocumentLoader(),
      purpose: { match: async () => true, validate: async () => ({ valid: true }), term: 'authentication', update: async (p: Record<string, unknown>) => ({ ...p, proofPurpose: 'authentication' }) } as never,
    })
    expect((auth.proof as Record<string, unknown>).proofPurpose).toBe('authentication')
    await expectCode(verifier.verifyAgentCredential(auth), 'ERR_KEY_MISMATCH')
  })

  it('checks validFrom and validUntil with the clock skew', async () => {
    clock.set((NOW + 3600 + 61) * 1000)
    await expectCode(verifier.verifyAgentCredential(clone(signed)), 'ERR_EXPIRED')
    clock.set((NOW + 3600 + 59) * 1000)
    await expect(verifier.verifyAgentCredential(clone(signed))).resolves.toBeDefined()
    clock.set((NOW - 10 - 61) * 1000)
    await expectCode(verifier.verifyAgentCredential(clone(signed)), 'ERR_NOT_YET_VALID')
    const past = await issueDi(acme, { validFrom: NOW - 7200, validUntil: NOW - 3600 })
    clock.set(NOW * 1000)
    await expectCode(verifier.verifyAgentCredential(past), 'ERR_EXPIRED')
    await expectCode(verifier.verifyAgentCredential(await issueDi(acme, { validUntil: null })), 'ERR_MALFORMED')
  })

  it('requires an AgentIdentityCredential about a did:key, with valid claims', async () => {
    const noType = await issueDi(acme, { extra: { type: ['VerifiableCredential'] } })
    await expectCode(verifier.verifyAgentCredential(noType), 'ERR_MALFORMED')
    const webSubject = await issueDi(acme, { subject: { id: 'did:web:agent.example', ...claims } })
    await expectCode(verifier.verifyAgentCredential(webSubject), 'ERR_MALFORMED')
    const badClass = await issueDi(acme, { subject: { id: alice.did, ...claims, dataAccessClass: 'top-secret' } })
    await expectCode(verifier.verifyAgentCredential(badClass), 'ERR_MALFORMED')
  })

  it('refuses deep nesting, many nodes and large documents quickly, before JSON-LD', async () => {
    let deep: Record<string, unknown> = { leaf: 1 }
    for (let i = 0; i < 10_000; i++) deep = { a: deep }
    const nested = clone(signed)
    ;(nested.credentialSubject as Record<string, unknown>).attestation = deep
    const many = clone(signed)
    ;(many.credentialSubject as Record<string, unknown>).attestation = { blanks: Array.from({ length: 5_000 }, (_, i) => ({ i })) }
    const blankNodes = clone(signed)
    blankNodes.evidence = Array.from({ length: 600 }, () => ({ type: 'Evidence' }))
    const started = performance.now()
    for (const c of [nested, many, blankNodes]) await expectCode(verifier.verifyAgentCredential(c), 'ERR_MALFORMED')
    await expectCode(verifier.verifyAgentCredential(`{"a":"${'x'.repeat(70_000)}"}`), 'ERR_MALFORMED')
    await expectCode(verifier.verifyAgentCredential(`${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}`), 'ERR_MALFORMED')
    await expectCode(verifier.verifyAgentCredential('{"a":1,"a":2}'), 'ERR_MALFORMED')
    expect(performance.now() - started).toBeLessThan(500)
  })
})

describe('Data Integrity proofValue: multibase base58btc only (eddsa-rdfc-2022)', () => {
  it('the same signature as base64url (u…) is refused; a broken z… value too', async () => {
    const { base58 } = await import('@scure/base')
    const proofValue = (signed.proof as Record<string, unknown>).proofValue as string
    const signature = base58.decode(proofValue.slice(1))
    expect(signature).toHaveLength(64)
    const withValue = (value: unknown) => {
      const c = clone(signed)
      ;(c.proof as Record<string, unknown>).proofValue = value
      return c
    }
    server.calls = 0
    for (const value of [`u${Buffer.from(signature).toString('base64url')}`, `m${Buffer.from(signature).toString('base64')}`, `z${base58.encode(signature.subarray(0, 63))}`, `z${base58.encode(signature)}0`, proofValue.slice(1), 42, undefined]) {
      await expectCode(verifier.verifyAgentCredential(withValue(value)), 'ERR_MALFORMED')
    }
    expect(server.calls).toBe(0)
    await verifier.verifyAgentCredential(withValue(proofValue))
  })

  it('a signature whose R is a small-order point is refused before the JSON-LD work', async () => {
    const { base58 } = await import('@scure/base')
    const c = clone(signed)
    const forged = new Uint8Array(64)
    forged[0] = 1 // R = identity
    ;(c.proof as Record<string, unknown>).proofValue = `z${base58.encode(forged)}`
    const error = await expectCode(verifier.verifyAgentCredential(c), 'ERR_SIGNATURE_INVALID')
    expect(error.details.reason).toBe('small-order R')
  })
})
