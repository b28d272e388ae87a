import type { Database, Statement } from 'better-sqlite3'
import { AbstractDIDStore } from '@veramo/did-manager'
import type { IIdentifier, IKey, IService } from '@veramo/core'
import { AgentIdError } from '@agentid/core'
import { keyFromRow, type KeyRow } from './sqlite-key-store.js'

interface IdentifierRow {
  did: string
  provider: string
  alias: string | null
  controller_key_id: string | null
  services_json: string
}

/**
 * Veramo's DID store (`AbstractDIDStore`) on the `identifiers` and `keys` tables. Importing an
 * identifier upserts it and links its keys (public parts only; a `privateKeyHex` is never stored);
 * deleting it unlinks its keys, as Veramo's TypeORM store does. Missing DIDs throw `ERR_NOT_FOUND`
 * with a `not_found:` message, the convention Veramo plugins read.
 * @example
 * new DIDManager({ store: new SqliteDIDStore(db, clock), providers, defaultProvider: 'did:key' })
 */
export class SqliteDIDStore extends AbstractDIDStore {
  readonly #db: Database
  readonly #now: () => number
  readonly #byDid: Statement<[string], IdentifierRow>
  readonly #byAlias: Statement<[string], IdentifierRow>
  readonly #keysOf: Statement<[string], KeyRow>
  readonly #import: (identifier: IIdentifier) => void

  /** @param now - clock in unix seconds, for `created_at`. */
  constructor(db: Database, now: () => number = () => Math.floor(Date.now() / 1000)) {
    super()
    this.#db = db
    this.#now = now
    this.#byDid = db.prepare('SELECT did, provider, alias, controller_key_id, services_json FROM identifiers WHERE did = ?')
    this.#byAlias = db.prepare('SELECT did, provider, alias, controller_key_id, services_json FROM identifiers WHERE alias = ?')
    this.#keysOf = db.prepare('SELECT kid, kms, type, public_key_hex, meta_json FROM keys WHERE identifier_did = ? ORDER BY rowid')
    const upsertIdentifier = db.prepare(
      `INSERT INTO identifiers (did, provider, alias, controller_key_id, services_json, created_at) VALUES (@did, @provider, @alias, @controllerKeyId, @services, @now)
       ON CONFLICT (did) DO UPDATE SET provider = excluded.provider, alias = excluded.alias, controller_key_id = excluded.controller_key_id, services_json = excluded.services_json`,
    )
    const unlinkKeys = db.prepare('UPDATE keys SET identifier_did = NULL WHERE identifier_did = ?')
    const upsertKey = db.prepare(
      `INSERT INTO keys (kid, kms, type, public_key_hex, meta_json, identifier_did) VALUES (@kid, @kms, @type, @publicKeyHex, @meta, @did)
       ON CONFLICT (kid) DO UPDATE SET kms = excluded.kms, type = excluded.type, public_key_hex = excluded.public_key_hex, meta_json = excluded.meta_json, identifier_did = excluded.identifier_did`,
    )
    this.#import = db.transaction((identifier: IIdentifier) => {
      upsertIdentifier.run({
        did: identifier.did,
        provider: identifier.provider,
        alias: identifier.alias ?? null,
        controllerKeyId: identifier.controllerKeyId ?? null,
        services: JSON.stringify(identifier.services ?? []),
        now: this.#now(),
      })
      unlinkKeys.run(identifier.did)
      for (const key of identifier.keys ?? []) {
        upsertKey.run({
          kid: key.kid,
          kms: key.kms,
          type: key.type,
          publicKeyHex: key.publicKeyHex,
          meta: key.meta == null ? null : JSON.stringify(key.meta),
          did: identifier.did,
        })
      }
    })
  }

  /** Creates or replaces an identifier and links its keys, in one transaction. */
  async importDID(args: IIdentifier): Promise<boolean> {
    if (typeof args?.did !== 'string' || typeof args.provider !== 'string') throw new TypeError('importDID: did and provider are required')
    for (const key of args.keys ?? []) {
      if (!key || typeof key.kid !== 'string' || typeof key.kms !== 'string' || typeof key.type !== 'string' || typeof key.publicKeyHex !== 'string') {
        throw new TypeError('importDID: every key needs kid, kms, type and publicKeyHex')
      }
    }
    this.#import(args)
    return true
  }

  /** The identifier named by `did` or `alias`, with its keys and services. */
  async getDID(args: { did: string }): Promise<IIdentifier>
  async getDID(args: { alias: string }): Promise<IIdentifier>
  async getDID(args: { did?: string; alias?: string }): Promise<IIdentifier> {
    let row: IdentifierRow | undefined
    if (typeof args?.did === 'string') row = this.#byDid.get(args.did)
    else if (typeof args?.alias === 'string') row = this.#byAlias.get(args.alias)
    else throw new TypeError('getDID: did or alias is required')
    if (!row) throw new AgentIdError('ERR_NOT_FOUND', 'not_found: Identifier not found', { details: { resource: 'identifier' } })
    return this.#toIdentifier(row)
  }

  /** Unlinks the identifier's keys and deletes it. */
  async deleteDID({ did }: { did: string }): Promise<boolean> {
    const deleted = this.#db.transaction(() => {
      this.#db.prepare('UPDATE keys SET identifier_did = NULL WHERE identifier_did = ?').run(did)
      return this.#db.prepare('DELETE FROM identifiers WHERE did = ?').run(did).changes
    })()
    if (deleted === 0) throw new AgentIdError('ERR_NOT_FOUND', 'not_found: Identifier not found', { details: { resource: 'identifier' } })
    return true
  }

  /** Identifiers, optionally filtered by alias and provider, oldest first. */
  async listDIDs(args: { alias?: string; provider?: string } = {}): Promise<IIdentifier[]> {
    const where: string[] = []
    const params: string[] = []
    if (args.alias !== undefined) {
      where.push('alias = ?')
      params.push(args.alias)
    }
    if (args.provider !== undefined) {
      where.push('provider = ?')
      params.push(args.provider)
    }
    const rows = this.#db
      .prepare(`SELECT did, provider, alias, controller_key_id, services_json FROM identifiers ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, rowid`)
      .all(...params) as IdentifierRow[]
    return rows.map((row) => this.#toIdentifier(row))
  }

  #toIdentifier(row: IdentifierRow): IIdentifier {
    const keys: IKey[] = this.#keysOf.all(row.did).map(keyFromRow)
    const identifier: IIdentifier = { did: row.did, provider: row.provider, keys, services: JSON.parse(row.services_json) as IService[] }
    if (row.alias !== null) identifier.alias = row.alias
    if (row.controller_key_id !== null) identifier.controllerKeyId = row.controller_key_id
    return identifier
  }
}
