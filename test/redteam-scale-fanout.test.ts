// Red team, scale-out: the revocation fan-out (Redis pub/sub between issuer instances) when Redis's
// connections go silent for good without a reset (a firewall or NAT forgetting the flows), through a
// TCP proxy in the test; the shared Redis is never stopped. Two instances on one database (one SQLite
// file), each stream polling the database only every 600 s: only the bus can tell B in time. Needs
// Redis at 127.0.0.1:6379: skipped with the reason printed when absent, failed when AGENTID_REQUIRE_SERVICES=1.
import { afterAll, describe, expect, it } from 'vitest'
import { createVerifier } from '@agentid/verifier'
import { api, cleanup, claims, freePort, issuerDid, msUntilRefused, sleep, startIssuer } from './harness.js'
import { proxiedUrl } from './redteam-scale-proxy.js'
import { redisAbsent } from './verifier-process.js'

const REDIS_URL = process.env.AGENTID_REDIS_URL ?? 'redis://127.0.0.1:6379'
const absent = await redisAbsent(REDIS_URL)
if (absent !== null && process.env.AGENTID_REQUIRE_SERVICES !== '1') console.warn(`skipping test/redteam-scale-fanout.test.ts: ${absent}`)
const suite = absent === null || process.env.AGENTID_REQUIRE_SERVICES === '1' ? describe : describe.skip

const closers: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => {})
  await cleanup()
})

suite('revocation fan-out through Redis, its connections stranded', () => {
  it('after the connections go silent, the instances reconnect by themselves: a revocation through A is again refused via B without waiting for the database poll', async () => {
    if (absent !== null) throw new Error(`AGENTID_REQUIRE_SERVICES=1 but ${absent}`)
    const { proxy, url: redis } = await proxiedUrl(REDIS_URL, 6379)
    closers.push(() => proxy.close())
    const port = await freePort()
    const env = { AGENTID_REDIS_URL: redis, AGENTID_EVENTS_POLL_MS: '600000', AGENTID_BASE_URL: `http://127.0.0.1:${port}` }
    const a = await startIssuer({ port, env })
    const b = await startIssuer({ dataDir: a.dataDir, adminKey: a.adminKey, env })
    const did = await issuerDid(a)
    const orch = await api(a, 'POST', '/v1/orchestrators', { key: a.adminKey, json: { name: 'fanout' } })
    expect(orch.status).toBe(201)
    const spawnOne = async (i: number) => {
      const r = await api(a, 'POST', '/v1/agents', { key: (orch.body as { apiKey: string }).apiKey, json: { ...claims(`fanout-${i}`), keyCustody: 'issuer' } })
      expect(r.status, r.text).toBe(201)
      return r.body as { credential: string; credentialId: string }
    }
    const creds = [await spawnOne(0), await spawnOne(1)]
    const verifier = createVerifier({ trustedIssuers: [did], statusTtlMs: 600_000, revocationStream: { url: `${b.url}/v1/events` } })
    closers.push(() => verifier.close())
    for (const c of creds) await verifier.verifyAgentCredential(c.credential)
    for (let i = 0; verifier.revocationMode() !== 'push'; i++) {
      if (i > 400) throw new Error('the verifier never subscribed')
      await sleep(25)
    }
    const revoke = async (id: string) => expect((await api(a, 'POST', `/v1/credentials/${encodeURIComponent(id)}/revoke`, { key: a.adminKey, json: { reason: 'fanout' } })).status).toBe(200)
    // The bus works through the proxy.
    await revoke(creds[0]!.credentialId)
    expect(await msUntilRefused(verifier, creds[0]!.credential, 10_000, 20)).toBeLessThan(10_000)

    proxy.strand()
    // Three heartbeats (5 s each) unheard, then a reconnection: generous on a loaded machine.
    await sleep(25_000)
    await revoke(creds[1]!.credentialId)
    expect(await msUntilRefused(verifier, creds[1]!.credential, 15_000, 20), 'refused via the bus (the poll is 600 s)').toBeLessThan(15_000)
    expect(verifier.revocationMode()).toBe('push')
  })
})
