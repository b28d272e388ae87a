// The gateway's upstream fetch hands SSE bodies to the SDK's event parser, which buffers an event until
// its blank line: one endless event must not grow the gateway's memory without end.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createNodeFetch } from '../src/node-fetch.js'

let server: Server
let base: string
const stats = { sent: 0, closed: false }

beforeAll(async () => {
  server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    if (req.url === '/events') {
      // Many small events, 3 MB in all: fine, whatever the total.
      for (let i = 0; i < 3000; i++) res.write(`event: message\r\ndata: ${'y'.repeat(1000)}\r\n\r\n`)
      return void res.end()
    }
    stats.sent = 0
    stats.closed = false
    res.on('close', () => { stats.closed = true })
    res.write('data: ')
    const chunk = 'x'.repeat(64 * 1024)
    const pump = () => {
      while (!stats.closed && res.write(chunk)) stats.sent += chunk.length
      if (!stats.closed) res.once('drain', pump)
    }
    pump()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => {
  server.closeAllConnections()
  server.close()
})

async function drain(response: Response): Promise<{ bytes: number; error: unknown }> {
  const reader = response.body!.getReader()
  let bytes = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return { bytes, error: null }
      bytes += value.byteLength
    }
  } catch (error) {
    return { bytes, error }
  }
}

describe('node fetch: SSE bodies bounded per event', () => {
  it('a long stream of small events passes whole', async () => {
    const fetch = createNodeFetch(1024 * 1024)
    const { bytes, error } = await drain(await fetch(`${base}/events`))
    expect(error).toBeNull()
    expect(bytes).toBeGreaterThan(3_000_000)
    fetch.destroy()
  })

  it('one endless event is cut past the limit and the connection closed', async () => {
    const fetch = createNodeFetch(1024 * 1024)
    const { bytes, error } = await drain(await fetch(`${base}/endless`))
    expect(String(error)).toContain('SSE event larger than')
    expect(bytes).toBeLessThanOrEqual(1024 * 1024 + 64 * 1024)
    const end = Date.now() + 5000
    while (!stats.closed && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
    expect(stats.closed).toBe(true)
    expect(stats.sent).toBeLessThan(32 * 1024 * 1024)
    fetch.destroy()
  })
})
