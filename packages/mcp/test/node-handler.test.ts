import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { createMcpGuard, type AuditEvent, type McpGuard } from '@agentid/mcp'
import { loadPolicyEngine } from '@agentid/policy'
import { createVerifier } from '@agentid/verifier'
import { caller, claims, policyDir } from './fixtures.js'

const ISSUER = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'

let server: Server
let base: string
let guard: McpGuard
let built = 0

beforeAll(async () => {
  server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  guard = createMcpGuard({
    verifier: createVerifier({ trustedIssuers: [ISSUER] }),
    policy: await loadPolicyEngine({ dir: policyDir() }),
    serverId: 'demo',
    resource: `${base}/mcp`,
    authorizationServers: ['https://id.example'],
    audit: () => undefined,
  })
  const handler = guard.nodeHandler({ createServer: () => { built++; return new McpServer({ name: 'demo', version: '1' }) } })
  server.on('request', (req, res) => void handler(req, res))
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

describe('nodeHandler without credentials', () => {
  it('serves the RFC 9728 document (GET only) and 404 for other paths', async () => {
    const r = await fetch(`${base}/.well-known/oauth-protected-resource/mcp`)
    expect(r.status).toBe(200)
    expect(((await r.json()) as { resource: string }).resource).toBe(`${base}/mcp`)
    expect((await fetch(`${base}/.well-known/oauth-protected-resource/mcp`, { method: 'POST' })).status).toBe(405)
    expect((await fetch(`${base}/other`)).status).toBe(404)
    expect((await fetch(`${base}/mcp/extra`)).status).toBe(404)
  })

  it('answers every method on the endpoint with 401 before reading the body or building a server', async () => {
    for (const method of ['POST', 'GET', 'DELETE', 'PUT']) {
      const r = await fetch(`${base}/mcp`, { method, ...(method === 'POST' || method === 'PUT' ? { body: '{"jsonrpc":"2.0","id":1,"method":"initialize"}', headers: { 'content-type': 'application/json' } } : {}) })
      expect(r.status, method).toBe(401)
      expect(r.headers.get('www-authenticate')).toBe(`DPoP algs="EdDSA ES256", resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`)
    }
    const forged = await fetch(`${base}/mcp`, { method: 'POST', headers: { authorization: 'DPoP eyJ.eyJ.sig', dpop: 'eyJ.eyJ.sig' }, body: '{}' })
    expect(forged.status).toBe(401)
    expect(forged.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_token"/)
    expect(built).toBe(0)
  })

  it('refuses bad handler options', () => {
    expect(() => guard.nodeHandler({} as never)).toThrow(TypeError)
    for (const bad of [{ maxBodyBytes: 0 }, { maxSessions: -1 }, { sessionIdleMs: 1.5 }, { maxStreamMs: Number.NaN }, { fastPath: 'yes' as never }]) {
      expect(() => guard.nodeHandler({ createServer: () => new McpServer({ name: 'x', version: '1' }), ...bad })).toThrow(TypeError)
    }
  })
})

describe('default audit sink', () => {
  it('writes one JSON line per decision on stderr', async () => {
    const lines: string[] = []
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => { lines.push(String(chunk)); return true })
    try {
      const plain = createMcpGuard({
        verifier: createVerifier({ trustedIssuers: [ISSUER] }),
        policy: await loadPolicyEngine({ dir: policyDir() }),
        serverId: 'demo',
        resource: 'https://tools.example/mcp',
        authorizationServers: ['https://id.example'],
        clock: () => 0,
      })
      plain.authorize(caller('alice'), 'callTool', { type: 'Tool', server: 'demo', name: 'admin' })
    } finally {
      spy.mockRestore()
    }
    expect(lines).toHaveLength(1)
    expect(lines[0]!.endsWith('\n')).toBe(true)
    const event = JSON.parse(lines[0]!) as AuditEvent & { msg: string }
    expect(event).toMatchObject({ msg: 'mcp.decision', time: '1970-01-01T00:00:00.000Z', agent: caller('alice').agent, action: 'callTool', target: 'admin', decision: 'deny', reason: 'no-matching-policy' })
  })
})

describe('nodeHandler reads bodies with the strict parser', () => {
  it('refuses a body with a member named twice (400 -32700 ERR_INVALID_INPUT), at any depth; accepts the same body without', async () => {
    // Authentication is tested end to end; here the verifier accepts every request as alice's token.
    const real = createVerifier({ trustedIssuers: [ISSUER] })
    const verifyRequest = async () => ({ agent: caller('alice').agent, user: null, claims: { agentid: { claims: claims() } }, authorizationDetails: [] })
    const verifier = { ...real, verifyRequest } as unknown as typeof real
    const strict = createMcpGuard({
      verifier,
      policy: await loadPolicyEngine({ dir: policyDir() }),
      serverId: 'demo',
      resource: 'http://127.0.0.1/mcp',
      authorizationServers: ['https://id.example'],
      audit: () => undefined,
    })
    const handler = strict.nodeHandler({ createServer: () => new McpServer({ name: 'demo', version: '1' }) })
    const local = createServer((req, res) => void handler(req, res))
    await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(local.address() as AddressInfo).port}/mcp`
    const post = (body: string) => fetch(url, { method: 'POST', headers: { authorization: 'DPoP a.b.c', dpop: 'd.e.f', 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body })
    const init = (extra: string) => `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"${extra}}}}`
    try {
      for (const body of [
        '{"jsonrpc":"2.0","id":1,"method":"initialize","method":"tools/list"}',
        init(',"name":"other"'),
        '[{"jsonrpc":"2.0","id":1,"method":"ping","id":2}]',
        '{"jsonrpc":"2.0","id":1,"method":"ping","\\u006dethod":"tools/list"}',
      ]) {
        const r = await post(body)
        expect(r.status, body).toBe(400)
        expect(await r.json()).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error', data: { code: 'ERR_INVALID_INPUT' } } })
      }
      const ok = await post(init(''))
      expect(ok.status).toBe(200)
    } finally {
      local.closeAllConnections()
      await new Promise<void>((resolve) => local.close(() => resolve()))
    }
  })
})
