// Two issuer groups (two instances each, each group its own database) on one real Redis, each on its
// own channel (AGENTID_REDIS_CHANNEL): a group's instances hear their own group's revocations and none
// of the other's. Needs Redis at 127.0.0.1:6379 (AGENTID_TEST_REDIS_URL): skipped with the reason
// printed when absent, failed under AGENTID_REQUIRE_SERVICES=1.
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from '@redis/client'
import { afterAll, describe, expect, it } from 'vitest'
import { configFromEnv } from '../src/config.js'
import { startIssuer, type RunningIssuer } from '../src/run.js'
import { claims } from './http-fixtures.js'

const REDIS_URL = process.env.AGENTID_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const REQUIRE = process.env.AGENTID_REQUIRE_SERVICES === '1'

function redisAbsent(): Promise<string | null> {
  const { hostname, port } = new URL(REDIS_URL)
  return new Promise((resolve) => {
    const socket = createConnection({ host: hostname, port: Number(port || 6379) })
    const done = (reason: string | null) => { socket.destroy(); resolve(reason) }
    socket.setTimeout(1000, () => done(`Redis at ${REDIS_URL} did not answer within 1 s`))
    socket.once('error', (e) => done(`Redis at ${REDIS_URL} is not reachable (${e.message})`))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (d) => done(d.toString('utf8').startsWith('+PONG') ? null : `Redis at ${REDIS_URL} answered ${JSON.stringify(d.toString('utf8').slice(0, 40))}`))
  })
}
const absent = await redisAbsent()
if (absent !== null && !REQUIRE) console.warn(`skipping apps/issuer/test/events-redis-channel.test.ts: ${absent}`)
const suite = absent === null || REQUIRE ? describe : describe.skip

const running: RunningIssuer[] = []
const dirs: string[] = []
afterAll(async () => {
  for (const issuer of running.reverse()) await issuer.stop()
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

interface Instance { issuer: RunningIssuer; heard: number[] }
interface Group { adminKey: string; instances: [Instance, Instance] }

/** Two instances on one new SQLite data dir, their event bus on `channel`; what each instance's bus delivers is kept. */
async function group(channel: string): Promise<Group> {
  const dir = mkdtempSync(join(tmpdir(), 'agentid-channel-'))
  dirs.push(dir)
  const adminKey = `aid_admin_${randomBytes(32).toString('base64url')}`
  const env = {
    AGENTID_DATA_DIR: dir, AGENTID_PORT: '0', AGENTID_ADMIN_KEY: adminKey, AGENTID_LOG_LEVEL: 'silent', AGENTID_LOG_SEQUENCER: 'off',
    AGENTID_CONSOLE_DIR: 'off', AGENTID_REDIS_URL: REDIS_URL, AGENTID_REDIS_CHANNEL: channel, AGENTID_EVENTS_POLL_MS: '600000',
  }
  const instances: Instance[] = []
  for (let i = 0; i < 2; i++) {
    const issuer = await startIssuer(configFromEnv(env))
    running.push(issuer)
    const heard: number[] = []
    issuer.service.events.bus.subscribe((seq) => heard.push(seq))
    instances.push({ issuer, heard })
  }
  return { adminKey, instances: instances as [Instance, Instance] }
}

async function post(issuer: RunningIssuer, path: string, key: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await fetch(`${issuer.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const json = (await r.json()) as Record<string, unknown>
  expect(r.status, JSON.stringify(json)).toBeLessThan(300)
  return json
}

/** Spawns an agent through the group's first instance and revokes it there: returns the head it publishes. */
async function revokeOne(g: Group): Promise<number> {
  const a = g.instances[0].issuer
  const orch = await post(a, '/v1/orchestrators', g.adminKey, { name: `o-${randomUUID().slice(0, 8)}` })
  const agent = await post(a, '/v1/agents', orch.apiKey as string, { ...claims, keyCustody: 'issuer' })
  await post(a, `/v1/agents/${agent.did as string}/revoke`, g.adminKey, { reason: 'channel test' })
  return a.service.storage.events.head()
}

/** Waits until `heard` holds `seq` (bounded in attempts: the test's timeout is the bound, not an assertion). */
async function until(heard: number[], seq: number): Promise<void> {
  for (let i = 0; !heard.includes(seq); i++) {
    if (i > 2000) throw new Error(`never heard ${seq}; heard ${JSON.stringify(heard)}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

suite('AGENTID_REDIS_CHANNEL: issuer groups on one Redis, each on its channel', () => {
  it('each group hears its own revocations and none of the other\'s', async () => {
    if (absent !== null) throw new Error(`AGENTID_REQUIRE_SERVICES=1 but ${absent}`)
    const base = `agentid:test:${randomUUID()}`
    const one = await group(`${base}:one`)
    const two = await group(`${base}:two`)

    // Each channel has exactly its group's two subscribers (checked on Redis itself).
    const redis = createClient({ url: REDIS_URL })
    await redis.connect()
    try {
      // (The instances subscribe as they connect, after their start: wait for it.)
      let subscribers = await redis.pubSubNumSub([`${base}:one`, `${base}:two`])
      for (let i = 0; i < 500 && Object.values(subscribers).some((n) => n < 2); i++) {
        await new Promise((r) => setTimeout(r, 10))
        subscribers = await redis.pubSubNumSub([`${base}:one`, `${base}:two`])
      }
      expect(subscribers).toEqual({ [`${base}:one`]: 2, [`${base}:two`]: 2 })
    } finally {
      await redis.close()
    }

    // One's revocation reaches one's second instance; then two's reaches two's; then one's and two's
    // again. Redis hands each subscriber its messages in the order it took them, so when an instance has
    // heard its own group's last announcement it has heard everything of the other's it ever would.
    const o1 = await revokeOne(one)
    await until(one.instances[1].heard, o1)
    const t1 = await revokeOne(two)
    await until(two.instances[1].heard, t1)
    const o2 = await revokeOne(one)
    const t2 = await revokeOne(two)
    await until(one.instances[1].heard, o2)
    await until(two.instances[1].heard, t2)
    expect(one.instances[1].heard).toEqual([o1, o2])
    expect(two.instances[1].heard).toEqual([t1, t2])
    // The publishing instances: their own announcements (delivered at once, and again through Redis), no other.
    expect(new Set(one.instances[0].heard)).toEqual(new Set([o1, o2]))
    expect(new Set(two.instances[0].heard)).toEqual(new Set([t1, t2]))
  }, 60_000)
})
