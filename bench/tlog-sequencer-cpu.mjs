// CPU of the issuer log per entry, in process: N spawn-like audit events committed BATCH at a time
// through the issuer's group commit (Store.commit, its writer thread), the log ticking after each
// batch (350 = 1,400 spawns/s in 250 ms turns); the event loop's CPU (/proc/self/task/<pid>/stat) and
// the whole process's (process.cpuUsage, every thread) per entry, over the turns alone.
//   node bench/tlog-sequencer-cpu.mjs [N=14000] [BATCH=350] [worker|loop]
// 'worker': the sequencer thread (the default of IssuerLog.open); 'loop': worker: false, on the event loop.
import { createHash, randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
const { openDatabase } = await import('../apps/issuer/dist/db/open.js')
const { IssuerLog } = await import('../apps/issuer/dist/log/log.js')
const { SqliteStorage } = await import('../apps/issuer/dist/storage/sqlite.js')
const { Store } = await import('../apps/issuer/dist/domain/store.js')
const [N, BATCH, MODE] = [Number(process.argv[2] ?? 14000), Number(process.argv[3] ?? 350), process.argv[4] ?? 'worker']
const dir = mkdtempSync(join(tmpdir(), 'seqtick-'))
const db = openDatabase(join(dir, 'issuer.db'))
// The issuer's storage: its group commit writes the events (and, with the thread, the log's tiles).
const storage = new SqliteStorage(new Store(db))
const log = await IssuerLog.open({ storage, worker: MODE === 'worker', secret: new Uint8Array(32).fill(7), baseUrl: 'http://issuer.test', onError: (m, e) => console.error(m, e) })
const mainCpu = () => { const f = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10_000 }
const at = Math.floor(Date.now() / 1000)
let main = 0, total = 0
for (let b = 0; b < N / BATCH; b++) {
  const jobs = []
  for (let i = b * BATCH; i < (b + 1) * BATCH; i++) {
    const credentialId = `urn:uuid:${randomUUID()}`
    jobs.push(storage.commit([storage.ops.audit(at, 'orchestrator:7f3c2a9e-1b2d-4c5e-9f00-123456789abc', 'agent.spawned', `did:key:z6Mk${createHash('sha256').update(String(i)).digest('base64url').slice(0, 44)}`, { credentialId, credentialSha256: createHash('sha256').update(credentialId).digest('hex'), keyCustody: 'agent', status: { list: '1', index: i } })]))
  }
  await Promise.all(jobs)
  const c0 = process.cpuUsage(), m0 = mainCpu()
  await log.tick()
  const c = process.cpuUsage(c0)
  main += mainCpu() - m0
  total += c.user + c.system
}
console.log(JSON.stringify({ mode: MODE, threaded: log.threaded, entries: N, perTick: BATCH, size: log.size, totalUsPerEntry: +(total / N).toFixed(1), mainUsPerEntry: +(main / N).toFixed(1) }))
await log.stop()
await storage.close()
rmSync(dir, { recursive: true, force: true })
