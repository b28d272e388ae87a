// An upstream that shows its credential in another encoding, or where the gateway cuts a log line: the
// agent and the logs must still never see it (the real leaky stdio fixture, the SDK's own Client).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { connectUpstream, createForwardingServer, createLogger, createRedactor, createSecretResolver, envSecretStore, parseGatewayConfig, REDACTED, type Upstream } from '@agentid/gateway'

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url))
const SECRET = 'leaky-secret-5d1c8e07'
const dir = mkdtempSync(join(tmpdir(), 'gw-leaks-'))
const lines: string[] = []
const redactor = createRedactor()
const logger = createLogger({ level: 'debug', redactor, write: (l) => lines.push(l) })
let upstream: Upstream

/** Every form the secret takes in the fixture's answers: none may reach the agent or a log line. */
const b = (s: string) => Buffer.from(s, 'utf8')
const FORMS = [
  SECRET,
  b(SECRET).toString('base64').replace(/=+$/, ''),
  b(`xx${SECRET}`).toString('base64url').slice(3),
  b(SECRET).toString('hex'),
  b(SECRET).toString('hex').toUpperCase(),
  SECRET.slice(0, 6), // the part of the secret before the stderr line's cut
]

function leaked(text: string): string[] {
  const found = FORMS.filter((f) => text.includes(f))
  // Decode every base64 run too: a secret inside a larger base64 blob shows at any byte alignment.
  for (const run of text.match(/[A-Za-z0-9+/_-]{12,}={0,2}/g) ?? []) {
    for (let k = 0; k < 4; k++) {
      const decoded = Buffer.from(run.slice(k), run.includes('-') || run.includes('_') ? 'base64url' : 'base64').toString('latin1')
      if (decoded.includes(SECRET.slice(2, -2))) found.push(`base64:${run}`)
    }
  }
  return found
}

beforeAll(async () => {
  const config = parseGatewayConfig({
    listen: { port: 0 }, agentid: { issuerUrls: ['http://127.0.0.1:1'], trustedIssuers: ['did:key:z6Mk'] }, policyDir: dir,
    upstreams: [{ id: 'leaky', transport: 'stdio', command: process.execPath, args: [join(FIXTURES, 'leaky-stdio-server.mjs')], env: { FIXTURE_SECRET: { secret: 'env:LEAKY_SECRET' } } }],
  }, dir)
  upstream = await connectUpstream(config.upstreams[0]!, { secrets: createSecretResolver([envSecretStore({ LEAKY_SECRET: SECRET })]), redactor, logger })
})

afterAll(async () => {
  await upstream?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('secrets in other encodings', () => {
  it('a tool result with the credential base64 (inside a Basic value), base64url and hex shows none of them', async () => {
    const [a, s] = InMemoryTransport.createLinkedPair()
    await createForwardingServer({ upstream, redactor, logger }).connect(s)
    const agent = new Client({ name: 'agent', version: '1' })
    await agent.connect(a)
    const result = await agent.callTool({ name: 'leak_encoded', arguments: {} })
    const text = JSON.stringify(result)
    expect(text).toContain(REDACTED)
    expect(leaked(text)).toEqual([])
    // A blob with the secret inside is no longer valid base64 once redacted: the SDK client refuses it
    // (fail closed), and neither the answer nor the error carries the secret.
    const resource = await agent.readResource({ uri: 'fixture://leaky/config' }).catch((e: unknown) => e)
    const seen = resource instanceof Error ? `${resource.message} ${JSON.stringify(resource)}` : JSON.stringify(resource)
    expect(leaked(seen)).toEqual([])
    await agent.close()
  })

  it('a stderr line cut where the credential starts logs no part of it', async () => {
    for (let i = 0; i < 100 && !lines.some((l) => l.includes('upstream stderr')); i++) await new Promise((r) => setTimeout(r, 20))
    const stderr = lines.filter((l) => l.includes('upstream stderr'))
    expect(stderr.length).toBeGreaterThan(0)
    for (const l of lines) expect(leaked(l), l.slice(-80)).toEqual([])
  })
})

describe('redactor: encoded secrets at any alignment', () => {
  it('base64, base64url and hex of a secret inside longer data are redacted whatever bytes precede it', () => {
    const r = createRedactor()
    r.add(SECRET)
    for (let pre = 0; pre < 6; pre++) {
      for (const after of ['', 'x', 'yz', '\n-- end --']) {
        const data = b(`${'p'.repeat(pre)}${SECRET}${after}`)
        for (const text of [data.toString('base64'), data.toString('base64url'), data.toString('hex'), data.toString('hex').toUpperCase()]) {
          const out = r.redact(`blob=${text}`)
          expect(out, `${pre} ${after} ${text}`).toContain(REDACTED)
          expect(leaked(out)).toEqual([])
        }
      }
    }
    expect(r.redact('aGVsbG8gd29ybGQ= 68656c6c6f')).toBe('aGVsbG8gd29ybGQ= 68656c6c6f')
  })
})
