// The part of @agentid/policy (contract B) the guard uses, stated structurally so the guard accepts
// any engine with that shape. Once @agentid/policy exports these names they are the same types.
import type { AgentClaims, AgentIdError, DataAccessClass } from '@agentid/core'

/** An action a policy decides on. */
export type PolicyAction = 'callTool' | 'listTools' | 'readResource' | 'getPrompt' | 'invokeWorkflow'

/** The entity an action is on. */
export type PolicyResource =
  | { type: 'McpServer'; id: string }
  | { type: 'Tool'; server: string; name: string }
  | { type: 'Resource'; server: string; uri: string }
  | { type: 'Prompt'; server: string; name: string }
  | { type: 'Workflow'; id: string }

/** What the verifier established about the caller. */
export interface AuthorizationSubject {
  agent: { did: string; claims: AgentClaims }
  user?: { id: string; issuer?: string } | null
  delegation?: { root: string; depth: number } | null
  authorizationDetails?: readonly {
    type: string
    actions: readonly string[]
    locations: readonly string[]
    datatypes?: readonly string[]
    identifiers?: readonly string[]
  }[]
  requestedDataClass?: DataAccessClass
  time?: number
}

/** A policy decision and the policies that determined it. */
export interface PolicyDecision {
  readonly allowed: boolean
  readonly decision: 'allow' | 'deny'
  readonly policies: readonly string[]
  readonly errors: readonly string[]
  readonly reason: string
}

/** A policy engine (`loadPolicyEngine` of @agentid/policy). Only `authorize` is called by the guard. */
export interface PolicyEngine {
  authorize(subject: AuthorizationSubject, action: string, resource: PolicyResource): PolicyDecision
  reload?(): Promise<{ ok: true; policies: number } | { ok: false; error: AgentIdError }>
  readonly policyCount?: number
  readonly version?: number
}
