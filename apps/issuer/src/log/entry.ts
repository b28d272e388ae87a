import { createHash } from 'node:crypto'
import canonicalizeModule from 'canonicalize'
import { MAX_ENTRY_BYTES } from '@agentid/tlog'

/** An audit_events row as the log reads it. */
export interface EventRow {
  log_index: number
  at: number
  actor: string
  action: string
  subject: string | null
  details_json: string | null
}

const utf8 = new TextEncoder()
// canonicalize is CommonJS (module.exports = serialize); its typings declare an ES default export.
const canonicalize = ((canonicalizeModule as unknown as { default?: unknown }).default ?? canonicalizeModule) as (input: unknown) => string | undefined

/**
 * The log entry of an event: the RFC 8785 (JCS) JSON of `{ at, actor, action, subject, details }`,
 * computed from the audit_events row itself, so an edit of the row changes the entry the log serves.
 * An event whose entry would not fit an entry bundle (64 KiB) is logged with `detailsSha256` (of the
 * canonical details) and `detailsOmitted: true` instead of its details.
 */
export function entryOf(row: EventRow): Uint8Array {
  const details = row.details_json === null ? {} : (JSON.parse(row.details_json) as unknown)
  const event = { at: row.at, actor: row.actor, action: row.action, subject: row.subject, details }
  const bytes = utf8.encode(canonicalize(event) as string)
  if (bytes.length <= MAX_ENTRY_BYTES) return bytes
  const detailsSha256 = createHash('sha256').update(canonicalize(details) as string).digest('hex')
  return utf8.encode(canonicalize({ at: row.at, actor: row.actor, action: row.action, subject: row.subject, detailsSha256, detailsOmitted: true }) as string)
}
