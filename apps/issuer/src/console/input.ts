// Validation of what the console's routes receive (query strings and JSON bodies): unknown members
// refused, every value bounded; failures are ERR_INVALID_INPUT naming the field.
import { isPrintableText } from '@agentid/core'
import { invalid, isRecord, only, parseAgentDid, parseCredentialId } from '../domain/input.js'
import { parseDelegationId } from '../domain/delegation-input.js'
import type { RevocationTarget } from '../domain/revocation.js'
import type { ConsoleAgentFilter } from './queries.js'

const DATA_CLASSES = ['public', 'internal', 'confidential', 'restricted'] as const
const TEXT_FILTERS = ['q', 'controller', 'orchestrator', 'purpose', 'model', 'modelVersion', 'policyTier'] as const

export interface ConsoleListQuery {
  filter: Omit<ConsoleAgentFilter, 'orchestratorId'>
  /** Orchestrator id or name (resolved by the route). */
  orchestrator?: string
  limit: number
  cursor?: { createdAt: number; did: string }
}

function text(field: string, value: unknown, max = 512): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max || !isPrintableText(value)) invalid(field, `must be 1 to ${max} printable characters, given once`)
  return value
}

// A date (YYYY-MM-DD, UTC midnight) or a full ISO 8601 time: unix seconds.
function time(field: string, value: unknown): number {
  const t = text(field, value, 40)
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/.test(t)) invalid(field, 'must be a date (YYYY-MM-DD) or an ISO 8601 time')
  const ms = Date.parse(t.length === 10 ? `${t}T00:00:00Z` : t)
  if (!Number.isFinite(ms)) invalid(field, 'is not a valid date')
  return Math.floor(ms / 1000)
}

/** Validates the query of `GET /console/api/agents`. */
export function parseConsoleListQuery(query: unknown): ConsoleListQuery {
  const q = isRecord(query) ? query : {}
  only(q, ['status', 'dataAccessClass', 'createdFrom', 'createdTo', 'limit', 'cursor', ...TEXT_FILTERS])
  const out: ConsoleListQuery = { filter: {}, limit: 50 }
  for (const k of TEXT_FILTERS) {
    if (q[k] === undefined) continue
    const v = text(k, q[k])
    if (k === 'orchestrator') out.orchestrator = v
    else out.filter[k] = v
  }
  if (q.status !== undefined) {
    if (q.status !== 'active' && q.status !== 'revoked') invalid('status', 'must be active or revoked')
    out.filter.status = q.status
  }
  if (q.dataAccessClass !== undefined) {
    if (!DATA_CLASSES.includes(q.dataAccessClass as never)) invalid('dataAccessClass', `must be one of ${DATA_CLASSES.join(', ')}`)
    out.filter.dataAccessClass = q.dataAccessClass as string
  }
  if (q.createdFrom !== undefined) out.filter.createdFrom = time('createdFrom', q.createdFrom)
  if (q.createdTo !== undefined) {
    const to = time('createdTo', q.createdTo)
    // A bare date includes that whole day.
    out.filter.createdTo = (q.createdTo as string).length === 10 ? to + 86_400 : to
  }
  if (q.limit !== undefined) {
    if (typeof q.limit !== 'string' || !/^[1-9][0-9]{0,2}$/.test(q.limit) || Number(q.limit) > 200) invalid('limit', 'must be an integer from 1 to 200')
    out.limit = Number(q.limit)
  }
  if (q.cursor !== undefined) out.cursor = decodeCursor(q.cursor)
  return out
}

/** The opaque keyset cursor of the console's agent list (newest first). */
export function encodeConsoleCursor(createdAt: number, did: string): string {
  return Buffer.from(JSON.stringify([createdAt, did])).toString('base64url')
}

function decodeCursor(cursor: unknown): { createdAt: number; did: string } {
  try {
    if (typeof cursor !== 'string' || cursor.length > 512 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error('shape')
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown
    if (!Array.isArray(value) || value.length !== 2) throw new Error('shape')
    const [createdAt, did] = value as unknown[]
    if (typeof createdAt !== 'number' || !Number.isSafeInteger(createdAt) || typeof did !== 'string' || did.length > 256) throw new Error('shape')
    return { createdAt, did }
  } catch {
    return invalid('cursor', 'is not a cursor this issuer returned')
  }
}

/** Validates `{ kind, id }` (and, with `withReason`, `reason`): what to revoke. */
export function parseRevocationBody(body: unknown, withReason: boolean): { target: RevocationTarget; reason: unknown } {
  if (!isRecord(body)) invalid('body', 'must be a JSON object')
  only(body, withReason ? ['kind', 'id', 'reason'] : ['kind', 'id'])
  let target: RevocationTarget
  switch (body.kind) {
    case 'agent': target = { kind: 'agent', did: parseAgentDid(body.id) }; break
    case 'credential': target = { kind: 'credential', id: parseCredentialId(body.id) }; break
    case 'delegation': target = { kind: 'delegation', id: parseDelegationId(body.id) }; break
    default: invalid('kind', 'must be agent, credential or delegation')
  }
  return { target, reason: body.reason }
}

/** Validates the sign-in body `{ key }` (the key's shape is checked by authentication). */
export function parseSignIn(body: unknown): string {
  if (!isRecord(body)) invalid('body', 'must be a JSON object')
  only(body, ['key'])
  if (typeof body.key !== 'string' || body.key.length === 0 || body.key.length > 256) invalid('key', 'an admin or orchestrator API key is required')
  return body.key.trim()
}

/** `?since=<size>` of the log view: the checkpoint size the console saw last. */
export function parseSince(query: unknown): number | undefined {
  const q = isRecord(query) ? query : {}
  only(q, ['since'])
  if (q.since === undefined) return undefined
  if (typeof q.since !== 'string' || !/^(0|[1-9][0-9]{0,14})$/.test(q.since)) invalid('since', 'must be a non-negative integer')
  return Number(q.since)
}
