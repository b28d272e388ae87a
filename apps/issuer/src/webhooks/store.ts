// The webhook outbox on SQLite: events written in the transaction of the approval write that causes them,
// claimed by the sender under a lease, settled after each attempt (one row per attempt kept). The
// PostgreSQL statements are in storage/sql-tx.ts; the rows and the semantics are the same.
import type { Database, Statement } from 'better-sqlite3'

/**
 * The migration that creates the outbox (numbered in db/migrations.ts). Times are unix milliseconds,
 * unlike the rest of the schema: backoff and leases run below a second.
 */
export const WEBHOOKS_MIGRATION_SQL = `
-- One row per event: payload is the exact JSON body signed and sent; id is its webhook-id, the same
-- on every attempt. A pending row is due at next_ms; a sender holds it while lease_until_ms is ahead.
CREATE TABLE webhook_outbox (
  id             TEXT PRIMARY KEY,
  type           TEXT NOT NULL,
  subject        TEXT NOT NULL,
  payload        TEXT NOT NULL,
  state          TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
  created_ms     INTEGER NOT NULL,
  next_ms        INTEGER NOT NULL,
  attempts       INTEGER NOT NULL DEFAULT 0,
  lease_owner    TEXT,
  lease_until_ms INTEGER,
  done_ms        INTEGER,
  last_error     TEXT
) STRICT;
CREATE INDEX webhook_outbox_due ON webhook_outbox (next_ms) WHERE state = 'pending';
CREATE INDEX webhook_outbox_done ON webhook_outbox (done_ms) WHERE state <> 'pending';
CREATE INDEX webhook_outbox_subject ON webhook_outbox (subject);
-- Every attempt: when, how long, the HTTP status (null: no response) and why it failed (null: delivered).
CREATE TABLE webhook_attempts (
  event_id    TEXT NOT NULL REFERENCES webhook_outbox (id) ON DELETE CASCADE,
  attempt     INTEGER NOT NULL,
  at_ms       INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  status      INTEGER,
  error       TEXT,
  PRIMARY KEY (event_id, attempt)
) STRICT;
`

/**
 * The migration that indexes the outbox by creation, for the operators' listing (newest first, all or
 * of one state, a page after a cursor): without it each page sorted the whole table (150 ms for 10^5
 * events on SQLite, the event loop held all along).
 */
export const WEBHOOKS_LISTING_MIGRATION_SQL = `
CREATE INDEX webhook_outbox_created ON webhook_outbox (created_ms, id);
CREATE INDEX webhook_outbox_state_created ON webhook_outbox (state, created_ms, id);
`

/** One event of the outbox. */
export interface WebhookEventRow {
  id: string; type: string; subject: string; payload: string; state: 'pending' | 'delivered' | 'failed'
  created_ms: number; next_ms: number; attempts: number; lease_owner: string | null; lease_until_ms: number | null
  done_ms: number | null; last_error: string | null
}

/** One delivery attempt of an event. */
export interface WebhookAttemptRow { event_id: string; attempt: number; at_ms: number; duration_ms: number; status: number | null; error: string | null }

/** Where a page of the outbox listing ends: its last event's created_ms and id. */
export interface WebhookListCursor { createdMs: number; id: string }

/** What an attempt came to, as the sender records it. */
export interface WebhookAttempt { atMs: number; durationMs: number; status: number | null; error: string | null }

/** The row after the attempt: delivered, due again at `nextMs`, or given up. */
export type WebhookNext = { state: 'delivered'; doneMs: number } | { state: 'pending'; nextMs: number } | { state: 'failed'; doneMs: number }

/**
 * The listing's statement of one shape (of one state or all; after a cursor or from the newest): one
 * statement per shape, so each is a walk down one index (row values: a range on both columns).
 */
export function webhookListSql(byState: boolean, after: boolean): string {
  const where = [...(byState ? ['state = @state'] : []), ...(after ? ['(created_ms, id) < (@ms, @id)'] : [])]
  return `SELECT * FROM webhook_outbox ${where.length ? `WHERE ${where.join(' AND ')} ` : ''}ORDER BY created_ms DESC, id DESC LIMIT @limit`
}

/** Prepared statements over the outbox tables. */
export class WebhookStore {
  private readonly s: Record<string, Statement>

  constructor(readonly db: Database) {
    const p = (sql: string) => db.prepare(sql)
    this.s = {
      insert: p('INSERT INTO webhook_outbox (id, type, subject, payload, created_ms, next_ms) VALUES (?, ?, ?, ?, ?, ?)'),
      claim: p(`UPDATE webhook_outbox SET lease_owner = ?, lease_until_ms = ? WHERE id IN (SELECT id FROM webhook_outbox
        WHERE state = 'pending' AND next_ms <= ? AND (lease_until_ms IS NULL OR lease_until_ms <= ?) ORDER BY next_ms, id LIMIT ?) RETURNING *`),
      settle: p(`UPDATE webhook_outbox SET attempts = attempts + 1, state = ?, next_ms = ?, done_ms = ?, last_error = ?, lease_owner = NULL, lease_until_ms = NULL
        WHERE id = ? AND lease_owner = ? AND state = 'pending' RETURNING attempts`),
      attempt: p('INSERT INTO webhook_attempts (event_id, attempt, at_ms, duration_ms, status, error) VALUES (?, ?, ?, ?, ?, ?)'),
      nextDue: p("SELECT min(max(next_ms, coalesce(lease_until_ms, 0))) AS n FROM webhook_outbox WHERE state = 'pending'"),
      get: p('SELECT * FROM webhook_outbox WHERE id = ?'),
      bySubject: p('SELECT * FROM webhook_outbox WHERE subject = ? ORDER BY created_ms, id'),
      attempts: p('SELECT * FROM webhook_attempts WHERE event_id = ? ORDER BY attempt'),
      prune: p("DELETE FROM webhook_outbox WHERE state <> 'pending' AND done_ms < ?"),
      list: p(webhookListSql(false, false)),
      listAfter: p(webhookListSql(false, true)),
      listState: p(webhookListSql(true, false)),
      listStateAfter: p(webhookListSql(true, true)),
      requeue: p(`UPDATE webhook_outbox SET state = 'pending', next_ms = ?, done_ms = NULL, lease_owner = NULL, lease_until_ms = NULL
        WHERE id = ? AND state <> 'pending' RETURNING *`),
    }
  }

  insert(r: Pick<WebhookEventRow, 'id' | 'type' | 'subject' | 'payload' | 'created_ms' | 'next_ms'>): void {
    this.s.insert!.run(r.id, r.type, r.subject, r.payload, r.created_ms, r.next_ms)
  }

  /** Leases up to `limit` due events to `owner` until `leaseUntilMs`; run it in a transaction. */
  claim(owner: string, nowMs: number, leaseUntilMs: number, limit: number): WebhookEventRow[] {
    return this.s.claim!.all(owner, leaseUntilMs, nowMs, nowMs, limit) as WebhookEventRow[]
  }

  /** Records an attempt of an event `owner` holds; false (nothing written) when its lease was lost. Run it in a transaction. */
  settle(id: string, owner: string, a: WebhookAttempt, next: WebhookNext): boolean {
    const nextMs = next.state === 'pending' ? next.nextMs : a.atMs
    const doneMs = next.state === 'pending' ? null : next.doneMs
    const row = this.s.settle!.get(next.state, nextMs, doneMs, a.error, id, owner) as { attempts: number } | undefined
    if (!row) return false
    this.s.attempt!.run(id, row.attempts, a.atMs, a.durationMs, a.status, a.error)
    return true
  }

  /** When the next pending event may be claimed (ms), or undefined when none is pending. */
  nextDueMs(): number | undefined {
    return (this.s.nextDue!.get() as { n: number | null }).n ?? undefined
  }

  get(id: string): WebhookEventRow | undefined {
    return this.s.get!.get(id) as WebhookEventRow | undefined
  }

  bySubject(subject: string): WebhookEventRow[] {
    return this.s.bySubject!.all(subject) as WebhookEventRow[]
  }

  attempts(id: string): WebhookAttemptRow[] {
    return this.s.attempts!.all(id) as WebhookAttemptRow[]
  }

  /** Newest first (created_ms, id), of one state or all, strictly before the cursor `before`. */
  list(state: WebhookEventRow['state'] | null, before: WebhookListCursor | undefined, limit: number): WebhookEventRow[] {
    const statement = state === null ? (before ? this.s.listAfter! : this.s.list!) : before ? this.s.listStateAfter! : this.s.listState!
    return statement.all({ limit, ...(state === null ? {} : { state }), ...(before ? { ms: before.createdMs, id: before.id } : {}) }) as WebhookEventRow[]
  }

  /** A delivered or failed event made pending and due at `nowMs` (its attempts kept); undefined when unknown or still pending. */
  requeue(id: string, nowMs: number): WebhookEventRow | undefined {
    return this.s.requeue!.get(nowMs, id) as WebhookEventRow | undefined
  }

  /** Deletes delivered and failed events settled before `beforeMs` (their attempts with them). */
  prune(beforeMs: number): number {
    return this.s.prune!.run(beforeMs).changes
  }
}
