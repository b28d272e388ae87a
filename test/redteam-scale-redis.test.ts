// Red team, scale-out: Redis faults under the shared replay cache (@agentid/replay-redis). The cache
// reaches the real Redis through a TCP proxy in the test that blackholes, resets, or strands (silent
// for good, no reset: a firewall or NAT that forgot the flow) its connections; the shared server is
// never stopped, and every key is under a prefix of this run. Needs Redis at 127.0.0.1:6379 (or
// AGENTID_REDIS_URL): skipped with the reason printed when absent, failed when AGENTID_REQUIRE_SERVICES=1.
import { randomUUID } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { AgentIdError } from '@agentid/core'
import { createRedisReplayCache, type RedisReplayCache } from '@agentid/replay-redis'
import { proxiedUrl } from './redteam-scale-proxy.js'
import { redisAbsent } from './verifier-process.js'
import { sleep } from './harness.js'

const REDIS_URL = process.env.AGENTID_REDIS_URL ?? 'redis://127.0.0.1:6379'
const absent = await redisAbsent(REDIS_URL)
const REQUIRE = process.env.AGENTID_REQUIRE_SERVICES === '1'
if (absent !== null && !REQUIRE) console.warn(`skipping test/redteam-scale-redis.test.ts: ${absent}`)
const suite = absent === null || REQUIRE ? describe : describe.skip

const closers: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => {})
})

async function cacheBehindProxy() {
  if (absent !== null) throw new Error(`AGENTID_REQUIRE_SERVICES=1 but ${absent}`)
  const { proxy, url } = await proxiedUrl(REDIS_URL, 6379)
  closers.push(() => proxy.close())
  const cache = createRedisReplayCache({ url, keyPrefix: `agentid:redteam-scale:${randomUUID()}:` })
  closers.push(() => cache.close())
  await cache.connect()
  return { proxy, cache }
}

/** The outcome of one check: 'first', 'replay' or the error code it threw. */
const check = (cache: RedisReplayCache, key: string) =>
  cache.checkAndStore(key, Date.now() + 60_000).then((first) => (first ? 'first' : 'replay'), (e: unknown) => (e instanceof AgentIdError ? e.code : String(e)))

/** Checks fresh keys until one is accepted (true) or `limitMs` passes (false). */
async function recovers(cache: RedisReplayCache, limitMs: number): Promise<boolean> {
  const until = Date.now() + limitMs
  while (Date.now() < until) {
    if ((await check(cache, `probe-${randomUUID()}`)) === 'first') return true
    await sleep(200)
  }
  return false
}

suite('Redis faults under the shared replay cache', () => {
  it('blackholed, then back: refuses meanwhile (fail closed), accepts again without a restart, remembers what it saw', async () => {
    const { proxy, cache } = await cacheBehindProxy()
    expect(await check(cache, 'seen-before')).toBe('first')
    proxy.blackhole()
    expect(await check(cache, 'during')).toBe('ERR_UNAVAILABLE')
    proxy.pass()
    expect(await recovers(cache, 30_000)).toBe(true)
    expect(await check(cache, 'seen-before')).toBe('replay')
  })

  it('connections reset: refuses while reconnecting, then accepts; a proof seen before is still a replay', async () => {
    const { proxy, cache } = await cacheBehindProxy()
    expect(await check(cache, 'seen-before')).toBe('first')
    proxy.cut()
    expect(['ERR_UNAVAILABLE', 'replay']).toContain(await check(cache, 'seen-before'))
    expect(await recovers(cache, 30_000)).toBe(true)
    expect(await check(cache, 'seen-before')).toBe('replay')
  })

  it('its connection stranded (silent for good, no reset) while Redis is reachable: refuses, then reconnects by itself and accepts', async () => {
    const { proxy, cache } = await cacheBehindProxy()
    expect(await check(cache, 'seen-before')).toBe('first')
    proxy.strand()
    // Fail closed while the old connection says nothing.
    expect(await check(cache, 'during')).toBe('ERR_UNAVAILABLE')
    // Redis is reachable on a new connection: the cache must find it, not wait for TCP keep-alive
    // (minutes, or never behind a proxy whose own end stays up).
    expect(await recovers(cache, 30_000)).toBe(true)
    expect(await check(cache, 'seen-before')).toBe('replay')
  })
})
