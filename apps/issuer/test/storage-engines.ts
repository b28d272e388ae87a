// The two storage engines, for suites run once on each: a fresh SQLite file, or a fresh PostgreSQL
// database (which throws when the server is absent: callers skip the run first, or fail it under
// AGENTID_REQUIRE_SERVICES=1).
import { join } from 'node:path'
import { openStorage, type IssuerStorage, type PgStorageOptions } from '../src/storage/index.js'
import { tempDir } from './engine-helpers.js'
import { tempPgDatabase } from './pg-helpers.js'

/** `open`'s `pg` options apply on PostgreSQL only (e.g. a test's stand-in for the database's clock). */
export interface Engine { name: 'sqlite' | 'postgres'; fresh: () => Promise<{ open: (pg?: PgStorageOptions) => Promise<IssuerStorage>; cleanup: () => Promise<void>; url?: string }> }

/** Both engines; `absent` is pgAbsent()'s answer (why PostgreSQL cannot be reached, or null). */
export function storageEngines(absent: string | null): Engine[] {
  return [
    {
      name: 'sqlite',
      fresh: async () => {
        const { dir, cleanup } = tempDir()
        const file = join(dir, 'issuer.db')
        return { open: () => openStorage({ file }), cleanup: async () => cleanup() }
      },
    },
    {
      name: 'postgres',
      fresh: async () => {
        if (absent !== null) throw new Error(`AGENTID_REQUIRE_SERVICES=1 but ${absent}`)
        const db = await tempPgDatabase()
        return { open: (pg?: PgStorageOptions) => openStorage({ databaseUrl: db.url, file: '-', ...(pg ? { pg } : {}) }), cleanup: db.drop, url: db.url }
      },
    },
  ]
}
