// Equal claims of different credentials are one frozen object (a memo entry keeps less); claims that
// differ in any member, or carry an attestation, are never given another credential's object.
import { parseAgentClaims, StatusList, type AgentClaims } from '@agentid/core'
import { createVerifier } from '@agentid/verifier'
import { describe, expect, it } from 'vitest'
import { ClaimsInterner, SHARED_CLAIM_MEMBERS } from '../src/intern.js'
import { alice, bob, claims, credential, issuer, LIST_URL, statusListJwt, statusServer, testClock } from './fixtures.js'

const frozen = (c: AgentClaims): Readonly<AgentClaims> => {
  Object.freeze(c.model)
  if (typeof c.toolProfile !== 'string') Object.freeze(c.toolProfile)
  return Object.freeze(c)
}
const base = (): AgentClaims => ({ ...claims, model: { ...claims.model }, toolProfile: [...(claims.toolProfile as string[])] })
const spiffe = 'spiffe://acme.example/agent/orch/z6MkTest'

describe('claims sharing', () => {
  it('two agents with equal claims get one frozen claims object, equal to what each credential says', async () => {
    const v = createVerifier({ trustedIssuers: [issuer.did], fetch: statusServer({ [LIST_URL]: await statusListJwt(StatusList.create()) }), clock: testClock() })
    const a = await v.verifyAgentCredential(await credential({ sub: alice.did }))
    const b = await v.verifyAgentCredential(await credential({ sub: bob.did }))
    expect(a.did).not.toBe(b.did)
    expect(b.claims).toBe(a.claims)
    expect(a.claims).toEqual(claims)
    expect(Object.isFrozen(a.claims) && Object.isFrozen(a.claims.model) && Object.isFrozen(a.claims.toolProfile)).toBe(true)
    const other = await v.verifyAgentCredential(await credential({ sub: bob.did, claims: { ...claims, purpose: 'payroll' } }))
    expect(other.claims).not.toBe(a.claims)
    expect(other.claims.purpose).toBe('payroll')
  })

  it('a claims object differing in any member is not replaced', () => {
    const changes: ((c: AgentClaims) => void)[] = [
      (c) => { c.controller = 'did:web:other.example' },
      (c) => { c.model.provider = 'other-ai' },
      (c) => { delete c.model.provider },
      (c) => { c.model.name = 'other' },
      (c) => { c.model.version = '2027-01' },
      (c) => { c.toolProfile = ['mcp://erp/tools/invoices.write'] },
      (c) => { c.toolProfile = ['mcp://erp/tools/invoices.read', 'mcp://erp/tools/invoices.write'] },
      (c) => { c.toolProfile = 'mcp://erp/tools/invoices.read' },
      (c) => { c.policyTier = 'elevated' },
      (c) => { c.dataAccessClass = 'confidential' },
      (c) => { c.spiffeId = spiffe },
    ]
    for (const change of changes) {
      const shared = new ClaimsInterner(16)
      const first = frozen(base())
      expect(shared.intern(first)).toBe(first)
      expect(shared.intern(frozen(base()))).toBe(first)
      const changed = base()
      change(changed)
      const c = frozen(changed)
      expect(shared.intern(c), JSON.stringify(c)).toBe(c)
    }
    // With a SPIFFE ID on both: shared when equal.
    const shared = new ClaimsInterner(16)
    const first = frozen({ ...base(), spiffeId: spiffe })
    shared.intern(first)
    expect(shared.intern(frozen({ ...base(), spiffeId: spiffe }))).toBe(first)
  })

  it('claims with an attestation are never shared', () => {
    const shared = new ClaimsInterner(16)
    const a = frozen({ ...base(), attestation: { tee: 'x' } })
    const b = frozen({ ...base(), attestation: { tee: 'x' } })
    expect(shared.intern(a)).toBe(a)
    expect(shared.intern(b)).toBe(b)
  })

  it('compares every member parseAgentClaims sets (but attestation, never shared)', () => {
    const all = parseAgentClaims({ ...base(), spiffeId: spiffe, attestation: { tee: 'x' } })
    expect(Object.keys(all).filter((k) => k !== 'attestation').sort()).toEqual([...SHARED_CLAIM_MEMBERS].sort())
    expect(Object.keys(all.model).sort()).toEqual(['name', 'provider', 'version'])
  })

  it('stays bounded: emptied when it holds `max` purposes', () => {
    const shared = new ClaimsInterner(2)
    const first = frozen(base())
    shared.intern(first)
    shared.intern(frozen({ ...base(), purpose: 'b' }))
    shared.intern(frozen({ ...base(), purpose: 'c' })) // full: emptied, then holds 'c'
    expect(shared.intern(frozen(base()))).not.toBe(first)
  })
})
