import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { createMcpGuard, type AuditEvent, type McpGuard } from '@agentid/mcp'
import { loadPolicyEngine } from '@agentid/policy'
import { createVerifier } from '@agentid/verifier'
import { checkedHeaders, InFlight, LazyRequestInfo } from '../src/node-handler.js'
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

/** A POST sent with node:http, whose array values go out as repeated header lines (fetch would join them). */
function rawPost(url: string, headers: Record<string, string | string[]>, body: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

const INITIALIZE = '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}'

/**
 * A guarded node:http MCP endpoint whose verifier takes every request as alice's token (its request
 * headers recorded in `seen`), serving `createServer`'s server; `close()` ends it.
 */
async function aliceEndpoint(createServer_: () => McpServer, oneToken = false): Promise<{ url: string; seen: unknown[]; close(): Promise<void> }> {
  const real = createVerifier({ trustedIssuers: [ISSUER] })
  const seen: unknown[] = []
  // `oneToken`: what the verifier's token cache hands every request with one token (the same frozen claims).
  const agentClaims = Object.freeze(claims())
  const cached = Object.freeze({ agent: caller('alice').agent, user: null, claims: Object.freeze({ agentid: Object.freeze({ claims: agentClaims }) }), agentClaims, delegation: null, authorizationDetails: Object.freeze([]) })
  const verifyRequest = async (request: { headers: unknown }) => {
    seen.push(request.headers)
    if (oneToken) return cached
    return { agent: caller('alice').agent, user: null, claims: { agentid: { claims: claims() } }, authorizationDetails: [] }
  }
  const verifier = { ...real, verifyRequest } as unknown as typeof real
  const g = createMcpGuard({ verifier, policy: await loadPolicyEngine({ dir: policyDir() }), serverId: 'demo', resource: 'http://127.0.0.1/mcp', authorizationServers: ['https://id.example'], audit: () => undefined })
  const handler = g.nodeHandler({ createServer: createServer_, enableJsonResponse: true })
  const local = createServer((req, res) => void handler(req, res))
  await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(local.address() as AddressInfo).port}/mcp`,
    seen,
    close: async () => {
      local.closeAllConnections()
      await new Promise<void>((resolve) => local.close(() => resolve()))
    },
  }
}

describe('nodeHandler keeps repeated headers apart (headersDistinct)', () => {
  const list = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'

  it('refuses two Authorization lines (400 invalid_request) and two DPoP lines (401 invalid_dpop_proof) before anything else', async () => {
    // node:http keeps only the first of two Authorization lines in req.headers: the guard reads each line.
    // Each line alone gets as far as the token (invalid_token); the two together are refused before it.
    for (const one of [{ authorization: 'DPoP a.b.c', dpop: 'g.h.i' }, { authorization: 'DPoP d.e.f', dpop: 'g.h.i' }]) {
      const r = await rawPost(`${base}/mcp`, one, list)
      expect(r.status).toBe(401)
      expect(r.headers['www-authenticate']).toMatch(/^DPoP error="invalid_token"/)
    }
    const twoAuth = await rawPost(`${base}/mcp`, { authorization: ['DPoP a.b.c', 'DPoP d.e.f'], dpop: 'g.h.i' }, list)
    expect(twoAuth.status).toBe(400)
    expect(twoAuth.headers['www-authenticate']).toMatch(/^DPoP error="invalid_request"/)
    const twoProofs = await rawPost(`${base}/mcp`, { authorization: 'DPoP a.b.c', dpop: ['d.e.f', 'g.h.i'] }, list)
    expect(twoProofs.status).toBe(401)
    expect(twoProofs.headers['www-authenticate']).toMatch(/^DPoP error="invalid_dpop_proof"/)
    expect(built).toBe(0)
  })

  it('refuses two Mcp-Session-Id lines for an authenticated caller (400 ERR_INVALID_INPUT), on an open session too', async () => {
    // The verifier accepts every request as alice's token; it is handed each line apart.
    const { url, seen, close } = await aliceEndpoint(() => new McpServer({ name: 'demo', version: '1' }))
    const creds = { authorization: 'DPoP a.b.c', dpop: 'd.e.f' }
    try {
      const init = await rawPost(url, creds, INITIALIZE)
      expect(init.status).toBe(200)
      const sessionId = String(init.headers['mcp-session-id'])
      const ok = await rawPost(url, { ...creds, 'mcp-session-id': sessionId }, list)
      expect(ok.status).toBe(200)
      for (const ids of [[sessionId, sessionId], [sessionId, 'other'], ['other', sessionId]]) {
        const twice = await rawPost(url, { ...creds, 'mcp-session-id': ids }, list)
        expect(twice.status, ids.join(' ')).toBe(400)
        expect(JSON.parse(twice.body)).toMatchObject({ error: { data: { code: 'ERR_INVALID_INPUT' } } })
      }
      // What the verifier was handed: every line of a repeated header, apart.
      const twoAuth = await rawPost(url, { authorization: ['DPoP a.b.c', 'DPoP x.y.z'], dpop: 'd.e.f' }, list)
      expect(twoAuth.status).toBe(400) // no Mcp-Session-Id: refused after authentication, as any such request
      expect((seen.at(-1) as Record<string, unknown>).authorization).toEqual(['DPoP a.b.c', 'DPoP x.y.z'])
    } finally {
      await close()
    }
  })
})

describe('checkedHeaders (what the guard reads a request\'s headers from)', () => {
  /** The headers a node:http server's checkedHeaders gives for a request sent with `lines` (raw header lines). */
  async function seenFor(lines: string[]): Promise<{ same: boolean; headers: Record<string, unknown> }> {
    const local = createServer((req, res) => {
      const headers = checkedHeaders(req)
      res.end(JSON.stringify({ same: headers === req.headers, headers }))
    })
    await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve))
    const { port } = local.address() as AddressInfo
    try {
      const net = await import('node:net')
      const text = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.end(`GET /mcp HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${lines.map((l) => `${l}\r\n`).join('')}\r\n`))
        let out = ''
        socket.on('data', (c) => (out += c))
        socket.on('end', () => resolve(out))
        socket.on('error', reject)
      })
      return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n/, '').replace(/\r\n0\r\n\r\n$/, ''))
    } finally {
      await new Promise<void>((resolve) => local.close(() => resolve()))
    }
  }

  it('is req.headers when no name is repeated, and headersDistinct (every line apart) when one is, in any case', async () => {
    expect(await seenFor(['Authorization: DPoP a.b.c', 'DPoP: d.e.f'])).toEqual({ same: true, headers: { host: 'x', connection: 'close', authorization: 'DPoP a.b.c', dpop: 'd.e.f' } })
    // node:http keeps only the first Authorization in req.headers, and joins DPoP and Mcp-Session-Id lines.
    for (const [lines, name, values] of [
      [['Authorization: DPoP a.b.c', 'authorization: DPoP x.y.z'], 'authorization', ['DPoP a.b.c', 'DPoP x.y.z']],
      [['DPoP: a.b.c', 'DPOP: d.e.f'], 'dpop', ['a.b.c', 'd.e.f']],
      [['Mcp-Session-Id: s1', 'mcp-session-id: s2'], 'mcp-session-id', ['s1', 's2']],
      [['X-Other: 1', 'x-other: 2', 'Authorization: DPoP a.b.c'], 'authorization', ['DPoP a.b.c']],
    ] as const) {
      const seen = await seenFor([...lines])
      expect(seen.same, lines.join(' | ')).toBe(false)
      expect(seen.headers[name]).toEqual(values)
    }
    // A name node:http cannot keep as a key of req.headers leaves a key missing: headersDistinct as well.
    const proto = await seenFor(['__proto__: x', 'Authorization: DPoP a.b.c'])
    expect(proto.same).toBe(false)
    expect(proto.headers.authorization).toEqual(['DPoP a.b.c'])
  })
})

describe('LazyRequestInfo (the fast path\'s requestInfo)', () => {
  it('reads the URL and headers of the request on demand, from getters on its prototype (no accessor of its own)', () => {
    const req = { headers: { 'x-probe': '1' } } as unknown as IncomingMessage
    const info = new LazyRequestInfo(req, '/mcp?x=1', 'https://tools.example')
    expect(info.url).toBeInstanceOf(URL)
    expect(info.url.href).toBe('https://tools.example/mcp?x=1')
    expect(info.url).not.toBe(info.url) // a URL of its own on each read, as the object literal's getter gave
    expect(info.headers).toBe(req.headers)
    // V8 allocates the accessor pair of an object literal's getter in the old generation: one per request,
    // each holding the request's closures (and the request) until a mark-compact. On the prototype, one pair.
    expect(Object.getOwnPropertyNames(info)).toEqual([])
    expect(Object.getOwnPropertyDescriptor(LazyRequestInfo.prototype, 'headers')?.get).toBeTypeOf('function')
    expect(Object.getOwnPropertyDescriptor(LazyRequestInfo.prototype, 'url')?.get).toBeTypeOf('function')
  })

  it('the fast path hands a caller\'s requests one frozen AuthInfo (made once per access token)', async () => {
    const seen: unknown[] = []
    const { url, close } = await aliceEndpoint(() => {
      const s = new McpServer({ name: 'demo', version: '1' })
      s.tool('echo', async (extra) => {
        seen.push(extra.authInfo)
        try {
          ;(extra.authInfo!.extra as Record<string, unknown>).agent = 'did:key:mallory'
        } catch {
          // frozen: a handler cannot change what the next request sees
        }
        return { content: [{ type: 'text', text: 'ok' }] }
      })
      return s
    }, true)
    const creds = { authorization: 'DPoP a.b.c', dpop: 'd.e.f' }
    try {
      const init = await rawPost(url, creds, INITIALIZE)
      const sessionId = String(init.headers['mcp-session-id'])
      for (const id of [2, 3]) {
        const r = await rawPost(url, { ...creds, 'mcp-session-id': sessionId }, `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"echo","arguments":{}}}`)
        expect(r.status).toBe(200)
      }
      expect(seen).toHaveLength(2)
      expect(seen[1]).toBe(seen[0])
      expect(Object.isFrozen(seen[0])).toBe(true)
      expect(seen[0]).toEqual({ token: '', clientId: caller('alice').agent, scopes: [], extra: { agent: caller('alice').agent, user: null, via: 'token' } })
    } finally {
      await close()
    }
  })

  it('is what a tool handler sees on the fast path', async () => {
    const seen: { url: string; probe: unknown; own: string[] }[] = []
    const { url, close } = await aliceEndpoint(() => {
      const s = new McpServer({ name: 'demo', version: '1' })
      s.tool('echo', async (extra) => {
        const info = extra.requestInfo!
        seen.push({ url: (info as unknown as { url: URL }).url.href, probe: info.headers['x-probe'], own: Object.getOwnPropertyNames(info) })
        return { content: [{ type: 'text', text: 'ok' }] }
      })
      return s
    })
    const creds = { authorization: 'DPoP a.b.c', dpop: 'd.e.f' }
    try {
      const init = await rawPost(url, creds, INITIALIZE)
      const sessionId = String(init.headers['mcp-session-id'])
      const r = await rawPost(url, { ...creds, 'mcp-session-id': sessionId, 'x-probe': 'p-1' }, '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{}}}')
      expect(r.status).toBe(200)
      expect(JSON.parse(r.body)).toMatchObject({ id: 2, result: { content: [{ type: 'text', text: 'ok' }] } })
      // The fast path's answer carries its length (not chunked).
      expect(r.headers['content-length']).toBe(String(Buffer.byteLength(r.body)))
      expect(r.headers['transfer-encoding']).toBeUndefined()
      expect(seen).toEqual([{ url: 'http://127.0.0.1/mcp', probe: 'p-1', own: [] }])
      // Accept read whole: two lines are joined (and pass), one line without text/event-stream is refused (406).
      const call = (id: number, accept: string | string[]) => rawPost(url, { ...creds, 'mcp-session-id': sessionId, accept }, `{"jsonrpc":"2.0","id":${id},"method":"tools/call","params":{"name":"echo","arguments":{}}}`)
      expect((await call(3, ['application/json', 'text/event-stream'])).status).toBe(200)
      expect((await call(4, 'application/json')).status).toBe(406)
    } finally {
      await close()
    }
  })
})

describe('InFlight (the per-session maps of requests in flight)', () => {
  it('is a Map for set, get, has, delete, size and entries, empty or not, across emptying', () => {
    const m = new InFlight<string | number, string>()
    expect(m.size).toBe(0)
    expect(m.delete(1)).toBe(false)
    for (let round = 0; round < 3; round++) {
      // ids come and go as requests are answered; an emptied map starts anew and behaves the same
      expect(m.set(1, 'a')).toBe(m)
      m.set('1', 'b').set(2, 'c')
      expect([m.size, m.get(1), m.get('1'), m.has(2), m.has(3), m.get(3)]).toEqual([3, 'a', 'b', true, false, undefined])
      m.set(1, 'a2')
      expect(m.entries()).toEqual([[1, 'a2'], ['1', 'b'], [2, 'c']])
      expect(m.delete('1')).toBe(true)
      expect(m.delete('1')).toBe(false)
      for (const [id] of m.entries()) m.delete(id) // deleting while walking the copy
      expect([m.size, m.has(1), m.has(2), m.get(1)]).toEqual([0, false, false, undefined])
      expect(m.entries()).toEqual([])
    }
  })
})
