// End to end: an MCP call carrying both a lineage and a human approval through the guard. The real issuer
// process certifies an approver's passkey (a software authenticator answers the WebAuthn ceremonies, as in
// apps/issuer's in-process tests; the browser suite drives the real thing) and records the approval; agent C
// calls the `pay` tool of an SDK McpServer behind @agentid/mcp's guard, its hop naming the approval (`apr`)
// and the receipt in `_meta["io.agentid/approval"]`. The guard verifies the lineage with the receipt (the
// hop is approved), the policy reads the verified approval in context.lineage, the @approval("required")
// permit spends the receipt, and the tool sees the approval in verifiedLineage. Then the hostile variants.
import { writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { McpError } from '@modelcontextprotocol/sdk/types.js'
import { createAgentFetch, spawn, type SpawnedAgent } from '@agentid/client'
import { signerFromJwk } from '@agentid/core'
import { appendHop, argsDigest, MCP_CREDENTIALS_META, MCP_LINEAGE_META, mcpCommand, mcpTarget } from '@agentid/lineage'
import { APPROVAL_META_KEY, createMcpGuard, MCP_FORBIDDEN, MCP_LINEAGE_REFUSED, verifiedLineage, type AuditEvent } from '@agentid/mcp'
import { loadPolicyEngine } from '@agentid/policy'
import { createVerifier, type VerifiedLineage } from '@agentid/verifier'
import { softAssert, softRegister, type SoftPasskey } from '../apps/issuer/test/webauthn-soft.js'
import { addOrchestratorViaApi, api, cleanup, claims, freePort, issuerDid, startIssuer, tempDir, type IssuerProcess } from './harness.js'

const SERVER = 'ledger'
const CONTROLLER = 'did:web:acme.example' // harness claims()
const POLICIES = `
// pay: a human approves the exact call (the receipt spent by the guard) ...
@id("pay") @approval("required")
permit (principal, action == AgentId::Action::"callTool", resource == AgentId::Tool::"${SERVER}/pay")
when { context has lineage };
// ... and that approval is in the chain of custody: the hop calling pay carries it, verified.
@id("pay-approved-in-lineage")
forbid (principal, action == AgentId::Action::"callTool", resource == AgentId::Tool::"${SERVER}/pay")
unless { context has lineage && context.lineage.approvedCalls.contains({ target: "mcp://${SERVER}/pay", command: "tools/call pay" }) };
`

let issuer: IssuerProcess
let orchKey: string
let a: SpawnedAgent
let c: SpawnedAgent
let passkey: SoftPasskey
let mcpUrl: string
let server: Server
let client: Client
/** A client of C that sends `approvalHeader` (when set) as the Agentid-Approval header of its requests. */
let headerClient: Client
let approvalHeader: string | undefined
const events: AuditEvent[] = []
const paid: { args: unknown; lineage: VerifiedLineage | null }[] = []

const signer = (agent: SpawnedAgent) => signerFromJwk(agent.privateJwk!)

beforeAll(async () => {
  issuer = await startIssuer()
  const did = await issuerDid(issuer)
  orchKey = (await addOrchestratorViaApi(issuer, 'lineage-approval')).apiKey
  ;[a, c] = await Promise.all(['apr-a', 'apr-c'].map((n) => spawn({ issuerUrl: issuer.url, apiKey: orchKey, claims: claims(n), keyCustody: 'agent' }))) as [SpawnedAgent, SpawnedAgent]

  // An approver for the agents' controller, enrolled with a (software) passkey.
  const added = await api(issuer, 'POST', '/v1/approvers', { key: issuer.adminKey, json: { name: 'Dana', controllers: [CONTROLLER] } })
  expect(added.status, added.text).toBe(201)
  const token = (added.body.enrolmentUrl as string).split('#')[1]!
  const options = (await api(issuer, 'POST', '/v1/enrolments/options', { json: { token } })).body
  const registered = softRegister(options, new URL(issuer.url).origin)
  const enrolled = await api(issuer, 'POST', '/v1/enrolments/verify', { json: { token, response: registered.response } })
  expect(enrolled.status, enrolled.text).toBe(201)
  passkey = registered.passkey

  const dir = tempDir('agentid-lineage-approval-')
  writeFileSync(join(dir, 'ledger.cedar'), POLICIES)
  const port = await freePort()
  mcpUrl = `http://127.0.0.1:${port}/mcp`
  const guard = createMcpGuard({
    verifier: createVerifier({ trustedIssuers: [did] }), policy: await loadPolicyEngine({ dir }), serverId: SERVER, resource: mcpUrl,
    authorizationServers: [issuer.url], audit: (e) => void events.push(e), approvals: { issuerUrl: issuer.url, apiKey: orchKey },
  })
  const handler = guard.nodeHandler({
    createServer: () => {
      const s = new McpServer({ name: SERVER, version: '1.0.0' })
      s.registerTool('pay', { inputSchema: { invoice: z.number() } }, async (args, extra) => {
        paid.push({ args, lineage: verifiedLineage(extra) })
        return { content: [{ type: 'text', text: `paid ${args.invoice}` }] }
      })
      return s
    },
  })
  server = createServer((req, res) => void handler(req, res))
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  client = new Client({ name: 'e2e-lineage-approval', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { fetch: createAgentFetch({ issuerUrl: issuer.url, privateJwk: c.privateJwk!, resource: mcpUrl }) as never }))
  const agentFetch = createAgentFetch({ issuerUrl: issuer.url, privateJwk: c.privateJwk!, resource: mcpUrl })
  const withHeader = (url: string, init: RequestInit = {}) => {
    const headers = new Headers(init.headers)
    if (approvalHeader !== undefined) headers.set('agentid-approval', approvalHeader)
    return agentFetch(url, { ...init, headers } as never)
  }
  headerClient = new Client({ name: 'e2e-lineage-approval-header', version: '1.0.0' })
  await headerClient.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { fetch: withHeader as never }))
}, 120_000)

afterAll(async () => {
  await client?.close().catch(() => undefined)
  await headerClient?.close().catch(() => undefined)
  await new Promise<void>((resolve) => { server?.closeAllConnections(); server ? server.close(() => resolve()) : resolve() })
  await cleanup()
})

/** A → C (a human's request), then C's hop to `pay` with `args`, naming `approval` when given. */
async function lineage(txn: string, args: unknown, approval?: unknown): Promise<string> {
  const ac = await appendHop(undefined, { signer: signer(a), credential: a.credential, target: 'https://c.example', callee: c.did, command: 'POST /v1/pay', args, originKind: 'request', transactionId: txn })
  return appendHop(ac, { signer: signer(c), credential: c.credential, target: mcpTarget(SERVER, 'pay'), command: mcpCommand('tools/call', 'pay'), args, ...(approval === undefined ? {} : { approval }) })
}

const meta = (l: string, receipt?: unknown) => ({ [MCP_LINEAGE_META]: l, [MCP_CREDENTIALS_META]: `${a.credential}~${c.credential}`, ...(receipt === undefined ? {} : { [APPROVAL_META_KEY]: receipt }) })

/** The guard's approval request for C's call of pay (as it makes one), approved by Dana with her passkey; the receipt. */
async function approvedReceipt(txn: string, args: unknown): Promise<Record<string, unknown>> {
  const r = await api(issuer, 'POST', '/v1/approvals', { key: orchKey, json: { agent: c.did, controller: CONTROLLER, target: mcpTarget(SERVER, 'pay'), command: 'tools/call pay', arguments: args, transactionId: txn } })
  expect(r.status, r.text).toBe(201)
  const id = r.body.id as string
  const options = (await api(issuer, 'POST', `/v1/approvals/${id}/options`)).body
  const decided = await api(issuer, 'POST', `/v1/approvals/${id}/decision`, { json: { decision: 'approve', response: softAssert(passkey, options.approve, new URL(issuer.url).origin) } })
  expect(decided.status, decided.text).toBe(200)
  const receipt = (await api(issuer, 'GET', `/v1/approvals/${id}`)).body.receipt
  expect(receipt).toMatchObject({ decision: 'approve', call: { id, transactionId: txn } })
  return receipt
}

async function refused(args: Record<string, unknown>, _meta: Record<string, unknown>): Promise<McpError> {
  const before = paid.length
  const error = await client.callTool({ name: 'pay', arguments: args, _meta }).then(() => null, (e: unknown) => e)
  expect(error).toBeInstanceOf(McpError)
  expect(paid.length, 'the tool never ran').toBe(before)
  return error as McpError
}

describe('an MCP call carrying a lineage and an approval', () => {
  it('without an approved hop the call is refused; with the approval in the lineage and the receipt sent, it runs once and the tool sees who approved', async () => {
    const txn = `tx-${randomUUID()}`
    const args = { invoice: 42 }
    // The lineage alone: no approval in the chain, refused by the policy.
    const plain = await refused(args, meta(await lineage(txn, args)))
    expect(plain.code).toBe(MCP_FORBIDDEN)
    expect(events.at(-1)).toMatchObject({ decision: 'deny', policies: ['pay-approved-in-lineage'] })

    const receipt = await approvedReceipt(txn, args)
    const requestId = (receipt.call as { id: string }).id
    const result = await client.callTool({ name: 'pay', arguments: args, _meta: meta(await lineage(txn, args, receipt), receipt) })
    expect(result.content).toEqual([{ type: 'text', text: 'paid 42' }])
    const seen = paid.at(-1)!
    expect(seen.args).toEqual(args)
    expect(seen.lineage?.transactionId).toBe(txn)
    expect(seen.lineage?.hops.map((h) => h.approved)).toEqual([false, true])
    expect(seen.lineage?.last.approval?.digest).toBe(argsDigest(receipt))
    expect(seen.lineage?.approvals).toHaveLength(1)
    expect(seen.lineage?.approvals[0]).toMatchObject({ hop: 1, actor: c.did, target: mcpTarget(SERVER, 'pay'), command: 'tools/call pay', approval: { approver: { name: 'Dana' }, requestId } })
    expect(events.at(-1)).toMatchObject({ decision: 'allow', approvalId: requestId })

    // The same approval again, on a fresh hop: the lineage still verifies (not spent there), the guard's spend refuses it.
    const replay = await refused(args, meta(await lineage(txn, args, receipt), receipt))
    expect(replay.code).toBe(MCP_FORBIDDEN)
    expect(replay.data).toMatchObject({ code: 'ERR_REPLAY' })
  }, 60_000)

  it('the receipt in the Agentid-Approval header instead of _meta: the lineage check reads it too, so the hop is approved', async () => {
    const txn = `tx-${randomUUID()}`
    const args = { invoice: 9 }
    const receipt = await approvedReceipt(txn, args)
    approvalHeader = Buffer.from(JSON.stringify(receipt)).toString('base64url')
    try {
      const result = await headerClient.callTool({ name: 'pay', arguments: args, _meta: meta(await lineage(txn, args, receipt)) })
      expect(result.content).toEqual([{ type: 'text', text: 'paid 9' }])
      expect(paid.at(-1)?.lineage?.last.approved).toBe(true)
      // Not base64url: no receipt for the lineage (the hop approves nothing) and the approval step refuses it.
      approvalHeader = 'not base64url!'
      const before = paid.length
      const error = await headerClient.callTool({ name: 'pay', arguments: args, _meta: meta(await lineage(txn, args, receipt)) }).then(() => null, (e: unknown) => e)
      expect(error).toBeInstanceOf(McpError)
      expect((error as McpError).code).toBe(MCP_FORBIDDEN)
      expect(paid.length).toBe(before)
    } finally {
      approvalHeader = undefined
    }
  }, 60_000)

  it('refuses an approval claimed without its receipt, a receipt for other arguments, and a receipt no hop names', async () => {
    const txn = `tx-${randomUUID()}`
    const args = { invoice: 7 }
    const receipt = await approvedReceipt(txn, args)
    // apr signed in the hop, receipt not sent: the hop names an unverified approval, which approves nothing.
    const claimed = await refused(args, meta(await lineage(txn, args, receipt)))
    expect(claimed.code).toBe(MCP_FORBIDDEN)
    expect(events.at(-1)).toMatchObject({ decision: 'deny', policies: ['pay-approved-in-lineage'] })
    // The hop and the call for other arguments, naming the receipt of the approved ones: the lineage is refused at that hop.
    const other = { invoice: 8 }
    const mismatch = await refused(other, meta(await lineage(txn, other, receipt), receipt))
    expect(mismatch.code).toBe(MCP_LINEAGE_REFUSED)
    expect(mismatch.data).toMatchObject({ code: 'ERR_APPROVAL_MISMATCH', hop: 1 })
    // The receipt sent, but the hop does not name it: no approval in the lineage, refused by the policy.
    const unnamed = await refused(args, meta(await lineage(txn, args), receipt))
    expect(unnamed.code).toBe(MCP_FORBIDDEN)
    expect(events.at(-1)).toMatchObject({ decision: 'deny', policies: ['pay-approved-in-lineage'] })
    // None of these spent the approval: the proper call still runs.
    await client.callTool({ name: 'pay', arguments: args, _meta: meta(await lineage(txn, args, receipt), receipt) })
    expect(paid.at(-1)?.args).toEqual(args)
  }, 60_000)
})
