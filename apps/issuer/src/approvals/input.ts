// Validation of the approval routes' input. Every refusal is ERR_INVALID_INPUT naming the field.
import { AgentIdError } from '@agentid/core'
import { canonicalJson, MAX_APPROVAL_ARGUMENTS_BYTES, type ApprovalUser } from '@agentid/verifier'

function invalid(field: string, message: string): never {
  throw new AgentIdError('ERR_INVALID_INPUT', `${field}: ${message}`, { details: { field } })
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function only(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(body)) if (!allowed.includes(key)) invalid(key, 'is not a known field')
}

// Control characters, bidi overrides and isolates, unpaired surrogates: never in a name a person reads.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/** A printable string of 1 to `max` characters, without control or bidi-override characters. */
export function safeText(value: unknown, field: string, max = 256): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) invalid(field, `must be a string of 1 to ${max} characters`)
  if (UNSAFE.test(value)) invalid(field, 'must not contain control, bidi-override or unpaired surrogate characters')
  if (value.trim() !== value) invalid(field, 'must not start or end with white space')
  return value
}

const GROUP = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/

function list(value: unknown, field: string, check: (v: unknown, f: string) => string): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value) || value.length > 64) invalid(field, 'must be a list of at most 64 entries')
  return [...new Set(value.map((v, i) => check(v, `${field}[${i}]`)))]
}

function group(value: unknown, field: string): string {
  if (typeof value !== 'string' || !GROUP.test(value)) invalid(field, 'must be 1 to 128 letters, digits, ".", "_", ":" or "-"')
  return value
}

function user(value: unknown, field: string): ApprovalUser | null {
  if (value === undefined || value === null) return null
  if (!isRecord(value)) invalid(field, 'must be { id, issuer? }')
  only(value, ['id', 'issuer'])
  const id = safeText(value.id, `${field}.id`, 1024)
  if (value.issuer === undefined) return { id }
  return { id, issuer: safeText(value.issuer, `${field}.issuer`, 2048) }
}

/** `POST /v1/approvers`: `{ name, controllers?, groups?, user? }`, at least one controller or group. */
export function parseApproverRequest(body: unknown): { name: string; controllers: string[]; groups: string[]; user: ApprovalUser | null } {
  if (!isRecord(body)) invalid('body', 'must be a JSON object')
  only(body, ['name', 'controllers', 'groups', 'user'])
  const name = safeText(body.name, 'name', 128)
  const controllers = list(body.controllers, 'controllers', (v, f) => safeText(v, f, 256))
  const groups = list(body.groups, 'groups', group)
  if (controllers.length === 0 && groups.length === 0) invalid('controllers', 'name at least one controller or group the approver may approve for')
  return { name, controllers, groups, user: user(body.user, 'user') }
}

/** The request an approval is asked for: what the guarded service saw. */
export interface ApprovalRequestInput {
  transactionId: string
  agent: string
  controller: string
  user: ApprovalUser | null
  target: string
  command: string
  arguments: unknown
  group: string | null
  ttlSec: number | undefined
}

/** `POST /v1/approvals`. */
export function parseApprovalRequest(body: unknown, maxTtlSec: number): ApprovalRequestInput {
  if (!isRecord(body)) invalid('body', 'must be a JSON object')
  only(body, ['transactionId', 'agent', 'controller', 'user', 'target', 'command', 'arguments', 'group', 'ttlSec'])
  const agent = safeText(body.agent, 'agent', 512)
  if (!agent.startsWith('did:')) invalid('agent', 'must be a DID')
  if (!Object.hasOwn(body, 'arguments')) invalid('arguments', 'is required (use {} for none)')
  let size: number
  try {
    size = Buffer.byteLength(canonicalJson(body.arguments), 'utf8')
  } catch {
    invalid('arguments', 'must be JSON')
  }
  if (size > MAX_APPROVAL_ARGUMENTS_BYTES) invalid('arguments', `must be at most ${MAX_APPROVAL_ARGUMENTS_BYTES} bytes in canonical form`)
  let ttlSec: number | undefined
  if (body.ttlSec !== undefined) {
    if (typeof body.ttlSec !== 'number' || !Number.isSafeInteger(body.ttlSec) || body.ttlSec < 30 || body.ttlSec > maxTtlSec) invalid('ttlSec', `must be an integer from 30 to ${maxTtlSec}`)
    ttlSec = body.ttlSec
  }
  const target = safeText(body.target, 'target', 2048)
  return {
    transactionId: body.transactionId === undefined ? '' : safeText(body.transactionId, 'transactionId', 256),
    agent,
    controller: safeText(body.controller, 'controller', 256),
    user: user(body.user, 'user'),
    target,
    command: safeText(body.command, 'command', 512),
    arguments: body.arguments,
    group: body.group === undefined || body.group === null ? null : group(body.group, 'group'),
    ttlSec,
  }
}

/** The id of an approver (`apv_…`) or an approval request (`apr_…`). */
export function parseId(value: unknown, prefix: 'apv' | 'apr'): string {
  if (typeof value !== 'string' || !new RegExp(`^${prefix}_[A-Za-z0-9_-]{22}$`).test(value)) {
    throw new AgentIdError('ERR_NOT_FOUND', prefix === 'apv' ? 'approver not found' : 'approval request not found')
  }
  return value
}

/** An enrolment token: 43 base64url characters (32 random bytes). */
export function parseEnrolToken(body: unknown): string {
  if (!isRecord(body)) invalid('body', 'must be a JSON object')
  const token = body.token
  if (typeof token !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(token)) throw new AgentIdError('ERR_NOT_FOUND', 'unknown, used or expired enrolment link')
  return token
}

/** `POST /v1/approvals/:id/decision`: `{ decision, response }` (the browser's AuthenticationResponseJSON). */
export function parseDecision(body: unknown): { decision: 'approve' | 'deny'; response: Record<string, unknown> } {
  if (!isRecord(body)) invalid('body', 'must be a JSON object')
  only(body, ['decision', 'response'])
  if (body.decision !== 'approve' && body.decision !== 'deny') invalid('decision', 'must be "approve" or "deny"')
  if (!isRecord(body.response)) invalid('response', 'must be the WebAuthn authentication response')
  const r = body.response
  if (typeof r.id !== 'string' || !/^[A-Za-z0-9_-]{1,1366}$/.test(r.id) || !isRecord(r.response)) invalid('response', 'must be the WebAuthn authentication response')
  return { decision: body.decision, response: r }
}
