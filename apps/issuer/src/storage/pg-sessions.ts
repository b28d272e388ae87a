// The operator console's sessions on PostgreSQL (table console_sessions, migration 7), shared by every
// instance on the database. Each call is one statement (autocommit), but a sign-in: its insert, its
// principal's cap and the prune are data-modifying CTEs of one statement, run in a transaction that
// first takes the principal's advisory lock, so sign-ins of one principal racing on several instances
// each count the rows the others committed (the cap is exact, not exceeded by the racers).
import type pg from 'pg'
import { SESSION_LOCK_CLASS } from './pg-migrations.js'
import { PG_NOW_MS, type DatabaseNow, type Query } from './sql-tx.js'
import type { ConsoleSessionRead, ConsoleSessionStore } from './types.js'
import { databaseUnavailable } from './unavailable.js'

// The CTEs see the table as it was before the statement: the cap keeps the principal's newest `max - 1`
// other sessions (the new one is not among them; dead ones, which the prune removes, rank after every
// live one, so a session past its lifetime but used lately never keeps a live one out), the prune
// removes expired rows. A row both delete
// is deleted once.
// The bounds ($8, $9, $10: the caller's now ($12) minus idle, minus lifetime, plus skew) are moved to
// the database's clock ($13 in tests, else clock_timestamp()) by d: a sign-in on an instance whose clock
// is an hour ahead judged every session idle, and one an hour behind judged them all stamped in the future.
const INSERT = `WITH t AS (SELECT floor(${PG_NOW_MS('$13')} / 1000)::bigint - $12::bigint AS d),
  ins AS (INSERT INTO console_sessions (id_hash, principal, key_hash, csrf, created_at, last_seen) VALUES ($1, $2, $3, $4, $5, $6)),
  cap AS (DELETE FROM console_sessions WHERE id_hash IN (SELECT id_hash FROM console_sessions, t WHERE principal = $2 AND id_hash <> $1
    ORDER BY (last_seen <= $8 + t.d OR created_at <= $9 + t.d OR last_seen > $10 + t.d), last_seen DESC, created_at DESC, id_hash COLLATE "C" OFFSET $7)),
  pruned AS (DELETE FROM console_sessions WHERE id_hash IN (SELECT id_hash FROM console_sessions, t
    WHERE last_seen <= $8 + t.d OR created_at <= $9 + t.d OR last_seen > $10 + t.d LIMIT $11))
  SELECT 1`

const GET = `SELECT s.id_hash, s.principal, s.key_hash, s.csrf, s.created_at, s.last_seen, o.name AS orchestrator_name,
  CASE WHEN s.principal = 'admin' THEN (SELECT value FROM settings WHERE key = 'admin_key_hash')
       WHEN o.removed_at IS NULL THEN o.key_hash END AS current_key_hash
  FROM console_sessions s LEFT JOIN orchestrators o ON o.id = s.principal WHERE s.id_hash = $1`

/**
 * The PostgreSQL {@link ConsoleSessionStore}: one statement on the pool through `q`; a sign-in in a
 * transaction of its own on a connection of `pool`.
 * @example
 * const sessions = pgConsoleSessions(query, pool)
 */
export function pgConsoleSessions(q: Query, pool: pg.Pool, dbNowMs: DatabaseNow = () => null): ConsoleSessionStore {
  return {
    insert: async (r, l) => {
      const client = await pool.connect()
      let broken = false
      try {
        await client.query('BEGIN')
        try {
          // Read committed: the INSERT's snapshot is taken after the lock, so it sees every racer's rows.
          await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [SESSION_LOCK_CLASS, r.principal])
          await client.query(INSERT, [r.id_hash, r.principal, r.key_hash, r.csrf, r.created_at, r.last_seen,
            Math.max(0, l.maxPerPrincipal - 1), l.idleBefore, l.createdBefore, l.futureAfter, l.prune, l.now, dbNowMs()])
          await client.query('COMMIT')
        } catch (error) {
          // A dead or silent connection is dropped (the server rolls back) rather than waited on.
          if (databaseUnavailable(error)) broken = true
          else await client.query('ROLLBACK').catch(() => { broken = true })
          throw error
        }
      } finally {
        client.release(broken)
      }
    },
    get: async (idHash) => (await q<ConsoleSessionRead>(GET, [idHash])).rows[0],
    touch: async (idHash, at) => void (await q('UPDATE console_sessions SET last_seen = $1 WHERE id_hash = $2 AND last_seen < $1', [at, idHash])),
    delete: async (idHash) => ((await q('DELETE FROM console_sessions WHERE id_hash = $1', [idHash])).rowCount ?? 0) > 0,
    deletePrincipal: async (principal) => void (await q('DELETE FROM console_sessions WHERE principal = $1', [principal])),
  }
}
