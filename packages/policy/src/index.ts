export { AGENTID_CEDAR_SCHEMA } from './schema.js'
export { loadPolicyEngine, validatePolicyDirectory } from './engine.js'
export type {
  ApprovalInput,
  AuthorizationDetailInput,
  AuthorizationSubject,
  LineageActorInput,
  LineageApprovalInput,
  LineageEntryInput,
  LineageInput,
  PolicyAction,
  PolicyDecision,
  PolicyDecisionReason,
  PolicyDiagnostic,
  PolicyEngine,
  PolicyEngineOptions,
  PolicyLogger,
  PolicyResource,
  PolicyValidation,
} from './types.js'
