// The issuer's lingering close on a real socket: an oversized body is answered 413 at once, the rest
// read and dropped within bounds, so a client still uploading reads the answer; endless and slow
// uploaders cannot hold the connection.
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { IssuerService } from '../src/domain/service.js'
import { buildServer } from '../src/http/server.js'

let dir: string
let service: IssuerService
let app: FastifyInstance
let port: number
/** The server's side of each connection, by the client's port: the bytes it read, once closed. */
const serverSockets = new Map<number, Promise<number>>()
const MB = 1024 * 1024

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'agentid-linger-'))
  service = await IssuerService.open({ dataDir: dir, baseUrl: 'http://issuer.test' })
  app = buildServer(service, { logger: false })
  app.server.on('connection', (socket: Socket) => {
    serverSockets.set(socket.remotePort!, new Promise((resolve) => socket.once('close', () => resolve(socket.bytesRead))))
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  port = (app.server.address() as { port: number }).port
})
afterAll(async () => {
  await app.close()
  await service.close()
  rmSync(dir, { recursive: true, force: true })
})

type Body = { bytes: number; chunked: boolean } | { endless: true } | { slow: true }

/**
 * POSTs to /v1/orchestrators on a fresh connection; with `readAfterUpload` nothing is read until the
 * whole body is written (a client busy uploading). Resolves when the connection has closed, with what
 * was read and the client's port (which names the server's socket).
 */
function upload(body: Body, readAfterUpload = false): Promise<{ text: string; server: number }> {
  return new Promise((resolve) => {
    // An endless or slow client goes on sending after the server's FIN (allowHalfOpen; Node's would end too).
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: !('bytes' in body) })
    const got: Buffer[] = []
    const read = () => socket.on('data', (c: Buffer) => got.push(c))
    if (!readAfterUpload) read()
    let server = -1
    socket.on('connect', () => void (server = socket.localPort!))
    socket.on('error', () => {})
    socket.on('close', () => resolve({ text: Buffer.concat(got).toString('latin1'), server }))
    // The slow one declares 50 MB (answered at once), then sends a byte every 20 ms.
    const chunked = 'endless' in body || ('bytes' in body && body.chunked)
    socket.write(`POST /v1/orchestrators HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${'bytes' in body ? body.bytes : 50_000_000}`}\r\n\r\n`)
    const frame = (b: Buffer) => (chunked ? Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]) : b)
    if ('slow' in body) {
      const timer = setInterval(() => (socket.destroyed ? clearInterval(timer) : socket.write(frame(Buffer.from(' ')))), 20)
      return
    }
    const chunk = Buffer.alloc(64 * 1024, 0x20)
    const total = 'bytes' in body ? body.bytes : Infinity
    let sent = 0
    const pump = () => {
      while (!socket.destroyed && sent < total) {
        const part = chunk.subarray(0, Math.min(chunk.length, total - sent))
        sent += part.length
        if (!socket.write(frame(part))) return void socket.once('drain', pump)
      }
      if (!socket.destroyed) socket.write(chunked ? '0\r\n\r\n' : '', () => readAfterUpload && read())
    }
    pump()
  })
}

function answer(text: string): { status: number; headers: string; body: unknown } {
  const match = /^HTTP\/1\.1 (\d{3}) [^\r]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(text)
  expect(match, `not an HTTP response: ${JSON.stringify(text.slice(0, 200))}`).not.toBeNull()
  return { status: Number(match![1]), headers: match![2]!.toLowerCase(), body: JSON.parse(match![3]!) }
}

const TOO_LARGE = { error: { code: 'ERR_PAYLOAD_TOO_LARGE', message: 'request body is larger than 64 KiB' } }

describe('an oversized body is answered 413 and the connection closes lingering', () => {
  it.each([
    ['declared (Content-Length)', false],
    ['chunked (no Content-Length)', true],
  ])('a client that reads only after uploading 6 MB, %s, reads the 413 every time', async (_name, chunked) => {
    for (let i = 0; i < 6; i++) {
      const r = answer((await upload({ bytes: 6 * MB, chunked }, true)).text)
      expect(r.status).toBe(413)
      expect(r.headers).toContain('connection: close')
      expect(r.body).toEqual(TOO_LARGE)
    }
  })

  it('an endless chunked upload is cut after the lingering bound (8 MiB), answered first', async () => {
    const r = await upload({ endless: true })
    expect(answer(r.text).body).toEqual(TOO_LARGE)
    // Cut by a bound: 8 MiB read (or 2 s passed, whichever first), plus the reads in flight.
    expect(await serverSockets.get(r.server)!).toBeLessThan(16 * MB)
  })

  it('a slow upload that never ends is cut after the lingering time (2 s), answered first', async () => {
    const r = await upload({ slow: true })
    expect(answer(r.text).body).toEqual(TOO_LARGE)
    expect(await serverSockets.get(r.server)!).toBeLessThan(MB)
  })

  it('20 endless uploaders at once: each is answered, and each connection is closed', async () => {
    const all = await Promise.all(Array.from({ length: 20 }, () => upload({ endless: true })))
    for (const r of all) expect(answer(r.text).body).toEqual(TOO_LARGE)
    const reads = await Promise.all(all.map((r) => serverSockets.get(r.server)!))
    for (const read of reads) expect(read).toBeLessThan(16 * MB)
    // The issuer still answers afterwards.
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200)
  })
})
