// decideHttpApproval: the approval step of agentidMiddleware, on a verified request. The issuer is a stub
// that records the approval requests; receipts come from a software passkey (approval-fixtures.ts).
import { describe, expect, it } from 'vitest'
import { argumentsDigest, decideHttpApproval, httpApprovalCall, type HttpApprovalOptions, type VerifiedRequest } from '@agentid/verifier'
import { call, receipt, setup } from './approval-fixtures.js'
import { alice } from './fixtures.js'

const URL_ = 'https://bank.example/v1/pay?x=1'
const BODY = { invoice: 'INV-42', amount: '1200.00 EUR' }
const verified = { agent: alice.did, user: null, userIssuer: null, agentClaims: { controller: 'did:web:acme.example' } } as unknown as VerifiedRequest

function stubIssuer(status = 201) {
  const posted: Record<string, unknown>[] = []
  const fetch = (async (_url: string, init: { body: string; headers: Record<string, string> }) => {
    posted.push({ ...JSON.parse(init.body), authorization: init.headers.authorization })
    return new Response(JSON.stringify({ id: 'apr_AAAAAAAAAAAAAAAAAAAAAA', url: 'https://id.example/approvals/apr_AAAAAAAAAAAAAAAAAAAAAA', expiresAt: '2027-01-01T00:00:00.000Z' }), { status })
  }) as unknown as typeof globalThis.fetch
  return { posted, fetch }
}

const opts = (o: Partial<HttpApprovalOptions> = {}): HttpApprovalOptions => ({ requires: () => ({ group: null }), issuerUrl: 'https://id.example', apiKey: 'aid_orch_key', ...o })

async function approvedReceipt(body: unknown = BODY) {
  const c = httpApprovalCall(verified, 'https://bank.example', 'POST', URL_, body)
  return receipt({ call: call({ target: c.target, command: c.command, arguments: c.arguments, argumentsDigest: argumentsDigest(c.arguments), user: null }) })
}

const header = (r: unknown) => Buffer.from(JSON.stringify(r)).toString('base64url')
const req = (headers: Record<string, string> = {}, body: unknown = BODY) => ({ method: 'POST', url: URL_, headers, body, target: 'https://bank.example' })

describe('decideHttpApproval', () => {
  it('not needed: goes on without asking anyone', async () => {
    const { verifier } = await setup()
    const s = stubIssuer()
    expect(await decideHttpApproval(verifier, opts({ requires: () => false, fetch: s.fetch }), req(), verified)).toEqual({ ok: true, approval: null })
    expect(s.posted).toEqual([])
  })

  it('needed, no receipt: asks the issuer for exactly this request and answers 403 ERR_APPROVAL_REQUIRED with the id', async () => {
    const { verifier } = await setup()
    const s = stubIssuer()
    const out = await decideHttpApproval(verifier, opts({ fetch: s.fetch, requires: () => ({ group: 'finance' }) }), req(), verified)
    expect(out).toMatchObject({ ok: false, status: 403, body: { error: { code: 'ERR_APPROVAL_REQUIRED', approvalId: 'apr_AAAAAAAAAAAAAAAAAAAAAA' } } })
    expect(s.posted[0]).toMatchObject({ agent: alice.did, target: 'https://bank.example', command: 'POST /v1/pay', arguments: { query: 'x=1', body: BODY }, group: 'finance', authorization: 'Bearer aid_orch_key' })
    const down = await decideHttpApproval(verifier, opts({ fetch: stubIssuer(500).fetch }), req(), verified)
    expect(down).toMatchObject({ ok: false, status: 503, body: { error: { code: 'ERR_UNAVAILABLE' } } })
  })

  it('with a receipt for this request: goes on with the approval; once', async () => {
    const { verifier } = await setup()
    const r = await approvedReceipt()
    const out = await decideHttpApproval(verifier, opts(), req({ 'agentid-approval': header(r) }), verified)
    expect(out.ok && out.approval?.approver.name).toBe('Dana')
    expect(await decideHttpApproval(verifier, opts(), req({ 'agentid-approval': header(r) }), verified)).toMatchObject({ ok: false, status: 403, body: { error: { code: 'ERR_REPLAY' } } })
  })

  it('refuses a receipt for another body, query or group, a malformed header, two headers', async () => {
    const { verifier } = await setup()
    const r = await approvedReceipt()
    const code = async (o: Parameters<typeof req>, options = opts()) => {
      const out = await decideHttpApproval(verifier, options, req(...o), verified)
      return out.ok ? 'OK' : out.body.error.code
    }
    expect(await code([{ 'agentid-approval': header(r) }, { ...BODY, amount: '9999.00 EUR' }])).toBe('ERR_APPROVAL_MISMATCH')
    expect(await code([{ 'agentid-approval': header(r) }], opts({ requires: () => ({ group: 'finance' }) }))).toBe('ERR_APPROVAL_MISMATCH')
    expect(await code([{ 'agentid-approval': 'not base64url!' }])).toBe('ERR_MALFORMED')
    expect(await code([{ 'agentid-approval': header({ type: 'x' }) }])).toBe('ERR_MALFORMED')
    const two = await decideHttpApproval(verifier, opts(), { ...req(), headers: { 'agentid-approval': [header(r), header(r)] } as never }, verified)
    expect(two.ok ? 'OK' : two.body.error.code).toBe('ERR_MALFORMED')
  })

  it('refuses a path with dot segments or backslashes before anything else: the approved command would not be the route that runs', async () => {
    // The receipt approves POST /v1/pay; /v1/payees/%2e%2e/pay resolves to it, but a router runs /v1/payees/:id/pay.
    const { verifier } = await setup()
    const r = await approvedReceipt()
    const s = stubIssuer()
    for (const path of ['/v1/payees/%2e%2e/pay?x=1', '/v1/payees/../pay?x=1', '/v1/./pay?x=1', '/v1\\pay?x=1']) {
      const out = await decideHttpApproval(verifier, opts({ fetch: s.fetch }), { ...req({ 'agentid-approval': header(r) }), url: `https://bank.example${path}` }, verified)
      expect(out.ok ? 'OK' : [out.status, out.body.error.code], path).toEqual([400, 'ERR_MALFORMED'])
    }
    expect(s.posted).toEqual([])
    const ok = await decideHttpApproval(verifier, opts(), req({ 'agentid-approval': header(r) }), verified)
    expect(ok.ok).toBe(true)
  })

  it('misuse is a TypeError', async () => {
    const { agentidMiddleware } = await import('@agentid/verifier')
    const { verifier } = await setup()
    expect(() => agentidMiddleware(verifier, { approval: { issuerUrl: 'x' } as never })).toThrow(TypeError)
  })
})
