// Public API of @agentid/client.
export { generateAgentKey } from './keys.js'
export type { AgentKey } from './keys.js'
export { spawn, renew, fetchIssuerDid, registerDelegation } from './issuer.js'
export type { SpawnOptions, RenewOptions, SpawnedAgent, IssuedIdentity, IssuerConnection, Fetch, RegisterDelegationOptions, RegisteredDelegation } from './issuer.js'
export { createPresentation, PRESENTATION_TYP } from './presentation.js'
export type { CreatePresentationOptions } from './presentation.js'
export { signerFromJwk, createProofOfPossession } from '@agentid/core'
export type { Signer, CreateProofOptions, ProofPurpose, Ed25519PrivateJwk, Ed25519PublicJwk, AgentClaims } from '@agentid/core'
