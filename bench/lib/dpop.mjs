// DPoP material for the `request` and `token` suites, signed with node:crypto only: access tokens of
// the shape the issuer's POST /v1/token signs (at+jwt, cnf.jkt, authorization_details, the agentid
// claim of the contracts), DPoP proofs (RFC 9449) and client assertions (RFC 7523) as
// @agentid/client's createAgentFetch makes them.
import { createHash, randomUUID, sign } from 'node:crypto'
import { CLAIMS, ed25519Pair, LIST_URL } from './tokens.mjs'

const b64u = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

/** A fresh Ed25519 DPoP key: its public JWK and RFC 7638 thumbprint. */
export function dpopKey() {
  const { privateKey, publicKey, raw } = ed25519Pair()
  const jwk = { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }
  const jkt = createHash('sha256').update(`{"crv":"Ed25519","kty":"OKP","x":"${jwk.x}"}`).digest('base64url')
  return { privateKey, publicKey, jwk, jkt }
}

/** `ath`: base64url SHA-256 of the access token (RFC 9449 §4.2). */
export const athOf = (token) => createHash('sha256').update(token, 'ascii').digest('base64url')

/** A compact EdDSA JWS over `header` and `claims`. */
export function signJws(header, claims, privateKey) {
  const input = `${b64u(header)}.${b64u(claims)}`
  return `${input}.${sign(null, Buffer.from(input), privateKey).toString('base64url')}`
}

export const ACTION_DETAILS = [{ type: 'agentid_action', actions: ['read'], locations: ['mcp://erp/tools/invoices.read'], datatypes: ['internal'] }]

/**
 * An access token as the issuer signs it for agent `agentDid` bound to `jkt`, for `resource`,
 * valid from `now` for `ttl` seconds, with the contracts' `agentid` claim (status entry on LIST_URL).
 */
export function accessToken(issuer, { agentDid, jkt, resource, now, ttl = 300, index = 0 }) {
  return signJws({ alg: 'EdDSA', typ: 'at+jwt', kid: issuer.keyId }, {
    iss: issuer.did,
    aud: resource,
    sub: agentDid,
    client_id: agentDid,
    iat: now,
    exp: now + ttl,
    jti: randomUUID(),
    cnf: { jkt },
    authorization_details: ACTION_DETAILS,
    agentid: {
      claims: CLAIMS,
      credentialId: `urn:uuid:00000000-0000-4000-8000-${String(index).padStart(12, '0')}`,
      credentialStatus: { type: 'BitstringStatusListEntry', statusPurpose: 'revocation', statusListIndex: String(index), statusListCredential: LIST_URL },
    },
  }, issuer.privateKey)
}

/** A DPoP proof by `key` for `method` `htu` (and `ath` of `token`, `nonce` when given), issued at `iat`. */
export function dpopProof(key, { method, htu, iat, token, nonce }) {
  const claims = { htm: method, htu, iat, jti: randomUUID() }
  if (nonce !== undefined) claims.nonce = nonce
  if (token !== undefined) claims.ath = athOf(token)
  return signJws({ typ: 'dpop+jwt', alg: 'EdDSA', jwk: key.jwk }, claims, key.privateKey)
}

/** A private_key_jwt client assertion by the agent key `agent` ({ did, privateKey }) for `audience`. */
export function clientAssertion(agent, { audience, iat, ttl = 300 }) {
  return signJws({ alg: 'EdDSA', typ: 'JWT' }, { iss: agent.did, sub: agent.did, aud: audience, iat, exp: iat + ttl, jti: randomUUID() }, agent.privateKey)
}
