// 1,000 concurrent spawns in agent-held mode against the real issuer process: 1,000 distinct
// agents and 1,000 distinct status indices, none lost or duplicated (the API and the SQLite file agree).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  addOrchestratorViaApi,
  agentHeldSpawn,
  api,
  auditDb,
  cleanup,
  issuerDid,
  openDbReadOnly,
  pool,
  startIssuer,
  type AgentHeldBody,
  type IssuerProcess,
} from './harness.js'

const N = 1000
const IN_FLIGHT = 100

let issuer: IssuerProcess
let did: string
let orch: { id: string; apiKey: string }

beforeAll(async () => {
  issuer = await startIssuer()
  did = await issuerDid(issuer)
  orch = await addOrchestratorViaApi(issuer, 'load')
})

afterAll(async () => {
  await cleanup()
})

describe('1,000 concurrent spawns', () => {
  it('gives 1,000 distinct agents with 1,000 distinct status indices; none lost, none duplicated', async () => {
    const bodies: AgentHeldBody[] = []
    for (let i = 0; i < N; i++) bodies.push(await agentHeldSpawn(did, `load-${i}`))

    const started = performance.now()
    const results = await pool(bodies, IN_FLIGHT, async (b) => api(issuer, 'POST', '/v1/agents', { key: orch.apiKey, json: b.body, timeoutMs: 60_000 }))
    const seconds = (performance.now() - started) / 1000
    console.log(`1,000 spawns, ${IN_FLIGHT} in flight: ${seconds.toFixed(1)} s (${Math.round(N / seconds)}/s)`)

    const statuses = results.map((r) => r.status)
    expect(statuses.filter((s) => s !== 201), JSON.stringify(results.find((r) => r.status !== 201)?.body)).toEqual([])
    results.forEach((r, i) => expect(r.body.did).toBe(bodies[i]!.did))
    expect(new Set(results.map((r) => r.body.did)).size).toBe(N)
    expect(new Set(results.map((r) => r.body.credentialId)).size).toBe(N)
    const slots = results.map((r) => `${r.body.status.statusListCredential}#${r.body.status.statusListIndex}`)
    expect(new Set(slots).size).toBe(N)

    // The API: the orchestrator's list, paged, holds exactly these 1,000.
    const listed: string[] = []
    let cursor: string | null = null
    do {
      const page = await api(issuer, 'GET', `/v1/agents?limit=500${cursor ? `&cursor=${cursor}` : ''}`, { key: orch.apiKey })
      expect(page.status).toBe(200)
      listed.push(...page.body.agents.map((a: { did: string }) => a.did))
      cursor = page.body.nextCursor
    } while (cursor)
    expect(listed.length).toBe(N)
    expect(new Set(listed)).toEqual(new Set(bodies.map((b) => b.did)))

    // The database file: same agents, one credential each, distinct (list, index), consistent rows.
    const audit = auditDb(issuer.dbFile)
    expect(audit.problems).toEqual([])
    expect(audit.agents).toBe(N)
    expect(audit.credentials).toBe(N)
    const db = openDbReadOnly(issuer.dbFile)
    try {
      const rows = db.prepare('SELECT a.did, c.status_list_id, c.status_index FROM agents a JOIN credentials c ON c.agent_did = a.did').all() as { did: string; status_list_id: string; status_index: number }[]
      expect(new Set(rows.map((r) => r.did))).toEqual(new Set(bodies.map((b) => b.did)))
      expect(new Set(rows.map((r) => `${r.status_list_id}/${r.status_index}`)).size).toBe(N)
      const byDid = new Map(results.map((r) => [r.body.did as string, r.body.status.statusListIndex as number]))
      for (const r of rows) expect(r.status_index).toBe(byDid.get(r.did))
      const spawned = db.prepare("SELECT count(*) AS n FROM audit_events WHERE action = 'agent.spawned'").get() as { n: number }
      expect(spawned.n).toBe(N)
    } finally {
      db.close()
    }
  })

  it('the same proof sent twice at once is accepted once and refused once (409)', async () => {
    const pairs = await Promise.all(Array.from({ length: 25 }, (_, i) => agentHeldSpawn(did, `race-${i}`)))
    const results = await pool(pairs.flatMap((b) => [b, b]), 50, (b) => api(issuer, 'POST', '/v1/agents', { key: orch.apiKey, json: b.body }))
    for (let i = 0; i < pairs.length; i++) {
      const got = [results[2 * i]!.status, results[2 * i + 1]!.status].sort()
      expect(got, JSON.stringify([results[2 * i]!.body, results[2 * i + 1]!.body])).toEqual([201, 409])
      const refusal = (results[2 * i]!.status === 409 ? results[2 * i] : results[2 * i + 1])!.body.error.code
      expect(['ERR_REPLAY', 'ERR_CONFLICT']).toContain(refusal)
    }
    const audit = auditDb(issuer.dbFile)
    expect(audit.problems).toEqual([])
    expect(audit.agents).toBe(N + pairs.length)
    expect(audit.credentials).toBe(N + pairs.length)
  })
})
