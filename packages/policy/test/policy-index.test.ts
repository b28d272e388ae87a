import { describe, expect, it } from 'vitest'
import { loadPolicyFolder } from '../src/internal/load.js'
import { entityKey, PolicyIndex } from '../src/internal/policy-index.js'
import { policyReads } from '../src/internal/reads.js'
import { Lru } from '../src/internal/lru.js'
import { policyDir } from './fixtures.js'

const agent = (i: number) => `did:key:zAgent${i}`
const A = (i: number) => entityKey('AgentId::Agent', agent(i))
const S = (s: string) => entityKey('AgentId::McpServer', s)
const T = (s: string, n: string) => entityKey('AgentId::Tool', `${s}/${n}`)

async function compiled(text: string) {
  const loaded = await loadPolicyFolder(policyDir({ 'p.cedar': text }))
  expect(loaded.diagnostics.filter((d) => d.severity === 'error')).toEqual([])
  return loaded.policies
}

describe('PolicyIndex', () => {
  it('gives a request only the shared policies and those naming its agent, action, tool or server', async () => {
    const lines = ['permit (principal, action == AgentId::Action::"listTools", resource);', 'forbid (principal, action, resource) when { context.delegationDepth > 3 };']
    for (let i = 0; i < 200; i++) lines.push(`permit (principal == AgentId::Agent::"${agent(i)}", action == AgentId::Action::"callTool", resource == AgentId::Tool::"s${i % 10}/t${i % 7}");`)
    for (let s = 0; s < 10; s++) lines.push(`forbid (principal, action, resource in AgentId::McpServer::"s${s}") when { principal.policyTier == "sandbox" };`)
    const index = new PolicyIndex(await compiled(lines.join('\n')), 'test-index', 64)
    // agent 3: its own permit (s3/t3), the global forbid, server s3's forbid. Not listTools (another action).
    expect(index.slice(A(3), 'callTool', [T('s3', 't3'), S('s3')])?.size).toBe(3)
    // another tool of the same server: the global forbid and the server's forbid
    expect(index.slice(A(3), 'callTool', [T('s3', 't4'), S('s3')])?.size).toBe(2)
    expect(index.slice(A(3), 'listTools', [S('s3')])?.size).toBe(3)
    // an agent no policy names, on a server no policy names: only the global forbid
    expect(index.slice(A(999), 'callTool', [T('zz', 't0'), S('zz')])?.size).toBe(1)
    expect(index.cachedSlices).toBe(4)
  })

  it('answers null when no policy can apply (deny without Cedar)', async () => {
    const index = new PolicyIndex(await compiled(`permit (principal == AgentId::Agent::"${agent(1)}", action, resource);`), 'test-index-null', 8)
    expect(index.slice(A(2), 'callTool', [T('s', 't'), S('s')])).toBeNull()
    expect(index.slice(A(1), 'callTool', [T('s', 't'), S('s')])?.size).toBe(1)
  })

  it('bounds the preparsed slices and reuses evicted ids', async () => {
    const lines = Array.from({ length: 10 }, (_, i) => `permit (principal == AgentId::Agent::"${agent(i)}", action, resource);`)
    const index = new PolicyIndex(await compiled(lines.join('\n')), 'test-index-lru', 3)
    const ids = new Set<string>()
    for (let i = 0; i < 10; i++) ids.add(index.slice(A(i), 'callTool', [S('s')])!.id)
    expect(index.cachedSlices).toBe(3)
    expect(ids.size).toBe(3)
  })
})

describe('PolicyIndex bounds', () => {
  it('bounds the policies all cached slices hold together', async () => {
    const lines = ['forbid (principal, action, resource) when { context.delegationDepth > 3 };', 'forbid (principal, action, resource) when { context.delegationDepth > 4 };']
    for (let i = 0; i < 40; i++) lines.push(`permit (principal == AgentId::Agent::"${agent(i)}", action, resource);`)
    const index = new PolicyIndex(await compiled(lines.join('\n')), 'test-index-budget', 100, 10)
    for (let i = 0; i < 40; i++) expect(index.slice(A(i), 'callTool', [S('s')])?.size).toBe(3)
    expect(index.cachedPolicies).toBeLessThanOrEqual(10)
    expect(index.cachedSlices).toBe(3)
  })

  it('uses the whole set, preparsed once, when a slice would hold most of it', async () => {
    const lines = Array.from({ length: 30 }, (_, i) => `permit (principal, action, resource) when { context.delegationDepth == ${i} };`)
    lines.push(`permit (principal == AgentId::Agent::"${agent(1)}", action, resource);`)
    const index = new PolicyIndex(await compiled(lines.join('\n')), 'test-index-whole', 100)
    const a = index.slice(A(1), 'callTool', [S('s')])
    const b = index.slice(A(2), 'listTools', [S('t')])
    expect(a).toEqual({ id: 'test-index-whole-all', size: 31 })
    expect(b).toBe(a)
    expect(index.cachedSlices).toBe(0)
  })
})

describe('policyReads', () => {
  const reads = async (text: string) => policyReads(await compiled(text))

  it('lists the context attributes policies read, or all when one uses context whole', async () => {
    expect((await reads('permit (principal, action, resource);')).context).toEqual(new Set())
    expect((await reads('permit (principal, action, resource) when { context.time > 5 && context has delegationRoot };')).context).toEqual(new Set(['time', 'delegationRoot']))
    expect((await reads('permit (principal, action, resource) when { [context.delegationDepth].contains(1) || context.authorizationGrants.isEmpty() };')).context).toEqual(
      new Set(['delegationDepth', 'authorizationGrants']),
    )
    expect((await reads('permit (principal, action, resource) when { context == context };')).context).toBe('all')
  })

  it('lists every attribute name read, on any entity or record', async () => {
    const r = await reads(`permit (principal, action == AgentId::Action::"callTool", resource)
      when { principal.model has provider && principal.model.provider == "x" && resource.name == "n" && principal has user && principal.user has issuer && context.time > 0 };`)
    expect(r.attributes).toEqual(new Set(['model', 'provider', 'name', 'user', 'issuer', 'time']))
    expect((await reads('permit (principal, action, resource);')).attributes).toEqual(new Set())
  })
})

describe('Lru', () => {
  it('evicts the least recently used entry', () => {
    const lru = new Lru<string, number>(2)
    lru.set('a', 1)
    lru.set('b', 2)
    expect(lru.get('a')).toBe(1)
    expect(lru.set('c', 3)).toEqual(['b', 2])
    expect(lru.get('b')).toBeUndefined()
    expect(lru.size).toBe(2)
    expect(new Lru<string, number>(0).set('a', 1)).toBeUndefined()
  })

  it('keeps the order when the most recently used entry is hit again (it is not moved), and moves any other', () => {
    const lru = new Lru<string, number>(3)
    lru.set('a', 1)
    lru.set('b', 2)
    lru.set('c', 3)
    for (let i = 0; i < 5; i++) expect(lru.get('c')).toBe(3)
    expect(lru.get('a')).toBe(1) // now the newest: b, c, a
    expect(lru.get('a')).toBe(1)
    expect(lru.set('d', 4)).toEqual(['b', 2])
    expect(lru.get('c')).toBe(3) // a, d, c
    expect(lru.set('e', 5)).toEqual(['a', 1])
    expect(lru.shift()).toEqual(['d', 4])
    expect(lru.shift()).toEqual(['c', 3])
    expect(lru.shift()).toEqual(['e', 5])
    expect(lru.shift()).toBeUndefined()
    lru.set('e', 6)
    expect(lru.get('e')).toBe(6)
    expect(lru.size).toBe(1)
  })
})
