// The JWTs an agent signs with its own key for the token endpoint and resource servers: client
// assertions and actor tokens (RFC 7523 shape) and DPoP proofs (RFC 9449). Internal to the package.
import { createHash, randomUUID } from 'node:crypto'
import { signCompactJws, signJwt, type Ed25519PublicJwk, type Signer } from '@agentid/core'

/** Lifetime of a client assertion or actor token (seconds); the issuer accepts at most 300. */
export const AGENT_JWT_TTL_SEC = 60

/** RFC 9449 `htu`: the URL without query and fragment. */
export function htuOf(url: string): string {
  const u = new URL(url)
  return `${u.protocol}//${u.host}${u.pathname}`
}

/** RFC 9449 `ath`: base64url SHA-256 of the access token. */
export function athOf(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url')
}

/**
 * A JWT by the agent about itself: `iss` = `sub` = its DID, for `audience`, short-lived, single-use `jti`;
 * with `jkt`, bound by `cnf.jkt` to that DPoP key (the issuer then refuses it with a proof by any other key).
 */
export function signAgentJwt(signer: Signer, audience: string, nowSec: number, jkt?: string): Promise<string> {
  return signJwt({ typ: 'JWT' }, {
    iss: signer.did, sub: signer.did, aud: audience, iat: nowSec, exp: nowSec + AGENT_JWT_TTL_SEC, jti: randomUUID(),
    ...(jkt === undefined ? {} : { cnf: { jkt } }),
  }, signer)
}

/** A DPoP proof (`typ: dpop+jwt`, the public key in `jwk`); `ath` binds it to an access token. */
export function signDpopProof(
  signer: Pick<Signer, 'sign'>,
  publicJwk: Ed25519PublicJwk,
  o: { htm: string; htu: string; nowSec: number; nonce?: string | undefined; accessToken?: string | undefined },
): Promise<string> {
  const claims: Record<string, unknown> = { htm: o.htm, htu: o.htu, iat: o.nowSec, jti: randomUUID() }
  if (o.nonce !== undefined) claims.nonce = o.nonce
  if (o.accessToken !== undefined) claims.ath = athOf(o.accessToken)
  return signCompactJws({ typ: 'dpop+jwt', alg: 'EdDSA', jwk: publicJwk }, JSON.stringify(claims), signer)
}
