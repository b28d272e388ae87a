import { createHash } from 'node:crypto'
import { AgentIdError, decodeJwt, jwkThumbprint, publicKeyFromJwk, verifyJwsSignature } from '@agentid/core'
import {
  createAgentFetch,
  createExchangeSigner,
  exchangeToken,
  generateAgentKey,
  JWT_BEARER_ASSERTION_TYPE,
  TokenRequestError,
  type ExchangeSigner,
  type ExchangeSigningRequest,
  type FetchFunction,
} from '@agentid/client'
import { describe, expect, it } from 'vitest'

const ISSUER = 'https://issuer.example'
const TOKEN_URL = `${ISSUER}/v1/token`
const RESOURCE = 'https://erp.example/mcp'
const T = 1_800_000_000
/** The user's token as the orchestrator holds it (opaque here: only the issuer reads it). */
const USER_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.user-token-signature'
const DETAILS = [{ type: 'agentid_action', actions: ['invoke'], locations: ['mcp://erp/tools/invoices.read'] }]

interface Seen { url: string; method: string; headers: Headers; body: string }

function fakeNetwork(handle: (req: Seen, index: number) => Response) {
  const seen: Seen[] = []
  const fetch: FetchFunction = async (input, init) => {
    const req = { url: String(input), method: init?.method ?? 'GET', headers: new Headers(init?.headers), body: typeof init?.body === 'string' ? init.body : '' }
    seen.push(req)
    return handle(req, seen.length - 1)
  }
  return { fetch, seen }
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } })
const exchanged = (token: string, extra: Record<string, unknown> = {}) =>
  json(200, { access_token: token, issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'DPoP', expires_in: 120, authorization_details: DETAILS, ...extra }, { 'dpop-nonce': 'n-issuer-2' })
const nonceChallenge = () => json(400, { error: 'use_dpop_nonce', error_description: 'nonce' }, { 'dpop-nonce': 'n-issuer-1' })

/** The agent's exchange signer as the orchestrator reaches it: every request it is asked to sign is recorded. */
function recordedAgent(privateJwk = generateAgentKey().privateJwk) {
  const inner = createExchangeSigner({ privateJwk, issuerUrl: ISSUER, clock: () => T * 1000 })
  const requests: ExchangeSigningRequest[] = []
  const agent: ExchangeSigner = { did: inner.did, sign: (r) => { requests.push(structuredClone(r)); return inner.sign(r) } }
  return { agent, requests }
}

describe('exchangeToken (the orchestrator side of RFC 8693)', () => {
  const key = generateAgentKey()
  const jwk = key.publicJwk

  it('sends exactly the RFC 8693 form with the agent\'s JWTs, retries use_dpop_nonce with a fresh proof, and returns the token', async () => {
    const { agent, requests } = recordedAgent(key.privateJwk)
    const net = fakeNetwork((_req, i) => (i === 0 ? nonceChallenge() : exchanged('agent-token-1')))
    const result = await exchangeToken({ issuerUrl: `${ISSUER}/`, subjectToken: USER_TOKEN, agent, resource: RESOURCE, authorizationDetails: DETAILS, fetch: net.fetch })

    expect(net.seen.map((s) => [s.method, s.url])).toEqual([['POST', TOKEN_URL], ['POST', TOKEN_URL]])
    const jtis = new Set<unknown>()
    for (const [i, req] of net.seen.entries()) {
      expect(req.headers.get('content-type')).toBe('application/x-www-form-urlencoded')
      const form = new URLSearchParams(req.body)
      expect([...form.keys()].sort()).toEqual([
        'actor_token', 'actor_token_type', 'authorization_details', 'client_assertion', 'client_assertion_type', 'client_id',
        'grant_type', 'resource', 'subject_token', 'subject_token_type',
      ])
      expect(form.get('grant_type')).toBe('urn:ietf:params:oauth:grant-type:token-exchange')
      expect(form.get('subject_token')).toBe(USER_TOKEN)
      expect(form.get('subject_token_type')).toBe('urn:ietf:params:oauth:token-type:access_token')
      expect(form.get('actor_token_type')).toBe('urn:ietf:params:oauth:token-type:jwt')
      expect(form.get('client_assertion_type')).toBe(JWT_BEARER_ASSERTION_TYPE)
      expect(form.get('client_id')).toBe(key.did)
      expect(form.get('resource')).toBe(RESOURCE)
      expect(JSON.parse(form.get('authorization_details')!)).toEqual(DETAILS)
      for (const name of ['client_assertion', 'actor_token']) {
        const jwt = decodeJwt(form.get(name)!)
        verifyJwsSignature(jwt, publicKeyFromJwk(jwk))
        expect(jwt.payload).toMatchObject({ iss: key.did, sub: key.did, aud: TOKEN_URL, iat: T, exp: T + 60 })
        jtis.add(jwt.payload.jti)
      }
      const proof = decodeJwt(req.headers.get('dpop')!)
      expect(proof.header.jwk).toEqual(jwk)
      verifyJwsSignature(proof, publicKeyFromJwk(jwk))
      expect(proof.payload).toMatchObject({ htm: 'POST', htu: TOKEN_URL })
      expect(proof.payload.ath).toBeUndefined()
      expect(proof.payload.nonce).toBe(i === 0 ? undefined : 'n-issuer-1')
    }
    // Four JWTs, four jtis: the retry signs everything afresh.
    expect(jtis.size).toBe(4)

    expect(result).toEqual({
      accessToken: 'agent-token-1',
      tokenType: 'DPoP',
      issuedTokenType: 'urn:ietf:params:oauth:token-type:access_token',
      expiresIn: 120,
      authorizationDetails: DETAILS,
      dpopJkt: jwkThumbprint(jwk),
      dpopNonce: 'n-issuer-2',
    })
    // What the agent was asked to sign names the token endpoint and the nonce, never the user's token.
    expect(requests).toEqual([
      { type: 'client_assertion', audience: TOKEN_URL },
      { type: 'actor_token', audience: TOKEN_URL },
      { type: 'dpop', htm: 'POST', htu: TOKEN_URL },
      { type: 'client_assertion', audience: TOKEN_URL },
      { type: 'actor_token', audience: TOKEN_URL },
      { type: 'dpop', htm: 'POST', htu: TOKEN_URL, nonce: 'n-issuer-1' },
    ])
    expect(JSON.stringify(requests)).not.toContain(USER_TOKEN.split('.')[1])
  })

  it('uses a nonce it already has (one round trip), a token endpoint URL, the subject token type and a delegation chain', async () => {
    const { agent, requests } = recordedAgent()
    const net = fakeNetwork(() => exchanged('agent-token-2'))
    const chain = ['eyJhbGciOiJFZERTQSJ9.cm9vdA.c2ln', 'eyJhbGciOiJFZERTQSJ9.bGVhZg.c2ln']
    const result = await exchangeToken({
      tokenEndpoint: TOKEN_URL, subjectToken: USER_TOKEN, subjectTokenType: 'urn:ietf:params:oauth:token-type:id_token',
      agent, resource: RESOURCE, delegationChain: chain, dpopNonce: 'n-known', fetch: net.fetch,
    })
    expect(net.seen).toHaveLength(1)
    const form = new URLSearchParams(net.seen[0]!.body)
    expect(form.get('subject_token_type')).toBe('urn:ietf:params:oauth:token-type:id_token')
    expect(JSON.parse(form.get('agentid_delegation')!)).toEqual(chain)
    expect(form.has('authorization_details')).toBe(false)
    expect(decodeJwt(net.seen[0]!.headers.get('dpop')!).payload.nonce).toBe('n-known')
    expect(requests[2]).toEqual({ type: 'dpop', htm: 'POST', htu: TOKEN_URL, nonce: 'n-known' })
    expect(result.accessToken).toBe('agent-token-2')
  })

  it('maps RFC 6749 error bodies to TokenRequestError with the OAuth error code and the status', async () => {
    const cases: [Response, string, number][] = [
      [json(400, { error: 'invalid_request', error_description: 'subject_token: has expired' }), 'invalid_request', 400],
      [json(401, { error: 'invalid_client' }), 'invalid_client', 401],
      [json(400, { error: 'invalid_authorization_details' }), 'invalid_authorization_details', 400],
      [json(400, { error: 'unsupported_grant_type' }), 'unsupported_grant_type', 400],
      [new Response('<html>bad gateway</html>', { status: 502 }), 'invalid_response', 502],
      [json(200, { access_token: 't', token_type: 'Bearer', issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', expires_in: 60 }), 'invalid_response', 200],
      [json(200, { access_token: 't', token_type: 'DPoP', expires_in: 60 }), 'invalid_response', 200],
      [json(200, { access_token: 't', token_type: 'DPoP', issued_token_type: 'urn:ietf:params:oauth:token-type:access_token' }), 'invalid_response', 200],
      [json(200, { access_token: 't', token_type: 'DPoP', issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', expires_in: 60, authorization_details: 'all' }), 'invalid_response', 200],
      [json(200, { token_type: 'DPoP' }), 'invalid_response', 200],
    ]
    for (const [response, error, status] of cases) {
      const net = fakeNetwork(() => response)
      const thrown = await exchangeToken({ issuerUrl: ISSUER, subjectToken: USER_TOKEN, agent: recordedAgent().agent, resource: RESOURCE, fetch: net.fetch }).catch((e: unknown) => e)
      expect(thrown, error).toBeInstanceOf(TokenRequestError)
      expect(thrown).toMatchObject({ error, status })
      expect(net.seen).toHaveLength(1)
    }
    // use_dpop_nonce is retried once only.
    const loop = fakeNetwork(() => nonceChallenge())
    const thrown = await exchangeToken({ issuerUrl: ISSUER, subjectToken: USER_TOKEN, agent: recordedAgent().agent, resource: RESOURCE, fetch: loop.fetch }).catch((e: unknown) => e)
    expect(thrown).toMatchObject({ error: 'use_dpop_nonce', status: 400 })
    expect(loop.seen).toHaveLength(2)
  })

  it('refuses an agent whose DPoP proof is not its own key (the token would be bound to another key)', async () => {
    const { agent } = recordedAgent()
    const other = createExchangeSigner({ privateJwk: generateAgentKey().privateJwk, issuerUrl: ISSUER })
    const mixed: ExchangeSigner = { did: agent.did, sign: (r) => (r.type === 'dpop' ? other.sign(r) : agent.sign(r)) }
    const net = fakeNetwork(() => exchanged('never'))
    const thrown = await exchangeToken({ issuerUrl: ISSUER, subjectToken: USER_TOKEN, agent: mixed, resource: RESOURCE, fetch: net.fetch }).catch((e: unknown) => e)
    expect(thrown).toBeInstanceOf(AgentIdError)
    expect((thrown as AgentIdError).code).toBe('ERR_KEY_MISMATCH')
    expect(net.seen).toHaveLength(0)
    // A signer for another issuer refuses the orchestrator: nothing is sent either.
    const elsewhere = createExchangeSigner({ privateJwk: generateAgentKey().privateJwk, issuerUrl: 'https://other.example' })
    const refused = await exchangeToken({ issuerUrl: ISSUER, subjectToken: USER_TOKEN, agent: elsewhere, resource: RESOURCE, fetch: net.fetch }).catch((e: unknown) => e)
    expect((refused as AgentIdError).code).toBe('ERR_FORBIDDEN')
    // A signer that answers with something other than a JWT.
    const broken: ExchangeSigner = { did: agent.did, sign: async (r) => (r.type === 'actor_token' ? (undefined as unknown as string) : agent.sign(r)) }
    const empty = await exchangeToken({ issuerUrl: ISSUER, subjectToken: USER_TOKEN, agent: broken, resource: RESOURCE, fetch: net.fetch }).catch((e: unknown) => e)
    expect((empty as AgentIdError).code).toBe('ERR_INVALID_INPUT')
    expect(net.seen).toHaveLength(0)
  })

  it('is misused without an endpoint, a subject token, a resource or a did:key agent', async () => {
    const { agent } = recordedAgent()
    const base = { subjectToken: USER_TOKEN, agent, resource: RESOURCE, fetch: fakeNetwork(() => exchanged('t')).fetch }
    await expect(exchangeToken({ ...base })).rejects.toThrow(TypeError)
    await expect(exchangeToken({ ...base, issuerUrl: ISSUER, tokenEndpoint: TOKEN_URL })).rejects.toThrow(TypeError)
    await expect(exchangeToken({ ...base, issuerUrl: ISSUER, subjectToken: '' })).rejects.toThrow(TypeError)
    await expect(exchangeToken({ ...base, issuerUrl: ISSUER, resource: '' })).rejects.toThrow(TypeError)
    await expect(exchangeToken({ ...base, issuerUrl: ISSUER, agent: { did: 'did:web:x.example', sign: agent.sign } })).rejects.toThrow(TypeError)
  })

  it('hands the agent a token its own fetch uses with its own proofs; the agent never holds the user\'s token', async () => {
    const agentKey = generateAgentKey()
    const { agent, requests } = recordedAgent(agentKey.privateJwk)
    let n = 0
    const issuerNet = fakeNetwork(() => exchanged(`agent-token-${++n}`))
    // The orchestrator: the user's token stays in this closure.
    const orchestrator = { tokenFor: () => exchangeToken({ issuerUrl: ISSUER, subjectToken: USER_TOKEN, agent, resource: RESOURCE, authorizationDetails: DETAILS, fetch: issuerNet.fetch }) }
    // The agent: what its token source gives it is recorded.
    const given: unknown[] = []
    const rs = fakeNetwork(() => json(200, { ok: true }))
    const agentFetch = createAgentFetch({ privateJwk: agentKey.privateJwk, token: async () => { const t = await orchestrator.tokenFor(); given.push(t); return t }, fetch: rs.fetch, clock: () => T * 1000 })
    expect((await agentFetch(`${RESOURCE}/tools`)).status).toBe(200)
    const proof = decodeJwt(rs.seen[0]!.headers.get('dpop')!)
    verifyJwsSignature(proof, publicKeyFromJwk(agentKey.publicJwk))
    expect(proof.payload).toMatchObject({ htm: 'GET', htu: `${RESOURCE}/tools`, ath: createHash('sha256').update('agent-token-1').digest('base64url') })
    expect(rs.seen[0]!.headers.get('authorization')).toBe('DPoP agent-token-1')
    // The user's token went to the issuer only.
    expect(issuerNet.seen.every((s) => new URLSearchParams(s.body).get('subject_token') === USER_TOKEN)).toBe(true)
    for (const seenByAgent of [JSON.stringify(given), JSON.stringify(requests), JSON.stringify(rs.seen.map((s) => [s.url, [...s.headers], s.body]))]) {
      expect(seenByAgent).not.toContain(USER_TOKEN)
      expect(seenByAgent).not.toContain(USER_TOKEN.split('.')[1])
    }
  })
})
