import { timingSafeEqual } from 'node:crypto'
import { VerificationError } from '@agentid/core'

/** Throws ERR_MALFORMED with `details.reason` (a short stable phrase, e.g. 'malformed note'). */
export function malformed(message: string, reason = message): never {
  throw new VerificationError('ERR_MALFORMED', message, { details: { reason } })
}

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** Standard base64 (RFC 4648 §4) with padding, strictly: no whitespace, no URL alphabet, canonical final bits. */
export function decodeBase64Strict(text: string): Uint8Array | undefined {
  if (!B64.test(text)) return undefined
  const bytes = Buffer.from(text, 'base64')
  // Non-zero trailing bits decode too; only the canonical form round-trips.
  if (bytes.toString('base64') !== text) return undefined
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

/** A decimal with no leading zeros ("0" itself allowed), at most Number.MAX_SAFE_INTEGER. */
export function parseDecimal(text: string): number | undefined {
  if (!/^(?:0|[1-9][0-9]{0,15})$/.test(text)) return undefined
  const n = Number(text)
  return Number.isSafeInteger(n) ? n : undefined
}

export function isSize(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0
}

export const utf8 = new TextEncoder()
export const utf8Fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

export function toBytes(input: string | Uint8Array): Uint8Array {
  return typeof input === 'string' ? utf8.encode(input) : input
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/** True when the string has no unpaired surrogate (it encodes to UTF-8 without replacement). */
export function isWellFormedString(s: string): boolean {
  return !LONE_SURROGATE.test(s)
}
