// Public API of @agentid/delegation. Everything else is internal.
export {
  isAttenuation,
  grantCovers,
  resourceCovers,
  isResourcePattern,
  parseCapabilities,
  parseCaveats,
  MAX_REMAINING_DEPTH,
} from './capability.js'
export type {
  Capability,
  Caveats,
  CaveatName,
  ConstraintValue,
  Grant,
  AttenuationResult,
  CapabilityRequest,
} from './capability.js'
export { delegate, linkHash, parseCapabilityLink, AGENT_CAPABILITY_CREDENTIAL, DEFAULT_MAX_CHAIN_LENGTH } from './credential.js'
export type { DelegateOptions, CapabilityLink } from './credential.js'
