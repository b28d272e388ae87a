import { AgentIdError, VerificationError } from './errors.js'

const B64URL = /^[A-Za-z0-9_-]*$/

/** Encodes bytes or a UTF-8 string as unpadded base64url (RFC 4648 §5). */
export function base64urlEncode(input: Uint8Array | string): string {
  return (typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input.buffer, input.byteOffset, input.byteLength)).toString('base64url')
}

/**
 * Decodes unpadded base64url strictly: no padding, no foreign characters, no non-canonical trailing bits
 * (Node's decoder silently accepts all three, which would let two encodings name the same bytes).
 */
export function base64urlDecode(input: string, what = 'base64url value'): Buffer {
  if (!B64URL.test(input) || input.length % 4 === 1) {
    throw new VerificationError('ERR_MALFORMED', `${what} is not valid unpadded base64url`)
  }
  const bytes = Buffer.from(input, 'base64url')
  // Canonical form: re-encoding must give the same text (rejects set trailing bits).
  if (input.length % 4 !== 0 && bytes.toString('base64url') !== input) {
    throw new VerificationError('ERR_MALFORMED', `${what} has non-canonical base64url trailing bits`)
  }
  return bytes
}

/** Same as {@link base64urlDecode} but reports input errors as ERR_INVALID_INPUT. */
export function base64urlDecodeInput(input: string, what: string): Buffer {
  try {
    return base64urlDecode(input, what)
  } catch (cause) {
    throw new AgentIdError('ERR_INVALID_INPUT', `${what} is not valid unpadded base64url`, { cause })
  }
}
