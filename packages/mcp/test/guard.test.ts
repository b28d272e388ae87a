import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { VerificationError } from '@agentid/core'
import { createMcpGuard, MCP_FORBIDDEN, type AuditEvent, type McpGuard, type PolicyEngine } from '@agentid/mcp'
import { loadPolicyEngine } from '@agentid/policy'
import { createVerifier } from '@agentid/verifier'
import { caller, LOOKALIKES, policyDir } from './fixtures.js'

const ISSUER = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'
const RESOURCE = 'https://tools.example/mcp'
const T0 = Date.UTC(2026, 10, 22, 12)

let policy: PolicyEngine
const events: AuditEvent[] = []
let guard: McpGuard

function make(overrides: Partial<Parameters<typeof createMcpGuard>[0]> = {}): McpGuard {
  return createMcpGuard({
    verifier: createVerifier({ trustedIssuers: [ISSUER], clock: () => T0 }),
    policy,
    serverId: 'demo',
    resource: RESOURCE,
    authorizationServers: ['https://id.example'],
    audit: (e) => events.push(e),
    clock: () => T0,
    ...overrides,
  })
}

beforeAll(async () => {
  policy = await loadPolicyEngine({ dir: policyDir() })
  guard = make()
})
afterAll(() => undefined)

describe('createMcpGuard options', () => {
  it('refuses missing or malformed options with a TypeError', () => {
    const verifier = createVerifier({ trustedIssuers: [ISSUER] })
    const good = { verifier, policy, serverId: 'demo', resource: RESOURCE, authorizationServers: ['https://id.example'] }
    expect(() => createMcpGuard(good)).not.toThrow()
    for (const bad of [
      { ...good, verifier: {} },
      { ...good, policy: {} },
      { ...good, serverId: '' },
      { ...good, serverId: 'a/b' },
      { ...good, resource: '/mcp' },
      { ...good, resource: 'https://tools.example/mcp#x' },
      { ...good, resource: 'https://tools.example/mcp?x=1' },
      { ...good, resource: 'ftp://tools.example/mcp' },
      { ...good, authorizationServers: [] },
      { ...good, authorizationServers: ['not a url'] },
      { ...good, audit: 'stderr' },
    ]) {
      expect(() => createMcpGuard(bad as never)).toThrow(TypeError)
    }
  })
})

describe('RFC 9728 metadata', () => {
  it('names the issuer, the resource and DPoP', () => {
    expect(guard.metadataPath).toBe('/.well-known/oauth-protected-resource/mcp')
    expect(guard.metadataUrl).toBe('https://tools.example/.well-known/oauth-protected-resource/mcp')
    expect(guard.protectedResourceMetadata()).toEqual({
      resource: RESOURCE,
      authorization_servers: ['https://id.example'],
      bearer_methods_supported: ['header'],
      dpop_signing_alg_values_supported: ['EdDSA', 'ES256'],
      dpop_bound_access_tokens_required: true,
    })
    const root = make({ resource: 'https://tools.example' })
    expect(root.metadataPath).toBe('/.well-known/oauth-protected-resource')
  })
})

describe('authorize', () => {
  it('allows a tool in the profile and writes one audit event naming the policy', () => {
    events.length = 0
    const d = guard.authorize(caller('alice'), 'callTool', { type: 'Tool', server: 'demo', name: 'echo' }, 'session-1')
    expect(d).toMatchObject({ allowed: true, decision: 'allow', policies: ['call-profile-tools'] })
    expect(events).toEqual([{
      time: new Date(T0).toISOString(), agent: caller('alice').agent, user: null, server: 'demo', action: 'callTool',
      target: 'echo', decision: 'allow', policies: ['call-profile-tools'], reason: 'policy', sessionId: 'session-1',
    }])
  })

  it('denies a tool outside the profile, and every look-alike of an allowed one', () => {
    events.length = 0
    const names = ['admin', 'unknown', ...LOOKALIKES]
    for (const name of names) {
      const d = guard.authorize(caller('alice'), 'callTool', { type: 'Tool', server: 'demo', name })
      expect(d.allowed, JSON.stringify(name)).toBe(false)
    }
    expect(events.map((e) => [e.target, e.decision])).toEqual(names.map((n) => [n, 'deny']))
    // The ops tier may call admin, and still none of the look-alikes.
    expect(guard.authorize(caller('bob', { policyTier: 'ops' }), 'callTool', { type: 'Tool', server: 'demo', name: 'admin' }).allowed).toBe(true)
    for (const name of ['Admin', 'admin\u200b', 'adm\u0456n', 'echo/../admin', '../admin']) {
      expect(guard.authorize(caller('bob', { policyTier: 'ops' }), 'callTool', { type: 'Tool', server: 'demo', name }).allowed, name).toBe(false)
    }
  })

  it('resources and prompts', () => {
    expect(guard.authorize(caller('alice'), 'readResource', { type: 'Resource', server: 'demo', uri: 'docs://readme' }).allowed).toBe(true)
    expect(guard.authorize(caller('alice'), 'readResource', { type: 'Resource', server: 'demo', uri: 'docs://secrets' }).allowed).toBe(false)
    expect(guard.authorize(caller('alice'), 'readResource', { type: 'Resource', server: 'demo', uri: 'docs://readme/../secrets' }).allowed).toBe(false)
    expect(guard.authorize(caller('alice'), 'getPrompt', { type: 'Prompt', server: 'demo', name: 'greet' }).allowed).toBe(true)
    expect(guard.authorize(caller('alice'), 'getPrompt', { type: 'Prompt', server: 'demo', name: 'Greet' }).allowed).toBe(false)
  })

  it('fails closed when the audit sink throws or the engine throws or answers nonsense', () => {
    const failingAudit = make({ audit: () => { throw new Error('disk full') } })
    const d = failingAudit.authorize(caller('alice'), 'callTool', { type: 'Tool', server: 'demo', name: 'echo' })
    expect(d).toMatchObject({ allowed: false, decision: 'deny', errors: ['audit-failed'] })
    expect(failingAudit.filterTools(caller('alice'), [{ name: 'echo' }])).toEqual([])

    const throwing: PolicyEngine = { ...policy, authorize: () => { throw new Error('wasm trap') }, reload: policy.reload, policyCount: 1, version: 1 }
    events.length = 0
    const t = make({ policy: throwing }).authorize(caller('alice'), 'callTool', { type: 'Tool', server: 'demo', name: 'echo' })
    expect(t).toMatchObject({ allowed: false, reason: 'evaluation-failed' })
    expect(events[0]).toMatchObject({ decision: 'deny', reason: 'evaluation-failed' })

    // allowed: "yes" is not true; decision allow with allowed false is a deny.
    const nonsense: PolicyEngine = { ...throwing, authorize: () => ({ allowed: 'yes', decision: 'allow', policies: [], errors: [], reason: 'policy' }) as never }
    expect(make({ policy: nonsense }).authorize(caller('alice'), 'callTool', { type: 'Tool', server: 'demo', name: 'echo' }).allowed).toBe(false)
    const mixed: PolicyEngine = { ...throwing, authorize: () => ({ allowed: false, decision: 'allow', policies: [], errors: [], reason: 'policy' }) }
    expect(make({ policy: mixed }).authorize(caller('alice'), 'callTool', { type: 'Tool', server: 'demo', name: 'echo' }).allowed).toBe(false)
  })
})

describe('filterTools', () => {
  it('keeps the tools the caller may call, in order, and writes one listTools event', () => {
    events.length = 0
    const tools = [{ name: 'whoami' }, { name: 'admin' }, ...LOOKALIKES.map((name) => ({ name })), { name: 'echo', extra: 1 }]
    expect(guard.filterTools(caller('alice'), tools, undefined, 's1')).toEqual([{ name: 'whoami' }, { name: 'echo', extra: 1 }])
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ action: 'listTools', shown: 2, total: tools.length, sessionId: 's1', server: 'demo' })
    expect(guard.filterTools(caller('bob', { policyTier: 'ops', toolProfile: [] }), tools)).toEqual([{ name: 'admin' }])
    // Another server's tools are decided as that server's.
    expect(guard.filterTools(caller('alice'), tools, 'other')).toEqual([])
  })
})

describe('challenge', () => {
  it('401 without credentials: a DPoP challenge with resource_metadata and no error (RFC 6750 §3.1)', async () => {
    const error = await guard.authenticate({ method: 'POST', url: '/mcp', headers: {} }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(VerificationError)
    const c = guard.challenge(error)
    expect(c.status).toBe(401)
    expect(c.headers['www-authenticate']).toBe('DPoP algs="EdDSA ES256", resource_metadata="https://tools.example/.well-known/oauth-protected-resource/mcp"')
    expect(c.body).toMatchObject({ jsonrpc: '2.0', id: null, error: { data: { code: 'ERR_MALFORMED' } } })
  })

  it('a request URL naming another origin (//host/mcp, absolute form) is refused before the proof is checked against it', async () => {
    for (const url of ['//evil.example/mcp', 'https://evil.example/mcp', 'http://tools.example/mcp']) {
      const error = await guard.authenticate({ method: 'POST', url, headers: { authorization: 'DPoP abc.def.ghi', dpop: 'x.y.z' } }).catch((e: unknown) => e)
      expect(error, url).toBeInstanceOf(VerificationError)
      expect((error as VerificationError).code, url).toBe('ERR_AUDIENCE_MISMATCH')
      expect(guard.challenge(error).status).toBe(401)
    }
    // The resource's own origin, relative or absolute, goes on to the verifier.
    for (const url of ['/mcp', 'https://tools.example/mcp', 'https://TOOLS.example:443/mcp']) {
      const error = await guard.authenticate({ method: 'POST', url, headers: {} }).catch((e: unknown) => e)
      expect((error as VerificationError).code, url).toBe('ERR_MALFORMED')
    }
  })

  it('401 invalid_token for Bearer, garbage tokens and presentations; revoked and expired too', async () => {
    for (const authorization of ['Bearer abc.def.ghi', 'DPoP abc.def.ghi', 'AgentID abc.def.ghi', 'AgentID', 'Basic YTpi']) {
      const error = await guard.authenticate({ method: 'POST', url: '/mcp', headers: { authorization, dpop: 'x.y.z' } }).catch((e: unknown) => e)
      expect(error, authorization).toBeInstanceOf(VerificationError)
      const c = guard.challenge(error)
      expect(c.status, authorization).toBe(401)
      expect(c.headers['www-authenticate']).toMatch(/^DPoP error="invalid_(token|dpop_proof)", algs="EdDSA ES256", resource_metadata="https:\/\/tools\.example\/\.well-known\/oauth-protected-resource\/mcp"$/)
    }
    for (const code of ['ERR_REVOKED', 'ERR_EXPIRED'] as const) {
      const c = guard.challenge(new VerificationError(code, 'x'))
      expect(c.status).toBe(401)
      expect(c.headers['www-authenticate']).toContain('error="invalid_token"')
      expect(c.body.error.data.code).toBe(code)
    }
  })

  it('use_dpop_nonce carries the nonce; status unavailable is 503; anything else 500 without detail', () => {
    const nonce = guard.challenge(new VerificationError('ERR_MALFORMED', 'x', { details: { dpopError: 'use_dpop_nonce', dpopNonce: 'n-1' } }))
    expect(nonce.status).toBe(401)
    expect(nonce.headers['dpop-nonce']).toBe('n-1')
    expect(nonce.headers['www-authenticate']).toContain('error="use_dpop_nonce"')
    expect(guard.challenge(new VerificationError('ERR_STATUS_UNAVAILABLE', 'x')).status).toBe(503)
    const internal = guard.challenge(new Error('secret detail'))
    expect(internal.status).toBe(500)
    expect(JSON.stringify(internal.body)).not.toContain('secret')
    expect(MCP_FORBIDDEN).toBe(-32003)
  })
})
