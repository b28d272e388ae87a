// Authenticating agents by their X.509-SVID (a TLS client certificate) and by JWT-SVIDs, inside createVerifier.
import { createHash, X509Certificate } from 'node:crypto'
import { encodeDidKey, rawPublicKey, VerificationError } from '@agentid/core'
import type { VerifiedAgent } from '../types.js'
import { BoundedCache } from '../lru.js'
import type { FetchLike } from '../status.js'
import { parseSpiffeBundle, type SpiffeBundle } from './bundle.js'
import { verifyJwtSvid, type VerifiedJwtSvid } from './jwt.js'
import { verifyX509SvidChain, type CertificateChainInput } from './x509.js'

/** Where the verifier takes the trust domain's SPIFFE bundle from (createVerifier's `spiffe` option). */
export interface SpiffeOptions {
  /** The trust domain agents' SPIFFE IDs must belong to (the issuer's `AGENTID_TRUST_DOMAIN`). */
  trustDomain: string
  /** The bundle itself: parsed, its JSON, or the object. */
  bundle?: SpiffeBundle | string | Record<string, unknown>
  /**
   * Or the URL serving it (the issuer's `GET /v1/spiffe/bundle`), fetched with the verifier's `fetch`
   * and kept for its `spiffe_refresh_hint` (default 300 s); when a refresh fails the last good bundle
   * is used for at most 24 h.
   */
  bundleUrl?: string
}

/** What `verifyX509Svid` returns: the agent (as `verifyAgentCredential` does) and its certificate. */
export interface VerifiedSvidAgent {
  readonly agent: VerifiedAgent
  readonly spiffeId: string
  /** `x5t#S256` of the certificate: base64url SHA-256 of its DER (RFC 8705). */
  readonly certificateThumbprint: string
  /** The certificate's notAfter, unix seconds. */
  readonly expiresAt: number
}

export interface SvidContext {
  now: () => number
  clockSkewSec: number
  fetch: FetchLike
  verifyAgentCredential: (credential: string) => Promise<VerifiedAgent>
}

const MAX_STALE_MS = 24 * 3600 * 1000

/** The bundle source of a verifier: static, or fetched and refreshed. */
export function bundleSource(options: SpiffeOptions, ctx: Pick<SvidContext, 'now' | 'fetch'>): () => Promise<SpiffeBundle> {
  if (typeof options !== 'object' || options === null || typeof options.trustDomain !== 'string') throw new TypeError('createVerifier: spiffe.trustDomain is required')
  if ((options.bundle === undefined) === (options.bundleUrl === undefined)) throw new TypeError('createVerifier: spiffe needs exactly one of bundle and bundleUrl')
  if (options.bundle !== undefined) {
    const b = options.bundle
    const parsed = isParsed(b) ? b : parseSpiffeBundle(b, options.trustDomain)
    if (parsed.trustDomain !== options.trustDomain) throw new TypeError('createVerifier: spiffe.bundle is for another trust domain')
    return async () => parsed
  }
  const url = options.bundleUrl!
  if (!/^https?:\/\//.test(url)) throw new TypeError('createVerifier: spiffe.bundleUrl must be an http(s) URL')
  let cached: { bundle: SpiffeBundle; fetchedAt: number; ttlMs: number } | undefined
  let inflight: Promise<SpiffeBundle> | undefined
  const load = async (): Promise<SpiffeBundle> => {
    const res = await ctx.fetch(url)
    if (!res.ok) throw new VerificationError('ERR_STATUS_UNAVAILABLE', `SPIFFE bundle: ${url} answered ${res.status}`)
    const bundle = parseSpiffeBundle(await res.text(), options.trustDomain)
    cached = { bundle, fetchedAt: ctx.now(), ttlMs: Math.min(Math.max(bundle.refreshHintSec ?? 300, 10), 3600) * 1000 }
    return bundle
  }
  return async () => {
    const t = ctx.now()
    if (cached && t - cached.fetchedAt < cached.ttlMs) return cached.bundle
    inflight ??= load().finally(() => { inflight = undefined })
    try {
      return await inflight
    } catch (error) {
      if (cached && t - cached.fetchedAt < MAX_STALE_MS) return cached.bundle
      if (error instanceof VerificationError) throw error
      throw new VerificationError('ERR_STATUS_UNAVAILABLE', 'SPIFFE bundle: cannot be fetched', { cause: error })
    }
  }
}

function isParsed(b: unknown): b is SpiffeBundle {
  return typeof b === 'object' && b !== null && Array.isArray((b as SpiffeBundle).x509Authorities) && (b as SpiffeBundle).jwtAuthorities instanceof Map
}

/**
 * Authenticates an agent by its X.509-SVID (leaf first, as a TLS stack hands it over): the chain to the
 * bundle ({@link verifyX509SvidChain}); the agentid identity credential the certificate carries, fully
 * verified (trusted issuer, signature, time, revocation status, on every call); the certificate's key is
 * the credential's did:key and its URI SAN the credential's `spiffeId` (else ERR_KEY_MISMATCH). A
 * certificate without the credential is ERR_MALFORMED: its holder's claims would be unknown.
 */
export async function verifyX509SvidWith(ctx: SvidContext, bundle: () => Promise<SpiffeBundle>, chain: CertificateChainInput): Promise<VerifiedSvidAgent> {
  const b = await bundle()
  const t = ctx.now() / 1000
  // A chain verified before with this bundle (a keep-alive connection: one per request) is not parsed
  // or checked again while every certificate of its path is valid; the credential is checked every time.
  let memo = chainMemos.get(b)
  if (!memo) chainMemos.set(b, (memo = new BoundedCache(1000)))
  const key = chainKey(chain)
  let verified = key === null ? undefined : memo.get(key)
  if (!verified || t < verified.pathNotBefore - ctx.clockSkewSec || t >= verified.pathNotAfter + ctx.clockSkewSec) {
    const svid = verifyX509SvidChain(chain, b, { now: t, clockSkewSec: ctx.clockSkewSec })
    if (svid.credential === null) throw new VerificationError('ERR_MALFORMED', 'X.509-SVID: carries no agentid identity credential')
    let did: string
    try {
      did = encodeDidKey(rawPublicKey(svid.publicKey))
    } catch {
      throw new VerificationError('ERR_KEY_MISMATCH', 'X.509-SVID: the certificate key is not an Ed25519 agent key')
    }
    verified = { spiffeId: svid.spiffeId.id, credential: svid.credential, did, thumbprint: svid.thumbprint, notAfter: svid.notAfter, pathNotBefore: svid.pathNotBefore, pathNotAfter: svid.pathNotAfter }
    if (key !== null) memo.set(key, verified)
  }
  const svid = { spiffeId: { id: verified.spiffeId }, thumbprint: verified.thumbprint, notAfter: verified.notAfter }
  const did = verified.did
  const agent = await ctx.verifyAgentCredential(verified.credential)
  if (did !== agent.did) throw new VerificationError('ERR_KEY_MISMATCH', 'X.509-SVID: the certificate key is not the key of the credential subject')
  if (agent.claims.spiffeId !== svid.spiffeId.id) throw new VerificationError('ERR_KEY_MISMATCH', 'X.509-SVID: the SPIFFE ID is not the credential\'s spiffeId')
  return Object.freeze({ agent, spiffeId: svid.spiffeId.id, certificateThumbprint: svid.thumbprint, expiresAt: svid.notAfter })
}

interface VerifiedChain { spiffeId: string; credential: string; did: string; thumbprint: string; notAfter: number; pathNotBefore: number; pathNotAfter: number }
const chainMemos = new WeakMap<SpiffeBundle, BoundedCache<string, VerifiedChain>>()

// SHA-256 over the chain's certificates as given (DER bytes, or the PEM text); null for other inputs.
function chainKey(chain: CertificateChainInput): string | null {
  const items = Array.isArray(chain) ? chain : [chain]
  const hash = createHash('sha256')
  for (const item of items) {
    if (item instanceof X509Certificate) hash.update('d').update(item.raw)
    else if (item instanceof Uint8Array) hash.update('d').update(item)
    else if (typeof item === 'string') hash.update('p').update(item)
    else return null
    hash.update('\0')
  }
  return hash.digest('base64')
}

/** Verifies a JWT-SVID for `audience` against the verifier's bundle. */
export async function verifyJwtSvidWith(ctx: SvidContext, bundle: () => Promise<SpiffeBundle>, token: unknown, audience: string): Promise<VerifiedJwtSvid> {
  return verifyJwtSvid(token, await bundle(), { audience, now: ctx.now() / 1000, clockSkewSec: ctx.clockSkewSec })
}

/** `x5t#S256` (RFC 8705 §3.1) of a certificate: base64url SHA-256 of its DER. */
export function certificateThumbprint(certificate: X509Certificate | Uint8Array): string {
  const der = certificate instanceof X509Certificate ? certificate.raw : certificate
  return createHash('sha256').update(der).digest('base64url')
}
