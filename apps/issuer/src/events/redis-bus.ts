import { createClient } from '@redis/client'
import type { EventBus } from './bus.js'

export interface RedisEventBusOptions {
  /** `redis://…` or `rediss://…`. */
  url: string
  /** Pub/sub channel shared by the issuer instances of one database. Default `agentid:events`. */
  channel?: string
  /** Told of connection and publish failures (the database poll covers them meanwhile). */
  onError?: (error: unknown) => void
  /**
   * Every instance publishes a heartbeat on the channel this often; a subscriber that hears nothing
   * for three of them reconnects both its connections. Default 5,000 ms.
   */
  heartbeatMs?: number
}

/**
 * An {@link EventBus} across issuer instances through Redis pub/sub: an instance that commits a
 * revocation publishes its new sequence number; every instance's event stream then reads the events
 * from the database at once instead of at its next poll. Pub/sub delivers at most once: a message
 * lost while Redis is down only delays the events to the next poll (`pollMs`), never loses them. The
 * instance's own streams are woken directly, without the round trip.
 * @example
 * const eventBus = createRedisEventBus({ url: 'redis://127.0.0.1:6379' })
 * const service = await IssuerService.open({ …, eventBus })
 */
export function createRedisEventBus(options: RedisEventBusOptions): EventBus {
  if (typeof options?.url !== 'string' || !/^rediss?:\/\//.test(options.url)) throw new TypeError('createRedisEventBus: url must be a redis:// or rediss:// URL')
  const channel = options.channel ?? 'agentid:events'
  const report = (error: unknown) => {
    try {
      options.onError?.(error)
    } catch {
      // the observer's failure is its own
    }
  }
  const socket = { connectTimeout: 2000, reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 6), 2000) }
  // Publishing never waits for a reconnection: a lost wake-up costs one poll interval.
  const pub = createClient({ url: options.url, disableOfflineQueue: true, socket })
  const sub = createClient({ url: options.url, socket })
  pub.on('error', report)
  sub.on('error', report)
  const listeners = new Set<(seq: number) => void>()
  const deliver = (seq: number) => {
    for (const l of [...listeners]) {
      try {
        l(seq)
      } catch {
        // a listener's failure is its own
      }
    }
  }
  let closed = false
  let heard = Date.now()
  const onMessage = (message: string) => {
    heard = Date.now()
    const seq = Number(message)
    if (Number.isSafeInteger(seq) && seq >= 0) deliver(seq) // other messages (heartbeats) only say the channel is alive
  }
  const subscribe = () => sub.connect().then(() => sub.subscribe(channel, onMessage)).catch(report)
  pub.connect().catch(report)
  void subscribe()
  // A connection that goes silent without a reset (a firewall or NAT forgetting the flow) is never
  // noticed by the client: wake-ups would be lost for good (events then wait for the database poll).
  // Heartbeats on the channel tell: hearing none for three periods, both connections start afresh.
  const heartbeatMs = options.heartbeatMs ?? 5000
  const watchdog = setInterval(() => {
    if (closed) return
    if (pub.isReady) pub.publish(channel, 'heartbeat').catch(report)
    if (Date.now() - heard <= 3 * heartbeatMs) return
    heard = Date.now()
    report(new Error(`no message on ${channel} for ${3 * heartbeatMs} ms: reconnecting to Redis`))
    for (const c of [pub, sub]) if (c.isOpen) c.destroy()
    pub.connect().catch(report)
    void subscribe()
  }, heartbeatMs)
  watchdog.unref()
  return {
    publish(seq) {
      deliver(seq)
      if (closed || !pub.isReady) return
      pub.publish(channel, String(seq)).catch(report)
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    async close() {
      if (closed) return
      closed = true
      clearInterval(watchdog)
      listeners.clear()
      for (const c of [pub, sub]) {
        if (!c.isOpen) continue
        if (c.isReady) await c.close().catch(() => c.destroy())
        else c.destroy()
      }
    },
  }
}
