// Suite "di": verification of a Data Integrity (eddsa-rdfc-2022) agent credential, beside plain
// @digitalbazaar/vc on the same credentials, and the import cost of the lazily loaded JSON-LD stack.
// See README.md for each figure.
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { createVerifier } from '@agentid/verifier'
import { diIssuer, issueDi, plainVerify } from './lib/di.mjs'
import { measureInterleaved, median, noisyReason } from './lib/measure.mjs'
import { progress, report } from './lib/suite.mjs'
import { agentDids, keyFromLabel, localFetch, nthCredential, statusListJwt } from './lib/tokens.mjs'

const ROUNDS = 7
const POOL = 300
const CHILD_RUNS = 5
const log = (m) => progress('di', m)
const here = (f) => fileURLToPath(new URL(f, import.meta.url))

const now = Math.floor(Date.now() / 1000)
const issuer = keyFromLabel('issuer')
const di = await diIssuer('issuer')
if (di.did !== issuer.did) throw new Error('the DI issuer and the JWT issuer name different DIDs')
const listJwt = statusListJwt(issuer, now)

log(`issuing ${POOL} distinct DI credentials with plain @digitalbazaar/vc`)
const dids = agentDids(POOL + 1)
const t0 = performance.now()
const pool = []
for (let i = 0; i < POOL; i++) pool.push(await issueDi(di, { sub: dids[i + 1], i: i + 1, now }))
const same = await issueDi(di, { sub: dids[0], i: 0, now })
const issueMs = performance.now() - t0
log(`issued in ${(issueMs / 1000).toFixed(1)} s`)

// Cold: memoSize 1 and a pool of 300 credentials cycled in turn, so every call misses the memo.
// The status list and the issuer DID are cached first (as in a running service), on `same`.
const opts = { trustedIssuers: [issuer.did], fetch: localFetch(listJwt), statusTtlMs: 3_600_000 }
const coldVerifier = createVerifier({ ...opts, memoSize: 1 })
const warmVerifier = createVerifier(opts)
await coldVerifier.verifyAgentCredential(same)
await warmVerifier.verifyAgentCredential(same)
for (const c of [same, pool[0], pool[POOL - 1]]) {
  const r = await plainVerify(c)
  if (!r.verified) throw new Error(`plain @digitalbazaar/vc does not verify the credential: ${r.error}`)
  if ((await coldVerifier.verifyAgentCredential(c)).issuer !== issuer.did) throw new Error('verifier setup is wrong')
}
let nextOurs = 0
let nextPlain = 0
let plainFailed = 0

log(`timing: ${ROUNDS} interleaved rounds of ≥ 1 s per case after a 0.5 s warm-up`)
const r = await measureInterleaved({
  cold: { fn: () => coldVerifier.verifyAgentCredential(pool[nextOurs++ % POOL]), batch: 8 },
  plain: { fn: async () => { if (!(await plainVerify(pool[nextPlain++ % POOL])).verified) plainFailed++ }, batch: 8 },
  warm: { fn: () => warmVerifier.verifyAgentCredential(same), batch: 1024 },
}, { rounds: ROUNDS, alternate: true, log })
if (plainFailed) throw new Error(`plain @digitalbazaar/vc failed ${plainFailed} verifications`)

// Import cost: fresh child processes, JWT only vs JWT + DI, interleaved; medians.
log(`import cost: ${CHILD_RUNS} × 2 child processes`)
const dir = mkdtempSync(join(tmpdir(), 'agentid-bench-di-'))
const input = join(dir, 'input.json')
writeFileSync(input, JSON.stringify({ issuer: issuer.did, now, listJwt, jwt: nthCredential(issuer, dids, 0, now), di: same }))
const child = async (...args) => {
  const { stdout } = await promisify(execFile)(process.execPath, [here('import-cost.mjs'), '--input', input, ...args])
  return JSON.parse(stdout.trim().split('\n').pop())
}
const runs = { jwt: [], di: [] }
try {
  for (let i = 0; i < CHILD_RUNS; i++) {
    runs.jwt.push(await child())
    runs.di.push(await child('--di'))
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}
const med = (k, f) => median(runs[k].map((x) => x[f]))
const imp = {
  jwtMs: med('jwt', 'totalMs'),
  diMs: med('di', 'totalMs'),
  jwtRss: med('jwt', 'maxRssMB'),
  diRss: med('di', 'maxRssMB'),
  importMs: med('jwt', 'importMs'),
  firstDiMs: med('di', 'diMs'),
}

const n = (k) => r[k].median
// The ratio is paired: cold / plain within each round (the two ran back to back), then the median,
// which drift of a shared machine between rounds does not move.
const perRound = r.cold.rounds.map((c, i) => c / r.plain.rounds[i])
const ratio = median(perRound)
const noisy = noisyReason({ 'cold / plain per round': perRound })
// The same ratio in CPU time per verification (process.cpuUsage around each round: plain's µs ÷ ours),
// which a shared machine moves far less than wall time (a process waiting for a core uses none).
const cpuPerRound = r.cold.cpuRounds.map((c, i) => r.plain.cpuRounds[i] / c)
const cpuRatio = median(cpuPerRound)
const cpuNoisy = noisyReason({ 'cold / plain per round, CPU time': cpuPerRound })
report({
  suite: 'di',
  title: `verify a Data Integrity (eddsa-rdfc-2022) agent credential (one process; median of ${ROUNDS} rounds ≥ 1 s; Node ${process.version})`,
  rows: [
    { figure: 'verifyAgentCredential DI cold (new credential per call)', value: n('cold'), unit: 'ops/s' },
    { figure: '@digitalbazaar/vc verifyCredential (same credentials)', value: n('plain'), unit: 'ops/s' },
    { figure: 'verifyAgentCredential DI warm (same credential again)', value: n('warm'), unit: 'ops/s', target: { min: 50_000 } },
    { figure: 'cold / plain @digitalbazaar/vc (median of per-round ratios)', value: ratio, unit: 'x', target: { min: 1.0 }, ...(noisy ? { noisy } : {}) },
    { figure: 'cold / plain @digitalbazaar/vc, CPU time (plain µs ÷ ours per round, median)', value: cpuRatio, unit: 'x', target: { min: 1.0 }, ...(cpuNoisy ? { noisy: cpuNoisy } : {}) },
    { figure: 'fresh process: import + 1 JWT verify', value: imp.jwtMs, unit: 'ms' },
    { figure: 'fresh process: import + 1 JWT + 1 DI verify', value: imp.diMs, unit: 'ms' },
    { figure: 'difference (the JSON-LD stack + first DI verify)', value: imp.diMs - imp.jwtMs, unit: 'ms' },
    { figure: 'peak RSS: import + 1 JWT verify', value: imp.jwtRss, unit: 'MB' },
    { figure: 'peak RSS: import + 1 JWT + 1 DI verify', value: imp.diRss, unit: 'MB' },
    { figure: 'peak RSS difference', value: imp.diRss - imp.jwtRss, unit: 'MB' },
  ],
  notes: [
    `cold: ${nextOurs.toLocaleString('en-US')} calls cycling over ${POOL} distinct credentials (issued in ${(issueMs / 1000).toFixed(1)} s) with memoSize 1: every call misses; status list and issuer DID cached. Plain @digitalbazaar/vc: same credentials, an equivalent offline loader, a checkStatus that does no work. Per-round cold / plain: ${perRound.map((x) => x.toFixed(2)).join(', ')}.`,
    `CPU µs per verification (all threads) per round: ours ${r.cold.cpuRounds.map((x) => x.toFixed(0)).join(', ')}; plain ${r.plain.cpuRounds.map((x) => x.toFixed(0)).join(', ')}; plain / ours ${cpuPerRound.map((x) => x.toFixed(2)).join(', ')}.`,
    `import cost: median of ${CHILD_RUNS} fresh processes each (import-cost.mjs), timed from before import('@agentid/verifier') (${imp.importMs.toFixed(1)} ms of it) to the last verification; the first DI verification alone takes ${imp.firstDiMs.toFixed(1)} ms.`,
  ],
  data: { rounds: r, perRoundRatio: perRound, cpuPerRoundRatio: cpuPerRound, importCost: { runs, medians: imp }, pool: POOL, issueMs },
})
