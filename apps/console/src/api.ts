// Calls to the issuer's console routes (same origin, JSON, the session cookie sent by the browser).
// Every state-changing call carries the session's CSRF token in x-agentid-csrf. Failures become an
// ApiError with the issuer's stable code, or ERR_NETWORK when the issuer cannot be reached.

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly details?: Record<string, unknown>) {
    super(message)
  }
}

export interface Principal { kind: 'admin' | 'orchestrator'; id?: string; name?: string }
export interface SessionInfo { principal: Principal; csrfToken: string; idleTimeoutSec: number; expiresInSec: number }

export interface AgentSummary {
  did: string; status: 'active' | 'revoked'; purpose: string; controller: string
  model: { provider?: string; name: string; version: string } | null; policyTier: string | null; dataAccessClass: string | null
  orchestrator: { id: string; name: string }; createdAt: string; revokedAt: string | null
}
export interface AgentPage { agents: AgentSummary[]; nextCursor: string | null; counts: { active: number; revoked: number; total: number } }
export interface Facets { controllers: string[]; purposes: string[]; models: string[]; modelVersions: string[]; policyTiers: string[]; orchestrators: { id: string; name: string }[] }

export interface CredentialView {
  id: string; status: 'active' | 'revoked' | 'expired'; issuedAt: string; expiresAt: string; revokedAt: string | null
  revocationReason: string | null; statusListCredential: string; statusListIndex: number
}
export interface GraphNode { id: string; kind: 'issuer' | 'agent' | 'other' | 'external'; status?: 'active' | 'revoked'; purpose?: string }
export interface GraphLink {
  id: string; parentId: string | null; from: string; to: string; status: 'active' | 'revoked' | 'expired'
  createdAt: string; expiresAt: string; revokedAt: string | null; revocationReason: string | null
}
export interface TimelineEvent { index: number; at: string; actor: string; action: string; subject: string | null; details: Record<string, string | number>; logged: boolean }
export interface AgentDetail {
  agent: {
    did: string; orchestrator: string; orchestratorName: string; keyCustody: string; status: 'active' | 'revoked'
    claims: Record<string, unknown> & { purpose: string; controller: string; model: { provider?: string; name: string; version: string }; toolProfile: string[] | string; policyTier: string; dataAccessClass: string }
    createdAt: string; revokedAt: string | null; revocationReason: string | null; credentials: CredentialView[]
  }
  graph: { nodes: GraphNode[]; links: GraphLink[]; truncated: boolean }
  timeline: TimelineEvent[]
  log: { size: number } | null
}
export type RevocationKind = 'agent' | 'credential' | 'delegation'
export interface RevocationPreview {
  target: { kind: RevocationKind; did?: string; id?: string }; owner: string | null; agent: string | null
  credentials: { id: string; agent: string; expiresAt: string }[]
  delegations: { id: string; parentId: string | null; delegator: string; delegatee: string; expiresAt: string }[]
  downstreamAgents: { did: string; status: string | null; purpose: string | null }[]
  alreadyRevoked: boolean
}
export interface Orchestrator { id: string; name: string; createdAt: string; removedAt: string | null; activeAgents?: number }
export interface LogView {
  origin: string; vkey: string; healthy: boolean
  checkpoint: { size: number; note: string; createdAt: string; ageSec: number; cosignatures: { witness: string; at: string }[] } | null
  consistency?: { from: number; to: number; proof: string[] } | { from: number; to: number; error: string } | null
}
export interface Approval {
  id: string; status: string; url: string; requestedBy: string; createdAt: string; expiresAt: string
  call: { agent: string; controller: string; target: string; command: string; arguments: unknown; argumentsDigest: string; group: string | null; user?: unknown; transactionId: string }
}

let csrf = ''
let onUnauthenticated: () => void = () => {}

/** Remembers the session's CSRF token and what to do when the session is gone (401). */
export function setSession(token: string, unauthenticated: () => void): void {
  csrf = token
  onUnauthenticated = unauthenticated
}

async function call<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown, o: { quiet401?: boolean } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (method !== 'GET' && csrf) headers['x-agentid-csrf'] = csrf
  let res: Response
  try {
    res = await fetch(`/console/api${path}`, { method, headers, credentials: 'same-origin', cache: 'no-store', redirect: 'error', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) })
  } catch {
    throw new ApiError(0, 'ERR_NETWORK', 'The issuer cannot be reached. Check that it is running, then retry.')
  }
  if (res.status === 204) return undefined as T
  const data = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | null
  if (!res.ok) {
    const code = data?.error?.code ?? (res.status >= 500 ? 'ERR_UNAVAILABLE' : 'ERR_UNKNOWN')
    const error = new ApiError(res.status, code, data?.error?.message ?? `The issuer answered ${res.status}.`, data?.error?.details)
    if (res.status === 401 && !o.quiet401) onUnauthenticated()
    throw error
  }
  return data as T
}

const qs = (params: Record<string, string | undefined>) => {
  const p = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') p.set(k, v)
  const s = p.toString()
  return s ? `?${s}` : ''
}

export const api = {
  session: () => call<SessionInfo>('GET', '/session', undefined, { quiet401: true }),
  signIn: (key: string) => call<SessionInfo>('POST', '/session', { key }, { quiet401: true }),
  signOut: () => call<void>('DELETE', '/session'),
  agents: (filter: Record<string, string | undefined>) => call<AgentPage>('GET', `/agents${qs(filter)}`),
  facets: () => call<Facets>('GET', '/facets'),
  agent: (did: string) => call<AgentDetail>('GET', `/agents/${encodeURIComponent(did)}`),
  preview: (kind: RevocationKind, id: string) => call<RevocationPreview>('POST', '/revocations/preview', { kind, id }),
  revoke: (kind: RevocationKind, id: string, reason: string) => call<Record<string, unknown>>('POST', '/revocations', { kind, id, reason }),
  orchestrators: () => call<{ orchestrators: Orchestrator[] }>('GET', '/orchestrators'),
  addOrchestrator: (name: string) => call<Orchestrator & { apiKey: string }>('POST', '/orchestrators', { name }),
  disableOrchestrator: (id: string) => call<Orchestrator>('POST', `/orchestrators/${encodeURIComponent(id)}/disable`, {}),
  log: (since?: number) => call<LogView>('GET', `/log${qs({ since: since === undefined ? undefined : String(since) })}`),
  approvals: () => call<{ approvals: Approval[] }>('GET', '/approvals?status=pending'),
}
