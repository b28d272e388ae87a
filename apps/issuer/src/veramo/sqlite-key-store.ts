import type { Database, Statement } from 'better-sqlite3'
import { AbstractKeyStore } from '@veramo/key-manager'
import type { IKey, ManagedKeyInfo } from '@veramo/core'
import { AgentIdError } from '@agentid/core'

/** A row of the `keys` table. @internal */
export interface KeyRow {
  kid: string
  kms: string
  type: string
  public_key_hex: string
  meta_json: string | null
}

/** @internal */
export function keyFromRow(row: KeyRow): IKey {
  const key: IKey = { kid: row.kid, kms: row.kms, type: row.type, publicKeyHex: row.public_key_hex }
  if (row.meta_json !== null) key.meta = JSON.parse(row.meta_json) as IKey['meta']
  return key
}

/**
 * Veramo's key store (`AbstractKeyStore`) on the `keys` table: which KMS holds each key, its type,
 * public key and metadata. Never stores private key material (a `privateKeyHex` passed in is dropped).
 * Importing an existing kid updates it and keeps its identifier link.
 * @example
 * new KeyManager({ store: new SqliteKeyStore(db), kms: { local: kms } })
 */
export class SqliteKeyStore extends AbstractKeyStore {
  readonly #db: Database
  readonly #get: Statement<[string], KeyRow>
  readonly #upsert: Statement<Record<string, string | null>>
  readonly #delete: Statement<[string]>

  constructor(db: Database) {
    super()
    this.#db = db
    this.#get = db.prepare('SELECT kid, kms, type, public_key_hex, meta_json FROM keys WHERE kid = ?')
    this.#upsert = db.prepare(
      `INSERT INTO keys (kid, kms, type, public_key_hex, meta_json) VALUES (@kid, @kms, @type, @publicKeyHex, @meta)
       ON CONFLICT (kid) DO UPDATE SET kms = excluded.kms, type = excluded.type, public_key_hex = excluded.public_key_hex, meta_json = excluded.meta_json`,
    )
    this.#delete = db.prepare('DELETE FROM keys WHERE kid = ?')
  }

  async importKey(args: Partial<IKey>): Promise<boolean> {
    const { kid, kms, type, publicKeyHex, meta } = args ?? {}
    if (typeof kid !== 'string' || typeof kms !== 'string' || typeof type !== 'string' || typeof publicKeyHex !== 'string') {
      throw new TypeError('importKey: kid, kms, type and publicKeyHex are required')
    }
    this.#upsert.run({ kid, kms, type, publicKeyHex, meta: meta == null ? null : JSON.stringify(meta) })
    return true
  }

  async getKey({ kid }: { kid: string }): Promise<IKey> {
    const row = this.#get.get(kid)
    if (!row) throw new AgentIdError('ERR_NOT_FOUND', 'not_found: Key not found', { details: { resource: 'key' } })
    return keyFromRow(row)
  }

  async deleteKey({ kid }: { kid: string }): Promise<boolean> {
    if (this.#delete.run(kid).changes === 0) throw new AgentIdError('ERR_NOT_FOUND', 'not_found: Key not found', { details: { resource: 'key' } })
    return true
  }

  async listKeys(_args: {} = {}): Promise<ManagedKeyInfo[]> {
    return (this.#db.prepare('SELECT kid, kms, type, public_key_hex, meta_json FROM keys ORDER BY rowid').all() as KeyRow[]).map(keyFromRow)
  }
}
