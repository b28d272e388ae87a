// SPIFFE bundles (SPIFFE Trust Domain and Bundle, §4: a JWK Set whose keys carry `use` x509-svid or jwt-svid).
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto'
import { parseStrictJsonObject, parseTrustDomain, VerificationError } from '@agentid/core'
import { isRecord } from '../util.js'

/** A trust domain's bundle: the CA certificates of its X.509-SVIDs and the keys of its JWT-SVIDs. */
export interface SpiffeBundle {
  readonly trustDomain: string
  /** X.509 authorities (`use: x509-svid`, one certificate each in `x5c`). */
  readonly x509Authorities: readonly X509Certificate[]
  /** JWT authorities (`use: jwt-svid`) by `kid`. */
  readonly jwtAuthorities: ReadonlyMap<string, KeyObject>
  readonly sequence: number | null
  readonly refreshHintSec: number | null
}

/** Largest bundle document accepted (1 MiB). */
export const MAX_BUNDLE_BYTES = 1024 * 1024
const PUBLIC_MEMBERS: Readonly<Record<string, readonly string[]>> = { EC: ['kty', 'crv', 'x', 'y'], RSA: ['kty', 'n', 'e'] }

function malformed(message: string): never {
  throw new VerificationError('ERR_MALFORMED', `SPIFFE bundle: ${message}`)
}

/**
 * Parses a SPIFFE bundle (JSON text or the parsed object) for `trustDomain`. Keys whose `use` is
 * neither `x509-svid` nor `jwt-svid` are ignored (the spec's rule); an `x509-svid` key must hold exactly
 * one certificate in `x5c` (a CA: basicConstraints CA=true), a `jwt-svid` key a `kid` and a public EC or
 * RSA key (private members refused). Throws ERR_MALFORMED.
 * @example
 * const bundle = parseSpiffeBundle(await (await fetch(`${issuer}/v1/spiffe/bundle`)).text(), 'agents.example.com')
 */
export function parseSpiffeBundle(input: string | Record<string, unknown>, trustDomain: string): SpiffeBundle {
  const td = parseTrustDomain(trustDomain)
  let doc: Record<string, unknown>
  if (typeof input === 'string') {
    if (input.length > MAX_BUNDLE_BYTES) malformed(`larger than ${MAX_BUNDLE_BYTES} bytes`)
    doc = parseStrictJsonObject(input)
  } else if (isRecord(input)) doc = input
  else return malformed('must be a JSON object')
  if (!Array.isArray(doc.keys)) malformed('keys must be a list')
  const x509: X509Certificate[] = []
  const jwt = new Map<string, KeyObject>()
  for (const [i, key] of (doc.keys as unknown[]).entries()) {
    if (!isRecord(key)) malformed(`keys[${i}] must be an object`)
    if (key.use === 'x509-svid') {
      if (!Array.isArray(key.x5c) || key.x5c.length !== 1 || typeof key.x5c[0] !== 'string') malformed(`keys[${i}].x5c must hold exactly one certificate`)
      let cert: X509Certificate
      try {
        cert = new X509Certificate(Buffer.from(key.x5c[0] as string, 'base64'))
      } catch {
        return malformed(`keys[${i}].x5c[0] is not a DER certificate`)
      }
      if (!cert.ca) malformed(`keys[${i}] is not a CA certificate`)
      x509.push(cert)
    } else if (key.use === 'jwt-svid') {
      if (typeof key.kid !== 'string' || key.kid === '' || key.kid.length > 256) malformed(`keys[${i}].kid is required`)
      if (jwt.has(key.kid)) malformed(`keys[${i}].kid is not unique`)
      const members = typeof key.kty === 'string' ? PUBLIC_MEMBERS[key.kty] : undefined
      if (!members) malformed(`keys[${i}].kty must be EC or RSA`)
      if ('d' in key || 'p' in key || 'k' in key) malformed(`keys[${i}] holds private key material`)
      try {
        jwt.set(key.kid, createPublicKey({ key: Object.fromEntries(members.map((m) => [m, key[m]])) as never, format: 'jwk' }))
      } catch {
        malformed(`keys[${i}] is not a valid public key`)
      }
    }
  }
  const seq = doc.spiffe_sequence
  const hint = doc.spiffe_refresh_hint
  return Object.freeze({
    trustDomain: td,
    x509Authorities: Object.freeze(x509),
    jwtAuthorities: jwt,
    sequence: typeof seq === 'number' && Number.isSafeInteger(seq) ? seq : null,
    refreshHintSec: typeof hint === 'number' && Number.isSafeInteger(hint) ? hint : null,
  })
}
