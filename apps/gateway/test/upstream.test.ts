// Upstream connections and the forwarding server, against the real fixture MCP servers (stdio child
// process and Streamable HTTP), with the SDK's own Client on the agent side (in-memory transport).
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { connectUpstream, createForwardingServer, createLogger, createRedactor, createSecretResolver, envSecretStore, parseGatewayConfig, REDACTED, type Upstream } from '@agentid/gateway'
// @ts-expect-error: a plain .mjs test fixture
import { startHttpFixture } from '../../../test/fixtures/http-server.mjs'

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url))
const STDIO_SECRET = 'stdio-secret-7f3a9c21'
const HTTP_SECRET = 'http-secret-0b6e44d9'
const dir = mkdtempSync(join(tmpdir(), 'gw-upstream-'))
const callLog = join(dir, 'calls.jsonl')
const lines: string[] = []
const redactor = createRedactor()
const logger = createLogger({ level: 'debug', redactor, write: (l) => lines.push(l) })
const env = { STDIO_SECRET, HTTP_SECRET }
const secrets = createSecretResolver([envSecretStore(env)])
let http: { url: string; requests: { headers: Record<string, unknown> }[]; calls: { tool: string }[]; close(): Promise<void> }
let stdio: Upstream
let remote: Upstream

function config(upstreams: unknown[]) {
  return parseGatewayConfig({ listen: { port: 0 }, agentid: { issuerUrls: ['http://127.0.0.1:1'], trustedIssuers: ['did:key:z6Mk'] }, policyDir: dir, upstreams }, dir)
}

async function agentClient(upstream: Upstream): Promise<Client> {
  const [a, b] = InMemoryTransport.createLinkedPair()
  await createForwardingServer({ upstream, redactor, logger }).connect(b)
  const client = new Client({ name: 'agent', version: '1' })
  await client.connect(a)
  return client
}

const textOf = (r: object) => (r as { content: { text: string }[] }).content[0]!.text
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')
const calls = () => readFileSync(callLog, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l).tool as string)

beforeAll(async () => {
  http = await startHttpFixture({ secret: HTTP_SECRET })
  const c = config([
    { id: 'local', transport: 'stdio', command: process.execPath, args: [join(FIXTURES, 'stdio-server.mjs')], env: { FIXTURE_SECRET: { secret: 'env:STDIO_SECRET' }, FIXTURE_CALL_LOG: callLog } },
    { id: 'remote', transport: 'http', url: http.url, headers: { Authorization: { secret: 'env:HTTP_SECRET', template: 'Bearer {secret}' } } },
  ])
  stdio = await connectUpstream(c.upstreams[0]!, { secrets, redactor, logger })
  remote = await connectUpstream(c.upstreams[1]!, { secrets, redactor, logger })
})

afterAll(async () => {
  await stdio?.close()
  await remote?.close()
  await http?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('upstreams through the forwarding server', () => {
  it('injects the credentials: the stdio child gets its env secret, the HTTP server its bearer header', async () => {
    for (const [upstream, secret] of [[stdio, STDIO_SECRET], [remote, HTTP_SECRET]] as const) {
      const agent = await agentClient(upstream)
      const r = await agent.callTool({ name: 'whoami', arguments: {} })
      const body = JSON.parse((r.content as { text: string }[])[0]!.text)
      expect(body).toMatchObject({ secretArrived: true, secretSha256: sha256(secret) })
      await agent.close()
    }
    expect(http.requests.length).toBeGreaterThan(0)
    for (const r of http.requests) {
      expect(r.headers.authorization).toBe(`Bearer ${HTTP_SECRET}`)
      expect(r.headers.dpop).toBeUndefined()
    }
  })

  it('forwards tools, resources and prompts', async () => {
    const agent = await agentClient(stdio)
    expect(agent.getServerCapabilities()).toMatchObject({ tools: {}, resources: {}, prompts: {} })
    expect((await agent.listTools()).tools.map((t) => t.name)).toEqual(['echo', 'whoami', 'leak_secret', 'fail', 'admin_delete', 'big'])
    expect(await agent.callTool({ name: 'echo', arguments: { text: 'hi' } })).toMatchObject({ content: [{ type: 'text', text: 'stdio:hi' }] })
    expect((await agent.listResources()).resources.map((r) => r.uri)).toEqual(['fixture://stdio/readme'])
    expect(await agent.readResource({ uri: 'fixture://stdio/readme' })).toMatchObject({ contents: [{ text: 'readme of stdio' }] })
    expect(await agent.getPrompt({ name: 'greet', arguments: { name: 'Ada' } })).toMatchObject({ messages: [{ content: { text: 'Hello Ada from stdio' } }] })
    expect(calls()).toEqual(expect.arrayContaining(['echo', 'resource:readme', 'prompt:greet']))
    await agent.close()
  })

  it('redacts the secrets from results, tool errors, JSON-RPC errors and upstream stderr', async () => {
    for (const [upstream, secret] of [[stdio, STDIO_SECRET], [remote, HTTP_SECRET]] as const) {
      const agent = await agentClient(upstream)
      const leak = await agent.callTool({ name: 'leak_secret', arguments: {} })
      expect(JSON.stringify(leak)).not.toContain(secret)
      expect((leak.content as { text: string }[])[0]!.text).toBe(`my credential is ${REDACTED}`)
      expect(leak.structuredContent).toEqual({ credential: REDACTED })
      const fail = await agent.callTool({ name: 'fail', arguments: {} })
      expect(fail.isError).toBe(true)
      expect(JSON.stringify(fail)).not.toContain(secret)
      const bad = await agent.readResource({ uri: `fixture://${secret}` }).catch((e: unknown) => e)
      expect(bad).toBeInstanceOf(Error)
      expect(String((bad as Error).message)).not.toContain(secret)
      expect(String((bad as Error).message)).toContain(REDACTED)
      await agent.close()
    }
    expect(lines.some((l) => l.includes('upstream stderr') && l.includes(REDACTED))).toBe(true)
    for (const l of lines) {
      expect(l).not.toContain(STDIO_SECRET)
      expect(l).not.toContain(HTTP_SECRET)
    }
  })

  it('a missing secret fails at connect time, naming the upstream, the field and the reference', async () => {
    const c = config([{ id: 'broken', transport: 'http', url: http.url, headers: { Authorization: { secret: 'env:NOT_THERE', template: 'Bearer {secret}' } } }])
    await expect(connectUpstream(c.upstreams[0]!, { secrets, redactor, logger })).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
      details: { reason: 'secret-unavailable', upstream: 'broken', field: 'headers.Authorization', secret: 'env:NOT_THERE' },
    })
  })

  it('a wrong credential or an unreachable upstream is ERR_UNAVAILABLE upstream-unavailable, without the secret', async () => {
    const wrong = createSecretResolver([envSecretStore({ W: 'wrong-secret-123' })])
    const c = config([{ id: 'wrong', transport: 'http', url: http.url, headers: { Authorization: { secret: 'env:W', template: 'Bearer {secret}' } } }])
    const error = await connectUpstream(c.upstreams[0]!, { secrets: wrong, redactor, logger }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'ERR_UNAVAILABLE', details: { reason: 'upstream-unavailable', upstream: 'wrong' } })
    expect(String((error as Error).message)).not.toContain('wrong-secret-123')
  })

  it('refuses an upstream answer over 10 MB, and the next call goes through', async () => {
    const agent = await agentClient(remote)
    expect(textOf(await agent.callTool({ name: 'big', arguments: { bytes: 1024 * 1024 } }))).toHaveLength(1024 * 1024)
    const huge = await agent.callTool({ name: 'big', arguments: { bytes: 10 * 1024 * 1024 } }).then(() => null, (e: Error & { code?: number }) => e)
    expect(huge?.code).toBe(-32603)
    expect(lines.some((l) => l.includes('upstream response larger than'))).toBe(true)
    expect(await agent.callTool({ name: 'echo', arguments: { text: 'small' } })).toMatchObject({ content: [{ text: 'http:small' }] })
    await agent.close()
  })

  it('opens a new session when the HTTP upstream restarted and forgot the old one', async () => {
    const port = Number(new URL(http.url).port)
    const agent = await agentClient(remote)
    expect(await agent.callTool({ name: 'echo', arguments: { text: 'one' } })).toMatchObject({ content: [{ text: 'http:one' }] })
    const before = await remote.client()
    await http.close()
    http = await startHttpFixture({ secret: HTTP_SECRET, port })
    expect(await agent.callTool({ name: 'echo', arguments: { text: 'two' } })).toMatchObject({ content: [{ text: 'http:two' }] })
    expect(await remote.client()).not.toBe(before)
    expect(lines.some((l) => l.includes('upstream session expired'))).toBe(true)
    await agent.close()
  })

  it('reconnects a stdio upstream whose process died', async () => {
    const c = config([{ id: 'again', transport: 'stdio', command: process.execPath, args: [join(FIXTURES, 'stdio-server.mjs')], env: { FIXTURE_SECRET: { secret: 'env:STDIO_SECRET' } } }])
    const u = await connectUpstream(c.upstreams[0]!, { secrets, redactor, logger })
    try {
      const first = await u.client()
      await first.close()
      const agent = await agentClient(u)
      expect(await agent.callTool({ name: 'echo', arguments: { text: 'back' } })).toMatchObject({ content: [{ text: 'stdio:back' }] })
      expect(await u.client()).not.toBe(first)
      await agent.close()
    } finally {
      await u.close()
    }
  })
})
