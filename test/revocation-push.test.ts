// End to end: revocations pushed from the real issuer process to a resource-server process
// subscribed to its event stream (createVerifier({ revocationStream })). A revocation made through
// the issuer is refused within 1 s, with a cached access token; a verifier without the stream (status
// lists cached 10 min) still accepts it, the control. When the issuer is down the verifier says
// `polling`, and after a restart it resumes from its Last-Event-ID, applying a revocation made
// meanwhile through the CLI on the database file.
import { randomUUID } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAgentFetch, spawn, type Ed25519PrivateJwk, type FetchFunction } from '@agentid/client'
import { signCompactJws, signerFromJwk, publicJwkFromDid } from '@agentid/core'
import { accessTokenHash } from '@agentid/verifier'
import { adminCli, api, cleanup, cli, claims, issuerDid, restartIssuer, sleep, startIssuer, type IssuerProcess } from './harness.js'
import { startVerifierProcess, stopVerifierProcesses, type VerifierProcess } from './verifier-process.js'

const ORIGIN = 'https://erp.example'
const TOOL = 'mcp://erp/tools/invoices.read'
const LONG_TTL = 600_000

interface Agent { did: string; credentialId: string; privateJwk: Ed25519PrivateJwk; token: string }

let issuer: IssuerProcess
let did: string
let apiKey: string

beforeAll(async () => {
  issuer = await startIssuer()
  did = await issuerDid(issuer)
  const orch = await adminCli(issuer, ['orchestrators', 'add', 'revocation-push', '--json'])
  expect(orch.code, orch.stderr).toBe(0)
  apiKey = orch.json().apiKey
})

afterAll(async () => {
  await stopVerifierProcesses()
  await cleanup()
})

/** A fresh agent and an access token for ORIGIN (from the issuer's token endpoint). */
async function agentWithToken(name: string, first: VerifierProcess): Promise<Agent> {
  const agent = await spawn({ issuerUrl: issuer.url, apiKey, claims: claims(name, { toolProfile: [TOOL] }), keyCustody: 'agent' })
  let token = ''
  const routed: FetchFunction = async (input, init) => {
    const url = String(input)
    if (!url.startsWith(ORIGIN)) return fetch(input, init)
    const headers = Object.fromEntries(new Headers(init?.headers).entries())
    token = headers.authorization!.replace(/^DPoP /, '')
    return fetch(`${first.url}${url.slice(ORIGIN.length)}`, { ...init, headers })
  }
  const f = createAgentFetch({ issuerUrl: issuer.url, privateJwk: agent.privateJwk, resource: ORIGIN, authorizationDetails: [{ type: 'agentid_action', actions: ['invoke'], locations: [TOOL] }], fetch: routed })
  const r = await f(`${ORIGIN}/invoices`)
  expect(r.status, await r.text()).toBe(200)
  return { did: agent.did, credentialId: agent.credentialId, privateJwk: agent.privateJwk, token }
}

/** One request with the agent's cached token and a fresh DPoP proof. */
async function request(v: VerifierProcess, a: Agent): Promise<{ status: number; body: any }> {
  const proof = await signCompactJws(
    { typ: 'dpop+jwt', alg: 'EdDSA', jwk: publicJwkFromDid(a.did) },
    JSON.stringify({ jti: randomUUID(), htm: 'GET', htu: `${ORIGIN}/invoices`, iat: Math.floor(Date.now() / 1000), ath: accessTokenHash(a.token) }),
    signerFromJwk(a.privateJwk),
  )
  return v.call('/invoices', { authorization: `DPoP ${a.token}`, dpop: proof })
}

/** Milliseconds until `v` refuses `a` with ERR_REVOKED (requests back to back), or Infinity after `limitMs`. */
async function msUntilRefused(v: VerifierProcess, a: Agent, since: number, limitMs: number): Promise<number> {
  for (;;) {
    const r = await request(v, a)
    if (r.status === 401) {
      expect(r.body.error.code).toBe('ERR_REVOKED')
      return performance.now() - since
    }
    expect(r.status).toBe(200)
    if (performance.now() - since > limitMs) return Infinity
  }
}

async function until(check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`)
    await sleep(50)
  }
}

describe('revocation pushed to a subscribed verifier process', () => {
  let pushed: VerifierProcess
  let polling: VerifierProcess

  beforeAll(async () => {
    ;[pushed, polling] = await Promise.all([
      startVerifierProcess({ origin: ORIGIN, trusted: [did], eventsUrl: `${issuer.url}/v1/events`, statusTtlMs: LONG_TTL, eventsMaxBackoffMs: 500 }),
      startVerifierProcess({ origin: ORIGIN, trusted: [did], statusTtlMs: LONG_TTL }),
    ])
    await until(async () => (await pushed.mode()) === 'push', 10_000)
    expect(await polling.mode()).toBe('polling')
  })

  it('an agent revoked through the issuer API is refused within 1 s (its cached token); the polling verifier still accepts it', async () => {
    const a = await agentWithToken('push-agent', pushed)
    expect((await request(polling, a)).status).toBe(200)
    const r = await api(issuer, 'POST', `/v1/agents/${a.did}/revoke`, { key: issuer.adminKey, json: { reason: 'e2e' } })
    expect(r.status).toBe(200)
    const ms = await msUntilRefused(pushed, a, performance.now(), 1000)
    expect(ms).toBeLessThan(1000)
    expect((await request(polling, a)).status).toBe(200) // within its status TTL: not yet known
  })

  it('one credential revoked through the issuer API is refused within 1 s', async () => {
    const a = await agentWithToken('push-credential', pushed)
    const r = await api(issuer, 'POST', `/v1/credentials/${encodeURIComponent(a.credentialId)}/revoke`, { key: issuer.adminKey, json: { reason: 'e2e' } })
    expect(r.status).toBe(200)
    expect(await msUntilRefused(pushed, a, performance.now(), 1000)).toBeLessThan(1000)
  })

  it('issuer down: polling; a revocation made meanwhile with the CLI on the database reaches the verifier after the restart (Last-Event-ID)', async () => {
    const a = await agentWithToken('while-down', pushed)
    await issuer.stop()
    await until(async () => (await pushed.mode()) === 'polling', 5000)
    expect((await request(pushed, a)).status).toBe(200)
    const revoked = await cli(['revoke', a.did, '--db', issuer.dbFile, '--data-dir', issuer.dataDir, '--base-url', issuer.url, '--reason', 'offline', '--json'])
    expect(revoked.code, revoked.stderr).toBe(0)
    issuer = await restartIssuer(issuer)
    await until(async () => (await pushed.mode()) === 'push', 10_000)
    expect(await msUntilRefused(pushed, a, performance.now(), 2000)).toBeLessThan(2000)
  })
})
