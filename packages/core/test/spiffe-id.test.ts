import {
  agentDidFromSpiffeId,
  agentSpiffeId,
  AgentIdError,
  generateEd25519KeyPair,
  isSpiffeId,
  parseAgentClaims,
  parseSpiffeId,
  parseTrustDomain,
  VerificationError,
} from '@agentid/core'
import { describe, expect, it } from 'vitest'
import { readVector, thrown } from './helpers.js'

interface Case { input: string; fn: 'id' | 'td'; valid: boolean; error: string | null; go_spiffe: string | null; basis: string }
const vectors = readVector<{ cases: Case[] }>('spiffe/spiffe-id.derived.json')

describe('SPIFFE ID vectors (spiffe/spiffe-id.derived.json)', () => {
  it('has the 824 cases', () => expect(vectors.cases).toHaveLength(824))

  it('gives every case its expected verdict and error name', () => {
    const wrong: string[] = []
    for (const c of vectors.cases) {
      const parse = c.fn === 'id' ? parseSpiffeId : parseTrustDomain
      try {
        const out = parse(c.input)
        if (!c.valid) wrong.push(`${JSON.stringify(c.input).slice(0, 80)} ${c.fn}: accepted, expected ${c.error}`)
        else if (c.fn === 'id' && (out as { id: string }).id !== c.input) wrong.push(`${c.input}: id changed`)
      } catch (error) {
        const name = (error as VerificationError).details?.spiffeIdError
        if (c.valid) wrong.push(`${JSON.stringify(c.input).slice(0, 80)} ${c.fn}: refused (${String(name)})`)
        else if (name !== c.error) wrong.push(`${JSON.stringify(c.input).slice(0, 80)} ${c.fn}: ${String(name)}, expected ${c.error}`)
        else if (!(error instanceof VerificationError) || error.code !== 'ERR_MALFORMED') wrong.push(`${c.input}: not ERR_MALFORMED`)
      }
    }
    expect(wrong).toEqual([])
  })
})

describe('parseSpiffeId', () => {
  it('splits trust domain, path and segments', () => {
    const id = parseSpiffeId('spiffe://example.org/agent/billing/z6Mk')
    expect(id).toEqual({ id: 'spiffe://example.org/agent/billing/z6Mk', trustDomain: 'example.org', path: '/agent/billing/z6Mk', segments: ['agent', 'billing', 'z6Mk'] })
    expect(parseSpiffeId('spiffe://example.org').segments).toEqual([])
  })

  it('refuses non-strings, huge inputs and takes the error code asked for', () => {
    expect(thrown(() => parseSpiffeId(42)).details.spiffeIdError).toBe('empty')
    expect(thrown(() => parseSpiffeId(`spiffe://a/${'x'.repeat(10_000)}`)).details.spiffeIdError).toBe('id_too_long')
    const e = thrown(() => parseSpiffeId('spiffe://a/../b', { code: 'ERR_INVALID_INPUT' }))
    expect(e).toBeInstanceOf(AgentIdError)
    expect(e).not.toBeInstanceOf(VerificationError)
    expect(e.code).toBe('ERR_INVALID_INPUT')
    expect(isSpiffeId('spiffe://a/b')).toBe(true)
    expect(isSpiffeId('spiffe://a/b/')).toBe(false)
  })
})

describe('agent SPIFFE IDs', () => {
  const { did } = generateEd25519KeyPair()

  it('are spiffe://<td>/agent/<orchestrator>/<did:key multibase> and give the DID back', () => {
    const id = agentSpiffeId('example.org', 'billing-bot', did)
    expect(id).toBe(`spiffe://example.org/agent/billing-bot/${did.slice(8)}`)
    expect(agentDidFromSpiffeId(parseSpiffeId(id))).toBe(did)
    expect(agentDidFromSpiffeId(parseSpiffeId('spiffe://example.org/agent/x'))).toBeNull()
    expect(agentDidFromSpiffeId(parseSpiffeId(`spiffe://example.org/agents/x/${did.slice(8)}`))).toBeNull()
    expect(agentDidFromSpiffeId(parseSpiffeId(`spiffe://example.org/agent/x/${did.slice(8)}/more`))).toBeNull()
  })

  it('refuse a bad trust domain or orchestrator name', () => {
    expect(thrown(() => agentSpiffeId('Example.org', 'x', did)).code).toBe('ERR_INVALID_INPUT')
    expect(thrown(() => agentSpiffeId('example.org', '..', did)).details.spiffeIdError).toBe('dot_segment')
    expect(thrown(() => agentSpiffeId('example.org', 'a/b', did)).code).toBe('ERR_INVALID_INPUT') // a path trick adds a segment: not the scheme
  })

  it('are an optional claim, checked exactly', () => {
    const base = { purpose: 'p', controller: 'c', model: { name: 'm', version: '1' }, toolProfile: 't', policyTier: 'standard', dataAccessClass: 'public' }
    const id = agentSpiffeId('example.org', 'o', did)
    expect(parseAgentClaims({ ...base, spiffeId: id }).spiffeId).toBe(id)
    expect(parseAgentClaims(base).spiffeId).toBeUndefined()
    for (const bad of ['spiffe://EXAMPLE.org/a', 'spiffe://example.org/a/', 'spiffe://example.org/a/../b', 'https://example.org/a', 42]) {
      const e = thrown(() => parseAgentClaims({ ...base, spiffeId: bad }, { code: 'ERR_MALFORMED', strict: false }))
      expect(e.code).toBe('ERR_MALFORMED')
      expect(e.details.field).toBe('spiffeId')
    }
  })
})
