// verifyWebhook: the receiver's check of the issuer's Standard Webhooks deliveries. Inputs are signed
// with the `standardwebhooks` library (as the issuer signs); whatever verifyWebhook accepts, the
// library's own Webhook.verify accepts too, and each kind of tampering has its own code.
import { randomBytes } from 'node:crypto'
import { Webhook, WebhookVerificationError } from 'standardwebhooks'
import { verifyWebhook } from '@agentid/client'
import { describe, expect, it } from 'vitest'
import { code, secret, signedHeaders } from './webhook-helpers.js'

const now = () => Math.floor(Date.now() / 1000)
const body = JSON.stringify({ type: 'approval.approved', timestamp: '2026-12-07T03:00:00.000Z', id: 'apr_x', status: 'approved', url: 'https://issuer.example/approvals/apr_x', call: { command: 'tools/call pay' }, approver: { id: 'apv_y', name: 'Dana' }, decidedAt: '2026-12-07T03:00:00.000Z' })

function signed(o: { id?: string; at?: number; payload?: string; key?: string } = {}) {
  const id = o.id ?? 'evt_abc'
  const at = o.at ?? now()
  return signedHeaders(o.payload ?? body, id, at, o.key ?? secret)
}

describe('verifyWebhook', () => {
  it('accepts what the library signs, from text, bytes, a Headers object or Node headers; returns id, timestamp and the event', () => {
    const headers = signed()
    const out = verifyWebhook(body, headers, { secret })
    expect(out).toEqual({ id: 'evt_abc', timestamp: Number(headers['webhook-timestamp']), event: JSON.parse(body) })
    expect(new Webhook(secret).verify(body, headers)).toEqual(out.event) // the library agrees
    expect(verifyWebhook(new TextEncoder().encode(body), new Headers(headers), { secret }).id).toBe('evt_abc')
    expect(verifyWebhook(Buffer.from(body), { 'Webhook-Id': 'evt_abc', 'WEBHOOK-TIMESTAMP': headers['webhook-timestamp'], 'webhook-signature': headers['webhook-signature'] }, { secret }).id).toBe('evt_abc')
    // Several signatures (a secret being rotated): one match is enough.
    const rotating = { ...headers, 'webhook-signature': `${signed({ key: `whsec_${randomBytes(32).toString('base64')}` })['webhook-signature']} v1a,xyz ${headers['webhook-signature']}` }
    expect(verifyWebhook(body, rotating, { secret }).id).toBe('evt_abc')
    // An injected clock: an attempt signed at 1,800,000,000 verifies then.
    expect(verifyWebhook(body, signed({ at: 1_800_000_000 }), { secret, clock: () => 1_800_000_100_000 }).timestamp).toBe(1_800_000_000)
  })

  it('refuses a changed body, id, timestamp or secret (ERR_SIGNATURE_INVALID), as the library does', () => {
    const headers = signed()
    const cases: [string, Record<string, string>, string][] = [
      [body.replace('apv_y', 'apv_z'), headers, secret],
      [`${body}\n`, headers, secret],
      [body, { ...headers, 'webhook-id': 'evt_abd' }, secret],
      [body, { ...headers, 'webhook-timestamp': String(Number(headers['webhook-timestamp']) - 1) }, secret],
      [body, headers, `whsec_${randomBytes(32).toString('base64')}`],
      [body, { ...headers, 'webhook-signature': headers['webhook-signature'].replace('v1,', 'v1a,') }, secret],
      [body, { ...headers, 'webhook-signature': 'v1,' }, secret],
      [body, { ...headers, 'webhook-signature': `v1,${'A'.repeat(43)}=` }, secret],
    ]
    for (const [payload, h, key] of cases) {
      expect(code(() => verifyWebhook(payload, h, { secret: key }))).toBe('ERR_SIGNATURE_INVALID')
      expect(() => new Webhook(key).verify(payload, h)).toThrow(WebhookVerificationError)
    }
  })

  it('refuses replays outside the tolerance, and timestamps from the future', () => {
    expect(code(() => verifyWebhook(body, signed({ at: now() - 301 }), { secret }))).toBe('ERR_EXPIRED')
    expect(code(() => verifyWebhook(body, signed({ at: now() + 301 }), { secret }))).toBe('ERR_NOT_YET_VALID')
    expect(verifyWebhook(body, signed({ at: now() - 3000 }), { secret, toleranceSec: 3600 }).id).toBe('evt_abc')
  })

  it('refuses missing, repeated or malformed headers and bodies that are not UTF-8 JSON objects (ERR_MALFORMED)', () => {
    const headers = signed()
    for (const h of [
      {},
      { ...headers, 'webhook-id': '' },
      { 'webhook-id': headers['webhook-id'], 'webhook-timestamp': headers['webhook-timestamp'] },
      { ...headers, 'webhook-timestamp': 'yesterday' },
      { ...headers, 'webhook-timestamp': '1e9' },
      { ...headers, 'webhook-timestamp': '-1' },
      { ...headers, 'webhook-id': 'evt.abc' },
      { ...headers, 'webhook-signature': 'x'.repeat(5000) },
      { ...headers, 'webhook-id': ['evt_abc', 'evt_abc'] },
    ] as Record<string, string>[]) {
      expect(code(() => verifyWebhook(body, h, { secret })), JSON.stringify(h).slice(0, 80)).toBe('ERR_MALFORMED')
    }
    const bad = Uint8Array.from([0x7b, 0xff, 0x7d])
    expect(code(() => verifyWebhook(bad, signed({ payload: '{\ufffd}' }), { secret }))).toBe('ERR_MALFORMED')
    for (const payload of ['not json', '[1]', 'null']) expect(code(() => verifyWebhook(payload, signed({ payload }), { secret }))).toBe('ERR_MALFORMED')
  })

  it('misuse is a TypeError: no secret, or one that is not base64', () => {
    expect(() => verifyWebhook(body, signed(), {} as never)).toThrow(TypeError)
    expect(() => verifyWebhook(body, signed(), { secret: 'whsec_***' })).toThrow(TypeError)
  })
})
