import { openDatabase } from '../db/open.js'
import { Store } from '../domain/store.js'
import { openPgStorage, PgStorage, type PgStorageOptions } from './pg.js'
import { SqliteStorage } from './sqlite.js'
import type { IssuerStorage } from './types.js'

export type * from './types.js'
export { PgStorage, SqliteStorage, openPgStorage, type PgStorageOptions }
export { PG_MIGRATIONS, migratePg, pgVersion } from './pg-migrations.js'

/**
 * Opens the issuer's storage: PostgreSQL when `databaseUrl` (AGENTID_DATABASE_URL, postgres://…) is
 * given, else the SQLite file `file` (the default engine). Either is migrated before it is returned.
 * @example
 * const storage = await openStorage({ databaseUrl: process.env.AGENTID_DATABASE_URL, file: '.agentid/issuer.db' })
 */
export async function openStorage(o: { databaseUrl?: string | undefined; file: string; pg?: PgStorageOptions }): Promise<IssuerStorage> {
  if (o.databaseUrl !== undefined) return openPgStorage(o.databaseUrl, o.pg)
  return new SqliteStorage(new Store(openDatabase(o.file)))
}
