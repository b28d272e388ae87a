// Red team of createAgentFetch's lineage headers: a hop is signed for one target, command and arguments;
// a redirect elsewhere must not carry it (nor the credentials sent with it, nor the body) to the new place.
import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { generateEd25519KeyPair, signerFromJwk, signJwt } from '@agentid/core'
import { CREDENTIALS_HEADER, LINEAGE_HEADER } from '@agentid/lineage'
import { createAgentFetch } from '@agentid/client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const agent = generateEd25519KeyPair()
const issuer = signerFromJwk(generateEd25519KeyPair().privateJwk)
let a: Server
let b: Server
let aUrl: string
let bUrl: string
const seenAtB: { headers: IncomingHttpHeaders; body: string }[] = []

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

beforeAll(async () => {
  ;({ server: b, url: bUrl } = await listen((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString() })
    req.on('end', () => { seenAtB.push({ headers: req.headers, body }); res.end('b') })
  }))
  // A: the service called, which answers with a redirect to another origin (an open redirect, a moved API).
  ;({ server: a, url: aUrl } = await listen((req, res) => {
    req.resume()
    req.on('end', () => { res.writeHead(307, { location: `${bUrl}/collect` }); res.end() })
  }))
})
afterAll(async () => {
  for (const s of [a, b]) {
    s.closeAllConnections()
    await new Promise<void>((r) => s.close(() => r()))
  }
})

describe('createAgentFetch red team: redirects', () => {
  it('does not follow a redirect with the lineage, the credentials and the body to another origin', async () => {
    const credential = await signJwt({ typ: 'JWT' }, {
      iss: issuer.did, sub: agent.did, exp: Math.floor(Date.now() / 1000) + 3600,
      vc: { type: ['VerifiableCredential', 'AgentIdentityCredential'], credentialSubject: { id: agent.did, purpose: 'p' }, credentialStatus: { type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: '1', statusListCredential: 'https://issuer.example/v1/status-lists/1' } },
    }, issuer)
    const agentFetch = createAgentFetch({ privateJwk: agent.privateJwk, token: async () => ({ accessToken: 'tok', expiresIn: 60 }), lineage: { credential } })
    const response = await agentFetch(`${aUrl}/v1/pay`, { method: 'POST', body: '{"amount":100}', headers: { 'content-type': 'application/json' }, lineage: { user: 'user-1' } })
    // The caller sees the redirect (and may decide); B saw nothing of the call.
    expect(response.status).toBe(307)
    expect(response.headers.get('location')).toBe(`${bUrl}/collect`)
    expect(seenAtB.map((s) => [s.headers[LINEAGE_HEADER], s.headers[CREDENTIALS_HEADER], s.body])).toEqual([])
  })
})
