import { randomFillSync } from 'node:crypto'

// Random bytes drawn 10 at a time from one pool (randomFillSync per call costs a call into OpenSSL).
const pool = Buffer.alloc(16 * 256)
let used = pool.length
const bytes = Buffer.alloc(16)

/**
 * A UUID version 7 (RFC 9562 §5.7): the first 48 bits are `ms` (unix milliseconds), the other 74 of
 * its 122 are random. Ids made in time order sort in time order, so the indexes on them (credentials'
 * primary key, the audit events' `credentialId`) grow at their right-most page instead of dirtying a
 * random page per insert. As unguessable as needed for an id (74 random bits per millisecond).
 * @example
 * timeOrderedUuid(Date.now()) // '0195…-…-7…-…-…'
 */
export function timeOrderedUuid(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0 || ms >= 2 ** 48) throw new TypeError('timeOrderedUuid: ms must be a unix time in milliseconds')
  if (used + 10 > pool.length) {
    randomFillSync(pool)
    used = 0
  }
  bytes.writeUIntBE(Math.floor(ms), 0, 6)
  pool.copy(bytes, 6, used, used + 10)
  used += 10
  bytes[6] = (bytes[6]! & 0x0f) | 0x70 // version 7
  bytes[8] = (bytes[8]! & 0x3f) | 0x80 // variant 10
  const h = bytes.toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}
