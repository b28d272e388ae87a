import { createPublicKey, randomBytes, randomUUID } from 'node:crypto'
import { join } from 'node:path'
import type { Database } from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  AGENT_IDENTITY_CREDENTIAL,
  AGENTID_CONTEXT_V1,
  decodeDidKey,
  decodeJwt,
  generateEd25519KeyPair,
  publicKeyFromRaw,
  VC_CONTEXT_V1,
  verifyJwsSignature,
} from '@agentid/core'
import { openDatabase } from '../src/db/open.js'
import { createIssuerEngine, veramoIssueCredential, veramoVerifyCredential, type IssuerEngine, type JwtCredentialInput } from '../src/veramo/engine.js'
import { expectAgentIdError, tempDir } from './engine-helpers.js'

const BASE_URL = 'https://issuer.example'
const alice = generateEd25519KeyPair()

function credential(overrides: Partial<JwtCredentialInput> = {}): JwtCredentialInput {
  const now = Date.now()
  return {
    '@context': [VC_CONTEXT_V1, AGENTID_CONTEXT_V1],
    type: ['VerifiableCredential', AGENT_IDENTITY_CREDENTIAL],
    id: `urn:uuid:${randomUUID()}`,
    credentialSubject: {
      id: alice.did,
      purpose: 'triage support tickets',
      controller: 'orchestrator:support',
      model: { name: 'm', version: '1' },
      toolProfile: ['crm.read'],
      policyTier: 'standard',
      dataAccessClass: 'internal',
    },
    credentialStatus: {
      id: `${BASE_URL}/v1/status-lists/1#7`,
      type: 'BitstringStatusListEntry',
      statusPurpose: 'revocation',
      statusListIndex: '7',
      statusListCredential: `${BASE_URL}/v1/status-lists/1`,
    },
    issuanceDate: new Date(Math.floor(now / 1000) * 1000 - 1000).toISOString(),
    expirationDate: new Date(Math.floor(now / 1000) * 1000 + 3_600_000).toISOString(),
    ...overrides,
  }
}

let dir: string
let cleanup: () => void
let file: string
let db: Database
let secret: Buffer
const engines: IssuerEngine[] = []

async function engineOn(database: Database, options: { didWebDomain?: string; secret?: Uint8Array } = {}): Promise<IssuerEngine> {
  const engine = await createIssuerEngine({ db: database, secret: options.secret ?? secret, baseUrl: `${BASE_URL}/`, ...(options.didWebDomain ? { didWebDomain: options.didWebDomain } : {}) })
  engines.push(engine)
  return engine
}

beforeEach(() => {
  ;({ dir, cleanup } = tempDir())
  file = join(dir, 'issuer.db')
  db = openDatabase(file)
  secret = randomBytes(32)
})
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.close()
  if (db.open) db.close()
  cleanup()
})

describe('createIssuerEngine (did:key)', () => {
  it('creates the issuer once and finds the same one after a restart on the same file', async () => {
    const first = await engineOn(db)
    expect(first.issuer.did).toMatch(/^did:key:z6Mk/)
    expect(first.issuer.keyId).toBe(`${first.issuer.did}#${first.issuer.did.slice('did:key:'.length)}`)
    expect(first.baseUrl).toBe(BASE_URL)
    expect(first.didDocument()).toBeNull()
    const jwtBefore = await first.issueJwtCredential(credential())
    await first.close()
    db.close()

    db = openDatabase(file)
    const second = await engineOn(db)
    expect(second.issuer).toEqual(first.issuer)
    expect(db.prepare("SELECT count(*) FROM identifiers WHERE alias = 'issuer'").pluck().get()).toBe(1)
    expect(db.prepare('SELECT count(*) FROM private_keys').pluck().get()).toBe(1)
    // Both engines sign with the same key.
    const key = publicKeyFromRaw(decodeDidKey(second.issuer.did).publicKey)
    verifyJwsSignature(decodeJwt(jwtBefore), key)
    verifyJwsSignature(decodeJwt(await second.issueJwtCredential(credential())), key)
  })

  it('issues a JWT VC that verifies with plain node:crypto through @agentid/core', async () => {
    const engine = await engineOn(db)
    const input = credential()
    const jwt = await engine.issueJwtCredential(input)
    const decoded = decodeJwt(jwt)
    expect(decoded.header).toEqual({ alg: 'EdDSA', typ: 'JWT', kid: engine.issuer.keyId })
    const iss = decoded.payload.iss as string
    expect(iss).toBe(engine.issuer.did)
    verifyJwsSignature(decoded, publicKeyFromRaw(decodeDidKey(iss).publicKey))

    const { credentialSubject, credentialStatus } = input
    const { id: _subjectId, ...claims } = credentialSubject
    expect(decoded.payload).toEqual({
      iss,
      sub: alice.did,
      jti: input.id,
      nbf: Date.parse(input.issuanceDate!) / 1000,
      exp: Date.parse(input.expirationDate!) / 1000,
      vc: { '@context': input['@context'], type: input.type, credentialSubject: claims, credentialStatus },
    })

    const tampered = `${jwt.slice(0, jwt.lastIndexOf('.') + 1)}${Buffer.alloc(64).toString('base64url')}`
    expect(() => verifyJwsSignature(decodeJwt(tampered), publicKeyFromRaw(decodeDidKey(iss).publicKey))).toThrow()
  })

  it("issues credentials that Veramo's own verifyCredential accepts, and rejects a forged one", async () => {
    const engine = await engineOn(db)
    const jwt = await engine.issueJwtCredential(credential())
    expect(await veramoVerifyCredential(engine, jwt)).toEqual({ verified: true })
    const [h, p] = jwt.split('.')
    const forged = `${h}.${p}.${Buffer.alloc(64, 1).toString('base64url')}`
    expect((await veramoVerifyCredential(engine, forged)).verified).toBe(false)
  })

  it("issues byte for byte the JWT that Veramo's createVerifiableCredential issues, for every shape of input it accepts", async () => {
    for (const engine of [await engineOn(db), await engineOn(openDatabase(join(dir, 'web.db')), { didWebDomain: 'issuer.example:8443' })]) {
      const { issuanceDate, expirationDate, credentialStatus: _status, ...rest } = credential()
      const inputs: JwtCredentialInput[] = [
        credential(),
        { ...rest, issuanceDate: issuanceDate! }, // no status, no expiry
        { ...rest, validFrom: issuanceDate!, validUntil: expirationDate! },
        credential({ issuanceDate: '2026-03-01T10:00:00.999Z', expirationDate: '2026-03-01T11:00:00.001+02:00' }), // fractions of seconds, offsets
        credential({ issuanceDate: '1970-01-01T00:00:00Z', expirationDate: '1969-12-31T23:59:59.500Z' }), // nbf 0, negative exp
        credential({ '@context': [VC_CONTEXT_V1, AGENTID_CONTEXT_V1, VC_CONTEXT_V1, AGENTID_CONTEXT_V1], type: ['VerifiableCredential', 'VerifiableCredential', AGENT_IDENTITY_CREDENTIAL] }),
        credential({ credentialSubject: { id: 'urn:agentid:approver:1', name: 'Zoë \u2028 "quoted" \\ 😀', nested: { list: [1, 2.5, -0, null, true, { a: [] }], empty: {} }, skipped: undefined } }),
        credential({ credentialSubject: { model: { name: 'm' }, id: alice.did } }), // id not first
        credential({ credentialStatus: { type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: '0', statusListCredential: `${BASE_URL}/v1/status-lists/9` } }),
      ]
      for (const input of inputs) expect(await engine.issueJwtCredential(input)).toBe(await veramoIssueCredential(engine, input))
    }
  })

  it('refuses members its encoding does not cover (Veramo would move or keep them)', async () => {
    const engine = await engineOn(db)
    for (const extra of [{ evidence: [{ id: 'x' }] }, { credentialSchema: { id: 'x', type: 'y' } }, { name: 'n' }, { nbf: 1 }, { sub: alice.did }]) {
      await expect(engine.issueJwtCredential({ ...credential(), ...extra } as JwtCredentialInput)).rejects.toThrow(TypeError)
    }
    await expect(engine.issueJwtCredential(credential({ expirationDate: '+275760-09-13T00:00:00.000Z' }))).rejects.toThrow(TypeError)
  })

  it('maps VC 2.0 validFrom/validUntil onto nbf/exp', async () => {
    const engine = await engineOn(db)
    const { issuanceDate, expirationDate, ...rest } = credential()
    const jwt = await engine.issueJwtCredential({ ...rest, validFrom: issuanceDate!, validUntil: expirationDate! })
    const { payload } = decodeJwt(jwt)
    expect(payload.nbf).toBe(Date.parse(issuanceDate!) / 1000)
    expect(payload.exp).toBe(Date.parse(expirationDate!) / 1000)
    expect(payload.vc).not.toHaveProperty('validFrom')
  })

  it('signs JWTs with the issuer key (alg fixed to EdDSA, kid the issuer key)', async () => {
    const engine = await engineOn(db)
    const jwt = await engine.signJwt({ typ: 'vc+jwt' }, { iss: engine.issuer.did, sub: `${BASE_URL}/v1/status-lists/1`, n: 1 })
    const decoded = decodeJwt(jwt)
    expect(decoded.header).toEqual({ alg: 'EdDSA', kid: engine.issuer.keyId, typ: 'vc+jwt' })
    expect(decoded.payload).toEqual({ iss: engine.issuer.did, sub: `${BASE_URL}/v1/status-lists/1`, n: 1 })
    verifyJwsSignature(decoded, publicKeyFromRaw(decodeDidKey(engine.issuer.did).publicKey))
    await expect(engine.signJwt({ alg: 'none' as 'EdDSA' }, {})).rejects.toThrow(TypeError)
  })

  it('refuses malformed credentials as programming errors', async () => {
    const engine = await engineOn(db)
    const bad: Array<Partial<JwtCredentialInput> & Record<string, unknown>> = [
      { credentialSubject: { id: alice.did } }, // did-jwt-vc refuses an id-only subject
      { '@context': [AGENTID_CONTEXT_V1] },
      { type: ['AgentIdentityCredential'] },
      { id: '' },
      { issuanceDate: 'yesterday' },
      { issuanceDate: undefined },
      { issuer: 'did:key:someone-else' },
    ]
    for (const overrides of bad) await expect(engine.issueJwtCredential(credential(overrides))).rejects.toThrow(TypeError)
  })

  it('fails at startup with the wrong master secret', async () => {
    await (await engineOn(db)).close()
    await expectAgentIdError(() => engineOn(db, { secret: randomBytes(32) }), 'ERR_INTERNAL', 'secret_mismatch')
  })

  it('refuses to switch the issuer of an existing database', async () => {
    await engineOn(db)
    await expectAgentIdError(() => engineOn(db, { didWebDomain: 'issuer.example' }), 'ERR_CONFLICT', 'issuer_mismatch')
  })

  it('stops signing once closed', async () => {
    const engine = await engineOn(db)
    await engine.close()
    await expectAgentIdError(() => engine.signJwt({}, {}), 'ERR_INTERNAL', 'engine_closed')
    await expectAgentIdError(() => engine.issueJwtCredential(credential()), 'ERR_INTERNAL', 'engine_closed')
  })

  it('validates its options', async () => {
    await expect(createIssuerEngine({ db, secret: randomBytes(16), baseUrl: BASE_URL })).rejects.toThrow(TypeError)
    await expect(createIssuerEngine({ db, secret, baseUrl: 'issuer.example' })).rejects.toThrow(TypeError)
    await expect(createIssuerEngine({ db, secret, baseUrl: BASE_URL, didWebDomain: 'https://issuer.example' })).rejects.toThrow(TypeError)
  })
})

describe('createIssuerEngine (did:web)', () => {
  it('runs as did:web:<domain> with a DID document whose key verifies the signatures', async () => {
    const engine = await engineOn(db, { didWebDomain: 'Issuer.Example' })
    expect(engine.issuer.did).toBe('did:web:issuer.example')
    const doc = engine.didDocument()!
    expect(doc.id).toBe(engine.issuer.did)
    expect(doc.assertionMethod).toEqual([engine.issuer.keyId])
    const method = doc.verificationMethod.find((m) => m.id === engine.issuer.keyId)!
    expect(method).toMatchObject({ type: 'JsonWebKey2020', controller: engine.issuer.did, publicKeyJwk: { kty: 'OKP', crv: 'Ed25519' } })
    expect(method.publicKeyJwk).not.toHaveProperty('d')
    const key = createPublicKey({ key: { ...method.publicKeyJwk }, format: 'jwk' })

    const jwt = await engine.issueJwtCredential(credential())
    const decoded = decodeJwt(jwt)
    expect(decoded.header.kid).toBe(engine.issuer.keyId)
    expect(decoded.payload.iss).toBe('did:web:issuer.example')
    verifyJwsSignature(decoded, key)
    verifyJwsSignature(decodeJwt(await engine.signJwt({}, { a: 1 })), key)
    // Veramo resolves our did:web offline, from the engine.
    expect(await veramoVerifyCredential(engine, jwt)).toEqual({ verified: true })

    // didDocument() hands out copies.
    doc.verificationMethod.length = 0
    expect(engine.didDocument()!.verificationMethod).toHaveLength(1)
  })

  it('keeps the did:web issuer and key across restarts; a port is percent-encoded', async () => {
    const first = await engineOn(db, { didWebDomain: 'localhost:8443' })
    expect(first.issuer.did).toBe('did:web:localhost%3A8443')
    await first.close()
    db.close()
    db = openDatabase(file)
    const second = await engineOn(db, { didWebDomain: 'localhost:8443' })
    expect(second.issuer).toEqual(first.issuer)
    expect(second.didDocument()).toEqual(first.didDocument())
    await expectAgentIdError(() => engineOn(db, { didWebDomain: 'other.example' }), 'ERR_CONFLICT', 'issuer_mismatch')
    await expectAgentIdError(() => engineOn(db), 'ERR_CONFLICT', 'issuer_mismatch')
  })
})
