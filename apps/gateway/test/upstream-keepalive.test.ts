// The gateway's HTTP upstream connection is reused: forwarded calls go over the keep-alive connections the
// upstream session already holds, not one new TCP connection (or agent) per call. Real SDK server behind
// node:http counting the connections it accepts; the agent's SDK Client on the forwarding server.
import { randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { connectUpstream, createForwardingServer, createLogger, createRedactor, createSecretResolver, envSecretStore, parseGatewayConfig, type Upstream } from '@agentid/gateway'

let server: Server
let url: string
let connections = 0
let upstream: Upstream
let agent: Client

beforeAll(async () => {
  const sessions = new Map<string, StreamableHTTPServerTransport>()
  server = createServer(async (req, res) => {
    const id = req.headers['mcp-session-id']
    let transport = typeof id === 'string' ? sessions.get(id) : undefined
    if (transport === undefined) {
      const mcp = new McpServer({ name: 'keepalive-fixture', version: '1' })
      mcp.registerTool('echo', { inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: 'text', text: `echo:${text}` }] }))
      const t: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), enableJsonResponse: true, onsessioninitialized: (sid) => void sessions.set(sid, t) })
      await mcp.connect(t)
      transport = t
    }
    await transport.handleRequest(req, res)
  })
  server.on('connection', () => void connections++)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`
  const redactor = createRedactor()
  const logger = createLogger({ level: 'silent', redactor, write: () => undefined })
  const config = parseGatewayConfig({ listen: { port: 0 }, agentid: { issuerUrls: ['http://127.0.0.1:1'], trustedIssuers: ['did:key:z6Mk'] }, policyDir: '.', upstreams: [{ id: 'remote', transport: 'http', url }] }, '.')
  upstream = await connectUpstream(config.upstreams[0]!, { secrets: createSecretResolver([envSecretStore({})]), redactor, logger })
  const [a, b] = InMemoryTransport.createLinkedPair()
  await createForwardingServer({ upstream, redactor, logger }).connect(b)
  agent = new Client({ name: 'agent', version: '1' })
  await agent.connect(a)
})

afterAll(async () => {
  await agent?.close()
  await upstream?.close()
  server?.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

describe('gateway upstream over HTTP', () => {
  it('forwards many calls over the connections it already has', async () => {
    const echo = async (i: number) => {
      const r = await agent.callTool({ name: 'echo', arguments: { text: String(i) } })
      expect((r.content as { text: string }[])[0]!.text).toBe(`echo:${i}`)
    }
    await echo(0)
    const settled = connections
    for (let i = 1; i <= 50; i++) await echo(i)
    // A few calls in flight at once may take a second pooled connection, never one each.
    await Promise.all(Array.from({ length: 20 }, (_, i) => echo(100 + i)))
    for (let i = 200; i < 250; i++) await echo(i)
    expect(connections - settled).toBeLessThanOrEqual(20)
    const afterBurst = connections
    for (let i = 300; i < 350; i++) await echo(i)
    expect(connections).toBe(afterBurst)
  })
})
