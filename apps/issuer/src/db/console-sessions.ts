// The operator console's sessions on SQLite (table console_sessions, migration 10). Reads run on the
// issuer's connection; writes are group-committed jobs (Store.commit), so their fsync happens on the
// writer thread, off the event loop, like every other write of a request.
import type { Database } from 'better-sqlite3'
import type { WriteOp } from './writer-ops.js'
import type { ConsoleSessionLimits, ConsoleSessionRead, ConsoleSessionRow, ConsoleSessionStore } from '../storage/types.js'

/** The writer's statements for sessions (merged into the group commit's statements, domain/store.ts). */
export const CONSOLE_SESSION_WRITE_SQL: Readonly<Record<string, string>> = {
  sessionInsert: 'INSERT INTO console_sessions (id_hash, principal, key_hash, csrf, created_at, last_seen) VALUES (?, ?, ?, ?, ?, ?)',
  // The principal's other sessions past the newest `max - 1` (least recently used first) go; dead ones
  // (idle, past their lifetime, stamped in the future: what the prune removes) rank after every live one.
  sessionCap: `DELETE FROM console_sessions WHERE id_hash IN (SELECT id_hash FROM console_sessions WHERE principal = ? AND id_hash <> ?
    ORDER BY (last_seen <= ? OR created_at <= ? OR last_seen > ?), last_seen DESC, created_at DESC, id_hash LIMIT -1 OFFSET ?)`,
  sessionPrune: `DELETE FROM console_sessions WHERE id_hash IN (SELECT id_hash FROM console_sessions
    WHERE last_seen <= ? OR created_at <= ? OR last_seen > ? LIMIT ?)`,
  sessionTouch: 'UPDATE console_sessions SET last_seen = ? WHERE id_hash = ? AND last_seen < ?',
  sessionDelete: 'DELETE FROM console_sessions WHERE id_hash = ?',
  sessionDeletePrincipal: 'DELETE FROM console_sessions WHERE principal = ?',
}

// The session with what its principal's key is now: the admin key in settings, or the orchestrator's
// while it is not disabled (one read per console request, no second look-up).
const GET = `SELECT s.id_hash, s.principal, s.key_hash, s.csrf, s.created_at, s.last_seen, o.name AS orchestrator_name,
  CASE WHEN s.principal = 'admin' THEN (SELECT value FROM settings WHERE key = 'admin_key_hash')
       WHEN o.removed_at IS NULL THEN o.key_hash END AS current_key_hash
  FROM console_sessions s LEFT JOIN orchestrators o ON o.id = s.principal WHERE s.id_hash = ?`

const NONE = { code: 'ERR_NOT_FOUND', message: 'no such console session' }

/**
 * The SQLite {@link ConsoleSessionStore} on `db`, writing through `commit` (the store's group commit).
 * @example
 * const sessions = sqliteConsoleSessions(store.db, (ops) => store.commit(ops))
 */
export function sqliteConsoleSessions(db: Database, commit: (ops: readonly WriteOp[]) => Promise<unknown>): ConsoleSessionStore {
  const get = db.prepare(GET)
  return {
    insert: async (r: ConsoleSessionRow, l: ConsoleSessionLimits) => {
      await commit([
        { op: 'sessionInsert', args: [r.id_hash, r.principal, r.key_hash, r.csrf, r.created_at, r.last_seen] },
        { op: 'sessionCap', args: [r.principal, r.id_hash, l.idleBefore, l.createdBefore, l.futureAfter, Math.max(0, l.maxPerPrincipal - 1)] },
        { op: 'sessionPrune', args: [l.idleBefore, l.createdBefore, l.futureAfter, l.prune] },
      ])
    },
    get: async (idHash) => get.get(idHash) as ConsoleSessionRead | undefined,
    touch: async (idHash, at) => void (await commit([{ op: 'sessionTouch', args: [at, idHash, at] }])),
    delete: async (idHash) => {
      try {
        await commit([{ op: 'sessionDelete', args: [idHash], onNoChange: NONE }])
        return true
      } catch (error) {
        if ((error as { code?: unknown }).code === NONE.code) return false
        throw error
      }
    },
    deletePrincipal: async (principal) => void (await commit([{ op: 'sessionDeletePrincipal', args: [principal] }])),
  }
}
