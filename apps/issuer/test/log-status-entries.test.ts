// Issuer log entries name the status entry of what they issue (spawn, its granted root link, renew,
// grant, registered links), so an auditor can recompute every revocation bit from the log alone.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BASE_URL, bearer, claims, harness, namedKey, proof, spawnAgent, type Harness } from './http-fixtures.js'
import { softRegister } from './webauthn-soft.js'

let h: Harness
beforeAll(async () => { h = await harness() })
afterAll(async () => { await h.close() })

interface Row { action: string; details_json: string }
const details = (action: string) =>
  (h.service.store.db.prepare('SELECT action, details_json FROM audit_events WHERE action = ? ORDER BY log_index').all(action) as Row[]).map((r) => JSON.parse(r.details_json) as Record<string, unknown>)
const statusOf = (table: 'credentials' | 'delegations', id: unknown) => {
  const r = h.service.store.db.prepare(`SELECT status_list_id AS list, status_index AS "index" FROM ${table} WHERE id = ?`).get(id) as { list: string; index: number }
  return { list: r.list, index: r.index }
}

describe('log entries name status entries', () => {
  it('spawn, root link, renew, grant and registered link each name their (list, index); revocations name the cascade', async () => {
    const a = namedKey()
    const b = namedKey()
    const spawn = await h.app.inject({ method: 'POST', url: '/v1/agents', headers: bearer(h.orch.apiKey), payload: { ...claims, did: a.did, proof: await proof(h, a), grantToolProfile: true } })
    expect(spawn.statusCode, spawn.body).toBe(201)
    const renew = await h.app.inject({ method: 'POST', url: `/v1/agents/${a.did}/renew`, payload: { proof: await proof(h, a, { purpose: 'renew' }) } })
    expect(renew.statusCode, renew.body).toBe(201)
    const grant = await h.app.inject({ method: 'POST', url: `/v1/agents/${a.did}/grants`, headers: bearer(h.adminKey), payload: { capabilities: [{ resource: 'mcp://erp/tools/*', actions: ['*'] }], lifetimeSec: 3600 } })
    expect(grant.statusCode, grant.body).toBe(201)
    await spawnAgent(h, b)
    const reg = await h.app.inject({ method: 'POST', url: '/v1/delegations/status', payload: { proof: await proof(h, a, { purpose: 'delegate' }), parentId: grant.json().id, delegatee: b.did } })
    expect(reg.statusCode, reg.body).toBe(201)

    const [spawned] = details('agent.spawned')
    expect(spawned!.status).toEqual(statusOf('credentials', spawned!.credentialId))
    expect(spawned!.delegationStatus).toEqual(statusOf('delegations', spawned!.delegationId))
    const [renewed] = details('agent.renewed')
    expect(renewed!.status).toEqual(statusOf('credentials', renewed!.credentialId))
    const [granted] = details('delegation.granted')
    expect(granted!.status).toEqual(statusOf('delegations', granted!.delegationId))
    const [registered] = details('delegation.registered')
    expect(registered!.status).toEqual(statusOf('delegations', registered!.delegationId))
    // Every (list, index) named once.
    const named = [spawned!.status, spawned!.delegationStatus, renewed!.status, granted!.status, registered!.status].map((s) => JSON.stringify(s))
    expect(new Set(named).size).toBe(5)

    // Revoking A names both credentials and every link A signed or received (the registered one below the grant too).
    const rev = await h.app.inject({ method: 'POST', url: `/v1/agents/${a.did}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'test' } })
    expect(rev.statusCode, rev.body).toBe(200)
    const [revoked] = details('agent.revoked')
    expect(new Set(revoked!.credentials as string[])).toEqual(new Set([spawned!.credentialId, renewed!.credentialId]))
    expect(new Set(revoked!.delegations as string[])).toEqual(new Set([spawned!.delegationId, granted!.delegationId, registered!.delegationId]))
  })

  it('approver enrolment names the status entry of the approver credential; its revocation names the credential', async () => {
    const added = await h.app.inject({ method: 'POST', url: '/v1/approvers', headers: bearer(h.adminKey), payload: { name: 'Dana', controllers: ['did:web:acme.example'] } })
    expect(added.statusCode, added.body).toBe(201)
    const { id, enrolmentUrl } = added.json() as { id: string; enrolmentUrl: string }
    const token = enrolmentUrl.split('#')[1]!
    const options = (await h.app.inject({ method: 'POST', url: '/v1/enrolments/options', payload: { token } })).json()
    const enrolled = await h.app.inject({ method: 'POST', url: '/v1/enrolments/verify', payload: { token, response: softRegister(options, BASE_URL).response } })
    expect(enrolled.statusCode, enrolled.body).toBe(201)
    const { credential, credentialId } = enrolled.json() as { credential: string; credentialId: string }
    const [logged] = details('approver.enrolled')
    const row = h.service.store.db.prepare('SELECT status_list_id AS list, status_index AS "index" FROM approvers WHERE id = ?').get(id) as { list: string; index: number }
    expect(logged).toMatchObject({ credentialId, status: { list: row.list, index: row.index } })
    // The same entry the credential itself names.
    const vc = JSON.parse(Buffer.from(credential.split('.')[1]!, 'base64url').toString()).vc as { credentialStatus: { statusListIndex: string; statusListCredential: string } }
    expect(vc.credentialStatus).toMatchObject({ statusListIndex: String(row.index), statusListCredential: `${BASE_URL}/v1/status-lists/${row.list}` })
    const rev = await h.app.inject({ method: 'POST', url: `/v1/approvers/${id}/revoke`, headers: bearer(h.adminKey), payload: { reason: 'lost device' } })
    expect(rev.statusCode, rev.body).toBe(200)
    expect(details('approver.revoked')[0]).toMatchObject({ credentialId })
  })
})
