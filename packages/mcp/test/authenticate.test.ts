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
