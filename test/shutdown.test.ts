// Graceful shutdown of the real issuer process: SIGTERM while requests are in flight. The requests
// it had accepted complete (201), the process exits 0, and the database is consistent.
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  addOrchestratorViaApi,
  agentHeldSpawn,
  api,
  auditDb,
  cleanup,
  errorShape,
  issuerDid,
  openDbReadOnly,
  startIssuer,
  type AgentHeldBody,
  type ApiResponse,
  type IssuerProcess,
} from './harness.js'

let issuer: IssuerProcess
let did: string
let apiKey: string

beforeAll(async () => {
  issuer = await startIssuer()
  did = await issuerDid(issuer)
  apiKey = (await addOrchestratorViaApi(issuer, 'graceful')).apiKey
})

afterAll(async () => {
  await cleanup()
})

/**
 * A spawn request whose headers and all but the last byte of its body are on the wire: the issuer
 * has accepted it and is waiting for the rest. `finish()` sends the last byte.
 */
function halfSentSpawn(body: string): { finish(): void; response: Promise<{ status: number; connection: string | undefined; json: any }> } {
  const bytes = Buffer.from(body)
  let req!: ReturnType<typeof httpRequest>
  // A keep-alive client, like an orchestrator's pooled fetch.
  const agent = new Agent({ keepAlive: true })
  const response = new Promise<{ status: number; connection: string | undefined; json: any }>((resolve, reject) => {
    req = httpRequest(`${issuer.url}/v1/agents`, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': String(bytes.length), authorization: `Bearer ${apiKey}` },
    }, (res: IncomingMessage) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { text += c })
      res.on('end', () => {
        agent.destroy()
        try {
          resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, json: JSON.parse(text) })
        } catch (error) {
          reject(error)
        }
      })
    })
    req.on('error', reject)
    req.write(bytes.subarray(0, bytes.length - 1))
  })
  return { finish: () => req.end(bytes.subarray(bytes.length - 1)), response }
}

describe('graceful shutdown', () => {
  it('SIGTERM with requests in flight: they complete with 201, the process exits 0, the database is consistent', async () => {
    const HALF = 10
    const LOAD = 60
    const half: AgentHeldBody[] = []
    const load: AgentHeldBody[] = []
    for (let i = 0; i < HALF; i++) half.push(await agentHeldSpawn(did, `half-${i}`))
    for (let i = 0; i < LOAD; i++) load.push(await agentHeldSpawn(did, `load-${i}`))

    const pending = half.map((b) => halfSentSpawn(JSON.stringify(b.body)))
    // Once a later request on a fresh connection has been answered, the issuer has read the earlier headers.
    expect((await api(issuer, 'GET', '/healthz')).status).toBe(200)

    // Load in flight when the signal arrives: each is answered 201, or refused as the server closes (503,
    // our error body), or, if the issuer had not read it yet, finds its connection closed; never half-done.
    // The signal goes out as the first of them is answered, so that the others are being worked on.
    let signalled = false
    const loadResults = load.map((b) =>
      api(issuer, 'POST', '/v1/agents', { key: apiKey, json: b.body }).then(
        (r) => {
          if (!signalled) {
            signalled = true
            issuer.proc.kill('SIGTERM')
          }
          return r
        },
        (): undefined => undefined,
      ))
    await issuer.waitForStderr('"shutting down"')

    // The accepted requests finish after the signal.
    for (const p of pending) p.finish()
    const answers = await Promise.all(pending.map((p) => p.response))
    answers.forEach((a, i) => {
      expect(a.status, JSON.stringify(a.json)).toBe(201)
      expect(a.json.did).toBe(half[i]!.did)
      // The issuer lets go of the keep-alive connection once it has answered: the close does not wait
      // for idle clients (it would otherwise wait out the keep-alive timeout).
      expect(a.connection).toBe('close')
    })

    const exit = await issuer.exited
    expect(exit).toEqual({ code: 0, signal: null })

    const loaded = (await Promise.all(loadResults)) as (ApiResponse | undefined)[]
    const created = loaded.filter((r) => r?.status === 201)
    for (const r of loaded) {
      if (r && r.status !== 201) {
        expect(r.status, r.text).toBe(503)
        errorShape(r)
      }
    }
    console.log(`SIGTERM: ${HALF} half-sent spawns completed with 201; of ${LOAD} spawns in flight at the signal ${created.length} got 201, ${loaded.filter((r) => r?.status === 503).length} got 503, ${loaded.filter((r) => r === undefined).length} were reset unread (connection closed before the issuer read them)`)

    // Consistent, and exactly what was acknowledged: nothing lost, nothing committed unanswered.
    const audit = auditDb(issuer.dbFile)
    expect(audit.problems).toEqual([])
    expect(audit.agents).toBe(HALF + created.length)
    const db = openDbReadOnly(issuer.dbFile)
    try {
      const get = db.prepare('SELECT id FROM credentials WHERE agent_did = ?')
      answers.forEach((a, i) => expect((get.get(half[i]!.did) as { id: string } | undefined)?.id).toBe(a.json.credentialId))
      for (const r of created) expect((get.get(r!.body.did) as { id: string } | undefined)?.id).toBe(r!.body.credentialId)
      // A clean close checkpoints the WAL: nothing is left to recover.
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok')
    } finally {
      db.close()
    }

    // And it starts again on the same data dir.
    const again = await startIssuer({ dataDir: issuer.dataDir, port: issuer.port, adminKey: issuer.adminKey })
    expect(await issuerDid(again)).toBe(did)
    expect((await api(again, 'GET', `/v1/agents/${half[0]!.did}`, { key: apiKey })).body.status).toBe('active')
    expect(await again.stop()).toEqual({ code: 0, signal: null })
  })
})
