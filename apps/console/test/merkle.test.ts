// The console's in-browser checks (src/merkle.ts, WebCrypto) against @agentid/tlog's reference code:
// every consistency proof of trees up to 40 leaves verifies, and every tampering is refused; checkpoint
// signatures verify with the pinned key only.
import { describe, expect, it } from 'vitest'
import { MerkleTree, generateNoteKey, noteSigner, noteVerifier, openNote, parseSignerKey, signCheckpoint, signNote } from '@agentid/tlog'
import { b64encode, parseCheckpointNote, splitNote, verifyConsistency, verifyNoteSignature } from '../src/merkle'

const code = (fn: () => unknown) => {
  try {
    fn()
    return 'ok'
  } catch (e: any) {
    return e.code ?? String(e)
  }
}

const tree = new MerkleTree()
for (let i = 0; i < 40; i++) tree.appendEntry(new TextEncoder().encode(`entry ${i}`))

describe('verifyConsistency', () => {
  it('accepts every proof the reference tree makes (sizes 1..40)', async () => {
    for (let m = 1; m <= 40; m++) {
      for (let n = m; n <= 40; n++) {
        const proof = m === n ? [] : tree.consistencyProof(m, n)
        expect(await verifyConsistency(m, n, tree.root(m), tree.root(n), proof), `${m} -> ${n}`).toBe(true)
      }
    }
  })

  it('refuses a changed hash, a wrong old or new root, swapped sizes, a shorter or longer proof', async () => {
    for (const [m, n] of [[1, 2], [3, 7], [4, 8], [5, 40], [16, 33], [31, 32]] as const) {
      const proof = tree.consistencyProof(m, n)
      for (let i = 0; i < proof.length; i++) {
        const bad = proof.map((p) => Uint8Array.from(p))
        bad[i]![0]! ^= 1
        expect(await verifyConsistency(m, n, tree.root(m), tree.root(n), bad)).toBe(false)
      }
      expect(await verifyConsistency(m, n, tree.root(m - 1 || 2), tree.root(n), proof)).toBe(false)
      expect(await verifyConsistency(m, n, tree.root(m), tree.root(n - 1), proof)).toBe(false)
      expect(await verifyConsistency(n, m, tree.root(n), tree.root(m), proof)).toBe(false)
      expect(await verifyConsistency(m, n, tree.root(m), tree.root(n), proof.slice(1))).toBe(false)
      expect(await verifyConsistency(m, n, tree.root(m), tree.root(n), [...proof, proof[0]!])).toBe(false)
    }
    expect(await verifyConsistency(5, 5, tree.root(5), tree.root(6), [])).toBe(false)
  })
})

async function signedBy(key: { skey: string; vkey: string }): Promise<void> {
  const note = signCheckpoint({ origin: 'issuer.test', size: 3, rootHash: tree.root(3), extensions: [] }, noteSigner(parseSignerKey(key.skey)))
  expect(await verifyNoteSignature(note, key.vkey), key.vkey).toBe(true)
}

describe('checkpoint notes', () => {
  it('verifies the signature with the pinned key, not with another key, nor over changed text', async () => {
    for (let i = 0; i < 8; i++) await signedBy(generateNoteKey('issuer.test')) // keys whose base64 holds '+' too
    const log = generateNoteKey('issuer.test')
    const other = generateNoteKey('issuer.test')
    const note = signCheckpoint({ origin: 'issuer.test', size: 40, rootHash: tree.root(40), extensions: [] }, noteSigner(parseSignerKey(log.skey)))
    const cp = parseCheckpointNote(note)
    expect(cp.size).toBe(40)
    expect(b64encode(cp.rootHash)).toBe(Buffer.from(tree.root(40)).toString('base64'))
    expect(await verifyNoteSignature(note, log.vkey)).toBe(true)
    expect(await verifyNoteSignature(note, other.vkey)).toBe(false)
    expect(await verifyNoteSignature(note.replace('\n40\n', '\n41\n'), log.vkey)).toBe(false)
    expect(await verifyNoteSignature(note, `${log.vkey}+x`)).toBe(false)
    expect(() => parseCheckpointNote('issuer.test\n40\n')).toThrow()
  })

  it('splits a note at its last blank line, as the signed-note spec and @agentid/tlog do', async () => {
    const log = generateNoteKey('issuer.test')
    const note = signCheckpoint({ origin: 'issuer.test', size: 40, rootHash: tree.root(40), extensions: [] }, noteSigner(parseSignerKey(log.skey)))
    // A blank line and more after the signatures: the note's text is now everything before it, which
    // the log's signature does not sign (openNote refuses it). Split at the first blank line, the
    // console verified the signature over the old text and showed the note as the log's.
    const extended = `${note}\n\u2014 issuer.test AAAAAAAA\n`
    expect(code(() => openNote(extended, [noteVerifier(log.vkey)]))).not.toBe('ok')
    expect(await verifyNoteSignature(extended, log.vkey)).toBe(false)
    expect(() => parseCheckpointNote(extended)).toThrow()
    // A text with a blank line inside: split at the last one, the signature verifies over the whole text.
    const text = 'line one\n\nline three\n'
    const signed = signNote(text, [noteSigner(parseSignerKey(log.skey))])
    expect(openNote(signed, [noteVerifier(log.vkey)]).text).toBe(text)
    expect(await verifyNoteSignature(signed, log.vkey)).toBe(true)
    expect(splitNote(signed)?.text).toBe(text)
  })
})
