// SIGKILL the real issuer process while spawns are in flight, audit its SQLite file read-only, restart
// it on the same data dir: every acknowledged agent, key and revocation is still there, the issuer
// DID is the same, its status lists still verify, and no row is half-written.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { VerificationError } from '@agentid/core'
import { renew, spawn } from '@agentid/client'
import { createVerifier, type Verifier } from '@agentid/verifier'
import {
  adminCli,
  agentHeldSpawn,
  api,
  auditDb,
  claims,
  cleanup,
  issuerDid,
  openDbReadOnly,
  pool,
  restartIssuer,
  startIssuer,
  type AgentHeldBody,
  type IssuerProcess,
} from './harness.js'

interface Expected {
  did: string
  apiKey: string
  status: 'active' | 'revoked'
  credentials: { id: string; jwt: string; revoked: boolean }[]
}

let issuer: IssuerProcess
let did: string
const orchs: Record<string, string> = {}
const expected = new Map<string, Expected>()

async function outcome(v: Verifier, jwt: string): Promise<string> {
  try {
    await v.verifyAgentCredential(jwt)
    return 'OK'
  } catch (error) {
    if (error instanceof VerificationError) return error.code
    throw error
  }
}

beforeAll(async () => {
  issuer = await startIssuer()
  did = await issuerDid(issuer)
  for (const name of ['north', 'south']) {
    const r = await adminCli(issuer, ['orchestrators', 'add', name, '--json'])
    expect(r.code, r.stderr).toBe(0)
    orchs[name] = r.json().apiKey
  }
})

afterAll(async () => {
  await cleanup()
})

describe('crash recovery', () => {
  it('before the crash: agents in both custody modes, renewals and revocations (by DID and by credential id)', async () => {
    for (let i = 0; i < 12; i++) {
      const apiKey = i % 3 === 2 ? orchs.south! : orchs.north!
      const a = await spawn({ issuerUrl: issuer.url, apiKey, claims: claims(`pre-${i}`), keyCustody: i % 2 ? 'issuer' : 'agent' })
      const creds = [{ id: a.credentialId, jwt: a.credential, revoked: false }]
      if (i % 4 === 0) {
        const r = await renew({ issuerUrl: issuer.url, privateJwk: a.privateJwk })
        creds.push({ id: r.credentialId, jwt: r.credential, revoked: false })
      }
      expected.set(a.did, { did: a.did, apiKey, status: 'active', credentials: creds })
    }
    const all = [...expected.values()]
    // Two agents revoked with the CLI, one over the API; one credential revoked alone.
    for (const [n, e] of [all[1]!, all[4]!, all[7]!].entries()) {
      if (n < 2) {
        const r = await adminCli(issuer, ['revoke', e.did, '--reason', 'pre-crash', '--json'])
        expect(r.code, r.stderr).toBe(0)
      } else {
        expect((await api(issuer, 'POST', `/v1/agents/${e.did}/revoke`, { key: issuer.adminKey, json: { reason: 'pre-crash' } })).status).toBe(200)
      }
      e.status = 'revoked'
      for (const c of e.credentials) c.revoked = true
    }
    const one = all[8]! // has two credentials; revoke the first only
    expect(one.credentials.length).toBe(2)
    expect((await api(issuer, 'POST', `/v1/credentials/${one.credentials[0]!.id}/revoke`, { key: issuer.adminKey, json: { reason: 'pre-crash' } })).status).toBe(200)
    one.credentials[0]!.revoked = true
  })

  let acked: { body: AgentHeldBody; response: any }[] = []
  let unknown: AgentHeldBody[] = []

  it('SIGKILL while spawns are in flight, then the database file is consistent (audited read-only)', async () => {
    const LOAD = 400
    const KILL_AFTER = 100
    const bodies: AgentHeldBody[] = []
    for (let i = 0; i < LOAD; i++) bodies.push(await agentHeldSpawn(did, `load-${i}`))
    let ok = 0
    const results = await pool(bodies, 40, async (b) => {
      try {
        const r = await api(issuer, 'POST', '/v1/agents', { key: orchs.north!, json: b.body, timeoutMs: 30_000 })
        if (r.status === 201 && ++ok === KILL_AFTER) issuer.proc.kill('SIGKILL')
        return r
      } catch {
        return undefined // connection refused or reset: outcome unknown
      }
    })
    const exit = await issuer.exited
    expect(exit.signal).toBe('SIGKILL')
    results.forEach((r, i) => {
      if (r?.status === 201) acked.push({ body: bodies[i]!, response: r.body })
      else if (r === undefined) unknown.push(bodies[i]!)
      else expect.fail(`spawn answered ${r.status} ${r.text}`)
    })
    expect(acked.length).toBeGreaterThanOrEqual(KILL_AFTER)

    const audit = auditDb(issuer.dbFile)
    expect(audit.problems).toEqual([])
    const db = openDbReadOnly(issuer.dbFile)
    try {
      const cred = db.prepare('SELECT c.id, c.status_list_id, c.status_index, a.status FROM credentials c JOIN agents a ON a.did = c.agent_did WHERE c.agent_did = ?')
      for (const { body, response } of acked) {
        const row = cred.get(body.did) as { id: string; status_index: number; status: string } | undefined
        expect(row, `acknowledged spawn of ${body.did} lost`).toBeDefined()
        expect(row!.id).toBe(response.credentialId)
        expect(row!.status_index).toBe(response.status.statusListIndex)
        expect(row!.status).toBe('active')
      }
      const committedUnknown = unknown.filter((b) => cred.get(b.did) !== undefined).length
      expect(audit.agents).toBeGreaterThanOrEqual(expected.size + acked.length)
      expect(audit.agents).toBe(expected.size + acked.length + committedUnknown)
      console.log(`SIGKILL under load: ${acked.length} spawns acknowledged, ${unknown.length} cut off (${committedUnknown} of those had committed); audit of ${audit.agents} agents / ${audit.credentials} credentials: consistent`)
      // Pre-crash revocations are on disk.
      for (const e of expected.values()) {
        expect((db.prepare('SELECT status FROM agents WHERE did = ?').get(e.did) as { status: string }).status).toBe(e.status)
        for (const c of e.credentials) {
          expect((db.prepare('SELECT revoked_at FROM credentials WHERE id = ?').get(c.id) as { revoked_at: number | null }).revoked_at !== null).toBe(c.revoked)
        }
      }
    } finally {
      db.close()
    }
    for (const { body, response } of acked) {
      expected.set(body.did, { did: body.did, apiKey: orchs.north!, status: 'active', credentials: [{ id: response.credentialId, jwt: response.credential, revoked: false }] })
    }
  })

  it('after a restart on the same data dir: same issuer DID, every agent, key and revocation, status lists that verify', async () => {
    const before = did
    issuer = await restartIssuer(issuer)
    expect(await issuerDid(issuer)).toBe(before)

    // Every agent, seen by its own orchestrator's key (the keys survived).
    for (const e of expected.values()) {
      const view = await api(issuer, 'GET', `/v1/agents/${e.did}`, { key: e.apiKey })
      expect(view.status, e.did).toBe(200)
      expect(view.body.status).toBe(e.status)
      expect(Object.fromEntries(view.body.credentials.map((c: { id: string; status: string }) => [c.id, c.status]))).toEqual(
        Object.fromEntries(e.credentials.map((c) => [c.id, c.revoked ? 'revoked' : 'active'])),
      )
    }
    // The CLI agrees, for a revoked agent, an agent with one revoked credential and a load agent.
    const all = [...expected.values()]
    for (const e of [all[1]!, all[8]!, all[all.length - 1]!]) {
      const s = await adminCli(issuer, ['status', e.did, '--json'])
      expect(s.code, s.stderr).toBe(0)
      expect(s.json().status).toBe(e.status)
      expect(Object.fromEntries(s.json().credentials.map((c: { id: string; status: string }) => [c.id, c.status]))).toEqual(
        Object.fromEntries(e.credentials.map((c) => [c.id, c.revoked ? 'revoked' : 'active'])),
      )
    }
    const listed = await adminCli(issuer, ['orchestrators', 'list', '--json'])
    expect(listed.json().orchestrators.map((o: { name: string }) => o.name).sort()).toEqual(['north', 'south'])

    // A fresh verifier (status lists over HTTP from the restarted process) verifies survivors and refuses revoked ones.
    const verifier = createVerifier({ trustedIssuers: [before], statusTtlMs: 1000 })
    let verified = 0
    let refused = 0
    for (const e of expected.values()) {
      for (const c of e.credentials) {
        expect(await outcome(verifier, c.jwt), c.id).toBe(c.revoked ? 'ERR_REVOKED' : 'OK')
        if (c.revoked) refused++
        else verified++
      }
    }
    console.log(`after restart: ${verified} credentials verify, ${refused} revoked ones refused`)

    // The replay cache survived: an acknowledged proof cannot be replayed.
    const replay = await api(issuer, 'POST', '/v1/agents', { key: orchs.north!, json: acked[0]!.body.body })
    expect(replay.status).toBe(409)
    expect(replay.body.error.code).toBe('ERR_REPLAY')
  })

  it('after the restart, new spawns and revocations work and no status index is handed out twice', async () => {
    const fresh = await pool(Array.from({ length: 40 }, (_, i) => i), 20, async (i) =>
      spawn({ issuerUrl: issuer.url, apiKey: orchs.south!, claims: claims(`post-${i}`), keyCustody: i % 2 ? 'issuer' : 'agent', issuerDid: did }))
    const verifier = createVerifier({ trustedIssuers: [did], statusTtlMs: 1000 })
    for (const a of fresh) expect(await outcome(verifier, a.credential)).toBe('OK')

    const victim = acked[acked.length - 1]!
    const r = await adminCli(issuer, ['revoke', victim.body.did, '--reason', 'post-crash', '--json'])
    expect(r.code, r.stderr).toBe(0)
    verifier.clearStatusCache()
    expect(await outcome(verifier, victim.response.credential)).toBe('ERR_REVOKED')

    const audit = auditDb(issuer.dbFile)
    expect(audit.problems).toEqual([])
    expect(await issuer.stop()).toEqual({ code: 0, signal: null })
    const final = auditDb(issuer.dbFile)
    expect(final.problems).toEqual([])
    expect(final.agents).toBe(audit.agents)
  })
})
