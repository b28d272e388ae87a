// PostgreSQL for the storage tests: 127.0.0.1:5432 (trust auth) unless AGENTID_TEST_PG_URL names
// another server. Suites skip with the reason printed when it cannot be reached, and fail instead
// under AGENTID_REQUIRE_SERVICES=1 (CI).
import { randomBytes } from 'node:crypto'
import pg from 'pg'

export const PG_ADMIN_URL = process.env.AGENTID_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const REQUIRE_SERVICES = process.env.AGENTID_REQUIRE_SERVICES === '1'

/** null when PostgreSQL answers, else why not. */
export async function pgAbsent(): Promise<string | null> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 2000 })
  try {
    await client.connect()
    await client.query('SELECT 1')
    return null
  } catch (error) {
    return `PostgreSQL unreachable at ${PG_ADMIN_URL.replace(/\/\/[^@]*@/, '//')}: ${(error as Error).message}`
  } finally {
    await client.end().catch(() => {})
  }
}

/** A new empty database on the test server, and how to drop it. */
export async function tempPgDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `agentid_t_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  const url = new URL(PG_ADMIN_URL)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL })
      await c.connect()
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      } finally {
        await c.end()
      }
    },
  }
}
