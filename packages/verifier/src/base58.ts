// Re-exported so that the verifier's key parsing uses the same audited codec as @agentid/core.
export { base58 } from '@scure/base'
