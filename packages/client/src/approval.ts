// The agent's side of human approvals: a call refused with ERR_APPROVAL_REQUIRED carries an approval request
// id; the agent waits for the approver's decision at the issuer (long poll) and retries the same call with
// the receipt. The receipt is checked by the service, not here: the agent only carries it.
import { AgentIdError } from '@agentid/core'
import { APPROVAL_HEADER, APPROVAL_META_KEY } from '@agentid/lineage'

// The wire names live beside the lineage's (one definition for agents, guards and verifiers).
export { APPROVAL_HEADER, APPROVAL_META_KEY }

/** Options of {@link waitForApproval}. */
export interface WaitForApprovalOptions {
  /** The issuer's base URL (the one this agent trusts; never one a refusal names). */
  issuerUrl: string
  approvalId: string
  /** Give up after this long, ms. Default 15 minutes (the issuer's default request lifetime). */
  timeoutMs?: number
  /** Seconds per long poll (1 to 30). Default 25. */
  pollSec?: number
  fetch?: typeof globalThis.fetch
  signal?: AbortSignal
}

const ID = /^apr_[A-Za-z0-9_-]{22}$/

/**
 * Waits for the decision on an approval request (long polls `GET /v1/approvals/:id?wait=`) and resolves with
 * the receipt when approved. Throws AgentIdError: ERR_APPROVAL_DENIED (denied), ERR_EXPIRED (the request
 * expired undecided), ERR_UNAVAILABLE (timeout, or the issuer cannot be read).
 * @example
 * const receipt = await waitForApproval({ issuerUrl, approvalId: error.data.approvalId })
 */
export async function waitForApproval(options: WaitForApprovalOptions): Promise<Record<string, unknown>> {
  if (!options || typeof options.issuerUrl !== 'string' || !URL.canParse(options.issuerUrl)) throw new TypeError('waitForApproval: issuerUrl is required')
  if (typeof options.approvalId !== 'string' || !ID.test(options.approvalId)) throw new AgentIdError('ERR_INVALID_INPUT', 'approvalId: not an approval request id (apr_…)', { details: { field: 'approvalId' } })
  const fetch = options.fetch ?? globalThis.fetch
  const pollSec = Math.min(30, Math.max(1, Math.floor(options.pollSec ?? 25)))
  const deadline = Date.now() + (options.timeoutMs ?? 15 * 60_000)
  const url = `${options.issuerUrl.replace(/\/+$/, '')}/v1/approvals/${options.approvalId}?wait=${pollSec}`
  let failures = 0
  while (Date.now() < deadline) {
    options.signal?.throwIfAborted()
    let body: { status?: unknown; receipt?: unknown } | undefined
    try {
      const response = await fetch(url, { headers: { accept: 'application/json' }, redirect: 'error', signal: AbortSignal.any([AbortSignal.timeout((pollSec + 10) * 1000), ...(options.signal ? [options.signal] : [])]) })
      if (response.status === 404) throw new AgentIdError('ERR_NOT_FOUND', 'the issuer does not know this approval request')
      if (!response.ok) throw new Error(`HTTP ${response.status}`)
      body = (await response.json()) as typeof body
    } catch (error) {
      if (error instanceof AgentIdError || options.signal?.aborted) throw error
      if (++failures >= 5) throw new AgentIdError('ERR_UNAVAILABLE', 'the issuer cannot be read for the approval decision', { cause: error })
      await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 250 * 2 ** failures)))
      continue
    }
    failures = 0
    switch (body?.status) {
      case 'approved':
        if (typeof body.receipt !== 'object' || body.receipt === null) throw new AgentIdError('ERR_UNAVAILABLE', 'the issuer returned an approval without its receipt')
        return body.receipt as Record<string, unknown>
      case 'denied':
        throw new AgentIdError('ERR_APPROVAL_DENIED', 'the approver denied the call', { details: { approvalId: options.approvalId } })
      case 'expired':
        throw new AgentIdError('ERR_EXPIRED', 'the approval request expired undecided', { details: { approvalId: options.approvalId } })
      case 'pending':
        continue
      default:
        throw new AgentIdError('ERR_UNAVAILABLE', 'the issuer answered with an unknown approval status')
    }
  }
  throw new AgentIdError('ERR_UNAVAILABLE', 'no decision before the timeout', { details: { approvalId: options.approvalId } })
}

/** An MCP client (`Client` of the MCP SDK), as far as {@link callToolWithApproval} uses it. */
export interface McpToolClient {
  callTool(params: { name: string; arguments?: Record<string, unknown>; _meta?: Record<string, unknown> }, resultSchema?: never, options?: Record<string, unknown>): Promise<unknown>
}

/** Options of {@link callToolWithApproval}. */
export interface CallToolWithApprovalOptions extends Omit<WaitForApprovalOptions, 'approvalId'> {
  /** Called once the call waits for a human (e.g. to show `approvalUrl`). */
  onApprovalRequired?: (data: { approvalId: string; approvalUrl: string; expiresAt: string }) => void
  /** Request options passed to `callTool` (timeout, …). */
  requestOptions?: Record<string, unknown>
  /**
   * The `_meta` of the retried call, built from the receipt: with a lineage, a new hop naming the approval,
   * e.g. `(receipt) => mcpLineageMeta({ …, approval: receipt })` (which also carries the receipt). Default:
   * `params._meta` with the receipt added.
   */
  retryMeta?: (receipt: Record<string, unknown>) => Record<string, unknown> | Promise<Record<string, unknown>>
}

function approvalData(error: unknown): { approvalId: string; approvalUrl: string; expiresAt: string } | undefined {
  const data = (error as { data?: unknown })?.data as Record<string, unknown> | undefined
  if (typeof data !== 'object' || data === null || data.code !== 'ERR_APPROVAL_REQUIRED') return undefined
  if (typeof data.approvalId !== 'string' || typeof data.approvalUrl !== 'string' || typeof data.expiresAt !== 'string') return undefined
  return { approvalId: data.approvalId, approvalUrl: data.approvalUrl, expiresAt: data.expiresAt }
}

/**
 * Calls an MCP tool; when the guard answers ERR_APPROVAL_REQUIRED, waits for the approver's decision and
 * calls it again, with exactly the same name and arguments, carrying the receipt in
 * `_meta["io.agentid/approval"]`. Any other error, a denial or an expiry is thrown.
 * @example
 * const result = await callToolWithApproval(mcp, { name: 'pay_invoice', arguments: { invoice: 'INV-42' } }, { issuerUrl })
 */
export async function callToolWithApproval(
  client: McpToolClient,
  params: { name: string; arguments?: Record<string, unknown>; _meta?: Record<string, unknown> },
  options: CallToolWithApprovalOptions,
): Promise<unknown> {
  try {
    return await client.callTool(params, undefined, options.requestOptions)
  } catch (error) {
    const data = approvalData(error)
    if (data === undefined) throw error
    options.onApprovalRequired?.(data)
    const { onApprovalRequired: _o, requestOptions, retryMeta, ...wait } = options
    const receipt = await waitForApproval({ ...wait, approvalId: data.approvalId })
    const meta = retryMeta ? { ...(await retryMeta(receipt)), [APPROVAL_META_KEY]: receipt } : { ...params._meta, [APPROVAL_META_KEY]: receipt }
    return client.callTool({ ...params, _meta: meta }, undefined, requestOptions)
  }
}

/** The `Agentid-Approval` header value for a receipt (base64url of its JSON). */
export function approvalHeader(receipt: unknown): string {
  return Buffer.from(JSON.stringify(receipt), 'utf8').toString('base64url')
}

/** Options of {@link fetchWithApproval}. */
export interface FetchWithApprovalOptions extends Omit<WaitForApprovalOptions, 'approvalId'> {
  onApprovalRequired?: (data: { approvalId: string; approvalUrl: string; expiresAt: string }) => void
}

/**
 * Sends an HTTP request with `agentFetch` (an agent fetch); when the service answers 403
 * `ERR_APPROVAL_REQUIRED`, waits for the decision and sends the same request again (same method, URL and
 * body: give the body as a string or bytes, not a stream) with the receipt in `Agentid-Approval`.
 * @example
 * const res = await fetchWithApproval(agentFetch, 'https://bank.example/v1/pay', { method: 'POST', body }, { issuerUrl })
 */
export async function fetchWithApproval(
  agentFetch: (input: string | URL, init?: RequestInit) => Promise<Response>,
  input: string | URL,
  init: RequestInit,
  options: FetchWithApprovalOptions,
): Promise<Response> {
  if (init.body instanceof ReadableStream) throw new TypeError('fetchWithApproval: the body must be replayable (a string or bytes)')
  const first = await agentFetch(input, init)
  if (first.status !== 403) return first
  const body = (await first.clone().json().catch(() => undefined)) as { error?: Record<string, unknown> } | undefined
  const data = approvalData({ data: body?.error })
  if (data === undefined) return first
  await first.body?.cancel()
  options.onApprovalRequired?.(data)
  const { onApprovalRequired: _o, ...wait } = options
  const receipt = await waitForApproval({ ...wait, approvalId: data.approvalId })
  const headers = new Headers(init.headers)
  headers.set(APPROVAL_HEADER, approvalHeader(receipt))
  return agentFetch(input, { ...init, headers })
}
