// DPoP proofs at the token endpoint (RFC 9449), verified with jose; server nonces that rotate.
import { randomBytes } from 'node:crypto'
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify, type JWK } from 'jose'
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

export interface VerifiedDpop {
  /** RFC 7638 SHA-256 thumbprint of the proof's public key (the access token's cnf.jkt). */
  jkt: string
  jti: string
  iat: number
}

const invalid = (message: string): never => oauthFail('invalid_dpop_proof', message)

/**
 * Server-provided DPoP nonces: a current one, rotated every `rotateSec`, and the previous one, both
 * accepted. In memory: a restarted issuer (or another instance) simply asks for a fresh nonce.
 */
export class DpopNonces {
  private current = DpopNonces.fresh()
  private previous: string | undefined
  private rotatedAt: number

  constructor(private readonly now: () => number, private readonly rotateSec = 300) {
    this.rotatedAt = now()
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

  /** The nonce clients should use now. */
  issue(): string {
    this.rotate()
    return this.current
  }

  accepts(nonce: unknown): boolean {
    this.rotate()
    return typeof nonce === 'string' && (nonce === this.current || (this.previous !== undefined && nonce === this.previous))
  }
}

/**
 * Verifies the one DPoP proof of a token request: typ dpop+jwt, alg EdDSA (or Ed25519) or ES256 with a public
 * `jwk` in the header, signature, htm, htu, iat within the window, jti present, and a current server
 * nonce (else `use_dpop_nonce` with a DPoP-Nonce header). Replay of the jti is checked by the caller.
 */
export async function verifyDpopProof(
  proof: string,
  o: { method: string; url: string; now: number; nonces: DpopNonces },
): Promise<VerifiedDpop> {
  if (proof.length === 0 || proof.length > MAX_PROOF_BYTES) invalid('the DPoP proof is empty or too large')
  let header: ReturnType<typeof decodeProtectedHeader>
  try {
    header = decodeProtectedHeader(proof)
  } catch {
    return invalid('the DPoP proof is not a JWS')
  }
  if (header.typ !== 'dpop+jwt') invalid('the DPoP proof typ must be dpop+jwt')
  if (typeof header.alg !== 'string' || !ACCEPTED_ALGS.includes(header.alg)) invalid(`the DPoP proof alg must be one of ${ACCEPTED_ALGS.join(', ')}`)
  const jwk = header.jwk as JWK | undefined
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) return invalid('the DPoP proof header must carry the public jwk')
  if ('d' in jwk || 'p' in jwk || 'k' in jwk) invalid('the DPoP proof jwk must be a public key')
  const keyFits = header.alg === 'ES256' ? jwk.kty === 'EC' && jwk.crv === 'P-256' : jwk.kty === 'OKP' && jwk.crv === 'Ed25519'
  if (!keyFits) invalid('the DPoP proof jwk does not fit its alg')
  let payload: Record<string, unknown>
  try {
    const verified = await jwtVerify(proof, EmbeddedJWK, {
      typ: 'dpop+jwt',
      algorithms: [header.alg!],
      currentDate: new Date(o.now * 1000),
      clockTolerance: DPOP_IAT_WINDOW_SEC,
    })
    payload = verified.payload as Record<string, unknown>
  } catch {
    return invalid('the DPoP proof signature or claims are not valid')
  }
  if (payload.htm !== o.method) invalid('the DPoP proof htm does not match the request method')
  if (typeof payload.htu !== 'string' || stripQueryFragment(payload.htu) !== o.url) invalid('the DPoP proof htu does not match the token endpoint')
  if (typeof payload.iat !== 'number' || !Number.isFinite(payload.iat) || Math.abs(o.now - payload.iat) > DPOP_IAT_WINDOW_SEC) {
    invalid(`the DPoP proof iat must be within ${DPOP_IAT_WINDOW_SEC} seconds of now`)
  }
  if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > 256) invalid('the DPoP proof needs a jti (at most 256 characters)')
  if (!o.nonces.accepts(payload.nonce)) {
    throw new OAuthError('use_dpop_nonce', 'the DPoP proof must carry the server nonce in the DPoP-Nonce header', { 'dpop-nonce': o.nonces.issue() })
  }
  let jkt: string
  try {
    jkt = await calculateJwkThumbprint(jwk, 'sha256')
  } catch {
    return invalid('the DPoP proof jwk is not valid')
  }
  return { jkt, jti: payload.jti as string, iat: payload.iat as number }
}

function stripQueryFragment(url: string): string {
  const cut = url.search(/[?#]/)
  return cut === -1 ? url : url.slice(0, cut)
}
