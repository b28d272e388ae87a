// End to end: the chain of custody through a guarded SDK MCP server. Agents spawned by the real issuer
// process: A calls service B over real HTTP, B calls service C, and C (serving B's call) calls the `pay`
// tool of an SDK McpServer behind @agentid/mcp's guard with the MCP SDK's own Client, the lineage in
// `_meta`. The guard verifies the whole chain before the server sees the call, the tool gets it in its
// handler, the policy reads it, the audit event records it and the server agent signs a receipt.
// Then the hostile lineages, each sent by C with a valid DPoP-bound token.
import { writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { McpError } from '@modelcontextprotocol/sdk/types.js'
import { createAgentFetch, mcpLineageMeta, spawn, type SpawnedAgent } from '@agentid/client'
import { signCompactJws, signerFromJwk } from '@agentid/core'
import { appendHop, createReceipt, CREDENTIALS_HEADER, decodeLineage, entryHash, LINEAGE_HEADER, MCP_CREDENTIALS_META, MCP_LINEAGE_META, mcpCommand, mcpTarget } from '@agentid/lineage'
import { createMcpGuard, MCP_FORBIDDEN, MCP_LINEAGE_REFUSED, verifiedLineage, type AuditEvent } from '@agentid/mcp'
import { loadPolicyEngine } from '@agentid/policy'
import { agentidMiddleware, createVerifier, type VerifiedLineage } from '@agentid/verifier'
import { adminCli, cleanup, claims, freePort, issuerDid, sleep, startIssuer, tempDir, type IssuerProcess } from './harness.js'

const SERVER = 'ledger'
const STATUS_TTL_MS = 300

const POLICIES = `
@id("list") permit (principal, action == AgentId::Action::"listTools", resource == AgentId::McpServer::"${SERVER}");
@id("echo") permit (principal, action == AgentId::Action::"callTool", resource == AgentId::Tool::"${SERVER}/echo");
// pay: only on a chain started by agent A's purpose, through at most 4 hops.
@id("pay-on-a-chain") permit (principal, action == AgentId::Action::"callTool", resource == AgentId::Tool::"${SERVER}/pay")
when { context has lineage && context.lineage.firstPurpose == "e2e-mcp-a" && context.lineage.hopCount <= 4 };
`

let issuer: IssuerProcess
let apiKey: string
let a: SpawnedAgent
let b: SpawnedAgent
let c: SpawnedAgent
/** The MCP server's own agent: hops to it name it, and it signs receipts. */
let s: SpawnedAgent
/** An agent no hop names. */
let x: SpawnedAgent
let mcpUrl: string
let strictUrl: string
let urlB: string
let urlC: string
const servers: Server[] = []
const events: AuditEvent[] = []
/** What the `pay` handler received: its arguments and the verified lineage. */
const paid: { args: unknown; lineage: VerifiedLineage | null; authLineage: unknown }[] = []
const clients: Client[] = []

function buildServer(): McpServer {
  const server = new McpServer({ name: SERVER, version: '1.0.0' })
  server.registerTool('pay', { inputSchema: { invoice: z.number() } }, async (args, extra) => {
    paid.push({ args, lineage: verifiedLineage(extra), authLineage: extra.authInfo?.extra?.lineage })
    return { content: [{ type: 'text', text: `paid ${args.invoice}` }] }
  })
  server.registerTool('echo', { inputSchema: { text: z.string() } }, async (args, extra) => {
    paid.push({ args, lineage: verifiedLineage(extra), authLineage: extra.authInfo?.extra?.lineage })
    return { content: [{ type: 'text', text: args.text }] }
  })
  return server
}

async function listen(port: number, handler: (req: IncomingMessage & { agentidLineage?: VerifiedLineage | null; body?: unknown }, res: ServerResponse) => void): Promise<void> {
  const server = createServer(handler as never)
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body))
}

/** An SDK client of `agent` on `url` (DPoP-bound tokens from the real issuer). */
async function connect(agent: SpawnedAgent, url = mcpUrl): Promise<Client> {
  const client = new Client({ name: 'e2e-lineage', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { fetch: createAgentFetch({ issuerUrl: issuer.url, privateJwk: agent.privateJwk!, resource: url }) as never }))
  clients.push(client)
  return client
}

const signer = (agent: SpawnedAgent) => signerFromJwk(agent.privateJwk!)
const credentialsOf = (...agents: SpawnedAgent[]) => agents.map((g) => g.credential).join('~')

/** A → B → C built directly (each hop signed by its agent): what C holds when it calls `pay`. */
async function chainToC(options: { clock?: () => number; user?: string } = {}): Promise<string> {
  const clock = options.clock ? { clock: options.clock } : {}
  const ab = await appendHop(undefined, { signer: signer(a), credential: a.credential, target: urlB, callee: b.did, command: 'POST /v1/plan', args: { invoice: 1 }, originKind: 'request', ...(options.user ? { user: options.user } : {}), ...clock })
  return appendHop(ab, { signer: signer(b), credential: b.credential, target: urlC, callee: c.did, command: 'POST /v1/pay', args: { invoice: 1 }, ...clock })
}

/** C's hop to the tool on `from`. */
function hopToTool(from: string | undefined, args: unknown, options: { by?: SpawnedAgent; name?: string; clock?: () => number; callee?: string | null } = {}): Promise<string> {
  const by = options.by ?? c
  const name = options.name ?? 'pay'
  return appendHop(from, {
    signer: signer(by), credential: by.credential, target: mcpTarget(SERVER, name), command: mcpCommand('tools/call', name), args,
    ...(options.callee === null ? {} : { callee: options.callee ?? s.did }), ...(options.clock ? { clock: options.clock } : {}),
  })
}

const meta = (lineage: string, credentials = credentialsOf(a, b, c, x)) => ({ [MCP_LINEAGE_META]: lineage, [MCP_CREDENTIALS_META]: credentials })

/** Calls `name` with `_meta`; resolves with the McpError the guard answered. */
async function refused(client: Client, args: Record<string, unknown>, _meta: Record<string, unknown>, name = 'pay'): Promise<McpError> {
  const before = paid.length
  const error = await client.callTool({ name, arguments: args, _meta }).then(() => null, (e: unknown) => e)
  expect(error).toBeInstanceOf(McpError)
  expect(paid.length, 'the tool never ran').toBe(before)
  return error as McpError
}

function expectRefusal(error: McpError, code: string, hop: number | null, reason?: string): void {
  expect(error.code).toBe(MCP_LINEAGE_REFUSED)
  expect(error.data).toMatchObject({ code, hop, ...(reason === undefined ? {} : { reason }) })
}

beforeAll(async () => {
  issuer = await startIssuer()
  const did = await issuerDid(issuer)
  const orch = await adminCli(issuer, ['orchestrators', 'add', 'lineage-mcp', '--json'])
  expect(orch.code, orch.stderr).toBe(0)
  apiKey = orch.json().apiKey
  ;[a, b, c, s, x] = await Promise.all(['mcp-a', 'mcp-b', 'mcp-c', 'mcp-server', 'mcp-x'].map((n) => spawn({ issuerUrl: issuer.url, apiKey, claims: claims(n), keyCustody: 'agent' }))) as SpawnedAgent[] as [SpawnedAgent, SpawnedAgent, SpawnedAgent, SpawnedAgent, SpawnedAgent]

  const dir = tempDir('agentid-lineage-mcp-')
  writeFileSync(join(dir, 'ledger.cedar'), POLICIES)
  const policy = await loadPolicyEngine({ dir })
  // Status lists reused for 300 ms: a revoked agent is refused within that.
  const verifier = createVerifier({ trustedIssuers: [did], statusTtlMs: STATUS_TTL_MS, statusGraceMs: 0 })
  const [portMcp, portStrict, portB, portC] = await Promise.all([freePort(), freePort(), freePort(), freePort()])
  mcpUrl = `http://127.0.0.1:${portMcp}/mcp`
  strictUrl = `http://127.0.0.1:${portStrict}/mcp`
  urlB = `http://127.0.0.1:${portB}`
  urlC = `http://127.0.0.1:${portC}`
  const guard = createMcpGuard({
    verifier, policy, serverId: SERVER, resource: mcpUrl, authorizationServers: [issuer.url], audit: (e) => void events.push(e),
    lineageAgent: { did: s.did, privateJwk: s.privateJwk!, credential: s.credential },
  })
  await listen(portMcp, guard.nodeHandler({ createServer: buildServer }) as never)
  // The same server, refusing calls without a lineage.
  const strict = createMcpGuard({ verifier, policy, serverId: SERVER, resource: strictUrl, authorizationServers: [issuer.url], audit: (e) => void events.push(e), requireLineage: true })
  await listen(portStrict, strict.nodeHandler({ createServer: buildServer }) as never)

  // Service C: verifies B's call (DPoP + lineage), then calls the tool with the lineage it received.
  const guardC = agentidMiddleware(createVerifier({ trustedIssuers: [did] }), { audience: urlC, origin: urlC, lineage: { self: c.did } })
  await listen(portC, (req, res) => guardC(req, res, async (error?: unknown) => {
    if (error) return send(res, 500, { error: String(error) })
    const received = req.agentidLineage!
    const args = { invoice: (req.body as { invoice: number }).invoice }
    const client = await connect(c)
    const _meta = await mcpLineageMeta({ privateJwk: c.privateJwk!, credential: c.credential, server: SERVER, name: 'pay', arguments: args, from: received.lineage, credentials: req.headers[CREDENTIALS_HEADER] as string, callee: s.did })
    const result = await client.callTool({ name: 'pay', arguments: args, _meta })
    const record = await createReceipt((result._meta as Record<string, string>)[MCP_LINEAGE_META]!, { signer: signer(c), credential: c.credential, output: result.content })
    send(res, 200, result.content, { [LINEAGE_HEADER]: record })
  }))
  // Service B: verifies A's call, then calls C on the same lineage.
  const guardB = agentidMiddleware(createVerifier({ trustedIssuers: [did] }), { audience: urlB, origin: urlB, lineage: { self: b.did } })
  const toC = createAgentFetch({ issuerUrl: issuer.url, privateJwk: b.privateJwk!, resource: urlC, lineage: { credential: b.credential, callees: { [urlC]: c.did } } })
  await listen(portB, (req, res) => guardB(req, res, async (error?: unknown) => {
    if (error) return send(res, 500, { error: String(error) })
    const r = await toC(`${urlC}/v1/pay`, {
      method: 'POST', body: JSON.stringify({ invoice: (req.body as { invoice: number }).invoice }), headers: { 'content-type': 'application/json' },
      lineage: { from: req.agentidLineage!.lineage, credentials: req.headers[CREDENTIALS_HEADER] as string },
    })
    const body = await r.json()
    if (r.status !== 200) return send(res, r.status, body)
    const record = await createReceipt(r.headers.get(LINEAGE_HEADER)!, { signer: signer(b), credential: b.credential, output: body })
    send(res, 200, body, { [LINEAGE_HEADER]: record })
  }))
}, 120_000)

afterAll(async () => {
  await Promise.all(clients.map((cl) => cl.close().catch(() => undefined)))
  await Promise.all(servers.map((sv) => new Promise<void>((resolve) => { sv.closeAllConnections(); sv.close(() => resolve()) })))
  await cleanup()
})

describe('lineage through a guarded SDK MCP server: A → B → C → tool', () => {
  it('the tool gets the whole verified chain in its handler; the policy reads it; the audit records it; receipts go back to A', async () => {
    const fetchA = createAgentFetch({ issuerUrl: issuer.url, privateJwk: a.privateJwk!, resource: urlB, lineage: { credential: a.credential, callees: { [urlB]: b.did } } })
    const r = await fetchA(`${urlB}/v1/plan`, {
      method: 'POST', body: JSON.stringify({ invoice: 42 }), headers: { 'content-type': 'application/json' },
      lineage: { user: 'user-42', origin: 'pay invoice 42', originKind: 'request' },
    })
    expect(r.status, await r.clone().text()).toBe(200)
    const seen = paid.at(-1)!
    expect(seen.args).toEqual({ invoice: 42 })
    expect(seen.lineage!.hops.map((h) => [h.actor.did, h.target, h.callee, h.command])).toEqual([
      [a.did, urlB, b.did, 'POST /v1/plan'],
      [b.did, urlC, c.did, 'POST /v1/pay'],
      [c.did, `mcp://${SERVER}/pay`, s.did, 'tools/call pay'],
    ])
    expect(seen.lineage!.user).toBe('user-42')
    expect(seen.lineage!.hops[0]!.actor.claims.purpose).toBe('e2e-mcp-a')
    expect(seen.authLineage).toBe(seen.lineage)
    const event = events.findLast((e) => e.action === 'callTool' && e.target === 'pay')!
    expect(event).toMatchObject({ agent: c.did, decision: 'allow', policies: ['pay-on-a-chain'], lineage: { user: 'user-42', origin: 'request' } })
    expect(event.lineage!.entries.map((e) => [e.kind, e.actor])).toEqual([['hop', a.did], ['hop', b.did], ['hop', c.did]])
    expect(event.lineage!.transactionId).toBe(seen.lineage!.transactionId)
    // A's record: its hop, B's, C's, then the server agent's receipt, C's and B's.
    const record = decodeLineage(r.headers.get(LINEAGE_HEADER))
    expect(record.map((e) => [e.kind, e.claims.iss])).toEqual([['hop', a.did], ['hop', b.did], ['hop', c.did], ['receipt', s.did], ['receipt', c.did], ['receipt', b.did]])
  })

  it('without a lineage: calls are decided as before (echo allowed, pay denied by the policy); the strict endpoint refuses them', async () => {
    const client = await connect(c)
    const before = paid.length
    expect(await client.callTool({ name: 'echo', arguments: { text: 'hi' } })).toMatchObject({ content: [{ text: 'hi' }] })
    expect(paid.at(-1)!.lineage).toBeNull()
    const denied = await client.callTool({ name: 'pay', arguments: { invoice: 1 } }).then(() => null, (e: unknown) => e as McpError)
    expect(denied?.code).toBe(MCP_FORBIDDEN)
    expect(paid.length).toBe(before + 1)
    const strict = await connect(c, strictUrl)
    expectRefusal(await refused(strict, { text: 'hi' }, {}, 'echo'), 'ERR_MALFORMED', null, 'missing')
    expect(events.at(-1)).toMatchObject({ agent: c.did, action: 'tools/call', target: 'echo', decision: 'deny', reason: 'lineage-refused', lineageRefused: { code: 'ERR_MALFORMED', reason: 'missing' } })
    // With one, the strict endpoint verifies it (no lineage agent there: the hop need name no callee).
    const ok = await strict.callTool({ name: 'echo', arguments: { text: 'yo' }, _meta: meta(await hopToTool(await chainToC(), { text: 'yo' }, { name: 'echo', callee: null })) })
    expect(ok).toMatchObject({ content: [{ text: 'yo' }] })
    expect(paid.at(-1)!.lineage!.hops).toHaveLength(3)
  })

  it('a lineage the policy refuses: more than 4 hops; a chain not started by A', async () => {
    const client = await connect(c)
    let l = await chainToC()
    l = await appendHop(l, { signer: signer(c), credential: c.credential, target: urlB, callee: b.did, command: 'POST /v1/again', args: null })
    l = await appendHop(l, { signer: signer(b), credential: b.credential, target: urlC, callee: c.did, command: 'POST /v1/pay', args: null })
    const five = await refused(client, { invoice: 1 }, meta(await hopToTool(l, { invoice: 1 })))
    expect(five.code).toBe(MCP_FORBIDDEN)
    expect(events.at(-1)).toMatchObject({ decision: 'deny', reason: 'no-matching-policy' })
    expect(events.at(-1)!.lineage!.entries).toHaveLength(5)
    const direct = await refused(client, { invoice: 1 }, meta(await hopToTool(undefined, { invoice: 1 })))
    expect(direct.code).toBe(MCP_FORBIDDEN)
  })

  it('refuses a dropped middle hop, reordered hops and a hop spliced from another transaction', async () => {
    const client = await connect(c)
    const entries = (await hopToTool(await chainToC(), { invoice: 1 })).split('~')
    expectRefusal(await refused(client, { invoice: 1 }, meta([entries[0], entries[2]].join('~'))), 'ERR_LINEAGE_BROKEN', 1)
    expectRefusal(await refused(client, { invoice: 1 }, meta([entries[1], entries[0], entries[2]].join('~'))), 'ERR_LINEAGE_BROKEN', 0)
    const other = (await hopToTool(await chainToC(), { invoice: 1 })).split('~')
    expectRefusal(await refused(client, { invoice: 1 }, meta([entries[0], other[1], entries[2]].join('~'))), 'ERR_LINEAGE_BROKEN', 1, 'transaction')
    expectRefusal(await refused(client, { invoice: 1 }, meta([other[0], other[1], entries[2]].join('~'))), 'ERR_LINEAGE_BROKEN', 2, 'transaction')
  })

  it('refuses a hop signed by an agent the previous hop did not target', async () => {
    const client = await connect(c)
    const ab = await appendHop(undefined, { signer: signer(a), credential: a.credential, target: urlB, callee: b.did, command: 'POST /v1/plan', args: null })
    // C signs right after A's hop to B (appendHop refuses that, so the entry is made by hand from a valid one).
    const own = (await hopToTool(undefined, { invoice: 1 })).split('~')[0]!
    const forged = await resign(own, c, (claims) => ({ ...claims, idx: 1, txn: claimsOf(ab).txn, prv: sha(ab) }))
    expectRefusal(await refused(client, { invoice: 1 }, meta(`${ab}~${forged}`)), 'ERR_LINEAGE_BROKEN', 1, 'signer-not-target')
  })

  it('refuses arguments changed after C signed: the tool never sees other arguments than signed', async () => {
    const client = await connect(c)
    const l = await hopToTool(await chainToC(), { invoice: 1 })
    expectRefusal(await refused(client, { invoice: 999 }, meta(l)), 'ERR_LINEAGE_MISMATCH', 2, 'arguments')
    // Another tool than signed, too.
    expectRefusal(await refused(client, { text: '1' }, meta(await hopToTool(await chainToC(), { text: '1' })), 'echo'), 'ERR_AUDIENCE_MISMATCH', 2)
  })

  it('refuses a replayed lineage, and one signed by another agent than the caller (without spending it)', async () => {
    const client = await connect(c)
    const l = await hopToTool(await chainToC(), { invoice: 7 })
    await client.callTool({ name: 'pay', arguments: { invoice: 7 }, _meta: meta(l) })
    expect(paid.at(-1)!.args).toEqual({ invoice: 7 })
    expectRefusal(await refused(client, { invoice: 7 }, meta(l)), 'ERR_REPLAY', 2, 'replay')
    // B's own hop to the tool, sent by C: refused before verification, so B can still use it.
    const ab = await appendHop(undefined, { signer: signer(a), credential: a.credential, target: urlB, callee: b.did, command: 'POST /v1/plan', args: null, originKind: 'request' })
    const byB = await hopToTool(ab, { invoice: 8 }, { by: b })
    expectRefusal(await refused(client, { invoice: 8 }, meta(byB)), 'ERR_LINEAGE_MISMATCH', 1, 'caller')
    const asB = await connect(b)
    await asB.callTool({ name: 'pay', arguments: { invoice: 8 }, _meta: meta(byB) })
    expect(paid.at(-1)!.lineage!.last.actor.did).toBe(b.did)
  })

  it('refuses an expired last hop', async () => {
    const client = await connect(c)
    const past = () => Date.now() - 120_000
    const l = await hopToTool(await chainToC({ clock: past }), { invoice: 1 }, { clock: past })
    expectRefusal(await refused(client, { invoice: 1 }, meta(l)), 'ERR_EXPIRED', 2)
  })

  it('refuses a forged receipt in the chain', async () => {
    const client = await connect(c)
    // A → B, B → X, X's receipt (signed with C's key, claiming to be X), then B → C and C → the tool.
    let l = await appendHop(undefined, { signer: signer(a), credential: a.credential, target: urlB, callee: b.did, command: 'POST /v1/plan', args: null, originKind: 'request' })
    l = await appendHop(l, { signer: signer(b), credential: b.credential, target: 'https://x.example', callee: x.did, command: 'POST /v1/check', args: null })
    l = await createReceipt(l, { signer: { ...signer(c), did: x.did }, credential: x.credential, output: { fraud: false } })
    l = await appendHop(l, { signer: signer(b), credential: b.credential, target: urlC, callee: c.did, command: 'POST /v1/pay', args: null })
    l = await hopToTool(l, { invoice: 1 })
    expectRefusal(await refused(client, { invoice: 1 }, meta(l)), 'ERR_SIGNATURE_INVALID', 2)
    // A genuine receipt of X put in its place breaks the link to the hop after it.
    const swapped = l.split('~')
    swapped[2] = (await createReceipt(swapped.slice(0, 2).join('~'), { signer: signer(x), credential: x.credential, output: { fraud: false } })).split('~')[2]!
    expectRefusal(await refused(client, { invoice: 1 }, meta(swapped.join('~'))), 'ERR_LINEAGE_BROKEN', 3, 'previous-hash')
  })

  it('refuses oversized and deeply nested lineages, duplicate JSON members, and malformed _meta', async () => {
    const client = await connect(c)
    expectRefusal(await refused(client, { invoice: 1 }, meta('a'.repeat(20_000))), 'ERR_MALFORMED', null, 'too-large')
    const l = await hopToTool(await chainToC(), { invoice: 1 })
    const many = Array.from({ length: 17 }, () => l.split('~')[2]).join('~')
    expectRefusal(await refused(client, { invoice: 1 }, meta(many)), 'ERR_MALFORMED', null, 'too-many-entries')
    const chain = await chainToC()
    const own = (await hopToTool(chain, { invoice: 1 })).split('~')[2]!
    // Nested claims and a claim named twice, signed by C: refused when decoded, before any use.
    const deep = await resignRaw(own, c, (json) => json.replace(/}$/, `,"x":${'['.repeat(40)}${']'.repeat(40)}}`))
    expectRefusal(await refused(client, { invoice: 1 }, meta(`${chain}~${deep}`)), 'ERR_MALFORMED', 2)
    const twice = await resignRaw(own, c, (json) => json.replace('"aud":', `"aud":"mcp://${SERVER}/echo","aud":`))
    expectRefusal(await refused(client, { invoice: 1 }, meta(`${chain}~${twice}`)), 'ERR_MALFORMED', 2)
    const twiceFirst = await resignRaw(own, c, (json) => json.replace(/"aud":"[^"]*"/, `"aud":"mcp://${SERVER}/pay","aud":"mcp://${SERVER}/echo"`))
    expectRefusal(await refused(client, { invoice: 1 }, meta(`${chain}~${twiceFirst}`)), 'ERR_MALFORMED', 2)
    expectRefusal(await refused(client, { invoice: 1 }, { [MCP_LINEAGE_META]: { hops: [] } }), 'ERR_MALFORMED', null, 'not-a-string')
    expectRefusal(await refused(client, { invoice: 1 }, { [MCP_LINEAGE_META]: l, [MCP_CREDENTIALS_META]: 5 }), 'ERR_MALFORMED', null, 'credentials')
    // Without the actors' credentials (and unknown here), the lineage cannot be checked.
    const stranger = await spawn({ issuerUrl: issuer.url, apiKey, claims: claims('mcp-y'), keyCustody: 'agent' })
    const fromY = await appendHop(undefined, { signer: signerFromJwk(stranger.privateJwk!), credential: stranger.credential, target: urlC, callee: c.did, command: 'POST /v1/pay', args: null })
    expectRefusal(await refused(client, { invoice: 1 }, meta(await hopToTool(fromY, { invoice: 1 }))), 'ERR_LINEAGE_CREDENTIAL_MISSING', 0)
  })

  it('a request id reused after a refused call gets no receipt of the refused call\'s lineage', async () => {
    const client = await connect(c)
    const sessionId = (client.transport as StreamableHTTPClientTransport).sessionId!
    const post = createAgentFetch({ issuerUrl: issuer.url, privateJwk: c.privateJwk!, resource: mcpUrl })
    const rpc = async (body: unknown) => {
      const r = await post(mcpUrl, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId } })
      const text = await r.text()
      return JSON.parse(text.split('\n').find((l) => l.startsWith('data: '))!.slice(6)) as { result?: { _meta?: Record<string, unknown> }; error?: { code: number } }
    }
    // Verified, then denied by the policy (a chain A did not start).
    const denied = await rpc({ jsonrpc: '2.0', id: 'reused', method: 'tools/call', params: { name: 'pay', arguments: { invoice: 1 }, _meta: meta(await hopToTool(undefined, { invoice: 1 })) } })
    expect(denied.error?.code).toBe(MCP_FORBIDDEN)
    const plain = await rpc({ jsonrpc: '2.0', id: 'reused', method: 'tools/call', params: { name: 'echo', arguments: { text: 'again' } } })
    expect(plain.result).toBeDefined()
    expect(plain.result!._meta?.[MCP_LINEAGE_META]).toBeUndefined()
  })

  it('refuses a body naming the lineage twice in _meta (duplicate JSON members), before anything runs', async () => {
    const client = await connect(c)
    const sessionId = (client.transport as StreamableHTTPClientTransport).sessionId!
    const post = createAgentFetch({ issuerUrl: issuer.url, privateJwk: c.privateJwk!, resource: mcpUrl })
    const good = await hopToTool(await chainToC(), { invoice: 1 })
    const other = await hopToTool(await chainToC(), { invoice: 2 })
    const before = paid.length
    const body = `{"jsonrpc":"2.0","id":"dup","method":"tools/call","params":{"name":"pay","arguments":{"invoice":2},"_meta":{"${MCP_LINEAGE_META}":"${good}","${MCP_LINEAGE_META}":"${other}","${MCP_CREDENTIALS_META}":"${credentialsOf(a, b, c)}"}}}`
    const r = await post(mcpUrl, { method: 'POST', body, headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sessionId } })
    expect(r.status).toBe(400)
    expect(await r.json()).toMatchObject({ error: { code: -32700, data: { code: 'ERR_INVALID_INPUT' } } })
    expect(paid.length).toBe(before)
  })

  it('refuses a chain whose middle agent was revoked, within the status TTL', async () => {
    const client = await connect(c)
    const l = await hopToTool(await chainToC(), { invoice: 5 })
    const revoked = await adminCli(issuer, ['revoke', b.did, '--reason', 'e2e lineage mcp', '--json'])
    expect(revoked.code, revoked.stderr).toBe(0)
    await sleep(STATUS_TTL_MS + 100)
    expectRefusal(await refused(client, { invoice: 5 }, meta(l)), 'ERR_REVOKED', 1, 'actor-credential')
  })
})

// Hand-made entries: the claims of a valid entry, changed, signed again by `by` (what a malicious agent can do).
function claimsOf(lineage: string): Record<string, unknown> & { txn: string } {
  return JSON.parse(Buffer.from(lineage.split('~').at(-1)!.split('.')[1]!, 'base64url').toString('utf8'))
}
function sha(lineage: string): string {
  return entryHash(lineage.split('~').at(-1)!)
}
async function resign(entry: string, by: SpawnedAgent, change: (claims: Record<string, unknown>) => Record<string, unknown>): Promise<string> {
  return resignRaw(entry, by, (json) => JSON.stringify(change(JSON.parse(json))))
}
async function resignRaw(entry: string, by: SpawnedAgent, change: (json: string) => string): Promise<string> {
  const [header, payload] = entry.split('.')
  const json = change(Buffer.from(payload!, 'base64url').toString('utf8'))
  return signCompactJws(JSON.parse(Buffer.from(header!, 'base64url').toString('utf8')), json, signer(by))
}
