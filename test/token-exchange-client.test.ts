// End to end (issue #5: "the user authenticates once and the agent receives a narrower token of its own:
// the user's token never reaches the agent"): a user logs in at a real OpenID provider (oidc-provider,
// test/oidc-provider.ts); the orchestrator, which holds the user's token, exchanges it at the real issuer
// process with @agentid/client's exchangeToken, the agent signing only its parts through its exchange
// signer; the agent then calls a resource server behind @agentid/verifier's middleware with its own
// DPoP proofs (createAgentFetch with a token source). Agent and orchestrator talk only in JSON, as over IPC.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createAgentFetch,
  createExchangeSigner,
  exchangeToken,
  generateAgentKey,
  TokenRequestError,
  type AgentKey,
  type ExchangeSigner,
  type ExchangeSigningRequest,
  type FetchFunction,
  type SourcedToken,
} from '@agentid/client'
import { AgentIdError, generateEd25519KeyPair, jwkThumbprint, signCompactJws, signerFromJwk } from '@agentid/core'
import { createHash, randomUUID } from 'node:crypto'
import { adminCli, agentHeldSpawn, api, cleanup, freePort, issuerDid, startIssuer, type IssuerProcess } from './harness.js'
import { decodeSegment, startOidcProvider, type OidcProviderFixture } from './oidc-provider.js'
import { startResourceServer, type ResourceServer } from './resource-server.js'

const TOOL = 'mcp://erp/tools/invoices.read'
const OTHER_TOOL = 'mcp://erp/tools/invoices.delete'
const DETAILS = [{ type: 'agentid_action', actions: ['invoke'], locations: [TOOL] }]

let issuer: IssuerProcess
let op: OidcProviderFixture
let server: ResourceServer | undefined
let resource: string
let orchestratorKey: string
let issuerDidValue: string

interface Seen { url: string; status: number; headers: [string, string][]; body: string }

/** A fetch that records each request (URL, headers, body) and the status it got. */
function recordingFetch(log: Seen[]): FetchFunction {
  return async (input, init) => {
    const response = await fetch(input, init)
    log.push({ url: String(input), status: response.status, headers: [...new Headers(init?.headers)], body: typeof init?.body === 'string' ? init.body : '' })
    return response
  }
}

/**
 * The agent: its key (made and kept here), its exchange signer, and what reached it from outside —
 * every signing request and every token the orchestrator handed it, as the JSON that crossed over.
 */
interface AgentSide {
  key: AgentKey
  /** What the orchestrator holds of the agent: its DID and a channel to its signer. */
  channel: ExchangeSigner
  received: string[]
  sent: Seen[]
}

async function startAgent(name: string): Promise<AgentSide> {
  const key = generateAgentKey()
  // The agent proves possession of its key to the issuer; the orchestrator only forwards the spawn body.
  const { body } = await agentHeldSpawn(issuerDidValue, name, { privateJwk: key.privateJwk })
  const spawned = await api(issuer, 'POST', '/v1/agents', { key: orchestratorKey, json: body })
  expect(spawned.status, spawned.text).toBe(201)
  const signer = createExchangeSigner({ privateJwk: key.privateJwk, issuerUrl: issuer.url })
  const received: string[] = []
  const channel: ExchangeSigner = {
    did: key.did,
    sign: async (request: ExchangeSigningRequest) => {
      const text = JSON.stringify(request)
      received.push(text)
      return signer.sign(JSON.parse(text) as ExchangeSigningRequest)
    },
  }
  return { key, channel, received, sent: [] }
}

/** The agent's fetch for a user: tokens come from the orchestrator (JSON over the channel). */
function agentFetchFor(agent: AgentSide, askOrchestrator: () => Promise<string>): FetchFunction {
  return createAgentFetch({
    privateJwk: agent.key.privateJwk,
    token: async () => {
      const text = await askOrchestrator()
      agent.received.push(text)
      return JSON.parse(text) as SourcedToken
    },
    fetch: recordingFetch(agent.sent),
  })
}

interface ResourceView { agent: string; user: string | null; userIssuer: string | null; act: { sub: string } | null; details: { locations: string[]; actions: string[] }[] }

beforeAll(async () => {
  const port = await freePort()
  op = await startOidcProvider({ resources: [`http://127.0.0.1:${port}`] })
  issuer = await startIssuer({ port, env: { AGENTID_TRUSTED_IDPS: JSON.stringify([op.trustedIdp()]) } })
  issuerDidValue = await issuerDid(issuer)
  const orch = await adminCli(issuer, ['orchestrators', 'add', 'token-exchange-client', '--json'])
  expect(orch.code, orch.stderr).toBe(0)
  orchestratorKey = orch.json().apiKey

  server = await startResourceServer({ trustedIssuers: [issuerDidValue] })
  resource = server.url
})

afterAll(async () => {
  await server?.close()
  await op?.close()
  await cleanup()
})

describe('token exchange with @agentid/client: the orchestrator exchanges, the agent acts', () => {
  it('the resource sees the OP\'s user acting through the agent; the user\'s token never reaches the agent', async () => {
    const user = op.accounts[0]!
    const agent = await startAgent('tx-client')
    // The orchestrator (the user-facing app): the user logs in once; the token stays here.
    const userToken = (await op.userAccessToken({ user: user.sub })).accessToken
    const issuerCalls: Seen[] = []
    let lastNonce: string | undefined
    const exchanges: { accessToken: string; dpopJkt: string }[] = []
    const orchestrator = {
      tokenFor: async (): Promise<string> => {
        const t = await exchangeToken({
          issuerUrl: issuer.url, subjectToken: userToken, agent: agent.channel, resource, authorizationDetails: DETAILS,
          fetch: recordingFetch(issuerCalls), ...(lastNonce === undefined ? {} : { dpopNonce: lastNonce }),
        })
        lastNonce = t.dpopNonce
        exchanges.push(t)
        expect(t.authorizationDetails).toEqual(DETAILS)
        return JSON.stringify({ accessToken: t.accessToken, expiresIn: t.expiresIn })
      },
    }
    const agentFetch = agentFetchFor(agent, orchestrator.tokenFor)

    const r = await agentFetch(`${resource}/invoices?page=1`)
    expect(r.status).toBe(200)
    const seen = (await r.json()) as ResourceView
    expect(seen.user).toBe(user.sub)
    expect(seen.act).toEqual({ sub: agent.key.did })
    expect(seen.agent).toBe(agent.key.did)
    expect(seen.userIssuer).toBe(op.issuer)
    expect(seen.details.map((d) => d.locations)).toEqual([[TOOL]])
    // The same token serves a second call.
    expect((await agentFetch(`${resource}/invoices/2`)).status).toBe(200)
    expect(exchanges).toHaveLength(1)

    // The issuer asked for its DPoP nonce once (400 use_dpop_nonce), then issued; the token is bound to the agent's key.
    expect(issuerCalls.map((c) => c.status)).toEqual([400, 200])
    const issued = decodeSegment(exchanges[0]!.accessToken, 1)
    expect(issued.cnf).toEqual({ jkt: jwkThumbprint(agent.key.publicJwk) })
    expect(exchanges[0]!.dpopJkt).toBe(issued.cnf.jkt)
    expect(issued).toMatchObject({ sub: user.sub, act: { sub: agent.key.did }, client_id: agent.key.did, aud: resource })

    // A second exchange with the nonce the issuer gave last: one round trip.
    await orchestrator.tokenFor()
    expect(issuerCalls.map((c) => c.status)).toEqual([400, 200, 200])

    // The user's token went to the issuer, and only there.
    expect(issuerCalls.every((c) => new URLSearchParams(c.body).get('subject_token') === userToken)).toBe(true)
    const claimsPart = userToken.split('.')[1]!
    for (const text of [...agent.received, JSON.stringify(agent.sent)]) {
      expect(text).not.toContain(userToken)
      expect(text).not.toContain(claimsPart)
    }
    // What the agent was asked to sign: its own three JWTs for the token endpoint, per exchange attempt.
    const asked = agent.received.filter((t) => t.startsWith('{"type"')).map((t) => JSON.parse(t) as { type: string })
    expect(asked.map((a) => a.type)).toEqual(Array(3).fill(['client_assertion', 'actor_token', 'dpop']).flat())
  })

  it('the exchanged token is useless to the orchestrator: its own DPoP key or none is refused, and the agent signs no resource proof for it', async () => {
    const agent = await startAgent('tx-useless')
    const userToken = (await op.userAccessToken()).accessToken
    const t = await exchangeToken({ issuerUrl: issuer.url, subjectToken: userToken, agent: agent.channel, resource, authorizationDetails: DETAILS })
    const url = `${resource}/invoices`
    // The orchestrator's own DPoP key: the token is bound to the agent's.
    const mallory = generateEd25519KeyPair()
    const iat = Math.floor(Date.now() / 1000)
    const proof = await signCompactJws(
      { typ: 'dpop+jwt', alg: 'EdDSA', jwk: mallory.publicJwk },
      JSON.stringify({ htm: 'GET', htu: url, iat, jti: randomUUID(), ath: createHash('sha256').update(t.accessToken).digest('base64url') }),
      signerFromJwk(mallory.privateJwk),
    )
    const withOwnKey = await fetch(url, { headers: { authorization: `DPoP ${t.accessToken}`, dpop: proof } })
    expect(withOwnKey.status).toBe(401)
    const asBearer = await fetch(url, { headers: { authorization: `Bearer ${t.accessToken}` } })
    expect(asBearer.status).toBe(401)
    // Asking the agent to sign a resource proof is refused by the agent.
    const refused = await agent.channel.sign({ type: 'dpop', htm: 'GET', htu: url } as unknown as ExchangeSigningRequest).catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(AgentIdError)
    expect((refused as AgentIdError).code).toBe('ERR_FORBIDDEN')
    // The agent itself can use it.
    const agentFetch = agentFetchFor(agent, async () => JSON.stringify({ accessToken: t.accessToken, expiresIn: t.expiresIn }))
    expect((await agentFetch(url)).status).toBe(200)
  })

  it('the issuer\'s refusals come back as TokenRequestError with the OAuth error code', async () => {
    const agent = await startAgent('tx-refused')
    const userToken = (await op.userAccessToken()).accessToken
    const refusal = (o: Partial<Parameters<typeof exchangeToken>[0]>) =>
      exchangeToken({ issuerUrl: issuer.url, subjectToken: userToken, agent: agent.channel, resource, authorizationDetails: DETAILS, ...o }).then(
        () => { throw new Error('the exchange was granted') },
        (e: unknown) => {
          if (!(e instanceof TokenRequestError)) throw e
          return { error: e.error, status: e.status }
        },
      )
    // A tool outside the agent's profile.
    expect(await refusal({ authorizationDetails: [{ type: 'agentid_action', actions: ['invoke'], locations: [OTHER_TOOL] }] })).toEqual({ error: 'invalid_authorization_details', status: 400 })
    // An action the user did not grant (the user's scope is agentid:invoke).
    expect(await refusal({ authorizationDetails: [{ type: 'agentid_action', actions: ['delete'], locations: [TOOL] }] })).toEqual({ error: 'invalid_authorization_details', status: 400 })
    // A user token whose signature does not verify.
    const [h, p, s] = userToken.split('.')
    const tampered = `${h}.${p}.${s!.startsWith('A') ? 'B' : 'A'}${s!.slice(1)}`
    expect(await refusal({ subjectToken: tampered })).toEqual({ error: 'invalid_request', status: 400 })
    // A user token that lets another actor act (may_act).
    const forOther = (await op.userAccessToken({ mayAct: { sub: generateAgentKey().did } })).accessToken
    expect(await refusal({ subjectToken: forOther })).toEqual({ error: 'invalid_request', status: 400 })
    // An agent the issuer does not know (never spawned): invalid_client.
    const stranger = generateAgentKey()
    expect(await refusal({ agent: createExchangeSigner({ privateJwk: stranger.privateJwk, issuerUrl: issuer.url }) })).toEqual({ error: 'invalid_client', status: 401 })
  })
})
