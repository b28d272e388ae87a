// `agentid audit verify` against a hostile log server: whatever the log sends, the auditor holds a bounded
// amount of it (an endless or oversized checkpoint, entry bundle or tile is refused with
// ERR_PAYLOAD_TOO_LARGE once past what a well-formed one can be).
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, type Server, type ServerResponse } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { MerkleTree, emptyRoot, encodeEntryBundle, generateNoteKey, noteSigner, parseSignerKey, signCheckpoint } from '@agentid/tlog'
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

const { skey, vkey } = generateNoteKey('log.test/hostile')
/** A checkpoint of the hostile log's key, signed for any size and root it claims. */
const signedCheckpoint = (size: number, rootHash: Uint8Array) => signCheckpoint({ origin: 'log.test/hostile', size, rootHash, extensions: [] }, noteSigner(parseSignerKey(skey)))

async function hostileLog(route: (path: string, res: ServerResponse) => boolean, requested: string[] = []): Promise<string> {
  const entries = Array.from({ length: 3 }, (_, i) => utf8.encode(JSON.stringify({ action: 'x', subject: `s${i}`, at: i, actor: 'a', details: {} })))
  const tree = new MerkleTree()
  for (const e of entries) tree.appendEntry(e)
  const note = signedCheckpoint(3, tree.root(3))
  const server = createServer((req, res) => {
    const path = req.url ?? ''
    requested.push(path)
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

  it('refuses a checkpoint claiming more entries than --max-entries before reading any entry', async () => {
    // A signed checkpoint of 2^40 entries: the auditor downloaded and kept ~64 bytes per entry until
    // its memory ran out. Refused before any bundle or tile is asked for; a usage error for a bad bound.
    const requested: string[] = []
    const url = await hostileLog((p, res) => (p === '/log/checkpoint' ? (res.end(signedCheckpoint(2 ** 40, new Uint8Array(32))), true) : false), requested)
    const refused = await auditVerify({ log: url, quorum: '0', state: state() }).catch((e: { code?: string; details?: unknown }) => e)
    expect(refused).toMatchObject({ code: 'ERR_PAYLOAD_TOO_LARGE', details: { size: 2 ** 40, maxEntries: 100_000_000 } })
    expect(requested.filter((p) => p.startsWith('/log/tile/'))).toEqual([])
    // The bound is the caller's: the honest 3-entry log passes at 3 and is refused at 2.
    const honest = await hostileLog(() => false)
    await expect(auditVerify({ log: honest, quorum: '0', state: state(), maxEntries: '3' })).resolves.toMatchObject({ size: 3 })
    expect(await codeOf(auditVerify({ log: honest, quorum: '0', state: state(), maxEntries: '2' }))).toBe('ERR_PAYLOAD_TOO_LARGE')
    for (const bad of ['0', '-1', '1e6', 'lots', '99999999999999999']) {
      expect(await auditVerify({ log: honest, quorum: '0', state: state(), maxEntries: bad }).then(() => 'ok', (e: Error) => e.name), bad).toBe('UsageError')
    }
  })

  it('compares the served tiles and the checkpoints seen before as the entries stream past them', async () => {
    const honestTree = new MerkleTree()
    for (let i = 0; i < 3; i++) honestTree.appendEntry(utf8.encode(JSON.stringify({ action: 'x', subject: `s${i}`, at: i, actor: 'a', details: {} })))
    const url = await hostileLog(() => false)
    const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64')
    const withSeen = (checkpoints: { size: number; root: string }[]) => {
      const file = state()
      writeFileSync(file, JSON.stringify({ checkpoints }))
      return auditVerify({ log: url, quorum: '0', state: file }).then(() => 'ok', (e: { code?: string; message: string }) => `${e.code}: ${e.message}`)
    }
    expect(await withSeen([{ size: 0, root: b64(emptyRoot()) }, { size: 2, root: b64(honestTree.root(2)) }, { size: 3, root: b64(honestTree.root(3)) }])).toBe('ok')
    expect(await withSeen([{ size: 2, root: b64(honestTree.root(1)) }])).toMatch(/^ERR_SIGNATURE_INVALID: .*not consistent with the checkpoint of size 2/)
    expect(await withSeen([{ size: 0, root: b64(honestTree.root(1)) }])).toMatch(/^ERR_SIGNATURE_INVALID: .*size 0/)
    expect(await withSeen([{ size: 4, root: b64(honestTree.root(3)) }])).toMatch(/^ERR_SIGNATURE_INVALID: the log shrank/)
    // A served tile that is not the one the entries make.
    const badTile = await hostileLog((p, res) => (p === '/log/tile/0/000.p/3' ? (res.end(Buffer.alloc(96, 1)), true) : false))
    const refused = await auditVerify({ log: badTile, quorum: '0', state: state() }).catch((e: { code?: string; details?: unknown }) => e)
    expect(refused).toMatchObject({ code: 'ERR_SIGNATURE_INVALID', details: { level: 0, tile: 0 } })
  })
})
