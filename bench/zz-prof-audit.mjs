import { execFile } from 'node:child_process'
import { createHash, randomUUID } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { startIssuer, stopIssuer } from './lib/issuer-process.mjs'
const ENTRIES = Number(process.env.N ?? 1_000_000)
const dataDir = mkdtempSync(join(tmpdir(), 'agentid-prof-'))
const first = await startIssuer(dataDir)
await stopIssuer(first.child)
const db = new Database(join(dataDir, 'issuer.db'))
const base = db.prepare('SELECT coalesce(max(log_index), -1) + 1 AS n FROM audit_events').get().n
const insert = db.prepare('INSERT INTO audit_events (at, actor, action, subject, details_json, log_index) VALUES (?, ?, ?, ?, ?, ?)')
db.transaction(() => { for (let i = 0; i < ENTRIES; i++) { const c = `urn:uuid:${randomUUID()}`; insert.run(1, 'orchestrator:bench', 'agent.spawned', `did:key:z6Mkbench${i}`, JSON.stringify({ credentialId: c, credentialSha256: createHash('sha256').update(c).digest('hex'), keyCustody: 'agent' }), base + i) } })()
db.close()
process.env.BENCH_PROF = '/tmp/prof'
const { child, url } = await startIssuer(dataDir)
for (;;) { const r = await fetch(`${url}/log/checkpoint`); const t = await r.text(); if (r.status === 200 && Number(t.split('\n')[1]) >= base + ENTRIES) break; await new Promise((r) => setTimeout(r, 200)) }
console.log('ready', url)
const t0 = performance.now()
await new Promise((resolve, reject) => execFile(process.execPath, ['--cpu-prof', '--cpu-prof-dir=/tmp/prof', '../apps/cli/dist/bin.js', 'audit', 'verify', '--log', url, '--state', join(dataDir, 's.json'), '--json'], { cwd: new URL('.', import.meta.url).pathname }, (e, out, err) => e ? reject(new Error(err)) : resolve(out)))
console.log('audit ms', performance.now() - t0)
await stopIssuer(child)
