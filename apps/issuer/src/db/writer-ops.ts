import type { Database, Statement } from 'better-sqlite3'

/** A failure a write op maps to an AgentIdError: its code and message. */
export interface OpFailure { code: string; message: string }

/**
 * One write of a group-committed job, as plain data (it crosses to the writer thread): the name of
 * a prepared statement, its arguments, and how its outcome maps to a failure of the whole job.
 * - `onUnique`: a PRIMARY KEY / UNIQUE violation fails the job with this failure (other errors fail it as they are);
 * - `onNoChange`: `changes === 0` fails the job with this failure;
 * - `expect`: the statement is a SELECT; unless it returns a row whose `column` equals `equals`, the job fails with `failure`;
 * - `deferMax`: the statement only ever raises a value to its first argument (`SET x = max(x, ?)`), so a
 *   batch runs it once per distinct rest of its arguments, with the largest first argument among the jobs
 *   that committed, after them (in the same transaction): one status-list UPDATE per batch, not per spawn.
 */
export interface WriteOp {
  op: string
  args: readonly (string | number | null | Uint8Array)[]
  onUnique?: OpFailure
  onNoChange?: OpFailure
  expect?: { column: string; equals: string | number | null; failure: OpFailure }
  deferMax?: true
}

/** A job's outcome: committed, failed with a mapped AgentIdError, or failed with another error. */
export type JobOutcome =
  | { ok: true; logIndices: number[] }
  | { ok: false; agentId: OpFailure }
  | { ok: false; error: { message: string; code?: string; name?: string } }

class MappedFailure extends Error {
  constructor(readonly failure: OpFailure) {
    super(failure.message)
  }
}

/** Prepares each named SQL statement of `sql` on `db`. */
export function prepareOps(db: Database, sql: Readonly<Record<string, string>>): Map<string, Statement> {
  return new Map(Object.entries(sql).map(([name, text]) => [name, db.prepare(text)]))
}

// Runs one op; returns the log index a statement with RETURNING log_index (the audit append) gave.
function runOp(stmts: Map<string, Statement>, w: WriteOp): number | undefined {
  const stmt = stmts.get(w.op)
  if (!stmt) throw new Error(`unknown write op ${w.op}`)
  if (w.expect) {
    const row = stmt.get(...w.args) as Record<string, unknown> | undefined
    if (row === undefined || row[w.expect.column] !== w.expect.equals) throw new MappedFailure(w.expect.failure)
    return undefined
  }
  let changes: number
  try {
    if (stmt.reader) return (stmt.get(...w.args) as { log_index: number }).log_index
    changes = stmt.run(...w.args).changes
  } catch (error) {
    const code = (error as { code?: string }).code
    if (w.onUnique && (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE')) throw new MappedFailure(w.onUnique)
    throw error
  }
  if (w.onNoChange && changes === 0) throw new MappedFailure(w.onNoChange)
  return undefined
}

/**
 * Runs `jobs` in one IMMEDIATE transaction, each job in its own SAVEPOINT: a failing job's writes
 * alone are rolled back. Returns one outcome per job (a committed job's: the log indices its audit
 * appends were given, in op order), or throws when the transaction itself fails
 * (then nothing of the batch is committed). With synchronous=FULL, the commit is durable on return.
 */
export function runBatch(db: Database, stmts: Map<string, Statement>, jobs: readonly (readonly WriteOp[])[]): JobOutcome[] {
  const outcomes: JobOutcome[] = []
  // `deferMax` ops of the committed jobs, by op and the rest of their arguments: the largest first argument.
  const deferred = new Map<string, WriteOp>()
  db.transaction(() => {
    for (const job of jobs) {
      try {
        // A nested better-sqlite3 transaction is a SAVEPOINT: a throw rolls back this job only.
        const logIndices: number[] = []
        db.transaction(() => {
          for (const w of job) {
            if (w.deferMax) continue
            const index = runOp(stmts, w)
            if (index !== undefined) logIndices.push(index)
          }
        })()
        for (const w of job) {
          if (!w.deferMax) continue
          const key = `${w.op}\u0000${JSON.stringify(w.args.slice(1))}`
          const kept = deferred.get(key)
          if (!kept || (w.args[0] as number) > (kept.args[0] as number)) deferred.set(key, w)
        }
        outcomes.push({ ok: true, logIndices })
      } catch (error) {
        if (error instanceof MappedFailure) outcomes.push({ ok: false, agentId: error.failure })
        else {
          const e = error as { message?: unknown; code?: unknown; name?: unknown }
          outcomes.push({
            ok: false,
            error: {
              message: String(e.message ?? error),
              ...(typeof e.code === 'string' ? { code: e.code } : {}),
              ...(typeof e.name === 'string' ? { name: e.name } : {}),
            },
          })
        }
      }
    }
    // A failure here fails the whole batch (the transaction rolls back): nothing is half-written.
    for (const w of deferred.values()) runOp(stmts, w)
  }).immediate()
  return outcomes
}
