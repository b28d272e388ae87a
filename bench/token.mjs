// Suite "token": access tokens over real HTTP from the real issuer process (SQLite file, WAL,
// synchronous=FULL): client_credentials, private_key_jwt by the agent's did:key, a DPoP proof with
// the server nonce; concurrency 32 for 10 s. Beside it, in the same run and driven the same way,
// oidc-provider (oidc-peer.mjs) with the same grant, client authentication and DPoP. Assertions and
// proofs are signed before timing, so the load generator (this process) takes as little CPU from the
// server as it can. See README.md.
import { fork } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
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

/**
 * Drives one token endpoint: asks for the DPoP nonce, checks one token, signs every request of the
 * run (distinct assertion and proof jtis; iat now, within the servers' 60 s windows), then a warm-up
 * and the timed window. `form(agent, iat)` builds the form body; `check(body, agent)` the sample token.
 */
async function drive({ name, url, path, pid, agents, form, check }) {
  const tokenEndpoint = `${url}${path}`
  const post = poster(url, { concurrency: CONCURRENCY })
  const request = (agent, nonce) => {
    const iat = Math.floor(Date.now() / 1000)
    return { body: form(agent, iat, tokenEndpoint), dpop: dpopProof(agent.dpop, { method: 'POST', htu: tokenEndpoint, iat, nonce }) }
  }
  const send = (r) => post(path, r.body, { 'content-type': FORM, accept: 'application/json', dpop: r.dpop })

  const first = await send(request(agents[0]))
  const nonce = first.headers['dpop-nonce']
  if (first.status !== 400 || JSON.parse(first.body).error !== 'use_dpop_nonce' || !nonce) throw new Error(`${name}: expected use_dpop_nonce, got ${first.status} ${first.body}`)
  const sample = await send(request(agents[0], nonce))
  if (sample.status !== 200) throw new Error(`${name}: token request refused: ${sample.status} ${sample.body}`)
  const body = JSON.parse(sample.body)
  const claims = decodeJwt(body.access_token).payload
  if (body.token_type !== 'DPoP' || claims.cnf?.jkt !== agents[0].dpop.jkt || claims.aud !== RESOURCE) throw new Error(`${name}: unexpected token: ${sample.body}`)
  check?.(claims, agents[0])

  const n = Math.ceil((DURATION_MS / 1000) * 4000) + WARMUP
  log(`${name}: signing ${n.toLocaleString('en-US')} client assertions and DPoP proofs`)
  const requests = Array.from({ length: n }, (_, i) => request(agents[i % agents.length], nonce))
  const op = async (i) => {
    const res = await send(requests[i])
    if (res.status !== 200) throw new Error(`HTTP ${res.status} ${res.body.slice(0, 200)}`)
  }
  log(`${name}: timing, ${CONCURRENCY} in flight for ${DURATION_MS / 1000} s after a warm-up of ${WARMUP}`)
  await load(op, { concurrency: CONCURRENCY, ms: 2000, max: WARMUP })
  const cpu0 = cpuSeconds(pid)
  const main0 = mainThreadCpuSeconds(pid)
  const self0 = process.cpuUsage()
  const from = process.hrtime.bigint()
  const result = await load((i) => op(i + WARMUP), { concurrency: CONCURRENCY, ms: DURATION_MS, max: n - WARMUP })
  // With BENCH_PROF=<dir>: the timed window on the profiler's clock, for cpuprofile-summary.mjs.
  if (process.env.BENCH_PROF && name === 'agentid') writeFileSync(join(process.env.BENCH_PROF, 'window.json'), JSON.stringify({ fromUs: Number(from / 1000n), toUs: Number(process.hrtime.bigint() / 1000n), calls: result.done }) + '\n')
  // The server's CPU time per token (all its threads): steadier than throughput on a shared machine;
  // and its event loop's share, the thread that bounds its throughput (1 s / this = its ceiling).
  result.serverCpuUsPerToken = ((cpuSeconds(pid) - cpu0) * 1e6) / result.done
  result.serverMainThreadCpuUsPerToken = ((mainThreadCpuSeconds(pid) - main0) * 1e6) / result.done
  const self = process.cpuUsage(self0)
  result.loadGeneratorCpuUsPerToken = (self.user + self.system) / result.done
  result.exhausted = result.done + result.errors >= n - WARMUP
  return result
}

const assertionForm = (extra) => (agent, iat, audience) => new URLSearchParams({
  grant_type: 'client_credentials',
  client_id: agent.clientId,
  client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
  client_assertion: clientAssertion({ did: agent.clientId, privateKey: agent.privateKey }, { audience, iat }),
  resource: RESOURCE,
  ...extra,
}).toString()

// Agents with their own did:key, each with an Ed25519 DPoP key; the same keys for both servers.
const agents = Array.from({ length: AGENTS }, () => {
  const k = generateEd25519KeyPair()
  return { did: k.did, keyId: k.keyId, clientId: k.did, privateKey: k.privateKey, publicJwk: k.publicJwk, dpop: dpopKey() }
})

async function agentid() {
  if (process.env.BENCH_PROF) mkdirSync(process.env.BENCH_PROF, { recursive: true })
  const dataDir = mkdtempSync(join(tmpdir(), 'agentid-bench-token-'))
  const { child, url, adminKey } = await startIssuer(dataDir)
  try {
    const json = async (path, init) => {
      const res = await fetch(`${url}${path}`, { ...init, signal: AbortSignal.timeout(10_000) })
      if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${await res.text()}`)
      return res.json()
    }
    const orch = await json('/v1/orchestrators', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` }, body: JSON.stringify({ name: 'bench' }) })
    const issuerDid = (await json('/v1/issuer')).did
    log(`agentid: registering ${AGENTS} agents`)
    for (const a of agents) {
      const proof = await createProofOfPossession({ signer: signerFromKeyObject(a.privateKey, a.did, a.keyId), audience: issuerDid, purpose: 'spawn', ttlSec: 300 })
      await json('/v1/agents', { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${orch.apiKey}` }, body: JSON.stringify({ did: a.did, proof, ...CLAIMS }) })
    }
    return await drive({
      name: 'agentid', url, path: '/v1/token', pid: child.pid, agents,
      form: assertionForm({ authorization_details: JSON.stringify(ACTION_DETAILS) }),
      check: (claims, agent) => {
        if (claims.client_id !== agent.did || claims.iss !== issuerDid) throw new Error('agentid: the token names another client or issuer')
      },
    })
  } finally {
    await stopIssuer(child)
    rmSync(dataDir, { recursive: true, force: true })
  }
}

async function oidcProvider() {
  const child = fork(fileURLToPath(new URL('./oidc-peer.mjs', import.meta.url)), [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
  child.stderr.on('data', (chunk) => { if (!/Unsupported runtime|in-memory adapter is used/.test(chunk)) process.stderr.write(chunk) })
  try {
    const ready = new Promise((resolve, reject) => {
      child.once('message', resolve)
      child.once('exit', (code) => reject(new Error(`oidc-provider exited with ${code}`)))
    })
    child.send({ clients: agents.map((a) => ({ clientId: a.clientId, jwk: a.publicJwk })), resource: RESOURCE })
    const { url } = await ready
    return await drive({ name: 'oidc-provider', url, path: '/token', pid: child.pid, agents, form: assertionForm({ scope: 'read' }) })
  } finally {
    child.send('stop')
    if (child.exitCode === null) await new Promise((r) => child.once('exit', r))
  }
}

const ours = await agentid()
let peer
try {
  peer = await oidcProvider()
} catch (error) {
  log(`oidc-provider peer failed: ${error.message}`)
}

const rows = (label, r, target) => [
  { figure: `${label}: tokens issued (200)`, value: r.opsPerSec, unit: 'ops/s', ...(target ? { target: { min: 1000 } } : {}) },
  { figure: `${label}: p50 latency`, value: r.p50, unit: 'ms' },
  { figure: `${label}: p99 latency`, value: r.p99, unit: 'ms' },
  { figure: `${label}: errors (not 200)`, value: r.errors, unit: 'count' },
  { figure: `${label}: server CPU per token, all threads`, value: Math.round(r.serverCpuUsPerToken), unit: 'µs' },
  { figure: `${label}: server CPU per token, event loop thread`, value: Math.round(r.serverMainThreadCpuUsPerToken), unit: 'µs' },
  { figure: `${label}: load generator CPU per token`, value: Math.round(r.loadGeneratorCpuUsPerToken), unit: 'µs' },
]
report({
  suite: 'token',
  title: `POST token endpoint over HTTP: client_credentials + private_key_jwt + DPoP (concurrency ${CONCURRENCY}, ${DURATION_MS / 1000} s each; Node ${process.version})`,
  rows: [
    ...rows('agentid issuer', ours, true),
    ...(peer ? rows('oidc-provider (peer)', peer, false) : []),
    ...(peer ? [
      { figure: 'agentid / oidc-provider tokens/s', value: ours.opsPerSec / peer.opsPerSec, unit: 'x' },
      // CPU per token drifts less than throughput on a shared machine (the two run one after the other).
      { figure: 'oidc-provider / agentid server CPU per token', value: peer.serverCpuUsPerToken / ours.serverCpuUsPerToken, unit: 'x' },
    ] : []),
  ],
  notes: [
    `${AGENTS} agents with their own did:key, each with an Ed25519 DPoP key, the same for both servers; every request has a distinct client assertion (EdDSA) and DPoP proof (EdDSA, server nonce) signed before timing.`,
    'agentid: the built issuer process on a fresh SQLite file (WAL, synchronous=FULL), agents registered first (identity credential issued); each 200 follows checks of the agent (active, unrevoked identity credential), the agentid_action authorization_details against its credential, and one durable commit spending both jtis and auditing the issuance.',
    ...(peer
      ? ['oidc-provider 9 (its own process): clients registered in its configuration with their public JWK, DPoP nonces required, JWT access tokens (EdDSA) for the resource (RFC 8707) with scope read; its default in-memory adapter: no disk write per token (replay detection of jtis in memory).']
      : ['oidc-provider peer: not measured (see the log)']),
    ...(ours.exhausted ? ['agentid: the pre-signed requests ran out before the end of the window: its figure is a lower bound'] : []),
    ...(ours.firstError ? [`agentid first error: ${ours.firstError}`] : []),
    ...(peer?.firstError ? [`oidc-provider first error: ${peer.firstError}`] : []),
  ],
  data: { agentid: ours, oidcProvider: peer ?? null, concurrency: CONCURRENCY, durationMs: DURATION_MS, agents: AGENTS },
})
