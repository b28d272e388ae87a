// The receiver's side of the issuer's approval webhooks: a Standard Webhooks signature
// (https://www.standardwebhooks.com) over `<webhook-id>.<webhook-timestamp>.<body>`, HMAC-SHA256 with the
// shared `whsec_` secret. The HMAC is the `standardwebhooks` library's (`Webhook.sign`, what its
// `Webhook.verify` computes); the comparison is node:crypto's constant-time one. Unlike `Webhook.verify`,
// the clock is injected and each failure has its own code.
import { timingSafeEqual } from 'node:crypto'
import { Webhook } from 'standardwebhooks'
import { VerificationError } from '@agentid/core'

/** Options of {@link verifyWebhook}. */
export interface VerifyWebhookOptions {
  /** The secret shared with the issuer (AGENTID_APPROVALS_WEBHOOK_SECRET): `whsec_` and base64. */
  secret: string
  /** Unix ms. Default `Date.now`. */
  clock?: () => number
  /** How far `webhook-timestamp` may be from the clock, seconds. Default 300 (as the library's). */
  toleranceSec?: number
}

/** An approval event as the issuer sends it (`approval.requested`, `approval.approved`, `approval.denied`). */
export interface ApprovalWebhookEvent {
  type: 'approval.requested' | 'approval.approved' | 'approval.denied' | (string & {})
  /** When the event happened (ISO 8601); the attempt's time is the `webhook-timestamp` header. */
  timestamp: string
  /** The approval request (`apr_…`). */
  id: string
  status: 'pending' | 'approved' | 'denied'
  /** The request's page at the issuer. */
  url: string
  /** The canonical call (see @agentid/verifier `ApprovalCall`). */
  call: Record<string, unknown>
  approver: { id: string; name: string } | null
  decidedAt: string | null
}

/** A verified delivery. */
export interface VerifiedWebhook<T = ApprovalWebhookEvent> {
  /** `webhook-id`: the event's id, the same on every retry. Process each id once. */
  id: string
  /** `webhook-timestamp`: when this attempt was signed, unix seconds. */
  timestamp: number
  event: T
}

type HeaderBag = Headers | Readonly<Record<string, string | readonly string[] | undefined>>

function header(headers: HeaderBag, name: string): string {
  let value: string | readonly string[] | null | undefined
  if (typeof (headers as Headers).get === 'function') value = (headers as Headers).get(name)
  else {
    let seen = 0
    for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name && v !== undefined) { value = v; seen++ }
    // The name in two spellings ('webhook-id' and 'Webhook-Id'): repeated, whichever would be read.
    if (seen > 1) value = undefined
  }
  if (typeof value !== 'string' || value.length === 0 || value.length > 4096) {
    throw new VerificationError('ERR_MALFORMED', `${name}: missing, repeated or too long`, { details: { header: name } })
  }
  return value
}

/**
 * Verifies a delivery of the issuer's approval webhook: the three Standard Webhooks headers, the
 * timestamp within `toleranceSec` of the clock, a `v1` signature of the exact body with the secret; then
 * parses the body. Pass the body as received (the raw bytes or text: never JSON parsed and re-serialized).
 * Throws VerificationError: ERR_MALFORMED (a header missing or malformed, a body that is not UTF-8 JSON),
 * ERR_EXPIRED / ERR_NOT_YET_VALID (timestamp out of tolerance), ERR_SIGNATURE_INVALID (no signature
 * matches). A TypeError for a secret that is not base64, a `toleranceSec` that is not a finite number of
 * 0 or more, a `clock` that returns no finite number.
 * A verified event may still be a retry of one already processed: dedupe on the returned `id`.
 * @example
 * app.post('/hooks/agentid', express.raw({ type: 'application/json' }), (req, res) => {
 *   const { id, event } = verifyWebhook(req.body, req.headers, { secret: process.env.AGENTID_WEBHOOK_SECRET! })
 *   if (!seen.has(id)) { seen.add(id); handle(event) }
 *   res.sendStatus(204)
 * })
 */
export function verifyWebhook<T = ApprovalWebhookEvent>(payload: string | Uint8Array, headers: HeaderBag, options: VerifyWebhookOptions): VerifiedWebhook<T> {
  if (!options || typeof options.secret !== 'string') throw new TypeError('verifyWebhook: options.secret is required')
  let wh: Webhook
  try {
    wh = new Webhook(options.secret)
  } catch (cause) {
    throw new TypeError('verifyWebhook: options.secret must be whsec_ followed by base64', { cause })
  }
  const tolerance = options.toleranceSec ?? 300
  // NaN (e.g. Number(process.env.X) unset) or a string would make both time checks false: any replay passes.
  if (typeof tolerance !== 'number' || !Number.isFinite(tolerance) || tolerance < 0) throw new TypeError('verifyWebhook: options.toleranceSec must be a finite number of seconds, 0 or more')
  const id = header(headers, 'webhook-id')
  const stamp = header(headers, 'webhook-timestamp')
  const signatures = header(headers, 'webhook-signature')
  // The id and timestamp are signed joined by '.': neither may hold one.
  if (!/^[A-Za-z0-9_-]{1,256}$/.test(id)) throw new VerificationError('ERR_MALFORMED', 'webhook-id: not an event id', { details: { header: 'webhook-id' } })
  // Canonical only (no leading zeros): the signature covers the number, so '0170…' would verify as '170…'.
  if (!/^(0|[1-9][0-9]{0,11})$/.test(stamp)) throw new VerificationError('ERR_MALFORMED', 'webhook-timestamp: not unix seconds', { details: { header: 'webhook-timestamp' } })
  const timestamp = Number(stamp)
  const clockMs = (options.clock ?? Date.now)()
  if (typeof clockMs !== 'number' || !Number.isFinite(clockMs)) throw new TypeError('verifyWebhook: options.clock must return unix milliseconds')
  const now = Math.floor(clockMs / 1000)
  if (now - timestamp > tolerance) throw new VerificationError('ERR_EXPIRED', 'webhook-timestamp: too old (a replay, or a clock far off)', { details: { timestamp, now } })
  if (timestamp - now > tolerance) throw new VerificationError('ERR_NOT_YET_VALID', 'webhook-timestamp: in the future', { details: { timestamp, now } })
  let body: string
  try {
    body = typeof payload === 'string' ? payload : new TextDecoder('utf-8', { fatal: true }).decode(payload)
  } catch (cause) {
    throw new VerificationError('ERR_MALFORMED', 'the body is not UTF-8', { cause })
  }
  // Signed over the bytes as received (the library signs bytes as they are, text as its UTF-8).
  const expected = Buffer.from(wh.sign(id, new Date(timestamp * 1000), payload).slice('v1,'.length))
  const match = signatures.split(' ').some((entry) => {
    if (!entry.startsWith('v1,')) return false
    const given = Buffer.from(entry.slice('v1,'.length))
    return given.length === expected.length && timingSafeEqual(given, expected)
  })
  if (!match) throw new VerificationError('ERR_SIGNATURE_INVALID', 'no webhook-signature matches the body with this secret')
  let event: unknown
  try {
    event = JSON.parse(body)
  } catch (cause) {
    throw new VerificationError('ERR_MALFORMED', 'the body is not JSON', { cause })
  }
  if (typeof event !== 'object' || event === null || Array.isArray(event)) throw new VerificationError('ERR_MALFORMED', 'the body is not a JSON object')
  return { id, timestamp, event: event as T }
}
