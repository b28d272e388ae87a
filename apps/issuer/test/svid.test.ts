// SVIDs from the issuer: the SPIFFE bundle, X.509-SVIDs for the agent's own key, JWT-SVIDs, their
// proofs of possession, revocation, and the CA key sealed at rest.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { X509Certificate } from 'node:crypto'
import { AsnConvert } from '@peculiar/asn1-schema'
import { Certificate } from '@peculiar/asn1-x509'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { decodeDidKey, rawPublicKey } from '@agentid/core'
import { parseSpiffeBundle, verifyJwtSvid, verifyX509SvidChain } from '@agentid/verifier'
import { IssuerService } from '../src/domain/service.js'
import { buildServer } from '../src/http/server.js'
import { createCryptoBox } from '../src/crypto-box.js'
import { loadMasterSecret } from '../src/secret.js'
import { SVID_CA_BOX_INFO } from '../src/svid/authority.js'
import { BASE_URL, bearer, claims, counts, expectError, expectInvalid, harness, namedKey, proof, spawnAgent, type Harness, type NamedKey } from './http-fixtures.js'

const TD = 'agents.example.org'
let h: Harness
beforeAll(async () => { h = await harness({ trustDomain: TD }) })
afterAll(async () => { await h.close() })
const nowSec = () => Math.floor(h.clock.now / 1000)

async function bundleOf(hh: Harness = h) {
  const res = await hh.app.inject({ method: 'GET', url: '/v1/spiffe/bundle' })
  expect(res.statusCode).toBe(200)
  return parseSpiffeBundle(res.body, TD)
}

async function x509For(key: NamedKey, body: Record<string, unknown> = {}, hh: Harness = h) {
  return hh.app.inject({ method: 'POST', url: `/v1/agents/${key.did}/svids/x509`, payload: { proof: await proof(hh, key, { purpose: 'svid' }), ...body } })
}
async function jwtFor(key: NamedKey, body: Record<string, unknown> = { audience: 'spiffe://erp.example/api' }) {
  return h.app.inject({ method: 'POST', url: `/v1/agents/${key.did}/svids/jwt`, payload: { proof: await proof(h, key, { purpose: 'svid' }), ...body } })
}

describe('GET /v1/spiffe/bundle', () => {
  it('is a SPIFFE bundle: an x509-svid CA certificate and a jwt-svid key, the same after a restart', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/v1/spiffe/bundle' })
    const doc = res.json()
    expect(res.headers['cache-control']).toBe('public, max-age=300')
    expect(doc.spiffe_refresh_hint).toBe(300)
    expect(doc.keys.map((k: { use: string }) => k.use)).toEqual(['x509-svid', 'jwt-svid'])
    const ca = new X509Certificate(Buffer.from(doc.keys[0].x5c[0], 'base64'))
    expect(ca.ca).toBe(true)
    expect(ca.subjectAltName).toBe(`URI:spiffe://${TD}`)
    expect(doc.keys[1]).toMatchObject({ kty: 'EC', crv: 'P-256', kid: expect.any(String) })
    expect(doc.keys[1].d).toBeUndefined()
    const bundle = parseSpiffeBundle(doc, TD)
    expect(bundle.x509Authorities).toHaveLength(1)
    expect(bundle.jwtAuthorities.size).toBe(1)
  })

  it('does not exist without a trust domain', async () => {
    const plain = await harness()
    try {
      expectError(await plain.app.inject({ method: 'GET', url: '/v1/spiffe/bundle' }), 404, 'ERR_NOT_FOUND')
      const alice = namedKey()
      await spawnAgent(plain, alice)
      expectError(await x509For(alice, {}, plain), 404, 'ERR_NOT_FOUND')
    } finally {
      await plain.close()
    }
  })
})

describe('POST /v1/agents/:did/svids/x509', () => {
  it("certifies the agent's own key for its SPIFFE ID, carrying its credential, short-lived", async () => {
    const alice = namedKey()
    const spawned = await spawnAgent(h, alice) as unknown as { spiffeId: string; credential: string }
    const res = await x509For(alice)
    expect(res.statusCode, res.body).toBe(201)
    const body = res.json()
    expect(body.spiffeId).toBe(spawned.spiffeId)
    const svid = verifyX509SvidChain(body.certificate, await bundleOf(), { now: nowSec() })
    expect(svid.spiffeId.id).toBe(spawned.spiffeId)
    expect(svid.credential).toBe(spawned.credential)
    expect(svid.thumbprint).toBe(body.thumbprint)
    expect(Buffer.from(rawPublicKey(svid.publicKey)).equals(Buffer.from(decodeDidKey(alice.did).publicKey))).toBe(true)
    expect(svid.notAfter).toBe(nowSec() + 900)
    expect(svid.notAfter - svid.notBefore).toBeLessThanOrEqual(930)
    expect(Date.parse(body.expiresAt) / 1000).toBe(svid.notAfter)
    expect(svid.leaf.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.2']))
    // Every extension OID arc fits 31 bits: Go's crypto/x509 (go-spiffe, SPIRE) refuses the whole
    // certificate otherwise ("malformed extension OID field"); the first credential OID (2.25.<UUID>) did not.
    const ids = AsnConvert.parse(svid.leaf.raw, Certificate).tbsCertificate.extensions!.map((e) => e.extnID)
    expect(ids).toContain('1.3.6.1.4.1.32473.1.1')
    for (const id of ids) for (const arc of id.split('.')) expect(/^[0-9]+$/.test(arc) && Number(arc) < 2 ** 31, id).toBe(true)
  })

  it('ends no later than the identity credential, and at most 3,600 s', async () => {
    const bob = namedKey()
    await spawnAgent(h, bob, { lifetimeSec: 300 })
    const res = await x509For(bob, { lifetimeSec: 3600 })
    expect(res.statusCode, res.body).toBe(201)
    expect(Date.parse(res.json().expiresAt) / 1000).toBe(nowSec() + 300)
    expectInvalid(await x509For(bob, { lifetimeSec: 3601 }), 'lifetimeSec')
    expectInvalid(await x509For(bob, { lifetimeSec: 59 }), 'lifetimeSec')
    expectInvalid(await x509For(bob, { csr: 'x' }), 'csr')
  })

  it('needs a fresh proof of possession of purpose svid by the agent itself', async () => {
    const alice = namedKey()
    const mallory = namedKey()
    await spawnAgent(h, alice)
    await spawnAgent(h, mallory)
    const url = `/v1/agents/${alice.did}/svids/x509`
    expectInvalid(await h.app.inject({ method: 'POST', url, payload: {} }), 'proof')
    expectError(await h.app.inject({ method: 'POST', url, payload: { proof: await proof(h, alice, { purpose: 'renew' }) } }), 400, 'ERR_MALFORMED')
    expectError(await h.app.inject({ method: 'POST', url, payload: { proof: await proof(h, mallory, { purpose: 'svid' }) } }), 401, 'ERR_KEY_MISMATCH')
    expectError(await h.app.inject({ method: 'POST', url, payload: { proof: await proof(h, alice, { purpose: 'svid', audience: 'did:key:z6Mkother' }) } }), 401, 'ERR_AUDIENCE_MISMATCH')
    const once = await proof(h, alice, { purpose: 'svid' })
    expect((await h.app.inject({ method: 'POST', url, payload: { proof: once } })).statusCode).toBe(201)
    expectError(await h.app.inject({ method: 'POST', url, payload: { proof: once } }), 409, 'ERR_REPLAY')
    expectInvalid(await h.app.inject({ method: 'POST', url: '/v1/agents/not-a-did/svids/x509', payload: { proof: once } }), 'did')
    const stranger = namedKey()
    expectError(await x509For(stranger), 404, 'ERR_NOT_FOUND')
  })

  it('is refused once the agent is revoked, writing nothing', async () => {
    const carol = namedKey()
    await spawnAgent(h, carol)
    expect((await x509For(carol)).statusCode).toBe(201)
    await h.app.inject({ method: 'POST', url: `/v1/agents/${carol.did}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'done' } })
    const before = counts(h)
    expectError(await x509For(carol), 403, 'ERR_REVOKED')
    expectError(await jwtFor(carol), 403, 'ERR_REVOKED')
    expect(counts(h)).toEqual(before)
  })
})

describe('POST /v1/agents/:did/svids/jwt', () => {
  it('signs an ES256 JWT-SVID for the audiences asked, at most 300 s', async () => {
    const alice = namedKey()
    const spawned = await spawnAgent(h, alice) as unknown as { spiffeId: string }
    const res = await jwtFor(alice, { audience: ['spiffe://erp.example/api', 'https://erp.example'] })
    expect(res.statusCode, res.body).toBe(201)
    const body = res.json()
    const header = JSON.parse(Buffer.from(body.token.split('.')[0], 'base64url').toString())
    expect(header).toEqual({ alg: 'ES256', kid: expect.any(String), typ: 'JWT' })
    const verified = verifyJwtSvid(body.token, await bundleOf(), { audience: 'https://erp.example', now: nowSec() })
    expect(verified.spiffeId.id).toBe(spawned.spiffeId)
    expect(verified.did).toBe(alice.did)
    expect(verified.expiresAt - nowSec()).toBe(300)
    const short = (await jwtFor(alice, { audience: 'x', lifetimeSec: 30 })).json()
    expect(Date.parse(short.expiresAt) / 1000 - nowSec()).toBe(30)
  })

  it('requires an audience and refuses a longer lifetime', async () => {
    const alice = namedKey()
    await spawnAgent(h, alice)
    expectInvalid(await jwtFor(alice, {}), 'audience')
    expectInvalid(await jwtFor(alice, { audience: [] }), 'audience')
    expectInvalid(await jwtFor(alice, { audience: ['a', 'a'] }), 'audience')
    expectInvalid(await jwtFor(alice, { audience: 'a b' }), 'audience')
    expectInvalid(await jwtFor(alice, { audience: Array.from({ length: 9 }, (_, i) => `a${i}`) }), 'audience')
    expectInvalid(await jwtFor(alice, { audience: 'a', lifetimeSec: 301 }), 'lifetimeSec')
  })
})

describe('the SVID CA at rest', () => {
  it('is sealed, keeps across restarts, and an agent spawned before the trust domain gets no SVID', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentid-svid-'))
    try {
      const first = await IssuerService.open({ dataDir: dir, baseUrl: BASE_URL })
      await first.ensureAdminKey()
      const orch = await first.addOrchestrator({ kind: 'admin' }, 'acme')
      const early = namedKey()
      const hh = { app: buildServer(first, { logger: false }), issuerDid: first.issuer.did, clock: { now: Date.now() } } as unknown as Harness
      const spawn = await hh.app.inject({ method: 'POST', url: '/v1/agents', headers: bearer(orch.apiKey), payload: { ...claims, proof: await proof(hh, early) } })
      expect(spawn.statusCode).toBe(201)
      await hh.app.close()
      await first.close()

      const open = async () => {
        const service = await IssuerService.open({ dataDir: dir, baseUrl: BASE_URL, trustDomain: TD })
        const app = buildServer(service, { logger: false })
        return { service, app, h: { app, issuerDid: service.issuer.did, clock: { now: Date.now() } } as unknown as Harness }
      }
      const a = await open()
      const bundleA = (await a.app.inject({ method: 'GET', url: '/v1/spiffe/bundle' })).body
      expectError(await x509For(early, {}, a.h), 409, 'ERR_CONFLICT')
      const row = a.service.store.db.prepare('SELECT key_sealed, cert_der FROM svid_authorities').get() as { key_sealed: Buffer; cert_der: Buffer }
      const id = (a.service.store.db.prepare('SELECT id FROM svid_authorities').get() as { id: string }).id
      expect(row.key_sealed[0]).toBe(0x01) // the crypto box's version byte, then nonce, ciphertext, tag
      expect(row.key_sealed.includes(Buffer.from('308187020100', 'hex'))).toBe(false) // no PKCS#8 P-256 header in clear
      const b = await (async () => { await a.app.close(); await a.service.close(); return open() })()
      expect((await b.app.inject({ method: 'GET', url: '/v1/spiffe/bundle' })).body).toBe(bundleA)
      await b.app.close()
      await b.service.close()
      // The row opens only with the master secret and its own id as AAD.
      const sealed = row as unknown as { key_sealed: Buffer }
      const box = createCryptoBox(loadMasterSecret({ dataDir: dir }).key, SVID_CA_BOX_INFO)
      expect(box.open(sealed.key_sealed, `svid-ca:${id}`).subarray(0, 3)).toEqual(Buffer.from('308187', 'hex'))
      const sealedError = { code: 'ERR_INTERNAL', details: { reason: 'ciphertext_invalid' } }
      expect(() => box.open(sealed.key_sealed, 'svid-ca:other')).toThrow(expect.objectContaining(sealedError))
      expect(() => createCryptoBox(Buffer.alloc(32, 7), SVID_CA_BOX_INFO).open(sealed.key_sealed, `svid-ca:${id}`)).toThrow(expect.objectContaining(sealedError))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
