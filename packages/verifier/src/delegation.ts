import { AgentIdError, decodeJwt, isPlainResourceIdentifier, parseStatusListIndex, StatusListError, VerificationError, type DataAccessClass, type DecodedJwt } from '@agentid/core'
import {
  grantCovers,
  isAttenuation,
  linkHash,
  parseCapabilityLink,
  type Capability,
  type CapabilityLink,
  type Caveats,
} from '@agentid/delegation'
import { verifyUnderAnyKey, verifyUnderAnyKeySync, type KeyResolver, type VerificationKey } from './keys.js'
import type { LinkMemo, MemoizedLink } from './delegation-memo.js'
import type { StatusLists, StatusListTrust } from './status.js'

/** What {@link Verifier.verifyDelegation} checks the chain against. */
export interface DelegationRequest {
  /** DID of the party invoking the capability (already authenticated, e.g. by a proof of possession). */
  invoker: string
  /** Exact resource identifier invoked (no `*`). */
  resource: string
  /** Action invoked (not `*`). */
  action: string
  /** This service, when the leaf names an audience. A chain restricted to an audience is refused without it. */
  audience?: string
  /** Data class the action touches, checked against the leaf's `maxDataClass`. */
  dataClass?: DataAccessClass
  /**
   * Also require a valid, unrevoked identity credential for every agent in the chain (each link's
   * subject, and each link's signer but the root's), taken from `identityCredentials`. An agent with
   * none is ERR_NOT_AUTHORIZED; one whose credential fails carries that credential's code.
   */
  requireIdentity?: boolean
  /** Identity credentials (compact JWTs or Data Integrity credentials) of the chain's agents. */
  identityCredentials?: readonly unknown[]
}

/** A verified delegation chain. */
export interface VerifiedDelegation {
  /** The root link's signer, trusted for the resource. */
  root: string
  /** The last link's subject and what it may do. Constraints are for the service to enforce. */
  leaf: { did: string; capabilities: readonly Capability[]; caveats: Caveats }
  /** Number of links in the chain, root included. */
  links: number
}

/** Everything the chain check needs from its verifier. */
export interface DelegationContext {
  keys: KeyResolver
  statusLists: StatusLists
  /** Status-list URLs a link may name (explicit prefixes, and those learned from trusted issuers). */
  statusTrust: StatusListTrust
  /** True when a revocation event names the link (its signer and jti): refused without waiting for the status list. */
  linkRevoked?: (iss: string, jti: string | null) => boolean
  trustedIssuers: ReadonlySet<string>
  /** Resource prefix → trusted root DIDs. */
  trustedRoots: ReadonlyMap<string, ReadonlySet<string>>
  now: () => number
  skewSec: number
  maxChainLength: number
  maxChainBytes: number
  maxTokenBytes: number
  offload: boolean
  /** Links whose signature verified, by their exact bytes (see delegation-memo.ts). */
  memo: LinkMemo
  /** The verifier's own identity-credential check (all its checks), for `requireIdentity`. */
  verifyIdentity: (credential: unknown) => Promise<{ did: string }>
}

const ATTENUATES = { ok: true } as const
const ACCEPTED_TYP = new Set([undefined, 'JWT', 'vc+jwt', 'vc+ld+json+jwt'])

function chainError(code: VerificationError['code'], message: string, link: number | null, signer: string | null, reason: string, extra: Record<string, unknown> = {}, cause?: unknown): never {
  throw new VerificationError(code, message, { details: { ...extra, link, signer, reason }, cause })
}

/** Re-throws a failure of link `i` as a VerificationError naming the link and its signer. */
function named(error: unknown, link: number, signer: string | null, reason: string): never {
  if (error instanceof VerificationError) {
    throw new VerificationError(error.code, `delegation link ${link}: ${error.message}`, { details: { ...error.details, link, signer, reason }, cause: error })
  }
  if (error instanceof AgentIdError) chainError('ERR_MALFORMED', `delegation link ${link}: ${error.message}`, link, signer, reason, error.details, error)
  throw error
}

export { parseTrustedRoots } from './roots.js'

/** Roots trusted for `resource`: those of the longest matching prefix, plus every trusted issuer. */
export function rootTrusted(ctx: DelegationContext, resource: string, root: string): boolean {
  if (ctx.trustedIssuers.has(root)) return true
  let best: ReadonlySet<string> | undefined
  let bestLength = -1
  // A pattern `P/*` names everything under P: the root must also be trusted for every more specific
  // prefix under P (with 'mcp://erp/' → [a] and 'mcp://erp/payroll/' → [b], a is no root for 'mcp://erp/*').
  const pattern = resource.endsWith('/*') ? resource.slice(0, -1) : null
  for (const [prefix, dids] of ctx.trustedRoots) {
    if (pattern !== null && prefix.length > pattern.length && prefix.startsWith(pattern) && !dids.has(root)) return false
    if (prefix.length > bestLength && resource.startsWith(prefix)) {
      best = dids
      bestLength = prefix.length
    }
  }
  return best?.has(root) ?? false
}

async function signerKeys(ctx: DelegationContext, iss: string, kid: string | undefined): Promise<readonly VerificationKey[]> {
  try {
    return await ctx.keys.keysFor(iss, 'capabilityDelegation', kid)
  } catch (error) {
    // A did:key lists its one key under every relationship; other methods may use assertionMethod only.
    if (!(error instanceof VerificationError) || error.code !== 'ERR_KEY_MISMATCH') throw error
    return ctx.keys.keysFor(iss, 'assertionMethod', kid)
  }
}

/**
 * {@link signerKeys} without a promise when the keys are at hand (resolved within the DID cache's
 * TTL, or an Ed25519 did:key read from itself); undefined when they must be resolved. Same errors.
 * `remember`: whether a did:key read from itself goes into the DID cache (the root's signer, the
 * same on every chain, does; an agent signing a link below it does not: see keysForSync).
 */
function signerKeysSync(ctx: DelegationContext, iss: string, kid: string | undefined, remember: boolean): readonly VerificationKey[] | undefined {
  try {
    return ctx.keys.keysForSync(iss, 'capabilityDelegation', kid, remember)
  } catch (error) {
    if (!(error instanceof VerificationError) || error.code !== 'ERR_KEY_MISMATCH') throw error
    return ctx.keys.keysForSync(iss, 'assertionMethod', kid, remember)
  }
}

/**
 * {@link verifySignature} on this thread without a promise, when no offloading is asked for and the
 * signer's keys are at hand; undefined when it cannot be (then call verifySignature). An async
 * function awaited per link cost a promise and a microtask turn per link of a cold chain.
 */
function verifySignatureSync(ctx: DelegationContext, jwt: DecodedJwt, iss: string, remember: boolean): VerificationKey | undefined {
  if (ctx.offload) return undefined
  const candidates = signerKeysSync(ctx, iss, jwt.header.kid as string | undefined, remember)
  if (candidates === undefined) return undefined
  return verifyUnderAnyKeySync(candidates, jwt)
}

/**
 * True when `did` is the chain's root signer or the subject of one of its first `count` links: every
 * DID of the chain (each later signer is the previous subject, checked before), so a link delegating
 * to it closes a cycle. A scan of at most maxChainLength subjects, instead of a Set built on every call.
 */
function inChain(links: readonly CapabilityLink[], count: number, root: string, did: string): boolean {
  if (did === root) return true
  for (let j = 0; j < count; j++) if (links[j]!.sub === did) return true
  return false
}

/** Verifies a link's signature; returns the key it verified under. */
async function verifySignature(ctx: DelegationContext, jwt: DecodedJwt, iss: string, remember: boolean): Promise<VerificationKey> {
  const kid = jwt.header.kid as string | undefined
  // Keys at hand and no offloading: checked on this thread without a promise per link.
  const candidates = signerKeysSync(ctx, iss, kid, remember) ?? (await signerKeys(ctx, iss, kid))
  return verifyUnderAnyKey(candidates, jwt, ctx.offload)
}

/**
 * Verifies a delegation chain (root first) for one invocation. Cheap checks come first, over every
 * link, so a chain that fails them costs no signature work and no network: shape and size limits;
 * for each link decoding, linkage (`iss` = previous `sub`), `parentHash`, depth, attenuation and
 * time; the root's trust for the resource; the leaf's coverage of the request and the invoker.
 * Then each link's signature, and only then (no fetch for unauthenticated URLs) each link's
 * revocation status. Every failure is a VerificationError with `details.link`, `.signer`, `.reason`.
 */
export async function verifyDelegationChain(ctx: DelegationContext, chain: unknown, request: DelegationRequest): Promise<VerifiedDelegation> {
  if (!request || typeof request !== 'object') throw new TypeError('verifyDelegation: a request { invoker, resource, action } is required')
  const { invoker, resource, action, audience, dataClass } = request
  if (typeof invoker !== 'string' || typeof resource !== 'string' || typeof action !== 'string') {
    throw new TypeError('verifyDelegation: invoker, resource and action must be strings')
  }
  if (resource.includes('*') || action.includes('*') || action.length === 0) throw new TypeError('verifyDelegation: resource and action must be exact (no *)')
  // One resource-identifier rule (core's isPlainResourceIdentifier): no chain grants a dot segment.
  if (!isPlainResourceIdentifier(resource)) chainError('ERR_NOT_AUTHORIZED', 'the requested resource holds a dot segment, an encoded slash, a backslash or a control character', null, null, 'resource not plain', { resource: resource.slice(0, 256) })

  // Limits before any parsing or signature work.
  if (!Array.isArray(chain)) chainError('ERR_MALFORMED', 'delegation chain must be an array of compact JWTs', null, null, 'not an array')
  if (chain.length === 0) chainError('ERR_MALFORMED', 'delegation chain is empty', null, null, 'empty chain')
  if (chain.length > ctx.maxChainLength) {
    chainError('ERR_DELEGATION_DEPTH', `delegation chain is longer than ${ctx.maxChainLength} links`, ctx.maxChainLength, null, 'chain too long', { length: chain.length, maxChainLength: ctx.maxChainLength })
  }
  let bytes = 0
  for (let i = 0; i < chain.length; i++) {
    const link: unknown = chain[i]
    if (typeof link !== 'string') chainError('ERR_MALFORMED', `delegation link ${i} is not a string`, i, null, 'not a string')
    bytes += link.length
    if (bytes > ctx.maxChainBytes) chainError('ERR_MALFORMED', `delegation chain is larger than ${ctx.maxChainBytes} bytes`, i, null, 'chain too large', { maxChainBytes: ctx.maxChainBytes })
  }
  const tokens = chain as string[]

  const t = ctx.now() / 1000
  // A memoized link (the same text) skips hashing, decoding, parsing, the attenuation check against
  // the parent its parentHash names and, while its key is still the signer's, the signature.
  // Sized once (a chain is at most maxChainLength links): pushing onto empty arrays allocated a
  // backing store of 16 slots for each, on every call.
  const jwts = new Array<DecodedJwt | null>(tokens.length)
  const hashes = new Array<string | null>(tokens.length)
  const hits = new Array<MemoizedLink | undefined>(tokens.length)
  const links = new Array<CapabilityLink>(tokens.length)
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!
    const hit = ctx.memo.get(token)
    // Its hash is what the next link must name: the leaf's is not needed (nor computed) unless known.
    const hash = hit?.hash ?? (i < tokens.length - 1 ? linkHash(token) : null)
    let jwt: DecodedJwt | null = null
    let link: CapabilityLink
    if (hit) {
      link = hit.link
    } else {
      try {
        // EdDSA only, strict base64url and JSON. The root's header (its signer is a trusted issuer or
        // root, the same on every chain) is kept in core's cache of repeated headers; a later link's
        // names its signer, an agent, whose links are memoized themselves: a cold chain's new agents
        // each missed that cache, which cost about a third more than decoding the header alone.
        jwt = decodeJwt(token, ctx.maxTokenBytes, i === 0)
      } catch (error) {
        return named(error, i, null, 'malformed link')
      }
      const claimed = typeof jwt.payload.iss === 'string' ? jwt.payload.iss : null
      if (!ACCEPTED_TYP.has(jwt.header.typ)) chainError('ERR_MALFORMED', 'unexpected JWS typ', i, claimed, 'typ', { typ: jwt.header.typ })
      try {
        link = parseCapabilityLink(jwt.payload, 'ERR_MALFORMED')
      } catch (error) {
        return named(error, i, claimed, 'malformed link')
      }
    }
    const signer = link.iss
    const previous = links[i - 1]
    if (previous === undefined) {
      if (link.parentHash !== null) chainError('ERR_DELEGATION_BROKEN', 'the root link names a parent', i, signer, 'root has a parent')
    } else {
      if (link.iss !== previous.sub) {
        chainError('ERR_DELEGATION_BROKEN', `delegation link ${i} is not signed by the subject of link ${i - 1}`, i, signer, 'issuer is not the previous subject', { expected: previous.sub })
      }
      if (link.parentHash !== hashes[i - 1]) chainError('ERR_DELEGATION_BROKEN', `delegation link ${i} does not hash link ${i - 1}`, i, signer, 'parentHash mismatch')
      if (previous.caveats.remainingDepth === 0) {
        chainError('ERR_DELEGATION_DEPTH', `link ${i - 1} allows no further delegation`, i, signer, 'no depth left', { caveat: 'remainingDepth' })
      }
      // The verdict is a function of the two links' bytes, and the parent's are bound by parentHash:
      // a memoized link that passed it against the parent it names skips it.
      const verdict = hit?.attenuates ? ATTENUATES : isAttenuation(link, previous)
      if (!verdict.ok) {
        const { ok: _ok, reason, ...what } = verdict
        chainError('ERR_DELEGATION_ESCALATION', `delegation link ${i} is wider than its parent: ${reason}`, i, signer, reason, what)
      }
    }
    if (link.exp + ctx.skewSec <= t) chainError('ERR_EXPIRED', `delegation link ${i} has expired`, i, signer, 'expired', { exp: link.exp })
    if (link.nbf - ctx.skewSec > t) chainError('ERR_NOT_YET_VALID', `delegation link ${i} is not yet valid`, i, signer, 'not yet valid', { nbf: link.nbf })
    if (link.iat !== null && link.iat - ctx.skewSec > t) chainError('ERR_NOT_YET_VALID', `delegation link ${i} is issued in the future`, i, signer, 'issued in the future', { iat: link.iat })
    if (inChain(links, i, i === 0 ? link.iss : links[0]!.iss, link.sub)) chainError('ERR_DELEGATION_BROKEN', `delegation link ${i} delegates to a DID already in the chain`, i, signer, 'cycle', { did: link.sub })
    jwts[i] = jwt
    hashes[i] = hash
    hits[i] = hit
    links[i] = link
  }
  const root = links[0]!
  const leaf = links[links.length - 1]!
  const leafIndex = links.length - 1

  if (!rootTrusted(ctx, resource, root.iss)) {
    chainError('ERR_UNTRUSTED_ISSUER', 'the root of the delegation chain is not trusted for the resource', 0, root.iss, 'untrusted root', { resource })
  }
  // grantCovers reads an absent audience or dataClass as undefined: no spread objects needed.
  const gap = grantCovers(leaf, { resource, action, audience, dataClass })
  if (gap !== null) {
    chainError('ERR_NOT_AUTHORIZED', `the delegation chain does not grant ${action} on ${resource}`, leafIndex, leaf.iss, gap === 'capability' ? 'not granted' : gap, { resource, action, caveat: gap === 'capability' ? undefined : gap })
  }
  if (invoker !== leaf.sub) chainError('ERR_KEY_MISMATCH', 'the invoker is not the subject of the last link', leafIndex, leaf.iss, 'invoker is not the leaf subject', { invoker, subject: leaf.sub })

  for (let i = 0; i < links.length; i++) {
    const signer = links[i]!.iss
    try {
      const hit = hits[i]
      if (hit && (hit.key === null || (await signerKeys(ctx, signer, hit.kid)).includes(hit.key))) continue
      const jwt = jwts[i] ?? decodeJwt(tokens[i]!, ctx.maxTokenBytes)
      // The root's signer (a trusted issuer or root, the same on every chain) is kept in the DID
      // cache; an agent's did:key below it is read from the DID and not kept (see keysForSync).
      const key = verifySignatureSync(ctx, jwt, signer, i === 0) ?? (await verifySignature(ctx, jwt, signer, i === 0))
      // A did:key's one key is the DID itself: nothing to look up again, so neither the key nor the
      // kid (a slice that kept the link's header text alive in the memo) is kept.
      const didKey = signer.startsWith('did:key:')
      ctx.memo.set(tokens[i]!, { link: links[i]!, hash: hashes[i] ?? null, kid: didKey ? undefined : (jwt.header.kid as string | undefined), key: didKey ? null : key, attenuates: i > 0 })
    } catch (error) {
      named(error, i, signer, 'signature')
    }
  }

  // Status lists are published by a trusted issuer, whoever signed the link. A link signed by an agent
  // names a URL the verifier must not fetch unless it already trusts it (SSRF): every URL is checked
  // before the first fetch. A link signed by a trusted issuer teaches its list's directory.
  for (const link of links) if (link.credentialStatus !== null && ctx.trustedIssuers.has(link.iss)) ctx.statusTrust.learn(link.credentialStatus.statusListCredential)
  for (let i = 0; i < links.length; i++) {
    const url = links[i]!.credentialStatus?.statusListCredential
    if (url !== undefined && !ctx.statusTrust.allows(url)) {
      chainError('ERR_STATUS_UNAVAILABLE', `delegation link ${i} names a status list this verifier does not trust`, i, links[i]!.iss, 'status list not trusted', { statusListCredential: url.slice(0, 256) })
    }
  }
  for (let i = 0; i < links.length; i++) {
    const link = links[i]!
    if (ctx.linkRevoked?.(link.iss, link.jti)) chainError('ERR_REVOKED', `delegation link ${i} has been revoked (revocation event)`, i, link.iss, 'revoked', { credentialId: link.jti })
    if (link.credentialStatus === null) continue
    try {
      let index: number
      try {
        index = parseStatusListIndex(link.credentialStatus.statusListIndex)
      } catch (cause) {
        if (cause instanceof StatusListError) chainError('ERR_MALFORMED', 'credentialStatus.statusListIndex is invalid', i, link.iss, 'status index', {}, cause)
        throw cause
      }
      // A cached, fresh list answers without a promise; otherwise it is fetched.
      const value = ctx.statusLists.statusSync(link.credentialStatus.statusListCredential, ctx.trustedIssuers, index) ?? (await ctx.statusLists.status(link.credentialStatus.statusListCredential, ctx.trustedIssuers, index))
      if (value !== 0) chainError('ERR_REVOKED', `delegation link ${i} has been revoked`, i, link.iss, 'revoked', { credentialId: link.jti })
    } catch (error) {
      if (error instanceof VerificationError && error.details.link === i) throw error
      named(error, i, link.iss, 'status')
    }
  }

  if (request.requireIdentity) await checkIdentities(ctx, links, request.identityCredentials)

  return {
    root: root.iss,
    leaf: { did: leaf.sub, capabilities: leaf.capabilities, caveats: leaf.caveats },
    links: links.length,
  }
}

// Every agent of the chain must hold a valid identity credential among those presented. Credentials
// are all verified (each with every check of verifyAgentCredential); a failure is kept to explain an
// agent that ends up without one.
async function checkIdentities(ctx: DelegationContext, links: readonly CapabilityLink[], credentials: readonly unknown[] | undefined): Promise<void> {
  if (credentials !== undefined && (!Array.isArray(credentials) || credentials.length > ctx.maxChainLength + 1)) {
    chainError('ERR_MALFORMED', `identityCredentials must be a list of at most ${ctx.maxChainLength + 1} credentials`, null, null, 'identity credentials')
  }
  const valid = new Set<string>()
  // Failures by the subject the credential claims (unverified: used only to explain a refusal).
  const failures = new Map<string, VerificationError>()
  for (const credential of credentials ?? []) {
    try {
      valid.add((await ctx.verifyIdentity(credential)).did)
    } catch (error) {
      if (!(error instanceof VerificationError)) throw error
      const subject = claimedSubject(credential)
      if (subject !== undefined && !failures.has(subject)) failures.set(subject, error)
    }
  }
  for (let i = 0; i < links.length; i++) {
    const link = links[i]!
    for (const [agent, role] of i === 0 ? [[link.sub, 'subject']] : [[link.iss, 'signer'], [link.sub, 'subject']]) {
      if (valid.has(agent!)) continue
      const failure = failures.get(agent!)
      if (failure) named(failure, i, link.iss, `identity of the ${role}`)
      chainError('ERR_NOT_AUTHORIZED', `no valid identity credential for the ${role} of delegation link ${i}`, i, link.iss, `identity of the ${role}`, { agent })
    }
  }
}

function claimedSubject(credential: unknown): string | undefined {
  try {
    const doc = typeof credential === 'string' && !credential.trimStart().startsWith('{') ? decodeJwt(credential).payload : typeof credential === 'string' ? (JSON.parse(credential) as unknown) : credential
    const record = doc as { sub?: unknown; credentialSubject?: { id?: unknown } } | null
    const subject = record?.sub ?? record?.credentialSubject?.id
    return typeof subject === 'string' ? subject : undefined
  } catch {
    return undefined
  }
}
