// Shared test helpers: vector loading from the repo copy and error capture. Not a test file.
import { readFileSync } from 'node:fs'

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
