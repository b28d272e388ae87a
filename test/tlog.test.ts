// The issuer log with real parts: the issuer process under spawn and revoke load, a witness process
// (agentid witness serve), `agentid audit verify` / `audit proof` over HTTP; then an operator who edits
// an audit_events row or rewrites the log is caught by audit verify and refused by the witness; and a
// SIGKILL during load leaves a log that verifies and covers every acknowledged event.
import { spawn as spawnProcess, type ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { generateNoteKey } from '@agentid/tlog'
import { createVerifier } from '@agentid/verifier'
import {
  CLI_BIN,
  ROOT,
  addOrchestratorViaApi,
  agentHeldSpawn,
  api,
  cleanup,
  cli,
  cliErrorCode,
  freePort,
  issuerDid,
  pool,
  sleep,
  startIssuer,
  tempDir,
  type IssuerProcess,
} from './harness.js'

const procs: ChildProcess[] = []
afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL')
  await cleanup()
})

async function startWitness(dir: string, origin: string, logVkey: string): Promise<{ url: string; vkey: string; err: () => string; proc: ChildProcess }> {
  const keys = await cli(['witness', 'keygen', 'witness.test/w1'])
  expect(keys.code).toBe(0)
  const [skey, vkey] = keys.stdout.trim().split('\n') as [string, string]
  writeFileSync(join(dir, 'witness.key'), `${skey}\n`, { mode: 0o600 })
  const port = await freePort()
  const proc = spawnProcess(process.execPath, [CLI_BIN, 'witness', 'serve', '--key', join(dir, 'witness.key'), '--log', origin, logVkey, '--state', join(dir, 'witness.json'), '--port', String(port)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
  procs.push(proc)
  let out = ''
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()))
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()))
  for (let i = 0; i < 200 && !out.includes('listening'); i++) await sleep(50)
  expect(out).toContain(vkey)
  return { url: `http://127.0.0.1:${port}`, vkey, err: () => out, proc }
}

async function waitCheckpoint(url: string, atLeast: number, cosigned: boolean): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const r = await fetch(`${url}/log/checkpoint`)
    const text = await r.text()
    const size = Number(text.split('\n')[1])
    if (r.status === 200 && size >= atLeast && (!cosigned || text.includes('witness.test/w1'))) return text
    await sleep(100)
  }
  throw new Error(`no checkpoint of size ≥ ${atLeast}`)
}

async function spawnMany(issuer: IssuerProcess, apiKey: string, n: number, prefix: string) {
  const did = await issuerDid(issuer)
  return pool(Array.from({ length: n }, (_, i) => i), 8, async (i) => {
    const { body } = await agentHeldSpawn(did, `${prefix}-${i}`)
    const r = await api(issuer, 'POST', '/v1/agents', { key: apiKey, json: body })
    expect(r.status, JSON.stringify(r.body)).toBe(201)
    return r.body as { did: string; credentialId: string; logIndex: number; credential?: string }
  })
}

describe('issuer log, witness and audit, real processes', () => {
  it('verifies under load, with a witness cosigning; catches an edited row and a rewritten log', async () => {
    const dir = tempDir()
    let issuer = await startIssuer()
    const logVkey = (await (await fetch(`${issuer.url}/log/key`)).text()).trim()
    const origin = `127.0.0.1:${issuer.port}`
    expect(logVkey.startsWith(`${origin}+`)).toBe(true)
    const witness = await startWitness(dir, origin, logVkey)
    const env = { AGENTID_LOG_WITNESSES: JSON.stringify([{ url: witness.url, vkey: witness.vkey }]) }
    await issuer.stop()
    issuer = await startIssuer({ dataDir: issuer.dataDir, port: issuer.port, adminKey: issuer.adminKey, env })

    const orch = await addOrchestratorViaApi(issuer, 'acme')
    const agents = await spawnMany(issuer, orch.apiKey, 40, 'load')
    expect(new Set(agents.map((a) => a.logIndex)).size).toBe(40)
    for (const a of agents.slice(0, 5)) {
      const r = await api(issuer, 'POST', `/v1/agents/${encodeURIComponent(a.did)}/revoke`, { key: issuer.adminKey, json: { reason: 'test' } })
      expect(r.status).toBe(200)
      expect(typeof (r.body as { logIndex: number }).logIndex).toBe('number')
    }
    const total = Math.max(...agents.map((a) => a.logIndex)) + 6
    await waitCheckpoint(issuer.url, total, true)

    const state = join(dir, 'audit.json')
    const ok = await cli(['audit', 'verify', '--log', issuer.url, '--witness', witness.vkey, '--quorum', '1', '--state', state, '--json'])
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.json().size).toBeGreaterThanOrEqual(total)
    expect(ok.json().agents).toBe(40)
    const proof = await cli(['audit', 'proof', agents[7]!.credentialId, '--log', issuer.url, '--witness', witness.vkey, '--quorum', '1'])
    expect(proof.code, proof.stderr).toBe(0)
    expect(proof.stdout.startsWith('c2sp.org/tlog-proof@v1\n')).toBe(true)
    // A service that accepts logged credentials only (@agentid/verifier `transparency`): the proof
    // stapled (the one audit proof printed) or fetched from the issuer the credential names.
    const trustedIssuers = [await issuerDid(issuer)]
    const logged = createVerifier({ trustedIssuers, transparency: { log: logVkey, witnesses: [witness.vkey], quorum: 1, fetchProofs: false } })
    const credentialOf = (a: { credential?: string }) => a.credential as string
    expect((await logged.verifyAgentCredential(credentialOf(agents[7]!), { tlogProof: proof.stdout })).did).toBe(agents[7]!.did)
    const fetching = createVerifier({ trustedIssuers, transparency: { log: logVkey, witnesses: [witness.vkey], quorum: 1 } })
    expect((await fetching.verifyAgentCredential(credentialOf(agents[8]!))).did).toBe(agents[8]!.did)
    await expect(logged.verifyAgentCredential(credentialOf(agents[8]!), { tlogProof: proof.stdout })).rejects.toMatchObject({ code: 'ERR_NOT_LOGGED' })
    const otherLog = createVerifier({ trustedIssuers, transparency: { log: generateNoteKey(origin).vkey } }) // same name, another key
    await expect(otherLog.verifyAgentCredential(credentialOf(agents[9]!))).rejects.toMatchObject({ code: 'ERR_NOT_LOGGED' })

    // A quorum the checkpoint cannot meet (an unknown second witness) is refused.
    const other = (await cli(['witness', 'keygen', 'witness.test/w2'])).stdout.trim().split('\n')[1]!
    const noQuorum = await cli(['audit', 'verify', '--log', issuer.url, '--witness', witness.vkey, other, '--quorum', '2', '--state', join(dir, 'audit2.json')])
    expect(cliErrorCode(noQuorum)).toBe('ERR_UNTRUSTED_ISSUER')

    // The operator edits one audit_events row in the SQLite file.
    await issuer.stop()
    const db = new Database(issuer.dbFile)
    db.prepare("UPDATE audit_events SET details_json = json_set(details_json, '$.keyCustody', 'issuer') WHERE subject = ? AND action = 'agent.spawned'").run(agents[3]!.did)
    db.close()
    issuer = await startIssuer({ dataDir: issuer.dataDir, port: issuer.port, adminKey: issuer.adminKey, env })
    const edited = await cli(['audit', 'verify', '--log', issuer.url, '--state', state])
    expect(edited.code).toBe(1)
    expect(cliErrorCode(edited)).toBe('ERR_SIGNATURE_INVALID')

    // The operator rewrites the log from the edited rows: a new history. The witness refuses it, and
    // audit verify (which saw the old checkpoint) catches it.
    await issuer.stop()
    const db2 = new Database(issuer.dbFile)
    db2.exec('DELETE FROM log_cosignatures; DELETE FROM log_checkpoints; DELETE FROM log_tiles;')
    db2.close()
    issuer = await startIssuer({ dataDir: issuer.dataDir, port: issuer.port, adminKey: issuer.adminKey, env })
    await waitCheckpoint(issuer.url, total, false)
    for (let i = 0; i < 100 && !witness.err().includes('refused a checkpoint'); i++) await sleep(100)
    expect(witness.err()).toContain(`refused a checkpoint of ${origin} (409`)
    const rewritten = await cli(['audit', 'verify', '--log', issuer.url, '--state', state])
    expect(cliErrorCode(rewritten)).toBe('ERR_SIGNATURE_INVALID')
    expect(rewritten.stderr).toMatch(/not consistent with the checkpoint/)
    await issuer.stop()
  })

  it('a SIGKILL during spawn load leaves a log that verifies and covers every acknowledged spawn', async () => {
    let issuer = await startIssuer()
    const orch = await addOrchestratorViaApi(issuer, 'acme')
    const did = await issuerDid(issuer)
    const acked: { credentialId: string; logIndex: number }[] = []
    const bodies = await Promise.all(Array.from({ length: 300 }, (_, i) => agentHeldSpawn(did, `kill-${i}`)))
    const load = pool(bodies, 16, async (body) => {
      try {
        const r = await api(issuer, 'POST', '/v1/agents', { key: orch.apiKey, json: body.body })
        if (r.status === 201) acked.push(r.body as { credentialId: string; logIndex: number })
      } catch {
        // the connection died with the process
      }
    })
    for (let i = 0; i < 2000 && acked.length < 40; i++) await sleep(5)
    expect(acked.length).toBeGreaterThanOrEqual(40)
    await issuer.kill()
    await load
    issuer = await startIssuer({ dataDir: issuer.dataDir, port: issuer.port, adminKey: issuer.adminKey })
    const maxIndex = Math.max(...acked.map((a) => a.logIndex))
    await waitCheckpoint(issuer.url, maxIndex + 1, false)
    const ok = await cli(['audit', 'verify', '--log', issuer.url, '--state', join(tempDir(), 'a.json'), '--json'])
    expect(ok.code, ok.stderr).toBe(0)
    for (const a of acked) {
      const r = await fetch(`${issuer.url}/v1/log/proof?index=${a.logIndex}`)
      expect(r.status).toBe(200)
      const text = await r.text()
      const extra = Buffer.from(/^extra (.*)$/m.exec(text)![1]!, 'base64').toString()
      expect(JSON.parse(extra).details.credentialId).toBe(a.credentialId)
    }
    await issuer.stop()
  })
})
