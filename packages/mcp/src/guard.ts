import { AgentIdError, VerificationError } from '@agentid/core'
import { authenticateRequest } from './authenticate.js'
import { stderrAudit } from './audit.js'
import { guardChallenge, MCP_FORBIDDEN as MCP_FORBIDDEN_CODE } from './challenge.js'
import { metadataPathFor, protectedResourceMetadata } from './metadata.js'
import { createNodeHandler } from './node-handler.js'
import { auditLineage, lineageSettings, type LineageSettings } from './lineage.js'
import type { PolicyAction, PolicyDecision, PolicyResource } from '@agentid/policy'
import type { AuditEvent, Caller, McpGuard, McpGuardOptions } from './types.js'
import { checkApprovalOptions, decideWithApproval, type ApprovalOutcome } from './approval.js'
import type { RequestHeaders } from '@agentid/verifier'

/** What the Node handler needs from its guard beyond the public methods. */
export interface GuardInternals {
  readonly guard: McpGuard
  readonly serverId: string
  readonly resource: URL
  /** Writes one audit event; false when the sink failed (the caller then denies). */
  audit(event: Omit<AuditEvent, 'time'>): boolean
  /** The guard's clock, ms since the epoch. */
  now(): number
  readonly verifier: McpGuardOptions['verifier']
  /**
   * `guard.authenticate` for a URL already parsed against the resource's origin and found on it (the node
   * handler's): the same verification without parsing the URL a second time.
   */
  authenticateOnOrigin(request: { method: string; url: string; headers: RequestHeaders }): Promise<Caller>
  /** Lineage verification settings (`requireLineage`, `lineageAgent`). */
  readonly lineage: LineageSettings
  /** The policy decision, failing closed on a throwing engine or a malformed answer; no audit. */
  decide(caller: Caller, action: PolicyAction, resource: PolicyResource): PolicyDecision
  /**
   * With `approvals` configured: decides a tool call denied only for lack of approval (verifies the
   * receipt it carries, or asks the issuer for an approval) and audits the outcome; else undefined.
   */
  approve?: (caller: Caller, resource: Extract<PolicyResource, { type: 'Tool' }>, params: Record<string, unknown>, headers: RequestHeaders | undefined, first: PolicyDecision, sessionId?: string) => Promise<ApprovalOutcome>
}

/** The ISO 8601 form of the last whole second {@link isoTime} formatted, up to its `.`: audit events come many a second. */
let lastSecond: { second: number; prefix: string } = { second: Number.NaN, prefix: '' }

/**
 * `new Date(ms).toISOString()`, the date and time of day formatted once per second (`YYYY-MM-DDTHH:mm:ss.`) and
 * the milliseconds appended. Years outside 0–9999 (a longer form) are formatted whole each time.
 */
export function isoTime(ms: number): string {
  const t = Math.trunc(ms) // as Date takes a time value (TimeClip)
  const second = Math.floor(t / 1000)
  if (second !== lastSecond.second) {
    const iso = new Date(t).toISOString() // throws RangeError for an invalid time, as before
    if (iso.length !== 24) return iso
    lastSecond = { second, prefix: iso.slice(0, 20) }
  }
  const milli = t - second * 1000
  return `${lastSecond.prefix}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`
}

/** The `lineage` member of a decision's audit event: the verified lineage the caller's subject carries. */
function lineageMember(caller: Caller): { lineage?: AuditEvent['lineage'] } {
  const lineage = auditLineage(caller.subject.lineage)
  return lineage === undefined ? {} : { lineage }
}

/** A deny the guard makes itself (the engine threw or answered nonsense, or the audit sink failed): `errors` says which. */
function denied(error: string): PolicyDecision {
  return Object.freeze({ allowed: false, decision: 'deny' as const, policies: Object.freeze([]), errors: Object.freeze([error]), reason: 'evaluation-failed' as const })
}

/** The tool name, resource URI or prompt name a decision is about. */
export function targetOf(resource: PolicyResource): string | null {
  switch (resource.type) {
    case 'Tool':
    case 'Prompt':
      return resource.name
    case 'Resource':
      return resource.uri
    case 'McpServer':
    case 'Workflow':
      return resource.id
    default:
      return null
  }
}

function checkOptions(options: McpGuardOptions): URL {
  if (!options || typeof options !== 'object') throw new TypeError('createMcpGuard: options are required')
  const { verifier, policy, serverId, resource, authorizationServers } = options
  if (!verifier || typeof verifier.verifyRequest !== 'function' || typeof verifier.verifyPresentation !== 'function') {
    throw new TypeError('createMcpGuard: verifier (createVerifier of @agentid/verifier) is required')
  }
  if (!policy || typeof policy.authorize !== 'function') throw new TypeError('createMcpGuard: policy (a PolicyEngine) is required')
  if (typeof serverId !== 'string' || serverId === '' || serverId.includes('/')) throw new TypeError('createMcpGuard: serverId must be a non-empty string without "/"')
  let url: URL
  try {
    url = new URL(resource)
  } catch {
    throw new TypeError('createMcpGuard: resource must be an absolute URL')
  }
  const normal = url.href === resource || url.href === `${resource}/`
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.hash !== '' || url.search !== '' || !normal) {
    throw new TypeError('createMcpGuard: resource must be an http(s) URL without query or fragment, in normal form')
  }
  if (!Array.isArray(authorizationServers) || authorizationServers.length === 0 || !authorizationServers.every((s) => typeof s === 'string' && URL.canParse(s))) {
    throw new TypeError('createMcpGuard: authorizationServers must be a non-empty list of URLs')
  }
  if (options.audit !== undefined && typeof options.audit !== 'function') throw new TypeError('createMcpGuard: audit must be a function')
  if (options.clock !== undefined && typeof options.clock !== 'function') throw new TypeError('createMcpGuard: clock must be a function')
  checkApprovalOptions(options.approvals)
  return url
}

/**
 * Creates the guard of one MCP endpoint: authenticates every HTTP request with @agentid/verifier,
 * authorizes every tool call, resource read and prompt with the policy engine before the SDK server
 * sees it, filters list results to what the caller may use, and writes one audit event per decision.
 * @example
 * const guard = createMcpGuard({ verifier, policy, serverId: 'erp', resource: 'https://erp.example/mcp', authorizationServers: ['https://id.example'] })
 * http.createServer(guard.nodeHandler({ createServer: () => buildMcpServer() })).listen(8080)
 */
export function createMcpGuard(options: McpGuardOptions): McpGuard {
  const resourceUrl = checkOptions(options)
  const { verifier, policy, serverId, resource } = options
  const authorizationServers = Object.freeze([...options.authorizationServers])
  const sink = options.audit ?? stderrAudit
  const now = options.clock ?? Date.now
  const metadataPath = metadataPathFor(resourceUrl)
  const lineage = lineageSettings(options.requireLineage, options.lineageAgent)
  const metadataUrl = `${resourceUrl.origin}${metadataPath}`

  function audit(event: Omit<AuditEvent, 'time'>): boolean {
    try {
      sink(Object.freeze({ time: isoTime(now()), ...event }))
      return true
    } catch (error) {
      // An unrecorded decision is not made: the caller denies.
      process.stderr.write(`${JSON.stringify({ msg: 'mcp.audit_failed', error: error instanceof Error ? error.name : typeof error })}\n`)
      return false
    }
  }

  function decide(caller: Caller, action: PolicyAction, target: PolicyResource): PolicyDecision {
    let decision: PolicyDecision
    try {
      decision = policy.authorize(caller.subject, action, target)
    } catch (error) {
      return denied(`engine-error: ${error instanceof AgentIdError ? error.code : 'ERR_INTERNAL'}`)
    }
    if (!decision || decision.allowed !== true || decision.decision !== 'allow') {
      return decision && decision.allowed === false ? decision : denied('invalid-decision')
    }
    return decision
  }

  function authorize(caller: Caller, action: PolicyAction, target: PolicyResource, sessionId?: string): PolicyDecision {
    const decision = decide(caller, action, target)
    const recorded = audit({
      agent: caller.agent,
      user: caller.user,
      server: target.type === 'McpServer' ? target.id : 'server' in target ? target.server : serverId,
      action,
      target: targetOf(target),
      decision: decision.allowed ? 'allow' : 'deny',
      policies: [...decision.policies],
      reason: decision.reason,
      ...(sessionId === undefined ? {} : { sessionId }),
      ...lineageMember(caller),
    })
    return recorded ? decision : denied('audit-failed')
  }

  function filterTools<T extends { name: string }>(caller: Caller, tools: readonly T[], server = serverId, sessionId?: string): T[] {
    const shown = tools.filter((tool) => typeof tool?.name === 'string' && decide(caller, 'callTool', { type: 'Tool', server, name: tool.name }).allowed)
    const recorded = audit({
      agent: caller.agent,
      user: caller.user,
      server,
      action: 'listTools',
      target: null,
      decision: 'allow',
      policies: [],
      reason: 'filtered',
      shown: shown.length,
      total: tools.length,
      ...(sessionId === undefined ? {} : { sessionId }),
    })
    return recorded ? shown : []
  }

  const guard: McpGuard = {
    metadataPath,
    metadataUrl,
    protectedResourceMetadata: () => protectedResourceMetadata(resource, authorizationServers),
    authenticate(request) {
      if (!request || typeof request.method !== 'string' || typeof request.url !== 'string' || !request.headers) {
        return Promise.reject(new TypeError('authenticate: { method, url, headers } is required'))
      }
      const parsed = new URL(request.url, resourceUrl.origin)
      // The DPoP htu is checked against this resource's origin, never one the request-target names (`//host/…`).
      if (parsed.origin !== resourceUrl.origin) {
        return Promise.reject(new VerificationError('ERR_AUDIENCE_MISMATCH', 'the request URL is not on the resource origin', { details: { dpopError: 'invalid_dpop_proof' } }))
      }
      const url = parsed.href
      return authenticateRequest(verifier, resource, { method: request.method, url, headers: request.headers })
    },
    challenge: (error) => guardChallenge(error, metadataUrl),
    authorize,
    filterTools,
    nodeHandler: (handlerOptions) => createNodeHandler(internals, handlerOptions),
  }
  const approvals = checkApprovalOptions(options.approvals)
  const approve: GuardInternals['approve'] = approvals === undefined ? undefined : async (caller, tool, params, headers, first, sessionId) => {
    const outcome = await decideWithApproval({ verifier, options: approvals, serverId, decide }, caller, tool, params, headers, first)
    const recorded = audit({
      agent: caller.agent,
      user: caller.user,
      server: tool.server,
      action: 'callTool',
      target: tool.name,
      decision: outcome.allow ? 'allow' : 'deny',
      policies: outcome.allow ? [...outcome.decision.policies] : [],
      reason: outcome.allow ? 'approved' : outcome.reason,
      ...(outcome.allow ? { approvalId: outcome.approvalId } : typeof outcome.data.approvalId === 'string' ? { approvalId: outcome.data.approvalId } : {}),
      ...(sessionId === undefined ? {} : { sessionId }),
      ...lineageMember(caller),
    })
    if (!recorded && outcome.allow) return { allow: false, rpcCode: MCP_FORBIDDEN_CODE, message: 'Forbidden', data: { code: 'ERR_INTERNAL' }, reason: 'audit-failed' }
    return outcome
  }
  const authenticateOnOrigin: GuardInternals['authenticateOnOrigin'] = (request) => authenticateRequest(verifier, resource, request)
  const internals: GuardInternals = { guard, serverId, resource: resourceUrl, audit, decide, now, verifier, authenticateOnOrigin, lineage, ...(approve ? { approve } : {}) }
  return Object.freeze(guard)
}
