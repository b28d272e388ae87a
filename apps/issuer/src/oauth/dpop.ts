// DPoP proofs at the token endpoint (RFC 9449), verified with node:crypto; server nonces that rotate.
import { createHash, createHmac, createPublicKey, randomBytes, timingSafeEqual, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import { assertEd25519PublicKey, base64urlDecode, decodeJsonSegment, hasSmallOrderR } from '@agentid/core'
import { OAuthError, oauthFail } from './errors.js'

export const DPOP_ALGS = ['EdDSA', 'ES256'] as const
/**
 * RFC 9864 names EdDSA over Ed25519 `Ed25519` (fully specified; `EdDSA` is deprecated there). Standard
 * clients sign with it: openid-client v6 (oauth4webapi `keyToJws`) sends `alg: "Ed25519"` for every
 * Ed25519 CryptoKey. It is the same signature with the same key type, so it is accepted where EdDSA is.
 */
export const ED25519_ALG = 'Ed25519'
const ACCEPTED_ALGS: readonly string[] = [...DPOP_ALGS, ED25519_ALG]
/** Allowed distance (seconds) between a proof's iat and the issuer's clock. */
export const DPOP_IAT_WINDOW_SEC = 60
const MAX_PROOF_BYTES = 8 * 1024
// Members of private (or symmetric) JWKs: a proof's jwk holding any of them is refused.
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']

export interface VerifiedDpop {
  /** RFC 7638 SHA-256 thumbprint of the proof's public key (the access token's cnf.jkt). */
  jkt: string
  jti: string
  iat: number
}

const invalid = (message: string): never => oauthFail('invalid_dpop_proof', message)

/**
 * Server-provided DPoP nonces: a current one, rotated every `rotateSec`, and the previous one, both
 * accepted. Without `key`: random, in memory (a restarted issuer simply asks for a fresh nonce). With
 * `key` (shared by every issuer instance on the database): stateless, `<window>.<HMAC-SHA256(key,
 * window)>` for the current time window, so a nonce issued by one instance is accepted by the others.
 */
export class DpopNonces {
  private current = DpopNonces.fresh()
  private previous: string | undefined
  private rotatedAt: number

  constructor(private readonly now: () => number, private readonly rotateSec = 300, private readonly key?: Uint8Array) {
    this.rotatedAt = now()
    if (key !== undefined && key.length < 32) throw new TypeError('DpopNonces: key must be at least 32 bytes')
  }

  private static fresh(): string {
    return randomBytes(18).toString('base64url')
  }

  private rotate(): void {
    const now = this.now()
    if (now - this.rotatedAt < this.rotateSec) return
    // After a long idle period both old nonces are stale.
    this.previous = now - this.rotatedAt < 2 * this.rotateSec ? this.current : undefined
    this.current = DpopNonces.fresh()
    this.rotatedAt = now
  }

  private mac(window: number): string {
    return createHmac('sha256', this.key!).update(`agentid-dpop-nonce:${window}`).digest('base64url').slice(0, 27)
  }

  /** The nonce clients should use now. */
  issue(): string {
    if (this.key !== undefined) {
      const w = Math.floor(this.now() / this.rotateSec)
      return `${w}.${this.mac(w)}`
    }
    this.rotate()
    return this.current
  }

  accepts(nonce: unknown): boolean {
    if (this.key !== undefined) {
      if (typeof nonce !== 'string' || nonce.length > 64) return false
      const m = /^(0|[1-9][0-9]{0,14})\.([A-Za-z0-9_-]{27})$/.exec(nonce)
      if (!m) return false
      const w = Number(m[1])
      const now = Math.floor(this.now() / this.rotateSec)
      if (w !== now && w !== now - 1) return false
      return timingSafeEqual(Buffer.from(m[2]!), Buffer.from(this.mac(w)))
    }
    this.rotate()
    return typeof nonce === 'string' && (nonce === this.current || (this.previous !== undefined && nonce === this.previous))
  }
}

/** A proof key imported once: node:crypto's public key and its RFC 7638 thumbprint. */
interface ProofKey { readonly key: KeyObject; readonly jkt: string }

// Agents sign their proofs with the same key, token after token: each key is imported (and its
// thumbprint hashed) once. Keyed by the RFC 7638 members, the whole of what the import reads.
const PROOF_KEYS_MAX = 4096
const proofKeys = new Map<string, ProofKey>()

function proofKey(jwk: Record<string, unknown>, ec: boolean): ProofKey {
  // RFC 7638: the required members, in lexicographic order, as JSON without whitespace.
  const canonical = ec ? JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }) : JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x })
  const cached = proofKeys.get(canonical)
  if (cached !== undefined) return cached
  let key: KeyObject
  try {
    if (typeof jwk.x !== 'string' || (ec && typeof jwk.y !== 'string')) throw new TypeError('x (and y) must be strings')
    const x = base64urlDecode(jwk.x, 'jwk x')
    if (ec) base64urlDecode(jwk.y as string, 'jwk y')
    // node:crypto checks the length (and that a P-256 point is on the curve); an Ed25519 point must
    // also be canonical and not of small order.
    if (!ec) assertEd25519PublicKey(x)
    key = createPublicKey({ key: JSON.parse(canonical) as Record<string, string>, format: 'jwk' })
  } catch {
    return invalid('the DPoP proof jwk is not a valid public key')
  }
  const entry = Object.freeze({ key, jkt: createHash('sha256').update(canonical).digest('base64url') })
  if (proofKeys.size >= PROOF_KEYS_MAX) proofKeys.delete(proofKeys.keys().next().value as string)
  proofKeys.set(canonical, entry)
  return entry
}

// On libuv's thread pool: the token endpoint's event loop is its bottleneck, the pool's threads are not.
function verifyOnPool(ec: boolean, data: Buffer, key: KeyObject, signature: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (error: Error | null, ok: boolean) => resolve(error === null && ok === true)
    if (!ec && hasSmallOrderR(signature)) return resolve(false) // libsodium's strict check, as for every EdDSA signature
    if (ec) cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature, done)
    else cryptoVerify(null, data, key, signature, done)
  })
}

/**
 * Verifies the one DPoP proof of a token request: a compact JWS of strict base64url and JSON, typ
 * dpop+jwt, alg EdDSA (or Ed25519) or ES256 with a public `jwk` in the header that fits it (no crit,
 * no b64), the signature, exp/nbf when present, htm, htu, iat within the window, jti present, and a
 * current server nonce (else `use_dpop_nonce` with a DPoP-Nonce header). Replay of the jti is checked
 * by the caller.
 */
export async function verifyDpopProof(
  proof: string,
  o: { method: string; url: string; now: number; nonces: DpopNonces },
): Promise<VerifiedDpop> {
  if (proof.length === 0 || proof.length > MAX_PROOF_BYTES) invalid('the DPoP proof is empty or too large')
  const parts = proof.split('.')
  if (parts.length !== 3 || parts.some((p) => p === '')) invalid('the DPoP proof is not a JWS')
  let header: Record<string, unknown>
  let payload: Record<string, unknown>
  let signature: Buffer
  try {
    header = decodeJsonSegment(parts[0]!, 'DPoP header', 4)
    payload = decodeJsonSegment(parts[1]!, 'DPoP payload', 4)
    signature = base64urlDecode(parts[2]!, 'DPoP signature')
  } catch {
    return invalid('the DPoP proof is not a JWS')
  }
  if (header.typ !== 'dpop+jwt') invalid('the DPoP proof typ must be dpop+jwt')
  if (typeof header.alg !== 'string' || !ACCEPTED_ALGS.includes(header.alg)) invalid(`the DPoP proof alg must be one of ${ACCEPTED_ALGS.join(', ')}`)
  if ('crit' in header || 'b64' in header) invalid('the DPoP proof header must not use crit or b64')
  const jwk = header.jwk
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) return invalid('the DPoP proof header must carry the public jwk')
  const k = jwk as Record<string, unknown>
  if (PRIVATE_MEMBERS.some((m) => m in k)) invalid('the DPoP proof jwk must be a public key')
  const ec = header.alg === 'ES256'
  const keyFits = ec ? k.kty === 'EC' && k.crv === 'P-256' : k.kty === 'OKP' && k.crv === 'Ed25519'
  // A jwk may restrict its own use (RFC 7517 §4): it must allow verifying a signature of this alg.
  const keyAllows = (k.alg === undefined || k.alg === header.alg || (!ec && (k.alg === 'EdDSA' || k.alg === ED25519_ALG)))
    && (k.use === undefined || k.use === 'sig')
    && (k.key_ops === undefined || (Array.isArray(k.key_ops) && k.key_ops.includes('verify')))
  if (!keyFits || !keyAllows) invalid('the DPoP proof jwk does not fit its alg')
  const { key, jkt } = proofKey(k, ec)
  // parts[0] and parts[1] decoded as strict base64url above: ASCII.
  if (signature.length !== 64 || !(await verifyOnPool(ec, Buffer.from(`${parts[0]!}.${parts[1]!}`, 'latin1'), key, signature))) {
    invalid('the DPoP proof signature or claims are not valid')
  }

  // Signed by the key in its header: now its claims.
  if (payload.exp !== undefined && (typeof payload.exp !== 'number' || payload.exp <= o.now - DPOP_IAT_WINDOW_SEC)) invalid('the DPoP proof signature or claims are not valid')
  if (payload.nbf !== undefined && (typeof payload.nbf !== 'number' || payload.nbf > o.now + DPOP_IAT_WINDOW_SEC)) invalid('the DPoP proof signature or claims are not valid')
  if (payload.htm !== o.method) invalid('the DPoP proof htm does not match the request method')
  const htu = typeof payload.htu === 'string' && payload.htu.length <= 2048 ? normalizeHtu(payload.htu) : undefined
  if (htu === undefined || htu !== endpointHtu(o.url)) invalid('the DPoP proof htu does not match the token endpoint')
  if (typeof payload.iat !== 'number' || !Number.isFinite(payload.iat) || Math.abs(o.now - payload.iat) > DPOP_IAT_WINDOW_SEC) {
    invalid(`the DPoP proof iat must be within ${DPOP_IAT_WINDOW_SEC} seconds of now`)
  }
  if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > 256) invalid('the DPoP proof needs a jti (at most 256 characters)')
  if (!o.nonces.accepts(payload.nonce)) {
    throw new OAuthError('use_dpop_nonce', 'the DPoP proof must carry the server nonce in the DPoP-Nonce header', { 'dpop-nonce': o.nonces.issue() })
  }
  return { jkt, jti: payload.jti as string, iat: payload.iat as number }
}

// The token endpoint's htu, normalised once (it is the same URL request after request).
let endpoint: { url: string; htu: string | undefined } | undefined
function endpointHtu(url: string): string | undefined {
  if (endpoint?.url !== url) endpoint = { url, htu: normalizeHtu(url) }
  return endpoint.htu
}

/**
 * The `htu` form of a URL (RFC 9449 §4.3, RFC 3986 §6.2.2 syntax-based normalisation, as the WHATWG URL
 * parser does it): scheme and host lower-case, default port dropped, dot segments resolved, no query
 * or fragment. Undefined for anything but an absolute http(s) URL.
 */
export function normalizeHtu(url: string): string | undefined {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return undefined
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return undefined
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}`
}
