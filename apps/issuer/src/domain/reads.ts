// Reads: agent records (one, or a filtered page) and the signed status lists.
import { AgentIdError, decodeJwt, type AgentClaims } from '@agentid/core'
import type { ServiceDeps } from './deps.js'
import { encodeCursor, parseAgentDid, parseListQuery } from './input.js'
import type { Principal } from './principal.js'
import type { SignedDiStatusList, SignedStatusList } from './status-lists.js'
import type { AgentRow } from './store.js'
import { iso, isoOrNull, notFound, type AgentView } from './views.js'

type Deps = Pick<ServiceDeps, 'storage' | 'statusLists' | 'now'>

/** The agent record with its credentials. An orchestrator sees only its own agents. */
export async function getAgent(d: Deps, actor: Principal, did: unknown): Promise<AgentView> {
  const agentDid = parseAgentDid(did)
  const row = await d.storage.agents.get(agentDid)
  // Another orchestrator's agent is "not found": existence is not disclosed.
  if (!row || (actor.kind === 'orchestrator' && row.orchestrator_id !== actor.id)) notFound('agent')
  return agentView(d, row)
}

/** Lists agents with filters and keyset paging. An orchestrator sees only its own. */
export async function listAgents(d: Deps, actor: Principal, query: unknown): Promise<{ agents: AgentView[]; nextCursor: string | null }> {
  const q = parseListQuery(query)
  let orchestratorId: string | undefined
  if (actor.kind === 'orchestrator') {
    if (q.orchestrator !== undefined && q.orchestrator !== actor.id && q.orchestrator !== actor.name) throw new AgentIdError('ERR_FORBIDDEN', 'an orchestrator lists only its own agents')
    orchestratorId = actor.id
  } else if (q.orchestrator !== undefined) {
    orchestratorId = ((await d.storage.orchestrators.byId(q.orchestrator)) ?? (await d.storage.orchestrators.byName(q.orchestrator)))?.id ?? '-'
  }
  const rows = await d.storage.agents.list({
    limit: q.limit + 1,
    ...(orchestratorId === undefined ? {} : { orchestratorId }),
    ...(q.status === undefined ? {} : { status: q.status }),
    ...(q.controller === undefined ? {} : { controller: q.controller }),
    ...(q.purpose === undefined ? {} : { purpose: q.purpose }),
    ...(q.cursor === undefined ? {} : { after: q.cursor }),
  })
  const page = rows.slice(0, q.limit)
  const last = page[page.length - 1]
  return { agents: await Promise.all(page.map((r) => agentView(d, r))), nextCursor: rows.length > q.limit && last ? encodeCursor(last.created_at, last.did) : null }
}

/** The signed status-list credential `id`. */
export function statusList(d: Pick<ServiceDeps, 'statusLists'>, id: unknown): Promise<SignedStatusList> {
  if (typeof id !== 'string' || !/^[1-9][0-9]{0,8}$/.test(id)) notFound('status list')
  return d.statusLists.get(id)
}

/** The status-list credential `id` as VC 2.0 with a Data Integrity proof (did:key issuers; else ERR_NOT_FOUND). */
export function statusListDi(d: Pick<ServiceDeps, 'statusLists'>, id: unknown): Promise<SignedDiStatusList> {
  if (typeof id !== 'string' || !/^[1-9][0-9]{0,8}$/.test(id)) notFound('status list')
  return d.statusLists.getDi(id)
}

async function agentView(d: Deps, row: AgentRow): Promise<AgentView> {
  const now = d.now()
  const credentials = await d.storage.credentials.byAgent(row.did)
  return {
    did: row.did,
    orchestrator: row.orchestrator_id,
    keyCustody: row.key_custody,
    status: row.status,
    claims: JSON.parse(row.claims_json) as AgentClaims,
    createdAt: iso(row.created_at),
    revokedAt: isoOrNull(row.revoked_at),
    revocationReason: row.revocation_reason,
    credentials: credentials.map((c) => ({
      id: c.id,
      status: c.revoked_at !== null ? 'revoked' : c.expires_at <= now ? 'expired' : 'active',
      issuedAt: iso(c.issued_at),
      expiresAt: iso(c.expires_at),
      revokedAt: isoOrNull(c.revoked_at),
      revocationReason: c.revocation_reason,
      statusListCredential: statusListUrlOf(c.jwt, c.format) ?? d.statusLists.url(c.status_list_id),
      statusListIndex: c.status_index,
    })),
  }
}

// The status-list URL a credential carries: the base URL may have changed since it was issued.
function statusListUrlOf(jwt: string, format: string): string | undefined {
  try {
    if (format === 'di') {
      const url = (JSON.parse(jwt) as { credentialStatus?: { statusListCredential?: unknown } }).credentialStatus?.statusListCredential
      return typeof url === 'string' ? url : undefined
    }
    const payload = decodeJwt(jwt).payload as { vc?: { credentialStatus?: { statusListCredential?: unknown } } }
    const url = payload.vc?.credentialStatus?.statusListCredential
    return typeof url === 'string' ? url : undefined
  } catch {
    return undefined
  }
}
