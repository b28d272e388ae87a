// `agentid witness serve` over real HTTP with hostile requests: each is answered with its status (an
// oversized body with 413, not a reset connection), and the witness keeps cosigning afterwards.
import { spawn as spawnProcess, type ChildProcess } from 'node:child_process'
import { request } from 'node:http'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { MerkleTree, formatAddCheckpointRequest, generateNoteKey, noteSigner, parseSignerKey, signCheckpoint } from '@agentid/tlog'
import { CLI_BIN, ROOT, cleanup, cli, freePort, sleep, tempDir } from './harness.js'

const procs: ChildProcess[] = []
afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL')
  await cleanup()
})

/** POSTs `body` (sent in 16 KiB chunks) and resolves with the status, or 'reset' when the connection fails before an answer. */
function post(url: string, body: Buffer, headers: Record<string, string> = {}): Promise<number | 'reset'> {
  return new Promise((resolve) => {
    const req = request(`${url}/add-checkpoint`, { method: 'POST', headers }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', () => resolve('reset'))
    let off = 0
    const pump = () => {
      while (off < body.length) {
        const chunk = body.subarray(off, off + 16384)
        off += chunk.length
        if (!req.write(chunk)) return void req.once('drain', pump)
      }
      req.end()
    }
    pump()
  })
}

describe('witness serve over HTTP, hostile requests', () => {
  it('answers oversized, malformed and misrouted requests with their status, then still cosigns', async () => {
    const dir = tempDir()
    const keys = (await cli(['witness', 'keygen', 'witness.test/w1'])).stdout.trim().split('\n') as [string, string]
    writeFileSync(join(dir, 'witness.key'), `${keys[0]}\n`, { mode: 0o600 })
    const log = generateNoteKey('log.test')
    const port = await freePort()
    const proc = spawnProcess(process.execPath, [CLI_BIN, 'witness', 'serve', '--key', join(dir, 'witness.key'), '--log', 'log.test', log.vkey, '--state', join(dir, 'w.json'), '--port', String(port)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    procs.push(proc)
    let out = ''
    proc.stdout!.on('data', (c: Buffer) => (out += c.toString()))
    for (let i = 0; i < 200 && !out.includes('listening'); i++) await sleep(50)
    const url = `http://127.0.0.1:${port}`

    expect(await post(url, Buffer.alloc(200_000, 0x41))).toBe(413)
    expect(await post(url, Buffer.alloc(200_000, 0x41), { 'transfer-encoding': 'chunked' })).toBe(413)
    // Large bodies, declared and chunked, are answered 413 every time: the witness answers past 64 KiB
    // and closes lingering (@agentid/core lingerAfterAnswer), so the client still sending reads it.
    for (let i = 0; i < 3; i++) {
      expect(await post(url, Buffer.alloc(6 << 20, 0x41))).toBe(413)
      expect(await post(url, Buffer.alloc(6 << 20, 0x41), { 'transfer-encoding': 'chunked' })).toBe(413)
    }
    expect(await post(url, Buffer.from('hello'))).toBe(400)
    expect(await post(url, Buffer.from([0x6f, 0x6c, 0x64, 0x20, 0x30, 0x0a, 0x0a, 0xff]))).toBe(400)
    expect((await fetch(`${url}/add-checkpoint`)).status).toBe(405)
    expect((await fetch(`${url}/other`, { method: 'POST', body: 'x' })).status).toBe(404)

    const tree = new MerkleTree()
    for (let i = 0; i < 5; i++) tree.appendEntry(Buffer.from(`e${i}`))
    const note = signCheckpoint({ origin: 'log.test', size: 5, rootHash: tree.root(5), extensions: [] }, noteSigner(parseSignerKey(log.skey)))
    const res = await fetch(`${url}/add-checkpoint`, { method: 'POST', body: formatAddCheckpointRequest(0, [], note) })
    expect(res.status).toBe(200)
    expect(await res.text()).toMatch(/^\u2014 witness\.test\/w1 /)
  }, 30_000)
})
