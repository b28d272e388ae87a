import { AgentIdError, isDidKeySyntax, isPrintableText, parseAgentClaims, type AgentClaims } from '@agentid/core'

/** Throws ERR_INVALID_INPUT naming the field. */
export function invalid(field: string, message: string): never {
  throw new AgentIdError('ERR_INVALID_INPUT', `${field}: ${message}`, { details: { field } })
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Refuses members of `body` other than `allowed`, naming the first unknown one. */
export function only(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(body)) if (!allowed.includes(key)) invalid(key, 'is not a known field')
}

/** How an identity credential is secured: a JWT VC (VC 1.1, the default) or a VC 2.0 credential with a Data Integrity proof. */
export type CredentialFormat = 'jwt' | 'di'

/** A validated spawn request. */
export type SpawnRequest =
  | { keyCustody: 'agent'; did: string | undefined; proof: string; claims: AgentClaims; lifetimeSec: number | undefined; format: CredentialFormat; evidence?: unknown }
  | { keyCustody: 'issuer'; claims: AgentClaims; lifetimeSec: number | undefined; format: CredentialFormat; evidence?: unknown }

const CLAIM_FIELDS = ['purpose', 'controller', 'model', 'toolProfile', 'policyTier', 'dataAccessClass', 'attestation'] as const

/**
 * Validates the body of `POST /v1/agents`: the claims, flat, plus `keyCustody` (`agent`, the
 * default: `proof` of possession required, `did` optional but must match it; or `issuer`: the issuer
 * generates the key and returns it once), an optional `lifetimeSec` and an optional `format`
 * (`jwt`, the default, or `di`). Unknown fields are refused.
 */
export function parseSpawnRequest(body: unknown, maxLifetimeSec: number): SpawnRequest {
  if (!isRecord(body)) invalid('body', 'must be a JSON object')
  only(body, ['keyCustody', 'did', 'proof', 'lifetimeSec', 'format', 'attestationEvidence', ...CLAIM_FIELDS])
  // Checked by the attestation module (attestation/index.ts) against the proof's challenge.
  const evidence = body.attestationEvidence === undefined ? {} : { evidence: body.attestationEvidence }
  const format = parseFormat(body.format)
  const custody = body.keyCustody === undefined ? 'agent' : body.keyCustody
  if (custody !== 'agent' && custody !== 'issuer') invalid('keyCustody', 'must be "agent" or "issuer"')
  const claimInput: Record<string, unknown> = {}
  for (const f of CLAIM_FIELDS) if (body[f] !== undefined) claimInput[f] = body[f]
  const claims = parseAgentClaims(claimInput)
  const lifetimeSec = parseLifetime(body.lifetimeSec, maxLifetimeSec)
  if (custody === 'issuer') {
    if (body.did !== undefined || body.proof !== undefined) invalid(body.did !== undefined ? 'did' : 'proof', 'is not allowed with keyCustody "issuer"')
    return { keyCustody: 'issuer', claims, lifetimeSec, format, ...evidence }
  }
  if (typeof body.proof !== 'string' || body.proof.length === 0 || body.proof.length > 8192) invalid('proof', 'a proof of possession (compact JWT) is required')
  if (body.did !== undefined && !isDidKeySyntax(body.did)) invalid('did', 'must be an Ed25519 did:key')
  return { keyCustody: 'agent', did: body.did as string | undefined, proof: body.proof, claims, lifetimeSec, format, ...evidence }
}

/** Validates the body of `POST /v1/agents/:did/renew`. */
export function parseRenewRequest(body: unknown, maxLifetimeSec: number): { proof: string; lifetimeSec: number | undefined; format: CredentialFormat; evidence?: unknown } {
  if (!isRecord(body)) invalid('body', 'must be a JSON object')
  only(body, ['proof', 'lifetimeSec', 'format', 'attestationEvidence'])
  const format = parseFormat(body.format)
  if (typeof body.proof !== 'string' || body.proof.length === 0 || body.proof.length > 8192) invalid('proof', 'a proof of possession (compact JWT) is required')
  return { proof: body.proof, lifetimeSec: parseLifetime(body.lifetimeSec, maxLifetimeSec), format, ...(body.attestationEvidence === undefined ? {} : { evidence: body.attestationEvidence }) }
}

/** Validates a revocation body: `{ reason }`, a short human-readable reason. */
export function parseRevokeRequest(body: unknown): { reason: string } {
  if (body === undefined || body === null) invalid('reason', 'is required')
  if (!isRecord(body)) invalid('body', 'must be a JSON object')
  only(body, ['reason'])
  return { reason: parseReason(body.reason) }
}

export function parseReason(reason: unknown): string {
  if (typeof reason !== 'string' || reason.trim().length === 0 || reason.length > 512 || !isPrintableText(reason)) {
    invalid('reason', 'must be a non-empty string of at most 512 characters')
  }
  return reason.trim()
}

function parseFormat(value: unknown): CredentialFormat {
  if (value === undefined) return 'jwt'
  if (value !== 'jwt' && value !== 'di') invalid('format', 'must be "jwt" or "di"')
  return value
}

function parseLifetime(value: unknown, max: number): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 60 || value > max) invalid('lifetimeSec', `must be an integer from 60 to ${max}`)
  return value
}

/** Validates an orchestrator name. */
export function parseOrchestratorName(name: unknown): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) invalid('name', 'must be 1 to 64 letters, digits, dots, dashes or underscores')
  return name
}

/** Validates a did:key path parameter. */
export function parseAgentDid(value: unknown): string {
  if (!isDidKeySyntax(value)) invalid('did', 'must be an Ed25519 did:key')
  return value
}

/** Validates a credential id path parameter (`urn:uuid:…`). */
export function parseCredentialId(value: unknown): string {
  if (typeof value !== 'string' || !/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(value)) invalid('id', 'must be a credential id (urn:uuid:…)')
  return value
}

export interface ListQuery {
  status?: 'active' | 'revoked'
  controller?: string
  purpose?: string
  orchestrator?: string
  limit: number
  cursor?: { createdAt: number; did: string }
}

/** Validates the query of `GET /v1/agents`. */
export function parseListQuery(query: unknown): ListQuery {
  const q = isRecord(query) ? query : {}
  only(q, ['status', 'controller', 'purpose', 'orchestrator', 'limit', 'cursor'])
  const out: ListQuery = { limit: 50 }
  for (const [k, v] of Object.entries(q)) if (typeof v !== 'string') invalid(k, 'must be given once, as a string')
  if (q.status !== undefined) {
    if (q.status !== 'active' && q.status !== 'revoked') invalid('status', 'must be active or revoked')
    out.status = q.status
  }
  for (const k of ['controller', 'purpose', 'orchestrator'] as const) {
    const v = q[k]
    if (v !== undefined) {
      if ((v as string).length === 0 || (v as string).length > 1024) invalid(k, 'must be 1 to 1024 characters')
      out[k] = v as string
    }
  }
  if (q.limit !== undefined) {
    if (!/^[1-9][0-9]{0,2}$/.test(q.limit as string) || Number(q.limit) > 500) invalid('limit', 'must be an integer from 1 to 500')
    out.limit = Number(q.limit)
  }
  if (q.cursor !== undefined) out.cursor = decodeCursor(q.cursor as string)
  return out
}

export function encodeCursor(createdAt: number, did: string): string {
  return Buffer.from(JSON.stringify([createdAt, did])).toString('base64url')
}

function decodeCursor(cursor: string): { createdAt: number; did: string } {
  try {
    if (cursor.length > 512) throw new Error('too long')
    const [createdAt, did] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[]
    if (typeof createdAt !== 'number' || !Number.isSafeInteger(createdAt) || typeof did !== 'string') throw new Error('shape')
    return { createdAt, did }
  } catch {
    return invalid('cursor', 'is not a cursor this issuer returned')
  }
}
