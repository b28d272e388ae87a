// The issuer on a real socket, driven with raw bytes (node:net): what app.inject() cannot send —
// aborted uploads, malformed HTTP, oversized headers and bodies.
import { mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { IssuerService } from '../src/domain/service.js'
import { buildServer } from '../src/http/server.js'

let dir: string
let service: IssuerService
let app: FastifyInstance
let port: number
const logs: Array<{ level: number; msg: string; [k: string]: unknown }> = []

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'agentid-raw-'))
  service = await IssuerService.open({ dataDir: dir, baseUrl: 'http://issuer.test' })
  app = buildServer(service, { logger: { level: 'info', stream: { write: (line: string) => void logs.push(JSON.parse(line)) } } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  port = (app.server.address() as { port: number }).port
})
afterAll(async () => {
  await app.close()
  await service.close()
  rmSync(dir, { recursive: true, force: true })
})
beforeEach(() => void (logs.length = 0))

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Sends `chunks` on a fresh connection and resolves with everything the server wrote before it closed (or `waitMs`). */
function raw(chunks: Array<string | Buffer>, o: { destroyAfterWrite?: boolean; waitMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const got: Buffer[] = []
    const done = () => resolve(Buffer.concat(got).toString('latin1'))
    socket.on('data', (c) => got.push(c))
    socket.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? done() : reject(e)))
    socket.on('close', done)
    socket.on('connect', () => {
      for (const c of chunks) socket.write(c)
      if (o.destroyAfterWrite) socket.destroy()
    })
    setTimeout(() => { socket.destroy(); done() }, o.waitMs ?? 2000).unref()
  })
}

describe('aborted uploads', () => {
  it.each([
    ['POST /v1/agents (JSON)', 'POST /v1/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"purpose":'],
    ['POST /v1/token (form)', 'POST /v1/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type='],
  ])('%s: a client that hangs up mid-body is logged at info, not as an internal error', async (_name, head) => {
    await raw([head], { destroyAfterWrite: true })
    for (let i = 0; i < 50 && !logs.some((l) => l.msg === 'client aborted the request'); i++) await sleep(20)
    expect(logs.filter((l) => l.level >= 40), JSON.stringify(logs)).toEqual([])
    expect(logs.some((l) => l.msg === 'internal error')).toBe(false)
    const aborted = logs.find((l) => l.msg === 'client aborted the request')
    expect(aborted?.level).toBe(30)
  })
})

/**
 * Like a real uploading client: writes `head`, then body bytes as fast as the socket takes them (up to
 * `total`), reading all the while; resolves with what was read once the server answered and closed,
 * or the connection broke.
 */
function streamingUpload(head: string, total: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    const got: Buffer[] = []
    let sent = 0
    let finished = false
    const done = () => {
      if (finished) return
      finished = true
      socket.destroy()
      resolve(Buffer.concat(got).toString('latin1'))
    }
    const chunk = Buffer.alloc(64 * 1024, 0x20)
    const pump = () => {
      while (!finished && !socket.destroyed && sent < total) {
        sent += chunk.length
        if (!socket.write(chunk)) return void socket.once('drain', pump)
      }
    }
    socket.on('data', (c) => got.push(c))
    socket.on('error', done)
    socket.on('close', done)
    socket.on('connect', () => {
      socket.write(head)
      pump()
    })
    setTimeout(done, 5000).unref()
  })
}

/** The first HTTP response in `text`: status and JSON body. */
function response(text: string): { status: number; headers: string; body: unknown } {
  const match = /^HTTP\/1\.1 (\d{3}) [^\r]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(text)
  expect(match, `not an HTTP response: ${JSON.stringify(text.slice(0, 200))}`).not.toBeNull()
  const headers = match![2]!.toLowerCase()
  const length = /content-length: (\d+)/.exec(headers)
  const bodyText = length ? match![3]!.slice(0, Number(length[1])) : match![3]!
  return { status: Number(match![1]), headers, body: JSON.parse(bodyText) }
}

describe('malformed HTTP gets the documented error body', () => {
  it.each([
    ['a chunk size that is not hex', ['POST /v1/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n'], 400, 'ERR_INVALID_INPUT'],
    ['a NUL byte in a header value', ['GET /healthz HTTP/1.1\r\nHost: x\r\nX-Thing: a\u0000b\r\n\r\n'], 400, 'ERR_INVALID_INPUT'],
    ['Content-Length with Transfer-Encoding', ['POST /v1/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'], 400, 'ERR_INVALID_INPUT'],
    ['a request line that is not HTTP', ['HELLO\r\n\r\n'], 400, 'ERR_INVALID_INPUT'],
    ['headers larger than the server takes', [`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`], 431, 'ERR_HEADERS_TOO_LARGE'],
  ] as const)('%s', async (_name, chunks, status, code) => {
    const r = response(await raw([...chunks]))
    expect(r.status).toBe(status)
    expect(r.headers).toContain('content-type: application/json')
    expect(r.headers).toContain('connection: close')
    expect(r.body).toEqual({ error: { code, message: expect.any(String) } })
    expect(logs.filter((l) => l.level >= 50)).toEqual([])
  })

  it.each([
    ['/v1/agents', 'application/json', 'ERR_PAYLOAD_TOO_LARGE'],
    ['/v1/orchestrators', 'application/json', 'ERR_PAYLOAD_TOO_LARGE'],
  ])('%s: a body declared larger than the limit is answered 413, and the client reads it while it is still sending', async (path, type, code) => {
    const head = `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: ${type}\r\nContent-Length: 50000000\r\n\r\n`
    const r = response(await streamingUpload(head, 50_000_000))
    expect(r.status).toBe(413)
    expect(r.headers).toContain('connection: close')
    expect(r.body).toEqual({ error: { code, message: expect.any(String) } })
  })

  it.each(['/v1/agents', '/v1/token'])('%s: Expect: 100-continue with a Content-Length over the limit is answered 413 before any body is sent', async (path) => {
    const text = await raw([`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\nExpect: 100-continue\r\n\r\n`], { waitMs: 500 })
    const r = response(text)
    expect(r.status).toBe(413)
    expect(r.body).toEqual({ error: { code: 'ERR_PAYLOAD_TOO_LARGE', message: expect.any(String) } })
  })

  it('Expect: 100-continue within the limit still gets 100 Continue and its answer', async () => {
    const text = await raw(['POST /v1/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n', '{}'], { waitMs: 1000 })
    expect(text.startsWith('HTTP/1.1 100 Continue\r\n\r\n')).toBe(true)
    const r = response(text.slice('HTTP/1.1 100 Continue\r\n\r\n'.length))
    expect(r.status).toBe(401)
  })

  it('a chunked body that grows past the limit is answered 413 (the client reads it)', async () => {
    const chunk = Buffer.alloc(16 * 1024, 0x20)
    const chunks: Array<string | Buffer> = ['POST /v1/agents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n']
    for (let i = 0; i < 32; i++) chunks.push(`${chunk.length.toString(16)}\r\n`, chunk, '\r\n')
    const r = response(await raw(chunks))
    expect(r.status).toBe(413)
    expect(r.body).toEqual({ error: { code: 'ERR_PAYLOAD_TOO_LARGE', message: expect.any(String) } })
  })
})
