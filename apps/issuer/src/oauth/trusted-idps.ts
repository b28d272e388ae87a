// Identity providers the issuer trusts for token exchange (RFC 8693): their configuration
// (AGENTID_TRUSTED_IDPS or the `trustedIdps` option) and the check of a user's token (subject_token)
// against them, with jose: exact issuer, the IdP's keys (JWKS URI or inline JWKS), audience, time.
import { readFileSync } from 'node:fs'
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose'
import { AgentIdError, decodeJwtParts, isPrintableText, readBodyCapped, type JwsHeader } from '@agentid/core'
import { oauthFail } from './errors.js'

/** One trusted identity provider, as configured. */
export interface TrustedIdpConfig {
  /** The IdP's issuer identifier: a user token's `iss` must be exactly this. */
  issuer: string
  /** Where the IdP publishes its signing keys (fetched with the issuer's fetch, cached). */
  jwks_uri?: string
  /** Or the IdP's public keys inline. Exactly one of `jwks_uri` and `jwks`. */
  jwks?: JSONWebKeySet
  /** The `aud` a user token must contain. Default: the agentid issuer's base URL. */
  audience?: string
}

/** What the issuer takes from a verified user token. */
export interface VerifiedSubjectToken {
  /** The IdP's issuer URL. */
  issuer: string
  /** The user's `sub` at the IdP. */
  sub: string
  /** The token's `exp` (unix seconds). */
  exp: number
  /** The header's `typ`, as sent (absent: undefined). */
  typ: string | undefined
  payload: JWTPayload
}

/** Asymmetric algorithms accepted on user tokens; never HS*, never none. */
export const SUBJECT_TOKEN_ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const
/** Allowed clock difference on a user token's exp/nbf/iat (seconds). */
export const SUBJECT_TOKEN_SKEW_SEC = 60
const MAX_SUBJECT_TOKEN_BYTES = 16 * 1024
// JWT types a user's token may carry: an access token (RFC 9068), an ID token, a plain JWT.
const SUBJECT_TYPS = new Set([undefined, 'JWT', 'jwt', 'at+jwt', 'application/at+jwt'])
const MEMBERS = new Set(['issuer', 'jwks_uri', 'jwks', 'audience'])
/** Largest JWKS response body read from an IdP's `jwks_uri`; a longer one is refused, unread. */
export const MAX_JWKS_BYTES = 256 * 1024

/**
 * `fetchImpl` with the response body read up to {@link MAX_JWKS_BYTES} (jose would buffer a body of any
 * size until its timeout). Past the bound the body is cancelled and the fetch fails.
 */
export function boundedFetch(fetchImpl: () => typeof globalThis.fetch): typeof globalThis.fetch {
  return async (input, init) => {
    const response = await fetchImpl()(input, init)
    let body: Buffer
    try {
      // core's one capped reader: streamed, cancelled (the connection closed) at the cap.
      body = await readBodyCapped(response, MAX_JWKS_BYTES, init?.signal ?? undefined)
    } catch (error) {
      if (error instanceof AgentIdError && error.code === 'ERR_PAYLOAD_TOO_LARGE') throw new Error(`the JWKS response is larger than ${MAX_JWKS_BYTES} bytes`)
      throw error
    }
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers })
  }
}

const invalidConfig = (message: string): never => {
  throw new AgentIdError('ERR_INVALID_INPUT', `trusted identity providers: ${message}`)
}

function httpUrl(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 2048) return invalidConfig(`${what} must be an http(s) URL`)
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return invalidConfig(`${what} must be an http(s) URL`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') invalidConfig(`${what} must be an http(s) URL`)
  if (url.hash !== '' || value.includes('#')) invalidConfig(`${what} must not have a fragment`)
  return value
}

function publicJwks(value: unknown, i: number): JSONWebKeySet {
  const keys = (value as { keys?: unknown } | null)?.keys
  if (value === null || typeof value !== 'object' || !Array.isArray(keys) || keys.length === 0 || keys.length > 64) {
    return invalidConfig(`[${i}].jwks must be { "keys": [...] } with 1 to 64 keys`)
  }
  for (const key of keys as unknown[]) {
    if (key === null || typeof key !== 'object' || Array.isArray(key)) invalidConfig(`[${i}].jwks.keys must be JWK objects`)
    const k = key as Record<string, unknown>
    if (k.kty === 'oct') invalidConfig(`[${i}].jwks must not hold symmetric keys`)
    if ('d' in k || 'p' in k || 'q' in k || 'k' in k) invalidConfig(`[${i}].jwks must hold public keys only`)
  }
  return { keys: structuredClone(keys) } as JSONWebKeySet
}

/** Validates a list of trusted IdPs (from JSON or code); throws AgentIdError ERR_INVALID_INPUT. */
export function parseTrustedIdps(input: unknown): TrustedIdpConfig[] {
  if (!Array.isArray(input)) return invalidConfig('must be a JSON array of { issuer, jwks_uri | jwks, audience? }')
  if (input.length > 32) invalidConfig('at most 32 identity providers')
  const seen = new Set<string>()
  return input.map((entry: unknown, i) => {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return invalidConfig(`[${i}] must be an object`)
    const e = entry as Record<string, unknown>
    const unknown = Object.keys(e).find((k) => !MEMBERS.has(k))
    if (unknown !== undefined) invalidConfig(`[${i}].${unknown.slice(0, 64)} is not a known member`)
    const issuer = httpUrl(e.issuer, `[${i}].issuer`)
    if (seen.has(issuer)) invalidConfig(`[${i}].issuer ${issuer} is listed twice`)
    seen.add(issuer)
    if ((e.jwks_uri === undefined) === (e.jwks === undefined)) invalidConfig(`[${i}] needs exactly one of jwks_uri and jwks`)
    const out: TrustedIdpConfig = { issuer }
    if (e.jwks_uri !== undefined) out.jwks_uri = httpUrl(e.jwks_uri, `[${i}].jwks_uri`)
    else out.jwks = publicJwks(e.jwks, i)
    if (e.audience !== undefined) {
      if (typeof e.audience !== 'string' || e.audience.length === 0 || e.audience.length > 2048) invalidConfig(`[${i}].audience must be a non-empty string`)
      out.audience = e.audience as string
    }
    return out
  })
}

/**
 * Reads `AGENTID_TRUSTED_IDPS`: a JSON array inline (first non-space character `[`), or the path of
 * a file holding one. Unset or empty: no trusted IdPs (token exchange is then not offered).
 */
export function trustedIdpsFromEnv(value: string | undefined, readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): TrustedIdpConfig[] {
  if (value === undefined || value.trim() === '') return []
  let text: string
  if (value.trimStart().startsWith('[')) text = value
  else {
    try {
      text = readFile(value.trim())
    } catch {
      return invalidConfig(`AGENTID_TRUSTED_IDPS names a file that cannot be read: ${value.trim().slice(0, 256)}`)
    }
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return invalidConfig('AGENTID_TRUSTED_IDPS is not valid JSON')
  }
  return parseTrustedIdps(parsed)
}

interface Idp {
  issuer: string
  audience: string
  keys: JWTVerifyGetKey
  remote: boolean
  /** When fetching its JWKS last failed (unix seconds), while it has no fresh keys. */
  failedAt?: number
}

/**
 * After a failed JWKS fetch, requests naming that IdP are refused without fetching again for this long
 * (seconds) unless jose still holds fresh keys: jose only rate-limits refetches once it has a set.
 */
export const JWKS_RETRY_SEC = 30

const refuse = (message: string): never => oauthFail('invalid_request', `subject_token: ${message}`)

/**
 * Whether a user's `sub` can stand as an identifier in tokens, policies and logs: well-formed UTF-16,
 * no control character (a NUL truncates it for some consumers, a newline forges a log line) and no
 * bidirectional override (it displays as another name).
 */
export function isPrintableIdentifier(value: string): boolean {
  return isPrintableText(value) // the one rule of @agentid/core, shared with every claim
}

/**
 * The trusted IdPs, ready to verify user tokens. Remote JWKS are fetched with the injected fetch on
 * first use (bodies of at most {@link MAX_JWKS_BYTES}) and cached by jose (re-fetched for an unknown
 * `kid`, at most every 30 s).
 */
export class TrustedIdps {
  private readonly byIssuer = new Map<string, Idp>()

  constructor(configs: readonly TrustedIdpConfig[], o: { defaultAudience: string; fetch?: typeof globalThis.fetch }) {
    for (const c of parseTrustedIdps(configs)) {
      const keys = c.jwks
        ? createLocalJWKSet(c.jwks)
        : createRemoteJWKSet(new URL(c.jwks_uri!), { timeoutDuration: 5000, [customFetch]: boundedFetch(() => o.fetch ?? globalThis.fetch) })
      this.byIssuer.set(c.issuer, { issuer: c.issuer, audience: c.audience ?? o.defaultAudience, keys, remote: c.jwks === undefined })
    }
  }

  get size(): number {
    return this.byIssuer.size
  }

  /**
   * Verifies a user's token: issued by exactly one of the trusted IdPs, signed by one of its keys with
   * an allowed asymmetric algorithm, `aud` containing the configured audience, `exp` (required),
   * `nbf` and `iat` within {@link SUBJECT_TOKEN_SKEW_SEC}, a `sub` of 1 to 512 printable characters
   * ({@link isPrintableIdentifier}). Refusals are `invalid_request`
   * (RFC 8693 §2.2.2) and never echo the token.
   */
  async verify(token: string, now: number): Promise<VerifiedSubjectToken> {
    if (token.length === 0 || token.length > MAX_SUBJECT_TOKEN_BYTES) refuse(`must be a JWT of at most ${MAX_SUBJECT_TOKEN_BYTES} bytes`)
    let header: JwsHeader
    let claimed: JWTPayload
    try {
      // core's strict decoding (canonical base64url, no duplicate member at any depth), not jose's
      // JSON.parse, which keeps the last of two `sub` members: what is checked is what was signed.
      const parts = decodeJwtParts(token, MAX_SUBJECT_TOKEN_BYTES)
      header = parts.header
      claimed = parts.payload
    } catch {
      return refuse('is not a signed JWT with a duplicate-free JSON header and payload')
    }
    if (typeof header.alg !== 'string' || !(SUBJECT_TOKEN_ALGS as readonly string[]).includes(header.alg)) refuse(`alg must be one of ${SUBJECT_TOKEN_ALGS.join(', ')}`)
    if (!SUBJECT_TYPS.has(header.typ)) refuse('typ is not that of an access token or ID token')
    if ('jwk' in header || 'jku' in header || 'x5u' in header || 'x5c' in header) refuse('keys named in the header are not used')
    const idp = typeof claimed.iss === 'string' ? this.byIssuer.get(claimed.iss) : undefined
    if (!idp) return refuse('is not from a trusted identity provider')
    const fresh = (idp.keys as { fresh?: unknown }).fresh === true
    if (idp.failedAt !== undefined && now - idp.failedAt < JWKS_RETRY_SEC && !fresh) refuse('the identity provider\'s keys could not be fetched')
    let payload: JWTPayload
    try {
      const verified = await jwtVerify(token, idp.keys, {
        issuer: idp.issuer,
        audience: idp.audience,
        algorithms: [...SUBJECT_TOKEN_ALGS],
        currentDate: new Date(now * 1000),
        clockTolerance: SUBJECT_TOKEN_SKEW_SEC,
        requiredClaims: ['exp', 'sub'],
      })
      payload = verified.payload
    } catch (error) {
      const code = (error as { code?: unknown }).code
      if (code === 'ERR_JWT_EXPIRED') return refuse('has expired')
      if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') return refuse('a claim (aud, nbf, sub or exp) is not valid')
      if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' || code === 'ERR_JWKS_NO_MATCHING_KEY' || code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') {
        return refuse('its signature does not verify with the identity provider\'s keys')
      }
      if (code === 'ERR_JWKS_TIMEOUT' || code === 'ERR_JWKS_INVALID' || code === 'ERR_JOSE_GENERIC' || typeof code !== 'string') {
        if (idp.remote) idp.failedAt = now
        return refuse('the identity provider\'s keys could not be fetched')
      }
      return refuse('is not a valid JWT of the identity provider')
    }
    idp.failedAt = undefined
    if (typeof payload.iat === 'number' && payload.iat > now + SUBJECT_TOKEN_SKEW_SEC) refuse('iat is in the future')
    if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 512) refuse('sub must be a non-empty string of at most 512 characters')
    if (!isPrintableIdentifier(payload.sub as string)) refuse('sub must not hold control, bidirectional-override or unpaired surrogate characters')
    return { issuer: idp.issuer, sub: payload.sub as string, exp: payload.exp as number, typ: typeof header.typ === 'string' ? header.typ : undefined, payload }
  }
}
