// The operator console's HTTP side (apps/issuer/src/console): sign-in and sessions (cookie attributes,
// rotation, idle timeout, logout), CSRF and origin checks on every state-changing route, an
// orchestrator's session confined to its own agents, the agent list (filters, keyset paging, counts),
// the revocation cascade's dry run agreeing with the revocation, the log view's consistency proof, and
// the app's static files (or a 404 notice when it is not built). Real IssuerService, real SQLite.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parseCheckpoint, verifyConsistency } from '@agentid/tlog'
import { buildServer } from '../src/http/server.js'
import { CONSOLE_CSP } from '../src/console/static.js'
import { consoleCookieName } from '../src/console/cookie.js'
import { IssuerLog } from '../src/log/log.js'
import { loadMasterSecret } from '../src/secret.js'
import { bearer, claims, expectError, expectInvalid, harness, namedKey, proof, spawnAgent, type Harness, type NamedKey } from './http-fixtures.js'

let h: Harness
let app: FastifyInstance
let log: IssuerLog
const ORIGIN = 'http://issuer.test'
/** The session cookie's names for this issuer (over http, and over https as https://issuer.example). */
const COOKIE = consoleCookieName(ORIGIN, false)
const HOST_COOKIE = consoleCookieName('https://issuer.example', true)
const esc = (name: string) => name.replace(/[-]/g, '\\-')

beforeAll(async () => {
  h = await harness()
  const dist = join(h.dir, 'console-dist')
  mkdirSync(join(dist, 'assets'), { recursive: true })
  writeFileSync(join(dist, 'index.html'), '<!doctype html><title>console</title><script type="module" src="/console/assets/app.js"></script>')
  writeFileSync(join(dist, 'assets', 'app.js'), 'export {}')
  writeFileSync(join(dist, '.env'), 'SECRET=1')
  log = await IssuerLog.open({ db: h.service.store.db, secret: loadMasterSecret({ dataDir: h.dir, mustExist: true }).key, baseUrl: 'http://issuer.test' })
  await log.sequence()
  app = buildServer(h.service, { logger: false, log, console: { dir: dist, idleSec: 600, clock: () => h.clock.now } })
  await app.ready()
})
afterAll(async () => {
  await app.close()
  await log.stop()
  await h.close()
})

interface Session { cookie: string; csrf: string }

function cookieOf(res: LightMyRequestResponse): string {
  const set = String(res.headers['set-cookie'])
  return set.split(';')[0]!
}

async function signIn(key: string, headers: Record<string, string> = {}): Promise<Session> {
  const res = await app.inject({ method: 'POST', url: '/console/api/session', headers: { origin: ORIGIN, ...headers }, payload: { key } })
  expect(res.statusCode, res.body).toBe(201)
  return { cookie: cookieOf(res), csrf: (res.json() as { csrfToken: string }).csrfToken }
}

const get = (s: Session | null, url: string) => app.inject({ method: 'GET', url, headers: s ? { cookie: s.cookie } : {} })
const write = (s: Session, method: 'POST' | 'DELETE', url: string, payload?: unknown, extra: Record<string, string> = {}) =>
  app.inject({ method, url, headers: { cookie: s.cookie, origin: ORIGIN, 'x-agentid-csrf': s.csrf, ...extra }, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) })

async function grant(did: string) {
  const res = await app.inject({ method: 'POST', url: `/v1/agents/${did}/grants`, headers: bearer(h.adminKey), payload: { capabilities: [{ resource: 'mcp://erp/tools/*', actions: ['*'] }], caveats: { remainingDepth: 3 }, lifetimeSec: 3600 } })
  expect(res.statusCode, res.body).toBe(201)
  return (res.json() as { id: string }).id
}
async function register(delegator: NamedKey, parentId: string, delegatee: string) {
  const res = await app.inject({ method: 'POST', url: '/v1/delegations/status', payload: { proof: await proof(h, delegator, { purpose: 'delegate' }), parentId, delegatee } })
  expect(res.statusCode, res.body).toBe(201)
  return (res.json() as { id: string }).id
}

/** A -> B -> C: a root link granted to A, A's link to B, B's link to C (each agent spawned by acme). */
async function chain() {
  const [a, b, c] = [namedKey(), namedKey(), namedKey()]
  for (const k of [a, b, c]) await spawnAgent(h, k)
  const root = await grant(a.did)
  const ab = await register(a, root, b.did)
  const bc = await register(b, ab, c.did)
  return { a, b, c, root, ab, bc }
}

describe('sign-in and sessions', () => {
  it('exchanges the admin key for an HttpOnly, SameSite=Strict session cookie (no Secure over http) and a CSRF token', async () => {
    const res = await app.inject({ method: 'POST', url: '/console/api/session', headers: { origin: ORIGIN }, payload: { key: h.adminKey } })
    expect(res.statusCode).toBe(201)
    const set = String(res.headers['set-cookie'])
    expect(set).toMatch(new RegExp(`^${esc(COOKIE)}=[A-Za-z0-9_-]{43}; `))
    expect(COOKIE).toMatch(/^agentid_console_[0-9a-f]{12}$/)
    expect(set).toContain('HttpOnly')
    expect(set).toContain('SameSite=Strict')
    expect(set).toContain('Path=/')
    expect(set).not.toContain('Secure')
    expect(res.headers['cache-control']).toBe('no-store')
    const body = res.json() as { principal: { kind: string }; csrfToken: string; idleTimeoutSec: number }
    expect(body.principal.kind).toBe('admin')
    expect(body.csrfToken).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(body.idleTimeoutSec).toBe(600)
    expect(JSON.stringify(body)).not.toContain(set.split(';')[0]!.split('=')[1]!)
    const me = await get({ cookie: cookieOf(res), csrf: '' }, '/console/api/session')
    expect(me.statusCode).toBe(200)
  })

  it('sets a __Host- Secure cookie when the issuer is served over https', async () => {
    const https = await harness({ baseUrl: 'https://issuer.example' })
    const a = buildServer(https.service, { logger: false, console: { dir: null } })
    try {
      const res = await a.inject({ method: 'POST', url: '/console/api/session', headers: { origin: 'https://issuer.example' }, payload: { key: https.adminKey } })
      expect(res.statusCode).toBe(201)
      const set = String(res.headers['set-cookie'])
      expect(set).toMatch(new RegExp(`^${esc(HOST_COOKIE)}=[A-Za-z0-9_-]{43}; Path=/; HttpOnly; SameSite=Strict; Max-Age=\\d+; Secure$`))
      expect(HOST_COOKIE).toMatch(/^__Host-agentid_console_[0-9a-f]{12}$/)
      // The plain-http cookie name is not read over https.
      const value = set.split(';')[0]!.split('=')[1]!
      expectError(await a.inject({ method: 'GET', url: '/console/api/session', headers: { cookie: `${consoleCookieName('https://issuer.example', false)}=${value}` } }), 401, 'ERR_UNAUTHENTICATED')
      expect((await a.inject({ method: 'GET', url: '/console/api/session', headers: { cookie: `${HOST_COOKIE}=${value}` } })).statusCode).toBe(200)
    } finally {
      await a.close()
      await https.close()
    }
  })

  it('names the cookie per issuer: two issuers on one host (ports differ) keep their sessions apart (red team)', async () => {
    // Browsers keep cookies per host, not per port: one jar for issuer.test, both issuers' cookies in it.
    const [x, y] = [await harness({ baseUrl: 'http://issuer.test:8081' }), await harness({ baseUrl: 'http://issuer.test:8082' })]
    const [ax, ay] = [buildServer(x.service, { logger: false, console: { dir: null } }), buildServer(y.service, { logger: false, console: { dir: null } })]
    try {
      const jar = new Map<string, string>()
      const signInTo = async (srv: FastifyInstance, origin: string, key: string) => {
        const res = await srv.inject({ method: 'POST', url: '/console/api/session', headers: { origin }, payload: { key } })
        expect(res.statusCode).toBe(201)
        const [name, value] = cookieOf(res).split('=') as [string, string]
        jar.set(name, value)
        return name
      }
      const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
      const nx = await signInTo(ax, 'http://issuer.test:8081', x.adminKey)
      const ny = await signInTo(ay, 'http://issuer.test:8082', y.adminKey)
      expect(nx).not.toBe(ny)
      expect(jar.size).toBe(2) // signing in to one did not overwrite the other's cookie
      expect((await ax.inject({ method: 'GET', url: '/console/api/session', headers: { cookie: cookie() } })).statusCode).toBe(200)
      expect((await ay.inject({ method: 'GET', url: '/console/api/session', headers: { cookie: cookie() } })).statusCode).toBe(200)
      // One issuer's cookie under the other's name is no session there.
      expectError(await ay.inject({ method: 'GET', url: '/console/api/session', headers: { cookie: `${ny}=${jar.get(nx)!}` } }), 401, 'ERR_UNAUTHENTICATED')
    } finally {
      await ax.close()
      await ay.close()
      await x.close()
      await y.close()
    }
  })

  it('refuses wrong keys, malformed bodies and other content types; limits failed sign-ins without locking the right key out', async () => {
    const post = (payload: unknown, headers: Record<string, string> = {}) =>
      app.inject({ method: 'POST', url: '/console/api/session', headers: { origin: ORIGIN, ...headers }, payload: payload as string, remoteAddress: '10.9.9.9' })
    expectInvalid(await post({ key: h.adminKey, extra: 1 }), 'extra')
    expectInvalid(await post({ key: 7 }), 'key')
    expectInvalid(await post([h.adminKey]), 'body')
    expectError(await post(`key=${h.adminKey}`, { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE')
    expectError(await post(JSON.stringify({ key: h.adminKey }), { 'content-type': 'text/plain' }), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE')
    const wrong = { key: `aid_admin_${'A'.repeat(43)}` }
    for (let i = 0; i < 10; i++) expectError(await post(wrong), 401, 'ERR_UNAUTHENTICATED')
    expectError(await post(wrong), 429, 'ERR_RATE_LIMITED')
    expectError(await post({ key: h.orch.apiKey.slice(0, -1) + 'x' }), 429, 'ERR_RATE_LIMITED')
    // The right key still signs in (others' failures from a shared address cannot lock an operator out).
    expect((await post({ key: h.adminKey })).statusCode).toBe(201)
    h.clock.now += 61_000
    expectError(await post(wrong), 401, 'ERR_UNAUTHENTICATED')
  })

  it('refuses a cross-site sign-in (login CSRF)', async () => {
    const res = await app.inject({ method: 'POST', url: '/console/api/session', headers: { origin: 'https://evil.example' }, payload: { key: h.adminKey } })
    expect(expectError(res, 403, 'ERR_FORBIDDEN').details?.reason).toBe('origin')
    const site = await app.inject({ method: 'POST', url: '/console/api/session', headers: { 'sec-fetch-site': 'cross-site' }, payload: { key: h.adminKey } })
    expect(expectError(site, 403, 'ERR_FORBIDDEN').details?.reason).toBe('origin')
  })

  it('rotates the session id at sign-in: a planted cookie (session fixation) never becomes the victim\'s session', async () => {
    // Mallory signs in with her own orchestrator key and plants her cookie in the victim's browser.
    const mallory = await signIn(h.other.apiKey)
    const victim = await app.inject({ method: 'POST', url: '/console/api/session', headers: { origin: ORIGIN, cookie: mallory.cookie }, payload: { key: h.adminKey } })
    expect(victim.statusCode).toBe(201)
    const issued = cookieOf(victim)
    expect(issued).not.toBe(mallory.cookie)
    // The planted session ended; it never became an admin session.
    expectError(await get(mallory, '/console/api/session'), 401, 'ERR_UNAUTHENTICATED')
    expectError(await get(mallory, '/console/api/orchestrators'), 401, 'ERR_UNAUTHENTICATED')
    // A made-up id is not adopted either.
    const made = `${COOKIE}=${'x'.repeat(43)}`
    const res = await app.inject({ method: 'POST', url: '/console/api/session', headers: { origin: ORIGIN, cookie: made }, payload: { key: h.adminKey } })
    expect(cookieOf(res)).not.toBe(made)
    expectError(await app.inject({ method: 'GET', url: '/console/api/session', headers: { cookie: made } }), 401, 'ERR_UNAUTHENTICATED')
  })

  it('logout ends the session on the server: the cookie replayed afterwards (stolen) is refused', async () => {
    const s = await signIn(h.adminKey)
    const out = await write(s, 'DELETE', '/console/api/session')
    expect(out.statusCode).toBe(204)
    expect(String(out.headers['set-cookie'])).toMatch(new RegExp(`^${esc(COOKIE)}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`))
    expectError(await get(s, '/console/api/session'), 401, 'ERR_UNAUTHENTICATED')
    expectError(await get(s, '/console/api/agents'), 401, 'ERR_UNAUTHENTICATED')
    expectError(await write(s, 'POST', '/console/api/orchestrators', { name: 'after-logout' }), 401, 'ERR_UNAUTHENTICATED')
  })

  it('expires an idle session, and keeps an active one alive', async () => {
    const s = await signIn(h.adminKey)
    h.clock.now += 500_000
    expect((await get(s, '/console/api/session')).statusCode).toBe(200) // activity restarts the idle timer
    h.clock.now += 500_000
    expect((await get(s, '/console/api/session')).statusCode).toBe(200)
    h.clock.now += 601_000
    expectError(await get(s, '/console/api/session'), 401, 'ERR_UNAUTHENTICATED')
  })

  it('refuses a cookie sent twice (cookie tossing) and malformed cookies', async () => {
    const s = await signIn(h.adminKey)
    expectError(await app.inject({ method: 'GET', url: '/console/api/session', headers: { cookie: `${s.cookie}; ${s.cookie}` } }), 401, 'ERR_UNAUTHENTICATED')
    for (const cookie of [`${COOKIE}=`, `${COOKIE}=../../x`, `${COOKIE}=${'a'.repeat(5000)}`, 'other=1', `agentid_console=${s.cookie.split('=')[1]!}`]) {
      expectError(await app.inject({ method: 'GET', url: '/console/api/session', headers: { cookie } }), 401, 'ERR_UNAUTHENTICATED')
    }
    // The bearer key is not a console credential, and the cookie is not an API credential.
    expectError(await app.inject({ method: 'GET', url: '/console/api/agents', headers: bearer(h.adminKey) }), 401, 'ERR_UNAUTHENTICATED')
    expectError(await app.inject({ method: 'GET', url: '/v1/orchestrators', headers: { cookie: s.cookie } }), 401, 'ERR_UNAUTHENTICATED')
  })
})

describe('sessions in the database', () => {
  it('a second server on the same database (a restart, another instance) knows the cookie; logout there ends it here', async () => {
    const s = await signIn(h.adminKey)
    const again = buildServer(h.service, { logger: false, console: { dir: null, idleSec: 600, clock: () => h.clock.now } })
    try {
      const on = (url: string, extra: Record<string, string> = {}) => again.inject({ method: 'GET', url, headers: { cookie: s.cookie, ...extra } })
      const me = await on('/console/api/session')
      expect(me.statusCode, me.body).toBe(200)
      expect((me.json() as { csrfToken: string }).csrfToken).toBe(s.csrf)
      const out = await again.inject({ method: 'DELETE', url: '/console/api/session', headers: { cookie: s.cookie, origin: ORIGIN, 'x-agentid-csrf': s.csrf } })
      expect(out.statusCode).toBe(204)
      expect(expectError(await get(s, '/console/api/session'), 401, 'ERR_UNAUTHENTICATED').details?.reason).toBe('no_session')
    } finally {
      await again.close()
    }
  })

  it('a console request writes no session row unless lastSeen moved by more than a minute', async () => {
    const s = await signIn(h.adminKey)
    const rows = () => h.service.store.db.prepare('SELECT last_seen FROM console_sessions ORDER BY last_seen DESC LIMIT 1').get() as { last_seen: number }
    const before = rows().last_seen
    h.clock.now += 30_000
    for (let i = 0; i < 5; i++) expect((await get(s, '/console/api/agents')).statusCode).toBe(200)
    expect(rows().last_seen).toBe(before)
    h.clock.now += 31_000
    expect((await get(s, '/console/api/session')).statusCode).toBe(200)
    expect(rows().last_seen).toBe(Math.floor(h.clock.now / 1000))
  })

  it('ends an orchestrator\'s sessions when the bearer API disables it, and the admin\'s when the admin key is replaced', async () => {
    const admin = await signIn(h.adminKey)
    const made = (await write(admin, 'POST', '/console/api/orchestrators', { name: 'bearer-disabled' })).json() as { id: string; apiKey: string }
    const s = await signIn(made.apiKey)
    expect((await app.inject({ method: 'DELETE', url: `/v1/orchestrators/${made.id}`, headers: bearer(h.adminKey) })).statusCode).toBe(200)
    expect(expectError(await get(s, '/console/api/agents'), 401, 'ERR_UNAUTHENTICATED').details?.reason).toBe('principal_disabled')
    expect(expectError(await get(s, '/console/api/agents'), 401, 'ERR_UNAUTHENTICATED').details?.reason).toBe('no_session')
    const stored = h.service.store.db.prepare("SELECT value FROM settings WHERE key = 'admin_key_hash'").get() as { value: string }
    try {
      h.service.store.db.prepare("UPDATE settings SET value = ? WHERE key = 'admin_key_hash'").run('0'.repeat(64))
      expect(expectError(await get(admin, '/console/api/session'), 401, 'ERR_UNAUTHENTICATED').details?.reason).toBe('key_replaced')
    } finally {
      h.service.store.db.prepare("UPDATE settings SET value = ? WHERE key = 'admin_key_hash'").run(stored.value)
    }
    expectError(await get(admin, '/console/api/session'), 401, 'ERR_UNAUTHENTICATED') // the row went with the refusal
  })
})

describe('CSRF', () => {
  it('refuses every state-changing route without the session\'s token, with another session\'s token, or from another origin', async () => {
    const s = await signIn(h.adminKey)
    const other = await signIn(h.adminKey)
    const victim = namedKey()
    await spawnAgent(h, victim)
    const routes: [ 'POST' | 'DELETE', string, unknown][] = [
      ['POST', '/console/api/revocations', { kind: 'agent', id: victim.did, reason: 'csrf' }],
      ['POST', '/console/api/revocations/preview', { kind: 'agent', id: victim.did }],
      ['POST', '/console/api/orchestrators', { name: 'csrf-made' }],
      ['POST', `/console/api/orchestrators/${h.orch.id}/disable`, {}],
      ['DELETE', '/console/api/session', undefined],
    ]
    for (const [method, url, payload] of routes) {
      const none = await app.inject({ method, url, headers: { cookie: s.cookie, origin: ORIGIN }, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) })
      expect(expectError(none, 403, 'ERR_FORBIDDEN').details?.reason, url).toBe('csrf')
      expect(expectError(await write({ cookie: s.cookie, csrf: other.csrf }, method, url, payload), 403, 'ERR_FORBIDDEN').details?.reason).toBe('csrf')
      expect(expectError(await write({ cookie: s.cookie, csrf: `${s.csrf}x` }, method, url, payload), 403, 'ERR_FORBIDDEN').details?.reason).toBe('csrf')
      expect(expectError(await write(s, method, url, payload, { origin: 'https://evil.example' }), 403, 'ERR_FORBIDDEN').details?.reason).toBe('origin')
      expect(expectError(await write(s, method, url, payload, { 'sec-fetch-site': 'same-site' }), 403, 'ERR_FORBIDDEN').details?.reason).toBe('origin')
    }
    // Nothing happened.
    expect((await h.service.getAgent({ kind: 'admin' }, victim.did)).status).toBe('active')
    expect((await h.service.listOrchestrators({ kind: 'admin' })).some((o) => o.name === 'csrf-made')).toBe(false)
    expect((await h.service.listOrchestrators({ kind: 'admin' })).find((o) => o.id === h.orch.id)?.removedAt).toBeNull()
    expect((await get(s, '/console/api/session')).statusCode).toBe(200)
  })
})

describe('orchestrator sessions see only their own agents', () => {
  it('lists, opens and counts only its agents; another orchestrator\'s agent is not found; admin routes are forbidden', async () => {
    const mine = namedKey()
    const theirs = namedKey()
    await spawnAgent(h, mine, { claims: { purpose: 'orch scope mine' } })
    await spawnAgent(h, theirs, { apiKey: h.other.apiKey, claims: { purpose: 'orch scope theirs' } })
    const s = await signIn(h.orch.apiKey)
    const list = (await get(s, '/console/api/agents?limit=200')).json() as { agents: { did: string; orchestrator: { id: string } }[]; counts: { total: number } }
    expect(list.agents.some((a) => a.did === mine.did)).toBe(true)
    expect(list.agents.every((a) => a.orchestrator.id === h.orch.id)).toBe(true)
    expect(list.counts.total).toBe(list.agents.length)
    expectError(await get(s, `/console/api/agents/${theirs.did}`), 404, 'ERR_NOT_FOUND')
    expectError(await get(s, `/console/api/agents?orchestrator=${h.other.name}`), 403, 'ERR_FORBIDDEN')
    expectError(await get(s, `/console/api/agents?q=${encodeURIComponent('orch scope theirs')}`).then((r) => {
      expect((r.json() as { agents: unknown[] }).agents).toEqual([])
      return app.inject({ method: 'GET', url: '/console/api/orchestrators', headers: { cookie: s.cookie } })
    }), 403, 'ERR_FORBIDDEN')
    const facets = (await get(s, '/console/api/facets')).json() as { purposes: string[]; orchestrators: { id: string }[] }
    expect(facets.purposes).not.toContain('orch scope theirs')
    expect(facets.orchestrators).toEqual([{ id: h.orch.id, name: h.orch.name }])
    expectError(await write(s, 'POST', '/console/api/revocations', { kind: 'agent', id: theirs.did, reason: 'x' }), 403, 'ERR_FORBIDDEN')
    expectError(await write(s, 'POST', '/console/api/revocations/preview', { kind: 'agent', id: mine.did }), 403, 'ERR_FORBIDDEN')
    expectError(await write(s, 'POST', '/console/api/orchestrators', { name: 'by-orch' }), 403, 'ERR_FORBIDDEN')
    expectError(await get(s, '/console/api/approvals'), 403, 'ERR_FORBIDDEN')
    expect((await h.service.getAgent({ kind: 'admin' }, theirs.did)).status).toBe('active')
  })

  it('shows another orchestrator\'s agent in its graph only as a DID', async () => {
    const { a, b, c } = await chain()
    // b belongs to globex from now on: re-home it for this check.
    h.service.store.db.prepare('UPDATE agents SET orchestrator_id = ? WHERE did = ?').run(h.other.id, b.did)
    const s = await signIn(h.orch.apiKey)
    const view = (await get(s, `/console/api/agents/${a.did}`)).json() as { graph: { nodes: { id: string; kind: string; purpose?: string }[]; links: { from: string; to: string }[] } }
    const node = view.graph.nodes.find((n) => n.id === b.did)!
    expect(node.kind).toBe('other')
    expect(node.purpose).toBeUndefined()
    // B -> C is a link between another orchestrator's agent and ours (C): shown; A's own links too.
    expect(view.graph.links.some((l) => l.from === a.did && l.to === b.did)).toBe(true)
    expect(view.graph.links.some((l) => l.from === b.did && l.to === c.did)).toBe(true)
  })

  it('ends a disabled orchestrator\'s sessions', async () => {
    const admin = await signIn(h.adminKey)
    const made = (await write(admin, 'POST', '/console/api/orchestrators', { name: 'short-lived' })).json() as { id: string; apiKey: string }
    const s = await signIn(made.apiKey)
    expect((await get(s, '/console/api/agents')).statusCode).toBe(200)
    const res = await write(admin, 'POST', `/console/api/orchestrators/${made.id}/disable`, {})
    expect(res.statusCode, res.body).toBe(200)
    expectError(await get(s, '/console/api/agents'), 401, 'ERR_UNAUTHENTICATED')
  })
})

describe('agents list', () => {
  it('filters by every claim, searches, pages newest first with a keyset cursor and counts per status', async () => {
    const tag = `fleet-${Date.now()}`
    const keys: NamedKey[] = []
    for (let i = 0; i < 7; i++) {
      const k = namedKey()
      keys.push(k)
      h.clock.now += 1000
      await spawnAgent(h, k, {
        claims: {
          purpose: `${tag} ${i % 2 ? 'odd' : 'even'}`, controller: `did:web:${tag}.example`,
          model: { provider: 'acme-ai', name: i < 3 ? `${tag}-small` : `${tag}-large`, version: `v${i % 3}` },
          policyTier: i === 0 ? 'privileged' : 'standard', dataAccessClass: i === 6 ? 'restricted' : 'internal',
        },
      })
    }
    const s = await signIn(h.adminKey)
    await write(s, 'POST', '/console/api/revocations', { kind: 'agent', id: keys[1]!.did, reason: 'count me' })
    const q = (query: string) => get(s, `/console/api/agents?controller=${encodeURIComponent(`did:web:${tag}.example`)}&${query}`).then((r) => {
      expect(r.statusCode, r.body).toBe(200)
      return r.json() as { agents: { did: string; status: string }[]; nextCursor: string | null; counts: { active: number; revoked: number; total: number } }
    })
    const all = await q('limit=200')
    expect(all.agents.map((a) => a.did)).toEqual([...keys].reverse().map((k) => k.did))
    expect(all.counts).toEqual({ active: 6, revoked: 1, total: 7 })
    expect((await q('status=revoked')).agents.map((a) => a.did)).toEqual([keys[1]!.did])
    expect((await q('status=revoked')).counts).toEqual({ active: 6, revoked: 1, total: 7 }) // counts ignore the status filter
    expect((await q(`model=${tag}-small`)).agents).toHaveLength(3)
    expect((await q(`model=${tag}-large&modelVersion=v0`)).agents.map((a) => a.did)).toEqual([keys[6]!.did, keys[3]!.did])
    expect((await q('policyTier=privileged')).agents.map((a) => a.did)).toEqual([keys[0]!.did])
    expect((await q('dataAccessClass=restricted')).agents.map((a) => a.did)).toEqual([keys[6]!.did])
    expect((await q(`purpose=${encodeURIComponent(`${tag} odd`)}`)).agents).toHaveLength(3)
    expect((await q(`q=${encodeURIComponent(`${tag.toUpperCase()}-SMALL`)}`)).agents).toHaveLength(3)
    expect((await q(`q=${keys[4]!.did.slice(-12)}`)).agents.map((a) => a.did)).toEqual([keys[4]!.did])
    expect((await q('q=%25')).agents).toEqual([]) // '%' is text, not a wildcard
    expect((await q(`orchestrator=${h.orch.name}`)).agents).toHaveLength(7)
    expect((await q(`orchestrator=${h.other.name}`)).agents).toHaveLength(0)
    const today = new Date(h.clock.now).toISOString().slice(0, 10)
    expect((await q(`createdFrom=${today}&createdTo=${today}`)).agents.length).toBeGreaterThan(0)
    expect((await q('createdTo=2000-01-01')).agents).toEqual([])
    // Keyset paging: every agent once, in order.
    const seen: string[] = []
    let cursor: string | null = null
    do {
      const page = await q(`limit=3${cursor ? `&cursor=${cursor}` : ''}`)
      seen.push(...page.agents.map((a) => a.did))
      cursor = page.nextCursor
    } while (cursor)
    expect(seen).toEqual(all.agents.map((a) => a.did))
  })

  it('refuses malformed queries naming the field', async () => {
    const s = await signIn(h.adminKey)
    const cases: [string, string][] = [
      ['nope=1', 'nope'], ['status=expired', 'status'], ['dataAccessClass=secret', 'dataAccessClass'], ['limit=0', 'limit'], ['limit=201', 'limit'],
      ['limit=1e2', 'limit'], ['cursor=!!', 'cursor'], [`cursor=${Buffer.from('{"a":1}').toString('base64url')}`, 'cursor'], ['createdFrom=yesterday', 'createdFrom'],
      ['createdTo=2024-13-45', 'createdTo'], ['q=', 'q'], [`q=${'x'.repeat(513)}`, 'q'], ['q=a&q=b', 'q'], ['purpose=%01', 'purpose'], ['controller=%E2%80%AE', 'controller'],
    ]
    for (const [query, field] of cases) expectInvalid(await get(s, `/console/api/agents?${query}`), field)
    expectInvalid(await get(s, '/console/api/agents/did:key:nope'), 'did')
    expectInvalid(await get(s, '/console/api/log?since=-1'), 'since')
    expectInvalid(await get(s, '/console/api/log?other=1'), 'other')
  })
})

describe('revocation: the preview is the cascade, dry run', () => {
  it('previews every credential, link and downstream agent; changes nothing; the revocation then does exactly that', async () => {
    const { a, b, c, root, ab, bc } = await chain()
    const s = await signIn(h.adminKey)
    const before = h.service.store.db.prepare('SELECT id, version FROM status_lists').all()
    const events = (h.service.store.db.prepare('SELECT count(*) AS n FROM audit_events').get() as { n: number }).n
    const res = await write(s, 'POST', '/console/api/revocations/preview', { kind: 'agent', id: a.did })
    expect(res.statusCode, res.body).toBe(200)
    const preview = res.json() as { agent: string; credentials: { id: string }[]; delegations: { id: string }[]; downstreamAgents: { did: string; status: string }[]; alreadyRevoked: boolean }
    expect(preview.agent).toBe(a.did)
    expect(preview.credentials).toHaveLength(1)
    expect(preview.delegations.map((d) => d.id).sort()).toEqual([root, ab, bc].sort())
    expect(preview.downstreamAgents.map((d) => d.did)).toEqual([b.did, c.did].sort())
    expect(preview.downstreamAgents.every((d) => d.status === 'active')).toBe(true)
    expect(preview.alreadyRevoked).toBe(false)
    // A dry run: no row, bit or event changed.
    expect(h.service.store.db.prepare('SELECT id, version FROM status_lists').all()).toEqual(before)
    expect((h.service.store.db.prepare('SELECT count(*) AS n FROM audit_events').get() as { n: number }).n).toBe(events)
    expect((await h.service.getAgent({ kind: 'admin' }, a.did)).status).toBe('active')

    const done = await write(s, 'POST', '/console/api/revocations', { kind: 'agent', id: a.did, reason: 'console test' })
    expect(done.statusCode, done.body).toBe(200)
    const result = done.json() as { revokedCredentials: string[]; revokedDelegations: string[] }
    expect(result.revokedCredentials).toEqual(preview.credentials.map((x) => x.id))
    expect(result.revokedDelegations.sort()).toEqual(preview.delegations.map((d) => d.id).sort())
    const again = (await write(s, 'POST', '/console/api/revocations/preview', { kind: 'agent', id: a.did })).json() as { alreadyRevoked: boolean; delegations: unknown[] }
    expect(again.alreadyRevoked).toBe(true)
    expect(again.delegations).toEqual([])
    // The agent view marks the links revoked; the timeline holds the revocation with its log status.
    const view = (await get(s, `/console/api/agents/${a.did}`)).json() as { graph: { links: { id: string; status: string }[] }; timeline: { action: string; logged: boolean }[] }
    expect(view.graph.links.filter((l) => [root, ab, bc].includes(l.id)).every((l) => l.status === 'revoked')).toBe(true)
    expect(view.timeline[0]!.action).toBe('agent.revoked')
    expect(view.timeline.map((e) => e.action)).toContain('agent.spawned')
    await log.sequence()
    const later = (await get(s, `/console/api/agents/${a.did}`)).json() as { timeline: { logged: boolean }[] }
    expect(later.timeline.every((e) => e.logged)).toBe(true)
  })

  it('previews a delegation link (its subtree) and a credential the same way the revocation goes', async () => {
    const { a, b, c, ab, bc } = await chain()
    const s = await signIn(h.adminKey)
    const link = (await write(s, 'POST', '/console/api/revocations/preview', { kind: 'delegation', id: ab })).json() as { delegations: { id: string }[]; downstreamAgents: { did: string }[]; credentials: unknown[]; agent: null }
    expect(link.delegations.map((d) => d.id).sort()).toEqual([ab, bc].sort())
    expect(link.downstreamAgents.map((d) => d.did)).toEqual([b.did, c.did].sort())
    expect(link.credentials).toEqual([])
    expect(link.agent).toBeNull()
    const done = (await write(s, 'POST', '/console/api/revocations', { kind: 'delegation', id: ab, reason: 'link' })).json() as { revokedDelegations: string[] }
    expect(done.revokedDelegations.sort()).toEqual([ab, bc].sort())
    const agent = await h.service.getAgent({ kind: 'admin' }, a.did)
    const credentialId = agent.credentials[0]!.id
    const cred = (await write(s, 'POST', '/console/api/revocations/preview', { kind: 'credential', id: credentialId })).json() as { credentials: { id: string }[]; delegations: unknown[]; owner: string }
    expect(cred.credentials.map((x) => x.id)).toEqual([credentialId])
    expect(cred.delegations).toEqual([])
    expect(cred.owner).toBe(a.did)
    const revoked = (await write(s, 'POST', '/console/api/revocations', { kind: 'credential', id: credentialId, reason: 'one' })).json() as { id: string; agent: string; alreadyRevoked: boolean }
    expect(revoked).toEqual({ kind: 'credential', id: credentialId, agent: a.did, alreadyRevoked: false })
  })

  it('refuses unknown targets and malformed bodies', async () => {
    const s = await signIn(h.adminKey)
    const unknown = namedKey()
    expectError(await write(s, 'POST', '/console/api/revocations/preview', { kind: 'agent', id: unknown.did }), 404, 'ERR_NOT_FOUND')
    expectError(await write(s, 'POST', '/console/api/revocations/preview', { kind: 'delegation', id: 'urn:uuid:00000000-0000-4000-8000-000000000000' }), 404, 'ERR_NOT_FOUND')
    expectInvalid(await write(s, 'POST', '/console/api/revocations/preview', { kind: 'everything', id: unknown.did }), 'kind')
    expectInvalid(await write(s, 'POST', '/console/api/revocations/preview', { kind: 'agent', id: unknown.did, reason: 'x' }), 'reason')
    expectInvalid(await write(s, 'POST', '/console/api/revocations/preview', { kind: 'credential', id: 'urn:uuid:x' }), 'id')
    expectInvalid(await write(s, 'POST', '/console/api/revocations', { kind: 'agent', id: unknown.did }), 'reason')
    expectInvalid(await write(s, 'POST', '/console/api/revocations', { kind: 'agent', id: unknown.did, reason: 'x'.repeat(600) }), 'reason')
  })
})

describe('log view', () => {
  it('returns the latest checkpoint and a consistency proof from the size the console saw', async () => {
    const s = await signIn(h.adminKey)
    await log.sequence()
    const first = (await get(s, '/console/api/log')).json() as { checkpoint: { size: number; note: string; ageSec: number }; consistency: null }
    expect(first.consistency).toBeNull()
    await spawnAgent(h, namedKey())
    await log.sequence()
    const res = (await get(s, `/console/api/log?since=${first.checkpoint.size}`)).json() as { checkpoint: { size: number; note: string }; consistency: { from: number; to: number; proof: string[] } }
    expect(res.checkpoint.size).toBeGreaterThan(first.checkpoint.size)
    const oldRoot = parseCheckpoint(first.checkpoint.note.split('\n\n')[0]! + '\n').rootHash
    const newRoot = parseCheckpoint(res.checkpoint.note.split('\n\n')[0]! + '\n').rootHash
    verifyConsistency(first.checkpoint.size, res.checkpoint.size, oldRoot, newRoot, res.consistency.proof.map((p) => Buffer.from(p, 'base64')))
    const ahead = (await get(s, `/console/api/log?since=${res.checkpoint.size + 5}`)).json() as { consistency: { error?: string } }
    expect(ahead.consistency.error).toMatch(/smaller/)
  })
})

describe('the app', () => {
  it('serves the built app under a strict CSP; /console redirects to /console/', async () => {
    const redirect = await app.inject({ method: 'GET', url: '/console' })
    expect(redirect.statusCode).toBe(302)
    expect(redirect.headers.location).toBe('/console/')
    const page = await app.inject({ method: 'GET', url: '/console/' })
    expect(page.statusCode).toBe(200)
    expect(page.headers['content-type']).toMatch(/^text\/html/)
    const csp = String(page.headers['content-security-policy'])
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("frame-ancestors 'none'")
    expect(csp).toContain("require-trusted-types-for 'script'")
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*/)
    expect(page.headers['x-frame-options']).toBe('DENY')
    const asset = await app.inject({ method: 'GET', url: '/console/assets/app.js' })
    expect(asset.statusCode).toBe(200)
    expect(asset.headers['cache-control']).toContain('immutable')
    expect((await app.inject({ method: 'GET', url: '/console/../issuer.db' })).statusCode).toBe(404)
    expect((await app.inject({ method: 'GET', url: '/console/%2e%2e/issuer.db' })).statusCode).toBe(404)
    expect((await app.inject({ method: 'GET', url: '/console/api/nothing' })).statusCode).toBe(404)
  })

  it('answers no-store on every API answer however its path is spelt, and the console headers on every /console response', async () => {
    // find-my-way routes /console/%61pi/session to /console/api/session: the session view (and its CSRF
    // token) must not go out cacheable because the raw URL did not start with /console/api/.
    const s = await signIn(h.adminKey)
    for (const url of ['/console/%61pi/session', '/console/api/%73ession', '/console/%61pi/agents', '/console/%61pi/facets']) {
      const res = await get(s, url)
      expect(res.statusCode, url).toBe(200)
      expect(res.headers['cache-control'], url).toBe('no-store')
      expect(res.headers['x-content-type-options'], url).toBe('nosniff')
    }
    for (const url of ['/console/nothing.html', '/console/assets/nothing.js', '/console/%3Cscript%3E', '/console/api/nothing', '/console/%61pi/nothing', '/console/.env', '/console/assets/.hidden']) {
      const res = await app.inject({ method: 'GET', url })
      expect(res.statusCode, url).toBe(404)
      expect(res.headers['content-security-policy'], url).toBe(CONSOLE_CSP)
      expect(res.headers['x-frame-options'], url).toBe('DENY')
    }
  })

  it('answers a 404 notice when the console is not built, and the API still works', async () => {
    const bare = buildServer(h.service, { logger: false, console: { dir: join(h.dir, 'no-such-dir') } })
    try {
      const res = await bare.inject({ method: 'GET', url: '/console/' })
      expect(res.statusCode).toBe(404)
      expect(res.headers['content-type']).toMatch(/^text\/plain/)
      expect(res.body).toMatch(/not built/)
      expect((await bare.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200)
      const signIn = await bare.inject({ method: 'POST', url: '/console/api/session', payload: { key: h.adminKey } })
      expect(signIn.statusCode).toBe(201)
    } finally {
      await bare.close()
    }
  })
})

void claims
