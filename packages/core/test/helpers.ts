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
