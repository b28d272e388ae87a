// Every command against a real issuer listening on 127.0.0.1 (startIssuer, port 0), over HTTP.
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cli, remoteIssuer, removeTempDirs, spawnOverHttp, type RemoteIssuer } from './fixtures.js'

let remote: RemoteIssuer
let orchestratorKey: string

/** Runs the CLI as the issuer's admin. */
const admin = (args: readonly string[]) => cli([...args, ...remote.args], remote.env)

beforeAll(async () => {
  remote = await remoteIssuer()
  const added = await admin(['orchestrators', 'add', 'alice', '--json'])
  orchestratorKey = added.json().apiKey
})

afterAll(async () => {
  await remote.close()
  removeTempDirs()
})

describe('orchestrators (--issuer)', () => {
  it('adds, lists and removes orchestrators', async () => {
    const added = await admin(['orchestrators', 'add', 'bob', '--json'])
    expect(added.code).toBe(0)
    expect(Object.keys(added.json()).sort()).toEqual(['apiKey', 'createdAt', 'id', 'name', 'removedAt'])
    expect(added.json().apiKey).toMatch(/^aid_orch_/)

    const listed = await admin(['orchestrators', 'list', '--json'])
    expect(listed.code).toBe(0)
    expect(Object.keys(listed.json())).toEqual(['orchestrators'])
    expect(listed.json().orchestrators.map((o: { name: string }) => o.name)).toEqual(expect.arrayContaining(['alice', 'bob']))
    expect((await admin(['orchestrators', 'list'])).stdout).toMatch(/^ID\s+NAME/)

    const removed = await admin(['orchestrators', 'remove', 'bob', '--json'])
    expect(removed.code).toBe(0)
    expect(removed.json()).toMatchObject({ id: added.json().id, removedAt: expect.any(String) })
    expect((await admin(['orchestrators', 'remove', 'bob'])).errorCode).toBe('ERR_NOT_FOUND')
  })

  it('refuses a duplicate name with ERR_CONFLICT, a bad one with ERR_INVALID_INPUT', async () => {
    const again = await admin(['orchestrators', 'add', 'alice'])
    expect(again.code).toBe(1)
    expect(again.errorCode).toBe('ERR_CONFLICT')
    for (const name of ['has space', '../admin', 'x'.repeat(65)]) {
      const bad = await admin(['orchestrators', 'add', name])
      expect(bad.code, name).toBe(1)
      expect(bad.errorCode, name).toBe('ERR_INVALID_INPUT')
    }
    for (const idOrName of ['..', '../../v1/agents', 'x'.repeat(300), '%00']) {
      const bad = await admin(['orchestrators', 'remove', idOrName])
      expect(bad.code, idOrName).toBe(1)
      expect(['ERR_NOT_FOUND', 'ERR_INVALID_INPUT'], idOrName).toContain(bad.errorCode)
    }
  })
})

describe('agents, status, revoke, verify (--issuer)', () => {
  it('lists and shows agents spawned over HTTP', async () => {
    const agent = await spawnOverHttp(remote.url, orchestratorKey, 'remote-list')
    const listed = await admin(['agents', 'list', '--purpose', 'remote-list', '--json'])
    expect(listed.code).toBe(0)
    expect(listed.json()).toEqual({ agents: [expect.objectContaining({ did: agent.did, status: 'active' })], nextCursor: null })
    const shown = await admin(['agents', 'show', agent.did, '--json'])
    expect(shown.code).toBe(0)
    expect(shown.json().credentials[0]).toMatchObject({ id: agent.credentialId, status: 'active' })
    expect((await admin(['agents', 'list', '--status', 'zombie'])).errorCode).toBe('ERR_INVALID_INPUT')
    expect((await admin(['agents', 'list', '--limit', '1000'])).errorCode).toBe('ERR_INVALID_INPUT')
  })

  it('answers ERR_INVALID_INPUT for a bad DID and ERR_NOT_FOUND for an unknown agent', async () => {
    for (const did of ['did:key:nope', 'not-a-did', `did:key:z6Mk${'a'.repeat(5000)}`, 'did:key:z6Mk/../../orchestrators']) {
      for (const command of [['agents', 'show'], ['status']]) {
        const result = await cli([...command, ...remote.args, '--', did], remote.env)
        expect(result.code, did).toBe(1)
        expect(result.errorCode, did).toBe('ERR_INVALID_INPUT')
      }
    }
    const unknown = await admin(['agents', 'show', 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK'])
    expect(unknown.code).toBe(1)
    expect(unknown.errorCode).toBe('ERR_NOT_FOUND')
  })

  it('verifies a credential against the issuer, then refuses it once revoked', async () => {
    const agent = await spawnOverHttp(remote.url, orchestratorKey, 'remote-verify')
    const ok = await cli(['verify', agent.credential, '--json'], { AGENTID_ISSUER: remote.url })
    expect(ok.code).toBe(0)
    expect(ok.json()).toMatchObject({ did: agent.did, issuer: remote.issuer.service.issuer.did, credentialId: agent.credentialId })

    // --trust alone: the status list comes from the URL in the credential; no issuer is asked.
    const issuerDid = remote.issuer.service.issuer.did
    expect((await cli(['verify', agent.credential, '--trust', issuerDid])).code).toBe(0)
    expect((await cli(['verify', agent.credential, '--trust', issuerDid, '--issuer', 'http://127.0.0.1:9'])).code).toBe(0)

    const revoked = await admin(['revoke', agent.credentialId, '--reason', 'rotated', '--json'])
    expect(revoked.code).toBe(0)
    expect(revoked.json()).toEqual({ id: agent.credentialId, agent: agent.did, alreadyRevoked: false, logIndex: expect.any(Number) })

    const refused = await cli(['verify', agent.credential, ...remote.args])
    expect(refused.code).toBe(1)
    expect(refused.errorCode).toBe('ERR_REVOKED')
    const status = (await admin(['status', agent.did, '--json'])).json()
    expect(status).toMatchObject({ did: agent.did, status: 'active' })
    expect(status.credentials[0]).toMatchObject({ status: 'revoked', revocationReason: 'rotated' })
  })

  it('revokes an agent with its credentials', async () => {
    const agent = await spawnOverHttp(remote.url, orchestratorKey, 'remote-revoke-agent')
    const revoked = await admin(['revoke', agent.did, '--reason', 'compromised', '--json'])
    expect(revoked.code).toBe(0)
    expect(revoked.json()).toEqual({ did: agent.did, revokedCredentials: [agent.credentialId], revokedDelegations: [], alreadyRevoked: false, logIndex: expect.any(Number) })
    expect((await admin(['status', agent.did, '--json'])).json().status).toBe('revoked')
    expect((await cli(['verify', agent.credential, ...remote.args])).errorCode).toBe('ERR_REVOKED')
  })

  it('refuses bad reasons, ids and targets', async () => {
    const agent = await spawnOverHttp(remote.url, orchestratorKey, 'remote-hostile')
    for (const reason of ['', ' ', 'x'.repeat(513), 'a\nb', '\u001b]0;pwned\u0007']) {
      const result = await admin(['revoke', agent.did, '--reason', reason])
      expect(result.code, JSON.stringify(reason)).toBe(1)
      expect(result.errorCode, JSON.stringify(reason)).toBe('ERR_INVALID_INPUT')
    }
    for (const id of ['urn:uuid:nope', 'urn:uuid:00000000-0000-4000-8000-000000000000/../x']) {
      expect((await admin(['revoke', id, '--reason', 'r'])).errorCode).toBe('ERR_INVALID_INPUT')
    }
    expect((await admin(['revoke', 'urn:uuid:00000000-0000-4000-8000-000000000000', '--reason', 'r'])).errorCode).toBe('ERR_NOT_FOUND')
    expect((await admin(['revoke', 'orch_abc', '--reason', 'r'])).code).toBe(2)
    expect((await admin(['status', agent.did, '--json'])).json().status).toBe('active')
  })

  it('refuses garbage to verify with ERR_MALFORMED', async () => {
    const result = await cli(['verify', 'not.a.jwt', ...remote.args])
    expect(result.code).toBe(1)
    expect(result.errorCode).toBe('ERR_MALFORMED')
  })

  it('gives the same answers over HTTP and on the database', async () => {
    const agent = await spawnOverHttp(remote.url, orchestratorKey, 'same-answers')
    const db = ['--db', join(remote.dataDir, 'issuer.db'), '--base-url', remote.url]
    for (const args of [['agents', 'show', agent.did], ['status', agent.did], ['agents', 'list', '--purpose', 'same-answers'], ['orchestrators', 'list']]) {
      const overHttp = await admin([...args, '--json'])
      const onDb = await cli([...args, ...db, '--json'])
      expect(onDb.code).toBe(0)
      expect(onDb.json(), args.join(' ')).toEqual(overHttp.json())
    }
  })
})

describe('authentication and reachability', () => {
  it('refuses a wrong admin key with ERR_UNAUTHENTICATED', async () => {
    for (const key of ['aid_admin_' + 'A'.repeat(43), 'nonsense', orchestratorKey, 'aid_admin_x\r\nX-Injected: 1', ' ']) {
      const result = await cli(['orchestrators', 'list', ...remote.args], { AGENTID_ADMIN_KEY: key })
      if (key.trim() === '') {
        expect(result.code).toBe(2)
        continue
      }
      expect(result.code, key).toBe(1)
      expect(result.errorCode, key).toBe(key === orchestratorKey ? 'ERR_FORBIDDEN' : 'ERR_UNAUTHENTICATED')
    }
  })

  it('is a usage error without an admin key', async () => {
    for (const args of [['orchestrators', 'list'], ['agents', 'list'], ['revoke', 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', '--reason', 'r']]) {
      const result = await cli([...args, ...remote.args])
      expect(result.code, args.join(' ')).toBe(2)
    }
  })

  it('answers ERR_UNREACHABLE when nothing listens at the issuer URL', async () => {
    for (const args of [['agents', 'list'], ['verify', 'a.b.c']]) {
      const result = await cli([...args, '--issuer', 'http://127.0.0.1:9'], remote.env)
      expect(result.code).toBe(1)
      expect(result.errorCode).toBe('ERR_UNREACHABLE')
    }
    const env = await cli(['orchestrators', 'list'], { ...remote.env, AGENTID_ISSUER: 'http://127.0.0.1:9' })
    expect(env.errorCode).toBe('ERR_UNREACHABLE')
  })

  it('is a usage error when the issuer URL is not an http(s) URL', async () => {
    for (const url of ['not a url', 'ftp://example.com', 'http://user:pass@example.com', 'http://example.com/?q=1', '']) {
      const result = await cli(['agents', 'list', '--issuer', url], remote.env)
      expect(result.code, url).toBe(2)
    }
  })

  /** Runs `fn` with the URL of a server that answers every request with `handler`. */
  async function withServer(handler: Parameters<typeof createServer>[1], fn: (url: string) => Promise<void>): Promise<void> {
    const server: Server = createServer(handler)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      await fn(`http://127.0.0.1:${(server.address() as { port: number }).port}`)
    } finally {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    }
  }

  it('answers ERR_BAD_RESPONSE when the URL is not an agentid issuer', async () => {
    const answers: Array<[number, Record<string, string>, string]> = [
      [404, { 'content-type': 'text/html' }, '<h1>nope</h1>'],
      [200, { 'content-type': 'application/json' }, '[1,2,3]'],
      [200, { 'content-type': 'text/plain' }, 'not json'],
      [500, { 'content-type': 'application/json' }, '{"error":{"code":"rm -rf","message":"x"}}'],
      [302, { location: 'http://evil.example/' }, ''],
    ]
    for (const [status, headers, body] of answers) {
      await withServer((_req, res) => res.writeHead(status, headers).end(body), async (url) => {
        const result = await cli(['agents', 'list', '--issuer', url], remote.env)
        expect(result.code, body).toBe(1)
        expect(result.errorCode, body).toBe('ERR_BAD_RESPONSE')
      })
    }
  })

  it('stops reading an endless answer', async () => {
    await withServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      const chunk = Buffer.alloc(1024 * 1024, 0x20)
      const pump = () => { while (res.write(chunk)); }
      res.on('drain', pump)
      pump()
    }, async (url) => {
      const result = await cli(['orchestrators', 'list', '--issuer', url], remote.env)
      expect(result.code).toBe(1)
      expect(result.errorCode).toBe('ERR_BAD_RESPONSE')
    })
  })

  it('prints a hostile error message without terminal control characters', async () => {
    const message = 'bad\u001b[2J\u001b]0;owned\u0007\u202eevil\r\nagentid: ERR_OK: fine'
    await withServer((_req, res) => res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'ERR_FORBIDDEN', message } })), async (url) => {
      const result = await cli(['agents', 'list', '--issuer', url], remote.env)
      expect(result.code).toBe(1)
      expect(result.errorCode).toBe('ERR_FORBIDDEN')
      expect(result.stderr).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/)
      expect(result.stderr.trim().split('\n')).toHaveLength(1)
    })
  })
})

describe('did:web issuer', () => {
  it('verifies with the DID document the issuer serves', async () => {
    const web = await remoteIssuer({ didWebDomain: 'issuer.example' })
    try {
      const added = (await cli(['orchestrators', 'add', 'alice', ...web.args, '--json'], web.env)).json()
      const agent = await spawnOverHttp(web.url, added.apiKey, 'web-verify')
      const result = await cli(['verify', agent.credential, ...web.args, '--json'])
      expect(result.code).toBe(0)
      expect(result.json().issuer).toBe('did:web:issuer.example')
    } finally {
      await web.close()
    }
  })
})

describe('serve', () => {
  it('runs the issuer until stopped', async () => {
    const { tempDir } = await import('./fixtures.js')
    const dataDir = tempDir()
    const stop = new AbortController()
    let banner: (value: { url: string }) => void
    const listening = new Promise<{ url: string }>((resolve) => (banner = resolve))
    const served = cli(['serve', '--port', '0', '--data-dir', dataDir, '--log-level', 'silent'], {}, {
      signal: stop.signal,
      onStderr: (s) => {
        const line = s.split('\n').find((l) => l.includes('agentid issuer listening'))
        if (line) banner(JSON.parse(line) as { url: string })
      },
    })
    const { url } = await listening
    expect((await fetch(`${url}/healthz`)).status).toBe(200)
    stop.abort()
    const result = await served
    expect(result.code).toBe(0)
    expect(result.stderr).toMatch(/aid_admin_[A-Za-z0-9_-]{43}/) // generated at the first start, shown once
    await expect(fetch(`${url}/healthz`)).rejects.toThrow()
  })

  it('refuses a bad port or log level as usage errors', async () => {
    expect((await cli(['serve', '--port', 'eighty'])).code).toBe(2)
    expect((await cli(['serve', '--port', '70000'])).code).toBe(2)
    expect((await cli(['serve', '--log-level', 'loud'])).code).toBe(2)
  })
})
