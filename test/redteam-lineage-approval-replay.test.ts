// Red team: a human approval carried in the lineage is single use at the service that acts on it. With
// the policy of packages/policy/examples/approved-lineage.cedar (a permit resting on
// context.lineage.approvedCalls alone, no @approval("required")), the guard verified the receipt with
// verifyLineage (consume: false) and nothing spent it: the agent re-sent the same approved call on fresh
// hops and the tool ran once per hop. The guard now spends the approval of the call it forwards.
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
import { appendHop, MCP_CREDENTIALS_META, MCP_LINEAGE_META, mcpCommand, mcpTarget } from '@agentid/lineage'
import { APPROVAL_META_KEY, createMcpGuard, MCP_FORBIDDEN } from '@agentid/mcp'
import { loadPolicyEngine } from '@agentid/policy'
import { createVerifier } from '@agentid/verifier'
import { softAssert, softRegister, type SoftPasskey } from '../apps/issuer/test/webauthn-soft.js'
import { addOrchestratorViaApi, api, cleanup, claims, freePort, issuerDid, startIssuer, tempDir, type IssuerProcess } from './harness.js'

const SERVER = 'treasury'
const CONTROLLER = 'did:web:acme.example'
// As examples/approved-lineage.cedar: the permit rests on the verified approval in the lineage only.
const POLICIES = `
@id("charge-approved-in-lineage")
permit (principal, action == AgentId::Action::"callTool", resource == AgentId::Tool::"${SERVER}/charge")
when { context has lineage && context.lineage.approvedCalls.contains({ target: "mcp://${SERVER}/charge", command: "tools/call charge" }) };
@id("list")
permit (principal, action == AgentId::Action::"listTools", resource);
`

let issuer: IssuerProcess
let orchKey: string
let a: SpawnedAgent
let c: SpawnedAgent
let passkey: SoftPasskey
let server: Server
let client: Client
const charged: unknown[] = []
const signer = (agent: SpawnedAgent) => signerFromJwk(agent.privateJwk!)

beforeAll(async () => {
  issuer = await startIssuer()
  const did = await issuerDid(issuer)
  orchKey = (await addOrchestratorViaApi(issuer, 'redteam-approval')).apiKey
  ;[a, c] = (await Promise.all(['rt-a', 'rt-c'].map((n) => spawn({ issuerUrl: issuer.url, apiKey: orchKey, claims: claims(n), keyCustody: 'agent' })))) as [SpawnedAgent, SpawnedAgent]
  const added = await api(issuer, 'POST', '/v1/approvers', { key: issuer.adminKey, json: { name: 'Dana', controllers: [CONTROLLER] } })
  expect(added.status, added.text).toBe(201)
  const token = (added.body.enrolmentUrl as string).split('#')[1]!
  const options = (await api(issuer, 'POST', '/v1/enrolments/options', { json: { token } })).body
  const registered = softRegister(options, new URL(issuer.url).origin)
  expect((await api(issuer, 'POST', '/v1/enrolments/verify', { json: { token, response: registered.response } })).status).toBe(201)
  passkey = registered.passkey

  const dir = tempDir('agentid-redteam-approval-')
  writeFileSync(join(dir, 'treasury.cedar'), POLICIES)
  const port = await freePort()
  const mcpUrl = `http://127.0.0.1:${port}/mcp`
  const guard = createMcpGuard({
    verifier: createVerifier({ trustedIssuers: [did] }), policy: await loadPolicyEngine({ dir }), serverId: SERVER, resource: mcpUrl,
    authorizationServers: [issuer.url], approvals: { issuerUrl: issuer.url, apiKey: orchKey },
  })
  const handler = guard.nodeHandler({
    createServer: () => {
      const s = new McpServer({ name: SERVER, version: '1.0.0' })
      s.registerTool('charge', { inputSchema: { amount: z.number() } }, async (args) => {
        charged.push(args)
        return { content: [{ type: 'text', text: `charged ${args.amount}` }] }
      })
      return s
    },
  })
  server = createServer((req, res) => void handler(req, res))
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  client = new Client({ name: 'redteam-approval', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { fetch: createAgentFetch({ issuerUrl: issuer.url, privateJwk: c.privateJwk!, resource: mcpUrl }) as never }))
}, 120_000)

afterAll(async () => {
  await client?.close().catch(() => undefined)
  await new Promise<void>((resolve) => { server?.closeAllConnections(); server ? server.close(() => resolve()) : resolve() })
  await cleanup()
})

async function lineage(txn: string, args: unknown, approval?: unknown): Promise<string> {
  const ac = await appendHop(undefined, { signer: signer(a), credential: a.credential, target: 'https://c.example', callee: c.did, command: 'POST /v1/charge', args, originKind: 'request', transactionId: txn })
  return appendHop(ac, { signer: signer(c), credential: c.credential, target: mcpTarget(SERVER, 'charge'), command: mcpCommand('tools/call', 'charge'), args, ...(approval === undefined ? {} : { approval }) })
}
const meta = (l: string, receipt?: unknown) => ({ [MCP_LINEAGE_META]: l, [MCP_CREDENTIALS_META]: `${a.credential}~${c.credential}`, ...(receipt === undefined ? {} : { [APPROVAL_META_KEY]: receipt }) })

async function approvedReceipt(txn: string, args: unknown): Promise<Record<string, unknown>> {
  const r = await api(issuer, 'POST', '/v1/approvals', { key: orchKey, json: { agent: c.did, controller: CONTROLLER, target: mcpTarget(SERVER, 'charge'), command: 'tools/call charge', arguments: args, transactionId: txn } })
  expect(r.status, r.text).toBe(201)
  const id = r.body.id as string
  const options = (await api(issuer, 'POST', `/v1/approvals/${id}/options`)).body
  const decided = await api(issuer, 'POST', `/v1/approvals/${id}/decision`, { json: { decision: 'approve', response: softAssert(passkey, options.approve, new URL(issuer.url).origin) } })
  expect(decided.status, decided.text).toBe(200)
  return (await api(issuer, 'GET', `/v1/approvals/${id}`)).body.receipt
}

describe('an approval in the lineage, at the guard that acts on it', () => {
  it('runs the approved call once; the same receipt on a fresh hop (same call, same transaction) is refused', async () => {
    const txn = `tx-${randomUUID()}`
    const args = { amount: 1000 }
    const receipt = await approvedReceipt(txn, args)
    const ok = await client.callTool({ name: 'charge', arguments: args, _meta: meta(await lineage(txn, args, receipt), receipt) })
    expect(ok.content).toEqual([{ type: 'text', text: 'charged 1000' }])
    expect(charged).toHaveLength(1)
    const again = await client.callTool({ name: 'charge', arguments: args, _meta: meta(await lineage(txn, args, receipt), receipt) }).then(() => null, (e: unknown) => e)
    expect(again).toBeInstanceOf(McpError)
    expect((again as McpError).code).toBe(MCP_FORBIDDEN)
    expect((again as McpError).data).toMatchObject({ code: 'ERR_REPLAY' })
    expect(charged, 'one human approval, one charge').toHaveLength(1)
  }, 60_000)
})
