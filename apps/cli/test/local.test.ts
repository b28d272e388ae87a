// Every command on a local database (--db): IssuerService as the `cli` principal.
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, localIssuer, removeTempDirs, tempDir, type LocalIssuer } from './fixtures.js'

let local: LocalIssuer

beforeAll(async () => {
  local = await localIssuer()
})

afterAll(async () => {
  await local.close()
  removeTempDirs()
})

describe('orchestrators (--db)', () => {
  it('adds an orchestrator and prints its API key once', async () => {
    const added = await cli(['orchestrators', 'add', 'bob', ...local.db, '--json'])
    expect(added.code).toBe(0)
    const body = added.json()
    expect(Object.keys(body).sort()).toEqual(['apiKey', 'createdAt', 'id', 'name', 'removedAt'])
    expect(body).toMatchObject({ name: 'bob', removedAt: null })
    expect(body.id).toMatch(/^orch_/)
    expect(body.apiKey).toMatch(/^aid_orch_[A-Za-z0-9_-]{43}$/)
    expect(await local.service.authenticate(body.apiKey)).toMatchObject({ kind: 'orchestrator', name: 'bob' })

    const human = await cli(['orchestrators', 'add', 'carol', ...local.db])
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(/aid_orch_[A-Za-z0-9_-]{43}/)
  })

  it('refuses a duplicate name with ERR_CONFLICT', async () => {
    const again = await cli(['orchestrators', 'add', 'alice', ...local.db])
    expect(again.code).toBe(1)
    expect(again.errorCode).toBe('ERR_CONFLICT')
  })

  it('refuses a malformed name with ERR_INVALID_INPUT', async () => {
    for (const name of ['', 'has space', 'x'.repeat(65), 'a\u001b[31m', '-leading-dash-is-an-option']) {
      const result = await cli(['orchestrators', 'add', ...local.db, '--', name])
      expect(result.code, name).toBe(1)
      expect(result.errorCode, name).toBe('ERR_INVALID_INPUT')
    }
  })

  it('lists orchestrators as a table and as JSON', async () => {
    const listed = await cli(['orchestrators', 'list', ...local.db, '--json'])
    expect(listed.code).toBe(0)
    const { orchestrators } = listed.json()
    expect(orchestrators.map((o: { name: string }) => o.name)).toEqual(expect.arrayContaining(['alice', 'bob']))
    expect(orchestrators[0]).toHaveProperty('activeAgents')
    expect(JSON.stringify(orchestrators)).not.toContain('aid_orch_')

    const table = await cli(['orchestrators', 'list', ...local.db])
    expect(table.code).toBe(0)
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+CREATED/)
    expect(table.stdout).toContain('alice')
  })

  it('removes an orchestrator by name or id; a second removal is ERR_NOT_FOUND', async () => {
    const added = (await cli(['orchestrators', 'add', 'dave', ...local.db, '--json'])).json()
    const byName = await cli(['orchestrators', 'remove', 'dave', ...local.db, '--json'])
    expect(byName.code).toBe(0)
    expect(byName.json()).toMatchObject({ id: added.id, name: 'dave' })
    expect(byName.json().removedAt).toEqual(expect.any(String))
    const again = await cli(['orchestrators', 'remove', added.id, ...local.db])
    expect(again.code).toBe(1)
    expect(again.errorCode).toBe('ERR_NOT_FOUND')
    const unknown = await cli(['orchestrators', 'remove', 'nobody', ...local.db])
    expect(unknown.errorCode).toBe('ERR_NOT_FOUND')
  })
})

describe('agents, status (--db)', () => {
  it('lists agents with filters and pages through them', async () => {
    const a = await local.spawn('paging-test', 'team-paging')
    const b = await local.spawn('paging-test', 'team-paging')
    const first = await cli(['agents', 'list', ...local.db, '--purpose', 'paging-test', '--limit', '1', '--json'])
    expect(first.code).toBe(0)
    const page1 = first.json()
    expect(Object.keys(page1).sort()).toEqual(['agents', 'nextCursor'])
    expect(page1.agents).toHaveLength(1)
    expect(page1.nextCursor).toEqual(expect.any(String))
    const second = (await cli(['agents', 'list', ...local.db, '--purpose', 'paging-test', '--limit', '1', '--cursor', page1.nextCursor, '--json'])).json()
    expect(second.agents).toHaveLength(1)
    expect(second.nextCursor).toBeNull()
    expect([page1.agents[0].did, second.agents[0].did].sort()).toEqual([a.did, b.did].sort())

    const byController = (await cli(['agents', 'list', ...local.db, '--controller', 'team-paging', '--status', 'active', '--orchestrator', 'alice', '--json'])).json()
    expect(byController.agents).toHaveLength(2)

    const human = await cli(['agents', 'list', ...local.db, '--purpose', 'paging-test'])
    expect(human.code).toBe(0)
    expect(human.stdout.split('\n')[0]).toMatch(/^DID\s+STATUS/)
    expect(human.stdout).toContain(a.did)
  })

  it('refuses malformed filters with ERR_INVALID_INPUT', async () => {
    for (const args of [['--status', 'zombie'], ['--limit', '0'], ['--limit', '501'], ['--limit', 'ten'], ['--cursor', 'not-a-cursor'], ['--purpose', '']]) {
      const result = await cli(['agents', 'list', ...local.db, ...args])
      expect(result.code, args.join(' ')).toBe(1)
      expect(result.errorCode, args.join(' ')).toBe('ERR_INVALID_INPUT')
    }
  })

  it('shows an agent with its credentials', async () => {
    const agent = await local.spawn('show-test')
    const shown = await cli(['agents', 'show', agent.did, ...local.db, '--json'])
    expect(shown.code).toBe(0)
    const view = shown.json()
    expect(view).toMatchObject({ did: agent.did, status: 'active', keyCustody: 'issuer', orchestrator: local.orchestrator.id })
    expect(view.claims.purpose).toBe('show-test')
    expect(view.credentials).toEqual([expect.objectContaining({ id: agent.credentialId, status: 'active', revokedAt: null })])
    const human = await cli(['agents', 'show', agent.did, ...local.db])
    expect(human.stdout).toContain(agent.credentialId)
  })

  it('answers ERR_INVALID_INPUT for a bad DID and ERR_NOT_FOUND for an unknown agent', async () => {
    for (const did of ['did:key:nope', 'did:web:example.com', 'not-a-did', '', `did:key:z6Mk${'a'.repeat(5000)}`]) {
      const result = await cli(['agents', 'show', ...local.db, '--', did])
      expect(result.code, did).toBe(1)
      expect(result.errorCode, did).toBe('ERR_INVALID_INPUT')
    }
    const unknown = await cli(['status', 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', ...local.db])
    expect(unknown.code).toBe(1)
    expect(unknown.errorCode).toBe('ERR_NOT_FOUND')
  })

  it("reports an agent's status and each credential's", async () => {
    const agent = await local.spawn('status-test')
    const result = await cli(['status', agent.did, ...local.db, '--json'])
    expect(result.code).toBe(0)
    const status = result.json()
    expect(Object.keys(status).sort()).toEqual(['credentials', 'did', 'revocationReason', 'revokedAt', 'status'])
    expect(status).toMatchObject({ did: agent.did, status: 'active', revokedAt: null })
    expect(status.credentials).toEqual([
      { id: agent.credentialId, status: 'active', issuedAt: expect.any(String), expiresAt: expect.any(String), revokedAt: null, revocationReason: null },
    ])
    const human = await cli(['status', agent.did, ...local.db])
    expect(human.stdout).toMatch(/status\s+active/)
  })
})

describe('revoke (--db)', () => {
  it('revokes a delegation by its id (after looking it up as a credential), and an agent with its delegations', async () => {
    const agent = await local.spawn('revoke-delegation')
    const grant = { capabilities: [{ resource: 'mcp://erp/tools/*', actions: ['*'] }] }
    const first = await local.service.grant({ kind: 'cli' }, agent.did, grant)
    const revoked = await cli(['revoke', first.id, '--reason', 'over-granted', ...local.db, '--json'])
    expect(revoked.code, revoked.stderr).toBe(0)
    expect(revoked.json()).toEqual({ id: first.id, revokedDelegations: [first.id], alreadyRevoked: false })
    expect(local.service.store.delegations.get(first.id)).toMatchObject({ revocation_reason: 'over-granted' })
    const human = await cli(['revoke', first.id, '--reason', 'over-granted', ...local.db])
    expect(human.stdout).toContain('already revoked')
    const second = await local.service.grant({ kind: 'cli' }, agent.did, grant)
    const gone = await cli(['revoke', agent.did, '--reason', 'decommissioned', ...local.db, '--json'])
    expect(gone.json()).toEqual({ did: agent.did, revokedCredentials: [agent.credentialId], revokedDelegations: [second.id], alreadyRevoked: false })
    const unknown = await cli(['revoke', 'urn:uuid:00000000-0000-4000-8000-000000000000', '--reason', 'x', ...local.db])
    expect(unknown.errorCode).toBe('ERR_NOT_FOUND')
  })

  it('revokes one credential, then reports it already revoked', async () => {
    const agent = await local.spawn('revoke-credential')
    const revoked = await cli(['revoke', agent.credentialId, '--reason', 'key leaked', ...local.db, '--json'])
    expect(revoked.code).toBe(0)
    expect(revoked.json()).toEqual({ id: agent.credentialId, agent: agent.did, alreadyRevoked: false })
    const again = await cli(['revoke', agent.credentialId, '--reason', 'key leaked', ...local.db, '--json'])
    expect(again.json()).toMatchObject({ alreadyRevoked: true })
    const status = (await cli(['status', agent.did, ...local.db, '--json'])).json()
    expect(status.status).toBe('active')
    expect(status.credentials[0]).toMatchObject({ status: 'revoked', revocationReason: 'key leaked' })
  })

  it('revokes an agent with all its credentials', async () => {
    const agent = await local.spawn('revoke-agent')
    const revoked = await cli(['revoke', agent.did, '--reason', 'decommissioned', ...local.db, '--json'])
    expect(revoked.code).toBe(0)
    expect(revoked.json()).toEqual({ did: agent.did, revokedCredentials: [agent.credentialId], revokedDelegations: [], alreadyRevoked: false })
    const human = await cli(['revoke', agent.did, '--reason', 'decommissioned', ...local.db])
    expect(human.code).toBe(0)
    const status = (await cli(['status', agent.did, ...local.db, '--json'])).json()
    expect(status).toMatchObject({ status: 'revoked', revocationReason: 'decommissioned' })
    expect(status.credentials[0].status).toBe('revoked')
  })

  it('refuses an empty, blank, overlong or control-character reason with ERR_INVALID_INPUT', async () => {
    const agent = await local.spawn('revoke-reasons')
    for (const reason of ['', '   ', 'x'.repeat(513), 'line\nbreak', 'bell\u0007', 'esc\u001b[2J', 'del\u007f']) {
      for (const target of [agent.did, agent.credentialId]) {
        const result = await cli(['revoke', target, '--reason', reason, ...local.db])
        expect(result.code, JSON.stringify(reason)).toBe(1)
        expect(result.errorCode, JSON.stringify(reason)).toBe('ERR_INVALID_INPUT')
      }
    }
    expect((await cli(['status', agent.did, ...local.db, '--json'])).json().status).toBe('active')
  })

  it('refuses a malformed credential id or DID, and an unknown one', async () => {
    for (const target of ['urn:uuid:not-a-uuid', 'urn:uuid:78CF1E57-58DB-498B-B747-BC6BA90564F0', 'did:key:zzz', 'did:web:x']) {
      const result = await cli(['revoke', target, '--reason', 'r', ...local.db])
      expect(result.code, target).toBe(1)
      expect(result.errorCode, target).toBe('ERR_INVALID_INPUT')
    }
    const unknownCredential = await cli(['revoke', 'urn:uuid:00000000-0000-4000-8000-000000000000', '--reason', 'r', ...local.db])
    expect(unknownCredential.errorCode).toBe('ERR_NOT_FOUND')
    const unknownAgent = await cli(['revoke', 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', '--reason', 'r', ...local.db])
    expect(unknownAgent.errorCode).toBe('ERR_NOT_FOUND')
  })

  it('is a usage error for a target that is neither a DID nor a credential id, or without --reason', async () => {
    expect((await cli(['revoke', 'agent-42', '--reason', 'r', ...local.db])).code).toBe(2)
    expect((await cli(['revoke', '', '--reason', 'r', ...local.db])).code).toBe(2)
    const agent = await local.spawn('revoke-usage')
    expect((await cli(['revoke', agent.did, ...local.db])).code).toBe(2)
    expect((await cli(['revoke', ...local.db, '--reason', 'r'])).code).toBe(2)
  })
})

describe('verify (--db)', () => {
  it('verifies a credential, status list from the database when the issuer URL is unreachable', async () => {
    const agent = await local.spawn('verify-test')
    const result = await cli(['verify', agent.credential, '--db', local.dbFile, '--json'])
    expect(result.code).toBe(0)
    const verified = result.json()
    expect(verified).toMatchObject({ did: agent.did, issuer: local.service.issuer.did, credentialId: agent.credentialId })
    expect(verified.claims.purpose).toBe('verify-test')
    expect(verified.expiresAt).toEqual(expect.any(Number))
    const human = await cli(['verify', agent.credential, '--db', local.dbFile])
    expect(human.code).toBe(0)
    expect(human.stdout).toContain(agent.did)
  })

  it('reads the credential from stdin with -', async () => {
    const agent = await local.spawn('verify-stdin')
    const result = await cli(['verify', '-', ...local.db, '--json'], {}, { stdin: `${agent.credential}\n` })
    expect(result.code).toBe(0)
    expect(result.json().did).toBe(agent.did)
    const empty = await cli(['verify', '-', ...local.db], {}, { stdin: '' })
    expect(empty.code).toBe(1)
    expect(empty.errorCode).toBe('ERR_MALFORMED')
  })

  it('refuses a revoked credential with ERR_REVOKED', async () => {
    const agent = await local.spawn('verify-revoked')
    expect((await cli(['revoke', agent.credentialId, '--reason', 'test', ...local.db])).code).toBe(0)
    const result = await cli(['verify', agent.credential, ...local.db, '--json'])
    expect(result.code).toBe(1)
    expect(result.errorCode).toBe('ERR_REVOKED')
    expect(result.json()).toEqual({ error: { code: 'ERR_REVOKED', message: expect.any(String) } })
  })

  it('refuses garbage with ERR_MALFORMED and a tampered credential with ERR_SIGNATURE_INVALID', async () => {
    for (const garbage of ['garbage', 'a.b.c', '..', 'x'.repeat(100_000)]) {
      const result = await cli(['verify', garbage, ...local.db])
      expect(result.code, garbage.slice(0, 20)).toBe(1)
      expect(result.errorCode, garbage.slice(0, 20)).toBe('ERR_MALFORMED')
    }
    const none = await cli(['verify', 'eyJhbGciOiJub25lIn0.e30.', ...local.db])
    expect(none.code).toBe(1)
    expect(none.errorCode).toBe('ERR_UNSUPPORTED_ALG')
    const agent = await local.spawn('verify-tampered')
    const [h, p, s] = agent.credential.split('.')
    const flipped = `${s!.slice(0, 10)}${s![10] === 'A' ? 'B' : 'A'}${s!.slice(11)}`
    const tampered = await cli(['verify', `${h}.${p}.${flipped}`, ...local.db])
    expect(tampered.code).toBe(1)
    expect(tampered.errorCode).toBe('ERR_SIGNATURE_INVALID')
  })

  it('trusts only --trust DIDs when given', async () => {
    const agent = await local.spawn('verify-trust')
    const other = await cli(['verify', agent.credential, ...local.db, '--trust', 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'])
    expect(other.code).toBe(1)
    expect(other.errorCode).toBe('ERR_UNTRUSTED_ISSUER')
    const same = await cli(['verify', agent.credential, ...local.db, '--trust', local.service.issuer.did])
    expect(same.code).toBe(0)
    expect((await cli(['verify', agent.credential, '--trust', 'not a did'])).code).toBe(2)
  })

  it('without --db, --issuer or --trust is a usage error', async () => {
    const agent = await local.spawn('verify-no-target')
    expect((await cli(['verify', agent.credential])).code).toBe(2)
    expect((await cli(['verify'])).code).toBe(2)
  })
})

describe('admin-key', () => {
  it('stores a new admin key and prints it once', async () => {
    const replaced = () => (local.service.store.db.prepare("SELECT count(*) AS n FROM audit_events WHERE action = 'admin_key.replaced'").get() as { n: number }).n
    const before = replaced()
    const result = await cli(['admin-key', '--db', local.dbFile, '--json'])
    expect(result.code).toBe(0)
    const { adminKey } = result.json()
    expect(Object.keys(result.json())).toEqual(['adminKey'])
    expect(adminKey).toMatch(/^aid_admin_[A-Za-z0-9_-]{43}$/)
    expect(await local.service.authenticate(adminKey)).toEqual({ kind: 'admin' })

    const human = await cli(['admin-key', '--db', local.dbFile])
    expect(human.code).toBe(0)
    const next = human.stdout.trim()
    expect(next).toMatch(/^aid_admin_[A-Za-z0-9_-]{43}$/)
    expect(await local.service.authenticate(next)).toEqual({ kind: 'admin' })
    await expect(local.service.authenticate(adminKey)).rejects.toMatchObject({ code: 'ERR_UNAUTHENTICATED' })
    expect(replaced()).toBe(before + 2) // each rotation leaves an audit event
  })

  it('works only on a database', async () => {
    expect((await cli(['admin-key'])).code).toBe(2)
    expect((await cli(['admin-key', '--issuer', 'http://127.0.0.1:9'])).code).toBe(2)
  })
})

describe('local targets', () => {
  it('refuses a database file that does not exist, and creates nothing', async () => {
    const dir = tempDir()
    const result = await cli(['agents', 'list', '--db', join(dir, 'typo.db')])
    expect(result.code).toBe(1)
    expect(result.errorCode).toBe('ERR_NOT_FOUND')
    expect(readdirSync(dir)).toEqual([])
    expect((await cli(['admin-key', '--db', join(dir, 'typo.db')])).errorCode).toBe('ERR_NOT_FOUND')
  })

  it('refuses a data dir without the master secret, and writes no new secret', async () => {
    const dir = tempDir()
    const result = await cli(['agents', 'list', '--db', local.dbFile, '--data-dir', dir])
    expect(result.code).toBe(1)
    expect(result.errorCode).toBe('ERR_NOT_FOUND')
    expect(existsSync(join(dir, 'secret.key'))).toBe(false)
  })

  it('refuses a file that is not an issuer database', async () => {
    const result = await cli(['agents', 'list', '--db', join(local.dir, 'secret.key')])
    expect(result.code).toBe(1)
    expect(result.errorCode).toEqual(expect.stringMatching(/^ERR_/))
  })

  it('is a usage error to name both --db and --issuer, or neither', async () => {
    expect((await cli(['agents', 'list', ...local.db, '--issuer', 'http://127.0.0.1:9'])).code).toBe(2)
    const neither = await cli(['agents', 'list'])
    expect(neither.code).toBe(2)
    expect(neither.stderr).toMatch(/--issuer|--db/)
    expect((await cli(['orchestrators', 'list', '--data-dir', local.dir])).code).toBe(2)
  })

  it('opens a did:web issuer database without being told its domain', async () => {
    const web = await localIssuer({ didWebDomain: 'issuer.example' })
    try {
      const agent = await web.spawn('did-web')
      const shown = await cli(['agents', 'show', agent.did, ...web.db, '--json'])
      expect(shown.code).toBe(0)
      const verified = await cli(['verify', agent.credential, '--db', web.dbFile, '--json'])
      expect(verified.code).toBe(0)
      expect(verified.json().issuer).toBe('did:web:issuer.example')
    } finally {
      await web.close()
    }
  })
})
