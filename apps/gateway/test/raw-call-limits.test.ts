// An HTTP upstream that answers a raw tools/call with an SSE stream larger than the gateway holds (10 MB, as
// for JSON answers and stdio), or that streams without end: the call is refused, and nothing past the limit
// is read. Real SDK server (SSE response mode) and the gateway's own upstream fetch.
import { randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { createNodeFetch } from '../src/node-fetch.js'
import { rawRequest, type HttpLink } from '../src/raw-call.js'

let server: Server
let url: string
let client: Client
let link: HttpLink
/** Bytes the endless tool's stream had written when the gateway stopped reading. */
let endlessWritten = 0
let endlessClosed: Promise<void>
/** The same for a stream that starts only after the caller's timeout. */
let lateWritten = 0
let lateClosed: Promise<void>

beforeAll(async () => {
  const sessions = new Map<string, StreamableHTTPServerTransport>()
  let closedEndless!: () => void
  endlessClosed = new Promise<void>((resolve) => { closedEndless = resolve })
  let closedLate!: () => void
  lateClosed = new Promise<void>((resolve) => { closedLate = resolve })
  server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined
    if (body?.params?.name === 'endless') {
      // Not an SDK answer: an SSE stream of comments that never ends, until the reader goes away.
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      const line = `: ${'x'.repeat(64 * 1024)}\n\n`
      const pump = () => {
        // Count every write (each 64 KiB write returns false: counting only the true ones counted nothing).
        while (!res.destroyed) {
          endlessWritten += line.length
          if (!res.write(line)) break
        }
        if (!res.destroyed) res.once('drain', pump)
      }
      res.on('close', () => closedEndless())
      pump()
      return
    }
    if (body?.params?.name === 'late') {
      // Answers after the caller has given up, then streams without end.
      await new Promise((r) => setTimeout(r, 300))
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      const line = `: ${'x'.repeat(64 * 1024)}\n\n`
      const pump = () => {
        while (!res.destroyed) {
          lateWritten += line.length
          if (!res.write(line)) break
        }
        if (!res.destroyed) res.once('drain', pump)
      }
      res.on('close', () => closedLate())
      pump()
      return
    }
    const id = req.headers['mcp-session-id']
    let transport = typeof id === 'string' ? sessions.get(id) : undefined
    if (transport === undefined) {
      const mcp = new McpServer({ name: 'big-sse', version: '1' })
      mcp.registerTool('big', { inputSchema: { bytes: z.number() } }, async ({ bytes }) => ({ content: [{ type: 'text', text: 'x'.repeat(bytes) }] }))
      mcp.registerTool('endless', {}, async () => ({ content: [] }))
      const t: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), enableJsonResponse: false, onsessioninitialized: (sid) => void sessions.set(sid, t) })
      await mcp.connect(t)
      transport = t
    }
    await transport.handleRequest(req, res, body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`
  const fetch = createNodeFetch()
  const transport = new StreamableHTTPClientTransport(new URL(url), { fetch })
  client = new Client({ name: 'gw', version: '1' })
  await client.connect(transport)
  link = { url, headers: {}, transport, client, fetch }
})

afterAll(async () => {
  await client?.close()
  server?.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

describe('rawRequest: size of an SSE answer', () => {
  it('an SSE answer under 10 MB is read; one over it is refused', async () => {
    const ok = await rawRequest(link, 'tools/call', { name: 'big', arguments: { bytes: 1024 * 1024 } }, { timeoutMs: 20_000 })
    expect((ok.content as { text: string }[])[0]!.text).toHaveLength(1024 * 1024)
    const huge = await rawRequest(link, 'tools/call', { name: 'big', arguments: { bytes: 11 * 1024 * 1024 } }, { timeoutMs: 20_000 }).then(() => null, (e: unknown) => e)
    expect(huge).toBeInstanceOf(Error)
    expect((huge as Error).message).toContain('larger than')
  })

  it('an SSE stream without end is refused past the limit and the gateway stops reading it', async () => {
    const error = await rawRequest(link, 'tools/call', { name: 'endless', arguments: {} }, { timeoutMs: 60_000 }).then(() => null, (e: unknown) => e)
    expect(error).toBeInstanceOf(Error)
    expect((error as Error).message).toContain('larger than')
    await endlessClosed
    expect(endlessWritten).toBeGreaterThan(1024 * 1024) // the stream was really read, up to the limit
    expect(endlessWritten).toBeLessThan(64 * 1024 * 1024)
  })

  it('a stream that starts after the call timed out is not read at all', async () => {
    const error = await rawRequest(link, 'tools/call', { name: 'late', arguments: {} }, { timeoutMs: 100 }).then(() => null, (e: unknown) => e)
    expect((error as { code?: number }).code).toBe(-32001) // RequestTimeout
    await lateClosed
    // Cancelled at once: what the kernel's socket buffers took, far below the 10 MB read limit.
    expect(lateWritten).toBeLessThan(8 * 1024 * 1024)
  })
})
