// The Node/Express middleware's refusals against a client still uploading: a body past maxBodyBytes
// (read to check a lineage's arguments) and a DPoP refusal before the body is read. Before the
// lingering close, leaving the body loop destroyed the request and its socket, and a client that
// reads only after uploading lost the answer (EPIPE / ECONNRESET).
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { VerificationError } from '@agentid/core'
import { agentidMiddleware, createVerifier, type Verifier } from '@agentid/verifier'
import { afterEach, describe, expect, it } from 'vitest'
import { issuer } from './fixtures.js'

const MB = 1024 * 1024
let server: Server | undefined
afterEach(async () => {
  server?.closeAllConnections()
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
  server = undefined
})

/** A server behind agentidMiddleware (lineage required, 64 KiB body limit); the DPoP step stubbed. */
async function serve(dpop: 'ok' | 'refused'): Promise<number> {
  const real = createVerifier({ trustedIssuers: [issuer.did] })
  const verifier: Verifier = Object.freeze({
    ...real,
    verifyRequest: async () => {
      if (dpop === 'refused') throw new VerificationError('ERR_MALFORMED', 'no DPoP proof')
      return { agent: { did: issuer.did } } as never
    },
  })
  const mw = agentidMiddleware(verifier, { origin: 'https://pay.example', lineage: true, maxBodyBytes: 64 * 1024 })
  server = createServer((req, res) => mw(req, res, (error?: unknown) => res.writeHead(error ? 500 : 200).end(error ? 'error' : 'ok')))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return (server.address() as AddressInfo).port
}

/** Uploads `bytes` (declared or chunked) and reads only once all is written; resolves with what it read. */
function upload(port: number, bytes: number, chunked: boolean): Promise<{ text: string; error: string | null }> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' })
    const got: Buffer[] = []
    let error: string | null = null
    socket.on('error', (e: NodeJS.ErrnoException) => void (error ??= e.code ?? 'error'))
    socket.on('close', () => resolve({ text: Buffer.concat(got).toString('latin1'), error }))
    socket.write(`POST /v1/charges HTTP/1.1\r\nHost: pay.example\r\nContent-Type: application/json\r\n${chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${bytes}`}\r\n\r\n`)
    const chunk = Buffer.alloc(64 * 1024, 0x78)
    const frame = (b: Buffer) => (chunked ? Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]) : b)
    let sent = 0
    const pump = () => {
      while (!socket.destroyed && sent < bytes) {
        const part = chunk.subarray(0, Math.min(chunk.length, bytes - sent))
        sent += part.length
        if (!socket.write(frame(part))) return void socket.once('drain', pump)
      }
      if (socket.destroyed) return
      socket.write(chunked ? '0\r\n\r\n' : '', () => socket.on('data', (c: Buffer) => got.push(c)))
    }
    pump()
  })
}

const statusOf = (text: string) => Number(/^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1])
const bodyOf = (text: string) => JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { error: { code: string; details?: { reason?: string } } }

describe('agentidMiddleware: refusals reach a client still uploading', () => {
  it.each([['declared', false], ['chunked', true]])('a %s 6 MB body past maxBodyBytes gets the 403 body-too-large every time', async (_name, chunked) => {
    const port = await serve('ok')
    for (let i = 0; i < 5; i++) {
      const r = await upload(port, 6 * MB, chunked)
      expect(statusOf(r.text), `attempt ${i}: ${r.error} ${r.text.slice(0, 80)}`).toBe(403)
      expect(r.text.toLowerCase()).toContain('connection: close')
      expect(bodyOf(r.text).error).toMatchObject({ code: 'ERR_MALFORMED', details: { reason: 'body-too-large' } })
    }
  })

  it('a DPoP refusal (401 challenge) sent before the body is read reaches a client uploading 6 MB', async () => {
    const port = await serve('refused')
    for (let i = 0; i < 5; i++) {
      const r = await upload(port, 6 * MB, false)
      expect(statusOf(r.text), `attempt ${i}: ${r.error} ${r.text.slice(0, 80)}`).toBe(401)
      expect(r.text.toLowerCase()).toContain('connection: close')
    }
  })
})
