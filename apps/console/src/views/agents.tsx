// Agents: search and filters (kept in the URL, so a filtered view can be shared and the back button
// works), counts per status, and keyset paging through any number of agents.
import { useEffect, useState } from 'preact/hooks'
import { api, type AgentPage, type Facets } from '../api'
import { agentHref } from '../app'
import { Badge, Empty, ErrorNote, Loading, shortDid, Time } from './common'

const FILTERS = ['q', 'status', 'controller', 'orchestrator', 'purpose', 'model', 'modelVersion', 'policyTier', 'dataAccessClass', 'createdFrom', 'createdTo'] as const
type FilterName = (typeof FILTERS)[number]

function filterOf(query: URLSearchParams): Partial<Record<FilterName, string>> {
  const out: Partial<Record<FilterName, string>> = {}
  for (const k of FILTERS) {
    const v = query.get(k)
    if (v) out[k] = v
  }
  return out
}

function go(filter: Partial<Record<FilterName, string>>) {
  const p = new URLSearchParams()
  for (const k of FILTERS) if (filter[k]) p.set(k, filter[k]!)
  const s = p.toString()
  location.hash = s ? `#/agents?${s}` : '#/agents'
}

function Select({ id, label, value, options, onChange }: { id: FilterName; label: string; value: string | undefined; options: { value: string; label: string }[]; onChange: (v: string) => void }) {
  return (
    <div class="field">
      <label for={`f-${id}`}>{label}</label>
      <select id={`f-${id}`} value={value ?? ''} onChange={(e) => onChange((e.target as HTMLSelectElement).value)}>
        <option value="">Any</option>
        {options.map((o) => <option key={o.value} value={o.value}>{o.label}</option>)}
      </select>
    </div>
  )
}

const PAGE = 25

export function AgentsView({ query, isAdmin }: { query: URLSearchParams; isAdmin: boolean }) {
  const filter = filterOf(query)
  const key = JSON.stringify(filter)
  const [facets, setFacets] = useState<Facets | null>(null)
  const [page, setPage] = useState<AgentPage | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [cursors, setCursors] = useState<string[]>([]) // cursors of the pages before this one
  const [cursor, setCursor] = useState<string | undefined>(undefined)
  const [loading, setLoading] = useState(true)
  const [search, setSearch] = useState(filter.q ?? '')

  useEffect(() => {
    api.facets().then(setFacets, () => setFacets(null))
  }, [])
  useEffect(() => {
    setCursor(undefined)
    setCursors([])
    setSearch(filter.q ?? '')
  }, [key])
  const [attempt, setAttempt] = useState(0)
  useEffect(() => {
    // Only the answer to the latest request is shown: an earlier one arriving late (filters changed
    // while it was in flight) would otherwise replace the list the operator asked for last.
    let latest = true
    setLoading(true)
    setError(null)
    api.agents({ ...filter, limit: String(PAGE), cursor }).then(
      (p) => { if (latest) { setPage(p); setLoading(false) } },
      (e) => { if (latest) { setError(e); setLoading(false) } },
    )
    return () => { latest = false }
  }, [key, cursor, attempt])
  const load = () => setAttempt((n) => n + 1)

  const set = (name: FilterName) => (value: string) => go({ ...filter, [name]: value || undefined })
  const opts = (values: string[] | undefined) => (values ?? []).map((v) => ({ value: v, label: v }))
  const counts = page?.counts

  return (
    <section>
      <h1>Agents</h1>
      {counts && (
        <p class="counts" aria-label="Agents per status">
          <a href="#/agents" class="count" onClick={(e) => { e.preventDefault(); go({ ...filter, status: undefined }) }}><strong>{counts.total}</strong> total</a>
          <a href="#/agents" class="count active" onClick={(e) => { e.preventDefault(); go({ ...filter, status: 'active' }) }}><strong>{counts.active}</strong> active</a>
          <a href="#/agents" class="count revoked" onClick={(e) => { e.preventDefault(); go({ ...filter, status: 'revoked' }) }}><strong>{counts.revoked}</strong> revoked</a>
          <span class="muted"> (matching the other filters)</span>
        </p>
      )}
      <form class="filters" role="search" aria-label="Filter agents" onSubmit={(e) => { e.preventDefault(); go({ ...filter, q: search.trim() || undefined }) }}>
        <div class="field grow">
          <label for="f-q">Search DID, purpose, controller or model</label>
          <input id="f-q" type="search" value={search} onInput={(e) => setSearch((e.target as HTMLInputElement).value)} placeholder="e.g. invoices" />
        </div>
        <Select id="status" label="Status" value={filter.status} options={[{ value: 'active', label: 'active' }, { value: 'revoked', label: 'revoked' }]} onChange={set('status')} />
        <Select id="controller" label="Controller" value={filter.controller} options={opts(facets?.controllers)} onChange={set('controller')} />
        {isAdmin && <Select id="orchestrator" label="Orchestrator" value={filter.orchestrator} options={(facets?.orchestrators ?? []).map((o) => ({ value: o.id, label: o.name }))} onChange={set('orchestrator')} />}
        <Select id="purpose" label="Purpose" value={filter.purpose} options={opts(facets?.purposes)} onChange={set('purpose')} />
        <Select id="model" label="Model" value={filter.model} options={opts(facets?.models)} onChange={set('model')} />
        <Select id="modelVersion" label="Model version" value={filter.modelVersion} options={opts(facets?.modelVersions)} onChange={set('modelVersion')} />
        <Select id="policyTier" label="Policy tier" value={filter.policyTier} options={opts(facets?.policyTiers)} onChange={set('policyTier')} />
        <Select id="dataAccessClass" label="Data class" value={filter.dataAccessClass} options={['public', 'internal', 'confidential', 'restricted'].map((v) => ({ value: v, label: v }))} onChange={set('dataAccessClass')} />
        <div class="field">
          <label for="f-createdFrom">Created from</label>
          <input id="f-createdFrom" type="date" value={filter.createdFrom ?? ''} onChange={(e) => set('createdFrom')((e.target as HTMLInputElement).value)} />
        </div>
        <div class="field">
          <label for="f-createdTo">Created until</label>
          <input id="f-createdTo" type="date" value={filter.createdTo ?? ''} onChange={(e) => set('createdTo')((e.target as HTMLInputElement).value)} />
        </div>
        <div class="field actions">
          <button type="submit">Search</button>
          <button type="button" class="secondary" onClick={() => go({})} disabled={Object.keys(filter).length === 0}>Clear filters</button>
        </div>
      </form>

      {error !== null && <ErrorNote error={error} onRetry={load} />}
      {loading && <Loading what="agents" />}
      {!loading && page && page.agents.length === 0 && (
        <Empty>{Object.keys(filter).length ? 'No agent matches these filters.' : 'No agents yet. Orchestrators spawn them with POST /v1/agents (see the README quick start).'}</Empty>
      )}
      {page && page.agents.length > 0 && (
        <div class="table-wrap" aria-busy={loading}>
          <table class="agents">
            <caption class="sr-only">Agents, newest first</caption>
            <thead>
              <tr><th scope="col">Agent</th><th scope="col">Status</th><th scope="col">Purpose</th><th scope="col">Controller</th><th scope="col">Model</th><th scope="col">Tier</th><th scope="col">Data class</th>{isAdmin && <th scope="col">Orchestrator</th>}<th scope="col">Created</th></tr>
            </thead>
            <tbody>
              {page.agents.map((a) => (
                <tr key={a.did}>
                  <td><a href={agentHref(a.did)} title={a.did} class="mono">{shortDid(a.did)}</a></td>
                  <td><Badge status={a.status} /></td>
                  <td class="purpose">{a.purpose}</td>
                  <td class="controller">{a.controller}</td>
                  <td class="model">{a.model ? `${a.model.name} ${a.model.version}` : '—'}</td>
                  <td>{a.policyTier ?? '—'}</td>
                  <td>{a.dataAccessClass ?? '—'}</td>
                  {isAdmin && <td>{a.orchestrator.name}</td>}
                  <td><Time iso={a.createdAt} /></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {page && (cursors.length > 0 || page.nextCursor) && (
        <nav class="pager" aria-label="Pages">
          <button type="button" class="secondary" disabled={cursors.length === 0} onClick={() => { const prev = [...cursors]; const c = prev.pop(); setCursors(prev); setCursor(c === '' ? undefined : c) }}>Previous page</button>
          <span class="muted">Page {cursors.length + 1}</span>
          <button type="button" class="secondary" disabled={!page.nextCursor} onClick={() => { setCursors([...cursors, cursor ?? '']); setCursor(page.nextCursor ?? undefined) }}>Next page</button>
        </nav>
      )}
    </section>
  )
}
