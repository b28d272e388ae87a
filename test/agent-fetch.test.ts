// End to end: an agent's fetch (createAgentFetch) gets DPoP-bound tokens from the real issuer process
// and calls a Node http resource server guarded by @agentid/verifier's middleware.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAgentFetch, spawn, TokenRequestError, type Ed25519PrivateJwk, type FetchFunction } from '@agentid/client'
import { adminCli, cleanup, claims, issuerDid, startIssuer, type IssuerProcess } from './harness.js'
import { startResourceServer, type ResourceServer } from './resource-server.js'

const TOOL = 'mcp://erp/tools/invoices.read'
const RS_NONCE = 'resource-nonce-1'

let issuer: IssuerProcess
let server: ResourceServer | undefined
let resource: string
let agentDid: string
let agentKey: Ed25519PrivateJwk
let agentFetch: FetchFunction
let tokenAttempts = 0
let tokensIssued = 0
const nonceChallenges: (string | null)[] = []

beforeAll(async () => {
  issuer = await startIssuer()
  const did = await issuerDid(issuer)
  const orch = await adminCli(issuer, ['orchestrators', 'add', 'agent-fetch', '--json'])
  expect(orch.code, orch.stderr).toBe(0)
  const agent = await spawn({ issuerUrl: issuer.url, apiKey: orch.json().apiKey, claims: claims('agent-fetch', { toolProfile: [TOOL] }), keyCustody: 'agent' })
  agentDid = agent.did
  agentKey = agent.privateJwk!
  expect(agent.privateJwk).toBeDefined()

  server = await startResourceServer({ trustedIssuers: [did], nonce: RS_NONCE })
  resource = server.url

  // Counts the tokens the issuer handed out (its first answer is a use_dpop_nonce challenge).
  const counting: FetchFunction = async (input, init) => {
    const r = await fetch(input, init)
    if (String(input) === `${issuer.url}/v1/token`) {
      tokenAttempts++
      if (r.status === 200) tokensIssued++
    } else if (r.status === 401 && /error="use_dpop_nonce"/.test(r.headers.get('www-authenticate') ?? '')) {
      nonceChallenges.push(r.headers.get('dpop-nonce'))
    }
    return r
  }
  agentFetch = createAgentFetch({
    issuerUrl: issuer.url,
    privateJwk: agentKey,
    resource,
    authorizationDetails: [{ type: 'agentid_action', actions: ['invoke'], locations: [TOOL] }],
    fetch: counting,
  })
})

afterAll(async () => {
  await server?.close()
  await cleanup()
})

describe('createAgentFetch against the real issuer', () => {
  it('calls the resource twice with one token; the resource sees the agent', async () => {
    for (const path of ['/invoices?page=1', '/invoices/2']) {
      const r = await agentFetch(`${resource}${path}`)
      expect(r.status).toBe(200)
      const body = (await r.json()) as { agent: string; details: { type: string }[] }
      expect(body.agent).toBe(agentDid)
      expect(body.details.map((d) => d.type)).toEqual(['agentid_action'])
    }
    expect(tokensIssued).toBe(1)
    expect(tokenAttempts).toBe(2)
    expect(nonceChallenges).toEqual([])
  })

  it('handles a DPoP nonce the resource requires', async () => {
    const r = await agentFetch(`${resource}/nonce/invoices`, { method: 'POST', body: '{"q":1}', headers: { 'content-type': 'application/json' } })
    expect(r.status).toBe(200)
    expect(((await r.json()) as { agent: string }).agent).toBe(agentDid)
    // One 401 use_dpop_nonce, answered by one retry with the nonce; still the same token.
    expect(nonceChallenges).toEqual([RS_NONCE])
    expect(tokensIssued).toBe(1)
    // The nonce is remembered: the next request goes through at once.
    expect((await agentFetch(`${resource}/nonce/invoices`)).status).toBe(200)
    expect(nonceChallenges).toEqual([RS_NONCE])
  })

  it('after `agentid revoke`, the issuer refuses a new token', async () => {
    const revoked = await adminCli(issuer, ['revoke', agentDid, '--reason', 'e2e', '--json'])
    expect(revoked.code, revoked.stderr).toBe(0)
    // A new agent fetch (no cached token) must ask the issuer, which refuses.
    const fresh = createAgentFetch({ issuerUrl: issuer.url, privateJwk: agentKey, resource })
    const error = await fresh(`${resource}/invoices`).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TokenRequestError)
    expect(error).toMatchObject({ error: 'invalid_client', status: 401 })
  })
})

