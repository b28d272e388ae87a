// X.509-SVIDs (SPIFFE X509-SVID.md): the shape of the leaf and its signing certificates, and the chain to a bundle.
import { createHash, X509Certificate, type KeyObject } from 'node:crypto'
import { createRequire } from 'node:module'
import { base64urlEncode, parseSpiffeId, VerificationError, type SpiffeId, type VerificationErrorCode } from '@agentid/core'
import type { SpiffeBundle } from './bundle.js'

/**
 * OID of agentid's certificate extension (non-critical) that carries the agent's identity credential
 * (a compact JWT VC, as a DER UTF8String) in the X.509-SVIDs its issuer signs; other SPIFFE verifiers
 * ignore it. Every arc fits 31 bits: Go's crypto/x509 (go-spiffe, SPIRE) refuses a whole certificate
 * with a larger arc ("malformed extension OID field"), so a UUID OID (2.25.<128-bit>) is not usable.
 * It sits under IANA's documentation enterprise number 32473 (RFC 5612) until the project has its own
 * PEN; X.509-SVIDs live at most an hour, so changing it later costs no migration.
 */
export const AGENTID_CREDENTIAL_EXTENSION_OID = '1.3.6.1.4.1.32473.1.1'

/** Longest chain accepted: the leaf and up to four signing certificates. */
export const MAX_SVID_CHAIN = 5
/** Largest certificate accepted (the leaf carries a credential): 32 KiB. */
export const MAX_SVID_CERT_BYTES = 32 * 1024

/** What a certificate chain may be given as: DER bytes, PEM text (one or many), or node:crypto certificates, leaf first. */
export type CertificateChainInput = string | Uint8Array | X509Certificate | readonly (string | Uint8Array | X509Certificate)[]

/** A structurally valid X.509-SVID (not yet trusted). */
export interface ParsedX509Svid {
  readonly spiffeId: SpiffeId
  readonly leaf: X509Certificate
  readonly chain: readonly X509Certificate[]
  /** `x5t#S256` of the leaf: base64url SHA-256 of its DER (RFC 8705). */
  readonly thumbprint: string
  /** The agentid credential extension, when present. */
  readonly credential: string | null
  /** Unix seconds. */
  readonly notBefore: number
  readonly notAfter: number
}

// The ASN.1 stack (@peculiar/asn1-schema, asn1-x509, asn1js: about 18 MB of RSS once loaded) is
// loaded on the first X.509-SVID, not with the verifier: most services never see one.
interface Asn1 {
  schema: typeof import('@peculiar/asn1-schema')
  x509: typeof import('@peculiar/asn1-x509')
  /** The form asn1-schema gives agentid's extension OID after parsing (see below). */
  credentialExtensionId: string
  knownExtensions: ReadonlySet<string>
}
let asn1: Asn1 | undefined
function loadAsn1(): Asn1 {
  if (asn1) return asn1
  const require = createRequire(import.meta.url)
  const schema = require('@peculiar/asn1-schema') as typeof import('@peculiar/asn1-schema')
  const x509 = require('@peculiar/asn1-x509') as typeof import('@peculiar/asn1-x509')
  // The form @peculiar/asn1-schema gives the OID after parsing (asn1js writes an arc above 2^53 in hex
  // braces): computed by the same round trip, so the comparison does not depend on that notation.
  const credentialExtensionId = schema.AsnConvert.parse(
    schema.AsnConvert.serialize(new x509.Extension({ extnID: AGENTID_CREDENTIAL_EXTENSION_OID, critical: false, extnValue: new schema.OctetString(new Uint8Array(0)) })),
    x509.Extension,
  ).extnID
  const knownExtensions = new Set([
    x509.id_ce_basicConstraints, x509.id_ce_keyUsage, x509.id_ce_extKeyUsage, x509.id_ce_subjectAltName, x509.id_ce_subjectKeyIdentifier, x509.id_ce_authorityKeyIdentifier,
    credentialExtensionId,
  ])
  asn1 = { schema, x509, credentialExtensionId, knownExtensions }
  return asn1
}

function fail(code: VerificationErrorCode, message: string, details: Record<string, unknown> = {}): never {
  throw new VerificationError(code, `X.509-SVID: ${message}`, { details })
}

const PEM = /-----BEGIN ([A-Z0-9 ]+)-----([A-Za-z0-9+/=\s]*?)-----END \1-----/g

function toCertificates(input: CertificateChainInput): X509Certificate[] {
  const items: (string | Uint8Array | X509Certificate)[] = Array.isArray(input) ? [...input] : [input as string | Uint8Array | X509Certificate]
  const out: X509Certificate[] = []
  for (const item of items) {
    if (item instanceof X509Certificate) out.push(item)
    else if (item instanceof Uint8Array) {
      if (item.byteLength > MAX_SVID_CERT_BYTES) fail('ERR_MALFORMED', 'a certificate is too large')
      try {
        out.push(new X509Certificate(item))
      } catch {
        fail('ERR_MALFORMED', 'not a DER certificate')
      }
    } else if (typeof item === 'string') {
      if (item.length > MAX_SVID_CHAIN * MAX_SVID_CERT_BYTES * 2) fail('ERR_MALFORMED', 'the PEM input is too large')
      let found = 0
      for (const m of item.matchAll(PEM)) {
        if (m[1] !== 'CERTIFICATE') continue
        found++
        const der = Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64')
        if (der.byteLength > MAX_SVID_CERT_BYTES) fail('ERR_MALFORMED', 'a certificate is too large')
        try {
          out.push(new X509Certificate(der))
        } catch {
          fail('ERR_MALFORMED', 'a PEM block is not a certificate')
        }
      }
      if (found === 0) fail('ERR_MALFORMED', 'no certificates found')
    } else fail('ERR_MALFORMED', 'a certificate must be DER bytes, PEM text or an X509Certificate')
    if (out.length > MAX_SVID_CHAIN) fail('ERR_MALFORMED', `more than ${MAX_SVID_CHAIN} certificates`)
  }
  if (out.length === 0) fail('ERR_MALFORMED', 'no certificates found')
  return out
}

interface CertFacts {
  ca: boolean
  keyUsage: number | null
  uris: string[]
  credential: string | null
}

// Reads the extensions node:crypto does not expose; refuses an unknown critical extension (RFC 5280 §4.2).
function facts(cert: X509Certificate, index: number): CertFacts {
  const { schema: { AsnConvert }, x509: { BasicConstraints, Certificate, KeyUsage, SubjectAlternativeName, id_ce_basicConstraints, id_ce_keyUsage, id_ce_subjectAltName }, credentialExtensionId, knownExtensions } = loadAsn1()
  let parsed: InstanceType<typeof Certificate>
  try {
    parsed = AsnConvert.parse(cert.raw, Certificate)
  } catch {
    return fail('ERR_MALFORMED', `certificate ${index} does not parse`)
  }
  const out: CertFacts = { ca: false, keyUsage: null, uris: [], credential: null }
  const seen = new Set<string>()
  for (const ext of parsed.tbsCertificate.extensions ?? []) {
    if (seen.has(ext.extnID)) fail('ERR_MALFORMED', `certificate ${index} repeats extension ${ext.extnID}`)
    seen.add(ext.extnID)
    // nameConstraints is not processed here, so a critical one is refused like any unknown critical extension.
    if (ext.critical && !knownExtensions.has(ext.extnID)) {
      fail('ERR_MALFORMED', `certificate ${index} has an unknown critical extension ${ext.extnID}`)
    }
    try {
      const value = ext.extnValue.buffer
      if (ext.extnID === id_ce_basicConstraints) out.ca = AsnConvert.parse(value, BasicConstraints).cA === true
      else if (ext.extnID === id_ce_keyUsage) out.keyUsage = AsnConvert.parse(value, KeyUsage).toNumber()
      else if (ext.extnID === id_ce_subjectAltName) {
        for (const name of AsnConvert.parse(value, SubjectAlternativeName)) if (name.uniformResourceIdentifier !== undefined) out.uris.push(name.uniformResourceIdentifier)
      } else if (ext.extnID === credentialExtensionId) out.credential = utf8String(new Uint8Array(value))
    } catch (error) {
      if (error instanceof VerificationError) throw error
      fail('ERR_MALFORMED', `certificate ${index}: extension ${ext.extnID} does not parse`)
    }
  }
  return out
}

// The pathLenConstraint of a CA certificate's basicConstraints, undefined when it sets none.
function pathLenConstraint(cert: X509Certificate): number | undefined {
  const { schema: { AsnConvert }, x509: { BasicConstraints, Certificate, id_ce_basicConstraints } } = loadAsn1()
  try {
    const ext = AsnConvert.parse(cert.raw, Certificate).tbsCertificate.extensions?.find((e) => e.extnID === id_ce_basicConstraints)
    return ext === undefined ? undefined : AsnConvert.parse(ext.extnValue.buffer, BasicConstraints).pathLenConstraint
  } catch {
    return fail('ERR_MALFORMED', 'a signing certificate\'s basicConstraints does not parse')
  }
}

// A DER UTF8String (tag 12), definite length.
function utf8String(der: Uint8Array): string {
  if (der[0] !== 0x0c || der.length < 2) fail('ERR_MALFORMED', 'the agentid credential extension is not a UTF8String')
  let len = der[1]!
  let off = 2
  if (len & 0x80) {
    const n = len & 0x7f
    if (n === 0 || n > 3) fail('ERR_MALFORMED', 'the agentid credential extension has a bad length')
    len = 0
    for (let i = 0; i < n; i++) len = len * 256 + der[2 + i]!
    off = 2 + n
  }
  if (off + len !== der.length) fail('ERR_MALFORMED', 'the agentid credential extension has a bad length')
  return new TextDecoder('utf-8', { fatal: true }).decode(der.subarray(off))
}

/** DER of a UTF8String holding `text` (for the issuer's credential extension). */
export function encodeUtf8String(text: string): Uint8Array {
  const body = Buffer.from(text, 'utf8')
  const n = body.length
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]
  return Buffer.concat([Buffer.from([0x0c, ...len]), body])
}

const seconds = (date: string) => Math.floor(Date.parse(date) / 1000)

/**
 * Checks the shape of an X.509-SVID chain (leaf first), as X509-SVID.md and go-spiffe's `x509svid.Parse`
 * do: the leaf has exactly one URI SAN, a SPIFFE ID with a path; is not a CA; has keyUsage with
 * digitalSignature and neither keyCertSign nor cRLSign. Each further certificate is a CA with
 * keyCertSign. Unknown critical extensions are refused. Trust is not checked here
 * ({@link verifyX509SvidChain}). Throws ERR_MALFORMED.
 * @example
 * parseX509Svid(pemText).spiffeId.id // 'spiffe://example.org/workload-1'
 */
export function parseX509Svid(input: CertificateChainInput): ParsedX509Svid {
  const chain = toCertificates(input)
  const leaf = chain[0]!
  const f = facts(leaf, 0)
  const { KeyUsageFlags } = loadAsn1().x509
  if (f.uris.length !== 1) fail('ERR_MALFORMED', `the leaf must have exactly one URI SAN (it has ${f.uris.length})`)
  const spiffeId = parseSpiffeId(f.uris[0])
  if (spiffeId.path === '') fail('ERR_MALFORMED', 'the leaf SPIFFE ID has no path')
  if (f.ca || leaf.ca) fail('ERR_MALFORMED', 'the leaf is a CA certificate')
  if (f.keyUsage === null || (f.keyUsage & KeyUsageFlags.digitalSignature) === 0) fail('ERR_MALFORMED', 'the leaf lacks the digitalSignature key usage')
  if (f.keyUsage & KeyUsageFlags.keyCertSign) fail('ERR_MALFORMED', 'the leaf has the keyCertSign key usage')
  if (f.keyUsage & KeyUsageFlags.cRLSign) fail('ERR_MALFORMED', 'the leaf has the cRLSign key usage')
  for (let i = 1; i < chain.length; i++) {
    const g = facts(chain[i]!, i)
    if (!g.ca) fail('ERR_MALFORMED', `signing certificate ${i} is not a CA`)
    if (g.keyUsage === null || (g.keyUsage & KeyUsageFlags.keyCertSign) === 0) fail('ERR_MALFORMED', `signing certificate ${i} lacks the keyCertSign key usage`)
  }
  return Object.freeze({
    spiffeId,
    leaf,
    chain: Object.freeze(chain),
    thumbprint: base64urlEncode(createHash('sha256').update(leaf.raw).digest()),
    credential: f.credential,
    notBefore: seconds(leaf.validFrom),
    notAfter: seconds(leaf.validTo),
  })
}

export interface VerifyX509SvidOptions {
  /** Unix seconds. */
  now: number
  /** Allowed clock difference for notBefore/notAfter, seconds (default 0). */
  clockSkewSec?: number
}

function checkValidity(cert: X509Certificate, what: string, now: number, skew: number): void {
  if (seconds(cert.validTo) + skew <= now) fail('ERR_EXPIRED', `${what} has expired`, { notAfter: cert.validTo })
  if (seconds(cert.validFrom) - skew > now) fail('ERR_NOT_YET_VALID', `${what} is not yet valid`, { notBefore: cert.validFrom })
}

function signedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey)
  } catch {
    return false
  }
}

/**
 * Verifies an X.509-SVID chain against a SPIFFE bundle: the shape ({@link parseX509Svid}); the leaf's
 * SPIFFE ID is in the bundle's trust domain (else ERR_UNTRUSTED_ISSUER); each certificate is signed by
 * the next, the last by an X.509 authority of the bundle (ERR_UNTRUSTED_ISSUER); every certificate of
 * the path, the authority included, is within its validity (ERR_EXPIRED, ERR_NOT_YET_VALID).
 * @example
 * const svid = verifyX509SvidChain(socket.getPeerX509Certificate(), bundle, { now: Date.now() / 1000 })
 */
export function verifyX509SvidChain(input: CertificateChainInput, bundle: SpiffeBundle, options: VerifyX509SvidOptions): ParsedX509Svid & { publicKey: KeyObject; pathNotBefore: number; pathNotAfter: number } {
  const svid = parseX509Svid(input)
  const skew = options.clockSkewSec ?? 0
  if (svid.spiffeId.trustDomain !== bundle.trustDomain) {
    fail('ERR_UNTRUSTED_ISSUER', `the SPIFFE ID is not in trust domain ${bundle.trustDomain}`, { trustDomain: svid.spiffeId.trustDomain })
  }
  checkValidity(svid.leaf, 'the leaf', options.now, skew)
  let current = svid.leaf
  const path: X509Certificate[] = [svid.leaf]
  for (let i = 1; i < svid.chain.length; i++) {
    const next = svid.chain[i]!
    if (bundle.x509Authorities.some((a) => a.raw.equals(current.raw))) break
    if (!signedBy(current, next)) fail('ERR_SIGNATURE_INVALID', `certificate ${i - 1} is not signed by certificate ${i}`)
    checkValidity(next, `signing certificate ${i}`, options.now, skew)
    path.push(next)
    current = next
  }
  const authority = bundle.x509Authorities.find((a) => a.raw.equals(current.raw)) ?? bundle.x509Authorities.find((a) => signedBy(current, a))
  if (!authority) fail('ERR_UNTRUSTED_ISSUER', 'the chain does not lead to an authority of the bundle')
  checkValidity(authority, 'the bundle authority', options.now, skew)
  if (!authority.raw.equals(current.raw)) path.push(authority)
  // RFC 5280 §6.1.4 (l, m): a CA's pathLenConstraint bounds the CA certificates below it in the path
  // (the leaf not counted, nor self-issued ones), as go-spiffe's x509 verification does. The issuer's
  // own CA is pathLen 0: it signs leaves only, and a CA certificate under it mints nothing.
  for (let i = 2; i < path.length; i++) {
    const limit = pathLenConstraint(path[i]!)
    if (limit === undefined) continue
    let below = 0
    for (let j = 1; j < i; j++) if (path[j]!.subject !== path[j]!.issuer) below++
    if (below > limit) fail('ERR_UNTRUSTED_ISSUER', `certificate ${i} allows ${limit} CA certificate(s) below it, the path has ${below}`, { pathLen: limit })
  }
  // The window in which every certificate of the path is valid (for callers that cache the result).
  const pathNotBefore = Math.max(...path.map((c) => seconds(c.validFrom)))
  const pathNotAfter = Math.min(...path.map((c) => seconds(c.validTo)))
  return Object.freeze({ ...svid, publicKey: svid.leaf.publicKey, pathNotBefore, pathNotAfter })
}
