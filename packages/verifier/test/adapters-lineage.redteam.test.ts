// Red team of the adapters' lineage step: a request whose method no hop can name (httpCommand refuses it)
// is a refusal of its lineage, not an internal error. The DPoP step is stubbed as in adapters-lineage.test.ts.
import { signerFromJwk, StatusList } from '@agentid/core'
import { appendHop, CREDENTIALS_HEADER, httpArgs, httpCommand, LINEAGE_HEADER } from '@agentid/lineage'
import { agentidFastify, agentidMiddleware, createVerifier, lineageErrorResponse, verifyFetchLineage, type FastifyLike, type Verifier } from '@agentid/verifier'
import { Readable } from 'node:stream'
import { beforeEach, describe, expect, it } from 'vitest'
import { alice, bob, credential, issuer, LIST_URL, mallory, statusListJwt, statusServer, testClock } from './fixtures.js'

const PAY = 'https://pay.example'
const URL_ = `${PAY}/v1/charges`
const BODY = '{"amount":100}'

let verifier: Verifier
let creds: { alice: string; bob: string }
let lineage: string
let clock: ReturnType<typeof testClock>
let caller: string
let user: string | null

beforeEach(async () => {
  clock = testClock()
  const real = createVerifier({ trustedIssuers: [issuer.did], fetch: statusServer({ [LIST_URL]: await statusListJwt(StatusList.create()) }), clock })
  // The DPoP check passes for any method (a proof's htm is whatever method the agent used), for the agent `caller`.
  caller = bob.did
  user = null
  verifier = Object.freeze({ ...real, verifyRequest: async () => ({ agent: caller, user, audience: PAY }) as never })
  creds = { alice: await credential({ sub: alice.did, index: '1' }), bob: await credential({ sub: bob.did, index: '2' }) }
  const l0 = await appendHop(undefined, { signer: signerFromJwk(alice.privateJwk), credential: creds.alice, clock, target: 'https://b.example', callee: bob.did, command: 'POST /plan', args: {} })
  lineage = await appendHop(l0, { signer: signerFromJwk(bob.privateJwk), credential: creds.bob, clock, target: PAY, command: 'POST /v1/charges', args: httpArgs(URL_, BODY) })
})

describe('adapters red team: a method no hop can name', () => {
  it('fetch adapter: M-SEARCH (a valid HTTP token that httpCommand refuses) is a 403 lineage refusal, not an error left to a 500', async () => {
    const request = new Request(URL_, { method: 'M-SEARCH', headers: { [LINEAGE_HEADER]: lineage, [CREDENTIALS_HEADER]: `${creds.alice}~${creds.bob}` }, body: BODY })
    const error = await verifyFetchLineage(verifier, request, { audience: PAY }).then(() => undefined, (e: unknown) => e)
    const response = lineageErrorResponse(error)
    expect(response?.status).toBe(403)
    expect(((await response!.json()) as { error: unknown }).error).toMatchObject({ code: 'ERR_MALFORMED', details: { hop: null, reason: 'method' } })
  })

  it('Node middleware: the same request is answered 403, not passed to next(error)', async () => {
    const req = Object.assign(Readable.from([Buffer.from(BODY)]), {
      method: 'M-SEARCH', url: '/v1/charges', socket: {},
      headers: { 'content-type': 'application/json', 'content-length': String(BODY.length), [LINEAGE_HEADER]: lineage, [CREDENTIALS_HEADER]: `${creds.alice}~${creds.bob}` },
    })
    const res = { statusCode: 0, body: '', setHeader() {}, end(b?: string) { this.body = b ?? '' } }
    const outcome = await new Promise<string>((resolve) => {
      agentidMiddleware(verifier, { origin: PAY, lineage: true })(req as never, res as never, (e?: unknown) => resolve(e === undefined ? 'next' : 'error'))
      const poll = setInterval(() => { if (res.statusCode !== 0) { clearInterval(poll); resolve('refused') } }, 5)
    })
    expect(outcome).toBe('refused')
    expect(res.statusCode).toBe(403)
    expect(JSON.parse(res.body).error).toMatchObject({ code: 'ERR_MALFORMED', details: { hop: null, reason: 'method' } })
  })

  it('fetch adapter: an empty item in Agentid-Credentials (a~~b) verifies as without it, not a TypeError left to a 500', async () => {
    const request = new Request(URL_, { method: 'POST', headers: { [LINEAGE_HEADER]: lineage, [CREDENTIALS_HEADER]: `${creds.alice}~~${creds.bob}` }, body: BODY })
    const { lineage: verified } = await verifyFetchLineage(verifier, request, { audience: PAY })
    expect(verified?.hops).toHaveLength(2)
  })
})

describe('adapters red team: one route, two commands', () => {
  // Fastify's router (find-my-way, as Hono's) decodes a path before matching: /v1/ch%61rges and /v1/%63harges
  // run the /v1/charges route, while a hop's command is the path as new URL() leaves it ('POST /v1/ch%61rges').
  // A hop signed for such a path verified for the call, and the route ran under a command no policy, approval
  // predicate or lineage check written for 'POST /v1/charges' recognizes.
  async function fastifyRun(path: string): Promise<{ status: number; reason: unknown }> {
    let hook: Parameters<FastifyLike['addHook']>[1] | undefined
    agentidFastify({ decorateRequest: () => undefined, addHook: (_n, h) => { hook = h } }, { verifier, origin: PAY, lineage: true } as never, () => undefined)
    const url = `${PAY}${path}`
    const l0 = await appendHop(undefined, { signer: signerFromJwk(alice.privateJwk), credential: creds.alice, clock, target: 'https://b.example', callee: bob.did, command: 'POST /plan', args: {} })
    const signed = await appendHop(l0, { signer: signerFromJwk(bob.privateJwk), credential: creds.bob, clock, target: PAY, command: httpCommand('POST', url), args: httpArgs(url, BODY) })
    const headers = { 'content-type': ['application/json'], [LINEAGE_HEADER]: [signed], [CREDENTIALS_HEADER]: [`${creds.alice}~${creds.bob}`] }
    const request = { method: 'POST', url: path, headers: { 'content-type': 'application/json' }, raw: { headersDistinct: headers }, body: JSON.parse(BODY) as unknown, agentid: null, agentidLineage: null }
    const reply = { status: 0, body: undefined as unknown, code(s: number) { this.status = s; return this }, header() { return this }, send(b: unknown) { this.body = b; return this } }
    await hook!(request as never, reply as never)
    return { status: reply.status, reason: (reply.body as { error?: { details?: { reason?: unknown } } } | undefined)?.error?.details?.reason }
  }

  it('refuses a path with a percent-encoded unreserved character (a letter, digit, - . _ ~): 403, reason path', async () => {
    for (const path of ['/v1/ch%61rges', '/v1/%63harges', '/v1/ch%6frges', '/v1/charges%2Ejson', '/v1/a%7Eb', '/v1/a%2db', '/v1/a%5Fb', '/v1/a%31', '/v1/%41']) {
      expect(await fastifyRun(path), path).toEqual({ status: 403, reason: 'path' })
    }
  })

  it('passes the escapes clients write (new URL(), encodeURIComponent): of reserved, non-ASCII and other characters', async () => {
    for (const path of ['/v1/charges', '/v1/a%20b', '/v1/caf%C3%A9', '/v1/a%2Fb', '/v1/a%25b', '/v1/a%3Fb', '/v1/a%23b', '/v1/a%22b%3C%3E%60%7B%7D', '/v1/a%5Cb', `/v1/users/${encodeURIComponent('ann+1@x.example:8;a=b,c&$')}`]) {
      expect(await fastifyRun(path), path).toEqual({ status: 0, reason: undefined })
    }
  })
})

describe('adapters red team: whose call the lineage is', () => {
  // The MCP guard refuses a lineage whose last hop another agent than the authenticated caller signed; the
  // HTTP adapters verified it for any caller: mallory, authenticated with her own token, sent bob's call
  // (its lineage taken from a proxy, a log or a redirect) before bob did, and the service acted on a call
  // whose lineage says bob made it (req.agentid says mallory), while bob's own call was then a replay.
  const request = (lineageValue: string) => new Request(URL_, { method: 'POST', headers: { [LINEAGE_HEADER]: lineageValue, [CREDENTIALS_HEADER]: `${creds.alice}~${creds.bob}` }, body: BODY })

  it('fetch adapter: refuses (403 ERR_LINEAGE_MISMATCH, the last hop, reason caller) without spending the hop; its signer\'s own call then passes', async () => {
    caller = mallory.did
    const error = await verifyFetchLineage(verifier, request(lineage), { audience: PAY }).then(() => undefined, (e: unknown) => e)
    const response = lineageErrorResponse(error)
    expect(response?.status).toBe(403)
    expect(((await response!.json()) as { error: unknown }).error).toMatchObject({ code: 'ERR_LINEAGE_MISMATCH', details: { hop: 1, reason: 'caller' } })
    caller = bob.did
    expect((await verifyFetchLineage(verifier, request(lineage), { audience: PAY })).lineage?.last.actor.did).toBe(bob.did)
  })

  it('Fastify plugin and Node middleware: the same refusal', async () => {
    caller = mallory.did
    let hook: Parameters<FastifyLike['addHook']>[1] | undefined
    agentidFastify({ decorateRequest: () => undefined, addHook: (_n, h) => { hook = h } }, { verifier, origin: PAY, lineage: true } as never, () => undefined)
    const headers = { 'content-type': ['application/json'], [LINEAGE_HEADER]: [lineage], [CREDENTIALS_HEADER]: [`${creds.alice}~${creds.bob}`] }
    const fastifyRequest = { method: 'POST', url: '/v1/charges', headers: { 'content-type': 'application/json' }, raw: { headersDistinct: headers }, body: JSON.parse(BODY) as unknown, agentid: null, agentidLineage: null }
    const reply = { status: 0, body: undefined as unknown, code(s: number) { this.status = s; return this }, header() { return this }, send(b: unknown) { this.body = b; return this } }
    await hook!(fastifyRequest as never, reply as never)
    expect([reply.status, (reply.body as { error: { code: string; details: unknown } }).error]).toMatchObject([403, { code: 'ERR_LINEAGE_MISMATCH', details: { hop: 1, reason: 'caller' } }])
    const req = Object.assign(Readable.from([Buffer.from(BODY)]), {
      method: 'POST', url: '/v1/charges', socket: {},
      headers: { 'content-type': 'application/json', 'content-length': String(BODY.length), [LINEAGE_HEADER]: lineage, [CREDENTIALS_HEADER]: `${creds.alice}~${creds.bob}` },
    })
    const res = { statusCode: 0, body: '', setHeader() {}, end(b?: string) { this.body = b ?? '' } }
    await new Promise<void>((resolve) => {
      agentidMiddleware(verifier, { origin: PAY, lineage: true })(req as never, res as never, () => resolve())
      const poll = setInterval(() => { if (res.statusCode !== 0) { clearInterval(poll); resolve() } }, 5)
    })
    expect([res.statusCode, JSON.parse(res.body).error]).toMatchObject([403, { code: 'ERR_LINEAGE_MISMATCH', details: { hop: 1, reason: 'caller' } }])
  })
})

describe('adapters red team: for whom', () => {
  // The MCP guard refuses a lineage whose hops name another user than the caller's token (token exchange);
  // the HTTP adapters took both: req.agentid.user one user, req.agentidLineage.user another.
  async function forUser(tokenUser: string | null, lineageUser: string | undefined) {
    user = tokenUser
    const l0 = await appendHop(undefined, { signer: signerFromJwk(alice.privateJwk), credential: creds.alice, clock, target: 'https://b.example', callee: bob.did, command: 'POST /plan', args: {}, ...(lineageUser === undefined ? {} : { user: lineageUser }) })
    const l1 = await appendHop(l0, { signer: signerFromJwk(bob.privateJwk), credential: creds.bob, clock, target: PAY, command: 'POST /v1/charges', args: httpArgs(URL_, BODY) })
    const request = new Request(URL_, { method: 'POST', headers: { [LINEAGE_HEADER]: l1, [CREDENTIALS_HEADER]: `${creds.alice}~${creds.bob}` }, body: BODY })
    const error = await verifyFetchLineage(verifier, request, { audience: PAY }).then(() => undefined, (e: unknown) => e)
    if (error === undefined) return 'accepted'
    const response = lineageErrorResponse(error)
    return [response?.status, ((await response?.json()) as { error: unknown } | undefined)?.error]
  }

  it('refuses hops naming another user than the access token (403 ERR_LINEAGE_MISMATCH, reason user); the same user, or either unnamed, passes', async () => {
    expect(await forUser('user-9', 'user-1')).toMatchObject([403, { code: 'ERR_LINEAGE_MISMATCH', details: { hop: null, reason: 'user' } }])
    expect(await forUser('user-1', 'user-1')).toBe('accepted')
    expect(await forUser(null, 'user-1')).toBe('accepted')
    expect(await forUser('user-1', undefined)).toBe('accepted')
  })
})

describe('adapters red team: a body no parser read', () => {
  // Express 4's body-parser (1.x) sets req.body = {} on every request, then skips a body of another media
  // type without reading it: the Node middleware took that {} for the parsed body, so a hop signed for the
  // body {} verified for a request carrying other, unsigned bytes (a route's own text parser then read them).
  async function run(signedBody: string, sent: string, contentType: string) {
    const url = `${PAY}/v1/charges`
    const l0 = await appendHop(undefined, { signer: signerFromJwk(alice.privateJwk), credential: creds.alice, clock, target: 'https://b.example', callee: bob.did, command: 'POST /plan', args: {} })
    const signed = await appendHop(l0, { signer: signerFromJwk(bob.privateJwk), credential: creds.bob, clock, target: PAY, command: 'POST /v1/charges', args: httpArgs(url, signedBody) })
    const req = Object.assign(Readable.from([Buffer.from(sent)]), {
      method: 'POST', url: '/v1/charges', socket: {}, body: {},
      headers: { 'content-type': contentType, 'content-length': String(Buffer.byteLength(sent)), [LINEAGE_HEADER]: signed, [CREDENTIALS_HEADER]: `${creds.alice}~${creds.bob}` },
    })
    const res = { statusCode: 0, body: '', setHeader() {}, end(b?: string) { this.body = b ?? '' } }
    const outcome = await new Promise<string>((resolve) => {
      agentidMiddleware(verifier, { origin: PAY, lineage: true })(req as never, res as never, (e?: unknown) => resolve(e === undefined ? 'next' : 'error'))
      const poll = setInterval(() => { if (res.statusCode !== 0) { clearInterval(poll); resolve('refused') } }, 5)
    })
    return outcome === 'refused' ? [res.statusCode, JSON.parse(res.body).error.details.reason] : outcome
  }

  it('digests the bytes of a body left unread under a placeholder req.body: the signed bytes pass, others are refused', async () => {
    expect(await run('{}', 'amount=1000000', 'text/plain')).toEqual([403, 'arguments'])
    expect(await run('amount=1000000', 'amount=1000000', 'text/plain')).toBe('next')
  })

  it('a GET without a body under that placeholder is a call without a body (as its hop was signed)', async () => {
    const url = `${PAY}/v1/charges?id=7`
    const l0 = await appendHop(undefined, { signer: signerFromJwk(alice.privateJwk), credential: creds.alice, clock, target: 'https://b.example', callee: bob.did, command: 'POST /plan', args: {} })
    const signed = await appendHop(l0, { signer: signerFromJwk(bob.privateJwk), credential: creds.bob, clock, target: PAY, command: 'GET /v1/charges', args: httpArgs(url) })
    const req = Object.assign(Readable.from([]), { method: 'GET', url: '/v1/charges?id=7', socket: {}, body: {}, headers: { [LINEAGE_HEADER]: signed, [CREDENTIALS_HEADER]: `${creds.alice}~${creds.bob}` } })
    const res = { statusCode: 0, body: '', setHeader() {}, end(b?: string) { this.body = b ?? '' } }
    const outcome = await new Promise<string>((resolve) => {
      agentidMiddleware(verifier, { origin: PAY, lineage: true })(req as never, res as never, (e?: unknown) => resolve(e === undefined ? 'next' : 'error'))
      const poll = setInterval(() => { if (res.statusCode !== 0) { clearInterval(poll); resolve(`refused ${res.body}`) } }, 5)
    })
    expect(outcome).toBe('next')
  })
})


describe('adapters red team: the fetch adapter reads a bounded body', () => {
  // It read the whole body (request.clone().arrayBuffer()) before verifying the lineage's arguments: a
  // caller with a valid token could make it hold any amount. The Node middleware stops at maxBodyBytes.
  const headers = () => ({ [LINEAGE_HEADER]: lineage, [CREDENTIALS_HEADER]: `${creds.alice}~${creds.bob}` })
  const refusalOf = async (request: Request, options?: { maxBodyBytes?: number }) => {
    const error = await verifyFetchLineage(verifier, request, { audience: PAY }, options).then(() => undefined, (e: unknown) => e)
    const response = lineageErrorResponse(error)
    return { status: response?.status, error: response ? ((await response.json()) as { error: unknown }).error : error }
  }

  it('an endless streamed body is refused 403 body-too-large after at most maxBodyBytes and a chunk, and the stream is cancelled', async () => {
    let pulled = 0
    let cancelled = false
    const body = new ReadableStream<Uint8Array>({
      pull(controller) { pulled += 65_536; controller.enqueue(new Uint8Array(65_536)) },
      cancel() { cancelled = true },
    })
    const request = new Request(URL_, { method: 'POST', headers: headers(), body, duplex: 'half' } as RequestInit)
    const { status, error } = await refusalOf(request, { maxBodyBytes: 1_000_000 })
    expect(status).toBe(403)
    expect(error).toMatchObject({ code: 'ERR_MALFORMED', details: { hop: null, reason: 'body-too-large' } })
    expect(pulled).toBeLessThan(1_000_000 + 4 * 65_536)
    await new Promise((r) => setTimeout(r, 10))
    expect(cancelled).toBe(true)
  })

  it('a declared Content-Length past the limit is refused before reading; the default limit is 1 MiB', async () => {
    const big = new Request(URL_, { method: 'POST', headers: { ...headers(), 'content-length': String(2 * 1024 * 1024) }, body: 'x'.repeat(2 * 1024 * 1024) })
    expect(await refusalOf(big)).toMatchObject({ status: 403, error: { details: { reason: 'body-too-large' } } })
    // Within the limit the body is the call's arguments, as before: the hop was signed for BODY.
    const { lineage: verified } = await verifyFetchLineage(verifier, new Request(URL_, { method: 'POST', headers: headers(), body: BODY }), { audience: PAY }, { maxBodyBytes: BODY.length })
    expect(verified?.hops).toHaveLength(2)
    expect(await refusalOf(new Request(URL_, { method: 'POST', headers: headers(), body: BODY }), { maxBodyBytes: BODY.length - 1 })).toMatchObject({ status: 403 })
    await expect(verifyFetchLineage(verifier, new Request(URL_, { method: 'POST', headers: headers(), body: BODY }), { audience: PAY }, { maxBodyBytes: -1 })).rejects.toThrow(TypeError)
  })
})
