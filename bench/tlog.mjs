// tlog suite: what the issuer log costs and how fast it answers (issue 14).
//  1. Spawn throughput with the log (sequencer on) and without it (AGENTID_LOG_SEQUENCER=off), two
//     issuer processes loaded in turn, rounds alternating, ratio per pair of rounds; and, in the rounds
//     with the log, how long after a spawn's 201 a checkpoint covering its entry is served.
//  2. Inclusion proofs in a tree of 10⁶ entries: in process (MerkleTree), and over HTTP from an
//     issuer whose log holds 10⁶ entries (GET /v1/log/proof?index=).
//  3. `agentid audit verify` over HTTP of that 10⁶-entry log: fetch every tile and bundle, recompute
//     every hash, check the checkpoint and every agent's event sequence.
// BENCH_TLOG_MS (per round, default 4,000), BENCH_TLOG_ROUNDS (pairs, default 3), BENCH_TLOG_ENTRIES (10⁶),
// BENCH_TLOG_RATE (spawn requests made per second of round, default 2,000).
import { execFile } from 'node:child_process'
import { createHash, randomUUID } from 'node:crypto'
import http from 'node:http'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { createProofOfPossession, generateEd25519KeyPair, signerFromKeyObject } from '@agentid/core'
import { MerkleTree, formatTlogProof } from '../packages/tlog/dist/index.js'
import { cpuSeconds, load, mainThreadCpuSeconds, percentile, poster, startIssuer, stopIssuer } from './lib/issuer-process.mjs'
import { noisyReason } from './lib/measure.mjs'
import { progress, report } from './lib/suite.mjs'

const SUITE = 'tlog'
const ROUND_MS = Number(process.env.BENCH_TLOG_MS ?? 4_000)
const ROUNDS = Number(process.env.BENCH_TLOG_ROUNDS ?? 3)
const ENTRIES = Number(process.env.BENCH_TLOG_ENTRIES ?? 1_000_000)
// Spawn requests made (keys and proofs, before timing) per second of round: making them takes
// minutes on a loaded machine, where the issuers answer a few hundred a second.
const BODY_RATE = Number(process.env.BENCH_TLOG_RATE ?? 2_000)
const CONCURRENCY = 32
const CLI = fileURLToPath(new URL('../apps/cli/dist/bin.js', import.meta.url))
const claims = { purpose: 'bench', controller: 'bench', model: { name: 'm', version: '1' }, toolProfile: ['mcp://erp/tools/invoices.read'], policyTier: 'standard', dataAccessClass: 'internal' }
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

function getText(agent, url) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }))
    }).on('error', reject)
  })
}

async function issuerWithOrchestrator(env) {
  const dataDir = mkdtempSync(join(tmpdir(), 'agentid-bench-tlog-'))
  const { child, url, adminKey } = await startIssuer(dataDir, env)
  const orch = await (await fetch(`${url}/v1/orchestrators`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` }, body: JSON.stringify({ name: 'bench' }) })).json()
  const issuerDid = (await (await fetch(`${url}/v1/issuer`)).json()).did
  return { child, url, dataDir, apiKey: orch.apiKey, issuerDid, post: poster(url, { concurrency: CONCURRENCY }) }
}

async function spawnBodies(issuerDid, n) {
  const bodies = []
  for (let i = 0; i < n; i++) {
    const k = generateEd25519KeyPair()
    const proof = await createProofOfPossession({ signer: signerFromKeyObject(k.privateKey, k.did, k.keyId), audience: issuerDid, purpose: 'spawn', ttlSec: 300 })
    bodies.push(JSON.stringify({ did: k.did, proof, ...claims }))
  }
  return bodies
}

// utime + stime of every thread of a process, in clock ticks, by thread id (Linux; empty elsewhere).
function threadTicks(pid) {
  const ticks = new Map()
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ')
        ticks.set(Number(tid), Number(f[11]) + Number(f[12]))
      } catch {} // the thread ended
    }
  } catch {}
  return ticks
}

// CPU per spawn (ms) of each thread other than the main one that used any over the round, busiest
// first: the SQLite writer, the sequencer thread, V8's and libuv's helpers (Node 20 names them all
// 'node'; the issuer with the log has one thread more, its sequencer).
function otherThreads(pid, before, after, done) {
  return [...after].filter(([tid, t]) => tid !== pid && t > (before.get(tid) ?? 0))
    .map(([tid, t]) => ({ tid, ms: ((t - (before.get(tid) ?? 0)) * 10) / done }))
    .sort((a, b) => b.ms - a.ms)
}

/** One round of spawns against `issuer`; with `sample`, also when each sampled entry got into a served checkpoint. */
async function round(issuer, bodies, sample) {
  const acked = []
  let next = 0
  const op = async () => {
    const i = next++
    const res = await issuer.post('/v1/agents', bodies[i], { 'content-type': 'application/json', authorization: `Bearer ${issuer.apiKey}` })
    if (res.status !== 201) throw new Error(`HTTP ${res.status} ${res.body.slice(0, 200)}`)
    if (sample && i % 25 === 0) acked.push({ index: JSON.parse(res.body).logIndex, at: performance.now() })
  }
  const polls = []
  // Both issuers are polled alike (the one without the log answers 404), so the probe's requests are
  // not counted as a cost of the log.
  let polling = true
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const poller = (async () => {
    while (polling) {
      const r = await getText(agent, `${issuer.url}/log/checkpoint`)
      if (sample) polls.push({ size: Number(r.body.split('\n')[1]), at: performance.now() })
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  })()
  const pid = issuer.child.pid
  const cpu0 = cpuSeconds(pid)
  const main0 = mainThreadCpuSeconds(pid)
  const threads0 = threadTicks(pid)
  const result = await load(op, { concurrency: CONCURRENCY, ms: ROUND_MS, max: bodies.length })
  // The issuer's CPU over the timed window (all threads, and its event loop alone), per spawn answered.
  const cpuMs = ((cpuSeconds(pid) - cpu0) * 1000) / result.done
  const mainMs = ((mainThreadCpuSeconds(pid) - main0) * 1000) / result.done
  const threads = otherThreads(pid, threads0, threadTicks(pid), result.done)
  // Keep polling until every sampled entry is covered (or 5 s), so late checkpoints are counted, not dropped.
  const last = Math.max(-1, ...acked.map((a) => a.index))
  const until = performance.now() + 5_000
  while (sample && performance.now() < until && !(polls.length && polls[polls.length - 1].size > last)) await new Promise((r) => setTimeout(r, 10))
  polling = false
  await poller
  agent.destroy()
  if (result.errors) throw new Error(`spawn errors: ${result.firstError}`)
  const delays = acked.map((a) => {
    const seen = polls.find((p) => p.at >= a.at && p.size > a.index)
    return seen ? seen.at - a.at : Infinity
  })
  return { opsPerSec: result.opsPerSec, p99: result.p99, delays, cpuMs, mainMs, threads }
}

async function costOfTheLog() {
  const withLog = await issuerWithOrchestrator({})
  const without = await issuerWithOrchestrator({ AGENTID_LOG_SEQUENCER: 'off' })
  try {
    // BODY_RATE a second of round: above what one issuer answers (≤ 1,500/s measured here); a round
    // that runs out ends early, its throughput and CPU per spawn still right.
    const perRound = Math.ceil((ROUND_MS / 1000) * BODY_RATE)
    progress(SUITE, `making ${2 * ROUNDS * perRound} spawn requests (agent keys and proofs, before timing)`)
    const bodiesOn = await spawnBodies(withLog.issuerDid, ROUNDS * perRound + 300)
    const bodiesOff = await spawnBodies(without.issuerDid, ROUNDS * perRound + 300)
    await round(withLog, bodiesOn.splice(0, 300), false) // warm-up
    await round(without, bodiesOff.splice(0, 300), false)
    const on = []
    const off = []
    const delays = []
    const cpu = { on: [], off: [], mainOn: [], mainOff: [], threadsOn: [], threadsOff: [] }
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate which goes first, so a drift of the machine does not favour one side.
      const first = r % 2 === 0
      const a = first ? await round(withLog, bodiesOn.splice(0, perRound), true) : await round(without, bodiesOff.splice(0, perRound), false)
      const b = first ? await round(without, bodiesOff.splice(0, perRound), false) : await round(withLog, bodiesOn.splice(0, perRound), true)
      const [x, y] = first ? [a, b] : [b, a]
      on.push(x.opsPerSec)
      off.push(y.opsPerSec)
      delays.push(...x.delays)
      cpu.on.push(x.cpuMs)
      cpu.off.push(y.cpuMs)
      cpu.mainOn.push(x.mainMs)
      cpu.mainOff.push(y.mainMs)
      cpu.threadsOn.push(x.threads)
      cpu.threadsOff.push(y.threads)
      const shown = (ts) => ts.filter((t) => t.ms >= 0.001).map((t) => t.ms.toFixed(3)).join(' ')
      progress(SUITE, `round ${r + 1}: with the log ${x.opsPerSec.toFixed(0)}/s (CPU ${x.cpuMs.toFixed(3)} ms/spawn, main thread ${x.mainMs.toFixed(3)}), without ${y.opsPerSec.toFixed(0)}/s (CPU ${y.cpuMs.toFixed(3)}, main ${y.mainMs.toFixed(3)}); other threads, busiest first: ${shown(x.threads)} / ${shown(y.threads)}`)
    }
    delays.sort((p, q) => p - q)
    return { on, off, delays, cpu }
  } finally {
    await stopIssuer(withLog.child)
    await stopIssuer(without.child)
    rmSync(withLog.dataDir, { recursive: true, force: true })
    rmSync(without.dataDir, { recursive: true, force: true })
  }
}

function proofsInProcess() {
  progress(SUITE, `hashing a tree of ${ENTRIES} entries in process`)
  const tree = new MerkleTree()
  const leaf = Buffer.alloc(100)
  for (let i = 0; i < ENTRIES; i++) {
    leaf.writeUInt32BE(i, 0)
    tree.appendEntry(leaf)
  }
  const times = []
  const note = 'bench.example/log\n1\nAAAA\n\n— bench.example/log AAAA\n'
  for (let k = 0; k < 20_000; k++) {
    const index = Math.floor(Math.random() * ENTRIES)
    const t0 = performance.now()
    formatTlogProof({ index, proof: tree.inclusionProof(index, ENTRIES), checkpoint: note })
    times.push(performance.now() - t0)
  }
  times.sort((a, b) => a - b)
  return { p50: percentile(times, 0.5), p99: percentile(times, 0.99) }
}

/** An issuer whose log holds ENTRIES spawn events (written straight into its database, then integrated at start). */
async function bigLog() {
  const dataDir = mkdtempSync(join(tmpdir(), 'agentid-bench-tlog-big-'))
  const first = await startIssuer(dataDir)
  await stopIssuer(first.child)
  progress(SUITE, `writing ${ENTRIES} events into the issuer database`)
  const db = new Database(join(dataDir, 'issuer.db'))
  const base = db.prepare('SELECT coalesce(max(log_index), -1) + 1 AS n FROM audit_events').get().n
  const insert = db.prepare('INSERT INTO audit_events (at, actor, action, subject, details_json, log_index) VALUES (?, ?, ?, ?, ?, ?)')
  const at = Math.floor(Date.now() / 1000)
  // Each spawn names its status entry, in lists written here (all bits clear: none revoked), so the
  // audit below also compares the status lists with the log, as it does for a real issuer.
  const PER_LIST = 131_072
  const firstList = db.prepare('SELECT coalesce(max(CAST(id AS INTEGER)), 0) + 1 AS n FROM status_lists').get().n
  db.transaction(() => {
    for (let l = 0; l < Math.ceil(ENTRIES / PER_LIST); l++) {
      db.prepare("INSERT INTO status_lists (id, purpose, entries, next_index, bits, version, updated_at) VALUES (?, 'revocation', ?, ?, ?, 1, ?)")
        .run(String(firstList + l), PER_LIST, Math.min(PER_LIST, ENTRIES - l * PER_LIST), Buffer.alloc(PER_LIST / 8), at)
    }
    for (let i = 0; i < ENTRIES; i++) {
      const credentialId = `urn:uuid:${randomUUID()}`
      const status = { list: String(firstList + Math.floor(i / PER_LIST)), index: i % PER_LIST }
      const details = JSON.stringify({ credentialId, credentialSha256: createHash('sha256').update(credentialId).digest('hex'), status, keyCustody: 'agent' })
      insert.run(at, 'orchestrator:bench', 'agent.spawned', `did:key:z6Mkbench${i}`, details, base + i)
    }
  })()
  db.close()
  const t0 = performance.now()
  const { child, url } = await startIssuer(dataDir)
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  for (;;) {
    const r = await getText(agent, `${url}/log/checkpoint`)
    if (r.status === 200 && Number(r.body.split('\n')[1]) >= base + ENTRIES) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const integrateMs = performance.now() - t0
  return { child, url, dataDir, agent, integrateMs, size: base + ENTRIES }
}

function auditVerify(url, dataDir) {
  const t0 = performance.now()
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, 'audit', 'verify', '--log', url, '--state', join(dataDir, 'audit-state.json'), '--json'], { maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`audit verify failed: ${stderr || error.message}`))
      else resolve({ ms: performance.now() - t0, result: JSON.parse(stdout) })
    })
  })
}

const cost = await costOfTheLog()
const ratios = cost.on.map((v, i) => v / cost.off[i])
const ratio = median(ratios)
// BENCH_TLOG_COST_ONLY=1: parts 2 and 3 are skipped (they take minutes at 10⁶ entries).
const large = process.env.BENCH_TLOG_COST_ONLY ? undefined : await proofsAndAudit()

async function proofsAndAudit() {
  const inProcess = proofsInProcess()
  const big = await bigLog()
  try {
    const times = []
    for (let k = 0; k < 1000; k++) {
      const index = Math.floor(Math.random() * big.size)
      const t0 = performance.now()
      const r = await getText(big.agent, `${big.url}/v1/log/proof?index=${index}`)
      if (r.status !== 200) throw new Error(`proof ${index}: HTTP ${r.status}`)
      times.push(performance.now() - t0)
    }
    times.sort((a, b) => a - b)
    const http50 = { p50: percentile(times, 0.5), p99: percentile(times, 0.99) }
    progress(SUITE, `audit verify of ${big.size} entries`)
    const audit = await auditVerify(big.url, big.dataDir)
    return { inProcess, http50, audit, size: big.size, integrateMs: big.integrateMs }
  } finally {
    big.agent.destroy()
    await stopIssuer(big.child)
    rmSync(big.dataDir, { recursive: true, force: true })
  }
}

const delayNoisy = cost.delays.length < 10 ? `only ${cost.delays.length} sampled entries` : null
const cpuOn = median(cost.cpu.on)
const cpuOff = median(cost.cpu.off)
report({
  suite: SUITE,
  title: `the issuer log: its cost to spawns (${ROUNDS} alternating pairs of ${ROUND_MS / 1000} s rounds, ${CONCURRENCY} in flight), checkpoint delay${large ? `, proofs and audit at ${ENTRIES.toLocaleString('en-US')} entries` : ''}`,
  rows: [
    { figure: 'spawns/s with the log (median round)', value: median(cost.on), unit: 'ops/s' },
    { figure: 'spawns/s without it (AGENTID_LOG_SEQUENCER=off)', value: median(cost.off), unit: 'ops/s' },
    { figure: 'with ÷ without, median of pairs (target: log ≤ 5 % of throughput)', value: ratio, unit: 'x', target: { min: 0.95 }, noisy: noisyReason({ with: cost.on, without: cost.off, ratio: ratios }) },
    { figure: 'issuer CPU per spawn with the log, all threads (median round)', value: cpuOn, unit: 'ms' },
    { figure: 'issuer CPU per spawn without it, all threads', value: cpuOff, unit: 'ms' },
    { figure: 'issuer CPU per spawn, with ÷ without (all threads)', value: cpuOn / cpuOff, unit: 'x' },
    { figure: 'issuer main thread (event loop) CPU per spawn, with the log', value: median(cost.cpu.mainOn), unit: 'ms' },
    { figure: 'issuer main thread CPU per spawn, without it', value: median(cost.cpu.mainOff), unit: 'ms' },
    { figure: 'issuer main thread CPU per spawn, with ÷ without', value: median(cost.cpu.mainOn) / median(cost.cpu.mainOff), unit: 'x' },
    { figure: 'spawn 201 → served checkpoint covering it, p50', value: percentile(cost.delays, 0.5), unit: 'ms' },
    { figure: 'spawn 201 → served checkpoint covering it, max', value: cost.delays[cost.delays.length - 1], unit: 'ms', target: { max: 1000 }, noisy: delayNoisy },
    ...(large
      ? [
          { figure: `inclusion proof at ${ENTRIES.toLocaleString('en-US')} entries, in process, p50`, value: large.inProcess.p50 * 1000, unit: 'µs', target: { max: 1000 } },
          { figure: `inclusion proof over HTTP (GET /v1/log/proof), p50`, value: large.http50.p50, unit: 'ms', target: { max: 1 } },
          { figure: `inclusion proof over HTTP, p99`, value: large.http50.p99, unit: 'ms' },
          { figure: `issuer start integrating ${ENTRIES.toLocaleString('en-US')} entries`, value: large.integrateMs, unit: 'ms' },
          { figure: `agentid audit verify, ${large.size.toLocaleString('en-US')} entries over HTTP`, value: large.audit.ms, unit: 'ms', target: { max: 30_000 } },
        ]
      : []),
  ],
  notes: [
    'Throughput rounds alternate which issuer goes first; the ratio is judged per pair and flagged noisy when rounds vary over 15 %.',
    'CPU per spawn: utime + stime of the issuer process (/proc/<pid>/stat: every thread, the sequencer worker and the SQLite writer included) and of its main thread (/proc/<pid>/task/<pid>/stat) over each timed round, divided by the spawns answered; 10 ms clock ticks.',
    'The checkpoint delay samples every 25th spawn against /log/checkpoint polled every 10 ms (adds ≤ 10 ms); the sequencer runs every 250 ms.',
    ...(large ? [`audit verify result: ${JSON.stringify(large.audit.result)}`] : []),
  ],
  data: { on: cost.on, off: cost.off, ratios, cpu: cost.cpu, delays: cost.delays, ...(large ? { inProcess: large.inProcess, http: large.http50, auditMs: large.audit.ms, integrateMs: large.integrateMs } : {}) },
})
