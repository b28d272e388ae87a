// A configured `origin` pins the scheme and host a DPoP proof's htu must name. The request target is
// the client's to choose: an absolute-form target (`GET http://other.example/x HTTP/1.1`) or a
// protocol-relative one (`GET //other.example/x`) must not replace the configured origin.
// And a token's cnf: only jkt is checked, so nothing else may be there.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { randomUUID } from 'node:crypto'
import { signJwt } from '@agentid/core'
import { accessTokenHash, agentidFastify, agentidMiddleware, createVerifier, type FastifyLike, type Verifier } from '@agentid/verifier'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { alice, issuer, NOW, testClock } from './fixtures.js'

const ORIGIN = 'https://erp.example'
const OTHER = 'http://other.example'

let key: { privateKey: CryptoKey; jwk: JWK; jkt: string }
let verifier: Verifier
let server: Server
let port: number

const token = () => signJwt({ typ: 'at+jwt', kid: `${issuer.did}#${issuer.did.slice(8)}` }, {
  iss: issuer.did, aud: ORIGIN, sub: alice.did, client_id: alice.did, iat: NOW, exp: NOW + 120, jti: randomUUID(), cnf: { jkt: key.jkt },
}, issuer)
const proof = (htu: string, accessToken: string) =>
  new SignJWT({ htm: 'GET', htu, iat: NOW, jti: randomUUID(), ath: accessTokenHash(accessToken) })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'EdDSA', jwk: key.jwk })
    .sign(key.privateKey)

// A raw HTTP/1.1 request: fetch would never send these request targets.
async function rawGet(target: string, headers: Record<string, string>): Promise<number> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write(`GET ${target} HTTP/1.1\r\nhost: erp.example\r\nconnection: close\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`)
  let data = ''
  socket.setEncoding('utf8')
  for await (const chunk of socket) data += chunk
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1])
}

beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true })
  const jwk = await exportJWK(publicKey)
  key = { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') }
  verifier = createVerifier({ trustedIssuers: [issuer.did], clock: testClock(), resourceAudience: ORIGIN })
  const mw = agentidMiddleware(verifier, { origin: ORIGIN })
  server = createServer((req, res) => mw(req, res, () => res.end('ok')))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  port = (server.address() as AddressInfo).port
})
afterAll(() => server.close())

describe('Node middleware with origin', () => {
  it('refuses a proof for another host sent with an absolute-form request target naming that host', async () => {
    const t = await token()
    expect(await rawGet(`${OTHER}/invoices/42`, { authorization: `DPoP ${t}`, dpop: await proof(`${OTHER}/invoices/42`, t) })).toBe(401)
  })
  it('refuses a proof for another host sent with a protocol-relative request target', async () => {
    const t = await token()
    expect(await rawGet('//other.example/invoices/42', { authorization: `DPoP ${t}`, dpop: await proof('https://other.example/invoices/42', t) })).toBe(401)
  })
  it('accepts a proof for the configured origin, whatever the request target\'s form', async () => {
    for (const target of ['/invoices/42', `${OTHER}/invoices/42`]) {
      const t = await token()
      expect(await rawGet(target, { authorization: `DPoP ${t}`, dpop: await proof(`${ORIGIN}/invoices/42`, t) }), target).toBe(200)
    }
  })
})

describe('Fastify plugin with origin', () => {
  it('takes the scheme and host from origin, never from request.url', async () => {
    let hook: Parameters<FastifyLike['addHook']>[1] | undefined
    agentidFastify({ decorateRequest: () => undefined, addHook: (_n, h) => { hook = h } }, { verifier, origin: ORIGIN }, () => undefined)
    const run = async (url: string, htu: string) => {
      const t = await token()
      const request = { method: 'GET', url, headers: {}, raw: { headersDistinct: { authorization: [`DPoP ${t}`], dpop: [await proof(htu, t)] } }, agentid: null as unknown }
      const reply = { status: 0, code(s: number) { this.status = s; return this }, header() { return this }, send() { return this } }
      await hook!(request as never, reply as never)
      return reply.status === 0 && request.agentid !== null ? 'accepted' : reply.status
    }
    expect(await run(`${OTHER}/invoices/42`, `${OTHER}/invoices/42`)).toBe(401)
    expect(await run('//other.example/invoices/42', 'https://other.example/invoices/42')).toBe(401)
    expect(await run('/invoices/42', `${ORIGIN}/invoices/42`)).toBe('accepted')
  })
})

describe('confirmation methods the verifier does not check', () => {
  // A token bound to a certificate too (x5t#S256, RFC 8705) or naming a key otherwise (jwk, jku, kid)
  // must not pass on its DPoP binding alone: the verifier checks cnf.jkt and nothing else, so it refuses more.
  for (const extra of [{ 'x5t#S256': 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2' }, { jwk: { kty: 'OKP', crv: 'Ed25519', x: 'AAAA' } }, { jku: 'https://issuer.example/jwks' }, { kid: 'k1' }]) {
    it(`refuses cnf with ${Object.keys(extra)[0]} beside jkt`, async () => {
      const t = await signJwt({ typ: 'at+jwt', kid: `${issuer.did}#${issuer.did.slice(8)}` }, {
        iss: issuer.did, aud: ORIGIN, sub: alice.did, client_id: alice.did, iat: NOW, exp: NOW + 120, jti: randomUUID(), cnf: { jkt: key.jkt, ...extra },
      }, issuer)
      const outcome = await verifier.verifyRequest({ method: 'GET', url: `${ORIGIN}/invoices/42`, headers: { authorization: `DPoP ${t}`, dpop: await proof(`${ORIGIN}/invoices/42`, t) } })
        .then(() => 'accepted', (e: { code?: string }) => e.code)
      expect(outcome).toBe('ERR_MALFORMED')
    })
  }
})

describe('Node middleware without origin: the Host header names a host, nothing more', () => {
  // Without origin the URL is rebuilt from Host. A Host carrying a path and a '?' ("erp.example/invoices?")
  // moved the request's own path into the query, which htu ignores: a proof made for /invoices passed
  // on any other path of the server.
  let plain: Server
  let plainPort: number
  beforeAll(async () => {
    const mw = agentidMiddleware(verifier)
    plain = createServer((req, res) => mw(req, res, () => res.end('ok')))
    plain.listen(0, '127.0.0.1')
    await once(plain, 'listening')
    plainPort = (plain.address() as AddressInfo).port
  })
  afterAll(() => plain.close())

  async function get(target: string, host: string, headers: Record<string, string>): Promise<number> {
    const socket = connect(plainPort, '127.0.0.1')
    await once(socket, 'connect')
    socket.write(`GET ${target} HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`)
    let data = ''
    socket.setEncoding('utf8')
    for await (const chunk of socket) data += chunk
    return Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1])
  }

  for (const host of ['erp.example/invoices/42?', 'erp.example/invoices/42#', 'erp.example/invoices/42\\', 'user@erp.example']) {
    it(`refuses a proof for another path through Host ${JSON.stringify(host)}`, async () => {
      const t = await token()
      const status = await get('/admin/export', host, { authorization: `DPoP ${t}`, dpop: await proof('http://erp.example/invoices/42', t) })
      expect(status).not.toBe(200)
    })
  }
  it('accepts a plain Host (with a port too)', async () => {
    for (const host of ['erp.example', 'erp.example:8080', '[::1]:8080']) {
      const t = await token()
      expect(await get('/invoices/42', host, { authorization: `DPoP ${t}`, dpop: await proof(`http://${host}/invoices/42`, t) }), host).toBe(200)
    }
  })
})

describe('Fastify plugin without origin', () => {
  it('refuses a Host holding more than a host and port, accepts a plain one', async () => {
    let hook: Parameters<FastifyLike['addHook']>[1] | undefined
    agentidFastify({ decorateRequest: () => undefined, addHook: (_n, h) => { hook = h } }, { verifier }, () => undefined)
    const run = async (host: string, url: string, htu: string) => {
      const t = await token()
      const request = { method: 'GET', url, protocol: 'http', host, headers: {}, raw: { headersDistinct: { authorization: [`DPoP ${t}`], dpop: [await proof(htu, t)] } }, agentid: null as unknown }
      const reply = { status: 0, code(s: number) { this.status = s; return this }, header() { return this }, send() { return this } }
      await hook!(request as never, reply as never)
      return reply.status === 0 && request.agentid !== null ? 'accepted' : reply.status
    }
    expect(await run('erp.example/invoices/42?', '/admin/export', 'http://erp.example/invoices/42')).toBe(400)
    expect(await run('erp.example:8080', '/invoices/42', 'http://erp.example:8080/invoices/42')).toBe('accepted')
  })
})
