// The status lists against the issuer log, real parts: the issuer process under spawn and revoke load,
// `agentid audit verify` over HTTP passes and says it checked the lists; then an operator who clears a
// revoked credential's bit, or sets an active one's, in the SQLite file (no log event) is caught, the
// audit naming the credential and its index.
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { addOrchestratorViaApi, agentHeldSpawn, api, cleanup, cli, cliErrorCode, issuerDid, pool, sleep, startIssuer, tempDir, type IssuerProcess } from './harness.js'

afterAll(cleanup)

interface Spawned { did: string; credentialId: string; logIndex: number }

async function waitCheckpoint(url: string, atLeast: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const text = await (await fetch(`${url}/log/checkpoint`)).text()
    if (Number(text.split('\n')[1]) >= atLeast) return
    await sleep(100)
  }
  throw new Error(`no checkpoint of size ≥ ${atLeast}`)
}

/** Sets (1) or clears (0) the bit of `credentialId` in the status_lists row, as an operator with the file could. */
function editBit(dbFile: string, credentialId: string, value: 0 | 1): { list: string; index: number } {
  const db = new Database(dbFile)
  try {
    const c = db.prepare('SELECT status_list_id AS list, status_index AS "index" FROM credentials WHERE id = ?').get(credentialId) as { list: string; index: number }
    const row = db.prepare('SELECT bits FROM status_lists WHERE id = ?').get(c.list) as { bits: Buffer }
    const bits = Buffer.from(row.bits)
    const mask = 0x80 >> (c.index % 8)
    bits[c.index >> 3] = value ? bits[c.index >> 3]! | mask : bits[c.index >> 3]! & ~mask
    db.prepare('UPDATE status_lists SET bits = ?, version = version + 1 WHERE id = ?').run(bits, c.list)
    return c
  } finally {
    db.close()
  }
}

describe('audit verify checks the status lists against the log, real issuer', () => {
  it('passes under spawn and revoke load; catches a cleared and a set bit, naming the credential', async () => {
    let issuer: IssuerProcess = await startIssuer()
    const orch = await addOrchestratorViaApi(issuer, 'acme')
    const did = await issuerDid(issuer)
    const bodies = await Promise.all(Array.from({ length: 60 }, (_, i) => agentHeldSpawn(did, `st-${i}`)))
    const spawnOne = async (i: number): Promise<Spawned> => {
      const r = await api(issuer, 'POST', '/v1/agents', { key: orch.apiKey, json: bodies[i]!.body })
      expect(r.status, r.text).toBe(201)
      return r.body as Spawned
    }
    const first = await pool(Array.from({ length: 30 }, (_, i) => i), 8, spawnOne)
    // Spawns and revocations (of agents, and of single credentials) at once.
    const revocationIndices: number[] = []
    const [second] = await Promise.all([
      pool(Array.from({ length: 30 }, (_, i) => i + 30), 8, spawnOne),
      pool(first.slice(0, 10), 4, async (a) => {
        const r = await api(issuer, 'POST', `/v1/agents/${encodeURIComponent(a.did)}/revoke`, { key: issuer.adminKey, json: { reason: 'load' } })
        expect(r.status, r.text).toBe(200)
        revocationIndices.push((r.body as { logIndex: number }).logIndex)
      }),
      pool(first.slice(10, 15), 4, async (a) => {
        const r = await api(issuer, 'POST', `/v1/credentials/${encodeURIComponent(a.credentialId)}/revoke`, { key: issuer.adminKey, json: { reason: 'load' } })
        expect(r.status, r.text).toBe(200)
        revocationIndices.push((r.body as { logIndex: number }).logIndex)
      }),
    ])
    expect(revocationIndices.every((i) => typeof i === 'number')).toBe(true)
    const total = Math.max(...[...first, ...second].map((a) => a.logIndex), ...revocationIndices) + 1
    await waitCheckpoint(issuer.url, total)

    const dir = tempDir()
    const ok = await cli(['audit', 'verify', '--log', issuer.url, '--state', join(dir, 'ok.json'), '--json'])
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.json().status).toMatchObject({ checked: true, lists: 1, statuses: 60, revoked: 15, mismatches: 0 })
    const text = await cli(['audit', 'verify', '--log', issuer.url, '--state', join(dir, 'ok.json')])
    expect(text.stdout).toContain('status lists checked: 1 lists, 60 status entries (15 revoked) match the log')
    const skipped = await cli(['audit', 'verify', '--log', issuer.url, '--state', join(dir, 'ok.json'), '--skip-status-lists'])
    expect(skipped.stdout).toContain('status lists skipped (--skip-status-lists)')

    // The operator clears the bit of a revoked credential: it is silently valid again. No log event.
    await issuer.stop()
    const revoked = first[3]!
    const cleared = editBit(issuer.dbFile, revoked.credentialId, 0)
    issuer = await startIssuer({ dataDir: issuer.dataDir, port: issuer.port, adminKey: issuer.adminKey })
    const a = await cli(['audit', 'verify', '--log', issuer.url, '--state', join(dir, 'a.json')])
    expect(a.code).toBe(1)
    expect(cliErrorCode(a)).toBe('ERR_SIGNATURE_INVALID')
    expect(a.stderr).toContain(`${cleared.list}#${cleared.index}: ${revoked.credentialId} revoked by entry`)
    expect(a.stderr).toContain('but its bit is clear')

    // Restored, then the bit of an active credential set instead.
    await issuer.stop()
    editBit(issuer.dbFile, revoked.credentialId, 1)
    const active = second[5]!
    const set = editBit(issuer.dbFile, active.credentialId, 1)
    issuer = await startIssuer({ dataDir: issuer.dataDir, port: issuer.port, adminKey: issuer.adminKey })
    const b = await cli(['audit', 'verify', '--log', issuer.url, '--state', join(dir, 'b.json')])
    expect(b.code).toBe(1)
    expect(cliErrorCode(b)).toBe('ERR_SIGNATURE_INVALID')
    expect(b.stderr).toContain(`${set.list}#${set.index}: bit set but no entry revokes ${active.credentialId}`)
    expect(b.stderr).not.toContain(revoked.credentialId)
    await issuer.stop()
  }, 120_000)
})
