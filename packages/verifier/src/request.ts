import { createHash, hash, X509Certificate } from 'node:crypto'
import { decodeJwt, isAgentDid, isNumericDate, parseAgentClaims, parseStatusEntry, VerificationError, type AgentClaims, type DecodedJwt } from '@agentid/core'
import { accessTokenHash, dpopFail, verifyDpopProof, type VerifiedDpopProof } from './dpop.js'
import { BoundedCache } from './lru.js'
import type { ReplayCache } from './replay-cache.js'
import { ambiguousPath, deepFreeze, isRecord, statusIndexOf } from './util.js'

/** `typ` of an agentid access token (RFC 9068). */
export const ACCESS_TOKEN_TYP = 'at+jwt'
/** Longest lifetime (`exp - iat`) of an access token, in seconds. */
export const MAX_ACCESS_TOKEN_LIFETIME_SEC = 300
/** `type` of the RFC 9396 authorization details agentid issues. */
export const AGENTID_ACTION_TYPE = 'agentid_action'

/** Request headers: Node's (`IncomingHttpHeaders`, `headersDistinct`), a plain record, or a fetch `Headers`. */
export type RequestHeaders =
  | Readonly<Record<string, string | readonly string[] | undefined>>
  | { get(name: string): string | null; has?(name: string): boolean }

/** An HTTP request as `verifyRequest` needs it. */
export interface HttpRequestLike {
  method: string
  /** The absolute URL the client called (scheme, host, path; query and fragment are ignored). */
  url: string
  headers: RequestHeaders
}

export interface VerifyRequestOptions {
  /** This resource server's identifier: the token's `aud` must name it. Default: createVerifier's `resourceAudience`. */
  audience?: string
  /** The DPoP nonce this server expects now; a proof without exactly it is refused with `use_dpop_nonce`. */
  nonce?: string
}

/** One RFC 9396 authorization detail of type `agentid_action`. */
export interface AgentActionDetail {
  readonly type: typeof AGENTID_ACTION_TYPE
  readonly actions: readonly string[]
  readonly locations: readonly string[]
  readonly datatypes?: readonly string[]
  readonly identifiers?: readonly string[]
}

/** What `verifyRequest` returns: who calls, for whom, and what it may do. */
export interface VerifiedRequest {
  /** The agent (the token's `client_id`, bound to the DPoP key). */
  readonly agent: string
  /** With token exchange (an `act` claim), the user the agent acts for (`sub`); else null. */
  readonly user: string | null
  readonly act: { readonly sub: string } | null
  /** The agent's identity claims the token carries (`agentid.claims`); null for a token without them. */
  readonly agentClaims: Readonly<AgentClaims> | null
  /** After token exchange, the issuer URL of the user's identity provider (`agentid.subjectIssuer`); else null. */
  readonly userIssuer: string | null
  /** The delegation chain the token was issued on (`agentid.delegation`): its root and number of links; else null. */
  readonly delegation: { readonly root: string; readonly depth: number } | null
  readonly authorizationDetails: readonly AgentActionDetail[]
  readonly issuer: string
  readonly tokenId: string
  readonly expiresAt: number
  /** Every claim of the verified access token. */
  readonly claims: Readonly<Record<string, unknown>>
  /**
   * The audience the access token was verified for (`audience`, else createVerifier's `resourceAudience`):
   * the adapters name this service by it (approval target, lineage audience), never by the request's Host.
   */
  readonly audience: string
  readonly proof: VerifiedDpopProof
}

/** What the request check needs from its verifier. */
export interface RequestContext {
  now: () => number
  clockSkewSec: number
  dpopMaxAgeSec: number
  /** Check DPoP proof signatures on libuv's thread pool (createVerifier's `offloadSignatures`). */
  offloadSignatures?: boolean
  maxTokenBytes: number
  replayCache: ReplayCache
  trustedIssuers: ReadonlySet<string>
  resourceAudience?: string
  dpopNonce?: () => string | undefined | Promise<string | undefined>
  /** Checks the issuer's signature on the token (throws VerificationError). */
  verifyIssuerSignature: (jwt: DecodedJwt, iss: string) => Promise<void>
  /** The value of `index` in the status list at `url` signed by `issuer` (the verifier's cached lists). */
  statusOf: (url: string, issuer: string, index: number) => Promise<number>
  tokens: BoundedCache<string, VerifiedToken>
  /** True when a revocation event names the agent or its identity credential (createVerifier's revocationStream). */
  revoked?: (issuer: string, agent: string, credentialId: string | null) => boolean
}

interface VerifiedToken {
  readonly claims: Readonly<Record<string, unknown>>
  readonly aud: readonly string[]
  readonly iat: number
  readonly nbf: number | null
  readonly exp: number
  /** The DPoP key thumbprint (`cnf.jkt`), or null for a certificate-bound token. */
  readonly jkt: string | null
  /** The certificate thumbprint (`cnf.x5t#S256`, RFC 8705), or null for a DPoP-bound token. */
  readonly x5t: string | null
  /** The identity credential the token rests on, checked on every request. */
  readonly status: { readonly credentialId: string; readonly url: string; readonly index: number } | null
  readonly result: Omit<VerifiedRequest, 'proof' | 'audience'>
  /** `ath` of this token (RFC 9449 §4.2): every proof presented with it must carry it, so it is hashed once. */
  readonly ath: string
}

export function createTokenCache(size: number): BoundedCache<string, VerifiedToken> {
  return new BoundedCache(size)
}

function tokenFail(code: ConstructorParameters<typeof VerificationError>[0], message: string, details: Record<string, unknown> = {}): never {
  dpopFail(code, 'invalid_token', `access token: ${message}`, details)
}


function numericDate(value: unknown, claim: string): number {
  if (!isNumericDate(value)) tokenFail('ERR_MALFORMED', `${claim} must be a NumericDate`, { claim })
  return value
}


/** Every value of header `name` (case-insensitive), duplicates kept apart where the source keeps them. */
export function headerValues(headers: RequestHeaders, name: string): string[] {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    const value = (headers as { get(n: string): string | null }).get(name)
    return value === null ? [] : [value]
  }
  const out: string[] = []
  const record = headers as Record<string, string | readonly string[] | undefined>
  // Every key is compared, not only `name` itself (a header sent under two spellings counts twice); a key of
  // another length cannot be `name` in any case, so it is not lower-cased (node:http passes ~10 per request).
  for (const key in record) {
    if (key !== name && (key.length !== name.length || key.toLowerCase() !== name)) continue
    if (!Object.hasOwn(record, key)) continue
    const value = record[key]
    if (typeof value === 'string') out.push(value)
    else if (Array.isArray(value)) for (const v of value as unknown[]) if (typeof v === 'string') out.push(v)
  }
  return out
}

function stringList(value: unknown, what: string, required: boolean): string[] | undefined {
  if (value === undefined && !required) return undefined
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'string' && v !== '')) {
    tokenFail('ERR_MALFORMED', `authorization_details ${what} must be a non-empty list of strings`)
  }
  return [...(value as string[])]
}

function parseAuthorizationDetails(value: unknown): AgentActionDetail[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) tokenFail('ERR_MALFORMED', 'authorization_details must be a list')
  return value.map((d) => {
    if (!isRecord(d) || d.type !== AGENTID_ACTION_TYPE) tokenFail('ERR_MALFORMED', `authorization_details entries must be of type ${AGENTID_ACTION_TYPE}`)
    const datatypes = stringList(d.datatypes, 'datatypes', false)
    const identifiers = stringList(d.identifiers, 'identifiers', false)
    return {
      type: AGENTID_ACTION_TYPE,
      actions: stringList(d.actions, 'actions', true)!,
      locations: stringList(d.locations, 'locations', true)!,
      ...(datatypes ? { datatypes } : {}),
      ...(identifiers ? { identifiers } : {}),
    }
  })
}

interface AgentIdClaim {
  claims: AgentClaims
  status: { credentialId: string; url: string; index: number }
  delegation: { root: string; depth: number } | null
  subjectIssuer: string | null
}

// The `agentid` claim: the agent's claims, its identity credential and that credential's status
// entry, and, when present, the delegation chain's root and depth and the user's identity provider.
function parseAgentIdClaim(value: unknown): AgentIdClaim | null {
  if (value === undefined) return null
  if (!isRecord(value)) tokenFail('ERR_MALFORMED', 'agentid must be an object')
  let claims: AgentClaims
  let entry: ReturnType<typeof parseStatusEntry>
  try {
    claims = parseAgentClaims(value.claims, { strict: false, code: 'ERR_MALFORMED' })
    entry = parseStatusEntry(value.credentialStatus, 'ERR_MALFORMED')
  } catch (cause) {
    return tokenFail('ERR_MALFORMED', `agentid: ${(cause as Error).message}`)
  }
  if (typeof value.credentialId !== 'string' || value.credentialId === '') tokenFail('ERR_MALFORMED', 'agentid.credentialId is missing')
  let delegation: AgentIdClaim['delegation'] = null
  if (value.delegation !== undefined) {
    const d = value.delegation
    if (!isRecord(d) || typeof d.root !== 'string' || !d.root.startsWith('did:') || !Number.isInteger(d.depth) || (d.depth as number) < 1) {
      tokenFail('ERR_MALFORMED', 'agentid.delegation must be { root: DID, depth: positive integer }')
    }
    delegation = { root: d.root as string, depth: d.depth as number }
  }
  if (value.subjectIssuer !== undefined && (typeof value.subjectIssuer !== 'string' || value.subjectIssuer === '')) tokenFail('ERR_MALFORMED', 'agentid.subjectIssuer must be a string')
  return {
    claims,
    status: { credentialId: value.credentialId as string, url: entry.statusListCredential, index: statusIndexOf(entry.statusListIndex) },
    delegation,
    subjectIssuer: (value.subjectIssuer as string | undefined) ?? null,
  }
}

/** Decodes, checks the signature of, and parses an access token (everything but time and audience). */
async function verifyAccessToken(ctx: RequestContext, token: string): Promise<VerifiedToken> {
  let jwt: DecodedJwt
  try {
    jwt = decodeJwt(token, ctx.maxTokenBytes) // EdDSA only, strict base64url and JSON
  } catch (cause) {
    if (cause instanceof VerificationError) tokenFail(cause.code, cause.message)
    throw cause
  }
  const typ = jwt.header.typ
  if (typ !== ACCESS_TOKEN_TYP && typ !== `application/${ACCESS_TOKEN_TYP}`) tokenFail('ERR_MALFORMED', `typ must be ${ACCESS_TOKEN_TYP}`, { typ: typ ?? null })
  const p = jwt.payload
  const iss = p.iss
  if (typeof iss !== 'string') tokenFail('ERR_MALFORMED', 'iss is missing')
  if (!ctx.trustedIssuers.has(iss)) tokenFail('ERR_UNTRUSTED_ISSUER', 'issuer is not trusted', { iss })
  if (jwt.header.kid === undefined) tokenFail('ERR_MALFORMED', 'kid is missing')
  try {
    await ctx.verifyIssuerSignature(jwt, iss)
  } catch (cause) {
    if (cause instanceof VerificationError) tokenFail(cause.code, cause.message)
    throw cause
  }

  // Signed by a trusted issuer: now its content must be well-formed.
  const aud = typeof p.aud === 'string' ? [p.aud] : p.aud
  if (!Array.isArray(aud) || aud.length === 0 || !aud.every((a) => typeof a === 'string')) tokenFail('ERR_MALFORMED', 'aud must be a string or a list of strings')
  const iat = numericDate(p.iat, 'iat')
  const exp = numericDate(p.exp, 'exp')
  const nbf = p.nbf === undefined ? null : numericDate(p.nbf, 'nbf')
  if (exp <= iat || exp - iat > MAX_ACCESS_TOKEN_LIFETIME_SEC) tokenFail('ERR_MALFORMED', `lifetime must be 1 to ${MAX_ACCESS_TOKEN_LIFETIME_SEC} s`, { iat, exp })
  if (typeof p.jti !== 'string' || p.jti === '') tokenFail('ERR_MALFORMED', 'jti is missing')
  const cnf = p.cnf
  // One confirmation method, checked whole: DPoP (jkt) or a certificate (x5t#S256, RFC 8705). A token
  // bound two ways (or by jwk, jku, kid) is refused, not half-checked.
  const thumbprint = /^[A-Za-z0-9_-]{43}$/
  if (!isRecord(cnf) || Object.keys(cnf).length !== 1) tokenFail('ERR_MALFORMED', 'cnf must hold one confirmation method: jkt (DPoP) or x5t#S256 (certificate)')
  const jkt = typeof cnf.jkt === 'string' && thumbprint.test(cnf.jkt) ? cnf.jkt : null
  const x5t = typeof cnf['x5t#S256'] === 'string' && thumbprint.test(cnf['x5t#S256']) ? cnf['x5t#S256'] : null
  if (jkt === null && x5t === null) tokenFail('ERR_MALFORMED', 'cnf.jkt is missing (not a DPoP-bound token) and so is cnf.x5t#S256')
  const clientId = p.client_id
  if (!isAgentDid(clientId)) tokenFail('ERR_MALFORMED', 'client_id must be the agent DID')
  const sub = p.sub
  if (typeof sub !== 'string' || sub === '') tokenFail('ERR_MALFORMED', 'sub is missing')
  let act: { sub: string } | null = null
  if (p.act !== undefined) {
    if (!isRecord(p.act) || !isAgentDid(p.act.sub)) tokenFail('ERR_MALFORMED', 'act.sub must be the agent DID')
    if (p.act.sub !== clientId) tokenFail('ERR_KEY_MISMATCH', 'act.sub is not client_id')
    act = { sub: p.act.sub }
  } else if (sub !== clientId) {
    tokenFail('ERR_KEY_MISMATCH', 'sub is not client_id (and there is no act claim)')
  }
  const authorizationDetails = parseAuthorizationDetails(p.authorization_details)
  const agentid = parseAgentIdClaim(p.agentid)
  const claims = deepFreeze(structuredClone(p))
  return deepFreeze({
    claims,
    aud: [...(aud as string[])],
    iat,
    nbf,
    exp,
    jkt,
    x5t,
    ath: accessTokenHash(token),
    status: agentid ? agentid.status : null,
    result: {
      agent: clientId,
      user: act ? sub : null,
      act,
      agentClaims: agentid ? agentid.claims : null,
      userIssuer: agentid ? agentid.subjectIssuer : null,
      delegation: agentid ? agentid.delegation : null,
      authorizationDetails,
      issuer: iss,
      tokenId: p.jti,
      expiresAt: exp,
      claims,
    },
  })
}

/**
 * Verifies an HTTP request carrying `Authorization: DPoP <access token>` and one `DPoP` proof:
 * the token (signature by a trusted issuer, typ, audience, lifetime <= 300 s, time, cnf.jkt), cached
 * by its bytes until it expires, then the proof (RFC 9449 §4.3) bound to the token and this request,
 * then, on every request, the status of the identity credential the token names (`agentid.credentialStatus`)
 * in the issuer's status list (cached `statusTtlMs`): revoked is ERR_REVOKED.
 */
export async function verifyRequestWith(ctx: RequestContext, request: HttpRequestLike, options: VerifyRequestOptions = {}): Promise<VerifiedRequest> {
  if (!isRecord(request) || typeof request.method !== 'string' || typeof request.url !== 'string' || !isRecord(request.headers)) {
    throw new TypeError('verifyRequest: { method, url, headers } is required')
  }
  const audience = options.audience ?? ctx.resourceAudience
  if (typeof audience !== 'string' || audience === '') throw new TypeError('verifyRequest: options.audience (or createVerifier resourceAudience) is required')

  // The proof's htu is compared with the path resolved (RFC 9449 §4.3), the router takes it as sent.
  if (ambiguousPath(request.url)) dpopFail('ERR_MALFORMED', 'invalid_request', 'the request path holds dot segments, backslashes or escaped unreserved characters: the URL a proof names would not be the route that runs')
  const authorization = headerValues(request.headers, 'authorization')
  if (authorization.length === 0) dpopFail('ERR_MALFORMED', 'invalid_token', 'no Authorization header')
  if (authorization.length > 1) dpopFail('ERR_MALFORMED', 'invalid_request', 'more than one Authorization header')
  const token = dpopToken(authorization[0]!)
  const proofs = headerValues(request.headers, 'dpop')
  // A JWS never holds a comma: Node and fetch join repeated headers with one.
  if (proofs.length !== 1 || proofs[0]!.includes(',')) dpopFail('ERR_MALFORMED', 'invalid_dpop_proof', 'exactly one DPoP header is required')
  if (token.length > ctx.maxTokenBytes) dpopFail('ERR_MALFORMED', 'invalid_token', `access token is larger than ${ctx.maxTokenBytes} bytes`)

  const verified = await usableToken(ctx, token, audience)
  if (verified.jkt === null) tokenFail('ERR_MALFORMED', 'cnf.jkt is missing (not a DPoP-bound token)')
  const skew = ctx.clockSkewSec
  // A revocation pushed on the event stream stops a cached token at once.
  if (ctx.revoked?.(verified.result.issuer, verified.result.agent, verified.status?.credentialId ?? null)) {
    tokenFail('ERR_REVOKED', 'the agent or its identity credential has been revoked (revocation event)', { credentialId: verified.status?.credentialId ?? null })
  }

  const nonce = options.nonce ?? (ctx.dpopNonce ? await ctx.dpopNonce() : undefined)
  const proof = await verifyDpopProof(proofs[0], {
    method: request.method,
    url: request.url,
    accessToken: token,
    accessTokenHash: verified.ath,
    jkt: verified.jkt,
    ...(nonce === undefined ? {} : { nonce }),
    now: ctx.now,
    clockSkewSec: skew,
    maxAgeSec: ctx.dpopMaxAgeSec,
    replayCache: ctx.replayCache,
    offloadSignatures: ctx.offloadSignatures === true,
  })
  await checkCredentialStatus(ctx, verified)
  return verifiedRequest(verified.result, audience, proof)
}

/**
 * `{ ...result, audience, proof }`, frozen, written member by member: spreading the cached (frozen) result
 * took V8's slow object-clone path, one property definition at a time, on every request.
 */
function verifiedRequest(r: VerifiedToken['result'], audience: string, proof: VerifiedDpopProof): VerifiedRequest {
  return Object.freeze({
    agent: r.agent, user: r.user, act: r.act, agentClaims: r.agentClaims, userIssuer: r.userIssuer, delegation: r.delegation,
    authorizationDetails: r.authorizationDetails, issuer: r.issuer, tokenId: r.tokenId, expiresAt: r.expiresAt, claims: r.claims, audience, proof,
  } satisfies Record<keyof VerifiedRequest, unknown>)
}

/** The last Authorization value {@link dpopToken} accepted, and its token: an agent sends the same one on every call. */
let lastAuthorization: { value: string | undefined; token: string } = { value: undefined, token: '' }

/**
 * The access token of an `Authorization: DPoP <token>` value (one header line), or the refusal: a pure
 * function of the string, so the last accepted value's answer is kept (the match is a scan of the whole
 * token, some hundreds of characters, on every request).
 */
function dpopToken(value: string): string {
  if (value === lastAuthorization.value) return lastAuthorization.token
  if (value.includes(',')) dpopFail('ERR_MALFORMED', 'invalid_request', 'more than one Authorization header')
  const match = /^([A-Za-z]+) +([A-Za-z0-9\-._~+/]+=*)$/.exec(value.trim())
  if (!match) dpopFail('ERR_MALFORMED', 'invalid_token', 'Authorization is not "DPoP <token>"')
  const scheme = match[1]!.toLowerCase()
  // Every agentid access token is DPoP-bound: as a bearer token it is refused (RFC 9449 §7.2).
  if (scheme === 'bearer') dpopFail('ERR_MALFORMED', 'invalid_token', 'a DPoP-bound access token must use the DPoP scheme, not Bearer')
  if (scheme !== 'dpop') dpopFail('ERR_MALFORMED', 'invalid_token', 'Authorization scheme must be DPoP')
  lastAuthorization = { value, token: match[2]! }
  return match[2]!
}

/** The last token {@link tokenCacheKey} hashed, and its hash: an agent sends the same token on every call. */
let lastToken: { token: string | undefined; key: string } = { token: undefined, key: '' }

/** The token cache's key: the token's SHA-256 (base64), a pure function of the string, its last answer kept. */
function tokenCacheKey(token: string): string {
  if (token === lastToken.token) return lastToken.key
  const key = hash('sha256', token, 'base64')
  lastToken = { token, key }
  return key
}

// The token verified (cached by its SHA-256 until it expires: one signature check per token), then
// its time and audience, on every request.
async function usableToken(ctx: RequestContext, token: string, audience: string): Promise<VerifiedToken> {
  const key = tokenCacheKey(token)
  let verified = ctx.tokens.get(key)
  if (verified === undefined) {
    verified = await verifyAccessToken(ctx, token)
    ctx.tokens.set(key, verified)
  }
  const t = ctx.now() / 1000
  const skew = ctx.clockSkewSec
  if (verified.exp + skew <= t) {
    ctx.tokens.delete(key)
    tokenFail('ERR_EXPIRED', 'expired', { exp: verified.exp })
  }
  if (verified.iat - skew > t || (verified.nbf !== null && verified.nbf - skew > t)) tokenFail('ERR_NOT_YET_VALID', 'not yet valid')
  if (!verified.aud.includes(audience)) tokenFail('ERR_AUDIENCE_MISMATCH', 'aud does not name this resource server', { audience })
  return verified
}

// The agent's identity credential, on every request: a token cached by its bytes stops working
// within the status lists' TTL of a revocation.
async function checkCredentialStatus(ctx: RequestContext, verified: VerifiedToken): Promise<void> {
  if (verified.status !== null) {
    const { credentialId, url, index } = verified.status
    let value: number
    try {
      value = await ctx.statusOf(url, verified.result.issuer, index)
    } catch (cause) {
      if (cause instanceof VerificationError) tokenFail(cause.code, `identity credential status: ${cause.message}`, { credentialId })
      throw cause
    }
    if (value !== 0) tokenFail('ERR_REVOKED', 'the agent\'s identity credential has been revoked', { credentialId })
  }
}

/** A request over mutual TLS: the client certificate the TLS stack authenticated (leaf). */
export interface CertificateBoundRequestLike extends HttpRequestLike {
  /** The TLS client certificate (DER, or node:crypto's, e.g. `socket.getPeerX509Certificate()`). */
  clientCertificate: X509Certificate | Uint8Array | null | undefined
}

/** What `verifyCertificateBoundRequest` returns: as {@link VerifiedRequest}, with the certificate instead of a DPoP proof. */
export type VerifiedCertificateBoundRequest = Omit<VerifiedRequest, 'proof'> & { readonly certificateThumbprint: string }

/**
 * Verifies a request carrying `Authorization: Bearer <access token>` whose token is bound to a TLS
 * client certificate (RFC 8705 §3: `cnf.x5t#S256`): the token as {@link verifyRequestWith} checks it
 * (issuer, signature, typ, lifetime, time, audience, credential status on every request), then that
 * the certificate presented on this connection has that SHA-256 thumbprint (ERR_KEY_MISMATCH). A
 * DPoP-bound token, a DPoP header, or a request without a client certificate is refused.
 */
export async function verifyCertificateBoundRequestWith(ctx: RequestContext, request: CertificateBoundRequestLike, options: VerifyRequestOptions = {}): Promise<VerifiedCertificateBoundRequest> {
  if (!isRecord(request) || typeof request.method !== 'string' || typeof request.url !== 'string' || !isRecord(request.headers)) {
    throw new TypeError('verifyCertificateBoundRequest: { method, url, headers, clientCertificate } is required')
  }
  const audience = options.audience ?? ctx.resourceAudience
  if (typeof audience !== 'string' || audience === '') throw new TypeError('verifyCertificateBoundRequest: options.audience (or createVerifier resourceAudience) is required')
  const authorization = headerValues(request.headers, 'authorization')
  if (authorization.length === 0) dpopFail('ERR_MALFORMED', 'invalid_token', 'no Authorization header')
  if (authorization.length > 1 || authorization[0]!.includes(',')) dpopFail('ERR_MALFORMED', 'invalid_request', 'more than one Authorization header')
  const match = /^([A-Za-z]+) +([A-Za-z0-9\-._~+/]+=*)$/.exec(authorization[0]!.trim())
  if (!match || match[1]!.toLowerCase() !== 'bearer') dpopFail('ERR_MALFORMED', 'invalid_token', 'Authorization is not "Bearer <token>"')
  if (headerValues(request.headers, 'dpop').length > 0) dpopFail('ERR_MALFORMED', 'invalid_request', 'a DPoP proof on a certificate-bound request')
  const token = match[2]!
  if (token.length > ctx.maxTokenBytes) dpopFail('ERR_MALFORMED', 'invalid_token', `access token is larger than ${ctx.maxTokenBytes} bytes`)
  const cert = request.clientCertificate
  if (!(cert instanceof X509Certificate) && !(cert instanceof Uint8Array)) dpopFail('ERR_KEY_MISMATCH', 'invalid_token', 'no TLS client certificate: a certificate-bound token needs the certificate it is bound to')
  const verified = await usableToken(ctx, token, audience)
  if (verified.x5t === null) tokenFail('ERR_MALFORMED', 'cnf.x5t#S256 is missing (not a certificate-bound token)')
  const thumbprint = createHash('sha256').update(cert instanceof X509Certificate ? cert.raw : cert).digest('base64url')
  if (thumbprint !== verified.x5t) tokenFail('ERR_KEY_MISMATCH', 'the token is bound to another certificate (cnf.x5t#S256)')
  await checkCredentialStatus(ctx, verified)
  return Object.freeze({ ...verified.result, audience, certificateThumbprint: thumbprint })
}
