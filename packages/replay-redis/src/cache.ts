import { createHash } from 'node:crypto'
import { AgentIdError } from '@agentid/core'
import type { ReplayCache } from '@agentid/verifier'
import { createClient } from '@redis/client'

/** The few node-redis client methods this cache uses (a `createClient()` client from `redis` or `@redis/client`). */
export interface RedisClientLike {
  readonly isOpen: boolean
  readonly isReady: boolean
  set(key: string, value: string, options: { condition: 'NX'; expiration: { type: 'PX'; value: number } }): Promise<unknown>
}

/** Options of {@link createRedisReplayCache}: `url` (the cache makes and owns its client) or `client` (yours). */
export interface RedisReplayCacheOptions {
  /** `redis://[[user]:password@]host:port[/db]` or `rediss://…`. The cache connects on {@link RedisReplayCache.connect} or its first use. */
  url?: string
  /** A node-redis client you created and connect yourself; `close()` leaves it open. */
  client?: RedisClientLike
  /** Prefix of every key written. Default `agentid:replay:`. */
  keyPrefix?: string
  /** How long one check may wait for Redis before it is refused (ERR_UNAVAILABLE). Default 1,000 ms. */
  commandTimeoutMs?: number
  /** Clock in milliseconds since the epoch: entries live until `expiresAtMs` on this clock. Default `Date.now`. */
  clock?: () => number
}

/** A {@link ReplayCache} on Redis, with its connection's lifecycle. */
export interface RedisReplayCache extends ReplayCache {
  /**
   * Records `key` until `expiresAtMs` with one `SET k 1 NX PX ttl`: true the first time, false for a
   * replay. Throws AgentIdError `ERR_UNAVAILABLE` (details.reason `replay_cache_unavailable`) when
   * Redis cannot answer within `commandTimeoutMs`: the verifier then refuses the request (fail closed).
   */
  checkAndStore(key: string, expiresAtMs: number): Promise<boolean>
  /** Connects (for a cache made from `url`); rejects with ERR_UNAVAILABLE when Redis does not answer in time. */
  connect(): Promise<void>
  /** True while Redis is connected and answering. */
  readonly ready: boolean
  /** Closes the connection the cache made (not a `client` you passed). */
  close(): Promise<void>
}

function unavailable(message: string, cause?: unknown): AgentIdError {
  return new AgentIdError('ERR_UNAVAILABLE', `replay cache: ${message}`, { details: { reason: 'replay_cache_unavailable' }, cause })
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(unavailable(`Redis did not answer ${what} within ${ms} ms`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * A {@link ReplayCache} shared by every instance of a service through Redis: each presentation id and
 * DPoP proof (`jti` per proof key) is accepted once across all of them. The verifier's key is hashed
 * (SHA-256) under `keyPrefix`, so keys have a fixed size whatever the `jti`; each lives until the last
 * instant its proof could be accepted (the acceptance window plus clock skew, as the verifier computes).
 *
 * Fails closed: while Redis is down, unreachable or slower than `commandTimeoutMs`, every check throws
 * ERR_UNAVAILABLE and the verifier refuses the request (ERR_REPLAY whose `cause` is that error): a
 * proof is never accepted without being recorded. Commands are not queued while disconnected.
 * @example
 * const replayCache = createRedisReplayCache({ url: 'redis://127.0.0.1:6379' })
 * await replayCache.connect()
 * const verifier = createVerifier({ trustedIssuers, replayCache })
 */
export function createRedisReplayCache(options: RedisReplayCacheOptions): RedisReplayCache {
  if (options === null || typeof options !== 'object') throw new TypeError('createRedisReplayCache: options are required')
  const { url } = options
  if ((url === undefined) === (options.client === undefined)) throw new TypeError('createRedisReplayCache: pass exactly one of url and client')
  if (url !== undefined && (typeof url !== 'string' || !/^rediss?:\/\//.test(url))) throw new TypeError('createRedisReplayCache: url must be a redis:// or rediss:// URL')
  const prefix = options.keyPrefix ?? 'agentid:replay:'
  if (typeof prefix !== 'string') throw new TypeError('createRedisReplayCache: keyPrefix must be a string')
  const timeoutMs = options.commandTimeoutMs ?? 1000
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new TypeError('createRedisReplayCache: commandTimeoutMs must be a positive number')
  const now = options.clock ?? Date.now
  if (typeof now !== 'function') throw new TypeError('createRedisReplayCache: clock must be a function')

  const owned = url !== undefined
    ? createClient({
        url,
        // Refuse at once while disconnected: a queued check would hold the request until Redis returns.
        disableOfflineQueue: true,
        commandsQueueMaxLength: 10_000,
        socket: { connectTimeout: timeoutMs, reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 6), 2000) },
      })
    : undefined
  // node-redis emits 'error' on every failed (re)connection; unhandled it would end the process.
  let lastError: unknown
  owned?.on('error', (error: unknown) => { lastError = error })
  const client: RedisClientLike = owned ?? options.client!
  if (typeof client.set !== 'function') throw new TypeError('createRedisReplayCache: client must be a node-redis client')
  let connecting: Promise<unknown> | undefined
  let closed = false

  async function ensureReady(): Promise<void> {
    if (closed) throw unavailable('the cache is closed')
    if (client.isReady) return
    if (owned === undefined) throw unavailable('the Redis client is not connected', lastError)
    // First use (or connect() still pending): wait for the connection, within the timeout.
    // After a lost connection node-redis reconnects by itself, and commands fail fast meanwhile.
    if (!owned.isOpen && connecting === undefined) {
      connecting = owned.connect()
      connecting.catch((error: unknown) => { lastError = error; connecting = undefined })
    }
    if (connecting !== undefined && !client.isReady) await within(connecting, timeoutMs, 'the connection')
    if (!client.isReady) throw unavailable('Redis is not connected', lastError)
  }

  return Object.freeze({
    async checkAndStore(key: string, expiresAtMs: number): Promise<boolean> {
      if (typeof key !== 'string' || !Number.isFinite(expiresAtMs)) throw new TypeError('checkAndStore(key: string, expiresAtMs: number)')
      const ttl = Math.ceil(expiresAtMs - now())
      if (ttl <= 0) return true // already expired: nothing to remember, nothing it could replay
      await ensureReady()
      const redisKey = prefix + createHash('sha256').update(key).digest('base64url')
      let reply: unknown
      try {
        reply = await within(client.set(redisKey, '1', { condition: 'NX', expiration: { type: 'PX', value: ttl } }), timeoutMs, 'SET NX')
      } catch (error) {
        // No answer in time: the connection may be dead without a reset (a firewall or NAT that forgot
        // it), which node-redis would never notice. A cache that owns its client drops it; the next
        // check connects afresh (within the timeout) and Redis, once reachable, answers again.
        if (error instanceof AgentIdError && owned !== undefined && owned.isOpen && !closed) {
          owned.destroy()
          connecting = undefined
        }
        if (error instanceof AgentIdError) throw error
        throw unavailable('SET NX failed', error)
      }
      if (reply === 'OK') return true
      if (reply === null) return false
      throw unavailable('unexpected reply to SET NX')
    },
    async connect(): Promise<void> {
      await ensureReady()
    },
    get ready(): boolean {
      return !closed && client.isReady
    },
    async close(): Promise<void> {
      if (closed) return
      closed = true
      if (owned === undefined || !owned.isOpen) return
      // A connected client finishes its pending commands; one still (re)connecting is dropped at once.
      if (owned.isReady) await owned.close()
      else owned.destroy()
    },
  })
}
