// `agentid audit verify` against a hostile log server: whatever the log sends, the auditor holds a bounded
// amount of it (an endless or oversized checkpoint, entry bundle or tile is refused with
// ERR_PAYLOAD_TOO_LARGE once past what a well-formed one can be).
import { mkdtempSync } from 'node:fs'
import { createServer, type Server, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { MerkleTree, encodeEntryBundle, generateNoteKey, noteSigner, parseSignerKey, signCheckpoint } from '@agentid/tlog'
import { auditVerify } from '../src/commands/tlog.js'

const utf8 = new TextEncoder()
const servers: Server[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections()
    await new Promise((r) => s.close(r))
  }
})

/** Writes 1 MiB chunks, up to `limitMiB` in all (bounded), then holds the response open without ending it. */
function endless(res: ServerResponse, limitMiB: number, sent: { bytes: number }): void {
  const chunk = Buffer.alloc(1 << 20, 0x41)
  res.writeHead(200, { 'content-type': 'application/octet-stream' })
  let n = 0
  const pump = () => {
    while (n < limitMiB && !res.destroyed) {
      n++
      sent.bytes += chunk.length
      if (!res.write(chunk)) return void res.once('drain', pump)
    }
  }
  pump()
}

async function hostileLog(route: (path: string, res: ServerResponse) => boolean): Promise<string> {
  const { skey, vkey } = generateNoteKey('log.test/hostile')
  const entries = Array.from({ length: 3 }, (_, i) => utf8.encode(JSON.stringify({ action: 'x', subject: `s${i}`, at: i, actor: 'a', details: {} })))
  const tree = new MerkleTree()
  for (const e of entries) tree.appendEntry(e)
  const note = signCheckpoint({ origin: 'log.test/hostile', size: 3, rootHash: tree.root(3), extensions: [] }, noteSigner(parseSignerKey(skey)))
  const server = createServer((req, res) => {
    const path = req.url ?? ''
    if (route(path, res)) return
    if (path === '/log/key') return void res.end(`${vkey}\n`)
    if (path === '/log/checkpoint') return void res.end(note)
    if (path === '/log/tile/entries/000.p/3') return void res.end(encodeEntryBundle(entries))
    if (path === '/log/tile/0/000.p/3') return void res.end(tree.tile(0, 0, 3))
    res.writeHead(404).end()
  })
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const addr = server.address() as { port: number }
  return `http://127.0.0.1:${addr.port}`
}

const state = () => join(mkdtempSync(join(tmpdir(), 'agentid-audit-')), 'state.json')
const codeOf = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => e.code ?? String(e))

describe('audit verify against a hostile log server', () => {
  it('verifies the honest log this test serves', async () => {
    const url = await hostileLog(() => false)
    await expect(auditVerify({ log: url, quorum: '0', state: state() })).resolves.toMatchObject({ size: 3 })
  })

  for (const [what, path] of [
    ['entry bundle', '/log/tile/entries/000.p/3'],
    ['tile', '/log/tile/0/000.p/3'],
    ['checkpoint', '/log/checkpoint'],
    ['log key', '/log/key'],
  ] as const) {
    it(`refuses an endless ${what} after a bounded read`, async () => {
      const sent = { bytes: 0 }
      const url = await hostileLog((p, res) => (p === path ? (endless(res, 64, sent), true) : false))
      const started = Date.now()
      expect(await codeOf(auditVerify({ log: url, quorum: '0', state: state() }))).toBe('ERR_PAYLOAD_TOO_LARGE')
      expect(Date.now() - started).toBeLessThan(10_000)
      // An entry bundle holds at most 256 entries of 2 + 65,535 bytes (16.8 MB); everything else far less.
      expect(sent.bytes).toBeLessThan(40 << 20)
    }, 20_000)
  }
})
