// End to end: operator console sessions live in the issuer's database, on real issuer processes.
// (1) SQLite: sign in, SIGKILL the issuer, start it again on the same data directory: the cookie still
// works (same CSRF token); malformed cookies and ids never issued are 401 on the restarted process.
// (2) Two issuer processes on one PostgreSQL database: a session made on A works on B; logout on B is
// refused on A; an orchestrator disabled on A has its session refused on B. The PostgreSQL part is
// skipped with the reason printed when the server is absent, and fails under AGENTID_REQUIRE_SERVICES=1.
import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { addOrchestratorViaApi, api, cleanup, newAdminKey, restartIssuer, startIssuer, type IssuerProcess } from './harness.js'
import { pgAbsent, tempPgDatabase } from '../apps/issuer/test/pg-helpers.js'

const absent = await pgAbsent()
const REQUIRE = process.env.AGENTID_REQUIRE_SERVICES === '1'
if (absent !== null && !REQUIRE) console.warn(`skipping the PostgreSQL part of test/console-sessions.test.ts: ${absent}`)
const pgSuite = absent === null || REQUIRE ? describe : describe.skip

const closers: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => {})
  await cleanup()
})

interface Session { cookie: string; csrf: string }

/** Signs in on `issuer` with `key` (same-origin, as the console does). */
async function signIn(issuer: IssuerProcess, key: string): Promise<Session> {
  const r = await api(issuer, 'POST', '/console/api/session', { json: { key }, headers: { origin: issuer.url } })
  expect(r.status, r.text).toBe(201)
  const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0]!
  expect(cookie).toMatch(/^agentid_console_[0-9a-f]{12}=[A-Za-z0-9_-]{43}$/) // named for the issuer (its base URL)
  return { cookie, csrf: r.body.csrfToken }
}
const session = (issuer: IssuerProcess, s: Session) => api(issuer, 'GET', '/console/api/session', { headers: { cookie: s.cookie } })
const write = (issuer: IssuerProcess, s: Session, method: string, path: string, json?: unknown) =>
  api(issuer, method, path, { headers: { cookie: s.cookie, origin: issuer.url, 'x-agentid-csrf': s.csrf }, ...(json === undefined ? {} : { json }) })
const refusal = (r: { status: number; body: any }) => ({ status: r.status, code: r.body?.error?.code, reason: r.body?.error?.details?.reason })

describe('console sessions on SQLite', () => {
  it('survive a restart of the issuer process on the same data directory (SIGKILL, then start again)', async () => {
    const first = await startIssuer({ env: { AGENTID_CONSOLE_DIR: 'off' } })
    const admin = await signIn(first, first.adminKey)
    const orch = await addOrchestratorViaApi(first, 'acme')
    const o = await signIn(first, orch.apiKey)
    await first.kill()
    const second = await restartIssuer(first)
    const me = await session(second, admin)
    expect(me.status, me.text).toBe(200)
    expect(me.body.csrfToken).toBe(admin.csrf)
    expect(me.body.principal).toEqual({ kind: 'admin' })
    expect((await session(second, o)).body.principal).toEqual({ kind: 'orchestrator', id: orch.id, name: 'acme' })
    expect((await api(second, 'GET', '/console/api/agents', { headers: { cookie: admin.cookie } })).status).toBe(200)
    // Hostile cookies against the restarted process: 401, never a 500.
    const madeUp = randomBytes(32).toString('base64url')
    const name = admin.cookie.split('=')[0]!
    for (const cookie of [`${name}=${madeUp}`, `${name}=`, `${name}=${'a'.repeat(5000)}`, `${name}=${admin.cookie.split('=')[1]!.slice(1)}`, `${admin.cookie}; ${admin.cookie}`, `${name}=%00%01`, `agentid_console=${admin.cookie.split('=')[1]!}`]) {
      expect(refusal(await api(second, 'GET', '/console/api/session', { headers: { cookie } })), cookie.slice(0, 60)).toMatchObject({ status: 401, code: 'ERR_UNAUTHENTICATED' })
    }
    // Logout, then the process restarted again: still refused.
    expect((await write(second, admin, 'DELETE', '/console/api/session')).status).toBe(204)
    await second.stop()
    const third = await restartIssuer(second)
    expect(refusal(await session(third, admin))).toEqual({ status: 401, code: 'ERR_UNAUTHENTICATED', reason: 'no_session' })
    expect((await session(third, o)).status).toBe(200)
  })
})

pgSuite('console sessions on two issuer processes sharing one PostgreSQL database', () => {
  it('a session made on A works on B; logout on B ends it on A; an orchestrator disabled on A loses its session on B', async () => {
    if (absent !== null) throw new Error(`AGENTID_REQUIRE_SERVICES=1 but ${absent}`)
    const db = await tempPgDatabase()
    closers.push(db.drop)
    const adminKey = newAdminKey()
    const env = { AGENTID_DATABASE_URL: db.url, AGENTID_SECRET: randomBytes(32).toString('base64url'), AGENTID_BASE_URL: 'http://issuer.test', AGENTID_CONSOLE_DIR: 'off' }
    const [a, b] = await Promise.all([startIssuer({ adminKey, env }), startIssuer({ adminKey, env })]) as [IssuerProcess, IssuerProcess]

    const admin = await signIn(a, adminKey)
    const onB = await session(b, admin)
    expect(onB.status, onB.text).toBe(200)
    expect(onB.body.csrfToken).toBe(admin.csrf)
    expect((await api(b, 'GET', '/console/api/orchestrators', { headers: { cookie: admin.cookie } })).status).toBe(200)
    expect((await write(b, admin, 'DELETE', '/console/api/session')).status).toBe(204)
    expect(refusal(await session(a, admin))).toEqual({ status: 401, code: 'ERR_UNAUTHENTICATED', reason: 'no_session' })
    expect(refusal(await write(a, admin, 'POST', '/console/api/orchestrators', { name: 'after-logout' }))).toMatchObject({ status: 401 })

    const admin2 = await signIn(a, adminKey)
    const made = await write(a, admin2, 'POST', '/console/api/orchestrators', { name: 'short-lived' })
    expect(made.status, made.text).toBe(201)
    const orch = await signIn(a, made.body.apiKey)
    expect((await api(b, 'GET', '/console/api/agents', { headers: { cookie: orch.cookie } })).status).toBe(200)
    const disabled = await write(a, admin2, 'POST', `/console/api/orchestrators/${made.body.id}/disable`, {})
    expect(disabled.status, disabled.text).toBe(200)
    // Deleted on A with the disabling: B finds no session at all.
    expect(refusal(await api(b, 'GET', '/console/api/agents', { headers: { cookie: orch.cookie } }))).toEqual({ status: 401, code: 'ERR_UNAUTHENTICATED', reason: 'no_session' })
    expect((await session(b, admin2)).status).toBe(200)
  })
})
