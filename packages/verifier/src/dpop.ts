import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import { assertEd25519PublicKey, base64urlDecode, decodeJsonSegment, ed25519Backend, hasSmallOrderR, isNumericDate, VerificationError, verifyJwsSignatureRaw, type VerificationErrorCode } from '@agentid/core'
import type { JWK } from 'jose'
import { BoundedCache } from './lru.js'
import type { ReplayCache } from './replay-cache.js'
import { isRecord } from './util.js'

/** `typ` of a DPoP proof (RFC 9449 §4.2). */
export const DPOP_TYP = 'dpop+jwt'
/** Algorithms accepted for DPoP proofs. */
export const DPOP_ALGS: readonly string[] = Object.freeze(['EdDSA', 'ES256'])
/** Largest DPoP proof accepted, checked before any parsing. */
export const MAX_DPOP_PROOF_BYTES = 8 * 1024

/** The OAuth error a failure maps to (RFC 9449 §7.1, §8; RFC 6750 §3.1). */
export type DpopErrorName = 'invalid_dpop_proof' | 'use_dpop_nonce' | 'invalid_token' | 'invalid_request'

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']

export function dpopFail(code: VerificationErrorCode, dpopError: DpopErrorName, message: string, details: Record<string, unknown> = {}, cause?: unknown): never {
  throw new VerificationError(code, `dpop: ${message}`, { details: { dpopError, ...details }, cause })
}

function proofFail(code: VerificationErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown): never {
  dpopFail(code, 'invalid_dpop_proof', message, details, cause)
}


/** The last URL {@link normalizeHtu} answered for, and its answer. */
let lastHtu: { url: string | undefined; htu: string } = { url: undefined, htu: '' }

/**
 * The `htu` form of a request URL (RFC 9449 §4.3): scheme and host lower-case, default port
 * removed, dot segments resolved, no query or fragment. Throws ERR_MALFORMED for a non-HTTP(S) URL.
 * @example
 * normalizeHtu('HTTPS://Server.Example.COM:443/token?x=1') // 'https://server.example.com/token'
 */
export function normalizeHtu(url: string): string {
  // A resource server sees the same URL again and again (and a proof's htu is that URL): the last
  // answer is kept, a pure function of the string. Only a successful parse is kept.
  if (url === lastHtu.url) return lastHtu.htu
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch (cause) {
    return proofFail('ERR_MALFORMED', 'not an absolute URL', {}, cause)
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') proofFail('ERR_MALFORMED', 'not an HTTP(S) URL')
  const htu = `${parsed.protocol}//${parsed.host}${parsed.pathname}`
  lastHtu = { url, htu }
  return htu
}

/** `ath`: base64url SHA-256 of the access token's ASCII bytes (RFC 9449 §4.2). */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url')
}

/** What a DPoP proof is checked against. */
export interface DpopProofContext {
  method: string
  url: string
  /** The access token presented with the proof: the proof must carry its `ath`. */
  accessToken?: string
  /** `accessTokenHash(accessToken)`, when the caller already has it (hashed once per verified token). */
  accessTokenHash?: string
  /** The thumbprint the access token is bound to (`cnf.jkt`). */
  jkt?: string
  /** When given, the proof must carry exactly this `nonce` (else `use_dpop_nonce`). */
  nonce?: string
  /** Clock in milliseconds since the epoch. */
  now: () => number
  clockSkewSec: number
  /** How old `iat` may be, in seconds (plus skew). */
  maxAgeSec: number
  replayCache: ReplayCache
  algorithms?: readonly string[]
  /** Check the signature on libuv's thread pool instead of the event loop (createVerifier's `offloadSignatures`). Default false. */
  offloadSignatures?: boolean
}

/** A verified DPoP proof. */
export interface VerifiedDpopProof {
  readonly jkt: string
  readonly jti: string
  readonly iat: number
  readonly alg: string
  readonly jwk: Readonly<JWK>
}

function keyFitsAlg(jwk: Record<string, unknown>, alg: string): boolean {
  // A jwk may name its own alg, use and key_ops (RFC 7517 §4): they must allow verifying a signature of this alg.
  if (jwk.alg !== undefined && jwk.alg !== alg && !(alg === 'EdDSA' && jwk.alg === 'Ed25519')) return false
  if (jwk.use !== undefined && jwk.use !== 'sig') return false
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) return false
  if (alg === 'EdDSA') return jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && typeof jwk.x === 'string'
  if (alg === 'ES256') return jwk.kty === 'EC' && jwk.crv === 'P-256' && typeof jwk.x === 'string' && typeof jwk.y === 'string'
  return false
}

/** A proof key imported once: node:crypto's public key, its RFC 7638 thumbprint, and an Ed25519 key's raw bytes. */
interface ProofKey {
  readonly key: KeyObject
  readonly jkt: string
  readonly raw: Uint8Array | undefined
}

// An agent signs every proof with the same key: importing it (and hashing its thumbprint) once per key
// instead of once per request. Keyed by the RFC 7638 members, the whole of what the import reads.
const proofKeys = new BoundedCache<string, ProofKey>(1024)

/** The RFC 7638 form of a public JWK that {@link keyFitsAlg} accepted: required members, lexicographic order. */
function canonicalJwk(jwk: Record<string, unknown>, alg: string): string {
  return alg === 'EdDSA'
    ? JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x })
    : JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })
}

function importProofKey(canonical: string, alg: string): ProofKey {
  const cached = proofKeys.get(canonical)
  if (cached !== undefined) return cached
  let key: KeyObject
  let x: Uint8Array
  try {
    const jwk = JSON.parse(canonical) as Record<string, string>
    // Strict base64url first: Node's JWK import would take padding or foreign characters.
    x = base64urlDecode(jwk.x!, 'jwk x')
    if (jwk.y !== undefined) base64urlDecode(jwk.y, 'jwk y')
    // node:crypto checks the length (and, for P-256, that the point is on the curve); for Ed25519
    // the point must also be canonical and not of small order.
    if (alg === 'EdDSA') assertEd25519PublicKey(x)
    key = createPublicKey({ key: jwk, format: 'jwk' })
  } catch (cause) {
    return proofFail('ERR_MALFORMED', 'jwk is not a valid public key', {}, cause)
  }
  const entry: ProofKey = Object.freeze({ key, jkt: createHash('sha256').update(canonical).digest('base64url'), raw: alg === 'EdDSA' ? x : undefined })
  proofKeys.set(canonical, entry)
  return entry
}

/** A proof header that passed every check not depending on the request: its alg, key, thumbprint and jwk. */
interface ProofHeader {
  readonly alg: string
  readonly key: KeyObject
  readonly raw: Uint8Array | undefined
  readonly jkt: string
  readonly jwk: Readonly<JWK>
}

// An agent's proofs all carry the same header (typ, alg, its jwk): the header is decoded and checked once
// per exact segment, not once per proof. Only a header that passed is kept; the alg allow-list, which the
// caller may change, is checked on every proof.
const proofHeaders = new BoundedCache<string, ProofHeader>(1024)

/** The header of a proof checked as {@link verifyDpopProof} checks it (throwing its errors), its key imported, then kept. */
function checkProofHeader(segment: string, header: Record<string, unknown>, algorithms: readonly string[]): ProofHeader {
  if (header.typ !== DPOP_TYP) proofFail('ERR_MALFORMED', `typ must be ${DPOP_TYP}`, { typ: typeof header.typ === 'string' ? header.typ : null })
  // RFC 9864 names EdDSA over Ed25519 `Ed25519` (fully specified); openid-client v6 signs proofs with an
  // Ed25519 key under that name. Same signature, same key type: checked exactly as EdDSA, where EdDSA is allowed.
  const alg = header.alg === 'Ed25519' ? 'EdDSA' : header.alg
  if (typeof alg !== 'string' || !algorithms.includes(alg)) proofFail('ERR_UNSUPPORTED_ALG', 'alg is not accepted', { alg: typeof alg === 'string' ? alg : null })
  if ('crit' in header || 'b64' in header) proofFail('ERR_MALFORMED', 'crit and b64 are not supported')
  const jwk = header.jwk
  if (!isRecord(jwk)) proofFail('ERR_MALFORMED', 'jwk header is missing')
  if (PRIVATE_MEMBERS.some((m) => m in jwk)) proofFail('ERR_MALFORMED', 'jwk must be a public key (it holds private members)')
  if (!keyFitsAlg(jwk, alg)) proofFail('ERR_UNSUPPORTED_ALG', 'jwk does not fit alg', { alg, kty: typeof jwk.kty === 'string' ? jwk.kty : null })
  const { key, jkt, raw } = importProofKey(canonicalJwk(jwk, alg), alg)
  const entry: ProofHeader = Object.freeze({ alg, key, raw, jkt, jwk: Object.freeze({ ...(jwk as JWK) }) })
  proofHeaders.set(segment, entry)
  return entry
}

// node:crypto's callback form: the check runs on libuv's thread pool.
function verifyOnPool(alg: string, data: Buffer, key: KeyObject, sig: Buffer): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, ok: boolean) => (error === null ? resolve(ok) : reject(error))
    if (alg === 'EdDSA') cryptoVerify(null, data, key, sig, done)
    else cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig, done)
  })
}

/**
 * Checks a proof's signature: on the event loop (one Ed25519 check is ~50 µs, less than a hop to the
 * thread pool costs), an Ed25519 one on libsodium under its raw key where core's addon loads (see
 * core's ed25519Backend), else node:crypto; or on the pool with `offload` (node:crypto).
 */
async function verifyProofSignature(signingInput: string, signature: string, alg: string, key: KeyObject, raw: Uint8Array | undefined, offload: boolean): Promise<void> {
  let ok = false
  try {
    const sig = base64urlDecode(signature, 'DPoP signature')
    if (!offload && raw !== undefined && sig.length === 64 && ed25519Backend() === 'libsodium') {
      verifyJwsSignatureRaw({ signingInput, signature: sig }, raw) // the same small-order R check; throws
      return
    }
    const data = Buffer.from(signingInput, 'latin1') // base64url and a dot: checked by the decoding above
    if (sig.length === 64 && !(alg === 'EdDSA' && hasSmallOrderR(sig))) { // libsodium's strict check, as for every EdDSA signature
      if (offload) ok = await verifyOnPool(alg, data, key, sig)
      else ok = alg === 'EdDSA' ? cryptoVerify(null, data, key, sig) : cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, sig)
    }
  } catch (cause) {
    proofFail('ERR_SIGNATURE_INVALID', 'proof signature does not verify under its jwk', {}, cause)
  }
  if (!ok) proofFail('ERR_SIGNATURE_INVALID', 'proof signature does not verify under its jwk')
}

/**
 * Verifies a DPoP proof per RFC 9449 §4.3 (and §7 with an access token): one compact JWS, typ
 * `dpop+jwt`, alg in the allow-list, a public `jwk` that verifies the signature, `htm`, `htu`,
 * `iat` window, `ath`, the key's thumbprint = `jkt`, the server nonce, and last an unseen `jti`.
 * Throws VerificationError whose `details.dpopError` names the OAuth error.
 */
export async function verifyDpopProof(proof: unknown, ctx: DpopProofContext): Promise<VerifiedDpopProof> {
  if (typeof proof !== 'string') proofFail('ERR_MALFORMED', 'proof must be a compact JWS string')
  if (proof.length > MAX_DPOP_PROOF_BYTES) proofFail('ERR_MALFORMED', `proof is larger than ${MAX_DPOP_PROOF_BYTES} bytes`)
  const parts = proof.split('.')
  if (parts.length !== 3 || parts.some((p) => p === '')) proofFail('ERR_MALFORMED', 'proof is not a compact JWS of three segments')
  const known = proofHeaders.get(parts[0]!)
  let header: Record<string, unknown> | undefined
  let payload: Record<string, unknown>
  try {
    if (known === undefined) header = decodeJsonSegment(parts[0]!, 'DPoP header', 4)
    payload = decodeJsonSegment(parts[1]!, 'DPoP payload', 4)
  } catch (cause) {
    return proofFail('ERR_MALFORMED', 'proof header or payload is not a JSON object', {}, cause)
  }
  const algorithms = ctx.algorithms ?? DPOP_ALGS
  if (known !== undefined && !algorithms.includes(known.alg)) proofFail('ERR_UNSUPPORTED_ALG', 'alg is not accepted', { alg: known.alg })
  const { alg, key, raw, jkt, jwk } = known ?? checkProofHeader(parts[0]!, header!, algorithms)
  await verifyProofSignature(`${parts[0]!}.${parts[1]!}`, parts[2]!, alg, key, raw, ctx.offloadSignatures === true)

  // Signed by the key in its header: now its claims.
  const { jti, htm, htu, iat, ath, nonce } = payload
  if (typeof jti !== 'string' || jti.length < 1 || jti.length > 256) proofFail('ERR_MALFORMED', 'jti must be a string of 1 to 256 characters')
  if (typeof htm !== 'string') proofFail('ERR_MALFORMED', 'htm is missing')
  if (typeof htu !== 'string') proofFail('ERR_MALFORMED', 'htu is missing')
  if (!isNumericDate(iat)) proofFail('ERR_MALFORMED', 'iat must be a NumericDate')
  if (htm !== ctx.method) proofFail('ERR_AUDIENCE_MISMATCH', 'htm is not the request method', { htm, method: ctx.method })
  let proofHtu: string
  try {
    proofHtu = normalizeHtu(htu)
  } catch {
    proofFail('ERR_AUDIENCE_MISMATCH', 'htu is not an HTTP(S) URL')
  }
  if (proofHtu !== normalizeHtu(ctx.url)) proofFail('ERR_AUDIENCE_MISMATCH', 'htu is not the request URL', { htu })
  const t = ctx.now() / 1000
  const skew = ctx.clockSkewSec
  if (iat - skew > t) proofFail('ERR_NOT_YET_VALID', 'iat is in the future', { iat })
  if (t - iat > ctx.maxAgeSec + skew) proofFail('ERR_EXPIRED', 'iat is outside the acceptance window', { iat, maxAgeSec: ctx.maxAgeSec })
  if (ctx.accessToken !== undefined) {
    if (typeof ath !== 'string') proofFail('ERR_MALFORMED', 'ath is missing (the proof comes with an access token)')
    if (ath !== (ctx.accessTokenHash ?? accessTokenHash(ctx.accessToken))) proofFail('ERR_KEY_MISMATCH', 'ath is not the hash of the access token')
  }
  if (ctx.jkt !== undefined && jkt !== ctx.jkt) dpopFail('ERR_KEY_MISMATCH', 'invalid_token', 'the proof key is not the key the token is bound to (cnf.jkt)')
  if (ctx.nonce !== undefined && nonce !== ctx.nonce) {
    dpopFail('ERR_REPLAY', 'use_dpop_nonce', nonce === undefined ? 'nonce is missing' : 'nonce is not the current one', { dpopNonce: ctx.nonce })
  }

  // Last, so a proof failing any other check cannot burn or fill the cache. Per key: jti is chosen by its holder.
  let fresh: boolean
  try {
    fresh = await ctx.replayCache.checkAndStore(`dpop ${jkt} ${jti}`, Math.ceil((iat + ctx.maxAgeSec + 2 * skew) * 1000) + 1000)
  } catch (cause) {
    proofFail('ERR_REPLAY', 'the replay cache failed; refusing rather than risk a replay', {}, cause)
  }
  if (fresh !== true) proofFail('ERR_REPLAY', 'proof already used (jti seen)', { jti })
  return Object.freeze({ jkt, jti, iat, alg, jwk })
}
