// Operator console sessions: an admin or orchestrator key is exchanged once for a random session id
// carried in an HttpOnly cookie. Sessions live in the issuer's database (storage.consoleSessions:
// SQLite or PostgreSQL), so a restart keeps them and every instance on a shared database knows them;
// only the id's SHA-256 is stored. A session never outlives its idle timeout or its absolute lifetime,
// nor the key it signed in with (a replaced admin key, a disabled orchestrator).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { AgentIdError } from '@agentid/core'
import type { Principal } from '../domain/service.js'
import type { ConsoleSessionRead, ConsoleSessionStore } from '../storage/types.js'

/** A signed-in operator. */
export interface ConsoleSession {
  /** Who the session acts as: the admin, or one orchestrator (which then sees only its own agents). */
  readonly principal: Extract<Principal, { kind: 'admin' } | { kind: 'orchestrator' }>
  /** The CSRF token every state-changing call must echo in the `x-agentid-csrf` header. */
  readonly csrf: string
  /** Unix seconds. */
  readonly createdAt: number
  /** Unix seconds, as stored: at most {@link ConsoleSessions.touchStepSec} behind the last request. */
  readonly lastSeen: number
}

export interface ConsoleSessionOptions {
  /** Idle timeout, seconds (default 900: 15 minutes). */
  idleSec?: number
  /** Absolute lifetime, seconds, however active (default 28,800: 8 hours). */
  maxAgeSec?: number
  /** Most sessions one principal (the admin, or one orchestrator) keeps; its least recently used go first (default 100). */
  maxPerPrincipal?: number
  /** Milliseconds (default Date.now). */
  clock?: () => number
}

/** Why a session was refused (`details.reason` of the ERR_UNAUTHENTICATED). */
export type ConsoleSessionRefusal = 'no_session' | 'expired' | 'clock' | 'malformed' | 'principal_disabled' | 'key_replaced'

/** Stamps this far ahead of the clock are another instance's skew; past it, the clock moved back (or the row is forged). */
export const CLOCK_SKEW_SEC = 30
/** Expired rows a sign-in removes at most (bounded work per call; see the issuer README). */
export const PRUNE_PER_SIGN_IN = 100

const hashId = (id: string) => createHash('sha256').update(id, 'utf8').digest('base64url')
const TOKEN = /^[A-Za-z0-9_-]{43}$/
const KEY_HASH = /^[0-9a-f]{64}$/

/** The shape of a session id this issuer hands out: 32 random bytes, base64url (43 characters). */
export function isSessionIdShape(value: unknown): value is string {
  return typeof value === 'string' && TOKEN.test(value)
}

/** Constant-time string equality (different lengths are unequal). */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8')
  const y = Buffer.from(b, 'utf8')
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y)
}

const refuse = (reason: ConsoleSessionRefusal, message = 'no console session, or it expired: sign in') =>
  new AgentIdError('ERR_UNAUTHENTICATED', message, { details: { reason } })

// A row as the database returned it, checked before it is believed (a row written by hand, or by a
// broken instance, is refused like an expired one).
function wellFormed(row: ConsoleSessionRead, idHash: string): boolean {
  return row.id_hash === idHash && typeof row.principal === 'string' && row.principal.length > 0 && typeof row.key_hash === 'string'
    && typeof row.csrf === 'string' && TOKEN.test(row.csrf) && Number.isSafeInteger(row.created_at) && Number.isSafeInteger(row.last_seen)
    && row.last_seen >= row.created_at
}

/**
 * The console's sessions over the issuer's store, keyed by SHA-256 of the session id (the id itself is
 * never stored). `lastSeen` is written only when it moved by more than {@link touchStepSec}, so a
 * console request costs no database write; a session therefore ends between `idleSec - touchStepSec`
 * and `idleSec` seconds after its last request, never later.
 * @example
 * const sessions = new ConsoleSessions(storage.consoleSessions, { idleSec: 900 })
 * const { id } = await sessions.create({ kind: 'admin' }, hashApiKey(adminKey))
 * await sessions.open(id) // the session (its idle timer restarted), or ERR_UNAUTHENTICATED
 */
export class ConsoleSessions {
  readonly idleSec: number
  readonly maxAgeSec: number
  readonly maxPerPrincipal: number
  /** `lastSeen` is written when it moved by more than this: 60 s, or a tenth of the idle timeout when shorter. */
  readonly touchStepSec: number
  readonly #store: ConsoleSessionStore
  readonly #clock: () => number

  constructor(store: ConsoleSessionStore, options: ConsoleSessionOptions = {}) {
    this.#store = store
    this.idleSec = options.idleSec ?? 900
    this.maxAgeSec = options.maxAgeSec ?? 28_800
    this.maxPerPrincipal = options.maxPerPrincipal ?? 100
    this.#clock = options.clock ?? Date.now
    if (!Number.isSafeInteger(this.idleSec) || this.idleSec < 10) throw new TypeError('ConsoleSessions: idleSec must be an integer of at least 10')
    if (!Number.isSafeInteger(this.maxAgeSec) || this.maxAgeSec < this.idleSec) throw new TypeError('ConsoleSessions: maxAgeSec must be an integer of at least idleSec')
    if (!Number.isSafeInteger(this.maxPerPrincipal) || this.maxPerPrincipal < 1) throw new TypeError('ConsoleSessions: maxPerPrincipal must be a positive integer')
    this.touchStepSec = Math.min(60, Math.floor(this.idleSec / 10))
  }

  #now(): number {
    return Math.floor(this.#clock() / 1000)
  }

  /**
   * A new session for `principal`, signed in with the key whose hash (`hashApiKey`) is `keyHash`: a
   * fresh random id and CSRF token. The id is returned once, for the cookie. The principal's least
   * recently used sessions past `maxPerPrincipal` and some expired rows go in the same transaction.
   */
  async create(principal: ConsoleSession['principal'], keyHash: string): Promise<{ id: string; session: ConsoleSession }> {
    if (typeof keyHash !== 'string' || !KEY_HASH.test(keyHash)) throw new TypeError('ConsoleSessions.create: keyHash must be a SHA-256 hex digest (hashApiKey)')
    const id = randomBytes(32).toString('base64url')
    const now = this.#now()
    const session: ConsoleSession = { principal, csrf: randomBytes(32).toString('base64url'), createdAt: now, lastSeen: now }
    await this.#store.insert(
      { id_hash: hashId(id), principal: principalKey(principal), key_hash: keyHash, csrf: session.csrf, created_at: now, last_seen: now },
      { maxPerPrincipal: this.maxPerPrincipal, idleBefore: now - this.idleSec, createdBefore: now - this.maxAgeSec, futureAfter: now + CLOCK_SKEW_SEC, prune: PRUNE_PER_SIGN_IN, now },
    )
    return { id, session }
  }

  /**
   * The live session of `id`, its principal re-read from the store (an orchestrator's current name);
   * its idle timer restarted. Throws ERR_UNAUTHENTICATED (`details.reason`: {@link ConsoleSessionRefusal})
   * otherwise, and deletes what it refused: the row, or every session of a disabled orchestrator.
   */
  async open(id: unknown): Promise<ConsoleSession> {
    if (!isSessionIdShape(id)) throw refuse('no_session')
    const idHash = hashId(id)
    const row = await this.#store.get(idHash)
    if (!row) throw refuse('no_session')
    const now = this.#now()
    const drop = async (reason: ConsoleSessionRefusal, message?: string) => {
      await this.#store.delete(idHash)
      return refuse(reason, message)
    }
    if (!wellFormed(row, idHash)) throw await drop('malformed')
    if (row.last_seen > now + CLOCK_SKEW_SEC) throw await drop('clock')
    if (now - row.last_seen >= this.idleSec || now - row.created_at >= this.maxAgeSec) throw await drop('expired')
    let principal: ConsoleSession['principal']
    if (row.principal === 'admin') {
      if (row.current_key_hash === null || !sameSecret(row.current_key_hash, row.key_hash)) throw await drop('key_replaced', 'the admin key was replaced: sign in again')
      principal = { kind: 'admin' }
    } else {
      // A disabled (or unknown) orchestrator: every session of it ends, on every instance (the rows are shared).
      if (row.orchestrator_name === null || row.current_key_hash === null) {
        await this.#store.deletePrincipal(row.principal)
        throw refuse('principal_disabled', 'this orchestrator has been disabled: sign in again')
      }
      if (!sameSecret(row.current_key_hash, row.key_hash)) throw await drop('key_replaced', 'this orchestrator\'s key was replaced: sign in again')
      principal = { kind: 'orchestrator', id: row.principal, name: row.orchestrator_name }
    }
    let lastSeen = row.last_seen
    if (now - lastSeen > this.touchStepSec) {
      await this.#store.touch(idHash, now)
      lastSeen = now
    }
    return { principal, csrf: row.csrf, createdAt: row.created_at, lastSeen }
  }

  /** {@link open}, with undefined instead of the refusal. */
  async get(id: unknown): Promise<ConsoleSession | undefined> {
    try {
      return await this.open(id)
    } catch (error) {
      if (error instanceof AgentIdError && error.code === 'ERR_UNAUTHENTICATED') return undefined
      throw error
    }
  }

  /** Ends the session of `id` (logout), on every instance. True when there was one. */
  async delete(id: unknown): Promise<boolean> {
    if (!isSessionIdShape(id)) return false
    return this.#store.delete(hashId(id))
  }

  /** Ends every session of orchestrator `id` (it was disabled), on every instance. */
  async endOrchestrator(id: string): Promise<void> {
    if (typeof id !== 'string' || id.length === 0 || id === 'admin') throw new TypeError('ConsoleSessions.endOrchestrator: id must be an orchestrator id')
    await this.#store.deletePrincipal(id)
  }

  /** Seconds until `session` expires if left idle (never past its absolute lifetime). */
  expiresIn(session: ConsoleSession): number {
    const now = this.#now()
    return Math.max(0, Math.min(session.lastSeen + this.idleSec, session.createdAt + this.maxAgeSec) - now)
  }
}

// How the store names a principal: 'admin', or the orchestrator's id (ids are orch_…, never 'admin').
function principalKey(p: ConsoleSession['principal']): string {
  if (p.kind === 'admin') return 'admin'
  if (p.kind === 'orchestrator' && typeof p.id === 'string' && p.id.length > 0 && p.id !== 'admin') return p.id
  throw new TypeError('ConsoleSessions: the principal must be the admin or an orchestrator')
}
