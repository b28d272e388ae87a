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
