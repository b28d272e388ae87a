// End to end: the MCP SDK's own Client over Streamable HTTP, authenticated with agentid (DPoP-bound
// tokens from the real issuer process, or presentations), against an SDK McpServer behind
// @agentid/mcp's guard in a real http server, decided by a real Cedar policy folder.
import { createHash, randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { createServer, request as httpRequest, type Server } from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { McpError } from '@modelcontextprotocol/sdk/types.js'
import { createAgentFetch, createPresentation, JWT_BEARER_ASSERTION_TYPE, registerDelegation, spawn, type FetchFunction, type SpawnedAgent } from '@agentid/client'
import { generateEd25519KeyPair, signCompactJws, signerFromJwk, signJwt, type Ed25519PrivateJwk } from '@agentid/core'
import { createMcpGuard, MCP_FORBIDDEN, type AuditEvent, type McpGuard } from '@agentid/mcp'
import { delegate } from '@agentid/delegation'
import { loadPolicyEngine } from '@agentid/policy'
import { createVerifier } from '@agentid/verifier'
import { adminCli, agentHeldSpawn, api, cleanup, claims, freePort, issuerDid, sleep, startIssuer, tempDir, type IssuerProcess } from './harness.js'

const SERVER_ID = 'demo'
const STATUS_TTL_MS = 300
/** Tools the server really has that look like `echo` or walk to `admin`: a guard that normalised names would let them through. */
const LOOKALIKE_TOOLS = ['Echo', 'echo\u200b', 'ec\u04bbo', '../echo', 'echo/../admin']
/** Names no server tool has: unknown tools deny too. */
const UNKNOWN_TOOLS = ['ECHO', '\u200becho', 'ech\u043e', './echo', 'demo/echo', 'echo ', 'e\u0301cho', 'nope', '__proto__', 'constructor', 'toString', 'echo\u0000', '*']

const POLICIES = `
@id("call-profile-tools")
permit (principal, action == AgentId::Action::"callTool", resource in AgentId::McpServer::"${SERVER_ID}")
when { principal.toolProfile.contains(resource.name) };

@id("admin-for-ops")
permit (principal, action == AgentId::Action::"callTool", resource == AgentId::Tool::"${SERVER_ID}/admin")
when { principal.policyTier == "ops" };

@id("wait-for-ops")
permit (principal, action == AgentId::Action::"callTool", resource == AgentId::Tool::"${SERVER_ID}/wait")
when { principal.policyTier == "ops" };

@id("list-tools")
permit (principal, action == AgentId::Action::"listTools", resource == AgentId::McpServer::"${SERVER_ID}");

@id("read-readme")
permit (principal, action == AgentId::Action::"readResource", resource == AgentId::Resource::"${SERVER_ID}/docs://readme");

// A delegated agent calls only what its chain grants (whatever its own profile lists), and chains stay short.
@id("delegated-within-grants")
forbid (principal, action == AgentId::Action::"callTool", resource)
when { context.delegationDepth > 0 && !context.authorizationGrants.contains({ type: "agentid_action", action: "invoke", location: resource.name }) };

@id("delegation-depth")
forbid (principal, action, resource)
when { context.delegationDepth > 2 };

// An agent acting for user-2 may not use whoami.
@id("user-2-no-whoami")
forbid (principal, action == AgentId::Action::"callTool", resource == AgentId::Tool::"${SERVER_ID}/whoami")
when { principal has user && principal.user == AgentId::User::"user-2" };

@id("greet-prompt")
permit (principal, action == AgentId::Action::"getPrompt", resource == AgentId::Prompt::"${SERVER_ID}/greet");
`

let issuer: IssuerProcess
/** The identity provider of the users agents act for (token exchange): an Ed25519 key the issuer trusts inline. */
const idpKey = generateEd25519KeyPair()
const IDP_ISSUER = 'https://idp.example'
const IDP_KID = 'idp-key-1'
// A second trusted IdP (same test key): its 'user-1' is another person than IDP_ISSUER's.
const IDP2_ISSUER = 'https://idp2.example'
const IDP_AUDIENCE = 'agentid-e2e'
let httpServer: Server
/** A second endpoint: JSON responses, a clock the test moves, small session limits. */
let jsonServer: Server
let jsonResource: string
let jsonClock = Date.now()
const JSON_IDLE_MS = 60_000
const JSON_NONCE = 'json-endpoint-nonce-1'
let resource: string
let guard: McpGuard
const events: AuditEvent[] = []
/** Every tool, resource and prompt handler invocation, with the agent the SDK saw. */
const calls: { what: string; agent: string | undefined }[] = []
/** Every answer of the guarded endpoint to an agent fetch: status and agentid error code. */
const answers: { agent: string; status: number; code: string | null; challenge?: string | null; nonce?: string | null }[] = []
/** Resolvers of the `wait` tool calls in flight. */
const releases: (() => void)[] = []
const agents: Record<'alice' | 'bob' | 'carol' | 'dave' | 'ops' | 'eve' | 'frank', SpawnedAgent> = {} as never
let issuerDidValue: string
let orchestratorKey: string
const clients: Client[] = []

function buildServer(): McpServer {
  const server = new McpServer({ name: 'demo', version: '1.0.0' })
  // The SDK warns (console.warn) about the look-alike names; they are registered on purpose.
  const warn = console.warn
  console.warn = () => undefined
  try {
    registerAll(server)
  } finally {
    console.warn = warn
  }
  return server
}

function registerAll(server: McpServer): void {
  for (const name of ['echo', 'whoami', 'admin', ...LOOKALIKE_TOOLS]) {
    server.registerTool(name, { description: `the ${JSON.stringify(name)} tool` }, async (extra) => {
      calls.push({ what: `tool:${name}`, agent: extra.authInfo?.clientId })
      return { content: [{ type: 'text', text: `${name}:${extra.authInfo?.clientId}` }] }
    })
  }
  // A tool that answers when the test says so: a request that stays in flight.
  server.registerTool('wait', { description: 'waits' }, async (extra) => {
    calls.push({ what: 'tool:wait', agent: extra.authInfo?.clientId })
    await new Promise<void>((resolve) => releases.push(resolve))
    return { content: [{ type: 'text', text: 'waited' }] }
  })
  for (const [name, uri] of [['readme', 'docs://readme'], ['secrets', 'docs://secrets']] as const) {
    server.registerResource(name, uri, { mimeType: 'text/plain' }, async (u, extra) => {
      calls.push({ what: `resource:${uri}`, agent: extra.authInfo?.clientId })
      return { contents: [{ uri: u.href, text: `${name} text` }] }
    })
  }
  for (const name of ['greet', 'exfiltrate']) {
    server.registerPrompt(name, { description: name }, async (extra) => {
      calls.push({ what: `prompt:${name}`, agent: extra.authInfo?.clientId })
      return { messages: [{ role: 'user', content: { type: 'text', text: name } }] }
    })
  }
}

/** A DPoP-signing fetch for `agent` (createAgentFetch against the real issuer), recording the guard's answers. */
function tokenFetch(name: keyof typeof agents, spy?: (url: string, init: RequestInit) => void, audience = resource): FetchFunction {
  const recording: FetchFunction = async (input, init) => {
    const url = String(input instanceof Request ? input.url : input)
    if (url.startsWith(audience)) spy?.(url, init ?? {})
    const r = await fetch(input, init)
    if (url.startsWith(audience)) answers.push({ agent: name, status: r.status, code: await errorCode(r), challenge: r.headers.get('www-authenticate'), nonce: r.headers.get('dpop-nonce') })
    return r
  }
  return createAgentFetch({ issuerUrl: issuer.url, privateJwk: agents[name].privateJwk, resource: audience, fetch: recording })
}

/** A fetch that signs a fresh presentation (`Authorization: AgentID <vp>`) for every request. */
function presentationFetch(name: keyof typeof agents, spy?: (authorization: string) => void): FetchFunction {
  const agent = agents[name]
  return async (input, init) => {
    const vp = await createPresentation({ privateJwk: agent.privateJwk, credential: agent.credential, audience: resource })
    const headers = new Headers(init?.headers)
    headers.set('authorization', `AgentID ${vp}`)
    spy?.(`AgentID ${vp}`)
    const r = await fetch(input, { ...init, headers })
    answers.push({ agent: name, status: r.status, code: await errorCode(r) })
    return r
  }
}

/**
 * A fetch with a DPoP-bound token from the issuer's /v1/token for a grant createAgentFetch does not
 * make (a delegation chain, a token exchange): private_key_jwt and a DPoP proof (the issuer's nonce on
 * retry), then a proof per request. Throws with the issuer's OAuth error when refused.
 */
async function handTokenFetch(privateJwk: Ed25519PrivateJwk, grant: (tokenEndpoint: string) => Promise<Record<string, string>>): Promise<FetchFunction> {
  const signer = signerFromJwk(privateJwk)
  const jwk = { kty: 'OKP', crv: 'Ed25519', x: privateJwk.x }
  const tokenEndpoint = `${issuer.url}/v1/token`
  const now = () => Math.floor(Date.now() / 1000)
  const proof = (htm: string, htu: string, extra: Record<string, unknown>) =>
    signCompactJws({ typ: 'dpop+jwt', alg: 'EdDSA', jwk }, JSON.stringify({ htm, htu, iat: now(), jti: randomUUID(), ...extra }), signer)
  let nonce: string | undefined
  let token: string | undefined
  for (let attempt = 0; attempt < 2 && token === undefined; attempt++) {
    const assertion = await signJwt({ typ: 'JWT' }, { iss: signer.did, sub: signer.did, aud: tokenEndpoint, iat: now(), exp: now() + 60, jti: randomUUID() }, signer)
    const form = new URLSearchParams({
      client_id: signer.did, client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: assertion, resource, ...(await grant(tokenEndpoint)),
    })
    const r = await fetch(tokenEndpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: await proof('POST', tokenEndpoint, nonce === undefined ? {} : { nonce }) }, body: form })
    const body = (await r.json()) as { access_token?: string; error?: string; error_description?: string }
    if (r.status === 400 && body.error === 'use_dpop_nonce') nonce = r.headers.get('dpop-nonce') ?? undefined
    else if (r.status === 200 && typeof body.access_token === 'string') token = body.access_token
    else throw new Error(`token refused: ${r.status} ${body.error} ${body.error_description ?? ''}`)
  }
  const ath = createHash('sha256').update(token!).digest('base64url')
  return async (input, init) => {
    const u = new URL(String(input instanceof Request ? input.url : input))
    const headers = new Headers(init?.headers)
    headers.set('authorization', `DPoP ${token}`)
    headers.set('dpop', await proof((init?.method ?? 'GET').toUpperCase(), `${u.origin}${u.pathname}`, { ath }))
    return fetch(input, { ...init, headers })
  }
}

/** A token issued on a delegation chain (`agentid_delegation`) for `tools`. */
function delegatedTokenFetch(privateJwk: Ed25519PrivateJwk, chain: readonly string[], tools: readonly string[]): Promise<FetchFunction> {
  return handTokenFetch(privateJwk, async () => ({
    grant_type: 'client_credentials',
    authorization_details: JSON.stringify([{ type: 'agentid_action', actions: ['invoke'], locations: tools }]),
    agentid_delegation: JSON.stringify(chain),
  }))
}

/** A token for `agent` acting for `user` (RFC 8693 token exchange of a user token from the test IdP). */
function userTokenFetch(agent: SpawnedAgent, user: string, idpIssuer = IDP_ISSUER): Promise<FetchFunction> {
  const agentSigner = signerFromJwk(agent.privateJwk)
  return handTokenFetch(agent.privateJwk, async (tokenEndpoint) => {
    const now = Math.floor(Date.now() / 1000)
    const subjectToken = await signJwt({ typ: 'JWT', kid: IDP_KID }, { iss: idpIssuer, sub: user, aud: IDP_AUDIENCE, iat: now, exp: now + 300, jti: randomUUID() }, signerFromJwk(idpKey.privateJwk))
    const actorToken = await signJwt({ typ: 'JWT' }, { iss: agent.did, sub: agent.did, aud: tokenEndpoint, iat: now, exp: now + 60, jti: randomUUID() }, agentSigner)
    return {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: subjectToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      actor_token: actorToken,
      actor_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    }
  })
}

async function errorCode(r: Response): Promise<string | null> {
  if (r.ok || r.status === 202) return null
  const body = (await r.clone().json().catch(() => null)) as { error?: { data?: { code?: string } } } | null
  return body?.error?.data?.code ?? null
}

async function connect(fetchFn: FetchFunction, url = resource): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name: 'e2e', version: '1.0.0' })
  const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: fetchFn })
  await client.connect(transport)
  clients.push(client)
  return { client, transport }
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => { throw new Error('expected a rejection') }, (e: unknown) => e)
}

/** Posts a raw JSON-RPC body on a session; returns the status and the JSON-RPC messages (JSON or SSE). */
async function rawPost(fetchFn: FetchFunction, body: string, sessionId?: string, url = resource): Promise<{ status: number; messages: Record<string, unknown>[]; text: string }> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' }
  if (sessionId !== undefined) headers['mcp-session-id'] = sessionId
  const r = await fetchFn(url, { method: 'POST', headers, body })
  const text = await r.text()
  let messages: Record<string, unknown>[] = []
  if ((r.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    messages = text.split('\n').filter((l) => l.startsWith('data: ') && l.length > 6).map((l) => JSON.parse(l.slice(6)) as Record<string, unknown>)
  } else if (text !== '') {
    const parsed = JSON.parse(text) as Record<string, unknown> | Record<string, unknown>[]
    messages = Array.isArray(parsed) ? parsed : [parsed]
  }
  return { status: r.status, messages, text }
}

const rpc = (id: number | string, method: string, params: Record<string, unknown> = {}) => ({ jsonrpc: '2.0', id, method, params })
const toolCalls = (agent: string) => calls.filter((c) => c.agent === agent && c.what.startsWith('tool:')).map((c) => c.what.slice(5))

beforeAll(async () => {
  issuer = await startIssuer({
    env: { AGENTID_TRUSTED_IDPS: JSON.stringify([IDP_ISSUER, IDP2_ISSUER].map((issuer) => ({ issuer, jwks: { keys: [{ ...idpKey.publicJwk, kid: IDP_KID, alg: 'EdDSA', use: 'sig' }] }, audience: IDP_AUDIENCE }))) },
  })
  const did = await issuerDid(issuer)
  const orch = await adminCli(issuer, ['orchestrators', 'add', 'mcp-guard', '--json'])
  expect(orch.code, orch.stderr).toBe(0)
  const apiKey = orch.json().apiKey as string
  issuerDidValue = did
  orchestratorKey = apiKey
  for (const name of ['alice', 'bob', 'carol', 'dave', 'ops', 'eve', 'frank'] as const) {
    const tier = name === 'ops' ? 'ops' : 'standard'
    agents[name] = await spawn({ issuerUrl: issuer.url, apiKey, claims: claims(name, { toolProfile: ['echo', 'whoami'], policyTier: tier }), keyCustody: 'agent' })
  }

  const dir = tempDir('agentid-mcp-policies-')
  writeFileSync(join(dir, 'demo.cedar'), POLICIES)
  const policy = await loadPolicyEngine({ dir })
  const port = await freePort()
  resource = `http://127.0.0.1:${port}/mcp`
  guard = createMcpGuard({
    verifier: createVerifier({ trustedIssuers: [did], statusTtlMs: STATUS_TTL_MS, statusGraceMs: 0 }),
    policy,
    serverId: SERVER_ID,
    resource,
    authorizationServers: [issuer.url],
    audit: (e) => events.push(e),
  })
  httpServer = createServer(guard.nodeHandler({ createServer: buildServer }))
  await new Promise<void>((resolve) => httpServer.listen(port, '127.0.0.1', resolve))

  const port2 = await freePort()
  jsonResource = `http://127.0.0.1:${port2}/mcp`
  const jsonGuard = createMcpGuard({
    // This endpoint requires a DPoP nonce (RFC 9449 §9): createAgentFetch retries once with it.
    verifier: createVerifier({ trustedIssuers: [did], statusTtlMs: STATUS_TTL_MS, statusGraceMs: 0, dpopNonce: () => JSON_NONCE }),
    policy,
    serverId: SERVER_ID,
    resource: jsonResource,
    authorizationServers: [issuer.url],
    audit: (e) => events.push(e),
    clock: () => jsonClock,
  })
  jsonServer = createServer(jsonGuard.nodeHandler({ createServer: buildServer, enableJsonResponse: true, sessionIdleMs: JSON_IDLE_MS, maxSessionsPerAgent: 2, maxStreamMs: 300 }))
  await new Promise<void>((resolve) => jsonServer.listen(port2, '127.0.0.1', resolve))
})

afterAll(async () => {
  for (const c of clients) await c.close().catch(() => undefined)
  for (const server of [httpServer, jsonServer]) {
    if (!server) continue
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  await cleanup()
})

describe('discovery and authentication', () => {
  it('publishes RFC 9728 metadata naming the issuer', async () => {
    const r = await fetch(guard.metadataUrl)
    expect(r.status).toBe(200)
    expect(new URL(guard.metadataUrl).pathname).toBe('/.well-known/oauth-protected-resource/mcp')
    expect(await r.json()).toEqual({
      resource,
      authorization_servers: [issuer.url],
      bearer_methods_supported: ['header'],
      dpop_signing_alg_values_supported: ['EdDSA', 'ES256'],
      dpop_bound_access_tokens_required: true,
    })
  })

  it('refuses a request without credentials with a DPoP challenge pointing at the metadata; the SDK client cannot connect', async () => {
    const before = calls.length
    const r = await fetch(resource, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify(rpc(1, 'initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } })),
    })
    expect(r.status).toBe(401)
    expect(r.headers.get('www-authenticate')).toBe(`DPoP algs="EdDSA ES256", resource_metadata="${guard.metadataUrl}"`)
    expect(r.headers.get('mcp-session-id')).toBeNull()

    const client = new Client({ name: 'anonymous', version: '1.0.0' })
    const error = await rejection(client.connect(new StreamableHTTPClientTransport(new URL(resource))))
    expect(error).toBeInstanceOf(StreamableHTTPError)
    expect((error as StreamableHTTPError).code).toBe(401)
    expect(calls.length).toBe(before)
  })

  it('a DPoP proof is checked against the resource origin: a request-target naming another host (//host/mcp, absolute form) is refused', async () => {
    // The agent signs its proof for http://evil.example/mcp (htu); the request reaches this server with a
    // request-target that names that host. The guard must check htu against its own origin, not the one the
    // request-target claims.
    const real = new URL(resource)
    const initialize = JSON.stringify(rpc(1, 'initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } }))
    const sendTo = (target: string): FetchFunction => async (input, init) => {
      const url = String(input instanceof Request ? input.url : input)
      if (!url.startsWith('http://evil.example/')) return fetch(input, init)
      const headers: Record<string, string> = {}
      new Headers(init?.headers).forEach((v, k) => { headers[k] = v })
      return new Promise<Response>((resolve, reject) => {
        const req = httpRequest({ host: real.hostname, port: real.port, path: target, method: init?.method ?? 'GET', headers }, (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => resolve(new Response(Buffer.concat(chunks), { status: res.statusCode!, headers: { 'content-type': String(res.headers['content-type'] ?? 'text/plain') } })))
        })
        req.on('error', reject)
        req.end(typeof init?.body === 'string' ? init.body : undefined)
      })
    }
    const before = calls.length
    for (const target of ['//evil.example/mcp', 'http://evil.example/mcp']) {
      const agentFetch = createAgentFetch({ issuerUrl: issuer.url, privateJwk: agents.alice.privateJwk, resource, fetch: sendTo(target) })
      const r = await agentFetch('http://evil.example/mcp', {
        method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: initialize,
      })
      expect(r.status, target).not.toBe(200)
      expect([401, 404], target).toContain(r.status)
    }
    expect(calls.length).toBe(before)
  })
})

describe('authorization per tool (DPoP-bound tokens)', () => {
  it('tools/list shows only the tools the agent may call; an allowed call reaches the tool as that agent', async () => {
    const { client, transport } = await connect(tokenFetch('alice'))
    const { tools } = await client.listTools()
    expect(tools.map((t) => t.name).sort()).toEqual(['echo', 'whoami'])
    const result = await client.callTool({ name: 'echo', arguments: {} })
    expect(result.content).toEqual([{ type: 'text', text: `echo:${agents.alice.did}` }])
    expect(toolCalls(agents.alice.did)).toEqual(['echo'])
    const allow = events.filter((e) => e.action === 'callTool' && e.agent === agents.alice.did)
    expect(allow).toEqual([expect.objectContaining({ decision: 'allow', target: 'echo', policies: ['call-profile-tools'], server: SERVER_ID, sessionId: transport.sessionId, user: null })])
    expect(events.some((e) => e.action === 'listTools' && e.agent === agents.alice.did && e.shown === 2 && e.total === 4 + LOOKALIKE_TOOLS.length)).toBe(true)
  })

  it('a tool outside the policy, look-alike names (case, Unicode, zero-width, path tricks) and unknown tools are refused before any handler runs', async () => {
    const { client, transport } = await connect(tokenFetch('alice'))
    const before = toolCalls(agents.alice.did).length
    for (const name of ['admin', ...LOOKALIKE_TOOLS, ...UNKNOWN_TOOLS]) {
      const error = await rejection(client.callTool({ name, arguments: {} }))
      expect(error, JSON.stringify(name)).toBeInstanceOf(McpError)
      expect((error as McpError).code, JSON.stringify(name)).toBe(MCP_FORBIDDEN)
      const event = events.findLast((e) => e.action === 'callTool' && e.agent === agents.alice.did)
      // Denied by default, or refused by the engine as malformed (a control character in the name).
      expect(event).toMatchObject({ target: name, decision: 'deny', reason: name.includes('\u0000') ? 'invalid-request' : 'no-matching-policy', sessionId: transport.sessionId })
    }
    expect(toolCalls(agents.alice.did).length).toBe(before)
    // The ops tier may call admin, and sees it listed; still none of the look-alikes.
    const ops = (await connect(tokenFetch('ops'))).client
    expect((await ops.listTools()).tools.map((t) => t.name).sort()).toEqual(['admin', 'echo', 'wait', 'whoami'])
    expect((await ops.callTool({ name: 'admin', arguments: {} })).content).toEqual([{ type: 'text', text: `admin:${agents.ops.did}` }])
    expect((await rejection(ops.callTool({ name: 'echo/../admin', arguments: {} })) as McpError).code).toBe(MCP_FORBIDDEN)
    expect(toolCalls(agents.ops.did)).toEqual(['admin'])
  })

  it('resources and prompts: lists filtered, reads and gets authorized', async () => {
    const { client } = await connect(tokenFetch('alice'))
    expect((await client.listResources()).resources.map((r) => r.uri)).toEqual(['docs://readme'])
    expect((await client.readResource({ uri: 'docs://readme' })).contents).toEqual([{ uri: 'docs://readme', text: 'readme text' }])
    expect(((await rejection(client.readResource({ uri: 'docs://secrets' }))) as McpError).code).toBe(MCP_FORBIDDEN)
    expect((await client.listPrompts()).prompts.map((p) => p.name)).toEqual(['greet'])
    expect(((await rejection(client.getPrompt({ name: 'exfiltrate' }))) as McpError).code).toBe(MCP_FORBIDDEN)
    expect(calls.filter((c) => c.what === 'resource:docs://secrets' || c.what === 'prompt:exfiltrate')).toEqual([])
  })
})

describe('resource URIs as the SDK server resolves them', () => {
  it('a URI the SDK McpServer normalises to a forbidden resource (scheme case, whitespace, tabs, newlines) is refused', async () => {
    // A deny-list policy: every resource of the server but one. The SDK McpServer reads `new URL(uri).href`,
    // so a guard that decided on the raw string only would let `DOCS://secrets` reach docs://secrets.
    const dir = tempDir('agentid-mcp-uri-')
    writeFileSync(join(dir, 'p.cedar'), `
@id("read-all") permit (principal, action == AgentId::Action::"readResource", resource in AgentId::McpServer::"${SERVER_ID}");
@id("no-secrets") forbid (principal, action == AgentId::Action::"readResource", resource == AgentId::Resource::"${SERVER_ID}/docs://secrets");
`)
    const port = await freePort()
    const url = `http://127.0.0.1:${port}/mcp`
    const uriGuard = createMcpGuard({
      verifier: createVerifier({ trustedIssuers: [issuerDidValue] }), policy: await loadPolicyEngine({ dir }), serverId: SERVER_ID,
      resource: url, authorizationServers: [issuer.url], audit: (e) => events.push(e),
    })
    const server = createServer(uriGuard.nodeHandler({ createServer: buildServer }))
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    try {
      const { client } = await connect(tokenFetch('carol', undefined, url), url)
      expect(await client.readResource({ uri: 'docs://readme' })).toMatchObject({ contents: [{ text: 'readme text' }] })
      const secretReads = () => calls.filter((c) => c.what === 'resource:docs://secrets').length
      const before = secretReads()
      for (const uri of ['docs://secrets', 'DOCS://secrets', 'Docs://secrets', ' docs://secrets']) {
        const error = await rejection(client.readResource({ uri }))
        expect(error, JSON.stringify(uri)).toBeInstanceOf(McpError)
        expect((error as McpError).code, JSON.stringify(uri)).toBe(MCP_FORBIDDEN)
      }
      // A control character inside a URI is refused by the shared resource-identifier rule before policy.
      for (const uri of ['docs://secrets\t', 'docs://sec\nrets', 'docs://sec\trets']) {
        const error = await rejection(client.readResource({ uri }))
        expect(error, JSON.stringify(uri)).toBeInstanceOf(McpError)
        expect((error as McpError).code, JSON.stringify(uri)).toBe(-32602)
      }
      expect(secretReads()).toBe(before)
    } finally {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  })
})

describe('sessions and stolen credentials', () => {
  it('another agent, with its own valid credentials, cannot use a session; nor can a request without credentials', async () => {
    const { client, transport } = await connect(tokenFetch('alice'))
    const sessionId = transport.sessionId!
    expect(sessionId).toEqual(expect.any(String))
    const before = calls.length
    const stolen = await rawPost(tokenFetch('bob'), JSON.stringify(rpc(99, 'tools/call', { name: 'echo', arguments: {} })), sessionId)
    expect(stolen.status).toBe(404)
    expect(answers.findLast((a) => a.agent === 'bob')).toMatchObject({ agent: 'bob', status: 404, code: 'ERR_NOT_FOUND' })
    expect(events.findLast((e) => e.action === 'session')).toMatchObject({ agent: agents.bob.did, decision: 'deny', sessionId, reason: 'session-bound-to-another-caller' })
    const anonymous = await rawPost(fetch as FetchFunction, JSON.stringify(rpc(100, 'tools/call', { name: 'echo', arguments: {} })), sessionId)
    expect(anonymous.status).toBe(401)
    // Also through the presentation path: bob presenting his own credential on alice's session.
    const viaPresentation = await rawPost(presentationFetch('bob'), JSON.stringify(rpc(101, 'tools/call', { name: 'echo', arguments: {} })), sessionId)
    expect(viaPresentation.status).toBe(404)
    expect(calls.length).toBe(before)
    // The session is still alice's.
    expect((await client.callTool({ name: 'whoami', arguments: {} })).content).toEqual([{ type: 'text', text: `whoami:${agents.alice.did}` }])
  })

  it("another agent's token with a proof signed by the wrong key, or replayed with its own proof, is refused", async () => {
    let captured: { authorization: string; dpop: string; body: string } | undefined
    const bobFetch = tokenFetch('bob', (_url, init) => {
      const h = new Headers(init.headers)
      if (init.method === 'POST' && typeof init.body === 'string' && init.body.includes('"tools/list"')) {
        captured = { authorization: h.get('authorization')!, dpop: h.get('dpop')!, body: init.body }
      }
    })
    const { client, transport } = await connect(bobFetch)
    await client.listTools()
    expect(captured?.authorization).toMatch(/^DPoP /)
    const token = captured!.authorization.slice(5)
    const headers = (dpop: string) => ({
      authorization: `DPoP ${token}`, dpop, 'content-type': 'application/json', accept: 'application/json, text/event-stream',
      'mcp-session-id': transport.sessionId!, 'mcp-protocol-version': '2025-06-18',
    })
    // Mallory holds bob's token and signs her own proof for it.
    const mallory = generateEd25519KeyPair().privateJwk
    const iat = Math.floor(Date.now() / 1000)
    const proof = await signCompactJws(
      { typ: 'dpop+jwt', alg: 'EdDSA', jwk: { kty: 'OKP', crv: 'Ed25519', x: mallory.x } },
      JSON.stringify({ htm: 'POST', htu: resource, iat, jti: randomUUID(), ath: createHash('sha256').update(token).digest('base64url') }),
      signerFromJwk(mallory),
    )
    const before = calls.length
    const forged = await fetch(resource, { method: 'POST', headers: headers(proof), body: JSON.stringify(rpc(7, 'tools/call', { name: 'echo', arguments: {} })) })
    expect(forged.status).toBe(401)
    expect(await errorCode(forged)).toBe('ERR_KEY_MISMATCH')
    expect(forged.headers.get('www-authenticate')).toContain(`resource_metadata="${guard.metadataUrl}"`)
    // Bob's own request, replayed byte for byte.
    const replayed = await fetch(resource, { method: 'POST', headers: headers(captured!.dpop), body: captured!.body })
    expect(replayed.status).toBe(401)
    expect(await errorCode(replayed)).toBe('ERR_REPLAY')
    expect(calls.length).toBe(before)

    // A token, or a presentation, made out for another resource.
    const elsewhere = await rawPost(tokenFetch('bob', undefined, jsonResource), JSON.stringify(rpc(8, 'tools/list')), transport.sessionId)
    expect(elsewhere.status).toBe(401)
    expect(elsewhere.messages[0]).toMatchObject({ error: { data: { code: 'ERR_AUDIENCE_MISMATCH' } } })
    const vp = await createPresentation({ privateJwk: agents.bob.privateJwk, credential: agents.bob.credential, audience: jsonResource })
    const vpElsewhere = await fetch(resource, { method: 'POST', headers: { ...headers(captured!.dpop), authorization: `AgentID ${vp}` }, body: JSON.stringify(rpc(9, 'tools/list')) })
    expect(vpElsewhere.status).toBe(401)
    expect(await errorCode(vpElsewhere)).toBe('ERR_AUDIENCE_MISMATCH')
    // Two credentials at once (fetch joins them into one header with a comma).
    const both = new Headers(headers(captured!.dpop))
    both.append('authorization', `AgentID ${vp}`)
    const twice = await fetch(resource, { method: 'POST', headers: both, body: JSON.stringify(rpc(10, 'tools/list')) })
    expect(twice.status).toBe(400)
    expect(calls.length).toBe(before)
  })
})

describe('agents acting for users (token exchange)', () => {
  it('the user reaches the policy and the audit; a session belongs to its agent and user together', async () => {
    const forUser1 = await connect(await userTokenFetch(agents.alice, 'user-1'))
    expect((await forUser1.client.callTool({ name: 'whoami', arguments: {} })).content).toEqual([{ type: 'text', text: `whoami:${agents.alice.did}` }])
    expect(events.findLast((e) => e.agent === agents.alice.did && e.action === 'callTool')).toMatchObject({ user: 'user-1', target: 'whoami', decision: 'allow' })
    const forUser2 = await connect(await userTokenFetch(agents.alice, 'user-2'))
    expect(((await rejection(forUser2.client.callTool({ name: 'whoami', arguments: {} }))) as McpError).code).toBe(MCP_FORBIDDEN)
    expect(events.findLast((e) => e.agent === agents.alice.did && e.action === 'callTool')).toMatchObject({ user: 'user-2', target: 'whoami', decision: 'deny', policies: ['user-2-no-whoami'] })

    // The same agent, for another user, for no user, or for a user of the same id at another IdP, cannot use user-1's session.
    const before = calls.length
    const sessionId = forUser1.transport.sessionId!
    for (const fetchFn of [await userTokenFetch(agents.alice, 'user-2'), tokenFetch('alice'), await userTokenFetch(agents.alice, 'user-1', IDP2_ISSUER)]) {
      const r = await rawPost(fetchFn, JSON.stringify(rpc(5, 'tools/call', { name: 'echo', arguments: {} })), sessionId)
      expect(r.status).toBe(404)
    }
    expect(calls.length).toBe(before)
    expect((await forUser1.client.callTool({ name: 'echo', arguments: {} })).content).toEqual([{ type: 'text', text: `echo:${agents.alice.did}` }])
  })
})

describe('malformed JSON-RPC', () => {
  it('refuses bodies that are not JSON-RPC before the server sees them; a batch mixing allowed and denied calls runs only the allowed ones', async () => {
    const { transport } = await connect(tokenFetch('alice'))
    const sessionId = transport.sessionId!
    const alice = tokenFetch('alice')
    const before = toolCalls(agents.alice.did).length

    for (const [body, code] of [['not json', -32700], ['{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}', -32700], ['[]', -32600], ['[1,2]', -32600], ['{"id":1,"method":"tools/call","params":{"name":"echo"}}', -32600], ['"tools/call"', -32600]] as const) {
      const r = await rawPost(alice, body, sessionId)
      expect(r.status, body).toBe(400)
      expect(r.messages[0]).toMatchObject({ error: { code } })
    }
    const dup = await rawPost(alice, JSON.stringify([rpc(1, 'tools/call', { name: 'echo' }), rpc(1, 'tools/call', { name: 'admin' })]), sessionId)
    expect(dup.status).toBe(400)
    const huge = await rawPost(alice, JSON.stringify(rpc(2, 'tools/call', { name: 'echo', arguments: { text: 'x'.repeat(2 * 1024 * 1024) } })), sessionId)
    expect(huge.status).toBe(413)
    expect(huge.messages[0]).toMatchObject({ error: { data: { code: 'ERR_PAYLOAD_TOO_LARGE' } } })

    const batch = await rawPost(alice, JSON.stringify([
      rpc(10, 'tools/call', { name: 'echo', arguments: {} }),
      rpc(11, 'tools/call', { name: 'admin', arguments: {} }),
      rpc(12, 'tools/call', { name: 'Echo', arguments: {} }),
      rpc(13, 'tools/list'),
      rpc(14, 'tools/call', { name: 42 }),
      rpc(15, 'admin/exec', { name: 'echo' }),
      { jsonrpc: '2.0', method: 'tools/call', params: { name: 'admin', arguments: {} } },
    ]), sessionId)
    expect(batch.status).toBe(200)
    const byId = new Map(batch.messages.map((m) => [m.id, m]))
    expect(byId.get(10)).toMatchObject({ result: { content: [{ type: 'text', text: `echo:${agents.alice.did}` }] } })
    expect(byId.get(11)).toMatchObject({ error: { code: MCP_FORBIDDEN } })
    expect(byId.get(12)).toMatchObject({ error: { code: MCP_FORBIDDEN } })
    expect(((byId.get(13)!.result as { tools: { name: string }[] }).tools).map((t) => t.name).sort()).toEqual(['echo', 'whoami'])
    expect(byId.get(14)).toMatchObject({ error: { code: -32602 } })
    expect(byId.get(15)).toMatchObject({ error: { code: -32601 } })
    expect(batch.messages).toHaveLength(6)
    expect(batch.text).not.toContain('admin:')

    // A notification naming a request method is dropped.
    const note = await rawPost(alice, JSON.stringify({ jsonrpc: '2.0', method: 'tools/call', params: { name: 'admin', arguments: {} } }), sessionId)
    expect(note.status).toBe(202)
    expect(toolCalls(agents.alice.did).slice(before)).toEqual(['echo'])
    expect(toolCalls(agents.alice.did)).not.toContain('admin')
  })

  it('a request id still in flight cannot be reused on the session', async () => {
    const { transport } = await connect(tokenFetch('ops'))
    const ops = tokenFetch('ops')
    const aborter = new AbortController()
    const slow = ops(resource, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': transport.sessionId!, 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify(rpc(77, 'tools/call', { name: 'wait', arguments: {} })),
      signal: aborter.signal,
    })
    // Until the wait tool runs (it holds id 77 in flight); bounded, so a refused call fails here, not by timeout.
    for (let tries = 0; releases.length === 0; tries++) {
      if (tries > 500) throw new Error('the wait tool never ran')
      await sleep(10)
    }
    const before = toolCalls(agents.ops.did).length
    for (const body of [rpc(77, 'tools/call', { name: 'echo', arguments: {} }), rpc(77, 'tools/list')]) {
      const reused = await rawPost(ops, JSON.stringify(body), transport.sessionId)
      expect(reused.messages).toEqual([{ jsonrpc: '2.0', id: 77, error: { code: -32600, message: expect.any(String) } }])
    }
    expect(toolCalls(agents.ops.did).length).toBe(before)
    releases.shift()!()
    // The first request still gets its own answer on its stream.
    const first = await Promise.race([slow.then((r) => r.text()), sleep(5000).then(() => 'no answer')])
    expect(first).toContain('"id":77')
    expect(first).toContain('waited')
    aborter.abort()
    await slow.catch(() => undefined)
  })

  it('a request on no session must be initialize; an unknown session is 404', async () => {
    const alice = tokenFetch('alice')
    expect((await rawPost(alice, JSON.stringify(rpc(1, 'tools/call', { name: 'echo' })))).status).toBe(400)
    expect((await rawPost(alice, JSON.stringify(rpc(1, 'tools/call', { name: 'echo' })), randomUUID())).status).toBe(404)
  })
})

describe('presentations (Authorization: AgentID <vp-jwt>)', () => {
  it('authenticates each request with a fresh presentation; a replayed one is refused', async () => {
    let last = ''
    const { client, transport } = await connect(presentationFetch('dave', (a) => { last = a }))
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(['echo', 'whoami'])
    expect((await client.callTool({ name: 'echo', arguments: {} })).content).toEqual([{ type: 'text', text: `echo:${agents.dave.did}` }])
    expect(((await rejection(client.callTool({ name: 'admin', arguments: {} }))) as McpError).code).toBe(MCP_FORBIDDEN)
    const replay = await fetch(resource, {
      method: 'POST',
      headers: { authorization: last, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': transport.sessionId!, 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify(rpc(50, 'tools/call', { name: 'echo', arguments: {} })),
    })
    expect(replay.status).toBe(401)
    expect(await errorCode(replay)).toBe('ERR_REPLAY')
    expect(toolCalls(agents.dave.did)).toEqual(['echo'])
  })
})

describe('JSON responses and session lifetime', () => {
  it('answers in JSON; a mixed batch gets the allowed result and the refusals', async () => {
    const { client, transport } = await connect(tokenFetch('alice', undefined, jsonResource), jsonResource)
    // The first request was refused with use_dpop_nonce and the nonce, then retried with it.
    const first = answers.find((a) => a.agent === 'alice' && a.nonce === JSON_NONCE)
    expect(first).toMatchObject({ status: 401, challenge: `DPoP error="use_dpop_nonce", algs="EdDSA ES256", resource_metadata="${new URL(jsonResource).origin}/.well-known/oauth-protected-resource/mcp"` })
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(['echo', 'whoami'])
    expect(((await rejection(client.callTool({ name: 'admin', arguments: {} }))) as McpError).code).toBe(MCP_FORBIDDEN)
    const batch = await rawPost(tokenFetch('alice', undefined, jsonResource), JSON.stringify([
      rpc('a', 'tools/call', { name: 'whoami', arguments: {} }),
      rpc('b', 'tools/call', { name: 'echo\u200b', arguments: {} }),
    ]), transport.sessionId, jsonResource)
    expect(batch.status).toBe(200)
    expect(batch.messages).toEqual([
      { jsonrpc: '2.0', id: 'a', result: { content: [{ type: 'text', text: `whoami:${agents.alice.did}` }] } },
      { jsonrpc: '2.0', id: 'b', error: { code: MCP_FORBIDDEN, message: expect.any(String) } },
    ])
  })

  it('a server-to-client stream (GET) is ended after maxStreamMs, and opens again authenticated', async () => {
    const { transport } = await connect(tokenFetch('dave', undefined, jsonResource), jsonResource)
    const dave = tokenFetch('dave', undefined, jsonResource)
    const open = () => dave(jsonResource, { method: 'GET', headers: { accept: 'text/event-stream', 'mcp-session-id': transport.sessionId!, 'mcp-protocol-version': '2025-06-18' } })
    for (let i = 0; i < 2; i++) {
      let r = await open()
      // The SDK client's own stream may hold the session's single slot (409): it ends within maxStreamMs too.
      for (let tries = 0; r.status === 409 && tries < 50; tries++) {
        await r.body?.cancel()
        await sleep(100)
        r = await open()
      }
      expect(r.status).toBe(200)
      expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/)
      await r.text() // resolves only once the server ends the stream
    }
    // Without credentials it does not open.
    const anonymous = await fetch(jsonResource, { method: 'GET', headers: { accept: 'text/event-stream', 'mcp-session-id': transport.sessionId!, 'mcp-protocol-version': '2025-06-18' } })
    expect(anonymous.status).toBe(401)
  })

  it('DELETE of a session only by its agent; sessions per agent are capped; idle sessions close', async () => {
    const bob = tokenFetch('bob', undefined, jsonResource)
    const first = await connect(bob, jsonResource)
    const sessionId = first.transport.sessionId!
    // Another agent cannot end it.
    const alice = tokenFetch('alice', undefined, jsonResource)
    const foreign = await alice(jsonResource, { method: 'DELETE', headers: { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' } })
    expect(foreign.status).toBe(404)
    expect((await first.client.callTool({ name: 'echo', arguments: {} })).content).toEqual([{ type: 'text', text: `echo:${agents.bob.did}` }])

    // maxSessionsPerAgent: 2 — a third initialize is refused with 503.
    await connect(bob, jsonResource)
    const third = await rejection(connect(bob, jsonResource))
    expect((third as StreamableHTTPError).code).toBe(503)

    // After the idle time, the sessions close: the next request on one is 404, and a new one opens.
    jsonClock += JSON_IDLE_MS + 1000
    const gone = await rawPost(bob, JSON.stringify(rpc(1, 'tools/list')), sessionId, jsonResource)
    expect(gone.status).toBe(404)
    const fresh = await connect(bob, jsonResource)
    expect((await fresh.client.listTools()).tools.map((t) => t.name).sort()).toEqual(['echo', 'whoami'])
    // Its own agent ends it with DELETE.
    const own = await bob(jsonResource, { method: 'DELETE', headers: { 'mcp-session-id': fresh.transport.sessionId!, 'mcp-protocol-version': '2025-06-18' } })
    expect(own.status).toBe(200)
    expect((await rawPost(bob, JSON.stringify(rpc(2, 'tools/list')), fresh.transport.sessionId, jsonResource)).status).toBe(404)
  })
})

describe('session caps under a burst', () => {
  it('concurrent initializes by one agent open at most maxSessionsPerAgent sessions; the rest get 503', async () => {
    const ops = tokenFetch('ops', undefined, jsonResource)
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => connect(ops, jsonResource)))
    const opened = results.filter((r) => r.status === 'fulfilled')
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    expect(opened).toHaveLength(2)
    expect(refused.map((r) => (r.reason as StreamableHTTPError).code)).toEqual([503, 503, 503])
  })
})

describe('delegation chains (presentations and tokens)', () => {
  it('a delegated agent may call what its chain grants, is refused beyond it, and a chain one link too long is refused', async () => {
    // A holds a root link from the issuer for its profile; A → eve grants echo only; eve → frank makes the chain 3 links long.
    const a = await agentHeldSpawn(issuerDidValue, 'mcp-deleg-a')
    const spawned = await api(issuer, 'POST', '/v1/agents', { key: orchestratorKey, json: { ...a.body, toolProfile: ['echo', 'whoami'], grantToolProfile: true } })
    expect(spawned.status, spawned.text).toBe(201)
    const root = spawned.body.delegationChain as string[]
    const rootId = JSON.parse(Buffer.from(root[0]!.split('.')[1]!, 'base64url').toString('utf8')).jti as string
    const aSigner = signerFromJwk(a.privateJwk)
    const toEve = await registerDelegation({ issuerUrl: issuer.url, signer: aSigner, parentId: rootId, delegatee: agents.eve.did })
    const eveChain = await delegate({ signer: aSigner, to: agents.eve.did, parent: root, id: toEve.id, statusEntry: toEve.statusEntry, capabilities: [{ resource: 'echo', actions: ['invoke'] }], expiresIn: 600 })
    const eveSigner = signerFromJwk(agents.eve.privateJwk)
    const toFrank = await registerDelegation({ issuerUrl: issuer.url, signer: eveSigner, parentId: toEve.id, delegatee: agents.frank.did })
    const frankChain = await delegate({ signer: eveSigner, to: agents.frank.did, parent: eveChain, id: toFrank.id, statusEntry: toFrank.statusEntry, capabilities: [{ resource: 'echo', actions: ['invoke'] }], expiresIn: 600 })

    const chained = (name: 'eve' | 'frank', chain: readonly string[]): FetchFunction => async (input, init) => {
      const agent = agents[name]
      const vp = await createPresentation({ privateJwk: agent.privateJwk, credential: agent.credential, audience: resource, delegationChain: chain })
      const headers = new Headers(init?.headers)
      headers.set('authorization', `AgentID ${vp}`)
      return fetch(input, { ...init, headers })
    }
    const eve = (await connect(chained('eve', eveChain))).client
    // whoami is in eve's own profile, but not in the chain she acts on.
    expect((await eve.listTools()).tools.map((t) => t.name)).toEqual(['echo'])
    expect((await eve.callTool({ name: 'echo', arguments: {} })).content).toEqual([{ type: 'text', text: `echo:${agents.eve.did}` }])
    expect(((await rejection(eve.callTool({ name: 'whoami', arguments: {} }))) as McpError).code).toBe(MCP_FORBIDDEN)
    expect(events.findLast((e) => e.agent === agents.eve.did && e.action === 'callTool')).toMatchObject({ target: 'whoami', decision: 'deny', policies: ['delegated-within-grants'] })

    const frank = (await connect(chained('frank', frankChain))).client
    expect(((await rejection(frank.callTool({ name: 'echo', arguments: {} }))) as McpError).code).toBe(MCP_FORBIDDEN)
    expect(events.findLast((e) => e.agent === agents.frank.did && e.action === 'callTool')).toMatchObject({ target: 'echo', decision: 'deny', policies: ['delegation-depth'] })
    expect(toolCalls(agents.eve.did)).toEqual(['echo'])
    expect(toolCalls(agents.frank.did)).toEqual([])

    // The same chains through DPoP-bound tokens (agentid.delegation): the issuer refuses details beyond
    // the chain; what it issues, the guard decides with the chain's depth and the token's details.
    await expect(delegatedTokenFetch(agents.eve.privateJwk, eveChain, ['whoami'])).rejects.toThrow(/invalid_authorization_details/)
    const eveToken = (await connect(await delegatedTokenFetch(agents.eve.privateJwk, eveChain, ['echo']))).client
    expect((await eveToken.listTools()).tools.map((t) => t.name)).toEqual(['echo'])
    expect((await eveToken.callTool({ name: 'echo', arguments: {} })).content).toEqual([{ type: 'text', text: `echo:${agents.eve.did}` }])
    expect(((await rejection(eveToken.callTool({ name: 'whoami', arguments: {} }))) as McpError).code).toBe(MCP_FORBIDDEN)
    expect(events.findLast((e) => e.agent === agents.eve.did && e.action === 'callTool')).toMatchObject({ target: 'whoami', decision: 'deny', policies: ['delegated-within-grants'] })
    const frankToken = (await connect(await delegatedTokenFetch(agents.frank.privateJwk, frankChain, ['echo']))).client
    expect(((await rejection(frankToken.callTool({ name: 'echo', arguments: {} }))) as McpError).code).toBe(MCP_FORBIDDEN)
    expect(events.findLast((e) => e.agent === agents.frank.did && e.action === 'callTool')).toMatchObject({ target: 'echo', decision: 'deny', policies: ['delegation-depth'] })
    expect(toolCalls(agents.eve.did)).toEqual(['echo', 'echo'])
    expect(toolCalls(agents.frank.did)).toEqual([])
  })
})

describe('JSON responses: the fast path refuses exactly what the SDK transport path refuses', () => {
  /** Two endpoints alike in all but the path their POSTed requests take: fast (the default) and through the SDK transport. */
  const endpoints: Record<'fast' | 'sdk', { url: string; server: Server }> = {} as never
  beforeAll(async () => {
    const policy = await loadPolicyEngine({ dir: (() => { const d = tempDir('agentid-mcp-fast-'); writeFileSync(join(d, 'demo.cedar'), POLICIES); return d })() })
    for (const [name, fastPath] of [['fast', true], ['sdk', false]] as const) {
      const url = `http://127.0.0.1:${await freePort()}/mcp`
      const g = createMcpGuard({
        verifier: createVerifier({ trustedIssuers: [issuerDidValue], statusTtlMs: STATUS_TTL_MS, statusGraceMs: 0 }),
        policy, serverId: SERVER_ID, resource: url, authorizationServers: [issuer.url], audit: (e) => events.push(e),
      })
      const server = createServer(g.nodeHandler({ createServer: buildServer, enableJsonResponse: true, fastPath }))
      await new Promise<void>((resolve) => server.listen(Number(new URL(url).port), '127.0.0.1', resolve))
      endpoints[name] = { url, server }
    }
  })
  afterAll(async () => {
    for (const { server } of Object.values(endpoints)) {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  })

  /** The same hostile requests against one endpoint: every answer, audit event (less time and session id) and handler run. */
  async function hostile(url: string): Promise<{ outcomes: unknown[]; audit: unknown[]; ran: unknown[]; viaSdk: number; waited: unknown }> {
    const outcomes: unknown[] = []
    const firstEvent = events.length
    const firstCall = calls.length
    const spy = vi.spyOn(StreamableHTTPServerTransport.prototype, 'handleRequest')
    const { client, transport } = await connect(tokenFetch('alice', undefined, url), url)
    const sessionId = transport.sessionId!
    const alice = tokenFetch('alice', undefined, url)
    const post = async (agentFetch: FetchFunction, body: unknown, headers: Record<string, string> = {}) => {
      const r = await agentFetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) })
      const text = await r.text()
      outcomes.push({ status: r.status, body: text === '' ? null : JSON.parse(text) })
    }
    try {
      const posts = () => spy.mock.calls.filter(([req]) => req.method === 'POST').length
      const sdkBefore = posts()
      outcomes.push((await client.listTools()).tools.map((t) => t.name).sort())
      outcomes.push(await client.callTool({ name: 'echo', arguments: {} }))
      for (const name of ['admin', ...LOOKALIKE_TOOLS, ...UNKNOWN_TOOLS]) outcomes.push(await rejection(client.callTool({ name, arguments: {} })).then((e) => (e as McpError).code))
      await post(alice, [
        rpc(10, 'tools/call', { name: 'echo', arguments: {} }), rpc(11, 'tools/call', { name: 'admin', arguments: {} }),
        rpc(12, 'tools/call', { name: 'Echo', arguments: {} }), rpc(13, 'tools/list'), rpc(14, 'tools/call', { name: 42 }),
        rpc(15, 'admin/exec', { name: 'echo' }), rpc(16, 'resources/read', { uri: 'docs://secrets' }), rpc(17, 'prompts/get', { name: 'exfiltrate' }),
        rpc(18, 'resources/list'), rpc(19, 'prompts/get', { name: 'greet' }), rpc(20, 'tools/call', { arguments: {} }), rpc(21, 'ping'),
      ])
      // Every request so far took the fast path on the fast endpoint (the SDK transport saw none of their POSTs).
      const plainViaSdk = posts() - sdkBefore
      // Bodies and headers the fast path leaves to the SDK transport: the answers must still be the same.
      await post(alice, [rpc(30, 'tools/call', { name: 'echo', arguments: {} }), { jsonrpc: '2.0', method: 'tools/call', params: { name: 'admin', arguments: {} } }])
      await post(alice, { ...rpc(31, 'tools/call', { name: 'admin', arguments: {} }), extra: 1 })
      await post(alice, { jsonrpc: '2.0', id: 32, method: 'tools/call', params: ['admin'] })
      await post(alice, rpc(33, 'tools/call', { name: 'admin', arguments: {}, _meta: { progressToken: 1 } }))
      await post(alice, rpc(34, 'tools/call', { name: 'echo', arguments: {}, _meta: { progressToken: 'p' } }))
      await post(alice, rpc(35, 'initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } }))
      await post(alice, rpc(36, 'tools/call', { name: 'admin', arguments: {} }), { accept: 'application/json' })
      await post(alice, rpc(37, 'tools/call', { name: 'admin', arguments: {} }), { 'content-type': 'text/plain' })
      await post(alice, rpc(38, 'tools/call', { name: 'admin', arguments: {} }), { 'mcp-protocol-version': '1999-01-01' })
      // Another agent on alice's session, with its own valid token; no credentials at all.
      await post(tokenFetch('bob', undefined, url), rpc(40, 'tools/call', { name: 'echo', arguments: {} }))
      await post(fetch as FetchFunction, rpc(41, 'tools/call', { name: 'echo', arguments: {} }))
      // An id still in flight (ops's wait tool) cannot be reused, on either path.
      const ops = await connect(tokenFetch('ops', undefined, url), url)
      const opsFetch = tokenFetch('ops', undefined, url)
      const aborter = new AbortController()
      const waiting = opsFetch(url, { method: 'POST', signal: aborter.signal, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': ops.transport.sessionId!, 'mcp-protocol-version': '2025-06-18' }, body: JSON.stringify(rpc(77, 'tools/call', { name: 'wait', arguments: {} })) })
      for (let tries = 0; releases.length === 0; tries++) {
        if (tries > 500) throw new Error('the wait tool never ran')
        await sleep(10)
      }
      for (const body of [rpc(77, 'tools/call', { name: 'echo', arguments: {} }), [rpc(76, 'tools/call', { name: 'echo', arguments: {} }), rpc(77, 'tools/list')]]) {
        const r = await opsFetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': ops.transport.sessionId!, 'mcp-protocol-version': '2025-06-18' }, body: JSON.stringify(body) })
        outcomes.push({ status: r.status, body: await r.json() })
      }
      const ranBefore = calls.length
      releases.shift()!()
      // The first request's own answer (bounded wait: through the SDK transport alone it would be lost).
      const waited = await Promise.race([waiting.then(async (r) => ({ status: r.status, body: await r.json() })), sleep(2000).then(() => 'no answer')])
      aborter.abort()
      await waiting.catch(() => undefined)
      return {
        waited,
        outcomes,
        audit: events.slice(firstEvent).map(({ time: _t, sessionId: _s, ...e }) => e),
        ran: calls.slice(firstCall, ranBefore),
        viaSdk: plainViaSdk,
      }
    } finally {
      spy.mockRestore()
    }
  }

  it('denied tools, look-alike names, a batch with denied entries, another agent, no credentials, an id in flight: same answers, audit and handler runs', async () => {
    const fast = await hostile(endpoints.fast.url)
    const sdk = await hostile(endpoints.sdk.url)
    expect(fast.viaSdk).toBe(0)
    expect(sdk.viaSdk).toBeGreaterThan(0)
    expect(fast.outcomes).toEqual(sdk.outcomes)
    expect(fast.audit).toEqual(sdk.audit)
    expect(fast.ran).toEqual(sdk.ran)
    // And what the answers are: nothing denied ran, the refusals are the guard's.
    const [tools, echo, ...rest] = fast.outcomes as [string[], unknown, ...unknown[]]
    expect(tools).toEqual(['echo', 'whoami'])
    expect(echo).toMatchObject({ content: [{ type: 'text', text: `echo:${agents.alice.did}` }] })
    expect(rest.slice(0, 1 + LOOKALIKE_TOOLS.length + UNKNOWN_TOOLS.length).every((c) => c === MCP_FORBIDDEN)).toBe(true)
    const batch = rest[1 + LOOKALIKE_TOOLS.length + UNKNOWN_TOOLS.length] as { status: number; body: { id: number; error?: { code: number }; result?: Record<string, unknown> }[] }
    expect(batch.status).toBe(200)
    expect(batch.body.map((m) => [m.id, m.error?.code ?? 'ok'])).toEqual([[10, 'ok'], [11, MCP_FORBIDDEN], [12, MCP_FORBIDDEN], [13, 'ok'], [14, -32602], [15, -32601], [16, MCP_FORBIDDEN], [17, MCP_FORBIDDEN], [18, 'ok'], [19, 'ok'], [20, -32602], [21, 'ok']])
    expect((batch.body[3]!.result!.tools as { name: string }[]).map((t) => t.name).sort()).toEqual(['echo', 'whoami'])
    expect(fast.ran.map((c) => (c as { what: string }).what).sort()).toEqual(['prompt:greet', 'tool:echo', 'tool:echo', 'tool:echo', 'tool:echo', 'tool:echo', 'tool:wait'])
    const tail = fast.outcomes.slice(-13) as { status: number; body: unknown }[]
    expect(tail.map((o) => o.status)).toEqual([200, 400, 400, 200, 200, 400, 406, 415, 400, 404, 401, 200, 200])
    expect(tail[11]!.body).toEqual({ jsonrpc: '2.0', id: 77, error: { code: -32600, message: expect.any(String) } })
    expect(tail[12]!.body).toEqual([
      { jsonrpc: '2.0', id: 76, result: { content: [{ type: 'text', text: `echo:${agents.ops.did}` }] } },
      { jsonrpc: '2.0', id: 77, error: { code: -32600, message: expect.any(String) } },
    ])
    // The request whose id was reused still gets its own answer (the guard answers the reuse itself on both endpoints).
    expect(fast.waited).toMatchObject({ status: 200, body: { id: 77, result: { content: [{ type: 'text', text: 'waited' }] } } })
    expect(sdk.waited).toEqual(fast.waited)
  })

  it('a fast-path request in flight when its session is deleted is answered (connection closed), not left hanging', async () => {
    const url = endpoints.fast.url
    const ops = await connect(tokenFetch('ops', undefined, url), url)
    const opsFetch = tokenFetch('ops', undefined, url)
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': ops.transport.sessionId!, 'mcp-protocol-version': '2025-06-18' }
    const waiting = opsFetch(url, { method: 'POST', headers, body: JSON.stringify(rpc(5, 'tools/call', { name: 'wait', arguments: {} })) })
    for (let tries = 0; releases.length === 0; tries++) {
      if (tries > 500) throw new Error('the wait tool never ran')
      await sleep(10)
    }
    const deleted = await opsFetch(url, { method: 'DELETE', headers: { 'mcp-session-id': ops.transport.sessionId!, 'mcp-protocol-version': '2025-06-18' } })
    expect(deleted.status).toBe(200)
    const answered = await Promise.race([waiting.then(async (r) => ({ status: r.status, body: await r.json() })), sleep(5000).then(() => 'no answer')])
    expect(answered).toEqual({ status: 200, body: { jsonrpc: '2.0', id: 5, error: { code: -32000, message: 'Connection closed' } } })
    releases.shift()!()
  })
})

describe('directRequest: the fast path may answer admitted requests without the SDK server', () => {
  let url: string
  let server: Server
  /** What directRequest was handed, and how each direct call ended. */
  const seen: { id: unknown; method: string; params: unknown; agent: unknown }[] = []
  const cancelled: { id: unknown; reason: unknown }[] = []
  /** Direct calls answered when the test says so: id → settle. */
  const held = new Map<unknown, { resolve: (r: Record<string, unknown>) => void }>()
  beforeAll(async () => {
    const policy = await loadPolicyEngine({ dir: (() => { const d = tempDir('agentid-mcp-direct-'); writeFileSync(join(d, 'demo.cedar'), POLICIES); return d })() })
    url = `http://127.0.0.1:${await freePort()}/mcp`
    const g = createMcpGuard({
      verifier: createVerifier({ trustedIssuers: [issuerDidValue], statusTtlMs: STATUS_TTL_MS, statusGraceMs: 0 }),
      policy, serverId: SERVER_ID, resource: url, authorizationServers: [issuer.url], audit: (e) => events.push(e),
    })
    const handler = g.nodeHandler({
      createServer: buildServer,
      enableJsonResponse: true,
      directRequest: (request, extra) => {
        // Only echo and whoami calls; everything else is left to the server.
        if (request.method !== 'tools/call' || (request.params?.name !== 'echo' && request.params?.name !== 'whoami')) return undefined
        seen.push({ id: request.id, method: request.method, params: request.params, agent: extra.authInfo.clientId })
        const args = (request.params.arguments ?? {}) as Record<string, unknown>
        const result = args.fail === 'coded'
          ? Promise.reject(Object.assign(new Error('upstream said no'), { code: -32050, data: { why: 'test' } }))
          : args.fail === 'plain'
            ? Promise.reject(new Error('broke'))
            : args.hold
              ? new Promise<Record<string, unknown>>((resolve) => held.set(request.id, { resolve }))
              : Promise.resolve({ content: [{ type: 'text', text: `direct:${String(args.text)}` }] })
        return { result, cancel: (reason) => void cancelled.push({ id: request.id, reason }) }
      },
    })
    server = createServer(handler)
    await new Promise<void>((resolve) => server.listen(Number(new URL(url).port), '127.0.0.1', resolve))
  })
  afterAll(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })

  const headersFor = (sessionId: string) => ({ 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' })

  it('answers an allowed call instead of the server; denied calls, other methods and _meta never reach it; errors are answered as the SDK server answers them', async () => {
    const { client } = await connect(tokenFetch('alice', undefined, url), url)
    const firstCall = calls.length
    const firstSeen = seen.length
    expect(await client.callTool({ name: 'echo', arguments: { text: 'hi' } })).toEqual({ content: [{ type: 'text', text: 'direct:hi' }] })
    expect(seen.slice(firstSeen)).toEqual([{ id: expect.anything(), method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' } }, agent: agents.alice.did }])
    // Denied (and audited as such) before directRequest; a tool it declines runs on the server; lists go to the server.
    const firstEvent = events.length
    expect(((await rejection(client.callTool({ name: 'admin', arguments: {} }))) as McpError).code).toBe(MCP_FORBIDDEN)
    expect(events.slice(firstEvent)).toMatchObject([{ action: 'callTool', target: 'admin', decision: 'deny' }])
    expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(['echo', 'whoami'])
    // With _meta the request is not on the fast path: the SDK server runs the tool.
    const viaServer = await client.callTool({ name: 'echo', arguments: {}, _meta: { note: 'x' } })
    expect(viaServer).toMatchObject({ content: [{ type: 'text', text: `echo:${agents.alice.did}` }] })
    expect(seen.length - firstSeen).toBe(1)
    expect(calls.slice(firstCall).map((c) => c.what)).toEqual(['tool:echo'])
    // Errors: code, message and data as the SDK's Protocol sends a handler's error; no safe integer code → -32603.
    const alice = tokenFetch('alice', undefined, url)
    const sessionId = (await connect(alice, url)).transport.sessionId!
    const r = await alice(url, { method: 'POST', headers: headersFor(sessionId), body: JSON.stringify([rpc(1, 'tools/call', { name: 'echo', arguments: { fail: 'coded' } }), rpc(2, 'tools/call', { name: 'echo', arguments: { fail: 'plain' } })]) })
    expect(await r.json()).toEqual([
      { jsonrpc: '2.0', id: 1, error: { code: -32050, message: 'upstream said no', data: { why: 'test' } } },
      { jsonrpc: '2.0', id: 2, error: { code: -32603, message: 'broke' } },
    ])
  })

  it("the agent's notifications/cancelled cancels the direct call (no answer); closing the session cancels the rest and answers them connection closed", async () => {
    const alice = tokenFetch('alice', undefined, url)
    const { transport } = await connect(alice, url)
    const headers = headersFor(transport.sessionId!)
    const first = alice(url, { method: 'POST', headers, body: JSON.stringify(rpc('c1', 'tools/call', { name: 'echo', arguments: { hold: true } })) })
    const second = alice(url, { method: 'POST', headers, body: JSON.stringify(rpc('c2', 'tools/call', { name: 'echo', arguments: { hold: true } })) })
    for (let tries = 0; !(held.has('c1') && held.has('c2')); tries++) {
      if (tries > 500) throw new Error('the direct calls never started')
      await sleep(10)
    }
    // The id is in flight: reusing it is refused, and directRequest is not called again.
    const reuse = await alice(url, { method: 'POST', headers, body: JSON.stringify(rpc('c1', 'tools/call', { name: 'echo', arguments: {} })) })
    expect(await reuse.json()).toMatchObject({ id: 'c1', error: { code: -32600 } })
    const note = await alice(url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'c1', reason: 'changed my mind' } }) })
    expect(note.status).toBe(202)
    expect(cancelled).toEqual([{ id: 'c1', reason: 'changed my mind' }])
    held.get('c1')!.resolve({ content: [] }) // an answer after the cancel is dropped
    expect(await Promise.race([first.then((r) => r.status), sleep(300).then(() => 'no answer')])).toBe('no answer')
    first.catch(() => undefined) // ended with the connection at the end
    const deleted = await alice(url, { method: 'DELETE', headers: { 'mcp-session-id': transport.sessionId!, 'mcp-protocol-version': '2025-06-18' } })
    expect(deleted.status).toBe(200)
    expect(cancelled).toEqual([{ id: 'c1', reason: 'changed my mind' }, { id: 'c2', reason: undefined }])
    expect(await (await second).json()).toEqual({ jsonrpc: '2.0', id: 'c2', error: { code: -32000, message: 'Connection closed' } })
    held.get('c2')!.resolve({ content: [] })
  })

  it('refuses a directRequest that is not a function', () => {
    expect(() => guard.nodeHandler({ createServer: buildServer, directRequest: 42 as never })).toThrow(TypeError)
  })
})

describe('revocation mid-session', () => {
  it('an agent revoked with the CLI is refused on its open session within the status TTL', async () => {
    const { client } = await connect(tokenFetch('carol'))
    expect((await client.callTool({ name: 'echo', arguments: {} })).content).toEqual([{ type: 'text', text: `echo:${agents.carol.did}` }])
    const revoked = await adminCli(issuer, ['revoke', agents.carol.did, '--reason', 'mcp e2e', '--json'])
    expect(revoked.code, revoked.stderr).toBe(0)
    await sleep(STATUS_TTL_MS + 50)
    // Past the TTL the guard has fetched the list again: the very next call is refused, with the token still unexpired.
    const before = toolCalls(agents.carol.did).length
    const error = await rejection(client.callTool({ name: 'echo', arguments: {} }))
    expect(error).toBeDefined()
    expect(answers.filter((a) => a.agent === 'carol' && a.status === 401).map((a) => a.code)).toContain('ERR_REVOKED')
    expect(toolCalls(agents.carol.did).length).toBe(before)
  })
})
