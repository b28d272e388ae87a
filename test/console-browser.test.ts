// The operator console in a real browser: headless Chromium (playwright-core, /usr/bin/chromium)
// against the real issuer process (dist/, real SQLite, its log) with real agents spawned by two
// orchestrators. An operator signs in, filters, opens an agent and its delegation graph, previews and
// performs a revocation (then @agentid/verifier refuses the agent), looks at the log, orchestrators and
// approvals, and signs out. Attacks: CSRF from another origin, session fixation, a cookie replayed after
// logout, an orchestrator reaching another's agent through the console routes, script in agent claims.
// Chromium is installed with apt-get when missing; when it still cannot be had the suite is skipped with
// the reason printed, unless AGENTID_REQUIRE_SERVICES=1 (CI), where it fails. Screenshots of each view
// go to test/artifacts/console/ (ignored by git).
import { CHROMIUM, chromiumMissing, suiteUnless } from './browser.js'
import { spawn as spawnProcess, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { registerDelegation, signerFromJwk, spawn, type AgentClaims, type SpawnedAgent } from '@agentid/client'
import { VerificationError } from '@agentid/core'
import { createVerifier } from '@agentid/verifier'
import { consoleCookieName } from '@agentid/issuer'
import { addOrchestratorViaApi, api, cleanup, cli, CLI_BIN, freePort, issuerDid, ROOT, sleep, startIssuer, tempDir, type IssuerProcess } from './harness.js'

const ARTIFACTS = join(ROOT, 'test/artifacts/console')

function consoleMissing(): string | null {
  return existsSync(join(ROOT, 'apps/console/dist/index.html')) ? null : 'apps/console/dist is not built (run pnpm build)'
}

const missing = chromiumMissing() ?? consoleMissing()
const suite = suiteUnless(missing, 'operator console in a browser')

const XSS = {
  purpose: '<img src=x onerror="window.__xss=1"> triage',
  controller: '"><script>window.__xss=2</script>',
  model: '<svg onload="window.__xss=3">',
}

let issuer: IssuerProcess
let base: string
let did: string
let browser: Browser
let acme: { id: string; apiKey: string }
let globex: { id: string; apiKey: string }
const agents = {} as Record<'a' | 'b' | 'c' | 'd' | 'g' | 'x', SpawnedAgent> & Record<string, SpawnedAgent>
const links = {} as Record<'root' | 'ab' | 'bc' | 'ad', string>
const contexts: BrowserContext[] = []
let attacker: Server
let witness: ChildProcess | undefined
let attackerUrl: string
/** Errors the pages reported (CSP violations show up here): none is expected. */
const pageErrors: string[] = []

function claimsFor(purpose: string, o: Partial<AgentClaims> = {}): AgentClaims {
  return {
    purpose, controller: 'did:web:acme.example', model: { provider: 'acme-ai', name: 'reasoner', version: '2026-10' },
    toolProfile: ['mcp://erp/tools/invoices.read'], policyTier: 'standard', dataAccessClass: 'internal', ...o,
  }
}

async function newPage(viewport = { width: 1280, height: 800 }): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport, baseURL: base })
  contexts.push(context)
  const page = await context.newPage()
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`))
  // Errors of the console's own pages (the attacker's page and aborted requests are expected to fail).
  page.on('console', (m) => {
    if (m.type() === 'error' && page.url().startsWith(`${base}/console/`) && !page.url().includes('/console/api/') && !/status of 40[134]|net::ERR_FAILED/.test(m.text())) pageErrors.push(`console: ${m.text()}`)
  })
  page.on('dialog', (d) => void d.accept())
  return { context, page }
}

async function signIn(page: Page, key: string): Promise<void> {
  await page.goto('/console/')
  await page.getByLabel('Admin or orchestrator API key').fill(key)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByTestId('who').waitFor()
}

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true })

// The session cookie's name: the issuer's own (its base URL is its default, http://127.0.0.1:port).
const cookieName = () => consoleCookieName(issuer.url, false)

async function sessionCookie(context: BrowserContext): Promise<string> {
  const c = (await context.cookies(base)).find((x) => x.name === cookieName())
  if (!c) throw new Error('no session cookie')
  return c.value
}

beforeAll(async () => {
  if (missing !== null) return
  mkdirSync(ARTIFACTS, { recursive: true })
  // The issuer with a witness (agentid witness serve) cosigning its log: started once to learn the
  // log's key, then again with AGENTID_LOG_WITNESSES.
  const first = await startIssuer()
  const logVkey = (await (await fetch(`${first.url}/log/key`)).text()).trim()
  await first.stop()
  const dir = tempDir()
  const keys = await cli(['witness', 'keygen', 'witness.test/w1'])
  const [skey, witnessVkey] = keys.stdout.trim().split('\n') as [string, string]
  writeFileSync(join(dir, 'witness.key'), `${skey}\n`, { mode: 0o600 })
  const witnessPort = await freePort()
  witness = spawnProcess(process.execPath, [CLI_BIN, 'witness', 'serve', '--key', join(dir, 'witness.key'), '--log', `127.0.0.1:${first.port}`, logVkey, '--state', join(dir, 'witness.json'), '--port', String(witnessPort)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  witness.stdout!.on('data', (c: Buffer) => (out += c.toString()))
  witness.stderr!.on('data', (c: Buffer) => (out += c.toString()))
  for (let i = 0; i < 200 && !out.includes('listening'); i++) await sleep(50)
  issuer = await startIssuer({ dataDir: first.dataDir, port: first.port, adminKey: first.adminKey, env: { AGENTID_LOG_WITNESSES: JSON.stringify([{ url: `http://127.0.0.1:${witnessPort}`, vkey: witnessVkey }]) } })
  base = `http://localhost:${issuer.port}`
  did = await issuerDid(issuer)
  acme = await addOrchestratorViaApi(issuer, 'acme')
  globex = await addOrchestratorViaApi(issuer, 'globex')
  const spawnAs = (key: string, c: AgentClaims) => spawn({ issuerUrl: issuer.url, apiKey: key, claims: c, issuerDid: did })
  // A fleet: A delegates to B, B to C; A to D (that link revoked); others with varied claims.
  agents.a = await spawnAs(acme.apiKey, claimsFor('invoice triage', { model: { provider: 'acme-ai', name: 'planner', version: '3.1' }, policyTier: 'privileged', dataAccessClass: 'confidential' }))
  agents.b = await spawnAs(acme.apiKey, claimsFor('invoice extraction'))
  agents.c = await spawnAs(acme.apiKey, claimsFor('payment scheduling', { controller: 'did:web:finance.acme.example' }))
  agents.d = await spawnAs(acme.apiKey, claimsFor('vendor lookup'))
  for (let i = 0; i < 6; i++) {
    agents[`f${i}`] = await spawnAs(acme.apiKey, claimsFor(`support reply ${i}`, { model: { provider: 'acme-ai', name: i % 2 ? 'writer' : 'reasoner', version: `1.${i}` }, dataAccessClass: i % 3 ? 'internal' : 'public' }))
  }
  agents.g = await spawnAs(globex.apiKey, claimsFor('globex secret project', { controller: 'did:web:globex.example' }))
  agents.x = await spawnAs(acme.apiKey, claimsFor(XSS.purpose, { controller: XSS.controller, model: { provider: 'acme-ai', name: XSS.model, version: '1' } }))
  const grant = await api(issuer, 'POST', `/v1/agents/${agents.a.did}/grants`, { key: issuer.adminKey, json: { capabilities: [{ resource: 'mcp://erp/tools/*', actions: ['*'] }], caveats: { remainingDepth: 3 }, lifetimeSec: 3600 } })
  expect(grant.status, grant.text).toBe(201)
  links.root = grant.body.id
  const reg = async (from: SpawnedAgent, parentId: string, to: SpawnedAgent) =>
    (await registerDelegation({ issuerUrl: issuer.url, issuerDid: did, signer: signerFromJwk(from.privateJwk), parentId, delegatee: to.did })).id
  links.ab = await reg(agents.a, links.root, agents.b)
  links.bc = await reg(agents.b, links.ab, agents.c)
  links.ad = await reg(agents.a, links.root, agents.d)
  const revoked = await api(issuer, 'POST', `/v1/delegations/${encodeURIComponent(links.ad)}/revoke`, { key: issuer.adminKey, json: { reason: 'vendor lookup retired' } })
  expect(revoked.status, revoked.text).toBe(200)
  const approval = await api(issuer, 'POST', '/v1/approvals', { key: acme.apiKey, json: { agent: agents.c.did, controller: 'did:web:finance.acme.example', target: 'mcp://bank/tools/pay_invoice', command: 'tools/call pay_invoice', arguments: { invoice: 'INV-1042', amountEur: 1250 }, group: 'finance' } })
  expect(approval.status, approval.text).toBe(201)

  // Another origin (same site: another port of localhost) that tries to use the operator's session.
  const port = await freePort()
  // localhost on another port: another origin but the same site, so SameSite=Strict alone would not stop it.
  attackerUrl = `http://localhost:${port}`
  attacker = createServer((req, res) => {
    const target = `${base}/console/api/revocations`
    const body = JSON.stringify({ kind: 'agent', id: agents.b.did, reason: 'csrf' })
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end(`<!doctype html><body><form id="f" method="POST" action="${target}" enctype="text/plain"><input name='${body.slice(0, -2)}' value='"}'></form>
<script>
window.results = [];
const post = (init) => fetch(${JSON.stringify(target)}, { method: 'POST', credentials: 'include', ...init }).then((r) => r.status, (e) => 'blocked: ' + e.message);
Promise.all([
  post({ mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: ${JSON.stringify(body)} }),
  post({ headers: { 'content-type': 'application/json', 'x-agentid-csrf': 'guess' }, body: ${JSON.stringify(body)} }),
]).then((r) => { window.results = r });
</script></body>`)
  })
  await new Promise<void>((resolve) => attacker.listen(port, '127.0.0.1', resolve))

  browser = await (await import('playwright-core')).chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  })
}, 300_000)

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => {})
  await browser?.close().catch(() => {})
  await new Promise<void>((resolve) => (attacker ? attacker.close(() => resolve()) : resolve()))
  if (witness && witness.exitCode === null) witness.kill('SIGTERM')
  await cleanup()
})

suite('operator console in a browser', () => {
  let admin: { context: BrowserContext; page: Page }

  it('serves the app under a strict CSP and signs the admin in with the keyboard', async () => {
    admin = await newPage()
    const { page } = admin
    const res = await page.goto('/console/')
    const csp = res!.headers()['content-security-policy']!
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("require-trusted-types-for 'script'")
    await page.getByLabel('Admin or orchestrator API key').waitFor()
    await shot(page, '01-sign-in')
    // Keyboard only: focus the key field, type, Enter.
    await page.getByLabel('Admin or orchestrator API key').focus()
    await page.keyboard.type(issuer.adminKey)
    await page.keyboard.press('Enter')
    await expect.poll(() => page.getByTestId('who').textContent()).toBe('Signed in as admin')
    const cookie = (await admin.context.cookies(base)).find((c) => c.name === cookieName())!
    expect(cookie.httpOnly).toBe(true)
    expect(cookie.sameSite).toBe('Strict')
    // The page cannot read its session id.
    expect(await page.evaluate(() => (globalThis as any).document.cookie)).toBe('')
  })

  it('lists agents with counts, filters by model and searches', async () => {
    const { page } = admin
    await page.locator('table.agents tbody tr').first().waitFor()
    await expect.poll(() => page.locator('table.agents tbody tr').count()).toBe(12)
    await expect.poll(() => page.locator('.counts').textContent()).toMatch(/12 total12 active0 revoked/)
    await shot(page, '02-agents')
    await page.getByLabel('Model', { exact: true }).selectOption('writer')
    await expect.poll(() => page.locator('table.agents tbody tr').count()).toBe(3)
    expect(page.url()).toContain('model=writer')
    await page.getByLabel('Data class').selectOption('public')
    await expect.poll(() => page.locator('table.agents tbody tr').count()).toBe(1)
    await shot(page, '03-agents-filtered')
    await page.getByRole('button', { name: 'Clear filters' }).click()
    // The cleared list is shown (and the search field reset with it) before typing, as a person would see.
    await expect.poll(() => page.locator('table.agents tbody tr').count()).toBe(12)
    await page.getByLabel('Search DID, purpose, controller or model').fill('invoice')
    await page.keyboard.press('Enter')
    await expect.poll(() => page.locator('table.agents tbody tr').count()).toBe(2)
    await page.getByLabel('Orchestrator').selectOption(globex.id)
    await expect.poll(() => page.locator('.empty').textContent()).toMatch(/No agent matches/)
    await page.getByRole('button', { name: 'Clear filters' }).click()
  })

  it('shows the answer to the latest filter, not a slower earlier one', async () => {
    const { page } = await newPage()
    // The unfiltered list (the first view after sign-in) answers 1.5 s late: the search typed meanwhile
    // must win when both have arrived.
    await page.route('**/console/api/agents?*', async (route) => {
      if (!new URL(route.request().url()).searchParams.has('q')) await new Promise((r) => setTimeout(r, 1_500))
      await route.continue()
    })
    await signIn(page, issuer.adminKey)
    await page.getByLabel('Search DID, purpose, controller or model').fill('invoice')
    await page.keyboard.press('Enter')
    await expect.poll(() => page.locator('table.agents tbody tr').count()).toBe(2)
    await new Promise((r) => setTimeout(r, 2_000)) // the slow unfiltered answer has arrived by now
    expect(await page.locator('table.agents tbody tr').count()).toBe(2)
    await page.unrouteAll({ behavior: 'wait' })
  })

  it('opens an agent: claims, credentials, the delegation graph with the revoked link marked, the timeline with log status', async () => {
    const { page } = admin
    await page.locator('table.agents tbody tr', { hasText: 'invoice triage' }).getByRole('link').click()
    await page.getByRole('heading', { name: 'Delegation' }).waitFor()
    expect(await page.getByTestId('claim-purpose').textContent()).toBe('invoice triage')
    const svg = page.locator('figure.graph svg')
    await svg.waitFor()
    // issuer -> A -> B -> C, and A -> D revoked.
    await expect.poll(() => svg.locator('g.link').count()).toBe(4)
    expect(await svg.locator(`g.link-revoked[data-link="${links.ad}"]`).count()).toBe(1)
    expect(await svg.locator('g.link-active').count()).toBe(3)
    expect(await svg.locator('.node-issuer').count()).toBe(1)
    expect(await page.locator(`tr[data-link="${links.ad}"]`).textContent()).toContain('vendor lookup retired')
    await expect.poll(() => page.locator('table.timeline').textContent(), { timeout: 10_000 }).toContain('in a signed checkpoint')
    expect(await page.locator('table.timeline').textContent()).toContain('spawned')
    await shot(page, '04-agent')
    // Graph nodes are links the keyboard reaches: focus B's node and open it with Enter.
    const node = svg.locator(`a[aria-label$="${agents.b.did}"]`)
    await node.focus()
    await page.keyboard.press('Enter')
    await expect.poll(() => page.getByTestId('claim-purpose').textContent()).toBe('invoice extraction')
    await page.goBack()
    await expect.poll(() => page.getByTestId('claim-purpose').textContent()).toBe('invoice triage')
  })

  it('looks at the log the first time: signature checked in the browser, key pinned', async () => {
    const { page } = admin
    await page.getByRole('link', { name: 'Log' }).click()
    await expect.poll(() => page.getByTestId('log-check').textContent(), { timeout: 10_000 }).toMatch(/first time/)
    // The witness cosigns each new checkpoint (reload until the latest one carries its cosignature).
    await expect.poll(async () => {
      await page.reload()
      await page.getByTestId('log-check').waitFor()
      return page.locator('main').textContent()
    }, { timeout: 15_000 }).toContain('witness.test/w1')
    await shot(page, '05-log')
  })

  it('previews the blast radius of revoking agent A, revokes it, and the verifier then refuses it', async () => {
    const { page } = admin
    const verifier = createVerifier({ trustedIssuers: [did], statusTtlMs: 0, statusGraceMs: 0 })
    await verifier.verifyAgentCredential(agents.a.credential)
    await page.goto(`/console/#/agents/${encodeURIComponent(agents.a.did)}`)
    await page.getByRole('button', { name: 'Revoke agent…' }).click()
    const dialog = page.getByRole('dialog')
    await dialog.getByTestId('blast-radius').waitFor()
    // The cascade's dry run: A's credential; the root, A->B, B->C (A->D is already revoked); B and C downstream.
    expect(await dialog.getByTestId('blast-credentials').textContent()).toBe('1')
    expect(await dialog.getByTestId('blast-links').textContent()).toBe('3')
    expect(await dialog.getByTestId('blast-agents').textContent()).toBe('2')
    const text = await dialog.textContent()
    for (const id of [links.root, links.ab, links.bc]) expect(text).toContain(id)
    expect(text).not.toContain(links.ad)
    await shot(page, '06-revoke-preview')
    // Confirm stays disabled without a reason.
    expect(await dialog.getByRole('button', { name: 'Confirm revocation' }).isDisabled()).toBe(true)
    await dialog.getByLabel(/Reason/).fill('compromised planner')
    await dialog.getByRole('button', { name: 'Confirm revocation' }).click()
    await dialog.getByTestId('revoke-result').waitFor()
    expect(await dialog.getByTestId('revoke-result').textContent()).toMatch(/1 credential\(s\) and 3 delegation link\(s\) revoked/)
    await shot(page, '07-revoke-result')
    await dialog.getByRole('button', { name: 'Close' }).click()
    await expect.poll(() => page.locator('.notice.revoked').textContent()).toContain('compromised planner')
    expect(await page.locator('figure.graph svg g.link-revoked').count()).toBe(4)
    const refused = await verifier.verifyAgentCredential(agents.a.credential).then(() => null, (e: unknown) => e)
    expect(refused).toBeInstanceOf(VerificationError)
    expect((refused as VerificationError).code).toBe('ERR_REVOKED')
    // B's identity stays valid: only the capabilities it received through A went.
    await verifier.verifyAgentCredential(agents.b.credential)
  })

  it('looks at the log again: consistent with the checkpoint it saw before the revocation', async () => {
    const { page } = admin
    await page.getByRole('link', { name: 'Log' }).click()
    await expect.poll(() => page.getByTestId('log-check').textContent(), { timeout: 10_000 }).toMatch(/consistent with the checkpoint of size \d+/)
  })

  it('adds an orchestrator (key shown once) and disables one', async () => {
    const { page } = admin
    await page.getByRole('link', { name: 'Orchestrators' }).click()
    await page.getByLabel('New orchestrator name').fill('payments-bot')
    await page.getByRole('button', { name: 'Add orchestrator' }).click()
    const key = await page.getByTestId('api-key').textContent()
    expect(key).toMatch(/^aid_orch_[A-Za-z0-9_-]{43}$/)
    // The key works.
    expect((await api(issuer, 'GET', `/v1/agents?orchestrator=payments-bot`, { key: key! })).status).toBe(200)
    await shot(page, '08-orchestrators')
    await page.getByRole('button', { name: 'I have stored it' }).click()
    expect(await page.getByTestId('api-key').count()).toBe(0)
    await page.getByRole('button', { name: 'Disable payments-bot' }).click()
    await expect.poll(async () => (await api(issuer, 'GET', '/v1/agents', { key: key! })).status).toBe(401)
  })

  it('shows pending approvals with the canonical call and links the approver page', async () => {
    const { page } = admin
    await page.getByRole('link', { name: 'Approvals' }).click()
    const row = page.locator('tbody tr', { hasText: 'pay_invoice' })
    await row.waitFor()
    expect(await row.textContent()).toContain('{"amountEur":1250,"invoice":"INV-1042"}')
    const href = await row.getByRole('link', { name: 'Open' }).getAttribute('href')
    expect(href).toMatch(/\/approvals\/apr_[A-Za-z0-9_-]{22}$/)
    await shot(page, '09-approvals')
    await page.getByRole('link', { name: 'Policies' }).click()
    await page.getByRole('heading', { name: 'Policies' }).waitFor()
  })

  it('renders script in agent claims (purpose, controller, model) as inert text', async () => {
    const { page } = admin
    await page.goto('/console/#/agents?q=triage')
    const row = page.locator('table.agents tbody tr', { hasText: 'onerror' })
    await row.waitFor()
    expect(await row.locator('td.purpose').textContent()).toBe(XSS.purpose)
    expect(await row.locator('td.controller').textContent()).toBe(XSS.controller)
    await row.getByRole('link').click()
    await page.getByTestId('claim-model').waitFor()
    expect(await page.getByTestId('claim-purpose').textContent()).toBe(XSS.purpose)
    expect(await page.getByTestId('claim-controller').textContent()).toBe(XSS.controller)
    expect(await page.getByTestId('claim-model').textContent()).toContain(XSS.model)
    expect(await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss)).toBeUndefined()
    expect(await page.locator('main img, main script, main svg[onload]').count()).toBe(0)
  })

  it('refuses a cross-origin page using the operator\'s session (CSRF)', async () => {
    const { page } = admin
    const before = (await api(issuer, 'GET', `/v1/agents/${agents.b.did}`, { key: issuer.adminKey })).body.status
    expect(before).toBe('active')
    await page.goto(attackerUrl)
    await expect.poll(() => page.evaluate(() => (globalThis as unknown as { results: unknown[] }).results.length), { timeout: 10_000 }).toBe(2)
    const results = await page.evaluate(() => (globalThis as unknown as { results: unknown[] }).results)
    // no-cors text/plain: refused by the issuer (b stays active, below); the page gets an opaque answer (0),
    // or a network error when the console's Cross-Origin-Resource-Policy blocks even that. JSON with a
    // guessed token: blocked by CORS.
    expect(String(results[0])).toMatch(/^0$|^blocked: /)
    expect(String(results[1])).toMatch(/^blocked|^403$/)
    // The classic form post (text/plain body shaped as JSON), sent with the session cookie: refused.
    const [answer] = await Promise.all([page.waitForNavigation(), page.evaluate(() => (globalThis as any).document.getElementById('f').submit())])
    expect([403, 415]).toContain(answer!.status())
    expect((await api(issuer, 'GET', `/v1/agents/${agents.b.did}`, { key: issuer.adminKey })).body.status).toBe('active')
    // Replayed from outside the browser with the real cookie but no token: refused too.
    const cookie = await sessionCookie(admin.context)
    const noToken = await api(issuer, 'POST', '/console/api/revocations', { json: { kind: 'agent', id: agents.b.did, reason: 'csrf' }, headers: { cookie: `${cookieName()}=${cookie}` } })
    expect(noToken.status).toBe(403)
    expect(noToken.body.error.details.reason).toBe('csrf')
  })

  it('rotates the session at sign-in: a cookie planted before (fixation) is not the operator\'s session', async () => {
    // A made-up id planted in the victim's browser is not adopted at sign-in.
    const victim = await newPage()
    const madeUp = 'A'.repeat(43)
    await victim.context.addCookies([{ name: cookieName(), value: madeUp, url: base, httpOnly: true, sameSite: 'Strict' }])
    await signIn(victim.page, issuer.adminKey)
    expect(await sessionCookie(victim.context)).not.toBe(madeUp)
    expect((await api(issuer, 'GET', '/console/api/session', { headers: { cookie: `${cookieName()}=${madeUp}` } })).status).toBe(401)
    // A live session of the attacker's (their own orchestrator key), planted, then the victim signs in:
    // a new id, and the planted session is ended, never raised to the admin's.
    const planted = await api(issuer, 'POST', '/console/api/session', { json: { key: globex.apiKey } })
    expect(planted.status).toBe(201)
    const value = new RegExp(`^${cookieName()}=([^;]+)`).exec(planted.headers.get('set-cookie')!)![1]!
    const second = await newPage()
    await second.context.addCookies([{ name: cookieName(), value, url: base, httpOnly: true, sameSite: 'Strict' }])
    await second.page.goto('/console/')
    expect(await second.page.getByTestId('who').textContent()).toBe('Signed in as orchestrator globex')
    const status = await second.page.evaluate(async (key) => (await fetch('/console/api/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) })).status, issuer.adminKey)
    expect(status).toBe(201)
    expect(await sessionCookie(second.context)).not.toBe(value)
    expect((await api(issuer, 'GET', '/console/api/session', { headers: { cookie: `${cookieName()}=${value}` } })).status).toBe(401)
  })

  it('confines an orchestrator to its own agents through the console routes', async () => {
    const orch = await newPage()
    await signIn(orch.page, acme.apiKey)
    expect(await orch.page.getByTestId('who').textContent()).toBe('Signed in as orchestrator acme')
    await orch.page.locator('table.agents tbody tr').first().waitFor()
    expect(await orch.page.locator('table.agents').textContent()).not.toContain('globex secret project')
    expect(await orch.page.getByRole('link', { name: 'Orchestrators' }).count()).toBe(0)
    await orch.page.goto(`/console/#/agents/${encodeURIComponent(agents.g.did)}`)
    await expect.poll(() => orch.page.locator('.error').textContent()).toMatch(/Not found/)
    const statuses = await orch.page.evaluate(async ({ g, b }) => {
      const s = await (await fetch('/console/api/session')).json() as { csrfToken: string }
      const h = { 'content-type': 'application/json', 'x-agentid-csrf': s.csrfToken }
      return [
        (await fetch(`/console/api/agents/${encodeURIComponent(g)}`)).status,
        (await fetch('/console/api/agents?orchestrator=globex')).status,
        (await fetch('/console/api/revocations', { method: 'POST', headers: h, body: JSON.stringify({ kind: 'agent', id: g, reason: 'x' }) })).status,
        (await fetch('/console/api/revocations/preview', { method: 'POST', headers: h, body: JSON.stringify({ kind: 'agent', id: b }) })).status,
        (await fetch('/console/api/orchestrators')).status,
      ]
    }, { g: agents.g.did, b: agents.b.did })
    expect(statuses).toEqual([404, 403, 403, 403, 403])
    await shot(orch.page, '10-orchestrator-view')
  })

  it('says so when the session expired and when the issuer is unreachable', async () => {
    const p = await newPage()
    await signIn(p.page, issuer.adminKey)
    // The agents view's own requests (facets, the first page) finish first: one still in flight when the
    // cookie goes would meet the 401 itself and take the page (and its Log link) to sign-in before the click.
    await p.page.waitForLoadState('networkidle')
    await p.context.clearCookies()
    await p.page.getByRole('link', { name: 'Log' }).click()
    await expect.poll(() => p.page.locator('.notice').textContent()).toMatch(/session expired/)
    await p.page.route('**/console/api/**', (route) => route.abort())
    await p.page.reload()
    await expect.poll(() => p.page.locator('.error').textContent()).toMatch(/cannot be reached/)
    await shot(p.page, '11-unreachable')
  })

  it('fits a narrow window', async () => {
    const narrow = await newPage({ width: 390, height: 844 })
    await signIn(narrow.page, issuer.adminKey)
    await narrow.page.locator('table.agents tbody tr').first().waitFor()
    // Nothing but the table's own scroller is wider than the window.
    const overflow = await narrow.page.evaluate(() => (globalThis as any).document.documentElement.scrollWidth - (globalThis as any).innerWidth)
    expect(overflow).toBeLessThanOrEqual(0)
    await shot(narrow.page, '12-narrow')
  })

  it('signs out: the server forgets the session and the stolen cookie is refused', async () => {
    const { page, context } = admin
    const stolen = await sessionCookie(context)
    expect((await api(issuer, 'GET', '/console/api/session', { headers: { cookie: `${cookieName()}=${stolen}` } })).status).toBe(200)
    await page.goto('/console/#/agents')
    await page.getByRole('button', { name: 'Sign out' }).click()
    await expect.poll(() => page.locator('.notice').textContent()).toMatch(/signed out/)
    for (const path of ['/console/api/session', '/console/api/agents', '/console/api/orchestrators']) {
      expect((await api(issuer, 'GET', path, { headers: { cookie: `${cookieName()}=${stolen}` } })).status).toBe(401)
    }
    expect((await context.cookies(base)).find((c) => c.name === cookieName())).toBeUndefined()
  })

  it('reported no page error or CSP violation', () => {
    expect(pageErrors).toEqual([])
  })
})
