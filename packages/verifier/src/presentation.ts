import {
  assertEd25519PublicKey,
  decodeJwt,
  isDidKeySyntax,
  parseDidKeySyntax,
  publicKeyFromRaw,
  ed25519Backend,
  verifyJwsSignature,
  verifyJwsSignatureAsync,
  verifyJwsSignatureRaw,
  VerificationError,
  type DecodedJwt,
  type VerificationErrorCode,
  isNumericDate,
} from '@agentid/core'
import { parseCapabilityLink } from '@agentid/delegation'
import { rootTrusted, verifyDelegationChain, type DelegationContext, type VerifiedDelegation } from './delegation.js'
import type { VerifiedAgent } from './types.js'
import { isRecord } from './util.js'

export type { ReplayCache, MemoryReplayCacheOptions } from './replay-cache.js'
import { PRESENTATION_TYP, MAX_PRESENTATION_LIFETIME_SEC, type ReplayCache } from './replay-cache.js'

/** One thing an agent may do: a resource identifier (or prefix/pattern) and the actions on it. */
export interface EffectiveCapability {
  readonly resource: string
  readonly actions: readonly string[]
}

/** Options of `verifier.verifyPresentation`. */
export interface VerifyPresentationOptions {
  /** This service's identifier: the presentation's `aud` must equal it. Required. */
  audience: string
  /** The challenge this service handed out: when given, the presentation must carry exactly it. */
  nonce?: string
}

/** What `verifyPresentation` returns: who is calling, and what it may do. */
export interface VerifiedPresentation {
  /** The presenting agent, from its verified identity credential (`agent.did` = the presentation's `iss`). */
  readonly agent: VerifiedAgent
  /** The presentation's `jti`, now recorded in the replay cache. */
  readonly presentationId: string
  readonly audience: string
  /**
   * With a delegation chain, the capabilities of its last link. Without one, each identifier of the
   * identity credential's `toolProfile` with actions `['*']`; a named profile gives an empty list and `profile`.
   */
  readonly capabilities: readonly EffectiveCapability[]
  /** The identity credential's `toolProfile` when it is a named profile, else null: the service maps it. */
  readonly profile: string | null
  /** The verified delegation chain (compact JWTs, root first), or null when none was presented. */
  readonly delegationChain: readonly string[] | null
  /**
   * The chain as verified: its root, its leaf (the agent, every capability of the last link and its
   * caveats, whose `constraints` and `maxDataClass` the service enforces), its length. Null without a chain.
   */
  readonly delegation: VerifiedDelegation | null
}

/** What the presentation check needs from its verifier. */
export interface PresentationContext {
  now: () => number
  clockSkewSec: number
  maxAgeSec: number
  maxTokenBytes: number
  offloadSignatures: boolean
  replayCache: ReplayCache
  verifyAgentCredential: (jwt: string, options?: { tlogProof?: string }) => Promise<VerifiedAgent>
  /** The verifier's delegation settings (trusted roots, chain limits). Absent: presentations carrying a chain are refused. */
  delegation?: DelegationContext
}

function fail(code: VerificationErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown): never {
  throw new VerificationError(code, `presentation: ${message}`, { details, cause })
}


function numericDate(value: unknown, claim: string): number {
  if (!isNumericDate(value)) fail('ERR_MALFORMED', `${claim} must be a NumericDate`, { claim })
  return value
}

/** Checks the signature of `jwt` by the did:key in its `iss`; returns that key's id. */
async function verifyHolderSignature(jwt: DecodedJwt, iss: string, offload: boolean): Promise<string> {
  const { publicKey: raw, keyId } = parseDidKeySyntax(iss)
  try {
    // Before the signature: libsodium refuses a small-order or non-canonical key inside its verify,
    // node:crypto accepts a signature made for one (see VerificationKey); the same answer on both.
    // The encoding checks only: a key off the curve verifies nothing.
    assertEd25519PublicKey(raw, { signatureVerified: true })
  } catch (cause) {
    fail('ERR_SIGNATURE_INVALID', 'signed by a weak key (small order or non-canonical)', {}, cause)
  }
  if (!offload && ed25519Backend() === 'libsodium') {
    // libsodium takes the raw key: no KeyObject made for a key seen once (see core's ed25519Backend).
    if (raw.length !== 32) fail('ERR_SIGNATURE_INVALID', 'the iss key is not an Ed25519 key')
    verifyJwsSignatureRaw(jwt, raw)
  } else {
    let key
    try {
      key = publicKeyFromRaw(raw)
    } catch (cause) {
      fail('ERR_SIGNATURE_INVALID', 'the iss key is not an Ed25519 key', {}, cause)
    }
    if (offload) await verifyJwsSignatureAsync(jwt, key)
    else verifyJwsSignature(jwt, key)
  }
  return keyId
}

/**
 * Verifies a presentation: the agent's own signature, audience, freshness, nonce, the embedded
 * identity credential (through `verifyAgentCredential`), the delegation chain if any, and, last,
 * that its `jti` was never accepted before. Throws VerificationError.
 */
export async function verifyPresentationWith(ctx: PresentationContext, token: unknown, options: VerifyPresentationOptions): Promise<VerifiedPresentation> {
  if (!isRecord(options) || typeof options.audience !== 'string' || options.audience === '') {
    throw new TypeError('verifyPresentation: options.audience is required')
  }
  if (options.nonce !== undefined && (typeof options.nonce !== 'string' || options.nonce === '')) {
    throw new TypeError('verifyPresentation: options.nonce must be a non-empty string')
  }
  // Size before anything else: an oversized token costs a length read, not a parse.
  if (typeof token !== 'string') fail('ERR_MALFORMED', 'must be a compact JWT string')
  if (token.length > ctx.maxTokenBytes) fail('ERR_MALFORMED', `larger than ${ctx.maxTokenBytes} bytes`, { maxBytes: ctx.maxTokenBytes })
  const jwt = decodeJwt(token, ctx.maxTokenBytes) // EdDSA only (ERR_UNSUPPORTED_ALG), strict base64url, duplicate-free JSON
  if (jwt.header.typ !== PRESENTATION_TYP) fail('ERR_MALFORMED', `typ must be ${PRESENTATION_TYP}`, { typ: jwt.header.typ ?? null })
  const p = jwt.payload
  const iss = p.iss
  if (!isDidKeySyntax(iss)) fail('ERR_MALFORMED', 'iss must be the agent did:key')

  const keyId = await verifyHolderSignature(jwt, iss, ctx.offloadSignatures)
  if (jwt.header.kid === undefined) fail('ERR_MALFORMED', 'kid is missing')
  if (jwt.header.kid !== keyId) fail('ERR_KEY_MISMATCH', 'kid does not name the key of iss', { iss, kid: jwt.header.kid })

  // Signed by its holder: now its content must be well-formed.
  const iat = numericDate(p.iat, 'iat')
  const exp = numericDate(p.exp, 'exp')
  const jti = p.jti
  if (typeof jti !== 'string' || jti.length < 16 || jti.length > 128) fail('ERR_MALFORMED', 'jti must be a string of 16 to 128 characters')
  if (p.nonce !== undefined && (typeof p.nonce !== 'string' || p.nonce.length === 0 || p.nonce.length > 256)) fail('ERR_MALFORMED', 'nonce must be a short string')
  const vp = p.vp
  if (!isRecord(vp)) fail('ERR_MALFORMED', 'vp claim is missing')
  if (!Array.isArray(vp.type) || !vp.type.includes('VerifiablePresentation')) fail('ERR_MALFORMED', 'vp.type must include VerifiablePresentation')
  if (vp.holder !== undefined && vp.holder !== iss) fail('ERR_KEY_MISMATCH', 'vp.holder is not iss')
  const credentials = vp.verifiableCredential
  if (!Array.isArray(credentials) || credentials.length !== 1 || typeof credentials[0] !== 'string') {
    fail('ERR_MALFORMED', 'vp.verifiableCredential must hold exactly one identity credential JWT')
  }
  const chain = vp.delegationChain
  if (chain !== undefined) {
    // Its length and size limits are verifyDelegation's (maxChainLength, maxChainBytes); the whole presentation is bounded already.
    if (!Array.isArray(chain) || chain.length === 0 || !chain.every((link) => typeof link === 'string')) {
      fail('ERR_MALFORMED', 'vp.delegationChain must be a non-empty list of link JWTs, root first')
    }
    if (!ctx.delegation) fail('ERR_MALFORMED', 'delegation chains not supported by this verifier')
  }

  if (p.aud !== options.audience) fail('ERR_AUDIENCE_MISMATCH', 'aud is not this service', { aud: typeof p.aud === 'string' ? p.aud : null })
  const t = ctx.now() / 1000
  const skew = ctx.clockSkewSec
  if (iat - skew > t) fail('ERR_NOT_YET_VALID', 'issued in the future', { iat })
  if (t - iat > ctx.maxAgeSec + skew) fail('ERR_EXPIRED', 'issued too long ago', { iat, maxAgeSec: ctx.maxAgeSec })
  if (exp + skew <= t) fail('ERR_EXPIRED', 'expired', { exp })
  if (exp <= iat || exp - iat > MAX_PRESENTATION_LIFETIME_SEC) fail('ERR_MALFORMED', `lifetime must be 1 to ${MAX_PRESENTATION_LIFETIME_SEC} s`, { iat, exp })
  if (options.nonce !== undefined && p.nonce !== options.nonce) fail('ERR_REPLAY', p.nonce === undefined ? 'nonce is missing' : 'nonce is not the expected one')

  const tlogProof = vp.tlogProof
  if (tlogProof !== undefined && (typeof tlogProof !== 'string' || tlogProof.length > 64 * 1024)) fail('ERR_MALFORMED', 'vp.tlogProof must be a tlog-proof text')
  const agent = await ctx.verifyAgentCredential(credentials[0] as string, tlogProof === undefined ? {} : { tlogProof })
  if (agent.did !== iss) fail('ERR_KEY_MISMATCH', 'the identity credential names another agent', { iss, sub: agent.did })

  const profile = typeof agent.claims.toolProfile === 'string' ? agent.claims.toolProfile : null
  let capabilities: readonly EffectiveCapability[]
  let delegation: VerifiedDelegation | null = null
  if (chain !== undefined) {
    ;({ delegation, capabilities } = await verifyHeldChain(ctx.delegation!, chain as string[], iss, options.audience))
  } else if (profile === null) {
    capabilities = (agent.claims.toolProfile as readonly string[]).map((resource) => Object.freeze({ resource, actions: Object.freeze(['*']) }))
  } else {
    capabilities = []
  }

  // Last: only presentations that passed every other check reach the cache, so forged or
  // untrusted ones cannot fill it, and a transient failure (status list down) does not burn the jti.
  // The entry outlives, by a second, the last instant the presentation could still be accepted.
  const acceptableUntil = Math.min(exp, iat + ctx.maxAgeSec) + skew
  let fresh: boolean
  try {
    fresh = await ctx.replayCache.checkAndStore(`${iss} ${jti}`, Math.ceil(acceptableUntil * 1000) + 1000)
  } catch (cause) {
    fail('ERR_REPLAY', 'the replay cache failed; refusing rather than risk a replay', {}, cause)
  }
  if (fresh !== true) fail('ERR_REPLAY', 'presentation already used', { jti })

  return Object.freeze({
    agent,
    presentationId: jti,
    audience: options.audience,
    capabilities: Object.freeze(capabilities),
    profile,
    delegationChain: chain === undefined ? null : Object.freeze([...(chain as string[])]),
    delegation,
  })
}

// A resource no capability names and no trusted-roots prefix plausibly starts with: U+FFFF is a Unicode
// noncharacter. It must be a plain identifier (core's isPlainResourceIdentifier refuses control characters).
const PROBE_SUFFIX = '\uffffagentid-presentation'

/**
 * Verifies a delegation chain held by `holder` as a whole, for no particular resource or action, and
 * returns its leaf's capabilities whose resources the chain's root is trusted for.
 *
 * Every check of `verifyDelegation` but the request-specific ones (which resource, which action, data
 * class) runs once, through `verifyDelegation` itself, asked for one invocation that a leaf capability
 * trusted for the root covers: limits, decoding, linkage, parent hashes, depth, attenuation, time,
 * root trust, the leaf's audience caveat against this service, the holder as the leaf's subject,
 * every signature, revocation. What the service then invokes it checks against `capabilities`
 * (or with `verifyDelegation` for that exact resource and action).
 */
async function verifyHeldChain(ctx: DelegationContext, chain: readonly string[], holder: string, audience: string): Promise<{ delegation: VerifiedDelegation; capabilities: readonly EffectiveCapability[] }> {
  // Read (not yet trusted) the root's signer and the leaf, only to choose what to ask for.
  let rootIss: unknown
  let leaf: ReturnType<typeof parseCapabilityLink> | undefined
  try {
    rootIss = decodeJwt(chain[0], ctx.maxTokenBytes).payload.iss
    leaf = parseCapabilityLink(decodeJwt(chain[chain.length - 1], ctx.maxTokenBytes).payload, 'ERR_MALFORMED')
  } catch {
    leaf = undefined
  }
  const trusted = leaf && typeof rootIss === 'string' ? leaf.capabilities.filter((c) => rootTrusted(ctx, c.resource, rootIss as string)) : []
  // None trusted, or unreadable: the same call then fails with the chain's own error (the link, its signer, why).
  const probe = trusted[0] ?? leaf?.capabilities[0]
  const resource = probe === undefined ? `urn:agentid:presentation${PROBE_SUFFIX}` : probe.resource.endsWith('/*') ? probe.resource.slice(0, -1) + PROBE_SUFFIX : probe.resource
  const action = probe?.actions.find((a) => a !== '*') ?? 'invoke'
  const delegation = await verifyDelegationChain(ctx, chain, { invoker: holder, resource, action, audience })
  if (trusted.length === 0) fail('ERR_UNTRUSTED_ISSUER', 'the root of the delegation chain is not trusted for any of its capabilities', { root: delegation.root })
  const capabilities = delegation.leaf.capabilities.filter((c) => rootTrusted(ctx, c.resource, delegation.root))
  return { delegation, capabilities }
}
