import { hash } from 'node:crypto'
import {
  AGENT_IDENTITY_CREDENTIAL,
  DEFAULT_MAX_TOKEN_BYTES,
  decodeJwt,
  isDidKeySyntax,
  parseAgentClaims,
  parseStatusEntry,
  VerificationError,
  type DecodedJwt,
  isNumericDate,
} from '@agentid/core'
import { defaultDidResolver, KeyResolver, verifyUnderAnyKey, verifyUnderAnyKeySync, type DidResolver, type KeyPurpose } from './keys.js'
import { BoundedCache } from './lru.js'
import { ClaimsInterner, StringInterner } from './intern.js'
import { SecondSight } from './admission.js'
import { StatusLists, StatusListTrust, type FetchLike } from './status.js'
import type { VerifiedAgent } from './types.js'
import { verifyDataIntegrityInput } from './di/dispatch.js'
import { DEFAULT_LINK_MEMO_SIZE, LinkMemo } from './delegation-memo.js'
import { parseTrustedRoots } from './roots.js'
import type { DelegationContext, DelegationRequest, VerifiedDelegation } from './delegation.js'
import { createMemoryReplayCache, type ReplayCache } from './replay-cache.js'
import type { PresentationContext, VerifiedPresentation, VerifyPresentationOptions } from './presentation.js'
import { bundleSource, verifyJwtSvidWith, verifyX509SvidWith, type SpiffeOptions, type SvidContext, type VerifiedSvidAgent } from './svid/mtls.js'
import type { CertificateChainInput } from './svid/x509.js'
import type { VerifiedJwtSvid } from './svid/jwt.js'
import { createTokenCache, verifyCertificateBoundRequestWith, verifyRequestWith, type CertificateBoundRequestLike, type VerifiedCertificateBoundRequest, type HttpRequestLike, type RequestContext, type VerifiedRequest, type VerifyRequestOptions } from './request.js'
import { assertSpiffeIdNamesAgent, deepFreeze, isRecord, statusIndexOf } from './util.js'
import { RevocationRegistry, RevocationSubscription, type RevocationMode, type RevocationStreamOptions } from './revocations.js'
import { createApproverMemo, verifyApprovalWith, type ApprovalContext, type VerifiedApproval, type VerifyApprovalOptions } from './approval.js'
import type { LineageContext, PrefixMemo, VerifiedLineage, VerifyLineageOptions } from './lineage.js'
import { DEFAULT_LINEAGE_LIMITS, type LineageLimits } from '@agentid/lineage'
import { TransparencyCheck, type TransparencyOptions } from './transparency.js'

/** Options of {@link createVerifier}. Every dependency is injected; defaults are safe. */
export interface VerifierOptions {
  /** DIDs of the issuers whose credentials this service accepts. Required, non-empty. */
  trustedIssuers: readonly string[]
  /** DID resolver (did-resolver `Resolver` or compatible). Default: did:key only, offline. */
  resolver?: DidResolver
  /** Fetch for status lists. Default: `globalThis.fetch`. */
  fetch?: FetchLike
  /** Clock in milliseconds since the epoch. Default: `Date.now`. */
  clock?: () => number
  /** How long a fetched status list is used before it is fetched again. Default 60,000 ms. */
  statusTtlMs?: number
  /**
   * When a refresh fails, how long past `statusTtlMs` the last good list may still be used.
   * Default 300,000 ms (5 min); 0 makes every failed refresh ERR_STATUS_UNAVAILABLE.
   */
  statusGraceMs?: number
  /** Timeout of one status-list fetch. Default 5,000 ms. */
  statusFetchTimeoutMs?: number
  /** Allowed clock difference for `nbf`/`exp`, in seconds. Default 60, at most 300. */
  clockSkewSec?: number
  /** Largest credential accepted, checked before any parsing. Default 64 KiB. */
  maxTokenBytes?: number
  /**
   * Number of verified credentials memoized by their exact bytes (keyed by SHA-256 of the token, so
   * an entry costs ~1 KB, not the token's size). Default 1,000: the agents a service sees at once.
   * Once it is full, a credential enters it on its second verification (a stream of one-off
   * credentials then displaces nothing); those a lineage names enter it on their first.
   */
  memoSize?: number
  /** Number of resolved DIDs cached. Default 1,000; entries live 1 hour. */
  didCacheSize?: number
  /**
   * Check signatures on libuv's thread pool instead of the event loop. Default false: a thread hop
   * costs latency; a server that verifies many credentials concurrently (the issuer checking its own
   * output) gains a free event loop and a second core.
   */
  offloadSignatures?: boolean
  /**
   * Where presentation ids (`jti`) are remembered so each presentation is accepted once. Default: an
   * in-memory bounded cache ({@link createMemoryReplayCache}); several instances of a service share one store.
   */
  replayCache?: ReplayCache
  /** How old a presentation's `iat` may be, in seconds (plus `clockSkewSec`). Default 60, at most 300. */
  presentationMaxAgeSec?: number
  /**
   * Roots of delegation chains by resource prefix (`'mcp://erp/'` or `'mcp://erp/*'` -> DIDs); the
   * longest prefix matching the invoked resource decides. `trustedIssuers` are roots for every resource.
   */
  trustedRoots?: Record<string, readonly string[]>
  /**
   * Status lists a delegation link may name, as URL prefixes (`'https://issuer.example/v1/status-lists/'`;
   * an entry not ending in `/` is one exact URL). Links are signed by agents: a link naming any other
   * status list is refused (ERR_STATUS_UNAVAILABLE, `reason: 'status list not trusted'`) before anything
   * is fetched. Besides these, the verifier trusts the status-list directories named by credentials that
   * a trusted issuer signed (each verified identity credential, each link signed by a trusted issuer).
   */
  trustedStatusLists?: readonly string[]
  /**
   * Number of verified delegation links memoized by their exact text (links up to 4 KiB). A hit
   * skips hashing, decoding, parsing, the attenuation check against the parent it names and the
   * signature (while the key that verified it is still the signer's); linkage, time, root trust,
   * revocation status, the request and the invoker are checked on every call. Default 1,000
   * (about 2.5 KB each).
   */
  linkMemoSize?: number
  /** Longest delegation chain accepted, root included. Default 10. */
  maxChainLength?: number
  /** Largest delegation chain accepted (all links together), checked before any parsing. Default 64 KiB. */
  maxChainBytes?: number
  /** This resource server's identifier, the `aud` access tokens must name (`verifyRequest`'s `audience` overrides it). */
  resourceAudience?: string
  /** How old a DPoP proof's `iat` may be, in seconds (plus `clockSkewSec`). Default 60, at most 300. */
  dpopMaxAgeSec?: number
  /** The DPoP nonce the server currently requires (RFC 9449 §9); proofs without it fail with `use_dpop_nonce`. */
  dpopNonce?: () => string | undefined | Promise<string | undefined>
  /** Number of verified access tokens kept by their bytes until they expire. Default 10,000. */
  accessTokenCacheSize?: number
  /**
   * The SPIFFE trust domain and its bundle, for `verifyX509Svid` (mTLS) and `verifyJwtSvid`: the bundle
   * itself or the issuer's `GET /v1/spiffe/bundle` URL. Without it those two methods throw a TypeError.
   */
  spiffe?: SpiffeOptions
  /** How old the last hop of a lineage may be (its `iat`), in seconds (plus `clockSkewSec`). Default 60, at most 300. */
  lineageMaxAgeSec?: number
  /** Limits of a lineage, checked before any parsing. Default 16 entries, 16,384 bytes, 4,096 bytes per entry. */
  lineageLimits?: Partial<LineageLimits>
  /**
   * Number of verified approver credentials memoized by their exact bytes (`verifyApproval`): a hit skips
   * the parse, the issuer's signature and the key import; time, revocation and status are checked on every
   * call. Default 1,000.
   */
  approverMemoSize?: number
  /** Number of verified lineage prefixes memoized by their bytes (a workflow then pays for its new hop only). Default 1,000. */
  lineageMemoSize?: number
  /**
   * Subscribe to the issuer's revocation event stream (`{ url: 'https://issuer.example/v1/events' }`):
   * each revocation is pushed as a signed Security Event Token and refused from its arrival on, cached
   * tokens and memoized credentials included. The status lists stay the fallback while the stream is
   * down ({@link Verifier.revocationMode}). Call {@link Verifier.close} to end the subscription.
   */
  revocationStream?: RevocationStreamOptions
  /**
   * Accept identity credentials (JWT form) only with a C2SP tlog-proof that the issuer logged them in
   * its transparency log, under a checkpoint signed by `log` and cosigned by `quorum` of `witnesses`:
   * stapled (`verifyAgentCredential(jwt, { tlogProof })`, `vp.tlogProof` in a presentation) or fetched
   * from the issuer (`/v1/log/proof?credential=<jti>`). Checked once per credential (memoized with it).
   * Failures are ERR_NOT_LOGGED. Data Integrity credentials are refused under this option.
   */
  transparency?: TransparencyOptions
}

/** Options of {@link Verifier.verifyAgentCredential}. */
export interface VerifyAgentCredentialOptions {
  /** The credential's C2SP tlog-proof, when the verifier requires one (`transparency`) and the holder staples it. */
  tlogProof?: string
}

/** A configured verifier. Stateless but for its caches; share one instance per process. */
export interface Verifier {
  /**
   * Verifies an agent identity credential (compact JWT VC) and returns the agent's DID and claims.
   * A Data Integrity credential (`eddsa-rdfc-2022`; an object, or JSON text starting with `{`) is
   * verified too, offline, with the JSON-LD code loaded on its first use.
   * Throws a VerificationError with a stable code on any failure.
   */
  verifyAgentCredential(credential: string | Record<string, unknown>, options?: VerifyAgentCredentialOptions): Promise<VerifiedAgent>
  /** Drops cached status lists (the next verification fetches them again). */
  clearStatusCache(): void
  /**
   * `push` while subscribed to a live revocation stream (revocations refused as their events arrive),
   * else `polling` (revocations refused within `statusTtlMs`, from the status lists).
   */
  revocationMode(): RevocationMode
  /** Ends the revocation stream subscription, if any. The verifier still verifies (in `polling` mode). */
  close(): Promise<void>
  /**
   * Verifies a presentation (a JWT signed by the agent's own key, carrying its identity credential and
   * optionally its delegation chain) for `audience`; returns the agent and its effective capabilities.
   * Throws a VerificationError with a stable code on any failure.
   * @example
   * const { agent, capabilities } = await verifier.verifyPresentation(jwt, { audience: 'https://erp.example', nonce })
   */
  verifyPresentation(jwt: string, options: VerifyPresentationOptions): Promise<VerifiedPresentation>
  /**
   * Verifies a delegation chain (compact JWTs, root first) for one invocation of `action` on
   * `resource` by `invoker`. Throws a VerificationError whose details name the failing link.
   */
  verifyDelegation(chain: readonly string[], request: DelegationRequest): Promise<VerifiedDelegation>
  /**
   * Verifies a request carrying `Authorization: DPoP <access token>` and a `DPoP` proof (RFC 9449):
   * the issuer's access token (cached until it expires) and the proof bound to it and this request;
   * the agent's identity credential named in the token (`agentid.credentialStatus`) is checked against
   * the issuer's status list on every request (lists cached `statusTtlMs`): ERR_REVOKED once revoked.
   * @example
   * const { agent, user, authorizationDetails } = await verifier.verifyRequest({ method: 'GET', url: 'https://erp.example/invoices', headers })
   */
  verifyRequest(request: HttpRequestLike, options?: VerifyRequestOptions): Promise<VerifiedRequest>
  /**
   * Verifies a request over mutual TLS carrying `Authorization: Bearer <access token>` bound to the
   * client certificate (RFC 8705 `cnf.x5t#S256`): the token as `verifyRequest` checks it, then that
   * `clientCertificate` is the one it is bound to (ERR_KEY_MISMATCH).
   * @example
   * await verifier.verifyCertificateBoundRequest({ method, url, headers, clientCertificate: req.socket.getPeerX509Certificate() })
   */
  verifyCertificateBoundRequest(request: CertificateBoundRequestLike, options?: VerifyRequestOptions): Promise<VerifiedCertificateBoundRequest>
  /**
   * Authenticates an agent by its X.509-SVID, e.g. the TLS client certificate (leaf first): the chain to
   * the `spiffe` bundle, then the identity credential it carries (every `verifyAgentCredential` check,
   * revocation included), bound to the certificate's key and SPIFFE ID.
   * @example
   * const { agent, spiffeId } = await verifier.verifyX509Svid(req.socket.getPeerX509Certificate())
   */
  verifyX509Svid(chain: CertificateChainInput): Promise<VerifiedSvidAgent>
  /**
   * Verifies a JWT-SVID for `audience` against the `spiffe` bundle.
   * @example
   * const { spiffeId, did } = await verifier.verifyJwtSvid(token, { audience: 'spiffe://erp.example/api' })
   */
  verifyJwtSvid(token: string, options: { audience: string }): Promise<VerifiedJwtSvid>
  /**
   * Verifies a human's approval receipt for the call actually received, offline: the approver credential
   * (trusted issuer, unrevoked, allowed for the call's controller or group), the WebAuthn assertion over the
   * SHA-256 of the canonical call (origin, RP id, UP and UV flags, signature with the certified key), the
   * expiry, and single use (the `replayCache`). Throws a VerificationError with a stable code.
   * @example
   * const approval = await verifier.verifyApproval(receipt, { call: { agent, target, command: 'tools/call pay', arguments } })
   */
  verifyApproval(receipt: unknown, options: VerifyApprovalOptions): Promise<VerifiedApproval>
  /**
   * Verifies the lineage (chain of custody, `Agentid-Lineage` header form) of a call before acting on
   * it: every entry's signature by its actor's DID key, linkage and custody (no gap, reorder, splice
   * or cycle; each signer the agent the previous entry handed custody to), the last hop for exactly
   * this `audience`, `command` and arguments, fresh and used once, every actor's identity credential
   * valid and unrevoked now, and delegation chains (when given) only narrowing. Verified prefixes are
   * memoized by their bytes. Throws a VerificationError whose `details.hop` names the entry and
   * `details.reason` the check.
   * @example
   * const { hops, last, user } = await verifier.verifyLineage(req.headers['agentid-lineage'], {
   *   audience: 'https://pay.example', command: httpCommand('POST', url), args: httpArgs(url, req.body),
   *   credentials: req.headers['agentid-credentials'] })
   */
  verifyLineage(lineage: string, options: VerifyLineageOptions): Promise<VerifiedLineage>
}

// Loaded at their first use (dynamic import, cached by the module loader): presentations, delegation
// chains (with @agentid/delegation) and lineages. A service that verifies identity credentials only
// never loads them (bench verify-only: the verifier's own memory). Their methods are async already;
// what createVerifier checks synchronously (trustedRoots, the replay cache) lives in small modules.
let delegationCode: Promise<typeof import('./delegation.js')> | undefined
let presentationCode: Promise<typeof import('./presentation.js')> | undefined
let lineageCode: Promise<typeof import('./lineage.js')> | undefined
async function verifyDelegationChain(ctx: DelegationContext, chain: unknown, request: DelegationRequest): Promise<VerifiedDelegation> {
  return (await (delegationCode ??= import('./delegation.js'))).verifyDelegationChain(ctx, chain, request)
}
async function verifyPresentationWith(ctx: PresentationContext, token: unknown, options: VerifyPresentationOptions): Promise<VerifiedPresentation> {
  return (await (presentationCode ??= import('./presentation.js'))).verifyPresentationWith(ctx, token, options)
}
async function verifyLineageWith(ctx: LineageContext, lineage: unknown, options: VerifyLineageOptions): Promise<VerifiedLineage> {
  return (await (lineageCode ??= import('./lineage.js'))).verifyLineageWith(ctx, lineage, options)
}

interface Memo {
  agent: VerifiedAgent
  nbf: number | null
  exp: number
}

const ACCEPTED_TYP = new Set([undefined, 'JWT', 'vc+jwt', 'vc+ld+json+jwt'])
// The `type` nearly every credential has: one frozen array shared by the agents that have it.
const AGENT_TYPE: readonly string[] = Object.freeze(['VerifiableCredential', AGENT_IDENTITY_CREDENTIAL])

function malformed(message: string, details: Record<string, unknown> = {}): never {
  throw new VerificationError('ERR_MALFORMED', message, { details })
}


/** The later of iat and nbf (either may be absent): before it, a credential is not yet valid. */
function notBeforeOf(agent: VerifiedAgent): number | null {
  // issuedAt is iat, or nbf when iat is absent; validFrom is nbf.
  const iat = agent.issuedAt
  const nbf = agent.validFrom
  return nbf === null || (iat !== null && iat > nbf) ? iat : nbf
}

function numericDate(value: unknown, claim: string, required: boolean): number | null {
  if (value === undefined && !required) return null
  if (!isNumericDate(value)) malformed(`${claim} must be a NumericDate (0 to 9999-12-31)`, { claim })
  return value
}


function positive(name: string, value: number | undefined, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > max) throw new TypeError(`createVerifier: ${name} must be a number from 0 to ${max}`)
  return value
}

/**
 * Creates a verifier for agent identity credentials.
 * @example
 * const verifier = createVerifier({ trustedIssuers: ['did:key:z6Mk...'] })
 * const agent = await verifier.verifyAgentCredential(jwt) // throws VerificationError on failure
 * agent.did; agent.claims.purpose; agent.claims.dataAccessClass
 */
export function createVerifier(options: VerifierOptions): Verifier {
  if (!options || !Array.isArray(options.trustedIssuers) || options.trustedIssuers.length === 0 ||
    !options.trustedIssuers.every((d) => typeof d === 'string' && d.startsWith('did:'))) {
    throw new TypeError('createVerifier: trustedIssuers must be a non-empty list of DIDs')
  }
  const trusted = new Set(options.trustedIssuers)
  const now = options.clock ?? Date.now
  if (typeof now !== 'function') throw new TypeError('createVerifier: clock must be a function')
  const skew = positive('clockSkewSec', options.clockSkewSec, 60, 300)
  const maxTokenBytes = positive('maxTokenBytes', options.maxTokenBytes, DEFAULT_MAX_TOKEN_BYTES)
  const fetch = options.fetch ?? (globalThis.fetch as unknown as FetchLike | undefined)
  if (typeof fetch !== 'function') throw new TypeError('createVerifier: no fetch available; pass options.fetch')
  const resolver = options.resolver ?? defaultDidResolver()
  if (typeof resolver.resolve !== 'function') throw new TypeError('createVerifier: resolver must have resolve(did)')

  // Without an injected resolver, an Ed25519 did:key is read from the DID itself (see KeyResolver).
  const keys = new KeyResolver(resolver, positive('didCacheSize', options.didCacheSize, 1000) || 1, 3_600_000, now, options.resolver === undefined)
  const statusLists = new StatusLists(
    {
      fetch,
      ttlMs: positive('statusTtlMs', options.statusTtlMs, 60_000),
      graceMs: positive('statusGraceMs', options.statusGraceMs, 300_000),
      fetchTimeoutMs: positive('statusFetchTimeoutMs', options.statusFetchTimeoutMs, 5_000),
      maxListJwtBytes: 1024 * 1024,
      maxListBytes: 16 * 1024 * 1024,
      clockSkewSec: skew,
      now,
    },
    keys,
  )
  const statusTrust = new StatusListTrust(options.trustedStatusLists ?? [])
  const offload = options.offloadSignatures === true
  const memoSize = positive('memoSize', options.memoSize, 1_000) || 1
  const memo = new BoundedCache<string, Memo>(memoSize)
  // Once the memo is full, a credential enters it on its second verification (see admission.ts).
  const secondSight = new SecondSight(memoSize)
  const strings = new StringInterner(4096)
  const sharedClaims = new ClaimsInterner(1024)
  const transparency = options.transparency === undefined ? undefined : new TransparencyCheck(options.transparency, fetch, now)

  function typeOf(type: readonly string[]): readonly string[] {
    if (type.length === 2 && type[0] === AGENT_TYPE[0] && type[1] === AGENT_TYPE[1]) return AGENT_TYPE
    return Object.freeze(type.map((t) => strings.intern(t)))
  }

  function checkTime(nbf: number | null, exp: number): void {
    const t = now() / 1000
    if (exp + skew <= t) throw new VerificationError('ERR_EXPIRED', 'credential has expired', { details: { exp } })
    if (nbf !== null && nbf - skew > t) throw new VerificationError('ERR_NOT_YET_VALID', 'credential is not yet valid', { details: { nbf } })
  }

  const revocations = new RevocationRegistry(options.revocationStream?.maxRevocations ?? 100_000)
  async function checkStatus(agent: VerifiedAgent): Promise<void> {
    if (checkStatusSync(agent)) return
    return fetchStatus(agent)
  }

  /** checkStatus once checkStatusSync has said the list must be fetched. */
  async function fetchStatus(agent: VerifiedAgent): Promise<void> {
    const value = await statusLists.status(agent.status.statusListCredential, agent.issuer, agent.status.statusListIndex)
    if (value !== 0) throw new VerificationError('ERR_REVOKED', 'credential has been revoked', { details: { credentialId: agent.credentialId } })
  }

  /** The checks of checkStatus without a promise: true when done (the list cached and fresh), false when the list must be fetched. */
  function checkStatusSync(agent: VerifiedAgent): boolean {
    if (revocations.credentialRevoked(agent.issuer, agent.credentialId) || revocations.agentRevoked(agent.issuer, agent.did)) {
      throw new VerificationError('ERR_REVOKED', 'credential has been revoked (revocation event)', { details: { credentialId: agent.credentialId } })
    }
    const { statusListCredential, statusListIndex } = agent.status
    statusTrust.learn(statusListCredential) // signed by a trusted issuer: its status-list directory is trusted
    const value = statusLists.statusSync(statusListCredential, agent.issuer, statusListIndex)
    if (value === undefined) return false
    if (value !== 0) throw new VerificationError('ERR_REVOKED', 'credential has been revoked', { details: { credentialId: agent.credentialId } })
    return true
  }

  /**
   * verifySignature on this thread without a promise when the issuer's keys are at hand (resolved, or
   * an Ed25519 did:key): true when verified (else it throws), false when the keys must be resolved or
   * signatures are offloaded (then call verifySignature). A promise per await was ~1 KB of garbage per
   * verification.
   */
  function verifySignatureSync(jwt: DecodedJwt, issuer: string, purpose: KeyPurpose): boolean {
    if (offload) return false
    const candidates = keys.keysForSync(issuer, purpose, jwt.header.kid as string | undefined)
    if (candidates === undefined) return false
    verifyUnderAnyKeySync(candidates, jwt)
    return true
  }

  async function verifySignature(jwt: DecodedJwt, issuer: string, purpose: KeyPurpose): Promise<void> {
    const candidates = await keys.keysFor(issuer, purpose, jwt.header.kid as string | undefined)
    await verifyUnderAnyKey(candidates, jwt, offload)
  }

  function verifyAgentCredential(token: string | Record<string, unknown>, verifyOptions: VerifyAgentCredentialOptions = {}): Promise<VerifiedAgent> {
    return verifyCredential(token, verifyOptions, false)
  }

  /**
   * The VerifiedAgent of a payload signed by trusted issuer `iss`: its content checked (malformed
   * otherwise) and built. Its own function, not part of verifyCredential: TurboFan then optimizes
   * two smaller graphs, and the compiler's peak memory (one zone per job, 4.6 MB for the whole of
   * verifyCredential) is the largest share of the verifier's transient peak RSS at warm-up.
   */
  function agentFromPayload(p: Record<string, unknown>, iss: string): VerifiedAgent {
    const vc = p.vc
    if (!isRecord(vc)) malformed('vc claim is missing')
    if (!Array.isArray(vc.type) || !vc.type.includes('VerifiableCredential') || !vc.type.includes(AGENT_IDENTITY_CREDENTIAL)) {
      malformed('not an AgentIdentityCredential', { type: vc.type })
    }
    const subject = vc.credentialSubject
    if (!isRecord(subject)) malformed('credentialSubject must be one object')
    const sub = p.sub
    if (typeof sub !== 'string' || !isDidKeySyntax(sub)) malformed('sub must be the agent did:key')
    if (subject.id !== undefined && subject.id !== sub) malformed('sub does not match credentialSubject.id', { sub, credentialSubjectId: subject.id })
    if (vc.issuer !== undefined && vc.issuer !== iss && !(isRecord(vc.issuer) && vc.issuer.id === iss)) malformed('vc.issuer does not match iss')
    if (p.jti !== undefined && typeof p.jti !== 'string') malformed('jti must be a string')
    if (vc.id !== undefined && vc.id !== p.jti) malformed('vc.id does not match jti')
    const exp = numericDate(p.exp, 'exp', true)!
    const nbf = numericDate(p.nbf, 'nbf', false)
    const iat = numericDate(p.iat, 'iat', false)
    const claims = parseAgentClaims(subject, { strict: false, code: 'ERR_MALFORMED' })
    assertSpiffeIdNamesAgent(claims, sub)
    const entry = parseStatusEntry(vc.credentialStatus)
    const index = statusIndexOf(entry.statusListIndex)

    // Values many credentials repeat share one copy (see intern.ts): a memo entry keeps less.
    claims.purpose = strings.intern(claims.purpose)
    claims.controller = strings.intern(claims.controller)
    if (claims.model.provider !== undefined) claims.model.provider = strings.intern(claims.model.provider)
    claims.model.name = strings.intern(claims.model.name)
    claims.model.version = strings.intern(claims.model.version)
    claims.policyTier = strings.intern(claims.policyTier)
    claims.dataAccessClass = strings.intern(claims.dataAccessClass)
    if (typeof claims.toolProfile === 'string') claims.toolProfile = strings.intern(claims.toolProfile)
    else claims.toolProfile = Object.freeze(claims.toolProfile.map((tool) => strings.intern(tool)))
    // Frozen member by member (deepFreeze walks with for-in: garbage on every verification); only an
    // attestation, arbitrary JSON, is walked. toolProfile is frozen by parseAgentClaims.
    if (claims.attestation !== undefined) deepFreeze(claims.attestation)
    Object.freeze(claims.model)
    Object.freeze(claims)
    const agent: VerifiedAgent = Object.freeze({
      did: sub,
      issuer: strings.intern(iss),
      credentialId: (p.jti as string | undefined) ?? null,
      issuedAt: iat ?? nbf,
      validFrom: nbf,
      expiresAt: exp,
      // Equal claims are one frozen object (agents made from one template): a memo entry keeps less.
      claims: sharedClaims.intern(claims),
      status: Object.freeze({ statusListCredential: strings.intern(entry.statusListCredential), statusListIndex: index }),
      type: typeOf(vc.type as string[]),
    })
    // An iat past now + skew: issued in the future (RFC 7519 leaves iat informational; we refuse it as
    // not yet valid, like nbf, and the memo keeps refusing it until then: see notBeforeOf).
    if (iat !== null && iat - skew > now() / 1000) throw new VerificationError('ERR_NOT_YET_VALID', 'credential is issued in the future', { details: { iat } })
    return agent
  }

  /** `memoize`: enter the memo even on a first sight (a caller that will look the credential up by its hash). */
  async function verifyCredential(token: string | Record<string, unknown>, verifyOptions: VerifyAgentCredentialOptions, memoize: boolean): Promise<VerifiedAgent> {
    if ((typeof token === 'object' && token !== null) || (typeof token === 'string' && token.startsWith('{'))) {
      if (transparency) throw new VerificationError('ERR_NOT_LOGGED', 'this verifier accepts logged JWT credentials only', { details: { reason: 'unsupported-format' } })
      return verifyDataIntegrityInput({ trusted, now, skew, memo, checkTime, checkStatus }, token)
    }
    // Size before anything else: a 10 MB token costs a length read, not a parse.
    if (typeof token !== 'string') malformed('credential must be a compact JWT string')
    if (token.length > maxTokenBytes) malformed(`credential is larger than ${maxTokenBytes} bytes`)

    // SHA-256 names the exact bytes (a collision would be a break of SHA-256), in 43 characters: the
    // base64url form, that of a lineage entry's `crd` (credentialHash), so an actor is found by it as is.
    const key = hash('sha256', token, 'base64url')
    const known = memo.get(key)
    if (known) {
      checkTime(known.nbf, known.exp)
      if (!checkStatusSync(known.agent)) await fetchStatus(known.agent)
      return known.agent
    }
    return await verifyUnknown(token, key, verifyOptions, memoize)
  }

  /**
   * verifyCredential for a JWT the memo does not hold (`key`: its SHA-256). Its own function: a memo
   * hit, which no verification before the first hit reaches, left its property reads without type
   * feedback in the code TurboFan made for verifyCredential, so the first hit threw that code away
   * and TurboFan compiled the whole of it again (a second peak of compiler memory, 1-2 MB of the
   * verifier's peak RSS in bench verify-only). Now only verifyCredential, small, is compiled again.
   */
  async function verifyUnknown(token: string, key: string, verifyOptions: VerifyAgentCredentialOptions, memoize: boolean): Promise<VerifiedAgent> {
    const jwt = decodeJwt(token, maxTokenBytes) // EdDSA only, strict base64url and JSON
    if (!ACCEPTED_TYP.has(jwt.header.typ)) malformed('unexpected JWS typ for a credential', { typ: jwt.header.typ })
    const p = jwt.payload
    const iss = p.iss
    if (typeof iss !== 'string') malformed('iss is missing')
    if (!trusted.has(iss)) throw new VerificationError('ERR_UNTRUSTED_ISSUER', 'issuer is not trusted', { details: { iss } })
    if (!verifySignatureSync(jwt, iss, 'assertionMethod')) await verifySignature(jwt, iss, 'assertionMethod')

    // Signed by a trusted issuer: now its content must be well-formed too.
    const agent = agentFromPayload(p, iss)
    const notBefore = notBeforeOf(agent)
    const exp = agent.expiresAt
    checkTime(notBefore, exp)
    if (!checkStatusSync(agent)) await fetchStatus(agent)
    if (transparency) await transparency.check(token, agent, verifyOptions.tlogProof)
    if (memoize || !memo.full || secondSight.seenBefore(key)) memo.set(key, { agent, nbf: notBefore, exp })
    return agent
  }

  const presentations: PresentationContext = {
    now,
    clockSkewSec: skew,
    maxAgeSec: positive('presentationMaxAgeSec', options.presentationMaxAgeSec, 60, 300),
    maxTokenBytes,
    offloadSignatures: offload,
    replayCache: options.replayCache ?? createMemoryReplayCache({ clock: now }),
    verifyAgentCredential,
  }
  if (typeof presentations.replayCache.checkAndStore !== 'function') throw new TypeError('createVerifier: replayCache must have checkAndStore(key, expiresAtMs)')

  const delegations: DelegationContext = {
    keys,
    statusLists,
    statusTrust,
    trustedIssuers: trusted,
    trustedRoots: parseTrustedRoots(options.trustedRoots),
    now,
    skewSec: skew,
    maxChainLength: positive('maxChainLength', options.maxChainLength, 10, 64),
    maxChainBytes: positive('maxChainBytes', options.maxChainBytes, 64 * 1024),
    maxTokenBytes,
    offload,
    memo: new LinkMemo(positive('linkMemoSize', options.linkMemoSize, DEFAULT_LINK_MEMO_SIZE) || 1),
    verifyIdentity: (credential) => verifyAgentCredential(credential as string),
    linkRevoked: (iss, jti) => revocations.credentialRevoked(iss, jti),
  }
  presentations.delegation = delegations

  if (options.resourceAudience !== undefined && (typeof options.resourceAudience !== 'string' || options.resourceAudience === '')) throw new TypeError('createVerifier: resourceAudience must be a non-empty string')
  if (options.dpopNonce !== undefined && typeof options.dpopNonce !== 'function') throw new TypeError('createVerifier: dpopNonce must be a function')
  const requests: RequestContext = {
    now,
    clockSkewSec: skew,
    dpopMaxAgeSec: positive('dpopMaxAgeSec', options.dpopMaxAgeSec, 60, 300),
    offloadSignatures: offload,
    maxTokenBytes,
    replayCache: presentations.replayCache,
    trustedIssuers: trusted,
    ...(options.resourceAudience === undefined ? {} : { resourceAudience: options.resourceAudience }),
    ...(options.dpopNonce === undefined ? {} : { dpopNonce: options.dpopNonce }),
    verifyIssuerSignature: (jwt, iss) => verifySignature(jwt, iss, 'assertionMethod'),
    statusOf: (url, issuer, index) => statusLists.status(url, issuer, index),
    tokens: createTokenCache(positive('accessTokenCacheSize', options.accessTokenCacheSize, 10_000) || 1),
    revoked: (issuer, agent, credentialId) => revocations.agentRevoked(issuer, agent) || revocations.credentialRevoked(issuer, credentialId),
  }

  const approvals: ApprovalContext = {
    now,
    clockSkewSec: skew,
    maxTokenBytes,
    trustedIssuers: trusted,
    replayCache: presentations.replayCache,
    verifyIssuerSignature: (jwt, iss) => verifySignature(jwt, iss, 'assertionMethod'),
    statusOf: (url, issuer, index) => statusLists.status(url, issuer, index),
    revoked: (issuer, jti) => revocations.credentialRevoked(issuer, jti),
    memo: createApproverMemo(positive('approverMemoSize', options.approverMemoSize, 1_000) || 1),
  }

  // A credential known by the hash a lineage entry names (its `crd`, SHA-256 base64url of the JWT):
  // the memo is keyed by the same SHA-256 (base64url), so a known actor costs a lookup, time and status.
  async function knownCredential(hash: string): Promise<VerifiedAgent | undefined> {
    const known = memo.get(hash)
    if (!known) return undefined
    checkTime(known.nbf, known.exp)
    await checkStatus(known.agent)
    return known.agent
  }
  // The same without a promise when its status list is cached and fresh: 'unknown' when the credential
  // is not memoized, 'fetch' when its status list must be fetched (then call knownCredential).
  function knownCredentialSync(hash: string): VerifiedAgent | 'unknown' | 'fetch' {
    const known = memo.get(hash)
    if (!known) return 'unknown'
    checkTime(known.nbf, known.exp)
    return checkStatusSync(known.agent) ? known.agent : 'fetch'
  }
  // The bounds of what knownCredentialSync answers for `hash` without the state changing (see
  // actorsVersion): its time window (nbf, exp with the skew) and its status list's freshness, in ms.
  function knownCredentialWindow(hash: string): { from: number; until: number } | undefined {
    const known = memo.get(hash)
    if (!known) return undefined
    const listFresh = statusLists.freshUntil(known.agent.status.statusListCredential)
    return { from: known.nbf === null ? Number.NEGATIVE_INFINITY : (known.nbf - skew) * 1000, until: Math.min((known.exp + skew) * 1000, listFresh) }
  }
  const lineageLimits = { ...DEFAULT_LINEAGE_LIMITS, ...options.lineageLimits }
  for (const [name, value] of Object.entries(lineageLimits)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new TypeError(`createVerifier: lineageLimits.${name} must be a positive integer`)
  }
  const lineages: LineageContext = {
    keys,
    now,
    clockSkewSec: skew,
    maxAgeSec: positive('lineageMaxAgeSec', options.lineageMaxAgeSec, 60, 300),
    limits: lineageLimits,
    offloadSignatures: offload,
    replayCache: presentations.replayCache,
    memo: new BoundedCache<string, PrefixMemo>(positive('lineageMemoSize', options.lineageMemoSize, 1_000) || 1),
    knownCredential,
    knownCredentialSync,
    knownCredentialWindow,
    // Changes whenever a status list is cached anew (or dropped) or a revocation event arrives.
    actorsVersion: () => statusLists.version + revocations.version,
    // Memoized on first sight: the lineage then finds each actor by the hash its entries name.
    verifyAgentCredential: (jwt) => verifyCredential(jwt, {}, true),
    verifyDelegation: (chain, request) => verifyDelegationChain(delegations, chain, request),
    verifyApproval: (receipt, opts) => verifyApprovalWith(approvals, receipt, opts),
  }

  // Last: every check above can throw a TypeError, and a subscription once started holds a connection.
  const subscription = options.revocationStream === undefined
    ? undefined
    : new RevocationSubscription(options.revocationStream, {
        trustedIssuers: trusted,
        verifySignature: (jwt, iss) => verifySignature(jwt, iss, 'assertionMethod'),
        registry: revocations,
        onGap: () => statusLists.clear(),
      })

  const svids: SvidContext = { now, clockSkewSec: skew, fetch, verifyAgentCredential: (credential) => verifyAgentCredential(credential) }
  const spiffeBundle = options.spiffe === undefined ? undefined : bundleSource(options.spiffe, { now, fetch })
  const needBundle = () => {
    if (!spiffeBundle) throw new TypeError('createVerifier: the spiffe option (trustDomain and bundle or bundleUrl) is required for SVIDs')
    return spiffeBundle
  }

  return Object.freeze({
    verifyApproval: (receipt: unknown, opts: VerifyApprovalOptions) => verifyApprovalWith(approvals, receipt, opts),
    verifyAgentCredential,
    verifyLineage: (lineage: string, opts: VerifyLineageOptions) => verifyLineageWith(lineages, lineage, opts),
    verifyDelegation: (chain: readonly string[], request: DelegationRequest) => verifyDelegationChain(delegations, chain, request),
    verifyPresentation: (jwt: string, opts: VerifyPresentationOptions) => verifyPresentationWith(presentations, jwt, opts),
    clearStatusCache: () => statusLists.clear(),
    revocationMode: (): RevocationMode => subscription?.mode() ?? 'polling',
    close: async () => subscription?.close(),
    verifyRequest: (request: HttpRequestLike, opts?: VerifyRequestOptions) => verifyRequestWith(requests, request, opts),
    verifyCertificateBoundRequest: (request: CertificateBoundRequestLike, opts?: VerifyRequestOptions) => verifyCertificateBoundRequestWith(requests, request, opts),
    verifyX509Svid: (chain: CertificateChainInput) => verifyX509SvidWith(svids, needBundle(), chain),
    verifyJwtSvid: (token: string, opts: { audience: string }) => {
      if (typeof opts?.audience !== 'string' || opts.audience === '') throw new TypeError('verifyJwtSvid: options.audience is required')
      return verifyJwtSvidWith(svids, needBundle(), token, opts.audience)
    },
  })
}
