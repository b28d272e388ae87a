import type { ServerResponse } from 'node:http'
import type { IssuerStorage } from '../storage/types.js'
import type { EventBus } from './bus.js'
import { SET_TYP } from './sets.js'

export interface EventStreamOptions {
  storage: IssuerStorage
  bus: EventBus
  /** Signs a SET's claims (the issuer's key, EdDSA) with the given header. */
  sign: (header: { typ: string }, claims: Record<string, unknown>) => Promise<string>
  /** A comment line is sent this often so receivers and proxies see a live stream. Default 15,000 ms. */
  heartbeatMs?: number
  /** While a stream is open, the database is read this often for events written by other processes. Default 1,000 ms. */
  pollMs?: number
  /** Most open streams. Default 1,024; more are refused (503). */
  maxConnections?: number
  /**
   * Most open streams of one client (see {@link EventStream.reserve}). Default 16
   * ({@link DEFAULT_MAX_STREAMS_PER_CLIENT}); more are refused (429), so one client cannot hold them all.
   */
  maxConnectionsPerClient?: number
  /** A receiver this many bytes behind is disconnected (it resumes with Last-Event-ID). Default 1 MiB. */
  maxBufferedBytes?: number
  /** `retry:` sent to receivers, ms. Default 1,000. */
  retryMs?: number
  /**
   * Events older than this are deleted (checked hourly), the newest always kept. Default 7 days: far
   * past the longest credential (24 h), after which its revocation event tells nothing the status lists
   * and its expiry do not. A receiver resuming from a deleted event is told so (`from`).
   */
  retentionSec?: number
  /** Clock in milliseconds (retention). Default `Date.now`. */
  now?: () => number
}

interface Connection {
  res: ServerResponse
  cursor: number
  pumping: boolean
  again: boolean
  closed: boolean
}

const BATCH = 256

/** Default of {@link EventStreamOptions.maxConnectionsPerClient}. */
export const DEFAULT_MAX_STREAMS_PER_CLIENT = 16

/** Why {@link EventStream.reserve} refused a stream: all streams taken, or all of this client's. */
export type StreamRefusal = 'total' | 'client'

/**
 * The issuer's server-sent-events stream of signed SETs. Each event is `id: <seq>`, `event: set`,
 * `data: <compact SET>`; a stream starts with `retry:` and an `event: ready` whose data
 * `{ "head": n, "from": n }` says where it starts (after `from`). A receiver that sends
 * `Last-Event-ID: n` gets every event after n, in order, then the live ones; without it, only events
 * written from now on. A Last-Event-ID beyond the head (another database) starts at the head, one
 * before the oldest event kept (the others deleted by retention) starts there, and `from` tells the
 * receiver so (it then refetches its status lists). Each connection reads the events from the database in order, so no
 * event is skipped or sent twice whatever the announcements do.
 */
export class EventStream {
  private readonly connections = new Set<Connection>()
  private readonly signed = new Map<number, Promise<string>>()
  private readonly unsubscribe: () => void
  private readonly heartbeat: NodeJS.Timeout
  private readonly poll: NodeJS.Timeout
  private readonly pruneTimer: NodeJS.Timeout
  private head: number
  private closed = false
  readonly maxConnections: number
  readonly maxConnectionsPerClient: number
  // Streams reserved (opening or open), in all and per client: counted before attach() awaits the
  // database, so that a burst of requests cannot pass the limits.
  private reserved = 0
  private readonly perClient = new Map<string, number>()
  private readonly maxBuffered: number
  private readonly retryMs: number

  constructor(private readonly o: EventStreamOptions) {
    this.maxConnections = o.maxConnections ?? 1024
    this.maxConnectionsPerClient = o.maxConnectionsPerClient ?? DEFAULT_MAX_STREAMS_PER_CLIENT
    if (!Number.isSafeInteger(this.maxConnectionsPerClient) || this.maxConnectionsPerClient < 1) throw new TypeError('EventStream: maxConnectionsPerClient must be a positive integer')
    this.maxBuffered = o.maxBufferedBytes ?? 1024 * 1024
    this.retryMs = o.retryMs ?? 1000
    this.head = 0
    this.unsubscribe = o.bus.subscribe(() => this.wake())
    this.heartbeat = setInterval(() => {
      for (const c of this.connections) this.write(c, ': keep-alive\n\n')
    }, o.heartbeatMs ?? 15_000)
    this.heartbeat.unref()
    this.poll = setInterval(() => this.wake(), o.pollMs ?? 1000)
    this.poll.unref()
    const retention = o.retentionSec ?? 7 * 86_400
    const now = o.now ?? Date.now
    this.pruneTimer = setInterval(() => {
      o.storage.events.prune(Math.floor(now() / 1000) - retention).catch(() => {
        // a busy database: the next hour
      })
    }, 3_600_000)
    this.pruneTimer.unref()
  }

  /** Open streams. */
  get size(): number {
    return this.connections.size
  }

  /**
   * Takes a slot for a stream of `client` (its key: see `clientKey` in routes.ts), before it opens;
   * the returned function gives it back (once; call it when the response closes, whatever happened).
   * Refused when `maxConnections` slots are taken ('total') or `maxConnectionsPerClient` of this
   * client's ('client').
   */
  reserve(client: string): (() => void) | StreamRefusal {
    if (this.reserved >= this.maxConnections) return 'total'
    const held = this.perClient.get(client) ?? 0
    if (held >= this.maxConnectionsPerClient) return 'client'
    this.reserved++
    this.perClient.set(client, held + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      this.reserved--
      const left = (this.perClient.get(client) ?? 1) - 1
      if (left <= 0) this.perClient.delete(client)
      else this.perClient.set(client, left)
    }
  }

  /** Streams `client` holds (opening or open). */
  heldBy(client: string): number {
    return this.perClient.get(client) ?? 0
  }

  /** The highest sequence number written. */
  currentHead(): Promise<number> {
    return this.o.storage.events.head()
  }

  /**
   * Serves one stream on `res` (headers not sent yet), after `lastEventId` (validated by the route)
   * or from now on. The response stays open until the receiver leaves or {@link close}.
   */
  async attach(res: ServerResponse, lastEventId: number | undefined): Promise<void> {
    const head = await this.o.storage.events.head()
    let from = lastEventId === undefined || lastEventId > head ? head : lastEventId
    // Events after `from` were deleted (retention): resume from what is kept, and say so in `from`.
    const oldest = await this.o.storage.events.oldest()
    if (oldest !== null && from < oldest - 1) from = oldest - 1
    const c: Connection = { res, cursor: from, pumping: false, again: false, closed: false }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    })
    res.flushHeaders()
    this.connections.add(c)
    const drop = () => this.drop(c)
    res.on('close', drop)
    res.on('error', drop)
    this.write(c, `retry: ${this.retryMs}\n\nevent: ready\ndata: ${JSON.stringify({ head, from })}\n\n`)
    void this.pump(c)
  }

  /**
   * Reads the database and sends what each stream has not seen. With no stream open it reads nothing
   * (a stream reads the head itself when it attaches): an instance nobody listens to does not poll.
   */
  async wake(): Promise<void> {
    if (this.closed || this.connections.size === 0) return
    let head: number
    try {
      head = await this.o.storage.events.head()
    } catch {
      return
    }
    if (head === this.head || this.closed) return
    this.head = head
    for (const c of this.connections) void this.pump(c)
  }

  /** Ends every stream and stops the timers (the server is closing). */
  close(): void {
    if (this.closed) return
    this.closed = true
    clearInterval(this.heartbeat)
    clearInterval(this.poll)
    clearInterval(this.pruneTimer)
    this.unsubscribe()
    for (const c of [...this.connections]) {
      this.drop(c)
      c.res.end()
    }
  }

  private async pump(c: Connection): Promise<void> {
    if (c.pumping) {
      c.again = true
      return
    }
    c.pumping = true
    try {
      do {
        c.again = false
        for (;;) {
          const rows = await this.o.storage.events.after(c.cursor, BATCH)
          if (rows.length === 0 || c.closed) break
          const jwts = await Promise.all(rows.map((r) => this.sign(r.seq, r.claims_json)))
          if (c.closed) break
          let chunk = ''
          rows.forEach((r, i) => { chunk += `id: ${r.seq}\nevent: set\ndata: ${jwts[i]}\n\n` })
          c.cursor = rows[rows.length - 1]!.seq
          this.write(c, chunk)
          if (rows.length < BATCH) break
        }
      } while (c.again && !c.closed)
    } catch {
      // A failed read or signature: drop the stream; the receiver resumes from its last id.
      this.drop(c)
      c.res.destroy()
    } finally {
      c.pumping = false
    }
  }

  private sign(seq: number, claimsJson: string): Promise<string> {
    let jwt = this.signed.get(seq)
    if (jwt === undefined) {
      jwt = this.o.sign({ typ: SET_TYP }, JSON.parse(claimsJson) as Record<string, unknown>)
      jwt.catch(() => this.signed.delete(seq))
      this.signed.set(seq, jwt)
      if (this.signed.size > 4096) this.signed.delete(this.signed.keys().next().value!)
    }
    return jwt
  }

  private write(c: Connection, text: string): void {
    if (c.closed) return
    // A receiver that does not read is cut off rather than buffered without bound; it resumes with Last-Event-ID.
    if (c.res.writableLength > this.maxBuffered) {
      this.drop(c)
      c.res.destroy()
      return
    }
    c.res.write(text)
  }

  private drop(c: Connection): void {
    c.closed = true
    this.connections.delete(c)
  }
}
