// End to end: the issuer process announces approval requests and decisions to a real HTTP receiver,
// signed per Standard Webhooks (the receiver verifies every delivery with the `standardwebhooks`
// library's Webhook.verify), from an outbox written in the transaction of each approval write. A
// receiver that refuses connections, then answers 500, for a few retries still gets each event, once;
// an issuer killed mid-backoff delivers after its restart, under the same webhook-id; two issuers on one
// PostgreSQL database deliver each event exactly once, never attempting one event from both at a time.
// A webhook URL without a valid secret stops the start. The PostgreSQL case is skipped with the reason
// printed when the server is absent, failing under AGENTID_REQUIRE_SERVICES=1.
import { randomBytes } from 'node:crypto'
import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createServer, type Server } from 'node:http'
import { afterAll, describe, expect, it } from 'vitest'
import { Webhook } from 'standardwebhooks'
import { verifyWebhook } from '@agentid/client'
import { addOrchestratorViaApi, api, cleanup, freePort, newAdminKey, openDbReadOnly, sleep, startIssuer, tempDir, type IssuerProcess } from './harness.js'
import { pgAbsent, tempPgDatabase } from '../apps/issuer/test/pg-helpers.js'
import { softAssert, softRegister, type SoftPasskey } from '../apps/issuer/test/webauthn-soft.js'

const absent = await pgAbsent()
const REQUIRE = process.env.AGENTID_REQUIRE_SERVICES === '1'
if (absent !== null && !REQUIRE) console.warn(`skipping the PostgreSQL case of test/approvals-webhooks.test.ts: ${absent}`)

const CONTROLLER = 'did:web:acme.example'
const closers: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => {})
  await cleanup()
})

const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

interface Receiver {
  url: string
  /** Answers each verified attempt: its status (the nth attempt of this webhook-id, from 1). */
  answer: (id: string, n: number) => number
  /** Verified events answered 2xx, by webhook-id, in order of arrival. */
  accepted: Map<string, Record<string, unknown>>
  /** Every attempt: webhook-id and the status answered. */
  attempts: { id: string; status: number }[]
  /** Problems seen: a bad signature, a 2xx-answered id delivered again, two attempts of one id at once. */
  problems: string[]
  up(): Promise<void>
  /** Stops listening and drops connections: attempts are refused. */
  down(): Promise<void>
}

/** A real receiver that verifies every delivery with the library's Webhook.verify and with verifyWebhook. */
async function webhookReceiver(secret: string, delayMs = 0): Promise<Receiver> {
  const port = await freePort()
  let server: Server | undefined
  const inflight = new Set<string>()
  const r: Receiver = {
    url: `http://127.0.0.1:${port}/hooks/agentid`,
    answer: () => 204,
    accepted: new Map(),
    attempts: [],
    problems: [],
    up: () => new Promise<void>((resolve) => {
      server = createServer((req, res) => {
        const chunks: Buffer[] = []
        req.on('data', (c: Buffer) => chunks.push(c))
        req.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8')
          const id = String(req.headers['webhook-id'])
          let event: Record<string, unknown>
          try {
            event = new Webhook(secret).verify(body, req.headers as Record<string, string>) as Record<string, unknown>
            expect(verifyWebhook(Buffer.concat(chunks), req.headers, { secret }).event).toEqual(event)
          } catch (error) {
            r.problems.push(`${id}: signature refused: ${(error as Error).message}`)
            res.writeHead(401).end()
            return
          }
          if (inflight.has(id)) r.problems.push(`${id}: two attempts at once`)
          inflight.add(id)
          const n = r.attempts.filter((a) => a.id === id).length + 1
          const status = r.answer(id, n)
          r.attempts.push({ id, status })
          setTimeout(() => {
            inflight.delete(id)
            if (status < 300) {
              if (r.accepted.has(id)) r.problems.push(`${id}: delivered again after a 2xx`)
              else r.accepted.set(id, event)
            }
            res.writeHead(status).end()
          }, delayMs)
        })
      })
      server.listen(port, '127.0.0.1', () => resolve())
    }),
    down: () => new Promise<void>((resolve) => {
      if (!server) return resolve()
      server.closeAllConnections()
      server.close(() => resolve())
      server = undefined
    }),
  }
  closers.push(() => r.down())
  return r
}

const webhookEnv = (url: string, secret: string, extra: Record<string, string> = {}) => ({
  AGENTID_APPROVALS_WEBHOOK_URL: url,
  AGENTID_APPROVALS_WEBHOOK_SECRET: secret,
  AGENTID_APPROVALS_WEBHOOK_RETRY_MS: '200',
  AGENTID_APPROVALS_WEBHOOK_TIMEOUT_MS: '3000',
  ...extra,
})

/** An approver for CONTROLLER enrolled with a software passkey (origin: the issuer's base URL). */
async function approver(issuer: IssuerProcess, origin: string): Promise<SoftPasskey> {
  const added = await api(issuer, 'POST', '/v1/approvers', { key: issuer.adminKey, json: { name: 'Dana', controllers: [CONTROLLER] } })
  expect(added.status, added.text).toBe(201)
  const token = (added.body.enrolmentUrl as string).split('#')[1]!
  const options = (await api(issuer, 'POST', '/v1/enrolments/options', { json: { token } })).body
  const registered = softRegister(options, origin)
  const enrolled = await api(issuer, 'POST', '/v1/enrolments/verify', { json: { token, response: registered.response } })
  expect(enrolled.status, enrolled.text).toBe(201)
  return registered.passkey
}

async function requestApproval(issuer: IssuerProcess, orchKey: string, n: number): Promise<string> {
  const r = await api(issuer, 'POST', '/v1/approvals', { key: orchKey, json: { agent: 'did:key:z6MkWebhookAgent', controller: CONTROLLER, target: 'https://bank.example/mcp', command: 'tools/call pay', arguments: { invoice: n } } })
  expect(r.status, r.text).toBe(201)
  return r.body.id as string
}

async function decide(issuer: IssuerProcess, id: string, passkey: SoftPasskey, origin: string, decision: 'approve' | 'deny'): Promise<void> {
  const options = (await api(issuer, 'POST', `/v1/approvals/${id}/options`)).body
  const r = await api(issuer, 'POST', `/v1/approvals/${id}/decision`, { json: { decision, response: softAssert(passkey, options[decision], origin) } })
  expect(r.status, r.text).toBe(200)
}

/** The outbox and attempts of a SQLite issuer's file. */
function outbox(file: string): { events: { id: string; type: string; subject: string; state: string; attempts: number }[]; attempts: { event_id: string; status: number | null; error: string | null }[] } {
  const db = openDbReadOnly(file)
  try {
    return {
      events: db.prepare('SELECT id, type, subject, state, attempts FROM webhook_outbox ORDER BY created_ms, id').all() as never,
      attempts: db.prepare('SELECT event_id, status, error FROM webhook_attempts ORDER BY event_id, attempt').all() as never,
    }
  } finally {
    db.close()
  }
}

describe('approval webhooks, end to end', () => {
  it('a receiver refusing connections, then answering 500, for a few retries gets each event once, signed', async () => {
    const secret = newSecret()
    const receiver = await webhookReceiver(secret)
    // Down at first: every attempt is refused at the TCP level.
    const issuer = await startIssuer({ env: webhookEnv(receiver.url, secret, { AGENTID_APPROVALS_WEBHOOK_RETRY_MS: '100' }) })
    const origin = new URL(issuer.url).origin
    const orchKey = (await addOrchestratorViaApi(issuer, 'webhook-guard')).apiKey
    const passkey = await approver(issuer, origin)
    const first = await requestApproval(issuer, orchKey, 1)
    const second = await requestApproval(issuer, orchKey, 2)
    await decide(issuer, first, passkey, origin, 'approve')
    await decide(issuer, second, passkey, origin, 'deny')
    await until('two refused attempts of each event', () => {
      const o = outbox(issuer.dbFile)
      return o.events.length === 4 && o.events.every((e) => e.attempts >= 2)
    })
    expect(receiver.attempts).toEqual([])
    // Up, but failing: each event's first two attempts that reach it are answered 500.
    receiver.answer = (_id, n) => (n <= 2 ? 500 : 204)
    await receiver.up()
    await until('every event delivered', () => receiver.accepted.size === 4)
    await sleep(500) // nothing more arrives
    expect(receiver.problems).toEqual([])
    const events = [...receiver.accepted.values()]
    expect(events.map((e) => `${e.id as string} ${e.type as string} ${e.status as string}`).sort()).toEqual([
      `${first} approval.approved approved`, `${first} approval.requested pending`, `${second} approval.denied denied`, `${second} approval.requested pending`,
    ].sort())
    for (const e of events) expect(e).toMatchObject({ url: `${issuer.url}/approvals/${e.id as string}`, call: { id: e.id, controller: CONTROLLER } })
    // Each id answered 2xx once, after two 500s; the outbox agrees, every attempt recorded.
    for (const id of receiver.accepted.keys()) expect(receiver.attempts.filter((a) => a.id === id).map((a) => a.status)).toEqual([500, 500, 204])
    const o = outbox(issuer.dbFile)
    expect(o.events.map((e) => e.state)).toEqual(['delivered', 'delivered', 'delivered', 'delivered'])
    expect(new Set(o.events.map((e) => e.id))).toEqual(new Set(receiver.accepted.keys()))
    for (const e of o.events) {
      const mine = o.attempts.filter((a) => a.event_id === e.id)
      expect(mine.length).toBe(e.attempts)
      expect(mine.slice(-3).map((a) => a.status)).toEqual([500, 500, 204])
      expect(mine.slice(0, -3).every((a) => a.status === null && /^network: ECONNREFUSED/.test(a.error ?? ''))).toBe(true)
    }
    await issuer.stop()
  }, 90_000)

  it('an issuer killed mid-backoff delivers after its restart, under the same webhook-id', async () => {
    const secret = newSecret()
    const receiver = await webhookReceiver(secret)
    receiver.answer = () => 500
    await receiver.up()
    const env = webhookEnv(receiver.url, secret, { AGENTID_APPROVALS_WEBHOOK_RETRY_MS: '1500' })
    const issuer = await startIssuer({ env })
    const orchKey = (await addOrchestratorViaApi(issuer, 'webhook-guard')).apiKey
    const id = await requestApproval(issuer, orchKey, 1)
    // Two attempts failed and recorded: the next is 1.5 to 3 s away. Killed then, with no chance to clean up.
    await until('two failed attempts recorded', () => (outbox(issuer.dbFile).events[0]?.attempts ?? 0) >= 2)
    await issuer.kill()
    const failed = receiver.attempts.length
    receiver.answer = () => 204
    await sleep(200)
    expect(receiver.attempts.length).toBe(failed)
    const restarted = await startIssuer({ dataDir: issuer.dataDir, port: issuer.port, adminKey: issuer.adminKey, env })
    await until('the event delivered', () => receiver.accepted.size === 1)
    await sleep(300)
    expect(receiver.problems).toEqual([])
    const [eventId, event] = [...receiver.accepted.entries()][0]!
    expect(event).toMatchObject({ type: 'approval.requested', id })
    expect(new Set(receiver.attempts.map((a) => a.id))).toEqual(new Set([eventId]))
    expect(outbox(restarted.dbFile).events).toEqual([{ id: eventId, type: 'approval.requested', subject: id, state: 'delivered', attempts: failed + 1 }])
    await restarted.stop()
  }, 90_000)

  it.skipIf(absent !== null && !REQUIRE)('two issuers on one PostgreSQL deliver each event exactly once, one attempt at a time', async () => {
    if (absent !== null) throw new Error(`AGENTID_REQUIRE_SERVICES=1 but ${absent}`)
    const db = await tempPgDatabase()
    closers.push(db.drop)
    const secret = newSecret()
    // Slow answers widen the window in which the other instance could take the same event.
    const receiver = await webhookReceiver(secret, 150)
    receiver.answer = (_id, n) => (n === 1 ? 500 : 204)
    await receiver.up()
    const [portA, portB] = [await freePort(), await freePort()]
    const shared = { AGENTID_DATABASE_URL: db.url, AGENTID_SECRET: randomBytes(32).toString('base64url'), AGENTID_BASE_URL: `http://127.0.0.1:${portA}`, ...webhookEnv(receiver.url, secret) }
    const adminKey = newAdminKey()
    const a = await startIssuer({ port: portA, adminKey, env: shared })
    const b = await startIssuer({ port: portB, adminKey, env: shared })
    const origin = `http://127.0.0.1:${portA}`
    const orchKey = (await addOrchestratorViaApi(a, 'webhook-guard')).apiKey
    const passkey = await approver(a, origin)
    const ids = await Promise.all(Array.from({ length: 12 }, (_, i) => requestApproval(i % 2 ? a : b, orchKey, i)))
    for (const [i, id] of ids.slice(0, 6).entries()) await decide(i % 2 ? b : a, id, passkey, origin, i % 3 ? 'approve' : 'deny')
    await until('every event delivered', () => receiver.accepted.size === 18, 60_000)
    await sleep(1500) // a duplicate would arrive within the retry delays
    expect(receiver.problems).toEqual([])
    expect(receiver.accepted.size).toBe(18)
    for (const id of receiver.accepted.keys()) expect(receiver.attempts.filter((x) => x.id === id).map((x) => x.status)).toEqual([500, 204])
    const events = [...receiver.accepted.values()]
    expect(events.filter((e) => e.type === 'approval.requested').map((e) => e.id).sort()).toEqual([...ids].sort())
    expect(events.filter((e) => e.type !== 'approval.requested').map((e) => e.id).sort()).toEqual(ids.slice(0, 6).sort())
    const pg = (await import('pg')).default
    const client = new pg.Client({ connectionString: db.url })
    await client.connect()
    try {
      const rows = (await client.query<{ state: string; n: string }>('SELECT state, count(*) AS n FROM webhook_outbox GROUP BY state')).rows
      expect(rows.map((r) => [r.state, Number(r.n)])).toEqual([['delivered', 18]])
      expect(Number((await client.query<{ n: string }>('SELECT count(*) AS n FROM webhook_attempts')).rows[0]!.n)).toBe(36)
    } finally {
      await client.end()
    }
    await Promise.all([a.stop(), b.stop()])
  }, 120_000)

  it('hostile answers (a closed socket, a redirect, an endless body, silence) are failed attempts; the event still arrives once', async () => {
    const secret = newSecret()
    const trap = await webhookReceiver(secret)
    await trap.up()
    const port = await freePort()
    const seen: string[] = []
    let endless = 0
    const server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const n = seen.push(String(req.headers['webhook-id']))
        if (n === 1) return req.socket.destroy()
        if (n === 2) return res.writeHead(307, { location: trap.url }).end()
        if (n === 3) {
          res.writeHead(500, { 'content-type': 'text/plain' })
          const chunk = Buffer.alloc(64 * 1024, 'x')
          const pump = () => { while (!res.destroyed && endless < 1024 ** 3 && res.write(chunk)) endless += chunk.length }
          res.on('drain', pump)
          return pump()
        }
        if (n === 4) return // never answered: cut at the timeout
        new Webhook(secret).verify(Buffer.concat(chunks).toString('utf8'), req.headers as Record<string, string>)
        res.writeHead(204).end()
      })
    })
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    closers.push(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
    const issuer = await startIssuer({ env: webhookEnv(`http://127.0.0.1:${port}/hook`, secret, { AGENTID_APPROVALS_WEBHOOK_RETRY_MS: '100', AGENTID_APPROVALS_WEBHOOK_TIMEOUT_MS: '1000' }) })
    const orchKey = (await addOrchestratorViaApi(issuer, 'webhook-guard')).apiKey
    await requestApproval(issuer, orchKey, 1)
    await until('the fifth attempt answered', () => outbox(issuer.dbFile).events[0]?.state === 'delivered')
    expect(new Set(seen).size).toBe(1)
    expect(seen.length).toBe(5)
    expect(trap.attempts).toEqual([])
    expect(endless).toBeLessThan(64 * 1024 * 1024)
    const errors = outbox(issuer.dbFile).attempts.map((a) => [a.status, a.error?.replace(/^(network|HTTP 500): .*/, '$1') ?? null])
    expect(errors).toEqual([[null, 'network'], [307, 'redirect refused: HTTP 307'], [500, 'HTTP 500'], [null, 'timeout: no answer within 1000 ms'], [204, null]])
    expect((await api(issuer, 'GET', '/healthz')).status).toBe(200)
    await issuer.stop()
  }, 60_000)

  it('a webhook URL without its secret, or with a malformed one, stops the start with the variable named, never the secret', async () => {
    const receiver = await webhookReceiver(newSecret())
    const malformed = `whsec_${randomBytes(12).toString('base64')}`
    for (const secret of [undefined, malformed]) {
      const env: Record<string, string> = { AGENTID_APPROVALS_WEBHOOK_URL: receiver.url, ...(secret ? { AGENTID_APPROVALS_WEBHOOK_SECRET: secret } : {}) }
      const error = await startIssuer({ dataDir: tempDir(), env }).then(() => undefined, (e: Error) => e)
      expect(error?.message).toMatch(/agentid issuer: ERR_INVALID_INPUT: AGENTID_APPROVALS_WEBHOOK_SECRET/)
      if (secret) expect(error?.message).not.toContain(secret.slice(6))
    }
  }, 60_000)

  it('AGENTID_APPROVALS_WEBHOOK_SECRET_FILE: the secret read from a 0600 file signs deliveries; both variables, a readable-by-others file, a malformed secret or a missing file stop the start', async () => {
    const secret = newSecret()
    const receiver = await webhookReceiver(secret)
    await receiver.up()
    const dir = tempDir()
    const file = (name: string, content: string, mode: number): string => {
      const path = join(dir, name)
      writeFileSync(path, content, { mode })
      chmodSync(path, mode)
      return path
    }
    const good = file('webhook-secret', `${secret}\n`, 0o600)
    const env: Record<string, string> = webhookEnv(receiver.url, secret)
    delete env.AGENTID_APPROVALS_WEBHOOK_SECRET
    const issuer = await startIssuer({ env: { ...env, AGENTID_APPROVALS_WEBHOOK_SECRET_FILE: good } })
    const orchKey = (await addOrchestratorViaApi(issuer, 'webhook-file')).apiKey
    await requestApproval(issuer, orchKey, 1)
    await until('the event delivered, verified with the secret of the file', () => receiver.accepted.size === 1)
    expect(receiver.problems).toEqual([])
    await issuer.stop()

    const malformed = `whsec_${randomBytes(12).toString('base64')}`
    for (const [extra, named] of [
      [{ AGENTID_APPROVALS_WEBHOOK_SECRET_FILE: good, AGENTID_APPROVALS_WEBHOOK_SECRET: secret }, /webhook_secret_conflict|AGENTID_APPROVALS_WEBHOOK_SECRET and AGENTID_APPROVALS_WEBHOOK_SECRET_FILE/],
      [{ AGENTID_APPROVALS_WEBHOOK_SECRET_FILE: file('open', `${secret}\n`, 0o644) }, /accessible by group or others/],
      [{ AGENTID_APPROVALS_WEBHOOK_SECRET_FILE: file('malformed', `${malformed}\n`, 0o600) }, /The content of AGENTID_APPROVALS_WEBHOOK_SECRET_FILE must be whsec_/],
      [{ AGENTID_APPROVALS_WEBHOOK_SECRET_FILE: join(dir, 'missing') }, /AGENTID_APPROVALS_WEBHOOK_SECRET_FILE: cannot read .* \(ENOENT\)/],
    ] as const) {
      const error = await startIssuer({ dataDir: tempDir(), env: { ...env, ...extra } }).then(() => undefined, (e: Error) => e)
      expect(error?.message).toMatch(/agentid issuer: ERR_INVALID_INPUT: /)
      expect(error?.message).toMatch(named)
      expect(error?.message).not.toContain(secret.slice(6, 30))
      expect(error?.message).not.toContain(malformed.slice(6))
    }
  }, 60_000)
})
