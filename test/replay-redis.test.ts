// End to end: one DPoP proof replayed across two resource-server processes. With a shared Redis
// replay cache (@agentid/replay-redis) the second use is refused; with per-process memory caches it is
// not (the control, showing what the shared cache adds). Needs Redis at 127.0.0.1:6379: skipped with
// the reason printed when absent, failed when AGENTID_REQUIRE_SERVICES=1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAgentFetch, spawn, type FetchFunction } from '@agentid/client'
import { adminCli, cleanup, claims, issuerDid, startIssuer, type IssuerProcess } from './harness.js'
import { redisAbsent, startVerifierProcess, stopVerifierProcesses, type VerifierProcess } from './verifier-process.js'

const REDIS_URL = process.env.AGENTID_REDIS_URL ?? 'redis://127.0.0.1:6379'
const ORIGIN = 'https://erp.example'
const TOOL = 'mcp://erp/tools/invoices.read'

const absent = await redisAbsent(REDIS_URL)
if (absent !== null && process.env.AGENTID_REQUIRE_SERVICES !== '1') console.warn(`skipping test/replay-redis.test.ts: ${absent}`)
const suite = absent === null || process.env.AGENTID_REQUIRE_SERVICES === '1' ? describe : describe.skip

suite('DPoP replay across two verifier processes', () => {
  let issuer: IssuerProcess
  let agentFetch: (target: VerifierProcess) => Promise<{ status: number; headers: Record<string, string> }>

  beforeAll(async () => {
    if (absent !== null) throw new Error(`AGENTID_REQUIRE_SERVICES=1 but ${absent}`)
    issuer = await startIssuer()
    const orch = await adminCli(issuer, ['orchestrators', 'add', 'replay-redis', '--json'])
    expect(orch.code, orch.stderr).toBe(0)
    const agent = await spawn({ issuerUrl: issuer.url, apiKey: orch.json().apiKey, claims: claims('replay-redis', { toolProfile: [TOOL] }), keyCustody: 'agent' })
    // The agent calls https://erp.example/...; each call is sent to the process the test names,
    // and the exact headers it sent (token and DPoP proof) are kept for the replay.
    let target: VerifierProcess | undefined
    let sent: Record<string, string> = {}
    const routed: FetchFunction = async (input, init) => {
      const url = String(input)
      if (!url.startsWith(ORIGIN)) return fetch(input, init)
      sent = Object.fromEntries(new Headers(init?.headers).entries())
      return fetch(`${target!.url}${url.slice(ORIGIN.length)}`, { ...init, headers: sent })
    }
    const f = createAgentFetch({
      issuerUrl: issuer.url,
      privateJwk: agent.privateJwk!,
      resource: ORIGIN,
      authorizationDetails: [{ type: 'agentid_action', actions: ['invoke'], locations: [TOOL] }],
      fetch: routed,
    })
    agentFetch = async (to) => {
      target = to
      const r = await f(`${ORIGIN}/invoices`)
      expect(r.status, await r.clone().text()).toBe(200)
      return { status: r.status, headers: sent }
    }
  })

  afterAll(async () => {
    await stopVerifierProcesses()
    await cleanup()
  })

  it('with a shared Redis replay cache, the proof accepted by one process is refused by the other (ERR_REPLAY)', async () => {
    const did = await issuerDid(issuer)
    const [a, b] = await Promise.all([
      startVerifierProcess({ origin: ORIGIN, trusted: [did], redisUrl: REDIS_URL }),
      startVerifierProcess({ origin: ORIGIN, trusted: [did], redisUrl: REDIS_URL }),
    ])
    const first = await agentFetch(a)
    expect(first.headers.dpop).toBeDefined()
    const replayB = await b.call('/invoices', first.headers)
    expect(replayB.status).toBe(401)
    expect(replayB.body.error.code).toBe('ERR_REPLAY')
    const replayA = await a.call('/invoices', first.headers)
    expect(replayA.body.error.code).toBe('ERR_REPLAY')
    // B is otherwise healthy: a fresh proof with the same token is accepted.
    expect((await agentFetch(b)).status).toBe(200)
  })

  it('control: with per-process memory caches the same replay is accepted by the other process', async () => {
    const did = await issuerDid(issuer)
    const [c, d] = await Promise.all([
      startVerifierProcess({ origin: ORIGIN, trusted: [did] }),
      startVerifierProcess({ origin: ORIGIN, trusted: [did] }),
    ])
    const first = await agentFetch(c)
    expect((await d.call('/invoices', first.headers)).status).toBe(200)
    expect((await c.call('/invoices', first.headers)).body.error.code).toBe('ERR_REPLAY')
  })
})
