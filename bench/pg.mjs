// PostgreSQL suite: agent-held-key spawns over real HTTP against real issuer processes — one on SQLite,
// then 1, 2 and 3 on one PostgreSQL database (AGENTID_DATABASE_URL), each closed loop (concurrency 32
// spread round-robin over the instances), in the same run; then 3 PostgreSQL instances offered 500
// spawns/s open loop (errors, p50, p99). Per spawn: the issuers' CPU, the PostgreSQL backends' CPU, and
// the database round trips, counted on the wire by a TCP relay between the issuers and the server
// (one per extended-protocol Sync or simple Query message), by statement. The timed windows run with
// the issuers connected straight to PostgreSQL: the relay (in this process, on the same 2 cores) would
// tax the PostgreSQL cases' throughput and p99 and not SQLite's. Round trips are counted after each
// PostgreSQL case in a separate, untimed pass (same instances count and load shape, BENCH_PG_TRIPS_N
// spawns, default 1,000, on a fresh database behind the relay); during the open loop, what
// the backends were doing (pg_stat_activity sampled every 10 ms: on CPU, waiting for WAL sync or a
// lock, idle inside a transaction while the issuer thinks). Needs PostgreSQL (AGENTID_TEST_PG_URL,
// default postgres://postgres@127.0.0.1:5432/test); each run uses a fresh database, dropped after.
//   node bench/run.mjs pg           (BENCH_PG_MS: closed-loop window per case, default 6,000)
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { createProofOfPossession, generateEd25519KeyPair, signerFromKeyObject } from '@agentid/core'
import { cpuSeconds, percentile, poster, startIssuer, stopIssuer } from './lib/issuer-process.mjs'
import { progress, report } from './lib/suite.mjs'
import { countingRelay, perOperation } from './lib/pg-relay.mjs'
import { sampleActivity } from './lib/pg-sample.mjs'

const SUITE = 'pg'
const ADMIN_URL = process.env.AGENTID_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const MS = Number(process.env.BENCH_PG_MS ?? 6000)
const OPEN_RATE = 500
const OPEN_MS = Number(process.env.BENCH_PG_OPEN_MS ?? 6000)
const CONCURRENCY = 32
const TRIPS_N = Number(process.env.BENCH_PG_TRIPS_N ?? 1000)
const claims = { purpose: 'bench', controller: 'bench', model: { name: 'm', version: '1' }, toolProfile: ['mcp://erp/tools/invoices.read'], policyTier: 'standard', dataAccessClass: 'internal' }

async function admin(sql) {
  const c = new pg.Client({ connectionString: ADMIN_URL })
  await c.connect()
  try { return (await c.query(sql)).rows } finally { await c.end() }
}

/** utime + stime of the PostgreSQL backends serving `db`, seconds (by pid, from /proc). */
async function backendCpu(db) {
  const rows = await admin(`SELECT pid FROM pg_stat_activity WHERE datname = '${db}'`)
  const out = new Map()
  for (const { pid } of rows) out.set(pid, cpuSeconds(pid))
  return out
}
const cpuDelta = (before, after) => [...after].reduce((s, [pid, v]) => s + (Number.isFinite(v) ? v - (before.get(pid) ?? 0) : 0), 0)

async function bodies(issuerDid, n) {
  const out = []
  for (let i = 0; i < n; i++) {
    const k = generateEd25519KeyPair()
    const proof = await createProofOfPossession({ signer: signerFromKeyObject(k.privateKey, k.did, k.keyId), audience: issuerDid, purpose: 'spawn', ttlSec: 300 })
    out.push(JSON.stringify({ did: k.did, proof, ...claims }))
  }
  return out
}

/**
 * Starts `n` issuers (PostgreSQL when `pgDb`), an orchestrator, `count` spawn bodies. `relay`: the
 * issuers reach PostgreSQL through the counting relay (the untimed round-trip pass), else straight.
 */
async function fleet(n, pgDb, count, { relay: counting = false } = {}) {
  const dirs = []
  const children = []
  let relay
  let env = {}
  if (pgDb) {
    const url = new URL(ADMIN_URL)
    if (counting) {
      relay = await countingRelay(new URL(ADMIN_URL))
      url.host = `127.0.0.1:${relay.port}`
    }
    url.pathname = `/${pgDb}`
    env = { AGENTID_DATABASE_URL: url.toString(), AGENTID_SECRET: randomBytes(32).toString('base64url') }
  }
  let adminKey
  const urls = []
  for (let i = 0; i < n; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'agentid-bench-pg-'))
    dirs.push(dir)
    const started = await startIssuer(dir, { ...env, ...(adminKey ? { AGENTID_ADMIN_KEY: adminKey } : {}) })
    adminKey ??= started.adminKey
    children.push(started.child)
    urls.push(started.url)
  }
  const orch = await (await fetch(`${urls[0]}/v1/orchestrators`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` }, body: JSON.stringify({ name: 'bench' }) })).json()
  const issuerDid = (await (await fetch(`${urls[0]}/v1/issuer`)).json()).did
  const posts = urls.map((u) => poster(u, { concurrency: CONCURRENCY }))
  const made = await bodies(issuerDid, count)
  let next = 0
  const spawn = async (body) => {
    const res = await posts[next++ % posts.length]('/v1/agents', body, { 'content-type': 'application/json', authorization: `Bearer ${orch.apiKey}` })
    if (res.status !== 201) throw new Error(`HTTP ${res.status} ${res.body.slice(0, 160)}`)
  }
  const stop = async () => {
    for (const c of children) await stopIssuer(c)
    await relay?.close()
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  }
  return { spawn, bodies: made, children, relay, stop }
}

/** Closed loop: `concurrency` workers for `ms`. */
async function closed(f, from, ms, until = f.bodies.length) {
  let i = from
  let done = 0
  let errors = 0
  let firstError = null
  const lat = []
  const t0 = performance.now()
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() - t0 < ms && i < until) {
      const body = f.bodies[i++]
      const s = performance.now()
      try { await f.spawn(body); lat.push(performance.now() - s); done++ } catch (e) { errors++; firstError ??= String(e.message) }
    }
  }))
  const sec = (performance.now() - t0) / 1000
  lat.sort((a, b) => a - b)
  return { next: i, done, errors, firstError, opsPerSec: done / sec, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99) }
}

/** Open loop: one spawn every 1000/rate ms whatever the answers, for `ms`; latency from the scheduled start. */
async function open(f, from, rate, ms) {
  const lat = []
  let errors = 0
  let firstError = null
  const pending = []
  const t0 = performance.now()
  const n = Math.floor((rate * ms) / 1000)
  for (let k = 0; k < n && from + k < f.bodies.length; k++) {
    const due = t0 + (k * 1000) / rate
    const wait = due - performance.now()
    if (wait > 1) await new Promise((r) => setTimeout(r, wait))
    const body = f.bodies[from + k]
    pending.push(f.spawn(body).then(() => lat.push(performance.now() - due), (e) => { errors++; firstError ??= String(e.message) }))
  }
  await Promise.all(pending)
  const sec = (performance.now() - t0) / 1000
  lat.sort((a, b) => a - b)
  return { offered: n, done: lat.length, errors, firstError, achieved: lat.length / sec, p50: percentile(lat, 0.5), p99: percentile(lat, 0.99), max: lat[lat.length - 1] }
}

async function measureCase(label, n, engine) {
  const pgDb = engine === 'postgres' ? `agentid_bench_${randomBytes(4).toString('hex')}` : null
  if (pgDb) await admin(`CREATE DATABASE ${pgDb}`)
  const count = Math.ceil((MS / 1000) * 2500) + 600
  progress(SUITE, `${label}: starting ${n} issuer(s), making ${count} spawn bodies`)
  const f = await fleet(n, pgDb, count)
  try {
    let at = (await closed(f, 0, 1000)).next // warm-up
    const cpu0 = f.children.reduce((s, c) => s + cpuSeconds(c.pid), 0)
    const be0 = pgDb ? await backendCpu(pgDb) : new Map()
    const r = await closed(f, at, MS)
    at = r.next
    r.issuerCpuUsPerSpawn = ((f.children.reduce((s, c) => s + cpuSeconds(c.pid), 0) - cpu0) * 1e6) / r.done
    if (pgDb) {
      r.postgresCpuUsPerSpawn = (cpuDelta(be0, await backendCpu(pgDb)) * 1e6) / r.done
    }
    progress(SUITE, `${label}: ${r.opsPerSec.toFixed(0)} spawns/s, p99 ${r.p99.toFixed(1)} ms, errors ${r.errors}${r.firstError ? ` (${r.firstError})` : ''}`)
    return { r, f, at }
  } catch (e) {
    await f.stop()
    if (pgDb) await admin(`DROP DATABASE IF EXISTS ${pgDb} WITH (FORCE)`)
    throw e
  } finally {
    if (!(engine === 'postgres' && n === 3)) {
      await f.stop()
      if (pgDb) await admin(`DROP DATABASE IF EXISTS ${pgDb} WITH (FORCE)`)
    } else f.db = pgDb
  }
}

/**
 * Untimed: database round trips per spawn with `n` instances behind the counting relay, on a fresh
 * database: a closed loop of TRIPS_N spawns at the same concurrency (after a warm-up), and with
 * `openRate` an open loop at that rate for TRIPS_N spawns. Exact counts (Sync/Query messages on the
 * wire); the batches, hence the commit's share, follow the pass's own throughput.
 */
async function countTrips(label, n, openRate) {
  const db = `agentid_bench_${randomBytes(4).toString('hex')}`
  await admin(`CREATE DATABASE ${db}`)
  progress(SUITE, `${label}: round-trip pass behind the relay (untimed), ${TRIPS_N} spawns${openRate ? ` closed, then ${TRIPS_N} at ${openRate}/s` : ''}`)
  const f = await fleet(n, db, 300 + TRIPS_N * (openRate ? 2 : 1), { relay: true })
  try {
    let at = (await closed(f, 0, Infinity, 300)).next // warm-up
    const c = f.relay.counter
    let rt0 = c.roundTrips
    const by0 = new Map(c.byStatement)
    const r = await closed(f, at, Infinity, at + TRIPS_N)
    if (r.errors) throw new Error(`round-trip pass: ${r.errors} errors (${r.firstError})`)
    at = r.next
    const out = { closed: (c.roundTrips - rt0) / r.done, byStatement: perOperation(by0, c.byStatement, r.done) }
    if (openRate) {
      rt0 = c.roundTrips
      const o = await open(f, at, openRate, (TRIPS_N / openRate) * 1000)
      if (o.errors) throw new Error(`round-trip pass, open loop: ${o.errors} errors (${o.firstError})`)
      out.open = (c.roundTrips - rt0) / Math.max(1, o.done)
    }
    return out
  } finally {
    await f.stop()
    await admin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)
  }
}

const load1 = readFileSync('/proc/loadavg', 'utf8').split(' ')[0]
const sqlite = (await measureCase('sqlite ×1', 1, 'sqlite')).r
const pg1 = (await measureCase('postgres ×1', 1, 'postgres')).r
const trips1 = await countTrips('postgres ×1', 1)
pg1.roundTripsPerSpawn = trips1.closed
pg1.roundTripsByStatement = trips1.byStatement
const pg2 = (await measureCase('postgres ×2', 2, 'postgres')).r
pg2.roundTripsPerSpawn = (await countTrips('postgres ×2', 2)).closed
const three = await measureCase('postgres ×3', 3, 'postgres')
const pg3 = three.r
let openRun
try {
  // The same three instances, a fresh window of bodies: 500 spawns/s offered.
  const rest = three.f.bodies.length - three.at
  progress(SUITE, `postgres ×3 open loop: ${OPEN_RATE}/s for ${OPEN_MS} ms (${rest} bodies left)`)
  const cpu0 = three.f.children.reduce((s, c) => s + cpuSeconds(c.pid), 0)
  const be0 = await backendCpu(three.f.db)
  const sampler = await sampleActivity(ADMIN_URL, three.f.db)
  openRun = await open(three.f, three.at, OPEN_RATE, Math.min(OPEN_MS, (rest / OPEN_RATE) * 1000))
  const activity = await sampler.stop()
  openRun.issuerCpuUsPerSpawn = ((three.f.children.reduce((s, c) => s + cpuSeconds(c.pid), 0) - cpu0) * 1e6) / Math.max(1, openRun.done)
  openRun.postgresCpuUsPerSpawn = (cpuDelta(be0, await backendCpu(three.f.db)) * 1e6) / Math.max(1, openRun.done)
  openRun.backendActivity = activity.busy.slice(0, 8)
  progress(SUITE, `open loop: ${openRun.done}/${openRun.offered} ok, ${openRun.errors} errors, p99 ${openRun.p99.toFixed(1)} ms${openRun.firstError ? ` (${openRun.firstError})` : ''}`)
} finally {
  await three.f.stop()
  await admin(`DROP DATABASE IF EXISTS ${three.f.db} WITH (FORCE)`)
}
const trips3 = await countTrips('postgres ×3', 3, OPEN_RATE)
pg3.roundTripsPerSpawn = trips3.closed
openRun.roundTripsPerSpawn = trips3.open

const ratio = pg1.opsPerSec / sqlite.opsPerSec
report({
  suite: SUITE,
  title: `spawns over HTTP, closed loop ${CONCURRENCY} in flight (${MS / 1000} s each): SQLite ×1 beside PostgreSQL ×1/2/3 in the same run; 3 PostgreSQL instances at ${OPEN_RATE}/s open loop`,
  rows: [
    { figure: 'SQLite ×1 spawns/s', value: sqlite.opsPerSec, unit: 'ops/s' },
    { figure: 'PostgreSQL ×1 spawns/s', value: pg1.opsPerSec, unit: 'ops/s' },
    { figure: 'PostgreSQL ×2 spawns/s', value: pg2.opsPerSec, unit: 'ops/s' },
    { figure: 'PostgreSQL ×3 spawns/s', value: pg3.opsPerSec, unit: 'ops/s' },
    { figure: 'PostgreSQL ×1 / SQLite ×1', value: ratio, unit: 'x', target: { min: 0.7 } },
    { figure: 'SQLite ×1 p99', value: sqlite.p99, unit: 'ms' },
    { figure: 'PostgreSQL ×1 p99', value: pg1.p99, unit: 'ms' },
    { figure: 'PostgreSQL ×2 p99', value: pg2.p99, unit: 'ms' },
    { figure: 'PostgreSQL ×3 p99', value: pg3.p99, unit: 'ms' },
    { figure: `×3 at ${OPEN_RATE}/s offered: errors`, value: openRun.errors + (openRun.offered - openRun.done - openRun.errors), unit: 'count', target: { max: 0 } },
    { figure: `×3 at ${OPEN_RATE}/s offered: p99`, value: openRun.p99, unit: 'ms', target: { max: 100 } },
    { figure: `×3 at ${OPEN_RATE}/s offered: p50`, value: openRun.p50, unit: 'ms' },
  ],
  notes: [
    `issuer CPU per spawn (all instances): SQLite ${sqlite.issuerCpuUsPerSpawn.toFixed(0)} µs; PostgreSQL ×1 ${pg1.issuerCpuUsPerSpawn.toFixed(0)}, ×2 ${pg2.issuerCpuUsPerSpawn.toFixed(0)}, ×3 ${pg3.issuerCpuUsPerSpawn.toFixed(0)} µs`,
    `PostgreSQL backend CPU per spawn: ×1 ${pg1.postgresCpuUsPerSpawn.toFixed(0)}, ×2 ${pg2.postgresCpuUsPerSpawn.toFixed(0)}, ×3 ${pg3.postgresCpuUsPerSpawn.toFixed(0)} µs`,
    `database round trips per spawn (Sync/Query messages on the wire, counted in a separate untimed pass behind the relay, ${TRIPS_N} spawns): ×1 ${pg1.roundTripsPerSpawn.toFixed(2)}, ×2 ${pg2.roundTripsPerSpawn.toFixed(2)}, ×3 ${pg3.roundTripsPerSpawn.toFixed(2)}; open loop ${openRun.roundTripsPerSpawn.toFixed(2)}`,
    `round trips per spawn by statement (×1): ${pg1.roundTripsByStatement.filter(([, v]) => v >= 0.01).map(([k, v]) => `${v.toFixed(2)} ${k.slice(0, 48)}`).join('; ')}`,
    `open loop (×3 at ${OPEN_RATE}/s) CPU per spawn: issuers ${openRun.issuerCpuUsPerSpawn.toFixed(0)} µs, PostgreSQL backends ${openRun.postgresCpuUsPerSpawn.toFixed(0)} µs`,
    `open loop, backends busy (average backends per 10 ms sample): ${openRun.backendActivity.map(([k, v]) => `${v.toFixed(2)} ${k}`).join('; ')}`,
    `open loop: ${openRun.done} of ${openRun.offered} answered 201, achieved ${openRun.achieved.toFixed(0)}/s, max ${openRun.max?.toFixed(1)} ms${openRun.firstError ? `; first error: ${openRun.firstError}` : ''}`,
    `closed-loop errors: SQLite ${sqlite.errors}, PostgreSQL ×1 ${pg1.errors}, ×2 ${pg2.errors}, ×3 ${pg3.errors}`,
    `2 cores shared with the load generator and PostgreSQL; load average at start ${load1}`,
  ],
  data: { sqlite, pg1, pg2, pg3, open: openRun },
})
