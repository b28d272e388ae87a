// End to end: two issuer processes on one database (the same SQLite file), their event streams woken
// through Redis pub/sub (AGENTID_REDIS_URL). A revocation made through one instance is refused within
// 1 s by a verifier subscribed to the other, although each stream reads the database for other
// processes' events only every 60 s here (AGENTID_EVENTS_POLL_MS): only the bus can tell it in time.
// The control, the same without Redis, is not refused within 1.5 s. Needs Redis at 127.0.0.1:6379:
// skipped with the reason printed when absent, failed when AGENTID_REQUIRE_SERVICES=1.
import { afterAll, describe, expect, it } from 'vitest'
import { api, cleanup, claims, freePort, issuerDid, msUntilRefused, sleep, startIssuer, type IssuerProcess } from './harness.js'
import { redisAbsent } from './verifier-process.js'
import { createVerifier, type Verifier } from '@agentid/verifier'

const REDIS_URL = process.env.AGENTID_REDIS_URL ?? 'redis://127.0.0.1:6379'
const absent = await redisAbsent(REDIS_URL)
if (absent !== null && process.env.AGENTID_REQUIRE_SERVICES !== '1') console.warn(`skipping test/revocation-instances.test.ts: ${absent}`)
const suite = absent === null || process.env.AGENTID_REQUIRE_SERVICES === '1' ? describe : describe.skip

const verifiers: Verifier[] = []
afterAll(async () => {
  for (const v of verifiers) await v.close()
  await cleanup()
})

/**
 * Two instances on one data dir with one public URL (as behind a load balancer; here the first
 * instance's, which serves the status lists); an agent spawned through the first; a verifier
 * subscribed to the second's stream.
 */
async function pair(extra: Record<string, string>): Promise<{ a: IssuerProcess; b: IssuerProcess; verifier: Verifier; credential: string; credentialId: string }> {
  const port = await freePort()
  const env = { ...extra, AGENTID_BASE_URL: `http://127.0.0.1:${port}` }
  const a = await startIssuer({ port, env })
  const b = await startIssuer({ dataDir: a.dataDir, adminKey: a.adminKey, env })
  const did = await issuerDid(a)
  expect(await issuerDid(b)).toBe(did)
  const orch = await api(a, 'POST', '/v1/orchestrators', { key: a.adminKey, json: { name: 'instances' } })
  expect(orch.status).toBe(201)
  const spawned = await api(a, 'POST', '/v1/agents', { key: (orch.body as { apiKey: string }).apiKey, json: { ...claims('instances'), keyCustody: 'issuer' } })
  expect(spawned.status, spawned.text).toBe(201)
  const { credential, credentialId } = spawned.body as { credential: string; credentialId: string }
  const verifier = createVerifier({ trustedIssuers: [did], statusTtlMs: 600_000, revocationStream: { url: `${b.url}/v1/events` } })
  verifiers.push(verifier)
  for (let i = 0; verifier.revocationMode() !== 'push'; i++) {
    if (i > 200) throw new Error('the verifier never subscribed')
    await sleep(25)
  }
  // After the stream is up: its first `ready` clears the status lists cached before it (they may be
  // older than the stream), so a list fetched before then would be fetched again at the next verify,
  // and the control would see the revocation that way (the stream arriving late, under load).
  await verifier.verifyAgentCredential(credential)
  return { a, b, verifier, credential, credentialId }
}

suite('several issuer instances, one database, events fanned out through Redis pub/sub', () => {
  it('a revocation through instance A is refused within 1 s by a verifier subscribed to instance B', async () => {
    if (absent !== null) throw new Error(`AGENTID_REQUIRE_SERVICES=1 but ${absent}`)
    const { a, verifier, credential, credentialId } = await pair({ AGENTID_REDIS_URL: REDIS_URL, AGENTID_EVENTS_POLL_MS: '60000' })
    const r = await api(a, 'POST', `/v1/credentials/${encodeURIComponent(credentialId)}/revoke`, { key: a.adminKey, json: { reason: 'instances' } })
    expect(r.status).toBe(200)
    expect(await msUntilRefused(verifier, credential, 1000)).toBeLessThan(1000)
    expect(verifier.revocationMode()).toBe('push')
  })

  it('control: without Redis, B learns of it only at its next poll (60 s): not refused within 1.5 s', async () => {
    const { a, verifier, credential, credentialId } = await pair({ AGENTID_EVENTS_POLL_MS: '60000' })
    const r = await api(a, 'POST', `/v1/credentials/${encodeURIComponent(credentialId)}/revoke`, { key: a.adminKey, json: { reason: 'instances' } })
    expect(r.status).toBe(200)
    expect(await msUntilRefused(verifier, credential, 1500)).toBe(Infinity)
  })
})
