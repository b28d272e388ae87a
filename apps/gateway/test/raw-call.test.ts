// rawRequest against real SDK servers (McpServer behind the SDK's Streamable HTTP server transport, in
// JSON and in SSE response mode), on a session the SDK Client opened: results, the upstream's JSON-RPC
// errors, a forgotten session, timeout and abort (the upstream sees the cancellation).
import { randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js'
import { createNodeFetch } from '../src/node-fetch.js'
import { rawRequest, type HttpLink } from '../src/raw-call.js'

interface Upstream { url: string; server: Server; sessions: Map<string, StreamableHTTPServerTransport>; cancelled: string[]; seen: { id: unknown; headers: Record<string, unknown> }[] }

async function startUpstream(json: boolean): Promise<Upstream> {
  const sessions = new Map<string, StreamableHTTPServerTransport>()
  const cancelled: string[] = []
  const seen: Upstream['seen'] = []
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined
    if (body && !Array.isArray(body)) seen.push({ id: body.id, headers: { ...req.headers } })
    const id = req.headers['mcp-session-id']
    let transport = typeof id === 'string' ? sessions.get(id) : undefined
    if (transport === undefined) {
      if (id !== undefined) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"Session not found"}}')
      const mcp = new McpServer({ name: 'raw-fixture', version: '1' })
      mcp.registerTool('echo', { inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: 'text', text: `echo:${text}` }] }))
      mcp.registerTool('fail', {}, async () => { throw new McpError(-32050, 'nope', { secret: 'data' }) })
      mcp.registerTool('slow', {}, async (extra) => {
        await new Promise<void>((resolve) => extra.signal.addEventListener('abort', () => resolve(), { once: true }))
        cancelled.push(String(extra.requestId))
        return { content: [] }
      })
      const t: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), enableJsonResponse: json, onsessioninitialized: (sid) => void sessions.set(sid, t) })
      await mcp.connect(t)
      transport = t
    }
    await transport.handleRequest(req, res, body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, server, sessions, cancelled, seen }
}

const upstreams: Upstream[] = []
const clients: Client[] = []

async function link(upstream: Upstream): Promise<HttpLink> {
  const fetch = createNodeFetch()
  const headers = { authorization: 'Bearer upstream-secret-1' }
  const transport = new StreamableHTTPClientTransport(new URL(upstream.url), { requestInit: { headers }, fetch })
  const client = new Client({ name: 'gw', version: '1' })
  await client.connect(transport)
  clients.push(client)
  return { url: upstream.url, headers, transport, client, fetch }
}

beforeAll(async () => {
  upstreams.push(await startUpstream(true), await startUpstream(false))
})

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined)
  for (const u of upstreams) {
    u.server.closeAllConnections()
    await new Promise<void>((resolve) => u.server.close(() => resolve()))
  }
})

describe.each([['JSON', 0], ['SSE', 1]] as const)('rawRequest, upstream answering in %s', (_mode, index) => {
  it('sends the request on the SDK client\'s session with the configured headers and resolves with the result', async () => {
    const u = upstreams[index]!
    const l = await link(u)
    const result = await rawRequest(l, 'tools/call', { name: 'echo', arguments: { text: 'hi' } }, { timeoutMs: 5000 })
    expect(result).toEqual({ content: [{ type: 'text', text: 'echo:hi' }] })
    const sent = u.seen.at(-1)!
    expect(sent.id).toMatch(/^gw-\d+$/)
    expect(sent.headers).toMatchObject({ authorization: 'Bearer upstream-secret-1', 'mcp-session-id': l.transport.sessionId, 'mcp-protocol-version': l.transport.protocolVersion, 'content-type': 'application/json' })
    // The SDK client's own session still works beside it.
    expect((await l.client.callTool({ name: 'echo', arguments: { text: 'sdk' } })).content).toEqual([{ type: 'text', text: 'echo:sdk' }])
  })

  it("rejects with the upstream's JSON-RPC error as an McpError (code and message kept)", async () => {
    const l = await link(upstreams[index]!)
    const viaSdk = await l.client.request({ method: 'tools/call', params: { name: 'nope-tool', arguments: {} } }, z.object({}).loose()).then(() => null, (e: unknown) => e)
    const raw = await rawRequest(l, 'tools/call', { name: 'nope-tool', arguments: {} }, { timeoutMs: 5000 }).then(() => null, (e: unknown) => e)
    // The SDK server answers an unknown tool with a result carrying isError, or an error: both paths see the same.
    if (viaSdk === null) expect(raw).toBeNull()
    else {
      expect(raw).toBeInstanceOf(McpError)
      expect((raw as McpError).code).toBe((viaSdk as McpError).code)
      expect((raw as McpError).message).toBe((viaSdk as McpError).message)
    }
    const bad = await rawRequest(l, 'resources/read', { uri: 'nothing://here' }, { timeoutMs: 5000 }).then(() => null, (e: unknown) => e)
    expect(bad).toBeInstanceOf(McpError)
  })

  it('a session the upstream forgot is a StreamableHTTPError 404 (the forwarder reconnects on it)', async () => {
    const u = upstreams[index]!
    const l = await link(u)
    const transport = u.sessions.get(l.transport.sessionId!)!
    u.sessions.delete(l.transport.sessionId!)
    await transport.close()
    const error = await rawRequest(l, 'tools/call', { name: 'echo', arguments: { text: 'x' } }, { timeoutMs: 5000 }).then(() => null, (e: unknown) => e)
    expect(error).toBeInstanceOf(StreamableHTTPError)
    expect((error as StreamableHTTPError).code).toBe(404)
  })

  it('times out with RequestTimeout and aborts with the signal; the upstream is told to cancel either way', async () => {
    const u = upstreams[index]!
    const l = await link(u)
    const timedOut = await rawRequest(l, 'tools/call', { name: 'slow', arguments: {} }, { timeoutMs: 100 }).then(() => null, (e: unknown) => e)
    expect(timedOut).toBeInstanceOf(McpError)
    expect((timedOut as McpError).code).toBe(ErrorCode.RequestTimeout)
    const aborter = new AbortController()
    const pending = rawRequest(l, 'tools/call', { name: 'slow', arguments: {} }, { signal: aborter.signal, timeoutMs: 5000 })
    setTimeout(() => aborter.abort(new Error('agent left')), 50)
    await expect(pending).rejects.toThrow('agent left')
    for (let i = 0; i < 200 && u.cancelled.length < 2; i++) await new Promise((r) => setTimeout(r, 10))
    expect(u.cancelled.slice(-2).every((id) => /^gw-\d+$/.test(id))).toBe(true)
    u.cancelled.length = 0
  })
})
