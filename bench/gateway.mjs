// Suite "gateway": per-call overhead of agentid-gateway over a direct call to the same upstream.
// The upstream is the Streamable HTTP fixture server (test/fixtures/http-server.mjs, its own process,
// bearer secret); the gateway is apps/gateway/dist/main.js (its own process) with a real policy folder
// and the real issuer (status list fetched and cached as in production). One SDK Client per path, the
// same Client class and transport, the same tool (`echo`), at a fixed rate of RATE calls/s (open loop:
// calls start on schedule whether or not earlier ones finished) in interleaved rounds. The access token
// is obtained before timing and the DPoP proofs (one per request, as the guard requires) are signed
// before each round. Overhead = gateway − direct, at p50 and at p99. See README.md.
import { spawn as spawnProcess } from 'node:child_process'
import { setMaxListeners } from 'node:events'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { createProofOfPossession, generateEd25519KeyPair, signerFromKeyObject } from '@agentid/core'
import { clientAssertion, dpopKey, dpopProof } from './lib/dpop.mjs'
import { cpuSeconds, percentile, startIssuer, stopIssuer } from './lib/issuer-process.mjs'
import { progress, report } from './lib/suite.mjs'
import { cv } from './lib/measure.mjs'
import { CLAIMS } from './lib/tokens.mjs'

const RATE = Number(process.env.BENCH_GATEWAY_RATE ?? 500)
const DURATION_MS = Number(process.env.BENCH_GATEWAY_MS ?? 10_000) // per path
const ROUNDS = 5
const WARMUP_MS = 1500
const SECRET = `bench-upstream-${crypto.randomUUID()}`
const root = fileURLToPath(new URL('..', import.meta.url))
const log = (m) => progress('gateway', m)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Starts `node <args>` and resolves with the first match of `pattern` in its output. */
function startChild(args, pattern, { env = process.env } = {}) {
  const child = spawnProcess(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let tail = ''
  const found = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not start within 30 s:\n${tail}`)), 30_000)
    let done = false
    const onData = (chunk) => {
      tail = (tail + chunk).slice(-20_000) // keep draining the pipe; keep a tail for errors
      const m = done ? null : pattern.exec(tail)
      if (m) {
        done = true
        clearTimeout(timer)
        resolve(m)
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}:\n${tail}`)))
  })
  return { child, found, tail: () => tail }
}

async function stop(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  await new Promise((r) => child.once('exit', r))
}

/** Calls `call` RATE times a second for `ms` (open loop); latencies in ms from each call's start. */
async function phase(call, ms) {
  const n = Math.round((ms * RATE) / 1000)
  const interval = 1000 / RATE
  const latencies = []
  const inflight = []
  let errors = 0
  let firstError
  const t0 = performance.now()
  for (let i = 0; i < n; i++) {
    const wait = t0 + i * interval - performance.now()
    if (wait >= 1) await sleep(wait)
    const start = performance.now()
    inflight.push(call(i).then(
      () => void latencies.push(performance.now() - start),
      (e) => { errors++; firstError ??= e },
    ))
  }
  await Promise.all(inflight)
  const elapsed = (performance.now() - t0) / 1000
  return { latencies, errors, firstError, rate: n / elapsed }
}

// The SDK client transport passes one AbortSignal with every request: when the machine cannot keep up,
// thousands are in flight on it at once. That is the measurement, not a leak.
setMaxListeners(0)
const dataDir = mkdtempSync(join(tmpdir(), 'agentid-bench-gateway-'))
mkdirSync(join(dataDir, 'issuer'))
let issuer, upstream, gateway
const clients = []
let result
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
  const up = startChild([join(root, 'test/fixtures/http-server.mjs'), '0', SECRET], /\{"url":"([^"]+)"\}/)
  upstream = up.child
  const upstreamUrl = (await up.found)[1]

  // The gateway: a policy folder allowing the tool, the secret from a 0600 file, audit lines on.
  const gwDir = join(dataDir, 'gateway')
  mkdirSync(join(gwDir, 'policies'), { recursive: true })
  writeFileSync(join(gwDir, 'policies', 'bench.cedar'), [
    '@id("list") permit (principal is AgentId::Agent, action == AgentId::Action::"listTools", resource is AgentId::McpServer);',
    '@id("echo") permit (principal is AgentId::Agent, action == AgentId::Action::"callTool", resource is AgentId::Tool) when { resource.name == "echo" };',
  ].join('\n'))
  writeFileSync(join(gwDir, 'secrets.json'), JSON.stringify({ upstream: SECRET }))
  chmodSync(join(gwDir, 'secrets.json'), 0o600)
  writeFileSync(join(gwDir, 'gateway.json'), JSON.stringify({
    listen: { host: '127.0.0.1', port: 0 },
    agentid: { issuerUrls: [issuer.url], trustedIssuers: [issuerDid], statusTtlMs: 60_000 },
    policyDir: 'policies',
    secretStores: { file: { path: 'secrets.json' } },
    logLevel: 'warn',
    upstreams: [{ id: 'bench', transport: 'http', url: upstreamUrl, headers: { Authorization: { secret: 'file:upstream', template: 'Bearer {secret}' } } }],
  }))
  const gw = startChild([...(process.env.BENCH_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROF}`] : []), join(root, 'apps/gateway/dist/main.js'), '--config', join(gwDir, 'gateway.json')], /"msg":"agentid gateway listening"/)
  gateway = gw.child
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
  const first = await tokenRequest()
  const tokenResponse = first.status === 400 ? await tokenRequest(first.headers.get('dpop-nonce') ?? undefined) : first
  if (tokenResponse.status !== 200) throw new Error(`token refused: ${tokenResponse.status} ${await tokenResponse.text()}`)
  const token = (await tokenResponse.json()).access_token

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
  const connect = async (url, options) => {
    const client = new Client({ name: 'bench', version: '1.0.0' })
    await client.connect(new StreamableHTTPClientTransport(new URL(url), options))
    clients.push(client)
    return client
  }
  signProofs(64)
  const viaGateway = await connect(endpoint, { fetch: agentFetch })
  const direct = await connect(upstreamUrl, { requestInit: { headers: { authorization: `Bearer ${SECRET}` } } })
  const callOf = (client, label) => async (i) => {
    const r = await client.callTool({ name: 'echo', arguments: { text: String(i) } })
    if (r.isError || r.content?.[0]?.text !== `http:${i}`) throw new Error(`${label}: unexpected result ${JSON.stringify(r).slice(0, 200)}`)
  }
  const cases = { direct: callOf(direct, 'direct'), gateway: callOf(viaGateway, 'gateway') }

  log(`warm-up: ${WARMUP_MS} ms per path at ${RATE}/s`)
  signProofs(Math.ceil((WARMUP_MS * RATE) / 1000) + 64)
  for (const [name, call] of Object.entries(cases)) {
    const w = await phase(call, WARMUP_MS)
    if (w.errors) throw new Error(`warm-up ${name}: ${w.errors} errors, first: ${w.firstError?.message ?? w.firstError}`)
  }

  const all = { direct: [], gateway: [] }
  const rates = { direct: [], gateway: [] }
  const perRound = { direct: [], gateway: [] } // { p50, p99 } of each round
  let errors = 0
  let firstError
  let gatewayCpu = 0
  let gatewaySys = 0
  let upstreamCpu = 0 // during the direct rounds: what one call costs an SDK server, for scale
  const roundMs = DURATION_MS / ROUNDS
  const nowUs = () => Number(process.hrtime.bigint() / 1000n) // the profiler's clock (monotonic µs)
  const window = { fromUs: 0, toUs: 0, calls: 0 }
  log(`timing: ${ROUNDS} interleaved rounds of ${roundMs} ms per path at ${RATE} calls/s`)
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? ['gateway', 'direct'] : ['direct', 'gateway']
    for (const name of order) {
      if (name === 'gateway') signProofs(Math.ceil((roundMs * RATE) / 1000) + 64)
      if (window.fromUs === 0) window.fromUs = nowUs()
      const cpu0 = cpuSeconds(gateway.pid)
      const sys0 = cpuSeconds(gateway.pid, 'system')
      const up0 = cpuSeconds(upstream.pid)
      const p = await phase(cases[name], roundMs)
      if (name === 'gateway') {
        gatewayCpu += cpuSeconds(gateway.pid) - cpu0
        gatewaySys += cpuSeconds(gateway.pid, 'system') - sys0
      }
      else upstreamCpu += cpuSeconds(upstream.pid) - up0
      all[name].push(...p.latencies)
      rates[name].push(p.rate)
      const sorted = [...p.latencies].sort((a, b) => a - b)
      perRound[name].push({ p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) })
      errors += p.errors
      firstError ??= p.firstError
    }
    log(`round ${r + 1}/${ROUNDS} done`)
  }
  window.toUs = nowUs()
  window.calls = all.gateway.length
  if (process.env.BENCH_PROF) {
    // The timed rounds, for `node bench/cpuprofile-summary.mjs <gateway .cpuprofile> <this file>` (µs per gateway call;
    // the direct rounds in between leave the gateway idle).
    writeFileSync(join(process.env.BENCH_PROF, 'gateway-window.json'), `${JSON.stringify(window)}\n`)
  }
  if (errors) {
    const lines = gw.tail().split('\n').filter((l) => /"level":(40|50)/.test(l))
    log(`gateway errors (last warning lines):\n${lines.slice(-5).join('\n')}`)
  }
  const stats = {}
  for (const [name, values] of Object.entries(all)) {
    values.sort((a, b) => a - b)
    stats[name] = { calls: values.length, p50: percentile(values, 0.5), p90: percentile(values, 0.9), p99: percentile(values, 0.99), rate: rates[name].reduce((a, b) => a + b, 0) / rates[name].length }
  }
  const over50 = stats.gateway.p50 - stats.direct.p50
  const over99 = stats.gateway.p99 - stats.direct.p99
  const f3 = (v) => v.toFixed(3)
  // A difference of two latencies means something only when the reference (direct) is steady and
  // both paths kept the rate: on a starved machine the direct path's own p99 can exceed the gateway's
  // (a negative overhead, once printed "met"). Such a run is flagged noisy, with the reason.
  const roundOver = (q) => perRound.gateway.map((g, i) => g[q] - perRound.direct[i][q])
  const noisy = (q) => {
    const over = q === 'p50' ? over50 : over99
    if (!(over > 0)) return `the overhead is not positive (${f3(over)} ms): the direct path was slower than the gateway`
    if (errors) return `${errors} calls failed`
    const slow = Object.entries(rates).find(([, r]) => Math.min(...r) < RATE * 0.95)
    if (slow) return `the ${slow[0]} path did not keep the rate (${Math.round(Math.min(...slow[1]))}/s of ${RATE}/s in a round)`
    if (roundOver(q).some((x) => !(x > 0))) return `a round's ${q} overhead was not positive (${roundOver(q).map(f3).join(', ')} ms)`
    const c = cv(perRound.direct.map((x) => x[q]))
    if (c > (q === 'p50' ? 0.25 : 0.5)) return `the direct path's per-round ${q} varies by CV ${(c * 100).toFixed(0)} % (${perRound.direct.map((x) => f3(x[q])).join(', ')} ms)`
    if (q === 'p99' && stats.direct.p99 > 10 * stats.direct.p50) return `the direct path's p99 is ${(stats.direct.p99 / stats.direct.p50).toFixed(0)}× its p50: the machine stalled the reference`
    return null
  }
  const noisy50 = noisy('p50')
  const noisy99 = noisy('p99')
  result = {
    suite: 'gateway',
    title: `MCP tools/call through agentid-gateway vs direct, same HTTP upstream and tool, ${RATE} calls/s open loop, ${DURATION_MS / 1000} s per path`,
    rows: [
      { figure: 'direct p50', value: stats.direct.p50, unit: 'ms' },
      { figure: 'direct p99', value: stats.direct.p99, unit: 'ms' },
      { figure: 'via gateway p50', value: stats.gateway.p50, unit: 'ms' },
      { figure: 'via gateway p99', value: stats.gateway.p99, unit: 'ms' },
      { figure: 'gateway overhead p50 (gateway − direct)', value: over50 * 1000, unit: 'µs', target: { max: 1000 }, ...(noisy50 ? { noisy: noisy50 } : {}) },
      { figure: 'gateway overhead p99 (gateway − direct)', value: over99 * 1000, unit: 'µs', target: { max: 2000 }, ...(noisy99 ? { noisy: noisy99 } : {}) },
    ],
    notes: [
      `ms to 3 places: direct p50 ${f3(stats.direct.p50)} p90 ${f3(stats.direct.p90)} p99 ${f3(stats.direct.p99)}; gateway p50 ${f3(stats.gateway.p50)} p90 ${f3(stats.gateway.p90)} p99 ${f3(stats.gateway.p99)}; overhead p50 ${f3(over50)} p99 ${f3(over99)}`,
      `per round (ms): direct p50 ${perRound.direct.map((x) => f3(x.p50)).join(', ')}, p99 ${perRound.direct.map((x) => f3(x.p99)).join(', ')}; gateway p50 ${perRound.gateway.map((x) => f3(x.p50)).join(', ')}, p99 ${perRound.gateway.map((x) => f3(x.p99)).join(', ')}`,
      `calls timed: direct ${stats.direct.calls}, gateway ${stats.gateway.calls}; achieved rate ${Math.round(stats.direct.rate)}/s and ${Math.round(stats.gateway.rate)}/s; errors ${errors}${firstError ? ` (first: ${String(firstError.message ?? firstError).slice(0, 160)})` : ''}`,
      `CPU per call (user + system, /proc): gateway process ${Math.round((gatewayCpu / stats.gateway.calls) * 1e6)} µs (system ${Math.round((gatewaySys / stats.gateway.calls) * 1e6)}); upstream process on a direct call ${Math.round((upstreamCpu / stats.direct.calls) * 1e6)} µs`,
      'client, upstream and gateway share this machine; each call: DPoP-bound token + fresh proof verified, status list (cached), Cedar decision, audit line, forward over the gateway\'s upstream session',
    ],
    data: { rate: RATE, durationMs: DURATION_MS, rounds: ROUNDS, stats, perRound, noisy: { p50: noisy50, p99: noisy99 }, overhead: { p50: over50, p99: over99 }, gatewayCpuPerCallUs: (gatewayCpu / stats.gateway.calls) * 1e6, upstreamCpuPerDirectCallUs: (upstreamCpu / stats.direct.calls) * 1e6, errors },
  }
} finally {
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)))
  await stop(gateway)
  await stop(upstream)
  if (issuer) await stopIssuer(issuer.child)
  rmSync(dataDir, { recursive: true, force: true })
}
report(result)
