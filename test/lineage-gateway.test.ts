// End to end: the chain of custody through the gateway, started as a real process from apps/gateway/dist
// with its own agent identity (a did:key + identity credential from the real issuer, read from its secret
// file). Agents A, B and C of the real issuer: C, serving B's call on A's lineage, calls tools through the
// gateway with the MCP SDK's own Client. The gateway verifies the lineage before forwarding, appends its
// own hop, and returns receipts. Upstreams: a plain SDK McpServer over Streamable HTTP whose tool verifies
// the whole chain (the gateway's hop last) and answers with its agent's receipt, and a stdio child (no
// agent: the gateway's hop records custody all the same). Then the hostile lineages, refused by the gateway.
import { spawn as spawnProcess, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { McpError } from '@modelcontextprotocol/sdk/types.js'
import { createAgentFetch, mcpLineageMeta, spawn, type SpawnedAgent } from '@agentid/client'
import { signCompactJws, signerFromJwk } from '@agentid/core'
import { appendHop, createReceipt, CREDENTIALS_HEADER, decodeLineage, LINEAGE_HEADER, MCP_CREDENTIALS_META, MCP_LINEAGE_META, mcpCommand, mcpTarget } from '@agentid/lineage'
import { MCP_FORBIDDEN, MCP_LINEAGE_REFUSED } from '@agentid/mcp'
import { agentidMiddleware, createVerifier, type VerifiedLineage } from '@agentid/verifier'
import { adminCli, cleanup, claims, freePort, issuerDid, ROOT, sleep, startIssuer, tempDir, type ExitStatus, type IssuerProcess } from './harness.js'

const GATEWAY_BIN = join(ROOT, 'apps/gateway/dist/main.js')
const STDIO_FIXTURE = join(ROOT, 'test/fixtures/stdio-server.mjs')
const STATUS_TTL_MS = 300

const POLICIES = `
@id("echo") permit (principal, action == AgentId::Action::"callTool", resource == AgentId::Tool::"local/echo");
// pay: only on a chain A started, through at most 4 hops (the gateway's own hop comes after this decision).
@id("pay") permit (principal, action == AgentId::Action::"callTool", resource == AgentId::Tool::"remote/pay")
when { context has lineage && context.lineage.firstPurpose == "e2e-gw-a" && context.lineage.hopCount <= 4 };
`

let issuer: IssuerProcess
let apiKey: string
let a: SpawnedAgent
let b: SpawnedAgent
let c: SpawnedAgent
/** The gateway's agent. */
let g: SpawnedAgent
/** The HTTP upstream's agent. */
let s: SpawnedAgent
let gatewayUrl: string
let gateway: { proc: ChildProcess; exited: Promise<ExitStatus>; output(): string }
let upstream: Server
const services: Server[] = []
let trustedDid: string
let callLog: string
/** What the HTTP upstream's `pay` saw: the arguments and the lineage it verified (or its refusal). */
const upstreamSaw: { args: unknown; lineage: VerifiedLineage | null; error: string | null }[] = []
const clients: Client[] = []
const signer = (agent: SpawnedAgent) => signerFromJwk(agent.privateJwk!)

function upstreamServer(verify: (lineage: unknown, credentials: unknown, args: unknown) => Promise<VerifiedLineage>): McpServer {
  const server = new McpServer({ name: 'ledger', version: '1.0.0' })
  server.registerTool('pay', { inputSchema: { invoice: z.number() } }, async (args, extra) => {
    const meta = extra._meta as Record<string, unknown> | undefined
    try {
      const lineage = await verify(meta?.[MCP_LINEAGE_META], meta?.[MCP_CREDENTIALS_META], args)
      upstreamSaw.push({ args, lineage, error: null })
      const content = [{ type: 'text' as const, text: `paid ${args.invoice}` }]
      const record = await createReceipt(lineage.lineage, { signer: signer(s), credential: s.credential, output: { content } })
      return { content, _meta: { [MCP_LINEAGE_META]: record } }
    } catch (error) {
      upstreamSaw.push({ args, lineage: null, error: (error as { code?: string }).code ?? String(error) })
      throw error
    }
  })
  return server
}

async function connect(agent: SpawnedAgent, id: string): Promise<Client> {
  const url = `${gatewayUrl}/mcp/${id}`
  const client = new Client({ name: 'e2e-lineage-gw', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch: createAgentFetch({ issuerUrl: issuer.url, privateJwk: agent.privateJwk!, resource: url }) as never }))
  clients.push(client)
  return client
}

/** A → B → C, each hop signed by its agent; C is to call through the gateway. */
async function chainToC(clock?: () => number): Promise<string> {
  const t = clock ? { clock } : {}
  const ab = await appendHop(undefined, { signer: signer(a), credential: a.credential, target: 'https://b.example', callee: b.did, command: 'POST /v1/plan', args: null, originKind: 'request', user: 'user-7', ...t })
  return appendHop(ab, { signer: signer(b), credential: b.credential, target: 'https://c.example', callee: c.did, command: 'POST /v1/pay', args: null, ...t })
}

/** C's hop to `<upstream>/<tool>` on the gateway, naming the gateway as callee. */
function hopToGateway(from: string | undefined, id: string, tool: string, args: unknown, options: { clock?: () => number; by?: SpawnedAgent } = {}): Promise<string> {
  const by = options.by ?? c
  return appendHop(from, { signer: signer(by), credential: by.credential, target: mcpTarget(id, tool), callee: g.did, command: mcpCommand('tools/call', tool), args, ...(options.clock ? { clock: options.clock } : {}) })
}

const meta = (lineage: string) => ({ [MCP_LINEAGE_META]: lineage, [MCP_CREDENTIALS_META]: [a, b, c].map((x) => x.credential).join('~') })

async function refused(client: Client, name: string, args: Record<string, unknown>, _meta: Record<string, unknown>): Promise<McpError> {
  const before = upstreamSaw.length
  const error = await client.callTool({ name, arguments: args, _meta }).then(() => null, (e: unknown) => e)
  expect(error).toBeInstanceOf(McpError)
  expect(upstreamSaw.length, 'the upstream never saw the call').toBe(before)
  return error as McpError
}

function expectRefusal(error: McpError, code: string, hop: number | null, reason?: string): void {
  expect(error.code).toBe(MCP_LINEAGE_REFUSED)
  expect(error.data).toMatchObject({ code, hop, ...(reason === undefined ? {} : { reason }) })
}

beforeAll(async () => {
  issuer = await startIssuer()
  const did = await issuerDid(issuer)
  trustedDid = did
  const orch = await adminCli(issuer, ['orchestrators', 'add', 'lineage-gw', '--json'])
  expect(orch.code, orch.stderr).toBe(0)
  apiKey = orch.json().apiKey
  ;[a, b, c, g, s] = await Promise.all(['gw-a', 'gw-b', 'gw-c', 'gateway', 'gw-ledger'].map((n) => spawn({ issuerUrl: issuer.url, apiKey, claims: claims(n), keyCustody: 'agent' }))) as [SpawnedAgent, SpawnedAgent, SpawnedAgent, SpawnedAgent, SpawnedAgent]

  // The HTTP upstream: a plain SDK server (no guard) whose tool verifies the lineage itself.
  const verifier = createVerifier({ trustedIssuers: [did] })
  const upstreamPort = await freePort()
  const sessions = new Map<string, StreamableHTTPServerTransport>()
  upstream = createServer(async (req, res) => {
    const id = req.headers['mcp-session-id'] as string | undefined
    let transport = id === undefined ? undefined : sessions.get(id)
    if (transport === undefined) {
      transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (sid) => void sessions.set(sid, transport!) })
      await upstreamServer((lineage, credentials, args) => verifier.verifyLineage(lineage as string, {
        audience: mcpTarget('ledger', 'pay'), command: mcpCommand('tools/call', 'pay'), args, self: s.did,
        ...(typeof credentials === 'string' ? { credentials } : {}),
      })).connect(transport)
    }
    await transport.handleRequest(req, res)
  })
  await new Promise<void>((resolve) => upstream.listen(upstreamPort, '127.0.0.1', resolve))

  const dir = tempDir('agentid-lineage-gw-')
  mkdirSync(join(dir, 'policies'))
  writeFileSync(join(dir, 'policies', 'gw.cedar'), POLICIES)
  writeFileSync(join(dir, 'secrets.json'), JSON.stringify({ 'gw-key': JSON.stringify(g.privateJwk), 'gw-credential': g.credential }))
  chmodSync(join(dir, 'secrets.json'), 0o600)
  callLog = join(dir, 'calls.jsonl')
  writeFileSync(callLog, '')
  const port = await freePort()
  gatewayUrl = `http://127.0.0.1:${port}`
  writeFileSync(join(dir, 'gateway.json'), JSON.stringify({
    listen: { host: '127.0.0.1', port },
    agentid: { issuerUrls: [issuer.url], trustedIssuers: [did], statusTtlMs: STATUS_TTL_MS },
    policyDir: 'policies',
    secretStores: { file: { path: 'secrets.json' } },
    logLevel: 'warn',
    lineage: { agent: { privateJwk: { secret: 'file:gw-key' }, credential: { secret: 'file:gw-credential' } } },
    upstreams: [
      { id: 'local', transport: 'stdio', command: process.execPath, args: [STDIO_FIXTURE], env: { FIXTURE_SECRET: 'stdio-secret-0123', FIXTURE_CALL_LOG: callLog } },
      { id: 'remote', transport: 'http', url: `http://127.0.0.1:${upstreamPort}/mcp`, lineage: { serverId: 'ledger', agent: s.did } },
    ],
  }))
  const proc = spawnProcess(process.execPath, [GATEWAY_BIN, '--config', join(dir, 'gateway.json')], { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const exited = new Promise<ExitStatus>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })))
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      out += chunk.toString('utf8')
      if (out.includes('agentid gateway listening')) resolve()
    }
    proc.stdout!.on('data', onData)
    proc.stderr!.on('data', onData)
    void exited.then((st) => reject(new Error(`gateway exited ${JSON.stringify(st)}:\n${out}`)))
  })
  gateway = { proc, exited, output: () => out }
}, 120_000)

afterAll(async () => {
  await Promise.all(clients.map((cl) => cl.close().catch(() => undefined)))
  if (gateway && gateway.proc.exitCode === null) {
    gateway.proc.kill('SIGTERM')
    await gateway.exited
  }
  await Promise.all(services.map((sv) => new Promise<void>((resolve) => { sv.closeAllConnections(); sv.close(() => resolve()) })))
  await new Promise<void>((resolve) => { upstream?.closeAllConnections(); upstream ? upstream.close(() => resolve()) : resolve() })
  await cleanup()
})

/** The audit events the gateway logged. */
function auditEvents(): Record<string, unknown>[] {
  return gateway.output().split('\n').filter((l) => l.includes('"msg":"audit"')).map((l) => JSON.parse(l).audit)
}

describe('lineage through the gateway: A → B → C → gateway → upstream', () => {
  it('verifies the chain, appends its own hop, the upstream verifies the whole chain; receipts come back', async () => {
    const client = await connect(c, 'remote')
    const result = await client.callTool({ name: 'pay', arguments: { invoice: 9 }, _meta: meta(await hopToGateway(await chainToC(), 'remote', 'pay', { invoice: 9 })) })
    expect(result.content).toEqual([{ type: 'text', text: 'paid 9' }])
    const seen = upstreamSaw.at(-1)!
    expect(seen.error).toBeNull()
    expect(seen.lineage!.hops.map((h) => [h.actor.did, h.target, h.callee, h.command])).toEqual([
      [a.did, 'https://b.example', b.did, 'POST /v1/plan'],
      [b.did, 'https://c.example', c.did, 'POST /v1/pay'],
      [c.did, 'mcp://remote/pay', g.did, 'tools/call pay'],
      [g.did, 'mcp://ledger/pay', s.did, 'tools/call pay'],
    ])
    expect(seen.lineage!.user).toBe('user-7')
    // The record returned to C: the upstream's receipt of the gateway's hop, then the gateway's receipt of C's.
    const record = decodeLineage((result._meta as Record<string, string>)[MCP_LINEAGE_META])
    expect(record.map((e) => [e.kind, e.claims.iss])).toEqual([['hop', a.did], ['hop', b.did], ['hop', c.did], ['hop', g.did], ['receipt', s.did], ['receipt', g.did]])
    const event = auditEvents().findLast((e) => e.target === 'pay' && e.decision === 'allow')!
    expect(event).toMatchObject({ agent: c.did, policies: ['pay'], lineage: { user: 'user-7', origin: 'request' } })
    expect((event.lineage as { entries: unknown[] }).entries).toHaveLength(3)
  })

  it('A → B → C over real HTTP services, C calls through the gateway: the upstream verifies the four hops; the receipts reach A', async () => {
    const [portB, portC] = [await freePort(), await freePort()]
    const urlB = `http://127.0.0.1:${portB}`
    const urlC = `http://127.0.0.1:${portC}`
    type Req = IncomingMessage & { agentidLineage?: VerifiedLineage | null; body?: unknown }
    const reply = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body))
    const listen = async (port: number, handler: (req: Req, res: ServerResponse) => void) => {
      const server = createServer(handler as never)
      services.push(server)
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    }
    // C: verifies B's call, then calls `pay` through the gateway on the lineage it received.
    const guardC = agentidMiddleware(createVerifier({ trustedIssuers: [trustedDid] }), { audience: urlC, origin: urlC, lineage: { self: c.did } })
    await listen(portC, (req, res) => guardC(req, res, async (error?: unknown) => {
      if (error) return reply(res, 500, { error: String(error) })
      const args = { invoice: (req.body as { invoice: number }).invoice }
      const client = await connect(c, 'remote')
      const _meta = await mcpLineageMeta({ privateJwk: c.privateJwk!, credential: c.credential, server: 'remote', name: 'pay', arguments: args, from: req.agentidLineage!.lineage, credentials: req.headers[CREDENTIALS_HEADER] as string, callee: g.did })
      const result = await client.callTool({ name: 'pay', arguments: args, _meta })
      const record = await createReceipt((result._meta as Record<string, string>)[MCP_LINEAGE_META]!, { signer: signer(c), credential: c.credential, output: result.content })
      reply(res, 200, result.content, { [LINEAGE_HEADER]: record })
    }))
    const guardB = agentidMiddleware(createVerifier({ trustedIssuers: [trustedDid] }), { audience: urlB, origin: urlB, lineage: { self: b.did } })
    const toC = createAgentFetch({ issuerUrl: issuer.url, privateJwk: b.privateJwk!, resource: urlC, lineage: { credential: b.credential, callees: { [urlC]: c.did } } })
    await listen(portB, (req, res) => guardB(req, res, async (error?: unknown) => {
      if (error) return reply(res, 500, { error: String(error) })
      const r = await toC(`${urlC}/v1/pay`, { method: 'POST', body: JSON.stringify(req.body), headers: { 'content-type': 'application/json' }, lineage: { from: req.agentidLineage!.lineage, credentials: req.headers[CREDENTIALS_HEADER] as string } })
      const body = await r.json()
      if (r.status !== 200) return reply(res, r.status, body)
      reply(res, 200, body, { [LINEAGE_HEADER]: await createReceipt(r.headers.get(LINEAGE_HEADER)!, { signer: signer(b), credential: b.credential, output: body }) })
    }))
    const fetchA = createAgentFetch({ issuerUrl: issuer.url, privateJwk: a.privateJwk!, resource: urlB, lineage: { credential: a.credential, callees: { [urlB]: b.did } } })
    const r = await fetchA(`${urlB}/v1/plan`, { method: 'POST', body: JSON.stringify({ invoice: 77 }), headers: { 'content-type': 'application/json' }, lineage: { user: 'user-77', originKind: 'request' } })
    expect(r.status, await r.clone().text()).toBe(200)
    const seen = upstreamSaw.at(-1)!
    expect(seen.args).toEqual({ invoice: 77 })
    expect(seen.lineage!.hops.map((h) => [h.actor.did, h.command])).toEqual([[a.did, 'POST /v1/plan'], [b.did, 'POST /v1/pay'], [c.did, 'tools/call pay'], [g.did, 'tools/call pay']])
    const record = decodeLineage(r.headers.get(LINEAGE_HEADER))
    expect(record.map((e) => [e.kind, e.claims.iss])).toEqual([
      ['hop', a.did], ['hop', b.did], ['hop', c.did], ['hop', g.did], ['receipt', s.did], ['receipt', g.did], ['receipt', c.did], ['receipt', b.did],
    ])
  })

  it('a stdio upstream gets the gateway\'s hop too (no callee: the lineage ends there); C gets the gateway\'s receipt', async () => {
    const client = await connect(c, 'local')
    const sent = await hopToGateway(await chainToC(), 'local', 'echo', { text: 'hi' })
    const result = await client.callTool({ name: 'echo', arguments: { text: 'hi' }, _meta: meta(sent) })
    expect(result.content).toEqual([{ type: 'text', text: 'stdio:hi' }])
    const logged = readFileSync(callLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).findLast((l) => l.tool === 'echo')
    const atUpstream = decodeLineage(logged.lineage)
    expect(atUpstream.map((e) => [e.kind, e.claims.iss])).toEqual([['hop', a.did], ['hop', b.did], ['hop', c.did], ['hop', g.did]])
    expect(atUpstream[3]!.claims).toMatchObject({ aud: 'mcp://local/echo', cmd: 'tools/call echo' })
    expect(atUpstream[3]!.claims).not.toHaveProperty('sub')
    const record = decodeLineage((result._meta as Record<string, string>)[MCP_LINEAGE_META])
    expect(record.map((e) => [e.kind, e.claims.iss])).toEqual([['hop', a.did], ['hop', b.did], ['hop', c.did], ['receipt', g.did]])
    // Without a lineage the call is decided as before, and forwarded without one.
    await client.callTool({ name: 'echo', arguments: { text: 'plain' } })
    expect(readFileSync(callLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l)).at(-1)).toEqual({ tool: 'echo', args: { text: 'plain' } })
  })

  it('refuses, before forwarding: dropped, reordered, spliced, a non-target signer, changed arguments, a hop not naming the gateway', async () => {
    const client = await connect(c, 'remote')
    const e = (await hopToGateway(await chainToC(), 'remote', 'pay', { invoice: 1 })).split('~')
    expectRefusal(await refused(client, 'pay', { invoice: 1 }, meta([e[0], e[2]].join('~'))), 'ERR_LINEAGE_BROKEN', 1)
    expectRefusal(await refused(client, 'pay', { invoice: 1 }, meta([e[1], e[0], e[2]].join('~'))), 'ERR_LINEAGE_BROKEN', 0)
    const other = (await hopToGateway(await chainToC(), 'remote', 'pay', { invoice: 1 })).split('~')
    expectRefusal(await refused(client, 'pay', { invoice: 1 }, meta([e[0], other[1], e[2]].join('~'))), 'ERR_LINEAGE_BROKEN', 1, 'transaction')
    const [header, payload] = (await hopToGateway(undefined, 'remote', 'pay', { invoice: 1 })).split('.')
    const claimsC = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8'))
    const ab = e[0]!
    const prev = JSON.parse(Buffer.from(ab.split('.')[1]!, 'base64url').toString('utf8'))
    const { entryHash } = await import('@agentid/lineage')
    const skipB = await signCompactJws(JSON.parse(Buffer.from(header!, 'base64url').toString('utf8')), JSON.stringify({ ...claimsC, idx: 1, txn: prev.txn, prv: entryHash(ab) }), signer(c))
    expectRefusal(await refused(client, 'pay', { invoice: 1 }, meta(`${ab}~${skipB}`)), 'ERR_LINEAGE_BROKEN', 1, 'signer-not-target')
    expectRefusal(await refused(client, 'pay', { invoice: 2 }, meta(e.join('~'))), 'ERR_LINEAGE_MISMATCH', 2, 'arguments')
    // A hop naming no callee (not the gateway's agent) is refused: the gateway could not take custody.
    const noCallee = await appendHop(await chainToC(), { signer: signer(c), credential: c.credential, target: mcpTarget('remote', 'pay'), command: mcpCommand('tools/call', 'pay'), args: { invoice: 1 } })
    expectRefusal(await refused(client, 'pay', { invoice: 1 }, meta(noCallee)), 'ERR_LINEAGE_MISMATCH', 2, 'callee')
  })

  it('refuses a replay, an expired last hop, a forged receipt, oversized, nested and duplicate-member lineages', async () => {
    const client = await connect(c, 'remote')
    const l = await hopToGateway(await chainToC(), 'remote', 'pay', { invoice: 3 })
    await client.callTool({ name: 'pay', arguments: { invoice: 3 }, _meta: meta(l) })
    expectRefusal(await refused(client, 'pay', { invoice: 3 }, meta(l)), 'ERR_REPLAY', 2, 'replay')
    const past = () => Date.now() - 120_000
    expectRefusal(await refused(client, 'pay', { invoice: 1 }, meta(await hopToGateway(await chainToC(past), 'remote', 'pay', { invoice: 1 }, { clock: past }))), 'ERR_EXPIRED', 2)
    // B's callee answers with a receipt signed by C's key posing as it.
    let forged = await appendHop(undefined, { signer: signer(a), credential: a.credential, target: 'https://b.example', callee: b.did, command: 'POST /v1/plan', args: null, originKind: 'request' })
    forged = await appendHop(forged, { signer: signer(b), credential: b.credential, target: 'https://s.example', callee: s.did, command: 'POST /v1/check', args: null })
    forged = await createReceipt(forged, { signer: { ...signer(c), did: s.did }, credential: s.credential, output: { ok: true } })
    forged = await appendHop(forged, { signer: signer(b), credential: b.credential, target: 'https://c.example', callee: c.did, command: 'POST /v1/pay', args: null })
    const withS = { ...meta(await hopToGateway(forged, 'remote', 'pay', { invoice: 1 })), [MCP_CREDENTIALS_META]: [a, b, c, s].map((x) => x.credential).join('~') }
    expectRefusal(await refused(client, 'pay', { invoice: 1 }, withS), 'ERR_SIGNATURE_INVALID', 2)
    expectRefusal(await refused(client, 'pay', { invoice: 1 }, meta('a'.repeat(20_000))), 'ERR_MALFORMED', null, 'too-large')
    const chain = await chainToC()
    const own = (await hopToGateway(chain, 'remote', 'pay', { invoice: 1 })).split('~')[2]!
    const [header, payload] = own.split('.')
    const resign = (json: string) => signCompactJws(JSON.parse(Buffer.from(header!, 'base64url').toString('utf8')), json, signer(c))
    const text = Buffer.from(payload!, 'base64url').toString('utf8')
    expectRefusal(await refused(client, 'pay', { invoice: 1 }, meta(`${chain}~${await resign(text.replace(/}$/, `,"x":${'['.repeat(40)}${']'.repeat(40)}}`))}`)), 'ERR_MALFORMED', 2)
    expectRefusal(await refused(client, 'pay', { invoice: 1 }, meta(`${chain}~${await resign(text.replace('"aud":', '"aud":"mcp://local/echo","aud":'))}`)), 'ERR_MALFORMED', 2)
    expect(auditEvents().findLast((e) => e.reason === 'lineage-refused')).toMatchObject({ agent: c.did, action: 'tools/call', target: 'pay', decision: 'deny', lineageRefused: { code: 'ERR_MALFORMED', hop: 2 } })
  })

  it('the policy reads the lineage: a chain A did not start is denied', async () => {
    const client = await connect(c, 'remote')
    const error = await refused(client, 'pay', { invoice: 1 }, meta(await hopToGateway(undefined, 'remote', 'pay', { invoice: 1 })))
    expect(error.code).toBe(MCP_FORBIDDEN)
  })

  it('refuses to start with a credential of another agent than its key, or a key that is no Ed25519 JWK', async () => {
    const dir = tempDir('agentid-lineage-gw-bad-')
    mkdirSync(join(dir, 'policies'))
    writeFileSync(join(dir, 'policies', 'gw.cedar'), POLICIES)
    for (const [key, credential, field] of [[JSON.stringify(g.privateJwk), s.credential, 'lineage.agent.credential'], ['{"kty":"RSA","n":"x","e":"AQAB","d":"y"}', g.credential, 'lineage.agent.privateJwk']] as const) {
      writeFileSync(join(dir, 'secrets.json'), JSON.stringify({ 'gw-key': key, 'gw-credential': credential }))
      chmodSync(join(dir, 'secrets.json'), 0o600)
      writeFileSync(join(dir, 'gateway.json'), JSON.stringify({
        listen: { host: '127.0.0.1', port: 0 }, agentid: { issuerUrls: [issuer.url], trustedIssuers: [g.did] }, policyDir: 'policies',
        secretStores: { file: { path: 'secrets.json' } }, logLevel: 'warn',
        lineage: { agent: { privateJwk: { secret: 'file:gw-key' }, credential: { secret: 'file:gw-credential' } } },
        upstreams: [{ id: 'local', transport: 'stdio', command: process.execPath, args: [STDIO_FIXTURE] }],
      }))
      const proc = spawnProcess(process.execPath, [GATEWAY_BIN, '--config', join(dir, 'gateway.json')], { cwd: ROOT, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] })
      let err = ''
      proc.stderr!.on('data', (chunk: Buffer) => { err += chunk.toString('utf8') })
      const status = await new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
      expect(status, err).toBe(1)
      expect(err).toContain(`ERR_INVALID_INPUT: gateway config: ${field}`)
      expect(err).not.toContain('"d":"y"')
    }
  })

  it('refuses a chain whose middle agent was revoked, within the status TTL', async () => {
    const client = await connect(c, 'remote')
    const l = await hopToGateway(await chainToC(), 'remote', 'pay', { invoice: 4 })
    const revoked = await adminCli(issuer, ['revoke', b.did, '--reason', 'e2e lineage gateway', '--json'])
    expect(revoked.code, revoked.stderr).toBe(0)
    await sleep(STATUS_TTL_MS + 100)
    expectRefusal(await refused(client, 'pay', { invoice: 4 }, meta(l)), 'ERR_REVOKED', 1, 'actor-credential')
  })
})
