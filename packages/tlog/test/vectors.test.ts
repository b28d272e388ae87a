// Every vector of vectors/tlog (see vectors/README.md, section tlog/).
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import {
  MerkleTree,
  bundleForLeaf,
  decodeEntryBundle,
  emptyRoot,
  entriesPath,
  hashChildren,
  hashLeaf,
  noteSigner,
  noteVerifier,
  openCheckpoint,
  openNote,
  parseCheckpoint,
  parseNote,
  parseSignerKey,
  parseTileIndexPath,
  parseTileLevel,
  parseTlogProof,
  parseVerifierKey,
  signNote,
  tilePath,
  tilesForTreeSize,
  verifyConsistency,
  verifyInclusion,
} from '@agentid/tlog'

const dir = fileURLToPath(new URL('../../../vectors/tlog/', import.meta.url))
// Integers beyond 2^53 (tile indices up to 2^64-1) are read as strings so they stay exact.
const json = (p: string) => JSON.parse(readFileSync(join(dir, p), 'utf8').replace(/("(?:N|want_N)": )([0-9]{16,})/g, '$1"$2"'))
const hex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'))
const b64 = (h: string) => new Uint8Array(Buffer.from(h, 'base64'))
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex')
const utf8 = (s: string) => new TextEncoder().encode(s)

function walk(d: string): string[] {
  return readdirSync(d).flatMap((f) => (statSync(join(d, f)).isDirectory() ? walk(join(d, f)) : [join(d, f)]))
}

function outcome(fn: () => unknown): 'ok' | string {
  try {
    fn()
    return 'ok'
  } catch (e: any) {
    return e.code ?? String(e)
  }
}

describe('transparency-dev/merkle testdata', () => {
  const inclusion = walk(join(dir, 'transparency-dev-merkle/inclusion'))
  const consistency = walk(join(dir, 'transparency-dev-merkle/consistency'))
  it('has all 196 cases', () => expect(inclusion.length + consistency.length).toBe(196))
  it.each(inclusion.map((f) => [f.slice(dir.length), f]))('inclusion %s', (_name, file) => {
    const c = JSON.parse(readFileSync(file, 'utf8'))
    const r = outcome(() => verifyInclusion(c.leafIdx, c.treeSize, b64(c.leafHash), (c.proof ?? []).map(b64), b64(c.root)))
    if (c.wantErr) expect(r).toMatch(/^ERR_(MALFORMED|SIGNATURE_INVALID)$/)
    else expect(r).toBe('ok')
  })
  it.each(consistency.map((f) => [f.slice(dir.length), f]))('consistency %s', (_name, file) => {
    const c = JSON.parse(readFileSync(file, 'utf8'))
    const r = outcome(() => verifyConsistency(c.size1, c.size2, b64(c.root1), b64(c.root2), (c.proof ?? []).map(b64)))
    if (c.wantErr) expect(r).toMatch(/^ERR_(MALFORMED|SIGNATURE_INVALID)$/)
    else expect(r).toBe('ok')
  })
})

describe('rfc6962-tree.derived.json', () => {
  const v = json('rfc6962-tree.derived.json')
  const tree = new MerkleTree()
  for (const leaf of v.leaves_hex) tree.appendEntry(hex(leaf))

  it('hasher vectors', () => {
    for (const h of v.hasher) {
      const got = h.op === 'empty_root' ? emptyRoot() : h.op === 'leaf' ? hashLeaf(hex(h.input_hex)) : hashChildren(hex(h.left_hex), hex(h.right_hex))
      expect(toHex(got)).toBe(h.want)
    }
  })
  it('leaf hashes and roots for sizes 0..8', () => {
    v.leaves_hex.forEach((l: string, i: number) => expect(toHex(hashLeaf(hex(l)))).toBe(v.leaf_hashes[i]))
    for (const [size, root] of Object.entries(v.roots_by_size)) expect(toHex(tree.root(Number(size)))).toBe(root)
  })
  it('all 36 inclusion proofs: generated equal, and verify', () => {
    expect(v.inclusion).toHaveLength(36)
    for (const c of v.inclusion) {
      expect(tree.inclusionProof(c.leaf_index, c.tree_size).map(toHex)).toEqual(c.inclusion_path)
      verifyInclusion(c.leaf_index, c.tree_size, hex(c.leaf_hash), c.inclusion_path.map(hex), hex(c.root))
    }
  })
  it('all 36 consistency proofs: generated equal, and verify', () => {
    expect(v.consistency).toHaveLength(36)
    for (const c of v.consistency) {
      expect(tree.consistencyProof(c.size1, c.size2).map(toHex)).toEqual(c.consistency_proof)
      verifyConsistency(c.size1, c.size2, hex(c.root1), hex(c.root2), c.consistency_proof.map(hex))
    }
  })
  it('negative cases are refused', () => {
    expect(v.negative.length).toBe(8)
    for (const c of v.negative) {
      const r =
        c.kind === 'inclusion'
          ? outcome(() => verifyInclusion(c.leaf_index, c.tree_size, hex(c.leaf_hash), c.inclusion_path.map(hex), hex(c.root)))
          : outcome(() => verifyConsistency(c.size1, c.size2, hex(c.root1), hex(c.root2), c.consistency_proof.map(hex)))
      expect(r, c.desc).toBe('ERR_SIGNATURE_INVALID')
    }
  })
})

describe('signed-note.derived.json', () => {
  const v = json('signed-note.derived.json')
  const reasonOf = (e: any) => e?.details?.reason
  it.each(v.cases.map((c: any) => [c.id, c]))('%s', (_id, c: any) => {
    const note = c.note !== undefined ? c.note : new Uint8Array(Buffer.from(c.note_hex, 'hex'))
    const verifiers = c.verifier_keys.map((k: string) => noteVerifier(k))
    if (c.expected === 'accept') {
      const opened = openNote(note, verifiers)
      expect(opened.verified.map((s) => `${s.name}+${s.keyId.toString(16).padStart(8, '0')}`).sort()).toEqual([...c.verified_keys].sort())
      if (c.text !== undefined) expect(opened.text).toBe(c.text)
    } else {
      let err: any
      try {
        openNote(note, verifiers)
      } catch (e) {
        err = e
      }
      expect(err, 'must reject').toBeDefined()
      if (c.error) expect(reasonOf(err)).toBe(c.error)
      expect(err.code).toBe(c.error === 'malformed note' ? 'ERR_MALFORMED' : c.error?.startsWith('invalid signature') ? 'ERR_SIGNATURE_INVALID' : 'ERR_UNTRUSTED_ISSUER')
    }
  })
  it('verifier keys', () => {
    for (const k of v.verifier_keys) {
      if (k.valid) {
        const p = parseVerifierKey(k.vkey)
        expect(p.name).toBe(k.name)
        expect(p.keyId.toString(16).padStart(8, '0')).toBe(k.key_id)
        expect(toHex(p.publicKey)).toBe(k.public_key_hex)
      } else {
        expect(outcome(() => parseVerifierKey(k.vkey)), k.description).toBe('ERR_MALFORMED')
      }
    }
  })
  it('the test signer key re-signs the PeterNeumann signature byte for byte', () => {
    const signer = noteSigner(parseSignerKey(v.test_signer_key.skey))
    const note = signNote(v.text, [signer])
    expect(note).toBe(v.cases.find((c: any) => c.id === 'go-note-1').note)
  })
  it('C2SP examples parse', () => {
    const ex = v.c2sp_spec_examples
    const cp = parseCheckpoint(parseNote(ex['tlog-checkpoint'].note).text)
    expect(cp.origin).toBe(ex['tlog-checkpoint'].origin)
    expect(cp.size).toBe(ex['tlog-checkpoint'].tree_size)
    expect(Buffer.from(cp.rootHash).toString('base64')).toBe(ex['tlog-checkpoint'].root_hash_b64)
    const sigs = parseNote(ex['tlog-cosignature'].note).signatures
    const cosig = sigs.find((s) => s.name === ex['tlog-cosignature'].cosigner)!
    expect(cosig.keyId.toString(16)).toBe(ex['tlog-cosignature'].key_id)
    expect(Number(Buffer.from(cosig.signature).readBigUInt64BE(0))).toBe(ex['tlog-cosignature'].timestamp)
    expect(toHex(cosig.signature.subarray(8))).toBe(ex['tlog-cosignature'].ed25519_signature_hex)
  })
  it('C2SP tlog-proof example parses (format only: its signatures are elided)', () => {
    const ex = v.c2sp_spec_examples['tlog-proof']
    const text = `c2sp.org/tlog-proof@v1\nextra ${ex.extra_b64}\nindex ${ex.index}\n${ex.inclusion_proof_b64.join('\n')}\n\n${ex.checkpoint_origin}\n${ex.checkpoint_size}\n${ex.checkpoint_root_b64}\n\n— ${ex.checkpoint_origin} AAAAAA==\n`
    const p = parseTlogProof(text)
    expect(Buffer.from(p.extra!).toString('base64')).toBe(ex.extra_b64)
    expect(p.index).toBe(ex.index)
    expect(p.proof.map((h) => Buffer.from(h).toString('base64'))).toEqual(ex.inclusion_proof_b64)
    expect(parseCheckpoint(p.checkpoint.slice(0, p.checkpoint.indexOf('\n\n') + 1)).size).toBe(ex.checkpoint_size)
  })
})

describe('tessera testdata log', () => {
  const v = json('tessera-testdata-log.expected.json')
  const file = (p: string) => readFileSync(join(dir, 'tessera-testdata-log', p))
  const tree = new MerkleTree()
  for (const e of v.entries) tree.appendEntry(utf8(e))

  it('every checkpoint opens and matches the tree of the entries', () => {
    expect(file('checkpoint').equals(file('checkpoint.15'))).toBe(true)
    for (const c of v.checkpoints) {
      const cp = openCheckpoint(file(c.file).toString('utf8'), { log: v.vkey })
      expect(cp.origin).toBe(c.origin)
      expect(cp.size).toBe(c.tree_size)
      expect(toHex(cp.rootHash)).toBe(c.root_hash_hex)
      expect(toHex(tree.root(c.tree_size))).toBe(c.root_hash_hex)
      if (c.level0_tile) {
        expect(tilePath(0, 0, c.tree_size)).toBe(c.level0_tile)
        expect(entriesPath(0, c.tree_size)).toBe(c.entry_bundle)
        expect(Buffer.from(tree.tile(0, 0, c.tree_size)).equals(file(c.level0_tile))).toBe(true)
        expect(decodeEntryBundle(file(c.entry_bundle)).map((b) => Buffer.from(b).toString())).toEqual(v.entries.slice(0, c.tree_size))
      }
    }
  })
  it('negatives', () => {
    for (const n of v.negative) {
      const r = outcome(() => openNote(n.note, n.verifier_keys.map((k: string) => noteVerifier(k))))
      if (n.expected === 'accept') expect(r, n.id).toBe('ok')
      else expect(r, n.id).toBe(n.error.startsWith('invalid signature') ? 'ERR_SIGNATURE_INVALID' : 'ERR_UNTRUSTED_ISSUER')
    }
  })
  it('inclusion proofs in the size-15 tree and consistency proofs to it', () => {
    for (const c of v.inclusion_in_size_15) {
      expect(tree.inclusionProof(c.leaf_index, 15).map(toHex)).toEqual(c.inclusion_path_hex)
      verifyInclusion(c.leaf_index, 15, hashLeaf(utf8(c.entry)), c.inclusion_path_hex.map(hex), tree.root(15))
    }
    for (const c of v.consistency_to_size_15) {
      expect(tree.consistencyProof(c.size1, 15).map(toHex)).toEqual(c.consistency_proof_hex)
      verifyConsistency(c.size1, 15, tree.root(c.size1), tree.root(15), c.consistency_proof_hex.map(hex))
    }
  })
})

describe('tlog-tiles-paths.derived.json', () => {
  const v = json('tlog-tiles-paths.derived.json')
  it('paths', () => {
    for (const p of v.paths) {
      const N = BigInt(p.N)
      expect(p.kind === 'tile' ? tilePath(p.level, N, p.width) : entriesPath(N, p.width)).toBe(p.path)
    }
    expect(tilePath(0, 18446744073709551615n)).toBe('tile/0/x018/x446/x744/x073/x709/x551/615')
  })
  it('leaf index to bundle', () => {
    for (const c of v.leaf_index_to_bundle) {
      const b = bundleForLeaf(c.leaf_index, c.tree_size)
      expect(b.entryBundle).toBe(c.entry_bundle)
      expect(b.level0Tile).toBe(c.level0_tile)
      expect(b.indexWithinBundle).toBe(c.index_within_bundle)
    }
  })
  it('parse', () => {
    expect(v.parse.length).toBe(24)
    for (const c of v.parse) {
      const r = outcome(() => {
        const level = parseTileLevel(c.level)
        const p = parseTileIndexPath(c.index_path)
        expect(level).toBe(c.want_level)
        expect(p.index).toBe(BigInt(c.want_N))
        expect(p.partial ? p.width : null).toBe(c.want_width)
      })
      expect(r, `${c.level} ${c.index_path}`).toBe(c.valid ? 'ok' : 'ERR_MALFORMED')
    }
  })
  it('tiles for tree size', () => {
    for (const c of v.tiles_for_tree_size) {
      expect(tilesForTreeSize(c.tree_size)).toEqual(c.levels.map((l: any) => ({ level: l.level, fullTiles: l.full_tiles, partialWidth: l.partial_width })))
    }
  })
})
