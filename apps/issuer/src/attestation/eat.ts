// EAT (RFC 9711) in its JWT form, signed by an attester whose public key the operator configured.
import type { KeyObject } from 'node:crypto'
import { compactVerify, decodeProtectedHeader } from 'jose'
import { parseStrictJsonObject } from '@agentid/core'
import { reject } from './errors.js'

export interface EatConfig {
  /** Attester keys by `kid`. */
  attesters: ReadonlyMap<string, KeyObject>
  /** How old `iat` may be (seconds, default 300). */
  maxAgeSec: number
}

const ALGS = ['ES256', 'ES384', 'ES512', 'PS256', 'RS256', 'EdDSA']
// Claims copied into the credential when present (RFC 9711 §4): what runs, where, in which state.
const RECORDED = ['ueid', 'oemid', 'hwmodel', 'hwversion', 'swname', 'swversion', 'oemboot', 'dbgstat', 'eat_profile', 'measurements', 'manifests', 'submods'] as const

/**
 * Verifies an EAT JWT: header `kid` names a configured attester (`eat.attester`), the signature
 * (`eat.signature`), `eat_nonce` equals the spawn challenge (`eat.nonce`), `iat` recent and `exp` not
 * past (`eat.time`). Returns what is recorded in the `attestation` claim.
 */
export async function verifyEat(token: unknown, config: EatConfig, o: { challenge: string; now: number }): Promise<Record<string, unknown>> {
  if (typeof token !== 'string' || token.length > 16 * 1024 || token.split('.').length !== 3) reject('eat.format', 'token must be a compact JWT of at most 16 KiB')
  let header: Record<string, unknown>
  try {
    header = decodeProtectedHeader(token) as Record<string, unknown>
  } catch {
    return reject('eat.format', 'the header does not decode')
  }
  if (typeof header.alg !== 'string' || !ALGS.includes(header.alg)) reject('eat.format', `alg must be one of ${ALGS.join(', ')}`)
  if (header.crit !== undefined || header.jwk !== undefined || header.jku !== undefined || header.x5u !== undefined) reject('eat.format', 'jwk, jku, x5u and crit headers are not accepted: the key comes from the configuration')
  const key = typeof header.kid === 'string' ? config.attesters.get(header.kid) : undefined
  if (!key) reject('eat.attester', 'kid names no trusted attester key')
  let payload: Record<string, unknown>
  try {
    const verified = await compactVerify(token, key, { algorithms: [header.alg as string] })
    payload = parseStrictJsonObject(Buffer.from(verified.payload).toString('utf8'))
  } catch (cause) {
    return reject('eat.signature', 'the signature does not verify with the attester key', cause)
  }
  const nonces = typeof payload.eat_nonce === 'string' ? [payload.eat_nonce] : payload.eat_nonce
  if (!Array.isArray(nonces) || !nonces.includes(o.challenge)) reject('eat.nonce', 'eat_nonce is not the spawn challenge')
  if (typeof payload.iat !== 'number' || payload.iat > o.now + 30 || payload.iat < o.now - config.maxAgeSec) reject('eat.time', `iat must be within the last ${config.maxAgeSec} s`)
  if (payload.exp !== undefined && (typeof payload.exp !== 'number' || payload.exp <= o.now)) reject('eat.time', 'the token has expired')
  const recorded: Record<string, unknown> = { kind: 'eat', attester: header.kid, iat: payload.iat }
  for (const name of RECORDED) if (payload[name] !== undefined) recorded[name] = payload[name]
  return recorded
}
