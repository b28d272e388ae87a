// One agent: its claims, credentials (status, expiry), delegation graph (links it received and gave,
// the chains above them and the links below), and its timeline with each event's log inclusion.
import { useEffect, useState } from 'preact/hooks'
import { api, type AgentDetail } from '../api'
import { agentHref } from '../app'
import { Badge, Empty, ErrorNote, json, Loading, shortDid, Time } from './common'
import { DelegationGraph } from './graph'
import { RevokeDialog, type RevokeTarget } from './revoke'

const ACTIONS: Record<string, string> = {
  'agent.spawned': 'spawned', 'agent.renewed': 'credential renewed', 'agent.revoked': 'agent revoked', 'credential.revoked': 'credential revoked',
  'token.issued': 'access token issued', 'token.exchanged': 'token exchanged (on behalf of a user)', 'delegation.granted': 'root capability granted',
  'delegation.registered': 'delegation link registered', 'delegation.revoked': 'delegation link revoked',
}

export function AgentView({ did, isAdmin }: { did: string; isAdmin: boolean }) {
  const [detail, setDetail] = useState<AgentDetail | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [revoking, setRevoking] = useState<RevokeTarget | null>(null)
  const [attempt, setAttempt] = useState(0)
  useEffect(() => setDetail(null), [did]) // another agent: nothing shown until its own answer
  useEffect(() => {
    // Only the latest agent asked for is shown: moving from A to B and back, B's late answer is dropped.
    let latest = true
    setError(null)
    api.agent(did).then((d) => { if (latest) setDetail(d) }, (e) => { if (latest) setError(e) })
    return () => { latest = false }
  }, [did, attempt])
  const load = () => setAttempt((n) => n + 1)

  if (error !== null) return <section><h1>Agent</h1><p><a href="#/agents">← All agents</a></p><ErrorNote error={error} onRetry={load} /></section>
  if (!detail) return <section><h1>Agent</h1><Loading what="the agent" /></section>
  const { agent, graph, timeline } = detail
  const c = agent.claims
  const extra = Object.entries(c).filter(([k]) => !['purpose', 'controller', 'model', 'toolProfile', 'policyTier', 'dataAccessClass'].includes(k))

  return (
    <section class="agent">
      <p><a href="#/agents">← All agents</a></p>
      <h1>Agent <span class="mono did" title={agent.did}>{shortDid(agent.did)}</span> <Badge status={agent.status} /></h1>
      <p class="mono small break">{agent.did}</p>
      {agent.status === 'revoked' && (
        <p class="notice revoked" role="status">Revoked <Time iso={agent.revokedAt} />{agent.revocationReason ? ` — ${agent.revocationReason}` : ''}. Verifiers refuse its credentials.</p>
      )}
      {isAdmin && agent.status === 'active' && (
        <p><button type="button" class="danger" onClick={() => setRevoking({ kind: 'agent', id: agent.did, label: `agent ${shortDid(agent.did)}` })}>Revoke agent…</button></p>
      )}

      <div class="cols">
        <section aria-labelledby="claims-h">
          <h2 id="claims-h">Claims</h2>
          <dl class="claims">
            <dt>Purpose</dt><dd data-testid="claim-purpose">{c.purpose}</dd>
            <dt>Controller</dt><dd data-testid="claim-controller">{c.controller}</dd>
            <dt>Model</dt><dd data-testid="claim-model">{c.model.provider ? `${c.model.provider} / ` : ''}{c.model.name} {c.model.version}</dd>
            <dt>Tool profile</dt><dd>{Array.isArray(c.toolProfile) ? <ul class="mono-list">{c.toolProfile.map((t) => <li key={t}>{t}</li>)}</ul> : String(c.toolProfile)}</dd>
            <dt>Policy tier</dt><dd>{c.policyTier}</dd>
            <dt>Data class</dt><dd>{c.dataAccessClass}</dd>
            {extra.map(([k, v]) => [<dt key={`k${k}`}>{k}</dt>, <dd key={`v${k}`} class="mono small break">{typeof v === 'string' ? v : json(v)}</dd>])}
            <dt>Orchestrator</dt><dd>{agent.orchestratorName}</dd>
            <dt>Key custody</dt><dd>{agent.keyCustody === 'agent' ? 'agent-held key' : 'issuer-generated key'}</dd>
            <dt>Created</dt><dd><Time iso={agent.createdAt} /></dd>
          </dl>
        </section>

        <section aria-labelledby="creds-h">
          <h2 id="creds-h">Credentials</h2>
          {agent.credentials.length === 0 ? <Empty>No credentials.</Empty> : (
            <div class="table-wrap">
              <table>
                <caption class="sr-only">Identity credentials of this agent</caption>
                <thead><tr><th scope="col">Credential</th><th scope="col">Status</th><th scope="col">Expires</th>{isAdmin && <th scope="col"><span class="sr-only">Actions</span></th>}</tr></thead>
                <tbody>
                  {[...agent.credentials].reverse().map((cr) => (
                    <tr key={cr.id}>
                      <td class="mono small" title={cr.id}>{cr.id.slice(9, 17)}…</td>
                      <td><Badge status={cr.status} />{cr.revocationReason ? <span class="muted"> {cr.revocationReason}</span> : null}</td>
                      <td><Time iso={cr.expiresAt} /></td>
                      {isAdmin && <td>{cr.status === 'active' && <button type="button" class="small danger-outline" onClick={() => setRevoking({ kind: 'credential', id: cr.id, label: `credential ${cr.id.slice(9, 17)}…` })}>Revoke…</button>}</td>}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
      </div>

      <section aria-labelledby="graph-h">
        <h2 id="graph-h">Delegation</h2>
        <p class="muted small">The lineage the issuer knows: who granted this agent what, and to whom it passed it on. The chain of custody of each call travels between agents and services and does not reach the issuer.</p>
        {graph.links.length === 0 ? <Empty>This agent received and gave no delegation links.</Empty> : (
          <>
            <div class="graph-wrap"><DelegationGraph nodes={graph.nodes} links={graph.links} self={agent.did} /></div>
            {graph.truncated && <p class="notice">Only the first links are shown.</p>}
            <div class="table-wrap">
              <table>
                <caption>Links ({graph.links.length})</caption>
                <thead><tr><th scope="col">From</th><th scope="col">To</th><th scope="col">Status</th><th scope="col">Expires</th>{isAdmin && <th scope="col"><span class="sr-only">Actions</span></th>}</tr></thead>
                <tbody>
                  {graph.links.map((l) => (
                    <tr key={l.id} data-link={l.id}>
                      <td><Party did={l.from} nodes={graph.nodes} self={agent.did} /></td>
                      <td><Party did={l.to} nodes={graph.nodes} self={agent.did} /></td>
                      <td><Badge status={l.status} />{l.revocationReason ? <span class="muted"> {l.revocationReason}</span> : null}</td>
                      <td><Time iso={l.expiresAt} /></td>
                      {isAdmin && <td>{l.status === 'active' && <button type="button" class="small danger-outline" onClick={() => setRevoking({ kind: 'delegation', id: l.id, label: `the link ${shortDid(l.from)} → ${shortDid(l.to)}` })}>Revoke…</button>}</td>}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </>
        )}
      </section>

      <section aria-labelledby="timeline-h">
        <h2 id="timeline-h">Timeline</h2>
        {timeline.length === 0 ? <Empty>No events.</Empty> : (
          <div class="table-wrap">
            <table class="timeline">
              <caption class="sr-only">Events of this agent, newest first</caption>
              <thead><tr><th scope="col">When</th><th scope="col">Event</th><th scope="col">By</th><th scope="col">Details</th><th scope="col">Issuer log</th></tr></thead>
              <tbody>
                {timeline.map((e) => (
                  <tr key={e.index}>
                    <td><Time iso={e.at} /></td>
                    <td>{ACTIONS[e.action] ?? e.action}</td>
                    <td class="small">{e.actor.startsWith('agent:') ? 'the agent' : e.actor}</td>
                    <td class="small break">{Object.entries(e.details).map(([k, v]) => `${k}: ${v}`).join(' · ')}</td>
                    <td>{e.logged ? <span class="logged">entry #{e.index}, in a signed checkpoint</span> : <span class="pending">entry #{e.index}, not yet checkpointed</span>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      {revoking && <RevokeDialog target={revoking} onClose={(changed) => { setRevoking(null); if (changed) load() }} />}
    </section>
  )
}

function Party({ did, nodes, self }: { did: string; nodes: AgentDetail['graph']['nodes']; self: string }) {
  const n = nodes.find((x) => x.id === did)
  if (did === self) return <strong>this agent</strong>
  if (n?.kind === 'issuer') return <span>the issuer</span>
  if (n?.kind === 'agent') return <a href={agentHref(did)} title={did} class="mono">{shortDid(did)}</a>
  return <span class="mono" title={did}>{shortDid(did)}</span>
}
