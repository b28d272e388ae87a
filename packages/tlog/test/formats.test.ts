// Signed notes, checkpoints, cosignatures, tlog-proof and the witness protocol: round trips and
// hostile or malformed inputs (codes asserted, never messages).
import { describe, expect, it } from 'vitest'
import {
  MerkleTree,
  SIG_TYPE_COSIGNATURE_V1,
  addCheckpoint,
  cosignatureMessage,
  createCosigner,
  formatAddCheckpointRequest,
  formatTlogProof,
  generateNoteKey,
  noteSigner,
  noteVerifier,
  openCheckpoint,
  openNote,
  parseAddCheckpointRequest,
  parseCheckpoint,
  parseSignerKey,
  parseTlogProof,
  parseVerifierKey,
  signCheckpoint,
  signNote,
  verifyTlogProof,
  decodeEntryBundle,
  encodeEntryBundle,
  parseTilePath,
  type WitnessRecord,
} from '@agentid/tlog'

const utf8 = (s: string) => new TextEncoder().encode(s)
const code = (fn: () => unknown) => {
  try {
    fn()
    return 'ok'
  } catch (e: any) {
    return e.code ?? String(e)
  }
}

const ORIGIN = 'issuer.example/log'
const log = generateNoteKey(ORIGIN)
const mallory = generateNoteKey(ORIGIN) // same name, another key
const w1 = generateNoteKey('witness.example/w1', SIG_TYPE_COSIGNATURE_V1)
const w2 = generateNoteKey('witness.example/w2', SIG_TYPE_COSIGNATURE_V1)
const logSigner = noteSigner(parseSignerKey(log.skey))

function buildTree(n: number) {
  const tree = new MerkleTree()
  for (let i = 0; i < n; i++) tree.appendEntry(utf8(`entry ${i}`))
  return tree
}
const checkpointOf = (tree: MerkleTree, size = tree.size, signer = logSigner) =>
  signCheckpoint({ origin: ORIGIN, size, rootHash: tree.root(size), extensions: [] }, signer)

describe('signed notes', () => {
  it('round trip, and a known key with a bad signature refuses the whole note', () => {
    const note = signNote('hello\n', [logSigner])
    expect(openNote(note, [noteVerifier(log.vkey)]).text).toBe('hello\n')
    expect(code(() => openNote(note, [noteVerifier(mallory.vkey)]))).toBe('ERR_UNTRUSTED_ISSUER') // other key id: ignored
    const forged = note.replace('hello', 'hellO')
    expect(code(() => openNote(forged, [noteVerifier(log.vkey)]))).toBe('ERR_SIGNATURE_INVALID')
  })
  it('verifies every signature line of a known key, repeated ones too (C2SP: MUST verify)', () => {
    const note = signNote('hello\n', [logSigner])
    const line = note.slice(note.indexOf('\n\n') + 2)
    const sig = Buffer.from(line.slice(line.lastIndexOf(' ') + 1, -1), 'base64')
    sig[sig.length - 1]! ^= 1 // same name and key ID, a signature that does not verify
    const bad = `${line.slice(0, line.lastIndexOf(' ') + 1)}${sig.toString('base64')}\n`
    const verifiers = [noteVerifier(log.vkey)]
    expect(code(() => openNote(note + bad, verifiers))).toBe('ERR_SIGNATURE_INVALID') // skipped before
    expect(code(() => openNote(note + line + bad, verifiers))).toBe('ERR_SIGNATURE_INVALID')
    expect(code(() => openNote(`hello\n\n${bad}${line}`, verifiers))).toBe('ERR_SIGNATURE_INVALID')
    // A repeated good line verifies; the key is reported once.
    expect(openNote(note + line, verifiers).verified).toHaveLength(1)
    // Cosignatures: two valid lines of one witness (two timestamps) pass, a bad second one refuses.
    const cp = checkpointOf(buildTree(3))
    const cosigner = createCosigner(parseSignerKey(w1.skey))
    const text = cp.slice(0, cp.indexOf('\n\n') + 1)
    const c1 = cosigner.cosign(text, 1_700_000_000)
    const c2 = cosigner.cosign(text, 1_700_000_100)
    const c3 = cosigner.cosign('other\n', 1_700_000_100) // a valid cosignature of another text
    const wv = [noteVerifier(log.vkey), noteVerifier(w1.vkey)]
    expect(openNote(cp + c1 + c2, wv).verified).toHaveLength(2)
    expect(code(() => openNote(cp + c1 + c3, wv))).toBe('ERR_SIGNATURE_INVALID')
    expect(code(() => openCheckpoint(cp + c1 + c3, { log: log.vkey, witnesses: [w1.vkey], quorum: 1 }))).toBe('ERR_SIGNATURE_INVALID')
  })
  it('malformed notes', () => {
    const good = signNote('hello\n', [logSigner])
    for (const bad of [
      '',
      'hello\n',
      good.replace('\u2014', '-'),
      good.replace('\n\n', '\n\r\n'),
      good.slice(0, -1),
      good + 'trailing\n',
      good.replace(/ [A-Za-z0-9+/=]+\n$/, ' !!!\n'),
      good.replace(/ [A-Za-z0-9+/=]+\n$/, ' AAAA\n'), // fewer than 5 bytes
      good.replace(ORIGIN, 'issuer\u00a0example'),
      'a\ud800\n\n' + good.split('\n\n')[1],
      'x'.repeat((1 << 20) + 1),
      'hello\n\n' + good.split('\n\n')[1]!.repeat(101),
    ]) {
      expect(code(() => openNote(bad, [noteVerifier(log.vkey)])), JSON.stringify(bad.slice(0, 60))).toBe('ERR_MALFORMED')
    }
  })
  it('signNote and keys refuse misuse', () => {
    expect(() => signNote('no newline', [logSigner])).toThrow(TypeError)
    expect(() => signNote('tab\there\n', [logSigner])).toThrow(TypeError)
    expect(() => generateNoteKey('bad name')).toThrow(TypeError)
    expect(code(() => parseVerifierKey('a+b'))).toBe('ERR_MALFORMED')
    expect(code(() => parseSignerKey(log.vkey))).toBe('ERR_MALFORMED')
    expect(code(() => parseSignerKey(log.skey.replace(/\+[0-9a-f]{8}\+/, '+00000000+')))).toBe('ERR_MALFORMED')
    expect(parseVerifierKey(w1.vkey).type).toBe(SIG_TYPE_COSIGNATURE_V1)
  })
})

describe('checkpoints and cosignatures', () => {
  const tree = buildTree(20)
  const cosigner1 = createCosigner(parseSignerKey(w1.skey))
  const cosigner2 = createCosigner(parseSignerKey(w2.skey))

  it('parse refuses malformed bodies', () => {
    const root = Buffer.from(tree.root()).toString('base64')
    for (const bad of [
      `${ORIGIN}\n20\n${root}`,
      `${ORIGIN}\n020\n${root}\n`,
      `${ORIGIN}\n-1\n${root}\n`,
      `${ORIGIN}\n99999999999999999\n${root}\n`,
      `${ORIGIN}\n20\n${root.slice(4)}\n`,
      `\n20\n${root}\n`,
      `${ORIGIN}\n20\n${root}\n\n`,
      `${ORIGIN}\n20\n`,
    ]) {
      expect(code(() => parseCheckpoint(bad)), bad).toBe('ERR_MALFORMED')
    }
    expect(parseCheckpoint(`${ORIGIN}\n20\n${root}\next one\n`).extensions).toEqual(['ext one'])
  })
  it('opens with log key, origin and witness quorum', () => {
    const note = checkpointOf(tree)
    const text = note.slice(0, note.indexOf('\n\n') + 1)
    const cosigned = note + cosigner1.cosign(text, 1700000000) + cosigner2.cosign(text, 1700000001)
    const cp = openCheckpoint(cosigned, { log: log.vkey, witnesses: [w1.vkey, w2.vkey], quorum: 2 })
    expect(cp.size).toBe(20)
    expect(cp.cosignatures.map((c) => c.timestamp).sort()).toEqual([1700000000, 1700000001])
    expect(code(() => openCheckpoint(note, { log: log.vkey, witnesses: [w1.vkey], quorum: 1 }))).toBe('ERR_UNTRUSTED_ISSUER')
    expect(code(() => openCheckpoint(cosigned, { log: mallory.vkey }))).toBe('ERR_UNTRUSTED_ISSUER')
    expect(code(() => openCheckpoint(cosigned, { log: log.vkey, origin: 'other.example/log' }))).toBe('ERR_UNTRUSTED_ISSUER')
    // A witness signature that does not verify refuses the note (signed-note SHOULD).
    const forged = note + cosigner1.cosign(text.replace('20\n', '21\n'), 1700000000)
    expect(code(() => openCheckpoint(forged, { log: log.vkey, witnesses: [w1.vkey], quorum: 1 }))).toBe('ERR_SIGNATURE_INVALID')
    // The same witness twice counts once.
    const twice = note + cosigner1.cosign(text, 1) + cosigner1.cosign(text, 2)
    expect(code(() => openCheckpoint(twice, { log: log.vkey, witnesses: [w1.vkey, w2.vkey], quorum: 2 }))).toBe('ERR_UNTRUSTED_ISSUER')
    // A cosignature from the future is not counted.
    const future = note + cosigner1.cosign(text, 2000000000)
    expect(code(() => openCheckpoint(future, { log: log.vkey, witnesses: [w1.vkey], quorum: 1, now: 1700000000 }))).toBe('ERR_UNTRUSTED_ISSUER')
    // A log key cannot stand in for a witness: quorum counts only 0x04 keys.
    expect(() => openCheckpoint(note, { log: log.vkey, witnesses: [log.vkey], quorum: 1 })).toThrow(TypeError)
  })
  it('counts a witness by its name: one operator with two keys is one witness', () => {
    const note = checkpointOf(tree)
    const text = note.slice(0, note.indexOf('\n\n') + 1)
    // w1 rotating its key: both keys trusted, both cosign. Counted as (name, key id) this made a quorum of 2.
    const w1b = generateNoteKey('witness.example/w1', SIG_TYPE_COSIGNATURE_V1)
    const both = note + cosigner1.cosign(text, 1700000000) + createCosigner(parseSignerKey(w1b.skey)).cosign(text, 1700000001)
    expect(code(() => openCheckpoint(both, { log: log.vkey, witnesses: [w1.vkey, w1b.vkey, w2.vkey], quorum: 2 }))).toBe('ERR_UNTRUSTED_ISSUER')
    expect(openCheckpoint(both, { log: log.vkey, witnesses: [w1.vkey, w1b.vkey, w2.vkey], quorum: 1 }).cosignatures).toHaveLength(2)
    // Either key of the rotating witness counts for it, with another witness beside it.
    const rotated = note + createCosigner(parseSignerKey(w1b.skey)).cosign(text, 1700000000) + cosigner2.cosign(text, 1700000001)
    expect(openCheckpoint(rotated, { log: log.vkey, witnesses: [w1.vkey, w1b.vkey, w2.vkey], quorum: 2 }).size).toBe(20)
    // A quorum the trusted names cannot reach, and a witness named like the log, are refused at once.
    expect(() => openCheckpoint(both, { log: log.vkey, witnesses: [w1.vkey, w1b.vkey], quorum: 2 })).toThrow(/2 exceeds the 1 distinct/)
    const logNamed = generateNoteKey(ORIGIN, SIG_TYPE_COSIGNATURE_V1)
    expect(() => openCheckpoint(note, { log: log.vkey, witnesses: [logNamed.vkey, w1.vkey], quorum: 1 })).toThrow(/log cannot witness itself/)
    expect(() => openCheckpoint(note, { log: log.vkey, witnesses: [w1.vkey], quorum: 0.5 })).toThrow(TypeError)
  })
  it('the cosigned message is the spec one', () => {
    expect(Buffer.from(cosignatureMessage('o\n1\nAA==\n', 5)).toString()).toBe('cosignature/v1\ntime 5\no\n1\nAA==\n')
  })
})

describe('tlog-proof', () => {
  const tree = buildTree(37)
  const note = checkpointOf(tree)
  it('verifies offline and refuses a wrong entry, index or key', () => {
    const text = formatTlogProof({ index: 11, proof: tree.inclusionProof(11), checkpoint: note, extra: utf8('x') })
    expect(verifyTlogProof(text, { entry: utf8('entry 11'), log: log.vkey }).index).toBe(11)
    expect(code(() => verifyTlogProof(text, { entry: utf8('entry 12'), log: log.vkey }))).toBe('ERR_SIGNATURE_INVALID')
    expect(code(() => verifyTlogProof(text.replace('index 11', 'index 12'), { entry: utf8('entry 11'), log: log.vkey }))).toBe('ERR_SIGNATURE_INVALID')
    expect(code(() => verifyTlogProof(text.replace('index 11', 'index 37'), { entry: utf8('entry 11'), log: log.vkey }))).toBe('ERR_SIGNATURE_INVALID')
    expect(code(() => verifyTlogProof(text, { entry: utf8('entry 11'), log: mallory.vkey }))).toBe('ERR_UNTRUSTED_ISSUER')
    expect(code(() => verifyTlogProof(text, { entry: utf8('entry 11'), log: log.vkey, witnesses: [w1.vkey], quorum: 1 }))).toBe('ERR_UNTRUSTED_ISSUER')
  })
  it('malformed proofs', () => {
    const good = formatTlogProof({ index: 1, proof: tree.inclusionProof(1), checkpoint: note })
    for (const bad of [
      good.replace('c2sp.org/tlog-proof@v1', 'c2sp.org/tlog-proof@v2'),
      good.replace('index 1', 'index 01'),
      good.replace('index 1', 'index -1'),
      good.replace('index 1\n', ''),
      good.replace(/\n\n[\s\S]*$/, '\n'),
      good.replace(/index 1\n[^\n]+/, 'index 1\nnot base64!'),
      good.replace(/index 1\n[^\n]+/, 'index 1\nAAAA'),
      `c2sp.org/tlog-proof@v1\nindex 0\n${'bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=\n'.repeat(64)}\n${note}`,
    ]) {
      expect(code(() => parseTlogProof(bad)), bad.slice(0, 80)).toBe('ERR_MALFORMED')
    }
  })
})

describe('tiles and bundles, hostile input', () => {
  it('paths', () => {
    for (const bad of ['tile/0/../000', 'tile/entries/000.p/0', 'tile/0/1', 'tile/x/000', '/etc/passwd', 'tile/0/000/', 'tile/0/000.p/1/2']) {
      expect(code(() => parseTilePath(bad)), bad).toBe('ERR_MALFORMED')
    }
  })
  it('bundles', () => {
    const b = encodeEntryBundle([utf8('a'), new Uint8Array(0), utf8('ccc')])
    expect(decodeEntryBundle(b).map((e) => Buffer.from(e).toString())).toEqual(['a', '', 'ccc'])
    expect(code(() => decodeEntryBundle(b.subarray(0, b.length - 1)))).toBe('ERR_MALFORMED')
    expect(code(() => decodeEntryBundle(new Uint8Array([0])))).toBe('ERR_MALFORMED')
    expect(() => encodeEntryBundle([new Uint8Array(65536)])).toThrow(RangeError)
  })
})

describe('tlog-witness add-checkpoint', () => {
  const cosigner = createCosigner(parseSignerKey(w1.skey))
  function witness() {
    const state = new Map<string, WitnessRecord>()
    const refused: number[] = []
    const opts = {
      cosigner,
      logs: [{ origin: ORIGIN, keys: [noteVerifier(log.vkey)] }],
      store: { get: (o: string) => state.get(o), put: (o: string, r: WitnessRecord) => void state.set(o, r) },
      clock: () => 1700000000,
      onRefused: (_o: string, s: number) => void refused.push(s),
    }
    return { state, refused, add: (body: string) => addCheckpoint(body, opts) }
  }
  const tree = buildTree(50)

  it('cosigns a first checkpoint and consistent successors; the answer verifies as a cosignature', () => {
    const w = witness()
    const r1 = w.add(formatAddCheckpointRequest(0, [], checkpointOf(tree, 10)))
    expect(r1.status).toBe(200)
    const cp = openCheckpoint(checkpointOf(tree, 10) + r1.body, { log: log.vkey, witnesses: [w1.vkey], quorum: 1 })
    expect(cp.cosignatures[0]?.timestamp).toBe(1700000000)
    expect(w.add(formatAddCheckpointRequest(10, tree.consistencyProof(10, 30), checkpointOf(tree, 30))).status).toBe(200)
    expect(w.add(formatAddCheckpointRequest(30, [], checkpointOf(tree, 30))).status).toBe(200) // same size, same root
    expect(w.state.get(ORIGIN)?.size).toBe(30)
  })
  it('answers per spec: 400, 403, 404, 409 (with size), 422, 409 on a fork', () => {
    const w = witness()
    expect(w.add('garbage').status).toBe(400)
    expect(w.add(formatAddCheckpointRequest(0, [], checkpointOf(tree, 10)).replace('old 0', 'old 00')).status).toBe(400)
    expect(w.add(formatAddCheckpointRequest(0, [], checkpointOf(tree, 10, noteSigner(parseSignerKey(mallory.skey))))).status).toBe(403)
    const other = signCheckpoint({ origin: 'other.example/log', size: 1, rootHash: tree.root(1), extensions: [] }, logSigner)
    expect(w.add(formatAddCheckpointRequest(0, [], other)).status).toBe(404)
    expect(w.add(formatAddCheckpointRequest(11, [], checkpointOf(tree, 10))).status).toBe(400)
    expect(w.add(formatAddCheckpointRequest(0, [], checkpointOf(tree, 10))).status).toBe(200)
    const conflict = w.add(formatAddCheckpointRequest(5, tree.consistencyProof(5, 20), checkpointOf(tree, 20)))
    expect(conflict).toEqual({ status: 409, contentType: 'text/x.tlog.size', body: '10\n' })
    // A forked history: same signer, another tree that shares no prefix.
    const fork = new MerkleTree()
    for (let i = 0; i < 20; i++) fork.appendEntry(utf8(`forged ${i}`))
    expect(w.add(formatAddCheckpointRequest(10, fork.consistencyProof(10, 20), checkpointOf(fork, 20))).status).toBe(422)
    expect(w.add(formatAddCheckpointRequest(10, [], checkpointOf(fork, 10))).status).toBe(409)
    expect(w.add(formatAddCheckpointRequest(10, tree.consistencyProof(10, 20).slice(1), checkpointOf(tree, 20))).status).toBe(422)
    expect(w.refused).toEqual([422, 409, 422])
    expect(w.state.get(ORIGIN)?.size).toBe(10)
  })
  it('parses requests strictly', () => {
    expect(code(() => parseAddCheckpointRequest(`old 1\n${'AA==\n'}\n`))).toBe('ERR_MALFORMED')
    expect(code(() => parseAddCheckpointRequest(`old 1\n${'bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=\n'.repeat(64)}\nx`))).toBe('ERR_MALFORMED')
    expect(code(() => parseAddCheckpointRequest(new Uint8Array([0x6f, 0x6c, 0x64, 0x20, 0x30, 0x0a, 0xff])))).toBe('ERR_MALFORMED')
  })
})
