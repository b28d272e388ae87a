// A delegation chain presented at the token endpoint (`agentid_delegation`, both grants): verified
// with @agentid/verifier's verifyDelegation (signatures, linkage, attenuation, root trusted, the
// invoker is the authenticated agent, every link's status bit), checked against the issuer's own
// store (every link registered, unrevoked), and every requested authorization detail checked
// against the leaf link's capabilities and caveats.
import { DATA_ACCESS_CLASSES, dataClassCovers, decodeJwt, parseStrictJson, VerificationError } from '@agentid/core'
import { parseCapabilityLink, resourceCovers, type Capability, type CapabilityLink } from '@agentid/delegation'
import type { DelegationRequest, VerifiedDelegation } from '@agentid/verifier'
import type { StorageTx } from '../storage/types.js'
import type { AgentIdActionDetail } from './authorization-details.js'
import { oauthFail } from './errors.js'

/** Form parameter holding the chain: a JSON array of compact JWT links, root first. */
export const DELEGATION_PARAM = 'agentid_delegation'
const MAX_LINKS = 10

/** A chain that passed every check: what the token records, and what the issuance must re-check. */
export interface CheckedDelegation {
  root: string
  /** Number of links, root included. */
  depth: number
  /** Ids (jti) of the links: each must still be unrevoked when the token is committed. */
  linkIds: string[]
  /** Unix seconds: the earliest end of the chain (a link's exp, or the leaf's expiresAt caveat). */
  notAfter: number
  /** The requested details, a detail without datatypes given those up to the leaf's maxDataClass. */
  details: AgentIdActionDetail[]
}

export type VerifyDelegation = (chain: readonly string[], request: DelegationRequest) => Promise<VerifiedDelegation>

const grantFail = (message: string): never => oauthFail('invalid_grant', `${DELEGATION_PARAM}: ${message}`)
const wider = (message: string): never => oauthFail('invalid_authorization_details', message)

/** Parses the form parameter: a JSON array of 1 to 10 strings. */
export function parseDelegationParam(raw: string): string[] {
  let parsed: unknown
  try {
    parsed = parseStrictJson(raw, { what: DELEGATION_PARAM, maxDepth: 2 })
  } catch {
    return oauthFail('invalid_request', `${DELEGATION_PARAM} is not valid JSON`)
  }
  if (!Array.isArray(parsed) || parsed.length === 0 || parsed.length > MAX_LINKS || !parsed.every((l) => typeof l === 'string' && l.length > 0)) {
    return oauthFail('invalid_request', `${DELEGATION_PARAM} must be a JSON array of 1 to ${MAX_LINKS} compact JWTs, root first`)
  }
  return parsed as string[]
}

function covered(capabilities: readonly Capability[], location: string, action: string): boolean {
  return capabilities.some((c) => resourceCovers(c.resource, location) && (c.actions.includes('*') || (action !== '*' && c.actions.includes(action))))
}

/**
 * Checks `chain` for the agent `invoker` asking for `details` at `resource`. The chain is verified
 * once, by verifyDelegation for the first exact (location, action) requested; then every requested
 * location and action must be covered by a capability of the leaf, every datatype be at most its
 * `maxDataClass` (a detail without datatypes gets those up to it), and now be inside its
 * notBefore/expiresAt caveats. Refusals: a chain that does not
 * verify, is not the invoker's or holds a revoked or unregistered link is `invalid_grant`; a detail
 * the leaf does not cover is `invalid_authorization_details`.
 */
export async function checkDelegation(
  chain: readonly string[],
  o: { invoker: string; resource: string; details: readonly AgentIdActionDetail[]; now: number; store: Pick<StorageTx, 'delegations'>; verifyDelegation: VerifyDelegation },
): Promise<CheckedDelegation> {
  if (o.details.length === 0) oauthFail('invalid_request', `${DELEGATION_PARAM} is checked against authorization_details: request some`)
  let witness: { resource: string; action: string } | undefined
  for (const d of o.details) {
    const location = d.locations.find((l) => !l.includes('*'))
    const action = d.actions.find((a) => !a.includes('*'))
    if (location !== undefined && action !== undefined) {
      witness = { resource: location, action }
      break
    }
  }
  if (!witness) wider(`with ${DELEGATION_PARAM}, at least one requested location and action must be exact (no *)`)

  let verified: VerifiedDelegation
  try {
    verified = await o.verifyDelegation(chain, { invoker: o.invoker, resource: witness!.resource, action: witness!.action, audience: o.resource })
  } catch (error) {
    if (!(error instanceof VerificationError)) throw error
    if (error.code === 'ERR_NOT_AUTHORIZED') wider(`the delegation chain does not cover the requested details (${error.message})`)
    if (error.code === 'ERR_KEY_MISMATCH' && error.details.reason === 'invoker is not the leaf subject') grantFail('the chain was not delegated to this agent')
    return grantFail(`the delegation chain is not valid (${error.code}: ${error.message})`)
  }

  // Verified: the links decode, and each must be a registered, unrevoked delegation of this issuer.
  const links: CapabilityLink[] = chain.map((jwt) => parseCapabilityLink(decodeJwt(jwt).payload, 'ERR_MALFORMED'))
  const linkIds: string[] = []
  for (const [i, link] of links.entries()) {
    const row = link.jti === null ? undefined : await o.store.delegations.get(link.jti)
    if (!row || row.delegator !== link.iss || row.delegatee !== link.sub) grantFail(`link ${i} is not a delegation registered at this issuer`)
    if (row!.revoked_at !== null) grantFail(`link ${i} has been revoked`)
    linkIds.push(row!.id)
  }
  const leaf = verified!.leaf
  for (const detail of o.details) {
    for (const location of detail.locations) {
      for (const action of detail.actions) {
        if (!covered(leaf.capabilities, location, action)) wider(`the delegation chain does not grant ${JSON.stringify(action.slice(0, 64))} on ${JSON.stringify(location.slice(0, 128))}`)
      }
    }
    const max = leaf.caveats.maxDataClass
    for (const datatype of detail.datatypes ?? []) {
      if (max !== undefined && !dataClassCovers(max, datatype)) wider(`datatype ${datatype} is above the delegation's maxDataClass (${max})`)
    }
  }
  const { notBefore, expiresAt } = leaf.caveats
  if ((notBefore !== undefined && o.now < notBefore) || (expiresAt !== undefined && o.now >= expiresAt)) grantFail('the delegation is outside its notBefore/expiresAt window')
  const notAfter = Math.min(...links.map((l) => l.exp), expiresAt ?? Infinity)
  const max = leaf.caveats.maxDataClass
  const upToMax = max === undefined ? undefined : DATA_ACCESS_CLASSES.slice(0, DATA_ACCESS_CLASSES.indexOf(max) + 1)
  const details = o.details.map((d) => (d.datatypes === undefined && upToMax !== undefined ? { ...d, datatypes: [...upToMax] } : { ...d }))
  return { root: verified!.root, depth: verified!.links, linkIds, notAfter, details }
}
