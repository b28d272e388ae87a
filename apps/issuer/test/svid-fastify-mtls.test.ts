// The verifier's Fastify adapter for mutual TLS, on a real Fastify https server, with X.509-SVIDs from a
// real issuer (in process); and chains the adapter must refuse: a critical extension it does not process.
import 'reflect-metadata'
import { request as httpsRequest, type Agent as HttpsAgent } from 'node:https'
import { webcrypto } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import * as x509 from '@peculiar/x509'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { privateKeyFromJwk, type Ed25519PrivateJwk } from '@agentid/core'
import { createSvidHttpsAgent } from '@agentid/client'
import { agentidMtlsFastify, createVerifier, parseSpiffeBundle, parseX509Svid, verifyX509SvidChain, type VerifiedSvidAgent } from '@agentid/verifier'
import { bearer, claims, harness, injectFetch, proof, type Harness } from './http-fixtures.js'

x509.cryptoProvider.set(webcrypto as never)
const TD = 'agents.fastify.test'
let h: Harness
let app: FastifyInstance
let url: string
let ca: string
let serverSpiffeId: string

async function agentWithSvid(name: string): Promise<{ did: string; privateJwk: Ed25519PrivateJwk; spiffeId: string; certificate: string }> {
  const spawned = (await h.app.inject({ method: 'POST', url: '/v1/agents', headers: bearer(h.orch.apiKey), payload: { ...claims, purpose: name, keyCustody: 'issuer' } })).json()
  // An issuer-custody agent proves possession with the key the issuer returned once.
  const key = { did: spawned.did, privateJwk: spawned.privateJwk, signer: (await import('@agentid/core')).signerFromJwk(spawned.privateJwk) }
  const res = await h.app.inject({ method: 'POST', url: `/v1/agents/${spawned.did}/svids/x509`, payload: { proof: await proof(h, key as never, { purpose: 'svid' }) } })
  expect(res.statusCode, res.body).toBe(201)
  return { did: spawned.did, privateJwk: spawned.privateJwk, spiffeId: spawned.spiffeId, certificate: res.json().certificate }
}

function get(agent: HttpsAgent | undefined): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${url}/who`, { ...(agent ? { agent } : { agent: false, ca }), checkServerIdentity: (_h, cert) => (cert.subjectaltname === `URI:${serverSpiffeId}` ? undefined : new Error('server')) }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }))
    })
    req.on('error', reject)
    req.end()
  })
}

beforeAll(async () => {
  h = await harness({ trustDomain: TD })
  const bundle = (await h.app.inject({ method: 'GET', url: '/v1/spiffe/bundle' })).json()
  ca = new (await import('node:crypto')).X509Certificate(Buffer.from(bundle.keys[0].x5c[0], 'base64')).toString()
  const verifier = createVerifier({ trustedIssuers: [h.issuerDid], fetch: injectFetch(h), statusTtlMs: 0, statusGraceMs: 0, spiffe: { trustDomain: TD, bundle } })
  const server = await agentWithSvid('server')
  serverSpiffeId = server.spiffeId
  app = Fastify({ https: { key: privateKeyFromJwk(server.privateJwk).export({ format: 'pem', type: 'pkcs8' }) as string, cert: server.certificate, requestCert: true, rejectUnauthorized: false } })
  await app.register(agentidMtlsFastify, { verifier })
  app.get('/who', async (request) => {
    const v = (request as unknown as { agentidSvid: VerifiedSvidAgent }).agentidSvid
    return { did: v.agent.did, spiffeId: v.spiffeId, purpose: v.agent.claims.purpose }
  })
  url = await app.listen({ host: '127.0.0.1', port: 0 })
})

afterAll(async () => {
  await app?.close()
  await h?.close()
})

describe('agentidMtlsFastify on a real Fastify https server', () => {
  it('sets request.agentidSvid for an agent presenting its X.509-SVID; refuses no certificate (401) and a revoked agent (403)', async () => {
    const alice = await agentWithSvid('alice')
    const agent = createSvidHttpsAgent({ privateJwk: alice.privateJwk, svid: alice, ca, agentOptions: { keepAlive: false } })
    const ok = await get(agent)
    expect(ok.status, JSON.stringify(ok.body)).toBe(200)
    expect(ok.body).toEqual({ did: alice.did, spiffeId: alice.spiffeId, purpose: 'alice' })
    const none = await get(undefined)
    expect(none.status).toBe(401)
    expect(none.body.error.code).toBe('ERR_MALFORMED')
    await h.app.inject({ method: 'POST', url: `/v1/agents/${alice.did}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'test' } })
    const revoked = await get(agent)
    expect(revoked.status).toBe(403)
    expect(revoked.body.error.code).toBe('ERR_REVOKED')
  })
})

describe('chains the verifier refuses', () => {
  it('a signing certificate with a critical extension it does not process (nameConstraints) is ERR_MALFORMED', async () => {
    const alg = { name: 'ECDSA', hash: 'SHA-256' }
    const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair
    // nameConstraints (2.5.29.30) permitting nothing but a URI subtree: SEQUENCE { [0] { SEQUENCE { [6] "…" } } }
    const uri = Buffer.from(`spiffe://${TD}`)
    const subtree = Buffer.concat([Buffer.from([0x30, uri.length + 2, 0x86, uri.length]), uri])
    const value = Buffer.concat([Buffer.from([0x30, subtree.length + 2, 0xa0, subtree.length]), subtree])
    const intermediate = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01', name: 'CN=constrained', keys, signingAlgorithm: alg,
      extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true), new x509.Extension('2.5.29.30', true, value)],
    })
    const leafKeys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: '02', subject: 'CN=leaf', issuer: intermediate.subject, publicKey: leafKeys.publicKey, signingKey: keys.privateKey, signingAlgorithm: alg,
      extensions: [new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true), new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${TD}/agent/x/y` }])],
    })
    let code: string | undefined
    try {
      parseX509Svid([leaf.toString('pem'), intermediate.toString('pem')])
    } catch (e) {
      code = (e as { code: string }).code
    }
    expect(code).toBe('ERR_MALFORMED')
    expect(parseX509Svid(leaf.toString('pem')).spiffeId.id).toBe(`spiffe://${TD}/agent/x/y`)
  })
})

describe('path length constraints', () => {
  it('a CA whose basicConstraints pathLen is 0 cannot have a CA below it: a chain through a sub-CA it signed is ERR_UNTRUSTED_ISSUER', async () => {
    // The issuer's own SVID CA is pathLen 0 (it signs leaves only); a CA certificate under such an
    // authority (a key that leaked as a sub-CA, a downstream CA it was never meant to have) must not mint SVIDs.
    const alg = { name: 'ECDSA', hash: 'SHA-256' }
    const gen = async () => await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair
    const [rootKeys, subKeys, leafKeys] = [await gen(), await gen(), await gen()]
    const ca = (pathLen: number | undefined) => [new x509.BasicConstraintsExtension(true, pathLen, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)]
    const notBefore = new Date(Date.now() - 60_000)
    const notAfter = new Date(Date.now() + 3_600_000)
    const chainUnder = async (rootPathLen: number | undefined, subPathLen: number | undefined) => {
      const root = await x509.X509CertificateGenerator.createSelfSigned({ serialNumber: '01', name: 'CN=root', keys: rootKeys, signingAlgorithm: alg, notBefore, notAfter, extensions: ca(rootPathLen) })
      const sub = await x509.X509CertificateGenerator.create({ serialNumber: '02', subject: 'CN=sub', issuer: root.subject, publicKey: subKeys.publicKey, signingKey: rootKeys.privateKey, signingAlgorithm: alg, notBefore, notAfter, extensions: ca(subPathLen) })
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: '03', subject: 'CN=leaf', issuer: sub.subject, publicKey: leafKeys.publicKey, signingKey: subKeys.privateKey, signingAlgorithm: alg, notBefore, notAfter,
        extensions: [new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true), new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${TD}/agent/x/y` }])],
      })
      const bundle = parseSpiffeBundle({ keys: [{ use: 'x509-svid', x5c: [Buffer.from(root.rawData).toString('base64')] }] }, TD)
      return { bundle, chain: [leaf.toString('pem'), sub.toString('pem')] }
    }
    const outcome = (c: { bundle: ReturnType<typeof parseSpiffeBundle>; chain: string[] }) => {
      try {
        return verifyX509SvidChain(c.chain, c.bundle, { now: Date.now() / 1000 }).spiffeId.id
      } catch (e) {
        return (e as { code: string }).code
      }
    }
    expect(outcome(await chainUnder(0, undefined))).toBe('ERR_UNTRUSTED_ISSUER')
    expect(outcome(await chainUnder(0, 0))).toBe('ERR_UNTRUSTED_ISSUER')
    expect(outcome(await chainUnder(1, 0))).toBe(`spiffe://${TD}/agent/x/y`)
    expect(outcome(await chainUnder(undefined, 0))).toBe(`spiffe://${TD}/agent/x/y`)
  })
})

describe('verifyX509Svid memoizes the chain, never the time or the status', () => {
  it('a chain verified once is refused once its certificate expires, and once the agent is revoked', async () => {
    const bob = await agentWithSvid('bob')
    const bundle = (await h.app.inject({ method: 'GET', url: '/v1/spiffe/bundle' })).json()
    let now = Date.now()
    const verifier = createVerifier({ trustedIssuers: [h.issuerDid], fetch: injectFetch(h), clock: () => now, statusTtlMs: 0, statusGraceMs: 0, clockSkewSec: 0, spiffe: { trustDomain: TD, bundle } })
    expect((await verifier.verifyX509Svid(bob.certificate)).agent.did).toBe(bob.did)
    expect((await verifier.verifyX509Svid(bob.certificate)).agent.did).toBe(bob.did) // from the memo
    const notAfter = parseX509Svid(bob.certificate).notAfter
    now = (notAfter + 1) * 1000
    await expect(verifier.verifyX509Svid(bob.certificate)).rejects.toMatchObject({ code: 'ERR_EXPIRED' })
    now = Date.now()
    await h.app.inject({ method: 'POST', url: `/v1/agents/${bob.did}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'test' } })
    await expect(verifier.verifyX509Svid(bob.certificate)).rejects.toMatchObject({ code: 'ERR_REVOKED' })
  })
})
