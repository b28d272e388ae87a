// Diagnostic: database round trips per spawn on PostgreSQL, by statement, with the issuers' and the
// backends' CPU per spawn, and what the backends spend their time on (pg_stat_activity sampled every
// 10 ms). N issuers on one fresh database behind the counting relay; a closed loop of BENCH_TRIPS_N
// spawns (default 2,000) at BENCH_TRIPS_C in flight (default 32), or with a rate, open loop at that
// many spawns/s for BENCH_TRIPS_N spawns (latency from each request's scheduled start);
// BENCH_TRIPS_IDLE_MS=10000 first measures the idle instances' CPU and round trips per second.
//   node bench/pg-trips.mjs [instances] [rate]
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { createProofOfPossession, generateEd25519KeyPair, signerFromKeyObject } from '@agentid/core'
import { cpuSeconds, mainThreadCpuSeconds, poster, startIssuer, stopIssuer } from './lib/issuer-process.mjs'
import { countingRelay, perOperation } from './lib/pg-relay.mjs'
import { sampleActivity } from './lib/pg-sample.mjs'

const ADMIN_URL = process.env.AGENTID_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const N = Number(process.env.BENCH_TRIPS_N ?? 2000)
const C = Number(process.env.BENCH_TRIPS_C ?? 32)
const instances = Number(process.argv[2] ?? 1)
const rate = process.argv[3] ? Number(process.argv[3]) : undefined
const claims = { purpose: 'bench', controller: 'bench', model: { name: 'm', version: '1' }, toolProfile: ['mcp://erp/tools/invoices.read'], policyTier: 'standard', dataAccessClass: 'internal' }

async function admin(sql) {
  const c = new pg.Client({ connectionString: ADMIN_URL })
  await c.connect()
  try { return (await c.query(sql)).rows } finally { await c.end() }
}
// CPU seconds of the issuers' threads, summed by thread name (main thread 'node', libuv's pool
// 'libuv-worker', V8's 'V8 DefaultWorke', worker_threads by their name).
function threadCpu(children) {
  const out = new Map()
  for (const c of children) {
    for (const tid of readdirSync(`/proc/${c.pid}/task`)) {
      try {
        const name = tid === String(c.pid) ? 'main' : `${readFileSync(`/proc/${c.pid}/task/${tid}/comm`, 'utf8').trim()}#${tid}`
        const f = readFileSync(`/proc/${c.pid}/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ')
        out.set(name, (out.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) / 100)
      } catch { /* the thread ended */ }
    }
  }
  return out
}
const db = `agentid_trips_${randomBytes(4).toString('hex')}`
await admin(`CREATE DATABASE ${db}`)
const relay = await countingRelay(new URL(ADMIN_URL))
const url = new URL(ADMIN_URL)
url.host = `127.0.0.1:${relay.port}`
url.pathname = `/${db}`
// BENCH_TRIPS_SQLITE=1: the same load on one issuer on SQLite (its own file), for the CPU comparison.
const sqlite = process.env.BENCH_TRIPS_SQLITE === '1'
const env = { ...(sqlite ? {} : { AGENTID_DATABASE_URL: url.toString() }), AGENTID_SECRET: randomBytes(32).toString('base64url') }
const children = []
const dirs = []
try {
  let adminKey
  const urls = []
  for (let i = 0; i < instances; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'agentid-trips-'))
    dirs.push(dir)
    const s = await startIssuer(dir, { ...env, ...(adminKey ? { AGENTID_ADMIN_KEY: adminKey } : {}) })
    adminKey ??= s.adminKey
    children.push(s.child)
    urls.push(s.url)
  }
  const orch = await (await fetch(`${urls[0]}/v1/orchestrators`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` }, body: JSON.stringify({ name: 'bench' }) })).json()
  const issuerDid = (await (await fetch(`${urls[0]}/v1/issuer`)).json()).did
  const posts = urls.map((u) => poster(u, { concurrency: C }))
  const bodies = []
  for (let i = 0; i < N + 200; i++) {
    const k = generateEd25519KeyPair()
    const proof = await createProofOfPossession({ signer: signerFromKeyObject(k.privateKey, k.did, k.keyId), audience: issuerDid, purpose: 'spawn', ttlSec: 300 })
    bodies.push(JSON.stringify({ did: k.did, proof, ...claims }))
  }
  let next = 0
  const run = async (count) => {
    const end = next + count
    await Promise.all(Array.from({ length: C }, async () => {
      while (next < end) {
        const i = next++
        const res = await posts[i % posts.length]('/v1/agents', bodies[i], { 'content-type': 'application/json', authorization: `Bearer ${orch.apiKey}` })
        if (res.status !== 201) throw new Error(`HTTP ${res.status} ${res.body.slice(0, 160)}`)
      }
    }))
  }
  await run(200) // warm-up
  // BENCH_TRIPS_IDLE_MS: first the instances' fixed cost, idle for that long: CPU and round trips per second.
  const idleMs = Number(process.env.BENCH_TRIPS_IDLE_MS ?? 0)
  if (idleMs > 0) {
    await new Promise((r) => setTimeout(r, 1000))
    const c0 = children.reduce((s, c) => s + cpuSeconds(c.pid), 0)
    const r0 = relay.counter.roundTrips
    const b0 = new Map(relay.counter.byStatement)
    await new Promise((r) => setTimeout(r, idleMs))
    const perSec = (v) => (v * 1000 / idleMs)
    console.log(`idle ${idleMs} ms: issuers ${(perSec(children.reduce((s, c) => s + cpuSeconds(c.pid), 0) - c0) * 1e3).toFixed(1)} ms CPU/s, ${perSec(relay.counter.roundTrips - r0).toFixed(1)} round trips/s: ${perOperation(b0, relay.counter.byStatement, idleMs / 1000).map(([k, v]) => `${v.toFixed(1)} ${k.slice(0, 50)}`).join('; ')}`)
  }
  const pids = async () => (await admin(`SELECT pid FROM pg_stat_activity WHERE datname = '${db}'`)).map((r) => r.pid)
  const be0 = new Map((await pids()).map((p) => [p, cpuSeconds(p)]))
  const cpu0 = children.reduce((s, c) => s + cpuSeconds(c.pid), 0)
  const split = () => children.reduce((s, c) => ({ user: s.user + cpuSeconds(c.pid, 'user'), main: s.main + mainThreadCpuSeconds(c.pid) }), { user: 0, main: 0 })
  const split0 = split()
  const threads0 = threadCpu(children)
  const rt0 = relay.counter.roundTrips
  const by0 = new Map(relay.counter.byStatement)
  const sampler = await sampleActivity(ADMIN_URL, db)
  const self0 = process.cpuUsage()
  const t0 = performance.now()
  const lat = []
  if (rate === undefined) await run(N)
  else {
    const pending = []
    for (let k = 0; k < N; k++) {
      const due = t0 + (k * 1000) / rate
      const wait = due - performance.now()
      if (wait > 1) await new Promise((r) => setTimeout(r, wait))
      const i = next++
      pending.push(posts[i % posts.length]('/v1/agents', bodies[i], { 'content-type': 'application/json', authorization: `Bearer ${orch.apiKey}` }).then((res) => {
        if (res.status !== 201) throw new Error(`HTTP ${res.status} ${res.body.slice(0, 160)}`)
        lat.push(performance.now() - due)
      }))
    }
    await Promise.all(pending)
  }
  const sec = (performance.now() - t0) / 1000
  const self = process.cpuUsage(self0)
  const activity = await sampler.stop()
  const cpu = children.reduce((s, c) => s + cpuSeconds(c.pid), 0) - cpu0
  const split1 = split()
  const threads1 = threadCpu(children)
  let be = 0
  for (const p of await pids()) { const v = cpuSeconds(p); if (Number.isFinite(v)) be += v - (be0.get(p) ?? 0) }
  console.log(`${instances} instance(s)${sqlite ? ' on SQLite' : ''}, ${N} spawns at ${C} in flight: ${(N / sec).toFixed(0)}/s (noisy), round trips/spawn ${((relay.counter.roundTrips - rt0) / N).toFixed(2)}, issuer CPU ${(cpu * 1e6 / N).toFixed(0)} µs/spawn, PostgreSQL backends ${(be * 1e6 / N).toFixed(0)} µs/spawn`)
  const us = (v) => (v * 1e6 / N).toFixed(0)
  console.log(`issuer CPU per spawn: user ${us(split1.user - split0.user)} µs, system ${us(cpu - (split1.user - split0.user))} µs; main thread ${us(split1.main - split0.main)} µs, other threads ${us(cpu - (split1.main - split0.main))} µs`)
  console.log(`this process (load generator${sqlite ? '' : ', counting relay'} and sampler): ${((self.user + self.system) / N).toFixed(0)} µs/spawn`)
  console.log(`  by thread: ${[...threads1].map(([k, v]) => [k, v - (threads0.get(k) ?? 0)]).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${us(v)}`).join(', ')} µs`)
  if (rate !== undefined) {
    lat.sort((a, b) => a - b)
    const pct = (p) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))].toFixed(1)
    console.log(`open loop at ${rate}/s: p50 ${pct(0.5)} ms, p90 ${pct(0.9)} ms, p99 ${pct(0.99)} ms, max ${lat[lat.length - 1].toFixed(1)} ms`)
  }
  console.log('round trips per spawn, by statement:')
  for (const [k, v] of perOperation(by0, relay.counter.byStatement, N)) console.log(`  ${v.toFixed(3)}  ${k}`)
  console.log(`backends busy (average per sample, ${activity.samples} samples):`)
  for (const [k, v] of activity.busy.slice(0, 14)) console.log(`  ${v.toFixed(3)}  ${k}`)
} finally {
  for (const c of children) await stopIssuer(c)
  await relay.close()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
  await admin(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)
}
