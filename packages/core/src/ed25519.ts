import { verify as cryptoVerify } from 'node:crypto'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { isArrayBuffer, isDataView, isSharedArrayBuffer, isTypedArray } from 'node:util/types'
import { base64urlEncode } from './base64url.js'

// Which implementation checks an Ed25519 signature under a raw public key on the caller's thread.
// libsodium (through sodium-native's prebuilt addon, an optional dependency) costs about 0.6 of
// node:crypto's verify here: node:crypto goes through OpenSSL 3.0's EVP layer, which fetches the
// algorithm from its provider, makes a context and imports the key on every call. Both give the same
// answer on every input that reaches them: R of small order is refused before either runs
// (jws.ts, checkedSignature) and a did:key's point is canonical and not of small order (did-key.ts), which
// is what libsodium adds to the RFC 8032 equation (speccheck and Wycheproof tests, both backends).
// Without the addon (no prebuild for the platform, or AGENTID_ED25519=node:crypto), node:crypto.

/** The Ed25519 verifier in use: `libsodium` (sodium-native) or `node:crypto`. */
export type Ed25519Backend = 'libsodium' | 'node:crypto'

interface Sodium {
  /** libsodium's crypto_sign_verify_detached over (buffer, offset, length) per argument, as the engine knows them. */
  verify(
    sig: ArrayBufferLike, sigOffset: number,
    m: ArrayBufferLike, mOffset: number, mLength: number,
    pk: ArrayBufferLike, pkOffset: number,
  ): unknown
  /** crypto_sign_seed_keypair (pk 32, sk 64, seed 32 bytes; fresh Uint8Arrays only), or null where absent. */
  seedKeypair: ((pk: Uint8Array, sk: Uint8Array, seed: Uint8Array) => void) | null
  /** crypto_sign_detached (sig 64, message, sk 64 bytes; fresh Uint8Arrays only), or null where absent. */
  signDetached: ((sig: Uint8Array, m: Uint8Array, sk: Uint8Array) => void) | null
}

// A typed array's buffer, offset and length as the engine holds them: %TypedArray%.prototype's own
// getters, which an object's own property or a subclass cannot override. The addon reads memory at the
// offset and length it is given (its C asserts are compiled out): handed `sig.byteOffset`, a Uint8Array
// whose own byteOffset said 2^30 crashed the process (SIGSEGV), one whose byteLength said 64 over 65
// bytes verified its first 64 where node:crypto (which reads the engine's view) refused.
const TYPED_ARRAY_PROTOTYPE = Object.getPrototypeOf(Uint8Array.prototype) as object
function intrinsic<T>(name: string): (view: Uint8Array) => T {
  const get = Object.getOwnPropertyDescriptor(TYPED_ARRAY_PROTOTYPE, name)!.get! as (this: Uint8Array) => T
  return (view) => get.call(view)
}
/** The buffer of a typed array, as the engine knows it. */
export const bufferOf = intrinsic<ArrayBufferLike>('buffer')
// %TypedArray%.prototype.set as loaded: a typed array source is read through its internal slots.
const copyInto = (TYPED_ARRAY_PROTOTYPE as { set: (this: Uint8Array, source: Uint8Array) => void }).set
const byteOffsetOf = intrinsic<number>('byteOffset')
const dataView = (name: string) => Object.getOwnPropertyDescriptor(DataView.prototype, name)!.get! as (this: DataView) => never

/**
 * Bytes to sign, as a copy where another thread can write them (a SharedArrayBuffer, or a typed array or
 * DataView over one), else as given. An Ed25519 signer hashes the message twice (nonce, then challenge):
 * bytes changed in between sign one message under another's nonce, and with that message's own
 * signature give away the private key. node:crypto's synchronous sign reads them in place too.
 */
export function unsharedBytes<T>(data: T): T | Uint8Array {
  let buffer: unknown, offset: number, length: number
  if (isTypedArray(data)) [buffer, offset, length] = [bufferOf(data as never), byteOffsetOf(data as never), byteLengthOf(data as never)]
  else if (isDataView(data)) [buffer, offset, length] = [dataView('buffer').call(data), dataView('byteOffset').call(data), dataView('byteLength').call(data)]
  else if (isSharedArrayBuffer(data)) [buffer, offset, length] = [data, 0, (data as SharedArrayBuffer).byteLength]
  else return data
  if (!isSharedArrayBuffer(buffer)) return data
  const copy = new Uint8Array(length)
  copyInto.call(copy, new Uint8Array(buffer as SharedArrayBuffer, offset, length))
  return copy
}
/** The number of bytes of a typed array, as the engine knows it (no own property or getter of its can change it). */
export const byteLengthOf = intrinsic<number>('byteLength')

let sodium: Sodium | null | undefined

// The addon's own entry point, as sodium-native 5.1's index.js calls it: each argument as its
// ArrayBuffer, offset and length, lengths checked by C asserts (ed25519VerifyRaw checks them first).
interface SodiumAddon {
  crypto_sign_verify_detached(
    sig: ArrayBufferLike, sigOffset: number, sigLength: number,
    m: ArrayBufferLike, mOffset: number, mLength: number,
    pk: ArrayBufferLike, pkOffset: number, pkLength: number,
  ): boolean
  // These two take typed arrays (the addon reads each one's engine view) and return libsodium's status.
  crypto_sign_seed_keypair(pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): number
  crypto_sign_detached(sig: Uint8Array, m: Uint8Array, sk: Uint8Array): number
}

/** libsodium's status made a throw (the callers' lengths are checked first: a status is a fault). */
function statusChecked(name: string, fn: unknown, self: unknown): ((a: Uint8Array, b: Uint8Array, c: Uint8Array) => void) | null {
  if (typeof fn !== 'function') return null
  return (a, b, c) => {
    const status: unknown = fn.call(self, a, b, c)
    if (status !== 0 && status !== undefined) throw new Error(`libsodium ${name} failed (status ${String(status)})`)
  }
}

/**
 * sodium-native's prebuilt addon for this platform, required as is: not through sodium-native's
 * index.js (108 KB of wrappers for all of libsodium) and require-addon's resolver (bare-addon-resolve,
 * bare-module-resolve, bare-semver), 16 modules that cost a verifier process about 1 MB of peak RSS
 * (bench/verify-only.mjs) to reach one function. Only for the 5.1 releases, whose addon takes
 * (buffer, offset, length) per argument, and where require-addon would pick the same file (not on
 * musl, whose prebuilds it names apart); null otherwise: then sodium-native itself.
 */
function loadAddon(require: NodeJS.Require): Sodium | null {
  if (process.platform === 'linux' && existsSync('/etc/alpine-release')) return null
  const manifest = require.resolve('sodium-native/package.json')
  const { version } = require(manifest) as { version?: unknown }
  if (typeof version !== 'string' || !version.startsWith('5.1.')) return null
  const addon = require(join(dirname(manifest), 'prebuilds', `${process.platform}-${process.arch}`, 'sodium-native.node')) as Partial<SodiumAddon>
  const verify = addon.crypto_sign_verify_detached
  if (typeof verify !== 'function') return null
  return {
    // ed25519VerifyRaw has checked the lengths (64 and 32) the addon's C asserts would abort on.
    verify: (sig, sigOffset, m, mOffset, mLength, pk, pkOffset) => verify.call(addon, sig, sigOffset, 64, m, mOffset, mLength, pk, pkOffset, 32),
    seedKeypair: statusChecked('crypto_sign_seed_keypair', addon.crypto_sign_seed_keypair, addon),
    signDetached: statusChecked('crypto_sign_detached', addon.crypto_sign_detached, addon),
  }
}

// Loaded on the first check, not on import: the issuer and the CLI import core and may never verify.
// AGENTID_ED25519: unset or empty, libsodium where it loads; `node:crypto`; `libsodium`, required (a
// process that must not fall back). Any other value is a mistake, refused rather than read as unset.
function loadSodium(): Sodium | null {
  const choice = process.env.AGENTID_ED25519
  if (choice === 'node:crypto') return null
  if (choice !== undefined && choice !== '' && choice !== 'libsodium') {
    throw new TypeError(`AGENTID_ED25519 must be node:crypto or libsodium (or unset), not ${JSON.stringify(choice.slice(0, 64))}`)
  }
  const found = findSodium()
  if (found === null && choice === 'libsodium') throw new TypeError('AGENTID_ED25519=libsodium, but sodium-native\'s addon does not load on this platform')
  return found
}

function findSodium(): Sodium | null {
  const require = createRequire(import.meta.url)
  try {
    const addon = loadAddon(require)
    if (addon !== null) return addon
  } catch {
    // No prebuild at the expected place: sodium-native finds its addon itself below.
  }
  try {
    const loaded = require('sodium-native') as { crypto_sign_verify_detached?: (sig: Uint8Array, m: Uint8Array, pk: Uint8Array) => unknown; crypto_sign_seed_keypair?: unknown; crypto_sign_detached?: unknown }
    const verify = loaded.crypto_sign_verify_detached
    if (typeof verify !== 'function') return null
    // Its wrapper reads each view's properties: it is given fresh views that hold the engine's values.
    return {
      verify: (sig, sigOffset, m, mOffset, mLength, pk, pkOffset) =>
        verify.call(loaded, new Uint8Array(sig, sigOffset, 64), new Uint8Array(m, mOffset, mLength), new Uint8Array(pk, pkOffset, 32)),
      seedKeypair: statusChecked('crypto_sign_seed_keypair', loaded.crypto_sign_seed_keypair, loaded),
      signDetached: statusChecked('crypto_sign_detached', loaded.crypto_sign_detached, loaded),
    }
  } catch {
    return null
  }
}

/**
 * The Ed25519 verifier this process uses for raw keys (loads it on the first call).
 * @example
 * ed25519Backend() // 'libsodium' where sodium-native's addon loads
 */
export function ed25519Backend(): Ed25519Backend {
  if (sodium === undefined) sodium = loadSodium()
  return sodium === null ? 'node:crypto' : 'libsodium'
}

/**
 * The RFC 8032 check of `signature` (64 bytes) over `data` under a raw 32-byte public key, no
 * strictness added (the callers add it). Throws only on malformed lengths (node:crypto, libsodium).
 */
export function ed25519VerifyRaw(data: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  if (sodium === undefined) sodium = loadSodium()
  // Lengths in bytes as the engine knows them (see bufferOf): a Uint16Array of 64 units is 128 bytes,
  // of which libsodium would read the first 64 where node:crypto refuses any signature not of 64.
  if (!(publicKey instanceof Uint8Array) || byteLengthOf(publicKey) !== 32) throw new TypeError('an Ed25519 public key is 32 bytes')
  if (!(signature instanceof Uint8Array) || byteLengthOf(signature) !== 64) return false
  // The addon takes 32-bit offsets and lengths: a view that ends past 2^32 - 1 of its buffer was read
  // 2^32 bytes earlier (a key there, another key). node:crypto, which reads the engine's view, checks it.
  if (sodium !== null && addressable(signature) && addressable(data) && addressable(publicKey)) {
    const ok = sodium.verify(bufferOf(signature), byteOffsetOf(signature), bufferOf(data), byteOffsetOf(data), byteLengthOf(data), bufferOf(publicKey), byteOffsetOf(publicKey))
    if (typeof ok === 'boolean') return ok
    // The addon answers undefined, not false, for a SharedArrayBuffer, which node:crypto reads as any
    // other: the same bytes, copied (a copy is made from the engine's view), get node:crypto's answer.
    const [s, m, pk] = [new Uint8Array(signature), new Uint8Array(data), new Uint8Array(publicKey)]
    return sodium.verify(s.buffer, 0, m.buffer, 0, m.length, pk.buffer, 0) === true
  }
  // node:crypto reads the engine's view of data and signature; the key's bytes are copied from it too.
  return cryptoVerify(null, data, { key: { kty: 'OKP', crv: 'Ed25519', x: base64urlEncode(new Uint8Array(publicKey)) }, format: 'jwk' }, signature)
}

const addressable = (view: Uint8Array) => byteOffsetOf(view) + byteLengthOf(view) <= 0xffff_ffff

/** An Ed25519 signer over one private key, made by {@link ed25519SeedSigner}. */
export interface Ed25519SeedSigner {
  /** The public key libsodium derived from the seed (32 bytes, a copy). */
  readonly publicKey: Uint8Array
  /** The RFC 8032 signature of `data` (64 bytes; deterministic: node:crypto's for the same key and data). */
  sign(data: Uint8Array): Buffer
  /** Overwrites the secret key held in memory with zeros: every later `sign` throws. */
  dispose(): void
}

/**
 * A signer that signs with libsodium under the Ed25519 private key `seed` (32 bytes), on the caller's
 * thread; null where the backend is node:crypto (see {@link ed25519Backend}), or where the addon has
 * no signing functions. The key pair is derived from the seed alone (crypto_sign_seed_keypair), never
 * taken from a caller: libsodium's signature hashes the secret key's public half, and a public half
 * that does not match the seed turns two signatures of one message into the private key. The seed is
 * copied; the caller may wipe its own.
 * @example
 * const signer = ed25519SeedSigner(seed) // null on node:crypto: sign there instead
 * const signature = signer?.sign(Buffer.from('hello'))
 */
export function ed25519SeedSigner(seed: Uint8Array): Ed25519SeedSigner | null {
  // Loaded before the seed is checked and copied: loading runs module code and the process's load
  // hooks, and a seed shrunk meanwhile (a resizable buffer) had libsodium read the heap past its copy.
  if (sodium === undefined) sodium = loadSodium()
  if (!(seed instanceof Uint8Array) || byteLengthOf(seed) !== 32) throw new TypeError('an Ed25519 private key (seed) is 32 bytes')
  if (sodium === null || sodium.seedKeypair === null || sodium.signDetached === null) return null
  const signDetached = sodium.signDetached
  const publicKey = new Uint8Array(32)
  // Off V8's heap from the start (an ArrayBuffer's store): a Uint8Array of 64 bytes or fewer is kept on
  // the heap, where the collector may move it and the addon's first read copies it out, leaving the
  // key's bytes behind where no wipe reaches (a seed copied so survived its signer's dispose()).
  const secretKey = new Uint8Array(new ArrayBuffer(64)) // seed, then public key, libsodium's form
  const seedCopy = new Uint8Array(new ArrayBuffer(32))
  copyInto.call(seedCopy, seed) // the engine's view of the caller's bytes
  try {
    sodium.seedKeypair(publicKey, secretKey, seedCopy)
  } finally {
    seedCopy.fill(0)
  }
  let disposed = false
  return Object.freeze({
    publicKey: new Uint8Array(publicKey),
    sign(data: Uint8Array): Buffer {
      if (disposed) throw new TypeError('ed25519SeedSigner: this signer was disposed')
      if (!(data instanceof Uint8Array)) throw new TypeError('ed25519SeedSigner: data must be a Uint8Array')
      const signature = Buffer.alloc(64)
      // A fresh view of the engine's bytes: the addon reads the view it is given (never own properties).
      // Memory another thread can write (a SharedArrayBuffer) is copied first, as node:crypto's pool sign
      // copies: libsodium hashes the message twice (nonce, then challenge), and bytes changed between the
      // two make a signature that, with the one of either message, gives away the private key.
      const buffer = bufferOf(data)
      const bytes = isArrayBuffer(buffer) ? new Uint8Array(buffer, byteOffsetOf(data), byteLengthOf(data)) : new Uint8Array(data)
      signDetached(signature, bytes, secretKey)
      return signature
    },
    dispose(): void {
      disposed = true
      secretKey.fill(0)
    },
  })
}
