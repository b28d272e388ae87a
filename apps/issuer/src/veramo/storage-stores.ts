// Veramo's DID, key and private-key stores on the issuer's storage interface (storage/), for either
// engine: the same behaviour as the sqlite-*-store.ts classes (which the SQLite issuer keeps using),
// through `storage.veramo`. Used by the PostgreSQL issuer.
import { randomUUID } from 'node:crypto'
import { AbstractDIDStore } from '@veramo/did-manager'
import { AbstractKeyStore, AbstractPrivateKeyStore, type ImportablePrivateKey, type ManagedPrivateKey } from '@veramo/key-manager'
import type { IIdentifier, IKey, IService, ManagedKeyInfo } from '@veramo/core'
import { AgentIdError } from '@agentid/core'
import type { CryptoBox } from '../crypto-box.js'
import type { IdentifierRow, IssuerStorage, PrivateKeyRow } from '../storage/types.js'
import { keyFromRow } from './sqlite-key-store.js'

const HEX = /^(?:[0-9a-fA-F]{2})+$/
const identifierNotFound = () => new AgentIdError('ERR_NOT_FOUND', 'not_found: Identifier not found', { details: { resource: 'identifier' } })

/** Veramo's DID store on `storage.veramo` (identifiers and their keys' public parts). */
export class StorageDIDStore extends AbstractDIDStore {
  constructor(private readonly storage: IssuerStorage, private readonly now: () => number = () => Math.floor(Date.now() / 1000)) {
    super()
  }

  /** Creates or replaces an identifier and links its keys, in one transaction. */
  async importDID(args: IIdentifier): Promise<boolean> {
    if (typeof args?.did !== 'string' || typeof args.provider !== 'string') throw new TypeError('importDID: did and provider are required')
    for (const key of args.keys ?? []) {
      if (!key || typeof key.kid !== 'string' || typeof key.kms !== 'string' || typeof key.type !== 'string' || typeof key.publicKeyHex !== 'string') {
        throw new TypeError('importDID: every key needs kid, kms, type and publicKeyHex')
      }
    }
    await this.storage.transaction(async (tx) => {
      await tx.veramo.upsertIdentifier({
        did: args.did, provider: args.provider, alias: args.alias ?? null, controller_key_id: args.controllerKeyId ?? null, services_json: JSON.stringify(args.services ?? []),
      }, this.now())
      for (const key of args.keys ?? []) {
        await tx.veramo.upsertKey({ kid: key.kid, kms: key.kms, type: key.type, public_key_hex: key.publicKeyHex, meta_json: key.meta == null ? null : JSON.stringify(key.meta) }, args.did)
      }
    })
    return true
  }

  async getDID(args: { did: string }): Promise<IIdentifier>
  async getDID(args: { alias: string }): Promise<IIdentifier>
  async getDID(args: { did?: string; alias?: string }): Promise<IIdentifier> {
    let row: IdentifierRow | undefined
    if (typeof args?.did === 'string') row = await this.storage.veramo.identifier({ did: args.did })
    else if (typeof args?.alias === 'string') row = await this.storage.veramo.identifier({ alias: args.alias })
    else throw new TypeError('getDID: did or alias is required')
    if (!row) throw identifierNotFound()
    return this.toIdentifier(row)
  }

  async deleteDID({ did }: { did: string }): Promise<boolean> {
    if (!(await this.storage.veramo.deleteIdentifier(did))) throw identifierNotFound()
    return true
  }

  async listDIDs(args: { alias?: string; provider?: string } = {}): Promise<IIdentifier[]> {
    const rows = await this.storage.veramo.identifiers({ ...(args.alias !== undefined ? { alias: args.alias } : {}), ...(args.provider !== undefined ? { provider: args.provider } : {}) })
    return Promise.all(rows.map((row) => this.toIdentifier(row)))
  }

  private async toIdentifier(row: IdentifierRow): Promise<IIdentifier> {
    const keys: IKey[] = (await this.storage.veramo.keysOf(row.did)).map(keyFromRow)
    const identifier: IIdentifier = { did: row.did, provider: row.provider, keys, services: JSON.parse(row.services_json) as IService[] }
    if (row.alias !== null) identifier.alias = row.alias
    if (row.controller_key_id !== null) identifier.controllerKeyId = row.controller_key_id
    return identifier
  }
}

/** Veramo's key store (public parts) on `storage.veramo`. */
export class StorageKeyStore extends AbstractKeyStore {
  constructor(private readonly storage: IssuerStorage) {
    super()
  }

  async importKey(args: Partial<IKey>): Promise<boolean> {
    const { kid, kms, type, publicKeyHex, meta } = args ?? {}
    if (typeof kid !== 'string' || typeof kms !== 'string' || typeof type !== 'string' || typeof publicKeyHex !== 'string') {
      throw new TypeError('importKey: kid, kms, type and publicKeyHex are required')
    }
    await this.storage.veramo.upsertKey({ kid, kms, type, public_key_hex: publicKeyHex, meta_json: meta == null ? null : JSON.stringify(meta) }, null)
    return true
  }

  async getKey({ kid }: { kid: string }): Promise<IKey> {
    const row = await this.storage.veramo.key(kid)
    if (!row) throw new AgentIdError('ERR_NOT_FOUND', 'not_found: Key not found', { details: { resource: 'key' } })
    return keyFromRow(row)
  }

  async deleteKey({ kid }: { kid: string }): Promise<boolean> {
    if (!(await this.storage.veramo.deleteKey(kid))) throw new AgentIdError('ERR_NOT_FOUND', 'not_found: Key not found', { details: { resource: 'key' } })
    return true
  }

  async listKeys(_args: {} = {}): Promise<ManagedKeyInfo[]> {
    return (await this.storage.veramo.keys()).map(keyFromRow)
  }
}

/** Private keys sealed with AES-256-GCM (AAD: the alias), on `storage.veramo`. */
export class StoragePrivateKeyStore extends AbstractPrivateKeyStore {
  constructor(private readonly storage: IssuerStorage, private readonly box: CryptoBox) {
    super()
  }

  async importKey(args: ImportablePrivateKey): Promise<ManagedPrivateKey> {
    const { privateKeyHex, type } = args ?? {}
    if (typeof type !== 'string' || typeof privateKeyHex !== 'string' || !HEX.test(privateKeyHex)) {
      throw new AgentIdError('ERR_INVALID_INPUT', 'invalid_argument: type and privateKeyHex (hex) are required', { details: { field: 'privateKeyHex' } })
    }
    const alias = args.alias ?? randomUUID()
    const key: ManagedPrivateKey = { alias, type, privateKeyHex: privateKeyHex.toLowerCase() }
    const sealed = this.box.seal(Buffer.from(key.privateKeyHex, 'hex'), alias)
    if (!(await this.storage.veramo.putPrivateKey({ alias, type, ciphertext: Buffer.from(sealed) }))) {
      const existing = this.open((await this.storage.veramo.privateKey(alias))!)
      if (existing.privateKeyHex !== key.privateKeyHex || existing.type !== type) {
        throw new AgentIdError('ERR_CONFLICT', 'key_already_exists: another private key is stored under this alias', { details: { resource: 'private_key' } })
      }
    }
    return key
  }

  async getKey({ alias }: { alias: string }): Promise<ManagedPrivateKey> {
    const row = await this.storage.veramo.privateKey(alias)
    if (!row) throw new AgentIdError('ERR_NOT_FOUND', 'not_found: private key not found', { details: { resource: 'private_key' } })
    return this.open(row)
  }

  async deleteKey({ alias }: { alias: string }): Promise<boolean> {
    if (!(await this.storage.veramo.deletePrivateKey(alias))) throw new AgentIdError('ERR_NOT_FOUND', 'not_found: private key not found', { details: { resource: 'private_key' } })
    return true
  }

  async listKeys(_args: {} = {}): Promise<ManagedPrivateKey[]> {
    return (await this.storage.veramo.privateKeys()).map((row) => this.open(row))
  }

  private open(row: PrivateKeyRow): ManagedPrivateKey {
    const bytes = this.box.open(row.ciphertext, row.alias)
    try {
      return { alias: row.alias, type: row.type, privateKeyHex: bytes.toString('hex') }
    } finally {
      bytes.fill(0)
    }
  }
}
