// GET /v1/events is public: streams are limited per client address (maxConnectionsPerClient, 429
// ERR_RATE_LIMITED past it), so one client cannot take every stream and push every verifier back to
// status-list polling. Clients are told apart by their source address (127.0.0.x on the loopback).
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { buildServer } from '../src/http/server.js'
import { clientKey } from '../src/events/routes.js'
import { EventStream } from '../src/events/stream.js'
import { configFromEnv } from '../src/config.js'
import { harness, type Harness } from './http-fixtures.js'

const PER_CLIENT = 4
let h: Harness
let app: FastifyInstance
let url: string
let port: number

beforeAll(async () => {
  h = await harness()
  app = buildServer(h.service, { logger: false, events: { heartbeatMs: 100, pollMs: 100, maxConnections: 40, maxConnectionsPerClient: PER_CLIENT } })
  url = `${await app.listen({ host: '127.0.0.1', port: 0 })}/v1/events`
  port = (app.server.address() as { port: number }).port
})
afterAll(async () => {
  app.server.closeAllConnections()
  await app.close()
  await h.close()
})

interface Opened { status: number; res: IncomingMessage; body: Promise<string>; close(): void }

/** Opens GET /v1/events from `from` (a loopback source address); resolves at the response's headers. */
function open(from: string): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { localAddress: from, agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      const body = new Promise<string>((done) => res.on('end', () => done(Buffer.concat(chunks).toString())))
      resolve({ status: res.statusCode ?? 0, res, body, close: () => { res.destroy(); req.destroy() } })
    })
    req.on('error', reject)
    req.end()
  })
}

/** Opens from `from` until one is 200 (slots are given back when the server sees the close); bounded in attempts, not time. */
async function openOnceFreed(from: string): Promise<Opened> {
  for (let i = 0; i < 200; i++) {
    const s = await open(from)
    if (s.status === 200) return s
    s.close()
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error(`no slot came free for ${from}`)
}

async function expectLimited(s: Opened): Promise<void> {
  expect(s.status).toBe(429)
  expect(s.res.headers['retry-after']).toBe('5')
  expect(s.res.headers['content-type']).toMatch(/^application\/json/)
  expect(JSON.parse(await s.body)).toEqual({ error: { code: 'ERR_RATE_LIMITED', message: expect.stringMatching(/too many open event streams from this client/) } })
}

describe('per-client limit on GET /v1/events', () => {
  it('holds: past maxConnectionsPerClient a client is refused 429 (Retry-After, the error body); a closed stream frees its slot', async () => {
    const mine = await Promise.all(Array.from({ length: PER_CLIENT }, () => open('127.0.0.1')))
    expect(mine.map((s) => s.status)).toEqual(Array(PER_CLIENT).fill(200))
    await expectLimited(await open('127.0.0.1'))
    mine[0]!.close()
    const again = await openOnceFreed('127.0.0.1')
    await expectLimited(await open('127.0.0.1'))
    for (const s of [...mine, again]) s.close()
  })

  it('counts a burst before the streams open: 12 at once from one client, exactly maxConnectionsPerClient open', async () => {
    const burst = await Promise.all(Array.from({ length: 12 }, () => open('127.0.0.3')))
    expect(burst.filter((s) => s.status === 200)).toHaveLength(PER_CLIENT)
    for (const s of burst.filter((x) => x.status !== 200)) await expectLimited(s)
    for (const s of burst) s.close()
  })

  it('other clients still connect while one is at its limit', async () => {
    const full = await Promise.all(Array.from({ length: PER_CLIENT }, () => open('127.0.0.5')))
    expect(full.every((s) => s.status === 200)).toBe(true)
    await expectLimited(await open('127.0.0.5'))
    const others = await Promise.all(['127.0.0.6', '127.0.0.7', '127.0.0.8'].map((from) => open(from)))
    expect(others.map((s) => s.status)).toEqual([200, 200, 200])
    for (const s of [...full, ...others]) s.close()
  })

  it('hostile: half-open connections take no slot, and streams whose client half-closes or resets give theirs back', async () => {
    const raw = (from: string, allowHalfOpen = false) => new Promise<Socket>((resolve, reject) => {
      const socket = connect({ port, host: '127.0.0.1', localAddress: from, allowHalfOpen })
      socket.on('error', () => {})
      socket.once('connect', () => resolve(socket))
      socket.once('error', reject)
    })
    // 60 connections that never finish their request head: no route ran, no slot is taken.
    const stalled = await Promise.all(Array.from({ length: 60 }, () => raw('127.0.0.9')))
    for (const s of stalled) s.write('GET /v1/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-')
    const fine = await Promise.all(Array.from({ length: PER_CLIENT }, () => open('127.0.0.9')))
    expect(fine.map((s) => s.status)).toEqual(Array(PER_CLIENT).fill(200))
    for (const s of stalled) s.destroy()
    for (const s of fine) s.close()

    // Streams opened with raw sockets whose clients then half-close (FIN, still reading) or reset.
    const streams = await Promise.all(Array.from({ length: PER_CLIENT }, (_, i) => raw('127.0.0.10', i % 2 === 0)))
    await Promise.all(streams.map((s) => new Promise<void>((resolve) => {
      s.once('data', (c: Buffer) => {
        expect(c.toString('latin1')).toMatch(/^HTTP\/1\.1 200 /)
        resolve()
      })
      s.write('GET /v1/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n')
    })))
    await expectLimited(await open('127.0.0.10'))
    streams.forEach((s, i) => (i % 2 === 0 ? s.end() : s.resetAndDestroy()))
    const back = await Promise.all(Array.from({ length: PER_CLIENT }, () => openOnceFreed('127.0.0.10')))
    expect(back.every((s) => s.status === 200)).toBe(true)
    for (const s of back) s.close()
    for (const s of streams) s.destroy()
  })
})

describe('clientKey', () => {
  it('is the IPv4 address (also IPv4-mapped), and an IPv6 address\'s /64', () => {
    expect(clientKey('192.0.2.7')).toBe('192.0.2.7')
    expect(clientKey('::ffff:192.0.2.7')).toBe('192.0.2.7')
    expect(clientKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64')
    expect(clientKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64')
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64')
    expect(clientKey('::1')).toBe('0:0:0:0::/64')
    expect(clientKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64')
    expect(clientKey('2001:db8:1:2:3:4:192.0.2.1')).toBe('2001:db8:1:2::/64')
    expect(clientKey(undefined)).toBe('unknown')
  })
})

describe('configuration', () => {
  it('AGENTID_EVENTS_MAX_PER_CLIENT (1 to 1,024) and AGENTID_REDIS_CHANNEL (1 to 128 printable ASCII, no space) are read and checked', () => {
    expect(configFromEnv({ AGENTID_EVENTS_MAX_PER_CLIENT: '8', AGENTID_REDIS_CHANNEL: 'agentid:events:eu-1' })).toMatchObject({ eventsMaxPerClient: 8, redisChannel: 'agentid:events:eu-1' })
    expect(configFromEnv({})).toMatchObject({ eventsMaxPerClient: undefined, redisChannel: undefined })
    expect(configFromEnv({ AGENTID_REDIS_CHANNEL: 'x'.repeat(128) }).redisChannel).toHaveLength(128)
    for (const bad of [
      { AGENTID_EVENTS_MAX_PER_CLIENT: '0' }, { AGENTID_EVENTS_MAX_PER_CLIENT: '1025' }, { AGENTID_EVENTS_MAX_PER_CLIENT: '1e2' }, { AGENTID_EVENTS_MAX_PER_CLIENT: '-1' },
      { AGENTID_REDIS_CHANNEL: 'a b' }, { AGENTID_REDIS_CHANNEL: 'a\nb' }, { AGENTID_REDIS_CHANNEL: 'x'.repeat(129) }, { AGENTID_REDIS_CHANNEL: 'événements' }, { AGENTID_REDIS_CHANNEL: 'a\u0000' },
    ]) {
      expect(() => configFromEnv(bad), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_INPUT' }))
    }
  })

  it('maxConnectionsPerClient must be a positive integer', () => {
    const base = { storage: h.service.storage, bus: h.service.events.bus, sign: async () => 'x' }
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => new EventStream({ ...base, maxConnectionsPerClient: bad }), String(bad)).toThrow(TypeError)
    }
  })
})
