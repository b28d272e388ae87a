// End to end: three agents spawned by the real issuer process. Agent A calls service B (run by agent B)
// over real HTTP with createAgentFetch; B, serving that call, calls service C (run by agent C) with the
// lineage it received; C verifies the whole chain with the verifier's Node adapter before it acts,
// and answers with a signed receipt.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAgentFetch, spawn, type SpawnedAgent } from '@agentid/client'
import { CREDENTIALS_HEADER, createReceipt, decodeLineage, LINEAGE_HEADER } from '@agentid/lineage'
import { signerFromJwk } from '@agentid/core'
import { agentidMiddleware, createVerifier, type VerifiedLineage } from '@agentid/verifier'
import { adminCli, cleanup, claims, freePort, issuerDid, startIssuer, type IssuerProcess } from './harness.js'

let issuer: IssuerProcess
let a: SpawnedAgent
let b: SpawnedAgent
let c: SpawnedAgent
let urlB: string
let urlC: string
const servers: Server[] = []
/** What C saw on its last accepted call. */
let seenAtC: VerifiedLineage | undefined
/** Runs in B after it accepted A's call and before it calls C. */
let beforeCallingC: () => Promise<void> = async () => {}
/** Changes B's request to C after the hop was signed (an attacker on the way). */
let tamper: ((init: RequestInit) => RequestInit) | undefined
/** The headers B last sent to C. */
let lastToC: Headers | undefined

type Req = IncomingMessage & { agentidLineage?: VerifiedLineage | null; body?: unknown }

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.statusCode = status
  res.setHeader('content-type', 'application/json')
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v)
  res.end(JSON.stringify(body))
}

async function listen(port: number, handler: (req: Req, res: ServerResponse) => void): Promise<void> {
  const server = createServer(handler)
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
}

beforeAll(async () => {
  issuer = await startIssuer()
  const did = await issuerDid(issuer)
  const orch = await adminCli(issuer, ['orchestrators', 'add', 'lineage', '--json'])
  expect(orch.code, orch.stderr).toBe(0)
  const apiKey = orch.json().apiKey
  const spawned = await Promise.all(['a', 'b', 'c'].map((n) => spawn({ issuerUrl: issuer.url, apiKey, claims: claims(`lineage-${n}`), keyCustody: 'agent' })))
  ;[a, b, c] = spawned as [SpawnedAgent, SpawnedAgent, SpawnedAgent]
  const [portB, portC] = [await freePort(), await freePort()]
  urlB = `http://127.0.0.1:${portB}`
  urlC = `http://127.0.0.1:${portC}`

  // Service C: DPoP + lineage through the adapter; status lists fetched on every call (TTL 0).
  const verifierC = createVerifier({ trustedIssuers: [did], statusTtlMs: 0, statusGraceMs: 0 })
  const guardC = agentidMiddleware(verifierC, { audience: urlC, origin: urlC, lineage: { self: c.did } })
  await listen(portC, (req, res) => guardC(req, res, async (error?: unknown) => {
    if (error) return send(res, 500, { error: String(error) })
    const lineage = req.agentidLineage!
    seenAtC = lineage
    const output = { paid: (req.body as { invoice: number }).invoice, by: c.did }
    const record = await createReceipt(lineage.lineage, { signer: signerFromJwk(c.privateJwk), credential: c.credential, output })
    send(res, 200, output, { [LINEAGE_HEADER]: record })
  }))

  // Service B: verifies A's call the same way, then calls C with the lineage it received.
  const verifierB = createVerifier({ trustedIssuers: [did] })
  const guardB = agentidMiddleware(verifierB, { audience: urlB, origin: urlB, lineage: { self: b.did } })
  const toC = createAgentFetch({
    issuerUrl: issuer.url, privateJwk: b.privateJwk, resource: urlC,
    lineage: { credential: b.credential, callees: { [urlC]: c.did } },
    fetch: async (input, init) => {
      const sent = tamper ? tamper(init!) : init!
      lastToC = new Headers(sent.headers)
      return fetch(input, sent)
    },
  })
  await listen(portB, (req, res) => guardB(req, res, async (error?: unknown) => {
    if (error) return send(res, 500, { error: String(error) })
    await beforeCallingC()
    const received = req.agentidLineage!
    const credentials = req.headers[CREDENTIALS_HEADER] as string
    const r = await toC(`${urlC}/v1/pay?dry=0`, {
      method: 'POST', body: JSON.stringify({ invoice: (req.body as { invoice: number }).invoice }), headers: { 'content-type': 'application/json' },
      lineage: { from: received.lineage, credentials },
    })
    const body = await r.json() as Record<string, unknown>
    if (r.status !== 200) return send(res, r.status, body)
    // C's record (A's hop, B's hop, C's receipt), closed by B's own receipt, goes back to A.
    const record = await createReceipt(r.headers.get(LINEAGE_HEADER)!, { signer: signerFromJwk(b.privateJwk), credential: b.credential, output: body })
    send(res, 200, body, { [LINEAGE_HEADER]: record })
  }))
}, 120_000)

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))))
  await cleanup()
})

function agentA() {
  return createAgentFetch({ issuerUrl: issuer.url, privateJwk: a.privateJwk, resource: urlB, lineage: { credential: a.credential, callees: { [urlB]: b.did } } })
}

async function callB(invoice: number, fetchA = agentA()): Promise<Response> {
  return fetchA(`${urlB}/v1/plan`, {
    method: 'POST', body: JSON.stringify({ invoice }), headers: { 'content-type': 'application/json' },
    lineage: { user: 'user-42', origin: `user asks to pay invoice ${invoice}`, originKind: 'request' },
  })
}

describe('lineage across real services: A → B → C', () => {
  it('C verifies the whole chain before acting; the receipts come back to A', async () => {
    const r = await callB(42)
    expect(r.status, await r.clone().text()).toBe(200)
    expect(await r.json()).toEqual({ paid: 42, by: c.did })
    expect(seenAtC!.hops.map((h) => [h.actor.did, h.target, h.callee, h.command])).toEqual([
      [a.did, urlB, b.did, 'POST /v1/plan'],
      [b.did, urlC, c.did, 'POST /v1/pay'],
    ])
    expect(seenAtC!.user).toBe('user-42')
    expect(seenAtC!.hops[0]!.actor.claims.purpose).toBe('e2e-lineage-a')
    // A's record: its hop, B's hop, C's receipt, B's receipt; custody checked by decodeLineage.
    const record = decodeLineage(r.headers.get(LINEAGE_HEADER))
    expect(record.map((e) => [e.kind, e.claims.iss])).toEqual([['hop', a.did], ['hop', b.did], ['receipt', c.did], ['receipt', b.did]])
  })

  it('C refuses arguments changed after B signed its hop', async () => {
    tamper = (init) => ({ ...init, body: JSON.stringify({ invoice: 999 }) })
    try {
      const r = await callB(43)
      expect(r.status).toBe(403)
      expect(await r.json()).toMatchObject({ error: { code: 'ERR_LINEAGE_MISMATCH', details: { hop: 1, reason: 'arguments' } } })
    } finally {
      tamper = undefined
    }
  })

  it('C refuses a replayed lineage, even with a fresh DPoP proof', async () => {
    expect((await callB(44)).status).toBe(200)
    const captured = lastToC!
    // B's own fetch, no lineage option: fresh token and proof, the captured lineage headers as they were.
    const plainB = createAgentFetch({ issuerUrl: issuer.url, privateJwk: b.privateJwk, resource: urlC })
    const r = await plainB(`${urlC}/v1/pay?dry=0`, {
      method: 'POST', body: JSON.stringify({ invoice: 44 }),
      headers: { 'content-type': 'application/json', [LINEAGE_HEADER]: captured.get(LINEAGE_HEADER)!, [CREDENTIALS_HEADER]: captured.get(CREDENTIALS_HEADER)! },
    })
    expect(r.status).toBe(403)
    expect(await r.json()).toMatchObject({ error: { code: 'ERR_REPLAY', details: { hop: 1 } } })
    // Without any lineage, C refuses too.
    const none = await plainB(`${urlC}/v1/pay`, { method: 'POST', body: '{"invoice":1}', headers: { 'content-type': 'application/json' } })
    expect(none.status).toBe(403)
    expect(await none.json()).toMatchObject({ error: { code: 'ERR_MALFORMED', details: { reason: 'missing' } } })
  })

  it('C refuses a chain whose first agent was revoked while B was working on its call', async () => {
    beforeCallingC = async () => {
      const revoked = await adminCli(issuer, ['revoke', a.did, '--reason', 'e2e lineage', '--json'])
      expect(revoked.code, revoked.stderr).toBe(0)
    }
    try {
      const r = await callB(45)
      expect(r.status).toBe(403)
      expect(await r.json()).toMatchObject({ error: { code: 'ERR_REVOKED', details: { hop: 0, reason: 'actor-credential' } } })
    } finally {
      beforeCallingC = async () => {}
    }
  })
})
