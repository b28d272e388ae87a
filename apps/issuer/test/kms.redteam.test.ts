// Red team: NodeEd25519KMS's cache of decrypted keys under concurrent use (a sign in flight while the
// key is deleted, imported again or the cache cleared), and the libsodium keys it must wipe.
import { generateKeyPairSync, randomBytes, verify as cryptoVerify } from 'node:crypto'
import { join } from 'node:path'
import type { Database } from 'better-sqlite3'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { base64urlDecode, publicKeyFromRaw, type Ed25519SeedSigner } from '@agentid/core'
import { openDatabase } from '../src/db/open.js'
import { createCryptoBox } from '../src/crypto-box.js'
import { SqlitePrivateKeyStore } from '../src/veramo/sqlite-private-key-store.js'
import { NodeEd25519KMS } from '../src/veramo/node-kms.js'
import { expectAgentIdError, tempDir } from './engine-helpers.js'

// Every libsodium signer the KMS makes, and whether it was wiped (null on node:crypto: nothing to wipe).
const signers: Array<{ disposed: boolean }> = []
vi.mock('@agentid/core', async (importOriginal) => {
  const core = await importOriginal<typeof import('@agentid/core')>()
  return {
    ...core,
    ed25519SeedSigner(seed: Uint8Array): Ed25519SeedSigner | null {
      const inner = core.ed25519SeedSigner(seed)
      if (inner === null) return null
      const record = { disposed: false }
      signers.push(record)
      return { publicKey: inner.publicKey, sign: (data) => inner.sign(data), dispose: () => { record.disposed = true; inner.dispose() } }
    },
  }
})

const secret = randomBytes(32)
let dir: string
let cleanup: () => void
let db: Database
beforeEach(() => {
  ;({ dir, cleanup } = tempDir())
  db = openDatabase(join(dir, 'issuer.db'))
  signers.length = 0
})
afterEach(() => {
  db.close()
  cleanup()
})

const kmsOn = (database: Database) => new NodeEd25519KMS(new SqlitePrivateKeyStore(database, createCryptoBox(secret, 'test/v1')))
/** A store that answers a read later than it made it, as a database over the network does (PostgreSQL). */
class SlowReadStore extends SqlitePrivateKeyStore {
  override async getKey(args: { alias: string }) {
    const key = await super.getKey(args)
    await new Promise((resolve) => setTimeout(resolve, 20))
    return key
  }
}
/** A store whose delete takes effect after a while (a round trip to a database over the network). */
class SlowDeleteStore extends SqlitePrivateKeyStore {
  override async deleteKey(args: { alias: string }) {
    await new Promise((resolve) => setTimeout(resolve, 20))
    return super.deleteKey(args)
  }
}
const slowKmsOn = (database: Database) => new NodeEd25519KMS(new SlowReadStore(database, createCryptoBox(secret, 'test/v1')))
function ed25519Hex(): { privateKeyHex: string; publicKeyHex: string } {
  const jwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }) as { d: string; x: string }
  const publicKeyHex = Buffer.from(jwk.x, 'base64url').toString('hex')
  return { privateKeyHex: Buffer.from(jwk.d, 'base64url').toString('hex') + publicKeyHex, publicKeyHex }
}
const verifies = (publicKeyHex: string, data: Uint8Array, signature: string) =>
  cryptoVerify(null, data, publicKeyFromRaw(Buffer.from(publicKeyHex, 'hex')), base64urlDecode(signature))

describe('NodeEd25519KMS (red team)', () => {
  const data = Buffer.from('header.payload')

  it('finishes a sign in flight when its key is deleted or imported again meanwhile (it held the key)', async () => {
    const kms = kmsOn(db)
    const alice = ed25519Hex()
    const { kid } = await kms.importKey({ type: 'Ed25519', privateKeyHex: alice.privateKeyHex })
    await kms.sign({ keyRef: { kid }, data }) // cached
    const again = kms.sign({ keyRef: { kid }, data })
    await kms.importKey({ type: 'Ed25519', privateKeyHex: alice.privateKeyHex }) // the same key: accepted
    expect(verifies(alice.publicKeyHex, data, await again)).toBe(true)
    const last = kms.sign({ keyRef: { kid }, data })
    await kms.deleteKey({ kid })
    expect(verifies(alice.publicKeyHex, data, await last)).toBe(true)
    await expectAgentIdError(() => kms.sign({ keyRef: { kid }, data }), 'ERR_NOT_FOUND')
  })

  it('does not cache a key that was deleted while it was being loaded (a deleted key signs no more)', async () => {
    const alice = ed25519Hex()
    const { kid } = await kmsOn(db).importKey({ type: 'Ed25519', privateKeyHex: alice.privateKeyHex })
    const kms = slowKmsOn(db) // nothing cached: sign loads the key from the store
    const inFlight = kms.sign({ keyRef: { kid }, data })
    await kms.deleteKey({ kid })
    await inFlight.catch(() => undefined) // either answer is fine for a sign that raced the delete
    await expectAgentIdError(() => kms.sign({ keyRef: { kid }, data }), 'ERR_NOT_FOUND')
  })

  it('does not cache a key loaded while its delete was on its way to the store (it signs no more once deleted)', async () => {
    const alice = ed25519Hex()
    const { kid } = await kmsOn(db).importKey({ type: 'Ed25519', privateKeyHex: alice.privateKeyHex })
    const kms = new NodeEd25519KMS(new SlowDeleteStore(db, createCryptoBox(secret, 'test/v1')))
    const deleting = kms.deleteKey({ kid })
    expect(verifies(alice.publicKeyHex, data, await kms.sign({ keyRef: { kid }, data }))).toBe(true) // the row is still there
    expect(await deleting).toBe(true)
    await expectAgentIdError(() => kms.sign({ keyRef: { kid }, data }), 'ERR_NOT_FOUND')
  })

  it('signs with the key imported under a kid, not the one deleted under it while a load was in flight', async () => {
    const [alice, bob] = [ed25519Hex(), ed25519Hex()]
    await kmsOn(db).importKey({ type: 'Ed25519', kid: 'issuer', privateKeyHex: alice.privateKeyHex })
    const kms = slowKmsOn(db)
    const inFlight = kms.sign({ keyRef: { kid: 'issuer' }, data }) // reads alice's key
    await kms.deleteKey({ kid: 'issuer' })
    await kms.importKey({ type: 'Ed25519', kid: 'issuer', privateKeyHex: bob.privateKeyHex })
    await inFlight.catch(() => undefined)
    expect(verifies(bob.publicKeyHex, data, await kms.sign({ keyRef: { kid: 'issuer' }, data }))).toBe(true)
  })

  it('refuses another key under a cached kid (ERR_CONFLICT), keeps signing with the first, and wipes the refused one', async () => {
    const kms = kmsOn(db)
    const [alice, mallory] = [ed25519Hex(), ed25519Hex()]
    await kms.importKey({ type: 'Ed25519', kid: 'issuer', privateKeyHex: alice.privateKeyHex })
    await kms.sign({ keyRef: { kid: 'issuer' }, data }) // cached
    const made = signers.length
    await expectAgentIdError(() => kms.importKey({ type: 'Ed25519', kid: 'issuer', privateKeyHex: mallory.privateKeyHex }), 'ERR_CONFLICT')
    expect(verifies(alice.publicKeyHex, data, await kms.sign({ keyRef: { kid: 'issuer' }, data }))).toBe(true)
    expect(signers.slice(made).filter((s) => !s.disposed)).toEqual([])
    expect((await kms.listKeys()).map((k) => k.publicKeyHex)).toEqual([alice.publicKeyHex])
  })

  it('wipes every libsodium key it made once the cache is cleared (concurrent loads of one key included)', async () => {
    const kms = kmsOn(db)
    const [alice, bob] = [ed25519Hex(), ed25519Hex()]
    const a = await kms.importKey({ type: 'Ed25519', privateKeyHex: alice.privateKeyHex })
    await kms.importKey({ type: 'Ed25519', privateKeyHex: bob.privateKeyHex })
    kms.clearCache()
    const signed = await Promise.all([1, 2, 3].map(() => kms.sign({ keyRef: { kid: a.kid }, data }))) // three loads at once
    for (const signature of signed) expect(verifies(alice.publicKeyHex, data, signature)).toBe(true)
    await kms.listKeys()
    const inFlight = kms.sign({ keyRef: { kid: a.kid }, data })
    kms.clearCache()
    expect(verifies(alice.publicKeyHex, data, await inFlight)).toBe(true) // it held the key: it finishes
    if (process.env.AGENTID_ED25519 !== 'node:crypto') expect(signers.length).toBeGreaterThan(3)
    expect(signers.filter((s) => !s.disposed)).toEqual([])
  })
})
