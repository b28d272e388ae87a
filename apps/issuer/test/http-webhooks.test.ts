// The admin API of the approval webhook's outbox (GET /v1/webhooks/events, GET …/{id}, POST …/{id}/redeliver)
// on both engines: a real IssuerService on SQLite or PostgreSQL and its Fastify app, the outbox rows
// seeded through the storage (pending, delivered, abandoned), the sender delivering with a recording
// fetch. Hostile input on every route; the PostgreSQL run is skipped with its reason when the server
// is absent, failing under AGENTID_REQUIRE_SERVICES=1.
import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { openDatabase } from '../src/db/open.js'
import type { IssuerStorage } from '../src/storage/index.js'
import { webhookListSql } from '../src/webhooks/store.js'
import { tempDir } from './engine-helpers.js'
import { bearer, expectError, harness, type Harness } from './http-fixtures.js'
import { pgAbsent, REQUIRE_SERVICES } from './pg-helpers.js'
import { storageEngines } from './storage-engines.js'
import { approvalLogRef } from '../src/approvals/log-ref.js'

const absent = await pgAbsent()
if (absent !== null && !REQUIRE_SERVICES) console.warn(`skipping the PostgreSQL run of apps/issuer/test/http-webhooks.test.ts: ${absent}`)

const SECRET = `whsec_${randomBytes(32).toString('base64')}`
// Far ahead of the sender's clock (Date.now): seeded rows are never due for it unless redelivered.
const FUTURE = Date.now() + 10 * 365 * 86_400_000
const LEAK = 'postgres://app:hunter2@10.1.2.3:5432/prod'

const closers: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

const eventId = (n: number) => `evt_${String(n).padStart(22, 'A')}`

describe('the listing on SQLite', () => {
  // Without migration 12 every page sorted the whole outbox (150 ms for 10^5 events, the event loop held).
  it('walks an index for every shape of the query: no scan of the table, no sort', () => {
    const { dir, cleanup } = tempDir()
    closers.push(cleanup)
    const db = openDatabase(`${dir}/issuer.db`)
    closers.push(() => void db.close())
    for (const [byState, after] of [[false, false], [false, true], [true, false], [true, true]] as const) {
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${webhookListSql(byState, after)}`).all({ state: 'failed', ms: 1, id: 'evt_x', limit: 50 }) as { detail: string }[]).map((r) => r.detail).join(' | ')
      expect(plan, plan).toMatch(/USING INDEX webhook_outbox_(state_)?created/)
      expect(plan, plan).not.toMatch(/TEMP B-TREE|^SCAN webhook_outbox$/)
    }
  })
})

describe.each(storageEngines(absent))('webhook admin routes on $name', (engine) => {
  const run = engine.name === 'postgres' && absent !== null && !REQUIRE_SERVICES ? it.skip : it
  const posted: { id: string; body: string }[] = []

  async function open(webhook = true): Promise<Harness> {
    const db = await engine.fresh()
    closers.push(db.cleanup)
    const fetch = (async (_url: string, init: { body: string; headers: Record<string, string> }) => {
      posted.push({ id: init.headers['webhook-id']!, body: init.body })
      return new Response(null, { status: 204 })
    }) as unknown as typeof globalThis.fetch
    const h = await harness({
      ...(db.url === undefined ? {} : { databaseUrl: db.url }),
      ...(webhook ? { approvals: { webhook: { url: 'https://hooks.example/approvals', secret: SECRET }, fetch, webhookPollMs: 20 } } : {}),
    })
    closers.push(() => h.close())
    posted.length = 0
    return h
  }

  // Seven events: 1-3 pending (not due), 4-5 delivered, 6-7 abandoned; 2 and 3 created in the same ms.
  async function seed(s: IssuerStorage): Promise<void> {
    const created = [0, 10, 20, 20, 30, 40, 50, 60]
    // Each is due at its own time, so a claim at that time takes it alone (claims go by next_ms).
    const due = (n: number) => FUTURE + 1000 + n * 10
    for (let n = 1; n <= 7; n++) {
      await s.transaction((tx) => tx.webhooks.enqueue({ id: eventId(n), type: 'approval.requested', subject: `apr_${String(n).padStart(22, 'B')}`, payload: JSON.stringify({ type: 'approval.requested', n }), created_ms: FUTURE + created[n]!, next_ms: n === 2 || n === 3 ? FUTURE + 9000 : due(n) }))
    }
    // A pending event with a network failure recorded (the receiver's address is in the text).
    expect((await s.webhooks.claim('seed', due(1), due(1) + 500, 1)).map((r) => r.id)).toEqual([eventId(1)])
    expect(await s.webhooks.settle(eventId(1), 'seed', { atMs: FUTURE + 1000, durationMs: 3, status: null, error: 'network: ECONNREFUSED 10.9.8.7:4443' }, { state: 'pending', nextMs: FUTURE + 5000 })).toBe(true)
    for (const n of [4, 5, 6, 7]) {
      expect((await s.webhooks.claim('seed', due(n), due(n) + 500, 1)).map((r) => r.id)).toEqual([eventId(n)])
      const ok = n <= 5
      expect(await s.webhooks.settle(eventId(n), 'seed', { atMs: FUTURE + 1000, durationMs: 12, status: ok ? 204 : 500, error: ok ? null : `HTTP 500: ${LEAK}` }, ok ? { state: 'delivered', doneMs: FUTURE + 1012 } : { state: 'failed', doneMs: FUTURE + 1012 })).toBe(true)
    }
  }

  const get = (h: Harness, url: string, key = h.adminKey) => h.app.inject({ method: 'GET', url, headers: bearer(key) })
  const post = (h: Harness, url: string, key = h.adminKey) => h.app.inject({ method: 'POST', url, headers: bearer(key) })

  run('lists newest first, by status, a page at a time with an opaque cursor', async () => {
    const h = await open()
    await seed(h.service.storage)
    const all = (await get(h, '/v1/webhooks/events')).json()
    expect(all.events.map((e: { id: string }) => e.id)).toEqual([7, 6, 5, 4, 3, 2, 1].map(eventId))
    expect(all.nextCursor).toBeNull()
    expect(all.events[0]).toEqual({
      id: eventId(7), type: 'approval.requested', approval: `apr_${'7'.padStart(22, 'B')}`, status: 'abandoned',
      createdAt: new Date(FUTURE + 60).toISOString(), nextAttemptAt: null, doneAt: new Date(FUTURE + 1012).toISOString(), attempts: 1, lastError: 'HTTP 500',
    })
    expect(all.events.find((e: { id: string }) => e.id === eventId(1))).toMatchObject({ status: 'pending', nextAttemptAt: new Date(FUTURE + 5000).toISOString(), doneAt: null, lastError: 'network error' })
    // Pages of two cover every event once, in order (2 and 3 share a created_ms).
    const seen: string[] = []
    let cursor: string | null = null
    for (let i = 0; i < 10; i++) {
      const page = (await get(h, `/v1/webhooks/events?limit=2${cursor ? `&cursor=${cursor}` : ''}`)).json()
      expect(page.events.length).toBeLessThanOrEqual(2)
      seen.push(...page.events.map((e: { id: string }) => e.id))
      cursor = page.nextCursor
      if (!cursor) break
      expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/)
    }
    expect(seen).toEqual([7, 6, 5, 4, 3, 2, 1].map(eventId))
    for (const [status, ids] of [['pending', [3, 2, 1]], ['delivered', [5, 4]], ['abandoned', [7, 6]]] as const) {
      const res = await get(h, `/v1/webhooks/events?status=${status}`)
      expect(res.statusCode).toBe(200)
      expect(res.headers['cache-control']).toBe('no-store')
      expect(res.json().events.map((e: { id: string; status: string }) => [e.id, e.status])).toEqual(ids.map((n) => [eventId(n), status]))
    }
    const page = (await get(h, '/v1/webhooks/events?status=pending&limit=1')).json()
    expect((await get(h, `/v1/webhooks/events?status=pending&limit=5&cursor=${page.nextCursor}`)).json().events.map((e: { id: string }) => e.id)).toEqual([2, 1].map(eventId))
    // Whole body: never the secret nor what a receiver said.
    for (const res of [await get(h, '/v1/webhooks/events'), await get(h, `/v1/webhooks/events/${eventId(6)}`), await get(h, `/v1/webhooks/events/${eventId(1)}`)]) {
      expect(res.body).not.toContain(SECRET.slice(6, 30))
      expect(res.body).not.toContain('hunter2')
      expect(res.body).not.toContain('10.9.8.7')
    }
  })

  run('shows an event with its payload and attempts; redelivers it with the same webhook-id, audited', async () => {
    const h = await open()
    await seed(h.service.storage)
    const shown = (await get(h, `/v1/webhooks/events/${eventId(6)}`)).json()
    expect(shown).toMatchObject({ id: eventId(6), status: 'abandoned', attempts: 1, payload: { type: 'approval.requested', n: 6 } })
    expect(shown.attemptLog).toEqual([{ attempt: 1, at: new Date(FUTURE + 1000).toISOString(), durationMs: 12, status: 500, error: 'HTTP 500' }])
    expect((await get(h, `/v1/webhooks/events/${eventId(1)}`)).json().attemptLog).toEqual([{ attempt: 1, at: new Date(FUTURE + 1000).toISOString(), durationMs: 3, status: null, error: 'network error' }])
    expect((await get(h, `/v1/webhooks/events/${eventId(2)}`)).json()).toMatchObject({ attempts: 0, attemptLog: [], lastError: null })

    const before = Date.now()
    for (const n of [6, 4]) {
      const res = await post(h, `/v1/webhooks/events/${eventId(n)}/redeliver`)
      expect(res.statusCode, res.body).toBe(200)
      const { event } = res.json()
      expect(event).toMatchObject({ id: eventId(n), status: 'pending', doneAt: null })
      expect(Date.parse(event.nextAttemptAt)).toBeGreaterThanOrEqual(before - 5)
    }
    // The sender delivers both, once each, under their own ids (receivers dedupe on webhook-id).
    for (let i = 0; i < 300 && posted.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    expect(posted.map((p) => p.id).sort()).toEqual([eventId(4), eventId(6)])
    expect(posted.find((p) => p.id === eventId(6))!.body).toBe(JSON.stringify({ type: 'approval.requested', n: 6 }))
    for (let i = 0; i < 100; i++) {
      if ((await h.service.storage.webhooks.get(eventId(6)))?.state === 'delivered') break
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    const after = (await get(h, `/v1/webhooks/events/${eventId(6)}`)).json()
    expect(after).toMatchObject({ status: 'delivered', attempts: 2, lastError: null })
    expect(after.attemptLog.map((a: { attempt: number; status: number; error: string | null }) => [a.attempt, a.status, a.error])).toEqual([[1, 500, 'HTTP 500'], [2, 204, null]])
    // Audited, in the issuer log: who, which event, what it was.
    const index = await h.service.storage.audit.last('webhook.redelivered', eventId(6))
    expect(index).toBeTypeOf('number')
    const [entry] = await h.service.storage.audit.range(index!, index! + 1)
    expect(entry).toMatchObject({ actor: 'admin', action: 'webhook.redelivered', subject: eventId(6) })
    expect(JSON.parse(entry!.details_json!)).toEqual({ type: 'approval.requested', approval: approvalLogRef(`apr_${'6'.padStart(22, 'B')}`), previousStatus: 'abandoned' })
    // A pending event is refused (it is delivered or retried already), and nothing is audited.
    const auditBefore = await h.service.storage.audit.count()
    expect(expectError(await post(h, `/v1/webhooks/events/${eventId(2)}/redeliver`), 409, 'ERR_CONFLICT').details).toEqual({ reason: 'webhook_pending' })
    expectError(await post(h, `/v1/webhooks/events/${eventId(99)}/redeliver`), 404, 'ERR_NOT_FOUND')
    expectError(await get(h, `/v1/webhooks/events/${eventId(99)}`), 404, 'ERR_NOT_FOUND')
    expect(await h.service.storage.audit.count()).toBe(auditBefore)
  })

  run('redeliver is refused when no webhook is configured; the reads still work', async () => {
    const h = await open(false)
    await seed(h.service.storage)
    expect(expectError(await post(h, `/v1/webhooks/events/${eventId(6)}/redeliver`), 409, 'ERR_CONFLICT').details).toEqual({ reason: 'webhook_not_configured' })
    expect((await h.service.storage.webhooks.get(eventId(6)))!.state).toBe('failed')
    expect((await get(h, '/v1/webhooks/events')).json().events).toHaveLength(7)
  })

  run('hostile input on every route: auth, roles, ids, cursors, limits, parameters', async () => {
    const h = await open()
    await seed(h.service.storage)
    const routes = [['GET', '/v1/webhooks/events'], ['GET', `/v1/webhooks/events/${eventId(6)}`], ['POST', `/v1/webhooks/events/${eventId(6)}/redeliver`]] as const
    for (const [method, url] of routes) {
      expectError(await h.app.inject({ method, url }), 401, 'ERR_UNAUTHENTICATED')
      expectError(await h.app.inject({ method, url, headers: bearer('aid_admin_' + 'x'.repeat(40)) }), 401, 'ERR_UNAUTHENTICATED')
      expectError(await h.app.inject({ method, url, headers: { authorization: `Basic ${h.adminKey}` } }), 401, 'ERR_UNAUTHENTICATED')
      expectError(await h.app.inject({ method, url, headers: bearer(h.orch.apiKey) }), 403, 'ERR_FORBIDDEN')
    }
    // The role is checked before the input: an orchestrator learns nothing from a bad id or query.
    expectError(await get(h, '/v1/webhooks/events?limit=99999', h.orch.apiKey), 403, 'ERR_FORBIDDEN')
    expectError(await post(h, '/v1/webhooks/events/nope/redeliver', h.orch.apiKey), 403, 'ERR_FORBIDDEN')
    expect((await h.service.storage.webhooks.get(eventId(6)))!.state).toBe('failed')

    const badIds = ['nope', 'evt_short', `evt_${'A'.repeat(23)}`, `evt_${'A'.repeat(21)}%2F`, 'evt_AAAAAAAAAAAAAAAAAAAAA%00', '..%2F..%2Fv1%2Fagents', `evt_${'A'.repeat(200)}`, "evt_'%20OR%201=1--AAAAAAAAAA"]
    for (const id of badIds) {
      expectError(await get(h, `/v1/webhooks/events/${id}`), 400, 'ERR_INVALID_INPUT')
      expectError(await post(h, `/v1/webhooks/events/${id}/redeliver`), 400, 'ERR_INVALID_INPUT')
    }
    expectError(await get(h, `/v1/webhooks/events/${'A'.repeat(300)}`), 400, 'ERR_INVALID_INPUT') // over the router's parameter limit
    expectError(await get(h, '/v1/webhooks/events/%E0%A4%A'), 400, 'ERR_INVALID_INPUT')

    const json = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
    const badCursors = ['x', '!!!!', 'A'.repeat(300), json([1, 'evt_x']), json(['1', eventId(1)]), json([1.5, eventId(1)]), json([-1, eventId(1)]), json({ createdMs: 1, id: eventId(1) }), json([1, eventId(1), 3]), json([2 ** 60, eventId(1)]), Buffer.from('not json').toString('base64url'), '%00']
    for (const cursor of badCursors) {
      const body = expectError(await get(h, `/v1/webhooks/events?cursor=${encodeURIComponent(cursor)}`), 400, 'ERR_INVALID_INPUT')
      expect(body.details).toEqual({ field: 'cursor' })
    }
    for (const limit of ['0', '501', '99999', '1e3', '-1', '1.5', 'abc', '', ' 5', '0x10']) {
      expect(expectError(await get(h, `/v1/webhooks/events?limit=${encodeURIComponent(limit)}`), 400, 'ERR_INVALID_INPUT').details, limit).toEqual({ field: 'limit' })
    }
    for (const status of ['failed', 'PENDING', '', 'pending ', '__proto__', 'toString']) {
      expect(expectError(await get(h, `/v1/webhooks/events?status=${encodeURIComponent(status)}`), 400, 'ERR_INVALID_INPUT').details).toEqual({ field: 'status' })
    }
    expectError(await get(h, '/v1/webhooks/events?status=pending&status=delivered'), 400, 'ERR_INVALID_INPUT')
    expectError(await get(h, '/v1/webhooks/events?limit=1&limit=2'), 400, 'ERR_INVALID_INPUT')
    expectError(await get(h, '/v1/webhooks/events?secret=1'), 400, 'ERR_INVALID_INPUT')
    expectError(await get(h, '/v1/webhooks/events?__proto__=1'), 400, 'ERR_INVALID_INPUT')
    // The largest page is bounded and answered.
    expect((await get(h, '/v1/webhooks/events?limit=500')).json().events).toHaveLength(7)
    // A body on redeliver is not read (no input is taken); a huge one is refused by the body limit.
    expectError(await h.app.inject({ method: 'POST', url: `/v1/webhooks/events/${eventId(6)}/redeliver`, headers: { ...bearer(h.adminKey), 'content-type': 'application/json' }, payload: `{"a":"${'x'.repeat(70_000)}"}` }), 413, 'ERR_PAYLOAD_TOO_LARGE')
    expect((await h.service.storage.webhooks.get(eventId(6)))!.state).toBe('failed')
  })

  run('the routes are in the OpenAPI document', async () => {
    const h = await open()
    const doc = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json()
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/webhooks/events', '/v1/webhooks/events/{id}', '/v1/webhooks/events/{id}/redeliver']))
    expect(doc.paths['/v1/webhooks/events/{id}/redeliver'].post.security).toEqual([{ bearer: [] }])
    expect(doc.components.schemas.WebhookEvent.properties.status.enum).toEqual(['pending', 'delivered', 'abandoned'])
  })
})
