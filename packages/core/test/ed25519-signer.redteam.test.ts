// Red team: ed25519SeedSigner under hostile input that the main suite does not try.
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto'
import { Worker } from 'node:worker_threads'
import { describe, expect, it, vi } from 'vitest'
import { ed25519Backend, ed25519SeedSigner } from '../src/ed25519.js'

describe.runIf(ed25519Backend() === 'libsodium')('ed25519SeedSigner (red team)', () => {
  it('never signs two messages under one nonce while another thread rewrites the bytes (that gives away the key)', async () => {
    // libsodium hashes the message twice: once for the nonce r, once for the challenge k. Bytes changed
    // between the two give a signature (R, r + k'a) whose R is that of one message; with that message's
    // own signature (R, r + ka), a = (S' - S) / (k' - k): two signatures, the private key. A signer that
    // reads shared memory in place made such a mix in about half of its signatures here.
    const signer = ed25519SeedSigner(randomBytes(32))!
    const sab = new SharedArrayBuffer(4 + 64)
    const control = new Int32Array(sab, 0, 1)
    const message = new Uint8Array(sab, 4, 64)
    // Signatures by R: a deterministic signer gives one S per R (one message per nonce). A copy of the
    // bytes taken while they change may be a third message, signed as one: that is fine.
    const byR = new Map<string, Set<string>>()
    const record = (signature: Buffer) => {
      const r = signature.subarray(0, 32).toString('hex')
      byR.set(r, (byR.get(r) ?? new Set()).add(signature.subarray(32).toString('hex')))
    }
    record(signer.sign(new Uint8Array(64)))
    record(signer.sign(new Uint8Array(64).fill(0xff)))
    const writer = new Worker(`const { workerData: sab } = require('node:worker_threads')
      const control = new Int32Array(sab, 0, 1), message = new Uint8Array(sab, 4, 64)
      Atomics.store(control, 0, 1)
      while (Atomics.load(control, 0) === 1) { message.fill(0); message.fill(255) }`, { eval: true, workerData: sab })
    try {
      while (Atomics.load(control, 0) !== 1) await new Promise((resolve) => setTimeout(resolve, 1))
      const until = Date.now() + 500
      for (let i = 0; Date.now() < until || i < 2000; i++) record(signer.sign(message))
      const reused = [...byR.values()].filter((s) => s.size > 1).length
      expect(reused, 'nonces R that signed two different S').toBe(0)
    } finally {
      Atomics.store(control, 0, 2)
      await writer.terminate()
    }
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
