// The issuer service on PostgreSQL (AGENTID_DATABASE_URL): two services on one database share the
// issuer identity, orchestrators, agents and revocations; what is not on PostgreSQL yet says so
// (approvals 503 ERR_UNAVAILABLE, no console, a trust domain refused); a second instance without the
// master secret cannot start. Skipped with the reason when PostgreSQL is absent, failing under
// AGENTID_REQUIRE_SERVICES=1.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { IssuerService } from '../src/domain/service.js'
import { buildServer } from '../src/http/server.js'
import { expectAgentIdError } from './engine-helpers.js'
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
    expect(approvers.statusCode).toBe(503)
    expect(approvers.json().error.code).toBe('ERR_UNAVAILABLE')
    expect((await app.inject({ method: 'GET', url: '/console/api/orchestrators' })).statusCode).toBe(404)
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200)
    expect(() => b.store).toThrow(expect.objectContaining({ code: 'ERR_UNAVAILABLE' }))
    await expectAgentIdError(() => IssuerService.open({ dataDir: dirA, baseUrl: 'http://issuer.test', databaseUrl: url, trustDomain: 'agents.example.com' }), 'ERR_INVALID_INPUT', 'not_on_postgres')
  })
})
