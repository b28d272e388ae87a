// Diagnostic: the PostgreSQL group commit alone: client and backend CPU per job (a spawn's ops, a
// 1.1 KB JWT), jobs committed through storage.commit at 32 in flight on a fresh database, no HTTP,
// no signing; then by batch size (BATCHES, default 1,10,40). SETUP_SQL=file runs that SQL after the migrations (to try a schema change); N jobs a
// round (default 6,000), the first round a warm-up.
//   node bench/pg-commit-cpu.mjs
import { openPgStorage } from '../apps/issuer/dist/storage/pg.js'
import { writeOps as ops } from '../apps/issuer/dist/domain/store.js'
import pg from 'pg'
import { randomBytes, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
const cpu = (pid, which) => { try { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (which === 'sys' ? 0 : Number(f[11]) / 100) + (which === 'user' ? 0 : Number(f[12]) / 100) } catch { return 0 } }
const ADMIN = process.env.AGENTID_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const admin = async (sql) => { const c = new pg.Client(ADMIN); await c.connect(); try { return (await c.query(sql)).rows } finally { await c.end() } }
const db = 'pgscale_mb_' + randomBytes(3).toString('hex')
await admin(`CREATE DATABASE ${db}`)
const u = new URL(ADMIN)
u.pathname = `/${db}`
const url = u.toString()
const s = await openPgStorage(url, { max: 10 })
try {
  if (process.env.SETUP_SQL) { const c = new pg.Client(url); await c.connect(); await c.query(readFileSync(process.env.SETUP_SQL, 'utf8')); await c.end() }
  await s.orchestrators.insert({ id: 'orch_1', name: 'bench', key_hash: 'h', created_at: 1 })
  const block = await s.statusLists.allocate(100000, 131072, 1)
  let idx = block.from
  const f = { code: 'ERR_CONFLICT', message: 'an agent with this DID exists; renew its credential instead' }
  const job = () => {
    const did = 'did:key:z6Mk' + randomBytes(32).toString('base64url')
    const id = `urn:uuid:${randomUUID()}`
    const at = 1765000000
    const jwt = randomBytes(1100).toString('base64url')
    return [
      ops.nonceUse(`pop:${randomBytes(16).toString('base64url')}`, at + 300, { code: 'ERR_REPLAY', message: 'this proof of possession was used before' }),
      ops.agentAbsent(did, f),
      ops.agentInsert({ did, orchestrator_id: 'orch_1', controller: 'bench', purpose: 'bench', claims_json: JSON.stringify({ purpose: 'bench', controller: 'bench', model: { name: 'm', version: '1' }, toolProfile: ['mcp://erp/tools/invoices.read'], policyTier: 'standard', dataAccessClass: 'internal' }), key_custody: 'agent', created_at: at }),
      ops.credentialInsert({ id, agent_did: did, kind: 'identity', format: 'jwt', jwt, status_list_id: block.listId, status_index: idx++, issued_at: at, expires_at: at + 3600 }),
      ops.audit(at, 'orchestrator:bench', 'agent.spawned', did, { credentialId: id, credentialSha256: randomBytes(32).toString('hex'), status: { list: block.listId, index: idx }, keyCustody: 'agent' }),
      ops.statusListAdvance(block.listId, idx),
    ]
  }
  const pids = async () => (await admin(`SELECT pid FROM pg_stat_activity WHERE datname = '${db}'`)).map((r) => r.pid)
  const N = Number(process.env.N ?? 6000), C = 32
  for (let round = 0; round < 3; round++) {
    const jobs = Array.from({ length: N }, job)
    const p = await pids(); const b0 = p.reduce((a, x) => a + cpu(x), 0); const c0 = process.cpuUsage(); const t0 = performance.now()
    let i = 0
    await Promise.all(Array.from({ length: C }, async () => { while (i < N) await s.commit(jobs[i++]) }))
    const c = process.cpuUsage(c0); const b1 = (await pids()).reduce((a, x) => a + cpu(x), 0)
    if (round > 0) console.log(`storage.commit round ${round}: ${(N / ((performance.now() - t0) / 1000)).toFixed(0)} jobs/s, client ${((c.user + c.system) / N).toFixed(1)} µs/job, backend ${((b1 - b0) * 1e6 / N).toFixed(1)} µs/job, rt/job ${(s.roundTrips / ((round + 1) * N)).toFixed(3)}`)
  }
  // Batch size: batches of 1, 10 and 40 jobs sent straight to agentid_commit_jobs from 4
  // connections, rounds alternating (so each size sees the same machine): backend CPU per job, and
  // the part spent in the kernel (WAL writes and flushes). Per-batch against per-job cost.
  const sizes = (process.env.BATCHES ?? '1,10,40').split(',').map(Number)
  const clients = await Promise.all(Array.from({ length: 4 }, async () => { const c = new pg.Client(url); await c.connect(); return c }))
  const bpids = (await Promise.all(clients.map((c) => c.query('SELECT pg_backend_pid() AS p')))).map((r) => r.rows[0].p)
  const sum = new Map(sizes.map((b) => [b, { cpu: 0, sys: 0, n: 0 }]))
  for (let r = 0; r < 2 * sizes.length; r++) {
    const B = sizes[r % sizes.length]
    const batches = Array.from({ length: Math.ceil(Math.min(2000, 200 * B) / B) }, () => JSON.stringify(Array.from({ length: B }, job)))
    const c0 = bpids.reduce((a, x) => a + cpu(x), 0)
    const s0 = bpids.reduce((a, x) => a + cpu(x, 'sys'), 0)
    let k = 0
    await Promise.all(clients.map(async (c) => { while (k < batches.length) await c.query('SELECT agentid_commit_jobs($1::jsonb) AS r', [batches[k++]]) }))
    const t = sum.get(B)
    t.cpu += bpids.reduce((a, x) => a + cpu(x), 0) - c0
    t.sys += bpids.reduce((a, x) => a + cpu(x, 'sys'), 0) - s0
    t.n += batches.length * B
  }
  for (const [B, t] of sum) console.log(`agentid_commit_jobs, batches of ${B}: backend ${(t.cpu * 1e6 / t.n).toFixed(0)} µs/job, of which system ${(t.sys * 1e6 / t.n).toFixed(0)} (${t.n} jobs)`)
  await Promise.all(clients.map((c) => c.end()))
} finally { await s.close(); await admin(`DROP DATABASE ${db} WITH (FORCE)`) }
