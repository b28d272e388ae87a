import type { AgentClaims, AgentIdError, DataAccessClass } from '@agentid/core'

/** The actions of the agentid Cedar schema (`AgentId::Action::"<name>"`). */
export type PolicyAction = 'callTool' | 'listTools' | 'readResource' | 'getPrompt' | 'invokeWorkflow'

/**
 * What a request acts on. Tools, resources and prompts belong to an MCP server; their Cedar entity id is
 * `"<server>/<name>"` (`"<server>/<uri>"` for resources) with the `McpServer` as parent. A server id must not
 * contain `/`.
 */
export type PolicyResource =
  | { type: 'McpServer'; id: string }
  | { type: 'Tool'; server: string; name: string }
  | { type: 'Resource'; server: string; uri: string }
  | { type: 'Prompt'; server: string; name: string }
  | { type: 'Workflow'; id: string }

/** One RFC 9396 `authorization_details` entry, as the verifier established it. */
export interface AuthorizationDetailInput {
  type: string
  actions: readonly string[]
  locations: readonly string[]
  datatypes?: readonly string[]
  identifiers?: readonly string[]
}

/** A verified approval, as policies see it (`context.approval`). */
export interface ApprovalInput {
  /** The approver's id at the issuer (`apv_…`). */
  approverId: string
  /** The approver's name, as certified. */
  approver: string
  /** The approver group the request named, or null (the agent's controller's approvers). */
  group: string | null
  /** True when the approver is the user the agent acts for. */
  selfApproval: boolean
}

/** An actor of a lineage entry: its DID and the claims of its verified identity credential. */
export interface LineageActorInput {
  did: string
  claims: { purpose: string; controller: string; policyTier?: string }
}

/** A verified approval of a lineage hop, as `verifier.verifyApproval` returns it (only these members are read). */
export interface LineageApprovalInput {
  approver: { id: string; name: string }
  call: { agent: string; command: string; group: string | null }
  selfApproval: boolean
}

/** One verified entry of a lineage, as `verifier.verifyLineage` returns it (only these members are read). */
export type LineageEntryInput =
  | {
      kind: 'hop'; index: number; actor: LineageActorInput; target: string; command: string; callee: string | null
      /**
       * The hop's human approval: only `verified` is read, the approval `verifier.verifyLineage` checked with
       * `verifyApproval` for this hop (null when the hop names one but no receipt verified: no approval).
       */
      approval?: { verified: LineageApprovalInput | null } | null
    }
  /** A receipt: the callee of entry `answers` (a hop) answered with `outcome`. */
  | { kind: 'receipt'; index: number; actor: LineageActorInput; answers: number; outcome: string }

/**
 * The verified chain of custody of the call (`context.lineage`). `verifier.verifyLineage`'s result
 * (`VerifiedLineage`) fits as is; its last hop is the call being decided.
 */
export interface LineageInput {
  transactionId: string
  /** What entry 0 names as the transaction's origin (`request`, `grant`, `approval`, …), asserted by the first actor. */
  origin: { kind: string | null }
  /** The user the hops name, or null. */
  user: string | null
  /** Every entry in order, hops and receipts. */
  entries: readonly LineageEntryInput[]
}

/** What the verifier established about the caller ("verifiedContext"). */
export interface AuthorizationSubject {
  agent: { did: string; claims: AgentClaims }
  user?: { id: string; issuer?: string } | null
  delegation?: { root: string; depth: number } | null
  authorizationDetails?: readonly AuthorizationDetailInput[]
  requestedDataClass?: DataAccessClass
  /**
   * A human's approval of this very call, verified (`verifier.verifyApproval`) before the decision: what
   * lets a permit marked `@approval("required")` allow, and what policies read as `context.approval`.
   */
  approval?: ApprovalInput | null
  /**
   * The verified lineage of the call (`verifier.verifyLineage`, done by the MCP guard and the gateway before
   * the decision): what policies read as `context.lineage` (absent when the call carried none).
   */
  lineage?: LineageInput | null
  /** Unix seconds; default: the engine's clock. */
  time?: number
}

/** Why a decision came out as it did. */
export type PolicyDecisionReason =
  /** A permit policy allowed it, or a forbid policy denied it: `policies` names them. */
  | 'policy'
  /** No permit policy applied (deny by default). */
  | 'no-matching-policy'
  /** The action is not one of {@link PolicyAction}. */
  | 'unknown-action'
  /** A malformed subject or resource, or a resource type the action does not apply to. */
  | 'invalid-request'
  /** Cedar refused the request as a whole (never expected; denies). */
  | 'evaluation-failed'
  /**
   * Every permit that would allow it is marked `@approval("required")` and the request carries no approval
   * for it: `approval.group` says whose approval is needed. The only denial a human can turn into an allow.
   */
  | 'approval-required'

/** The answer of {@link PolicyEngine.authorize}. */
export interface PolicyDecision {
  readonly allowed: boolean
  readonly decision: 'allow' | 'deny'
  /** Ids of the determining policies: the `@id("...")` annotation, else `"<file>#<n>"`. */
  readonly policies: readonly string[]
  /** Evaluation errors (a policy that erred is skipped by Cedar) or why the request was refused before Cedar. */
  readonly errors: readonly string[]
  readonly reason: PolicyDecisionReason
  /**
   * With reason `approval-required` (needed, absent) or an allow that rests on an approval (`approved: true`):
   * the approver group the permit named, or null for the approvers of the agent's controller.
   */
  readonly approval?: { readonly group: string | null; readonly approved: boolean }
}

/** One problem found in a policy folder. */
export interface PolicyDiagnostic {
  /** Path of the `.cedar` file relative to the folder, with `/` separators ('' for the folder itself). */
  readonly file: string
  /** The policy id, when the problem belongs to one policy. */
  readonly policy?: string
  /** 1-based line and column in the file, when known. */
  readonly line?: number
  readonly column?: number
  readonly severity: 'error' | 'warning'
  readonly message: string
}

/** The result of {@link validatePolicyDirectory}. */
export interface PolicyValidation {
  readonly ok: boolean
  readonly policies: number
  readonly diagnostics: readonly PolicyDiagnostic[]
}

/** A logger shaped like pino's. */
export interface PolicyLogger {
  info(o: object, m?: string): void
  error(o: object, m?: string): void
}

/** Options of {@link loadPolicyEngine}. */
export interface PolicyEngineOptions {
  /** The policy folder: every `*.cedar` file under it, recursively (hidden entries skipped). */
  dir: string
  logger?: PolicyLogger
  /** Decisions memoized per engine (LRU); 0 disables the memo. Default 10,000. */
  memoSize?: number
  /** Milliseconds since the epoch, like `Date.now` (the default). */
  clock?: () => number
}

/** A loaded, validated policy set that answers authorization requests. */
export interface PolicyEngine {
  /** Synchronous and total: malformed input denies, it never throws. */
  authorize(subject: AuthorizationSubject, action: string, resource: PolicyResource): PolicyDecision
  /** Re-reads the folder. On failure the last good set stays in force and the error is logged. */
  reload(): Promise<{ ok: true; policies: number } | { ok: false; error: AgentIdError }>
  readonly policyCount: number
  /** Bumps on every successful (re)load. */
  readonly version: number
}
