// Public API of @agentid/verifier.
export { createVerifier } from './verifier.js'
export type { Verifier, VerifierOptions, VerifyAgentCredentialOptions } from './verifier.js'
export type { TransparencyOptions } from './transparency.js'
export type { VerifiedAgent } from './types.js'
export type { DelegationRequest, VerifiedDelegation } from './delegation.js'
export { createMemoryReplayCache, PRESENTATION_TYP, MAX_PRESENTATION_LIFETIME_SEC } from './replay-cache.js'
export type { ReplayCache, MemoryReplayCacheOptions } from './replay-cache.js'
export type { VerifyPresentationOptions, VerifiedPresentation, EffectiveCapability } from './presentation.js'
export type { DidResolver, KeyPurpose } from './keys.js'
export type { FetchLike } from './status.js'
export { fetchStatusList } from './status-fetch.js'
export type { FetchStatusListOptions } from './status-fetch.js'
export { SET_TYP } from './revocations.js'
export type { RevocationMode, RevocationStreamOptions, StreamFetch } from './revocations.js'
export { createDocumentLoader } from './di/loader.js'
export type { JsonLdDocumentLoader, JsonLdRemoteDocument } from './di/loader.js'
export { VerificationError } from '@agentid/core'
export type { VerificationErrorCode } from '@agentid/core'
export { ACCESS_TOKEN_TYP, MAX_ACCESS_TOKEN_LIFETIME_SEC, AGENTID_ACTION_TYPE } from './request.js'
export type { HttpRequestLike, RequestHeaders, VerifyRequestOptions, VerifiedRequest, AgentActionDetail } from './request.js'
export { verifyDpopProof, normalizeHtu, accessTokenHash, DPOP_TYP, DPOP_ALGS, MAX_DPOP_PROOF_BYTES } from './dpop.js'
export type { DpopProofContext, VerifiedDpopProof, DpopErrorName } from './dpop.js'
export { agentidMiddleware } from './adapters/node.js'
export { decideHttpApproval, httpApprovalCall, APPROVAL_HEADER } from './adapters/approval.js'
export type { HttpApprovalOptions, HttpApprovalOutcome } from './adapters/approval.js'
export type { AgentidHttpOptions } from './adapters/node.js'
export { agentidFastify } from './adapters/fastify.js'
export type { AgentidFastifyOptions, FastifyLike } from './adapters/fastify.js'
export { verifyFetchRequest, dpopErrorResponse, verifyFetchLineage, lineageErrorResponse } from './adapters/fetch.js'
export { verifyHttpLineage, lineageRefusal } from './adapters/lineage.js'
export type { AdapterLineageOptions, LineageRefusal } from './adapters/lineage.js'
export {
  APPROVAL_CALL_TYPE,
  APPROVAL_RECEIPT_TYPE,
  APPROVER_CREDENTIAL,
  MAX_APPROVAL_ARGUMENTS_BYTES,
  approvalChallenge,
  argumentsDigest,
  canonicalJson,
  parseApprovalCall,
  parseApprovalReceipt,
} from './approval.js'
export type { ApprovalCall, ApprovalReceipt, ApprovalUser, ApproverScope, ReceivedCall, VerifyApprovalOptions, VerifiedApproval } from './approval.js'
export { dpopChallenge } from './adapters/challenge.js'
export type { VerifyLineageOptions, VerifiedLineage, VerifiedLineageHop, VerifiedLineageReceipt, VerifiedLineageApproval, LineageActor } from './lineage.js'
export type { DpopChallenge } from './adapters/challenge.js'
export { parseSpiffeBundle, MAX_BUNDLE_BYTES } from './svid/bundle.js'
export type { SpiffeBundle } from './svid/bundle.js'
export { parseX509Svid, verifyX509SvidChain, encodeUtf8String, AGENTID_CREDENTIAL_EXTENSION_OID, MAX_SVID_CHAIN, MAX_SVID_CERT_BYTES } from './svid/x509.js'
export type { ParsedX509Svid, CertificateChainInput, VerifyX509SvidOptions } from './svid/x509.js'
export { verifyJwtSvid, JWT_SVID_ALGS, MAX_JWT_SVID_BYTES } from './svid/jwt.js'
export type { VerifyJwtSvidOptions, VerifiedJwtSvid } from './svid/jwt.js'
export { certificateThumbprint } from './svid/mtls.js'
export type { SpiffeOptions, VerifiedSvidAgent } from './svid/mtls.js'
export type { CertificateBoundRequestLike, VerifiedCertificateBoundRequest } from './request.js'
export { agentidMtlsMiddleware, agentidMtlsFastify, peerCertificateChain } from './adapters/mtls.js'
