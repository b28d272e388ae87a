import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { AgentIdError } from '@agentid/core'
import { loadGatewayConfig, parseGatewayConfig } from '@agentid/gateway'

const dir = mkdtempSync(join(tmpdir(), 'gw-config-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const valid = () => ({
  listen: { port: 8090 },
  agentid: { issuerUrls: ['http://127.0.0.1:8080'], trustedIssuers: ['did:key:z6MkIssuer'] },
  policyDir: 'policies',
  secretStores: { file: { path: 'secrets.json' } },
  upstreams: [
    { id: 'files', transport: 'stdio', command: 'node', args: ['server.mjs'], env: { TOKEN: { secret: 'env:FILES_TOKEN' }, MODE: 'ro' } },
    { id: 'github', transport: 'http', url: 'https://mcp.example/mcp', headers: { Authorization: { secret: 'file:github', template: 'Bearer {secret}' } } },
  ],
})

function fieldOf(input: unknown): string {
  try {
    parseGatewayConfig(input, '/etc/gw')
  } catch (error) {
    expect(error).toBeInstanceOf(AgentIdError)
    expect((error as AgentIdError).code).toBe('ERR_INVALID_INPUT')
    return String((error as AgentIdError).details.field)
  }
  throw new Error('config was accepted')
}

describe('parseGatewayConfig', () => {
  it('accepts a valid config, fills defaults and makes paths absolute', () => {
    const c = parseGatewayConfig(valid(), '/etc/gw')
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 8090 })
    expect(c.agentid.statusTtlMs).toBe(60_000)
    expect(c.policyDir).toBe('/etc/gw/policies')
    expect(c.secretFile).toBe('/etc/gw/secrets.json')
    expect(c.logLevel).toBe('info')
    expect(c.sseResponses).toBe(false)
    expect(c.upstreams[0]).toMatchObject({ id: 'files', transport: 'stdio', cwd: '/etc/gw', env: { TOKEN: { secret: 'env:FILES_TOKEN' }, MODE: 'ro' } })
    expect(c.upstreams[1]).toMatchObject({ id: 'github', transport: 'http', headers: { Authorization: { secret: 'file:github', template: 'Bearer {secret}' } } })
  })

  it('refuses unknown fields, naming them', () => {
    expect(fieldOf({ ...valid(), listne: {} })).toBe('listne')
    const c = valid()
    ;(c.upstreams[0] as Record<string, unknown>).evn = {}
    expect(fieldOf(c)).toBe('upstreams.0.evn')
  })

  it('names the offending field', () => {
    const cases: [(c: any) => void, string][] = [
      [(c) => (c.listen.port = 70000), 'listen.port'],
      [(c) => (c.listen.port = '8090'), 'listen.port'],
      [(c) => (c.sseResponses = 'yes'), 'sseResponses'],
      [(c) => (c.agentid.issuerUrls = []), 'agentid.issuerUrls'],
      [(c) => (c.agentid.issuerUrls = ['ftp://x']), 'agentid.issuerUrls.0'],
      [(c) => (c.agentid.trustedIssuers = ['not-a-did']), 'agentid.trustedIssuers.0'],
      [(c) => (c.agentid.statusTtlMs = -1), 'agentid.statusTtlMs'],
      [(c) => delete c.policyDir, 'policyDir'],
      [(c) => (c.upstreams = []), 'upstreams'],
      [(c) => (c.upstreams[0].id = 'Has Space'), 'upstreams.0.id'],
      [(c) => (c.upstreams[0].id = '../etc'), 'upstreams.0.id'],
      [(c) => (c.upstreams[1].id = 'files'), 'upstreams.1.id'],
      [(c) => (c.upstreams[0].transport = 'sse'), 'upstreams.0.transport'],
      [(c) => (c.upstreams[0].env.TOKEN = { secret: 'TOKEN' }), 'upstreams.0.env.TOKEN.secret'],
      [(c) => (c.upstreams[0].env.TOKEN = { secret: 'env:' }), 'upstreams.0.env.TOKEN.secret'],
      [(c) => (c.upstreams[0].env.TOKEN = { secret: 'Env:X' }), 'upstreams.0.env.TOKEN.secret'],
      [(c) => (c.upstreams[0].env.TOKEN = 42), 'upstreams.0.env.TOKEN'],
      [(c) => (c.upstreams[1].headers.Authorization.template = 'Bearer'), 'upstreams.1.headers.Authorization.template'],
      [(c) => (c.upstreams[1].headers.Authorization.template = '{secret}{secret}'), 'upstreams.1.headers.Authorization.template'],
      [(c) => (c.upstreams[1].headers.DPoP = 'x'), 'upstreams.1.headers.DPoP'],
      [(c) => (c.upstreams[1].url = 'https://user:pw@mcp.example/'), 'upstreams.1.url'],
      [(c) => delete c.secretStores, 'upstreams.1.headers.Authorization'],
    ]
    for (const [mutate, field] of cases) {
      const c = valid()
      mutate(c)
      expect(fieldOf(c), field).toBe(field)
    }
  })

  it('accepts references to other stores (given to startGateway), checked when the upstream connects', () => {
    const c = valid()
    c.upstreams[0]!.env = { TOKEN: { secret: 'vault:kv/files/token' } } as never
    expect(parseGatewayConfig(c, '/etc/gw').upstreams[0]).toMatchObject({ env: { TOKEN: { secret: 'vault:kv/files/token' } } })
  })

  it('loadGatewayConfig reads a file, relative to its folder; bad files name (file) or (json)', async () => {
    const file = join(dir, 'gw.json')
    writeFileSync(file, JSON.stringify(valid()))
    expect((await loadGatewayConfig(file)).policyDir).toBe(join(dir, 'policies'))
    writeFileSync(file, '{ nope')
    await expect(loadGatewayConfig(file)).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT', details: { field: '(json)' } })
    await expect(loadGatewayConfig(join(dir, 'missing.json'))).rejects.toMatchObject({ code: 'ERR_INVALID_INPUT', details: { field: '(file)' } })
  })
})

describe('parseGatewayConfig: lineage', () => {
  it('defaults to no lineage requirement and no gateway agent; upstreams are named by their id', () => {
    const c = parseGatewayConfig(valid(), '/etc/gw')
    expect(c.lineage).toEqual({ required: false, agent: undefined })
    expect(c.upstreams.map((u) => u.lineage)).toEqual([{ serverId: 'files', agent: undefined }, { serverId: 'github', agent: undefined }])
  })

  it('takes the gateway agent as secret references, and each upstream\'s server id and agent', () => {
    const input = valid() as Record<string, unknown> & { upstreams: Record<string, unknown>[] }
    input.lineage = { required: true, agent: { privateJwk: { secret: 'file:gw-key' }, credential: { secret: 'env:GW_CREDENTIAL' } } }
    input.upstreams[1]!.lineage = { serverId: 'github.com', agent: 'did:key:z6MkGithubServer' }
    const c = parseGatewayConfig(input, '/etc/gw')
    expect(c.lineage).toEqual({ required: true, agent: { privateJwk: { secret: 'file:gw-key' }, credential: { secret: 'env:GW_CREDENTIAL' } } })
    expect(c.upstreams[1]!.lineage).toEqual({ serverId: 'github.com', agent: 'did:key:z6MkGithubServer' })
  })

  it('refuses malformed lineage settings, naming the field', () => {
    const withLineage = (lineage: unknown) => ({ ...valid(), lineage })
    expect(fieldOf(withLineage({ required: 'yes' }))).toBe('lineage.required')
    expect(fieldOf(withLineage({ agent: { privateJwk: { secret: 'vault' } , credential: 'x' } }))).toBe('lineage.agent.privateJwk.secret')
    expect(fieldOf(withLineage({ agent: { privateJwk: 'k' } }))).toBe('lineage.agent.credential')
    expect(fieldOf(withLineage({ signer: {} }))).toBe('lineage.signer')
    const upstream = (lineage: unknown) => {
      const input = valid() as Record<string, unknown> & { upstreams: Record<string, unknown>[] }
      input.upstreams[0]!.lineage = lineage
      return input
    }
    expect(fieldOf(upstream({ serverId: 'a/b' }))).toBe('upstreams.0.lineage.serverId')
    expect(fieldOf(upstream({ serverId: '' }))).toBe('upstreams.0.lineage.serverId')
    expect(fieldOf(upstream({ agent: 'did:web:example.com' }))).toBe('upstreams.0.lineage.agent')
    expect(fieldOf(upstream({ other: 1 }))).toBe('upstreams.0.lineage.other')
  })
})
