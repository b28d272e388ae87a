// The approval webhook's signature and configuration: what the issuer signs verifies with the
// `standardwebhooks` library's own Webhook.verify (the receiver's side), and a changed body, timestamp,
// id or secret is refused by it; a webhook URL without a well-formed secret stops the start.
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { Webhook, WebhookVerificationError } from 'standardwebhooks'
import { chmodSync, chownSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { configFromEnv } from '../src/config.js'
import { IssuerService } from '../src/domain/service.js'
import { parseWebhookConfig, webhookFromEnv } from '../src/webhooks/config.js'
import { webhookSigner } from '../src/webhooks/sign.js'
import { retryDelayMs, MAX_RETRY_DELAY_MS } from '../src/webhooks/backoff.js'
import { expectAgentIdError, tempDir } from './engine-helpers.js'

const secret = (bytes = 32) => `whsec_${randomBytes(bytes).toString('base64')}`
const URL_ENV = 'AGENTID_APPROVALS_WEBHOOK_URL'
const SECRET_ENV = 'AGENTID_APPROVALS_WEBHOOK_SECRET'
const FILE_ENV = 'AGENTID_APPROVALS_WEBHOOK_SECRET_FILE'
const isRoot = process.geteuid?.() === 0

describe('signing', () => {
  const key = secret()
  const sign = webhookSigner(key)
  const body = JSON.stringify({ type: 'approval.requested', timestamp: new Date().toISOString(), id: 'apr_x', call: { arguments: { amount: '1200.00 EUR' } } })
  const now = () => Math.floor(Date.now() / 1000)

  it("verifies with the library's Webhook.verify, which returns the body", () => {
    const headers = sign('evt_abc', now(), body)
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/)
    expect(new Webhook(key).verify(body, headers)).toEqual(JSON.parse(body))
    // The same event signed again later: same id, new timestamp, and it still verifies.
    const later = sign('evt_abc', now() + 1, body)
    expect(later['webhook-id']).toBe('evt_abc')
    expect(new Webhook(key).verify(body, later)).toEqual(JSON.parse(body))
  })

  it('a changed body, timestamp, id or secret is refused', () => {
    const headers = sign('evt_abc', now(), body)
    const refuse = (payload: string, h: Record<string, string>, k = key) => expect(() => new Webhook(k).verify(payload, h)).toThrow(WebhookVerificationError)
    refuse(body.replace('1200.00', '9200.00'), headers)
    refuse(`${body} `, headers)
    refuse(body, { ...headers, 'webhook-timestamp': String(now() - 1) })
    refuse(body, { ...headers, 'webhook-id': 'evt_abd' })
    refuse(body, headers, secret())
    refuse(body, { ...headers, 'webhook-signature': headers['webhook-signature'].replace('v1,', 'v1a,') })
    // An old attempt replayed: signed correctly, but outside the library's 5-minute tolerance.
    refuse(body, sign('evt_abc', now() - 301, body))
  })

  it('refuses ids that could blur the signed string, and bad timestamps', () => {
    for (const id of ['', 'evt.1', 'evt 1', 'é', 'x'.repeat(129)]) expect(() => sign(id, now(), body), id).toThrow(TypeError)
    for (const t of [-1, 1.5, Number.NaN]) expect(() => sign('evt_1', t, body)).toThrow(TypeError)
  })
})

describe('configuration', () => {
  it('reads the URL and secret together, with the tunables', () => {
    const key = secret()
    expect(webhookFromEnv({})).toBeUndefined()
    expect(configFromEnv({}).approvalsWebhook).toBeUndefined()
    expect(configFromEnv({ [URL_ENV]: 'https://hooks.example/a?b=1', [SECRET_ENV]: key }).approvalsWebhook).toEqual({ url: 'https://hooks.example/a?b=1', secret: key })
    expect(webhookFromEnv({ [URL_ENV]: 'http://127.0.0.1:9/x', [SECRET_ENV]: key, AGENTID_APPROVALS_WEBHOOK_RETRY_MS: '200', AGENTID_APPROVALS_WEBHOOK_GIVE_UP_SEC: '60', AGENTID_APPROVALS_WEBHOOK_TIMEOUT_MS: '1000' }))
      .toEqual({ url: 'http://127.0.0.1:9/x', secret: key, retryMs: 200, giveUpSec: 60, timeoutMs: 1000 })
    // The spec's bounds: 24 to 64 bytes.
    expect(webhookFromEnv({ [URL_ENV]: 'https://h.example/', [SECRET_ENV]: secret(24) })).toBeDefined()
    expect(webhookFromEnv({ [URL_ENV]: 'https://h.example/', [SECRET_ENV]: secret(64) })).toBeDefined()
  })

  it('a URL without a secret, or with a malformed one, is a configuration error that never echoes the secret', async () => {
    await expectAgentIdError(() => configFromEnv({ [URL_ENV]: 'https://hooks.example/a' }), 'ERR_INVALID_INPUT', 'webhook_secret_missing')
    await expectAgentIdError(() => configFromEnv({ [URL_ENV]: 'https://hooks.example/a', [SECRET_ENV]: '' }), 'ERR_INVALID_INPUT', 'webhook_secret_missing')
    const good = randomBytes(32).toString('base64')
    for (const bad of [
      good, // no prefix
      `whsec_${randomBytes(23).toString('base64')}`, // too short
      `whsec_${randomBytes(65).toString('base64')}`, // too long
      `whsec_${good.replace(/=+$/, '')}`, // padding missing
      `whsec_${randomBytes(32).toString('base64url')}_-`, // base64url, not base64
      `whsec_${good} `,
      `whsec_${good}\n`,
      'whsec_',
      `WHSEC_${good}`,
      `whsec_${good.slice(0, -2)}B=`, // stray bits: not canonical
    ]) {
      const e = await expectAgentIdError(() => configFromEnv({ [URL_ENV]: 'https://hooks.example/a', [SECRET_ENV]: bad }), 'ERR_INVALID_INPUT', 'webhook_secret_invalid')
      if (bad.length > 20) expect(e.message).not.toContain(bad.slice(6, 20))
      expect(e.details.field).toBe(SECRET_ENV)
    }
  })

  it('a secret without a URL, a malformed URL and out-of-range tunables are refused', async () => {
    await expectAgentIdError(() => configFromEnv({ [SECRET_ENV]: secret() }), 'ERR_INVALID_INPUT', 'webhook_url_missing')
    for (const url of ['hooks.example', 'ftp://h.example/', 'https://user:pw@h.example/', 'https://h.example/#frag', 'https://h.example/ x', 'javascript:alert(1)', `https://h.example/${'a'.repeat(2100)}`]) {
      await expectAgentIdError(() => configFromEnv({ [URL_ENV]: url, [SECRET_ENV]: secret() }), 'ERR_INVALID_INPUT', 'webhook_url_invalid')
    }
    for (const [name, value] of [
      ['AGENTID_APPROVALS_WEBHOOK_RETRY_MS', '99'], ['AGENTID_APPROVALS_WEBHOOK_RETRY_MS', '1e3'], ['AGENTID_APPROVALS_WEBHOOK_RETRY_MS', '3600001'],
      ['AGENTID_APPROVALS_WEBHOOK_GIVE_UP_SEC', '59'], ['AGENTID_APPROVALS_WEBHOOK_GIVE_UP_SEC', '604801'], ['AGENTID_APPROVALS_WEBHOOK_GIVE_UP_SEC', '-1'],
      ['AGENTID_APPROVALS_WEBHOOK_TIMEOUT_MS', '60001'], ['AGENTID_APPROVALS_WEBHOOK_TIMEOUT_MS', ' 100'],
    ] as const) {
      await expectAgentIdError(() => configFromEnv({ [URL_ENV]: 'https://h.example/', [SECRET_ENV]: secret(), [name]: value }), 'ERR_INVALID_INPUT', 'webhook_option_invalid')
    }
  })

  it('the same rules in code (IssuerServiceOptions.approvals.webhook); unknown options are a TypeError', async () => {
    expect(parseWebhookConfig({ url: 'https://h.example/', secret: secret() })).toMatchObject({ retryMs: 5000, giveUpSec: 86_400, timeoutMs: 15_000 })
    await expectAgentIdError(() => parseWebhookConfig({ url: 'https://h.example/' }), 'ERR_INVALID_INPUT', 'webhook_secret_missing')
    await expectAgentIdError(() => parseWebhookConfig({ url: 'https://h.example/', secret: 'whsec_AAAA' }), 'ERR_INVALID_INPUT', 'webhook_secret_invalid')
    await expectAgentIdError(() => parseWebhookConfig({ url: 'https://h.example/', secret: secret(), timeoutMs: 0.5 }), 'ERR_INVALID_INPUT', 'webhook_option_invalid')
    expect(() => parseWebhookConfig({ url: 'https://h.example/', secret: secret(), retries: 3 })).toThrow(TypeError)
    expect(() => parseWebhookConfig('https://h.example/')).toThrow(TypeError)
  })
})

describe('AGENTID_APPROVALS_WEBHOOK_SECRET_FILE', () => {
  /** A secret file in a fresh folder: its path, and the folder's cleanup. */
  function secretFile(content: string, mode = 0o600): { path: string; dir: string; cleanup: () => void } {
    const { dir, cleanup } = tempDir()
    const path = join(dir, 'webhook-secret')
    writeFileSync(path, content, { mode })
    chmodSync(path, mode) // the umask must not decide the test
    return { path, dir, cleanup }
  }
  const fromFile = (path: string, extra: Record<string, string> = {}) => configFromEnv({ [URL_ENV]: 'https://hooks.example/a', [FILE_ENV]: path, ...extra })

  it('reads the secret from a 0600 or 0400 file, one trailing newline dropped', () => {
    for (const [mode, ending] of [[0o600, '\n'], [0o400, ''], [0o600, '\r\n']] as const) {
      const key = secret()
      const f = secretFile(`${key}${ending}`, mode)
      try {
        expect(fromFile(f.path).approvalsWebhook).toEqual({ url: 'https://hooks.example/a', secret: key })
      } finally {
        f.cleanup()
      }
    }
  })

  it('follows a symbolic link to the secret (a Kubernetes secret volume) and judges the file it leads to', async () => {
    const key = secret()
    const f = secretFile(`${key}\n`)
    try {
      // The kubelet's layout: key -> ..data/key, ..data -> ..<timestamp>.
      mkdirSync(join(f.dir, '..2026_12_07'))
      writeFileSync(join(f.dir, '..2026_12_07', 'key'), `${key}\n`, { mode: 0o400 })
      chmodSync(join(f.dir, '..2026_12_07', 'key'), 0o400)
      symlinkSync('..2026_12_07', join(f.dir, '..data'))
      symlinkSync('..data/key', join(f.dir, 'key'))
      expect(fromFile(join(f.dir, 'key')).approvalsWebhook?.secret).toBe(key)
      chmodSync(join(f.dir, '..2026_12_07', 'key'), 0o644)
      await expectAgentIdError(() => fromFile(join(f.dir, 'key')), 'ERR_INVALID_INPUT', 'webhook_secret_file_permissions')
    } finally {
      f.cleanup()
    }
  })

  it('refuses both variables set, a file without a URL, a missing or unreadable file, a folder, a wrong mode, a large file', async () => {
    const key = secret()
    const f = secretFile(`${key}\n`)
    try {
      const both = await expectAgentIdError(() => fromFile(f.path, { [SECRET_ENV]: key }), 'ERR_INVALID_INPUT', 'webhook_secret_conflict')
      expect(both.message).not.toContain(key.slice(6))
      await expectAgentIdError(() => configFromEnv({ [FILE_ENV]: f.path }), 'ERR_INVALID_INPUT', 'webhook_url_missing')
      const missing = await expectAgentIdError(() => fromFile(join(f.dir, 'nope')), 'ERR_INVALID_INPUT', 'webhook_secret_file_unreadable')
      expect(missing.details.field).toBe(FILE_ENV)
      expect(missing.message).toContain('ENOENT')
      await expectAgentIdError(() => fromFile(f.dir), 'ERR_INVALID_INPUT', 'webhook_secret_file_invalid')
      symlinkSync(join(f.dir, 'nowhere'), join(f.dir, 'dangling'))
      await expectAgentIdError(() => fromFile(join(f.dir, 'dangling')), 'ERR_INVALID_INPUT', 'webhook_secret_file_unreadable')
      for (const mode of [0o644, 0o640, 0o604, 0o660, 0o606, 0o610]) {
        chmodSync(f.path, mode)
        const e = await expectAgentIdError(() => fromFile(f.path), 'ERR_INVALID_INPUT', 'webhook_secret_file_permissions')
        expect(e.details.field).toBe(FILE_ENV)
        expect(e.message).not.toContain(key.slice(6))
      }
      const large = secretFile(`${key}\n${'x'.repeat(1024)}`)
      try {
        await expectAgentIdError(() => fromFile(large.path), 'ERR_INVALID_INPUT', 'webhook_secret_file_invalid')
      } finally {
        large.cleanup()
      }
    } finally {
      f.cleanup()
    }
  })

  it.skipIf(!isRoot)('refuses a file another user owns (run as root: its owner could rewrite the secret)', async () => {
    const key = secret()
    const f = secretFile(`${key}\n`)
    try {
      chownSync(f.path, 4321, 4321)
      await expectAgentIdError(() => fromFile(f.path), 'ERR_INVALID_INPUT', 'webhook_secret_file_permissions')
      chownSync(f.path, 0, 0)
      expect(fromFile(f.path).approvalsWebhook?.secret).toBe(key)
    } finally {
      f.cleanup()
    }
  })

  it('refuses a malformed secret inside the file, naming the variable and never the content', async () => {
    const good = randomBytes(32).toString('base64')
    for (const bad of ['', '\n', good, `whsec_${randomBytes(23).toString('base64')}`, `whsec_${good.replace(/=+$/, '')}`, `whsec_${good}\n\n`, ` whsec_${good}`, `whsec_${good}\x00`]) {
      const f = secretFile(bad)
      try {
        const e = await expectAgentIdError(() => fromFile(f.path), 'ERR_INVALID_INPUT', bad.trim() === '' ? 'webhook_secret_missing' : 'webhook_secret_invalid')
        expect(e.details.field).toBe(FILE_ENV)
        expect(e.message).toContain(FILE_ENV)
        if (bad.length > 20) expect(e.message).not.toContain(good.slice(0, 16))
      } finally {
        f.cleanup()
      }
    }
  })
})

describe('IssuerService.open', () => {
  it('refuses a webhook without a valid secret, and the unsigned webhookUrl of earlier releases, before anything opens', async () => {
    const { dir, cleanup } = tempDir()
    try {
      const dataDir = join(dir, 'data')
      for (const [approvals, reason] of [
        [{ webhook: { url: 'https://hooks.example/approvals' } }, 'webhook_secret_missing'],
        [{ webhook: { url: 'https://hooks.example/approvals', secret: 'whsec_short' } }, 'webhook_secret_invalid'],
        [{ webhookUrl: 'https://hooks.example/approvals' }, 'webhook_secret_missing'],
      ] as const) {
        await expectAgentIdError(() => IssuerService.open({ dataDir, baseUrl: 'http://issuer.test', approvals: approvals as never }), 'ERR_INVALID_INPUT', reason)
      }
      expect(existsSync(dataDir)).toBe(false)
    } finally {
      cleanup()
    }
  })
})

describe('backoff', () => {
  it('doubles from the base, with jitter between half and all of each step, capped at an hour', () => {
    expect([1, 2, 3, 4].map((n) => retryDelayMs(n, 1000, () => 0))).toEqual([500, 1000, 2000, 4000])
    expect([1, 2, 3, 4].map((n) => retryDelayMs(n, 1000, () => 0.999999))).toEqual([1000, 2000, 4000, 8000])
    expect(retryDelayMs(60, 5000, () => 1)).toBe(MAX_RETRY_DELAY_MS)
    expect(retryDelayMs(1000, 5000, () => 0)).toBe(MAX_RETRY_DELAY_MS / 2)
    for (let i = 0; i < 200; i++) {
      const d = retryDelayMs(3, 5000)
      expect(d).toBeGreaterThanOrEqual(10_000)
      expect(d).toBeLessThanOrEqual(20_000)
    }
    expect(() => retryDelayMs(0, 1000)).toThrow(TypeError)
  })
})
