import { gunzipSync, gzipSync } from 'node:zlib'
import { AgentIdError } from './errors.js'

/** Spec names of Bitstring Status List processing errors, kept in `details.statusListError`. */
export type StatusListErrorName = 'STATUS_LIST_LENGTH_ERROR' | 'RANGE_ERROR' | 'MALFORMED_VALUE_ERROR'

/** The W3C minimum: a list has at least 131,072 entries, so one credential hides in the crowd. */
export const MIN_STATUS_LIST_ENTRIES = 131_072
/** Default cap of a decompressed list (16 MiB = 134M one-bit entries): refuses gzip bombs. */
export const DEFAULT_MAX_STATUS_LIST_BYTES = 16 * 1024 * 1024

/** Thrown for a list or index that cannot be read; `details.statusListError` holds the spec's name. */
export class StatusListError extends AgentIdError {
  override name = 'StatusListError'
  readonly statusListError: StatusListErrorName
  constructor(statusListError: StatusListErrorName, message: string, cause?: unknown) {
    super('ERR_MALFORMED', message, { cause, details: { statusListError } })
    this.statusListError = statusListError
  }
}

/**
 * A decoded bitstring. Index 0 is the most significant bit of the first byte (spec §encodedList).
 * @example
 * const list = StatusList.create(); list.set(94567, 1); const encoded = list.encode()
 */
export class StatusList {
  readonly bytes: Uint8Array
  readonly statusSize: number

  private constructor(bytes: Uint8Array, statusSize: number) {
    this.bytes = bytes
    this.statusSize = statusSize
  }

  /** A new all-zero list of `entries` entries (at least the spec minimum). */
  static create(entries = MIN_STATUS_LIST_ENTRIES, statusSize = 1): StatusList {
    checkStatusSize(statusSize)
    if (!Number.isSafeInteger(entries) || entries < MIN_STATUS_LIST_ENTRIES) {
      throw new RangeError(`a status list has at least ${MIN_STATUS_LIST_ENTRIES} entries`)
    }
    return new StatusList(new Uint8Array(Math.ceil((entries * statusSize) / 8)), statusSize)
  }

  /** Wraps raw, uncompressed list bytes (copied). */
  static fromBytes(bytes: Uint8Array, statusSize = 1): StatusList {
    checkStatusSize(statusSize)
    if (bytes.length * 8 < MIN_STATUS_LIST_ENTRIES * statusSize) {
      throw new StatusListError('STATUS_LIST_LENGTH_ERROR', `status list has fewer than ${MIN_STATUS_LIST_ENTRIES} entries`)
    }
    return new StatusList(Uint8Array.from(bytes), statusSize)
  }

  /**
   * Decodes an `encodedList`: multibase base64url (`u` prefix), then GZIP, capped at `maxBytes`
   * decompressed. Errors are StatusListError with the spec's error names.
   */
  static decode(encodedList: unknown, options: { statusSize?: number; maxBytes?: number } = {}): StatusList {
    const statusSize = options.statusSize ?? 1
    checkStatusSize(statusSize)
    if (typeof encodedList !== 'string' || !encodedList.startsWith('u') || !/^u[A-Za-z0-9_-]+$/.test(encodedList)) {
      throw new StatusListError('MALFORMED_VALUE_ERROR', 'encodedList is not multibase base64url (u prefix)')
    }
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_STATUS_LIST_BYTES
    // Compressed input larger than the cap can only be garbage or an attack.
    if (encodedList.length > Math.ceil((maxBytes * 4) / 3) + 2) {
      throw new StatusListError('MALFORMED_VALUE_ERROR', 'encodedList is larger than the configured cap')
    }
    let bytes: Uint8Array
    try {
      bytes = gunzipSync(Buffer.from(encodedList.slice(1), 'base64url'), { maxOutputLength: maxBytes })
    } catch (cause) {
      const tooLarge = (cause as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE'
      throw new StatusListError('MALFORMED_VALUE_ERROR', tooLarge ? `encodedList decompresses past ${maxBytes} bytes` : 'encodedList is not GZIP data', cause)
    }
    if (bytes.length * 8 < MIN_STATUS_LIST_ENTRIES * statusSize) {
      throw new StatusListError('STATUS_LIST_LENGTH_ERROR', `status list has fewer than ${MIN_STATUS_LIST_ENTRIES} entries`)
    }
    return new StatusList(bytes, statusSize)
  }

  /** Number of entries in the list. */
  get length(): number {
    return Math.floor((this.bytes.length * 8) / this.statusSize)
  }

  /** The status value at `index` (0 or 1 for one-bit lists). Throws RANGE_ERROR past the end. */
  get(index: number): number {
    this.checkIndex(index)
    let value = 0
    const first = index * this.statusSize
    for (let bit = first; bit < first + this.statusSize; bit++) {
      value = (value << 1) | ((this.bytes[bit >> 3]! >> (7 - (bit & 7))) & 1)
    }
    return value
  }

  /** Sets the status value at `index`. */
  set(index: number, value: number): void {
    this.checkIndex(index)
    if (!Number.isInteger(value) || value < 0 || value >= 2 ** this.statusSize) throw new RangeError('status value does not fit statusSize')
    const first = index * this.statusSize
    for (let i = 0; i < this.statusSize; i++) {
      const bit = first + i
      const on = (value >> (this.statusSize - 1 - i)) & 1
      const mask = 1 << (7 - (bit & 7))
      this.bytes[bit >> 3] = on ? this.bytes[bit >> 3]! | mask : this.bytes[bit >> 3]! & ~mask
    }
  }

  /** GZIP then multibase base64url, as `encodedList`. */
  encode(): string {
    return 'u' + gzipSync(this.bytes).toString('base64url')
  }

  private checkIndex(index: number): void {
    if (!Number.isSafeInteger(index) || index < 0) throw new StatusListError('MALFORMED_VALUE_ERROR', 'status index is not a non-negative integer')
    if (index >= this.length) throw new StatusListError('RANGE_ERROR', 'status index is past the end of the list')
  }
}

/**
 * Parses a `statusListIndex`: a string of decimal digits (spec), nothing else.
 * More than 15 digits is past the end of any list we accept: RANGE_ERROR.
 */
export function parseStatusListIndex(value: unknown): number {
  if (typeof value !== 'string' || !/^(0|[1-9][0-9]*)$/.test(value)) {
    throw new StatusListError('MALFORMED_VALUE_ERROR', 'statusListIndex must be a string of decimal digits')
  }
  if (value.length > 15) throw new StatusListError('RANGE_ERROR', 'statusListIndex is past the end of any list')
  return Number(value)
}

function checkStatusSize(statusSize: number): void {
  if (!Number.isInteger(statusSize) || statusSize < 1 || statusSize > 8) throw new RangeError('statusSize must be an integer from 1 to 8')
}
