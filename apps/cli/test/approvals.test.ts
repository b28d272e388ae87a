// `agentid approvers add|list|revoke` and `agentid approvals list|show`, against a real issuer over HTTP
// (--issuer) and on its database (--db).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, localIssuer, remoteIssuer, removeTempDirs, type LocalIssuer, type RemoteIssuer } from './fixtures.js'

let remote: RemoteIssuer
const admin = (args: readonly string[]) => cli([...args, ...remote.args], remote.env)

beforeAll(async () => {
  remote = await remoteIssuer()
})
afterAll(async () => {
  await remote.close()
  removeTempDirs()
})

describe('approvers (--issuer)', () => {
  it('add prints a one-time enrolment link on the issuer; list shows it pending; revoke', async () => {
    const added = await admin(['approvers', 'add', 'Dana Scully', '--for', 'did:web:acme.example', '--for', 'group:finance', '--user', 'dana', '--user-issuer', 'https://idp.example', '--json'])
    expect(added.code, added.stderr).toBe(0)
    const a = added.json()
    expect(a).toMatchObject({ name: 'Dana Scully', approves: { controllers: ['did:web:acme.example'], groups: ['finance'] }, user: { id: 'dana', issuer: 'https://idp.example' }, status: 'pending-enrolment' })
    expect(a.enrolmentUrl).toMatch(new RegExp(`^${remote.url}/approvals/enrol#[A-Za-z0-9_-]{43}$`))
    const human = await admin(['approvers', 'add', 'Fox', '--for', 'controller:did:web:acme.example'])
    expect(human.stdout).toContain('One-time enrolment link')
    const listed = await admin(['approvers', 'list', '--json'])
    expect(listed.json().approvers.map((x: { name: string }) => x.name).sort()).toEqual(['Dana Scully', 'Fox'])
    expect((await admin(['approvers', 'list'])).stdout).toMatch(/^ID\s+NAME\s+STATUS/)
    const revoked = await admin(['approvers', 'revoke', a.id, '--reason', 'left', '--json'])
    expect(revoked.json()).toEqual({ id: a.id, alreadyRevoked: false })
    expect((await admin(['approvers', 'revoke', a.id, '--reason', 'again'])).stdout).toContain('already revoked')
  })

  it('usage errors (exit 2) and refusals (exit 1) with codes', async () => {
    expect((await admin(['approvers', 'add', 'Dana'])).code).toBe(2) // --for is required
    expect((await admin(['approvers', 'add', 'Dana', '--for', 'x', '--user-issuer', 'https://idp'])).code).toBe(2)
    const bad = await admin(['approvers', 'add', 'Dana\u202e', '--for', 'x'])
    expect([bad.code, bad.errorCode]).toEqual([1, 'ERR_INVALID_INPUT'])
    expect((await admin(['approvers', 'add', 'Dana', '--for', 'group:no spaces'])).errorCode).toBe('ERR_INVALID_INPUT')
    for (const id of ['apv_x', '../v1/agents', 'x'.repeat(300)]) expect((await admin(['approvers', 'revoke', id, '--reason', 'r'])).errorCode, id).toBe('ERR_INVALID_INPUT')
    expect((await admin(['approvers', 'revoke', 'apv_AAAAAAAAAAAAAAAAAAAAAA', '--reason', 'r'])).errorCode).toBe('ERR_NOT_FOUND')
    const noKey = await cli(['approvers', 'list', ...remote.args], {})
    expect(noKey.code).toBe(2)
    expect((await admin(['approvals', 'show', 'apr_nope'])).errorCode).toBe('ERR_INVALID_INPUT')
    expect((await admin(['approvals', 'list', '--status', 'maybe'])).errorCode).toBe('ERR_INVALID_INPUT')
  })
})

describe('approvals (--issuer and --db)', () => {
  let local: LocalIssuer | undefined
  afterAll(async () => local?.close())

  it('list and show a request, over HTTP and on the database', async () => {
    const orch = (await admin(['orchestrators', 'add', 'guard', '--json'])).json().apiKey as string
    const res = await fetch(`${remote.url}/v1/approvals`, {
      method: 'POST', headers: { authorization: `Bearer ${orch}`, 'content-type': 'application/json' },
      body: JSON.stringify({ agent: 'did:key:z6MkAgent', controller: 'did:web:acme.example', target: 'https://bank.example/mcp', command: 'tools/call pay_invoice', arguments: { amount: '12.00', to: 'ACME\u202e' } }),
    })
    expect(res.status).toBe(201)
    const { id } = (await res.json()) as { id: string }
    const listed = await admin(['approvals', 'list', '--status', 'pending', '--json'])
    expect(listed.json().approvals.map((a: { id: string }) => a.id)).toContain(id)
    const shown = await admin(['approvals', 'show', id])
    expect(shown.code).toBe(0)
    expect(shown.stdout).toContain('tools/call pay_invoice')
    expect(shown.stdout).toContain('ACME\\u202e') // never printed raw to the terminal
    expect((await admin(['approvals', 'show', id, '--json'])).json()).toMatchObject({ id, status: 'pending' })

    local = await localIssuer()
    const r = await local.service.approvals.createRequest({ kind: 'admin' }, { agent: 'did:key:z6MkAgent', controller: 'c', target: 't', command: 'tools/call x', arguments: {} })
    await local.service.close()
    const onDb = await cli(['approvals', 'show', r.id, ...local.db, '--json'])
    expect(onDb.json()).toMatchObject({ id: r.id, status: 'pending' })
    const addOnDb = await cli(['approvers', 'add', 'Local', '--for', 'c', ...local.db, '--json'])
    expect(addOnDb.json().enrolmentUrl).toMatch(/\/approvals\/enrol#/)
    local = undefined
  })
})
