// Read queries of the operator console, beside the issuer's store and grouped by resource: agents
// (search, filters, keyset paging newest first, counts per status, filter values), delegation links
// around one agent, and one agent's events. Read-only; statements are prepared once.
import type { Database, Statement } from 'better-sqlite3'
import type { AgentRow, DelegationRow } from '../domain/store.js'

/** Filters of the console's agent list. Every text filter but `q` is an exact match. */
export interface ConsoleAgentFilter {
  /** Only this orchestrator's agents (always set for an orchestrator's session). */
  orchestratorId?: string
  status?: 'active' | 'revoked'
  /** Case-insensitive substring of the DID, purpose, controller or model name. */
  q?: string
  controller?: string
  purpose?: string
  model?: string
  modelVersion?: string
  policyTier?: string
  dataAccessClass?: string
  /** Created at or after (unix seconds). */
  createdFrom?: number
  /** Created before (unix seconds). */
  createdTo?: number
}

export interface AuditEventRow { log_index: number; at: number; actor: string; action: string; subject: string | null; details_json: string | null }

const MODEL = "json_extract(claims_json, '$.model.name')"
const MODEL_VERSION = "json_extract(claims_json, '$.model.version')"
const POLICY_TIER = "json_extract(claims_json, '$.policyTier')"
const DATA_CLASS = "json_extract(claims_json, '$.dataAccessClass')"

/** Links at most returned around one agent (the graph says when it was cut). */
export const MAX_GRAPH_LINKS = 300
/** Events at most returned for one agent, newest first. */
export const MAX_TIMELINE_EVENTS = 200

function where(f: ConsoleAgentFilter, withStatus: boolean): { sql: string; args: unknown[] } {
  const clauses: string[] = []
  const args: unknown[] = []
  const eq = (column: string, value: unknown) => { clauses.push(`${column} = ?`); args.push(value) }
  if (f.orchestratorId !== undefined) eq('orchestrator_id', f.orchestratorId)
  if (withStatus && f.status !== undefined) eq('status', f.status)
  if (f.controller !== undefined) eq('controller', f.controller)
  if (f.purpose !== undefined) eq('purpose', f.purpose)
  if (f.model !== undefined) eq(MODEL, f.model)
  if (f.modelVersion !== undefined) eq(MODEL_VERSION, f.modelVersion)
  if (f.policyTier !== undefined) eq(POLICY_TIER, f.policyTier)
  if (f.dataAccessClass !== undefined) eq(DATA_CLASS, f.dataAccessClass)
  if (f.createdFrom !== undefined) { clauses.push('created_at >= ?'); args.push(f.createdFrom) }
  if (f.createdTo !== undefined) { clauses.push('created_at < ?'); args.push(f.createdTo) }
  if (f.q !== undefined) {
    // instr on lower(): no LIKE wildcards to escape in what the operator typed.
    clauses.push(`(instr(lower(did), lower(@q)) > 0 OR instr(lower(purpose), lower(@q)) > 0 OR instr(lower(controller), lower(@q)) > 0 OR instr(lower(coalesce(${MODEL}, '')), lower(@q)) > 0)`)
  }
  const sql = clauses.join(' AND ')
  return { sql: sql ? `WHERE ${sql}` : '', args }
}

/**
 * The console's read queries.
 * @example
 * const q = new ConsoleQueries(service.store.db)
 * q.agents.page({ status: 'active' }, 50)
 */
export class ConsoleQueries {
  readonly #s: Record<string, Statement>

  constructor(readonly db: Database) {
    const p = (sql: string) => db.prepare(sql)
    this.#s = {
      controllers: p('SELECT DISTINCT controller AS v FROM agents WHERE (@o IS NULL OR orchestrator_id = @o) ORDER BY 1 LIMIT 200'),
      purposes: p('SELECT DISTINCT purpose AS v FROM agents WHERE (@o IS NULL OR orchestrator_id = @o) ORDER BY 1 LIMIT 200'),
      models: p(`SELECT DISTINCT ${MODEL} AS v FROM agents WHERE (@o IS NULL OR orchestrator_id = @o) ORDER BY 1 LIMIT 200`),
      modelVersions: p(`SELECT DISTINCT ${MODEL_VERSION} AS v FROM agents WHERE (@o IS NULL OR orchestrator_id = @o) ORDER BY 1 LIMIT 200`),
      tiers: p(`SELECT DISTINCT ${POLICY_TIER} AS v FROM agents WHERE (@o IS NULL OR orchestrator_id = @o) ORDER BY 1 LIMIT 200`),
      // Links the agent signed or received, every link above those (the chains it holds) and below them.
      graph: p(`WITH RECURSIVE
        direct(id) AS (SELECT id FROM delegations WHERE delegator = @did OR delegatee = @did),
        up(id, parent_id) AS (SELECT d.id, d.parent_id FROM delegations d JOIN direct x ON d.id = x.id
          UNION SELECT p.id, p.parent_id FROM delegations p JOIN up u ON p.id = u.parent_id),
        down(id) AS (SELECT id FROM direct UNION SELECT d.id FROM delegations d JOIN down t ON d.parent_id = t.id)
        SELECT d.*, (d.id IN (SELECT id FROM up)) AS above FROM delegations d
        WHERE d.id IN (SELECT id FROM up UNION SELECT id FROM down) ORDER BY d.created_at, d.id LIMIT @limit`),
      agentsIn: p('SELECT did, orchestrator_id, status, purpose FROM agents WHERE did IN (SELECT value FROM json_each(?))'),
      // The agent's own events (subject = its DID: spawn, renewals, tokens, revocations, grants, links it
      // registered), the links given to it, and the revocations of links around it.
      events: p(`SELECT log_index, at, actor, action, subject, details_json FROM audit_events
        WHERE subject = @did OR subject IN (SELECT value FROM json_each(@ids))
        ORDER BY log_index DESC LIMIT @limit`),
      linkRegistrations: p(`SELECT log_index, at, actor, action, subject, details_json FROM audit_events
        WHERE action = 'delegation.registered' AND subject IN (SELECT value FROM json_each(@ids))
        AND json_extract(details_json, '$.delegatee') = @did ORDER BY log_index DESC LIMIT @limit`),
    }
  }

  readonly agents = {
    /** One page, newest first: rows strictly before the cursor (created_at, did). */
    page: (f: ConsoleAgentFilter, limit: number, before?: { createdAt: number; did: string }): AgentRow[] => {
      const w = where(f, true)
      const keyset = before === undefined ? '' : `${w.sql ? ' AND' : 'WHERE'} (created_at, did) < (@beforeAt, @beforeDid)`
      const sql = `SELECT * FROM agents ${w.sql}${keyset} ORDER BY created_at DESC, did DESC LIMIT @limit`
      return this.db.prepare(sql).all(...w.args, {
        limit, ...(f.q !== undefined ? { q: f.q } : {}), ...(before ? { beforeAt: before.createdAt, beforeDid: before.did } : {}),
      }) as AgentRow[]
    },
    /** Agents matching every filter but status, counted per status. */
    counts: (f: ConsoleAgentFilter): { active: number; revoked: number } => {
      const w = where(f, false)
      const rows = this.db.prepare(`SELECT status, count(*) AS n FROM agents ${w.sql} GROUP BY status`)
        .all(...w.args, ...(f.q !== undefined ? [{ q: f.q }] : [])) as { status: 'active' | 'revoked'; n: number }[]
      return { active: rows.find((r) => r.status === 'active')?.n ?? 0, revoked: rows.find((r) => r.status === 'revoked')?.n ?? 0 }
    },
    /** Values the filters can take (at most 200 each), within one orchestrator's agents when given. */
    facets: (orchestratorId?: string) => {
      const values = (name: string) => (this.#s[name]!.all({ o: orchestratorId ?? null }) as { v: unknown }[]).map((r) => r.v).filter((v): v is string => typeof v === 'string')
      return { controllers: values('controllers'), purposes: values('purposes'), models: values('models'), modelVersions: values('modelVersions'), policyTiers: values('tiers') }
    },
    /** Owner, status and purpose of the agents among `dids` that the issuer knows. */
    brief: (dids: readonly string[]) =>
      this.#s.agentsIn!.all(JSON.stringify(dids)) as Pick<AgentRow, 'did' | 'orchestrator_id' | 'status' | 'purpose'>[],
  }

  readonly delegations = {
    /** Links around `did` (above: the chains it holds), at most `limit`. */
    around: (did: string, limit = MAX_GRAPH_LINKS + 1) => this.#s.graph!.all({ did, limit }) as (DelegationRow & { above: 0 | 1 })[],
  }

  readonly events = {
    /** Events of `did` and of the links `linkIds`, newest first, merged and cut at `limit`. */
    ofAgent: (did: string, linkIds: readonly string[], limit = MAX_TIMELINE_EVENTS): AuditEventRow[] => {
      const ids = JSON.stringify(linkIds)
      const own = this.#s.events!.all({ did, ids, limit }) as AuditEventRow[]
      // Links registered by their delegator (the event's subject) naming this agent as the delegatee.
      const delegators = JSON.stringify([...new Set((this.#s.graph!.all({ did, limit: MAX_GRAPH_LINKS }) as DelegationRow[]).filter((d) => d.delegatee === did).map((d) => d.delegator))])
      const given = this.#s.linkRegistrations!.all({ ids: delegators, did, limit }) as AuditEventRow[]
      const seen = new Set<number>()
      return [...own, ...given].filter((e) => !seen.has(e.log_index) && seen.add(e.log_index)).sort((a, b) => b.log_index - a.log_index).slice(0, limit)
    },
  }
}
