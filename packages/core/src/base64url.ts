import { AgentIdError, VerificationError } from './errors.js'

const B64URL = /^[A-Za-z0-9_-]*$/
const B64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const B64URL_VALUE = new Uint8Array(128)
for (let i = 0; i < 64; i++) B64URL_VALUE[B64URL_ALPHABET.charCodeAt(i)] = i

/** Encodes bytes or a UTF-8 string as unpadded base64url (RFC 4648 §5). */
export function base64urlEncode(input: Uint8Array | string): string {
  if (typeof input === 'string') return Buffer.from(input, 'utf8').toString('base64url')
  // A small array (a key, a signature) is copied: a view of it would need its `.buffer`, which for a
  // typed array held in V8's heap (64 bytes or less) moves its bytes to a native backing store.
  if (input.byteLength <= 64 && input instanceof Uint8Array) return Buffer.from(input).toString('base64url')
  return Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('base64url')
}

/**
 * Decodes unpadded base64url strictly: no padding, no foreign characters, no non-canonical trailing bits
 * (Node's decoder silently accepts all three, which would let two encodings name the same bytes).
 */
export function base64urlDecode(input: string, what = 'base64url value'): Buffer {
  checkBase64url(input, what)
  return Buffer.from(input, 'base64url')
}

/**
 * The checks of {@link base64urlDecode} without decoding (internal, not exported from index.ts): for a
 * caller that decodes into a buffer of its own. Throws ERR_MALFORMED.
 */
export function checkBase64url(input: string, what: string): void {
  if (!B64URL.test(input)) throw new VerificationError('ERR_MALFORMED', `${what} is not valid unpadded base64url`)
  checkBase64urlForm(input, what)
}

/**
 * The checks of {@link checkBase64url} but its character check, for text whose characters the caller
 * checked already (internal, not exported from index.ts). Throws ERR_MALFORMED.
 */
export function checkBase64urlForm(input: string, what: string): void {
  if (input.length % 4 === 1) {
    throw new VerificationError('ERR_MALFORMED', `${what} is not valid unpadded base64url`)
  }
  // Canonical form: the bits of the last character beyond the last whole byte must be zero (4 of
  // them after 2 characters of a group, 2 after 3), or two texts would name the same bytes.
  const rest = input.length % 4
  if (rest !== 0 && (B64URL_VALUE[input.charCodeAt(input.length - 1)]! & (rest === 2 ? 0x0f : 0x03)) !== 0) {
    throw new VerificationError('ERR_MALFORMED', `${what} has non-canonical base64url trailing bits`)
  }
}

/** Same as {@link base64urlDecode} but reports input errors as ERR_INVALID_INPUT. */
export function base64urlDecodeInput(input: string, what: string): Buffer {
  try {
    return base64urlDecode(input, what)
  } catch (cause) {
    throw new AgentIdError('ERR_INVALID_INPUT', `${what} is not valid unpadded base64url`, { cause })
  }
}
