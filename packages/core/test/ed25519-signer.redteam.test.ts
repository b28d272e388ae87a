// Red team: ed25519SeedSigner under hostile input that the main suite does not try.
import { createPrivateKey, createPublicKey, randomBytes, webcrypto } from 'node:crypto'
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs'
import { Worker } from 'node:worker_threads'
import { describe, expect, it, vi } from 'vitest'
import { ed25519Backend, ed25519SeedSigner } from '../src/ed25519.js'
import { generateEd25519KeyPair, signerFromJwk } from '../src/keys.js'

describe.runIf(ed25519Backend() === 'libsodium')('ed25519SeedSigner (red team)', () => {
  it('never signs two messages under one nonce while another thread rewrites the bytes (that gives away the key)', async () => {
    // libsodium hashes the message twice: once for the nonce r, once for the challenge k. Bytes changed
    // between the two give a signature (R, r + k'a) whose R is that of one message; with that message's
    // own signature (R, r + ka), a = (S' - S) / (k' - k): two signatures, the private key. A signer that
    // reads shared memory in place made such a mix in about half of its signatures here.
    const signer = ed25519SeedSigner(randomBytes(32))!
    expect(await noncesReusedUnderRewrites((view) => signer.sign(view), [Uint8Array], 2000), 'nonces R that signed two different S').toBe(0)
  })
})

describe.runIf(ed25519Backend() === 'libsodium')('ed25519SeedSigner (red team): the first call loads the backend', () => {
  it('a module-load hook that shrinks the seed\'s buffer while the addon loads does not make libsodium read past it', async () => {
    // The addon's length asserts are compiled out: a 16-byte copy of the seed had libsodium read 16
    // bytes of the heap after it, and the signer held a key pair of neither seed.
    const Module = (await import('node:module')).default as unknown as { _load: (...args: unknown[]) => unknown }
    vi.resetModules() // a fresh backend module: loaded by the call below
    const m = await import('../src/ed25519.js')
    const buffer = new ArrayBuffer(32, { maxByteLength: 32 })
    const seed = new Uint8Array(buffer) // tracks the buffer's length
    seed.set(randomBytes(32))
    const full = Buffer.from(seed)
    const original = Module._load
    let hooked = false
    Module._load = function (this: unknown, ...args: unknown[]) {
      hooked = true
      buffer.resize(16)
      return original.apply(this, args)
    }
    let signer
    try {
      signer = m.ed25519SeedSigner(seed)
    } catch (error) {
      expect(error).toBeInstanceOf(TypeError) // the 16 bytes left are no seed
    } finally {
      Module._load = original
    }
    expect(hooked).toBe(true)
    if (signer) {
      const key = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), full]), format: 'der', type: 'pkcs8' })
      const x = (createPublicKey(key).export({ format: 'jwk' }) as { x: string }).x
      expect(Buffer.from(signer.publicKey).toString('base64url')).toBe(x) // the 32 bytes it was given
    }
  })
})

/** How many times `wanted(i)` (i < 32) occurs in this process's writable memory (/proc/self/mem). */
function occurrences(wanted: (i: number) => number): number {
  const fd = openSync('/proc/self/mem', 'r')
  const chunk = Buffer.alloc(1 << 20)
  const first = wanted(0)
  let hits = 0
  try {
    for (const line of readFileSync('/proc/self/maps', 'utf8').trim().split('\n')) {
      const [range, perms] = line.split(/\s+/)
      if (!perms!.startsWith('rw')) continue
      const [start, end] = range!.split('-').map((h) => BigInt(`0x${h}`)) as [bigint, bigint]
      // Chunks overlap by 31 bytes, so that a copy across two of them is seen.
      for (let at = start; at < end; at += BigInt(chunk.length - 31)) {
        let n: number
        try {
          n = readSync(fd, chunk, 0, Number(end - at < BigInt(chunk.length) ? end - at : BigInt(chunk.length)), at)
        } catch {
          break // a guard page
        }
        for (let i = chunk.indexOf(first); i !== -1 && i + 32 <= n; i = chunk.indexOf(first, i + 1)) {
          let j = 1
          while (j < 32 && chunk[i + j] === wanted(j)) j++
          if (j === 32) hits++
        }
        chunk.fill(0) // what it read must not be found in it when its own memory is read
        if (n < chunk.length) break
      }
    }
  } finally {
    closeSync(fd)
  }
  return hits
}

describe.runIf(ed25519Backend() === 'libsodium' && existsSync('/proc/self/mem'))('ed25519SeedSigner (red team): the key in memory', () => {
  it('leaves no copy of the seed in the process once disposed (the caller wiped its own)', () => {
    // The seed lives in an off-heap buffer that is wiped; the test keeps it only masked. A signer that
    // copied it into a 32-byte Uint8Array (kept on V8's heap, then moved off it when the addon read it)
    // left that first copy on the heap, where dispose() could not reach it.
    const arena = Buffer.alloc(8192)
    webcrypto.getRandomValues(arena.subarray(0, 32))
    const masked = Buffer.alloc(4096)
    for (let i = 0; i < 32; i++) masked[i] = arena[i]! ^ 0x5a
    const signer = ed25519SeedSigner(arena.subarray(0, 32))!
    arena.fill(0)
    signer.sign(Buffer.from('header.payload'))
    const held = occurrences((i) => masked[i]! ^ 0x5a)
    signer.dispose()
    expect(occurrences((i) => masked[i]! ^ 0x5a)).toBe(0)
    expect(held).toBeGreaterThan(0) // the scan finds the key while the signer holds it
  })
})

describe('signerFromJwk (red team): node:crypto signing shared memory', () => {
  it('never signs two messages under one nonce while another thread rewrites the bytes (a Uint8Array and a DataView over it)', async () => {
    // The same attack as on ed25519SeedSigner: node:crypto's sync sign read shared bytes in place
    // (20 nonces reused in 5,867 signatures here).
    const signer = signerFromJwk(generateEd25519KeyPair().privateJwk)
    expect(await noncesReusedUnderRewrites((view) => signer.sign(view), [Uint8Array, DataView], 1000), 'nonces R that signed two different S').toBe(0)
  })
})

/**
 * How many nonces R signed two different S while a worker rewrote the signed bytes (all 0, then all
 * 0xff) in a SharedArrayBuffer: each view kind in turn, for 500 ms and at least `atLeast` signatures.
 * A deterministic signer gives one S per R: a copy taken mid-rewrite may be a third message, signed as
 * one, which is fine; one nonce under two messages gives away the key.
 */
async function noncesReusedUnderRewrites(sign: (view: Uint8Array) => Uint8Array | Promise<Uint8Array>, views: Array<typeof Uint8Array | typeof DataView>, atLeast: number): Promise<number> {
  const sab = new SharedArrayBuffer(4 + 64)
  const control = new Int32Array(sab, 0, 1)
  const byR = new Map<string, Set<string>>()
  const record = (signature: Uint8Array) => {
    const r = Buffer.from(signature.subarray(0, 32)).toString('hex')
    byR.set(r, (byR.get(r) ?? new Set()).add(Buffer.from(signature.subarray(32)).toString('hex')))
  }
  record(await sign(new Uint8Array(64)))
  record(await sign(new Uint8Array(64).fill(0xff)))
  const writer = new Worker(`const { workerData: sab } = require('node:worker_threads')
    const control = new Int32Array(sab, 0, 1), message = new Uint8Array(sab, 4, 64)
    Atomics.store(control, 0, 1)
    while (Atomics.load(control, 0) === 1) { message.fill(0); message.fill(255) }`, { eval: true, workerData: sab })
  try {
    while (Atomics.load(control, 0) !== 1) await new Promise((resolve) => setTimeout(resolve, 1))
    for (const View of views) {
      const view = new View(sab, 4, 64) as unknown as Uint8Array
      for (let i = 0, until = Date.now() + 500; Date.now() < until || i < atLeast; i++) record(await sign(view))
    }
    return [...byR.values()].filter((set) => set.size > 1).length
  } finally {
    Atomics.store(control, 0, 2)
    await writer.terminate()
  }
}
