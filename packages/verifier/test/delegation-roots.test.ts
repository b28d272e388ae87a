import { describe, expect, it } from 'vitest'
import { parseTrustedRoots, rootTrusted, type DelegationContext } from '../src/delegation.js'

// Root trust by resource prefix: the longest matching prefix decides; a pattern needs every prefix under it.
const ctx = {
  trustedIssuers: new Set(['did:key:issuer']),
  trustedRoots: parseTrustedRoots({ 'mcp://erp/*': ['did:key:alice'], 'mcp://erp/payroll/': ['did:key:carol'], 'mcp://crm/': ['did:key:alice', 'did:key:bob'] }),
} as unknown as DelegationContext

describe('rootTrusted', () => {
  it('trusts the issuers for every resource', () => {
    expect(rootTrusted(ctx, 'mcp://anything/x', 'did:key:issuer')).toBe(true)
    expect(rootTrusted(ctx, 'mcp://erp/*', 'did:key:issuer')).toBe(true)
  })

  it('lets the longest matching prefix decide for an identifier', () => {
    expect(rootTrusted(ctx, 'mcp://erp/tools/a', 'did:key:alice')).toBe(true)
    expect(rootTrusted(ctx, 'mcp://erp/payroll/run', 'did:key:alice')).toBe(false)
    expect(rootTrusted(ctx, 'mcp://erp/payroll/run', 'did:key:carol')).toBe(true)
    expect(rootTrusted(ctx, 'mcp://erpx/a', 'did:key:alice')).toBe(false)
  })

  it('requires trust for every more specific prefix a pattern covers', () => {
    expect(rootTrusted(ctx, 'mcp://erp/tools/*', 'did:key:alice')).toBe(true)
    expect(rootTrusted(ctx, 'mcp://erp/*', 'did:key:alice')).toBe(false) // would reach payroll, carol's
    expect(rootTrusted(ctx, 'mcp://erp/payroll/*', 'did:key:carol')).toBe(true)
    expect(rootTrusted(ctx, 'mcp://crm/*', 'did:key:bob')).toBe(true)
  })

  it('validates the option', () => {
    expect(() => parseTrustedRoots({ '': ['did:key:a'] })).toThrow(TypeError)
    expect(() => parseTrustedRoots({ 'mcp://erp/': ['alice'] })).toThrow(TypeError)
    expect(() => parseTrustedRoots(['did:key:a'])).toThrow(TypeError)
  })
})
