// Opening the issuer's backend: the database (SQLite file or PostgreSQL), the master secret, the
// signing engine and, with a trust domain, the SVID issuer. IssuerService.open wraps these.
import { join } from 'node:path'
import { parseTrustDomain } from '@agentid/core'
import { openDatabase } from '../db/open.js'
import { loadMasterSecret } from '../secret.js'
import { openPgStorage } from '../storage/pg.js'
import { SqliteStorage } from '../storage/sqlite.js'
import type { IssuerStorage } from '../storage/types.js'
import { SvidAuthority } from '../svid/authority.js'
import { SvidIssuer } from '../svid/issuer.js'
import { createIssuerEngine, type IssuerEngine, type IssuerEngineOptions } from '../veramo/engine.js'
import type { IssuerServiceOptions } from './service.js'
import { Store } from './store.js'

/** What an open backend hands the service. */
export interface Backend {
  /** The synchronous SQLite store (undefined on PostgreSQL). */
  sqliteStore: Store | undefined
  storage: IssuerStorage
  engine: IssuerEngine
  clock: () => number
  svid: SvidIssuer | undefined
}

/**
 * What both engines open alike once their storage is: the master secret (`sealed`: keys are already
 * sealed under it, so it must exist; a new one would open nothing), the signing engine (on `db`, or on
 * `storage` when there is no SQLite file) and, with a trust domain, the SVID issuer.
 */
async function backendOn(options: IssuerServiceOptions, storage: IssuerStorage, sqliteStore: Store | undefined, sealed: boolean, engineOn: Pick<IssuerEngineOptions, 'db' | 'storage'>): Promise<Backend> {
  const secret = loadMasterSecret({ dataDir: options.dataDir, mustExist: sealed })
  const clock = options.clock ?? Date.now
  const now = () => Math.floor(clock() / 1000)
  const engine = await createIssuerEngine({
    ...engineOn,
    secret: secret.key,
    baseUrl: options.baseUrl,
    now,
    ...(options.didWebDomain ? { didWebDomain: options.didWebDomain } : {}),
  })
  const svid = options.trustDomain === undefined ? undefined : new SvidIssuer({
    store: storage, issuerDid: engine.issuer.did, now,
    authority: await SvidAuthority.open({ storage, secret: secret.key, trustDomain: parseTrustDomain(options.trustDomain, { code: 'ERR_INVALID_INPUT' }), now }),
  })
  return { sqliteStore, storage, engine, clock, svid }
}

/**
 * Opens the SQLite backend and calls `build` with it; if anything throws (`build` included), the
 * database is closed.
 */
export async function openSqliteBackend<T>(options: IssuerServiceOptions, build: (backend: Backend) => T): Promise<T> {
  const db = openDatabase(options.dbFile ?? join(options.dataDir, 'issuer.db'))
  try {
    const sealed = db.prepare('SELECT 1 FROM private_keys LIMIT 1').get() !== undefined
    const store = new Store(db)
    return build(await backendOn(options, new SqliteStorage(store), store, sealed, { db }))
  } catch (error) {
    db.close()
    throw error
  }
}

/**
 * Opens the PostgreSQL backend at `url` and calls `build` with it; if anything throws (`build`
 * included), the storage is closed.
 */
export async function openPostgresBackend<T>(options: IssuerServiceOptions, url: string, build: (backend: Backend) => T): Promise<T> {
  const storage = await openPgStorage(url)
  try {
    // Every instance must open the keys the first one sealed: share AGENTID_SECRET (or the secret file).
    const sealed = (await storage.veramo.privateKeys()).length > 0
    return build(await backendOn(options, storage, undefined, sealed, { storage }))
  } catch (error) {
    await storage.close()
    throw error
  }
}
