// Red team: verifyWebhook must fail closed on what a receiver gets wrong in its options, and on header
// forms the sender never produces. A NaN tolerance (Number(process.env.X) of an unset variable) or clock
// made both time checks false, so a delivery recorded years ago verified: any replay passed.
import { randomBytes } from 'node:crypto'
import { verifyWebhook } from '@agentid/client'
import { describe, expect, it } from 'vitest'
import { code, secret, signedHeaders } from './webhook-helpers.js'

const body = '{"type":"approval.approved","id":"apr_x"}'
const nowSec = () => Math.floor(Date.now() / 1000)
const signed = (id: string, at: number) => signedHeaders(body, id, at)

describe('verifyWebhook under hostile or mistaken input', () => {
  it('a tolerance or clock that is not a finite number is a TypeError, not a check that always passes', () => {
    const replay = signed('evt_old', 1_000_000_000) // September 2001
    expect(code(() => verifyWebhook(body, replay, { secret }))).toBe('ERR_EXPIRED')
    for (const toleranceSec of [NaN, Infinity, -1, '1e12']) {
      expect(() => verifyWebhook(body, replay, { secret, toleranceSec: toleranceSec as number })).toThrow(TypeError)
    }
    for (const clock of [() => NaN, () => Infinity, () => '1000000000000']) {
      expect(() => verifyWebhook(body, replay, { secret, clock: clock as () => number })).toThrow(TypeError)
    }
    // Tolerance 0 is allowed: only this second.
    const at = nowSec()
    expect(verifyWebhook(body, signed('evt_now', at), { secret, toleranceSec: 0, clock: () => at * 1000 }).id).toBe('evt_now')
  })

  it('a timestamp with leading zeros is malformed (the sender never writes one; the signature covers only the number)', () => {
    const h = signed('evt_a', nowSec())
    for (const stamp of [`0${h['webhook-timestamp']}`, `00${h['webhook-timestamp']}`, ' ' + h['webhook-timestamp'], '+' + h['webhook-timestamp']]) {
      expect(code(() => verifyWebhook(body, { ...h, 'webhook-timestamp': stamp }, { secret }))).toBe('ERR_MALFORMED')
    }
    expect(verifyWebhook(body, h, { secret }).id).toBe('evt_a')
  })

  it('a header given twice in two spellings of its name is repeated (ERR_MALFORMED), whichever of them is signed', () => {
    const h = signed('evt_a', nowSec())
    expect(code(() => verifyWebhook(body, { ...h, 'Webhook-Id': 'evt_b' }, { secret }))).toBe('ERR_MALFORMED')
    expect(code(() => verifyWebhook(body, { 'Webhook-Id': 'evt_b', ...h }, { secret }))).toBe('ERR_MALFORMED')
    // An absent (undefined) duplicate does not count.
    expect(verifyWebhook(body, { ...h, 'Webhook-Id': undefined }, { secret }).id).toBe('evt_a')
  })

  it('far-future timestamps, huge headers and many signatures are refused without work on each', () => {
    const h = signed('evt_a', nowSec())
    expect(code(() => verifyWebhook(body, { ...h, 'webhook-timestamp': '999999999999' }, { secret }))).toBe('ERR_NOT_YET_VALID')
    expect(code(() => verifyWebhook(body, { ...h, 'webhook-signature': `v1,${'A'.repeat(5000)}` }, { secret }))).toBe('ERR_MALFORMED')
    const many = Array.from({ length: 80 }, () => `v1,${randomBytes(32).toString('base64')}`).join(' ')
    expect(many.length).toBeLessThan(4096)
    expect(code(() => verifyWebhook(body, { ...h, 'webhook-signature': many }, { secret }))).toBe('ERR_SIGNATURE_INVALID')
    expect(verifyWebhook(body, { ...h, 'webhook-signature': `${many.slice(0, 3000)} ${h['webhook-signature']}` }, { secret }).id).toBe('evt_a')
  })
})
