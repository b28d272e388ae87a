import { describe, expect, it } from 'vitest'
import { VerificationError } from '@agentid/core'
import type { VerifiedPresentation, VerifiedRequest } from '@agentid/verifier'
import { callerFromPresentation, callerFromToken, headerValues } from '../src/authenticate.js'
import { claims, DIDS } from './fixtures.js'

const ROOT = 'did:key:z6MkROOTrootROOTrootROOTrootROOTrootROOTroot'

function verifiedRequest(overrides: Partial<VerifiedRequest> = {}): VerifiedRequest {
  return {
    agent: DIDS.alice,
    user: null,
    act: null,
    agentClaims: claims(),
    userIssuer: null,
    delegation: null,
    authorizationDetails: [],
    issuer: 'did:key:z6MkISSUER',
    tokenId: 'jti-1',
    expiresAt: 2_000_000_000,
    claims: {},
    audience: 'https://erp.example/mcp',
    proof: {} as VerifiedRequest['proof'],
    ...overrides,
  }
}

describe('callerFromToken (contract A)', () => {
  it('maps the agent, its claims, the user and its IdP, the delegation and the authorization details', () => {
    const details = [{ type: 'agentid_action' as const, actions: ['invoke'], locations: ['echo'] }]
    const caller = callerFromToken(verifiedRequest({
      user: 'user-42', act: { sub: DIDS.alice }, userIssuer: 'https://idp.example', delegation: { root: ROOT, depth: 2 }, authorizationDetails: details,
    }))
    expect(caller).toEqual({
      agent: DIDS.alice, user: 'user-42', via: 'token',
      subject: { agent: { did: DIDS.alice, claims: claims() }, user: { id: 'user-42', issuer: 'https://idp.example' }, delegation: { root: ROOT, depth: 2 }, authorizationDetails: details },
    })
    expect(Object.isFrozen(caller)).toBe(true)
    expect(callerFromToken(verifiedRequest()).subject).toEqual({ agent: { did: DIDS.alice, claims: claims() }, user: null, delegation: null })
  })

  it('builds one caller per token: the same caller for the same frozen token claims and inputs, a new one when any differs', () => {
    const deepFrozen = <T>(value: T): T => {
      if (value !== null && typeof value === 'object') for (const v of Object.values(value)) deepFrozen(v)
      return Object.freeze(value)
    }
    // As the verifier's token cache hands them: the same deep-frozen objects on every request with the token.
    const cached = deepFrozen({ claims: { jti: 't-1' }, agentClaims: claims(), delegation: { root: ROOT, depth: 2 }, authorizationDetails: [{ type: 'agentid_action' as const, actions: ['invoke'], locations: ['echo'] }] })
    const request = (overrides: Partial<VerifiedRequest> = {}) => verifiedRequest({ ...cached, ...overrides })
    const first = callerFromToken(request())
    expect(callerFromToken(request())).toBe(first)
    expect(Object.isFrozen(first.subject.agent) && Object.isFrozen(first.subject.delegation)).toBe(true)
    for (const other of [{ agent: DIDS.bob }, { user: 'user-42' }, { userIssuer: 'https://idp.example' }, { agentClaims: deepFrozen(claims()) }, { delegation: deepFrozen({ root: ROOT, depth: 3 }) }, { authorizationDetails: deepFrozen([]) }] as Partial<VerifiedRequest>[]) {
      const caller = callerFromToken(request(other))
      expect(caller).not.toBe(first)
      expect(caller).toEqual(callerFromToken(verifiedRequest({ ...cached, ...structuredClone(other) })))
    }
    // Objects that could change under it are not trusted to: a new caller every time.
    const open = { ...cached, claims: { jti: 't-2' } }
    expect(callerFromToken(verifiedRequest(open))).not.toBe(callerFromToken(verifiedRequest(open)))
    const openClaims = { ...cached, agentClaims: claims() }
    expect(callerFromToken(verifiedRequest(openClaims))).not.toBe(callerFromToken(verifiedRequest(openClaims)))
  })

  it('refuses a token without agentid claims (401 invalid_token), failing closed', () => {
    let error: unknown
    try {
      callerFromToken(verifiedRequest({ agentClaims: null }))
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(VerificationError)
    expect((error as VerificationError).code).toBe('ERR_MALFORMED')
    expect((error as VerificationError).details.dpopError).toBe('invalid_token')
  })
})

describe('callerFromPresentation', () => {
  const agent = { did: DIDS.bob, issuer: 'did:key:z6MkISSUER', credentialId: 'urn:uuid:1', issuedAt: 1, validFrom: 1, expiresAt: 2_000_000_000, claims: claims(), status: { statusListCredential: 'http://x/1', statusListIndex: 3 }, type: [] }
  it('without a chain: the agent and its claims, no user, no delegation', () => {
    const p: VerifiedPresentation = { agent, presentationId: 'p', audience: 'a', capabilities: [], profile: null, delegationChain: null, delegation: null }
    expect(callerFromPresentation(p)).toEqual({ agent: DIDS.bob, user: null, via: 'presentation', subject: { agent: { did: DIDS.bob, claims: claims() }, user: null, delegation: null } })
  })

  it('with a chain: root, depth = links, and the leaf capabilities as authorization details', () => {
    const p: VerifiedPresentation = {
      agent, presentationId: 'p', audience: 'a', profile: null, delegationChain: ['a', 'b'],
      capabilities: [{ resource: 'echo', actions: ['invoke'] }],
      delegation: { root: ROOT, leaf: { did: DIDS.bob, capabilities: [{ resource: 'echo', actions: ['invoke'] }], caveats: {} as never }, links: 2 },
    }
    expect(callerFromPresentation(p).subject).toEqual({
      agent: { did: DIDS.bob, claims: claims() }, user: null, delegation: { root: ROOT, depth: 2 },
      authorizationDetails: [{ type: 'agentid_action', actions: ['invoke'], locations: ['echo'] }],
    })
  })
})

describe('headerValues', () => {
  it('reads Node headers, headersDistinct and fetch Headers, case-insensitively', () => {
    expect(headerValues({ Authorization: 'a' }, 'authorization')).toEqual(['a'])
    expect(headerValues({ authorization: ['a', 'b'] }, 'authorization')).toEqual(['a', 'b'])
    expect(headerValues(new Headers({ Authorization: 'a' }), 'authorization')).toEqual(['a'])
    expect(headerValues({}, 'authorization')).toEqual([])
  })
})
