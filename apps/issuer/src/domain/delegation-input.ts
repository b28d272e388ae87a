// Validation of the delegation routes' input (POST /v1/agents/:did/grants, /v1/delegations/…).
import { AgentIdError, CAPABILITY_LIMITS, isDidKeySyntax } from '@agentid/core'
import { invalid, isRecord, only } from './input.js'
import { parseCapabilities, parseCaveats, type Capability, type Caveats } from '@agentid/delegation'

/** Validates a delegation id (`urn:uuid:…`, the link's jti). */
export function parseDelegationId(value: unknown, field = 'id'): string {
  if (typeof value !== 'string' || !/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(value)) invalid(field, 'must be a delegation id (urn:uuid:…)')
  return value
}

/** A validated root grant. */
export interface GrantRequest { capabilities: Capability[]; caveats: Caveats; lifetimeSec: number | undefined }

/**
 * Validates the body of `POST /v1/agents/:did/grants`: `{ capabilities, caveats?, lifetimeSec? }`.
 * The link's time window comes from `lifetimeSec` (60 to `maxLifetimeSec`), never from caveats.
 */
export function parseGrantRequest(body: unknown, maxLifetimeSec: number): GrantRequest {
  if (!isRecord(body)) invalid('body', 'must be a JSON object')
  only(body, ['capabilities', 'caveats', 'lifetimeSec'])
  const capabilities = [...parseCapabilities(body.capabilities, 'ERR_INVALID_INPUT')]
  const caveats = parseCaveats(body.caveats ?? {}, 'ERR_INVALID_INPUT')
  if (caveats.notBefore !== undefined || caveats.expiresAt !== undefined) invalid('caveats', 'notBefore and expiresAt are set by lifetimeSec')
  // The signed link must stay within the verifier's token limit (CAPABILITY_LIMITS of @agentid/core).
  if (Buffer.byteLength(JSON.stringify({ capabilities, caveats }), 'utf8') > CAPABILITY_LIMITS.bytes) invalid('capabilities', `capabilities and caveats must serialize to at most ${CAPABILITY_LIMITS.bytes} bytes`)
  const lifetime = body.lifetimeSec
  if (lifetime !== undefined && (typeof lifetime !== 'number' || !Number.isInteger(lifetime) || lifetime < 60 || lifetime > maxLifetimeSec)) {
    invalid('lifetimeSec', `must be an integer from 60 to ${maxLifetimeSec}`)
  }
  return { capabilities, caveats, lifetimeSec: lifetime as number | undefined }
}

/** Validates the body of `POST /v1/delegations/status`: `{ proof, parentId, delegatee }`. */
export function parseRegisterDelegationRequest(body: unknown): { proof: string; parentId: string; delegatee: string } {
  if (!isRecord(body)) invalid('body', 'must be a JSON object')
  only(body, ['proof', 'parentId', 'delegatee'])
  if (typeof body.proof !== 'string' || body.proof.length === 0 || body.proof.length > 8192) invalid('proof', 'a proof of possession (compact JWT) is required')
  const parentId = parseDelegationId(body.parentId, 'parentId')
  if (!isDidKeySyntax(body.delegatee)) invalid('delegatee', 'must be an Ed25519 did:key')
  return { proof: body.proof, parentId, delegatee: body.delegatee }
}

/** Splits `grantToolProfile` (a boolean, default false) off a spawn body; the rest is the spawn request proper. */
export function takeGrantToolProfile(body: unknown): { grant: boolean; rest: unknown } {
  if (!isRecord(body) || !('grantToolProfile' in body)) return { grant: false, rest: body }
  const { grantToolProfile, ...rest } = body
  if (typeof grantToolProfile !== 'boolean') invalid('grantToolProfile', 'must be a boolean')
  return { grant: grantToolProfile, rest }
}

/** The root grant of `grantToolProfile`: each tool profile identifier with every action. */
export function toolProfileCapabilities(toolProfile: string | readonly string[]): Capability[] {
  const ids = typeof toolProfile === 'string' ? [toolProfile] : [...new Set(toolProfile)]
  try {
    return [...parseCapabilities(ids.map((resource) => ({ resource, actions: ['*'] })), 'ERR_INVALID_INPUT')]
  } catch (cause) {
    throw new AgentIdError('ERR_INVALID_INPUT', 'toolProfile: each identifier must be a capability resource to grant it (grantToolProfile)', { cause, details: { field: 'toolProfile' } })
  }
}
