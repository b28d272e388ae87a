// directToolCalls (the gateway's tools/call without the SDK Server's dispatch) against the forwarding
// server it stands in for: the same requests to the same real HTTP upstream (a hand-written JSON-RPC
// server, so that it can answer what an SDK server never sends: unknown members, invalid results, errors
// carrying the secret) must get the same answers; and what it leaves to the SDK Server.
import { randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import { connectUpstream, createForwardingServer, createLogger, createRedactor, createSecretResolver, directToolCalls, envSecretStore, parseGatewayConfig, type Upstream } from '@agentid/gateway'

const SECRET = 'direct-secret-5c1e77ab'
const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'gw-direct-'))
const redactor = createRedactor()
const logger = createLogger({ level: 'silent', redactor })
const secrets = createSecretResolver([envSecretStore({ SECRET })])
const authInfo = { token: '', clientId: 'did:key:z6MkAgent', scopes: [] }

/** What the upstream answers to tools/call, by tool name: a result, or a JSON-RPC error. */
const ANSWERS: Record<string, { result?: unknown; error?: unknown }> = {
  echo: { result: { content: [{ type: 'text', text: 'hi' }] } },
  // Members the SDK's result schema strips (in a content block) or keeps (at the top).
  unknown: { result: { content: [{ type: 'text', text: 'x', extra: 1 }], more: true, _meta: { k: 'v' } } },
  structured: { result: { content: [], structuredContent: { a: 1 }, isError: true } },
  invalid: { result: { content: 'not a list' } },
  'no-content': { result: {} },
  leaky: { result: { content: [{ type: 'text', text: `key=${SECRET}` }] } },
  fail: { error: { code: -32050, message: `refused with ${SECRET}`, data: { secret: SECRET } } },
  'not-object': { result: 5 },
}

let upstreamHttp: Server
let http: Upstream
let stdio: Upstream
const seen: unknown[] = []

beforeAll(async () => {
  upstreamHttp = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    if (req.method !== 'POST') return void res.writeHead(405).end() // no standalone stream; DELETE on close
    const m = JSON.parse(Buffer.concat(chunks).toString('utf8'))
    if (req.headers.authorization !== `Bearer ${SECRET}`) return void res.writeHead(401).end()
    if (m.id === undefined) return void res.writeHead(202).end()
    const reply = (body: unknown, headers: Record<string, string> = {}) => res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ jsonrpc: '2.0', id: m.id, ...body as object }))
    if (m.method === 'initialize') return reply({ result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'hand', version: '1' } } }, { 'mcp-session-id': randomUUID() })
    seen.push(m.params)
    const answer = ANSWERS[m.params.name] ?? { error: { code: -32602, message: 'unknown tool' } }
    reply(answer)
  })
  await new Promise<void>((resolve) => upstreamHttp.listen(0, '127.0.0.1', resolve))
  const c = parseGatewayConfig({
    listen: { port: 0 }, agentid: { issuerUrls: ['http://127.0.0.1:1'], trustedIssuers: ['did:key:z6Mk'] }, policyDir: dir,
    upstreams: [
      { id: 'hand', transport: 'http', url: `http://127.0.0.1:${(upstreamHttp.address() as AddressInfo).port}/mcp`, headers: { Authorization: { secret: 'env:SECRET', template: 'Bearer {secret}' } } },
      { id: 'local', transport: 'stdio', command: process.execPath, args: [join(FIXTURES, 'stdio-server.mjs')], env: { FIXTURE_SECRET: { secret: 'env:SECRET' } } },
    ],
  }, dir)
  http = await connectUpstream(c.upstreams[0]!, { secrets, redactor, logger })
  stdio = await connectUpstream(c.upstreams[1]!, { secrets, redactor, logger })
})

afterAll(async () => {
  await http?.close()
  await stdio?.close()
  upstreamHttp.closeAllConnections()
  await new Promise<void>((resolve) => upstreamHttp.close(() => resolve()))
  rmSync(dir, { recursive: true, force: true })
})

/** The forwarding server's answer to one request (a real SDK Server on a transport that records what it sends). */
async function viaServer(upstream: Upstream, request: JSONRPCMessage): Promise<unknown> {
  const server = createForwardingServer({ upstream, redactor, logger })
  let answer: (m: unknown) => void
  const answered = new Promise((resolve) => { answer = resolve })
  const transport: Transport = { start: async () => undefined, close: async () => undefined, send: async (m) => answer(m) }
  await server.connect(transport)
  transport.onmessage!(request, { authInfo })
  return answered
}

/** directToolCalls' answer, made into a JSON-RPC message as the guard makes it. */
async function viaDirect(upstream: Upstream, request: { jsonrpc: '2.0'; id: number; method: string; params: Record<string, unknown> }): Promise<unknown> {
  const call = directToolCalls({ upstream, redactor, logger })(request, { authInfo, sessionId: undefined })
  if (call === undefined) return 'declined'
  return call.result.then(
    (result) => ({ result, jsonrpc: '2.0', id: request.id }),
    (e: { code?: unknown; message?: string; data?: unknown }) => ({ jsonrpc: '2.0', id: request.id, error: { code: Number.isSafeInteger(e.code) ? e.code : -32603, message: e.message ?? 'Internal error', ...(e.data !== undefined && { data: e.data }) } }),
  )
}

const call = (id: number, params: Record<string, unknown>) => ({ jsonrpc: '2.0' as const, id, method: 'tools/call', params })

describe('directToolCalls', () => {
  it('answers every call exactly as the forwarding server does: results validated and redacted, errors mapped', async () => {
    let id = 0
    for (const name of [...Object.keys(ANSWERS), 'missing']) {
      for (const params of [{ name }, { name, arguments: { text: 'a', nested: { n: [1, 2] } } }]) {
        const direct = await viaDirect(http, call(++id, params))
        const server = await viaServer(http, call(id, params))
        expect(direct, name).toEqual(server)
        expect(JSON.stringify(direct)).toBe(JSON.stringify(server))
        expect(JSON.stringify(direct)).not.toContain(SECRET)
      }
    }
    // And what these answers are.
    expect(await viaDirect(http, call(100, { name: 'echo' }))).toEqual({ jsonrpc: '2.0', id: 100, result: { content: [{ type: 'text', text: 'hi' }] } })
    expect(await viaDirect(http, call(101, { name: 'invalid' }))).toMatchObject({ id: 101, error: { code: -32602, message: expect.stringContaining('Invalid tools/call result') } })
    expect(await viaDirect(http, call(102, { name: 'fail' }))).toEqual({ jsonrpc: '2.0', id: 102, error: { code: -32050, message: 'refused with [REDACTED]' } })
    // The upstream got the agent's params as sent.
    expect(seen.at(-1)).toEqual({ name: 'fail' })
  })

  it('leaves to the SDK Server what it would not handle unchanged: _meta, task, other members, odd arguments, other methods, a stdio upstream', async () => {
    const declined = [
      call(1, { name: 'echo', _meta: { progressToken: 1 } }),
      call(2, { name: 'echo', task: { ttl: 1000 } }),
      call(3, { name: 'echo', extra: 1 }),
      call(4, { name: 'echo', arguments: [] }),
      call(5, { name: 'echo', arguments: 'x' }),
      call(6, { name: 'echo', arguments: JSON.parse('{"__proto__":{"a":1}}') }),
      call(7, { name: 42 }),
      call(8, {}),
      { jsonrpc: '2.0' as const, id: 9, method: 'tools/list', params: {} },
    ]
    for (const request of declined) expect(await viaDirect(http, request), JSON.stringify(request.params)).toBe('declined')
    expect(await viaDirect(stdio, call(10, { name: 'echo', arguments: { text: 'x' } }))).toBe('declined')
  })

  it('a cancelled call sends notifications/cancelled upstream and rejects', async () => {
    // The hand-written upstream answers at once; cancel before the answer arrives.
    const d = directToolCalls({ upstream: http, redactor, logger })(call(200, { name: 'echo' }), { authInfo, sessionId: undefined })!
    d.cancel('stop')
    await expect(d.result).rejects.toMatchObject({ code: -32603 })
  })
})
