// Against the real Redis at 127.0.0.1:6379 (AGENTID_REDIS_URL overrides). Without one the suite is
// skipped with its reason printed, unless AGENTID_REQUIRE_SERVICES=1 (CI), where it fails.
import { randomUUID } from 'node:crypto'
import { createServer, type Server, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createClient } from '@redis/client'
import { AgentIdError, generateEd25519KeyPair, signCompactJws, signerFromJwk } from '@agentid/core'
import { verifyDpopProof, VerificationError } from '@agentid/verifier'
import { createRedisReplayCache, type RedisReplayCache } from '@agentid/replay-redis'

const REDIS_URL = process.env.AGENTID_REDIS_URL ?? 'redis://127.0.0.1:6379'

async function redisReachable(): Promise<string | null> {
  const probe = createClient({ url: REDIS_URL, socket: { connectTimeout: 1000, reconnectStrategy: false } })
  probe.on('error', () => {})
  try {
    await probe.connect()
    await probe.ping()
    await probe.close()
    return null
  } catch (error) {
    return `Redis at ${REDIS_URL} is not reachable (${(error as Error).message})`
  }
}

const absent = await redisReachable()
if (absent !== null) {
  if (process.env.AGENTID_REQUIRE_SERVICES === '1') {
    describe('redis replay cache', () => {
      it('needs Redis (AGENTID_REQUIRE_SERVICES=1)', () => {
        throw new Error(absent)
      })
    })
  } else {
    console.warn(`skipping @agentid/replay-redis tests: ${absent}`)
  }
}

const suite = absent === null ? describe : describe.skip

suite('redis replay cache (real Redis)', () => {
  const caches: RedisReplayCache[] = []
  const admin = createClient({ url: REDIS_URL })
  const prefix = `agentid:test:${randomUUID()}:`
  const make = (extra: Partial<Parameters<typeof createRedisReplayCache>[0]> = {}) => {
    const c = createRedisReplayCache({ url: REDIS_URL, keyPrefix: prefix, ...extra })
    caches.push(c)
    return c
  }

  beforeAll(async () => {
    admin.on('error', () => {})
    await admin.connect()
  })
  afterAll(async () => {
    for (const c of caches) await c.close()
    for await (const keys of admin.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) if (keys.length) await admin.del(keys)
    await admin.close()
  })

  it('accepts a key once across two caches (two connections): SET NX', async () => {
    const a = make()
    const b = make()
    await a.connect()
    const key = `did:key:z6Mk… ${randomUUID()}`
    const exp = Date.now() + 60_000
    expect(await a.checkAndStore(key, exp)).toBe(true)
    expect(await b.checkAndStore(key, exp)).toBe(false)
    expect(await a.checkAndStore(key, exp)).toBe(false)
    expect(await b.checkAndStore(`${key}x`, exp)).toBe(true)
  })

  it('connects on first use when connect() was not called', async () => {
    const c = make()
    expect(c.ready).toBe(false)
    expect(await c.checkAndStore(randomUUID(), Date.now() + 10_000)).toBe(true)
    expect(c.ready).toBe(true)
  })

  it('keeps an entry until expiresAtMs (PX from the injected clock), under a hashed, prefixed key', async () => {
    const t = 1_900_000_000_000
    const c = make({ clock: () => t })
    const jti = `jti-${randomUUID()}`
    expect(await c.checkAndStore(`dpop abc ${jti}`, t + 90_000)).toBe(true)
    const keys: string[] = []
    for await (const batch of admin.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) keys.push(...batch)
    expect(keys.some((k) => k.includes(jti))).toBe(false) // the raw key never reaches Redis
    const pttls = await Promise.all(keys.map((k) => admin.pTTL(k)))
    expect(pttls.some((p) => p > 89_000 && p <= 90_000)).toBe(true)
    for (const k of keys) expect(k).toMatch(new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[A-Za-z0-9_-]{43}$`))
  })

  it('an entry already expired is accepted without being written', async () => {
    const c = make()
    const key = randomUUID()
    expect(await c.checkAndStore(key, Date.now() - 1)).toBe(true)
    expect(await c.checkAndStore(key, Date.now() - 1)).toBe(true)
    expect(await c.checkAndStore(key, Date.now() + 5000)).toBe(true)
    expect(await c.checkAndStore(key, Date.now() + 5000)).toBe(false)
  })

  it('under 200 concurrent checks of one key from three caches, exactly one wins', async () => {
    const cs = [make(), make(), make()]
    await Promise.all(cs.map((c) => c.connect()))
    const key = randomUUID()
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => cs[i % 3]!.checkAndStore(key, Date.now() + 30_000)))
    expect(results.filter((r) => r).length).toBe(1)
  })

  it('a replayed DPoP proof is refused by a second verifier context sharing Redis (ERR_REPLAY)', async () => {
    const key = generateEd25519KeyPair()
    const signer = signerFromJwk(key.privateJwk)
    const iat = Math.floor(Date.now() / 1000)
    const proof = await signCompactJws(
      { typ: 'dpop+jwt', alg: 'EdDSA', jwk: key.publicJwk },
      JSON.stringify({ jti: randomUUID(), htm: 'GET', htu: 'https://erp.example/invoices', iat }),
      signer,
    )
    const ctx = (replayCache: RedisReplayCache) => ({ method: 'GET', url: 'https://erp.example/invoices', now: Date.now, clockSkewSec: 60, maxAgeSec: 60, replayCache })
    await expect(verifyDpopProof(proof, ctx(make()))).resolves.toMatchObject({ alg: 'EdDSA' })
    const replay = await verifyDpopProof(proof, ctx(make())).catch((e: unknown) => e)
    expect(replay).toBeInstanceOf(VerificationError)
    expect((replay as VerificationError).code).toBe('ERR_REPLAY')
  })

  it('closed: refuses (ERR_UNAVAILABLE)', async () => {
    const c = make()
    await c.connect()
    await c.close()
    const error = await c.checkAndStore(randomUUID(), Date.now() + 1000).catch((e: unknown) => e)
    expect((error as AgentIdError).code).toBe('ERR_UNAVAILABLE')
  })
})

describe('redis replay cache: Redis down fails closed', () => {
  let blackhole: Server
  let blackholePort = 0
  const sockets = new Set<Socket>()
  const caches: RedisReplayCache[] = []

  beforeAll(async () => {
    // Accepts TCP connections and never answers: a hung Redis.
    blackhole = createServer((s) => { sockets.add(s); s.on('error', () => {}) })
    await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve))
    blackholePort = (blackhole.address() as { port: number }).port
  })
  afterAll(async () => {
    for (const c of caches) await c.close().catch(() => {})
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => blackhole.close(() => resolve()))
  })

  async function refusal(c: RedisReplayCache): Promise<{ error: unknown; ms: number }> {
    caches.push(c)
    const t0 = Date.now()
    const error = await c.checkAndStore(randomUUID(), Date.now() + 60_000).then(() => null, (e: unknown) => e)
    return { error, ms: Date.now() - t0 }
  }

  it('nothing listening: ERR_UNAVAILABLE, within the timeout, every time', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer()
      s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)) })
    })
    const c = createRedisReplayCache({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 300 })
    for (let i = 0; i < 3; i++) {
      const { error, ms } = await refusal(c)
      expect(error).toBeInstanceOf(AgentIdError)
      expect((error as AgentIdError).code).toBe('ERR_UNAVAILABLE')
      expect((error as AgentIdError).details).toMatchObject({ reason: 'replay_cache_unavailable' })
      expect(ms).toBeLessThan(1500)
    }
  })

  it('a Redis that accepts connections and never answers: ERR_UNAVAILABLE after commandTimeoutMs', async () => {
    const c = createRedisReplayCache({ url: `redis://127.0.0.1:${blackholePort}`, commandTimeoutMs: 300 })
    const { error, ms } = await refusal(c)
    expect((error as AgentIdError).code).toBe('ERR_UNAVAILABLE')
    expect(ms).toBeGreaterThanOrEqual(250)
    expect(ms).toBeLessThan(1500)
  })

  it('the verifier refuses a DPoP proof while the cache is down (ERR_REPLAY caused by ERR_UNAVAILABLE)', async () => {
    const c = createRedisReplayCache({ url: `redis://127.0.0.1:${blackholePort}`, commandTimeoutMs: 200 })
    caches.push(c)
    const key = generateEd25519KeyPair()
    const proof = await signCompactJws(
      { typ: 'dpop+jwt', alg: 'EdDSA', jwk: key.publicJwk },
      JSON.stringify({ jti: randomUUID(), htm: 'POST', htu: 'https://erp.example/pay', iat: Math.floor(Date.now() / 1000) }),
      signerFromJwk(key.privateJwk),
    )
    const error = await verifyDpopProof(proof, { method: 'POST', url: 'https://erp.example/pay', now: Date.now, clockSkewSec: 60, maxAgeSec: 60, replayCache: c }).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(VerificationError)
    expect((error as VerificationError).code).toBe('ERR_REPLAY')
    expect(((error as VerificationError).cause as AgentIdError).code).toBe('ERR_UNAVAILABLE')
  })

  it('misuse is a TypeError', () => {
    expect(() => createRedisReplayCache({} as never)).toThrow(TypeError)
    expect(() => createRedisReplayCache({ url: 'http://x' })).toThrow(TypeError)
    expect(() => createRedisReplayCache({ url: 'redis://x', commandTimeoutMs: 0 })).toThrow(TypeError)
  })
})
