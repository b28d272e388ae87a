// Human approval in the HTTP adapters: a request the service marks as needing approval (its policy answered
// `approval-required`) is refused with 403 ERR_APPROVAL_REQUIRED and an approval request id the adapter asks
// the issuer for; the agent retries with the receipt in the `Agentid-Approval` header, verified offline for
// exactly this request (`METHOD /path`, `httpArgs(url, body)`) before the handler runs.
import { AgentIdError } from '@agentid/core'
import { APPROVAL_HEADER, httpArgs, httpCommand, type HttpBody } from '@agentid/lineage'
import type { VerifiedApproval } from '../approval.js'
import type { RequestHeaders, VerifiedRequest } from '../request.js'
import type { Verifier } from '../verifier.js'
import { ambiguousPath } from '../util.js'

/** The header a retried request carries its receipt in: base64url of the receipt's JSON (defined in @agentid/lineage). */
export { APPROVAL_HEADER }

/** Options of the adapters' `approval`. */
export interface HttpApprovalOptions {
  /**
   * Whether this request needs a human's approval: `false`, or `{ group }` (the approver group your policy
   * names, null for the agent's controller's approvers). Typically: your policy engine answered
   * `approval-required` (`decision.approval.group`).
   */
  requires(request: { method: string; url: string; agent: VerifiedRequest }): false | { group: string | null } | Promise<false | { group: string | null }>
  /** The agentid issuer's base URL: approval requests are created there. */
  issuerUrl: string
  /** This service's API key at the issuer (an orchestrator key). */
  apiKey: string
  /** Lifetime of a request, seconds (issuer default 900). */
  ttlSec?: number
  fetch?: typeof globalThis.fetch
  /** Timeout of the request creation, ms. Default 5,000. */
  timeoutMs?: number
}

/** The outcome: go on (with the verified approval, or none needed), or answer `status` with the JSON `body`. */
export type HttpApprovalOutcome =
  | { ok: true; approval: VerifiedApproval | null }
  | { ok: false; status: number; body: { error: Record<string, unknown> } }

export function checkHttpApprovalOptions(o: unknown): HttpApprovalOptions | undefined {
  if (o === undefined) return undefined
  const v = o as Partial<HttpApprovalOptions>
  if (typeof o !== 'object' || o === null || typeof v.requires !== 'function' || typeof v.issuerUrl !== 'string' || !URL.canParse(v.issuerUrl) || typeof v.apiKey !== 'string' || v.apiKey === '') {
    throw new TypeError('approval must be { requires, issuerUrl, apiKey, ttlSec?, fetch?, timeoutMs? }')
  }
  return o as HttpApprovalOptions
}

function header(headers: RequestHeaders, name: string): string[] {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    const v = (headers as { get(n: string): string | null }).get(name)
    return v === null ? [] : v.split(',').map((x) => x.trim())
  }
  const raw = (headers as Readonly<Record<string, string | readonly string[] | undefined>>)[name]
  return raw === undefined ? [] : Array.isArray(raw) ? [...raw] : [raw as string]
}

/** The canonical call an HTTP request is approved as. */
export function httpApprovalCall(verified: VerifiedRequest, target: string, method: string, url: string, body: unknown) {
  return {
    agent: verified.agent,
    controller: verified.agentClaims?.controller ?? '',
    user: verified.user === null ? null : { id: verified.user, ...(verified.userIssuer === null ? {} : { issuer: verified.userIssuer }) },
    target,
    command: httpCommand(method, url),
    arguments: httpArgs(url, body as HttpBody),
  }
}

function refuse(status: number, code: string, message: string, extra: Record<string, unknown> = {}): HttpApprovalOutcome {
  return { ok: false, status, body: { error: { code, message, ...extra } } }
}

/**
 * Decides the approval part of a verified request: not needed; needed and carried (the receipt verified
 * for this request, consumed); or needed and absent (an approval request made at the issuer: 403
 * ERR_APPROVAL_REQUIRED with `approvalId`, `approvalUrl`, `expiresAt`).
 */
export async function decideHttpApproval(
  verifier: Verifier,
  options: HttpApprovalOptions,
  request: { method: string; url: string; headers: RequestHeaders; body: unknown; target: string },
  verified: VerifiedRequest,
): Promise<HttpApprovalOutcome> {
  // A path with dot segments, backslashes or escaped unreserved characters (util.ambiguousPath): the command approved would not be the route that runs.
  if (ambiguousPath(request.url)) return refuse(400, 'ERR_MALFORMED', 'the request path holds dot segments, backslashes or escaped unreserved characters')
  const needed = await options.requires({ method: request.method, url: request.url, agent: verified })
  if (needed === false) return { ok: true, approval: null }
  if (verified.agentClaims === null) return refuse(403, 'ERR_NOT_AUTHORIZED', 'an approval needs the agent\'s claims in its token')
  // A method no approval can name (httpCommand takes letters only; HTTP allows M-SEARCH and other tokens).
  if (!/^[A-Za-z]{1,32}$/.test(request.method)) return refuse(400, 'ERR_MALFORMED', 'the request method is not one an approval can name')
  const call = httpApprovalCall(verified, request.target, request.method, request.url, request.body)
  const values = header(request.headers, APPROVAL_HEADER)
  if (values.length > 0) {
    try {
      if (values.length > 1 || !/^[A-Za-z0-9_-]{1,174763}$/.test(values[0]!)) throw new AgentIdError('ERR_MALFORMED', 'the Agentid-Approval header must be one base64url value')
      const approval = await verifier.verifyApproval(Buffer.from(values[0]!, 'base64url').toString('utf8'), { call })
      if (approval.call.group !== needed.group) return refuse(403, 'ERR_APPROVAL_MISMATCH', 'the approval is for another approver group')
      return { ok: true, approval }
    } catch (error) {
      const code = error instanceof AgentIdError ? error.code : 'ERR_INTERNAL'
      return refuse(code === 'ERR_STATUS_UNAVAILABLE' ? 503 : 403, code, 'the approval does not verify for this request')
    }
  }
  try {
    const response = await (options.fetch ?? globalThis.fetch)(`${options.issuerUrl.replace(/\/+$/, '')}/v1/approvals`, {
      method: 'POST',
      headers: { authorization: `Bearer ${options.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...call, group: needed.group, ...(options.ttlSec === undefined ? {} : { ttlSec: options.ttlSec }) }),
      redirect: 'error',
      signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
    })
    const body = (await response.json().catch(() => undefined)) as { id?: unknown; url?: unknown; expiresAt?: unknown } | undefined
    if (response.status !== 201 || typeof body?.id !== 'string' || typeof body.url !== 'string' || typeof body.expiresAt !== 'string') throw new Error(`HTTP ${response.status}`)
    return refuse(403, 'ERR_APPROVAL_REQUIRED', 'a human must approve this request; retry it with the receipt', { approvalId: body.id, approvalUrl: body.url, expiresAt: body.expiresAt })
  } catch {
    return refuse(503, 'ERR_UNAVAILABLE', 'approval required, but no approval request could be made')
  }
}
