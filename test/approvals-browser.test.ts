// Human approval with real parts: the issuer process, its enrolment and approval pages driven in headless
// Chromium (playwright-core, /usr/bin/chromium) with a CDP virtual authenticator (ctap2, internal, user
// verification), an MCP SDK client and server behind the agentid guard with a Cedar policy marking the
// payment tool @approval("required"). The suite installs Chromium with apt-get when it is missing; when it
// still cannot be had it is skipped with the reason printed, unless AGENTID_REQUIRE_SERVICES=1 (CI), where
// it fails. Screenshots of both pages go to test/artifacts/.
import { CHROMIUM, chromiumMissing, suiteUnless } from './browser.js'
import { createHash, randomUUID } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import canonicalizeModule from 'canonicalize'
import { verifyAuthenticationResponse } from '@simplewebauthn/server'
import { isoCBOR } from '@simplewebauthn/server/helpers'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { McpError } from '@modelcontextprotocol/sdk/types.js'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { z } from 'zod'
import { callToolWithApproval, fetchWithApproval, mcpLineageMeta, createAgentFetch, createExchangeSigner, exchangeToken, spawn, waitForApproval, type SpawnedAgent } from '@agentid/client'
import { generateEd25519KeyPair, signerFromJwk, signJwt } from '@agentid/core'
import { APPROVAL_META_KEY, createMcpGuard, MCP_FORBIDDEN, verifiedLineage, type AuditEvent } from '@agentid/mcp'
import { loadPolicyEngine } from '@agentid/policy'
import { agentidMiddleware, createVerifier, type FetchLike } from '@agentid/verifier'
import { adminCli, api, cleanup, claims, freePort, issuerDid, ROOT, startIssuer, tempDir, type IssuerProcess } from './harness.js'

const ARTIFACTS = join(ROOT, 'test/artifacts')
const SERVER_ID = 'bank'
const CONTROLLER = 'did:web:acme.example'
const IDP_ISSUER = 'https://idp.example'
const IDP_AUDIENCE = 'agentid-approvals-e2e'
const IDP_KID = 'idp-1'
const idpKey = generateEd25519KeyPair()

type Serialize = (v: unknown) => string | undefined
const canonicalize: Serialize = typeof canonicalizeModule === 'function' ? (canonicalizeModule as unknown as Serialize) : (canonicalizeModule as unknown as { default: Serialize }).default

const missing = chromiumMissing()
const suite = suiteUnless(missing, 'approvals in a browser')

const POLICIES = `
@id("pay-with-finance-approval")
@approval("required")
@approvers("finance")
permit (principal, action == AgentId::Action::"callTool", resource in AgentId::McpServer::"${SERVER_ID}")
when { principal.purpose == "accounts-payable" && ["pay_invoice", "refund"].contains(resource.name) };

@id("balance")
permit (principal, action == AgentId::Action::"callTool", resource == AgentId::Tool::"${SERVER_ID}/get_balance");

@id("list")
permit (principal, action == AgentId::Action::"listTools", resource == AgentId::McpServer::"${SERVER_ID}");

@id("no-self-approval")
forbid (principal, action == AgentId::Action::"callTool", resource in AgentId::McpServer::"${SERVER_ID}")
when { context has approval && context.approval.selfApproval };
`

let issuer: IssuerProcess
/** The issuer's public base URL: localhost, so that Chromium treats the pages as a secure context. */
let base: string
let did: string
let browser: Browser
let mcpServer: Server
/** A plain HTTP service behind agentidMiddleware with approval: POST /v1/pay needs a finance approval. */
let httpService: Server
let httpOrigin: string
let resource: string
let agent: SpawnedAgent
let serviceKey: string
const events: AuditEvent[] = []
/** Every pay_invoice / refund the tool server really ran, with its arguments. */
const ran: { tool: string; args: unknown }[] = []
const contexts: BrowserContext[] = []
/** What tool handlers saw of the verified lineage's last hop: the approval it names. */
const lineageSeen: { approver: string | null; digest: string | null }[] = []
const clients: Client[] = []

/** A browser context with its own virtual platform authenticator (one approver's device). */
async function device(): Promise<{ context: BrowserContext; page: Page; setUserVerified(v: boolean): Promise<void> }> {
  const context = await browser.newContext({ viewport: { width: 900, height: 1000 } })
  contexts.push(context)
  const page = await context.newPage()
  const cdp = await context.newCDPSession(page)
  await cdp.send('WebAuthn.enable', { enableUI: false })
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  })
  return { context, page, setUserVerified: async (v) => void (await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: v })) }
}

async function enrol(page: Page, name: string, scope: string[], extra: string[] = [], screenshot?: string): Promise<string> {
  const added = await adminCli(issuer, ['approvers', 'add', name, ...scope.flatMap((s) => ['--for', s]), ...extra, '--json'])
  expect(added.code, added.stderr).toBe(0)
  const { enrolmentUrl, id } = added.json() as { enrolmentUrl: string; id: string }
  expect(enrolmentUrl.startsWith(`${base}/approvals/enrol#`)).toBe(true)
  await page.goto(enrolmentUrl)
  await page.locator('#enrol').waitFor()
  if (screenshot) await page.screenshot({ path: join(ARTIFACTS, screenshot), fullPage: true })
  await page.click('#enrol')
  await expect.poll(() => page.locator('#result').textContent(), { timeout: 20_000 }).toContain('Enrolled')
  return id
}

/** Opens the approval page and clicks approve or deny; resolves with the page's result line. */
async function decide(page: Page, url: string, decision: 'approve' | 'deny', screenshot?: string): Promise<string> {
  await page.goto(url)
  await page.locator(`#${decision}`).waitFor()
  if (screenshot) await page.screenshot({ path: join(ARTIFACTS, screenshot), fullPage: true })
  await page.click(`#${decision}`)
  await expect.poll(async () => (await page.locator('#result').textContent()) ?? '', { timeout: 20_000 }).not.toBe('')
  return (await page.locator('#result').textContent()) ?? ''
}

function buildServer(): McpServer {
  const server = new McpServer({ name: 'bank', version: '1.0.0' })
  for (const tool of ['pay_invoice', 'refund']) {
    server.registerTool(tool, { description: tool, inputSchema: { invoice: z.string(), amount: z.string(), to: z.string() } }, async (args, extra) => {
      ran.push({ tool, args })
      const lineage = verifiedLineage(extra)
      if (lineage !== null) lineageSeen.push({ approver: lineage.last.approval?.verified?.approver.name ?? null, digest: lineage.last.approval?.digest ?? null })
      return { content: [{ type: 'text', text: `${tool} done: ${args.invoice}` }] }
    })
  }
  server.registerTool('get_balance', { description: 'balance' }, async () => ({ content: [{ type: 'text', text: '1000.00 EUR' }] }))
  return server
}

async function connect(fetchFn: typeof fetch): Promise<Client> {
  const client = new Client({ name: 'agent', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(resource), { fetch: fetchFn }))
  clients.push(client)
  return client
}

const agentFetch = () => createAgentFetch({ issuerUrl: base, privateJwk: agent.privateJwk, resource }) as typeof fetch

/** The agent acting for `user` (RFC 8693 token exchange of a user token from the test IdP). */
function userFetch(user: string): typeof fetch {
  const signer = createExchangeSigner({ privateJwk: agent.privateJwk, issuerUrl: base })
  return createAgentFetch({
    privateJwk: agent.privateJwk,
    token: async () => {
      const now = Math.floor(Date.now() / 1000)
      const subjectToken = await signJwt({ typ: 'JWT', kid: IDP_KID }, { iss: IDP_ISSUER, sub: user, aud: IDP_AUDIENCE, iat: now, exp: now + 300, jti: randomUUID() }, signerFromJwk(idpKey.privateJwk))
      const t = await exchangeToken({ issuerUrl: base, subjectToken, subjectTokenType: 'urn:ietf:params:oauth:token-type:jwt', agent: signer, resource })
      return { accessToken: t.accessToken, expiresIn: t.expiresIn }
    },
  }) as typeof fetch
}

const ARGS = { invoice: 'INV-2026-042', amount: '1200.00 EUR', to: 'ACME GmbH, IBAN DE89 3704 0044 0532 0130 00' }

/** Creates a pending approval through the guard: the agent's call is refused with ERR_APPROVAL_REQUIRED. */
async function pending(client: Client, name = 'pay_invoice', args: Record<string, unknown> = ARGS): Promise<{ approvalId: string; approvalUrl: string }> {
  const error = await client.callTool({ name, arguments: args }).then(() => null, (e: unknown) => e)
  expect(error).toBeInstanceOf(McpError)
  expect((error as McpError).code).toBe(MCP_FORBIDDEN)
  const data = (error as McpError).data as { code: string; approvalId: string; approvalUrl: string }
  expect(data.code).toBe('ERR_APPROVAL_REQUIRED')
  return data
}

async function refusalCode(p: Promise<unknown>): Promise<string> {
  const error = await p.then(() => null, (e: unknown) => e)
  return error instanceof McpError ? ((error.data as { code?: string } | undefined)?.code ?? `rpc:${error.code}`) : `not refused: ${String(error)}`
}

suite('human approval in a browser (Chromium, virtual authenticator)', () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true })
    const port = await freePort()
    base = `http://localhost:${port}`
    issuer = await startIssuer({
      port,
      env: {
        AGENTID_BASE_URL: base,
        AGENTID_TRUSTED_IDPS: JSON.stringify([{ issuer: IDP_ISSUER, jwks: { keys: [{ ...idpKey.publicJwk, kid: IDP_KID, alg: 'EdDSA', use: 'sig' }] }, audience: IDP_AUDIENCE }]),
      },
    })
    did = await issuerDid(issuer)
    const orch = await adminCli(issuer, ['orchestrators', 'add', 'payables', '--json'])
    const guardKey = await adminCli(issuer, ['orchestrators', 'add', 'bank-guard', '--json'])
    serviceKey = guardKey.json().apiKey
    agent = await spawn({ issuerUrl: base, apiKey: orch.json().apiKey, claims: claims('payables', { purpose: 'accounts-payable', controller: CONTROLLER, toolProfile: ['pay_invoice', 'refund', 'get_balance'] }), keyCustody: 'agent' })

    const dir = tempDir('agentid-approval-policies-')
    writeFileSync(join(dir, 'bank.cedar'), POLICIES)
    const mcpPort = await freePort()
    resource = `http://127.0.0.1:${mcpPort}/mcp`
    const guard = createMcpGuard({
      verifier: createVerifier({ trustedIssuers: [did], statusTtlMs: 200, statusGraceMs: 0 }),
      policy: await loadPolicyEngine({ dir }),
      serverId: SERVER_ID,
      resource,
      authorizationServers: [issuer.url],
      audit: (e) => events.push(e),
      approvals: { issuerUrl: base, apiKey: serviceKey },
    })
    mcpServer = createServer(guard.nodeHandler({ createServer: buildServer }))
    await new Promise<void>((resolve) => mcpServer.listen(mcpPort, '127.0.0.1', resolve))

    const httpPort = await freePort()
    httpOrigin = `http://127.0.0.1:${httpPort}`
    const middleware = agentidMiddleware(createVerifier({ trustedIssuers: [did], statusTtlMs: 200, statusGraceMs: 0 }), {
      audience: httpOrigin,
      origin: httpOrigin,
      approval: { issuerUrl: base, apiKey: serviceKey, requires: ({ method, url }) => (method === 'POST' && new URL(url).pathname === '/v1/pay' ? { group: 'finance' } : false) },
    })
    httpService = createServer((req, res) => {
      middleware(req as never, res, (error?: unknown) => {
        if (error) { res.statusCode = 500; res.end(); return }
        const r = req as unknown as { body?: unknown; agentidApproval?: { approver: { name: string } } | null }
        ran.push({ tool: 'http:/v1/pay', args: r.body })
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ paid: true, approvedBy: r.agentidApproval?.approver.name ?? null }))
      })
    })
    await new Promise<void>((resolve) => httpService.listen(httpPort, '127.0.0.1', resolve))

    const { chromium } = await import('playwright-core')
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-background-networking'] })
  })

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined)
    for (const c of contexts) await c.close().catch(() => undefined)
    await browser?.close()
    for (const server of [mcpServer, httpService]) {
      if (!server) continue
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
    await cleanup()
  })

  let dana: Awaited<ReturnType<typeof device>>
  let receipt: Record<string, unknown>

  it('enrols a passkey, pauses the call, the approver approves, the retried call runs once with exactly the approved arguments', async () => {
    dana = await device()
    await enrol(dana.page, 'Dana Scully', ['group:finance'], ['--user', 'dana', '--user-issuer', IDP_ISSUER], 'enrolment-page.png')
    const client = await connect(agentFetch())
    let approvalUrl = ''
    const call = callToolWithApproval(client, { name: 'pay_invoice', arguments: ARGS }, {
      issuerUrl: base,
      timeoutMs: 60_000,
      onApprovalRequired: (d) => { approvalUrl = d.approvalUrl },
    })
    let failed: unknown
    call.catch((e: unknown) => { failed = e })
    await expect.poll(() => (failed ? `failed: ${String(failed)} ${JSON.stringify((failed as { data?: unknown }).data)}` : approvalUrl), { timeout: 20_000 }).toMatch(/^http/)
    expect(ran).toEqual([]) // paused: the tool has not run
    const page = dana.page // the virtual authenticator belongs to this tab
    const shown = await page.goto(approvalUrl).then(() => page.locator('#approve').waitFor()).then(() => page.locator('#content').innerText())
    // The page shows the canonical fields as data.
    for (const text of ['"tools/call pay_invoice"', `"mcp://${SERVER_ID}/pay_invoice"`, '"INV-2026-042"', '"1200.00 EUR"', agent.did, '"finance"']) expect(shown).toContain(text)
    expect(await decide(page, approvalUrl, 'approve', 'approval-page.png')).toContain('Approved by Dana Scully')
    const result = (await call) as { content: { text: string }[] }
    expect(result.content[0]!.text).toBe('pay_invoice done: INV-2026-042')
    expect(ran).toEqual([{ tool: 'pay_invoice', args: ARGS }])
    const id = new URL(approvalUrl).pathname.split('/').pop()!
    receipt = (await api(issuer, 'GET', `/v1/approvals/${id}`)).body.receipt as Record<string, unknown>
    // Per attempt, the policy's decision, then the approval's outcome (with the request id).
    expect(events.filter((e) => e.target === 'pay_invoice').map((e) => [e.decision, e.reason, e.approvalId ?? null])).toEqual([
      ['deny', 'approval-required', null], ['deny', 'approval-required', id],
      ['deny', 'approval-required', null], ['allow', 'approved', id],
    ])
    // Recorded as issuer events (and so entries of the issuer log).
    const shown2 = await adminCli(issuer, ['approvals', 'show', id, '--json'])
    expect(shown2.json()).toMatchObject({ status: 'approved', approver: { name: 'Dana Scully' } })
  })

  it('a third party re-verifies the receipt offline, with agentid and with another WebAuthn implementation', async () => {
    const call = { agent: agent.did, target: `mcp://${SERVER_ID}/pay_invoice`, command: 'tools/call pay_invoice', arguments: ARGS }
    // Offline: the status list fetched once beforehand, served from memory; no network.
    const cred = receipt.approverCredential as string
    const listUrl = (JSON.parse(Buffer.from(cred.split('.')[1]!, 'base64url').toString()) as { vc: { credentialStatus: { statusListCredential: string } } }).vc.credentialStatus.statusListCredential
    const listJwt = await (await fetch(listUrl.replace(base, issuer.url))).text()
    const offline: FetchLike = async (url) => (url === listUrl ? { ok: true, status: 200, text: async () => listJwt } : { ok: false, status: 404, text: async () => '' })
    const auditor = createVerifier({ trustedIssuers: [did], fetch: offline })
    const verified = await auditor.verifyApproval(receipt, { call, consume: false })
    expect(verified.approver.name).toBe('Dana Scully')
    await expect(auditor.verifyApproval(receipt, { call: { ...call, arguments: { ...ARGS, amount: '1200.01 EUR' } }, consume: false })).rejects.toMatchObject({ code: 'ERR_APPROVAL_MISMATCH' })

    // @simplewebauthn/server, fed only the receipt and the certified key: the challenge recomputed here from
    // the received call with the canonicalize package and node:crypto.
    const subject = (JSON.parse(Buffer.from(cred.split('.')[1]!, 'base64url').toString()) as { vc: { credentialSubject: { webauthn: { credentialId: string; publicKeyJwk: { x: string; y: string }; rpId: string; origin: string } } } }).vc.credentialSubject.webauthn
    const cose = isoCBOR.encode(new Map<number, number | Uint8Array>([[1, 2], [3, -7], [-1, 1], [-2, Buffer.from(subject.publicKeyJwk.x, 'base64url')], [-3, Buffer.from(subject.publicKeyJwk.y, 'base64url')]]) as never)
    const canonicalCall = { ...(receipt.call as Record<string, unknown>), ...call }
    const challenge = createHash('sha256').update(canonicalize(canonicalCall)!).digest('base64url')
    const other = await verifyAuthenticationResponse({
      response: { id: receipt.credentialId as string, rawId: receipt.credentialId as string, type: 'public-key', clientExtensionResults: {}, response: { authenticatorData: receipt.authenticatorData as string, clientDataJSON: receipt.clientDataJSON as string, signature: receipt.signature as string } },
      expectedChallenge: challenge,
      expectedOrigin: base,
      expectedRPID: 'localhost',
      requireUserVerification: true,
      credential: { id: subject.credentialId, publicKey: Uint8Array.from(cose), counter: 0 },
    })
    expect(other.verified).toBe(true)
    expect(subject.origin).toBe(base)
  })

  it('hostile: one argument changed after approval, the receipt replayed, used for another tool: refused, the tool never runs', async () => {
    const client = await connect(agentFetch())
    const before = ran.length
    const withReceipt = (name: string, args: Record<string, unknown>) => client.callTool({ name, arguments: args, _meta: { [APPROVAL_META_KEY]: receipt } })
    expect(await refusalCode(withReceipt('pay_invoice', { ...ARGS, to: 'Mallory Ltd, IBAN GB00 0000' }))).toBe('ERR_APPROVAL_MISMATCH')
    expect(await refusalCode(withReceipt('refund', ARGS))).toBe('ERR_APPROVAL_MISMATCH')
    expect(await refusalCode(withReceipt('pay_invoice', ARGS))).toBe('ERR_REPLAY')
    // Malformed receipts are refused, never taken as "no receipt".
    for (const bad of ['garbage', 42, { ...receipt, signature: 'AAAA' }, { ...receipt, type: 'x' }]) {
      const code = await refusalCode(client.callTool({ name: 'pay_invoice', arguments: ARGS, _meta: { [APPROVAL_META_KEY]: bad } }))
      expect(['ERR_MALFORMED', 'ERR_SIGNATURE_INVALID'], JSON.stringify(bad).slice(0, 40)).toContain(code)
    }
    expect(ran.length).toBe(before)
  })

  it('hostile: a denial; an approver of another group; a revoked approver; user verification absent; the page on another origin', async () => {
    const client = await connect(agentFetch())
    // Denied: the waiting agent learns it, the tool never runs.
    const before = ran.length
    let url = ''
    const denied = callToolWithApproval(client, { name: 'pay_invoice', arguments: { ...ARGS, invoice: 'INV-DENY' } }, { issuerUrl: base, timeoutMs: 60_000, onApprovalRequired: (d) => { url = d.approvalUrl } })
      .then(() => 'allowed', (e: { code?: string }) => e.code)
    await expect.poll(() => url, { timeout: 20_000 }).not.toBe('')
    expect(await decide(dana.page, url, 'deny')).toContain('Denied by Dana Scully')
    expect(await denied).toBe('ERR_APPROVAL_DENIED')
    expect(ran.length).toBe(before)

    // An approver for the controller, not for the "finance" group the policy names.
    const olga = await device()
    await enrol(olga.page, 'Olga', [CONTROLLER])
    const p1 = await pending(client)
    expect(await decide(olga.page, p1.approvalUrl, 'approve')).toContain('ERR_NOT_AUTHORIZED')
    expect((await api(issuer, 'GET', `/v1/approvals/${p1.approvalId}`)).body.status).toBe('pending')

    // A revoked finance approver.
    const rita = await device()
    const ritaId = await enrol(rita.page, 'Rita', ['group:finance'])
    expect((await adminCli(issuer, ['approvers', 'revoke', ritaId, '--reason', 'left the company'])).code).toBe(0)
    expect(await decide(rita.page, p1.approvalUrl, 'approve')).toContain('ERR_REVOKED')

    // The authenticator cannot verify the user: no assertion, nothing recorded.
    await dana.setUserVerified(false)
    const uv = await decide(dana.page, p1.approvalUrl, 'approve')
    expect(uv).not.toContain('Approved')
    await dana.setUserVerified(true)
    expect((await api(issuer, 'GET', `/v1/approvals/${p1.approvalId}`)).body.status).toBe('pending')

    // The same page served to another origin (127.0.0.1 instead of localhost): the browser refuses the RP id.
    const foreign = await decide(dana.page, p1.approvalUrl.replace(base, issuer.url), 'approve')
    expect(foreign).not.toContain('Approved')
    expect((await api(issuer, 'GET', `/v1/approvals/${p1.approvalId}`)).body.status).toBe('pending')
  })

  it('hostile: approving the payment of one\'s own agent is refused when policy forbids self-approval', async () => {
    // The agent acts for user "dana" at the IdP; Dana's approver credential names that user.
    const client = await connect(userFetch('dana'))
    const before = ran.length
    let url = ''
    const self = callToolWithApproval(client, { name: 'pay_invoice', arguments: { ...ARGS, invoice: 'INV-SELF' } }, { issuerUrl: base, timeoutMs: 60_000, onApprovalRequired: (d) => { url = d.approvalUrl } })
      .then(() => 'allowed', (e: unknown) => (e instanceof McpError ? (e.data as { code?: string; policies?: string[] }) : String(e)))
    await expect.poll(() => url, { timeout: 20_000 }).not.toBe('')
    expect(await decide(dana.page, url, 'approve')).toContain('Approved by Dana Scully')
    expect(await self).toMatchObject({ code: 'ERR_NOT_AUTHORIZED', policies: ['no-self-approval'] })
    expect(ran.length).toBe(before)
    // Another user's payment, approved by Dana: allowed.
    const bob = await connect(userFetch('bob'))
    let url2 = ''
    const ok = callToolWithApproval(bob, { name: 'pay_invoice', arguments: { ...ARGS, invoice: 'INV-BOB' } }, { issuerUrl: base, timeoutMs: 60_000, onApprovalRequired: (d) => { url2 = d.approvalUrl } })
    await expect.poll(() => url2, { timeout: 20_000 }).not.toBe('')
    expect(await decide(dana.page, url2, 'approve')).toContain('Approved')
    await ok
    expect(ran.at(-1)).toEqual({ tool: 'pay_invoice', args: { ...ARGS, invoice: 'INV-BOB' } })
  })

  it('an HTTP service behind agentidMiddleware: 403 ERR_APPROVAL_REQUIRED, approved in the browser, the retried request runs; a changed body is refused', async () => {
    const f = createAgentFetch({ issuerUrl: base, privateJwk: agent.privateJwk, resource: httpOrigin }) as typeof fetch
    const body = JSON.stringify({ invoice: 'INV-HTTP', amount: '75.00 EUR' })
    let url = ''
    const paid = fetchWithApproval(f, `${httpOrigin}/v1/pay?batch=7`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }, {
      issuerUrl: base, timeoutMs: 60_000, onApprovalRequired: (d) => { url = d.approvalUrl },
    })
    await expect.poll(() => url, { timeout: 20_000 }).not.toBe('')
    expect(await dana.page.goto(url).then(() => dana.page.locator('#approve').waitFor()).then(() => dana.page.locator('#content').innerText())).toContain('"POST /v1/pay"')
    expect(await decide(dana.page, url, 'approve')).toContain('Approved by Dana Scully')
    const res = await paid
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ paid: true, approvedBy: 'Dana Scully' })
    expect(ran.at(-1)).toEqual({ tool: 'http:/v1/pay', args: JSON.parse(body) })
    // The same receipt with another amount (and replayed as is): refused before the handler.
    const id = new URL(url).pathname.split('/').pop()!
    const r = (await api(issuer, 'GET', `/v1/approvals/${id}`)).body.receipt
    const header = Buffer.from(JSON.stringify(r)).toString('base64url')
    const before = ran.length
    const changed = await f(`${httpOrigin}/v1/pay?batch=7`, { method: 'POST', headers: { 'content-type': 'application/json', 'agentid-approval': header }, body: JSON.stringify({ invoice: 'INV-HTTP', amount: '7500.00 EUR' }) })
    expect([changed.status, ((await changed.json()) as { error: { code: string } }).error.code]).toEqual([403, 'ERR_APPROVAL_MISMATCH'])
    const again = await f(`${httpOrigin}/v1/pay?batch=7`, { method: 'POST', headers: { 'content-type': 'application/json', 'agentid-approval': header }, body })
    expect([again.status, ((await again.json()) as { error: { code: string } }).error.code]).toEqual([403, 'ERR_REPLAY'])
    expect(ran.length).toBe(before)
  })

  it('with a lineage: the retried call\'s hop names the approval, the guard verifies both, the tool sees the approval in verifiedLineage', async () => {
    const client = await connect(agentFetch())
    const args = { ...ARGS, invoice: 'INV-LINEAGE' }
    const transactionId = `tx-${randomUUID()}`
    const meta = (approval?: unknown) => mcpLineageMeta({ privateJwk: agent.privateJwk, credential: agent.credential, server: SERVER_ID, name: 'pay_invoice', arguments: args, transactionId, ...(approval === undefined ? {} : { approval }) })
    let url = ''
    const call = callToolWithApproval(client, { name: 'pay_invoice', arguments: args, _meta: await meta() }, {
      issuerUrl: base, timeoutMs: 60_000, onApprovalRequired: (d) => { url = d.approvalUrl }, retryMeta: (receipt) => meta(receipt),
    })
    await expect.poll(() => url, { timeout: 20_000 }).not.toBe('')
    const shown = await dana.page.goto(url).then(() => dana.page.locator('#approve').waitFor()).then(() => dana.page.locator('#content').innerText())
    expect(shown).toContain(`"${transactionId}"`)
    expect(await decide(dana.page, url, 'approve')).toContain('Approved by Dana Scully')
    await call
    expect(ran.at(-1)).toEqual({ tool: 'pay_invoice', args })
    expect(lineageSeen.at(-1)?.approver).toBe('Dana Scully')
    expect(lineageSeen.at(-1)?.digest).toMatch(/^[A-Za-z0-9_-]{43}$/)
  })

  it('an expired request cannot be approved and the waiting agent learns it', async () => {
    const r = await api(issuer, 'POST', '/v1/approvals', { key: serviceKey, json: { agent: agent.did, controller: CONTROLLER, target: `mcp://${SERVER_ID}/pay_invoice`, command: 'tools/call pay_invoice', arguments: ARGS, group: 'finance', ttlSec: 30 } })
    expect(r.status).toBe(201)
    const id = r.body.id as string
    // Not waited for in real time: the approval page is opened after the expiry the issuer enforces.
    const waited = waitForApproval({ issuerUrl: base, approvalId: id, timeoutMs: 45_000, pollSec: 30 }).then(() => 'approved', (e: { code?: string }) => e.code)
    await new Promise((resolve) => setTimeout(resolve, 31_000))
    const page = await dana.context.newPage()
    await page.goto(`${base}/approvals/${id}`)
    // The page renders the request once its own fetch of it answers: wait for that, not for 'load'.
    await expect.poll(() => page.locator('#content').innerText(), { timeout: 20_000 }).toContain('expired')
    expect(await page.locator('#approve').count()).toBe(0)
    expect(await waited).toBe('ERR_EXPIRED')
  }, 60_000)
})
