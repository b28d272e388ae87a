// Approvals: pending human-approval requests with their canonical call; approvers decide on the
// issuer's approval page (passkey), linked from here.
import { useEffect, useState } from 'preact/hooks'
import { api, type Approval } from '../api'
import { Empty, ErrorNote, json, Loading, shortDid, Time } from './common'

// Only http(s) links: a URL is never allowed to become script (javascript:, data:).
function safeHref(url: string): string | undefined {
  try {
    const u = new URL(url, location.href)
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : undefined
  } catch {
    return undefined
  }
}

export function ApprovalsView() {
  const [list, setList] = useState<Approval[] | null>(null)
  const [error, setError] = useState<unknown>(null)
  const load = () => { setError(null); api.approvals().then((r) => setList(r.approvals), setError) }
  useEffect(load, [])
  return (
    <section>
      <h1>Approvals</h1>
      <p class="muted">Pending requests for a human's approval. An approver decides on the approval page with their passkey, which signs the SHA-256 of the canonical call shown here.</p>
      <button type="button" class="secondary" onClick={load}>Refresh</button>
      {error !== null && <ErrorNote error={error} onRetry={load} />}
      {!list && error === null && <Loading what="approval requests" />}
      {list && list.length === 0 && <Empty>No approval request is waiting.</Empty>}
      {list && list.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption class="sr-only">Pending approval requests</caption>
            <thead><tr><th scope="col">Request</th><th scope="col">Agent</th><th scope="col">Call</th><th scope="col">Arguments</th><th scope="col">Group</th><th scope="col">Expires</th><th scope="col">Approver page</th></tr></thead>
            <tbody>
              {list.map((a) => (
                <tr key={a.id}>
                  <td class="mono small">{a.id}</td>
                  <td class="mono small" title={a.call.agent}>{shortDid(a.call.agent)}</td>
                  <td><code>{a.call.command}</code> <span class="muted">on</span> <code class="break">{a.call.target}</code></td>
                  <td><code class="args break">{json(a.call.arguments)}</code><br /><span class="muted small">digest {a.call.argumentsDigest.slice(0, 16)}…</span></td>
                  <td>{a.call.group ?? '—'}</td>
                  <td><Time iso={a.expiresAt} /></td>
                  <td>{safeHref(a.url) ? <a href={safeHref(a.url)} rel="noopener noreferrer">Open</a> : '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  )
}
