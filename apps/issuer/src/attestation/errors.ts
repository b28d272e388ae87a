import { AgentIdError } from '@agentid/core'

/** Refuses attestation evidence: `ERR_ATTESTATION_REJECTED` with `details.check` naming the failed check (e.g. `eat.nonce`). */
export function reject(check: string, message: string, cause?: unknown): never {
  throw new AgentIdError('ERR_ATTESTATION_REJECTED', `attestation ${check}: ${message}`, { details: { check }, ...(cause === undefined ? {} : { cause }) })
}
