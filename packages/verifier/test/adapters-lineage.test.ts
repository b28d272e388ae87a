// The lineage paths of the Fastify plugin and the fetch adapter: the header read (one only), the
// command and arguments taken from the request itself, the refusals (401 credentials missing, 403
// otherwise) only after the DPoP check passed. The DPoP step is stubbed (its own tests are in
// verify-request.test.ts); the lineage is verified by a real verifier.
import { generateEd25519KeyPair, signerFromJwk, StatusList, VerificationError } from '@agentid/core'
import { appendHop, CREDENTIALS_HEADER, httpArgs, httpCommand, LINEAGE_HEADER } from '@agentid/lineage'
import { agentidFastify, agentidMiddleware, createVerifier, lineageErrorResponse, dpopErrorResponse, verifyFetchLineage, type FastifyLike, type Verifier } from '@agentid/verifier'
import { Readable } from 'node:stream'
import { beforeEach, describe, expect, it } from 'vitest'
import { alice, bob, credential, issuer, statusListJwt, statusServer, testClock, LIST_URL } from './fixtures.js'

const PAY = 'https://pay.example'
const URL_ = `${PAY}/v1/charges?currency=EUR`
const BODY = '{"amount":100}'
const carol = generateEd25519KeyPair()

let verifier: Verifier
let dpop: 'ok' | 'refused'
let creds: { alice: string; bob: string }
let clock: ReturnType<typeof testClock>

beforeEach(async () => {
  clock = testClock()
  const real = createVerifier({ trustedIssuers: [issuer.did], fetch: statusServer({ [LIST_URL]: await statusListJwt(StatusList.create()) }), clock })
  dpop = 'ok'
  verifier = Object.freeze({
    ...real,
    verifyRequest: async () => {
      if (dpop === 'refused') throw new VerificationError('ERR_MALFORMED', 'no DPoP proof')
      return { agent: bob.did } as never // a VerifiedRequest names its agent by DID
    },
  })
  creds = { alice: await credential({ sub: alice.did, index: '1' }), bob: await credential({ sub: bob.did, index: '2' }) }
})

/** alice → bob → pay.example, the last hop signed for `method url body`. */
async function lineageFor(method = 'POST', url = URL_, body: string | undefined = BODY): Promise<string> {
  const l0 = await appendHop(undefined, { signer: signerFromJwk(alice.privateJwk), credential: creds.alice, clock, target: 'https://b.example', callee: bob.did, command: 'POST /plan', args: {}, user: 'user-1' })
  return appendHop(l0, { signer: signerFromJwk(bob.privateJwk), credential: creds.bob, clock, target: PAY, command: httpCommand(method, url), args: httpArgs(url, body) })
}

describe('Fastify plugin: lineage', () => {
  function plugin(options: Record<string, unknown> = {}) {
    let hook: Parameters<FastifyLike['addHook']>[1] | undefined
    let failed: Error | undefined
    agentidFastify({ decorateRequest: () => undefined, addHook: (_n, h) => { hook = h } }, { verifier, origin: PAY, lineage: true, ...options } as never, (e) => { failed = e })
    return {
      failed: () => failed,
      async run(headers: Record<string, string[]>, { method = 'POST', url = '/v1/charges?currency=EUR', body = JSON.parse(BODY) as unknown, contentType = 'application/json' } = {}) {
        const request = { method, url, headers: { 'content-type': contentType }, raw: { headersDistinct: { 'content-type': [contentType], ...headers } }, body, agentid: null as unknown, agentidLineage: null as unknown }
        const reply = { status: 0, body: undefined as unknown, code(s: number) { this.status = s; return this }, header() { return this }, send(b: unknown) { this.body = b; return this } }
        await hook!(request as never, reply as never)
        return { status: reply.status, body: reply.body as { error: { code: string; details: { hop: unknown; reason: unknown } } } | undefined, lineage: request.agentidLineage as { hops: unknown[] } | null }
      },
    }
  }
  const headers = (lineage: string, credentials = `${creds.alice}~${creds.bob}`) => ({ [LINEAGE_HEADER]: [lineage], [CREDENTIALS_HEADER]: [credentials] })

  it('verifies the lineage for this request (command and arguments from the parsed body) and sets request.agentidLineage', async () => {
    const p = plugin()
    const out = await p.run(headers(await lineageFor()))
    expect(out.status).toBe(0)
    expect(out.lineage?.hops).toHaveLength(2)
  })

  it('refuses a body, path or method other than signed, a replay, and a missing or repeated header (403, code and reason)', async () => {
    const p = plugin()
    const l = await lineageFor()
    expect((await p.run(headers(l), { body: { amount: 1_000_000 } })).body?.error).toMatchObject({ code: 'ERR_LINEAGE_MISMATCH', details: { hop: 1, reason: 'arguments' } })
    expect((await p.run(headers(l), { url: '/v1/refunds?currency=EUR' })).body?.error).toMatchObject({ code: 'ERR_LINEAGE_MISMATCH', details: { reason: 'command' } })
    expect((await p.run(headers(l), { url: '/v1/charges?currency=USD' })).body?.error).toMatchObject({ code: 'ERR_LINEAGE_MISMATCH', details: { reason: 'arguments' } })
    expect((await p.run(headers(l), { method: 'PUT' })).body?.error).toMatchObject({ code: 'ERR_LINEAGE_MISMATCH', details: { reason: 'command' } })
    expect((await p.run(headers(l))).status).toBe(0)
    const replay = await p.run(headers(l))
    expect(replay.status).toBe(403)
    expect(replay.body?.error).toMatchObject({ code: 'ERR_REPLAY' })
    const missing = await p.run({})
    expect([missing.status, missing.body?.error.details.reason]).toEqual([403, 'missing'])
    const twice = await p.run({ [LINEAGE_HEADER]: [await lineageFor(), await lineageFor()] })
    expect([twice.status, twice.body?.error.code, twice.body?.error.details.reason]).toEqual([403, 'ERR_MALFORMED', 'repeated-header'])
    const garbage = await p.run({ [LINEAGE_HEADER]: ['<script>'] })
    expect([garbage.status, garbage.body?.error.code]).toEqual([403, 'ERR_MALFORMED'])
  })

  it('does not read a JSON string as the JSON text inside it (a body "{\\"amount\\":100}" is not the body {"amount":100})', async () => {
    // Fastify's JSON parser turns the body "{\"amount\":100}" into the string {"amount":100}; httpArgs takes a
    // string for text and parsed it again, so the hop signed for the object verified for the string.
    const p = plugin()
    const out = await p.run(headers(await lineageFor()), { body: BODY })
    expect([out.status, out.body?.error.code, out.body?.error.details.reason]).toEqual([403, 'ERR_LINEAGE_MISMATCH', 'arguments'])
    // The JSON string the caller did sign verifies; a text body (text/plain) is still its text.
    const quoted = JSON.stringify(BODY)
    expect((await p.run(headers(await lineageFor('POST', URL_, quoted)), { body: BODY })).status).toBe(0)
    expect((await p.run(headers(await lineageFor()), { body: BODY, contentType: 'text/plain; charset=utf-8' })).status).toBe(0)
  })

  it('refuses a path the router reads otherwise than the signed command: dot segments (plain or percent-encoded) and backslashes', async () => {
    // new URL() resolves /v1/refunds/%2e%2e/charges to /v1/charges (the command signed), while Fastify's and
    // Express's routers take the path as sent and run /v1/refunds/:id/charges with id "..".
    const p = plugin()
    for (const url of ['/v1/refunds/%2e%2e/charges?currency=EUR', '/v1/refunds/%2E./charges?currency=EUR', '/v1/refunds/../charges?currency=EUR', '/v1/x/.%2e/charges?currency=EUR', '/v1/./charges?currency=EUR', '/v1\\charges?currency=EUR']) {
      const out = await p.run(headers(await lineageFor()), { url })
      expect([out.status, out.body?.error.code, out.body?.error.details.reason], url).toEqual([403, 'ERR_MALFORMED', 'path'])
    }
    // Dots inside a segment, and encoded slashes (which no resolver turns into segments), are paths like any other.
    for (const path of ['/v1/charges..x', '/v1/.well-known', '/v1/a%2f..%2fb']) {
      const url = `${PAY}${path}`
      const out = await p.run(headers(await lineageFor('POST', url, BODY)), { url: path })
      expect(out.status, path).toBe(0)
    }
  })

  it('answers 401 when an actor\'s credential was not sent and is not known', async () => {
    const out = await plugin().run(headers(await lineageFor(), creds.bob))
    expect([out.status, out.body?.error.code, out.body?.error.details.hop]).toEqual([401, 'ERR_LINEAGE_CREDENTIAL_MISSING', 0])
  })

  it('checks the audience (another service\'s lineage) and self (another callee)', async () => {
    const other = plugin({ lineage: { audience: 'https://other.example' } })
    expect((await other.run(headers(await lineageFor()))).body?.error).toMatchObject({ code: 'ERR_AUDIENCE_MISMATCH' })
    const self = plugin({ lineage: { self: carol.did } })
    expect((await self.run(headers(await lineageFor()))).body?.error).toMatchObject({ code: 'ERR_LINEAGE_MISMATCH', details: { reason: 'callee' } })
  })

  it('passes without a lineage when not required; the DPoP refusal comes first, as a challenge', async () => {
    const optional = plugin({ lineage: { required: false } })
    const out = await optional.run({})
    expect([out.status, out.lineage]).toEqual([0, null])
    dpop = 'refused'
    const refused = await plugin().run(headers(await lineageFor()))
    // The DPoP challenge (401 with its own body), not a lineage refusal; the lineage was not looked at.
    expect(refused.status).toBe(401)
    expect((refused.body as unknown as { error?: { details?: unknown } }).error?.details).toBeUndefined()
    expect(refused.lineage).toBeNull()
  })

  it('refuses a lineage option that is neither true nor an object', () => {
    expect(plugin({ lineage: 'yes' }).failed()).toBeInstanceOf(TypeError)
  })
})

describe('Node middleware: lineage on the body it reads itself', () => {
  async function run(lineage: string, raw: string) {
    const req = Object.assign(Readable.from([Buffer.from(raw)]), {
      method: 'POST', url: '/v1/charges?currency=EUR', socket: {},
      headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(raw)), [LINEAGE_HEADER]: lineage, [CREDENTIALS_HEADER]: `${creds.alice}~${creds.bob}` },
    }) as unknown as Record<string, unknown>
    const res = { statusCode: 0, body: '', setHeader() {}, end(b?: string) { this.body = b ?? '' } }
    const outcome = await new Promise<string>((resolve) => {
      agentidMiddleware(verifier, { origin: PAY, lineage: true })(req as never, res as never, (e?: unknown) => resolve(e === undefined ? 'next' : 'error'))
      const poll = setInterval(() => { if (res.statusCode !== 0) { clearInterval(poll); resolve('refused') } }, 5)
    })
    return { outcome, status: res.statusCode, error: res.body ? (JSON.parse(res.body) as { error: { code: string; details: { reason: string } } }).error : undefined, body: req.body }
  }

  it('verifies the bytes received: a JSON string holding the signed JSON text is refused, the signed body passes and req.body is its value', async () => {
    const smuggled = await run(await lineageFor(), JSON.stringify(BODY))
    expect([smuggled.status, smuggled.error?.code, smuggled.error?.details.reason]).toEqual([403, 'ERR_LINEAGE_MISMATCH', 'arguments'])
    const ok = await run(await lineageFor(), BODY)
    expect(ok.outcome).toBe('next')
    expect(ok.body).toEqual(JSON.parse(BODY))
  })
})

describe('fetch adapter: verifyFetchLineage and lineageErrorResponse', () => {
  const request = (lineage: string | undefined, { method = 'POST', url = URL_, body = BODY as string | undefined, credentials = `${creds.alice}~${creds.bob}` } = {}) => {
    const h = new Headers()
    if (lineage !== undefined) h.set(LINEAGE_HEADER, lineage)
    h.set(CREDENTIALS_HEADER, credentials)
    return new Request(url, { method, headers: h, ...(body === undefined ? {} : { body }) })
  }
  const refusal = async (r: Request, lineage = {}) => {
    const error = await verifyFetchLineage(verifier, r, { audience: PAY }, lineage).then(() => undefined, (e: unknown) => e)
    const response = lineageErrorResponse(error)
    return { error, response, body: response ? ((await response.json()) as { error: { code: string; details: { reason: unknown } } }) : undefined }
  }

  it('verifies against the body bytes, which stay readable for the handler', async () => {
    const r = request(await lineageFor())
    const { lineage } = await verifyFetchLineage(verifier, r, { audience: PAY })
    expect(lineage?.last.command).toBe('POST /v1/charges')
    expect(await r.text()).toBe(BODY)
  })

  it('refuses other bytes than signed (a JSON body with the same value but other spacing is the same arguments)', async () => {
    const spaced = request(await lineageFor(), { body: '{ "amount": 100 }' })
    expect((await verifyFetchLineage(verifier, spaced, { audience: PAY })).lineage).not.toBeNull()
    const changed = await refusal(request(await lineageFor(), { body: '{"amount":100,"amount":1}' }))
    expect(changed.response?.status).toBe(403)
    const other = await refusal(request(await lineageFor(), { body: '{"amount":101}' }))
    expect([other.response?.status, other.body?.error.code, other.body?.error.details.reason]).toEqual([403, 'ERR_LINEAGE_MISMATCH', 'arguments'])
  })

  it('answers 401 for a missing credential, 403 for a missing lineage, null when not required', async () => {
    const missing = await refusal(request(await lineageFor(), { credentials: creds.bob }))
    expect([missing.response?.status, missing.body?.error.code]).toEqual([401, 'ERR_LINEAGE_CREDENTIAL_MISSING'])
    const none = await refusal(request(undefined))
    expect([none.response?.status, none.body?.error.details.reason]).toEqual([403, 'missing'])
    expect((await verifyFetchLineage(verifier, request(undefined), { audience: PAY }, { required: false })).lineage).toBeNull()
    const oversized = await refusal(request(`${await lineageFor()}~${'A'.repeat(20_000)}`))
    expect([oversized.response?.status, oversized.body?.error.details.reason]).toEqual([403, 'too-large'])
  })

  it('leaves a DPoP refusal to dpopErrorResponse (lineageErrorResponse answers only for the lineage stage)', async () => {
    dpop = 'refused'
    const { error, response } = await refusal(request(await lineageFor()))
    expect(response).toBeUndefined()
    expect(dpopErrorResponse(error)?.status).toBe(401)
    expect(lineageErrorResponse(new VerificationError('ERR_LINEAGE_BROKEN', 'not from verifyFetchLineage'))).toBeUndefined()
    expect(lineageErrorResponse('nope')).toBeUndefined()
  })
})
