import { decodeJwt, VerificationError, type DecodedJwt, type VerificationErrorCode } from '@agentid/core'
import { isRecord } from './util.js'

/** JOSE `typ` of a Security Event Token (RFC 8417 §2.3). */
export const SET_TYP = 'secevent+jwt'
const CREDENTIAL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/credential-change'
const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked'

/** How revocations reach this verifier: `push` while subscribed to a live event stream, else `polling` (status lists, `statusTtlMs`). */
export type RevocationMode = 'push' | 'polling'

/** A fetch whose response body can be read as a stream (the WHATWG fetch: `globalThis.fetch`, undici). */
export type StreamFetch = (url: string, init: { headers: Record<string, string>; signal: AbortSignal }) => Promise<{
  ok: boolean
  status: number
  headers: { get(name: string): string | null }
  body: { getReader(): { read(): Promise<{ done: boolean; value?: Uint8Array }>; cancel(reason?: unknown): Promise<void> } } | null
}>

/** createVerifier's `revocationStream` option: subscribe to an issuer's event stream (`GET /v1/events`). */
export interface RevocationStreamOptions {
  /** The issuer's event stream, e.g. `https://issuer.example/v1/events`. */
  url: string
  /** Fetch with a streaming body. Default `globalThis.fetch`. */
  fetch?: StreamFetch
  /** Largest event (one SET with its framing), and longest line, accepted; larger drops the stream. Default 16 KiB. */
  maxEventBytes?: number
  /** A stream silent this long (no event, no keep-alive) is dropped and reconnected. Default 45,000 ms. */
  idleTimeoutMs?: number
  /** First reconnection delay; doubled after each failure up to `maxBackoffMs`. Defaults 250 and 30,000 ms. */
  minBackoffMs?: number
  maxBackoffMs?: number
  /** Revocations remembered (oldest dropped first; the status lists still hold them). Default 100,000. */
  maxRevocations?: number
  /** Told of every stream failure (a VerificationError: ERR_STATUS_UNAVAILABLE, ERR_MALFORMED, ERR_SIGNATURE_INVALID, ERR_UNTRUSTED_ISSUER, ...). */
  onError?: (error: VerificationError) => void
}

/** The revocations received from event streams, bounded. */
export class RevocationRegistry {
  private readonly entries = new Set<string>()
  private changes = 0

  constructor(private readonly max: number) {
    if (!Number.isSafeInteger(max) || max < 1) throw new TypeError('createVerifier: revocationStream.maxRevocations must be a positive integer')
  }

  get size(): number {
    return this.entries.size
  }

  /** Counts the revocations added (and so the oldest dropped): the registry's answers change only with it. */
  get version(): number {
    return this.changes
  }

  private add(key: string): void {
    if (this.entries.has(key)) return
    this.entries.add(key)
    this.changes++
    if (this.entries.size > this.max) this.entries.delete(this.entries.values().next().value!)
  }

  /** A credential (identity credential or delegation link) named by its signer and `jti`. */
  revokeCredential(signer: string, jti: string): void {
    this.add(`c ${signer} ${jti}`)
  }

  /** Every credential and token of `agent` issued by `issuer`. */
  revokeAgent(issuer: string, agent: string): void {
    this.add(`a ${issuer} ${agent}`)
  }

  // The size test first: without an event stream (or before any revocation) no key is built.
  credentialRevoked(signer: string, jti: string | null | undefined): boolean {
    return this.entries.size !== 0 && typeof jti === 'string' && this.entries.has(`c ${signer} ${jti}`)
  }

  agentRevoked(issuer: string, agent: string): boolean {
    return this.entries.size !== 0 && this.entries.has(`a ${issuer} ${agent}`)
  }
}

interface SubscriptionDeps {
  trustedIssuers: ReadonlySet<string>
  /** Checks the SET's signature with `iss`'s key (throws VerificationError). */
  verifySignature: (jwt: DecodedJwt, iss: string) => Promise<void>
  registry: RevocationRegistry
  /** Called when events may have been missed (first connection, or a resumption the issuer could not honour). */
  onGap: () => void
}

function streamError(code: VerificationErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown): VerificationError {
  return new VerificationError(code, `revocation stream: ${message}`, { details, cause })
}

class Dropped extends Error {
  constructor(readonly error: VerificationError) {
    super(error.message)
  }
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw new TypeError(`createVerifier: revocationStream.${name} must be a positive number`)
  return value
}

/**
 * A subscription to an issuer's server-sent-events stream of Security Event Tokens. Each SET is
 * verified (typ `secevent+jwt`, EdDSA, signed by a trusted issuer, one event, no `sub` or `exp`) before
 * anything is recorded; a revoked credential, delegation link or agent is then refused at once. A
 * stream that sends anything it cannot verify is dropped (the verifier falls back to its status lists)
 * and resumed after a back-off from the last event it verified (`Last-Event-ID`).
 */
export class RevocationSubscription {
  private readonly fetch: StreamFetch
  private readonly maxEventBytes: number
  private readonly idleMs: number
  private readonly minBackoff: number
  private readonly maxBackoff: number
  private lastId: string | undefined
  private live = false
  private closed = false
  private failures = 0
  private abort: AbortController | undefined
  private retryTimer: NodeJS.Timeout | undefined
  private wake: (() => void) | undefined
  private running: Promise<void> | undefined

  constructor(
    private readonly options: RevocationStreamOptions,
    private readonly deps: SubscriptionDeps,
  ) {
    if (!isRecord(options) || typeof options.url !== 'string' || !/^https?:\/\//.test(options.url)) throw new TypeError('createVerifier: revocationStream.url must be an http(s) URL')
    const f = options.fetch ?? (globalThis.fetch as unknown as StreamFetch | undefined)
    if (typeof f !== 'function') throw new TypeError('createVerifier: no fetch available for revocationStream; pass revocationStream.fetch')
    this.fetch = f
    this.maxEventBytes = positive('maxEventBytes', options.maxEventBytes, 16 * 1024)
    this.idleMs = positive('idleTimeoutMs', options.idleTimeoutMs, 45_000)
    this.minBackoff = positive('minBackoffMs', options.minBackoffMs, 250)
    this.maxBackoff = positive('maxBackoffMs', options.maxBackoffMs, 30_000)
    if (options.onError !== undefined && typeof options.onError !== 'function') throw new TypeError('createVerifier: revocationStream.onError must be a function')
    this.running = this.loop()
  }

  mode(): RevocationMode {
    return this.live ? 'push' : 'polling'
  }

  async close(): Promise<void> {
    this.closed = true
    this.live = false
    clearTimeout(this.retryTimer)
    this.wake?.()
    this.abort?.abort()
    await this.running
  }

  private report(error: VerificationError): void {
    try {
      this.options.onError?.(error)
    } catch {
      // an observer's failure is its own
    }
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      const abort = new AbortController()
      this.abort = abort
      const startedAt = Date.now()
      try {
        await this.read(abort)
        throw new Dropped(streamError('ERR_STATUS_UNAVAILABLE', 'the stream ended'))
      } catch (error) {
        this.live = false
        abort.abort()
        if (this.closed) return
        this.report(error instanceof Dropped ? error.error : streamError('ERR_STATUS_UNAVAILABLE', 'the stream failed', {}, error))
      }
      // A stream that stayed up a while was healthy: reconnect soon; else back off further.
      if (Date.now() - startedAt > 30_000) this.failures = 0
      const delay = Math.min(this.maxBackoff, this.minBackoff * 2 ** Math.min(this.failures, 20))
      this.failures++
      await new Promise<void>((resolve) => {
        this.wake = resolve
        this.retryTimer = setTimeout(resolve, delay * (0.75 + Math.random() * 0.5))
      })
    }
  }

  private async read(abort: AbortController): Promise<void> {
    let idle: NodeJS.Timeout | undefined
    const armIdle = () => {
      clearTimeout(idle)
      idle = setTimeout(() => abort.abort(new Dropped(streamError('ERR_STATUS_UNAVAILABLE', `no data for ${this.idleMs} ms`))), this.idleMs)
    }
    armIdle()
    const sentLastId = this.lastId
    try {
      const headers: Record<string, string> = { accept: 'text/event-stream', 'cache-control': 'no-store' }
      if (sentLastId !== undefined) headers['last-event-id'] = sentLastId
      let response: Awaited<ReturnType<StreamFetch>>
      try {
        response = await this.fetch(this.options.url, { headers, signal: abort.signal })
      } catch (cause) {
        if (abort.signal.reason instanceof Dropped) throw abort.signal.reason
        throw new Dropped(streamError('ERR_STATUS_UNAVAILABLE', 'cannot connect', { url: this.options.url }, cause))
      }
      if (!response.ok || response.body === null) throw new Dropped(streamError('ERR_STATUS_UNAVAILABLE', `HTTP ${response.status}`, { status: response.status }))
      const type = response.headers.get('content-type') ?? ''
      if (!/^text\/event-stream\s*(;|$)/i.test(type)) throw new Dropped(streamError('ERR_MALFORMED', 'not a text/event-stream response', { contentType: type }))
      const reader = response.body.getReader()
      const decoder = new TextDecoder('utf-8', { fatal: true })
      let buffer = ''
      let event = { id: undefined as string | undefined, name: '', data: '', hasData: false }
      const dispatch = async () => {
        const e = event
        event = { id: undefined, name: '', data: '', hasData: false }
        if (e.name === '' && !e.hasData && e.id === undefined) return
        await this.handle(e.name || 'message', e.data, e.id, sentLastId)
      }
      for (;;) {
        let chunk: { done: boolean; value?: Uint8Array }
        try {
          chunk = await reader.read()
        } catch (cause) {
          if (abort.signal.reason instanceof Dropped) throw abort.signal.reason
          throw new Dropped(streamError('ERR_STATUS_UNAVAILABLE', 'the connection failed', {}, cause))
        }
        if (chunk.done) return
        armIdle()
        try {
          buffer += decoder.decode(chunk.value, { stream: true })
        } catch (cause) {
          throw new Dropped(streamError('ERR_MALFORMED', 'the stream is not UTF-8', {}, cause))
        }
        // Complete lines only; a trailing CR may be the first half of CRLF.
        for (;;) {
          const m = /\r\n|\r|\n/.exec(buffer)
          if (m === null || (m[0] === '\r' && m.index === buffer.length - 1)) break
          const line = buffer.slice(0, m.index)
          buffer = buffer.slice(m.index + m[0].length)
          if (line === '') {
            await dispatch()
            continue
          }
          if (line.startsWith(':')) continue
          const colon = line.indexOf(':')
          const field = colon < 0 ? line : line.slice(0, colon)
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
          if (field === 'data') {
            event.data += event.hasData ? `\n${value}` : value
            event.hasData = true
          } else if (field === 'event') event.name = value
          else if (field === 'id') event.id = value
          if (event.data.length + event.name.length > this.maxEventBytes) throw new Dropped(streamError('ERR_MALFORMED', `an event is larger than ${this.maxEventBytes} bytes`))
        }
        // Bounded: a line that never ends (or an event that never ends) drops the stream.
        if (buffer.length > this.maxEventBytes) throw new Dropped(streamError('ERR_MALFORMED', `a line is longer than ${this.maxEventBytes} bytes`))
      }
    } finally {
      clearTimeout(idle)
    }
  }

  private async handle(name: string, data: string, id: string | undefined, sentLastId: string | undefined): Promise<void> {
    if (name === 'ready') {
      let from: unknown
      try {
        from = (JSON.parse(data) as { from?: unknown }).from
      } catch {
        from = undefined
      }
      if (typeof from !== 'number' || !Number.isSafeInteger(from) || from < 0) throw new Dropped(streamError('ERR_MALFORMED', 'ready event without a valid from'))
      // Events after `from` follow. Anything between what we had and `from` may be missed: the
      // status lists are fetched afresh (the first connection too: lists cached before it are older).
      if (sentLastId === undefined || String(from) !== sentLastId) this.deps.onGap()
      this.lastId = String(from)
      this.live = true
      return
    }
    if (name !== 'set') return // other event names: not ours, ignored
    if (!this.live) throw new Dropped(streamError('ERR_MALFORMED', 'an event before ready'))
    if (id === undefined || !/^(0|[1-9][0-9]{0,14})$/.test(id)) throw new Dropped(streamError('ERR_MALFORMED', 'an event without a valid id'))
    if (BigInt(id) <= BigInt(this.lastId ?? '0')) throw new Dropped(streamError('ERR_MALFORMED', 'event ids must increase', { id }))
    await this.apply(data)
    this.lastId = id
    this.failures = 0
  }

  /** Verifies one SET and records what it revokes. */
  private async apply(token: string): Promise<void> {
    let jwt: DecodedJwt
    try {
      jwt = decodeJwt(token, this.maxEventBytes) // EdDSA only, strict base64url and JSON
    } catch (cause) {
      throw new Dropped(cause instanceof VerificationError ? streamError(cause.code, `SET: ${cause.message}`, {}, cause) : streamError('ERR_MALFORMED', 'SET is not a JWT', {}, cause))
    }
    if (jwt.header.typ !== SET_TYP) throw new Dropped(streamError('ERR_MALFORMED', `SET typ must be ${SET_TYP}`, { typ: jwt.header.typ ?? null }))
    const p = jwt.payload
    const iss = p.iss
    if (typeof iss !== 'string') throw new Dropped(streamError('ERR_MALFORMED', 'SET iss is missing'))
    if (!this.deps.trustedIssuers.has(iss)) throw new Dropped(streamError('ERR_UNTRUSTED_ISSUER', 'SET from an untrusted issuer', { iss }))
    try {
      await this.deps.verifySignature(jwt, iss)
    } catch (cause) {
      throw new Dropped(cause instanceof VerificationError ? streamError(cause.code, `SET: ${cause.message}`, { iss }, cause) : streamError('ERR_SIGNATURE_INVALID', 'SET signature', { iss }, cause))
    }
    // Signed by a trusted issuer: now the SSF/CAEP profile.
    if (typeof p.jti !== 'string' || p.jti === '') throw new Dropped(streamError('ERR_MALFORMED', 'SET jti is missing'))
    if (typeof p.iat !== 'number' || !Number.isFinite(p.iat)) throw new Dropped(streamError('ERR_MALFORMED', 'SET iat is missing'))
    if (p.sub !== undefined || p.exp !== undefined) throw new Dropped(streamError('ERR_MALFORMED', 'SET must carry neither sub nor exp'))
    const events = p.events
    if (!isRecord(events) || Object.keys(events).length !== 1) throw new Dropped(streamError('ERR_MALFORMED', 'SET must carry exactly one event'))
    const [type, event] = Object.entries(events)[0]!
    const sub = p.sub_id
    if (!isRecord(event) || !isRecord(sub) || typeof sub.format !== 'string') throw new Dropped(streamError('ERR_MALFORMED', 'SET event or sub_id is malformed'))
    if (type === CREDENTIAL_CHANGE) {
      if (typeof event.change_type !== 'string' || typeof event.credential_type !== 'string') throw new Dropped(streamError('ERR_MALFORMED', 'credential-change without change_type or credential_type'))
      if (event.change_type !== 'revoke') return
      if (sub.format !== 'jwt_id' || typeof sub.iss !== 'string' || typeof sub.jti !== 'string' || sub.jti === '') throw new Dropped(streamError('ERR_MALFORMED', 'credential-change revoke: sub_id must be a jwt_id'))
      // An issuer revokes its own credentials, or links signed by agents (whose status it keeps);
      // never the credentials of another trusted issuer.
      if (sub.iss !== iss && this.deps.trustedIssuers.has(sub.iss)) throw new Dropped(streamError('ERR_UNTRUSTED_ISSUER', "SET revokes another issuer's credential", { iss, subject: sub.iss }))
      this.deps.registry.revokeCredential(sub.iss, sub.jti)
    } else if (type === SESSION_REVOKED) {
      if (sub.format !== 'did' || typeof sub.url !== 'string' || !sub.url.startsWith('did:')) throw new Dropped(streamError('ERR_MALFORMED', 'session-revoked: sub_id must be a did'))
      this.deps.registry.revokeAgent(iss, sub.url)
    }
    // Other event types: not understood, ignored (SSF §4.2.3).
  }
}
