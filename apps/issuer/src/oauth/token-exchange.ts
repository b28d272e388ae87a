// RFC 8693 token exchange at the token endpoint: a user's token from a trusted identity provider
// (subject_token) and the agent's own proof (actor_token) become a DPoP-bound agent token acting for
// the user. This module checks the exchange's own parameters; the route does the client, DPoP, agent
// and issuance steps it shares with client_credentials.
import type { JWTPayload } from 'jose'
import { resourceCovers } from '@agentid/delegation'
import { AGENTID_ACTION, type AgentIdActionDetail } from './authorization-details.js'
import { verifyClientAssertion } from './client-assertion.js'
import { OAuthError, oauthFail } from './errors.js'
import type { TrustedIdps } from './trusted-idps.js'

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
export const TOKEN_TYPE_ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token'
export const TOKEN_TYPE_JWT = 'urn:ietf:params:oauth:token-type:jwt'
export const TOKEN_TYPE_ID_TOKEN = 'urn:ietf:params:oauth:token-type:id_token'
/** subject_token_type values accepted: the user's token is a JWT in each case. */
export const SUBJECT_TOKEN_TYPES = [TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT, TOKEN_TYPE_ID_TOKEN] as const
/** actor_token_type: the agent's own JWT. */
export const ACTOR_TOKEN_TYPES = [TOKEN_TYPE_JWT] as const

/** What a verified exchange contributes to the token. */
export interface VerifiedExchange {
  /** The user: `sub` at the IdP, and the IdP's issuer URL. */
  user: string
  subjectIssuer: string
  /** `exp` of the user's token: the agent's token does not outlive it. */
  subjectExp: number
  /** `jti` of the user's token, if it has one (for the audit log; never the token). */
  subjectTokenId: string | null
  actor: { jti: string; exp: number }
  /** The requested details, narrowed to the user's grant. */
  details: AgentIdActionDetail[]
}

const bad = (message: string): never => oauthFail('invalid_request', message)

/** Whether a JWT's `typ` (case-insensitive, `application/` optional: RFC 7515 §4.1.9) fits the declared token type. */
export function typMatches(subjectTokenType: string, typ: string | undefined): boolean {
  const t = typ?.toLowerCase().replace(/^application\//, '')
  if (subjectTokenType === TOKEN_TYPE_ACCESS_TOKEN) return t === 'at+jwt'
  return t === undefined || t === 'jwt'
}

/**
 * Verifies the agent's actor token with the client-assertion rules: a JWT signed by the agent's
 * did:key (EdDSA), `iss` = `sub` = the authenticated client DID, `aud` the token endpoint or the
 * issuer, `exp` at most 5 minutes ahead, a `jti` (spent by the caller in the same write as the
 * other jtis), and a `cnf.jkt`, when present, equal to `o.jkt` (the request's DPoP key). Refusals are `invalid_request` (RFC 8693 §2.2.2).
 */
export function verifyActorToken(token: string, o: { agent: string; audiences: readonly string[]; now: number; jkt: string }): { jti: string; exp: number } {
  try {
    const verified = verifyClientAssertion(token, { clientId: o.agent, audiences: o.audiences, now: o.now, jkt: o.jkt })
    return { jti: verified.jti, exp: verified.exp }
  } catch (error) {
    if (!(error instanceof OAuthError)) throw error
    const why = error.description.replace(/the client assertion/g, 'it').replace(/^client_id does not match it$/, 'iss and sub must both be the authenticated agent\'s DID')
    return bad(`actor_token: ${why}`)
  }
}

// The agentid_action details of the user's token; undefined when it carries none (no such claim).
function userDetails(payload: JWTPayload): AgentIdActionDetail[] | undefined {
  const raw = payload.authorization_details
  if (raw === undefined) return undefined
  if (!Array.isArray(raw)) bad('subject_token: authorization_details must be an array')
  const out: AgentIdActionDetail[] = []
  for (const d of raw as unknown[]) {
    if (d === null || typeof d !== 'object' || (d as { type?: unknown }).type !== AGENTID_ACTION) continue // other types grant nothing here
    const e = d as Record<string, unknown>
    const list = (v: unknown): string[] | undefined => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined)
    const actions = list(e.actions)
    const locations = list(e.locations)
    if (!actions || !locations) bad('subject_token: an agentid_action detail needs actions and locations')
    const detail: AgentIdActionDetail = { type: AGENTID_ACTION, actions: actions!, locations: locations! }
    const datatypes = list(e.datatypes)
    const identifiers = list(e.identifiers)
    if (e.datatypes !== undefined && !datatypes) bad('subject_token: datatypes must be strings')
    if (e.identifiers !== undefined && !identifiers) bad('subject_token: identifiers must be strings')
    if (datatypes) detail.datatypes = datatypes as AgentIdActionDetail['datatypes']
    if (identifiers) detail.identifiers = identifiers
    out.push(detail)
  }
  return out
}

const subset = (wanted: readonly string[] | undefined, allowed: readonly string[]) => wanted !== undefined && wanted.every((v) => allowed.includes(v))

// One detail of the user's covers a requested one: every location (same, or under a `prefix/*`),
// every action (or the user's `*`), and datatypes/identifiers within the user's when the user's are set.
function userCovers(u: AgentIdActionDetail, r: AgentIdActionDetail): boolean {
  if (!r.locations.every((l) => u.locations.some((ul) => resourceCovers(ul, l)))) return false
  if (!u.actions.includes('*') && !r.actions.every((a) => a !== '*' && u.actions.includes(a))) return false
  if (u.datatypes !== undefined && r.datatypes !== undefined && !subset(r.datatypes, u.datatypes)) return false
  if (u.identifiers !== undefined && r.identifiers !== undefined && !subset(r.identifiers, u.identifiers)) return false
  return true
}

/** Prefix of the scope values that name actions an agent may take for the user (`agentid:read`). */
export const ACTION_SCOPE_PREFIX = 'agentid:'

/**
 * Narrows the requested details to what the user granted (the rule, also in the README):
 * - the user's token carries `authorization_details`: each requested detail must be covered by one
 *   of its `agentid_action` entries (locations, actions, and datatypes/identifiers when that entry
 *   sets them; a request that omits them gets the entry's); entries of other types grant nothing;
 * - else its `scope` holds action scopes (`agentid:<action>`): each requested action must be one of
 *   them; other scope values (`openid`, `email`, …) neither grant nor limit;
 * - else only the agent's own limits apply (tool profile, data class, a presented delegation chain):
 *   the token's `aud` (this issuer) is the user's consent to agents acting through it.
 * Wider is `invalid_authorization_details`.
 */
export function narrowToUser(requested: readonly AgentIdActionDetail[], payload: JWTPayload): AgentIdActionDetail[] {
  const granted = userDetails(payload)
  if (granted !== undefined) {
    return requested.map((r) => {
      const u = granted.find((g) => userCovers(g, r))
      if (!u) return oauthFail('invalid_authorization_details', 'a requested detail is wider than the user\'s token allows')
      return {
        ...r,
        ...(r.datatypes === undefined && u.datatypes !== undefined ? { datatypes: [...u.datatypes] } : {}),
        ...(r.identifiers === undefined && u.identifiers !== undefined ? { identifiers: [...u.identifiers] } : {}),
      }
    })
  }
  if (payload.scope !== undefined) {
    if (typeof payload.scope !== 'string') bad('subject_token: scope must be a string')
    const actions = new Set((payload.scope as string).split(' ').filter((s) => s.startsWith(ACTION_SCOPE_PREFIX)).map((s) => s.slice(ACTION_SCOPE_PREFIX.length)))
    if (actions.size > 0) {
      for (const r of requested) {
        const action = r.actions.find((a) => !actions.has(a))
        if (action !== undefined) oauthFail('invalid_authorization_details', `action ${JSON.stringify(action.slice(0, 64))} is not among the user's token's ${ACTION_SCOPE_PREFIX}<action> scopes`)
      }
    }
  }
  return requested.map((r) => ({ ...r }))
}

/**
 * Checks the exchange's parameters for the authenticated agent: the token types, the user's token
 * against the trusted IdPs (and its `may_act`), the actor token, and narrows the requested details
 * to the user's grant. Every refusal of a token is `invalid_request` (RFC 8693 §2.2.2).
 */
export async function verifyExchange(
  form: ReadonlyMap<string, string>,
  o: { agent: string; audiences: readonly string[]; resource: string; details: readonly AgentIdActionDetail[]; now: number; idps: TrustedIdps; jkt: string },
): Promise<VerifiedExchange> {
  const subjectToken = form.get('subject_token')
  if (!subjectToken) bad('subject_token is required')
  const subjectType = form.get('subject_token_type')
  if (subjectType === undefined) bad('subject_token_type is required')
  if (!(SUBJECT_TOKEN_TYPES as readonly string[]).includes(subjectType!)) bad(`subject_token_type must be one of ${SUBJECT_TOKEN_TYPES.join(', ')}`)
  const actorToken = form.get('actor_token')
  if (!actorToken) bad('actor_token (a JWT signed by the agent\'s key) is required')
  if (form.get('actor_token_type') !== TOKEN_TYPE_JWT) bad(`actor_token_type must be ${TOKEN_TYPE_JWT}`)
  const requested = form.get('requested_token_type')
  if (requested !== undefined && requested !== TOKEN_TYPE_ACCESS_TOKEN) bad(`requested_token_type must be ${TOKEN_TYPE_ACCESS_TOKEN}`)
  const audience = form.get('audience')
  if (audience !== undefined && audience !== o.resource) oauthFail('invalid_target', 'audience, when given, must equal resource')

  // The agent's own proof first: it costs no network.
  const actor = verifyActorToken(actorToken!, { agent: o.agent, audiences: o.audiences, now: o.now, jkt: o.jkt })
  const subject = await o.idps.verify(subjectToken!, o.now)
  // The declared type must be the token's own (RFC 8693 §2.1, RFC 9068 §2.1): a JWT access token says
  // typ at+jwt; an ID token or a plain JWT says JWT or nothing. An ID token passed off as an access
  // token, or the reverse, is refused rather than read as what it is not.
  if (!typMatches(subjectType!, subject.typ)) bad(`subject_token: its typ (${subject.typ === undefined ? 'absent' : JSON.stringify(subject.typ.slice(0, 64))}) does not match subject_token_type ${subjectType}`)
  // A token that already names an actor is someone's delegated token, not the user's own: exchanging it
  // would drop the earlier actor from the chain (RFC 8693 §4.1 nests them). Refused rather than guessed.
  if (subject.payload.act !== undefined) bad('subject_token: it already carries an act claim; exchange the user\'s own token')
  // A token bound to a key (RFC 7800 cnf: DPoP jkt, mTLS x5t#S256, ...) is only its holder's to use, and this
  // request proves possession of the agent's key, not of that one: exchanging it would strip the binding.
  if (subject.payload.cnf !== undefined) bad('subject_token: it is sender-constrained (cnf); exchange a token that is not bound to a key')
  const mayAct = subject.payload.may_act
  if (mayAct !== undefined) {
    if (mayAct === null || typeof mayAct !== 'object' || Array.isArray(mayAct) || typeof (mayAct as { sub?: unknown }).sub !== 'string') bad('subject_token: may_act must be an object with a sub')
    if ((mayAct as { sub: string }).sub !== o.agent) bad('subject_token: may_act names another actor')
  }
  return {
    user: subject.sub,
    subjectIssuer: subject.issuer,
    subjectExp: subject.exp,
    subjectTokenId: typeof subject.payload.jti === 'string' ? subject.payload.jti.slice(0, 256) : null,
    actor,
    details: narrowToUser(o.details, subject.payload),
  }
}
