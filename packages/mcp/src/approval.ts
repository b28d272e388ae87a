// Human approval of tool calls in the guard: a call the policy allows only with an approval
// (`@approval("required")`, decision reason `approval-required`) is refused with an approval request id the
// guard asks the issuer for; the agent retries with the approver's receipt (`_meta["io.agentid/approval"]`
// or the `Agentid-Approval` header), which the guard verifies offline for exactly this call before the
// policy decides again with the approval in its context.
import { AgentIdError, VerificationError } from '@agentid/core'
import type { ApprovalInput, PolicyAction, PolicyDecision, PolicyResource } from '@agentid/policy'
import type { ApprovalCall, RequestHeaders, Verifier } from '@agentid/verifier'
import { MCP_FORBIDDEN } from './challenge.js'
import type { Caller } from './types.js'

// Where a retried call carries its receipt: `params._meta[APPROVAL_META_KEY]` (the receipt object or its
// JSON), or the APPROVAL_HEADER header (base64url of the receipt's JSON). Defined in @agentid/lineage.
import { APPROVAL_HEADER, APPROVAL_META_KEY } from '@agentid/lineage'
export { APPROVAL_HEADER, APPROVAL_META_KEY }

/** Options of the guard's approvals (`McpGuardOptions.approvals`). */
export interface McpApprovalOptions {
  /** The agentid issuer's base URL: approval requests are created there. */
  issuerUrl: string
  /** This service's API key at the issuer (an orchestrator key made with `agentid orchestrators add`). */
  apiKey: string
  /** Lifetime of a request, seconds (issuer default 900). */
  ttlSec?: number
  /** Default `globalThis.fetch`. */
  fetch?: typeof globalThis.fetch
  /** Timeout of the request creation, ms. Default 5,000. */
  timeoutMs?: number
}

/** What the JSON-RPC error of a call waiting for approval carries in `error.data`. */
export interface ApprovalRequiredData {
  code: 'ERR_APPROVAL_REQUIRED'
  approvalId: string
  /** The page the approver opens. */
  approvalUrl: string
  /** ISO 8601. */
  expiresAt: string
}

export type ApprovalOutcome =
  | { allow: true; decision: PolicyDecision; approvalId: string }
  | { allow: false; rpcCode: number; message: string; data: Record<string, unknown>; reason: string }

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export function checkApprovalOptions(o: unknown): McpApprovalOptions | undefined {
  if (o === undefined) return undefined
  if (!isRecord(o) || typeof o.issuerUrl !== 'string' || !URL.canParse(o.issuerUrl) || typeof o.apiKey !== 'string' || o.apiKey === '') {
    throw new TypeError('createMcpGuard: approvals must be { issuerUrl, apiKey, ttlSec?, fetch?, timeoutMs? }')
  }
  return o as unknown as McpApprovalOptions
}

/** The receipt a retried call carries, or undefined; ERR_MALFORMED when it is there but unreadable. */
export function receiptOf(params: Record<string, unknown>, headers: RequestHeaders | undefined): unknown {
  const meta = params._meta
  if (isRecord(meta) && meta[APPROVAL_META_KEY] !== undefined) return meta[APPROVAL_META_KEY]
  let values: readonly unknown[] = []
  if (headers !== undefined && typeof (headers as { get?: unknown }).get === 'function') {
    const v = (headers as { get(name: string): string | null }).get(APPROVAL_HEADER)
    values = v === null ? [] : v.split(',').map((x) => x.trim())
  } else if (headers !== undefined) {
    const raw = (headers as Readonly<Record<string, string | readonly string[] | undefined>>)[APPROVAL_HEADER]
    values = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw]
  }
  if (values.length === 0) return undefined
  if (values.length > 1 || typeof values[0] !== 'string' || !/^[A-Za-z0-9_-]{1,174763}$/.test(values[0])) {
    throw new VerificationError('ERR_MALFORMED', 'the Agentid-Approval header must be one base64url value')
  }
  return Buffer.from(values[0], 'base64url').toString('utf8')
}

export interface ApprovalGateDeps {
  verifier: Verifier
  options: McpApprovalOptions
  /** The guard's server id: the target approvers see and receipts name is `mcp://<serverId>/<tool>`, as lineage hops name it. */
  serverId: string
  /** The policy decision for a subject (fails closed). */
  decide(caller: Caller, action: PolicyAction, resource: PolicyResource): PolicyDecision
}

/**
 * The canonical call a tool call is approved as: `target` = `mcp://<serverId>/<tool>` and `command` =
 * `tools/call <tool>`, exactly as lineage hops name the call (so a hop can carry the approval), and the
 * transaction of the call's verified lineage when it has one.
 */
export function mcpApprovalCall(caller: Caller, serverId: string, tool: string, args: unknown) {
  const user = caller.subject.user
  const transactionId = caller.subject.lineage?.transactionId
  return {
    agent: caller.agent,
    controller: caller.subject.agent.claims.controller,
    user: user ? { id: user.id, ...(user.issuer === undefined ? {} : { issuer: user.issuer }) } : null,
    target: `mcp://${serverId}/${tool}`,
    command: `tools/call ${tool}`,
    arguments: args === undefined ? null : args, // as a hop digests none (argsDigest(undefined): of null)
    ...(typeof transactionId === 'string' ? { transactionId } : {}),
  }
}

/**
 * Decides a tool call that the policy allows only with an approval: with a receipt, verifies it for this
 * call (consuming it) and asks the policy again with `subject.approval`; without one, creates an approval
 * request at the issuer and refuses with its id.
 */
export async function decideWithApproval(
  deps: ApprovalGateDeps,
  caller: Caller,
  resource: Extract<PolicyResource, { type: 'Tool' }>,
  params: Record<string, unknown>,
  headers: RequestHeaders | undefined,
  first: PolicyDecision,
): Promise<ApprovalOutcome> {
  const call = mcpApprovalCall(caller, deps.serverId, resource.name, params.arguments)
  let receipt: unknown
  try {
    receipt = receiptOf(params, headers)
    if (receipt !== undefined) {
      const verified = await deps.verifier.verifyApproval(receipt, { call })
      const approval: ApprovalInput = { approverId: verified.approver.id, approver: verified.approver.name, group: verified.call.group, selfApproval: verified.selfApproval }
      const decision = deps.decide({ ...caller, subject: { ...caller.subject, approval } }, 'callTool', resource)
      if (decision.allowed) return { allow: true, decision, approvalId: verified.requestId }
      return { allow: false, rpcCode: MCP_FORBIDDEN, message: 'Forbidden: denied by policy', data: { code: 'ERR_NOT_AUTHORIZED', reason: decision.reason, policies: [...decision.policies] }, reason: decision.reason }
    }
  } catch (error) {
    const code = error instanceof AgentIdError ? error.code : 'ERR_INTERNAL'
    return { allow: false, rpcCode: MCP_FORBIDDEN, message: 'Forbidden: the approval does not verify for this call', data: { code }, reason: 'approval-invalid' }
  }
  // No receipt: ask the issuer for an approval of exactly this call.
  try {
    const o = deps.options
    const response = await (o.fetch ?? globalThis.fetch)(`${o.issuerUrl.replace(/\/+$/, '')}/v1/approvals`, {
      method: 'POST',
      headers: { authorization: `Bearer ${o.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...call, group: first.approval?.group ?? null, ...(o.ttlSec === undefined ? {} : { ttlSec: o.ttlSec }) }),
      redirect: 'error',
      signal: AbortSignal.timeout(o.timeoutMs ?? 5000),
    })
    const body = (await response.json().catch(() => undefined)) as { id?: unknown; url?: unknown; expiresAt?: unknown; call?: ApprovalCall } | undefined
    if (response.status !== 201 || typeof body?.id !== 'string' || typeof body.url !== 'string' || typeof body.expiresAt !== 'string') {
      throw new AgentIdError('ERR_UNAVAILABLE', `the issuer refused the approval request (HTTP ${response.status})`)
    }
    const data: ApprovalRequiredData = { code: 'ERR_APPROVAL_REQUIRED', approvalId: body.id, approvalUrl: body.url, expiresAt: body.expiresAt }
    return { allow: false, rpcCode: MCP_FORBIDDEN, message: 'Approval required: a human must approve this call', data: { ...data }, reason: 'approval-required' }
  } catch {
    return { allow: false, rpcCode: MCP_FORBIDDEN, message: 'Forbidden: approval required, but no approval request could be made', data: { code: 'ERR_UNAVAILABLE' }, reason: 'approval-unavailable' }
  }
}
