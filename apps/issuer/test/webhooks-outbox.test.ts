// The approval webhook's outbox and sender on both engines (SQLite file, PostgreSQL database): events
// commit or roll back with their transaction; a lease keeps an event with one sender at a time (two
// instances on PostgreSQL claim disjoint events); each attempt is recorded; retries back off and give
// up with an audit event. The sender against real HTTP receivers, hostile ones included (slow, an
// endless body, a redirect, a closed socket, a refused connection). The PostgreSQL run is skipped with
// the reason printed when the server is absent, failing under AGENTID_REQUIRE_SERVICES=1.
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Webhook } from 'standardwebhooks'
import { openStorage, type IssuerStorage } from '../src/storage/index.js'
import { WebhookSender, type WebhookSenderOptions } from '../src/webhooks/sender.js'
import { tempDir } from './engine-helpers.js'
import { pgAbsent, REQUIRE_SERVICES, tempPgDatabase } from './pg-helpers.js'
import { approvalLogRef } from '../src/approvals/log-ref.js'

const absent = await pgAbsent()
if (absent !== null && !REQUIRE_SERVICES) console.warn(`skipping the PostgreSQL run of apps/issuer/test/webhooks-outbox.test.ts: ${absent}`)

const SECRET = `whsec_${randomBytes(32).toString('base64')}`
const T0 = 1_800_000_000_000

interface Received { id: string; timestamp: string; signature: string; body: string }

/** A real HTTP receiver whose answer to each request is `handler`'s; records what it received. */
async function receiver(handler: (req: IncomingMessage, res: ServerResponse, n: number) => void = (_q, res) => res.writeHead(204).end()): Promise<{ url: string; got: Received[]; server: Server; close: () => Promise<void> }> {
  const got: Received[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      got.push({ id: String(req.headers['webhook-id']), timestamp: String(req.headers['webhook-timestamp']), signature: String(req.headers['webhook-signature']), body: Buffer.concat(chunks).toString('utf8') })
      handler(req, res, got.length)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${port}/hook`, got, server,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }),
  }
}

const closers: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

describe.each(['sqlite', 'postgres'] as const)('the outbox on %s', (engine) => {
  const run = engine === 'postgres' && absent !== null && !REQUIRE_SERVICES ? it.skip : it

  // `n` storages on one fresh database (SQLite: one per file per process, so the same one n times).
  // PostgreSQL judges leases by the database's clock: `dbClock` stands in for it (default: its own).
  async function storages(n: number, dbClock?: { now: number }): Promise<IssuerStorage[]> {
    let open: () => Promise<IssuerStorage>
    if (engine === 'sqlite') {
      const { dir, cleanup } = tempDir()
      closers.push(cleanup)
      const s = await openStorage({ file: join(dir, 'issuer.db') })
      closers.push(() => s.close())
      return Array.from({ length: n }, () => s)
    }
    if (absent !== null) throw new Error(`AGENTID_REQUIRE_SERVICES=1 but ${absent}`)
    const db = await tempPgDatabase()
    closers.push(db.drop)
    open = async () => {
      const s = await openStorage({ databaseUrl: db.url, file: '-', ...(dbClock ? { pg: { databaseClock: () => dbClock.now } } : {}) })
      closers.push(() => s.close())
      return s
    }
    const out: IssuerStorage[] = []
    for (let i = 0; i < n; i++) out.push(await open())
    return out
  }

  function sender(storage: IssuerStorage, url: string, o: Omit<Partial<WebhookSenderOptions>, 'config'> & { config?: Partial<WebhookSenderOptions['config']> } = {}): WebhookSender {
    const s = new WebhookSender({ storage, clock: () => T0, random: () => 0.5, log: () => {}, ...o, config: { url, secret: SECRET, ...o.config } })
    closers.push(() => s.stop())
    return s
  }

  const row = (i: number, at = T0) => ({ id: `evt_${i}`, type: 'approval.requested', subject: `apr_${i}`, payload: JSON.stringify({ type: 'approval.requested', id: `apr_${i}` }), created_ms: at, next_ms: at })

  run('an event commits or rolls back with the transaction that writes it', async () => {
    const [s] = await storages(1)
    await expect(s!.transaction(async (tx) => {
      await tx.webhooks.enqueue(row(1))
      throw new Error('the approval write failed')
    })).rejects.toThrow('the approval write failed')
    expect(await s!.webhooks.get('evt_1')).toBeUndefined()
    await s!.transaction((tx) => tx.webhooks.enqueue(row(2)))
    expect(await s!.webhooks.get('evt_2')).toMatchObject({ state: 'pending', attempts: 0, next_ms: T0, lease_owner: null })
    expect(await s!.webhooks.bySubject('apr_2')).toHaveLength(1)
    expect(await s!.webhooks.nextDueMs()).toBe(T0)
    // The id is the primary key: one event, one row.
    await expect(s!.transaction((tx) => tx.webhooks.enqueue(row(2)))).rejects.toThrow()
  })

  run('a lease keeps an event with one owner; a lost lease records nothing; attempts are kept', async () => {
    const clock = { now: T0 } // the database's (PostgreSQL), moved with the callers' here
    const [a, b] = await storages(2, clock)
    await a!.transaction((tx) => tx.webhooks.enqueue(row(1)))
    await a!.transaction((tx) => tx.webhooks.enqueue(row(2, T0 + 5000)))
    expect((await a!.webhooks.claim('A', T0, T0 + 1000, 10)).map((r) => r.id)).toEqual(['evt_1']) // evt_2 not due yet
    clock.now = T0 + 500
    expect(await b!.webhooks.claim('B', T0 + 500, T0 + 1500, 10)).toEqual([]) // leased to A
    expect(await b!.webhooks.nextDueMs()).toBe(T0 + 1000) // when A's lease runs out
    // A stalls past its lease: B takes the event over; A's late record is refused.
    clock.now = T0 + 1000
    expect((await b!.webhooks.claim('B', T0 + 1000, T0 + 2000, 10)).map((r) => r.id)).toEqual(['evt_1'])
    expect(await a!.webhooks.settle('evt_1', 'A', { atMs: T0, durationMs: 900, status: 200, error: null }, { state: 'delivered', doneMs: T0 + 900 })).toBe(false)
    expect(await b!.webhooks.settle('evt_1', 'B', { atMs: T0 + 1000, durationMs: 10, status: 500, error: 'HTTP 500' }, { state: 'pending', nextMs: T0 + 3000 })).toBe(true)
    expect(await a!.webhooks.get('evt_1')).toMatchObject({ state: 'pending', attempts: 1, next_ms: T0 + 3000, lease_owner: null, last_error: 'HTTP 500' })
    clock.now = T0 + 3000
    expect((await a!.webhooks.claim('A', T0 + 3000, T0 + 4000, 10)).map((r) => r.id)).toEqual(['evt_1'])
    expect(await a!.webhooks.settle('evt_1', 'A', { atMs: T0 + 3000, durationMs: 12, status: 204, error: null }, { state: 'delivered', doneMs: T0 + 3012 })).toBe(true)
    // Settled once: a second record of the same lease is refused.
    expect(await a!.webhooks.settle('evt_1', 'A', { atMs: T0 + 3000, durationMs: 12, status: 204, error: null }, { state: 'delivered', doneMs: T0 + 3012 })).toBe(false)
    expect(await b!.webhooks.get('evt_1')).toMatchObject({ state: 'delivered', attempts: 2, done_ms: T0 + 3012, last_error: null })
    expect(await b!.webhooks.attempts('evt_1')).toEqual([
      { event_id: 'evt_1', attempt: 1, at_ms: T0 + 1000, duration_ms: 10, status: 500, error: 'HTTP 500' },
      { event_id: 'evt_1', attempt: 2, at_ms: T0 + 3000, duration_ms: 12, status: 204, error: null },
    ])
    expect(await b!.webhooks.nextDueMs()).toBe(T0 + 5000)
    // Delivered and failed events go after the retention; pending ones never.
    expect(await a!.webhooks.prune(T0 + 3013)).toBe(1)
    expect(await a!.webhooks.get('evt_1')).toBeUndefined()
    expect(await a!.webhooks.attempts('evt_1')).toEqual([])
    expect(await a!.webhooks.get('evt_2')).toBeDefined()
  })

  run('instances claiming at once never hold the same event', async () => {
    const [a, b] = await storages(2)
    await a!.transaction(async (tx) => {
      for (let i = 0; i < 60; i++) await tx.webhooks.enqueue(row(i))
    })
    const claims = await Promise.all(Array.from({ length: 40 }, (_, k) => (k % 2 ? a! : b!).webhooks.claim(`owner${k}`, T0, T0 + 60_000, 3)))
    const ids = claims.flat().map((r) => r.id)
    expect(new Set(ids).size).toBe(ids.length)
    expect(ids.length).toBe(60)
  })

  // PostgreSQL only: SQLite has one process per file, whose clock is the one clock.
  // PostgreSQL only (SQLite has one process per file, one clock): not defined for SQLite rather than skipped.
  if (engine === 'postgres') run('an instance whose clock runs ahead never takes an event another is still delivering (red team)', async () => {
    const [a, b] = await storages(2) // the database's own clock
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    const r = await receiver((_q, res, n) => void (n === 1 ? held.then(() => res.writeHead(204).end()) : res.writeHead(204).end()))
    closers.push(r.close)
    // Leases of 15 s + 30 s; B's clock is two minutes ahead of A's (and the database's).
    const sa = sender(a!, r.url, { clock: () => Date.now() })
    const sb = sender(b!, r.url, { clock: () => Date.now() + 120_000 })
    const ev = sa.event('approval.requested', 'apr_1', JSON.stringify({ type: 'approval.requested', id: 'apr_1' }))
    await a!.transaction((tx) => tx.webhooks.enqueue(ev))
    const first = sa.runOnce()
    for (let i = 0; i < 200 && r.got.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    expect(r.got).toHaveLength(1) // A is delivering it
    expect(await sb.runOnce()).toBe(0) // B's clock says A's lease ran out; the database's says it did not
    release()
    expect(await first).toBe(1)
    expect(r.got).toHaveLength(1)
    expect(await b!.webhooks.get(ev.id)).toMatchObject({ state: 'delivered', attempts: 1 })
  })

  run('the sender delivers signed, retries with backoff under the same id, and records every attempt', async () => {
    const [s] = await storages(1)
    const r = await receiver((_q, res, n) => res.writeHead(n <= 2 ? 500 : 204).end(n <= 2 ? 'not yet' : ''))
    closers.push(r.close)
    let now = T0
    const snd = sender(s!, r.url, { clock: () => now, config: { retryMs: 1000 } })
    const ev = snd.event('approval.requested', 'apr_1', JSON.stringify({ type: 'approval.requested', id: 'apr_1' }))
    await s!.transaction((tx) => tx.webhooks.enqueue(ev))
    expect(await snd.runOnce()).toBe(1)
    expect(await s!.webhooks.get(ev.id)).toMatchObject({ state: 'pending', attempts: 1, next_ms: T0 + 750, last_error: 'HTTP 500: not yet' })
    expect(await snd.runOnce()).toBe(0) // not due yet
    now = T0 + 750
    expect(await snd.runOnce()).toBe(1)
    expect(await s!.webhooks.get(ev.id)).toMatchObject({ state: 'pending', attempts: 2, next_ms: T0 + 750 + 1500 })
    now = T0 + 2250
    expect(await snd.runOnce()).toBe(1)
    expect(await s!.webhooks.get(ev.id)).toMatchObject({ state: 'delivered', attempts: 3 })
    expect((await s!.webhooks.attempts(ev.id)).map((a) => a.status)).toEqual([500, 500, 204])
    // One webhook-id throughout; each attempt signed at its own time.
    expect(r.got.map((g) => g.id)).toEqual([ev.id, ev.id, ev.id])
    expect(r.got.map((g) => Number(g.timestamp))).toEqual([T0 / 1000, Math.floor((T0 + 750) / 1000), Math.floor((T0 + 2250) / 1000)])
    // Each attempt verifies with the library (its clock is real: check against the attempt's own time).
    for (const g of r.got) {
      expect(g.body).toBe(ev.payload)
      const expected = new Webhook(SECRET).sign(g.id, new Date(Number(g.timestamp) * 1000), g.body)
      expect(g.signature).toBe(expected)
    }
  })

  run('a 429 or 503 Retry-After is honoured; after the give-up time the event is failed, with an audit event and a log line', async () => {
    const [s] = await storages(1)
    const r = await receiver((_q, res) => res.writeHead(503, { 'retry-after': '120' }).end())
    closers.push(r.close)
    let now = T0
    const lines: Record<string, unknown>[] = []
    const snd = sender(s!, r.url, { clock: () => now, log: (l) => lines.push(l), config: { retryMs: 1000, giveUpSec: 300 } })
    const ev = snd.event('approval.approved', 'apr_9', '{"type":"approval.approved"}')
    await s!.transaction((tx) => tx.webhooks.enqueue(ev))
    await snd.runOnce()
    expect((await s!.webhooks.get(ev.id))!.next_ms).toBe(T0 + 120_000)
    now = T0 + 120_000
    await snd.runOnce()
    now = T0 + 240_000
    await snd.runOnce() // the next one would be past 300 s after the event: given up
    expect(await s!.webhooks.get(ev.id)).toMatchObject({ state: 'failed', attempts: 3, done_ms: T0 + 240_000, last_error: 'HTTP 503' })
    expect(await s!.webhooks.nextDueMs()).toBeUndefined()
    const index = await s!.audit.last('webhook.abandoned', ev.id)
    expect(index).toBeDefined()
    const [audit] = await s!.audit.range(index!, index! + 1)
    expect(JSON.parse(audit!.details_json!)).toEqual({ type: 'approval.approved', approval: approvalLogRef('apr_9'), attempts: 3, lastError: 'HTTP 503' })
    expect(lines).toEqual([{ msg: 'approval webhook given up', eventId: ev.id, type: 'approval.approved', approval: 'apr_9', attempts: 3, lastError: 'HTTP 503' }])
    expect(r.got).toHaveLength(3)
  })
})

describe('hostile receivers (SQLite)', () => {
  async function setup(url: string, timeoutMs = 400) {
    const { dir, cleanup } = tempDir()
    closers.push(cleanup)
    const s = await openStorage({ file: join(dir, 'issuer.db') })
    closers.push(() => s.close())
    const snd = new WebhookSender({ storage: s, log: () => {}, config: { url, secret: SECRET, timeoutMs, retryMs: 100 } })
    closers.push(() => snd.stop())
    const ev = snd.event('approval.requested', 'apr_h', '{"type":"approval.requested"}')
    await s.transaction((tx) => tx.webhooks.enqueue(ev))
    const attempt = async () => {
      const t0 = performance.now()
      expect(await snd.runOnce()).toBe(1)
      return { ms: performance.now() - t0, row: (await s.webhooks.get(ev.id))!, attempts: await s.webhooks.attempts(ev.id) }
    }
    return { s, snd, ev, attempt }
  }

  it('a receiver that never answers is cut at the timeout and retried', async () => {
    const r = await receiver(() => { /* never answers */ })
    closers.push(r.close)
    const { attempt } = await setup(r.url, 300)
    const { ms, row, attempts } = await attempt()
    expect(ms).toBeLessThan(3000)
    expect(row).toMatchObject({ state: 'pending', attempts: 1 })
    expect(attempts[0]).toMatchObject({ status: null, error: 'timeout: no answer within 300 ms' })
  })

  it('an endless body is not read: a 2xx is delivered at once, an error keeps at most 200 characters', async () => {
    for (const status of [200, 500]) {
      let written = 0
      const r = await receiver((_q, res) => {
        res.writeHead(status, { 'content-type': 'text/plain' })
        const chunk = Buffer.alloc(64 * 1024, 'A')
        const pump = () => { while (!res.destroyed && written < 512 * 1024 * 1024 && res.write(chunk)) written += chunk.length }
        res.on('drain', pump)
        pump()
      })
      closers.push(r.close)
      const { attempt } = await setup(r.url, 5000)
      const { ms, row, attempts } = await attempt()
      expect(ms).toBeLessThan(3000)
      expect(written).toBeLessThan(64 * 1024 * 1024)
      if (status === 200) expect(row.state).toBe('delivered')
      else {
        expect(row.state).toBe('pending')
        expect(attempts[0]!.error!.length).toBeLessThanOrEqual(300)
        expect(attempts[0]!.error).toMatch(/^HTTP 500: A+$/)
      }
    }
  })

  it('a redirect is refused, not followed: the target it names never hears of the event', async () => {
    const target = await receiver()
    closers.push(target.close)
    const r = await receiver((_q, res) => res.writeHead(307, { location: target.url }).end())
    closers.push(r.close)
    const { attempt } = await setup(r.url)
    const { row, attempts } = await attempt()
    expect(row.state).toBe('pending')
    expect(attempts[0]).toMatchObject({ status: 307, error: 'redirect refused: HTTP 307' })
    expect(target.got).toEqual([])
  })

  it('a socket closed without an answer, and a refused connection, are failed attempts', async () => {
    const r = await receiver((req) => req.socket.destroy())
    closers.push(r.close)
    const closed = await setup(r.url)
    const a = await closed.attempt()
    expect(a.attempts[0]).toMatchObject({ status: null })
    expect(a.attempts[0]!.error).toMatch(/^network: /)
    const port = (r.server.address() as { port: number }).port
    await r.close()
    const refused = await setup(`http://127.0.0.1:${port}/hook`)
    const b = await refused.attempt()
    expect(b.attempts[0]!.error).toMatch(/^network: ECONNREFUSED/)
    expect(b.row).toMatchObject({ state: 'pending', attempts: 1 })
  })

  it('stopping mid-attempt records it as cut and leaves the event due at once for the next sender', async () => {
    const r = await receiver((_q, res, n) => { if (n > 1) res.writeHead(204).end() })
    closers.push(r.close)
    const { s, snd, ev } = await setup(r.url, 30_000)
    snd.start()
    while (r.got.length === 0) await new Promise((resolve) => setTimeout(resolve, 10))
    const t0 = performance.now()
    await snd.stop()
    expect(performance.now() - t0).toBeLessThan(2000)
    expect(await s.webhooks.get(ev.id)).toMatchObject({ state: 'pending', attempts: 1, lease_owner: null })
    expect((await s.webhooks.attempts(ev.id))[0]).toMatchObject({ error: 'aborted: the issuer stopped' })
    const next = new WebhookSender({ storage: s, log: () => {}, config: { url: r.url, secret: SECRET } })
    closers.push(() => next.stop())
    expect(await next.runOnce()).toBe(1)
    expect(await s.webhooks.get(ev.id)).toMatchObject({ state: 'delivered', attempts: 2 })
  })
})
