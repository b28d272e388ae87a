// What an operator sees of the approval webhook's outbox and may do with it: list events, show one
// with its attempts, redeliver one. Shared by the HTTP routes (routes.ts) and the CLI's --db mode.
// Views never carry the signing secret, nor what a receiver answered: an attempt says its HTTP status
// or the kind of failure only (the receiver's words and its network stay in the outbox row).
import { AgentIdError } from '@agentid/core'
import { approvalLogRef } from '../approvals/log-ref.js'
import { actorName, requireAdmin, type Principal } from '../domain/principal.js'
import type { IssuerStorage, WebhookAttemptRow, WebhookEventRow } from '../storage/types.js'
import type { WebhookListCursor } from './store.js'
import type { WebhookSender } from './sender.js'

/** An event's delivery state as operators name it (the outbox's `failed` is `abandoned`). */
export type WebhookEventStatus = 'pending' | 'delivered' | 'abandoned'

/** One event of the outbox as the admin API shows it. */
export interface WebhookEventView {
  id: string
  type: string
  /** The approval request the event is about. */
  approval: string
  status: WebhookEventStatus
  createdAt: string
  /** Pending: when it is due (next attempt); otherwise null. */
  nextAttemptAt: string | null
  /** Delivered or abandoned: when; otherwise null. */
  doneAt: string | null
  attempts: number
  /** The last failed attempt's HTTP status or kind of failure (`HTTP 503`, `timeout`, `network error`…). */
  lastError: string | null
}

/** One delivery attempt as the admin API shows it. */
export interface WebhookAttemptView {
  attempt: number
  at: string
  durationMs: number
  /** The receiver's HTTP status, or null when none came. */
  status: number | null
  /** Null when delivered; else `HTTP <status>`, `redirect refused`, `timeout`, `aborted`, `network error` or `internal error`. */
  error: string | null
}

/** An event with the body that is signed and sent and every attempt, oldest first. */
export interface WebhookEventDetail extends WebhookEventView {
  payload: unknown
  attemptLog: WebhookAttemptView[]
}

export interface WebhookEventPage {
  events: WebhookEventView[]
  /** Pass as `cursor` for the next (older) page; null on the last. */
  nextCursor: string | null
}

export interface WebhookAdminDeps {
  storage: IssuerStorage
  /** The running sender, undefined when no webhook is configured. */
  sender: WebhookSender | undefined
  /** Unix ms. Default `Date.now`. */
  clock?: () => number
}

/** Page sizes of the listing: default and largest. */
export const WEBHOOK_LIST_LIMITS = { default: 50, max: 500 } as const

// `evt_` and the base64url of 16 random bytes (WebhookSender.event).
const EVENT_ID = /^evt_[A-Za-z0-9_-]{22}$/
const STATES: Record<WebhookEventStatus, WebhookEventRow['state']> = { pending: 'pending', delivered: 'delivered', abandoned: 'failed' }

function invalid(field: string, message: string): never {
  throw new AgentIdError('ERR_INVALID_INPUT', `${field}: ${message}`, { details: { field } })
}

/** Checks an event id (`evt_…`); a malformed one is ERR_INVALID_INPUT, never a lookup. */
export function parseWebhookEventId(value: unknown): string {
  if (typeof value !== 'string' || !EVENT_ID.test(value)) invalid('id', 'must be a webhook event id (evt_…)')
  return value
}

/** Validates the query of `GET /v1/webhooks/events`: status, limit (1 to 500) and an opaque cursor. */
export function parseWebhookListQuery(query: unknown): { state: WebhookEventRow['state'] | null; limit: number; cursor: WebhookListCursor | undefined } {
  const q = typeof query === 'object' && query !== null && !Array.isArray(query) ? (query as Record<string, unknown>) : {}
  for (const key of Object.keys(q)) {
    if (!['status', 'limit', 'cursor'].includes(key)) invalid(key.slice(0, 64), 'is not a parameter of this route (status, limit, cursor)')
    if (typeof q[key] !== 'string') invalid(key, 'must be given once, as a string')
  }
  const status = q.status as string | undefined
  if (status !== undefined && !Object.hasOwn(STATES, status)) invalid('status', 'must be pending, delivered or abandoned')
  const limit = q.limit as string | undefined
  if (limit !== undefined && (!/^[1-9][0-9]{0,2}$/.test(limit) || Number(limit) > WEBHOOK_LIST_LIMITS.max)) invalid('limit', `must be an integer from 1 to ${WEBHOOK_LIST_LIMITS.max}`)
  return {
    state: status === undefined ? null : STATES[status as WebhookEventStatus],
    limit: limit === undefined ? WEBHOOK_LIST_LIMITS.default : Number(limit),
    cursor: q.cursor === undefined ? undefined : decodeCursor(q.cursor as string),
  }
}

function encodeCursor(row: WebhookEventRow): string {
  return Buffer.from(JSON.stringify([Number(row.created_ms), row.id])).toString('base64url')
}

function decodeCursor(cursor: string): WebhookListCursor {
  try {
    if (cursor.length > 256 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error('shape')
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown
    if (!Array.isArray(value) || value.length !== 2) throw new Error('shape')
    const [createdMs, id] = value as unknown[]
    if (typeof createdMs !== 'number' || !Number.isSafeInteger(createdMs) || createdMs < 0 || typeof id !== 'string' || !EVENT_ID.test(id)) throw new Error('shape')
    return { createdMs, id }
  } catch {
    return invalid('cursor', 'is not a cursor this issuer returned')
  }
}

const iso = (ms: number | string | null): string | null => (ms === null ? null : new Date(Number(ms)).toISOString())

/** The kind of a recorded failure, never its text (which may quote the receiver). */
function errorClass(status: number | null, error: string | null): string | null {
  if (error === null) return null
  if (error.startsWith('redirect refused')) return 'redirect refused'
  if (status !== null) return `HTTP ${status}`
  const kind = /^(timeout|aborted|internal)\b/.exec(error)?.[1]
  return kind === 'internal' ? 'internal error' : kind ?? 'network error'
}

function view(row: WebhookEventRow, lastStatus: number | null): WebhookEventView {
  const status: WebhookEventStatus = row.state === 'failed' ? 'abandoned' : row.state
  return {
    id: row.id,
    type: row.type,
    approval: row.subject,
    status,
    createdAt: iso(row.created_ms)!,
    nextAttemptAt: row.state === 'pending' ? iso(row.next_ms) : null,
    doneAt: row.state === 'pending' ? null : iso(row.done_ms),
    attempts: Number(row.attempts),
    lastError: errorClass(lastStatus, row.last_error),
  }
}

// The outbox row keeps the last error's text but not its status: the status is read from the text's
// own `HTTP <n>` prefix, which deliver.ts writes for every answer that came.
function statusOfError(error: string | null): number | null {
  const m = error === null ? null : /^HTTP ([1-5][0-9]{2})\b/.exec(error)
  return m ? Number(m[1]) : null
}

function attemptView(a: WebhookAttemptRow): WebhookAttemptView {
  const status = a.status === null ? null : Number(a.status)
  return { attempt: Number(a.attempt), at: iso(a.at_ms)!, durationMs: Number(a.duration_ms), status, error: errorClass(status, a.error) }
}

/**
 * One page of the outbox, newest first (admin only).
 * @example
 * await listWebhookEvents(deps, principal, { status: 'abandoned', limit: '20' })
 */
export async function listWebhookEvents(d: WebhookAdminDeps, principal: Principal, query: unknown): Promise<WebhookEventPage> {
  requireAdmin(principal)
  const q = parseWebhookListQuery(query)
  const rows = await d.storage.webhooks.list(q.state, q.cursor, q.limit + 1)
  const page = rows.slice(0, q.limit)
  return {
    events: page.map((r) => view(r, statusOfError(r.last_error))),
    nextCursor: rows.length > q.limit ? encodeCursor(page[page.length - 1]!) : null,
  }
}

/**
 * One event with its attempts (admin only); ERR_NOT_FOUND when unknown (or pruned: kept 7 days after it settled).
 * @example
 * await getWebhookEvent(deps, principal, 'evt_…')
 */
export async function getWebhookEvent(d: WebhookAdminDeps, principal: Principal, id: unknown): Promise<WebhookEventDetail> {
  requireAdmin(principal)
  const eventId = parseWebhookEventId(id)
  const row = await d.storage.webhooks.get(eventId)
  if (!row) throw new AgentIdError('ERR_NOT_FOUND', 'webhook event not found')
  const attempts = (await d.storage.webhooks.attempts(eventId)).map(attemptView)
  return { ...view(row, statusOfError(row.last_error)), payload: parsePayload(row.payload), attemptLog: attempts }
}

function parsePayload(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return text
  }
}

/**
 * Makes a delivered or abandoned event due again now, with the same webhook-id (receivers dedupe on
 * it), and audits it (`webhook.redelivered`, in the same transaction). It is attempted at once and
 * retried on the usual schedule until its give-up time, counted from its creation: an event older
 * than that gets one attempt. ERR_CONFLICT when no webhook is configured or the event is still
 * pending; ERR_NOT_FOUND when unknown.
 * @example
 * await redeliverWebhookEvent(deps, principal, 'evt_…')
 */
export async function redeliverWebhookEvent(d: WebhookAdminDeps, principal: Principal, id: unknown): Promise<WebhookEventView> {
  requireAdmin(principal)
  const eventId = parseWebhookEventId(id)
  if (!d.sender) {
    throw new AgentIdError('ERR_CONFLICT', 'no approval webhook is configured on this issuer (AGENTID_APPROVALS_WEBHOOK_URL): nothing would deliver the event', { details: { reason: 'webhook_not_configured' } })
  }
  const now = (d.clock ?? Date.now)()
  const row = await d.storage.transaction(async (tx) => {
    const before = await tx.webhooks.get(eventId)
    if (!before) throw new AgentIdError('ERR_NOT_FOUND', 'webhook event not found')
    const after = await tx.webhooks.requeue(eventId, now)
    if (!after) throw new AgentIdError('ERR_CONFLICT', 'the event is still pending: it is delivered or retried already', { details: { reason: 'webhook_pending' } })
    await tx.audit.append(Math.floor(now / 1000), actorName(principal), 'webhook.redelivered', eventId, {
      type: before.type, approval: approvalLogRef(before.subject), previousStatus: before.state === 'failed' ? 'abandoned' : before.state,
    })
    return after
  })
  d.sender.wake()
  return view(row, statusOfError(row.last_error))
}
