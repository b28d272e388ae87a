// Public API of @agentid/verifier.
export { createVerifier } from './verifier.js'
export type { Verifier, VerifierOptions } from './verifier.js'
export type { VerifiedAgent } from './types.js'
export type { DidResolver, KeyPurpose } from './keys.js'
export type { FetchLike } from './status.js'
export { VerificationError } from '@agentid/core'
export type { VerificationErrorCode } from '@agentid/core'
