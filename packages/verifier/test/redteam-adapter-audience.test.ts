// Red team: the Node middleware's approval target (and lineage audience) when the service names its
// audience once, in createVerifier's `resourceAudience`, and sets neither the adapter's `audience` nor
// `origin`. The target came from the request's Host header, which the caller chooses: an agent approved
// to call service A replayed the receipt at service B (same route and arguments) by sending
// `Host: a.example` and a DPoP proof for that URL; B took it as approved. The target is now the audience
// the access token was verified for.
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { randomUUID } from 'node:crypto'
import { signJwt, StatusList } from '@agentid/core'
import { httpArgs } from '@agentid/lineage'
import { accessTokenHash, agentidMiddleware, argumentsDigest, createVerifier } from '@agentid/verifier'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { call, receipt } from './approval-fixtures.js'
import { alice, claims, issuer, LIST_URL, NOW, statusListJwt, statusServer, testClock } from './fixtures.js'

const B = 'https://bank-b.example' // this service: its access tokens' audience
const PATH = '/v1/pay?amount=1000'

let key: { privateKey: CryptoKey; jwk: JWK; jkt: string }
let server: Server
let port: number

const token = () => signJwt({ typ: 'at+jwt', kid: issuer.keyId }, {
  iss: issuer.did, aud: B, sub: alice.did, client_id: alice.did, iat: NOW, exp: NOW + 120, jti: randomUUID(), cnf: { jkt: key.jkt }, authorization_details: [],
  agentid: { claims, credentialId: 'urn:uuid:5f0c6c3e-3b7e-4d7e-9a55-6a2c9c8f0001', credentialStatus: { type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: '12', statusListCredential: LIST_URL } },
}, issuer)
const proof = (htu: string, accessToken: string) =>
  new SignJWT({ htm: 'GET', htu, iat: NOW, jti: randomUUID(), ath: accessTokenHash(accessToken) })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'EdDSA', jwk: key.jwk })
    .sign(key.privateKey)

async function rawGet(host: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write(`GET ${PATH} HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`)
  let data = ''
  socket.setEncoding('utf8')
  for await (const chunk of socket) data += chunk
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1]), body: data.slice(data.indexOf('\r\n\r\n') + 4) }
}

/** An approval of GET /v1/pay?amount=1000 at `target`, by the controller's approver. */
async function approvalFor(target: string): Promise<string> {
  const args = httpArgs(`${target}${PATH}`)
  const r = await receipt({ call: call({ target, command: 'GET /v1/pay', arguments: args, argumentsDigest: argumentsDigest(args), user: null }) })
  return Buffer.from(JSON.stringify(r)).toString('base64url')
}

beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true })
  const jwk = await exportJWK(publicKey)
  key = { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk, 'sha256') }
  const verifier = createVerifier({ trustedIssuers: [issuer.did], clock: testClock(), fetch: statusServer({ [LIST_URL]: await statusListJwt(StatusList.create()) }), resourceAudience: B })
  const stubIssuer = (async () => new Response(JSON.stringify({ id: 'apr_BBBBBBBBBBBBBBBBBBBBBB', url: 'https://id.example/approvals/x', expiresAt: '2027-01-01T00:00:00.000Z' }), { status: 201 })) as unknown as typeof fetch
  const mw = agentidMiddleware(verifier, { approval: { requires: () => ({ group: null }), issuerUrl: 'https://id.example', apiKey: 'aid_orch_key', fetch: stubIssuer } })
  server = createServer((req, res) => mw(req, res, (error?: unknown) => res.writeHead(error ? 500 : 200).end(error ? 'error' : 'paid')))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  port = (server.address() as AddressInfo).port
})
afterAll(() => server.close())

describe('Node middleware approvals with resourceAudience only', () => {
  it('refuses an approval for another service presented with that service\'s Host', async () => {
    const t = await token()
    const r = await rawGet('bank-a.example', { authorization: `DPoP ${t}`, dpop: await proof(`http://bank-a.example${PATH}`, t), 'agentid-approval': await approvalFor('http://bank-a.example') })
    expect(r.status, r.body).toBe(403)
    expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'ERR_APPROVAL_MISMATCH' } })
  })
  it('accepts an approval for this service, named by its audience', async () => {
    const t = await token()
    const r = await rawGet('bank-b.example', { authorization: `DPoP ${t}`, dpop: await proof(`http://bank-b.example${PATH}`, t), 'agentid-approval': await approvalFor(B) })
    expect(r.status, r.body).toBe(200)
  })
})
