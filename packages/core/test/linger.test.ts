// The lingering close against real sockets: a server that answers before reading the body, clients
// that upload 6 MB before reading, endless and slow uploaders, a request sent after the answer.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo, type Socket } from 'node:net'
import { closeLingering, lingerAfterAnswer, LINGER_MAX_BYTES, LINGER_MAX_MS, type LingerOptions } from '@agentid/core'
import { afterEach, describe, expect, it } from 'vitest'

const ANSWER = '{"error":{"code":"ERR_PAYLOAD_TOO_LARGE","message":"too large"}}'
const MB = 1024 * 1024

interface Served {
  port: number
  /** Requests the handler saw, by URL. */
  seen: string[]
  /** Per refused connection: bytes read after the answer, once the socket has closed. */
  closed: Promise<number>[]
}

let server: Server | undefined
afterEach(async () => {
  server?.closeAllConnections()
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
  server = undefined
})

/** A server that answers every request at once, body unread, with a 413, lingering with `options` (false: closing at once). */
async function refusingServer(options: LingerOptions | false = {}): Promise<Served> {
  const seen: string[] = []
  const closed: Promise<number>[] = []
  server = createServer((req, res) => {
    seen.push(req.url ?? '')
    if (options !== false) expect(lingerAfterAnswer(res, options)).toBe(true)
    const socket = req.socket
    const before = socket.bytesRead
    closed.push(once(socket, 'close').then(() => socket.bytesRead - before))
    // Without the lingering close, `Connection: close` as servers (Fastify) send with an early 413.
    res.writeHead(413, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(ANSWER), ...(options === false ? { connection: 'close' } : {}) }).end(ANSWER)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { port: (server.address() as AddressInfo).port, seen, closed }
}

type Body = { bytes: number; chunked?: boolean } | { endless: true } | { slow: true }

/**
 * An uploading client: sends the head and the body; with `readAfterUpload`, reads nothing until the
 * whole body is written (as a client busy uploading), else reads all the while. Resolves with what it
 * read and the error that ended it, if any.
 */
function upload(port: number, body: Body, o: { readAfterUpload?: boolean; then?: string } = {}): Promise<{ text: string; error: string | null }> {
  return new Promise((resolve) => {
    // An endless or slow client goes on sending after the server's FIN (allowHalfOpen; Node's would end too).
    const socket: Socket = connect({ port, host: '127.0.0.1', allowHalfOpen: !('bytes' in body) })
    const got: Buffer[] = []
    let error: string | null = null
    const read = () => socket.on('data', (c: Buffer) => got.push(c))
    if (!o.readAfterUpload) read()
    socket.on('error', (e: NodeJS.ErrnoException) => void (error ??= e.code ?? 'error'))
    socket.on('close', () => resolve({ text: Buffer.concat(got).toString('latin1'), error }))
    const chunked = !('bytes' in body) || body.chunked === true
    socket.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${(body as { bytes: number }).bytes}`}\r\n\r\n`)
    const frame = (b: Buffer) => (chunked ? Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]) : b)
    if ('slow' in body) {
      // One byte every 20 ms, for ever.
      const timer = setInterval(() => (socket.destroyed ? clearInterval(timer) : socket.write(frame(Buffer.from('x')))), 20)
      return read()
    }
    const chunk = Buffer.alloc(64 * 1024, 0x78)
    let sent = 0
    const total = 'bytes' in body ? body.bytes : Infinity
    const pump = () => {
      while (!socket.destroyed && sent < total) {
        const part = chunk.subarray(0, Math.min(chunk.length, total - sent))
        sent += part.length
        if (!socket.write(frame(part))) return void socket.once('drain', pump)
      }
      if (socket.destroyed) return
      socket.write(chunked ? '0\r\n\r\n' : '', () => {
        if (o.readAfterUpload) read()
        if (o.then !== undefined) socket.once('data', () => socket.write(o.then!))
      })
    }
    pump()
  })
}

function statusOf(text: string): number {
  return Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1])
}

describe('lingerAfterAnswer / closeLingering', () => {
  it.each([
    ['declared (Content-Length)', { bytes: 6 * MB }],
    ['chunked, no Content-Length', { bytes: 6 * MB, chunked: true }],
  ])('a client that reads only after uploading 6 MB (%s) gets the 413 every time', async (_name, body) => {
    const { port } = await refusingServer()
    for (let i = 0; i < 8; i++) {
      const r = await upload(port, body, { readAfterUpload: true })
      expect(statusOf(r.text), `attempt ${i}: ${r.error} ${r.text.slice(0, 80)}`).toBe(413)
      expect(r.text).toContain('connection: close')
      expect(r.text.endsWith(ANSWER)).toBe(true)
    }
  })

  it('without it, the same client loses the answer to the reset (what the lingering close is for)', async () => {
    const { port } = await refusingServer(false)
    const results = await Promise.all([0, 1, 2].map(() => upload(port, { bytes: 6 * MB }, { readAfterUpload: true })))
    // Node closes at once, the body unread: a reset, and no answer for a client still sending (6 MB
    // is more than the loopback's socket buffers take, so the client is still sending).
    expect(results.some((r) => statusOf(r.text) !== 413)).toBe(true)
  })

  it('an endless uploader is cut once maxBytes more have arrived (nothing kept meanwhile)', async () => {
    const served = await refusingServer({ maxBytes: MB, maxMs: 600_000 })
    const r = await upload(served.port, { endless: true })
    expect(statusOf(r.text)).toBe(413)
    const read = await served.closed[0]!
    // Cut by the byte bound (the time bound is 10 minutes): what was read beyond it is the reads in flight.
    expect(read).toBeGreaterThan(MB)
    expect(read).toBeLessThan(3 * MB)
  })

  it('a slow uploader that never ends is cut after maxMs', async () => {
    const served = await refusingServer({ maxMs: 300, maxBytes: 100 * MB })
    const r = await upload(served.port, { slow: true })
    expect(statusOf(r.text)).toBe(413)
    expect(await served.closed[0]!).toBeLessThan(100 * MB)
  })

  it('a request sent on the connection after the answer is not served', async () => {
    const served = await refusingServer({ maxMs: 60_000 })
    const r = await upload(served.port, { bytes: 200_000 }, { then: 'GET /after HTTP/1.1\r\nHost: x\r\n\r\n' })
    expect(statusOf(r.text)).toBe(413)
    await served.closed[0]
    expect(served.seen).toEqual(['/upload'])
  })

  it('leaves a request without a body, or read in full, on its keep-alive connection', async () => {
    server = createServer((req, res) => {
      if (req.method === 'GET') return void res.end(String(lingerAfterAnswer(res)))
      req.resume()
      req.on('end', () => res.end(String(lingerAfterAnswer(res))))
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const get = await fetch(`${base}/`)
    expect(get.headers.get('connection')).toBe('keep-alive')
    expect(await get.text()).toBe('false')
    const post = await fetch(`${base}/`, { method: 'POST', body: 'x'.repeat(1000) })
    expect(post.headers.get('connection')).toBe('keep-alive')
    expect(await post.text()).toBe('false')
  })

  it('refuses bounds that are not non-negative integers, and closes a socket already closed at once', () => {
    expect(LINGER_MAX_MS).toBe(2_000)
    expect(LINGER_MAX_BYTES).toBe(8 * MB)
    const socket = connect(1, '127.0.0.1')
    socket.on('error', () => {})
    expect(() => closeLingering(socket, { maxMs: -1 })).toThrow(TypeError)
    expect(() => closeLingering(socket, { maxBytes: 1.5 })).toThrow(TypeError)
    socket.destroy()
    closeLingering(socket)
    expect(socket.destroyed).toBe(true)
  })
})
