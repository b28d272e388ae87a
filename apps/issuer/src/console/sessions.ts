// Operator console sessions: an admin or orchestrator key is exchanged once for a random session id
// carried in an HttpOnly cookie. Sessions live in this process's memory only (see the issuer README,
// "Operator console"): a restart signs every operator out, nothing about them is written to the
// database, and a session never outlives its idle timeout or its absolute lifetime.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Principal } from '../domain/service.js'

/** A signed-in operator. */
export interface ConsoleSession {
  /** Who the session acts as: the admin, or one orchestrator (which then sees only its own agents). */
  readonly principal: Extract<Principal, { kind: 'admin' } | { kind: 'orchestrator' }>
  /** The CSRF token every state-changing call must echo in the `x-agentid-csrf` header. */
  readonly csrf: string
  readonly createdAt: number
  lastSeen: number
}

export interface ConsoleSessionOptions {
  /** Idle timeout, seconds (default 900: 15 minutes). */
  idleSec?: number
  /** Absolute lifetime, seconds, however active (default 28,800: 8 hours). */
  maxAgeSec?: number
  /** Most sessions kept at once; the least recently used goes first (default 10,000). */
  maxSessions?: number
  /** Milliseconds (default Date.now). */
  clock?: () => number
}

const hashId = (id: string) => createHash('sha256').update(id, 'utf8').digest('base64url')

/** The shape of a session id this issuer hands out: 32 random bytes, base64url (43 characters). */
export function isSessionIdShape(value: unknown): value is string {
  return typeof value === 'string' && /^[A-Za-z0-9_-]{43}$/.test(value)
}

/** Constant-time string equality (different lengths are unequal). */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8')
  const y = Buffer.from(b, 'utf8')
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y)
}

/**
 * The session table, in memory, keyed by SHA-256 of the session id (the id itself is never kept).
 * @example
 * const sessions = new ConsoleSessions({ idleSec: 900 })
 * const { id, session } = sessions.create({ kind: 'admin' })
 * sessions.get(id) // the session, its idle timer restarted
 */
export class ConsoleSessions {
  readonly idleSec: number
  readonly maxAgeSec: number
  readonly #max: number
  readonly #clock: () => number
  // Insertion order = least recently used first (get() re-inserts).
  readonly #byHash = new Map<string, ConsoleSession>()

  constructor(options: ConsoleSessionOptions = {}) {
    this.idleSec = options.idleSec ?? 900
    this.maxAgeSec = options.maxAgeSec ?? 28_800
    this.#max = options.maxSessions ?? 10_000
    this.#clock = options.clock ?? Date.now
    if (!Number.isSafeInteger(this.idleSec) || this.idleSec < 10) throw new TypeError('ConsoleSessions: idleSec must be an integer of at least 10')
    if (!Number.isSafeInteger(this.maxAgeSec) || this.maxAgeSec < this.idleSec) throw new TypeError('ConsoleSessions: maxAgeSec must be an integer of at least idleSec')
  }

  #now(): number {
    return Math.floor(this.#clock() / 1000)
  }

  /** A new session with a fresh random id and CSRF token. The id is returned once, for the cookie. */
  create(principal: ConsoleSession['principal']): { id: string; session: ConsoleSession } {
    const id = randomBytes(32).toString('base64url')
    const now = this.#now()
    const session: ConsoleSession = { principal, csrf: randomBytes(32).toString('base64url'), createdAt: now, lastSeen: now }
    this.#byHash.set(hashId(id), session)
    while (this.#byHash.size > this.#max) this.#byHash.delete(this.#byHash.keys().next().value!)
    return { id, session }
  }

  /** The live session of `id` (its idle timer restarted), or undefined; an expired one is dropped. */
  get(id: unknown): ConsoleSession | undefined {
    if (!isSessionIdShape(id)) return undefined
    const key = hashId(id)
    const session = this.#byHash.get(key)
    if (!session) return undefined
    const now = this.#now()
    if (now - session.lastSeen >= this.idleSec || now - session.createdAt >= this.maxAgeSec) {
      this.#byHash.delete(key)
      return undefined
    }
    session.lastSeen = now
    this.#byHash.delete(key)
    this.#byHash.set(key, session)
    return session
  }

  /** Ends the session of `id` (logout). True when there was one. */
  delete(id: unknown): boolean {
    return isSessionIdShape(id) && this.#byHash.delete(hashId(id))
  }

  /** Ends every session `predicate` selects (an orchestrator disabled: its sessions go). Returns how many. */
  deleteWhere(predicate: (session: ConsoleSession) => boolean): number {
    let n = 0
    for (const [key, session] of this.#byHash) if (predicate(session)) { this.#byHash.delete(key); n++ }
    return n
  }

  /** Seconds until `session` expires if left idle (never past its absolute lifetime). */
  expiresIn(session: ConsoleSession): number {
    const now = this.#now()
    return Math.max(0, Math.min(session.lastSeen + this.idleSec, session.createdAt + this.maxAgeSec) - now)
  }

  get size(): number {
    return this.#byHash.size
  }
}
