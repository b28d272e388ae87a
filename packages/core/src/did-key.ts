import { createRequire } from 'node:module'
import { base58 } from '@scure/base'
import { VerificationError } from './errors.js'

/** Error names of the did:key specification, kept in `details.didKeyError`. */
export type DidKeyErrorName =
  | 'invalidDid'
  | 'invalidPublicKeyLength'
  | 'invalidPublicKey'
  | 'unsupportedPublicKeyType'
  | 'invalidDidUrl'

const PREFIX = 'did:key:z'
const ED25519_CODEC = 0xed
// Multicodec public-key types and their key lengths, so a wrong length is reported as such.
const KEY_LENGTHS: ReadonlyMap<number, number> = new Map([
  [0xed, 32], // ed25519-pub
  [0xec, 32], // x25519-pub
  [0xe7, 33], // secp256k1-pub (compressed)
  [0x1200, 33], // p256-pub (compressed)
  [0x1201, 49], // p384-pub (compressed)
])
const BASE58 = /^[1-9A-HJ-NP-Za-km-z]+$/
const BASE58_ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
const BASE58_DIGITS = new Int8Array(128).fill(-1)
for (let i = 0; i < 58; i++) BASE58_DIGITS[BASE58_ALPHABET.charCodeAt(i)] = i

/**
 * base58btc decoding for short strings (a did:key is 48 characters): the classic big-number
 * multiply-add, five digits at a time (58^5 < 2^30) into 16-bit limbs, so every product stays an
 * exact double (< 2^46). About 5x faster than the digit-by-digit byte loop it replaces, which was
 * itself 5x faster than @scure/base's general radix conversion. Same output (tested against it).
 */
function base58Decode(text: string): Uint8Array {
  const n = text.length
  let zeros = 0
  while (zeros < n && text.charCodeAt(zeros) === 49) zeros++ // leading '1' = 0x00
  const needed = ((((n - zeros) * 733) / 1000) >> 1) + 2
  const limbs = needed <= SCRATCH_LIMBS.length ? SCRATCH_LIMBS : new Array<number>(needed)
  const used = base58Limbs(text, zeros, limbs)
  if (used < 0) throw new SyntaxError('not base58btc')
  let length = used * 2
  if (used > 0 && limbs[used - 1]! < 256) length-- // the top limb's high byte is zero
  const out = new Uint8Array(zeros + length)
  for (let k = 0, p = out.length - 1; k < used; k++) {
    out[p--] = limbs[k]! & 0xff
    if (p >= zeros) out[p--] = limbs[k]! >> 8
  }
  return out
}

// Limbs reused by every decode of a short string (a did:key of at most 128 characters needs 49):
// decoding runs on every verification (the subject's did:key syntax), and allocates nothing then.
const SCRATCH_LIMBS = new Int32Array(64)

/**
 * Little-endian 16-bit limbs of the number that the base58btc digits of `text` from `from` on spell,
 * into `limbs` (large enough); returns how many are used, or -1 at a character that is not base58btc.
 */
function base58Limbs(text: string, from: number, limbs: Int32Array | number[]): number {
  const n = text.length
  let used = 0
  let i = from
  while (i < n) {
    let chunk = 0
    let scale = 1
    for (const stop = Math.min(i + 5, n); i < stop; i++) {
      const code = text.charCodeAt(i)
      const digit = code < 128 ? BASE58_DIGITS[code]! : -1
      if (digit < 0) return -1
      chunk = chunk * 58 + digit
      scale *= 58
    }
    let carry = chunk
    for (let k = 0; k < used; k++) {
      carry += limbs[k]! * scale
      const high = Math.floor(carry / 65536)
      limbs[k] = carry - high * 65536
      carry = high
    }
    while (carry > 0) {
      const high = Math.floor(carry / 65536)
      limbs[used++] = carry - high * 65536
      carry = high
    }
  }
  return used
}

/**
 * base58btc decoding (no multibase prefix) with the fast decoder of did:key, for other short values
 * such as a Data Integrity `proofValue` (an Ed25519 signature is 86-88 digits). Throws a SyntaxError
 * on a character outside the alphabet.
 * @example
 * decodeBase58btc(proofValue.slice(1)).length // 64
 */
export function decodeBase58btc(text: string): Uint8Array {
  return base58Decode(text)
}

// Curve arithmetic (@noble/curves, ~10 MB of heap once loaded) is needed only for a full point check
// of a key that has not yet verified a signature: loaded on first use, so that a verify-only service
// whose keys are checked the cheap way never pays for it.
type NoblePoint = typeof import('@noble/curves/ed25519').ed25519.ExtendedPoint
let noblePoint: NoblePoint | undefined
function Point(): NoblePoint {
  noblePoint ??= (createRequire(import.meta.url)('@noble/curves/ed25519') as typeof import('@noble/curves/ed25519')).ed25519.ExtendedPoint
  return noblePoint
}

export interface DecodeDidKeyOptions {
  /**
   * Also refuse mixed-order keys (a point outside the prime-order subgroup). Costs ~1 ms of pure-JS
   * arithmetic per key, so it is off by default: the did:key spec accepts such keys, and Node's
   * cofactorless Ed25519 verification treats them deterministically. Small-order, off-curve and
   * non-canonical keys are always refused.
   */
  primeOrderOnly?: boolean
}

export interface DidKey {
  /** The DID, `did:key:z6Mk...`. */
  did: string
  /** The raw 32-byte Ed25519 public key. */
  publicKey: Uint8Array
  /** The verification method id, `did:key:z6Mk...#z6Mk...`. */
  keyId: string
}

function fail(didKeyError: DidKeyErrorName, message: string): never {
  throw new VerificationError(didKeyError === 'invalidDid' || didKeyError === 'invalidDidUrl' ? 'ERR_MALFORMED' : 'ERR_DID_UNRESOLVABLE', message, {
    details: { didKeyError },
  })
}

// Unsigned LEB128 varint as multicodec uses it; non-minimal encodings are refused.
function readVarint(bytes: Uint8Array): { value: number; length: number } {
  let value = 0
  for (let i = 0; i < Math.min(bytes.length, 4); i++) {
    const b = bytes[i]!
    value += (b & 0x7f) * 2 ** (7 * i)
    if ((b & 0x80) === 0) {
      if (i > 0 && b === 0) fail('invalidDid', 'did:key multicodec prefix is not minimally encoded')
      return { value, length: i + 1 }
    }
  }
  return fail('invalidDid', 'did:key multicodec prefix is not a valid varint')
}

/**
 * Encodes a raw 32-byte Ed25519 public key as a did:key.
 * @example
 * encodeDidKey(publicKey) // 'did:key:z6Mk...'
 */
export function encodeDidKey(publicKey: Uint8Array): string {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw new TypeError('encodeDidKey: an Ed25519 public key is 32 bytes')
  }
  const bytes = new Uint8Array(34)
  bytes[0] = ED25519_CODEC
  bytes[1] = 0x01
  bytes.set(publicKey, 2)
  return PREFIX + base58.encode(bytes)
}

/**
 * Decodes an Ed25519 did:key strictly: `did:key:z` + base58btc of multicodec 0xed01 + 32 key bytes,
 * with the key a canonical encoding of a curve point that is not of small order. Anything else
 * throws a VerificationError whose `details.didKeyError` is the did:key spec's error name.
 * @example
 * decodeDidKey('did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp').publicKey.length // 32
 */
export function decodeDidKey(did: string, options: DecodeDidKeyOptions = {}): DidKey {
  const bytes = decodeStructure(did)
  assertEd25519PublicKey(bytes, options)
  const multibase = did.slice('did:key:'.length)
  return { did, publicKey: bytes, keyId: `${did}#${multibase}` }
}

/**
 * Refuses a raw Ed25519 public key that is not 32 bytes, not a canonical encoding of a curve point,
 * or of small order (and, with `primeOrderOnly`, outside the prime-order subgroup). Throws a
 * VerificationError (ERR_DID_UNRESOLVABLE, `details.didKeyError` = invalidPublicKey / invalidPublicKeyLength).
 */
export function assertEd25519PublicKey(raw: Uint8Array, options: DecodeDidKeyOptions & { signatureVerified?: boolean } = {}): void {
  if (!(raw instanceof Uint8Array) || raw.length !== 32) fail('invalidPublicKeyLength', 'an Ed25519 public key is 32 bytes')
  if (options.signatureVerified && !options.primeOrderOnly) {
    // The key is (or is about to be) trusted only with a signature verified under it, and OpenSSL and
    // libsodium (ed25519.ts) decode it as a curve point for that: a key off the curve verifies nothing.
    // What is left is cheap: canonical y, and not one of the eight small-order points. The verifier runs
    // it before the signature, so that both backends refuse a weak key alike (libsodium inside its verify).
    if (!isCanonicalY(raw)) fail('invalidPublicKey', 'public key is not a canonical Ed25519 point')
    if (isSmallOrderEncoding(raw)) fail('invalidPublicKey', 'public key is a small-order point')
    return
  }
  let point
  try {
    point = Point().fromHex(raw, false)
  } catch {
    return fail('invalidPublicKey', 'public key is not a canonical Ed25519 point')
  }
  if (point.isSmallOrder()) fail('invalidPublicKey', 'public key is a small-order point')
  if (options.primeOrderOnly && !point.isTorsionFree()) fail('invalidPublicKey', 'public key is not in the prime-order subgroup')
}

// The small-order points of edwards25519 with the sign bit cleared: the same blocklist as
// libsodium's ge25519_has_small_order (a y shared with a torsion point makes the point ±that point).
const SMALL_ORDER_Y = [
  '0000000000000000000000000000000000000000000000000000000000000000', // order 4 (and, sign set, its negation)
  '0100000000000000000000000000000000000000000000000000000000000000', // identity
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // order 2
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', // order 8
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
].map((hex) => Buffer.from(hex, 'hex'))

// Non-canonical encodings of small-order points (y = p, y = p + 1, i.e. 0 and 1 unreduced), which
// libsodium's blocklist also holds.
const SMALL_ORDER_Y_NONCANONICAL = [
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map((hex) => Buffer.from(hex, 'hex'))

// First bytes of the blocklisted encodings (byte 0 holds no sign bit): a quick, exact pre-check.
const SMALL_ORDER_FIRST_BYTE = new Uint8Array(256)
for (const y of [...SMALL_ORDER_Y, ...SMALL_ORDER_Y_NONCANONICAL]) SMALL_ORDER_FIRST_BYTE[y[0]!] = 1

/**
 * True when the R half of an Ed25519 signature (its first 32 bytes) encodes a point of small order,
 * canonically or not (libsodium's `ge25519_has_small_order` list, sign bit ignored). Such a signature
 * passes node:crypto's cofactorless equation for a key whose holder made it, and is not what RFC 8032
 * signing produces; libsodium's strict verification refuses it, and so do we, before the equation.
 * @example
 * hasSmallOrderR(Buffer.alloc(64)) // true: R = (0, ...) has order 4
 */
export function hasSmallOrderR(signature: Uint8Array): boolean {
  if (!(signature instanceof Uint8Array) || signature.length < 32) return false
  // The first byte alone rules out all but 7 of 256 values (no copy, no compare): nearly every signature.
  if (SMALL_ORDER_FIRST_BYTE[signature[0]!] === 0) return false
  const y = Buffer.from(signature.subarray(0, 32))
  y[31] = y[31]! & 0x7f
  return SMALL_ORDER_Y.some((t) => t.equals(y)) || SMALL_ORDER_Y_NONCANONICAL.some((t) => t.equals(y))
}

function isSmallOrderEncoding(raw: Uint8Array): boolean {
  // As in hasSmallOrderR: the first byte rules out nearly every key, without a copy (this runs once
  // per new key, after its first signature: each new agent of a cold delegation chain).
  if (SMALL_ORDER_FIRST_BYTE[raw[0]!] === 0) return false
  const y = Buffer.from(raw)
  y[31] = y[31]! & 0x7f
  return SMALL_ORDER_Y.some((t) => t.equals(y))
}

// y < p = 2^255 - 19, read little-endian with the sign bit cleared.
function isCanonicalY(raw: Uint8Array): boolean {
  if ((raw[31]! & 0x7f) !== 0x7f) return true
  for (let i = 30; i > 0; i--) if (raw[i] !== 0xff) return true
  return raw[0]! < 0xed
}

/**
 * Decodes an Ed25519 did:key checking its syntax only (prefix, base58btc, multicodec 0xed01,
 * 32 bytes). The key's point is NOT checked: call {@link assertEd25519PublicKey} before trusting it,
 * or with `{ signatureVerified: true }` (the cheap checks) when a signature under it is verified
 * before it is trusted (the curve equation is then left to that signature check).
 * @example
 * const { publicKey } = parseDidKeySyntax(did) // then assertEd25519PublicKey(publicKey, { signatureVerified: true }), then verify
 */
export function parseDidKeySyntax(did: string): DidKey {
  const publicKey = decodeStructure(did)
  return { did, publicKey, keyId: `${did}#${did.slice('did:key:'.length)}` }
}

/**
 * Checks only the syntax of an Ed25519 did:key (prefix, base58btc, multicodec, length): cheap,
 * for DIDs that name a subject but whose key is not used to check a signature here.
 */
export function isDidKeySyntax(did: unknown): did is string {
  if (typeof did !== 'string') return false
  // Without allocating: decodeStructure accepts exactly the DIDs whose base58btc identifier, without a
  // leading '1' (a zero byte), spells the 34 bytes 0xed 0x01 (ed25519-pub, minimal varint) and a key:
  // 17 limbs, the top one 0xed01.
  if (did.length <= 128 && did.startsWith(PREFIX) && did.length > PREFIX.length && did.charCodeAt(PREFIX.length) !== 49) {
    return base58Limbs(did, PREFIX.length, SCRATCH_LIMBS) === 17 && SCRATCH_LIMBS[16] === 0xed01
  }
  try {
    decodeStructure(did)
    return true
  } catch {
    return false
  }
}

/**
 * Decodes a did:key DID URL (`did#fragment`). The fragment, if any, must name the DID's own key:
 * a did:key document has exactly one verification method.
 */
export function decodeDidKeyUrl(didUrl: string, options: DecodeDidKeyOptions = {}): DidKey {
  if (typeof didUrl !== 'string') fail('invalidDid', 'not a did:key URL')
  const hash = didUrl.indexOf('#')
  if (hash === -1) return decodeDidKey(didUrl, options)
  const did = didUrl.slice(0, hash)
  const fragment = didUrl.slice(hash + 1)
  const key = decodeDidKey(did, options)
  if (fragment !== did.slice('did:key:'.length)) fail('invalidDidUrl', 'did:key URL fragment does not name the DID\'s own key')
  return key
}

function decodeStructure(did: string): Uint8Array {
  if (typeof did !== 'string' || did.length > 128) fail('invalidDid', 'not a did:key')
  if (!did.startsWith(PREFIX)) fail('invalidDid', 'not an Ed25519 did:key (expected did:key:z\u2026)')
  const encoded = did.slice(PREFIX.length)
  if (!BASE58.test(encoded)) fail('invalidDid', 'did:key identifier is not base58btc')
  let bytes: Uint8Array
  try {
    bytes = base58Decode(encoded)
  } catch {
    return fail('invalidDid', 'did:key identifier is not base58btc')
  }
  const { value: codec, length } = readVarint(bytes)
  const keyLength = bytes.length - length
  const expected = KEY_LENGTHS.get(codec)
  if (expected === undefined) fail('unsupportedPublicKeyType', 'did:key multicodec is not a supported public key type')
  if (keyLength !== expected) fail('invalidPublicKeyLength', `did:key public key has ${keyLength} bytes, expected ${expected}`)
  if (codec !== ED25519_CODEC) fail('unsupportedPublicKeyType', 'did:key is not an Ed25519 key')
  // A copy, not a view: a view of a typed array this small (held in V8's heap) makes V8 move its bytes
  // into a buffer of their own, a native allocation and a tracked backing store for the garbage
  // collector (~ 0.5 µs of a 0.8 µs decode, CPU time; each new agent of a cold delegation chain).
  return bytes.slice(length)
}
