import { createHmac } from 'node:crypto'
import { base64urlEncode, POP_TYP, signCompactJws, signerFromJwk, signJwt, StatusList, VerificationError, type Signer, type VerificationErrorCode } from '@agentid/core'
import { delegate, linkHash, type Capability } from '@agentid/delegation'
import { createMemoryReplayCache, createVerifier, PRESENTATION_TYP, type ReplayCache, type Verifier } from '@agentid/verifier'
import { beforeEach, describe, expect, it } from 'vitest'
import { alice, bob, credential, issuer, LIST_URL, mallory, malloryIssuer, NOW, statusListJwt, statusServer, testClock } from './fixtures.js'

const AUD = 'https://erp.example'
const aliceSigner: Signer = signerFromJwk(alice.privateJwk)
const bobSigner: Signer = signerFromJwk(bob.privateJwk)
const mallorySigner: Signer = signerFromJwk(mallory.privateJwk)

async function expectCode(promise: Promise<unknown>, code: VerificationErrorCode): Promise<VerificationError> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error, `expected ${code}`).toBeInstanceOf(VerificationError)
  expect((error as VerificationError).code).toBe(code)
  return error as VerificationError
}

function split(jwt: string): [string, string, string] {
  return jwt.split('.') as [string, string, string]
}

let counter = 0

interface PresentationOptions {
  signer?: Signer
  credential?: string
  header?: Record<string, unknown>
  payload?: Record<string, unknown>
  vp?: Record<string, unknown>
  iat?: number
  ttl?: number
}

/** Signs a presentation as `@agentid/client` would, with every part open to tampering. */
async function presentation(o: PresentationOptions = {}): Promise<string> {
  const signer = o.signer ?? aliceSigner
  const iat = o.iat ?? NOW
  return signJwt({ typ: PRESENTATION_TYP, kid: signer.keyId, ...o.header }, {
    iss: signer.did,
    aud: AUD,
    iat,
    exp: iat + (o.ttl ?? 60),
    jti: `presentation-${String(++counter).padStart(8, '0')}`,
    vp: { type: ['VerifiablePresentation'], verifiableCredential: [o.credential ?? (await credential({ sub: signer.did }))], ...o.vp },
    ...o.payload,
  }, signer)
}

let list: StatusList
let server: ReturnType<typeof statusServer>
let clock: ReturnType<typeof testClock>
let verifier: Verifier

beforeEach(async () => {
  list = StatusList.create()
  server = statusServer({ [LIST_URL]: await statusListJwt(list) })
  clock = testClock()
  verifier = createVerifier({ trustedIssuers: [issuer.did], fetch: server, clock, statusTtlMs: 1000, statusGraceMs: 0 })
})

describe('verifyPresentation: accepts', () => {
  it('returns the agent, the presentation id, the audience and the tool profile as capabilities', async () => {
    const vp = await presentation()
    const result = await verifier.verifyPresentation(vp, { audience: AUD })
    expect(result.agent.did).toBe(alice.did)
    expect(result.agent.issuer).toBe(issuer.did)
    expect(result.presentationId).toBe(JSON.parse(Buffer.from(split(vp)[1], 'base64url').toString()).jti)
    expect(result.audience).toBe(AUD)
    expect(result.capabilities).toEqual([{ resource: 'mcp://erp/tools/invoices.read', actions: ['*'] }])
    expect(result.profile).toBeNull()
    expect(result.delegationChain).toBeNull()
    expect(Object.isFrozen(result.capabilities)).toBe(true)
  })

  it('a named tool profile gives no capabilities and the profile name', async () => {
    const cred = await credential({ claims: { purpose: 'p', controller: 'c', model: { name: 'm', version: '1' }, toolProfile: 'erp-reader', policyTier: 'standard', dataAccessClass: 'public' } })
    const result = await verifier.verifyPresentation(await presentation({ credential: cred }), { audience: AUD })
    expect(result.capabilities).toEqual([])
    expect(result.profile).toBe('erp-reader')
  })

  it('the expected nonce', async () => {
    const result = await verifier.verifyPresentation(await presentation({ payload: { nonce: 'n-123' } }), { audience: AUD, nonce: 'n-123' })
    expect(result.agent.did).toBe(alice.did)
  })

  it('an iat within the maximum age and the clock skew', async () => {
    await verifier.verifyPresentation(await presentation({ iat: NOW - 60 - 50 }), { audience: AUD }) // default 60 s + 60 s skew
    await verifier.verifyPresentation(await presentation({ iat: NOW + 50 }), { audience: AUD })
  })

  it('bob presenting his own credential', async () => {
    const result = await verifier.verifyPresentation(await presentation({ signer: bobSigner }), { audience: AUD })
    expect(result.agent.did).toBe(bob.did)
  })
})

describe('verifyPresentation: replay', () => {
  it('refuses the same presentation twice', async () => {
    const vp = await presentation()
    await verifier.verifyPresentation(vp, { audience: AUD })
    await expectCode(verifier.verifyPresentation(vp, { audience: AUD }), 'ERR_REPLAY')
  })

  it('refuses a new presentation that reuses a jti', async () => {
    await verifier.verifyPresentation(await presentation({ payload: { jti: 'same-jti-0123456789' } }), { audience: AUD })
    await expectCode(verifier.verifyPresentation(await presentation({ payload: { jti: 'same-jti-0123456789' } }), { audience: AUD }), 'ERR_REPLAY')
  })

  it('a presentation refused for another reason does not burn its jti (status list down, then back)', async () => {
    const vp = await presentation()
    server.down = true
    await expectCode(verifier.verifyPresentation(vp, { audience: AUD }), 'ERR_STATUS_UNAVAILABLE')
    server.down = false
    await verifier.verifyPresentation(vp, { audience: AUD })
  })

  it('uses a custom ReplayCache with the key and the expiry of the acceptance window', async () => {
    const calls: Array<[string, number]> = []
    const seen = new Set<string>()
    const replayCache: ReplayCache = {
      async checkAndStore(key, expiresAtMs) {
        calls.push([key, expiresAtMs])
        if (seen.has(key)) return false
        seen.add(key)
        return true
      },
    }
    const v = createVerifier({ trustedIssuers: [issuer.did], fetch: server, clock, replayCache, clockSkewSec: 30, presentationMaxAgeSec: 20 })
    const vp = await presentation({ ttl: 120 })
    const result = await v.verifyPresentation(vp, { audience: AUD })
    await expectCode(v.verifyPresentation(vp, { audience: AUD }), 'ERR_REPLAY')
    expect(calls).toHaveLength(2)
    expect(calls[0]).toEqual([`${alice.did} ${result.presentationId}`, (NOW + 20 + 30 + 1) * 1000])
  })

  it('the default cache remembers an id until the presentation could no longer be accepted', async () => {
    const vp = await presentation({ ttl: 300 })
    await verifier.verifyPresentation(vp, { audience: AUD })
    clock.set((NOW + 60 + 60) * 1000) // the last instant its iat is accepted (max age 60 s + skew 60 s)
    await expectCode(verifier.verifyPresentation(vp, { audience: AUD }), 'ERR_REPLAY')
    clock.advance(1)
    await expectCode(verifier.verifyPresentation(vp, { audience: AUD }), 'ERR_EXPIRED')
  })

  it('a failing replay cache refuses (fails closed)', async () => {
    const v = createVerifier({ trustedIssuers: [issuer.did], fetch: server, clock, replayCache: { checkAndStore: () => { throw new Error('redis down') } } })
    await expectCode(v.verifyPresentation(await presentation(), { audience: AUD }), 'ERR_REPLAY')
  })

  it('the memory cache forgets expired ids and refuses new ones when full of live ids', () => {
    const t = testClock(0)
    const cache = createMemoryReplayCache({ maxEntries: 2, clock: t })
    expect(cache.checkAndStore('a', 1000)).toBe(true)
    expect(cache.checkAndStore('a', 1000)).toBe(false)
    expect(cache.checkAndStore('b', 5000)).toBe(true)
    expect(cache.checkAndStore('c', 5000)).toBe(false) // full of live ids: never forget one early
    t.set(1000)
    expect(cache.checkAndStore('c', 5000)).toBe(true) // 'a' expired and made room
    expect(cache.checkAndStore('a', 2000)).toBe(false) // full again ('b', 'c' live)
    t.set(5000)
    expect(cache.checkAndStore('b', 9000)).toBe(true)
    expect(() => createMemoryReplayCache({ maxEntries: 0 })).toThrow(TypeError)
  })

  it('the memory cache drops an expired head, entries stored out of expiry order, and an expired id stored again', () => {
    const t = testClock(0)
    const cache = createMemoryReplayCache({ maxEntries: 2, clock: t })
    expect(cache.checkAndStore('x', 100)).toBe(true)
    expect(cache.checkAndStore('y', 50)).toBe(true) // expires before the head
    t.set(60)
    expect(cache.checkAndStore('z', 200)).toBe(true) // full: 'y' (not the head) expired and made room
    expect(cache.checkAndStore('x', 300)).toBe(false) // the head is still live
    t.set(101)
    expect(cache.checkAndStore('x', 400)).toBe(true) // the head expired: stored again, now at the tail
    expect(cache.checkAndStore('w', 400)).toBe(false) // full of live ids ('z', 'x')
    t.set(150)
    expect(cache.checkAndStore('x', 500)).toBe(false) // a replay of the id stored again
    t.set(201)
    expect(cache.checkAndStore('w', 400)).toBe(true) // 'z', the new head, expired
    expect(cache.checkAndStore('z', 600)).toBe(false) // full ('x', 'w' live)
    t.set(401)
    expect(cache.checkAndStore('z', 600)).toBe(true)
    expect(cache.checkAndStore('q', 700)).toBe(true)
  })
})

describe('the memory replay cache with 10,000 and 20,000 ids (several shards)', () => {
  it('refuses a replay of any id it holds, drops expired ids, and refuses new ids only when full of live ones', () => {
    const t = testClock(0)
    const cache = createMemoryReplayCache({ maxEntries: 20_000, clock: t })
    // 10,000 ids, expiring in order from 1,000 to 10,999.
    for (let i = 0; i < 10_000; i++) expect(cache.checkAndStore(`id-${i}`, 1000 + i)).toBe(true)
    for (const i of [0, 4095, 4096, 8191, 8192, 9999]) expect(cache.checkAndStore(`id-${i}`, 50_000), `id-${i}`).toBe(false)
    // Ids 0-4095 have expired: they may be stored again, the others are still refused.
    t.set(1000 + 4096)
    expect(cache.checkAndStore('id-4095', 60_000)).toBe(true)
    expect(cache.checkAndStore('id-4095', 60_000)).toBe(false)
    expect(cache.checkAndStore('id-4097', 60_000)).toBe(false) // expires at 5,097: still live
    // An expired id stored again is refused as a replay until its new expiry.
    t.set(1000 + 5000)
    expect(cache.checkAndStore('id-4500', 70_000)).toBe(true)
    t.set(1000 + 8191)
    expect(cache.checkAndStore('id-4500', 70_000)).toBe(false)
    // Full: 20,000 live ids refuse the next; once some expire, there is room for exactly as many.
    const full = createMemoryReplayCache({ maxEntries: 20_000, clock: t })
    t.set(0)
    for (let i = 0; i < 20_000; i++) expect(full.checkAndStore(`f-${i}`, i < 10 ? 100 : 1_000_000)).toBe(true)
    expect(full.checkAndStore('new-0', 1_000_000)).toBe(false)
    t.set(100)
    for (let i = 0; i < 10; i++) expect(full.checkAndStore(`new-${i}`, 1_000_000)).toBe(true)
    expect(full.checkAndStore('new-10', 1_000_000)).toBe(false)
    expect(full.checkAndStore('f-10', 1_000_000)).toBe(false)
    expect(full.checkAndStore('f-19999', 1_000_000)).toBe(false)
  })
})

describe('verifyPresentation: refuses', () => {
  it('another audience', async () => {
    await expectCode(verifier.verifyPresentation(await presentation(), { audience: 'https://other.example' }), 'ERR_AUDIENCE_MISMATCH')
    await expectCode(verifier.verifyPresentation(await presentation({ payload: { aud: [AUD] } }), { audience: AUD }), 'ERR_AUDIENCE_MISMATCH')
  })

  it('a stale iat', async () => {
    await expectCode(verifier.verifyPresentation(await presentation({ iat: NOW - 121, ttl: 300 }), { audience: AUD }), 'ERR_EXPIRED')
    const strict = createVerifier({ trustedIssuers: [issuer.did], fetch: server, clock, clockSkewSec: 0, presentationMaxAgeSec: 10 })
    await expectCode(strict.verifyPresentation(await presentation({ iat: NOW - 11 }), { audience: AUD }), 'ERR_EXPIRED')
  })

  it('an exp in the past', async () => {
    await expectCode(verifier.verifyPresentation(await presentation({ iat: NOW - 100, ttl: 30 }), { audience: AUD }), 'ERR_EXPIRED')
  })

  it('an iat in the future', async () => {
    await expectCode(verifier.verifyPresentation(await presentation({ iat: NOW + 61 }), { audience: AUD }), 'ERR_NOT_YET_VALID')
  })

  it('a lifetime over 300 s, or none', async () => {
    await expectCode(verifier.verifyPresentation(await presentation({ ttl: 301 }), { audience: AUD }), 'ERR_MALFORMED')
    await expectCode(verifier.verifyPresentation(await presentation({ ttl: 0 }), { audience: AUD }), 'ERR_MALFORMED')
    await expectCode(verifier.verifyPresentation(await presentation({ payload: { exp: undefined } }), { audience: AUD }), 'ERR_MALFORMED')
  })

  it('a wrong or missing nonce when one is expected', async () => {
    await expectCode(verifier.verifyPresentation(await presentation({ payload: { nonce: 'n-other' } }), { audience: AUD, nonce: 'n-123' }), 'ERR_REPLAY')
    await expectCode(verifier.verifyPresentation(await presentation(), { audience: AUD, nonce: 'n-123' }), 'ERR_REPLAY')
  })

  it('a jti too short, too long or missing', async () => {
    for (const jti of ['short', 'x'.repeat(129), undefined, 12345678901234567890]) {
      await expectCode(verifier.verifyPresentation(await presentation({ payload: { jti } }), { audience: AUD }), 'ERR_MALFORMED')
    }
  })

  it("mallory presenting alice's credential, signed with her own key", async () => {
    const aliceCred = await credential({ sub: alice.did })
    await expectCode(verifier.verifyPresentation(await presentation({ signer: mallorySigner, credential: aliceCred }), { audience: AUD }), 'ERR_KEY_MISMATCH')
  })

  it("mallory presenting alice's credential as alice (iss and kid alice, signed by mallory)", async () => {
    const forged = { ...mallorySigner, did: alice.did, keyId: alice.keyId }
    await expectCode(verifier.verifyPresentation(await presentation({ signer: forged }), { audience: AUD }), 'ERR_SIGNATURE_INVALID')
  })

  it('a kid that names another key, or none', async () => {
    await expectCode(verifier.verifyPresentation(await presentation({ header: { kid: mallory.keyId } }), { audience: AUD }), 'ERR_KEY_MISMATCH')
    await expectCode(verifier.verifyPresentation(await presentation({ header: { kid: `#${alice.did.slice(8)}x` } }), { audience: AUD }), 'ERR_KEY_MISMATCH')
    const [, payload] = split(await presentation())
    const noKid = await signCompactJws({ alg: 'EdDSA', typ: PRESENTATION_TYP }, Buffer.from(payload, 'base64url'), aliceSigner)
    await expectCode(verifier.verifyPresentation(noKid, { audience: AUD }), 'ERR_MALFORMED')
  })

  it('an iss that is not a did:key', async () => {
    await expectCode(verifier.verifyPresentation(await presentation({ payload: { iss: 'did:web:alice.example' } }), { audience: AUD }), 'ERR_MALFORMED')
    await expectCode(verifier.verifyPresentation(await presentation({ payload: { iss: undefined } }), { audience: AUD }), 'ERR_MALFORMED')
  })

  it('alg none', async () => {
    const [, payload] = split(await presentation())
    const header = base64urlEncode(JSON.stringify({ alg: 'none', typ: PRESENTATION_TYP }))
    await expectCode(verifier.verifyPresentation(`${header}.${payload}.`, { audience: AUD }), 'ERR_UNSUPPORTED_ALG')
  })

  it('alg HS256 keyed with the agent public key', async () => {
    const [, payload] = split(await presentation())
    const header = base64urlEncode(JSON.stringify({ alg: 'HS256', typ: PRESENTATION_TYP, kid: alice.keyId }))
    const mac = createHmac('sha256', Buffer.from(alice.publicJwk.x, 'base64url')).update(`${header}.${payload}`).digest('base64url')
    await expectCode(verifier.verifyPresentation(`${header}.${payload}.${mac}`, { audience: AUD }), 'ERR_UNSUPPORTED_ALG')
  })

  it.each([['a credential', 'JWT'], ['a VC', 'vc+jwt'], ['a proof of possession', POP_TYP], ['no typ', undefined], ['an access token', 'at+jwt']])('the typ of %s (token confusion)', async (_, typ) => {
    await expectCode(verifier.verifyPresentation(await presentation({ header: { typ } }), { audience: AUD }), 'ERR_MALFORMED')
  })

  it('an identity credential presented as a presentation', async () => {
    await expectCode(verifier.verifyPresentation(await credential(), { audience: AUD }), 'ERR_MALFORMED')
  })

  it('a revoked embedded credential', async () => {
    list.set(7, 1)
    server = statusServer({ [LIST_URL]: await statusListJwt(list) })
    const v = createVerifier({ trustedIssuers: [issuer.did], fetch: server, clock })
    await expectCode(v.verifyPresentation(await presentation(), { audience: AUD }), 'ERR_REVOKED')
  })

  it('an expired or not yet valid embedded credential', async () => {
    await expectCode(verifier.verifyPresentation(await presentation({ credential: await credential({ exp: NOW - 61 }) }), { audience: AUD }), 'ERR_EXPIRED')
    await expectCode(verifier.verifyPresentation(await presentation({ credential: await credential({ nbf: NOW + 61 }) }), { audience: AUD }), 'ERR_NOT_YET_VALID')
  })

  it('an embedded credential from an untrusted issuer', async () => {
    const cred = await credential({ signer: malloryIssuer })
    await expectCode(verifier.verifyPresentation(await presentation({ credential: cred }), { audience: AUD }), 'ERR_UNTRUSTED_ISSUER')
  })

  it('an embedded credential with a forged signature', async () => {
    const cred = await credential({ signer: malloryIssuer, iss: issuer.did, header: { kid: issuer.keyId } })
    await expectCode(verifier.verifyPresentation(await presentation({ credential: cred }), { audience: AUD }), 'ERR_SIGNATURE_INVALID')
  })

  it('a vp without exactly one credential JWT, or of another type', async () => {
    const cred = await credential()
    for (const vp of [{ verifiableCredential: [] }, { verifiableCredential: [cred, cred] }, { verifiableCredential: cred }, { verifiableCredential: [{ jwt: cred }] }, { type: ['VerifiableCredential'] }]) {
      await expectCode(verifier.verifyPresentation(await presentation({ vp }), { audience: AUD }), 'ERR_MALFORMED')
    }
    await expectCode(verifier.verifyPresentation(await presentation({ payload: { vp: undefined } }), { audience: AUD }), 'ERR_MALFORMED')
    await expectCode(verifier.verifyPresentation(await presentation({ vp: { holder: mallory.did } }), { audience: AUD }), 'ERR_KEY_MISMATCH')
  })

  it('an oversized presentation, before parsing', async () => {
    const v = createVerifier({ trustedIssuers: [issuer.did], fetch: server, clock, maxTokenBytes: 4096 })
    const vp = await presentation({ payload: { pad: 'x'.repeat(5000) } })
    await expectCode(v.verifyPresentation(vp, { audience: AUD }), 'ERR_MALFORMED')
    // Not even a JWS: refused on its length alone.
    await expectCode(verifier.verifyPresentation('{'.repeat(70_000), { audience: AUD }), 'ERR_MALFORMED')
  })

  it('garbage and duplicate-key JSON', async () => {
    for (const junk of ['', 'a.b', 'a.b.c.d', '...', '!!.!!.!!', `${base64urlEncode('{"alg":"EdDSA"')}.e30.${base64urlEncode(new Uint8Array(64))}`]) {
      await expectCode(verifier.verifyPresentation(junk, { audience: AUD }), 'ERR_MALFORMED')
    }
    await expectCode(verifier.verifyPresentation(42 as unknown as string, { audience: AUD }), 'ERR_MALFORMED')
    const header = base64urlEncode(`{"alg":"EdDSA","typ":"${PRESENTATION_TYP}","kid":"${alice.keyId}"}`)
    const payload = base64urlEncode(`{"iss":"${alice.did}","aud":"${AUD}","aud":"https://other.example","iat":${NOW},"exp":${NOW + 60},"jti":"presentation-dup-key","vp":{}}`)
    const sig = base64urlEncode(await aliceSigner.sign(new TextEncoder().encode(`${header}.${payload}`)))
    await expectCode(verifier.verifyPresentation(`${header}.${payload}.${sig}`, { audience: AUD }), 'ERR_MALFORMED')
    const dupHeader = base64urlEncode(`{"alg":"EdDSA","typ":"${PRESENTATION_TYP}","typ":"JWT"}`)
    await expectCode(verifier.verifyPresentation(`${dupHeader}.${payload}.${sig}`, { audience: AUD }), 'ERR_MALFORMED')
  })

  it('a tampered payload', async () => {
    const [header, , sig] = split(await presentation())
    const [, other] = split(await presentation({ payload: { aud: AUD } }))
    await expectCode(verifier.verifyPresentation(`${header}.${other}.${sig}`, { audience: AUD }), 'ERR_SIGNATURE_INVALID')
  })

  it('misuse of the API with a TypeError', async () => {
    const vp = await presentation()
    await expect(verifier.verifyPresentation(vp, {} as { audience: string })).rejects.toBeInstanceOf(TypeError)
    await expect(verifier.verifyPresentation(vp, { audience: AUD, nonce: '' })).rejects.toBeInstanceOf(TypeError)
    expect(() => createVerifier({ trustedIssuers: [issuer.did], fetch: server, presentationMaxAgeSec: 301 })).toThrow(TypeError)
    expect(() => createVerifier({ trustedIssuers: [issuer.did], fetch: server, replayCache: {} as ReplayCache })).toThrow(TypeError)
  })
})

const ERP: Capability[] = [{ resource: 'mcp://erp/tools/*', actions: ['*'] }]
const INVOICES: Capability[] = [{ resource: 'mcp://erp/tools/invoices/*', actions: ['invoke', 'list'] }]
const at = () => clock()
const linkStatus = (index: number) => ({ type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: String(index), statusListCredential: LIST_URL }) as const

/** issuer → alice (all of the ERP) → bob (invoices only). */
async function aliceToBob(o: { rootSigner?: Signer; caveats?: Record<string, unknown>; capabilities?: Capability[] } = {}): Promise<string[]> {
  const root = await delegate({ signer: o.rootSigner ?? issuer, to: alice.did, capabilities: o.capabilities ?? ERP, caveats: { remainingDepth: 2 }, expiresIn: 3600, statusEntry: linkStatus(1), clock: at })
  return delegate({ signer: aliceSigner, to: bob.did, parent: root, capabilities: o.capabilities ?? INVOICES, caveats: o.caveats, expiresIn: 600, statusEntry: linkStatus(2), clock: at })
}

describe('verifyPresentation: delegation chains', () => {
  it("bob presents his identity and the chain to him: the leaf's capabilities", async () => {
    const chain = await aliceToBob()
    const result = await verifier.verifyPresentation(await presentation({ signer: bobSigner, vp: { delegationChain: chain } }), { audience: AUD })
    expect(result.agent.did).toBe(bob.did)
    expect(result.capabilities).toEqual(INVOICES)
    expect(result.delegationChain).toEqual(chain)
    expect(result.delegation?.root).toBe(issuer.did)
    expect(result.delegation?.leaf.did).toBe(bob.did)
    expect(result.delegation?.links).toBe(2)
    // The service can then check one exact invocation with the same chain.
    await verifier.verifyDelegation(result.delegationChain!, { invoker: result.agent.did, resource: 'mcp://erp/tools/invoices/read', action: 'invoke', audience: AUD })
  })

  it("a chain to bob presented by alice (with alice's own credential)", async () => {
    await expectCode(verifier.verifyPresentation(await presentation({ vp: { delegationChain: await aliceToBob() } }), { audience: AUD }), 'ERR_KEY_MISMATCH')
  })

  it('a chain restricted to another service', async () => {
    const chain = await aliceToBob({ caveats: { audience: ['https://other.example'] } })
    await expectCode(verifier.verifyPresentation(await presentation({ signer: bobSigner, vp: { delegationChain: chain } }), { audience: AUD }), 'ERR_NOT_AUTHORIZED')
    const ok = await aliceToBob({ caveats: { audience: [AUD] } })
    await verifier.verifyPresentation(await presentation({ signer: bobSigner, vp: { delegationChain: ok } }), { audience: AUD })
  })

  it('a chain rooted by someone the verifier does not trust', async () => {
    const chain = await aliceToBob({ rootSigner: mallorySigner })
    await expectCode(verifier.verifyPresentation(await presentation({ signer: bobSigner, vp: { delegationChain: chain } }), { audience: AUD }), 'ERR_UNTRUSTED_ISSUER')
  })

  it('only the capabilities whose resources the root is trusted for', async () => {
    const mixed: Capability[] = [{ resource: 'mcp://erp/tools/*', actions: ['invoke'] }, { resource: 'mcp://crm/tools/contacts.read', actions: ['invoke'] }]
    const chain = await aliceToBob({ rootSigner: mallorySigner, capabilities: mixed })
    const v = createVerifier({ trustedIssuers: [issuer.did], trustedRoots: { 'mcp://crm/': [mallory.did] }, fetch: server, clock })
    const result = await v.verifyPresentation(await presentation({ signer: bobSigner, vp: { delegationChain: chain } }), { audience: AUD })
    expect(result.capabilities).toEqual([mixed[1]])
  })

  it('a link wider than its parent', async () => {
    const root = await delegate({ signer: issuer, to: alice.did, capabilities: INVOICES, expiresIn: 3600, clock: at })
    const link = await signJwt({ typ: 'JWT' }, { iss: alice.did, sub: bob.did, nbf: NOW, exp: NOW + 600, vc: { '@context': ['https://www.w3.org/2018/credentials/v1'], type: ['VerifiableCredential', 'AgentCapabilityCredential'], credentialSubject: { id: bob.did, capabilities: ERP, parentHash: linkHash(root[0]!) } } }, aliceSigner)
    await expectCode(verifier.verifyPresentation(await presentation({ signer: bobSigner, vp: { delegationChain: [...root, link] } }), { audience: AUD }), 'ERR_DELEGATION_ESCALATION')
  })

  it('a revoked link', async () => {
    const chain = await aliceToBob()
    list.set(2, 1)
    server = statusServer({ [LIST_URL]: await statusListJwt(list) })
    const v = createVerifier({ trustedIssuers: [issuer.did], fetch: server, clock })
    await expectCode(v.verifyPresentation(await presentation({ signer: bobSigner, vp: { delegationChain: chain } }), { audience: AUD }), 'ERR_REVOKED')
  })

  it('an expired link', async () => {
    const chain = await aliceToBob()
    clock.advance(700_000)
    await expectCode(verifier.verifyPresentation(await presentation({ signer: bobSigner, iat: NOW + 700, vp: { delegationChain: chain } }), { audience: AUD }), 'ERR_EXPIRED')
  })

  it('a chain that is not a list of link JWTs, or too long', async () => {
    for (const delegationChain of [[], 'jwt', [42], ['a.b.c'], [await credential()]]) {
      await expectCode(verifier.verifyPresentation(await presentation({ vp: { delegationChain } }), { audience: AUD }), 'ERR_MALFORMED')
    }
    const long = Array.from({ length: 11 }, () => 'a.b.c')
    await expectCode(verifier.verifyPresentation(await presentation({ vp: { delegationChain: long } }), { audience: AUD }), 'ERR_DELEGATION_DEPTH')
  })

  it('a refused chain does not burn the presentation id', async () => {
    const vp = await presentation({ signer: bobSigner, vp: { delegationChain: await aliceToBob() } })
    server.down = true
    await expectCode(verifier.verifyPresentation(vp, { audience: AUD }), 'ERR_STATUS_UNAVAILABLE')
    server.down = false
    await verifier.verifyPresentation(vp, { audience: AUD })
  })
})
