// The approval option of the Fastify plugin: the same step as the Node middleware (decideHttpApproval) on
// the request Fastify parsed. The DPoP step is stubbed (its own tests are in verify-request.test.ts); the
// receipts are verified by a real verifier, from a software passkey (approval-fixtures.ts).
import { VerificationError } from '@agentid/core'
import { agentidFastify, argumentsDigest, httpApprovalCall, type FastifyLike, type HttpApprovalOptions, type VerifiedRequest, type Verifier } from '@agentid/verifier'
import { beforeEach, describe, expect, it } from 'vitest'
import { call, receipt, setup } from './approval-fixtures.js'
import { alice } from './fixtures.js'

const BANK = 'https://bank.example'
const PATH = '/v1/pay?x=1'
const BODY = { invoice: 'INV-42', amount: '1200.00 EUR' }
const verified = { agent: alice.did, user: null, userIssuer: null, agentClaims: { controller: 'did:web:acme.example' } } as unknown as VerifiedRequest

let verifier: Verifier
let dpop: 'ok' | 'refused'
let posted: Record<string, unknown>[]
let issuerStatus: number

const issuerFetch = (async (_url: string, init: { body: string; headers: Record<string, string> }) => {
  posted.push({ ...JSON.parse(init.body), authorization: init.headers.authorization })
  return new Response(JSON.stringify({ id: 'apr_BBBBBBBBBBBBBBBBBBBBBB', url: 'https://id.example/approvals/apr_BBBBBBBBBBBBBBBBBBBBBB', expiresAt: '2027-01-01T00:00:00.000Z' }), { status: issuerStatus })
}) as unknown as typeof globalThis.fetch

beforeEach(async () => {
  const real = (await setup()).verifier
  dpop = 'ok'
  posted = []
  issuerStatus = 201
  verifier = Object.freeze({
    ...real,
    verifyRequest: async () => {
      if (dpop === 'refused') throw new VerificationError('ERR_MALFORMED', 'no DPoP proof')
      return verified
    },
  })
})

function plugin(approval: Partial<HttpApprovalOptions> | null = {}) {
  let hook: Parameters<FastifyLike['addHook']>[1] | undefined
  let failed: Error | undefined
  const decorated: string[] = []
  const seen: unknown[] = []
  const options = approval === null ? {} : { approval: { requires: (r: unknown) => { seen.push(r); return { group: null } }, issuerUrl: 'https://id.example', apiKey: 'aid_orch_key', fetch: issuerFetch, ...approval } }
  agentidFastify({ decorateRequest: (name) => { decorated.push(name) }, addHook: (_n, h) => { hook = h } }, { verifier, origin: BANK, audience: BANK, ...options } as never, (e) => { failed = e })
  return {
    failed: () => failed,
    decorated,
    seen,
    async run(headers: Record<string, string[]> = {}, body: unknown = BODY) {
      const request = { method: 'POST', url: PATH, headers: {}, raw: { headersDistinct: headers }, body, agentid: null as unknown, agentidApproval: null as unknown }
      const reply = { status: 0, headers: {} as Record<string, string>, body: undefined as unknown, code(s: number) { this.status = s; return this }, header(n: string, v: string) { this.headers[n] = v; return this }, send(b: unknown) { this.body = b; return this } }
      await hook!(request as never, reply as never)
      return { status: reply.status, headers: reply.headers, body: reply.body as { error: Record<string, unknown> } | undefined, approval: request.agentidApproval as { approver: { name: string } } | null, agent: request.agentid }
    },
  }
}

async function approvedHeader(body: unknown = BODY): Promise<string> {
  const c = httpApprovalCall(verified, BANK, 'POST', `${BANK}${PATH}`, body)
  const r = await receipt({ call: call({ target: c.target, command: c.command, arguments: c.arguments, argumentsDigest: argumentsDigest(c.arguments), user: null }) })
  return Buffer.from(JSON.stringify(r)).toString('base64url')
}

describe('Fastify plugin: approval', () => {
  it('needed, no receipt: asks the issuer for exactly this request and answers 403 ERR_APPROVAL_REQUIRED with the id', async () => {
    const p = plugin()
    expect(p.decorated).toContain('agentidApproval')
    const out = await p.run()
    expect(out.status).toBe(403)
    expect(out.headers['cache-control']).toBe('no-store')
    expect(out.body).toEqual({ error: expect.objectContaining({ code: 'ERR_APPROVAL_REQUIRED', approvalId: 'apr_BBBBBBBBBBBBBBBBBBBBBB', approvalUrl: expect.any(String), expiresAt: expect.any(String) }) })
    expect(posted).toHaveLength(1)
    expect(posted[0]).toMatchObject({ agent: alice.did, controller: 'did:web:acme.example', target: BANK, command: 'POST /v1/pay', arguments: { query: 'x=1', body: BODY }, group: null, authorization: 'Bearer aid_orch_key' })
    expect(p.seen[0]).toMatchObject({ method: 'POST', url: `${BANK}${PATH}`, agent: verified })
  })

  it('with a receipt for this request: goes on with request.agentidApproval; the same receipt again is a replay', async () => {
    const p = plugin()
    const header = await approvedHeader()
    const out = await p.run({ 'agentid-approval': [header] })
    expect(out.status).toBe(0) // no reply: the route handler runs
    expect(out.approval?.approver.name).toBe('Dana')
    expect(out.agent).toBe(verified)
    expect(posted).toEqual([])
    const again = await p.run({ 'agentid-approval': [header] })
    expect(again).toMatchObject({ status: 403, body: { error: { code: 'ERR_REPLAY' } } })
  })

  it('refuses a receipt for another body, a malformed or repeated header, another group; 503 when the issuer cannot make a request', async () => {
    const header = await approvedHeader()
    expect(await plugin().run({ 'agentid-approval': [header] }, { ...BODY, amount: '9999.00 EUR' })).toMatchObject({ status: 403, body: { error: { code: 'ERR_APPROVAL_MISMATCH' } }, approval: null })
    expect(await plugin().run({ 'agentid-approval': ['not base64url!'] })).toMatchObject({ status: 403, body: { error: { code: 'ERR_MALFORMED' } } })
    expect(await plugin().run({ 'agentid-approval': [Buffer.from('{"type":"x"}').toString('base64url')] })).toMatchObject({ status: 403, body: { error: { code: 'ERR_MALFORMED' } } })
    expect(await plugin().run({ 'agentid-approval': [header, header] })).toMatchObject({ status: 403, body: { error: { code: 'ERR_MALFORMED' } } })
    expect(await plugin({ requires: () => ({ group: 'finance' }) }).run({ 'agentid-approval': [header] })).toMatchObject({ status: 403, body: { error: { code: 'ERR_APPROVAL_MISMATCH' } } })
    issuerStatus = 500
    expect(await plugin().run()).toMatchObject({ status: 503, body: { error: { code: 'ERR_UNAVAILABLE' } } })
  })

  it('not needed: goes on without asking anyone; without the option nothing is asked either', async () => {
    expect(await plugin({ requires: () => false }).run()).toMatchObject({ status: 0, approval: null })
    expect(await plugin(null).run()).toMatchObject({ status: 0, approval: null })
    expect(posted).toEqual([])
  })

  it('the DPoP check comes first: a refused proof is a 401 and no approval request is made', async () => {
    dpop = 'refused'
    const out = await plugin().run()
    expect(out.status).toBe(401)
    expect(posted).toEqual([])
  })

  it('misuse: a malformed approval option fails the registration with a TypeError', () => {
    const p = plugin({ issuerUrl: 'not a url' })
    expect(p.failed()).toBeInstanceOf(TypeError)
    expect(plugin({ requires: 'yes' as never }).failed()).toBeInstanceOf(TypeError)
  })
})
