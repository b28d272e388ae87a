// Shared by the verifyWebhook tests: deliveries signed with the `standardwebhooks` library (as the
// issuer signs them), and the code of the VerificationError a check throws.
import { randomBytes } from 'node:crypto'
import { Webhook } from 'standardwebhooks'
import { VerificationError } from '@agentid/core'
import { expect } from 'vitest'

export const secret = `whsec_${randomBytes(32).toString('base64')}`

/** The three Standard Webhooks headers of `body` as `id`, signed at `at` (unix seconds) with `key`. */
export function signedHeaders(body: string, id: string, at: number, key = secret): Record<string, string> {
  return { 'webhook-id': id, 'webhook-timestamp': String(at), 'webhook-signature': new Webhook(key).sign(id, new Date(at * 1000), body) }
}

/** The code of the VerificationError `fn` throws (fails the test on anything else). */
export function code(fn: () => unknown): string {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(VerificationError)
    return (e as VerificationError).code
  }
  throw new Error('expected a VerificationError')
}
