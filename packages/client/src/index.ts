// Public API of @agentid/client.
export { generateAgentKey } from './keys.js'
export type { AgentKey } from './keys.js'
export { signerFromJwk, createProofOfPossession } from '@agentid/core'
export type { Signer, CreateProofOptions, ProofPurpose, Ed25519PrivateJwk, Ed25519PublicJwk } from '@agentid/core'
