// Issue 11: a status-list answer is streamed with a byte cap, never read whole (100 MB cost +252 MB RSS).
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { StatusList, VerificationError } from '@agentid/core'
import { createVerifier } from '@agentid/verifier'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { credential, issuer, statusListJwt, testClock } from './fixtures.js'

const CHUNK = Buffer.alloc(64 * 1024, 0x41)
let server: Server
let base: string
const stats = { sent: 0, closed: false }
let goodList = ''

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/lists/good') return void res.writeHead(200, { 'content-type': 'application/vc+jwt' }).end(goodList)
    // 100 MB without Content-Length (chunked), or endless: only a streaming cap stops it.
    stats.sent = 0
    stats.closed = false
    res.on('close', () => { stats.closed = true })
    res.writeHead(200, { 'content-type': 'application/vc+jwt' })
    const total = req.url === '/lists/endless' ? Infinity : 100 * 1024 * 1024
    const write = () => {
      while (stats.sent < total && !stats.closed) {
        stats.sent += CHUNK.length
        if (!res.write(CHUNK)) return void res.once('drain', write)
      }
      if (stats.sent >= total) res.end()
    }
    write()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  goodList = await statusListJwt(StatusList.create(), { url: `${base}/lists/good` })
})
afterAll(() => {
  server.closeAllConnections()
  server.close()
})

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 10))
}

describe('status lists over real HTTP: bodies are capped while streaming', () => {
  it('a list within the cap verifies', async () => {
    const verifier = createVerifier({ trustedIssuers: [issuer.did], clock: testClock() })
    await verifier.verifyAgentCredential(await credential({ listUrl: `${base}/lists/good` }))
  })

  for (const path of ['/lists/100mb', '/lists/endless']) {
    it(`${path}: ERR_STATUS_UNAVAILABLE after about 1 MiB, the fetch aborted, memory bounded`, async () => {
      const verifier = createVerifier({ trustedIssuers: [issuer.did], clock: testClock() })
      global.gc?.()
      const before = process.memoryUsage().rss
      const error = await verifier.verifyAgentCredential(await credential({ listUrl: `${base}${path}` })).then(() => undefined, (e: unknown) => e)
      expect(error).toBeInstanceOf(VerificationError)
      expect((error as VerificationError).code).toBe('ERR_STATUS_UNAVAILABLE')
      expect((error as VerificationError).details.reason).toBe('status list credential is too large')
      await until(() => stats.closed)
      expect(stats.closed).toBe(true)
      expect(stats.sent).toBeLessThan(16 * 1024 * 1024) // the server was stopped by back-pressure, then the hang-up
      expect(process.memoryUsage().rss - before).toBeLessThan(48 * 1024 * 1024)
    })
  }
})
