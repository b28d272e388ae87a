// Suite "token": access tokens over real HTTP from the real issuer process (SQLite file, WAL,
// synchronous=FULL): client_credentials, private_key_jwt by the agent's did:key, a DPoP proof with
// the server nonce; concurrency 32 for 10 s. Assertions and proofs are signed before timing, so the
// load generator (this process) takes as little CPU from the issuer as it can. See README.md.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createProofOfPossession, decodeJwt, generateEd25519KeyPair, signerFromKeyObject } from '@agentid/core'
import { ACTION_DETAILS, clientAssertion, dpopKey, dpopProof } from './lib/dpop.mjs'
import { cpuSeconds, load, mainThreadCpuSeconds, poster, startIssuer, stopIssuer } from './lib/issuer-process.mjs'
import { progress, report } from './lib/suite.mjs'
import { CLAIMS } from './lib/tokens.mjs'

const CONCURRENCY = 32
const AGENTS = 64
const DURATION_MS = Number(process.env.BENCH_TOKEN_MS ?? 10_000)
const WARMUP = 500
const RESOURCE = 'https://erp.example'
const FORM = 'application/x-www-form-urlencoded'
const log = (m) => progress('token', m)

if (process.env.BENCH_PROF) mkdirSync(process.env.BENCH_PROF, { recursive: true })
const dataDir = mkdtempSync(join(tmpdir(), 'agentid-bench-token-'))
const { child, url, adminKey } = await startIssuer(dataDir)
let result
try {
  const tokenEndpoint = `${url}/v1/token`
  const json = async (path, init) => {
    const res = await fetch(`${url}${path}`, { ...init, signal: AbortSignal.timeout(10_000) })
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`)
    return res.json()
  }
  const orch = await json('/v1/orchestrators', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` }, body: JSON.stringify({ name: 'bench' }) })
  const issuerDid = (await json('/v1/issuer')).did

  // Agents with their own did:key, registered (identity credential issued) before timing; each has a DPoP key.
  log(`registering ${AGENTS} agents`)
  const agents = []
  for (let i = 0; i < AGENTS; i++) {
    const k = generateEd25519KeyPair()
    const proof = await createProofOfPossession({ signer: signerFromKeyObject(k.privateKey, k.did, k.keyId), audience: issuerDid, purpose: 'spawn', ttlSec: 300 })
    await json('/v1/agents', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${orch.apiKey}` }, body: JSON.stringify({ did: k.did, proof, ...CLAIMS }) })
    agents.push({ did: k.did, privateKey: k.privateKey, dpop: dpopKey() })
  }

  const post = poster(url, { concurrency: CONCURRENCY })
  const form = (agent, iat) => new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: agent.did,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: clientAssertion(agent, { audience: tokenEndpoint, iat }),
    resource: RESOURCE,
    authorization_details: JSON.stringify(ACTION_DETAILS),
  }).toString()
  const request = (agent, nonce) => {
    const iat = Math.floor(Date.now() / 1000)
    return { body: form(agent, iat), dpop: dpopProof(agent.dpop, { method: 'POST', htu: tokenEndpoint, iat, nonce }) }
  }
  const send = (r) => post('/v1/token', r.body, { 'content-type': FORM, accept: 'application/json', dpop: r.dpop })

  // The server nonce (RFC 9449 §8), then one token checked: DPoP-bound to the agent's key, for the resource.
  const first = await send(request(agents[0]))
  const nonce = first.headers['dpop-nonce']
  if (first.status !== 400 || JSON.parse(first.body).error !== 'use_dpop_nonce' || !nonce) throw new Error(`expected use_dpop_nonce, got ${first.status} ${first.body}`)
  const sample = await send(request(agents[0], nonce))
  if (sample.status !== 200) throw new Error(`token request refused: ${sample.status} ${sample.body}`)
  const body = JSON.parse(sample.body)
  const claims = decodeJwt(body.access_token).payload
  if (body.token_type !== 'DPoP' || claims.cnf?.jkt !== agents[0].dpop.jkt || claims.aud !== RESOURCE || claims.client_id !== agents[0].did) throw new Error(`unexpected token: ${sample.body}`)

  // Every request distinct (assertion jti, proof jti), signed now: the proofs' iat stays within the issuer's 60 s window.
  const n = Math.ceil((DURATION_MS / 1000) * 4000) + WARMUP
  log(`signing ${n.toLocaleString('en-US')} client assertions and DPoP proofs`)
  const requests = Array.from({ length: n }, (_, i) => request(agents[i % AGENTS], nonce))
  const op = async (i) => {
    const res = await send(requests[i])
    if (res.status !== 200) throw new Error(`HTTP ${res.status} ${res.body.slice(0, 200)}`)
  }
  log(`timing: ${CONCURRENCY} in flight for ${DURATION_MS / 1000} s after a warm-up of ${WARMUP}`)
  await load(op, { concurrency: CONCURRENCY, ms: 2000, max: WARMUP })
  const cpu0 = cpuSeconds(child.pid)
  const main0 = mainThreadCpuSeconds(child.pid)
  const self0 = process.cpuUsage()
  const from = process.hrtime.bigint()
  result = await load((i) => op(i + WARMUP), { concurrency: CONCURRENCY, ms: DURATION_MS, max: n - WARMUP })
  // With BENCH_PROF=<dir>: the timed window on the profiler's clock, for cpuprofile-summary.mjs.
  if (process.env.BENCH_PROF) writeFileSync(join(process.env.BENCH_PROF, 'window.json'), JSON.stringify({ fromUs: Number(from / 1000n), toUs: Number(process.hrtime.bigint() / 1000n), calls: result.done }) + '\n')
  // The issuer's CPU time per token (all its threads): steadier than throughput on a shared machine.
  result.issuerCpuUsPerToken = ((cpuSeconds(child.pid) - cpu0) * 1e6) / result.done
  // Its event loop's share: the thread that bounds the issuer's throughput (1 s / this = its ceiling).
  result.issuerMainThreadCpuUsPerToken = ((mainThreadCpuSeconds(child.pid) - main0) * 1e6) / result.done
  const self = process.cpuUsage(self0)
  result.loadGeneratorCpuUsPerToken = (self.user + self.system) / result.done
  result.exhausted = result.done + result.errors >= n - WARMUP
} finally {
  await stopIssuer(child)
  rmSync(dataDir, { recursive: true, force: true })
}

report({
  suite: 'token',
  title: `POST /v1/token over HTTP: client_credentials + private_key_jwt + DPoP, real issuer process, SQLite file (concurrency ${CONCURRENCY}, ${DURATION_MS / 1000} s; Node ${process.version})`,
  rows: [
    { figure: 'agentid issuer: tokens issued (200)', value: result.opsPerSec, unit: 'ops/s', target: { min: 1000 } },
    { figure: 'agentid issuer: p50 latency', value: result.p50, unit: 'ms' },
    { figure: 'agentid issuer: p99 latency', value: result.p99, unit: 'ms' },
    { figure: 'agentid issuer: errors (not 200)', value: result.errors, unit: 'count' },
    { figure: 'agentid issuer: CPU per token, all threads (µs)', value: Math.round(result.issuerCpuUsPerToken), unit: 'µs' },
    { figure: 'agentid issuer: CPU per token, event loop thread (µs)', value: Math.round(result.issuerMainThreadCpuUsPerToken), unit: 'µs' },
    { figure: 'load generator: CPU per token (µs)', value: Math.round(result.loadGeneratorCpuUsPerToken), unit: 'µs' },
  ],
  notes: [
    `${AGENTS} agents registered with their own did:key (identity credential issued), each with an Ed25519 DPoP key; ${result.done.toLocaleString('en-US')} tokens, every request with a distinct client assertion and proof signed before timing, the proof carrying the server nonce.`,
    'each 200 is answered after the assertion jti and proof jti are spent, the agent re-checked active and the issuance audited in one durable commit (group commit, synchronous=FULL).',
    ...(result.exhausted ? ['the pre-signed requests ran out before the end of the window: the figure is a lower bound'] : []),
    ...(result.firstError ? [`first error: ${result.firstError}`] : []),
  ],
  data: { agentid: result, concurrency: CONCURRENCY, durationMs: DURATION_MS, agents: AGENTS },
})
