import { randomUUID } from 'node:crypto'
import { assertEd25519PublicKey, parseDidKeySyntax } from './did-key.js'
import { VerificationError } from './errors.js'
import { decodeJwtHeaderCached, signJwt, verifyJwsSignatureAsync, verifyJwsSignatureRaw, type DecodedJwt } from './jws.js'
import { ed25519Backend } from './ed25519.js'
import { base64urlEncode } from './base64url.js'
import type { Signer } from './keys.js'
import { isNumericDate } from './time.js'

/** `typ` of a proof of possession: it can never be confused with a credential or an access token. */
export const POP_TYP = 'agentid-pop+jwt'
/** What a proof is for: it is refused on any other route (`svid`: the issuer's SVID routes). */
export type ProofPurpose = 'spawn' | 'renew' | 'delegate' | 'svid'
/** Longest lifetime of a proof of possession, in seconds. */
export const MAX_POP_LIFETIME_SEC = 300
/** Largest proof of possession read, checked before any parsing. */
const MAX_POP_BYTES = 8 * 1024

// A proof's header names its agent's key (`kid`): it does not repeat, so it is not kept in the cache of
// repeated headers (where it would cost a lookup and a copy, and push out the headers that do repeat).
const decodeProof = (token: unknown) => decodeJwtHeaderCached(token, MAX_POP_BYTES, false)

export interface CreateProofOptions {
  signer: Signer
  /** The issuer's DID: a proof for one issuer is useless at another. */
  audience: string
  purpose: ProofPurpose
  /** A challenge from the issuer (`POST /v1/challenges`); without it the proof relies on `iat` + `jti`. */
  nonce?: string
  /** Lifetime in seconds (default 60, at most 300). */
  ttlSec?: number
  /** Clock in milliseconds (default Date.now). */
  clock?: () => number
}

/**
 * Builds a proof that the holder of `signer`'s key asks for `purpose` at `audience` now.
 * @example
 * const proof = await createProofOfPossession({ signer, audience: issuerDid, purpose: 'spawn' })
 */
export async function createProofOfPossession(options: CreateProofOptions): Promise<string> {
  const { signer, audience, purpose } = options
  const ttl = options.ttlSec ?? 60
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_POP_LIFETIME_SEC) throw new TypeError(`ttlSec must be an integer from 1 to ${MAX_POP_LIFETIME_SEC}`)
  if (typeof audience !== 'string' || !audience) throw new TypeError('audience is required')
  const iat = Math.floor((options.clock ?? Date.now)() / 1000)
  return signJwt({ typ: POP_TYP }, {
    iss: signer.did,
    sub: signer.did,
    aud: audience,
    purpose,
    iat,
    exp: iat + ttl,
    jti: randomUUID(),
    ...(options.nonce === undefined ? {} : { nonce: options.nonce }),
  }, signer)
}

export interface VerifyProofOptions {
  audience: string
  purpose: ProofPurpose
  /** Seconds since the epoch. */
  now: number
  /** Allowed clock difference (default 30 s). */
  clockSkewSec?: number
  /** The DID the proof must come from, when the caller already knows it (renew). */
  expectedDid?: string
}

/** A verified proof: the caller still owns the replay check of `jti` (and of `nonce`). */
export interface VerifiedProof {
  did: string
  jti: string
  nonce: string | null
  iat: number
  exp: number
}

/**
 * A proof of possession decoded by {@link decodeProofOfPossession}: split, its header and payload
 * parsed with the strict JWT rules, nothing verified. `iss` and `jti` are what the proof claims (not
 * checked: any JSON value), for a caller's look-ups before the signature check.
 */
export interface DecodedProofOfPossession {
  /** The proof as it was given. */
  readonly token: string
  readonly iss: unknown
  readonly jti: unknown
}

// The decoded JWT of each DecodedProofOfPossession this module made: verifyProofOfPossession takes
// it from here, so an object made elsewhere (or changed) is never read as a decoded proof.
const DECODED = new WeakMap<DecodedProofOfPossession, DecodedJwt>()

/**
 * Decodes a proof of possession without verifying it (as {@link verifyProofOfPossession} decodes it:
 * at most 8 KiB, checked first, then the strict JWT rules), for a caller that reads what it names
 * before verifying it and then verifies the same decoding instead of decoding the token twice.
 * Throws VerificationError (ERR_MALFORMED, ERR_UNSUPPORTED_ALG, ERR_SIGNATURE_INVALID for a
 * signature that is not 64 bytes), as verifyProofOfPossession does for the same token.
 * @example
 * const decoded = decodeProofOfPossession(proof)
 * lookUp(decoded.iss, decoded.jti)            // not yet trusted
 * const verified = await verifyProofOfPossession(decoded, { audience, purpose: 'spawn', now })
 */
export function decodeProofOfPossession(token: unknown): DecodedProofOfPossession {
  const jwt = decodeProof(token)
  const decoded = Object.freeze({ token: token as string, iss: jwt.payload.iss, jti: jwt.payload.jti })
  DECODED.set(decoded, jwt)
  return decoded
}

function bad(message: string, code: 'ERR_MALFORMED' | 'ERR_AUDIENCE_MISMATCH' | 'ERR_EXPIRED' | 'ERR_NOT_YET_VALID' | 'ERR_KEY_MISMATCH' = 'ERR_MALFORMED'): never {
  throw new VerificationError(code, `proof of possession: ${message}`)
}

/**
 * Verifies a proof of possession: signed by the key of its own `iss` did:key, for this audience and
 * purpose, within its short lifetime. Rejects with a VerificationError. The signature is checked with
 * libsodium on the caller's thread where its addon loads ({@link ed25519Backend}), else with
 * node:crypto on libuv's thread pool.
 * `token` is the proof, or what {@link decodeProofOfPossession} made of it (not decoded again; any
 * other object is refused as a token that is not a string).
 */
export async function verifyProofOfPossession(token: unknown, options: VerifyProofOptions): Promise<VerifiedProof> {
  const jwt = (typeof token === 'object' && token !== null ? DECODED.get(token as DecodedProofOfPossession) : undefined) ?? decodeProof(token)
  if (jwt.header.typ !== POP_TYP) bad(`typ must be ${POP_TYP}`)
  const p = jwt.payload
  if (typeof p.iss !== 'string' || p.sub !== p.iss) bad('iss and sub must be the agent DID')
  if (options.expectedDid !== undefined && p.iss !== options.expectedDid) bad('signed by another agent', 'ERR_KEY_MISMATCH')
  const { publicKey: raw, keyId } = parseDidKeySyntax(p.iss)
  if (jwt.header.kid !== undefined && jwt.header.kid !== keyId) bad('kid does not name the agent key', 'ERR_KEY_MISMATCH')
  // The cheap point checks (canonical, not of small order) before the signature, as the verifier runs
  // them: a weak key is ERR_DID_UNRESOLVABLE on both backends (libsodium refuses it inside its verify).
  assertEd25519PublicKey(raw, { signatureVerified: true })
  if (ed25519Backend() === 'libsodium') {
    // On the caller's thread: libsodium's verify costs less CPU than handing node:crypto's to libuv's
    // pool (about 60 against 165 µs of the issuer's CPU per spawn here), and a spawn is CPU-bound.
    verifyJwsSignatureRaw(jwt, raw)
  } else {
    // The agent's key as its JWK, imported by node:crypto for this one check on libuv's pool: no
    // KeyObject is made for a key that a spawn uses once.
    await verifyJwsSignatureAsync(jwt, { kty: 'OKP', crv: 'Ed25519', x: base64urlEncode(raw) })
  }
  if (p.aud !== options.audience) bad('audience is not this issuer', 'ERR_AUDIENCE_MISMATCH')
  if (p.purpose !== options.purpose) bad(`purpose must be ${options.purpose}`)
  if (typeof p.jti !== 'string' || p.jti.length < 16 || p.jti.length > 128) bad('jti must be a string of 16 to 128 characters')
  if (p.nonce !== undefined && (typeof p.nonce !== 'string' || p.nonce.length > 128)) bad('nonce must be a short string')
  if (typeof p.iat !== 'number' || typeof p.exp !== 'number' || !isNumericDate(p.iat) || !isNumericDate(p.exp)) bad('iat and exp must be NumericDates')
  if (p.exp <= p.iat || p.exp - p.iat > MAX_POP_LIFETIME_SEC) bad(`lifetime must be at most ${MAX_POP_LIFETIME_SEC} s`)
  const skew = options.clockSkewSec ?? 30
  if (p.iat - skew > options.now) bad('issued in the future', 'ERR_NOT_YET_VALID')
  if (p.exp + skew <= options.now) bad('expired', 'ERR_EXPIRED')
  return { did: p.iss, jti: p.jti, nonce: (p.nonce as string | undefined) ?? null, iat: p.iat, exp: p.exp }
}
