import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto'
import { join } from 'node:path'
import type { Database } from 'better-sqlite3'
import { createAgent, type IDIDManager, type IKeyManager } from '@veramo/core'
import { DIDManager } from '@veramo/did-manager'
import { KeyDIDProvider } from '@veramo/did-provider-key'
import { KeyManager } from '@veramo/key-manager'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { base64urlDecode, ed25519Backend, publicKeyFromRaw } from '@agentid/core'
import { openDatabase } from '../src/db/open.js'
import { createCryptoBox } from '../src/crypto-box.js'
import { SqliteDIDStore } from '../src/veramo/sqlite-did-store.js'
import { SqliteKeyStore } from '../src/veramo/sqlite-key-store.js'
import { SqlitePrivateKeyStore } from '../src/veramo/sqlite-private-key-store.js'
import { NodeEd25519KMS } from '../src/veramo/node-kms.js'
import { expectAgentIdError, tempDir } from './engine-helpers.js'

const secret = randomBytes(32)

/** A fresh Ed25519 key as Veramo's privateKeyHex (seed ‖ public key) and its public key hex. */
function ed25519Hex(): { privateKeyHex: string; seedHex: string; publicKeyHex: string } {
  const jwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }) as { d: string; x: string }
  const seedHex = Buffer.from(jwk.d, 'base64url').toString('hex')
  const publicKeyHex = Buffer.from(jwk.x, 'base64url').toString('hex')
  return { privateKeyHex: seedHex + publicKeyHex, seedHex, publicKeyHex }
}

function verifies(publicKeyHex: string, data: Uint8Array, signatureB64url: string): boolean {
  return cryptoVerify(null, data, publicKeyFromRaw(Buffer.from(publicKeyHex, 'hex')), base64urlDecode(signatureB64url))
}

let dir: string
let cleanup: () => void
let db: Database
beforeEach(() => {
  ;({ dir, cleanup } = tempDir())
  db = openDatabase(join(dir, 'issuer.db'))
})
afterEach(() => {
  db.close()
  cleanup()
})

describe('SqliteKeyStore', () => {
  it('imports, gets, lists and deletes keys, never storing private material', async () => {
    const store = new SqliteKeyStore(db)
    const { publicKeyHex, privateKeyHex } = ed25519Hex()
    await store.importKey({ kid: 'k1', kms: 'local', type: 'Ed25519', publicKeyHex, privateKeyHex, meta: { algorithms: ['EdDSA'] } })
    await store.importKey({ kid: 'k2', kms: 'local', type: 'Ed25519', publicKeyHex })
    expect(await store.getKey({ kid: 'k1' })).toEqual({ kid: 'k1', kms: 'local', type: 'Ed25519', publicKeyHex, meta: { algorithms: ['EdDSA'] } })
    expect((await store.listKeys({})).map((k) => k.kid)).toEqual(['k1', 'k2'])
    const dump = JSON.stringify(db.prepare('SELECT * FROM keys').all())
    expect(dump).not.toContain(privateKeyHex.slice(0, 64))

    expect(await store.deleteKey({ kid: 'k1' })).toBe(true)
    await expectAgentIdError(() => store.getKey({ kid: 'k1' }), 'ERR_NOT_FOUND')
    await expectAgentIdError(() => store.deleteKey({ kid: 'k1' }), 'ERR_NOT_FOUND')
  })
})

describe('SqliteDIDStore', () => {
  it('imports, gets by DID and alias, lists with filters, and deletes identifiers', async () => {
    const keys = new SqliteKeyStore(db)
    const store = new SqliteDIDStore(db, () => 1_700_000_000)
    const a = ed25519Hex()
    await keys.importKey({ kid: 'ka', kms: 'local', type: 'Ed25519', publicKeyHex: a.publicKeyHex })
    const alice = {
      did: 'did:key:alice',
      provider: 'did:key',
      alias: 'alice',
      controllerKeyId: 'ka',
      keys: [{ kid: 'ka', kms: 'local', type: 'Ed25519' as const, publicKeyHex: a.publicKeyHex, meta: { algorithms: ['EdDSA'] } }],
      services: [{ id: 'did:key:alice#svc', type: 'LinkedDomains', serviceEndpoint: 'https://alice.example' }],
    }
    const bob = { did: 'did:web:bob.example', provider: 'did:web', keys: [], services: [] }
    expect(await store.importDID(alice)).toBe(true)
    await store.importDID(bob)

    expect(await store.getDID({ did: 'did:key:alice' })).toEqual(alice)
    expect(await store.getDID({ alias: 'alice' })).toEqual(alice)
    expect(db.prepare("SELECT identifier_did FROM keys WHERE kid = 'ka'").pluck().get()).toBe('did:key:alice')
    expect((await store.listDIDs({})).map((i) => i.did)).toEqual(['did:key:alice', 'did:web:bob.example'])
    expect((await store.listDIDs({ provider: 'did:web' })).map((i) => i.did)).toEqual(['did:web:bob.example'])
    expect((await store.listDIDs({ alias: 'alice', provider: 'did:web' }))).toEqual([])

    // Re-import replaces (upsert), and an alias stays unique.
    await store.importDID({ ...alice, services: [] })
    expect((await store.getDID({ did: 'did:key:alice' })).services).toEqual([])
    await expect(store.importDID({ ...bob, alias: 'alice' })).rejects.toThrow(/UNIQUE/)

    expect(await store.deleteDID({ did: 'did:key:alice' })).toBe(true)
    await expectAgentIdError(() => store.getDID({ did: 'did:key:alice' }), 'ERR_NOT_FOUND')
    await expectAgentIdError(() => store.getDID({ alias: 'alice' }), 'ERR_NOT_FOUND')
    await expectAgentIdError(() => store.deleteDID({ did: 'did:key:alice' }), 'ERR_NOT_FOUND')
    // Its key is unlinked, not lost.
    expect(db.prepare("SELECT identifier_did FROM keys WHERE kid = 'ka'").pluck().get()).toBeNull()
  })
})

describe('SqlitePrivateKeyStore', () => {
  it('round-trips a key and stores only ciphertext', async () => {
    const store = new SqlitePrivateKeyStore(db, createCryptoBox(secret, 'test/v1'))
    const { privateKeyHex } = ed25519Hex()
    expect(await store.importKey({ alias: 'k1', type: 'Ed25519', privateKeyHex })).toEqual({ alias: 'k1', type: 'Ed25519', privateKeyHex })
    expect(await store.getKey({ alias: 'k1' })).toEqual({ alias: 'k1', type: 'Ed25519', privateKeyHex })
    expect(await store.listKeys({})).toEqual([{ alias: 'k1', type: 'Ed25519', privateKeyHex }])

    const row = db.prepare("SELECT ciphertext FROM private_keys WHERE alias = 'k1'").get() as { ciphertext: Buffer }
    const seed = Buffer.from(privateKeyHex.slice(0, 64), 'hex')
    expect(row.ciphertext.includes(seed)).toBe(false)
    expect(row.ciphertext.includes(Buffer.from(privateKeyHex.slice(0, 64)))).toBe(false)
    expect(row.ciphertext.toString('latin1')).not.toContain(privateKeyHex.slice(0, 16))

    expect(await store.deleteKey({ alias: 'k1' })).toBe(true)
    await expectAgentIdError(() => store.getKey({ alias: 'k1' }), 'ERR_NOT_FOUND')
  })

  it('refuses a tampered ciphertext', async () => {
    const store = new SqlitePrivateKeyStore(db, createCryptoBox(secret, 'test/v1'))
    await store.importKey({ alias: 'k1', type: 'Ed25519', privateKeyHex: ed25519Hex().privateKeyHex })
    const { ciphertext } = db.prepare("SELECT ciphertext FROM private_keys WHERE alias = 'k1'").get() as { ciphertext: Buffer }
    ciphertext[20]! ^= 0x80
    db.prepare("UPDATE private_keys SET ciphertext = ? WHERE alias = 'k1'").run(ciphertext)
    await expectAgentIdError(() => store.getKey({ alias: 'k1' }), 'ERR_INTERNAL', 'ciphertext_invalid')
  })

  it('refuses a ciphertext moved to another alias', async () => {
    const store = new SqlitePrivateKeyStore(db, createCryptoBox(secret, 'test/v1'))
    await store.importKey({ alias: 'victim', type: 'Ed25519', privateKeyHex: ed25519Hex().privateKeyHex })
    await store.importKey({ alias: 'attacker', type: 'Ed25519', privateKeyHex: ed25519Hex().privateKeyHex })
    db.prepare("UPDATE private_keys SET ciphertext = (SELECT ciphertext FROM private_keys WHERE alias = 'victim') WHERE alias = 'attacker'").run()
    await expectAgentIdError(() => store.getKey({ alias: 'attacker' }), 'ERR_INTERNAL', 'ciphertext_invalid')
  })

  it('refuses the wrong master secret', async () => {
    await new SqlitePrivateKeyStore(db, createCryptoBox(secret, 'test/v1')).importKey({ alias: 'k1', type: 'Ed25519', privateKeyHex: ed25519Hex().privateKeyHex })
    const other = new SqlitePrivateKeyStore(db, createCryptoBox(randomBytes(32), 'test/v1'))
    await expectAgentIdError(() => other.getKey({ alias: 'k1' }), 'ERR_INTERNAL', 'ciphertext_invalid')
  })

  it('keeps an alias bound to one key: the same key again is a no-op, another is a conflict', async () => {
    const store = new SqlitePrivateKeyStore(db, createCryptoBox(secret, 'test/v1'))
    const { privateKeyHex } = ed25519Hex()
    await store.importKey({ alias: 'k1', type: 'Ed25519', privateKeyHex })
    await store.importKey({ alias: 'k1', type: 'Ed25519', privateKeyHex: privateKeyHex.toUpperCase() })
    await expectAgentIdError(() => store.importKey({ alias: 'k1', type: 'Ed25519', privateKeyHex: ed25519Hex().privateKeyHex }), 'ERR_CONFLICT')
    expect((await store.getKey({ alias: 'k1' })).privateKeyHex).toBe(privateKeyHex)
  })
})

describe('NodeEd25519KMS', () => {
  const kmsOn = (database: Database) => new NodeEd25519KMS(new SqlitePrivateKeyStore(database, createCryptoBox(secret, 'test/v1')))

  it('creates Ed25519 keys whose signatures verify with node:crypto (base64url, like kms-local)', async () => {
    const kms = kmsOn(db)
    const key = await kms.createKey({ type: 'Ed25519' })
    expect(key).toMatchObject({ kms: 'local', type: 'Ed25519', kid: key.publicKeyHex, meta: { algorithms: ['EdDSA', 'Ed25519'] } })
    const data = new TextEncoder().encode('header.payload')
    for (const algorithm of [undefined, 'EdDSA', 'Ed25519']) {
      const signature = await kms.sign({ keyRef: { kid: key.kid }, data, ...(algorithm ? { algorithm } : {}) })
      expect(signature).toMatch(/^[A-Za-z0-9_-]{86}$/)
      expect(verifies(key.publicKeyHex, data, signature)).toBe(true)
    }
    // A fresh KMS on the same database (after a restart) signs with the stored, encrypted key.
    const again = await kmsOn(db).sign({ keyRef: { kid: key.kid }, data })
    expect(verifies(key.publicKeyHex, data, again)).toBe(true)
  })

  it('imports a 64-byte seed‖public key or a 32-byte seed, and refuses a mismatched public half', async () => {
    const kms = kmsOn(db)
    const a = ed25519Hex()
    expect(await kms.importKey({ type: 'Ed25519', privateKeyHex: a.privateKeyHex, kid: 'a' })).toMatchObject({ kid: 'a', publicKeyHex: a.publicKeyHex })
    const b = ed25519Hex()
    expect(await kms.importKey({ type: 'Ed25519', privateKeyHex: b.seedHex })).toMatchObject({ kid: b.publicKeyHex, publicKeyHex: b.publicKeyHex })
    await expectAgentIdError(() => kms.importKey({ type: 'Ed25519', privateKeyHex: a.seedHex + b.publicKeyHex }), 'ERR_INVALID_INPUT')
    await expectAgentIdError(() => kms.importKey({ type: 'Ed25519', privateKeyHex: 'abcd' }), 'ERR_INVALID_INPUT')
    expect((await kms.listKeys()).map((k) => k.kid).sort()).toEqual(['a', b.publicKeyHex].sort())
    expect(await kms.deleteKey({ kid: 'a' })).toBe(true)
    await expectAgentIdError(() => kms.sign({ keyRef: { kid: 'a' }, data: new Uint8Array(1) }), 'ERR_NOT_FOUND')
  })

  it('signs exactly as node:crypto does with the same key (libsodium where core uses it), before and after a restart', async () => {
    // This machine has the addon: the KMS signs with it, unless the unit-node-crypto project chose node:crypto.
    expect(ed25519Backend()).toBe(process.env.AGENTID_ED25519 === 'node:crypto' ? 'node:crypto' : 'libsodium')
    const kms = kmsOn(db)
    const { privateKeyHex, seedHex } = ed25519Hex()
    const key = await kms.importKey({ type: 'Ed25519', privateKeyHex })
    const nodeKey = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(seedHex, 'hex')]), format: 'der', type: 'pkcs8' })
    for (const data of [new Uint8Array(0), Buffer.from('header.payload'), randomBytes(4096), randomBytes(600).subarray(3, 503)]) {
      const expected = cryptoSign(null, data, nodeKey).toString('base64url')
      expect(await kms.sign({ keyRef: { kid: key.kid }, data })).toBe(expected)
      expect(await kmsOn(db).sign({ keyRef: { kid: key.kid }, data })).toBe(expected) // loaded from the store
    }
    // Deleted: its cached key pair is gone with it.
    expect(await kms.deleteKey({ kid: key.kid })).toBe(true)
    await expectAgentIdError(() => kms.sign({ keyRef: { kid: key.kid }, data: new Uint8Array(1) }), 'ERR_NOT_FOUND')
  })

  it('refuses other key types, other algorithms and shared secrets', async () => {
    const kms = kmsOn(db)
    await expectAgentIdError(() => kms.createKey({ type: 'Secp256k1' }), 'ERR_INVALID_INPUT', 'not_supported')
    const key = await kms.createKey({ type: 'Ed25519' })
    await expectAgentIdError(() => kms.sign({ keyRef: key, algorithm: 'ES256K', data: new Uint8Array(1) }), 'ERR_INVALID_INPUT', 'not_supported')
    await expectAgentIdError(() => kms.sharedSecret({ myKeyRef: key, theirKey: { type: 'X25519', publicKeyHex: '00' } }), 'ERR_INVALID_INPUT', 'not_supported')
  })

  it('signs the bytes Veramo means for each data encoding of keyManagerSign and keyManagerSignJWT', async () => {
    const agent = createAgent<IKeyManager & IDIDManager>({
      plugins: [
        new KeyManager({ store: new SqliteKeyStore(db), kms: { local: kmsOn(db) } }),
        new DIDManager({ store: new SqliteDIDStore(db), defaultProvider: 'did:key', providers: { 'did:key': new KeyDIDProvider({ defaultKms: 'local' }) } }),
      ],
    })
    const key = await agent.keyManagerCreate({ kms: 'local', type: 'Ed25519' })
    expect(key.privateKeyHex).toBeUndefined()
    const text = 'eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJ4In0'
    const bytes = Buffer.from(text, 'utf8')
    const cases: Array<[string, Promise<string>]> = [
      ['utf-8 (default)', agent.keyManagerSign({ keyRef: key.kid, data: text })],
      ['utf-8', agent.keyManagerSign({ keyRef: key.kid, data: text, encoding: 'utf-8' })],
      ['hex', agent.keyManagerSign({ keyRef: key.kid, data: bytes.toString('hex'), encoding: 'hex' })],
      ['base16 0x', agent.keyManagerSign({ keyRef: key.kid, data: `0x${bytes.toString('hex')}`, encoding: 'base16' })],
      ['Uint8Array', agent.keyManagerSign({ keyRef: key.kid, data: new Uint8Array(bytes) as unknown as string })],
      ['signJWT string', agent.keyManagerSignJWT({ kid: key.kid, data: text })],
      ['signJWT bytes', agent.keyManagerSignJWT({ kid: key.kid, data: new Uint8Array(bytes) })],
    ]
    for (const [name, signature] of cases) expect(verifies(key.publicKeyHex, bytes, await signature), name).toBe(true)

    // did:key identifiers created through DIDManager are stored with their key.
    const id = await agent.didManagerCreate({ alias: 'x' })
    expect(id.did).toMatch(/^did:key:z6Mk/)
    expect((await agent.didManagerGetByAlias({ alias: 'x' })).keys[0]?.publicKeyHex).toBe(id.keys[0]?.publicKeyHex)
    const raw = Buffer.from(id.keys[0]!.publicKeyHex, 'hex')
    expect(createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' }).asymmetricKeyType).toBe('ed25519')
  })
})
