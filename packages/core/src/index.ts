// Public API of @agentid/core. Everything else is internal.
export { AgentIdError, VerificationError, VERIFICATION_ERROR_CODES, isAgentIdError, throwFieldError } from './errors.js'
export type { AgentIdErrorCode, VerificationErrorCode, ErrorOptions } from './errors.js'
export { base64urlEncode, base64urlDecode, base64urlDecodeInput } from './base64url.js'
export { parseStrictJson, parseStrictJsonObject, decodeUtf8Strict } from './json.js'
export { isPrintableText } from './text.js'
export { CLAIM_LIMITS, CAPABILITY_LIMITS, MAX_JWT_PAYLOAD_DEPTH, MAX_DI_BYTES, MAX_DI_DEPTH, MAX_DI_NODES } from './limits.js'
export { isPlainResourceIdentifier } from './resource.js'
export { readBodyCapped } from './body.js'
export { isNumericDate, MAX_NUMERIC_DATE } from './time.js'
export type { BodyLike } from './body.js'
export { closeLingering, lingerAfterAnswer, LINGER_MAX_MS, LINGER_MAX_BYTES } from './linger.js'
export type { LingerOptions } from './linger.js'
export type { StrictJsonOptions } from './json.js'
export { hasSmallOrderR, decodeBase58btc, encodeDidKey, decodeDidKey, decodeDidKeyUrl, parseDidKeySyntax, isDidKeySyntax, assertEd25519PublicKey } from './did-key.js'
export type { DidKey, DidKeyErrorName, DecodeDidKeyOptions } from './did-key.js'
export {
  generateEd25519KeyPair,
  privateKeyFromSeed,
  signerFromJwk,
  signerFromKeyObject,
  parsePublicJwk,
  parsePrivateJwk,
  privateKeyFromJwk,
  publicKeyFromJwk,
  publicKeyFromRaw,
  rawPublicKey,
  didFromPublicJwk,
  publicJwkFromDid,
  jwkThumbprint,
} from './keys.js'
export type { Ed25519PublicJwk, Ed25519PrivateJwk, Ed25519KeyPair, Signer } from './keys.js'
export { signCompactJws, signJwt, decodeCompactJws, decodeCompactJwsSegments, decodeJwt, decodeJwtParts, decodeJsonSegment, verifyJwsSignature, verifyJwsSignatureRaw, verifyJwsSignatureAsync, verifyCompactJws, DEFAULT_MAX_TOKEN_BYTES } from './jws.js'
export { ed25519Backend, ed25519SeedSigner, type Ed25519SeedSigner } from './ed25519.js'
export type { Ed25519Backend } from './ed25519.js'
export type { JwsHeader, DecodedJws, DecodedJwsSegments, DecodedJwt } from './jws.js'
export {
  StatusList,
  StatusListError,
  parseStatusListIndex,
  MIN_STATUS_LIST_ENTRIES,
  DEFAULT_MAX_STATUS_LIST_BYTES,
} from './status-list.js'
export type { StatusListErrorName } from './status-list.js'
export {
  parseAgentClaims,
  parseDataAccessClass,
  parseStatusEntry,
  dataClassCovers,
  isAgentDid,
  VC_CONTEXT_V1,
  AGENTID_CONTEXT_V1,
  AGENT_IDENTITY_CREDENTIAL,
  STATUS_LIST_CREDENTIAL,
  DATA_ACCESS_CLASSES,
} from './credential.js'
export { AGENTID_CONTEXT_V1_DOCUMENT, AGENTID_CONTEXT_V1_SHA256 } from './contexts.js'
export type {
  AgentClaims,
  AgentModel,
  ToolProfile,
  DataAccessClass,
  BitstringStatusListEntry,
  AgentIdentityCredentialPayload,
  ParseClaimsOptions,
} from './credential.js'
export { createProofOfPossession, decodeProofOfPossession, verifyProofOfPossession, POP_TYP, MAX_POP_LIFETIME_SEC } from './pop.js'
export type { CreateProofOptions, DecodedProofOfPossession, VerifyProofOptions, VerifiedProof, ProofPurpose } from './pop.js'
export {
  parseSpiffeId,
  parseTrustDomain,
  isSpiffeId,
  agentSpiffeId,
  agentDidFromSpiffeId,
  AGENT_SPIFFE_PATH_PREFIX,
  MAX_SPIFFE_ID_BYTES,
  MAX_TRUST_DOMAIN_BYTES,
} from './spiffe-id.js'
export type { SpiffeId, SpiffeIdErrorName, ParseSpiffeIdOptions } from './spiffe-id.js'
