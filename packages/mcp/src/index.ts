// Public API of @agentid/mcp.
export { createMcpGuard } from './guard.js'
export type { McpGuard, McpGuardOptions, Caller, AuditEvent, NodeHandlerOptions, McpServerLike } from './types.js'
export { MCP_FORBIDDEN } from './challenge.js'
export type { GuardChallenge } from './challenge.js'
export { PRESENTATION_SCHEME } from './authenticate.js'
export { APPROVAL_META_KEY, APPROVAL_HEADER, mcpApprovalCall } from './approval.js'
export type { McpApprovalOptions, ApprovalRequiredData } from './approval.js'
export type { PolicyAction, PolicyResource, AuthorizationSubject, PolicyDecision, PolicyEngine } from '@agentid/policy'
