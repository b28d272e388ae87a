// Red-team cases of the witness protocol (C2SP tlog-witness) that the main suite does not cover.
import { describe, expect, it } from 'vitest'
import {
  addCheckpoint,
  createCosigner,
  emptyRoot,
  formatAddCheckpointRequest,
  generateNoteKey,
  noteSigner,
  noteVerifier,
  parseSignerKey,
  signCheckpoint,
  SIG_TYPE_COSIGNATURE_V1,
  type WitnessRecord,
} from '@agentid/tlog'
import { createHash } from 'node:crypto'

const ORIGIN = 'issuer.example/log'
const log = generateNoteKey(ORIGIN)
const w1 = generateNoteKey('witness.example/w1', SIG_TYPE_COSIGNATURE_V1)
const signer = noteSigner(parseSignerKey(log.skey))
const cp = (size: number, rootHash: Uint8Array) => signCheckpoint({ origin: ORIGIN, size, rootHash, extensions: [] }, signer)

function witness() {
  const state = new Map<string, WitnessRecord>()
  const opts = {
    cosigner: createCosigner(parseSignerKey(w1.skey)),
    logs: [{ origin: ORIGIN, keys: [noteVerifier(log.vkey)] }],
    store: { get: (o: string) => state.get(o), put: (o: string, r: WitnessRecord) => void state.set(o, r) },
    clock: () => 1700000000,
  }
  return { state, add: (body: string) => addCheckpoint(body, opts) }
}

describe('tlog-witness: the empty tree', () => {
  it('refuses a size-0 checkpoint whose root is not the empty tree\'s, before and after cosigning the empty tree (409)', () => {
    const w = witness()
    const forged = createHash('sha256').update('not empty').digest()
    // Never seen the log: a tree of size 0 has one root only (RFC 6962: SHA-256 of nothing).
    expect(w.add(formatAddCheckpointRequest(0, [], cp(0, forged))).status).toBe(409)
    expect(w.state.get(ORIGIN)).toBeUndefined()
    expect(w.add(formatAddCheckpointRequest(0, [], cp(0, emptyRoot()))).status).toBe(200)
    // Cosigned the empty tree at size 0: old size = checkpoint size, the roots must match (spec: else 409).
    expect(w.add(formatAddCheckpointRequest(0, [], cp(0, forged))).status).toBe(409)
    expect(Buffer.from(w.state.get(ORIGIN)!.rootHash).equals(Buffer.from(emptyRoot()))).toBe(true)
  })
})
