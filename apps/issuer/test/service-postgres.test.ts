// The issuer service on PostgreSQL (AGENTID_DATABASE_URL): two services on one database share the
// issuer identity, orchestrators, agents and revocations; what is not on PostgreSQL yet says so
// (the log); approvals across instances; the console's reads on PostgreSQL; SVIDs: one CA made by instances starting together; a second instance without the
// master secret cannot start. Skipped with the reason when PostgreSQL is absent, failing under
// AGENTID_REQUIRE_SERVICES=1.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createProofOfPossession } from '@agentid/core'
import { IssuerService } from '../src/domain/service.js'
import type { PgStorage } from '../src/storage/pg.js'
import { buildServer } from '../src/http/server.js'
import { IssuerLog } from '../src/log/log.js'
import { loadMasterSecret } from '../src/secret.js'
import { X509Certificate } from 'node:crypto'
import { parseSpiffeBundle, verifyJwtSvid, verifyX509SvidChain } from '@agentid/verifier'
import { expectAgentIdError } from './engine-helpers.js'
import { softAssert, softRegister } from './webauthn-soft.js'
import { bearer, claims as fixtureClaims, namedKey, proof, type Harness } from './http-fixtures.js'
import { pgAbsent, REQUIRE_SERVICES, tempPgDatabase } from './pg-helpers.js'

const absent = await pgAbsent()
if (absent !== null && !REQUIRE_SERVICES) console.warn(`skipping apps/issuer/test/service-postgres.test.ts: ${absent}`)
const suite = absent === null || REQUIRE_SERVICES ? describe : describe.skip
const claims = { purpose: 'pg', controller: 'did:web:acme.example', model: { provider: 'a', name: 'b', version: '1' }, toolProfile: ['mcp://erp/tools/invoices.read'], policyTier: 'standard', dataAccessClass: 'internal' }

suite('IssuerService on PostgreSQL', () => {
  const undo: (() => Promise<void> | void)[] = []
  afterEach(async () => {
    for (const f of undo.reverse()) await f()
    undo.length = 0
  })

  async function setup() {
    if (absent !== null) throw new Error(`AGENTID_REQUIRE_SERVICES=1 but ${absent}`)
    const db = await tempPgDatabase()
    undo.push(db.drop)
    const dirA = mkdtempSync(join(tmpdir(), 'agentid-pg-a-'))
    const dirB = mkdtempSync(join(tmpdir(), 'agentid-pg-b-'))
    undo.push(() => rmSync(dirA, { recursive: true, force: true }), () => rmSync(dirB, { recursive: true, force: true }))
    return { url: db.url, dirA, dirB }
  }

  /** Two services on one fresh database, B opened after A with A's master secret. */
  async function twoInstances() {
    const { url, dirA, dirB } = await setup()
    const a = await IssuerService.open({ dataDir: dirA, baseUrl: 'http://issuer.test', databaseUrl: url })
    undo.push(() => a.close())
    copyFileSync(join(dirA, 'secret.key'), join(dirB, 'secret.key'))
    const b = await IssuerService.open({ dataDir: dirB, baseUrl: 'http://issuer.test', databaseUrl: url })
    undo.push(() => b.close())
    return { a, b }
  }

  it('two services on one database: one issuer, shared state, revocations seen by both; unported parts refuse', async () => {
    const { url, dirA, dirB } = await setup()
    const a = await IssuerService.open({ dataDir: dirA, baseUrl: 'http://issuer.test', databaseUrl: url })
    undo.push(() => a.close())
    expect(a.storage.engine).toBe('postgres')
    // Without the first instance's master secret the second cannot open the issuer key: refused at start.
    await expectAgentIdError(() => IssuerService.open({ dataDir: dirB, baseUrl: 'http://issuer.test', databaseUrl: url }), 'ERR_INVALID_INPUT', 'secret_file_missing')
    copyFileSync(join(dirA, 'secret.key'), join(dirB, 'secret.key'))
    const b = await IssuerService.open({ dataDir: dirB, baseUrl: 'http://issuer.test', databaseUrl: url })
    undo.push(() => b.close())
    expect(b.issuer.did).toBe(a.issuer.did)

    const admin = { kind: 'admin' as const }
    const { generated } = await a.ensureAdminKey()
    expect((await b.ensureAdminKey()).generated).toBeNull() // the first key is kept
    expect(await b.authenticate(generated!)).toEqual(admin)
    const orch = await a.addOrchestrator(admin, 'acme')
    await expectAgentIdError(() => b.addOrchestrator(admin, 'acme'), 'ERR_CONFLICT')
    const principal = await b.authenticate(orch.apiKey)
    const spawned = await b.spawn(principal, { keyCustody: 'issuer', ...claims })
    expect((await a.getAgent(admin, spawned.did)).credentials).toHaveLength(1)
    const revoked = await a.revokeAgent(admin, spawned.did, 'test')
    expect(revoked.revokedCredentials).toEqual([spawned.credentialId])
    expect((await b.revokeAgent(admin, spawned.did, 'again')).alreadyRevoked).toBe(true)
    expect((await b.getAgent(admin, spawned.did)).status).toBe('revoked')

    // Not on PostgreSQL yet: said, not half-done.
    const app = buildServer(b, { logger: false })
    undo.push(() => app.close())
    const approvers = await app.inject({ method: 'GET', url: '/v1/approvers', headers: { authorization: `Bearer ${generated}` } })
    expect(approvers.statusCode).toBe(200) // approvals are on PostgreSQL too
    expect((await app.inject({ method: 'GET', url: '/console/api/orchestrators' })).json().error.code).toBe('ERR_UNAUTHENTICATED') // mounted: needs a session
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200)
    expect(() => b.store).toThrow(expect.objectContaining({ code: 'ERR_UNAVAILABLE' }))
  })

  it('console on PostgreSQL: agents spawned through one instance listed, searched and shown through another; sessions shared by the instances', async () => {
    const { a, b } = await twoInstances()
    const appA = buildServer(a, { logger: false, console: { dir: null } })
    const appB = buildServer(b, { logger: false, console: { dir: null } })
    undo.push(() => appA.close(), () => appB.close())
    const { generated } = await a.ensureAdminKey()
    const admin = { kind: 'admin' as const }
    const acme = await a.addOrchestrator(admin, 'acme')
    const globex = await a.addOrchestrator(admin, 'globex')
    const spawned = []
    for (const [orch, purpose] of [[acme, 'invoice triage'], [acme, 'payments'], [globex, 'search']] as const) {
      spawned.push(await a.spawn(await a.authenticate(orch.apiKey), { keyCustody: 'issuer', ...claims, purpose }))
    }
    await a.revokeAgent(admin, spawned[1]!.did, 'test')
    const signIn = async (app: typeof appA, key: string) => {
      const res = await app.inject({ method: 'POST', url: '/console/api/session', payload: { key } })
      expect(res.statusCode).toBe(201)
      return { cookie: String(res.headers['set-cookie']).split(';')[0]!, csrf: res.json().csrfToken as string }
    }
    const get = (app: typeof appA, s: { cookie: string }, path: string) => app.inject({ method: 'GET', url: path, headers: { cookie: s.cookie } })
    const adminB = await signIn(appB, generated!)
    const list = (await get(appB, adminB, '/console/api/agents?limit=2')).json()
    expect(list.counts).toEqual({ active: 2, revoked: 1, total: 3 })
    expect(list.agents).toHaveLength(2)
    expect(list.agents[0].orchestrator.name).toMatch(/^(acme|globex)$/)
    const next = (await get(appB, adminB, `/console/api/agents?limit=2&cursor=${encodeURIComponent(list.nextCursor)}`)).json()
    expect(new Set([...list.agents, ...next.agents].map((x: { did: string }) => x.did))).toEqual(new Set(spawned.map((x) => x.did)))
    expect(next.nextCursor).toBeNull()
    expect((await get(appB, adminB, '/console/api/agents?q=PAYMENTS&status=revoked')).json().agents.map((x: { did: string }) => x.did)).toEqual([spawned[1]!.did])
    expect((await get(appB, adminB, '/console/api/facets')).json()).toMatchObject({ purposes: ['invoice triage', 'payments', 'search'], models: [claims.model.name], orchestrators: [{ name: 'acme' }, { name: 'globex' }] })
    const detail = (await get(appB, adminB, `/console/api/agents/${encodeURIComponent(spawned[0]!.did)}`)).json()
    expect(detail.agent.orchestratorName).toBe('acme')
    expect(detail.timeline.map((e: { action: string }) => e.action)).toContain('agent.spawned')
    // An orchestrator sees only its own agents; its session is in the database, so every instance
    // knows it, and it ends everywhere once the orchestrator is disabled through any instance.
    const acmeB = await signIn(appB, acme.apiKey)
    expect((await get(appB, acmeB, '/console/api/agents')).json().counts.total).toBe(2)
    expect((await get(appA, acmeB, '/console/api/agents')).json().counts.total).toBe(2)
    await a.removeOrchestrator(admin, acme.id)
    expect((await get(appB, acmeB, '/console/api/agents')).json().error).toMatchObject({ code: 'ERR_UNAUTHENTICATED', details: { reason: 'principal_disabled' } })
    expect((await get(appA, acmeB, '/console/api/agents')).json().error).toMatchObject({ code: 'ERR_UNAUTHENTICATED', details: { reason: 'no_session' } })
    expect((await get(appB, adminB, '/console/api/agents?limit=abc')).json().error.code).toBe('ERR_INVALID_INPUT')
  })

  it('a spawn over HTTP reads the database once before its commit (key, DID and proof jti together); refusals keep their order and a removed key is refused by every instance', async () => {
    const { a, b } = await twoInstances()
    const appB = buildServer(b, { logger: false, console: { dir: null } })
    undo.push(() => appB.close())
    const admin = { kind: 'admin' as const }
    const orch = await a.addOrchestrator(admin, 'acme')
    const pop = (key: ReturnType<typeof namedKey>) => createProofOfPossession({ signer: key.signer, audience: b.issuer.did, purpose: 'spawn' })
    const spawn = async (key: string, body: unknown) => appB.inject({ method: 'POST', url: '/v1/agents', headers: bearer(key), payload: body as object })
    const k1 = namedKey()
    expect((await spawn(orch.apiKey, { did: k1.did, proof: await pop(k1), ...claims })).statusCode).toBe(201) // allocates a status-index block
    const trips = () => (b.storage as PgStorage).roundTrips
    const k2 = namedKey()
    const body2 = { did: k2.did, proof: await pop(k2), ...claims }
    let before = trips()
    expect((await spawn(orch.apiKey, body2)).statusCode).toBe(201)
    expect(trips() - before).toBe(2) // the read, then the commit (a batch of one)
    before = trips()
    expect((await spawn(orch.apiKey, { keyCustody: 'issuer', ...claims })).statusCode).toBe(201)
    expect(trips() - before).toBe(2) // a minted DID: the key read only, then the commit
    // Early refusals from the same read: the proof replayed, the DID taken.
    before = trips()
    expect((await spawn(orch.apiKey, body2)).json().error.code).toBe('ERR_REPLAY')
    expect(trips() - before).toBe(1)
    expect((await spawn(orch.apiKey, { did: k2.did, proof: await pop(k2), ...claims })).json().error.code).toBe('ERR_CONFLICT')
    // An unknown key is refused before the body is looked at; an admin key may not spawn.
    const unknown = `aid_orch_${'A'.repeat(43)}`
    expect((await spawn(unknown, { did: 'nonsense' })).statusCode).toBe(401)
    expect((await spawn(unknown, { did: k1.did, proof: await pop(namedKey()), ...claims })).statusCode).toBe(401)
    const { generated } = await a.ensureAdminKey()
    expect((await spawn(generated!, { keyCustody: 'issuer', ...claims })).json().error.code).toBe('ERR_FORBIDDEN')
    // Removed through the other instance: refused at once here.
    await a.removeOrchestrator(admin, orch.id)
    const k3 = namedKey()
    expect((await spawn(orch.apiKey, { did: k3.did, proof: await pop(k3), ...claims })).json().error.code).toBe('ERR_UNAUTHENTICATED')
  })

  it('approvals across instances: enrolment, request and decision through either; a long poll sees a decision made through the other; revocation shared', async () => {
    const { a, b } = await twoInstances()
    const appA = buildServer(a, { logger: false })
    const appB = buildServer(b, { logger: false })
    undo.push(() => appA.close(), () => appB.close())
    const { generated } = await a.ensureAdminKey()
    const orch = await a.addOrchestrator({ kind: 'admin' }, 'acme')
    const added = await appA.inject({ method: 'POST', url: '/v1/approvers', headers: bearer(generated!), payload: { name: 'Dana', controllers: ['did:web:acme.example'] } })
    expect(added.statusCode).toBe(201)
    const token = added.json().enrolmentUrl.split('#')[1]
    const options = (await appB.inject({ method: 'POST', url: '/v1/enrolments/options', payload: { token } })).json()
    const { passkey, response } = softRegister(options, 'http://issuer.test')
    const enrolled = await appA.inject({ method: 'POST', url: '/v1/enrolments/verify', payload: { token, response } })
    expect(enrolled.statusCode, enrolled.body).toBe(201)
    const req = await appB.inject({ method: 'POST', url: '/v1/approvals', headers: bearer(orch.apiKey), payload: { agent: 'did:key:z6MkAgent', controller: 'did:web:acme.example', target: 't', command: 'tools/call pay', arguments: { n: 1 } } })
    expect(req.statusCode, req.body).toBe(201)
    const id = req.json().id as string
    const started = Date.now()
    const poll = appA.inject({ method: 'GET', url: `/v1/approvals/${id}?wait=20` })
    await new Promise((r) => setTimeout(r, 200))
    const opts = (await appB.inject({ method: 'POST', url: `/v1/approvals/${id}/options` })).json()
    const decided = await appB.inject({ method: 'POST', url: `/v1/approvals/${id}/decision`, payload: { decision: 'approve', response: softAssert(passkey, opts.approve, 'http://issuer.test') } })
    expect(decided.statusCode, decided.body).toBe(200)
    const polled = (await poll).json()
    expect(polled.status).toBe('approved')
    expect(Date.now() - started).toBeLessThan(5000) // not the 20 s wait: read within a second of the decision
    // Decided once: a second decision through the other instance is refused.
    expect((await appA.inject({ method: 'POST', url: `/v1/approvals/${id}/options` })).json().error.code).toBe('ERR_CONFLICT')
    const approverId = added.json().id as string
    const revoked = await appA.inject({ method: 'POST', url: `/v1/approvers/${approverId}/revoke`, headers: bearer(generated!), payload: { reason: 'left' } })
    expect(revoked.json()).toEqual({ id: approverId, alreadyRevoked: false })
    expect((await appB.inject({ method: 'POST', url: `/v1/approvers/${approverId}/revoke`, headers: bearer(generated!), payload: { reason: 'again' } })).json().alreadyRevoked).toBe(true)
    expect((await appB.inject({ method: 'GET', url: `/v1/approvers/${approverId}`, headers: bearer(generated!) })).json().status).toBe('revoked')
    // The approver credential's revocation is a SET on the shared event stream.
    const events = await b.storage.events.after(0, 100)
    expect(events.some((e) => e.claims_json.includes(enrolled.json().credentialId))).toBe(true)
  })

  it('the log: instances started together with different base URLs open one log (one origin, one key)', async () => {
    const { url, dirA, dirB } = await setup()
    const first = await IssuerService.open({ dataDir: dirA, baseUrl: 'http://issuer.test', databaseUrl: url })
    await first.close()
    copyFileSync(join(dirA, 'secret.key'), join(dirB, 'secret.key'))
    const [a, b] = await Promise.all([dirA, dirB].map((dataDir) => IssuerService.open({ dataDir, baseUrl: 'http://issuer.test', databaseUrl: url })))
    undo.push(() => a!.close(), () => b!.close())
    const secret = loadMasterSecret({ dataDir: dirA, mustExist: true }).key
    const logs = await Promise.all([[a!, 'http://10.0.0.1:8080'], [b!, 'http://10.0.0.2:8080']].map(([s, baseUrl]) =>
      IssuerLog.open({ storage: (s as IssuerService).storage, secret, baseUrl: baseUrl as string, onError: () => {} })))
    undo.push(...logs.map((l) => () => l.stop()))
    expect(logs[1]!.origin).toBe(logs[0]!.origin)
    expect(logs[1]!.vkey).toBe(logs[0]!.vkey)
  })

  it('SVIDs: instances started together make one CA; an SVID issued through one verifies with the bundle of another', async () => {
    const { url, dirA, dirB } = await setup()
    const TD = 'agents.example.com'
    const first = await IssuerService.open({ dataDir: dirA, baseUrl: 'http://issuer.test', databaseUrl: url })
    const { generated } = await first.ensureAdminKey()
    const orch = await first.addOrchestrator({ kind: 'admin' }, 'acme')
    await first.close()
    copyFileSync(join(dirA, 'secret.key'), join(dirB, 'secret.key'))
    const [a, b] = await Promise.all([dirA, dirB].map((dataDir) => IssuerService.open({ dataDir, baseUrl: 'http://issuer.test', databaseUrl: url, trustDomain: TD })))
    undo.push(() => a!.close(), () => b!.close())
    const appA = buildServer(a!, { logger: false })
    const appB = buildServer(b!, { logger: false })
    undo.push(() => appA.close(), () => appB.close())
    const bundleA = (await appA.inject({ method: 'GET', url: '/v1/spiffe/bundle' })).json()
    const bundleB = (await appB.inject({ method: 'GET', url: '/v1/spiffe/bundle' })).json()
    expect(bundleA.keys).toHaveLength(2) // one CA: its x509-svid and jwt-svid keys
    expect(bundleB).toEqual(bundleA)
    expect(await a!.storage.svidAuthorities.unexpired(TD, a!.now())).toHaveLength(1)

    const key = namedKey()
    const hA = { app: appA, issuerDid: a!.issuer.did, clock: { now: Date.now() } } as unknown as Harness
    const spawn = await appA.inject({ method: 'POST', url: '/v1/agents', headers: bearer(orch.apiKey), payload: { ...fixtureClaims, did: key.did, proof: await proof(hA, key) } })
    expect(spawn.statusCode).toBe(201)
    const x509 = await appB.inject({ method: 'POST', url: `/v1/agents/${key.did}/svids/x509`, payload: { proof: await proof(hA, key, { purpose: 'svid' }) } })
    expect(x509.statusCode).toBe(201)
    const der = new X509Certificate(x509.json().certificate).raw
    const checked = verifyX509SvidChain([der], parseSpiffeBundle(bundleA, TD), { now: a!.now() })
    expect(checked.spiffeId.id).toBe(x509.json().spiffeId)
    const jwt = await appA.inject({ method: 'POST', url: `/v1/agents/${key.did}/svids/jwt`, payload: { proof: await proof(hA, key, { purpose: 'svid' }), audience: 'spiffe://erp.example/api' } })
    expect(jwt.statusCode).toBe(201)
    expect(verifyJwtSvid(jwt.json().token, parseSpiffeBundle(bundleB, TD), { audience: 'spiffe://erp.example/api', now: a!.now() }).spiffeId.id).toBe(x509.json().spiffeId)
    // A proof used through one instance is a replay through the other; a revoked agent gets none.
    const used = await proof(hA, key, { purpose: 'svid' })
    expect((await appA.inject({ method: 'POST', url: `/v1/agents/${key.did}/svids/x509`, payload: { proof: used } })).statusCode).toBe(201)
    const replay = await appB.inject({ method: 'POST', url: `/v1/agents/${key.did}/svids/x509`, payload: { proof: used } })
    expect(replay.json().error.code).toBe('ERR_REPLAY')
    await b!.revokeAgent({ kind: 'admin' }, key.did, 'test')
    const revoked = await appA.inject({ method: 'POST', url: `/v1/agents/${key.did}/svids/x509`, payload: { proof: await proof(hA, key, { purpose: 'svid' }) } })
    expect(revoked.json().error.code).toBe('ERR_REVOKED')
    expect(generated).toMatch(/^aid_admin_/)
  })
})
