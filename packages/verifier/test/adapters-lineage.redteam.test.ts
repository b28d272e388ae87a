// Red team of the adapters' lineage step: a request whose method no hop can name (httpCommand refuses it)
// is a refusal of its lineage, not an internal error. The DPoP step is stubbed as in adapters-lineage.test.ts.
import { signerFromJwk, StatusList } from '@agentid/core'
import { appendHop, CREDENTIALS_HEADER, httpArgs, LINEAGE_HEADER } from '@agentid/lineage'
import { agentidMiddleware, createVerifier, lineageErrorResponse, verifyFetchLineage, type Verifier } from '@agentid/verifier'
import { Readable } from 'node:stream'
import { beforeEach, describe, expect, it } from 'vitest'
import { alice, bob, credential, issuer, LIST_URL, statusListJwt, statusServer, testClock } from './fixtures.js'

const PAY = 'https://pay.example'
const URL_ = `${PAY}/v1/charges`
const BODY = '{"amount":100}'

let verifier: Verifier
let creds: { alice: string; bob: string }
let lineage: string

beforeEach(async () => {
  const clock = testClock()
  const real = createVerifier({ trustedIssuers: [issuer.did], fetch: statusServer({ [LIST_URL]: await statusListJwt(StatusList.create()) }), clock })
  // The DPoP check passes for any method (a proof's htm is whatever method the agent used).
  verifier = Object.freeze({ ...real, verifyRequest: async () => ({ agent: { did: bob.did } }) as never })
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
