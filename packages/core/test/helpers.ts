// Shared test helpers: vector loading from the repo copy and error capture. Not a test file.
import { readFileSync } from 'node:fs'
import { decodeDidKey, encodeDidKey, hasSmallOrderR } from '@agentid/core'

/** Reads a JSON vector file from the repository's `vectors/` directory. */
export function readVector<T = any>(path: string): T {
  return JSON.parse(readFileSync(new URL(`../../../vectors/${path}`, import.meta.url), 'utf8')) as T
}

/** Runs `fn` and returns what it threw; fails the test when it returns normally. */
export function thrown(fn: () => unknown): any {
  try {
    fn()
  } catch (error) {
    return error
  }
  throw new Error('expected the call to throw, it returned')
}

/** Same as {@link thrown} for async functions. */
export async function rejected(fn: () => Promise<unknown>): Promise<any> {
  try {
    await fn()
  } catch (error) {
    return error
  }
  throw new Error('expected the call to reject, it resolved')
}

/**
 * Each ed25519-speccheck case (cases.annotated.json) through our gates, then `verify`: false when R is
 * of small order or the key fails the did:key gate, else what `verify` says of message, signature, key.
 */
export function speccheckThroughGates(cases: readonly any[], verify: (message: Buffer, signature: Buffer, key: Uint8Array) => boolean): boolean[] {
  return cases.map((c) => {
    const sig = Buffer.from(c.signature, 'hex')
    if (hasSmallOrderR(sig)) return false
    let key: Uint8Array
    try {
      key = decodeDidKey(encodeDidKey(Buffer.from(c.pub_key, 'hex'))).publicKey
    } catch {
      return false
    }
    return verify(Buffer.from(c.message, 'hex'), sig, key)
  })
}

/** A scalar as Ed25519 encodes it: 32 bytes, little-endian (the low 256 bits of `n`). */
export function leBytes(n: bigint): Buffer {
  const out = Buffer.alloc(32)
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn)
  return out
}

/** Little-endian bytes read as a number (an Ed25519 scalar, a SHA-512 digest reduced by the caller). */
export function leNumber(bytes: Uint8Array): bigint {
  let n = 0n
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!)
  return n
}
