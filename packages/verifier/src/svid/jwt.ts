// JWT-SVIDs (SPIFFE JWT-SVID.md): header allow-list, signature by a jwt-svid key of the bundle, sub, aud, exp.
import { constants, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import { agentDidFromSpiffeId, base64urlDecodeInput, parseSpiffeId, parseStrictJsonObject, VerificationError, type SpiffeId, type VerificationErrorCode } from '@agentid/core'
import type { SpiffeBundle } from './bundle.js'

/** The algorithms JWT-SVID.md §2.1 allows (EdDSA and HMAC are not among them). */
export const JWT_SVID_ALGS = Object.freeze(['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512'] as const)
/** Largest JWT-SVID accepted, in bytes (16 KiB). */
export const MAX_JWT_SVID_BYTES = 16 * 1024

export interface VerifyJwtSvidOptions {
  /** The audience this service expects: it must be one of the token's `aud` values. Required. */
  audience: string
  /** Unix seconds. */
  now: number
  /** Allowed clock difference for `exp`/`nbf`, seconds (default 0). */
  clockSkewSec?: number
}

/** A verified JWT-SVID. */
export interface VerifiedJwtSvid {
  readonly spiffeId: SpiffeId
  /** The agent did:key when the SPIFFE ID follows agentid's `.../agent/<orchestrator>/<key>` scheme; else null. */
  readonly did: string | null
  readonly audience: readonly string[]
  readonly expiresAt: number
  readonly issuedAt: number | null
  readonly claims: Readonly<Record<string, unknown>>
}

function fail(code: VerificationErrorCode, message: string, details: Record<string, unknown> = {}): never {
  throw new VerificationError(code, `JWT-SVID: ${message}`, { details })
}

const HASH: Record<string, string> = { 256: 'sha256', 384: 'sha384', 512: 'sha512' }

function verifySignature(alg: string, key: KeyObject, input: Buffer, signature: Buffer): boolean {
  const family = alg.slice(0, 2)
  const hash = HASH[alg.slice(2)]!
  const type = key.asymmetricKeyType
  try {
    if (family === 'ES') {
      const curve = (key.asymmetricKeyDetails as { namedCurve?: string } | undefined)?.namedCurve
      const expected = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' }[alg]
      if (type !== 'ec' || curve !== expected) return false
      return cryptoVerify(hash, input, { key, dsaEncoding: 'ieee-p1363' }, signature)
    }
    if (type !== 'rsa') return false
    if (family === 'PS') return cryptoVerify(hash, input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, signature)
    return cryptoVerify(hash, input, key, signature)
  } catch {
    return false
  }
}

/**
 * Verifies a JWT-SVID against a SPIFFE bundle: only `alg`, `kid` and `typ` in the header; `alg` one of
 * {@link JWT_SVID_ALGS} (ERR_UNSUPPORTED_ALG); `typ`, if present, `JWT` or `JOSE`; the signature by the
 * bundle's jwt-svid key named by `kid` (or, without `kid`, any of them; ERR_SIGNATURE_INVALID, ERR_KEY_MISMATCH
 * for an unknown `kid`); `sub` a SPIFFE ID of the bundle's trust domain (ERR_UNTRUSTED_ISSUER); `aud`
 * present and naming `audience` (ERR_AUDIENCE_MISMATCH); `exp` present and not past (ERR_EXPIRED).
 * @example
 * const { spiffeId, did } = verifyJwtSvid(token, bundle, { audience: 'spiffe://example.org/erp', now: Date.now() / 1000 })
 */
export function verifyJwtSvid(token: unknown, bundle: SpiffeBundle, options: VerifyJwtSvidOptions): VerifiedJwtSvid {
  if (typeof options?.audience !== 'string' || options.audience === '') throw new TypeError('verifyJwtSvid: options.audience is required')
  if (typeof token !== 'string') fail('ERR_MALFORMED', 'must be a compact JWS string')
  if (token.length > MAX_JWT_SVID_BYTES) fail('ERR_MALFORMED', `larger than ${MAX_JWT_SVID_BYTES} bytes`)
  const parts = token.split('.')
  if (parts.length !== 3) fail('ERR_MALFORMED', 'must have three segments')
  let header: Record<string, unknown>
  let payload: Record<string, unknown>
  let signature: Buffer
  try {
    header = parseStrictJsonObject(Buffer.from(base64urlDecodeInput(parts[0]!, 'header')).toString('utf8'))
    payload = parseStrictJsonObject(Buffer.from(base64urlDecodeInput(parts[1]!, 'payload')).toString('utf8'))
    signature = Buffer.from(base64urlDecodeInput(parts[2]!, 'signature'))
  } catch {
    return fail('ERR_MALFORMED', 'segments must be base64url JSON objects')
  }
  for (const name of Object.keys(header)) if (name !== 'alg' && name !== 'kid' && name !== 'typ') fail('ERR_MALFORMED', `header parameter ${name} is not allowed`, { header: name })
  const alg = header.alg
  if (typeof alg !== 'string' || !(JWT_SVID_ALGS as readonly string[]).includes(alg)) fail('ERR_UNSUPPORTED_ALG', `alg ${String(alg)} is not allowed`)
  if (header.typ !== undefined && header.typ !== 'JWT' && header.typ !== 'JOSE') fail('ERR_MALFORMED', 'typ must be JWT or JOSE')
  let keys: KeyObject[]
  if (header.kid !== undefined) {
    if (typeof header.kid !== 'string') fail('ERR_MALFORMED', 'kid must be a string')
    const key = bundle.jwtAuthorities.get(header.kid)
    if (!key) fail('ERR_KEY_MISMATCH', 'kid names no JWT authority of the bundle', { kid: header.kid })
    keys = [key]
  } else keys = [...bundle.jwtAuthorities.values()]
  const input = Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii')
  if (!keys.some((key) => verifySignature(alg, key, input, signature))) fail('ERR_SIGNATURE_INVALID', 'the signature does not verify with the bundle')

  let spiffeId: SpiffeId
  try {
    spiffeId = parseSpiffeId(payload.sub)
  } catch {
    return fail('ERR_MALFORMED', 'sub must be a SPIFFE ID')
  }
  if (spiffeId.trustDomain !== bundle.trustDomain) fail('ERR_UNTRUSTED_ISSUER', `sub is not in trust domain ${bundle.trustDomain}`)
  const aud = typeof payload.aud === 'string' ? [payload.aud] : payload.aud
  if (!Array.isArray(aud) || aud.length === 0 || !aud.every((a) => typeof a === 'string' && a !== '')) fail('ERR_MALFORMED', 'aud is required (a string or a list of strings)')
  if (!aud.includes(options.audience)) fail('ERR_AUDIENCE_MISMATCH', 'aud does not name this audience', { audience: options.audience })
  const exp = payload.exp
  if (typeof exp !== 'number' || !Number.isFinite(exp)) fail('ERR_MALFORMED', 'exp is required')
  const skew = options.clockSkewSec ?? 0
  if (exp + skew <= options.now) fail('ERR_EXPIRED', 'has expired', { exp })
  if (payload.nbf !== undefined && (typeof payload.nbf !== 'number' || payload.nbf - skew > options.now)) fail('ERR_NOT_YET_VALID', 'is not yet valid')
  const iat = payload.iat
  if (iat !== undefined && (typeof iat !== 'number' || !Number.isFinite(iat))) fail('ERR_MALFORMED', 'iat must be a NumericDate')
  return Object.freeze({
    spiffeId,
    did: agentDidFromSpiffeId(spiffeId),
    audience: Object.freeze([...(aud as string[])]),
    expiresAt: exp,
    issuedAt: (iat as number | undefined) ?? null,
    claims: Object.freeze({ ...payload }),
  })
}
