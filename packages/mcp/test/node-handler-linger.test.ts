// The guard's 413 on a real socket: a body over maxBodyBytes, declared or chunked, is answered and the
// connection closes lingering (@agentid/core lingerAfterAnswer), so a client that reads only once its
// upload is written still reads the answer. The gateway serves its endpoints through this handler.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { createMcpGuard } from '@agentid/mcp'
import { loadPolicyEngine } from '@agentid/policy'
import { createVerifier } from '@agentid/verifier'
import { caller, claims, policyDir } from './fixtures.js'

const ISSUER = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'
const MB = 1024 * 1024
let server: Server
let port: number

beforeAll(async () => {
  // Authentication is tested end to end; here the verifier accepts every request as alice's token.
  const real = createVerifier({ trustedIssuers: [ISSUER] })
  const verifyRequest = async () => ({ agent: caller('alice').agent, user: null, claims: { agentid: { claims: claims() } }, authorizationDetails: [] })
  const guard = createMcpGuard({
    verifier: { ...real, verifyRequest } as unknown as typeof real,
    policy: await loadPolicyEngine({ dir: policyDir() }),
    serverId: 'demo',
    resource: 'http://127.0.0.1/mcp',
    authorizationServers: ['https://id.example'],
    audit: () => undefined,
  })
  const handler = guard.nodeHandler({ createServer: () => new McpServer({ name: 'demo', version: '1' }), maxBodyBytes: 64 * 1024 })
  server = createServer((req, res) => void handler(req, res))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  port = (server.address() as AddressInfo).port
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

/** POSTs `bytes` to /mcp, reading nothing until all of it is written; resolves with what was read once closed. */
function upload(bytes: number, chunked: boolean): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    const got: Buffer[] = []
    socket.on('error', () => {})
    socket.on('close', () => resolve(Buffer.concat(got).toString('latin1')))
    socket.write(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: DPoP a.b.c\r\nDPoP: d.e.f\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n${chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${bytes}`}\r\n\r\n`)
    const chunk = Buffer.alloc(64 * 1024, 0x20)
    let sent = 0
    const pump = () => {
      while (!socket.destroyed && sent < bytes) {
        sent += chunk.length
        const framed = chunked ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]) : chunk
        if (!socket.write(framed)) return void socket.once('drain', pump)
      }
      if (!socket.destroyed) socket.write(chunked ? '0\r\n\r\n' : '', () => socket.on('data', (c: Buffer) => got.push(c)))
    }
    pump()
  })
}

describe('nodeHandler: a body over maxBodyBytes', () => {
  it.each([
    ['chunked (no Content-Length)', true],
    ['declared (Content-Length)', false],
  ])('%s: 6 MB are answered 413 -32600 ERR_PAYLOAD_TOO_LARGE, read by a client that was still sending, every time', async (_name, chunked) => {
    for (let i = 0; i < 6; i++) {
      const text = await upload(6 * MB, chunked)
      const match = /^HTTP\/1\.1 (\d{3}) [^\r]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(text)
      expect(match, `attempt ${i}: ${JSON.stringify(text.slice(0, 120))}`).not.toBeNull()
      expect(Number(match![1])).toBe(413)
      expect(match![2]!.toLowerCase()).toContain('connection: close')
      expect(JSON.parse(match![3]!)).toEqual({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'Request body too large', data: { code: 'ERR_PAYLOAD_TOO_LARGE' } } })
    }
  })
})
