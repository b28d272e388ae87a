import BetterSqlite3, { type Database } from 'better-sqlite3'
import { AgentIdError } from '@agentid/core'
import { migrate } from './migrations.js'

export type { Database } from 'better-sqlite3'

/**
 * Opens (creating if needed) the issuer's SQLite file and brings its schema up to date.
 *
 * Settings: `journal_mode=WAL` (readers never block the writer), `synchronous=FULL` (a committed
 * transaction survives power loss), `foreign_keys=ON`, `busy_timeout=5000` ms. Migrations are
 * numbered and tracked with `PRAGMA user_version` (see {@link migrate}). The caller owns the handle
 * and closes it with `db.close()`.
 *
 * better-sqlite3 is synchronous: wrap writes that belong together in `db.transaction(fn)`, and never
 * hold a transaction open across an `await`.
 * @example
 * const db = openDatabase('/var/lib/agentid/issuer.db')
 * try { db.prepare('SELECT count(*) AS n FROM agents').get() } finally { db.close() }
 */
export function openDatabase(file: string): Database {
  return open(file, true)
}

/**
 * Opens a second connection to an issuer file already opened (and so migrated) by
 * {@link openDatabase}, with the same settings and no migration: the group-commit writer's.
 */
export function openWriterConnection(file: string): Database {
  const db = open(file, false)
  // Each job of a batch runs in its own SAVEPOINT, whose rollback journal SQLite keeps in memory only up
  // to 64 KiB, then in a temporary file for the rest of the transaction: a spawn's job dirties ~20
  // pages, so every batch wrote that file (≈ 100 KiB and 50 write calls per spawn, in the kernel).
  // In memory it stays. Durability is the WAL's: this journal only undoes a failed job.
  db.pragma('temp_store = MEMORY')
  return db
}

function open(file: string, migrating: boolean): Database {
  if (typeof file !== 'string' || file.length === 0) throw new TypeError('openDatabase: file must be a non-empty path')
  let db: Database
  try {
    db = new BetterSqlite3(file)
  } catch (cause) {
    throw new AgentIdError('ERR_INTERNAL', `cannot open database ${file}`, { cause, details: { reason: 'db_open_failed' } })
  }
  try {
    db.pragma('busy_timeout = 5000') // first, so the WAL switch below waits for other connections
    const mode = db.pragma('journal_mode = WAL', { simple: true })
    if (mode !== 'wal' && file !== ':memory:') {
      throw new AgentIdError('ERR_INTERNAL', `database ${file} refused WAL mode (got ${String(mode)})`, { details: { reason: 'db_not_wal' } })
    }
    db.pragma('synchronous = FULL')
    db.pragma('foreign_keys = ON')
    if (db.pragma('foreign_keys', { simple: true }) !== 1) {
      throw new AgentIdError('ERR_INTERNAL', 'this SQLite build does not enforce foreign keys', { details: { reason: 'db_no_foreign_keys' } })
    }
    if (migrating) migrate(db)
    return db
  } catch (err) {
    db.close()
    throw err
  }
}
