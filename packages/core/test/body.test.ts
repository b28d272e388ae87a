// readBodyCapped against real HTTP peers: a 100 MB body, an endless one, a lying Content-Length.
import { once } from 'node:events'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { AgentIdError, readBodyCapped } from '@agentid/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const CHUNK = Buffer.alloc(64 * 1024, 0x61)
let server: Server
let base: string
/** Bytes the server managed to hand to the socket, per path, and whether the client hung up. */
const sent = new Map<string, { bytes: number; closed: boolean }>()

function pump(res: ServerResponse, path: string, total: number): void {
  const stat = { bytes: 0, closed: false }
  sent.set(path, stat)
  res.on('close', () => { stat.closed = true })
  const write = () => {
    while (stat.bytes < total && !stat.closed) {
      stat.bytes += CHUNK.length
      if (!res.write(CHUNK)) return void res.once('drain', write)
    }
    if (stat.bytes >= total) res.end()
  }
  write()
}

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/100mb') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      pump(res, req.url, 100 * 1024 * 1024)
    } else if (req.url === '/endless') {
      res.writeHead(200)
      pump(res, req.url, Infinity)
    } else if (req.url === '/declared') {
      res.writeHead(200, { 'content-length': String(100 * 1024 * 1024) })
      pump(res, req.url, 100 * 1024 * 1024)
    } else if (req.url === '/silent') {
      res.writeHead(200)
      res.write('x') // then nothing, forever
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('hello')
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => {
  server.closeAllConnections()
  server.close()
})

async function refused(promise: Promise<unknown>): Promise<AgentIdError> {
  const error = await promise.then(() => undefined, (e: unknown) => e)
  expect(error).toBeInstanceOf(AgentIdError)
  expect((error as AgentIdError).code).toBe('ERR_PAYLOAD_TOO_LARGE')
  return error as AgentIdError
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
}

describe('readBodyCapped', () => {
  it('reads a body within the cap', async () => {
    expect((await readBodyCapped(await fetch(`${base}/small`), 5)).toString()).toBe('hello')
    await refused(readBodyCapped(await fetch(`${base}/small`), 4))
  })

  it('a 100 MB body: refused past 1 MiB, the connection closed, memory and bytes sent bounded', async () => {
    const before = process.memoryUsage().rss
    const error = await refused(readBodyCapped(await fetch(`${base}/100mb`), 1024 * 1024))
    expect(error.details.maxBytes).toBe(1024 * 1024)
    await until(() => sent.get('/100mb')?.closed === true)
    const stat = sent.get('/100mb')!
    expect(stat.closed).toBe(true) // the fetch was aborted: the server saw the client hang up
    // The server stops once socket buffers fill: far below 100 MB reached the client.
    expect(stat.bytes).toBeLessThan(16 * 1024 * 1024)
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * 1024 * 1024)
  })

  it('an endless body is refused and the connection closed', async () => {
    await refused(readBodyCapped(await fetch(`${base}/endless`), 256 * 1024))
    await until(() => sent.get('/endless')?.closed === true)
    expect(sent.get('/endless')!.closed).toBe(true)
  })

  it('a Content-Length over the cap is refused before reading', async () => {
    const error = await refused(readBodyCapped(await fetch(`${base}/declared`), 1024))
    expect(error.details.declared).toBe(100 * 1024 * 1024)
    await until(() => sent.get('/declared')?.closed === true)
    expect(sent.get('/declared')!.closed).toBe(true)
  })

  it('a peer that stops sending is cut by the signal', async () => {
    const signal = AbortSignal.timeout(200)
    const started = Date.now()
    const error = await readBodyCapped(await fetch(`${base}/silent`, { signal }), 1024, signal).then(() => undefined, (e: unknown) => e)
    expect((error as Error).name).toBe('TimeoutError')
    expect(Date.now() - started).toBeLessThan(2000)
  })

  it('a response without a stream (a test double) is held to the cap too', async () => {
    expect((await readBodyCapped({ text: async () => 'abc' }, 3)).toString()).toBe('abc')
    await refused(readBodyCapped({ text: async () => 'abcd' }, 3))
    await expect(readBodyCapped({ text: async () => '' }, -1)).rejects.toThrow(TypeError)
  })
})
