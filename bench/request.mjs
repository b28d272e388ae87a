// Suite "request": verifyRequest at a resource server — a DPoP-bound access token already verified
// and cached, a fresh DPoP proof checked on every request — beside raw node:crypto Ed25519 verify and a
// plain jose resource server (jwtVerify of the token + a DPoP check done with jose alone), measured in
// the same run. See README.md for each figure.
import { verify as cryptoVerify } from 'node:crypto'
import { calculateJwkThumbprint, EmbeddedJWK, importJWK, jwtVerify } from 'jose'
import { createMemoryReplayCache, createVerifier } from '@agentid/verifier'
import { accessToken, athOf, dpopKey, dpopProof } from './lib/dpop.mjs'
import { measureInterleaved, median, round } from './lib/measure.mjs'
import { progress, report } from './lib/suite.mjs'
import { keyFromLabel, localFetch, statusListJwt } from './lib/tokens.mjs'

const ROUNDS = 7
const MIN_MS = 1000
const WARMUP_MS = 500
const RESOURCE = 'https://erp.example'
const URL_ = 'https://erp.example/mcp/tools/invoices.read'
const log = (m) => progress('request', m)

const now = Math.floor(Date.now() / 1000)
const issuer = keyFromLabel('issuer')
const agent = keyFromLabel('agent-0')
const key = dpopKey()
const token = accessToken(issuer, { agentDid: agent.did, jkt: key.jkt, resource: RESOURCE, now })
const headersFor = (proof) => ({ authorization: `DPoP ${token}`, dpop: proof })
// Each proof issued when it is signed: the last rounds stay well inside the 60 s + skew acceptance window.
const sign = (n) => Array.from({ length: n }, () => dpopProof(key, { method: 'GET', htu: URL_, iat: Math.floor(Date.now() / 1000), token }))

// Every proof is accepted once (jti): each case takes the next of its own pool and none is reused. The
// replay cache holds every proof of the run (the default 100,000 would refuse new proofs once full).
const verifier = createVerifier({
  trustedIssuers: [issuer.did],
  resourceAudience: RESOURCE,
  fetch: localFetch(statusListJwt(issuer, now)),
  statusTtlMs: 3_600_000,
  replayCache: createMemoryReplayCache({ maxEntries: 4_000_000 }),
})

// The plain jose resource server: verifies the token (no cache), then the proof with jose alone.
const issuerKey = await importJWK({ ...issuer.publicJwk, alg: 'EdDSA' }, 'EdDSA')
const seen = new Map()
async function joseServer(request) {
  const auth = request.headers.authorization
  if (!auth.startsWith('DPoP ')) throw new Error('not DPoP')
  const at = auth.slice(5)
  const { payload: claims } = await jwtVerify(at, issuerKey, { issuer: issuer.did, audience: RESOURCE, typ: 'at+jwt', algorithms: ['EdDSA'], maxTokenAge: 300 })
  const { payload, protectedHeader } = await jwtVerify(request.headers.dpop, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['EdDSA', 'ES256'], maxTokenAge: 120, clockTolerance: 60 })
  if (payload.htm !== request.method || payload.htu !== request.url.split(/[?#]/)[0]) throw new Error('htm/htu')
  if (payload.ath !== athOf(at)) throw new Error('ath')
  if ((await calculateJwkThumbprint(protectedHeader.jwk, 'sha256')) !== claims.cnf?.jkt) throw new Error('jkt')
  if (typeof payload.jti !== 'string' || seen.has(payload.jti)) throw new Error('replay')
  seen.set(payload.jti, payload.iat + 180)
  return claims
}

// The same proof's bytes for raw node:crypto.
const sample = sign(1)[0]
const dot = sample.lastIndexOf('.')
const signingInput = Buffer.from(sample.slice(0, dot), 'ascii')
const signature = Buffer.from(sample.slice(dot + 1), 'base64url')
if (!cryptoVerify(null, signingInput, key.publicKey, signature)) throw new Error('raw verify setup is wrong')

// Both request checks accept a good request and refuse its replay before timing.
for (const check of [(r) => verifier.verifyRequest(r), joseServer]) {
  const request = { method: 'GET', url: URL_, headers: headersFor(sign(1)[0]) }
  const ok = await check(request)
  if (!ok) throw new Error('setup: request refused')
  if (await check(request).then(() => true, () => false)) throw new Error('setup: replayed proof accepted')
}

// Each case takes the next proof of its own pool. Before its warm-up (sized from a short calibration)
// and before each round (sized from its last figure), untimed, the pool is topped up with fresh proofs:
// three times what a round at that rate uses, so a machine that speeds up between rounds has enough.
function pooled() {
  let proofs = []
  let next = 0
  let used = 0
  return {
    next() {
      if (next >= proofs.length) throw new Error('proof pool exhausted')
      used++
      return { method: 'GET', url: URL_, headers: headersFor(proofs[next++]) }
    },
    topUp(count) {
      proofs = proofs.slice(next)
      next = 0
      if (proofs.length < count) proofs = proofs.concat(sign(count - proofs.length))
    },
    get used() { return used },
  }
}
const calibrate = async (check) => {
  const pool = pooled()
  pool.topUp(4000)
  // A pool used up within 150 ms means more than 4000 / 0.15 s: size from that floor.
  return round(() => check(pool.next()), { minMs: 150, batch: 64 }).catch((error) => {
    if (error.message === 'proof pool exhausted') return 4000 / 0.15
    throw error
  })
}
const calibrated = { agentid: await calibrate((r) => verifier.verifyRequest(r)), jose: await calibrate(joseServer) }
const pools = { agentid: pooled(), jose: pooled() }
const before = (pool, calibratedRate) => (last) => {
  const ms = last === 0 ? WARMUP_MS : MIN_MS
  pool.topUp(Math.ceil(((last || calibratedRate) * ms) / 1000 * 3) + 2048)
}
log(`calibrated ${Math.round(calibrated.agentid)} and ${Math.round(calibrated.jose)} requests/s`)

log(`timing: ${ROUNDS} interleaved rounds of ≥ 1 s per case after a 0.5 s warm-up`)
const r = await measureInterleaved({
  raw: { fn: () => cryptoVerify(null, signingInput, key.publicKey, signature), sync: true },
  verifyRequest: { fn: () => verifier.verifyRequest(pools.agentid.next()), before: before(pools.agentid, calibrated.agentid) },
  jose: { fn: () => joseServer(pools.jose.next()), before: before(pools.jose, calibrated.jose) },
}, { rounds: ROUNDS, minMs: MIN_MS, warmupMs: WARMUP_MS, alternate: true, log })

// The ratios are paired: within each round (the cases ran back to back, in alternating order), then
// the median over rounds, so that a load spike on a shared machine does not land on one case only.
const paired = (a, b) => r[a].rounds.map((x, i) => x / r[b].rounds[i])
const perRound = { raw: paired('verifyRequest', 'raw'), jose: paired('verifyRequest', 'jose') }

const n = (k) => r[k].median
report({
  suite: 'request',
  title: `verifyRequest: cached DPoP-bound token, fresh proof per request (one process; median of ${ROUNDS} interleaved rounds ≥ 1 s; Node ${process.version})`,
  rows: [
    { figure: 'node:crypto Ed25519 verify (raw, one proof\'s signing input)', value: n('raw'), unit: 'ops/s' },
    { figure: 'verifyRequest (token cached, proof checked)', value: n('verifyRequest'), unit: 'ops/s' },
    { figure: 'plain jose resource server (jwtVerify token + DPoP with jose)', value: n('jose'), unit: 'ops/s' },
    { figure: 'verifyRequest / raw node:crypto (median of per-round ratios)', value: median(perRound.raw), unit: 'x', target: { min: 0.5 } },
    { figure: 'verifyRequest / plain jose (median of per-round ratios)', value: median(perRound.jose), unit: 'x' },
  ],
  notes: [
    `every request carries a distinct, pre-signed proof (jti): ${pools.agentid.used.toLocaleString('en-US')} verifyRequest and ${pools.jose.used.toLocaleString('en-US')} jose calls, none refused; a replay is refused by both before timing.`,
    'verifyRequest: Authorization/DPoP headers, token cache hit by SHA-256 (exp, iat, aud re-checked), then RFC 9449 proof checks: typ, alg, public jwk, signature, htm, htu, iat, ath, jkt = cnf.jkt, jti (memory replay cache, maxEntries 4,000,000).',
    `per-round verifyRequest / raw: ${perRound.raw.map((x) => x.toFixed(2)).join(', ')}; / jose: ${perRound.jose.map((x) => x.toFixed(2)).join(', ')}.`,
    'plain jose: jwtVerify of the access token on every request (jose has no token cache: two signatures per request), jwtVerify with EmbeddedJWK for the proof, htm, htu, ath, calculateJwkThumbprint = cnf.jkt, jti in a Map.',
  ],
  data: { rounds: r, perRoundRatio: perRound, calibrated },
})
