import { createHash, hash } from 'node:crypto'
import { VerificationError } from '@agentid/core'
import { bytesEqual, isSize } from './util.js'

/** Size of a SHA-256 hash, the only hash this package uses. */
export const HASH_SIZE = 32

// One-shot crypto.hash over the prefixed bytes: a Hash object per call (createHash, update, digest)
// cost 1.3-1.6 µs more per hash, twice per log entry on average.
const nodeInput = Buffer.alloc(1 + 2 * HASH_SIZE)
nodeInput[0] = 0x01

/**
 * RFC 9162 §2.1.1 leaf hash: SHA-256(0x00 || entry).
 * @example
 * hashLeaf(new TextEncoder().encode('one'))
 */
export function hashLeaf(entry: Uint8Array): Uint8Array {
  const input = Buffer.allocUnsafe(1 + entry.length)
  input[0] = 0x00
  input.set(entry, 1)
  return hash('sha256', input, 'buffer')
}

/**
 * RFC 9162 §2.1.1 interior node hash: SHA-256(0x01 || left || right).
 * @example
 * hashChildren(hashLeaf(a), hashLeaf(b)) // the root of the two-leaf tree
 */
export function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE) return createHash('sha256').update(Buffer.of(0x01)).update(left).update(right).digest()
  nodeInput.set(left, 1)
  nodeInput.set(right, 1 + HASH_SIZE)
  return hash('sha256', nodeInput, 'buffer')
}

/**
 * The root of the empty tree, SHA-256 of the empty string.
 * @example
 * Buffer.from(emptyRoot()).toString('hex') // 'e3b0c442...'
 */
export function emptyRoot(): Uint8Array {
  return createHash('sha256').digest()
}

/**
 * The hashes of complete subtrees of a tree: `nodeHash(level, index)` is the root of leaves
 * [index·2^level, (index+1)·2^level). Proof generation reads only such nodes, so any store
 * (memory, tiles, a database) can back it.
 */
export interface HashSource {
  nodeHash(level: number, index: number): Uint8Array
}

/** Largest power of two strictly below n (n >= 2). */
function splitPoint(n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

/** MTH(D[start:end]) from the complete subtrees of `source`. */
function subtreeHash(source: HashSource, start: number, end: number): Uint8Array {
  const n = end - start
  if (n === 0) return emptyRoot()
  // A power-of-two range that the RFC recursion reaches is always aligned to its size.
  if (isPowerOfTwo(n)) {
    const level = Math.log2(n)
    return source.nodeHash(level, start / n)
  }
  const k = splitPoint(n)
  return hashChildren(subtreeHash(source, start, start + k), subtreeHash(source, start + k, end))
}

/**
 * MTH of the first `size` leaves (RFC 9162 §2.1.1).
 * @example
 * const root = treeHash(tree, tree.size)
 */
export function treeHash(source: HashSource, size: number): Uint8Array {
  if (!isSize(size)) throw new TypeError('size must be a non-negative safe integer')
  return subtreeHash(source, 0, size)
}

/**
 * Inclusion proof PATH(index, D[size]) (RFC 9162 §2.1.3.1), from the leaf's sibling up.
 * @example
 * const proof = inclusionProof(tree, 3, tree.size)
 */
export function inclusionProof(source: HashSource, index: number, size: number): Uint8Array[] {
  if (!isSize(size) || !isSize(index) || index >= size) throw new RangeError('index must be below size')
  const out: Uint8Array[] = []
  path(source, index, 0, size, out)
  return out
}

function path(source: HashSource, m: number, start: number, end: number, out: Uint8Array[]): void {
  const n = end - start
  if (n <= 1) return
  const k = splitPoint(n)
  if (m < k) {
    path(source, m, start, start + k, out)
    out.push(subtreeHash(source, start + k, end))
  } else {
    path(source, m - k, start + k, end, out)
    out.push(subtreeHash(source, start, start + k))
  }
}

/**
 * Consistency proof PROOF(size1, D[size2]) (RFC 9162 §2.1.4.1). Empty when size1 = size2 or size1 = 0.
 * @example
 * const proof = consistencyProof(tree, 10, 25)
 */
export function consistencyProof(source: HashSource, size1: number, size2: number): Uint8Array[] {
  if (!isSize(size1) || !isSize(size2) || size1 > size2) throw new RangeError('size1 must be at most size2')
  const out: Uint8Array[] = []
  if (size1 === 0 || size1 === size2) return out
  subproof(source, size1, 0, size2, true, out)
  return out
}

function subproof(source: HashSource, m: number, start: number, end: number, b: boolean, out: Uint8Array[]): void {
  const n = end - start
  if (m === n) {
    if (!b) out.push(subtreeHash(source, start, end))
    return
  }
  const k = splitPoint(n)
  if (m <= k) {
    subproof(source, m, start, start + k, b, out)
    out.push(subtreeHash(source, start + k, end))
  } else {
    subproof(source, m - k, start + k, end, false, out)
    out.push(subtreeHash(source, start, start + k))
  }
}

function checkHash(value: Uint8Array, what: string): void {
  if (!(value instanceof Uint8Array) || value.length !== HASH_SIZE) {
    throw new VerificationError('ERR_MALFORMED', `${what} is not a ${HASH_SIZE}-byte hash`, { details: { reason: 'bad hash size' } })
  }
}

function fail(message: string): never {
  throw new VerificationError('ERR_SIGNATURE_INVALID', message, { details: { reason: 'proof does not verify' } })
}

const lsb = (n: number) => n % 2 === 1
const half = (n: number) => Math.floor(n / 2)

/**
 * The root an inclusion proof leads to (RFC 9162 §2.1.3.2 steps 1-5, without the final comparison).
 * Throws ERR_SIGNATURE_INVALID when the proof has the wrong length for (index, size).
 * @example
 * const root = rootFromInclusionProof(3, 8, leafHash, proof)
 */
export function rootFromInclusionProof(index: number, size: number, leafHash: Uint8Array, proof: readonly Uint8Array[]): Uint8Array {
  if (!isSize(index) || !isSize(size)) throw new VerificationError('ERR_MALFORMED', 'index and size must be non-negative integers')
  checkHash(leafHash, 'leaf hash')
  proof.forEach((p, i) => checkHash(p, `proof[${i}]`))
  if (index >= size) fail('leaf index is not below the tree size')
  let fn = index
  let sn = size - 1
  let r = leafHash
  for (const p of proof) {
    if (sn === 0) fail('inclusion proof is too long')
    if (lsb(fn) || fn === sn) {
      r = hashChildren(p, r)
      if (!lsb(fn)) {
        while (!(lsb(fn) || fn === 0)) {
          fn = half(fn)
          sn = half(sn)
        }
      }
    } else {
      r = hashChildren(r, p)
    }
    fn = half(fn)
    sn = half(sn)
  }
  if (sn !== 0) fail('inclusion proof is too short')
  return r
}

/**
 * Verifies an inclusion proof (RFC 9162 §2.1.3.2). Throws VerificationError (ERR_SIGNATURE_INVALID
 * when it does not verify, ERR_MALFORMED for hashes of the wrong size).
 * @example
 * verifyInclusion(3, 8, hashLeaf(entry), proof, root)
 */
export function verifyInclusion(index: number, size: number, leafHash: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): void {
  checkHash(root, 'root hash')
  const r = rootFromInclusionProof(index, size, leafHash, proof)
  if (!bytesEqual(r, root)) fail('inclusion proof does not lead to the root hash')
}

/**
 * Verifies a consistency proof between two tree heads (RFC 9162 §2.1.4.2). size1 = 0 is refused
 * (there is nothing to prove; callers handle a first checkpoint themselves); size1 = size2 needs an
 * empty proof and equal roots.
 * @example
 * verifyConsistency(10, 25, root10, root25, proof)
 */
export function verifyConsistency(size1: number, size2: number, root1: Uint8Array, root2: Uint8Array, proof: readonly Uint8Array[]): void {
  if (!isSize(size1) || !isSize(size2)) throw new VerificationError('ERR_MALFORMED', 'sizes must be non-negative integers')
  proof.forEach((p, i) => checkHash(p, `proof[${i}]`))
  if (size1 === 0) fail('no consistency proof from the empty tree')
  if (size1 > size2) fail('first tree is larger than the second')
  if (size1 === size2) {
    // As transparency-dev/merkle: equal sizes need no proof, only the same root bytes.
    if (proof.length !== 0) fail('proof between equal sizes must be empty')
    if (!(root1 instanceof Uint8Array && root2 instanceof Uint8Array && bytesEqual(root1, root2))) fail('roots of equal sizes differ')
    return
  }
  checkHash(root1, 'first root hash')
  checkHash(root2, 'second root hash')
  // 1.
  if (proof.length === 0) fail('empty consistency proof')
  // 2.
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof]
  // 3.
  let fn = size1 - 1
  let sn = size2 - 1
  // 4.
  while (lsb(fn)) {
    fn = half(fn)
    sn = half(sn)
  }
  // 5.
  let fr = path[0] as Uint8Array
  let sr = fr
  // 6.
  for (let i = 1; i < path.length; i++) {
    const c = path[i] as Uint8Array
    if (sn === 0) fail('consistency proof is too long')
    if (lsb(fn) || fn === sn) {
      fr = hashChildren(c, fr)
      sr = hashChildren(c, sr)
      if (!lsb(fn)) {
        while (!(lsb(fn) || fn === 0)) {
          fn = half(fn)
          sn = half(sn)
        }
      }
    } else {
      sr = hashChildren(sr, c)
    }
    fn = half(fn)
    sn = half(sn)
  }
  // 7.
  if (sn !== 0) fail('consistency proof is too short')
  if (!bytesEqual(fr, root1)) fail('consistency proof does not lead to the first root')
  if (!bytesEqual(sr, root2)) fail('consistency proof does not lead to the second root')
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && Number.isInteger(Math.log2(n)) && 2 ** Math.log2(n) === n
}
