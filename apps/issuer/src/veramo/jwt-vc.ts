// The JWT claims of an identity-style credential exactly as Veramo's createVerifiableCredential
// (proofFormat 'jwt', did-jwt-vc 4 `createVerifiableCredentialJwt`, did-jwt 8 `createJWT`) builds them
// from the engine's input, without its deep copies, multiformats base64url and decode of its own output
// (about a third of the event loop's work per spawn). test/engine.test.ts checks byte equality of the
// signed JWT with Veramo's for every shape of input the engine accepts; the engine refuses other shapes.
import { VC_CONTEXT_V1 } from '@agentid/core'

/** What the engine signs as a JWT VC (VC data model 1.1 field names; the issuer is always the engine's). */
export interface JwtCredentialInput {
  /** Must start with `https://www.w3.org/2018/credentials/v1`. */
  '@context': readonly string[]
  /** Must contain `VerifiableCredential`. */
  type: readonly string[]
  /** Becomes the JWT `jti`. */
  id: string
  /** `id` becomes the JWT `sub`; at least one other claim is required (did-jwt-vc refuses an id-only subject). */
  credentialSubject: { id: string; [claim: string]: unknown }
  credentialStatus?: Record<string, unknown>
  /** ISO 8601; becomes `nbf`. One of `issuanceDate` and `validFrom` is required. */
  issuanceDate?: string
  /** VC 2.0 spelling of `issuanceDate`. */
  validFrom?: string
  /** ISO 8601; becomes `exp`. */
  expirationDate?: string
  /** VC 2.0 spelling of `expirationDate`. */
  validUntil?: string
}

// The members the encoding below covers; anything else would take a path of did-jwt-vc it does not.
const KNOWN = new Set(['@context', 'type', 'id', 'credentialSubject', 'credentialStatus', 'issuanceDate', 'validFrom', 'expirationDate', 'validUntil'])

/**
 * Checks `input` (a malformed credential is a programming error: `TypeError`) and returns the JWT
 * header and claims in did-jwt's member order: `{ kid, alg, typ }` and `{ exp?, vc, sub, jti, nbf, iss }`
 * (did-jwt puts its `{ iat, exp }` defaults first; did-jwt-vc sets `iat` undefined, so it is dropped),
 * `vc` holding `@context` and `type` de-duplicated in order, the subject's claims without its `id`,
 * and `credentialStatus` when given.
 */
export function jwtVcClaims(input: JwtCredentialInput, issuerDid: string, keyId: string): { header: { kid: string; alg: 'EdDSA'; typ: 'JWT' }; claims: Record<string, unknown> } {
  if (input === null || typeof input !== 'object') throw new TypeError('issueJwtCredential: credential must be an object')
  for (const key of Object.keys(input)) {
    if (key === 'issuer' || key === 'proof') throw new TypeError('issueJwtCredential: issuer and proof are set by the engine')
    if (!KNOWN.has(key)) throw new TypeError(`issueJwtCredential: unsupported member ${key}`)
  }
  const context = input['@context']
  if (!Array.isArray(context) || context[0] !== VC_CONTEXT_V1 || !context.every((c) => typeof c === 'string')) {
    throw new TypeError(`issueJwtCredential: @context must be strings starting with ${VC_CONTEXT_V1}`)
  }
  if (!Array.isArray(input.type) || !input.type.includes('VerifiableCredential') || !input.type.every((t) => typeof t === 'string')) {
    throw new TypeError('issueJwtCredential: type must be strings including VerifiableCredential')
  }
  if (typeof input.id !== 'string' || input.id.length === 0) throw new TypeError('issueJwtCredential: id is required')
  const subject = input.credentialSubject
  if (subject === null || typeof subject !== 'object' || Array.isArray(subject) || typeof subject.id !== 'string' || subject.id.length === 0 || Object.keys(subject).length < 2) {
    throw new TypeError('issueJwtCredential: credentialSubject needs an id and at least one claim')
  }
  const status = input.credentialStatus
  if (status !== undefined && (status === null || typeof status !== 'object' || Array.isArray(status))) throw new TypeError('issueJwtCredential: credentialStatus must be an object')
  const nbf = numericDate(input.issuanceDate ?? input.validFrom, 'issuanceDate')
  const expiration = input.expirationDate ?? input.validUntil
  const exp = expiration === undefined ? undefined : numericDate(expiration, 'expirationDate')

  const { id: sub, ...claims } = subject
  const vc: Record<string, unknown> = { '@context': [...new Set(context)], type: [...new Set(input.type)], credentialSubject: claims }
  if (status !== undefined) vc.credentialStatus = status
  return {
    header: { kid: keyId, alg: 'EdDSA', typ: 'JWT' },
    claims: exp === undefined ? { vc, sub, jti: input.id, nbf, iss: issuerDid } : { exp, vc, sub, jti: input.id, nbf, iss: issuerDid },
  }
}

// Date.parse, in whole seconds; did-jwt-vc also refuses a time from the year 5138 on (>= 10^11 s).
function numericDate(value: unknown, field: string): number {
  const ms = typeof value === 'string' && value.length > 0 ? Date.parse(value) : Number.NaN
  const sec = Math.floor(ms / 1000)
  if (Number.isNaN(ms) || sec >= 100_000_000_000) throw new TypeError(`issueJwtCredential: ${field} must be an ISO 8601 date`)
  return sec
}
