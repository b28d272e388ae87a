import { ed25519 } from '@noble/curves/ed25519'
import { generateKeyPairSync } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { assertEd25519PublicKey, base64urlDecode } from '@agentid/core'
import { base58 } from '@scure/base'
import { describe, expect, it } from 'vitest'

const vectors = JSON.parse(readFileSync(new URL('../../../vectors/did-key/did-key-negative.derived.json', import.meta.url), 'utf8')) as {
  cases: { id: string; input: string }[]
}

function verdict(raw: Uint8Array, signatureVerified: boolean): string {
  try {
    assertEd25519PublicKey(raw, { signatureVerified })
    return 'ok'
  } catch (e) {
    return (e as { details: { didKeyError: string } }).details.didKeyError
  }
}

function onCurve(raw: Uint8Array): boolean {
  try {
    ed25519.ExtendedPoint.fromHex(raw, false)
    return true
  } catch {
    return false
  }
}

describe('cheap point checks after a verified signature agree with full curve arithmetic', () => {
  const order8 = ed25519.ExtendedPoint.fromHex('c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa')
  const torsion = Array.from({ length: 8 }, (_, k) => order8.multiplyUnsafe(BigInt(k + 1)).toRawBytes())

  it('refuses all eight small-order points, and their sign-flipped encodings', () => {
    for (const t of torsion) {
      expect(verdict(t, true)).toBe('invalidPublicKey')
      expect(verdict(t, false)).toBe('invalidPublicKey')
      const flipped = Uint8Array.from(t)
      flipped[31]! ^= 0x80
      expect(verdict(flipped, true)).toBe('invalidPublicKey')
    }
  })

  it('matches the noble verdict on every on-curve key of the did:key vectors', () => {
    for (const c of vectors.cases) {
      if (!c.input.startsWith('did:key:z6Mk')) continue
      let raw: Uint8Array
      try {
        raw = Uint8Array.from(Buffer.from(base58.decode(c.input.slice(9).split('#')[0]!)).subarray(2))
      } catch {
        continue
      }
      if (raw.length !== 32 || !onCurve(raw)) continue
      expect(verdict(raw, true), c.id).toBe(verdict(raw, false))
    }
  })

  it('refuses non-canonical y (y >= p) and accepts real keys', () => {
    const p = Buffer.from('edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', 'hex')
    expect(verdict(p, true)).toBe('invalidPublicKey')
    const pPlus2 = Buffer.from(p)
    pPlus2[0] = 0xef
    expect(verdict(pPlus2, true)).toBe('invalidPublicKey')
    for (let i = 0; i < 200; i++) {
      const jwk = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }) as { x: string }
      expect(verdict(base64urlDecode(jwk.x), true)).toBe('ok')
    }
  })
})
