import { verify as cryptoVerify } from 'node:crypto'
import { createRequire } from 'node:module'
import { base64urlEncode } from './base64url.js'

// Which implementation checks an Ed25519 signature under a raw public key on the caller's thread.
// libsodium (through sodium-native's prebuilt addon, an optional dependency) costs about 0.6 of
// node:crypto's verify here: node:crypto goes through OpenSSL 3.0's EVP layer, which fetches the
// algorithm from its provider, makes a context and imports the key on every call. Both give the same
// answer on every input that reaches them: R of small order is refused before either runs
// (refuseSmallOrderR) and a did:key's point is canonical and not of small order (did-key.ts), which
// is what libsodium adds to the RFC 8032 equation (speccheck and Wycheproof tests, both backends).
// Without the addon (no prebuild for the platform, or AGENTID_ED25519=node:crypto), node:crypto.

/** The Ed25519 verifier in use: `libsodium` (sodium-native) or `node:crypto`. */
export type Ed25519Backend = 'libsodium' | 'node:crypto'

interface Sodium {
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean
}

let sodium: Sodium | null | undefined

// Loaded on the first check, not on import: the issuer and the CLI import core and may never verify.
function loadSodium(): Sodium | null {
  if (process.env.AGENTID_ED25519 === 'node:crypto') return null
  try {
    const loaded = createRequire(import.meta.url)('sodium-native') as Partial<Sodium>
    return typeof loaded.crypto_sign_verify_detached === 'function' ? (loaded as Sodium) : null
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
  if (publicKey.length !== 32) throw new TypeError('an Ed25519 public key is 32 bytes')
  // Bytes only: libsodium reads the first 64 bytes of a longer view (a Uint16Array of 64 units is 128
  // bytes), where node:crypto refuses any signature that is not 64 bytes.
  if (!(signature instanceof Uint8Array) || signature.length !== 64) return false
  if (sodium !== null) return sodium.crypto_sign_verify_detached(signature, data, publicKey)
  return cryptoVerify(null, data, { key: { kty: 'OKP', crv: 'Ed25519', x: base64urlEncode(publicKey) }, format: 'jwk' }, signature)
}
