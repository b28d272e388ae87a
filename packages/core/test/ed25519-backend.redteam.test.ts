// Red team of raw-key verification (verifyJwsSignatureRaw on libsodium or node:crypto) and of the
// node:crypto checks beside it: inputs on which the two backends, or the strict checks and the
// equation, could part ways. Each case checks a definite accept or refuse, and its error code, on both
// backends (fresh module instances, chosen by AGENTID_ED25519 as the process would).
import { createHash } from 'node:crypto'
import { Worker } from 'node:worker_threads'
import { ed25519 } from '@noble/curves/ed25519'
import { decodeDidKey, decodeJwt, generateEd25519KeyPair, publicKeyFromRaw, signerFromJwk, signJwt, type DecodedJws } from '@agentid/core'
import { describe, expect, it, vi } from 'vitest'
import { leBytes, leNumber } from './helpers.js'

type Jws = typeof import('../src/jws.js')
type Ed = typeof import('../src/ed25519.js')

/** Fresh jws and ed25519 modules whose backend is chosen with AGENTID_ED25519 set to `env`. */
async function backend(env: string): Promise<{ jws: Jws; ed: Ed; name: string }> {
  vi.resetModules()
  vi.stubEnv('AGENTID_ED25519', env)
  const ed = await import('../src/ed25519.js')
  const name = ed.ed25519Backend()
  vi.unstubAllEnvs()
  const jws = await import('../src/jws.js')
  return { jws, ed, name }
}

const backends = [await backend(''), await backend('node:crypto')]

/** 'accepted', or the error's code (a VerificationError of either instance: compared by code) or class name. */
function outcome(fn: () => unknown): string {
  try {
    fn()
    return 'accepted'
  } catch (error) {
    const code = (error as { code?: unknown }).code
    return typeof code === 'string' && code.startsWith('ERR_') ? code : (error as Error).constructor.name
  }
}

/** The outcome of `fn` on each backend, by backend name. */
function onBoth(fn: (m: Jws) => unknown): Record<string, string> {
  return Object.fromEntries(backends.map((b) => [b.name, outcome(() => fn(b.jws))]))
}

const both = (value: string) => ({ libsodium: value, 'node:crypto': value })

const L = ed25519.CURVE.n

const pair = generateEd25519KeyPair()
const raw = decodeDidKey(pair.did).publicKey
const jws = decodeJwt(await signJwt({}, { sub: 'agent' }, signerFromJwk(pair.privateJwk)))
const other = decodeJwt(await signJwt({}, { sub: 'other' }, signerFromJwk(pair.privateJwk)))

/**
 * A signature by the key's holder whose R is the identity point: S = h·a, so [S]B - [h]A = identity = R.
 * The cofactorless equation (node:crypto) holds; libsodium refuses R of small order, and so must every path.
 */
function identityRSignature(signingInput: string): Buffer {
  const { scalar } = ed25519.utils.getExtendedPublicKey(Buffer.from(pair.privateJwk.d, 'base64url'))
  const R = Buffer.concat([Buffer.from([1]), Buffer.alloc(31)])
  const h = leNumber(createHash('sha512').update(R).update(raw).update(signingInput).digest()) % L
  return Buffer.concat([R, leBytes((h * scalar) % L)])
}

describe('raw-key verification red team: what a signature is', () => {
  it('the identity-R signature is a real disagreement of the bare equations (the premise of the R check)', () => {
    const sig = identityRSignature(jws.signingInput)
    const [sodium, node] = backends
    expect([sodium!.name, node!.name]).toEqual(['libsodium', 'node:crypto'])
    const data = Buffer.from(jws.signingInput)
    expect(sodium!.ed.ed25519VerifyRaw(data, sig, raw)).toBe(false)
    expect(node!.ed.ed25519VerifyRaw(data, sig, raw)).toBe(true)
    expect(onBoth((m) => m.verifyJwsSignatureRaw({ ...jws, signature: sig }, raw))).toEqual(both('ERR_SIGNATURE_INVALID'))
  })

  it('a typed array of another kind whose first 64 bytes are a valid signature is refused on both backends (libsodium read its bytes, node:crypto all of them)', () => {
    const wide = new Uint16Array(64) // 64 elements, 128 bytes
    new Uint8Array(wide.buffer).set(jws.signature)
    expect(onBoth((m) => m.verifyJwsSignatureRaw({ ...jws, signature: wide as never }, raw))).toEqual(both('ERR_SIGNATURE_INVALID'))
    for (const view of [new Uint16Array(32), new Float64Array(8), new Int8Array(64), new DataView(new ArrayBuffer(64))]) {
      new Uint8Array(view.buffer).set(jws.signature)
      const name = view.constructor.name
      expect(onBoth((m) => m.verifyJwsSignatureRaw({ ...jws, signature: view as never }, raw)), name).toEqual(both('ERR_SIGNATURE_INVALID'))
      expect(onBoth((m) => m.verifyJwsSignature({ ...jws, signature: view as never }, pair.publicJwk)), name).toEqual(both('ERR_SIGNATURE_INVALID'))
    }
  })

  it('the R check is not skipped for a signature given as another kind of view (node:crypto took its bytes, with an identity R)', async () => {
    const sig = identityRSignature(jws.signingInput)
    for (const view of [new Uint16Array(32), new Uint32Array(16), new Float64Array(8), new DataView(new ArrayBuffer(64))]) {
      new Uint8Array(view.buffer).set(sig)
      const name = view.constructor.name
      expect(onBoth((m) => m.verifyJwsSignature({ ...jws, signature: view as never }, pair.publicJwk)), name).toEqual(both('ERR_SIGNATURE_INVALID'))
      expect(onBoth((m) => m.verifyJwsSignatureRaw({ ...jws, signature: view as never }, raw)), name).toEqual(both('ERR_SIGNATURE_INVALID'))
      for (const b of backends) {
        const error = await b.jws.verifyJwsSignatureAsync({ ...jws, signature: view as never }, pair.publicJwk).then(() => 'accepted', (e: { code: string }) => e.code)
        expect(error, `${name} async`).toBe('ERR_SIGNATURE_INVALID')
      }
    }
  })

  it('a key, signature or signing input in a SharedArrayBuffer gets the same answer on both backends (sodium-native answered undefined)', () => {
    const shared = (bytes: Uint8Array) => {
      const view = new Uint8Array(new SharedArrayBuffer(bytes.length + 5), 5, bytes.length)
      view.set(bytes)
      return view
    }
    expect(onBoth((m) => m.verifyJwsSignatureRaw({ ...jws, signature: shared(jws.signature) }, raw))).toEqual(both('accepted'))
    expect(onBoth((m) => m.verifyJwsSignatureRaw(jws, shared(raw)))).toEqual(both('accepted'))
    expect(onBoth((m) => m.verifyJwsSignatureRaw({ ...jws, signature: shared(jws.signature) }, shared(raw)))).toEqual(both('accepted'))
    const flipped = shared(jws.signature)
    flipped[10]! ^= 4
    expect(onBoth((m) => m.verifyJwsSignatureRaw({ ...jws, signature: flipped }, shared(raw)))).toEqual(both('ERR_SIGNATURE_INVALID'))
    expect(onBoth((m) => m.verifyJwsSignatureRaw(other, shared(raw)))).toEqual(both('accepted'))
    expect(onBoth((m) => m.verifyJwsSignatureRaw({ ...other, signature: jws.signature }, shared(raw)))).toEqual(both('ERR_SIGNATURE_INVALID'))
    // The bare backend, a shared signing input: the same answer too.
    for (const b of backends) {
      expect(b.ed.ed25519VerifyRaw(shared(Buffer.from(jws.signingInput)), jws.signature, raw), b.name).toBe(true)
      expect(b.ed.ed25519VerifyRaw(shared(Buffer.from(other.signingInput)), jws.signature, raw), b.name).toBe(false)
    }
  })

  it('views at an offset, into a larger buffer, and a length-tracking view of a resizable buffer: accepted on both', () => {
    const big = new Uint8Array(300)
    big.set(jws.signature, 77)
    big.set(raw, 200)
    expect(onBoth((m) => m.verifyJwsSignatureRaw({ ...jws, signature: big.subarray(77, 141) }, big.subarray(200, 232)))).toEqual(both('accepted'))
    const resizable = new ArrayBuffer(64, { maxByteLength: 256 } as never)
    const tracking = new Uint8Array(resizable)
    tracking.set(jws.signature)
    expect(onBoth((m) => m.verifyJwsSignatureRaw({ ...jws, signature: tracking }, raw))).toEqual(both('accepted'))
    ;(resizable as unknown as { resize(n: number): void }).resize(65) // now 65 bytes: not a signature
    expect(onBoth((m) => m.verifyJwsSignatureRaw({ ...jws, signature: tracking }, raw))).toEqual(both('ERR_SIGNATURE_INVALID'))
  })

  it('a detached key is a TypeError and a detached signature refused, on both backends', () => {
    const key = new Uint8Array(raw)
    structuredClone(key.buffer, { transfer: [key.buffer] })
    expect(onBoth((m) => m.verifyJwsSignatureRaw(jws, key))).toEqual(both('TypeError'))
    const sig = new Uint8Array(jws.signature)
    structuredClone(sig.buffer, { transfer: [sig.buffer] })
    expect(onBoth((m) => m.verifyJwsSignatureRaw({ ...jws, signature: sig }, raw))).toEqual(both('ERR_SIGNATURE_INVALID'))
  })
})

describe('raw-key verification red team: the jws read once', () => {
  it('a signature getter that verifies another JWS (same signing-input length) does not make a forged signing input pass: the scratch bytes are not swapped under it', () => {
    const forgedInput = `${other.signingInput.slice(0, -2)}QQ` // same length as other's, not signed
    expect(forgedInput.length).toBe(other.signingInput.length)
    for (const b of backends) {
      const reentrant = {
        signingInput: forgedInput,
        get signature() {
          b.jws.verifyJwsSignatureRaw(other, raw) // fills the scratch buffer with other's signing input
          return other.signature
        },
      } as Pick<DecodedJws, 'signingInput' | 'signature'>
      expect(outcome(() => b.jws.verifyJwsSignatureRaw(reentrant, raw)), b.name).toBe('ERR_SIGNATURE_INVALID')
      const reentrantOld = {
        signingInput: forgedInput,
        get signature() {
          b.jws.verifyJwsSignature(other, pair.publicJwk)
          return other.signature
        },
      } as Pick<DecodedJws, 'signingInput' | 'signature'>
      expect(outcome(() => b.jws.verifyJwsSignature(reentrantOld, pair.publicJwk)), `${b.name} verifyJwsSignature`).toBe('ERR_SIGNATURE_INVALID')
    }
  })

  it('a signature that changes between reads (clean for the R check, identity R for the equation) is refused on both backends', () => {
    const identityR = identityRSignature(jws.signingInput)
    const flipped = Buffer.from(jws.signature)
    flipped[40]! ^= 1
    const shifty = () => {
      let reads = 0
      return {
        signingInput: jws.signingInput,
        get signature() {
          return reads++ === 0 ? flipped : identityR
        },
      } as Pick<DecodedJws, 'signingInput' | 'signature'>
    }
    expect(onBoth((m) => m.verifyJwsSignatureRaw(shifty(), raw))).toEqual(both('ERR_SIGNATURE_INVALID'))
    expect(onBoth((m) => m.verifyJwsSignature(shifty(), pair.publicJwk))).toEqual(both('ERR_SIGNATURE_INVALID'))
  })
})

// A typed array whose `byteOffset`, `byteLength`, `buffer` or `length` is not what the engine knows (an
// own property, a subclass getter): node:crypto reads the engine's view; the addon was handed the
// properties and read memory at the offset it was given (a segmentation fault, or bytes from outside
// the view). Run in a child process each (a crash must fail the test, not the runner), on the built
// package, on both backends.
const lyingChild = (distUrl: string, which: string) => `
const core = await import(${JSON.stringify(distUrl)})
const pair = core.generateEd25519KeyPair()
const raw = core.decodeDidKey(pair.did).publicKey
const jws = core.decodeJwt(await core.signJwt({}, { sub: 'a' }, core.signerFromJwk(pair.privateJwk)))
const lie = (view, props) => { for (const [k, v] of Object.entries(props)) Object.defineProperty(view, k, { value: v }); return view }
let sig = new Uint8Array(jws.signature), key = new Uint8Array(raw)
switch (${JSON.stringify(which)}) {
  case 'signature byteOffset (own)': lie(sig, { byteOffset: 2 ** 30 }); break
  case 'signature byteOffset (subclass)': { class S extends Uint8Array { get byteOffset() { return 2 ** 30 } }; sig = new S(64); sig.set(jws.signature); break }
  case 'key byteOffset (own)': lie(key, { byteOffset: 2 ** 24 }); break
  case 'signature buffer (own)': lie(sig, { buffer: new ArrayBuffer(64) }); break
  case 'signature of 65 bytes, length 64 (own)': sig = lie(Uint8Array.from([...jws.signature, 0]), { length: 64 }); break
  case 'signature of 65 bytes, length and byteLength 64 (own)': sig = lie(Uint8Array.from([...jws.signature, 0]), { length: 64, byteLength: 64 }); break
  case 'key of 33 bytes, length 32 (own)': key = lie(Uint8Array.from([...raw, 0]), { length: 32, byteLength: 32 }); break
}
let out
try { core.verifyJwsSignatureRaw({ ...jws, signature: sig }, key); out = 'accepted' } catch (e) { out = e.code ?? e.constructor.name }
process.stdout.write(JSON.stringify({ backend: core.ed25519Backend(), out }))
`

describe('raw-key verification red team: typed arrays that lie about their bytes', async () => {
  const { spawnSync } = await import('node:child_process')
  const { existsSync, mkdtempSync, rmSync, writeFileSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const { fileURLToPath } = await import('node:url')
  const dist = new URL('../dist/index.js', import.meta.url)
  const cases: Record<string, string> = {
    'signature byteOffset (own)': 'accepted',
    'signature byteOffset (subclass)': 'accepted',
    'key byteOffset (own)': 'accepted',
    'signature buffer (own)': 'accepted',
    'signature of 65 bytes, length 64 (own)': 'ERR_SIGNATURE_INVALID',
    'signature of 65 bytes, length and byteLength 64 (own)': 'ERR_SIGNATURE_INVALID',
    'key of 33 bytes, length 32 (own)': 'TypeError',
  }
  it.each(Object.entries(cases))('%s: %s on both backends, no crash', (which, expected) => {
    expect(existsSync(fileURLToPath(dist)), 'core is not built: run `npx tsc -b` first').toBe(true)
    const work = mkdtempSync(join(tmpdir(), 'agentid-lying-'))
    try {
      const script = join(work, 'child.mjs')
      writeFileSync(script, lyingChild(dist.href, which))
      for (const env of ['', 'node:crypto']) {
        const run = spawnSync(process.execPath, [script], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, AGENTID_ED25519: env } })
        expect({ env, status: run.status, signal: run.signal, stderr: run.stderr }).toEqual({ env, status: 0, signal: null, stderr: '' })
        expect(JSON.parse(run.stdout)).toEqual({ backend: env === '' ? 'libsodium' : 'node:crypto', out: expected })
      }
    } finally {
      rmSync(work, { recursive: true, force: true })
    }
  })
})

describe('raw-key verification red team: mixed-order keys (aB + T, T of order 8), which the did:key gate lets through', () => {
  const T = ed25519.ExtendedPoint.fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a')
  const a = (leNumber(createHash('sha512').update('mixed-order key').digest()) % (L - 1n)) + 1n
  const key = Buffer.from(ed25519.ExtendedPoint.BASE.multiply(a).add(T).toRawBytes())
  // An honest signature by the holder of a: [S]B - [h]A = R - [h]T, which is R (the cofactorless
  // equation of both backends) exactly when h = 0 mod 8.
  function sign(signingInput: string, wantZero: boolean): Buffer {
    for (let n = 0; ; n++) {
      const r = (leNumber(createHash('sha512').update(`${signingInput}/${n}`).digest()) % (L - 1n)) + 1n
      const R = Buffer.from(ed25519.ExtendedPoint.BASE.multiply(r).toRawBytes())
      const h = leNumber(createHash('sha512').update(R).update(key).update(signingInput).digest()) % L
      if ((h % 8n === 0n) === wantZero) return Buffer.concat([R, leBytes((r + h * a) % L)])
    }
  }

  it('passes the did:key gate (not prime-order only), and both backends accept exactly the signatures whose h is 0 mod 8', async () => {
    const { decodeDidKey: decode, encodeDidKey: encode } = await import('@agentid/core')
    expect(decode(encode(key)).publicKey).toEqual(new Uint8Array(key))
    for (let i = 0; i < 6; i++) {
      const signingInput = `eyJhbGciOiJFZERTQSJ9.${Buffer.from(`{"n":${i}}`).toString('base64url')}`
      expect(onBoth((m) => m.verifyJwsSignatureRaw({ signingInput, signature: sign(signingInput, true) }, key)), `h = 0 mod 8, ${i}`).toEqual(both('accepted'))
      expect(onBoth((m) => m.verifyJwsSignatureRaw({ signingInput, signature: sign(signingInput, false) }, key)), `h != 0 mod 8, ${i}`).toEqual(both('ERR_SIGNATURE_INVALID'))
      expect(onBoth((m) => m.verifyJwsSignature({ signingInput, signature: sign(signingInput, true) }, { kty: 'OKP', crv: 'Ed25519', x: key.toString('base64url') })), `node:crypto KeyObject path, ${i}`).toEqual(both('accepted'))
    }
  })
})

describe('raw-key verification red team: malleated forms of an honest signature', () => {
  it('S + L, S + 2^253, S with its top bits set, R with its sign bit flipped, R negated, R and S swapped: refused on both backends, and by the bare equations alike', () => {
    const S = leNumber(jws.signature.subarray(32))
    const R = ed25519.ExtendedPoint.fromHex(jws.signature.subarray(0, 32))
    const forms: Record<string, Buffer> = {
      'S + L': Buffer.concat([jws.signature.subarray(0, 32), leBytes(S + L)]),
      'S + 2^253': Buffer.concat([jws.signature.subarray(0, 32), leBytes(S + (1n << 253n))]),
      'S | 0xe0 in its top byte': Buffer.concat([jws.signature.subarray(0, 63), Buffer.from([jws.signature[63]! | 0xe0])]),
      'R sign bit flipped': Buffer.concat([jws.signature.subarray(0, 31), Buffer.from([jws.signature[31]! ^ 0x80]), jws.signature.subarray(32)]),
      'R negated, S negated': Buffer.concat([Buffer.from(R.negate().toRawBytes()), leBytes((L - S) % L)]),
      'R and S swapped': Buffer.concat([jws.signature.subarray(32), jws.signature.subarray(0, 32)]),
    }
    const data = Buffer.from(jws.signingInput)
    for (const [name, sig] of Object.entries(forms)) {
      expect(onBoth((m) => m.verifyJwsSignatureRaw({ ...jws, signature: sig }, raw)), name).toEqual(both('ERR_SIGNATURE_INVALID'))
      expect(onBoth((m) => m.verifyJwsSignature({ ...jws, signature: sig }, pair.publicJwk)), name).toEqual(both('ERR_SIGNATURE_INVALID'))
      expect(backends.map((b) => b.ed.ed25519VerifyRaw(data, sig, raw)), name).toEqual([false, false])
    }
    expect(onBoth((m) => m.verifyJwsSignatureRaw(jws, raw))).toEqual(both('accepted'))
  })
})

describe('raw-key verification red team: the first check loads the backend', () => {
  it('a module-load hook that verifies another JWS while the addon loads (the first check) does not swap the scratch bytes under a forged signing input', async () => {
    const Module = (await import('node:module')).default as unknown as { _load: (...args: unknown[]) => unknown }
    const forgedInput = `${other.signingInput.slice(0, -2)}QQ`
    for (const env of ['', 'node:crypto']) {
      vi.resetModules() // a fresh backend module: loaded by the check below
      vi.stubEnv('AGENTID_ED25519', env)
      const m = await import('../src/jws.js')
      const original = Module._load
      let inside = false
      Module._load = function (this: unknown, ...args: unknown[]) {
        if (!inside) {
          inside = true
          try {
            m.verifyJwsSignatureRaw(other, raw) // fills the scratch buffer with other's signing input
          } catch {
            // its answer does not matter
          } finally {
            inside = false
          }
        }
        return original.apply(this, args)
      }
      try {
        expect(outcome(() => m.verifyJwsSignatureRaw({ signingInput: forgedInput, signature: other.signature }, raw)), env || 'libsodium').toBe('ERR_SIGNATURE_INVALID')
      } finally {
        Module._load = original
        vi.unstubAllEnvs()
      }
    }
  })
})

describe('raw-key verification red team: views past 4 GiB of their buffer', () => {
  it('a key or signature at an offset of 2^32 or more is read where it is, not 2^32 bytes earlier (on both backends)', (ctx) => {
    // The addon takes 32-bit offsets: a view at 2^32 + x was read at x. Mallory's signature under the
    // key at offset 0 then verified under Alice's key, which the view held; a zeroed signature verified
    // as the one 2^32 bytes before it.
    let buffer: ArrayBuffer
    try {
      buffer = new ArrayBuffer(2 ** 32 + 4096) // zero pages: reserved, not touched
    } catch {
      return ctx.skip() // no 4 GiB of address space here
    }
    const mallory = generateEd25519KeyPair()
    const malloryRaw = decodeDidKey(mallory.did).publicKey
    const forged = { signingInput: jws.signingInput, signature: ed25519.sign(Buffer.from(jws.signingInput), Buffer.from(mallory.privateJwk.d, 'base64url')) }
    new Uint8Array(buffer, 0, 32).set(malloryRaw)
    const aliceKey = new Uint8Array(buffer, 2 ** 32, 32)
    aliceKey.set(raw)
    expect(onBoth((m) => m.verifyJwsSignatureRaw(forged, malloryRaw))).toEqual(both('accepted')) // the premise
    expect(onBoth((m) => m.verifyJwsSignatureRaw(forged, aliceKey))).toEqual(both('ERR_SIGNATURE_INVALID'))
    expect(onBoth((m) => m.verifyJwsSignatureRaw(jws, aliceKey))).toEqual(both('accepted'))
    new Uint8Array(buffer, 64, 64).set(jws.signature)
    const zeroed = new Uint8Array(buffer, 2 ** 32 + 64, 64)
    expect(onBoth((m) => m.verifyJwsSignatureRaw({ ...jws, signature: zeroed }, raw))).toEqual(both('ERR_SIGNATURE_INVALID'))
    zeroed.set(jws.signature)
    expect(onBoth((m) => m.verifyJwsSignatureRaw({ ...jws, signature: zeroed }, aliceKey))).toEqual(both('accepted'))
    // The bare backend, a signing input past 2^32 that differs from the bytes 2^32 before it.
    new Uint8Array(buffer, 256, jws.signingInput.length).set(Buffer.from(jws.signingInput))
    const input = new Uint8Array(buffer, 2 ** 32 + 256, other.signingInput.length)
    input.set(Buffer.from(other.signingInput))
    for (const b of backends) {
      expect(b.ed.ed25519VerifyRaw(input, jws.signature, raw), b.name).toBe(false)
      expect(b.ed.ed25519VerifyRaw(input, other.signature, raw), b.name).toBe(true)
    }
  })
})

describe('raw-key verification red team: a signature in shared memory', () => {
  it('R rewritten by another thread between the hash and the comparison forges no signature (raw key on both backends, KeyObject, JWK)', async () => {
    // With R1 hashed (k = H(R1 || A || M)) and R2 = [S]B - [k]A compared, [S]B = R2 + [k]A holds: no
    // private key needed. A verifier that read the signature where it lay (node:crypto does, sync)
    // accepted such a forgery under Alice's key tens of times a second here; one that checks a copy never does.
    const Point = ed25519.ExtendedPoint
    const R1 = Point.BASE.multiply(12345n).toRawBytes()
    const S = 777n
    const k = leNumber(createHash('sha512').update(R1).update(raw).update(jws.signingInput).digest()) % L
    const R2 = Point.BASE.multiply(S).subtract(Point.fromHex(raw).multiply(k)).toRawBytes()
    const sab = new SharedArrayBuffer(4 + 64)
    const control = new Int32Array(sab, 0, 1)
    const signature = new Uint8Array(sab, 4, 64)
    signature.set(R1)
    signature.set(leBytes(S), 32)
    const writer = new Worker(`const { workerData: { sab, r1, r2 } } = require('node:worker_threads')
      const control = new Int32Array(sab, 0, 1), r = new Uint8Array(sab, 4, 32)
      Atomics.store(control, 0, 1)
      while (Atomics.load(control, 0) === 1) { r.set(r1); r.set(r2) }`, { eval: true, workerData: { sab, r1: R1, r2: R2 } })
    const accepted: Record<string, number> = {}
    try {
      while (Atomics.load(control, 0) !== 1) await new Promise((resolve) => setTimeout(resolve, 1))
      const forged = { signingInput: jws.signingInput, signature }
      const paths: Array<[string, () => void]> = [
        ...backends.map((b) => [`raw ${b.name}`, () => b.jws.verifyJwsSignatureRaw(forged, raw)] as [string, () => void]),
        ['KeyObject', () => backends[0]!.jws.verifyJwsSignature(forged, publicKeyFromRaw(raw))],
        ['JWK', () => backends[0]!.jws.verifyJwsSignature(forged, pair.publicJwk)],
      ]
      for (const [name, verify] of paths) {
        accepted[name] = 0
        for (const until = Date.now() + 400; Date.now() < until;) if (outcome(verify) === 'accepted') accepted[name]++
      }
    } finally {
      Atomics.store(control, 0, 2)
      await writer.terminate()
    }
    expect(accepted).toEqual(Object.fromEntries(Object.keys(accepted).map((name) => [name, 0])))
  })
})
