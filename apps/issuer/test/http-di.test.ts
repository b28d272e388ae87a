// Data Integrity credentials from the issuer (issue #6 item 2): `format: "di"` on spawn and renew
// gives a VC 2.0 agent identity credential with an eddsa-rdfc-2022 DataIntegrityProof by the issuer's
// did:key key; status lists are served DI-signed for Accept: application/vc+ld+json. Each is checked
// with @agentid/verifier and with plain @digitalbazaar/vc through the verifier's offline loader.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { decodeJwt, StatusList } from '@agentid/core'
import { createDocumentLoader, VerificationError } from '@agentid/verifier'
import { DataIntegrityProof } from '@digitalbazaar/data-integrity'
import { cryptosuite } from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite'
import * as vc from '@digitalbazaar/vc'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bearer, claims, counts, expectError, expectInvalid, harness, namedKey, proof, verifierFor, type Harness } from './http-fixtures.js'

const VC_V2 = 'https://www.w3.org/ns/credentials/v2'
const AGENTID_V1 = 'https://w3id.org/agentid/v1'

let h: Harness
beforeAll(async () => {
  h = await harness()
})
afterAll(async () => h.close())

interface DiSpawn {
  did: string; format: string; credential: Record<string, unknown>; credentialId: string; keyCustody: string
  status: { statusListCredential: string; statusListIndex: number }
}

/** Verifies with plain @digitalbazaar/vc and nothing of agentid's but the document loader. */
async function plainVerify(credential: unknown): Promise<vc.VerifyCredentialResult> {
  return vc.verifyCredential({
    credential,
    suite: new DataIntegrityProof({ cryptosuite }),
    documentLoader: createDocumentLoader() as vc.DocumentLoader,
    now: new Date(h.clock.now),
    checkStatus: async () => ({ verified: true }),
  })
}

async function spawnDi(custody: 'agent' | 'issuer'): Promise<DiSpawn> {
  const key = namedKey()
  const payload = custody === 'agent' ? { ...claims, did: key.did, proof: await proof(h, key), format: 'di' } : { ...claims, keyCustody: 'issuer', format: 'di' }
  const res = await h.app.inject({ method: 'POST', url: '/v1/agents', headers: bearer(h.orch.apiKey), payload })
  expect(res.statusCode, res.body).toBe(201)
  return res.json() as DiSpawn
}

describe('spawn with format "di"', () => {
  for (const custody of ['agent', 'issuer'] as const) {
    it(`keyCustody ${custody}: a VC 2.0 credential with an eddsa-rdfc-2022 proof that both verifiers accept`, async () => {
      const body = await spawnDi(custody)
      expect(body.format).toBe('di')
      expect(body.keyCustody).toBe(custody)
      const c = body.credential
      expect(typeof c).toBe('object')
      expect(c['@context']).toEqual([VC_V2, AGENTID_V1])
      expect(c.type).toEqual(['VerifiableCredential', 'AgentIdentityCredential'])
      expect(c.id).toBe(body.credentialId)
      expect(c.id).toMatch(/^urn:uuid:/)
      expect(c.issuer).toBe(h.issuerDid)
      expect(typeof c.validFrom).toBe('string')
      expect(typeof c.validUntil).toBe('string')
      expect(c.credentialSubject).toEqual({ id: body.did, ...claims })
      expect(c.credentialStatus).toMatchObject({ type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: String(body.status.statusListIndex), statusListCredential: body.status.statusListCredential })
      const p = c.proof as Record<string, unknown>
      expect(p).toMatchObject({ type: 'DataIntegrityProof', cryptosuite: 'eddsa-rdfc-2022', proofPurpose: 'assertionMethod', verificationMethod: `${h.issuerDid}#${h.issuerDid.slice('did:key:'.length)}` })

      const agent = await verifierFor(h).verifyAgentCredential(c)
      expect(agent.did).toBe(body.did)
      expect(agent.issuer).toBe(h.issuerDid)
      expect(agent.claims).toMatchObject(claims)
      // The same credential as JSON text.
      expect((await verifierFor(h).verifyAgentCredential(JSON.stringify(c))).did).toBe(body.did)

      const plain = await plainVerify(c)
      expect(plain.verified, String(plain.error)).toBe(true)
      // A changed claim breaks the proof for plain @digitalbazaar/vc too.
      const tampered = structuredClone(c)
      ;(tampered.credentialSubject as Record<string, unknown>).policyTier = 'admin'
      expect((await plainVerify(tampered)).verified).toBe(false)

      // Stored as format di, the JSON in the jwt column.
      const row = h.service.store.db.prepare('SELECT format, jwt FROM credentials WHERE id = ?').get(body.credentialId) as { format: string; jwt: string }
      expect(row.format).toBe('di')
      expect(JSON.parse(row.jwt)).toEqual(c)
      // The agent view reads the status-list URL from the stored credential.
      const view = await h.app.inject({ method: 'GET', url: `/v1/agents/${body.did}`, headers: bearer(h.orch.apiKey) })
      expect(view.json().credentials[0].statusListCredential).toBe(body.status.statusListCredential)
    })
  }

  it('the default stays a JWT (format "jwt" in the response)', async () => {
    const key = namedKey()
    const res = await h.app.inject({ method: 'POST', url: '/v1/agents', headers: bearer(h.orch.apiKey), payload: { ...claims, did: key.did, proof: await proof(h, key) } })
    expect(res.statusCode, res.body).toBe(201)
    expect(res.json().format).toBe('jwt')
    expect(typeof res.json().credential).toBe('string')
  })

  it('revocation: the DI credential is then refused with ERR_REVOKED', async () => {
    const body = await spawnDi('issuer')
    const res = await h.app.inject({ method: 'POST', url: `/v1/agents/${body.did}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'test' } })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json().revokedCredentials).toEqual([body.credentialId])
    const error = await verifierFor(h).verifyAgentCredential(body.credential).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(VerificationError)
    expect((error as VerificationError).code).toBe('ERR_REVOKED')
  })

  it('renew with format "di": a new DI credential for the same agent', async () => {
    const key = namedKey()
    const spawned = await h.app.inject({ method: 'POST', url: '/v1/agents', headers: bearer(h.orch.apiKey), payload: { ...claims, did: key.did, proof: await proof(h, key) } })
    expect(spawned.statusCode, spawned.body).toBe(201)
    const res = await h.app.inject({ method: 'POST', url: `/v1/agents/${key.did}/renew`, payload: { proof: await proof(h, key, { purpose: 'renew' }), format: 'di' } })
    expect(res.statusCode, res.body).toBe(201)
    const body = res.json() as DiSpawn
    expect(body.format).toBe('di')
    expect(body.credentialId).not.toBe(spawned.json().credentialId)
    expect((await verifierFor(h).verifyAgentCredential(body.credential)).did).toBe(key.did)
    expect((await plainVerify(body.credential)).verified).toBe(true)
  })
})

describe('status lists as Data Integrity credentials', () => {
  it('Accept: application/vc+ld+json gives the DI-signed list: plain @digitalbazaar/vc verifies it, same bits as the JWT', async () => {
    const body = await spawnDi('agent')
    await h.app.inject({ method: 'POST', url: `/v1/credentials/${body.credentialId}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'test' } })
    const url = body.status.statusListCredential.slice('http://issuer.test'.length)
    const jwtRes = await h.app.inject({ method: 'GET', url })
    expect(jwtRes.statusCode).toBe(200)
    expect(String(jwtRes.headers['content-type'])).toMatch(/^application\/vc\+jwt/)
    expect(jwtRes.headers.vary).toMatch(/Accept/i)
    for (const accept of ['application/vc+ld+json', 'application/ld+json', 'application/vc+jwt;q=0.5, application/vc+ld+json']) {
      const res = await h.app.inject({ method: 'GET', url, headers: { accept } })
      expect(res.statusCode, accept).toBe(200)
      expect(String(res.headers['content-type'])).toMatch(/^application\/(vc\+)?ld\+json/)
      expect(res.headers.vary).toMatch(/Accept/i)
      expect(res.headers.etag).not.toBe(jwtRes.headers.etag)
      const list = res.json() as Record<string, unknown>
      expect(list['@context']).toEqual([VC_V2])
      expect(list.type).toEqual(['VerifiableCredential', 'BitstringStatusListCredential'])
      expect(list.id).toBe(body.status.statusListCredential)
      expect(list.issuer).toBe(h.issuerDid)
      expect((list.proof as Record<string, unknown>).cryptosuite).toBe('eddsa-rdfc-2022')
      const plain = await plainVerify(list)
      expect(plain.verified, String(plain.error)).toBe(true)
      const di = StatusList.decode((list.credentialSubject as { encodedList: string }).encodedList)
      const jwt = StatusList.decode(((decodeJwt(jwtRes.body).payload.vc as { credentialSubject: { encodedList: string } }).credentialSubject).encodedList)
      expect(Buffer.from(di.bytes).equals(Buffer.from(jwt.bytes))).toBe(true)
      expect(di.get(body.status.statusListIndex)).toBe(1)
      // Its own ETag answers 304.
      const again = await h.app.inject({ method: 'GET', url, headers: { accept, 'if-none-match': String(res.headers.etag) } })
      expect(again.statusCode).toBe(304)
    }
    // The JWT ETag does not match the DI representation, and vice versa.
    const cross = await h.app.inject({ method: 'GET', url, headers: { accept: 'application/vc+ld+json', 'if-none-match': String(jwtRes.headers.etag) } })
    expect(cross.statusCode).toBe(200)
    // A client preferring the JWT gets the JWT.
    const pref = await h.app.inject({ method: 'GET', url, headers: { accept: 'application/vc+jwt, application/vc+ld+json;q=0.1' } })
    expect(String(pref.headers['content-type'])).toMatch(/^application\/vc\+jwt/)
  })
})

describe('hostile format values', () => {
  for (const [name, extra] of [
    ['format "ldp"', { format: 'ldp' }],
    ['format 42', { format: 42 }],
    ['format null', { format: null }],
    ['format "DI"', { format: 'DI' }],
  ] as const) {
    it(`${name} → 400 ERR_INVALID_INPUT, nothing written`, async () => {
      const before = counts(h)
      const res = await h.app.inject({ method: 'POST', url: '/v1/agents', headers: bearer(h.orch.apiKey), payload: { ...claims, keyCustody: 'issuer', ...extra } })
      expectInvalid(res, 'format')
      expect(counts(h)).toEqual(before)
    })
  }

  it('format with an unknown field → 400 ERR_INVALID_INPUT (spawn and renew)', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/v1/agents', headers: bearer(h.orch.apiKey), payload: { ...claims, keyCustody: 'issuer', format: 'di', proofFormat: 'lds' } })
    expectInvalid(res, 'proofFormat')
    const key = namedKey()
    const renew = await h.app.inject({ method: 'POST', url: `/v1/agents/${key.did}/renew`, payload: { proof: await proof(h, key, { purpose: 'renew' }), format: 'di', cryptosuite: 'ecdsa' } })
    expectInvalid(renew, 'cryptosuite')
    const badRenew = await h.app.inject({ method: 'POST', url: `/v1/agents/${key.did}/renew`, payload: { proof: await proof(h, key, { purpose: 'renew' }), format: 'ldp' } })
    expectInvalid(badRenew, 'format')
  })
})

describe('a did:web issuer', () => {
  let web: Harness
  beforeAll(async () => {
    web = await harness({ didWebDomain: 'issuer.example' })
  })
  afterAll(async () => web.close())

  it('refuses format "di" with ERR_INVALID_INPUT (Data Integrity is did:key only for now), writing nothing', async () => {
    const before = counts(web)
    const res = await web.app.inject({ method: 'POST', url: '/v1/agents', headers: bearer(web.orch.apiKey), payload: { ...claims, keyCustody: 'issuer', format: 'di' } })
    expectError(res, 400, 'ERR_INVALID_INPUT')
    expect(counts(web)).toEqual(before)
  })
})

describe('lazy JSON-LD in the issuer', () => {
  it('an issuer that issues JWTs loads no JSON-LD module; the first format "di" spawn does (built dist, child process)', () => {
    const dist = fileURLToPath(new URL('../dist/domain/service.js', import.meta.url))
    expect(existsSync(dist), 'the issuer is not built: run `npx tsc -b` first').toBe(true)
    const script = `
      import { createRequire } from 'node:module'
      import { mkdtempSync, rmSync } from 'node:fs'
      import { tmpdir } from 'node:os'
      import { join } from 'node:path'
      const { IssuerService } = await import(${JSON.stringify(pathToFileURL(dist).href)})
      const require = createRequire(import.meta.url)
      const dir = mkdtempSync(join(tmpdir(), 'agentid-issuer-lazy-'))
      const s = await IssuerService.open({ dataDir: dir, baseUrl: 'http://issuer.test' })
      const o = await s.addOrchestrator({ kind: 'admin' }, 'acme')
      const orch = { kind: 'orchestrator', id: o.id, name: 'acme' }
      const claims = ${JSON.stringify(claims)}
      const loaded = () => Object.keys(require.cache).filter((p) => /jsonld|rdf-canonize|@digitalbazaar/.test(p)).length
      const jwt = await s.spawn(orch, { ...claims, keyCustody: 'issuer' })
      const afterJwt = loaded()
      const di = await s.spawn(orch, { ...claims, keyCustody: 'issuer', format: 'di' })
      const afterDi = loaded()
      await s.close()
      rmSync(dir, { recursive: true, force: true })
      process.stdout.write(JSON.stringify({ jwt: jwt.format, di: di.format, afterJwt, afterDi }))
    `
    const work = mkdtempSync(join(tmpdir(), 'agentid-issuer-lazy-script-'))
    const file = join(work, 'child.mjs')
    writeFileSync(file, script)
    const run = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 })
    rmSync(work, { recursive: true, force: true })
    expect(run.status, run.stderr).toBe(0)
    const out = JSON.parse(run.stdout) as { jwt: string; di: string; afterJwt: number; afterDi: number }
    expect(out).toMatchObject({ jwt: 'jwt', di: 'di', afterJwt: 0 })
    expect(out.afterDi).toBeGreaterThan(0)
  })
})
