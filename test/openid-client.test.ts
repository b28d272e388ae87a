// Interop (issue #5 item 4), with parts nobody here wrote: openid-client v6 (panva) is the agent's OAuth
// client against the real issuer process, with its own RFC 8414 discovery, private_key_jwt client
// authentication (the agent's Ed25519 key as a WebCrypto CryptoKey) and DPoP (RFC 9449, its own nonce
// retry); the user's token comes from a real OpenID provider (oidc-provider v9, test/oidc-provider.ts).
// The tokens are checked at a resource server built with @agentid/verifier's middleware.
import { randomUUID, webcrypto } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import * as oidc from 'openid-client'
import { spawn, type Ed25519PrivateJwk } from '@agentid/client'
import { signerFromJwk, signJwt } from '@agentid/core'
import { adminCli, cleanup, claims, freePort, issuerDid, startIssuer, type IssuerProcess } from './harness.js'
import { DEFAULT_RESOURCE_SCOPE, decodeSegment, startOidcProvider, verifyOpJwt, type OidcProviderFixture } from './oidc-provider.js'
import { startResourceServer, type ResourceServer } from './resource-server.js'

const TOOL = 'mcp://erp/tools/invoices.read'
const OTHER_TOOL = 'mcp://erp/tools/invoices.delete'
const RS_NONCE = 'resource-nonce-openid-client'

let issuer: IssuerProcess
/** The trusted OP: RS256 access tokens, keys by jwks_uri. */
let op: OidcProviderFixture
/** Two more trusted OPs: ES256 tokens (keys by jwks_uri) and EdDSA tokens (keys configured inline). */
let opEs: OidcProviderFixture
let opEd: OidcProviderFixture
let server: ResourceServer | undefined
let resource: string
let orchestratorKey: string

interface Agent {
  did: string
  privateJwk: Ed25519PrivateJwk
  /** The agent's key as openid-client wants it (WebCrypto, not extractable). */
  privateKey: webcrypto.CryptoKey
}

async function newAgent(name: string, toolProfile: string[] = [TOOL]): Promise<Agent> {
  const spawned = await spawn({ issuerUrl: issuer.url, apiKey: orchestratorKey, claims: claims(name, { toolProfile }), keyCustody: 'agent' })
  const privateJwk = spawned.privateJwk!
  const privateKey = await webcrypto.subtle.importKey('jwk', { kty: 'OKP', crv: 'Ed25519', x: privateJwk.x, d: privateJwk.d }, { name: 'Ed25519' }, false, ['sign'])
  return { did: spawned.did, privateJwk, privateKey }
}

/** openid-client's view of the agentid issuer for one agent: RFC 8414 discovery, private_key_jwt. */
function configFor(agent: Agent): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(issuer.url), agent.did, {}, oidc.PrivateKeyJwt({ key: agent.privateKey, kid: `${agent.did}#${agent.did.slice('did:key:'.length)}` }), {
    algorithm: 'oauth2',
    execute: [oidc.allowInsecureRequests],
  })
}

/** Runs an openid-client call; an OAuth error response fails the test with its code and description. */
async function granted<T>(call: Promise<T>): Promise<T> {
  try {
    return await call
  } catch (error) {
    if (error instanceof oidc.ResponseBodyError) throw new Error(`token endpoint: ${error.error}: ${error.error_description ?? ''} (HTTP ${error.status})`)
    throw error
  }
}

/** The OAuth error of a refused openid-client call (its RFC 6749 error code and HTTP status). */
async function refusal(call: Promise<unknown>): Promise<{ error: string; status: number }> {
  const error = await call.then(() => undefined, (e: unknown) => e)
  if (error instanceof oidc.ResponseBodyError) return { error: error.error, status: error.status }
  throw new Error(`expected an OAuth error response, got ${error === undefined ? 'success' : String(error)}`)
}

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt'

/**
 * The agent's actor token (contract A): a JWT signed by its did:key, iss = sub = DID, aud = token
 * endpoint. Signed with WebCrypto by the same non-extractable CryptoKey openid-client holds (no agentid
 * code), under alg EdDSA: the actor token is verified by core's EdDSA-only JWT rules (see the report).
 */
async function actorToken(agent: Agent): Promise<string> {
  const iat = Math.floor(Date.now() / 1000)
  const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
  const input = `${enc({ alg: 'EdDSA', typ: 'JWT' })}.${enc({ iss: agent.did, sub: agent.did, aud: `${issuer.url}/v1/token`, iat, exp: iat + 60, jti: randomUUID() })}`
  const signature = await webcrypto.subtle.sign({ name: 'Ed25519' }, agent.privateKey, Buffer.from(input, 'ascii'))
  return `${input}.${Buffer.from(signature).toString('base64url')}`
}

/** RFC 8693 token exchange through openid-client's genericGrantRequest, DPoP by its handle. */
async function exchange(agent: Agent, config: oidc.Configuration, DPoP: oidc.DPoPHandle, subjectToken: string, extra: Record<string, string> = {}) {
  return oidc.genericGrantRequest(config, TOKEN_EXCHANGE, {
    subject_token: subjectToken,
    subject_token_type: ACCESS_TOKEN_TYPE,
    actor_token: await actorToken(agent),
    actor_token_type: JWT_TYPE,
    resource,
    authorization_details: readDetails(),
    ...extra,
  }, { DPoP })
}

interface Recorded { url: string; method: string; headers: Record<string, string>; body: string | undefined; status: number; responseText: string }

/** openid-client's fetch, recording each request and response (for replays and for what the agent received). */
function record(config: oidc.Configuration): Recorded[] {
  const log: Recorded[] = []
  config[oidc.customFetch] = async (url, options) => {
    const response = await fetch(url, options as RequestInit)
    const headers: Record<string, string> = {}
    new Headers(options.headers as ConstructorParameters<typeof Headers>[0]).forEach((v, k) => { headers[k] = v })
    log.push({ url, method: options.method ?? 'GET', headers, body: typeof options.body === 'string' ? options.body : options.body === undefined ? undefined : String(options.body), status: response.status, responseText: await response.clone().text() })
    return response
  }
  return log
}

async function callResource(config: oidc.Configuration, accessToken: string, DPoP: oidc.DPoPHandle, path = '/invoices') {
  const r = await oidc.fetchProtectedResource(config, accessToken, new URL(`${resource}${path}`), 'GET', undefined, undefined, { DPoP })
  return { status: r.status, body: (await r.json()) as { agent: string; user: string | null; userIssuer: string | null; act: { sub: string } | null; details: { locations: string[]; actions: string[] }[]; claims: Record<string, any> } }
}

const readDetails = (tools: string[] = [TOOL]) => JSON.stringify([{ type: 'agentid_action', actions: ['invoke'], locations: tools }])

beforeAll(async () => {
  const port = await freePort()
  const agentidUrl = `http://127.0.0.1:${port}`
  op = await startOidcProvider({ resources: [agentidUrl, 'https://elsewhere.example'] })
  opEs = await startOidcProvider({ resources: [agentidUrl], accessTokenAlg: 'ES256' })
  opEd = await startOidcProvider({ resources: [agentidUrl], accessTokenAlg: 'EdDSA' })
  const inlineJwks = (await (await fetch(opEd.jwksUri)).json()) as { keys: unknown[] }
  const trusted = [op.trustedIdp(), opEs.trustedIdp(), { issuer: opEd.issuer, jwks: inlineJwks }]
  issuer = await startIssuer({ port, env: { AGENTID_TRUSTED_IDPS: JSON.stringify(trusted) } })
  const orch = await adminCli(issuer, ['orchestrators', 'add', 'openid-client', '--json'])
  expect(orch.code, orch.stderr).toBe(0)
  orchestratorKey = orch.json().apiKey

  server = await startResourceServer({ trustedIssuers: [await issuerDid(issuer)], nonce: RS_NONCE })
  resource = server.url
})

afterAll(async () => {
  await server?.close()
  for (const o of [op, opEs, opEd]) await o?.close()
  await cleanup()
})

describe('the OpenID provider fixture (oidc-provider)', () => {
  it('issues a user a JWT access token for the agentid issuer, signed by keys at its jwks_uri', async () => {
    const user = op.accounts[0]!
    const token = await op.userAccessToken({ user: user.sub })
    expect(token.header.typ).toBe('at+jwt')
    const payload = await verifyOpJwt(token.accessToken, op.jwksUri)
    expect(payload.iss).toBe(op.issuer)
    expect(payload.aud).toBe(issuer.url)
    const tampered = `${token.accessToken.slice(0, -6)}${token.accessToken.endsWith('AAAAAA') ? 'BBBBBB' : 'AAAAAA'}`
    await expect(verifyOpJwt(tampered, op.jwksUri)).rejects.toThrow()
    expect(payload.sub).toBe(user.sub)
    expect(payload.scope).toBe(DEFAULT_RESOURCE_SCOPE)
    expect(payload.client_id).toBe(op.clientId)
    expect(payload.may_act).toBeUndefined()
    expect(token.idToken).toBeDefined()
  })

  it('refuses a wrong password (the login is real)', async () => {
    await expect(op.userAccessToken({ password: 'not-the-password' })).rejects.toThrow(/401/)
  })

  it('puts may_act into the token when asked', async () => {
    const token = await op.userAccessToken({ user: op.accounts[1]!.sub, mayAct: { sub: 'did:key:z6Mkexample' } })
    expect(token.claims.may_act).toEqual({ sub: 'did:key:z6Mkexample' })
    expect(token.claims.sub).toBe(op.accounts[1]!.sub)
  })
})

describe('openid-client against the token endpoint: client_credentials', () => {
  it('discovers the issuer (RFC 8414) and gets a DPoP-bound token with PrivateKeyJwt; the resource server accepts it', async () => {
    const agent = await newAgent('occ')
    const config = await configFor(agent)
    expect(config.serverMetadata().issuer).toBe(issuer.url)
    expect(config.serverMetadata().token_endpoint).toBe(`${issuer.url}/v1/token`)
    expect(config.serverMetadata().token_endpoint_auth_methods_supported).toContain('private_key_jwt')
    const log = record(config)
    const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair())
    const tokens = await granted(oidc.clientCredentialsGrant(config, { resource, authorization_details: readDetails() }, { DPoP }))
    // openid-client answered the issuer's use_dpop_nonce itself: one 400, one retry with the nonce.
    const tokenCalls = log.filter((e) => e.url === `${issuer.url}/v1/token`)
    expect(tokenCalls.map((e) => e.status)).toEqual([400, 200])
    expect(JSON.parse(tokenCalls[0]!.responseText).error).toBe('use_dpop_nonce')
    expect(decodeSegment(tokenCalls[0]!.headers.dpop!, 1).nonce).toBeUndefined()
    expect(typeof decodeSegment(tokenCalls[1]!.headers.dpop!, 1).nonce).toBe('string')
    expect(decodeSegment(tokenCalls[1]!.headers.dpop!, 0).alg).toBe('ES256')
    // Its own private_key_jwt: the agent's DID as client_id, aud = the issuer identifier.
    const form = new URLSearchParams(tokenCalls[1]!.body)
    expect(form.get('client_id')).toBe(agent.did)
    expect(decodeSegment(form.get('client_assertion')!, 1)).toMatchObject({ iss: agent.did, sub: agent.did, aud: issuer.url })
    expect(tokens.token_type).toBe('dpop')
    expect(tokens.expires_in).toBeGreaterThan(0)
    const at = decodeSegment(tokens.access_token, 1)
    expect(decodeSegment(tokens.access_token, 0).typ).toBe('at+jwt')
    expect(at.client_id).toBe(agent.did)
    expect(at.aud).toBe(resource)
    expect(typeof (at.cnf as { jkt?: unknown }).jkt).toBe('string')

    const r = await oidc.fetchProtectedResource(config, tokens.access_token, new URL(`${resource}/invoices?page=1`), 'GET', undefined, undefined, { DPoP })
    expect(r.status).toBe(200)
    const body = (await r.json()) as { agent: string; user: string | null; details: { locations: string[] }[] }
    expect(body.agent).toBe(agent.did)
    expect(body.user).toBeNull()
    expect(body.details.map((d) => d.locations)).toEqual([[TOOL]])
  })

  it('answers a resource server\'s own DPoP nonce (401 use_dpop_nonce) by itself', async () => {
    const agent = await newAgent('occ-rs-nonce')
    const config = await configFor(agent)
    const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair())
    const tokens = await granted(oidc.clientCredentialsGrant(config, { resource }, { DPoP }))
    const log = record(config)
    const { status, body } = await callResource(config, tokens.access_token, DPoP, '/nonce/invoices')
    expect(status).toBe(200)
    expect(body.agent).toBe(agent.did)
    const calls = log.filter((e) => e.url.startsWith(`${resource}/nonce`))
    expect(calls.map((e) => e.status)).toEqual([401, 200])
    expect(decodeSegment(calls[1]!.headers.dpop!, 1).nonce).toBe(RS_NONCE)
  })

  it('works with an Ed25519 DPoP key pair too (openid-client signs its proofs with alg Ed25519, RFC 9864)', async () => {
    const agent = await newAgent('occ-ed')
    const config = await configFor(agent)
    const keyPair = (await webcrypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify'])) as webcrypto.CryptoKeyPair
    const DPoP = oidc.getDPoPHandle(config, keyPair)
    const log = record(config)
    const tokens = await granted(oidc.clientCredentialsGrant(config, { resource }, { DPoP }))
    const r = await oidc.fetchProtectedResource(config, tokens.access_token, new URL(`${resource}/invoices`), 'GET', undefined, undefined, { DPoP })
    // openid-client names the algorithm Ed25519 (RFC 9864), for the proofs and for the client assertion.
    const granted200 = log.find((e) => e.url === `${issuer.url}/v1/token` && e.status === 200)!
    expect(decodeSegment(granted200.headers.dpop!, 0).alg).toBe('Ed25519')
    expect(decodeSegment(new URLSearchParams(granted200.body).get('client_assertion')!, 0).alg).toBe('Ed25519')
    expect(decodeSegment(log.find((e) => e.url.startsWith(resource))!.headers.dpop!, 0).alg).toBe('Ed25519')
    expect(r.status).toBe(200)
    expect(((await r.json()) as { agent: string }).agent).toBe(agent.did)
  })
})

describe('openid-client: RFC 8693 token exchange with the OP user token', () => {
  it('the agent acts for the OP user: sub = user, act.sub = agent, userIssuer = the OP; the user token is not in the agent token', async () => {
    const user = op.accounts[0]!
    const userToken = await op.userAccessToken({ user: user.sub })
    const agent = await newAgent('tx')
    const config = await configFor(agent)
    const log = record(config)
    const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair())
    const tokens = await granted(exchange(agent, config, DPoP, userToken.accessToken))
    expect(tokens.token_type).toBe('dpop')
    expect(tokens.issued_token_type).toBe(ACCESS_TOKEN_TYPE)
    expect(tokens.expires_in).toBeGreaterThan(0)
    expect(tokens.expires_in).toBeLessThanOrEqual(300)
    expect(tokens.authorization_details).toEqual([{ type: 'agentid_action', actions: ['invoke'], locations: [TOOL] }])

    const at = decodeSegment(tokens.access_token, 1)
    expect(at.sub).toBe(user.sub)
    expect(at.act).toEqual({ sub: agent.did })
    expect(at.client_id).toBe(agent.did)
    expect(at.aud).toBe(resource)
    expect(at.agentid?.subjectIssuer).toBe(op.issuer)
    expect(at.exp).toBeLessThanOrEqual(userToken.claims.exp)
    // Nothing of the user's token reaches the agent: not in its token, not in the token response.
    const userSignature = userToken.accessToken.split('.')[2]!
    const tokenResponses = log.filter((e) => e.url === `${issuer.url}/v1/token` && e.status === 200)
    expect(tokenResponses).toHaveLength(1)
    for (const text of [tokens.access_token, JSON.stringify(at), tokenResponses[0]!.responseText]) {
      expect(text).not.toContain(userToken.accessToken)
      expect(text).not.toContain(userSignature)
    }

    const { status, body } = await callResource(config, tokens.access_token, DPoP)
    expect(status).toBe(200)
    expect(body.agent).toBe(agent.did)
    expect(body.user).toBe(user.sub)
    expect(body.act).toEqual({ sub: agent.did })
    expect(body.userIssuer).toBe(op.issuer)
    expect(body.details.map((d) => d.locations)).toEqual([[TOOL]])
  })

  it('with user tokens signed ES256 (keys by jwks_uri) and EdDSA (keys configured inline) by two more trusted OPs', async () => {
    for (const [provider, alg] of [[opEs, 'ES256'], [opEd, 'EdDSA']] as const) {
      const user = provider.accounts[0]!
      const userToken = await provider.userAccessToken({ user: user.sub })
      expect(userToken.header.alg).toBe(alg)
      const agent = await newAgent(`tx-${alg}`)
      const config = await configFor(agent)
      const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair())
      const tokens = await granted(exchange(agent, config, DPoP, userToken.accessToken))
      const { status, body } = await callResource(config, tokens.access_token, DPoP)
      expect(status).toBe(200)
      expect(body.user).toBe(user.sub)
      expect(body.userIssuer).toBe(provider.issuer)
      expect(body.act).toEqual({ sub: agent.did })
    }
  })

  it('honours may_act naming this agent', async () => {
    const agent = await newAgent('tx-may-act')
    const user = op.accounts[1]!
    const userToken = await op.userAccessToken({ user: user.sub, mayAct: { sub: agent.did } })
    expect(userToken.claims.may_act).toEqual({ sub: agent.did })
    const config = await configFor(agent)
    const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair())
    const tokens = await granted(exchange(agent, config, DPoP, userToken.accessToken))
    expect(decodeSegment(tokens.access_token, 1).sub).toBe(user.sub)
  })
})

describe('openid-client: hostile, with real parts', () => {
  let agent: Agent
  let config: oidc.Configuration
  let DPoP: oidc.DPoPHandle
  const others: OidcProviderFixture[] = []

  beforeAll(async () => {
    agent = await newAgent('hostile')
    config = await configFor(agent)
    DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair())
    // Positive control: this agent, key and OP exchange fine.
    await granted(exchange(agent, config, DPoP, (await op.userAccessToken()).accessToken))
  })
  afterAll(async () => {
    for (const other of others) await other.close()
  })

  it('a user token from a second, untrusted oidc-provider is refused', async () => {
    const untrusted = await startOidcProvider({ resources: [issuer.url] })
    others.push(untrusted)
    const token = await untrusted.userAccessToken()
    expect(token.claims.aud).toBe(issuer.url)
    expect(await refusal(exchange(agent, config, DPoP, token.accessToken))).toEqual({ error: 'invalid_request', status: 400 })
  })

  it('a user token from an OP that claims the trusted issuer but signs with its own keys is refused', async () => {
    const impostor = await startOidcProvider({ resources: [issuer.url], claimedIssuer: op.issuer })
    others.push(impostor)
    const token = await impostor.userAccessToken()
    expect(token.claims.iss).toBe(op.issuer)
    expect(await refusal(exchange(agent, config, DPoP, token.accessToken))).toEqual({ error: 'invalid_request', status: 400 })
  })

  it('a token of the trusted OP for another audience (resource) is refused', async () => {
    const token = await op.userAccessToken({ resource: 'https://elsewhere.example' })
    expect(token.claims.aud).toBe('https://elsewhere.example')
    expect(await refusal(exchange(agent, config, DPoP, token.accessToken))).toEqual({ error: 'invalid_request', status: 400 })
  })

  it('a user token whose may_act names another agent is refused', async () => {
    const other = await newAgent('hostile-other')
    const token = await op.userAccessToken({ mayAct: { sub: other.did } })
    expect(await refusal(exchange(agent, config, DPoP, token.accessToken))).toEqual({ error: 'invalid_request', status: 400 })
  })

  it('the OP\'s real ID token is refused as subject_token: its audience is the OP client, not the agentid issuer', async () => {
    const { idToken } = await op.userAccessToken()
    expect(decodeSegment(idToken!, 1).aud).toBe(op.clientId)
    const error = await refusal(exchange(agent, config, DPoP, idToken!, { subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' }))
    expect(error).toEqual({ error: 'invalid_request', status: 400 })
  })

  it('an agentid access token is no user token: refused as subject_token', async () => {
    const own = await granted(oidc.clientCredentialsGrant(config, { resource: issuer.url }, { DPoP }))
    expect(await refusal(exchange(agent, config, DPoP, own.access_token))).toEqual({ error: 'invalid_request', status: 400 })
  })

  it('an actor token signed by another agent is refused', async () => {
    const other = await newAgent('hostile-actor')
    const userToken = (await op.userAccessToken()).accessToken
    const error = await refusal(oidc.genericGrantRequest(config, TOKEN_EXCHANGE, {
      subject_token: userToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
      actor_token: await actorToken(other),
      actor_token_type: JWT_TYPE,
      resource,
    }, { DPoP }))
    expect(error).toEqual({ error: 'invalid_request', status: 400 })
  })

  it('the user\'s own OP token at the resource, and the agent token with another key\'s proof, are refused', async () => {
    const userToken = (await op.userAccessToken({ resource: issuer.url })).accessToken
    const viaUserToken = await oidc.fetchProtectedResource(config, userToken, new URL(`${resource}/invoices`), 'GET', undefined, undefined, { DPoP }).then(() => undefined, (e: unknown) => e)
    expect(viaUserToken).toBeInstanceOf(oidc.WWWAuthenticateChallengeError)
    expect((viaUserToken as oidc.WWWAuthenticateChallengeError).response.status).toBe(401)

    const tokens = await granted(exchange(agent, config, DPoP, (await op.userAccessToken()).accessToken))
    const thief = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair())
    const stolen = await oidc.fetchProtectedResource(config, tokens.access_token, new URL(`${resource}/invoices`), 'GET', undefined, undefined, { DPoP: thief }).then(() => undefined, (e: unknown) => e)
    expect(stolen).toBeInstanceOf(oidc.WWWAuthenticateChallengeError)
    expect((stolen as oidc.WWWAuthenticateChallengeError).cause[0]).toMatchObject({ scheme: 'dpop', parameters: { error: 'invalid_token' } })
    // The rightful key still works (positive control).
    expect((await callResource(config, tokens.access_token, DPoP)).status).toBe(200)
  })

  it('authorization details wider than the tool profile are invalid_authorization_details (exchange and client_credentials)', async () => {
    const userToken = (await op.userAccessToken()).accessToken
    const wider = { authorization_details: readDetails([TOOL, OTHER_TOOL]) }
    expect(await refusal(exchange(agent, config, DPoP, userToken, wider))).toEqual({ error: 'invalid_authorization_details', status: 400 })
    expect(await refusal(oidc.clientCredentialsGrant(config, { resource, ...wider }, { DPoP }))).toEqual({ error: 'invalid_authorization_details', status: 400 })
    // An action the user did not grant (the OP token's scope is "agentid:invoke") is wider too.
    const notGranted = { authorization_details: JSON.stringify([{ type: 'agentid_action', actions: ['delete'], locations: [TOOL] }]) }
    expect(await refusal(exchange(agent, config, DPoP, userToken, notGranted))).toEqual({ error: 'invalid_authorization_details', status: 400 })
  })

  it('a replayed DPoP proof is refused at the resource and at the token endpoint', async () => {
    const log = record(config)
    const tokens = await granted(oidc.clientCredentialsGrant(config, { resource, authorization_details: readDetails() }, { DPoP }))
    expect((await callResource(config, tokens.access_token, DPoP)).status).toBe(200)
    const call = log.find((e) => e.url.startsWith(resource))!
    expect(call.status).toBe(200)
    const again = await fetch(call.url, { headers: { authorization: call.headers.authorization!, dpop: call.headers.dpop! } })
    expect(again.status).toBe(401)
    expect(again.headers.get('www-authenticate')).toMatch(/^DPoP error="invalid_dpop_proof"/)

    // The token request's proof again, with a fresh client assertion: the proof alone is refused.
    const tokenCall = log.find((e) => e.url === `${issuer.url}/v1/token` && e.status === 200)!
    const form = new URLSearchParams(tokenCall.body)
    const signer = signerFromJwk(agent.privateJwk)
    const iat = Math.floor(Date.now() / 1000)
    form.set('client_assertion', await signJwt({ typ: 'JWT' }, { iss: agent.did, sub: agent.did, aud: `${issuer.url}/v1/token`, iat, exp: iat + 60, jti: randomUUID() }, signer))
    const replayed = await fetch(tokenCall.url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: tokenCall.headers.dpop! }, body: form.toString() })
    expect(replayed.status).toBe(400)
    expect(((await replayed.json()) as { error: string }).error).toBe('invalid_dpop_proof')
  })

  it('a downgrade to Bearer is refused at the resource', async () => {
    const tokens = await granted(oidc.clientCredentialsGrant(config, { resource }, { DPoP }))
    // openid-client without its DPoP handle sends "Authorization: Bearer": a challenge comes back.
    const error = await oidc.fetchProtectedResource(config, tokens.access_token, new URL(`${resource}/invoices`), 'GET').then(() => undefined, (e: unknown) => e)
    expect(error).toBeInstanceOf(oidc.WWWAuthenticateChallengeError)
    expect((error as oidc.WWWAuthenticateChallengeError).response.status).toBe(401)
    expect((error as oidc.WWWAuthenticateChallengeError).cause[0]?.scheme).toBe('dpop')
    // Bearer with a valid proof beside it: refused as well.
    const log = record(config)
    expect((await callResource(config, tokens.access_token, DPoP)).status).toBe(200)
    const good = log.find((e) => e.url.startsWith(resource))!
    const bearer = await fetch(`${resource}/invoices`, { headers: { authorization: `Bearer ${tokens.access_token}`, dpop: good.headers.dpop! } })
    expect(bearer.status).toBe(401)
  })

  it('after `agentid revoke` (the real CLI), the agent can no longer exchange, nor get any token', async () => {
    const doomed = await newAgent('hostile-revoked')
    const doomedConfig = await configFor(doomed)
    const doomedDPoP = oidc.getDPoPHandle(doomedConfig, await oidc.randomDPoPKeyPair())
    await granted(exchange(doomed, doomedConfig, doomedDPoP, (await op.userAccessToken()).accessToken))
    const revoked = await adminCli(issuer, ['revoke', doomed.did, '--reason', 'e2e openid-client', '--json'])
    expect(revoked.code, revoked.stderr).toBe(0)
    const userToken = (await op.userAccessToken()).accessToken
    expect(await refusal(exchange(doomed, doomedConfig, doomedDPoP, userToken))).toEqual({ error: 'invalid_client', status: 401 })
    expect(await refusal(oidc.clientCredentialsGrant(doomedConfig, { resource }, { DPoP: doomedDPoP }))).toEqual({ error: 'invalid_client', status: 401 })
  })
})
