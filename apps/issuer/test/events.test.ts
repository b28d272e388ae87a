// The issuer's event stream (GET /v1/events): each revocation published as signed CAEP SETs, in the
// revocation's own transaction, on a resumable server-sent-events stream.
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { decodeDidKey, decodeJwt, verifyJwsSignature } from '@agentid/core'
import { buildServer } from '../src/http/server.js'
import { CAEP_CREDENTIAL_CHANGE, CAEP_SESSION_REVOKED } from '../src/events/sets.js'
import { BASE_URL, bearer, harness, namedKey, spawnAgent, type Harness } from './http-fixtures.js'
import { softRegister } from './webauthn-soft.js'
import { createPublicKey } from 'node:crypto'

interface SseEvent { id?: string; event?: string; data: string }

/** A raw SSE client: every event parsed, the response kept for closing. */
function openStream(url: string, headers: Record<string, string> = {}): Promise<{ res: IncomingMessage; events: SseEvent[]; waitFor(n: number, ms?: number): Promise<SseEvent[]>; close(): void }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      const events: SseEvent[] = []
      let buffer = ''
      const waiters: (() => void)[] = []
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        buffer += chunk
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const e: SseEvent = { data: '' }
          let fields = 0
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue
            const i = line.indexOf(':')
            const name = i < 0 ? line : line.slice(0, i)
            const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '')
            if (name === 'id') e.id = value
            else if (name === 'event') e.event = value
            else if (name === 'data') e.data += value
            else continue
            fields++
          }
          if (fields && (e.event !== undefined || e.data !== '')) events.push(e)
        }
        for (const w of waiters.splice(0)) w()
      })
      resolve({
        res,
        events,
        waitFor: (n, ms = 5000) => new Promise((ok, fail) => {
          const deadline = setTimeout(() => fail(new Error(`only ${events.length} of ${n} events: ${JSON.stringify(events.map((e) => e.event))}`)), ms)
          const check = () => { if (events.length >= n) { clearTimeout(deadline); ok(events.slice()) } else waiters.push(check) }
          check()
        }),
        close: () => { res.destroy(); req.destroy() },
      })
    })
    req.on('error', reject)
    req.end()
  })
}

let h: Harness
let app: FastifyInstance
let url: string

beforeAll(async () => {
  h = await harness()
  app = buildServer(h.service, { logger: false, events: { heartbeatMs: 100, pollMs: 100, maxConnections: 3 } })
  url = `${await app.listen({ host: '127.0.0.1', port: 0 })}/v1/events`
})
afterAll(async () => {
  await app.close()
  await h.close()
})

function setOf(e: SseEvent) {
  const jwt = decodeJwt(e.data)
  return { header: jwt.header, claims: jwt.payload as Record<string, any>, jwt }
}

function checkSignature(e: SseEvent) {
  const { jwt } = setOf(e)
  const raw = decodeDidKey(h.issuerDid).publicKey
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' })
  verifyJwsSignature(jwt, key)
}

const revokeCredential = (id: string) => h.app.inject({ method: 'POST', url: `/v1/credentials/${encodeURIComponent(id)}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'key leaked (internal note)' } })
const revokeAgent = (did: string) => h.app.inject({ method: 'POST', url: `/v1/agents/${did}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'decommissioned' } })

describe('GET /v1/events', () => {
  it('starts with ready; a credential revocation arrives as a signed CAEP credential-change SET', async () => {
    const s = await openStream(url)
    expect(s.res.statusCode).toBe(200)
    expect(s.res.headers['content-type']).toMatch(/^text\/event-stream/)
    expect(s.res.headers['cache-control']).toBe('no-store')
    const [ready] = await s.waitFor(1)
    expect(ready!.event).toBe('ready')
    const agent = await spawnAgent(h, namedKey())
    expect((await revokeCredential(agent.credentialId)).statusCode).toBe(200)
    const [, e] = await s.waitFor(2)
    expect(e!.event).toBe('set')
    expect(e!.id).toMatch(/^[1-9][0-9]*$/)
    const { header, claims } = setOf(e!)
    expect(header).toMatchObject({ typ: 'secevent+jwt', alg: 'EdDSA' })
    checkSignature(e!)
    expect(claims.iss).toBe(h.issuerDid)
    expect(typeof claims.jti).toBe('string')
    expect(Number.isInteger(claims.iat)).toBe(true)
    expect(typeof claims.txn).toBe('string')
    // SSF 1.0 §4.1: no sub, no exp, exactly one event; CAEP credential-change's required claims.
    expect(claims).not.toHaveProperty('sub')
    expect(claims).not.toHaveProperty('exp')
    expect(Object.keys(claims.events)).toEqual([CAEP_CREDENTIAL_CHANGE])
    expect(claims.sub_id).toEqual({ format: 'jwt_id', iss: h.issuerDid, jti: agent.credentialId })
    expect(claims.events[CAEP_CREDENTIAL_CHANGE]).toMatchObject({ credential_type: 'verifiable-credential', change_type: 'revoke', initiating_entity: 'admin', event_timestamp: claims.iat })
    // The operator's reason is not published.
    expect(e!.data).not.toContain(Buffer.from('key leaked').toString('base64url').slice(0, 8))
    expect(JSON.stringify(claims)).not.toContain('leaked')
    // Revoking it again publishes nothing.
    await revokeCredential(agent.credentialId)
    await new Promise((r) => setTimeout(r, 300))
    expect(s.events.filter((x) => x.event === 'set')).toHaveLength(1)
    s.close()
  })

  it('an agent revocation publishes session-revoked and one credential-change per credential, one txn, consecutive ids', async () => {
    const key = namedKey()
    const agent = await spawnAgent(h, key)
    const s = await openStream(url)
    await s.waitFor(1)
    expect((await revokeAgent(agent.did)).statusCode).toBe(200)
    const events = (await s.waitFor(3)).slice(1)
    const sets = events.map(setOf)
    expect(sets[0]!.claims.sub_id).toEqual({ format: 'did', url: agent.did })
    expect(Object.keys(sets[0]!.claims.events)).toEqual([CAEP_SESSION_REVOKED])
    expect(sets[1]!.claims.sub_id).toEqual({ format: 'jwt_id', iss: h.issuerDid, jti: agent.credentialId })
    expect(new Set(sets.map((x) => x.claims.txn)).size).toBe(1)
    expect(Number(events[1]!.id)).toBe(Number(events[0]!.id) + 1)
    for (const e of events) checkSignature(e)
    s.close()
  })

  it('resumes after Last-Event-ID: every later event in order, and then live ones', async () => {
    const a = await spawnAgent(h, namedKey())
    const b = await spawnAgent(h, namedKey())
    const c = await spawnAgent(h, namedKey())
    const head = h.service.store.events.head()
    await revokeCredential(a.credentialId)
    await revokeCredential(b.credentialId)
    const s = await openStream(url, { 'last-event-id': String(head) })
    const got = await s.waitFor(3)
    expect(JSON.parse(got[0]!.data)).toEqual({ head: head + 2, from: head })
    expect(got.slice(1).map((e) => setOf(e).claims.sub_id.jti)).toEqual([a.credentialId, b.credentialId])
    await revokeCredential(c.credentialId)
    const live = await s.waitFor(4)
    expect(setOf(live[3]!).claims.sub_id.jti).toBe(c.credentialId)
    expect(live.slice(1).map((e) => Number(e.id))).toEqual([head + 1, head + 2, head + 3])
    s.close()
  })

  it('a Last-Event-ID beyond the head starts at the head, and ready says so', async () => {
    const head = h.service.store.events.head()
    const s = await openStream(url, { 'last-event-id': String(head + 1000) })
    const [ready] = await s.waitFor(1)
    expect(JSON.parse(ready!.data)).toEqual({ head, from: head })
    s.close()
  })

  it('retention: old events are deleted but the newest; a receiver resuming from a deleted one is told (from) and gets what is kept', async () => {
    const agents = [await spawnAgent(h, namedKey()), await spawnAgent(h, namedKey()), await spawnAgent(h, namedKey())]
    const before = h.service.store.events.head()
    for (const a of agents) await revokeCredential(a.credentialId)
    const head = h.service.store.events.head()
    expect(head).toBe(before + 3)
    // Everything written before 'the end of time' goes, except the head.
    h.service.store.events.prune(Number.MAX_SAFE_INTEGER)
    expect(h.service.store.events.oldest()).toBe(head)
    const s = await openStream(url, { 'last-event-id': String(before + 1) })
    const got = await s.waitFor(2)
    expect(JSON.parse(got[0]!.data)).toEqual({ head, from: head - 1 })
    expect(Number(got[1]!.id)).toBe(head)
    expect(setOf(got[1]!).claims.sub_id.jti).toBe(agents[2]!.credentialId)
    s.close()
  })

  it('events written by another process (another connection to the file) reach the stream through its poll', async () => {
    const s = await openStream(url)
    await s.waitFor(1)
    const BetterSqlite3 = (await import('better-sqlite3')).default
    const other = new BetterSqlite3(h.dbFile)
    other.prepare('INSERT INTO security_events (jti, txn, at, claims_json) VALUES (?, ?, ?, ?)').run('other-1', 't', 1, JSON.stringify({ iss: h.issuerDid, jti: 'other-1', iat: 1, txn: 't', sub_id: { format: 'did', url: 'did:key:z6MkOther' }, events: { [CAEP_SESSION_REVOKED]: { event_timestamp: 1 } } }))
    other.close()
    const [, e] = await s.waitFor(2, 3000)
    expect(setOf(e!).claims.jti).toBe('other-1')
    s.close()
  })

  it('with no stream open the poll reads nothing; with one open it reads the head every pollMs', async () => {
    const events = h.service.storage.events
    const head = events.head
    let reads = 0
    events.head = () => { reads++; return head.call(events) }
    try {
      await new Promise((r) => setTimeout(r, 350)) // pollMs 100: three polls, none reading
      expect(reads).toBe(0)
      const s = await openStream(url)
      await s.waitFor(1)
      await new Promise((r) => setTimeout(r, 350))
      expect(reads).toBeGreaterThanOrEqual(3)
      s.close()
    } finally {
      events.head = head
    }
  })

  it('a revocation that rolls back publishes nothing (the event row is in its transaction)', async () => {
    const agent = await spawnAgent(h, namedKey())
    const head = h.service.store.events.head()
    const store = h.service.store as unknown as { audit: (...args: unknown[]) => void }
    const audit = store.audit
    store.audit = () => { throw new Error('disk full') }
    try {
      expect((await revokeAgent(agent.did)).statusCode).toBe(500)
    } finally {
      store.audit = audit
    }
    expect(h.service.store.events.head()).toBe(head)
    expect(h.service.store.agents.get(agent.did)!.status).toBe('active')
  })

  it('refuses a malformed Last-Event-ID (400 ERR_INVALID_INPUT)', async () => {
    for (const bad of ['abc', '-1', '1e3', '+1', '01', '1234567890123456', '1.0']) {
      const r = await fetch(url, { headers: { 'last-event-id': bad } })
      expect(r.status, bad).toBe(400)
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('ERR_INVALID_INPUT')
    }
  })

  it('refuses streams past maxConnections (503 ERR_UNAVAILABLE), and takes them again once one leaves', async () => {
    const open = await Promise.all([openStream(url), openStream(url), openStream(url)])
    await Promise.all(open.map((s) => s.waitFor(1)))
    const r = await fetch(url)
    expect(r.status).toBe(503)
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('ERR_UNAVAILABLE')
    open[0]!.close()
    // The server notices the departure when the socket closes: retry until then.
    let again = await openStream(url)
    for (let i = 0; again.res.statusCode !== 200 && i < 100; i++) {
      again.close()
      await new Promise((res) => setTimeout(res, 30))
      again = await openStream(url)
    }
    expect(again.res.statusCode).toBe(200)
    again.close()
    for (const s of open) s.close()
  })

  it('sends keep-alive comments; closing the server ends open streams at once', async () => {
    const extra = buildServer(h.service, { logger: false, events: { heartbeatMs: 50 } })
    const base = await extra.listen({ host: '127.0.0.1', port: 0 })
    const s = await openStream(`${base}/v1/events`)
    let raw = ''
    s.res.on('data', (c: string) => { raw += c })
    await new Promise((r) => setTimeout(r, 200))
    expect(raw).toContain(': keep-alive')
    const ended = new Promise<void>((r) => s.res.once('close', () => r()))
    const t0 = Date.now()
    await extra.close()
    await ended
    expect(Date.now() - t0).toBeLessThan(2000)
  })

  it("an approver's revocation publishes a credential-change for the approver credential (once); an approver never enrolled publishes nothing", async () => {
    const add = async () => {
      const res = await h.app.inject({ method: 'POST', url: '/v1/approvers', headers: bearer(h.adminKey), payload: { name: 'Dana', controllers: ['did:web:acme.example'] } })
      expect(res.statusCode).toBe(201)
      const json = res.json() as { id: string; enrolmentUrl: string }
      return { id: json.id, token: json.enrolmentUrl.split('#')[1]! }
    }
    const a = await add()
    const options = (await h.app.inject({ method: 'POST', url: '/v1/enrolments/options', payload: { token: a.token } })).json()
    const enrolled = await h.app.inject({ method: 'POST', url: '/v1/enrolments/verify', payload: { token: a.token, response: softRegister(options, BASE_URL).response } })
    expect(enrolled.statusCode, enrolled.body).toBe(201)
    const credentialId = (enrolled.json() as { credentialId: string }).credentialId
    const s = await openStream(url)
    await s.waitFor(1)
    const revoke = (id: string) => h.app.inject({ method: 'POST', url: `/v1/approvers/${id}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'lost device (internal note)' } })
    expect((await revoke(a.id)).json()).toMatchObject({ alreadyRevoked: false })
    const [, e] = await s.waitFor(2)
    expect(e!.event).toBe('set')
    checkSignature(e!)
    const { claims } = setOf(e!)
    expect(claims.sub_id).toEqual({ format: 'jwt_id', iss: h.issuerDid, jti: credentialId })
    expect(Object.keys(claims.events)).toEqual([CAEP_CREDENTIAL_CHANGE])
    expect(claims.events[CAEP_CREDENTIAL_CHANGE]).toMatchObject({ credential_type: 'verifiable-credential', change_type: 'revoke' })
    expect(JSON.stringify(claims)).not.toContain('lost device')
    // Again, and an approver who never enrolled (no credential): nothing more.
    expect((await revoke(a.id)).json()).toMatchObject({ alreadyRevoked: true })
    expect((await revoke((await add()).id)).json()).toMatchObject({ alreadyRevoked: false })
    await new Promise((r) => setTimeout(r, 300))
    expect(s.events.filter((x) => x.event === 'set')).toHaveLength(1)
    s.close()
  })
})

describe('event stream configuration', () => {
  it('AGENTID_REDIS_URL and AGENTID_EVENTS_POLL_MS are read and checked', async () => {
    const { configFromEnv } = await import('../src/config.js')
    const c = configFromEnv({ AGENTID_REDIS_URL: 'redis://127.0.0.1:6379', AGENTID_EVENTS_POLL_MS: '250' })
    expect(c.redisUrl).toBe('redis://127.0.0.1:6379')
    expect(c.eventsPollMs).toBe(250)
    expect(configFromEnv({}).redisUrl).toBeUndefined()
    for (const bad of [{ AGENTID_REDIS_URL: 'http://x' }, { AGENTID_REDIS_URL: 'redis://a b' }, { AGENTID_EVENTS_POLL_MS: '5' }, { AGENTID_EVENTS_POLL_MS: '1e3' }, { AGENTID_EVENTS_POLL_MS: '-100' }]) {
      let code: string | undefined
      try {
        configFromEnv(bad)
      } catch (e) {
        code = (e as { code?: string }).code
      }
      expect(code, JSON.stringify(bad)).toBe('ERR_INVALID_INPUT')
    }
  })
})

describe('Redis event bus', () => {
  it('with Redis unreachable it still wakes its own instance, reports the failure, and closes at once', async () => {
    const { createRedisEventBus } = await import('../src/events/redis-bus.js')
    const failures: unknown[] = []
    const bus = createRedisEventBus({ url: 'redis://127.0.0.1:1', onError: (e) => failures.push(e) })
    const got: number[] = []
    bus.subscribe((seq) => got.push(seq))
    bus.publish(5)
    expect(got).toEqual([5])
    await new Promise((r) => setTimeout(r, 200))
    expect(failures.length).toBeGreaterThan(0)
    const t0 = Date.now()
    await bus.close()
    expect(Date.now() - t0).toBeLessThan(500)
    expect(() => createRedisEventBus({ url: 'http://x' })).toThrow(TypeError)
  })
})
