import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { AgentIdError } from '@agentid/core'

const VERSION = 0x01
const NONCE_BYTES = 12
const TAG_BYTES = 16
const HEADER_BYTES = 1 + NONCE_BYTES

/** Authenticated encryption of small secrets at rest (AES-256-GCM). */
export interface CryptoBox {
  /**
   * Encrypts `plaintext` under a fresh random 12-byte nonce, binding `aad` (e.g. the row's key alias):
   * the result opens only with the same `aad`. Layout: `0x01 ‖ nonce(12) ‖ ciphertext ‖ tag(16)`.
   */
  seal(plaintext: Uint8Array, aad: string): Buffer
  /** Decrypts a sealed box; a wrong key, a wrong `aad` or any flipped bit throws `ERR_INTERNAL` (`details.reason: 'ciphertext_invalid'`). */
  open(sealed: Uint8Array, aad: string): Buffer
}

/**
 * A box whose AES-256 key is derived from the 32-byte master secret with HKDF-SHA-256, `info` naming
 * the purpose, so one master secret can serve several purposes without key reuse across them.
 * @example
 * const box = createCryptoBox(masterSecret, 'agentid/private-keys/v1')
 * const sealed = box.seal(privateKeyBytes, alias)
 * box.open(sealed, alias) // the bytes again; another alias throws ERR_INTERNAL
 */
export function createCryptoBox(masterSecret: Uint8Array, info: string): CryptoBox {
  if (!(masterSecret instanceof Uint8Array) || masterSecret.length !== 32) throw new TypeError('createCryptoBox: the master secret is 32 bytes')
  if (typeof info !== 'string' || info.length === 0) throw new TypeError('createCryptoBox: info names the purpose of the key')
  const key = Buffer.from(hkdfSync('sha256', masterSecret, Buffer.alloc(0), info, 32))

  return Object.freeze({
    seal(plaintext: Uint8Array, aad: string): Buffer {
      const nonce = randomBytes(NONCE_BYTES)
      const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES })
      cipher.setAAD(Buffer.from(aad, 'utf8'))
      const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
      return Buffer.concat([Buffer.of(VERSION), nonce, body, cipher.getAuthTag()])
    },
    open(sealed: Uint8Array, aad: string): Buffer {
      const box = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength)
      if (box.length < HEADER_BYTES + TAG_BYTES || box[0] !== VERSION) invalid()
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, box.subarray(1, HEADER_BYTES), { authTagLength: TAG_BYTES })
        decipher.setAAD(Buffer.from(aad, 'utf8'))
        decipher.setAuthTag(box.subarray(box.length - TAG_BYTES))
        return Buffer.concat([decipher.update(box.subarray(HEADER_BYTES, box.length - TAG_BYTES)), decipher.final()])
      } catch (cause) {
        return invalid(cause)
      }
    },
  })
}

function invalid(cause?: unknown): never {
  throw new AgentIdError('ERR_INTERNAL', 'sealed secret does not open: wrong master secret, or the stored ciphertext was altered or moved', {
    cause,
    details: { reason: 'ciphertext_invalid' },
  })
}
