import { isAgentDid, parseAgentClaims, VerificationError, type AgentClaims } from '@agentid/core'
import { AGENTID_ACTION_TYPE, type RequestHeaders, type VerifiedPresentation, type VerifiedRequest, type Verifier } from '@agentid/verifier'
import type { AuthorizationSubject } from '@agentid/policy'
import type { Caller } from './types.js'

/**
 * The HTTP authentication scheme of agentid presentations: `Authorization: AgentID <vp-jwt>`, a fresh
 * presentation (audience = the guard's `resource`) per request.
 * @example
 * headers.set('authorization', `${PRESENTATION_SCHEME} ${await createPresentation({ privateJwk, credential, audience: resource })}`)
 */
export const PRESENTATION_SCHEME = 'AgentID'

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Every value of header `name` (lower case), repeated headers kept apart where the source keeps them. */
export function headerValues(headers: RequestHeaders, name: string): string[] {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    const value = (headers as { get(n: string): string | null }).get(name)
    return value === null ? [] : [value]
  }
  // Every key is compared (not only `name` itself): a header sent under two spellings counts twice.
  const out: string[] = []
  const record = headers as Record<string, string | readonly string[] | undefined>
  for (const key in record) {
    // (A key of another length cannot be `name` in any case: most keys are passed without lower-casing them.)
    if (key !== name && (key.length !== name.length || key.toLowerCase() !== name)) continue
    if (!Object.hasOwn(record, key)) continue
    const value = record[key]
    if (typeof value === 'string') out.push(value)
    else if (Array.isArray(value)) for (const v of value as unknown[]) if (typeof v === 'string') out.push(v)
  }
  return out
}

function refuse(message: string, details: Record<string, unknown> = {}): never {
  throw new VerificationError('ERR_MALFORMED', message, { details: { dpopError: 'invalid_token', ...details } })
}

/** The `agentid` claim of an access token (contract A), read defensively: the verifier has checked its signature. */
function agentidClaim(verified: VerifiedRequest): Record<string, unknown> {
  const claim = verified.claims.agentid
  return isRecord(claim) ? claim : {}
}

function tokenAgentClaims(verified: VerifiedRequest): AgentClaims {
  const fromVerifier = (verified as { agentClaims?: unknown }).agentClaims
  if (isRecord(fromVerifier)) return fromVerifier as unknown as AgentClaims
  const raw = agentidClaim(verified).claims
  if (raw === undefined || raw === null) refuse('access token carries no agentid claims')
  try {
    return parseAgentClaims(raw, { code: 'ERR_MALFORMED', strict: false })
  } catch (cause) {
    throw new VerificationError('ERR_MALFORMED', 'access token: agentid.claims is malformed', { cause, details: { dpopError: 'invalid_token' } })
  }
}

function tokenDelegation(verified: VerifiedRequest): { root: string; depth: number } | null {
  const fromVerifier = (verified as { delegation?: unknown }).delegation
  const d = fromVerifier !== undefined ? fromVerifier : agentidClaim(verified).delegation
  if (d === undefined || d === null) return null
  if (!isRecord(d) || typeof d.root !== 'string' || !Number.isSafeInteger(d.depth) || (d.depth as number) < 0) refuse('access token: agentid.delegation is malformed')
  return { root: d.root, depth: d.depth as number }
}

function tokenUserIssuer(verified: VerifiedRequest): string | null {
  const fromVerifier = (verified as { userIssuer?: unknown }).userIssuer
  const issuer = fromVerifier !== undefined ? fromVerifier : agentidClaim(verified).subjectIssuer
  return typeof issuer === 'string' && issuer !== '' ? issuer : null
}

/** What {@link callerFromToken} built a caller from, and the caller. */
interface TokenCaller {
  readonly agent: string
  readonly user: string | null
  readonly agentClaims: unknown
  readonly userIssuer: unknown
  readonly delegation: unknown
  readonly authorizationDetails: unknown
  readonly caller: Caller
}

/**
 * The caller built for a token, by the token's claims object. The verifier's token cache hands the same
 * deep-frozen claims (and agent claims, delegation, authorization details) to every request with that
 * token, so the caller it yields is the same: built once per token instead of on every request (its
 * literals, kept by the node handler's `callers` WeakMap through a young collection, were promoted on
 * every call). Used only when every input is frozen and the same as when the caller was built; an entry
 * goes with the token's claims.
 */
const tokenCallers = new WeakMap<object, TokenCaller>()

const frozenOrNull = (value: unknown): boolean => value === null || value === undefined || Object.isFrozen(value)

/** The caller of a request that carried a verified DPoP-bound access token. */
export function callerFromToken(verified: VerifiedRequest): Caller {
  const key = verified.claims as unknown
  const memo = isRecord(key) && Object.isFrozen(key) && isRecord(verified.agentClaims) && Object.isFrozen(verified.agentClaims) && frozenOrNull(verified.delegation) && Object.isFrozen(verified.authorizationDetails)
  if (memo) {
    const known = tokenCallers.get(key)
    if (
      known !== undefined && known.agent === verified.agent && known.user === verified.user && known.agentClaims === verified.agentClaims &&
      known.userIssuer === verified.userIssuer && known.delegation === verified.delegation && known.authorizationDetails === verified.authorizationDetails
    ) return known.caller
  }
  const caller = buildTokenCaller(verified)
  if (memo) {
    const { agent, user, agentClaims, userIssuer, delegation, authorizationDetails } = verified
    tokenCallers.set(key, { agent, user, agentClaims, userIssuer, delegation, authorizationDetails, caller })
  }
  return caller
}

function buildTokenCaller(verified: VerifiedRequest): Caller {
  const claims = tokenAgentClaims(verified)
  const userIssuer = tokenUserIssuer(verified)
  const delegation = tokenDelegation(verified)
  // Frozen through: one caller serves every request with the token.
  const subject: AuthorizationSubject = {
    agent: Object.freeze({ did: verified.agent, claims }),
    user: verified.user === null ? null : Object.freeze({ id: verified.user, ...(userIssuer === null ? {} : { issuer: userIssuer }) }),
    delegation: delegation === null ? null : Object.freeze(delegation),
    ...(verified.authorizationDetails.length > 0 ? { authorizationDetails: verified.authorizationDetails } : {}),
  }
  return Object.freeze({ agent: verified.agent, user: verified.user, via: 'token' as const, subject: Object.freeze(subject) })
}

/** The caller of a request that carried a verified presentation (identity credential, optional delegation chain). */
export function callerFromPresentation(verified: VerifiedPresentation): Caller {
  const { agent, delegation } = verified
  const subject: AuthorizationSubject = {
    agent: { did: agent.did, claims: agent.claims },
    user: null,
    // depth = number of links in the chain (root link included), as the issuer states it in tokens.
    delegation: delegation === null ? null : { root: delegation.root, depth: delegation.links },
    ...(delegation === null
      ? {}
      : {
          authorizationDetails: verified.capabilities.map((c) => ({ type: AGENTID_ACTION_TYPE, actions: c.actions, locations: [c.resource] })),
        }),
  }
  return Object.freeze({ agent: agent.did, user: null, via: 'presentation' as const, subject: Object.freeze(subject) })
}

/**
 * Authenticates one request: `Authorization: AgentID <vp-jwt>` is verified as a presentation for
 * `audience`; anything else goes to `verifier.verifyRequest` (which requires `DPoP <token>` and a proof).
 */
export async function authenticateRequest(
  verifier: Verifier,
  audience: string,
  request: { method: string; url: string; headers: RequestHeaders },
): Promise<Caller> {
  const authorization = headerValues(request.headers, 'authorization')
  if (authorization.length === 0) {
    throw new VerificationError('ERR_MALFORMED', 'no credentials', { details: { dpopError: 'invalid_token', credentials: 'none' } })
  }
  const presentation = authorization.length === 1 ? /^AgentID +([A-Za-z0-9_.-]+)$/i.exec(authorization[0]!.trim()) : null
  if (presentation) {
    const verified = await verifier.verifyPresentation(presentation[1]!, { audience })
    if (!isAgentDid(verified.agent.did)) refuse('presentation: the agent is not a did:key')
    return callerFromPresentation(verified)
  }
  const verified = await verifier.verifyRequest(request, { audience })
  return callerFromToken(verified)
}
