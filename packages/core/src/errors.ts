/** Codes a verifier may return. Part of the public API: add, never rename. */
export type VerificationErrorCode =
  | 'ERR_MALFORMED'
  | 'ERR_UNSUPPORTED_ALG'
  | 'ERR_SIGNATURE_INVALID'
  | 'ERR_UNTRUSTED_ISSUER'
  | 'ERR_EXPIRED'
  | 'ERR_NOT_YET_VALID'
  | 'ERR_REVOKED'
  | 'ERR_STATUS_UNAVAILABLE'
  | 'ERR_DID_UNRESOLVABLE'
  | 'ERR_AUDIENCE_MISMATCH'
  | 'ERR_REPLAY'
  | 'ERR_DELEGATION_BROKEN'
  | 'ERR_DELEGATION_ESCALATION'
  | 'ERR_DELEGATION_DEPTH'
  | 'ERR_NOT_AUTHORIZED'
  | 'ERR_KEY_MISMATCH'
  /** An approval receipt that is not for the call received (a changed argument, another tool, agent or transaction). */
  | 'ERR_APPROVAL_MISMATCH'
  /** An approval receipt recording that the approver denied the call. */
  | 'ERR_APPROVAL_DENIED'
  /** A WebAuthn assertion without the user-verification (UV) or user-presence (UP) flag. */
  | 'ERR_USER_NOT_VERIFIED'
  /** A lineage whose entries do not hold together: a gap, a reorder, a splice, a signer without custody. */
  | 'ERR_LINEAGE_BROKEN'
  /** A lineage whose last hop is not for this call: another command or other arguments than signed. */
  | 'ERR_LINEAGE_MISMATCH'
  /** A lineage naming an actor whose identity credential was neither sent nor known to the verifier. */
  | 'ERR_LINEAGE_CREDENTIAL_MISSING'
  /** A credential without a valid proof that its issuer logged it in a trusted transparency log (witness quorum included). */
  | 'ERR_NOT_LOGGED'

/** Codes for everything that is not a verification verdict (bad requests, missing records, ...). */
export type AgentIdErrorCode =
  | VerificationErrorCode
  | 'ERR_INVALID_INPUT'
  | 'ERR_UNAUTHENTICATED'
  | 'ERR_FORBIDDEN'
  | 'ERR_NOT_FOUND'
  | 'ERR_CONFLICT'
  | 'ERR_PAYLOAD_TOO_LARGE'
  | 'ERR_UNSUPPORTED_MEDIA_TYPE'
  | 'ERR_RATE_LIMITED'
  | 'ERR_UNAVAILABLE'
  /** The request's headers are larger than the server reads (HTTP 431). */
  | 'ERR_HEADERS_TOO_LARGE'
  /** The request did not arrive in time (HTTP 408). */
  | 'ERR_REQUEST_TIMEOUT'
  | 'ERR_INTERNAL'
  /** A policy folder that does not parse or does not validate against the agentid Cedar schema. */
  | 'ERR_POLICY_INVALID'
  /** Attestation evidence that failed a check (`details.check` names it); nothing was issued or stored. */
  | 'ERR_ATTESTATION_REJECTED'
  /** The call is permitted only with a human's approval; `details.approvalId` names the request to wait for. */
  | 'ERR_APPROVAL_REQUIRED'

export const VERIFICATION_ERROR_CODES: readonly VerificationErrorCode[] = Object.freeze([
  'ERR_MALFORMED',
  'ERR_UNSUPPORTED_ALG',
  'ERR_SIGNATURE_INVALID',
  'ERR_UNTRUSTED_ISSUER',
  'ERR_EXPIRED',
  'ERR_NOT_YET_VALID',
  'ERR_REVOKED',
  'ERR_STATUS_UNAVAILABLE',
  'ERR_DID_UNRESOLVABLE',
  'ERR_AUDIENCE_MISMATCH',
  'ERR_REPLAY',
  'ERR_DELEGATION_BROKEN',
  'ERR_DELEGATION_ESCALATION',
  'ERR_DELEGATION_DEPTH',
  'ERR_NOT_AUTHORIZED',
  'ERR_KEY_MISMATCH',
  'ERR_APPROVAL_MISMATCH',
  'ERR_APPROVAL_DENIED',
  'ERR_USER_NOT_VERIFIED',
  'ERR_LINEAGE_BROKEN',
  'ERR_LINEAGE_MISMATCH',
  'ERR_LINEAGE_CREDENTIAL_MISSING',
  'ERR_NOT_LOGGED',
])

export interface ErrorOptions {
  cause?: unknown
  /** Structured, non-secret facts about the failure (field names, link index, ...). */
  details?: Record<string, unknown>
}

/**
 * Base class of every error agentid throws on purpose. Switch on `code`, never on the message.
 * @example
 * try { await verifier.verifyAgentCredential(jwt) } catch (e) { if (e instanceof AgentIdError && e.code === 'ERR_REVOKED') deny() }
 */
export class AgentIdError extends Error {
  readonly code: AgentIdErrorCode
  readonly details: Record<string, unknown>
  override name = 'AgentIdError'

  constructor(code: AgentIdErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.details = options.details ?? {}
  }
}

/**
 * A credential, token, chain or request failed verification. Thrown, never returned: forgetting to catch denies.
 * @example
 * if (err instanceof VerificationError && err.code === 'ERR_EXPIRED') renew()
 */
export class VerificationError extends AgentIdError {
  declare readonly code: VerificationErrorCode
  override name = 'VerificationError'

  constructor(code: VerificationErrorCode, message: string, options: ErrorOptions = {}) {
    super(code, message, options)
  }
}

/** True when `value` is an AgentIdError. */
export function isAgentIdError(value: unknown): value is AgentIdError {
  return value instanceof AgentIdError
}

/**
 * Throws the error for an invalid member `field` of untrusted input, with the code the caller chose:
 * ERR_INVALID_INPUT (an AgentIdError: bad API input) or a verification code (a VerificationError:
 * a credential that does not hold together). `details.field` names the member.
 * @example
 * if (typeof body.name !== 'string') throwFieldError('ERR_INVALID_INPUT', 'name', 'must be a string')
 */
export function throwFieldError(code: AgentIdErrorCode, field: string, message: string): never {
  const options = { details: { field } }
  if (code === 'ERR_INVALID_INPUT') throw new AgentIdError(code, `${field}: ${message}`, options)
  throw new VerificationError(code as VerificationErrorCode, `${field}: ${message}`, options)
}
