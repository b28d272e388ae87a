// Client authentication by private_key_jwt (RFC 7523 §2.2): a JWT signed EdDSA by the agent's did:key
// (`alg` EdDSA, or Ed25519, its RFC 9864 fully-specified name).
import type { KeyObject } from 'node:crypto'
import {
  assertEd25519PublicKey,
  base64urlDecode,
  base64urlEncode,
  decodeJwt,
  parseDidKeySyntax,
  decodeJsonSegment,
  publicKeyFromRaw,
  verifyJwsSignature,
  type DecodedJwt,
} from '@agentid/core'
import { oauthFail } from './errors.js'

export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
/** Longest an assertion may live ahead of now (seconds). */
export const MAX_ASSERTION_AHEAD_SEC = 300
const SKEW_SEC = 60

export interface VerifiedAssertion { did: string; jti: string; exp: number }

const invalid = (message: string): never => oauthFail('invalid_client', message)

// An agent authenticates token after token with the same did:key: its key is decoded (base58),
// imported and checked (canonical point, not of small order) once, after a signature verified under it.
const CLIENT_KEYS_MAX = 4096
const clientKeys = new Map<string, KeyObject>()

function rememberClientKey(did: string, key: KeyObject): void {
  if (clientKeys.size >= CLIENT_KEYS_MAX) clientKeys.delete(clientKeys.keys().next().value as string)
  clientKeys.set(did, key)
}

/**
 * Decodes an agent's JWT (client assertion, actor token) with core's strict JWT rules, not verified.
 * core accepts `alg: "EdDSA"` only; RFC 9864 names the same algorithm (EdDSA over Ed25519) `Ed25519`, and
 * standard clients sign with that name: openid-client v6 `PrivateKeyJwt` (oauth4webapi `keyToJws`) with an
 * Ed25519 CryptoKey. Such a header is decoded as if it said EdDSA, with `signingInput` the bytes that were
 * really signed, so verifyJwsSignature checks the original header. Throws VerificationError.
 */
export function decodeAgentJwt(assertion: string): DecodedJwt {
  const dot = assertion.indexOf('.')
  if (dot > 0 && dot <= 1024) {
    let header: Record<string, unknown> | undefined
    try {
      header = decodeJsonSegment(assertion.slice(0, dot), 'JWS header', 4)
    } catch {
      header = undefined
    }
    if (header?.alg === 'Ed25519') {
      const decoded = decodeJwt(`${base64urlEncode(JSON.stringify({ ...header, alg: 'EdDSA' }))}${assertion.slice(dot)}`, 8 * 1024)
      return { ...decoded, header: { ...decoded.header, alg: 'Ed25519' }, signingInput: assertion.slice(0, assertion.lastIndexOf('.')) }
    }
  }
  return decodeJwt(assertion, 8 * 1024)
}

/**
 * Verifies a client assertion: signature by the did:key in iss, iss = sub (= client_id if given), aud, exp, jti,
 * and, when it carries `cnf` (`{ jkt }` only), that `jkt` is `o.jkt`, the thumbprint of the request's DPoP key:
 * an agent that signs assertions for someone else to send (createExchangeSigner) binds them to its own key.
 */
export function verifyClientAssertion(
  assertion: string,
  o: { clientId: string | undefined; audiences: readonly string[]; now: number; jkt?: string },
): VerifiedAssertion {
  let decoded: ReturnType<typeof decodeJwt>
  try {
    decoded = decodeAgentJwt(assertion)
  } catch {
    return invalid('the client assertion is not a JWT signed with EdDSA (or Ed25519)')
  }
  const p = decoded.payload as Record<string, unknown>
  if (typeof p.iss !== 'string' || p.iss !== p.sub) invalid('the client assertion iss and sub must both be the agent DID')
  const did = p.iss as string
  if (o.clientId !== undefined && o.clientId !== did) invalid('client_id does not match the client assertion')
  try {
    const known = clientKeys.get(did)
    if (known !== undefined) verifyJwsSignature(decoded, known)
    else {
      const raw = parseDidKeySyntax(did).publicKey
      const key = publicKeyFromRaw(raw)
      verifyJwsSignature(decoded, key)
      assertEd25519PublicKey(raw, { signatureVerified: true })
      rememberClientKey(did, key)
    }
  } catch {
    return invalid('the client assertion is not signed by the key of its iss')
  }
  // One string (RFC 7523bis): an assertion addressed to several servers could be spent at any of them.
  if (typeof p.aud !== 'string' || !o.audiences.includes(p.aud)) invalid('the client assertion aud must be one string: the token endpoint or the issuer')
  if (typeof p.exp !== 'number' || !Number.isFinite(p.exp)) return invalid('the client assertion needs exp')
  if (p.exp <= o.now) invalid('the client assertion has expired')
  if (p.exp > o.now + MAX_ASSERTION_AHEAD_SEC) invalid(`the client assertion exp must be at most ${MAX_ASSERTION_AHEAD_SEC} seconds ahead`)
  if (p.nbf !== undefined && (typeof p.nbf !== 'number' || p.nbf > o.now + SKEW_SEC)) invalid('the client assertion is not valid yet')
  if (p.iat !== undefined && (typeof p.iat !== 'number' || p.iat > o.now + SKEW_SEC)) invalid('the client assertion iat is in the future')
  if (typeof p.jti !== 'string' || p.jti.length === 0 || p.jti.length > 256) invalid('the client assertion needs a jti (at most 256 characters)')
  if (p.cnf !== undefined) {
    const cnf = p.cnf as Record<string, unknown> | null
    if (cnf === null || typeof cnf !== 'object' || Array.isArray(cnf) || Object.keys(cnf).length !== 1 || typeof cnf.jkt !== 'string') {
      invalid('the client assertion cnf must be { "jkt": <thumbprint> }')
    }
    if (cnf!.jkt !== o.jkt) invalid('the client assertion is bound (cnf.jkt) to another DPoP key than the proof\'s')
  }
  return { did, jti: p.jti as string, exp: p.exp }
}
