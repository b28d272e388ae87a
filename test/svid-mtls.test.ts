// Workload identity end to end: agents spawned by the real issuer process (AGENTID_TRUST_DOMAIN) get
// X.509-SVIDs and call a Node `https` server over mutual TLS, authenticated by the verifier's adapter;
// revocation stops them; certificates of another CA, another trust domain, a path trick, an expired
// SVID and a JWT-SVID for another audience are refused.
import 'reflect-metadata'
import { request as httpsRequest, createServer, type Agent as HttpsAgent, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { webcrypto, X509Certificate } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { generateEd25519KeyPair, privateKeyFromJwk, VerificationError, type Ed25519PrivateJwk } from '@agentid/core'
import { createSvidHttpsAgent, fetchCertificateBoundToken, fetchJwtSvid, startIdentityRotation, fetchSpiffeBundle, fetchX509Svid, spawn, type X509Svid } from '@agentid/client'
import { agentidMtlsMiddleware, createVerifier, type VerifiedSvidAgent, type Verifier } from '@agentid/verifier'
import { api, claims, cleanup, issuerDid, sleep, startIssuer, type IssuerProcess } from './harness.js'

x509.cryptoProvider.set(webcrypto as never)
const TD = 'agents.e2e.test'
const RESOURCE = 'https://erp.e2e.test'

interface Agentish { did: string; privateJwk: Ed25519PrivateJwk; spiffeId: string; svid: X509Svid }

let issuer: IssuerProcess
let apiKey: string
let verifier: Verifier
let server: Server
let serverUrl: string
let serverAgent: Agentish
let bundleCa: string
const seen: VerifiedSvidAgent[] = []

async function orchestrator(i: IssuerProcess, name: string): Promise<string> {
  const r = await api(i, 'POST', '/v1/orchestrators', { key: i.adminKey, json: { name } })
  expect(r.status, r.text).toBe(201)
  return r.body.apiKey as string
}

async function agentOf(i: IssuerProcess, key: string, n: string): Promise<Agentish> {
  const spawned = await spawn({ issuerUrl: i.url, apiKey: key, claims: claims(n) }) as Awaited<ReturnType<typeof spawn>> & { spiffeId: string }
  const svid = await fetchX509Svid({ issuerUrl: i.url, privateJwk: spawned.privateJwk })
  return { did: spawned.did, privateJwk: spawned.privateJwk, spiffeId: spawned.spiffeId, svid }
}

/** An https.Agent for `who` that accepts only the resource server's SPIFFE ID (checked from its SVID). */
function clientAgent(who: { privateJwk: Ed25519PrivateJwk; svid: Pick<X509Svid, 'certificate'> } | null): HttpsAgent | undefined {
  const checkServerIdentity = (_host: string, cert: { subjectaltname?: string }) =>
    cert.subjectaltname === `URI:${serverAgent.spiffeId}` ? undefined : new Error(`unexpected server identity ${cert.subjectaltname}`)
  if (who === null) return undefined
  return createSvidHttpsAgent({ privateJwk: who.privateJwk, svid: who.svid, ca: bundleCa, agentOptions: { checkServerIdentity, keepAlive: false } })
}

/** GET / on the resource server; status and JSON body. */
function call(agent: HttpsAgent | undefined, extra: Record<string, unknown> = {}, path = '/invoices'): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${serverUrl}${path}`, {
      method: 'GET',
      ...(agent ? { agent } : { ca: bundleCa, checkServerIdentity: () => undefined, agent: false }),
      ...extra,
    }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => { text += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }))
    })
    req.on('error', reject)
    req.end()
  })
}

beforeAll(async () => {
  issuer = await startIssuer({ env: { AGENTID_TRUST_DOMAIN: TD } })
  apiKey = await orchestrator(issuer, 'fleet')
  const bundle = await fetchSpiffeBundle({ issuerUrl: issuer.url })
  const ca = (bundle.keys as { use: string; x5c?: string[] }[]).find((k) => k.use === 'x509-svid')!
  bundleCa = new X509Certificate(Buffer.from(ca.x5c![0]!, 'base64')).toString()
  verifier = createVerifier({
    trustedIssuers: [await issuerDid(issuer)],
    statusTtlMs: 200,
    statusGraceMs: 0,
    spiffe: { trustDomain: TD, bundleUrl: `${issuer.url}/v1/spiffe/bundle` },
  })
  // The resource server is an agent too: it serves with its own X.509-SVID (EKU serverAuth).
  serverAgent = await agentOf(issuer, await orchestrator(issuer, 'erp'), 'server')
  const mtls = agentidMtlsMiddleware(verifier)
  server = createServer({
    key: privateKeyFromJwk(serverAgent.privateJwk).export({ format: 'pem', type: 'pkcs8' }),
    cert: serverAgent.svid.certificate,
    requestCert: true,
    rejectUnauthorized: false, // the verifier decides, and answers with a code
    minVersion: 'TLSv1.3',
  }, (req, res) => {
    if (req.url === '/bound') {
      // RFC 8705: a Bearer token bound to the certificate of this TLS connection.
      const clientCertificate = (req.socket as unknown as { getPeerX509Certificate(): X509Certificate | undefined }).getPeerX509Certificate()
      verifier.verifyCertificateBoundRequest({ method: req.method!, url: `https://erp.e2e.test${req.url}`, headers: req.headersDistinct, clientCertificate }, { audience: RESOURCE })
        .then((v) => ({ status: 200, body: { agent: v.agent, thumbprint: v.certificateThumbprint } }), (e: VerificationError) => ({ status: 401, body: { error: { code: e.code } } }))
        .then(({ status, body }) => { res.statusCode = status; res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(body)) })
      return
    }
    mtls(req, res, () => {
      const verified = (req as typeof req & { agentidSvid: VerifiedSvidAgent }).agentidSvid
      seen.push(verified)
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ did: verified.agent.did, spiffeId: verified.spiffeId, purpose: verified.agent.claims.purpose }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  serverUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
  await verifier?.close?.()
  await cleanup()
})

describe('an agent spawned by the real issuer, over mutual TLS', () => {
  it('is authenticated by its X.509-SVID: DID, claims and SPIFFE ID', async () => {
    const alice = await agentOf(issuer, apiKey, 'alice')
    expect(alice.spiffeId).toBe(`spiffe://${TD}/agent/fleet/${alice.did.slice(8)}`)
    const r = await call(clientAgent(alice))
    expect(r.status, JSON.stringify(r.body)).toBe(200)
    expect(r.body).toEqual({ did: alice.did, spiffeId: alice.spiffeId, purpose: 'e2e-alice' })
    expect(seen.at(-1)!.certificateThumbprint).toBe(alice.svid.thumbprint)
  })

  it('is stopped by revocation: its next calls are refused within the status TTL, and it gets no new SVID', async () => {
    const bob = await agentOf(issuer, apiKey, 'bob')
    const agent = clientAgent(bob)
    expect((await call(agent)).status).toBe(200)
    const revoked = await api(issuer, 'POST', `/v1/agents/${bob.did}/revoke`, { key: issuer.adminKey, json: { reason: 'e2e' } })
    expect(revoked.status, revoked.text).toBe(200)
    const since = performance.now()
    let r = await call(agent)
    while (r.status === 200 && performance.now() - since < 10_000) {
      await sleep(50)
      r = await call(agent)
    }
    expect(r.status).toBe(403)
    expect(r.body.error.code).toBe('ERR_REVOKED')
    expect(performance.now() - since).toBeLessThan(2_000) // statusTtlMs 200 ms
    const again = await fetchX509Svid({ issuerUrl: issuer.url, privateJwk: bob.privateJwk }).then(() => null, (e: { code: string }) => e.code)
    expect(again).toBe('ERR_REVOKED')
    const jwt = await fetchJwtSvid({ issuerUrl: issuer.url, privateJwk: bob.privateJwk, audience: 'x' }).then(() => null, (e: { code: string }) => e.code)
    expect(jwt).toBe('ERR_REVOKED')
  })

  it('a JWT-SVID from the issuer verifies for its audience and not for another', async () => {
    const carol = await agentOf(issuer, apiKey, 'carol')
    const { token } = await fetchJwtSvid({ issuerUrl: issuer.url, privateJwk: carol.privateJwk, audience: 'spiffe://erp.example/api' })
    const ok = await verifier.verifyJwtSvid(token, { audience: 'spiffe://erp.example/api' })
    expect(ok.did).toBe(carol.did)
    expect(ok.spiffeId.id).toBe(carol.spiffeId)
    const other = await verifier.verifyJwtSvid(token, { audience: 'spiffe://billing.example/api' }).then(() => null, (e: VerificationError) => e.code)
    expect(other).toBe('ERR_AUDIENCE_MISMATCH')
  })
})

describe('hostile clients', () => {
  it('a client without a certificate is refused (401)', async () => {
    const r = await call(undefined)
    expect(r.status).toBe(401)
    expect(r.body.error.code).toBe('ERR_MALFORMED')
  })

  it('an SVID from another CA of the same trust domain (another issuer) is refused', async () => {
    const rogue = await startIssuer({ env: { AGENTID_TRUST_DOMAIN: TD } })
    const mallory = await agentOf(rogue, await orchestrator(rogue, 'fleet'), 'mallory')
    expect(mallory.spiffeId.startsWith(`spiffe://${TD}/agent/fleet/`)).toBe(true)
    const r = await call(clientAgent(mallory))
    expect(r.status).toBe(401)
    expect(r.body.error.code).toBe('ERR_UNTRUSTED_ISSUER')
    await rogue.stop()
  })

  it('an SVID of another trust domain is refused', async () => {
    const foreign = await startIssuer({ env: { AGENTID_TRUST_DOMAIN: 'evil.e2e.test' } })
    const eve = await agentOf(foreign, await orchestrator(foreign, 'fleet'), 'eve')
    const r = await call(clientAgent(eve))
    expect(r.status).toBe(401)
    expect(r.body.error.code).toBe('ERR_UNTRUSTED_ISSUER')
    await foreign.stop()
  })

  it('a certificate whose SPIFFE ID has a path trick, or a second URI SAN, is refused before any trust decision', async () => {
    const ca = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair
    const alg = { name: 'ECDSA', hash: 'SHA-256' }
    const caCert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01', name: 'CN=rogue', keys: ca, signingAlgorithm: alg,
      extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
    })
    const key = generateEd25519KeyPair()
    const pub = await webcrypto.subtle.importKey('jwk', { kty: 'OKP', crv: 'Ed25519', x: key.privateJwk.x }, { name: 'Ed25519' }, true, ['verify'])
    for (const uris of [[`spiffe://${TD}/agent/fleet/../admin`], [`spiffe://${TD}/agent/fleet/x`, `spiffe://${TD}/agent/admin/y`], [`spiffe://${TD.toUpperCase()}/agent/fleet/x`]]) {
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: '02', subject: 'CN=leaf', issuer: caCert.subject, publicKey: pub, signingKey: ca.privateKey, signingAlgorithm: alg,
        notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 600_000),
        extensions: [new x509.BasicConstraintsExtension(false, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.SubjectAlternativeNameExtension(uris.map((value) => ({ type: 'url' as const, value })))],
      })
      const r = await call(clientAgent({ privateJwk: key.privateJwk, svid: { certificate: leaf.toString('pem') } }))
      expect(r.status, uris.join(' ')).toBe(401)
      expect(r.body.error.code).toBe('ERR_MALFORMED')
    }
  })

  it('an expired SVID is refused (a verifier whose clock is past its notAfter)', async () => {
    const dave = await agentOf(issuer, apiKey, 'dave')
    const late = createVerifier({
      trustedIssuers: [await issuerDid(issuer)],
      clock: () => Date.parse(dave.svid.expiresAt) + 61_000,
      spiffe: { trustDomain: TD, bundle: await fetchSpiffeBundle({ issuerUrl: issuer.url }) },
    })
    const code = await late.verifyX509Svid(dave.svid.certificate).then(() => null, (e: VerificationError) => e.code)
    expect(code).toBe('ERR_EXPIRED')
    const now = createVerifier({ trustedIssuers: [await issuerDid(issuer)], spiffe: { trustDomain: TD, bundle: await fetchSpiffeBundle({ issuerUrl: issuer.url }) } })
    expect((await now.verifyX509Svid(dave.svid.certificate)).agent.did).toBe(dave.did)
  })

  it('an SVID presented with another key does not get through the TLS handshake', async () => {
    const erin = await agentOf(issuer, apiKey, 'erin')
    const stolen = { privateJwk: generateEd25519KeyPair().privateJwk, svid: erin.svid }
    await expect(call(clientAgent(stolen))).rejects.toThrow()
  })
})

describe('certificate-bound access tokens (RFC 8705)', () => {
  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } })

  it('a token bound to the agent\'s X.509-SVID works over mTLS with that certificate, and with no other', async () => {
    const alice = await agentOf(issuer, apiKey, 'alice-token')
    const bob = await agentOf(issuer, apiKey, 'bob-token')
    const token = await fetchCertificateBoundToken({ issuerUrl: issuer.url, privateJwk: alice.privateJwk, svid: alice.svid, resource: RESOURCE })
    expect(token.tokenType).toBe('Bearer')
    const cnf = JSON.parse(Buffer.from(token.accessToken.split('.')[1]!, 'base64url').toString()).cnf
    expect(cnf).toEqual({ 'x5t#S256': alice.svid.thumbprint })
    const ok = await call(clientAgent(alice), bearer(token.accessToken), '/bound')
    expect(ok.status, JSON.stringify(ok.body)).toBe(200)
    expect(ok.body.agent).toBe(alice.did)
    expect(ok.body.thumbprint).toBe(alice.svid.thumbprint)
    // Bob presents Alice's token on his own mTLS connection.
    const stolen = await call(clientAgent(bob), bearer(token.accessToken), '/bound')
    expect(stolen.status).toBe(401)
    expect(stolen.body.error.code).toBe('ERR_KEY_MISMATCH')
    // Without a client certificate at all.
    const bare = await call(undefined, bearer(token.accessToken), '/bound')
    expect(bare.body.error.code).toBe('ERR_KEY_MISMATCH')
  })

  it('the token endpoint binds only the caller\'s own SVID of this issuer', async () => {
    const alice = await agentOf(issuer, apiKey, 'alice-token2')
    const bob = await agentOf(issuer, apiKey, 'bob-token2')
    const refused = await fetchCertificateBoundToken({ issuerUrl: issuer.url, privateJwk: alice.privateJwk, svid: bob.svid, resource: RESOURCE }).then(() => null, (e: { error: string }) => e.error)
    expect(refused).toBe('invalid_client')
    const garbage = await fetchCertificateBoundToken({ issuerUrl: issuer.url, privateJwk: alice.privateJwk, svid: { certificate: 'not a certificate' }, resource: RESOURCE }).then(() => null, (e: { error: string }) => e.error)
    expect(garbage).toBe('invalid_request')
    const meta = await api(issuer, 'GET', '/.well-known/oauth-authorization-server')
    expect(meta.body.tls_client_certificate_bound_access_tokens).toBe(true)
  })
})

describe('rotation (startIdentityRotation)', () => {
  it('keeps credential and X.509-SVID fresh under load without a failed call, then stops on revocation', async () => {
    const spawned = await spawn({ issuerUrl: issuer.url, apiKey, claims: claims('rotor'), lifetimeSec: 60 })
    const rotations: string[] = []
    const errors: unknown[] = []
    let revokedSeen: unknown
    const identity = await startIdentityRotation({
      issuerUrl: issuer.url,
      privateJwk: spawned.privateJwk,
      credential: spawned,
      credentialLifetimeSec: 60,
      x509Svid: { lifetimeSec: 60 },
      serverCa: bundleCa,
      renewFraction: 0.05, // every ~3 s: a 60 s lifetime is the shortest the issuer grants
      retry: { initialMs: 100, maxMs: 500 },
      onRotate: (what) => rotations.push(what),
      onError: (_what, e) => errors.push(e),
      onRevoked: (e) => { revokedSeen = e },
    })
    const firstCredential = identity.credential()
    const checkServerIdentity = (_h: string, cert: { subjectaltname?: string }) => cert.subjectaltname === `URI:${serverAgent.spiffeId}` ? undefined : new Error('server')
    const before = seen.length
    let ok = 0
    let failed = 0
    const until = Date.now() + 8_000
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (Date.now() < until) {
        // Each call takes the agent current when it starts; a rotation meanwhile does not touch it.
        const r = await call(undefined, { agent: identity.httpsAgent(), checkServerIdentity }).catch(() => ({ status: 0, body: null }))
        if (r.status === 200 && r.body.did === spawned.did) ok++
        else failed++
      }
    }))
    expect(failed).toBe(0)
    expect(ok).toBeGreaterThan(20)
    expect(rotations.filter((w) => w === 'credential').length).toBeGreaterThanOrEqual(2)
    expect(identity.credential()).not.toBe(firstCredential)
    const thumbprints = new Set(seen.slice(before).map((v) => v.certificateThumbprint))
    expect(thumbprints.size).toBeGreaterThanOrEqual(2) // the server saw the SVID change under load
    expect(errors).toEqual([])
    // A JWT-SVID is reused until due, and a certificate-bound token comes with the agent that presents its certificate.
    const j1 = await identity.jwtSvid('spiffe://erp.example/api')
    expect(await identity.jwtSvid('spiffe://erp.example/api')).toBe(j1)
    const bound = await identity.certificateBound(RESOURCE)
    const r = await call(bound.agent, { headers: { authorization: `Bearer ${bound.accessToken}` }, checkServerIdentity }, '/bound')
    expect(r.status, JSON.stringify(r.body)).toBe(200)

    // Revocation: the next renewal is refused, everything stops and is reported.
    const lastAgent = identity.httpsAgent()
    const revokedAt = Date.now()
    expect((await api(issuer, 'POST', `/v1/agents/${spawned.did}/revoke`, { key: issuer.adminKey, json: { reason: 'rotation e2e' } })).status).toBe(200)
    const error = await identity.revoked
    expect(error.code).toBe('ERR_REVOKED')
    expect(revokedSeen).toBe(error)
    expect(Date.now() - revokedAt).toBeLessThan(10_000)
    expect(identity.state).toBe('revoked')
    expect(() => identity.httpsAgent()).toThrow(expect.objectContaining({ code: 'ERR_REVOKED' }))
    expect(() => identity.credential()).toThrow(expect.objectContaining({ code: 'ERR_REVOKED' }))
    await expect(identity.jwtSvid('x')).rejects.toMatchObject({ code: 'ERR_REVOKED' })
    void lastAgent
  }, 60_000)
})
