import { randomUUID } from 'node:crypto'
import type { Database, Statement } from 'better-sqlite3'
import { AbstractPrivateKeyStore, type ImportablePrivateKey, type ManagedPrivateKey } from '@veramo/key-manager'
import { AgentIdError } from '@agentid/core'
import type { CryptoBox } from '../crypto-box.js'

interface PrivateKeyRow {
  alias: string
  type: string
  ciphertext: Buffer
}

const HEX = /^(?:[0-9a-fA-F]{2})+$/

/**
 * Veramo's private key store (`AbstractPrivateKeyStore`) on the `private_keys` table. Key bytes are
 * sealed with AES-256-GCM ({@link CryptoBox}) with the alias as AAD: the stored ciphertext never
 * contains the key, a tampered row throws `ERR_INTERNAL` (`ciphertext_invalid`), and a ciphertext
 * copied to another alias does not open. Importing an alias that already holds a different key throws
 * `ERR_CONFLICT`; importing the same key again is a no-op.
 * @example
 * const store = new SqlitePrivateKeyStore(db, createCryptoBox(secret, PRIVATE_KEY_BOX_INFO))
 */
export class SqlitePrivateKeyStore extends AbstractPrivateKeyStore {
  readonly #db: Database
  readonly #box: CryptoBox
  readonly #get: Statement<[string], PrivateKeyRow>
  readonly #insert: Statement<[string, string, Buffer]>
  readonly #delete: Statement<[string]>

  constructor(db: Database, box: CryptoBox) {
    super()
    this.#db = db
    this.#box = box
    this.#get = db.prepare('SELECT alias, type, ciphertext FROM private_keys WHERE alias = ?')
    this.#insert = db.prepare('INSERT INTO private_keys (alias, type, ciphertext) VALUES (?, ?, ?) ON CONFLICT (alias) DO NOTHING')
    this.#delete = db.prepare('DELETE FROM private_keys WHERE alias = ?')
  }

  async importKey(args: ImportablePrivateKey): Promise<ManagedPrivateKey> {
    const { privateKeyHex, type } = args ?? {}
    if (typeof type !== 'string' || typeof privateKeyHex !== 'string' || !HEX.test(privateKeyHex)) {
      throw new AgentIdError('ERR_INVALID_INPUT', 'invalid_argument: type and privateKeyHex (hex) are required', { details: { field: 'privateKeyHex' } })
    }
    const alias = args.alias ?? randomUUID()
    const key: ManagedPrivateKey = { alias, type, privateKeyHex: privateKeyHex.toLowerCase() }
    const sealed = this.#box.seal(Buffer.from(key.privateKeyHex, 'hex'), alias)
    if (this.#insert.run(alias, type, sealed).changes === 0) {
      const existing = this.#open(this.#get.get(alias)!)
      if (existing.privateKeyHex !== key.privateKeyHex || existing.type !== type) {
        throw new AgentIdError('ERR_CONFLICT', 'key_already_exists: another private key is stored under this alias', { details: { resource: 'private_key' } })
      }
    }
    return key
  }

  async getKey({ alias }: { alias: string }): Promise<ManagedPrivateKey> {
    const row = this.#get.get(alias)
    if (!row) throw new AgentIdError('ERR_NOT_FOUND', 'not_found: private key not found', { details: { resource: 'private_key' } })
    return this.#open(row)
  }

  async deleteKey({ alias }: { alias: string }): Promise<boolean> {
    if (this.#delete.run(alias).changes === 0) throw new AgentIdError('ERR_NOT_FOUND', 'not_found: private key not found', { details: { resource: 'private_key' } })
    return true
  }

  /** Every private key, decrypted (Veramo's contract). Prefer {@link getKey}. */
  async listKeys(_args: {} = {}): Promise<ManagedPrivateKey[]> {
    return (this.#db.prepare('SELECT alias, type, ciphertext FROM private_keys ORDER BY rowid').all() as PrivateKeyRow[]).map((row) => this.#open(row))
  }

  #open(row: PrivateKeyRow): ManagedPrivateKey {
    const bytes = this.#box.open(row.ciphertext, row.alias)
    try {
      return { alias: row.alias, type: row.type, privateKeyHex: bytes.toString('hex') }
    } finally {
      bytes.fill(0)
    }
  }
}
