import { AGENTID_CONTEXT_V1, decodeJwt, generateEd25519KeyPair, signerFromJwk, signJwt, StatusList, VC_CONTEXT_V1, VerificationError, type Signer, type VerificationErrorCode } from '@agentid/core'
import { delegate, isAttenuation, linkHash, parseCapabilityLink, type Capability, type Caveats } from '@agentid/delegation'
import fc from 'fast-check'
import { createVerifier, type DidResolver, type Verifier, type VerifierOptions } from '@agentid/verifier'
import { Resolver } from 'did-resolver'
import { getResolver } from 'key-did-resolver'
import { beforeEach, describe, expect, it } from 'vitest'
import { alice, bob, issuer, LIST_URL, mallory, NOW, statusListJwt, statusServer, testClock } from './fixtures.js'

// Named parties: the issuer roots chains; alice → bob → carol delegate; mallory attacks.
const carol = generateEd25519KeyPair()
const aliceSigner = signerFromJwk(alice.privateJwk)
const bobSigner = signerFromJwk(bob.privateJwk)
const mallorySigner = signerFromJwk(mallory.privateJwk)

const ERP: Capability[] = [{ resource: 'mcp://erp/tools/*', actions: ['*'] }]
const INVOICES: Capability[] = [{ resource: 'mcp://erp/tools/invoices/*', actions: ['invoke', 'list'] }]
const READ: Capability[] = [{ resource: 'mcp://erp/tools/invoices/read', actions: ['invoke'] }]
const REQUEST = { invoker: carol.did, resource: 'mcp://erp/tools/invoices/read', action: 'invoke' } as const

function status(index: number) {
  return { type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: String(index), statusListCredential: LIST_URL } as const
}

/** A resolver counting resolutions: "before any signature work" means zero of them. */
function countingResolver(): DidResolver & { calls: number } {
  const inner = new Resolver(getResolver())
  const r = { calls: 0, resolve: (did: string, options?: unknown) => { r.calls++; return inner.resolve(did, options as never) } }
  return r as DidResolver & { calls: number }
}

let list: StatusList
let server: ReturnType<typeof statusServer>
let clock: ReturnType<typeof testClock>
let resolver: ReturnType<typeof countingResolver>
let verifier: Verifier
const at = () => clock()

function make(extra: Partial<VerifierOptions> = {}): Verifier {
  return createVerifier({ trustedIssuers: [issuer.did], fetch: server, clock, resolver, statusTtlMs: 1000, statusGraceMs: 0, ...extra })
}

beforeEach(async () => {
  list = StatusList.create()
  server = statusServer({ [LIST_URL]: await statusListJwt(list) })
  clock = testClock()
  resolver = countingResolver()
  verifier = make()
})

/** issuer → alice → bob → carol, each link narrower; status entries 1, 2, 3. */
async function abc(): Promise<string[]> {
  const root = await delegate({ signer: issuer, to: alice.did, capabilities: ERP, caveats: { remainingDepth: 3, maxDataClass: 'confidential' }, expiresIn: 3600, statusEntry: status(1), clock: at })
  const ab = await delegate({ signer: aliceSigner, to: bob.did, parent: root, capabilities: INVOICES, expiresIn: 1800, statusEntry: status(2), clock: at })
  return delegate({ signer: bobSigner, to: carol.did, parent: ab, capabilities: READ, caveats: { maxDataClass: 'internal' }, expiresIn: 600, statusEntry: status(3), clock: at })
}

interface RawLink {
  signer: Signer
  iss?: string
  sub: string
  capabilities?: unknown
  caveats?: Record<string, unknown>
  parent?: string | null
  parentHash?: string
  nbf?: number
  exp?: number
  header?: Record<string, unknown>
  /** Replaces claims (undefined deletes one). */
  payload?: Record<string, unknown>
  /** Replaces credentialSubject members (undefined deletes one). */
  subject?: Record<string, unknown>
}

function patch(target: Record<string, unknown>, changes: Record<string, unknown> = {}): Record<string, unknown> {
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete target[k]
    else target[k] = v
  }
  return target
}

/** Signs a link as an attacker would: no attenuation check. */
async function rawLink(o: RawLink): Promise<string> {
  const subject: Record<string, unknown> = { id: o.sub, capabilities: o.capabilities ?? READ, caveats: o.caveats ?? {} }
  if (o.parentHash !== undefined) subject.parentHash = o.parentHash
  else if (o.parent) subject.parentHash = linkHash(o.parent)
  return signJwt({ typ: 'JWT', ...o.header }, patch({
    iss: o.iss ?? o.signer.did,
    sub: o.sub,
    nbf: o.nbf ?? NOW,
    exp: o.exp ?? NOW + 600,
    jti: 'urn:uuid:7d5b7e0e-6a8a-4f5e-9c55-1b7f2e1c0a11',
    vc: { '@context': [VC_CONTEXT_V1, AGENTID_CONTEXT_V1], type: ['VerifiableCredential', 'AgentCapabilityCredential'], credentialSubject: patch(subject, o.subject) },
  }, o.payload), o.signer)
}

async function failure(promise: Promise<unknown>, code: VerificationErrorCode, link: number | null): Promise<VerificationError> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error, `expected ${code}`).toBeInstanceOf(VerificationError)
  const v = error as VerificationError
  expect(v.code, JSON.stringify(v.details)).toBe(code)
  expect(v.details.link).toBe(link)
  expect(v.details).toHaveProperty('signer')
  expect(typeof v.details.reason).toBe('string')
  return v
}

describe('verifyDelegation: accepts', () => {
  it('issuer → alice → bob → carol', async () => {
    const chain = await abc()
    const result = await verifier.verifyDelegation(chain, REQUEST)
    expect(result.root).toBe(issuer.did)
    expect(result.links).toBe(3)
    expect(result.leaf.did).toBe(carol.did)
    expect(result.leaf.capabilities).toEqual(READ)
    expect(result.leaf.caveats).toMatchObject({ maxDataClass: 'internal', remainingDepth: 1, expiresAt: NOW + 600 })
  })

  it('accepts a chain of exactly maxChainLength (10) links', async () => {
    let chain = await delegate({ signer: issuer, to: alice.did, capabilities: ERP, expiresIn: 600, clock: at })
    let holder = aliceSigner
    let last = alice.did
    for (let i = 1; i < 10; i++) {
      const next = generateEd25519KeyPair()
      chain = await delegate({ signer: holder, to: next.did, parent: chain, capabilities: ERP, expiresIn: 600, clock: at })
      holder = signerFromJwk(next.privateJwk)
      last = next.did
    }
    expect((await verifier.verifyDelegation(chain, { ...REQUEST, invoker: last })).links).toBe(10)
  })

  it('checks audience and data class when asked', async () => {
    const root = await delegate({ signer: issuer, to: alice.did, capabilities: ERP, caveats: { audience: ['svc-erp'], maxDataClass: 'internal' }, expiresIn: 600, clock: at })
    const request = { invoker: alice.did, resource: 'mcp://erp/tools/x', action: 'invoke' }
    await verifier.verifyDelegation(root, { ...request, audience: 'svc-erp', dataClass: 'internal' })
    expect((await failure(verifier.verifyDelegation(root, { ...request, audience: 'svc-crm' }), 'ERR_NOT_AUTHORIZED', 0)).details.caveat).toBe('audience')
    await failure(verifier.verifyDelegation(root, request), 'ERR_NOT_AUTHORIZED', 0) // audience-restricted, service did not say who it is
    expect((await failure(verifier.verifyDelegation(root, { ...request, audience: 'svc-erp', dataClass: 'confidential' }), 'ERR_NOT_AUTHORIZED', 0)).details.caveat).toBe('maxDataClass')
  })

  it('accepts roots trusted by resource prefix; the longest prefix decides', async () => {
    verifier = make({ trustedRoots: { 'mcp://erp/*': [alice.did], 'mcp://erp/payroll/': [carol.did] } })
    const chain = await delegate({ signer: aliceSigner, to: bob.did, capabilities: [{ resource: 'mcp://erp/*', actions: ['invoke'] }], expiresIn: 600, clock: at })
    expect((await verifier.verifyDelegation(chain, { invoker: bob.did, resource: 'mcp://erp/tools/a', action: 'invoke' })).root).toBe(alice.did)
    await failure(verifier.verifyDelegation(chain, { invoker: bob.did, resource: 'mcp://erp/payroll/run', action: 'invoke' }), 'ERR_UNTRUSTED_ISSUER', 0)
    await failure(verifier.verifyDelegation(chain, { invoker: bob.did, resource: 'mcp://crm/a', action: 'invoke' }), 'ERR_UNTRUSTED_ISSUER', 0)
  })
})

describe('verifyDelegation: limits before any signature work', () => {
  it('refuses a chain of 11 links without parsing or resolving anything', async () => {
    const error = await failure(verifier.verifyDelegation(Array.from({ length: 11 }, () => 'x.y.z'), REQUEST), 'ERR_DELEGATION_DEPTH', 10)
    expect(error.details.length).toBe(11)
    expect(resolver.calls).toBe(0)
  })

  it('honours maxChainLength', async () => {
    await failure(make({ maxChainLength: 2 }).verifyDelegation(await abc(), REQUEST), 'ERR_DELEGATION_DEPTH', 2)
    expect(resolver.calls).toBe(0)
  })

  it('refuses a 1 MB chain', async () => {
    const big = 'a'.repeat(350 * 1024)
    await failure(verifier.verifyDelegation([big, big, big], REQUEST), 'ERR_MALFORMED', 0)
    const chain = await abc()
    await failure(verifier.verifyDelegation([...chain.slice(0, 2), `${chain[2]}${'A'.repeat(1024 * 1024)}`], REQUEST), 'ERR_MALFORMED', 2)
    expect(resolver.calls).toBe(0)
  })

  it('refuses what is not a list of strings', async () => {
    await failure(verifier.verifyDelegation('a.b.c' as unknown as string[], REQUEST), 'ERR_MALFORMED', null)
    await failure(verifier.verifyDelegation([], REQUEST), 'ERR_MALFORMED', null)
    await failure(verifier.verifyDelegation([(await abc())[0]!, 42 as unknown as string], REQUEST), 'ERR_MALFORMED', 1)
  })

  it('refuses an untrusted root before verifying any signature', async () => {
    const chain = await delegate({ signer: mallorySigner, to: carol.did, capabilities: ERP, expiresIn: 600, clock: at })
    const error = await failure(verifier.verifyDelegation(chain, REQUEST), 'ERR_UNTRUSTED_ISSUER', 0)
    expect(error.details.signer).toBe(mallory.did)
    expect(resolver.calls).toBe(0)
  })

  it('throws TypeError on misuse', async () => {
    await expect(verifier.verifyDelegation(await abc(), { ...REQUEST, resource: 'mcp://erp/tools/*' })).rejects.toThrow(TypeError)
    expect(() => make({ trustedRoots: { 'mcp://erp/': 'did:key:x' as unknown as string[] } })).toThrow(TypeError)
  })
})

describe('verifyDelegation: each link', () => {
  it('refuses a link that is not EdDSA', async () => {
    const chain = await abc()
    const [, payload, sig] = chain[1]!.split('.')
    const forged = `${Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'JWT' })).toString('base64url')}.${payload}.${sig}`
    await failure(verifier.verifyDelegation([chain[0]!, forged, chain[2]!], REQUEST), 'ERR_UNSUPPORTED_ALG', 1)
  })

  // Shapes after the UCAN 0.10 refutation vectors (missing exp, bad nbf, cap not an object, empty caveat list, …).
  it.each<[string, Partial<RawLink>]>([
    ['no exp', { payload: { exp: undefined } }],
    ['an nbf that is not a number', { payload: { nbf: '1800000000' } }],
    ['nbf not before exp', { nbf: NOW + 600, exp: NOW + 600 }],
    ['an iss that is not a DID', { iss: 'alice' }],
    ['a sub that is not a did:key', { payload: { sub: 'did:web:bob.example' }, subject: { id: 'did:web:bob.example' } }],
    ['credentialSubject.id other than sub', { subject: { id: mallory.did } }],
    ['no AgentCapabilityCredential type', { payload: { vc: { type: ['VerifiableCredential'], credentialSubject: { id: bob.did, capabilities: READ } } } }],
    ['capabilities that are not a list', { capabilities: { 'mcp://erp/tools/invoices/read': ['invoke'] } }],
    ['an empty action list', { capabilities: [{ resource: 'mcp://erp/tools/invoices/read', actions: [] }] }],
    ['a wildcard inside a resource', { capabilities: [{ resource: 'mcp://erp/*/read', actions: ['invoke'] }] }],
    ['an unknown caveat', { caveats: { maxCost: 5 } }],
    ['an empty constraint list', { caveats: { constraints: { region: [] } } }],
    ['caveats.expiresAt other than exp', { caveats: { expiresAt: NOW + 601 } }],
    ['a parentHash that is not a SHA-256', { parentHash: 'abc' }],
  ])('refuses a link with %s', async (_name, changes) => {
    const chain = await abc()
    const bad = await rawLink({ signer: aliceSigner, sub: bob.did, capabilities: INVOICES, parent: chain[0]!, caveats: { remainingDepth: 2, maxDataClass: 'confidential' }, ...changes })
    await failure(verifier.verifyDelegation([chain[0]!, bad], { ...REQUEST, invoker: bob.did }), 'ERR_MALFORMED', 1)
    expect(resolver.calls).toBe(0)
  })

  it('refuses a link re-signed by mallory in alice\'s name (bad signature)', async () => {
    const chain = await abc()
    const forged = await rawLink({ signer: { ...mallorySigner, keyId: aliceSigner.keyId }, iss: alice.did, sub: bob.did, capabilities: INVOICES, parent: chain[0]!, exp: NOW + 1800, caveats: { remainingDepth: 2, maxDataClass: 'confidential' } })
    const error = await failure(verifier.verifyDelegation([chain[0]!, forged, (await rawLinkBelow(forged))], REQUEST), 'ERR_SIGNATURE_INVALID', 1)
    expect(error.details.signer).toBe(alice.did)
  })

  it('refuses a link re-signed by mallory as herself (broken chain)', async () => {
    const chain = await abc()
    const forged = await rawLink({ signer: mallorySigner, sub: bob.did, capabilities: INVOICES, parent: chain[0]! })
    const error = await failure(verifier.verifyDelegation([chain[0]!, forged, chain[2]!], REQUEST), 'ERR_DELEGATION_BROKEN', 1)
    expect(error.details).toMatchObject({ signer: mallory.did, expected: alice.did })
  })

  it('refuses a swapped middle link (parentHash)', async () => {
    const chain = await abc()
    // Another alice → bob link, validly signed, but below another root: link 1 does not hash link 0.
    const otherRoot = await delegate({ signer: issuer, to: alice.did, capabilities: ERP, caveats: { remainingDepth: 3 }, expiresIn: 3600, clock: at })
    const otherAb = await delegate({ signer: aliceSigner, to: bob.did, parent: otherRoot, capabilities: INVOICES, expiresIn: 1800, clock: at })
    await failure(verifier.verifyDelegation([chain[0]!, otherAb[1]!, chain[2]!], REQUEST), 'ERR_DELEGATION_BROKEN', 1)
    // Same root, another alice → bob link: now link 2 does not hash link 1.
    const sibling = await delegate({ signer: aliceSigner, to: bob.did, parent: chain.slice(0, 1), capabilities: INVOICES, expiresIn: 1800, clock: at })
    await failure(verifier.verifyDelegation([chain[0]!, sibling[1]!, chain[2]!], REQUEST), 'ERR_DELEGATION_BROKEN', 2)
  })

  it('refuses a root that claims a parent, and a child without parentHash', async () => {
    const chain = await abc()
    const root = await rawLink({ signer: issuer, sub: alice.did, capabilities: ERP, parentHash: linkHash('x') })
    await failure(verifier.verifyDelegation([root], { ...REQUEST, invoker: alice.did }), 'ERR_DELEGATION_BROKEN', 0)
    const orphan = await rawLink({ signer: aliceSigner, sub: bob.did, capabilities: INVOICES, parent: null })
    await failure(verifier.verifyDelegation([chain[0]!, orphan], { ...REQUEST, invoker: bob.did }), 'ERR_DELEGATION_BROKEN', 1)
  })

  it.each<[string, Partial<RawLink>, string | undefined]>([
    ['a wider capability', { capabilities: [{ resource: 'mcp://erp/tools/*', actions: ['invoke'] }] }, undefined],
    ['another action', { capabilities: [{ resource: 'mcp://erp/tools/invoices/read', actions: ['delete'] }] }, undefined],
    ['a later exp (expires after its proof)', { exp: NOW + 1801 }, 'expiresAt'],
    ['an earlier nbf (ready before its proof)', { nbf: NOW - 100 }, 'notBefore'],
    ['a higher data class', { caveats: { maxDataClass: 'restricted' } }, 'maxDataClass'],
    ['no data class (escalates to no caveat)', { caveats: { remainingDepth: 0 } }, 'maxDataClass'],
    ['a deeper remainingDepth', { caveats: { maxDataClass: 'confidential', remainingDepth: 2 } }, 'remainingDepth'],
    ['a wider audience', { caveats: { maxDataClass: 'confidential', remainingDepth: 1, audience: ['svc-erp', 'svc-crm'] } }, 'audience'],
    ['a dropped constraint', { caveats: { maxDataClass: 'confidential', remainingDepth: 1, audience: ['svc-erp'] } }, 'constraints'],
    ['a wider constraint', { caveats: { maxDataClass: 'confidential', remainingDepth: 1, audience: ['svc-erp'], constraints: { region: ['eu', 'us'] } } }, 'constraints'],
  ])('refuses a child with %s', async (_name, child, caveat) => {
    const root = await delegate({ signer: issuer, to: alice.did, capabilities: ERP, caveats: { remainingDepth: 3, maxDataClass: 'confidential', audience: ['svc-erp'], constraints: { region: ['eu'] } }, expiresIn: 3600, clock: at })
    const ab = await delegate({ signer: aliceSigner, to: bob.did, parent: root, capabilities: INVOICES, expiresIn: 1800, clock: at })
    const bc = await rawLink({ signer: bobSigner, sub: carol.did, parent: ab[1]!, nbf: NOW, exp: NOW + 600, caveats: { maxDataClass: 'internal', remainingDepth: 0, audience: ['svc-erp'], constraints: { region: 'eu' } }, ...child })
    const error = await failure(verifier.verifyDelegation([...ab, bc], { ...REQUEST, audience: 'svc-erp' }), 'ERR_DELEGATION_ESCALATION', 2)
    expect(error.details.signer).toBe(bob.did)
    if (caveat) expect(error.details.caveat).toBe(caveat)
    else expect(error.details.capability).toBeDefined()
  })

  it('refuses a link below one with no depth left', async () => {
    const root = await delegate({ signer: issuer, to: alice.did, capabilities: ERP, caveats: { remainingDepth: 1 }, expiresIn: 3600, clock: at })
    const ab = await delegate({ signer: aliceSigner, to: bob.did, parent: root, capabilities: INVOICES, expiresIn: 1800, clock: at })
    const bc = await rawLink({ signer: bobSigner, sub: carol.did, parent: ab[1]!, caveats: { remainingDepth: 0 } })
    const error = await failure(verifier.verifyDelegation([...ab, bc], REQUEST), 'ERR_DELEGATION_DEPTH', 2)
    expect(error.details.signer).toBe(bob.did)
  })

  it('refuses expired and not-yet-valid links, with the clock skew', async () => {
    const chain = await abc()
    clock.set((NOW + 600 + 59) * 1000)
    await verifier.verifyDelegation(chain, REQUEST)
    clock.set((NOW + 600 + 60) * 1000)
    await failure(verifier.verifyDelegation(chain, REQUEST), 'ERR_EXPIRED', 2)
    clock.set((NOW - 61) * 1000)
    await failure(verifier.verifyDelegation(chain, REQUEST), 'ERR_NOT_YET_VALID', 0)
  })

  it('a revoked middle link cuts everything below it', async () => {
    const chain = await abc()
    await verifier.verifyDelegation(chain, REQUEST)
    list.set(2, 1) // alice → bob
    server = statusServer({ [LIST_URL]: await statusListJwt(list) })
    verifier = make()
    const error = await failure(verifier.verifyDelegation(chain, REQUEST), 'ERR_REVOKED', 1)
    expect(error.details.signer).toBe(alice.did)
    await failure(verifier.verifyDelegation(chain.slice(0, 2), { ...REQUEST, invoker: bob.did }), 'ERR_REVOKED', 1)
    expect((await verifier.verifyDelegation(chain.slice(0, 1), { ...REQUEST, invoker: alice.did })).links).toBe(1)
  })

  it('accepts status lists only from a trusted issuer, whoever signed the link', async () => {
    server = statusServer({ [LIST_URL]: await statusListJwt(list, { signer: mallorySigner }) })
    verifier = make()
    await failure(verifier.verifyDelegation(await abc(), REQUEST), 'ERR_STATUS_UNAVAILABLE', 0)
  })

  it('fetches no status list for a chain whose signatures fail', async () => {
    const chain = await abc()
    const [h, p] = chain[2]!.split('.')
    const tampered = `${h}.${p}.${Buffer.alloc(64).toString('base64url')}`
    await failure(verifier.verifyDelegation([chain[0]!, chain[1]!, tampered], REQUEST), 'ERR_SIGNATURE_INVALID', 2)
    expect(server.calls).toBe(0)
  })
})

describe('verifyDelegation: the invocation', () => {
  it('refuses an invoker who is not the leaf subject', async () => {
    const error = await failure(verifier.verifyDelegation(await abc(), { ...REQUEST, invoker: mallory.did }), 'ERR_KEY_MISMATCH', 2)
    expect(error.details).toMatchObject({ invoker: mallory.did, subject: carol.did, signer: bob.did })
  })

  it('refuses a resource or action the leaf does not grant', async () => {
    const chain = await abc()
    await failure(verifier.verifyDelegation(chain, { ...REQUEST, resource: 'mcp://erp/tools/invoices/write' }), 'ERR_NOT_AUTHORIZED', 2)
    await failure(verifier.verifyDelegation(chain, { ...REQUEST, action: 'list' }), 'ERR_NOT_AUTHORIZED', 2)
  })
})

/** A bob → carol link below `parent`, signed honestly by bob. */
async function rawLinkBelow(parent: string): Promise<string> {
  return rawLink({ signer: bobSigner, sub: carol.did, parent, nbf: NOW, exp: NOW + 600, caveats: { maxDataClass: 'internal', remainingDepth: 0 } })
}


describe('verifyDelegation agrees with isAttenuation', () => {
  // Biased towards valid values, so that both verdicts come up often; fc.option drops a caveat now and then.
  const arbChild = fc.record({
    capabilities: fc.array(fc.record({
      resource: fc.constantFrom('mcp://erp/tools/a', 'mcp://erp/tools/*', 'mcp://erp/tools/b', 'mcp://erp/tools/x/*', 'mcp://erp/*', 'mcp://crm/x'),
      actions: fc.constantFrom(['read'], ['write'], ['read', 'write'], ['read'], ['delete'], ['*']),
    }), { minLength: 1, maxLength: 2 }),
    caveats: fc.record({
      maxDataClass: fc.option(fc.constantFrom('public', 'internal', 'internal', 'confidential'), { freq: 8, nil: undefined }),
      remainingDepth: fc.option(fc.constantFrom(0, 1, 1, 2), { freq: 8, nil: undefined }),
      audience: fc.option(fc.constantFrom(['svc-a'], ['svc-b'], ['svc-a', 'svc-b'], ['svc-a'], ['svc-c']), { freq: 8, nil: undefined }),
      constraints: fc.option(fc.record({ region: fc.constantFrom<string | string[]>('eu', 'us', 'ap', ['eu'], ['eu', 'us'], ['us'], ['eu', 'ap']) }), { freq: 8, nil: undefined }),
    }).map((c) => Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined)) as { audience?: string[] } & Record<string, unknown>),
    nbf: fc.integer({ min: NOW - 1, max: NOW + 8 }),
    exp: fc.integer({ min: NOW + 10, max: NOW + 620 }),
  })

  it('on random links below a fixed parent: accepted iff no wider, else ERR_DELEGATION_ESCALATION at that link', async () => {
    const root = await delegate({
      signer: issuer, to: alice.did, expiresIn: 600, clock: at,
      capabilities: [{ resource: 'mcp://erp/tools/*', actions: ['read', 'write'] }],
      caveats: { remainingDepth: 2, maxDataClass: 'internal', audience: ['svc-a', 'svc-b'], constraints: { region: ['eu', 'us'] } },
    })
    const parent = parseCapabilityLink(decodeJwt(root[0]).payload)
    let accepted = 0
    await fc.assert(fc.asyncProperty(arbChild, async (child) => {
      const link = await rawLink({ signer: aliceSigner, sub: bob.did, parent: root[0]!, capabilities: child.capabilities, caveats: child.caveats, nbf: child.nbf, exp: child.exp })
      const verdict = isAttenuation({ capabilities: child.capabilities, caveats: { ...child.caveats, notBefore: child.nbf, expiresAt: child.exp } as Caveats }, parent)
      const first = child.capabilities[0]!
      const request = {
        invoker: bob.did,
        resource: first.resource.endsWith('/*') ? `${first.resource.slice(0, -1)}z` : first.resource,
        action: first.actions.find((a) => a !== '*') ?? 'read',
        audience: child.caveats.audience?.[0] ?? 'svc-a',
      }
      const outcome = await verifier.verifyDelegation([root[0]!, link], request).then(() => null, (e: unknown) => e as VerificationError)
      if (verdict.ok) {
        accepted++
        expect(outcome === null || outcome.code === 'ERR_NOT_AUTHORIZED', String(outcome?.code)).toBe(true)
      } else {
        expect(outcome?.code).toBe('ERR_DELEGATION_ESCALATION')
        expect(outcome?.details.link).toBe(1)
      }
    }), { numRuns: 300 })
    expect(accepted).toBeGreaterThan(3)
  })
})
