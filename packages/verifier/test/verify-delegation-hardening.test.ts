// Issue 11, verifier side: what an outside attack suite got through verifyDelegation.
import { AGENTID_CONTEXT_V1, generateEd25519KeyPair, signerFromJwk, signJwt, StatusList, VC_CONTEXT_V1, VerificationError, type Signer, type VerificationErrorCode } from '@agentid/core'
import { delegate, linkHash } from '@agentid/delegation'
import { createVerifier, type Verifier, type VerifierOptions } from '@agentid/verifier'
import { beforeEach, describe, expect, it } from 'vitest'
import { alice, bob, issuer, LIST_URL, NOW, statusListJwt, statusServer, testClock } from './fixtures.js'

const carol = generateEd25519KeyPair()
const aliceSigner = signerFromJwk(alice.privateJwk)
const bobSigner = signerFromJwk(bob.privateJwk)
const carolSigner = signerFromJwk(carol.privateJwk)

let server: ReturnType<typeof statusServer>
let clock: ReturnType<typeof testClock>
const at = () => clock()

function make(extra: Partial<VerifierOptions> = {}): Verifier {
  return createVerifier({ trustedIssuers: [issuer.did], fetch: server, clock, statusTtlMs: 1000, statusGraceMs: 0, ...extra })
}

beforeEach(async () => {
  server = statusServer({ [LIST_URL]: await statusListJwt(StatusList.create()) })
  clock = testClock()
})

async function failure(promise: Promise<unknown>, code: VerificationErrorCode): Promise<VerificationError> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error, `expected ${code}`).toBeInstanceOf(VerificationError)
  expect((error as VerificationError).code, JSON.stringify((error as VerificationError).details)).toBe(code)
  return error as VerificationError
}

/** Signs a link as an attacker would: no attenuation or resource check. */
async function rawLink(o: { signer: Signer; sub: string; resource: string; parent?: string; status?: Record<string, unknown> }): Promise<string> {
  const subject: Record<string, unknown> = { id: o.sub, capabilities: [{ resource: o.resource, actions: ['invoke'] }], caveats: {} }
  if (o.parent) subject.parentHash = linkHash(o.parent)
  const vc: Record<string, unknown> = { '@context': [VC_CONTEXT_V1, AGENTID_CONTEXT_V1], type: ['VerifiableCredential', 'AgentCapabilityCredential'], credentialSubject: subject }
  if (o.status) vc.credentialStatus = o.status
  return signJwt({ typ: 'JWT' }, { iss: o.signer.did, sub: o.sub, nbf: NOW, exp: NOW + 600, jti: 'urn:uuid:7d5b7e0e-6a8a-4f5e-9c55-1b7f2e1c0a11', vc }, o.signer)
}

const DOTTED = ['mcp://erp/public/../payroll/run', 'mcp://erp/public/%2e%2e/payroll/run', 'mcp://erp/public/%2E%2E/payroll/run', 'mcp://erp/public/.%2e/payroll/run', 'mcp://erp/public/./run', 'mcp://erp/public/..%2fpayroll/run']

describe('verifyDelegation: one resource-identifier rule (no dot segments)', () => {
  it('a root trusted only for mcp://erp/public/ authorizes nothing outside it through a dot segment', async () => {
    const verifier = make({ trustedRoots: { 'mcp://erp/public/': [alice.did] } })
    const chain = await delegate({ signer: aliceSigner, to: bob.did, capabilities: [{ resource: 'mcp://erp/public/*', actions: ['invoke'] }], expiresIn: 600, clock: at })
    await verifier.verifyDelegation(chain, { invoker: bob.did, resource: 'mcp://erp/public/run', action: 'invoke' })
    for (const resource of DOTTED) {
      const error = await failure(verifier.verifyDelegation(chain, { invoker: bob.did, resource, action: 'invoke' }), 'ERR_NOT_AUTHORIZED')
      expect(error.details.reason).toBe('resource not plain')
    }
  })

  it('the issuer-rooted chain does not stretch either', async () => {
    const verifier = make()
    const chain = await delegate({ signer: issuer, to: alice.did, capabilities: [{ resource: 'mcp://erp/public/*', actions: ['invoke'] }], expiresIn: 600, clock: at })
    for (const resource of DOTTED) await failure(verifier.verifyDelegation(chain, { invoker: alice.did, resource, action: 'invoke' }), 'ERR_NOT_AUTHORIZED')
  })

  it('a link whose capability holds a dot segment is malformed; delegate() refuses to sign one', async () => {
    const verifier = make()
    const link = await rawLink({ signer: issuer, sub: alice.did, resource: 'mcp://erp/public/%2e%2e/*' })
    await failure(verifier.verifyDelegation([link], { invoker: alice.did, resource: 'mcp://erp/payroll', action: 'invoke' }), 'ERR_MALFORMED')
    await expect(delegate({ signer: issuer, to: alice.did, capabilities: [{ resource: 'mcp://erp/public/../*', actions: ['invoke'] }], expiresIn: 600, clock: at }))
      .rejects.toMatchObject({ code: 'ERR_INVALID_INPUT' })
  })
})

describe('verifyDelegation: a link names only status lists the verifier already trusts (SSRF)', () => {
  const entry = (url: string, index = 2) => ({ type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: String(index), statusListCredential: url }) as const
  const EVIL = ['http://169.254.169.254/latest/meta-data/iam', 'http://127.0.0.1:6379/', 'https://issuer.example.evil.example/v1/status-lists/1',
    'https://issuer.example@evil.example/v1/status-lists/1', 'https://issuer.example/v1/status-lists/../../admin', 'https://issuer.example/v1/status-lists/%2e%2e/%2e%2e/admin',
    'https://issuer.example:8443/v1/status-lists/1', 'http://issuer.example/v1/status-lists/1', 'https://issuer.example/v1/status-lists/1#x', 'https://issuer.example/admin/1']

  /** A fetch spy: every URL asked for, answered from the status server. */
  function spy(): typeof server & { urls: string[] } {
    const urls: string[] = []
    return Object.assign(async (url: string, init?: unknown) => { urls.push(url); return server(url, init as never) }, { calls: 0, down: false, urls })
  }

  it('a link signed by an agent, under an issuer-signed root, naming another URL is refused before any fetch', async () => {
    for (const url of EVIL) {
      const fetch = spy()
      const verifier = make({ fetch })
      const root = await delegate({ signer: issuer, to: alice.did, capabilities: [{ resource: 'mcp://erp/*', actions: ['*'] }], expiresIn: 600, statusEntry: entry(LIST_URL, 1), clock: at })
      const chain = await delegate({ signer: aliceSigner, to: bob.did, parent: root, capabilities: [{ resource: 'mcp://erp/a', actions: ['invoke'] }], expiresIn: 600, statusEntry: entry(url), clock: at })
      const error = await failure(verifier.verifyDelegation(chain, { invoker: bob.did, resource: 'mcp://erp/a', action: 'invoke' }), 'ERR_STATUS_UNAVAILABLE')
      expect(error.details).toMatchObject({ link: 1, signer: alice.did, reason: 'status list not trusted' })
      expect(fetch.urls, url).toEqual([])
    }
  })

  it('a root signed by a trusted root that is not an issuer teaches nothing: its own URL is refused unless configured', async () => {
    const fetch = spy()
    const chain = await delegate({ signer: aliceSigner, to: bob.did, capabilities: [{ resource: 'mcp://erp/*', actions: ['invoke'] }], expiresIn: 600, statusEntry: entry('http://169.254.169.254/latest/meta-data/'), clock: at })
    const request = { invoker: bob.did, resource: 'mcp://erp/a', action: 'invoke' }
    const error = await failure(make({ fetch, trustedRoots: { 'mcp://erp/': [alice.did] } }).verifyDelegation(chain, request), 'ERR_STATUS_UNAVAILABLE')
    expect(error.details).toMatchObject({ link: 0, reason: 'status list not trusted' })
    expect(fetch.urls).toEqual([])
    // The issuer's list, unknown to a fresh verifier, is refused too, and accepted once configured.
    const mine = await delegate({ signer: aliceSigner, to: bob.did, capabilities: [{ resource: 'mcp://erp/*', actions: ['invoke'] }], expiresIn: 600, statusEntry: entry(LIST_URL), clock: at })
    await failure(make({ fetch, trustedRoots: { 'mcp://erp/': [alice.did] } }).verifyDelegation(mine, request), 'ERR_STATUS_UNAVAILABLE')
    expect(fetch.urls).toEqual([])
    await make({ fetch, trustedRoots: { 'mcp://erp/': [alice.did] }, trustedStatusLists: ['https://issuer.example/v1/status-lists/'] }).verifyDelegation(mine, request)
    await make({ fetch, trustedRoots: { 'mcp://erp/': [alice.did] }, trustedStatusLists: [LIST_URL] }).verifyDelegation(mine, request)
    expect(fetch.urls).toEqual([LIST_URL, LIST_URL])
    const other = await delegate({ signer: aliceSigner, to: bob.did, capabilities: [{ resource: 'mcp://erp/*', actions: ['invoke'] }], expiresIn: 600, statusEntry: entry(`${LIST_URL}0`), clock: at })
    await failure(make({ fetch, trustedRoots: { 'mcp://erp/': [alice.did] }, trustedStatusLists: [LIST_URL] }).verifyDelegation(other, request), 'ERR_STATUS_UNAVAILABLE')
    expect(fetch.urls).toHaveLength(2)
  })

  it('the issuer\'s status-list directory is learned from a verified identity credential', async () => {
    const fetch = spy()
    const verifier = make({ fetch, trustedRoots: { 'mcp://erp/': [alice.did] } })
    const chain = await delegate({ signer: aliceSigner, to: bob.did, capabilities: [{ resource: 'mcp://erp/*', actions: ['invoke'] }], expiresIn: 600, statusEntry: entry('https://issuer.example/v1/status-lists/1', 9), clock: at })
    const request = { invoker: bob.did, resource: 'mcp://erp/a', action: 'invoke' }
    await failure(verifier.verifyDelegation(chain, request), 'ERR_STATUS_UNAVAILABLE')
    const { credential } = await import('./fixtures.js')
    await verifier.verifyAgentCredential(await credential({ sub: bob.did })) // names LIST_URL, signed by the issuer
    await verifier.verifyDelegation(chain, request)
  })

  it('trustedStatusLists are matched in the form fetch requests (dot segments resolved, case normalised)', async () => {
    const fetch = spy()
    const request = { invoker: bob.did, resource: 'mcp://erp/a', action: 'invoke' }
    const verifier = make({ fetch, trustedRoots: { 'mcp://erp/': [alice.did] }, trustedStatusLists: ['HTTPS://Issuer.Example:443/v1/x/../status-lists/'] })
    const spelled = await delegate({ signer: aliceSigner, to: bob.did, capabilities: [{ resource: 'mcp://erp/*', actions: ['invoke'] }], expiresIn: 600, statusEntry: entry('https://issuer.example/v1/status-lists/x/../../admin'), clock: at })
    await failure(verifier.verifyDelegation(spelled, request), 'ERR_STATUS_UNAVAILABLE')
    expect(fetch.urls).toEqual([])
    const plain = await delegate({ signer: aliceSigner, to: bob.did, capabilities: [{ resource: 'mcp://erp/*', actions: ['invoke'] }], expiresIn: 600, statusEntry: entry(LIST_URL), clock: at })
    await verifier.verifyDelegation(plain, request)
  })

  it('trustedStatusLists must be http(s) URLs without credentials, query or fragment', () => {
    for (const bad of ['issuer.example/lists/', 'ftp://issuer.example/', 'https://u:p@issuer.example/', 'https://issuer.example/lists/?x', 'https://issuer.example/lists/#x', 42]) {
      expect(() => make({ trustedStatusLists: [bad as string] }), String(bad)).toThrow(TypeError)
    }
    expect(() => make({ trustedStatusLists: 'https://issuer.example/' as unknown as string[] })).toThrow(TypeError)
  })
})

describe('decided once, strict: cycles, iat in the future, NumericDate bounds', () => {
  const ALL = [{ resource: 'mcp://erp/*', actions: ['*'] }]

  it('a DID appearing twice in one chain (a cycle) is ERR_DELEGATION_BROKEN; delegate() refuses to sign it', async () => {
    const verifier = make()
    const root = await delegate({ signer: issuer, to: alice.did, capabilities: ALL, expiresIn: 600, clock: at })
    const ab = await delegate({ signer: aliceSigner, to: bob.did, parent: root, capabilities: ALL, expiresIn: 600, clock: at })
    // bob → alice: signed by hand, delegate() refuses it.
    await expect(delegate({ signer: bobSigner, to: alice.did, parent: ab, capabilities: ALL, expiresIn: 600, clock: at })).rejects.toMatchObject({ code: 'ERR_DELEGATION_BROKEN', details: { reason: 'cycle' } })
    const back = await rawLink({ signer: bobSigner, sub: alice.did, resource: 'mcp://erp/a', parent: ab[1] })
    const error = await failure(verifier.verifyDelegation([...ab, back], { invoker: alice.did, resource: 'mcp://erp/a', action: 'invoke' }), 'ERR_DELEGATION_BROKEN')
    expect(error.details).toMatchObject({ link: 2, reason: 'cycle', did: alice.did })
    // alice → alice (to oneself), and a root to its own signer.
    await expect(delegate({ signer: aliceSigner, to: alice.did, parent: root, capabilities: ALL, expiresIn: 600, clock: at })).rejects.toMatchObject({ code: 'ERR_DELEGATION_BROKEN' })
    const self = await rawLink({ signer: aliceSigner, sub: alice.did, resource: 'mcp://erp/a', parent: root[0] })
    await failure(verifier.verifyDelegation([root[0]!, self], { invoker: alice.did, resource: 'mcp://erp/a', action: 'invoke' }), 'ERR_DELEGATION_BROKEN')
    const selfRoot = await rawLink({ signer: carolSigner, sub: carol.did, resource: 'mcp://erp/a' })
    await failure(make({ trustedRoots: { 'mcp://erp/': [carol.did] } }).verifyDelegation([selfRoot], { invoker: carol.did, resource: 'mcp://erp/a', action: 'invoke' }), 'ERR_DELEGATION_BROKEN')
    // Back to the root's signer further down: carol (root) → alice → carol.
    const carolRoot = await rawLink({ signer: carolSigner, sub: alice.did, resource: 'mcp://erp/a' })
    const toRoot = await rawLink({ signer: aliceSigner, sub: carol.did, resource: 'mcp://erp/a', parent: carolRoot })
    const carolRoots = make({ trustedRoots: { 'mcp://erp/': [carol.did] } })
    await carolRoots.verifyDelegation([carolRoot], { invoker: alice.did, resource: 'mcp://erp/a', action: 'invoke' })
    expect((await failure(carolRoots.verifyDelegation([carolRoot, toRoot], { invoker: carol.did, resource: 'mcp://erp/a', action: 'invoke' }), 'ERR_DELEGATION_BROKEN')).details).toMatchObject({ link: 1, reason: 'cycle', did: carol.did })
  })

  it('a link issued in the future (iat past now + clock skew) is ERR_NOT_YET_VALID', async () => {
    const verifier = make()
    const sign = (iat: number) => signJwt({ typ: 'JWT' }, {
      iss: issuer.did, sub: alice.did, nbf: NOW - 10, iat, exp: NOW + 600, jti: 'urn:uuid:7d5b7e0e-6a8a-4f5e-9c55-1b7f2e1c0a12',
      vc: { '@context': [VC_CONTEXT_V1, AGENTID_CONTEXT_V1], type: ['VerifiableCredential', 'AgentCapabilityCredential'], credentialSubject: { id: alice.did, capabilities: ALL } },
    }, issuer)
    const request = { invoker: alice.did, resource: 'mcp://erp/a', action: 'invoke' }
    await verifier.verifyDelegation([await sign(NOW + 60)], request) // within the default 60 s skew
    const error = await failure(verifier.verifyDelegation([await sign(NOW + 61)], request), 'ERR_NOT_YET_VALID')
    expect(error.details.reason).toBe('issued in the future')
    await failure(verifier.verifyDelegation([await sign(NOW + 10 * 365 * 86400)], request), 'ERR_NOT_YET_VALID')
  })

  it('an identity credential issued in the future is ERR_NOT_YET_VALID; NumericDates past 9999-12-31 are malformed, fractions accepted', async () => {
    const { credential } = await import('./fixtures.js')
    const verifier = make()
    await failure(verifier.verifyAgentCredential(await credential({ extraPayload: { iat: NOW + 3600 } })), 'ERR_NOT_YET_VALID')
    await verifier.verifyAgentCredential(await credential({ extraPayload: { iat: NOW + 30 } }))
    for (const exp of [2 ** 53, 2 ** 53 + 2, 1e300, 253_402_300_800]) {
      await failure(verifier.verifyAgentCredential(await credential({ exp })), 'ERR_MALFORMED')
    }
    await verifier.verifyAgentCredential(await credential({ exp: NOW + 3600.5, extraPayload: { iat: NOW - 0.25 } })) // RFC 7519 §2 allows non-integers
    const link = (exp: number) => signJwt({ typ: 'JWT' }, {
      iss: issuer.did, sub: alice.did, nbf: NOW - 10, exp, vc: { '@context': [VC_CONTEXT_V1], type: ['VerifiableCredential', 'AgentCapabilityCredential'], credentialSubject: { id: alice.did, capabilities: ALL } },
    }, issuer)
    await failure(verifier.verifyDelegation([await link(2 ** 53)], { invoker: alice.did, resource: 'mcp://erp/a', action: 'invoke' }), 'ERR_MALFORMED')
  })
})
