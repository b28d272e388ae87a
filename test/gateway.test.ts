// End to end: the real issuer process, a real policy folder, the gateway started as a real process from
// apps/gateway/dist (`agentid-gateway --config <file>`), two real upstream MCP servers (a stdio child
// the gateway starts, and a Streamable HTTP server that wants a bearer secret), and the MCP SDK's own
// Client over Streamable HTTP with a DPoP-signing fetch (createAgentFetch) on the agent side.
import { spawn as spawnProcess, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { createAgentFetch, createPresentation, spawn, type Ed25519PrivateJwk, type FetchFunction } from '@agentid/client'
import { validatePolicyDirectory } from '@agentid/policy'
import { adminCli, cleanup, claims, freePort, issuerDid, ROOT, sleep, startIssuer, tempDir, type ExitStatus, type IssuerProcess } from './harness.js'
// @ts-expect-error: a plain .mjs test fixture
import { startHttpFixture } from './fixtures/http-server.mjs'

const GATEWAY_BIN = join(ROOT, 'apps/gateway/dist/main.js')
const STDIO_FIXTURE = join(ROOT, 'test/fixtures/stdio-server.mjs')
const STDIO_SECRET = 'stdio-upstream-secret-4c1d8e'
const HTTP_SECRET = 'http-upstream-secret-9a27f3'
const SECRETS = [STDIO_SECRET, HTTP_SECRET]
const STATUS_TTL_MS = 1000
const MCP_FORBIDDEN = -32003
const ALLOWED = ['echo', 'whoami', 'leak_secret', 'fail']

const POLICIES = `
@id("list-tools")
permit (principal is AgentId::Agent, action == AgentId::Action::"listTools", resource is AgentId::McpServer);

@id("standard-tools")
permit (principal is AgentId::Agent, action == AgentId::Action::"callTool", resource is AgentId::Tool)
when { principal.policyTier == "standard" && ["echo", "whoami", "leak_secret", "fail"].contains(resource.name) };

@id("stdio-readme")
permit (principal is AgentId::Agent, action == AgentId::Action::"readResource", resource is AgentId::Resource)
when { principal.policyTier == "standard" && resource.server == "local" && resource.uri == "fixture://stdio/readme" };
`

interface GatewayProcess { proc: ChildProcess; exited: Promise<ExitStatus>; output(): string }

let issuer: IssuerProcess
let gateway: GatewayProcess
let http: { url: string; calls: { tool: string }[]; requests: { headers: Record<string, unknown> }[]; close(): Promise<void> }
let dir: string
let callLog: string
let gatewayUrl: string
let did: string
let apiKey: string
const endpoint = (id: string) => `${gatewayUrl}/mcp/${id}`
/** Every response body the agents received from the gateway, and every error message they saw. */
const seen: string[] = []
const clients: Client[] = []

interface Agent { did: string; key: Ed25519PrivateJwk; credential: string }

/** Starts `node apps/gateway/dist/main.js --config <file>`; resolves once it logged that it listens (or exited). */
function startGateway(configFile: string, env: Record<string, string>): GatewayProcess & { ready: Promise<void> } {
  const proc = spawnProcess(process.execPath, [GATEWAY_BIN, '--config', configFile], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  const exited = new Promise<ExitStatus>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })))
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out += chunk.toString('utf8')
      if (out.includes('agentid gateway listening')) resolve()
    }
    proc.stdout!.on('data', onData)
    proc.stderr!.on('data', onData)
    void exited.then((s) => reject(new Error(`gateway exited ${JSON.stringify(s)}:\n${out}`)))
  })
  ready.catch(() => undefined)
  return { proc, exited, output: () => out, ready }
}

/** Writes a gateway config (and its 0600 secret file) into `dir`. */
function writeConfig(at: string, port: number, upstreams: unknown[]): string {
  const file = join(at, 'gateway.json')
  writeFileSync(file, JSON.stringify({
    listen: { host: '127.0.0.1', port },
    agentid: { issuerUrls: [issuer.url], trustedIssuers: [did], statusTtlMs: STATUS_TTL_MS },
    policyDir: 'policies',
    secretStores: { file: { path: 'secrets.json' } },
    logLevel: 'debug',
    upstreams,
  }, null, 2))
  return file
}

const stdioUpstream = (log: string) => ({ id: 'local', transport: 'stdio', command: process.execPath, args: [STDIO_FIXTURE], env: { FIXTURE_SECRET: { secret: 'env:GW_STDIO_SECRET' }, FIXTURE_CALL_LOG: log } })
const httpUpstream = (url: string) => ({ id: 'remote', transport: 'http', url, headers: { Authorization: { secret: 'file:remote', template: 'Bearer {secret}' } } })

/** A fetch that records every response body (streamed as it arrives) and can swap the Authorization header. */
function recordingFetch(swapAuthorization?: () => string | undefined): FetchFunction {
  return async (input, init) => {
    let options = init
    const swap = swapAuthorization?.()
    if (swap !== undefined && String(input).startsWith(gatewayUrl)) {
      const headers = new Headers(init?.headers)
      headers.set('authorization', swap)
      options = { ...init, headers }
    }
    const response = await fetch(input, options)
    if (response.body) {
      const index = seen.push('') - 1
      const reader = response.clone().body!.getReader()
      const decoder = new TextDecoder()
      void (async () => {
        for (;;) {
          const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }))
          if (done) return
          seen[index] += decoder.decode(value, { stream: true })
        }
      })()
    }
    return response
  }
}

async function newAgent(name: string, tier = 'standard'): Promise<Agent> {
  const agent = await spawn({ issuerUrl: issuer.url, apiKey, claims: claims(name, { policyTier: tier }), keyCustody: 'agent' })
  return { did: agent.did, key: agent.privateJwk!, credential: agent.credential }
}

function agentFetch(agent: Agent, resource: string, swap?: () => string | undefined): FetchFunction {
  return createAgentFetch({ issuerUrl: issuer.url, privateJwk: agent.key, resource, fetch: recordingFetch(swap) })
}

/** The SDK's own client, connected through the gateway to upstream `id`. */
async function connect(fetchFn: FetchFunction, id: string): Promise<Client> {
  const client = new Client({ name: 'e2e-agent', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(endpoint(id)), { fetch: fetchFn as never }))
  clients.push(client)
  return client
}

/** Runs `fn`, which must fail; records and returns the error. */
async function refused(fn: () => Promise<unknown>): Promise<Error & { code?: unknown }> {
  const error = await fn().then(() => null, (e: unknown) => e as Error)
  if (error === null) throw new Error('expected a refusal, but the call succeeded')
  seen.push(String(error.message), String((error as { data?: unknown }).data ?? ''))
  return error
}

/** The agentid code in a refused HTTP request's JSON-RPC body (the SDK puts the body text in its error message). */
function agentidCodeOf(error: Error): string | undefined {
  const start = error.message.indexOf('{')
  if (start < 0) return undefined
  try {
    return JSON.parse(error.message.slice(start)).error?.data?.code
  } catch {
    return undefined
  }
}

const textOf = (result: object) => ((result as { content: { type: string; text: string }[] }).content[0]!).text
const stdioCalls = () => (existsSync(callLog) ? readFileSync(callLog, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l).tool as string) : [])
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')

let alice: Agent
let mallory: Agent

beforeAll(async () => {
  issuer = await startIssuer()
  did = await issuerDid(issuer)
  const orch = await adminCli(issuer, ['orchestrators', 'add', 'gateway-e2e', '--json'])
  expect(orch.code, orch.stderr).toBe(0)
  apiKey = orch.json().apiKey
  alice = await newAgent('alice')
  mallory = await newAgent('mallory', 'sandbox')

  http = await startHttpFixture({ secret: HTTP_SECRET })
  dir = tempDir('agentid-gateway-e2e-')
  callLog = join(dir, 'stdio-calls.jsonl')
  mkdirSync(join(dir, 'policies'))
  writeFileSync(join(dir, 'policies', 'tools.cedar'), POLICIES)
  const validation = await validatePolicyDirectory(join(dir, 'policies'))
  expect(validation.diagnostics).toEqual([])
  writeFileSync(join(dir, 'secrets.json'), JSON.stringify({ remote: HTTP_SECRET }))
  chmodSync(join(dir, 'secrets.json'), 0o600)
  const port = await freePort()
  gatewayUrl = `http://127.0.0.1:${port}`
  const g = startGateway(writeConfig(dir, port, [stdioUpstream(callLog), httpUpstream(http.url)]), { GW_STDIO_SECRET: STDIO_SECRET })
  gateway = g
  await g.ready
})

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)))
  if (gateway && gateway.proc.exitCode === null) {
    gateway.proc.kill('SIGTERM')
    await gateway.exited
  }
  await http?.close()
  await cleanup()
})

describe('agentid-gateway in front of a stdio and a Streamable HTTP MCP server', () => {
  it('publishes RFC 9728 metadata per endpoint, naming the issuer', async () => {
    for (const id of ['local', 'remote']) {
      const r = await fetch(`${gatewayUrl}/.well-known/oauth-protected-resource/mcp/${id}`)
      expect(r.status).toBe(200)
      const doc = (await r.json()) as { resource: string; authorization_servers: string[] }
      expect(doc.resource).toBe(endpoint(id))
      expect(doc.authorization_servers).toEqual([issuer.url])
    }
  })

  it('forwards allowed calls to both upstreams, with their credentials injected by the gateway', async () => {
    for (const [id, label, secret] of [['local', 'stdio', STDIO_SECRET], ['remote', 'http', HTTP_SECRET]] as const) {
      const client = await connect(agentFetch(alice, endpoint(id)), id)
      expect(textOf(await client.callTool({ name: 'echo', arguments: { text: 'hello' } }))).toBe(`${label}:hello`)
      const who = JSON.parse(textOf(await client.callTool({ name: 'whoami', arguments: {} })))
      expect(who).toEqual({ server: label, secretArrived: true, secretSha256: sha256(secret) })
    }
    expect(stdioCalls()).toEqual(expect.arrayContaining(['echo', 'whoami']))
    expect(http.calls.map((c) => c.tool)).toEqual(expect.arrayContaining(['echo', 'whoami']))
    // The HTTP upstream saw the gateway's bearer secret on every request, never the agent's token or proof.
    expect(http.requests.length).toBeGreaterThan(0)
    for (const r of http.requests) {
      expect(r.headers.authorization).toBe(`Bearer ${HTTP_SECRET}`)
      expect(r.headers.dpop).toBeUndefined()
    }
  })

  it('tools/list shows only the tools the policy allows; resources likewise', async () => {
    for (const id of ['local', 'remote']) {
      const client = await connect(agentFetch(alice, endpoint(id)), id)
      expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual([...ALLOWED].sort())
    }
    const local = await connect(agentFetch(alice, endpoint('local')), 'local')
    expect((await local.listResources()).resources.map((r) => r.uri)).toEqual(['fixture://stdio/readme'])
    expect((await local.readResource({ uri: 'fixture://stdio/readme' })).contents[0]).toMatchObject({ text: 'readme of stdio' })
    const remote = await connect(agentFetch(alice, endpoint('remote')), 'remote')
    expect((await remote.listResources()).resources).toEqual([])
    const prompt = await refused(() => remote.getPrompt({ name: 'greet', arguments: { name: 'x' } }))
    expect(prompt.code).toBe(MCP_FORBIDDEN)
  })

  it('a denied tool is refused and never reaches the upstream, whatever the spelling', async () => {
    for (const id of ['local', 'remote']) {
      const client = await connect(agentFetch(alice, endpoint(id)), id)
      for (const name of ['admin_delete', 'Admin_Delete', 'ECHO', 'echo ', 'ｅcho', 'е' + 'cho', '../echo', 'local/echo', 'echo\u0000']) {
        const error = await refused(() => client.callTool({ name, arguments: { target: 'everything', text: 'x' } }))
        expect(error.code, `${id}: ${JSON.stringify(name)}`).toBe(MCP_FORBIDDEN)
      }
    }
    expect(stdioCalls()).not.toContain('admin_delete')
    expect(http.calls.map((c) => c.tool)).not.toContain('admin_delete')
    // The audit log has the denial, with the agent and the tool.
    const audits = gateway.output().split('\n').filter((l) => l.includes('"msg":"audit"')).map((l) => JSON.parse(l).audit)
    expect(audits).toEqual(expect.arrayContaining([expect.objectContaining({ agent: alice.did, server: 'local', action: 'callTool', target: 'admin_delete', decision: 'deny' })]))
    expect(audits).toEqual(expect.arrayContaining([expect.objectContaining({ agent: alice.did, server: 'remote', action: 'callTool', target: 'echo', decision: 'allow', policies: ['standard-tools'] })]))
  })

  it('accepts agentid presentations (Authorization: AgentID <vp>) as well as tokens', async () => {
    const presenting: FetchFunction = async (input, init) => {
      const headers = new Headers(init?.headers)
      headers.set('authorization', `AgentID ${await createPresentation({ privateJwk: alice.key, credential: alice.credential, audience: endpoint('remote') })}`)
      return recordingFetch()(input, { ...init, headers })
    }
    const client = await connect(presenting, 'remote')
    expect(textOf(await client.callTool({ name: 'echo', arguments: { text: 'vp' } }))).toBe('http:vp')
    expect((await refused(() => client.callTool({ name: 'admin_delete', arguments: { target: 'x' } }))).code).toBe(MCP_FORBIDDEN)
    // A presentation made out for the other endpoint is refused.
    const elsewhere: FetchFunction = async (input, init) => {
      const headers = new Headers(init?.headers)
      headers.set('authorization', `AgentID ${await createPresentation({ privateJwk: alice.key, credential: alice.credential, audience: endpoint('local') })}`)
      return recordingFetch()(input, { ...init, headers })
    }
    expect((await refused(() => connect(elsewhere, 'remote'))).code).toBe(401)
  })

  it('an agent the policy does not cover sees no tools and may call none', async () => {
    const client = await connect(agentFetch(mallory, endpoint('local')), 'local')
    expect((await client.listTools()).tools).toEqual([])
    expect((await refused(() => client.callTool({ name: 'echo', arguments: { text: 'x' } }))).code).toBe(MCP_FORBIDDEN)
  })

  it('refuses a request without credentials, a token for another endpoint, and another agent\'s token', async () => {
    // No credentials: 401 with a DPoP challenge pointing at the metadata.
    const bare = await fetch(endpoint('local'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
    })
    seen.push(await bare.text())
    expect(bare.status).toBe(401)
    expect(bare.headers.get('www-authenticate')).toContain(`resource_metadata="${gatewayUrl}/.well-known/oauth-protected-resource/mcp/local"`)
    const plain = new Client({ name: 'no-credentials', version: '1' })
    expect((await refused(() => plain.connect(new StreamableHTTPClientTransport(new URL(endpoint('remote')), { fetch: recordingFetch() as never })))).code).toBe(401)

    // Alice's token for /mcp/local, used on /mcp/remote.
    const wrongAudience = await refused(() => connect(agentFetch(alice, endpoint('local')), 'remote'))
    expect(wrongAudience.code).toBe(401)
    expect(agentidCodeOf(wrongAudience)).toBe('ERR_AUDIENCE_MISMATCH')

    // Mallory presents Alice's access token (captured from Alice's own requests) with Mallory's DPoP proofs.
    let aliceAuthorization: string | undefined
    const capture: FetchFunction = async (input, init) => {
      const auth = new Headers(init?.headers).get('authorization')
      if (auth?.startsWith('DPoP ') && String(input).startsWith(gatewayUrl)) aliceAuthorization = auth
      return fetch(input, init)
    }
    const aliceClient = await connect(createAgentFetch({ issuerUrl: issuer.url, privateJwk: alice.key, resource: endpoint('local'), fetch: capture }), 'local')
    expect(textOf(await aliceClient.callTool({ name: 'echo', arguments: { text: 'mine' } }))).toBe('stdio:mine')
    expect(aliceAuthorization).toMatch(/^DPoP /)
    const stolen = await refused(() => connect(agentFetch(mallory, endpoint('local'), () => aliceAuthorization), 'local'))
    expect(stolen.code).toBe(401)
  })

  it('an agent revoked in the middle of a session is refused within the status TTL', async () => {
    const revokee = await newAgent('revokee')
    const client = await connect(agentFetch(revokee, endpoint('remote')), 'remote')
    expect(textOf(await client.callTool({ name: 'echo', arguments: { text: 'before' } }))).toBe('http:before')
    const revoked = await adminCli(issuer, ['revoke', revokee.did, '--reason', 'gateway e2e', '--json'])
    expect(revoked.code, revoked.stderr).toBe(0)
    const since = performance.now()
    let error: (Error & { code?: unknown }) | undefined
    let answered = 0 // calls made before the gateway saw the new status list
    for (;;) {
      error = await client.callTool({ name: 'echo', arguments: { text: 'after' } }).then(() => undefined, (e: Error) => e)
      if (error) break
      answered++
      if (performance.now() - since > STATUS_TTL_MS + 15_000) throw new Error('the gateway never refused the revoked agent')
      await sleep(100)
    }
    seen.push(error.message)
    expect(agentidCodeOf(error)).toBe('ERR_REVOKED')
    // The refused call never reached the upstream: it saw exactly the calls that were answered.
    expect(http.calls.filter((c) => c.tool === 'echo' && JSON.stringify(c).includes('after'))).toHaveLength(answered)
  })

  it('upstream secrets never reach the agent or the logs, even from a tool that prints them or fails with them', async () => {
    for (const id of ['local', 'remote']) {
      const client = await connect(agentFetch(alice, endpoint(id)), id)
      const leak = await client.callTool({ name: 'leak_secret', arguments: {} })
      expect(textOf(leak)).toBe('my credential is [REDACTED]')
      const fail = await client.callTool({ name: 'fail', arguments: {} })
      expect(fail.isError).toBe(true)
      expect(textOf(fail)).toContain('[REDACTED]')
      const read = await refused(() => client.readResource({ uri: `fixture://${id}/${STDIO_SECRET}/${HTTP_SECRET}` }))
      expect(read.code).toBe(MCP_FORBIDDEN)
    }
    await sleep(200) // let the recorded streams finish
    const logs = gateway.output()
    // The stdio upstream printed its secret on stderr: the gateway logged that line, redacted.
    expect(logs).toMatch(/"msg":"upstream stderr".*\[REDACTED\]|\[REDACTED\].*"msg":"upstream stderr"/)
    expect(seen.length).toBeGreaterThan(20)
    for (const secret of SECRETS) {
      for (const body of seen) expect(body.includes(secret), body.slice(0, 300)).toBe(false)
      expect(logs.includes(secret)).toBe(false)
      expect(logs.includes(encodeURIComponent(secret))).toBe(false)
    }
  })

  it('a config whose secret is missing fails clearly at connect time', async () => {
    const at = tempDir('agentid-gateway-bad-')
    mkdirSync(join(at, 'policies'))
    writeFileSync(join(at, 'policies', 'tools.cedar'), POLICIES)
    writeFileSync(join(at, 'secrets.json'), JSON.stringify({}))
    chmodSync(join(at, 'secrets.json'), 0o600)
    // The config itself is valid; the secret is looked up only when the gateway connects the upstream.
    const g = startGateway(writeConfig(at, await freePort(), [httpUpstream(http.url)]), {})
    const status = await g.exited
    expect(status.code).toBe(1)
    const line = g.output().split('\n').find((l) => l.startsWith('agentid-gateway: '))
    expect(line).toBeDefined()
    expect(/^agentid-gateway: (ERR_[A-Z_]+):/.exec(line!)?.[1]).toBe('ERR_UNAVAILABLE')
    expect(line).toContain('"remote"')
    expect(line).toContain('headers.Authorization')
    expect(line).toContain('file:remote')

    // A config that does not validate, or is not there: ERR_INVALID_INPUT before anything starts.
    writeFileSync(join(at, 'broken.json'), JSON.stringify({ listen: { port: 'x' } }))
    for (const file of [join(at, 'broken.json'), join(at, 'absent.json')]) {
      const invalid = startGateway(file, {})
      expect((await invalid.exited).code).toBe(1)
      expect(invalid.output()).toMatch(/^agentid-gateway: ERR_INVALID_INPUT: gateway config: /m)
    }

    // A file secret store readable by others is refused the same way.
    writeFileSync(join(at, 'secrets.json'), JSON.stringify({ remote: HTTP_SECRET }))
    chmodSync(join(at, 'secrets.json'), 0o644)
    const loose = startGateway(join(at, 'gateway.json'), {})
    expect((await loose.exited).code).toBe(1)
    expect(loose.output()).toMatch(/^agentid-gateway: ERR_UNAVAILABLE:/m)
    expect(loose.output()).not.toContain(HTTP_SECRET)
  })

  it('SIGHUP reloads the policy folder; an invalid folder leaves the last good set in force', async () => {
    const client = await connect(agentFetch(alice, endpoint('local')), 'local')
    const policyFile = join(dir, 'policies', 'tools.cedar')
    const waitFor = async (text: string, after: number) => {
      const deadline = performance.now() + 15_000
      while (!gateway.output().slice(after).includes(text)) {
        if (performance.now() > deadline) throw new Error(`gateway never logged ${text}:\n${gateway.output().slice(after)}`)
        await sleep(50)
      }
    }
    // A syntax error: refused, echo still allowed.
    writeFileSync(policyFile, `${POLICIES}\npermit (principal, action, resource`)
    let mark = gateway.output().length
    gateway.proc.kill('SIGHUP')
    await waitFor('policy reload failed', mark)
    expect(textOf(await client.callTool({ name: 'echo', arguments: { text: 'still' } }))).toBe('stdio:still')
    // A valid folder without echo: echo is now refused.
    writeFileSync(policyFile, POLICIES.replace('["echo", "whoami", "leak_secret", "fail"]', '["whoami"]'))
    mark = gateway.output().length
    gateway.proc.kill('SIGHUP')
    await waitFor('policies reloaded', mark)
    expect((await refused(() => client.callTool({ name: 'echo', arguments: { text: 'gone' } }))).code).toBe(MCP_FORBIDDEN)
    expect(JSON.parse(textOf(await client.callTool({ name: 'whoami', arguments: {} })))).toMatchObject({ secretArrived: true })
    expect(stdioCalls().filter((t) => t === 'echo').length).toBeGreaterThan(0)
  })

  it('stops gracefully on SIGTERM', async () => {
    gateway.proc.kill('SIGTERM')
    const status = await gateway.exited
    expect(status).toEqual({ code: 0, signal: null })
    expect(gateway.output()).toContain('"msg":"shutting down"')
  })
})
