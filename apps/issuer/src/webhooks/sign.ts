// Standard Webhooks signatures (https://www.standardwebhooks.com), made by the `standardwebhooks`
// library: HMAC-SHA256 over `<webhook-id>.<webhook-timestamp>.<body>` with the whsec_ secret, sent as
// `v1,<base64>`. The timestamp is the attempt's, so a retry a day later still falls within a
// receiver's tolerance (5 minutes in the library's verify); the id stays the event's.
import { Webhook } from 'standardwebhooks'
import { parseWebhookSecret } from './config.js'

/** The three Standard Webhooks headers of one attempt. */
export interface WebhookHeaders { 'webhook-id': string; 'webhook-timestamp': string; 'webhook-signature': string }

/**
 * A signer for one secret (checked as the configuration checks it).
 * @example
 * const sign = webhookSigner(secret)
 * const headers = sign('evt_…', Math.floor(Date.now() / 1000), body)
 */
export function webhookSigner(secret: string): (id: string, timestampSec: number, body: string) => WebhookHeaders {
  const wh = new Webhook(parseWebhookSecret(secret, 'webhook.secret'))
  return (id, timestampSec, body) => {
    // A `.` in the id would let id and timestamp be split differently (the spec forbids it); ours are base64url.
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(id)) throw new TypeError('webhook id must be 1 to 128 base64url characters')
    if (!Number.isSafeInteger(timestampSec) || timestampSec < 0) throw new TypeError('webhook timestamp must be unix seconds')
    return { 'webhook-id': id, 'webhook-timestamp': String(timestampSec), 'webhook-signature': wh.sign(id, new Date(timestampSec * 1000), body) }
  }
}
