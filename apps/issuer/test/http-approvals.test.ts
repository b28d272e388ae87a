// Human approvals on the issuer, in process: approvers, enrolment (WebAuthn registration verified by
// @simplewebauthn/server), approval requests, decisions, long poll, events; answered by a software
// authenticator (webauthn-soft.ts). The same flow in headless Chromium: test/approvals-browser.test.ts.
// Runs on both engines (SQLite file, PostgreSQL database); the PostgreSQL run is skipped with the reason
// printed when the server is absent, failing under AGENTID_REQUIRE_SERVICES=1.
import { randomBytes } from 'node:crypto'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Webhook } from 'standardwebhooks'
import { argumentsDigest } from '@agentid/verifier'
import { BASE_URL, bearer, expectError, harness as fixtureHarness, namedKey, spawnAgent, verifierFor, type Harness } from './http-fixtures.js'
import { softAssert, softRegister, type SoftPasskey } from './webauthn-soft.js'
import { pgAbsent, REQUIRE_SERVICES, tempPgDatabase } from './pg-helpers.js'
import { approvalLogRef } from '../src/approvals/log-ref.js'

const absent = await pgAbsent()
if (absent !== null && !REQUIRE_SERVICES) console.warn(`skipping the PostgreSQL run of apps/issuer/test/http-approvals.test.ts: ${absent}`)
let engine: 'sqlite' | 'postgres' = 'sqlite'

// The fixtures' issuer on the engine of the running block (PostgreSQL: a fresh database, dropped at close).
async function harness(o: Parameters<typeof fixtureHarness>[0] = {}): Promise<Harness> {
  if (engine === 'sqlite') return fixtureHarness(o)
  if (absent !== null) throw new Error(`AGENTID_REQUIRE_SERVICES=1 but ${absent}`)
  const db = await tempPgDatabase()
  const hh = await fixtureHarness({ ...o, databaseUrl: db.url })
  return { ...hh, close: async () => { await hh.close(); await db.drop() } }
}

let h: Harness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

const ORIGIN = BASE_URL
const CONTROLLER = 'did:web:acme.example'
const ARGS = { invoice: 'INV-42', amount: '1200.00 EUR' }

async function addApprover(hh: Harness, body: Record<string, unknown> = { name: 'Dana', controllers: [CONTROLLER] }) {
  const res = await hh.app.inject({ method: 'POST', url: '/v1/approvers', headers: bearer(hh.adminKey), payload: body })
  expect(res.statusCode).toBe(201)
  const json = res.json() as { id: string; enrolmentUrl: string }
  return { ...json, token: json.enrolmentUrl.split('#')[1]! }
}

async function enrol(hh: Harness, token: string): Promise<{ passkey: SoftPasskey; credential: string }> {
  const options = (await hh.app.inject({ method: 'POST', url: '/v1/enrolments/options', payload: { token } })).json()
  const { passkey, response } = softRegister(options, ORIGIN)
  const res = await hh.app.inject({ method: 'POST', url: '/v1/enrolments/verify', payload: { token, response } })
  expect(res.statusCode, res.body).toBe(201)
  return { passkey, credential: res.json().credential }
}

async function request(hh: Harness, extra: Record<string, unknown> = {}) {
  const res = await hh.app.inject({
    method: 'POST', url: '/v1/approvals', headers: bearer(hh.orch.apiKey),
    payload: { agent: 'did:key:z6MkAgent', controller: CONTROLLER, target: 'https://bank.example/mcp', command: 'tools/call pay_invoice', arguments: ARGS, ...extra },
  })
  expect(res.statusCode, res.body).toBe(201)
  return res.json() as { id: string; status: string; url: string; call: Record<string, unknown> }
}

async function decide(hh: Harness, id: string, passkey: SoftPasskey, decision: 'approve' | 'deny', o: Parameters<typeof softAssert>[3] = {}) {
  const res = await hh.app.inject({ method: 'POST', url: `/v1/approvals/${id}/options` })
  if (res.statusCode !== 200) return res // a request no longer pending has no options
  const options = res.json()
  return hh.app.inject({ method: 'POST', url: `/v1/approvals/${id}/decision`, payload: { decision, response: softAssert(passkey, options[decision], ORIGIN, o) } })
}

describe.each(['sqlite', 'postgres'] as const)('approvals on %s', (name) => {
beforeAll(() => { engine = name })
if (name === 'postgres' && absent !== null && !REQUIRE_SERVICES) {
  it.skip(`PostgreSQL absent: ${absent}`, () => {})
  return
}

describe('approvers and enrolment', () => {
  it('admin adds an approver; the one-time link enrols a passkey and yields a credential the verifier accepts in a receipt', async () => {
    h = await harness()
    const a = await addApprover(h)
    expect(a.enrolmentUrl).toMatch(/^http:\/\/issuer\.test\/approvals\/enrol#[A-Za-z0-9_-]{43}$/)
    const info = await h.app.inject({ method: 'POST', url: '/v1/enrolments/info', payload: { token: a.token } })
    expect(info.json()).toMatchObject({ name: 'Dana', approves: { controllers: [CONTROLLER], groups: [] }, rpId: 'issuer.test' })
    const { credential } = await enrol(h, a.token)
    const payload = JSON.parse(Buffer.from(credential.split('.')[1]!, 'base64url').toString()) as { vc: { type: string[]; credentialSubject: Record<string, unknown> } }
    expect(payload.vc.type).toContain('AgentIdApproverCredential')
    expect(payload.vc.credentialSubject).toMatchObject({ approverId: a.id, name: 'Dana', webauthn: { rpId: 'issuer.test', origin: ORIGIN, alg: -7, publicKeyJwk: { kty: 'EC', crv: 'P-256' } } })
    // The link is spent.
    expectError(await h.app.inject({ method: 'POST', url: '/v1/enrolments/options', payload: { token: a.token } }), 404, 'ERR_NOT_FOUND')
    const list = (await h.app.inject({ method: 'GET', url: '/v1/approvers', headers: bearer(h.adminKey) })).json()
    expect(list.approvers[0]).toMatchObject({ id: a.id, status: 'active' })
  })

  it('refuses a registration without user verification, from another origin, or for another challenge', async () => {
    h = await harness()
    for (const o of [{ flags: 0x01 }, { origin: 'http://evil.test' }, { challenge: 'AAAA' }, { rpId: 'evil.test' }]) {
      const a = await addApprover(h)
      const options = (await h.app.inject({ method: 'POST', url: '/v1/enrolments/options', payload: { token: a.token } })).json()
      const { response } = softRegister(options, ORIGIN, o)
      expectError(await h.app.inject({ method: 'POST', url: '/v1/enrolments/verify', payload: { token: a.token, response } }), 401, 'ERR_SIGNATURE_INVALID')
    }
  })

  it('approver routes are admin only; malformed input is refused with the field named', async () => {
    h = await harness()
    expectError(await h.app.inject({ method: 'POST', url: '/v1/approvers', headers: bearer(h.orch.apiKey), payload: { name: 'x', controllers: ['c'] } }), 403, 'ERR_FORBIDDEN')
    expectError(await h.app.inject({ method: 'POST', url: '/v1/approvers', payload: { name: 'x', controllers: ['c'] } }), 401, 'ERR_UNAUTHENTICATED')
    for (const [payload, field] of [
      [{ name: 'x' }, 'controllers'],
      [{ name: '', controllers: ['c'] }, 'name'],
      [{ name: 'Dana\u202eevil', controllers: ['c'] }, 'name'],
      [{ name: 'Dana', groups: ['fin ance'] }, 'groups[0]'],
      [{ name: 'Dana', controllers: ['c'], extra: 1 }, 'extra'],
      [{ name: 'Dana', controllers: 'c' }, 'controllers'],
    ] as const) {
      const e = expectError(await h.app.inject({ method: 'POST', url: '/v1/approvers', headers: bearer(h.adminKey), payload }), 400, 'ERR_INVALID_INPUT')
      expect(e.details?.field).toBe(field)
    }
    for (const token of ['x', 'A'.repeat(43), 42]) expectError(await h.app.inject({ method: 'POST', url: '/v1/enrolments/info', payload: { token } }), 404, 'ERR_NOT_FOUND')
    expectError(await h.app.inject({ method: 'GET', url: '/v1/approvers/apv_nope', headers: bearer(h.adminKey) }), 404, 'ERR_NOT_FOUND')
  })

  it('an expired enrolment link is refused', async () => {
    h = await harness()
    const a = await addApprover(h)
    h.clock.now += 86_401_000
    expectError(await h.app.inject({ method: 'POST', url: '/v1/enrolments/options', payload: { token: a.token } }), 404, 'ERR_NOT_FOUND')
  })
})

describe('approval requests and decisions', () => {
  it('approve: the receipt verifies for the call and fails for a changed argument; long poll returns on decision; events recorded', async () => {
    h = await harness()
    const hh = h
    const a = await addApprover(hh)
    const { passkey } = await enrol(hh, a.token)
    const r = await request(hh, { transactionId: 'tx-9', user: { id: 'bob', issuer: 'https://idp.example' } })
    expect(r).toMatchObject({ status: 'pending', url: `${BASE_URL}/approvals/${r.id}`, call: { argumentsDigest: argumentsDigest(ARGS), transactionId: 'tx-9', issuer: hh.issuerDid } })
    const poll = hh.app.inject({ method: 'GET', url: `/v1/approvals/${r.id}?wait=10` })
    const res = await decide(hh, r.id, passkey, 'approve')
    expect(res.statusCode, res.body).toBe(200)
    const polled = (await poll).json()
    expect(polled).toMatchObject({ status: 'approved', approver: { id: a.id, name: 'Dana' } })
    const verifier = verifierFor(hh)
    const call = { agent: 'did:key:z6MkAgent', target: 'https://bank.example/mcp', command: 'tools/call pay_invoice', arguments: ARGS }
    await expect(verifier.verifyApproval(polled.receipt, { call: { ...call, arguments: { ...ARGS, amount: '9999.00 EUR' } } })).rejects.toMatchObject({ code: 'ERR_APPROVAL_MISMATCH' })
    const ok = await verifier.verifyApproval(polled.receipt, { call })
    expect(ok.approver.name).toBe('Dana')
    // A second decision is refused.
    expectError(await decide(hh, r.id, passkey, 'deny'), 409, 'ERR_CONFLICT')
    const logged = (await hh.service.storage.audit.range(0, await hh.service.storage.audit.count())).filter((e) => e.action.startsWith('approv'))
    const actions = logged.map((e) => e.action)
    expect(actions).toEqual(['approver.added', 'approver.enrolled', 'approval.requested', 'approval.approved'])
    // Each is an entry of the issuer's transparency log (index assigned in the event's transaction).
    expect(logged.every((r) => Number.isInteger(r.log_index))).toBe(true)
    // The log is public and the request's id is the capability to read it (GET /v1/approvals/{id} needs
    // no key): its entries name the request by the id's SHA-256, never the id.
    const all = JSON.stringify(await hh.service.storage.audit.range(0, await hh.service.storage.audit.count()))
    expect(all).not.toContain(r.id)
    expect(logged.filter((e) => e.action.startsWith('approval.')).map((e) => e.subject)).toEqual([approvalLogRef(r.id), approvalLogRef(r.id)])
  })

  it('deny: recorded, the receipt refused as an approval', async () => {
    h = await harness()
    const a = await addApprover(h)
    const { passkey } = await enrol(h, a.token)
    const r = await request(h)
    const res = await decide(h, r.id, passkey, 'deny')
    expect(res.json()).toMatchObject({ status: 'denied' })
    await expect(verifierFor(h).verifyApproval(res.json().receipt, { call: { agent: 'did:key:z6MkAgent', target: 'https://bank.example/mcp', command: 'tools/call pay_invoice', arguments: ARGS } }))
      .rejects.toMatchObject({ code: 'ERR_APPROVAL_DENIED' })
  })

  it('refuses: an approver of another controller or group, a revoked approver, UV absent, another origin, an approve signature sent as a deny, an expired request', async () => {
    h = await harness()
    const other = await addApprover(h, { name: 'Olga', controllers: ['did:web:other.example'] })
    const { passkey: olga } = await enrol(h, other.token)
    expectError(await decide(h, (await request(h)).id, olga, 'approve'), 403, 'ERR_NOT_AUTHORIZED')
    // A group request: the controller's approvers are not enough.
    const a = await addApprover(h)
    const { passkey: dana } = await enrol(h, a.token)
    expectError(await decide(h, (await request(h, { group: 'finance' })).id, dana, 'approve'), 403, 'ERR_NOT_AUTHORIZED')
    expectError(await decide(h, (await request(h)).id, dana, 'approve', { flags: 0x01 }), 401, 'ERR_SIGNATURE_INVALID')
    expectError(await decide(h, (await request(h)).id, dana, 'approve', { origin: 'http://evil.test' }), 401, 'ERR_SIGNATURE_INVALID')
    // The approve challenge presented as a deny.
    const r = await request(h)
    const options = (await h.app.inject({ method: 'POST', url: `/v1/approvals/${r.id}/options` })).json()
    expectError(await h.app.inject({ method: 'POST', url: `/v1/approvals/${r.id}/decision`, payload: { decision: 'deny', response: softAssert(dana, options.approve, ORIGIN) } }), 401, 'ERR_SIGNATURE_INVALID')
    const expiring = await request(h, { ttlSec: 30 })
    h.clock.now += 31_000
    expectError(await decide(h, expiring.id, dana, 'approve'), 401, 'ERR_EXPIRED')
    expect((await h.app.inject({ method: 'GET', url: `/v1/approvals/${expiring.id}` })).json().status).toBe('expired')
    const revoke = await h.app.inject({ method: 'POST', url: `/v1/approvers/${a.id}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'left' } })
    expect(revoke.json()).toMatchObject({ id: a.id, alreadyRevoked: false })
    expectError(await decide(h, (await request(h)).id, dana, 'approve'), 403, 'ERR_REVOKED')
  })

  it('a receipt from before the approver was revoked fails verification once the list says so', async () => {
    h = await harness()
    const a = await addApprover(h)
    const { passkey } = await enrol(h, a.token)
    const r = await request(h)
    const receipt = (await decide(h, r.id, passkey, 'approve')).json().receipt
    await h.app.inject({ method: 'POST', url: `/v1/approvers/${a.id}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'lost device' } })
    await expect(verifierFor(h).verifyApproval(receipt, { call: { agent: 'did:key:z6MkAgent', target: 'https://bank.example/mcp', command: 'tools/call pay_invoice', arguments: ARGS } }))
      .rejects.toMatchObject({ code: 'ERR_REVOKED' })
  })

  it('request routes: authentication, malformed bodies, unknown ids, wait bounds, list is admin only', async () => {
    h = await harness()
    expectError(await h.app.inject({ method: 'POST', url: '/v1/approvals', payload: {} }), 401, 'ERR_UNAUTHENTICATED')
    for (const [extra, field] of [
      [{ agent: 'not-a-did' }, 'agent'],
      [{ arguments: undefined }, 'arguments'],
      [{ command: '' }, 'command'],
      [{ ttlSec: 5 }, 'ttlSec'],
      [{ group: 'a b' }, 'group'],
      [{ user: { id: 'bob', role: 'x' } }, 'role'],
      [{ arguments: { big: 'x'.repeat(17_000) } }, 'arguments'],
      [{ note: 'please approve, the CEO asked' }, 'note'],
    ] as const) {
      const payload = { agent: 'did:key:z6MkAgent', controller: CONTROLLER, target: 't', command: 'c', arguments: {}, ...extra }
      if ('arguments' in extra && extra.arguments === undefined) delete (payload as Record<string, unknown>).arguments
      const e = expectError(await h.app.inject({ method: 'POST', url: '/v1/approvals', headers: bearer(h.orch.apiKey), payload }), 400, 'ERR_INVALID_INPUT')
      expect(e.details?.field).toBe(field)
    }
    expectError(await h.app.inject({ method: 'GET', url: '/v1/approvals/apr_AAAAAAAAAAAAAAAAAAAAAA' }), 404, 'ERR_NOT_FOUND')
    expectError(await h.app.inject({ method: 'GET', url: '/v1/approvals/apr_%3Cscript%3E' }), 404, 'ERR_NOT_FOUND')
    const r = await request(h)
    expectError(await h.app.inject({ method: 'GET', url: `/v1/approvals/${r.id}?wait=31` }), 400, 'ERR_INVALID_INPUT')
    expectError(await h.app.inject({ method: 'GET', url: `/v1/approvals/${r.id}?wait=-1` }), 400, 'ERR_INVALID_INPUT')
    expectError(await h.app.inject({ method: 'GET', url: '/v1/approvals', headers: bearer(h.orch.apiKey) }), 403, 'ERR_FORBIDDEN')
    expect((await h.app.inject({ method: 'GET', url: '/v1/approvals?status=pending', headers: bearer(h.adminKey) })).json().approvals).toHaveLength(1)
    for (const payload of [{}, { decision: 'maybe', response: {} }, { decision: 'approve', response: { id: '!!', response: {} } }, { decision: 'approve' }]) {
      expectError(await h.app.inject({ method: 'POST', url: `/v1/approvals/${r.id}/decision`, payload }), 400, 'ERR_INVALID_INPUT')
    }
    expectError(await h.app.inject({ method: 'POST', url: `/v1/approvals/${r.id}/decision`, payload: { decision: 'approve', response: { id: 'AAAA', response: {} } } }), 401, 'ERR_UNAUTHENTICATED')
  })

  it('a request for an agent of this issuer must name its controller: another controller\'s approvers are not asked', async () => {
    // An orchestrator key holder asks for an approval of its own agent's call under another controller,
    // so that controller's approvers see their controller on the page and approve; the receipt then
    // says that controller's approver approved it (verifyApproval checks the controller only when told it).
    h = await harness()
    const agent = await spawnAgent(h, namedKey()) // controller did:web:acme.example
    const res = await h.app.inject({
      method: 'POST', url: '/v1/approvals', headers: bearer(h.orch.apiKey),
      payload: { agent: agent.did, controller: 'did:web:bank.example', target: 't', command: 'tools/call pay', arguments: {} },
    })
    expect(expectError(res, 400, 'ERR_INVALID_INPUT').details?.field).toBe('controller')
    const ok = await request(h, { agent: agent.did })
    expect(ok.call.controller).toBe(CONTROLLER)
  })

  it('pages and assets: same-origin scripts only, strict CSP, no framing; the request id shape is checked', async () => {
    h = await harness()
    const r = await request(h)
    for (const url of [`/approvals/${r.id}`, '/approvals/enrol', '/approvals/assets/webauthn.js', '/approvals/assets/approve.js', '/approvals/assets/style.css']) {
      const res = await h.app.inject({ method: 'GET', url })
      expect(res.statusCode, url).toBe(200)
      expect(res.headers['content-security-policy']).toContain("script-src 'self'")
      expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'")
      expect(res.headers['x-frame-options']).toBe('DENY')
      expect(res.body).not.toMatch(/<(script|link)[^>]+(src|href)="(https?:)?\/\//)
    }
    const html = (await h.app.inject({ method: 'GET', url: `/approvals/${r.id}` })).body
    expect(html).not.toContain('innerHTML')
    expect((await h.app.inject({ method: 'GET', url: '/approvals/assets/approve.js' })).body).not.toContain('innerHTML')
    expectError(await h.app.inject({ method: 'GET', url: '/approvals/<script>' }), 404, 'ERR_NOT_FOUND')
  })

  it('announces requests and decisions to the webhook: signed (Standard Webhooks), from the outbox written with each write', async () => {
    const secret = `whsec_${randomBytes(32).toString('base64')}`
    const posted: { url: string; headers: Record<string, string>; body: string }[] = []
    const fetch = (async (url: string, init: { body: string; headers: Record<string, string>; redirect: string }) => {
      expect(init.redirect).toBe('manual')
      posted.push({ url, headers: init.headers, body: init.body })
      return new Response(null, { status: 204 })
    }) as unknown as typeof globalThis.fetch
    h = await harness({ approvals: { webhook: { url: 'https://hooks.example/approvals', secret }, fetch } })
    const a = await addApprover(h)
    const { passkey } = await enrol(h, a.token)
    const r = await request(h)
    expect((await decide(h, r.id, passkey, 'approve')).statusCode).toBe(200)
    // A second decision is refused, and announces nothing.
    expectError(await decide(h, r.id, passkey, 'deny'), 409, 'ERR_CONFLICT')
    for (let i = 0; i < 200 && posted.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    await new Promise((resolve) => setTimeout(resolve, 50))
    const events = posted.map((p) => ({ url: p.url, id: p.headers['webhook-id'], body: new Webhook(secret).verify(p.body, p.headers) as Record<string, unknown> }))
    expect(events.map((e) => [e.url, e.body.type, e.body.id, e.body.status])).toEqual([
      ['https://hooks.example/approvals', 'approval.requested', r.id, 'pending'],
      ['https://hooks.example/approvals', 'approval.approved', r.id, 'approved'],
    ])
    expect(events[1]!.body).toMatchObject({ url: `${BASE_URL}/approvals/${r.id}`, call: r.call, approver: { id: a.id, name: 'Dana' } })
    expect(events[0]!.id).not.toBe(events[1]!.id)
    const outbox = await h.service.storage.webhooks.bySubject(r.id)
    const byType = (rows: string[][]) => rows.sort((x, y) => x[1]!.localeCompare(y[1]!))
    expect(byType(outbox.map((e) => [e.id, e.type, e.state, String(e.attempts)]))).toEqual(byType(events.map((e) => [e.id!, String(e.body.type), 'delivered', '1'])))
  })



})
})
