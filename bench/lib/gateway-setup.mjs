// The processes of the `gateway` suite, shared by gateway.mjs (latency at a fixed rate) and
// gateway-cpu.mjs (CPU per call): the built issuer with a registered agent, the upstream fixture MCP
// server (test/fixtures/http-server.mjs, bearer secret) and apps/gateway/dist/main.js (policy folder,
// the secret from a 0600 file, audit lines on), each its own process; a DPoP-bound access token for
// the gateway endpoint obtained once; two SDK Clients of the same class and transport, one straight to
// the upstream, one through the gateway (a DPoP proof per request: the guard refuses a replayed one).
import { spawn as spawnProcess } from 'node:child_process'
import { setMaxListeners } from 'node:events'
import { Agent as HttpAgent, request as httpRequest } from 'node:http'
import { chmodSync, closeSync, fstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { createProofOfPossession, generateEd25519KeyPair, signerFromKeyObject } from '@agentid/core'
import { clientAssertion, dpopKey, dpopProof } from './dpop.mjs'
import { startIssuer, stopIssuer } from './issuer-process.mjs'
import { CLAIMS } from './tokens.mjs'

const root = fileURLToPath(new URL('../..', import.meta.url))

// A pause in V8's --trace-gc line: "Scavenge 5.1 (6.2) -> 4.3 (7.2) MB, 0.85 / 0.00 ms ...".
const GC_PAUSE = /(?:Scavenge|Mark-Compact|Mark-Sweep|Minor Mark-Compact|Minor Mark-Sweep)[^\n]*? MB, ([\d.]+) \/ [\d.]+ ms/g

/**
 * Starts `node --trace-gc <args>` and resolves with the first match of `pattern` in its output.
 * `gcMax(reset)`: its longest GC pause (ms) since the last reset, read off its --trace-gc lines.
 */
function startChild(args, pattern, { env = process.env, stderrFile, wrap = [] } = {}) {
  // `stderrFile`: the child's stderr (the gateway's log and audit lines) goes to that file, as a deployment
  // writes it to a file or a log collector, rather than through a pipe this load generator must drain.
  const errFd = stderrFile === undefined ? 'pipe' : openSync(stderrFile, 'a')
  // `wrap`: a command the child runs under (valgrind): node and its arguments follow it; given minutes to start.
  const command = wrap.length > 0 ? [...wrap, process.execPath, '--trace-gc', ...args] : [process.execPath, '--trace-gc', ...args]
  const child = spawnProcess(command[0], command.slice(1), { env, stdio: ['ignore', 'pipe', errFd] })
  const startMs = wrap.length > 0 ? 600_000 : 30_000
  if (typeof errFd === 'number') closeSync(errFd)
  let tail = ''
  let gcMax = 0
  const found = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start within ${startMs / 1000} s:\n${tail}`)), startMs)
    let done = false
    const onData = (chunk) => {
      for (const m of String(chunk).matchAll(GC_PAUSE)) gcMax = Math.max(gcMax, Number(m[1]))
      tail = (tail + chunk).slice(-20_000) // keep draining the pipe; keep a tail for errors
      const m = done ? null : pattern.exec(tail)
      if (m) {
        done = true
        clearTimeout(timer)
        resolve(m)
      }
    }
    child.stdout.on('data', onData)
    if (stderrFile === undefined) child.stderr.on('data', onData)
    else {
      // Read the file until the pattern shows (or the child exits): startup lines only.
      const poll = setInterval(() => {
        if (done) return clearInterval(poll)
        const m = pattern.exec(readFileSync(stderrFile, 'utf8'))
        if (m) {
          done = true
          clearInterval(poll)
          clearTimeout(timer)
          resolve(m)
        }
      }, 20)
      child.once('exit', () => clearInterval(poll))
    }
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}:\n${stderrFile === undefined ? tail : readFileSync(stderrFile, 'utf8').slice(-20_000)}`)))
  })
  return { child, found, tail: () => (stderrFile === undefined ? tail : readTail(stderrFile)), gcMax: (reset = false) => { const m = gcMax; if (reset) gcMax = 0; return m } }
}

/** The last 20,000 characters of a file. */
function readTail(file) {
  const fd = openSync(file, 'r')
  try {
    const size = fstatSync(fd).size
    const buffer = Buffer.alloc(Math.min(size, 20_000))
    readSync(fd, buffer, 0, buffer.length, size - buffer.length)
    return buffer.toString()
  } finally {
    closeSync(fd)
  }
}

async function stop(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  await new Promise((r) => child.once('exit', r))
}

/**
 * The gateway suite's setup, read from the environment as gateway.mjs reads it: the upstream
 * (BENCH_GATEWAY_UPSTREAM `lean`, default, or `sdk`), the load generator (BENCH_GATEWAY_CLIENT `raw`,
 * default, or `sdk`) and where the gateway's log lines go (BENCH_GATEWAY_LOG `file`, default, or `pipe`).
 * gateway-cpu.mjs and gateway-gc.mjs use it too, so that what they measure is the gateway the suite times.
 */
export function suiteSetup(env = process.env) {
  const upstreamKind = env.BENCH_GATEWAY_UPSTREAM ?? 'lean'
  const client = env.BENCH_GATEWAY_CLIENT ?? 'raw'
  if (client !== 'raw' && client !== 'sdk') throw new Error('BENCH_GATEWAY_CLIENT must be raw or sdk')
  return { upstreamKind, rawClient: client === 'raw', logToFile: env.BENCH_GATEWAY_LOG !== 'pipe' }
}

/**
 * Starts the issuer, the upstream and the gateway (`prof`: a directory for the gateway's and issuer's
 * CPU profiles) and connects both clients. Returns the processes, `cases` (`direct`, `gateway`: call
 * the tool `echo` with argument i and check the answer), `signProofs(n)` (DPoP proofs for the next n
 * gateway POSTs, signed now), `gatewayTail()` and `close()`. `log` gets progress lines.
 * `compare`: { label: path of another build's main.js }: more gateways on the same config, issuer and
 * upstream, each with its own token and client (`cases[label]`): a before/after in one run.
 * `gatewayWrap(label)`: a command each gateway runs under (e.g. valgrind and its options; default none).
 */
export async function startGatewayBench({ prof, log = () => {}, compare = {}, rawClient = false, gatewayFlags = [], upstreamFlags = [], logToFile = false, upstreamKind = 'sdk', gatewayWrap = () => [] } = {}) {
  if (upstreamKind !== 'sdk' && upstreamKind !== 'lean') throw new TypeError('upstreamKind must be sdk or lean')
  // The SDK client transport passes one AbortSignal with every request: when the machine cannot keep up,
  // thousands are in flight on it at once. That is the measurement, not a leak.
  setMaxListeners(0)
  const secret = `bench-upstream-${crypto.randomUUID()}`
  const dataDir = mkdtempSync(join(tmpdir(), 'agentid-bench-gateway-'))
  mkdirSync(join(dataDir, 'issuer'))
  let issuer, upstream, upstreamGcMax
  const gateways = []
  const clients = []
  const close = async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)))
    for (const g of gateways) await stop(g)
    await stop(upstream)
    if (issuer) await stopIssuer(issuer.child)
    rmSync(dataDir, { recursive: true, force: true })
  }
  try {
    // The issuer and an agent with its own did:key, registered; a DPoP-bound token for the gateway endpoint.
    issuer = await startIssuer(join(dataDir, 'issuer'))
    const json = async (path, init) => {
      const res = await fetch(`${issuer.url}${path}`, { ...init, signal: AbortSignal.timeout(10_000) })
      if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`)
      return res.json()
    }
    const orch = await json('/v1/orchestrators', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${issuer.adminKey}` }, body: JSON.stringify({ name: 'bench' }) })
    const issuerDid = (await json('/v1/issuer')).did
    const k = generateEd25519KeyPair()
    const pop = await createProofOfPossession({ signer: signerFromKeyObject(k.privateKey, k.did, k.keyId), audience: issuerDid, purpose: 'spawn', ttlSec: 300 })
    await json('/v1/agents', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${orch.apiKey}` }, body: JSON.stringify({ did: k.did, proof: pop, ...CLAIMS }) })
    const agent = { did: k.did, privateKey: k.privateKey }

    // The upstream: the fixture MCP server in its own process.
    log('starting the upstream and the gateway')
    const upstreamMain = upstreamKind === 'lean' ? join(root, 'bench/lib/lean-upstream.mjs') : join(root, 'test/fixtures/http-server.mjs')
    const up = startChild([...upstreamFlags, upstreamMain, '0', secret], /\{"url":"([^"]+)"\}/)
    upstream = up.child
    const upstreamUrl = (await up.found)[1]
    upstreamGcMax = up.gcMax

    // The gateway: a policy folder allowing the tool, the secret from a 0600 file, audit lines on.
    const gwDir = join(dataDir, 'gateway')
    mkdirSync(join(gwDir, 'policies'), { recursive: true })
    writeFileSync(join(gwDir, 'policies', 'bench.cedar'), [
      '@id("list") permit (principal is AgentId::Agent, action == AgentId::Action::"listTools", resource is AgentId::McpServer);',
      '@id("echo") permit (principal is AgentId::Agent, action == AgentId::Action::"callTool", resource is AgentId::Tool) when { resource.name == "echo" };',
    ].join('\n'))
    writeFileSync(join(gwDir, 'secrets.json'), JSON.stringify({ upstream: secret }))
    chmodSync(join(gwDir, 'secrets.json'), 0o600)
    writeFileSync(join(gwDir, 'gateway.json'), JSON.stringify({
      listen: { host: '127.0.0.1', port: 0 },
      agentid: { issuerUrls: [issuer.url], trustedIssuers: [issuerDid], statusTtlMs: 60_000 },
      policyDir: 'policies',
      secretStores: { file: { path: 'secrets.json' } },
      logLevel: 'warn',
      upstreams: [{ id: 'bench', transport: 'http', url: upstreamUrl, headers: { Authorization: { secret: 'file:upstream', template: 'Bearer {secret}' } } }],
    }))
    const gatewayConfig = join(gwDir, 'gateway.json')
    const connect = async (url, options) => {
      const client = new Client({ name: 'bench', version: '1.0.0' })
      await client.connect(new StreamableHTTPClientTransport(new URL(url), options))
      clients.push(client)
      return client
    }
    const callOf = (client, label) => async (i) => {
      const r = await client.callTool({ name: 'echo', arguments: { text: String(i) } })
      if (r.isError || r.content?.[0]?.text !== `http:${i}`) throw new Error(`${label}: unexpected result ${JSON.stringify(r).slice(0, 200)}`)
    }
    /**
     * The same tools/call as `callOf`, on the session the SDK client opened, sent with node:http (one
     * keep-alive agent per path) and its answer checked the same way. The SDK client and fetch cost the
     * load generator ≈ 3× this CPU per call and collect its garbage in pauses of 5–17 ms that every call
     * in flight waits out, on both paths: the tail measured the client. `headers()`: per-call headers
     * (the gateway's DPoP proof).
     */
    const rawCallOf = (client, url, label, fixed, headers = () => ({})) => {
      const target = new URL(url)
      const agent = new HttpAgent({ keepAlive: true, maxSockets: Infinity })
      const transport = client.transport
      // `fixed`: headers, or a function giving them (the gateway's Authorization changes when its token is renewed).
      let fixedNow
      let base
      return (i) => new Promise((resolve, reject) => {
        const given = typeof fixed === 'function' ? fixed() : fixed
        if (given !== fixedNow) {
          fixedNow = given
          base = { ...given, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': transport.sessionId, 'mcp-protocol-version': transport.protocolVersion }
        }
        const body = `{"jsonrpc":"2.0","id":${i + 1},"method":"tools/call","params":{"name":"echo","arguments":{"text":"${i}"}}}`
        const req = httpRequest({ host: target.hostname, port: target.port, path: target.pathname, method: 'POST', agent, headers: { ...base, ...headers(), 'content-length': Buffer.byteLength(body) } }, (res) => {
          const chunks = []
          res.on('data', (c) => chunks.push(c))
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString()
            let r
            try { r = JSON.parse(text) } catch { r = undefined }
            if (res.statusCode !== 200 || r?.id !== i + 1 || r.result?.isError || r.result?.content?.[0]?.text !== `http:${i}`) reject(new Error(`${label}: unexpected answer ${res.statusCode} ${text.slice(0, 200)}`))
            else resolve()
          })
          res.on('error', reject)
        })
        req.on('error', reject)
        req.end(body)
      })
    }

    /** Starts one gateway process from `main`, gets its token and connects an agent's client to it. */
    const startOne = async (label, main) => {
      const gw = startChild([...gatewayFlags, ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []), main, '--config', gatewayConfig], /"msg":"agentid gateway listening"/, { wrap: gatewayWrap(label), ...(logToFile ? { stderrFile: join(dataDir, `${label}.log`) } : {}) })
      gateways.push(gw.child)
      await gw.found
      const endpoint = JSON.parse(gw.tail().split('\n').find((l) => l.includes('"msg":"agentid gateway listening"'))).endpoints[0]

      // The token (client_credentials + private_key_jwt + DPoP with the issuer's nonce), obtained once.
      const key = dpopKey()
      const tokenUrl = `${issuer.url}/v1/token`
      const tokenRequest = (nonce) => {
        const iat = Math.floor(Date.now() / 1000)
        return fetch(tokenUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: dpopProof(key, { method: 'POST', htu: tokenUrl, iat, nonce }) },
          body: new URLSearchParams({ grant_type: 'client_credentials', client_id: agent.did, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: clientAssertion(agent, { audience: tokenUrl, iat }), resource: endpoint }),
        })
      }
      const obtainToken = async () => {
        const first = await tokenRequest()
        const tokenResponse = first.status === 400 ? await tokenRequest(first.headers.get('dpop-nonce') ?? undefined) : first
        if (tokenResponse.status !== 200) throw new Error(`token refused: ${tokenResponse.status} ${await tokenResponse.text()}`)
        return (await tokenResponse.json()).access_token
      }
      let token = await obtainToken()
      let authorization = { authorization: `DPoP ${token}` }
      /** A new access token (a token lives at most 300 s: a run under valgrind outlasts it); proofs signed after it name it. */
      const renewToken = async () => {
        token = await obtainToken()
        authorization = { authorization: `DPoP ${token}` }
      }

      // Pre-signed DPoP proofs for the gateway's POSTs (one per request); GET/DELETE (rare) signed when sent.
      let proofs = []
      const signProofs = (n) => {
        const iat = Math.floor(Date.now() / 1000)
        proofs = Array.from({ length: n }, () => dpopProof(key, { method: 'POST', htu: endpoint, iat, token }))
      }
      const agentFetch = (url, init = {}) => {
        const headers = new Headers(init.headers)
        const method = init.method ?? 'GET'
        headers.set('authorization', `DPoP ${token}`)
        headers.set('dpop', method === 'POST' && proofs.length ? proofs.pop() : dpopProof(key, { method, htu: endpoint, iat: Math.floor(Date.now() / 1000), token }))
        return fetch(url, { ...init, headers })
      }
      signProofs(64)
      const client = await connect(endpoint, { fetch: agentFetch })
      const call = rawClient
        ? rawCallOf(client, endpoint, label, () => authorization, () => ({ dpop: proofs.length ? proofs.pop() : dpopProof(key, { method: 'POST', htu: endpoint, iat: Math.floor(Date.now() / 1000), token }) }))
        : callOf(client, label)
      return { label, process: gw.child, tail: gw.tail, gcMax: gw.gcMax, signProofs, renewToken, call }
    }

    const started = []
    for (const [label, main] of [['gateway', join(root, 'apps/gateway/dist/main.js')], ...Object.entries(compare)]) started.push(await startOne(label, main))
    const direct = await connect(upstreamUrl, { requestInit: { headers: { authorization: `Bearer ${secret}` } } })
    const ours = started[0]
    return {
      issuer, upstream, gateway: ours.process,
      cases: { direct: rawClient ? rawCallOf(direct, upstreamUrl, 'direct', { authorization: `Bearer ${secret}` }) : callOf(direct, 'direct'), ...Object.fromEntries(started.map((g) => [g.label, g.call])) },
      /** Signs `n` DPoP proofs for each gateway's next POSTs. */
      signProofs: (n) => { for (const g of started) g.signProofs(n) },
      /** A new access token for each gateway's agent (the node:http load generator sends it from the next call). */
      renewTokens: () => Promise.all(started.map((g) => g.renewToken())),
      gatewayTail: ours.tail,
      /** The longest GC pause (ms) of our gateway and of the upstream since the last call (--trace-gc). */
      gcPauses: () => ({ gateway: ours.gcMax(true), upstream: upstreamGcMax(true) }),
      /** Every gateway started: { label, process }. */
      gateways: started.map(({ label, process }) => ({ label, process })),
      close,
    }
  } catch (error) {
    await close()
    throw error
  }
}
