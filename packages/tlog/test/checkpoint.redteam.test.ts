// Red-team cases of the witness quorum (openCheckpoint, verifyTlogProof): who may count as a witness.
// A hostile log chooses its own key (relying parties pin what `GET /log/key` says) and holds every
// cosignature it was sent, so neither may stand in for an independent witness.
import { describe, expect, it } from 'vitest'
import {
  MerkleTree,
  SIG_TYPE_COSIGNATURE_V1,
  cosignatureVerifier,
  createCosigner,
  formatTlogProof,
  formatVerifierKey,
  generateNoteKey,
  noteSigner,
  openCheckpoint,
  parseNote,
  parseSignerKey,
  parseVerifierKey,
  signCheckpoint,
  signatureLine,
  verifyTlogProof,
} from '@agentid/tlog'

const utf8 = (s: string) => new TextEncoder().encode(s)
const code = (fn: () => unknown) => {
  try {
    fn()
    return 'ok'
  } catch (e: any) {
    return e instanceof TypeError ? 'TypeError' : `${e.code}:${e.details?.reason ?? ''}`
  }
}

const ORIGIN = 'issuer.example/log'
const NOW = 1_700_000_000
const w1 = generateNoteKey('witness.example/w1', SIG_TYPE_COSIGNATURE_V1)
const w2 = generateNoteKey('witness.example/w2', SIG_TYPE_COSIGNATURE_V1)

const tree = new MerkleTree()
for (let i = 0; i < 5; i++) tree.appendEntry(utf8(`entry ${i}`))
const body = { origin: ORIGIN, size: tree.size, rootHash: tree.root(), extensions: [] }
const textOf = (note: string) => parseNote(note).text

describe('a log key of type 0x04 (a hostile issuer publishes a cosignature key as its log key)', () => {
  // The log "signs" its checkpoint with a timestamped cosignature of its own key.
  const log04 = generateNoteKey(ORIGIN, SIG_TYPE_COSIGNATURE_V1)
  const logCosigner = createCosigner(parseSignerKey(log04.skey))
  const text = `${ORIGIN}\n${tree.size}\n${Buffer.from(tree.root()).toString('base64')}\n`
  const note = `${text}\n${logCosigner.cosign(text, NOW)}`

  it('its own signature does not count toward the witness quorum', () => {
    expect(openCheckpoint(note, { log: log04.vkey }).size).toBe(5) // the log signature alone: quorum 0
    expect(code(() => openCheckpoint(note, { log: log04.vkey, witnesses: [w1.vkey], quorum: 1, now: NOW }))).toBe('ERR_UNTRUSTED_ISSUER:witness quorum not met')
    const proof = formatTlogProof({ index: 2, proof: tree.inclusionProof(2, tree.size), checkpoint: note })
    expect(code(() => verifyTlogProof(proof, { entry: utf8('entry 2'), log: log04.vkey, witnesses: [w1.vkey, w2.vkey], quorum: 1, now: NOW }))).toBe('ERR_UNTRUSTED_ISSUER:witness quorum not met')
  })

  it('with a real witness beside it, the quorum counts the witness only', () => {
    const cosigned = note + createCosigner(parseSignerKey(w1.skey)).cosign(text, NOW)
    const cp = openCheckpoint(cosigned, { log: log04.vkey, witnesses: [w1.vkey, w2.vkey], quorum: 1, now: NOW })
    expect(cp.cosignatures.map((c) => c.name)).toEqual(['witness.example/w1'])
    expect(code(() => openCheckpoint(cosigned, { log: log04.vkey, witnesses: [w1.vkey, w2.vkey], quorum: 2, now: NOW }))).toBe('ERR_UNTRUSTED_ISSUER:witness quorum not met')
  })

  it('the log key listed among the witnesses cannot witness its own checkpoint', () => {
    // Refused as a policy (TypeError) or at least not counted: never a quorum of one from the log alone.
    expect(code(() => openCheckpoint(note, { log: log04.vkey, witnesses: [log04.vkey], quorum: 1, now: NOW }))).not.toBe('ok')
  })
})

describe('one Ed25519 cosigner key under two names (tlog-cosignature: the signed message does not commit to the name)', () => {
  const log = generateNoteKey(ORIGIN)
  const note = signCheckpoint(body, noteSigner(parseSignerKey(log.skey)))
  const text = textOf(note)
  // The same public key as w1, published again under another name: a second "witness".
  const w1Key = parseVerifierKey(w1.vkey)
  const alias = formatVerifierKey('witness.example/w1-mirror', SIG_TYPE_COSIGNATURE_V1, w1Key.publicKey)
  // Whoever holds w1's one cosignature (the log does: it requested it) re-labels it for the alias.
  const line = createCosigner(parseSignerKey(w1.skey)).cosign(text, NOW)
  const sig = Buffer.from(line.trim().split(' ')[2]!, 'base64').subarray(4)
  const relabelled = signatureLine('witness.example/w1-mirror', parseVerifierKey(alias).keyId, sig)

  it('the relabelled line verifies under the alias: both count as cosignatures of one key', () => {
    expect(openCheckpoint(note + relabelled, { log: log.vkey, witnesses: [alias], quorum: 1, now: NOW }).cosignatures).toHaveLength(1)
  })

  it('a witness policy naming one public key twice is refused, so one cosignature never makes a quorum of two', () => {
    expect(code(() => openCheckpoint(note + line + relabelled, { log: log.vkey, witnesses: [w1.vkey, alias], quorum: 2, now: NOW }))).toBe('TypeError')
    expect(code(() => openCheckpoint(note + line + relabelled, { log: log.vkey, witnesses: [w1.vkey, alias, w2.vkey], quorum: 1, now: NOW }))).toBe('TypeError')
    // Verifier objects carry their key too.
    const v1 = cosignatureVerifier('witness.example/w1', w1Key.publicKey)
    const v2 = cosignatureVerifier('witness.example/w1-mirror', w1Key.publicKey)
    expect(code(() => openCheckpoint(note + line + relabelled, { log: log.vkey, witnesses: [v1, v2], quorum: 2, now: NOW }))).toBe('TypeError')
    const proof = formatTlogProof({ index: 1, proof: tree.inclusionProof(1, tree.size), checkpoint: note + line + relabelled })
    expect(code(() => verifyTlogProof(proof, { entry: utf8('entry 1'), log: log.vkey, witnesses: [w1.vkey, alias], quorum: 2, now: NOW }))).toBe('TypeError')
  })

  it('one key listed twice under one name is one witness (the same vkey twice)', () => {
    expect(openCheckpoint(note + line, { log: log.vkey, witnesses: [w1.vkey, w1.vkey, w2.vkey], quorum: 1, now: NOW }).cosignatures).toHaveLength(1)
  })
})
