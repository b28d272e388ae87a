// The approval webhook's sender: delivers the outbox (events committed with the approval writes that
// caused them), retrying with backoff until delivered or given up. Every instance on a database runs
// one; an event is leased to one sender at a time (storage `webhooks.claim`), so each is attempted by
// one instance at a time and, barring a crash mid-attempt, delivered once. A restart resumes whatever
// is pending; a sender that died mid-attempt leaves a lease that expires after the attempt's timeout
// (then another sender, or the restarted one, retries it: receivers dedupe on webhook-id).
import { randomBytes, randomUUID } from 'node:crypto'
import type { IssuerStorage, WebhookEventRow, WebhookNext } from '../storage/types.js'
import { approvalLogRef } from '../approvals/log-ref.js'
import { retryDelayMs, MAX_RETRY_DELAY_MS } from './backoff.js'
import { parseWebhookConfig, type WebhookConfig } from './config.js'
import { deliverOnce, type DeliveryResult } from './deliver.js'
import { webhookSigner } from './sign.js'

/** How long delivered and given-up events (and their attempts) are kept, ms (7 days). */
export const WEBHOOK_RETENTION_MS = 7 * 86_400_000

export interface WebhookSenderOptions {
  storage: IssuerStorage
  config: WebhookConfig
  fetch?: typeof globalThis.fetch
  /** Unix ms. Default `Date.now`. */
  clock?: () => number
  /** [0, 1). Default `Math.random` (the jitter). */
  random?: () => number
  /** Attempts in flight at once (default 8). */
  concurrency?: number
  /** Longest sleep between two looks at the outbox, ms (events of other instances, retries): default 1,000. */
  pollMs?: number
  /** A JSON log line (a give-up, a failing database). Default: one line on stderr. */
  log?: (line: Record<string, unknown>) => void
}

/** An event to enqueue: its row, built with the sender's clock and a fresh webhook-id. */
export type NewWebhookEvent = Pick<WebhookEventRow, 'id' | 'type' | 'subject' | 'payload' | 'created_ms' | 'next_ms'>

/**
 * What the public issuer log says of a failed attempt: its HTTP status or the kind of failure. The log
 * is served to anyone and never forgets, while the full error (`DeliveryResult.error`, kept in the
 * outbox and the operator's log line) carries the receiver's own words (its answer's first characters)
 * or its network (host names, addresses, ports).
 */
export function publicError(r: DeliveryResult): string {
  if (r.status !== null) return `HTTP ${r.status}`
  const kind = /^(timeout|aborted|network|internal)\b/.exec(r.error ?? '')?.[1]
  return kind === 'timeout' ? 'timeout' : kind === 'aborted' ? 'aborted' : kind === 'internal' ? 'internal error' : 'network error'
}

export class WebhookSender {
  /** This sender's lease owner id. */
  readonly owner = `snd_${randomUUID()}`
  readonly #o: WebhookSenderOptions
  readonly #config: Required<WebhookConfig>
  readonly #sign: ReturnType<typeof webhookSigner>
  readonly #clock: () => number
  readonly #fetch: typeof globalThis.fetch
  readonly #stop = new AbortController()
  readonly #inflight = new Set<Promise<void>>()
  #loop: Promise<void> | undefined
  #wake: (() => void) | undefined
  #woken = false
  #prunedAt = 0
  #errorLoggedAt = 0

  constructor(o: WebhookSenderOptions) {
    this.#o = o
    this.#config = parseWebhookConfig(o.config)
    this.#sign = webhookSigner(this.#config.secret)
    this.#clock = o.clock ?? Date.now
    this.#fetch = o.fetch ?? globalThis.fetch
  }

  /** The lease of one attempt: its timeout and room to record it. */
  get leaseMs(): number {
    return this.#config.timeoutMs + 30_000
  }

  /**
   * The outbox row of a new event: `payload` is the exact body that will be signed and sent; due now.
   * @example
   * await tx.webhooks.enqueue(sender.event('approval.requested', id, JSON.stringify(body)))
   */
  event(type: string, subject: string, payload: string): NewWebhookEvent {
    const now = this.#clock()
    return { id: `evt_${randomBytes(16).toString('base64url')}`, type, subject, payload, created_ms: now, next_ms: now }
  }

  /** Starts delivering (idempotent): what is pending, including what a previous run left, goes first. */
  start(): void {
    this.#loop ??= this.#run()
  }

  /** Looks at the outbox now (an event was just committed). */
  wake(): void {
    this.#woken = true
    this.#wake?.()
  }

  /** Stops: attempts in flight are cut and recorded (due again at once, for the next sender), then it resolves. */
  async stop(): Promise<void> {
    this.#stop.abort()
    this.#wake?.()
    await this.#loop
    await Promise.allSettled([...this.#inflight])
  }

  /**
   * Claims what is due (as much as there is room for) and attempts it; resolves when those attempts are
   * recorded. Returns how many were attempted. (The loop does this; tests call it directly.)
   */
  async runOnce(): Promise<number> {
    const runs = await this.#claimAndStart()
    await Promise.all(runs)
    return runs.length
  }

  async #claimAndStart(): Promise<Promise<void>[]> {
    const room = (this.#o.concurrency ?? 8) - this.#inflight.size
    if (room <= 0 || this.#stop.signal.aborted) return []
    const now = this.#clock()
    const rows = await this.#o.storage.webhooks.claim(this.owner, now, now + this.leaseMs, room)
    return rows.map((row) => {
      const run = this.#attempt(row).finally(() => {
        this.#inflight.delete(run)
        this.wake()
      })
      this.#inflight.add(run)
      return run
    })
  }

  // A plain read first, a claim (a write: on SQLite the file's write lock) only when something is due.
  async #run(): Promise<void> {
    const pollMs = this.#o.pollMs ?? 1000
    while (!this.#stop.signal.aborted) {
      this.#woken = false
      let waitMs = pollMs
      try {
        const due = await this.#o.storage.webhooks.nextDueMs()
        const now = this.#clock()
        if (due !== undefined && due <= now) {
          // Started some: look again at once (more may be due than there was room for). None: the due
          // ones wait for room (a finishing attempt wakes the loop) or were just taken by another instance.
          if ((await this.#claimAndStart()).length > 0) continue
        } else if (due !== undefined) waitMs = Math.min(due - now, pollMs)
        await this.#prune()
      } catch (error) {
        this.#logError('approval webhook: the outbox cannot be read', error)
      }
      if (waitMs > 0 && !this.#woken) await this.#sleep(waitMs)
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.#wake = undefined
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.#wake = done
      if (this.#stop.signal.aborted) done()
    })
  }

  async #prune(): Promise<void> {
    const now = this.#clock()
    if (now - this.#prunedAt < 3_600_000) return
    this.#prunedAt = now
    await this.#o.storage.webhooks.prune(now - WEBHOOK_RETENTION_MS)
  }

  async #attempt(row: WebhookEventRow): Promise<void> {
    const atMs = this.#clock()
    const t0 = performance.now()
    let result: DeliveryResult
    try {
      result = await deliverOnce({
        url: this.#config.url, body: row.payload, headers: this.#sign(row.id, Math.floor(atMs / 1000), row.payload),
        timeoutMs: this.#config.timeoutMs, fetch: this.#fetch, stop: this.#stop.signal,
      })
    } catch (error) {
      result = { ok: false, status: null, error: `internal: ${String((error as Error)?.message ?? error).slice(0, 200)}` }
    }
    const attempt = { atMs, durationMs: Math.round(performance.now() - t0), status: result.status, error: result.error }
    const now = this.#clock()
    const next = this.#next(row, result, now)
    try {
      if (next.state !== 'failed') {
        await this.#o.storage.webhooks.settle(row.id, this.owner, attempt, next)
        return
      }
      // Given up: its record and its audit event (an entry of the issuer log) commit together.
      const attempts = row.attempts + 1
      const recorded = await this.#o.storage.transaction(async (tx) => {
        if (!(await tx.webhooks.settle(row.id, this.owner, attempt, next))) return false
        await tx.audit.append(Math.floor(now / 1000), 'issuer', 'webhook.abandoned', row.id, { type: row.type, approval: approvalLogRef(row.subject), attempts, lastError: publicError(result) })
        return true
      })
      if (recorded) this.#log({ msg: 'approval webhook given up', eventId: row.id, type: row.type, approval: row.subject, attempts, lastError: result.error })
    } catch (error) {
      // Unrecorded: the lease runs out and the event is attempted again (receivers dedupe on webhook-id).
      this.#logError('approval webhook: an attempt could not be recorded', error)
    }
  }

  #next(row: WebhookEventRow, r: DeliveryResult, now: number): WebhookNext {
    if (r.ok) return { state: 'delivered', doneMs: now }
    if (r.aborted) return { state: 'pending', nextMs: now }
    const delay = Math.min(Math.max(retryDelayMs(row.attempts + 1, this.#config.retryMs, this.#o.random), r.retryAfterMs ?? 0), MAX_RETRY_DELAY_MS)
    const nextMs = now + delay
    if (nextMs > row.created_ms + this.#config.giveUpSec * 1000) return { state: 'failed', doneMs: now }
    return { state: 'pending', nextMs }
  }

  #log(line: Record<string, unknown>): void {
    if (this.#o.log) this.#o.log(line)
    else process.stderr.write(`${JSON.stringify(line)}\n`)
  }

  // A down database fails every look: logged at most once a minute.
  #logError(msg: string, error: unknown): void {
    const now = this.#clock()
    if (now - this.#errorLoggedAt < 60_000) return
    this.#errorLoggedAt = now
    this.#log({ msg, error: String((error as Error)?.message ?? error).slice(0, 300) })
  }
}
