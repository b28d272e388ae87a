// The SQLite writer's CPU per spawn, alone: a spawn's write ops (proof nonce, agent row, credential row,
// audit event, status-list advance; agent-held key) built with each build's own `writeOps`, run with its
// own `runBatch` in batches of 32 on its own writer connection (`openWriterConnection`: WAL,
// synchronous=FULL) over a file with --prefill spawns already in it. Several builds in one process, in
// interleaved rounds (medians printed), so machine load hits them alike. Credential ids as each build
// makes them (UUID v7 where it has domain/ids.js, else v4). Also bytes and write calls per spawn
// (/proc/thread-self/io), which load does not move.
//   node bench/spawn-writer.mjs [--rounds 7] [--n 3200] [--prefill 20000] [name=/path/to/checkout ...]
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { createHash, randomBytes, randomUUID } from 'node:crypto'

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : process.argv[i + 1]
}
const ROUNDS = Number(arg('rounds', 7))
const N = Number(arg('n', 3200))
const PREFILL = Number(arg('prefill', 20000))
const named = process.argv.slice(2).filter((a, i, all) => a.includes('=') && !all[i - 1]?.startsWith('--'))
const builds = named.length ? named.map((a) => a.split('=')) : [['this', new URL('..', import.meta.url).pathname]]

// The writer's statements for these ops, as domain/store.ts declares them.
const SQL = {
  nonceInsert: 'INSERT INTO proof_nonces (nonce, expires_at) VALUES (?, ?)',
  agentCount: 'SELECT count(*) AS n FROM agents WHERE did = ?',
  agentInsert: `INSERT INTO agents (did, orchestrator_id, controller, purpose, claims_json, key_custody, status, created_at)
    VALUES (?, ?, ?, ?, ?, ?, 'active', ?)`,
  credInsert: `INSERT INTO credentials (id, agent_did, kind, format, jwt, status_list_id, status_index, issued_at, expires_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  listAdvance: 'UPDATE status_lists SET next_index = max(next_index, ?) WHERE id = ?',
  auditInsert: `INSERT INTO audit_events (at, actor, action, subject, details_json, log_index)
    VALUES (?, ?, ?, ?, ?, (SELECT coalesce(max(log_index), -1) + 1 FROM audit_events)) RETURNING log_index`,
}
const claims = JSON.stringify({ purpose: 'bench', controller: 'bench', model: { name: 'm', version: '1' }, toolProfile: ['mcp://erp/tools/invoices.read'], policyTier: 'standard', dataAccessClass: 'internal' })
const jwt = 'e'.repeat(1400) // a JWT VC's length
const conflict = { code: 'ERR_CONFLICT', message: 'an agent with this DID exists; renew its credential instead' }
const replay = { code: 'ERR_REPLAY', message: 'this proof of possession was used before' }

async function setup(name, root) {
  const imp = (rel) => import(pathToFileURL(join(root, 'apps/issuer/dist', rel)).href)
  const { openDatabase, openWriterConnection } = await imp('db/open.js')
  const { prepareOps, runBatch } = await imp('db/writer-ops.js')
  const { writeOps } = await imp('domain/store.js')
  const ids = existsSync(join(root, 'apps/issuer/dist/domain/ids.js')) ? await imp('domain/ids.js') : undefined
  const newId = () => `urn:uuid:${ids ? ids.timeOrderedUuid(Date.now()) : randomUUID()}`
  // The agent-exists check: the insert's own unique check where the build maps it (onUnique), else a read first.
  const uniqueInsert = writeOps.agentInsert.length >= 2
  const dir = mkdtempSync(join(tmpdir(), 'agentid-spawn-writer-'))
  const file = join(dir, 'issuer.db')
  const main = openDatabase(file)
  main.prepare("INSERT INTO orchestrators (id, name, key_hash, created_at) VALUES ('orch_1', 'bench', 'h', 1)").run()
  main.prepare("INSERT INTO status_lists (id, purpose, entries, next_index, bits, version, updated_at) VALUES ('1', 'revocation', 100000000, 0, ?, 1, 1)").run(Buffer.alloc(16384))
  const db = openWriterConnection(file)
  const stmts = prepareOps(db, SQL)
  let seq = 0
  const job = () => {
    const did = `did:key:z6Mk${randomBytes(32).toString('base64url')}`
    const id = newId()
    const at = 1_780_000_000 + Math.floor(seq / 1500) // 1,500 spawns a second
    const index = seq++
    const agent = { did, orchestrator_id: 'orch_1', controller: 'bench', purpose: 'bench', claims_json: claims, key_custody: 'agent', created_at: at }
    return [
      writeOps.nonceUse(`pop:${randomUUID()}`, at + 300, replay),
      ...(uniqueInsert ? [writeOps.agentInsert(agent, conflict)] : [writeOps.agentAbsent(did, conflict), writeOps.agentInsert(agent)]),
      writeOps.credentialInsert({ id, agent_did: did, kind: 'identity', format: 'jwt', jwt, status_list_id: '1', status_index: index, issued_at: at, expires_at: at + 3600 }),
      writeOps.audit(at, 'orchestrator:orch_1', 'agent.spawned', did, { credentialId: id, credentialSha256: createHash('sha256').update(id).digest('hex'), status: { list: '1', index }, keyCustody: 'agent' }),
      writeOps.statusListAdvance('1', index + 1),
    ]
  }
  const run = (n) => {
    for (let k = 0; k < n; k += 32) {
      const outcomes = runBatch(db, stmts, Array.from({ length: 32 }, job))
      if (!outcomes.every((o) => o.ok)) throw new Error(`${name}: a job failed: ${JSON.stringify(outcomes.find((o) => !o.ok))}`)
    }
  }
  run(PREFILL)
  db.pragma('wal_checkpoint(TRUNCATE)')
  return { name, root, run, close: () => { db.close(); main.close(); rmSync(dir, { recursive: true, force: true }) } }
}

const io = () => Object.fromEntries(readFileSync('/proc/thread-self/io', 'utf8').trim().split('\n').map((l) => { const [k, v] = l.split(': '); return [k, Number(v)] }))
const envs = []
for (const [name, root] of builds) envs.push(await setup(name, root))
const res = envs.map(() => [])
for (let r = 0; r < ROUNDS; r++) {
  for (const [k, e] of envs.entries()) {
    const i0 = io()
    const c0 = process.cpuUsage()
    e.run(N)
    const c = process.cpuUsage(c0)
    const i1 = io()
    res[k].push({ user: c.user / N, sys: c.system / N, all: (c.user + c.system) / N, kib: (i1.wchar - i0.wchar) / 1024 / N, writes: (i1.syscw - i0.syscw) / N })
  }
}
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
console.log(`SQLite writer, CPU µs per spawn (median of ${ROUNDS} interleaved rounds of ${N}, batches of 32, ${PREFILL} spawns in the file first)`)
console.log('| build | user | kernel | all | KiB written | write calls |')
console.log('|---|---:|---:|---:|---:|---:|')
for (const [k, e] of envs.entries()) {
  const m = (f) => med(res[k].map((x) => x[f]))
  console.log(`| ${e.name} | ${m('user').toFixed(0)} | ${m('sys').toFixed(0)} | ${m('all').toFixed(0)} | ${m('kib').toFixed(1)} | ${m('writes').toFixed(1)} |`)
  e.close()
}
