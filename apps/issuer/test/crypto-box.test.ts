import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createCryptoBox } from '../src/crypto-box.js'
import { expectAgentIdError } from './engine-helpers.js'

const secret = randomBytes(32)
const box = createCryptoBox(secret, 'test/v1')
const plaintext = randomBytes(64)

describe('createCryptoBox', () => {
  it('round-trips with a fresh nonce each time', () => {
    const a = box.seal(plaintext, 'alias-1')
    const b = box.seal(plaintext, 'alias-1')
    expect(a.equals(b)).toBe(false)
    expect(box.open(a, 'alias-1').equals(plaintext)).toBe(true)
    expect(box.open(b, 'alias-1').equals(plaintext)).toBe(true)
    expect(a.length).toBe(1 + 12 + plaintext.length + 16)
  })

  it('refuses any flipped bit (version, nonce, ciphertext, tag)', async () => {
    const sealed = box.seal(plaintext, 'alias-1')
    for (const at of [0, 1, 12, 13, 13 + 30, sealed.length - 1]) {
      const tampered = Buffer.from(sealed)
      tampered[at]! ^= 0x01
      await expectAgentIdError(() => box.open(tampered, 'alias-1'), 'ERR_INTERNAL', 'ciphertext_invalid')
    }
    await expectAgentIdError(() => box.open(sealed.subarray(0, 20), 'alias-1'), 'ERR_INTERNAL', 'ciphertext_invalid')
  })

  it('binds the AAD: a ciphertext moved to another alias does not open', async () => {
    await expectAgentIdError(() => box.open(box.seal(plaintext, 'alias-1'), 'alias-2'), 'ERR_INTERNAL', 'ciphertext_invalid')
  })

  it('derives distinct keys per master secret and per purpose', async () => {
    const sealed = box.seal(plaintext, 'a')
    await expectAgentIdError(() => createCryptoBox(randomBytes(32), 'test/v1').open(sealed, 'a'), 'ERR_INTERNAL', 'ciphertext_invalid')
    await expectAgentIdError(() => createCryptoBox(secret, 'other/v1').open(sealed, 'a'), 'ERR_INTERNAL', 'ciphertext_invalid')
  })

  it('requires a 32-byte master secret', () => {
    expect(() => createCryptoBox(randomBytes(16), 'x')).toThrow(TypeError)
  })
})
