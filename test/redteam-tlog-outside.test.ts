// An outside verifier of the issuer log, written from the C2SP specs (signed-note, tlog-checkpoint,
// tlog-tiles, tlog-proof, tlog-cosignature, tlog-witness) and RFC 6962/9162 with node:crypto only: no
// code of @agentid/tlog. It fetches a real issuer's tiles and recomputes its tree head, checks its
// proofs, probes its tile paths, and drives a real `agentid witness serve` as a log of its own.
import { spawn as spawnProcess, type ChildProcess } from 'node:child_process'
import { createHash, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { CLI_BIN, ROOT, addOrchestratorViaApi, agentHeldSpawn, api, cleanup, cli, freePort, issuerDid, pool, sleep, startIssuer, tempDir } from './harness.js'

const procs: ChildProcess[] = []
afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL')
  await cleanup()
})

// ---- the outside verifier: RFC 6962 hashing, signed notes, tiles, proofs ----

const sha256 = (...parts: Uint8Array[]) => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest()
}
const leafHash = (entry: Uint8Array) => sha256(Buffer.from([0]), entry)
const nodeHash = (l: Uint8Array, r: Uint8Array) => sha256(Buffer.from([1]), l, r)
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64')
function unb64(s: string): Buffer {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) throw new Error(`not base64: ${s}`)
  const b = Buffer.from(s, 'base64')
  if (b.toString('base64') !== s) throw new Error(`not canonical base64: ${s}`)
  return b
}

/** RFC 6962 §2.1 MTH over leaf hashes. */
function mth(leaves: readonly Uint8Array[]): Buffer {
  if (leaves.length === 0) return sha256()
  if (leaves.length === 1) return Buffer.from(leaves[0]!)
  let k = 1
  while (k * 2 < leaves.length) k *= 2
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)))
}

/** RFC 6962 §2.1.2 SUBPROOF, for consistency proofs sent to a witness. */
function subproof(m: number, leaves: readonly Uint8Array[], b: boolean): Buffer[] {
  const n = leaves.length
  if (m === n) return b ? [] : [mth(leaves)]
  let k = 1
  while (k * 2 < n) k *= 2
  if (m <= k) return [...subproof(m, leaves.slice(0, k), b), mth(leaves.slice(k))]
  return [...subproof(m - k, leaves.slice(k), false), mth(leaves.slice(0, k))]
}
const consistency = (m: number, leaves: readonly Uint8Array[]) => subproof(m, leaves, true)

/** RFC 9162 §2.1.3.2: verify an inclusion proof. */
function inclusionRoot(index: number, size: number, leaf: Uint8Array, proof: readonly Uint8Array[]): Buffer {
  if (index >= size) throw new Error('index beyond size')
  let fn = index
  let sn = size - 1
  let r = Buffer.from(leaf)
  for (const p of proof) {
    if (sn === 0) throw new Error('proof too long')
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r)
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2) }
    } else {
      r = nodeHash(r, p)
    }
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  if (sn !== 0) throw new Error('proof too short')
  return r
}

const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex')
const ed25519Key = (raw: Uint8Array) => createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: 'der', type: 'spki' })
const rawOf = (key: KeyObject) => (key.export({ format: 'der', type: 'spki' }) as Buffer).subarray(12)
const keyIdOf = (name: string, type: number, pub: Uint8Array) => sha256(Buffer.from(`${name}\n`), Buffer.from([type]), pub).subarray(0, 4)

interface Vkey { name: string; id: Buffer; type: number; key: KeyObject }
function parseVkey(vkey: string): Vkey {
  const [name, idHex, ...rest] = vkey.split('+')
  const material = unb64(rest.join('+'))
  const type = material[0]!
  const pub = material.subarray(1)
  expect(pub.length).toBe(32)
  const id = keyIdOf(name!, type, pub)
  expect(id.toString('hex')).toBe(idHex)
  return { name: name!, id, type, key: ed25519Key(pub) }
}
function makeVkey(name: string, type: number, key: KeyObject): string {
  const pub = rawOf(createPublicKey(key))
  return `${name}+${keyIdOf(name, type, pub).toString('hex')}+${b64(Buffer.concat([Buffer.from([type]), pub]))}`
}

/** C2SP signed-note: the text (with its final newline) and its signature lines. */
function splitNote(note: string): { text: string; sigs: { name: string; id: Buffer; sig: Buffer }[] } {
  const at = note.lastIndexOf('\n\n')
  expect(at).toBeGreaterThan(0)
  const text = note.slice(0, at + 1)
  const lines = note.slice(at + 2).split('\n')
  expect(lines.pop()).toBe('')
  const sigs = lines.map((l) => {
    const m = /^\u2014 (\S+) (\S+)$/.exec(l)
    expect(m, `signature line ${l}`).not.toBeNull()
    const raw = unb64(m![2]!)
    return { name: m![1]!, id: raw.subarray(0, 4), sig: raw.subarray(4) }
  })
  return { text, sigs }
}

/** Opens a checkpoint with the log key and returns its size and root (C2SP tlog-checkpoint). */
function openCheckpoint(note: string, log: Vkey): { origin: string; size: number; root: Buffer; text: string; sigs: ReturnType<typeof splitNote>['sigs'] } {
  const { text, sigs } = splitNote(note)
  const mine = sigs.filter((s) => s.name === log.name && s.id.equals(log.id))
  expect(mine.length).toBeGreaterThan(0)
  for (const s of mine) expect(verify(null, Buffer.from(text), log.key, s.sig)).toBe(true)
  const lines = text.slice(0, -1).split('\n')
  expect(lines.length).toBeGreaterThanOrEqual(3)
  expect(lines[1]).toMatch(/^(0|[1-9][0-9]*)$/)
  const root = unb64(lines[2]!)
  expect(root.length).toBe(32)
  return { origin: lines[0]!, size: Number(lines[1]), root, text, sigs }
}

/** tlog-tiles `<N>`: 3-digit groups, all but the last prefixed with x. */
function tileIndex(n: number): string {
  const groups: string[] = []
  do {
    groups.unshift(String(n % 1000).padStart(3, '0'))
    n = Math.floor(n / 1000)
  } while (n > 0)
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/')
}
const tileUrl = (base: string, level: number | 'entries', n: number, w: number) => `${base}/log/tile/${level}/${tileIndex(n)}${w === 256 ? '' : `.p/${w}`}`

async function get(url: string): Promise<{ status: number; type: string; body: Buffer }> {
  const r = await fetch(url)
  return { status: r.status, type: r.headers.get('content-type') ?? '', body: Buffer.from(await r.arrayBuffer()) }
}

function entriesOf(bundle: Buffer): Buffer[] {
  const out: Buffer[] = []
  for (let off = 0; off < bundle.length; ) {
    expect(off + 2).toBeLessThanOrEqual(bundle.length)
    const len = bundle.readUInt16BE(off)
    expect(off + 2 + len).toBeLessThanOrEqual(bundle.length)
    out.push(bundle.subarray(off + 2, off + 2 + len))
    off += 2 + len
  }
  return out
}

/** Fetches every tile and entry bundle of a tree of `size` and recomputes the root from them. */
async function recomputeFromTiles(base: string, size: number): Promise<{ root: Buffer; leaves: Buffer[] }> {
  const leaves: Buffer[] = []
  for (let n = 0; n * 256 < size; n++) {
    const w = Math.min(256, size - n * 256)
    const [tile, bundle] = await Promise.all([get(tileUrl(base, 0, n, w)), get(tileUrl(base, 'entries', n, w))])
    expect(tile.status, tileUrl(base, 0, n, w)).toBe(200)
    expect(bundle.status).toBe(200)
    expect(tile.type).toBe('application/octet-stream')
    expect(tile.body.length).toBe(32 * w)
    const entries = entriesOf(bundle.body)
    expect(entries.length).toBe(w)
    entries.forEach((e, i) => expect(leafHash(e).equals(tile.body.subarray(32 * i, 32 * i + 32)), `leaf ${n * 256 + i}`).toBe(true))
    for (let i = 0; i < w; i++) leaves.push(tile.body.subarray(32 * i, 32 * i + 32))
  }
  // Higher levels: hash k of tile (l, n) is the MTH of the k-th full tile below.
  for (let level = 1, span = 256; Math.floor(size / span) > 0; level++, span *= 256) {
    const nodes = Math.floor(size / span)
    for (let n = 0; n * 256 < nodes; n++) {
      const w = Math.min(256, nodes - n * 256)
      const tile = await get(tileUrl(base, level, n, w))
      expect(tile.status, tileUrl(base, level, n, w)).toBe(200)
      expect(tile.body.length).toBe(32 * w)
      for (let k = 0; k < w; k++) {
        const first = (n * 256 + k) * span
        expect(mth(leaves.slice(first, first + span)).equals(tile.body.subarray(32 * k, 32 * k + 32)), `tile ${level}/${n} hash ${k}`).toBe(true)
      }
    }
  }
  return { root: mth(leaves), leaves }
}

async function waitSize(base: string, log: Vkey, atLeast: number) {
  for (let i = 0; i < 300; i++) {
    const r = await fetch(`${base}/log/checkpoint`)
    if (r.status === 200) {
      const cp = openCheckpoint(await r.text(), log)
      if (cp.size >= atLeast) return cp
    }
    await sleep(100)
  }
  throw new Error(`no checkpoint of size ${atLeast}`)
}

describe('an outside verifier (C2SP specs, node:crypto only) against a real issuer', () => {
  it('recomputes the tree head from the served tiles, checks proofs, old partial tiles and refuses non-canonical paths', async () => {
    const issuer = await startIssuer()
    const log = parseVkey((await (await fetch(`${issuer.url}/log/key`)).text()).trim())
    expect(log.type).toBe(0x01)
    expect(log.name).toBe(`127.0.0.1:${issuer.port}`)
    const orch = await addOrchestratorViaApi(issuer, 'outside')
    const did = await issuerDid(issuer)
    const spawnSome = async (n: number, prefix: string) => {
      const bodies = await Promise.all(Array.from({ length: n }, (_, i) => agentHeldSpawn(did, `${prefix}-${i}`)))
      return pool(bodies, 8, async (b) => {
        const r = await api(issuer, 'POST', '/v1/agents', { key: orch.apiKey, json: b.body })
        expect(r.status, r.text).toBe(201)
        return r.body as { logIndex: number; credentialId: string }
      })
    }
    const first = await spawnSome(20, 'a')
    const early = await waitSize(issuer.url, log, Math.max(...first.map((a) => a.logIndex)) + 1)
    expect(early.origin).toBe(log.name)
    const earlyTiles = await recomputeFromTiles(issuer.url, early.size)
    expect(earlyTiles.root.equals(early.root)).toBe(true)

    await spawnSome(250, 'b')
    const cpRes = await fetch(`${issuer.url}/log/checkpoint`)
    expect(cpRes.headers.get('content-type')).toBe('text/plain; charset=utf-8')
    const late = await waitSize(issuer.url, log, 271)
    expect(late.size).toBeGreaterThan(256)
    const { root, leaves } = await recomputeFromTiles(issuer.url, late.size)
    expect(root.equals(late.root)).toBe(true)
    // The earlier tree is a prefix of this one (append-only), and its partial tiles are still served
    // (tlog-tiles: a partial tile of a checkpointed size MUST stay served until the full tile exists).
    expect(mth(leaves.slice(0, early.size)).equals(early.root)).toBe(true)
    const oldPartial = await get(tileUrl(issuer.url, 0, 0, early.size))
    expect(oldPartial.status).toBe(200)
    expect(oldPartial.body.equals(Buffer.concat(leaves.slice(0, early.size)))).toBe(true)

    // tlog-proof for entries across the tree, verified with RFC 9162's algorithm.
    for (const index of [0, 1, 200, 255, 256, late.size - 1]) {
      const r = await fetch(`${issuer.url}/v1/log/proof?index=${index}`)
      expect(r.status).toBe(200)
      const text = await r.text()
      const lines = text.split('\n')
      expect(lines[0]).toBe('c2sp.org/tlog-proof@v1')
      let i = 1
      let extra: Buffer | undefined
      if (lines[i]!.startsWith('extra ')) extra = unb64(lines[i++]!.slice(6))
      expect(lines[i++]).toBe(`index ${index}`)
      const proof: Buffer[] = []
      while (lines[i] !== '') proof.push(unb64(lines[i++]!))
      const cp = openCheckpoint(lines.slice(i + 1).join('\n'), log)
      expect(extra && leafHash(extra).equals(leaves[index]!)).toBe(true)
      expect(inclusionRoot(index, cp.size, leaves[index]!, proof).equals(mth(leaves.slice(0, cp.size)))).toBe(true)
      expect(cp.root.equals(mth(leaves.slice(0, cp.size)))).toBe(true)
    }

    // Paths the spec does not allow, or tiles beyond the checkpoint: never served.
    const bad = [
      'tile/0/x000/000', 'tile/00/000', 'tile/0/0', 'tile/0/0000', 'tile/0/000.p/0', 'tile/0/000.p/256', 'tile/0/000.p/010',
      'tile/0/001.p/255', 'tile/0/002', `tile/1/000`, 'tile/64/000', 'tile/entries/000.p/', 'tile/entries/x000/000', 'tile/0/000.p/5/', 'tile/0/000/',
      'tile/0/-01', 'tile/0/00a', 'tile/0/x1/000', 'tile/0/X000/000', 'tile/entries/009',
    ]
    for (const p of bad) expect((await get(`${issuer.url}/log/${p}`)).status, p).toBe(404)
    await issuer.stop()
  })
})

describe('an outside verifier of the issuer\'s witnessed checkpoints', () => {
  it('verifies the witness cosignatures the issuer serves on its checkpoint and in its tlog-proofs', async () => {
    const dir = tempDir()
    let issuer = await startIssuer()
    const logVkey = (await (await fetch(`${issuer.url}/log/key`)).text()).trim()
    const log = parseVkey(logVkey)
    const [skey, wvkey] = (await cli(['witness', 'keygen', 'witness.outside/w3'])).stdout.trim().split('\n') as [string, string]
    const w = parseVkey(wvkey)
    writeFileSync(join(dir, 'w.key'), `${skey}\n`, { mode: 0o600 })
    const port = await freePort()
    const proc = spawnProcess(process.execPath, [CLI_BIN, 'witness', 'serve', '--key', join(dir, 'w.key'), '--log', log.name, logVkey, '--state', join(dir, 'w.json'), '--port', String(port)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    procs.push(proc)
    let out = ''
    proc.stdout!.on('data', (c: Buffer) => (out += c.toString()))
    for (let i = 0; i < 200 && !out.includes('listening'); i++) await sleep(50)
    await issuer.stop()
    issuer = await startIssuer({ dataDir: issuer.dataDir, port: issuer.port, adminKey: issuer.adminKey, env: { AGENTID_LOG_WITNESSES: JSON.stringify([{ url: `http://127.0.0.1:${port}`, vkey: wvkey }]) } })
    const orch = await addOrchestratorViaApi(issuer, 'outside-w')
    const did = await issuerDid(issuer)
    const spawned: { logIndex: number }[] = []
    for (let i = 0; i < 5; i++) {
      const r = await api(issuer, 'POST', '/v1/agents', { key: orch.apiKey, json: (await agentHeldSpawn(did, `w-${i}`)).body })
      expect(r.status, r.text).toBe(201)
      spawned.push(r.body)
    }
    const last = Math.max(...spawned.map((a) => a.logIndex))
    // The checkpoint served, once it covers the spawns and carries the witness's cosignature.
    let note = ''
    for (let i = 0; i < 200; i++) {
      note = await (await fetch(`${issuer.url}/log/checkpoint`)).text()
      if (Number(note.split('\n')[1]) > last && note.includes(`\u2014 ${w.name} `)) break
      await sleep(100)
    }
    const checkCosigned = (n: string) => {
      const cp = openCheckpoint(n, log)
      const mine = cp.sigs.filter((s) => s.name === w.name && s.id.equals(w.id))
      expect(mine.length).toBeGreaterThan(0)
      for (const s of mine) {
        expect(s.sig.length).toBe(72)
        const ts = s.sig.readBigUInt64BE(0)
        expect(Number(ts)).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + 60)
        expect(verify(null, Buffer.from(`cosignature/v1\ntime ${ts}\n${cp.text}`), w.key, s.sig.subarray(8))).toBe(true)
      }
      return cp
    }
    const cp = checkCosigned(note)
    expect(cp.size).toBeGreaterThan(last)
    // A tlog-proof for the last spawn: its checkpoint cosigned too, its inclusion proof verifies.
    const text = await (await fetch(`${issuer.url}/v1/log/proof?index=${last}`)).text()
    const lines = text.split('\n')
    let i = 1
    const extra = lines[i]!.startsWith('extra ') ? unb64(lines[i++]!.slice(6)) : undefined
    expect(lines[i++]).toBe(`index ${last}`)
    const proof: Buffer[] = []
    while (lines[i] !== '') proof.push(unb64(lines[i++]!))
    const pcp = checkCosigned(lines.slice(i + 1).join('\n'))
    expect(inclusionRoot(last, pcp.size, leafHash(extra!), proof).equals(pcp.root)).toBe(true)
    await issuer.stop()
    proc.kill('SIGTERM')
  })
})

describe('an outside log against a real `agentid witness serve` (C2SP tlog-witness)', () => {
  it('cosigns a consistent history and answers each fault with the status the spec names', async () => {
    const dir = tempDir()
    const origin = 'outside.example/log'
    const { privateKey: logKey } = generateKeyPairSync('ed25519')
    const logVkey = makeVkey(origin, 0x01, logKey)
    const logId = keyIdOf(origin, 0x01, rawOf(createPublicKey(logKey)))
    const keys = await cli(['witness', 'keygen', 'witness.outside/w1'])
    expect(keys.code).toBe(0)
    const [skey, wvkey] = keys.stdout.trim().split('\n') as [string, string]
    const w = parseVkey(wvkey)
    expect(w.type).toBe(0x04)
    writeFileSync(join(dir, 'w.key'), `${skey}\n`, { mode: 0o600 })
    const port = await freePort()
    const proc = spawnProcess(process.execPath, [CLI_BIN, 'witness', 'serve', '--key', join(dir, 'w.key'), '--log', origin, logVkey, '--state', join(dir, 'w.json'), '--port', String(port)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    procs.push(proc)
    let out = ''
    proc.stdout!.on('data', (c: Buffer) => (out += c.toString()))
    proc.stderr!.on('data', (c: Buffer) => (out += c.toString()))
    for (let i = 0; i < 200 && !out.includes('listening'); i++) await sleep(50)
    const url = `http://127.0.0.1:${port}/add-checkpoint`

    const leaves = Array.from({ length: 40 }, (_, i) => leafHash(Buffer.from(`entry ${i}`)))
    const body = (size: number, extensions: string[] = [], rootOverride?: Buffer) =>
      [origin, String(size), b64(rootOverride ?? mth(leaves.slice(0, size))), ...extensions].map((l) => `${l}\n`).join('')
    const signed = (text: string, key: KeyObject = logKey, id: Buffer = logId, name = origin) => `${text}\n\u2014 ${name} ${b64(Buffer.concat([id, sign(null, Buffer.from(text), key)]))}\n`
    const add = async (old: number, proof: Buffer[], note: string) => {
      const r = await fetch(url, { method: 'POST', body: `old ${old}\n${proof.map((p) => `${b64(p)}\n`).join('')}\n${note}` })
      return { status: r.status, type: r.headers.get('content-type') ?? '', text: await r.text() }
    }
    const checkCosignature = (text: string, answer: string) => {
      const lines = answer.split('\n')
      expect(lines.pop()).toBe('')
      expect(lines.length).toBeGreaterThan(0)
      const m = /^\u2014 (\S+) (\S+)$/.exec(lines[0]!)!
      expect(m[1]).toBe(w.name)
      const raw = unb64(m[2]!)
      expect(raw.subarray(0, 4).equals(w.id)).toBe(true)
      expect(raw.length).toBe(4 + 8 + 64)
      const ts = raw.readBigUInt64BE(4)
      expect(Math.abs(Number(ts) - Date.now() / 1000)).toBeLessThan(120)
      expect(verify(null, Buffer.from(`cosignature/v1\ntime ${ts}\n${text}`), w.key, raw.subarray(12))).toBe(true)
    }

    // First checkpoint from 0, with an extension line (cosigned as part of the body) and an unknown signature.
    const t5 = body(5, ['ext line'])
    const stranger = generateKeyPairSync('ed25519').privateKey
    const note5 = signed(t5) + `\u2014 someone.else/key ${b64(Buffer.concat([Buffer.alloc(4, 7), sign(null, Buffer.from(t5), stranger)]))}\n`
    let r = await add(0, [], note5)
    expect(r.status, r.text).toBe(200)
    checkCosignature(t5, r.text)
    // The same request again: the witness is at 5 now.
    r = await add(0, [], note5)
    expect(r.status).toBe(409)
    expect(r.type).toBe('text/x.tlog.size')
    expect(r.text).toBe('5\n')
    // Growing with a correct consistency proof.
    const t9 = body(9)
    r = await add(5, consistency(5, leaves.slice(0, 9)), signed(t9))
    expect(r.status, r.text).toBe(200)
    checkCosignature(t9, r.text)
    // A wrong proof: 422. A fork (same size, other root): 409. A rollback (old above the new size): 400.
    r = await add(9, consistency(9, leaves.slice(0, 12)).map((h, i) => (i === 0 ? sha256(h) : h)), signed(body(12)))
    expect(r.status).toBe(422)
    r = await add(9, [], signed(body(9, [], sha256(Buffer.from('fork')))))
    expect(r.status).toBe(409)
    r = await add(9, [], signed(body(7)))
    expect(r.status).toBe(400)
    // A forked history at a larger size, whose "proof" is from another tree: 422.
    const forked = leaves.slice(0, 16).map((l, i) => (i === 3 ? sha256(l) : l))
    r = await add(9, consistency(9, forked), signed(body(16, [], mth(forked))))
    expect(r.status).toBe(422)
    // Unknown origin: 404. Signed by an unknown key only: 403. The log's key ID with a bad signature: 403.
    r = await add(0, [], signed(`other.example/log\n1\n${b64(leaves[0]!)}\n`))
    expect(r.status).toBe(404)
    r = await add(9, consistency(9, leaves.slice(0, 12)), signed(body(12), stranger, Buffer.alloc(4, 7)))
    expect(r.status).toBe(403)
    r = await add(9, consistency(9, leaves.slice(0, 12)), signed(body(12), stranger))
    expect(r.status).toBe(403)
    // Malformed old lines: 400.
    for (const old of ['09', '-1', ' 9', '9 ']) {
      const res = await fetch(url, { method: 'POST', body: `old ${old}\n\n${signed(body(12))}` })
      expect(res.status, old).toBe(400)
    }
    // After all that, the witness is still at 9 and goes on from there.
    r = await add(0, [], signed(body(12)))
    expect(r.status).toBe(409)
    expect(r.text).toBe('9\n')
    const t12 = body(12)
    r = await add(9, consistency(9, leaves.slice(0, 12)), signed(t12))
    expect(r.status, r.text).toBe(200)
    checkCosignature(t12, r.text)
    // Same size, same root, empty proof: cosigned again (idempotent), per spec.
    r = await add(12, [], signed(t12))
    expect(r.status, r.text).toBe(200)
    proc.kill('SIGTERM')
  })

  it('follows a log under each key it is given for the origin (a key rotation: --log twice for one origin)', async () => {
    const dir = tempDir()
    const origin = 'rotating.example/log'
    const { privateKey: oldKey } = generateKeyPairSync('ed25519')
    const { privateKey: newKey } = generateKeyPairSync('ed25519')
    const [skey] = (await cli(['witness', 'keygen', 'witness.outside/w2'])).stdout.trim().split('\n') as [string]
    writeFileSync(join(dir, 'w.key'), `${skey}\n`, { mode: 0o600 })
    const port = await freePort()
    const args = ['witness', 'serve', '--key', join(dir, 'w.key'), '--log', origin, makeVkey(origin, 0x01, oldKey), origin, makeVkey(origin, 0x01, newKey), '--state', join(dir, 'w.json'), '--port', String(port)]
    const proc = spawnProcess(process.execPath, [CLI_BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    procs.push(proc)
    let out = ''
    proc.stdout!.on('data', (c: Buffer) => (out += c.toString()))
    proc.stderr!.on('data', (c: Buffer) => (out += c.toString()))
    for (let i = 0; i < 200 && !out.includes('listening'); i++) await sleep(50)
    const leaves = Array.from({ length: 8 }, (_, i) => leafHash(Buffer.from(`r ${i}`)))
    const note = (size: number, key: KeyObject) => {
      const text = `${origin}\n${size}\n${b64(mth(leaves.slice(0, size)))}\n`
      return `${text}\n\u2014 ${origin} ${b64(Buffer.concat([keyIdOf(origin, 0x01, rawOf(createPublicKey(key))), sign(null, Buffer.from(text), key)]))}\n`
    }
    const post = (body: string) => fetch(`http://127.0.0.1:${port}/add-checkpoint`, { method: 'POST', body }).then((r) => r.status)
    expect(await post(`old 0\n\n${note(3, oldKey)}`)).toBe(200)
    expect(await post(`old 3\n${consistency(3, leaves.slice(0, 6)).map((h) => `${b64(h)}\n`).join('')}\n${note(6, newKey)}`)).toBe(200)
    proc.kill('SIGTERM')
  })
})
