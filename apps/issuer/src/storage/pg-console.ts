// The operator console's read queries in PostgreSQL's dialect (the SQLite ones: console/queries.ts):
// claims through jsonb operators, id lists as text[] parameters, text ordered byte-wise (COLLATE "C",
// SQLite's BINARY), so both engines answer the same rows in the same order.
import { MAX_GRAPH_LINKS, type AuditEventRow, type ConsoleAgentFilter } from '../console/queries.js'
import type { Query } from './sql-tx.js'
import type { AgentRow, ConsoleReads, DelegationRow } from './types.js'

const MODEL = "((claims_json::jsonb) #>> '{model,name}')"
const MODEL_VERSION = "((claims_json::jsonb) #>> '{model,version}')"
const POLICY_TIER = "((claims_json::jsonb) ->> 'policyTier')"
const DATA_CLASS = "((claims_json::jsonb) ->> 'dataAccessClass')"

function where(f: ConsoleAgentFilter, withStatus: boolean, args: unknown[]): string {
  const clauses: string[] = []
  const arg = (v: unknown) => `$${args.push(v)}`
  const eq = (column: string, value: unknown) => clauses.push(`${column} = ${arg(value)}`)
  if (f.orchestratorId !== undefined) eq('orchestrator_id', f.orchestratorId)
  if (withStatus && f.status !== undefined) eq('status', f.status)
  if (f.controller !== undefined) eq('controller', f.controller)
  if (f.purpose !== undefined) eq('purpose', f.purpose)
  if (f.model !== undefined) eq(MODEL, f.model)
  if (f.modelVersion !== undefined) eq(MODEL_VERSION, f.modelVersion)
  if (f.policyTier !== undefined) eq(POLICY_TIER, f.policyTier)
  if (f.dataAccessClass !== undefined) eq(DATA_CLASS, f.dataAccessClass)
  if (f.createdFrom !== undefined) clauses.push(`created_at >= ${arg(f.createdFrom)}`)
  if (f.createdTo !== undefined) clauses.push(`created_at < ${arg(f.createdTo)}`)
  if (f.q !== undefined) {
    // strpos on lower(): no LIKE wildcards to escape in what the operator typed.
    const q = arg(f.q)
    clauses.push(`(strpos(lower(did), lower(${q}::text)) > 0 OR strpos(lower(purpose), lower(${q}::text)) > 0 OR strpos(lower(controller), lower(${q}::text)) > 0 OR strpos(lower(coalesce(${MODEL}, '')), lower(${q}::text)) > 0)`)
  }
  return clauses.length ? `WHERE ${clauses.join(' AND ')}` : ''
}

// Links the agent signed or received, every link above those (the chains it holds) and below them.
const GRAPH = `WITH RECURSIVE
  direct(id) AS (SELECT id FROM delegations WHERE delegator = $1 OR delegatee = $1),
  up(id, parent_id) AS (SELECT d.id, d.parent_id FROM delegations d JOIN direct x ON d.id = x.id
    UNION SELECT p.id, p.parent_id FROM delegations p JOIN up u ON p.id = u.parent_id),
  down(id) AS (SELECT id FROM direct UNION SELECT d.id FROM delegations d JOIN down t ON d.parent_id = t.id)
  SELECT d.*, (CASE WHEN d.id IN (SELECT id FROM up) THEN 1 ELSE 0 END) AS above FROM delegations d
  WHERE d.id IN (SELECT id FROM up UNION SELECT id FROM down) ORDER BY d.created_at, d.id COLLATE "C" LIMIT $2`

/** The console's reads over `q` (the PostgreSQL pool). */
export function pgConsole(q: Query): ConsoleReads {
  const facet = async (expr: string, o: string | undefined) => (await q<{ v: unknown }>(
    `SELECT DISTINCT (${expr}) COLLATE "C" AS v FROM agents WHERE ($1::text IS NULL OR orchestrator_id = $1) ORDER BY 1 LIMIT 200`, [o ?? null])).rows
    .map((r) => r.v).filter((v): v is string => typeof v === 'string')
  const around = async (did: string, limit: number) => (await q<DelegationRow & { above: 0 | 1 }>(GRAPH, [did, limit])).rows
  return {
    agentPage: async (f, limit, before) => {
      const args: unknown[] = []
      const w = where(f, true, args)
      const keyset = before === undefined ? '' : `${w ? ' AND' : 'WHERE'} (created_at, did COLLATE "C") < ($${args.push(before.createdAt)}, $${args.push(before.did)} COLLATE "C")`
      return (await q<AgentRow>(`SELECT * FROM agents ${w}${keyset} ORDER BY created_at DESC, did COLLATE "C" DESC LIMIT $${args.push(limit)}`, args)).rows
    },
    agentCounts: async (f) => {
      const args: unknown[] = []
      const rows = (await q<{ status: 'active' | 'revoked'; n: number }>(`SELECT status, count(*) AS n FROM agents ${where(f, false, args)} GROUP BY status`, args)).rows
      return { active: rows.find((r) => r.status === 'active')?.n ?? 0, revoked: rows.find((r) => r.status === 'revoked')?.n ?? 0 }
    },
    facets: async (o) => ({
      controllers: await facet('controller', o), purposes: await facet('purpose', o), models: await facet(MODEL, o),
      modelVersions: await facet(MODEL_VERSION, o), policyTiers: await facet(POLICY_TIER, o),
    }),
    agentsBrief: async (dids) => (await q<Pick<AgentRow, 'did' | 'orchestrator_id' | 'status' | 'purpose'>>(
      'SELECT did, orchestrator_id, status, purpose FROM agents WHERE did = ANY($1::text[])', [[...dids]])).rows,
    delegationsAround: around,
    eventsOfAgent: async (did, linkIds, limit) => {
      const own = (await q<AuditEventRow>(`SELECT log_index, at, actor, action, subject, details_json FROM audit_events
        WHERE subject = $1 OR subject = ANY($2::text[]) ORDER BY log_index DESC LIMIT $3`, [did, [...linkIds], limit])).rows
      // Links registered by their delegator (the event's subject) naming this agent as the delegatee.
      const delegators = [...new Set((await around(did, MAX_GRAPH_LINKS)).filter((d) => d.delegatee === did).map((d) => d.delegator))]
      const given = (await q<AuditEventRow>(`SELECT log_index, at, actor, action, subject, details_json FROM audit_events
        WHERE action = 'delegation.registered' AND subject = ANY($1::text[]) AND ((details_json::jsonb) ->> 'delegatee') = $2
        ORDER BY log_index DESC LIMIT $3`, [delegators, did, limit])).rows
      const seen = new Set<number>()
      return [...own, ...given].filter((e) => !seen.has(e.log_index) && seen.add(e.log_index)).sort((a, b) => b.log_index - a.log_index).slice(0, limit)
    },
  }
}
