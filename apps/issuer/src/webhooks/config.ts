// Configuration of the approval webhook: where events go, the Standard Webhooks signing secret, and
// the retry schedule. A URL without its secret (or with a malformed one) stops the start: an unsigned
// webhook is what this module exists to end.
import { realpathSync } from 'node:fs'
import { AgentIdError } from '@agentid/core'
import { readSecretFileText } from '../secret.js'

/** The approval webhook: the endpoint, its signing secret and how deliveries are retried. */
export interface WebhookConfig {
  /** The receiver (http or https, no credentials, no fragment). Redirects are never followed. */
  url: string
  /** The Standard Webhooks secret: `whsec_` and the base64 of 24 to 64 random bytes. */
  secret: string
  /** Delay before the first retry, ms (doubled at each failure, with jitter, up to 1 h). Default 5,000. */
  retryMs?: number
  /** How long after the event it is retried before it is given up, seconds. Default 86,400 (24 h). */
  giveUpSec?: number
  /** Time allowed for one attempt (connect, send, response headers), ms. Default 15,000. */
  timeoutMs?: number
}

export const WEBHOOK_URL_ENV = 'AGENTID_APPROVALS_WEBHOOK_URL'
export const WEBHOOK_SECRET_ENV = 'AGENTID_APPROVALS_WEBHOOK_SECRET'
export const WEBHOOK_SECRET_FILE_ENV = 'AGENTID_APPROVALS_WEBHOOK_SECRET_FILE'
const RETRY_ENV = 'AGENTID_APPROVALS_WEBHOOK_RETRY_MS'
const GIVE_UP_ENV = 'AGENTID_APPROVALS_WEBHOOK_GIVE_UP_SEC'
const TIMEOUT_ENV = 'AGENTID_APPROVALS_WEBHOOK_TIMEOUT_MS'

/** Bounds of the tunables (inclusive). */
export const WEBHOOK_LIMITS = {
  retryMs: [100, 3_600_000],
  giveUpSec: [60, 7 * 86_400],
  timeoutMs: [100, 60_000],
} as const

function invalid(field: string, reason: string, message: string): never {
  throw new AgentIdError('ERR_INVALID_INPUT', message, { details: { field, reason } })
}

/**
 * Checks a Standard Webhooks symmetric secret: `whsec_` then canonical base64 (padded, as the spec and
 * its libraries print it) of 24 to 64 bytes (the spec's bounds). The secret never appears in an error.
 * @example
 * parseWebhookSecret(`whsec_${randomBytes(32).toString('base64')}`)
 */
export function parseWebhookSecret(value: unknown, field = WEBHOOK_SECRET_ENV, what = field): string {
  if (typeof value !== 'string' || value === '') invalid(field, 'webhook_secret_missing', `${what} is required with a webhook URL: whsec_ followed by the base64 of 24 to 64 random bytes`)
  const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(value)
  const bytes = m ? Buffer.from(m[1]!, 'base64') : undefined
  // Canonical only: what decodes must encode back to the same text (no stray bits, no missing padding).
  if (!bytes || bytes.toString('base64') !== m![1] || bytes.length < 24 || bytes.length > 64) {
    invalid(field, 'webhook_secret_invalid', `${what} must be whsec_ followed by the base64 of 24 to 64 random bytes`)
  }
  return value
}

/**
 * Checks a webhook URL: absolute http(s), without user info or fragment.
 * @example
 * parseWebhookUrl('https://hooks.example.com/agentid')
 */
export function parseWebhookUrl(value: unknown, field = WEBHOOK_URL_ENV): string {
  let url: URL | undefined
  try {
    url = typeof value === 'string' && value.length <= 2048 && !/\s/.test(value) ? new URL(value) : undefined
  } catch {
    url = undefined
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.username !== '' || url.password !== '' || url.hash !== '' || (value as string).includes('#')) {
    invalid(field, 'webhook_url_invalid', `${field} must be an http(s) URL without credentials or fragment, at most 2,048 characters`)
  }
  return url.href
}

function bounded(value: unknown, field: string, [min, max]: readonly [number, number], unit: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    invalid(field, 'webhook_option_invalid', `${field} must be a whole number of ${unit} from ${min.toLocaleString('en')} to ${max.toLocaleString('en')}`)
  }
  return value
}

/**
 * Checks a webhook configuration given in code (IssuerServiceOptions): the same rules as the environment.
 * @example
 * parseWebhookConfig({ url: 'https://hooks.example.com/agentid', secret: process.env.WEBHOOK_SECRET })
 */
export function parseWebhookConfig(input: unknown): Required<WebhookConfig> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new TypeError('webhook: must be an object { url, secret, retryMs?, giveUpSec?, timeoutMs? }')
  const o = input as Record<string, unknown>
  for (const key of Object.keys(o)) if (!['url', 'secret', 'retryMs', 'giveUpSec', 'timeoutMs'].includes(key)) throw new TypeError(`webhook: unknown option ${JSON.stringify(key).slice(0, 64)}`)
  return {
    url: parseWebhookUrl(o.url, 'webhook.url'),
    secret: parseWebhookSecret(o.secret, 'webhook.secret'),
    retryMs: o.retryMs === undefined ? 5_000 : bounded(o.retryMs, 'webhook.retryMs', WEBHOOK_LIMITS.retryMs, 'milliseconds'),
    giveUpSec: o.giveUpSec === undefined ? 86_400 : bounded(o.giveUpSec, 'webhook.giveUpSec', WEBHOOK_LIMITS.giveUpSec, 'seconds'),
    timeoutMs: o.timeoutMs === undefined ? 15_000 : bounded(o.timeoutMs, 'webhook.timeoutMs', WEBHOOK_LIMITS.timeoutMs, 'milliseconds'),
  }
}

function integerFrom(env: NodeJS.ProcessEnv, name: string, limits: readonly [number, number], unit: string): number | undefined {
  const text = env[name]
  if (text === undefined || text === '') return undefined
  if (!/^[0-9]{1,9}$/.test(text)) invalid(name, 'webhook_option_invalid', `${name} must be a whole number of ${unit} from ${limits[0].toLocaleString('en')} to ${limits[1].toLocaleString('en')}`)
  return bounded(Number(text), name, limits, unit)
}

/**
 * Reads the secret from the file `AGENTID_APPROVALS_WEBHOOK_SECRET_FILE` names, under the checks of the
 * issuer's other secret files (`readSecretFileText`: mode 0600 or 0400, owned by this process's user or
 * root, a regular file of at most 1 KiB). One departure: the path given may be a symbolic link, judged by
 * the file it leads to, because Kubernetes mounts each key of a secret as a link into a timestamped
 * folder (`key -> ..data/key`); the link's target is opened without following any further link.
 * One trailing newline is dropped (`echo … > file`). Errors name the variable and the path, never the secret.
 */
function readWebhookSecretFile(path: string): string {
  const field = WEBHOOK_SECRET_FILE_ENV
  try {
    return readSecretFileText(realpathSync(path), { invalid: 'webhook_secret_file_invalid', permissions: 'webhook_secret_file_permissions', field })
  } catch (cause) {
    if (cause instanceof AgentIdError) throw cause
    const code = (cause as NodeJS.ErrnoException).code ?? 'error'
    throw new AgentIdError('ERR_INVALID_INPUT', `${field}: cannot read ${path} (${code})`, { cause, details: { field, reason: 'webhook_secret_file_unreadable' } })
  }
}

/**
 * Reads `AGENTID_APPROVALS_WEBHOOK_URL` with the secret from `AGENTID_APPROVALS_WEBHOOK_SECRET` or from
 * the file `AGENTID_APPROVALS_WEBHOOK_SECRET_FILE` names (one of them: both set is refused), and the
 * tunables `AGENTID_APPROVALS_WEBHOOK_RETRY_MS`, `…_GIVE_UP_SEC`, `…_TIMEOUT_MS`. Undefined: no webhook.
 * @example
 * webhookFromEnv({ AGENTID_APPROVALS_WEBHOOK_URL: 'https://hooks.example.com/a', AGENTID_APPROVALS_WEBHOOK_SECRET_FILE: '/run/secrets/agentid-webhook' })
 */
export function webhookFromEnv(env: NodeJS.ProcessEnv): WebhookConfig | undefined {
  const url = env[WEBHOOK_URL_ENV]
  const secret = env[WEBHOOK_SECRET_ENV]
  const secretFile = env[WEBHOOK_SECRET_FILE_ENV]
  const hasSecret = secret !== undefined && secret !== ''
  const hasFile = secretFile !== undefined && secretFile !== ''
  if (hasSecret && hasFile) invalid(WEBHOOK_SECRET_FILE_ENV, 'webhook_secret_conflict', `${WEBHOOK_SECRET_ENV} and ${WEBHOOK_SECRET_FILE_ENV} are both set: set one`)
  const retryMs = integerFrom(env, RETRY_ENV, WEBHOOK_LIMITS.retryMs, 'milliseconds')
  const giveUpSec = integerFrom(env, GIVE_UP_ENV, WEBHOOK_LIMITS.giveUpSec, 'seconds')
  const timeoutMs = integerFrom(env, TIMEOUT_ENV, WEBHOOK_LIMITS.timeoutMs, 'milliseconds')
  if (url === undefined || url === '') {
    if (hasSecret || hasFile) invalid(WEBHOOK_URL_ENV, 'webhook_url_missing', `${hasFile ? WEBHOOK_SECRET_FILE_ENV : WEBHOOK_SECRET_ENV} is set but ${WEBHOOK_URL_ENV} is not`)
    return undefined
  }
  return {
    url: parseWebhookUrl(url),
    secret: hasFile
      ? parseWebhookSecret(readWebhookSecretFile(secretFile!), WEBHOOK_SECRET_FILE_ENV, `The content of ${WEBHOOK_SECRET_FILE_ENV}`)
      : parseWebhookSecret(secret),
    ...(retryMs === undefined ? {} : { retryMs }),
    ...(giveUpSec === undefined ? {} : { giveUpSec }),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  }
}
