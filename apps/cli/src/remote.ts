import { AgentIdError, isDidKeySyntax, readBodyCapped, type AgentIdErrorCode } from '@agentid/core'
import type { AgentView, ApprovalView, ApproverView, OrchestratorView, WebhookEventDetail, WebhookEventPage, WebhookEventView } from '@agentid/issuer'
import { CliError, UsageError } from './errors.js'
import type { AgentPage, AgentRevocation, CredentialRevocation, DelegationRevocation, IssuerClient, IssuerInfo } from './issuer-client.js'

export interface RemoteOptions {
  /** The issuer's base URL, `http(s)://host[:port][/path]`. */
  url: string
  /** The admin API key (AGENTID_ADMIN_KEY); admin commands refuse to run without it. */
  adminKey: string | undefined
  /** Per-request timeout, ms (default 15,000). */
  timeoutMs?: number
  /** Default `globalThis.fetch`. */
  fetch?: typeof globalThis.fetch
}

const CREDENTIAL_ID = /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const BEARER = /^[A-Za-z0-9_-]{1,256}$/
// An error code as the issuer sends them; one this CLI does not know yet is passed on as is.
const ERROR_CODE = /^ERR_[A-Z][A-Z_]{0,47}$/
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024

/** Checks and normalizes an issuer URL (no trailing slash); a UsageError when it is not one. */
export function parseIssuerUrl(value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new UsageError(`the issuer URL ${JSON.stringify(value)} is not a URL (expected http(s)://host[:port])`)
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.search || url.hash) {
    throw new UsageError(`the issuer URL ${JSON.stringify(value)} must be http(s) without credentials, query or fragment`)
  }
  return url.href.replace(/\/+$/, '')
}

function isLoopback(url: string): boolean {
  const host = new URL(url).hostname
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host)
}

/**
 * The issuer's HTTP admin API. Error bodies `{ error: { code, message } }` become AgentIdError with
 * that code; no answer is ERR_UNREACHABLE, an answer that is not the API's is ERR_BAD_RESPONSE.
 */
export function remoteClient(options: RemoteOptions, warn: (text: string) => void): IssuerClient {
  const base = options.url
  const fetch = options.fetch ?? globalThis.fetch
  const timeoutMs = options.timeoutMs ?? 15_000
  let warned = false

  function adminKey(): string {
    const raw = options.adminKey
    if (raw === undefined || raw.trim() === '') {
      throw new UsageError('AGENTID_ADMIN_KEY is not set: export the admin key of the issuer (see `agentid admin-key --help`)')
    }
    const key = raw.trim()
    // Refused here, not sent: a header with such characters cannot be a key of ours anyway.
    if (!BEARER.test(key)) throw new AgentIdError('ERR_UNAUTHENTICATED', 'AGENTID_ADMIN_KEY is not a well-formed API key')
    if (!warned && base.startsWith('http:') && !isLoopback(base)) {
      warned = true
      warn(`agentid: warning: sending the admin key over plain HTTP to ${base}\n`)
    }
    return key
  }

  async function call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, init: { body?: unknown; auth?: boolean; query?: Record<string, string | undefined> } = {}): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json, application/did+json' }
    if (init.auth !== false) headers.authorization = `Bearer ${adminKey()}`
    if (init.body !== undefined) headers['content-type'] = 'application/json'
    const query = new URLSearchParams(Object.entries(init.query ?? {}).filter((e): e is [string, string] => e[1] !== undefined))
    const url = `${base}${path}${query.size ? `?${query}` : ''}`
    let response: Response
    try {
      response = await fetch(url, {
        method,
        headers,
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
        ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      })
    } catch (cause) {
      throw new CliError('ERR_UNREACHABLE', `cannot reach the issuer at ${base}: ${networkReason(cause)}`, { cause })
    }
    if (response.status >= 300 && response.status < 400) {
      throw new CliError('ERR_BAD_RESPONSE', `the issuer at ${base} redirects (HTTP ${response.status} to ${response.headers.get('location') ?? '?'}); use the final URL`)
    }
    let text: string | undefined
    try {
      text = await readText(response, MAX_RESPONSE_BYTES)
    } catch (cause) {
      throw new CliError('ERR_UNREACHABLE', `the connection to ${base} broke: ${networkReason(cause)}`, { cause })
    }
    if (text === undefined) throw new CliError('ERR_BAD_RESPONSE', `${base} answered with more than ${MAX_RESPONSE_BYTES} bytes; is it an agentid issuer?`)
    const body = parseJson(text)
    if (!response.ok) {
      const error = isRecord(body) && isRecord(body.error) ? body.error : undefined
      const code = error?.code
      const message = typeof error?.message === 'string' ? error.message : `HTTP ${response.status}`
      if (typeof code === 'string' && ERROR_CODE.test(code)) throw new AgentIdError(code as AgentIdErrorCode, message)
      throw new CliError('ERR_BAD_RESPONSE', `${base} answered HTTP ${response.status} without an agentid error; is it an agentid issuer?`)
    }
    if (!isRecord(body)) throw new CliError('ERR_BAD_RESPONSE', `${base} answered HTTP ${response.status} with a body that is not a JSON object; is it an agentid issuer?`)
    return body as T
  }

  const did = (value: string) => {
    // Checked before it becomes a path segment, where an empty or odd value would change the route.
    if (!isDidKeySyntax(value)) throw new AgentIdError('ERR_INVALID_INPUT', 'did: must be an Ed25519 did:key', { details: { field: 'did' } })
    return encodeURIComponent(value)
  }

  return {
    async issuer() {
      const info = await call<Partial<IssuerInfo>>('GET', '/v1/issuer', { auth: false })
      if (typeof info.did !== 'string' || !info.did.startsWith('did:') || typeof info.keyId !== 'string') {
        throw new CliError('ERR_BAD_RESPONSE', `${base}/v1/issuer did not name an issuer DID`)
      }
      return { did: info.did, keyId: info.keyId }
    },
    async didDocument() {
      try {
        return await call<Record<string, unknown>>('GET', '/.well-known/did.json', { auth: false })
      } catch (error) {
        if (error instanceof AgentIdError && error.code === 'ERR_NOT_FOUND') return null
        throw error
      }
    },
    addOrchestrator: (name) => call('POST', '/v1/orchestrators', { body: { name } }),
    async listOrchestrators() {
      const page = await call<{ orchestrators?: unknown }>('GET', '/v1/orchestrators')
      if (!Array.isArray(page.orchestrators)) throw new CliError('ERR_BAD_RESPONSE', `${base} returned no orchestrator list`)
      return page.orchestrators as OrchestratorView[]
    },
    removeOrchestrator(idOrName) {
      if (idOrName.length === 0 || idOrName.length > 128) {
        throw new AgentIdError('ERR_INVALID_INPUT', 'an orchestrator id or name is required', { details: { field: 'id' } })
      }
      return call('DELETE', `/v1/orchestrators/${encodeURIComponent(idOrName)}`)
    },
    listAgents: (query) => call<AgentPage>('GET', '/v1/agents', { query: { ...query } }),
    getAgent: async (value) => call<AgentView>('GET', `/v1/agents/${did(value)}`),
    revokeAgent: async (value, reason) => call<AgentRevocation>('POST', `/v1/agents/${did(value)}/revoke`, { body: { reason } }),
    async revokeCredential(id, reason) {
      if (!CREDENTIAL_ID.test(id)) throw new AgentIdError('ERR_INVALID_INPUT', 'id: must be a credential id (urn:uuid:…)', { details: { field: 'id' } })
      return call<CredentialRevocation>('POST', `/v1/credentials/${encodeURIComponent(id)}/revoke`, { body: { reason } })
    },
    async revokeDelegation(id, reason) {
      if (!CREDENTIAL_ID.test(id)) throw new AgentIdError('ERR_INVALID_INPUT', 'id: must be a delegation id (urn:uuid:…)', { details: { field: 'id' } })
      return call<DelegationRevocation>('POST', `/v1/delegations/${encodeURIComponent(id)}/revoke`, { body: { reason } })
    },
    addApprover: (input) => call('POST', '/v1/approvers', { body: input }),
    async listApprovers() {
      const page = await call<{ approvers?: unknown }>('GET', '/v1/approvers')
      if (!Array.isArray(page.approvers)) throw new CliError('ERR_BAD_RESPONSE', `${base} returned no approver list`)
      return page.approvers as ApproverView[]
    },
    revokeApprover: (id, reason) => call('POST', `/v1/approvers/${approvalId(id, 'apv')}/revoke`, { body: { reason } }),
    async listApprovals(query) {
      const page = await call<{ approvals?: unknown }>('GET', '/v1/approvals', { query: { ...query } })
      if (!Array.isArray(page.approvals)) throw new CliError('ERR_BAD_RESPONSE', `${base} returned no approval list`)
      return page.approvals as ApprovalView[]
    },
    getApproval: (id) => call<ApprovalView>('GET', `/v1/approvals/${approvalId(id, 'apr')}`),
    async listWebhookEvents(query) {
      const page = await call<Partial<WebhookEventPage>>('GET', '/v1/webhooks/events', { query: { ...query } })
      if (!Array.isArray(page.events)) throw new CliError('ERR_BAD_RESPONSE', `${base} returned no webhook event list`)
      return { events: page.events, nextCursor: typeof page.nextCursor === 'string' ? page.nextCursor : null }
    },
    getWebhookEvent: (id) => call<WebhookEventDetail>('GET', `/v1/webhooks/events/${webhookEventId(id)}`),
    async redeliverWebhookEvent(id) {
      const answer = await call<{ event?: unknown }>('POST', `/v1/webhooks/events/${webhookEventId(id)}/redeliver`)
      if (!isRecord(answer.event)) throw new CliError('ERR_BAD_RESPONSE', `${base} did not return the redelivered event`)
      return answer.event as unknown as WebhookEventView
    },
    localStatusList: async () => undefined,
    close: async () => {},
  }
}

// Checked before it becomes a path segment.
function approvalId(value: string, prefix: 'apv' | 'apr'): string {
  if (!new RegExp(`^${prefix}_[A-Za-z0-9_-]{22}$`).test(value)) {
    throw new AgentIdError('ERR_INVALID_INPUT', `id: must be an ${prefix === 'apv' ? 'approver' : 'approval request'} id (${prefix}_…)`, { details: { field: 'id' } })
  }
  return value
}

// Checked before it becomes a path segment (`evt_` and 22 base64url characters).
function webhookEventId(value: string): string {
  if (!/^evt_[A-Za-z0-9_-]{22}$/.test(value)) throw new AgentIdError('ERR_INVALID_INPUT', 'id: must be a webhook event id (evt_…)', { details: { field: 'id' } })
  return value
}

/** The body as UTF-8 text, or undefined (and the rest not read) when it is larger than `max` bytes. */
export async function readText(response: Response, max: number): Promise<string | undefined> {
  try {
    return (await readBodyCapped(response, max)).toString('utf8') // core's one capped reader
  } catch (error) {
    if (error instanceof AgentIdError && error.code === 'ERR_PAYLOAD_TOO_LARGE') return undefined
    throw error
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

// undici reports "fetch failed" with the useful part (ECONNREFUSED, ENOTFOUND, ...) in `cause`.
function networkReason(error: unknown): string {
  const e = error as { name?: string; message?: string; cause?: { code?: string; message?: string } }
  if (e?.name === 'TimeoutError') return 'timed out'
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(error)
}
