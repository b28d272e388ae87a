// The CPU cost of `agentid audit verify`'s status-list check: one issuer whose log holds N spawn events
// naming status entries (written into its database, lists beside them), audited alternately with
// --skip-status-lists and without, ROUNDS pairs; CPU (user + sys) and max RSS of each audit process
// (GNU time), since wall-clock time is meaningless on a shared machine.
//   node bench/tlog-audit-status.mjs        (env N, default 10^6; ROUNDS, default 2)
import { spawnSync } from 'node:child_process'
import { createHash, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { startIssuer, stopIssuer } from './lib/issuer-process.mjs'

const N = Number(process.env.N ?? 1_000_000)
const ROUNDS = Number(process.env.ROUNDS ?? 2)
const CLI = fileURLToPath(new URL('../apps/cli/dist/bin.js', import.meta.url))
const PER_LIST = 131_072

const dataDir = mkdtempSync(join(tmpdir(), 'agentid-bench-audit-status-'))
const first = await startIssuer(dataDir)
await stopIssuer(first.child)
const db = new Database(join(dataDir, 'issuer.db'))
const base = db.prepare('SELECT coalesce(max(log_index), -1) + 1 AS n FROM audit_events').get().n
const insert = db.prepare('INSERT INTO audit_events (at, actor, action, subject, details_json, log_index) VALUES (?, ?, ?, ?, ?, ?)')
const at = Math.floor(Date.now() / 1000)
db.transaction(() => {
  for (let l = 0; l < Math.ceil(N / PER_LIST); l++) {
    db.prepare("INSERT INTO status_lists (id, purpose, entries, next_index, bits, version, updated_at) VALUES (?, 'revocation', ?, ?, ?, 1, ?)")
      .run(String(l + 1), PER_LIST, Math.min(PER_LIST, N - l * PER_LIST), Buffer.alloc(PER_LIST / 8), at)
  }
  for (let i = 0; i < N; i++) {
    const credentialId = `urn:uuid:${randomUUID()}`
    const status = { list: String(1 + Math.floor(i / PER_LIST)), index: i % PER_LIST }
    const details = JSON.stringify({ credentialId, credentialSha256: createHash('sha256').update(credentialId).digest('hex'), status, keyCustody: 'agent' })
    insert.run(at, 'orchestrator:bench', 'agent.spawned', `did:key:z6Mkbench${i}`, details, base + i)
  }
})()
db.close()
const { child, url } = await startIssuer(dataDir)
try {
  for (;;) {
    const text = await (await fetch(`${url}/log/checkpoint`)).text()
    if (Number(text.split('\n')[1]) >= base + N) break
    await new Promise((r) => setTimeout(r, 200))
  }
  console.log(`${N} entries; load average at start ${loadavg().map((x) => x.toFixed(1)).join(' ')}`)
  for (let round = 0; round < ROUNDS; round++) {
    for (const extra of [['--skip-status-lists'], []]) {
      const state = join(dataDir, `state-${round}-${extra.length}.json`)
      const r = spawnSync('/usr/bin/time', ['-f', 'cpu %U user + %S sys s, max RSS %M KB, wall %e s', process.execPath, CLI, 'audit', 'verify', '--log', url, '--state', state, ...extra], { encoding: 'utf8', maxBuffer: 1 << 22 })
      if (r.status !== 0) throw new Error(`audit verify failed: ${r.stderr}`)
      console.log(`${extra.length ? 'skipped' : 'checked'}: ${r.stderr.trim().split('\n').pop()}\n  ${r.stdout.trim().replace(/^.*; status lists/, 'status lists')}`)
    }
  }
} finally {
  await stopIssuer(child)
  rmSync(dataDir, { recursive: true, force: true })
}
