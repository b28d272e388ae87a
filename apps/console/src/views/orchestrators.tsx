// Orchestrators: the list, adding one (its API key shown once, never again), disabling one (its key
// stops working and its console sessions end; its agents stay until revoked).
import { useEffect, useState } from 'preact/hooks'
import { api, type Orchestrator } from '../api'
import { Badge, Empty, ErrorNote, Loading, Time } from './common'

export function OrchestratorsView() {
  const [list, setList] = useState<Orchestrator[] | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [name, setName] = useState('')
  const [created, setCreated] = useState<(Orchestrator & { apiKey: string }) | null>(null)
  const [busy, setBusy] = useState(false)
  const load = () => { setError(null); api.orchestrators().then((r) => setList(r.orchestrators), setError) }
  useEffect(load, [])

  const add = async (event: Event) => {
    event.preventDefault()
    setBusy(true)
    setError(null)
    try {
      setCreated(await api.addOrchestrator(name.trim()))
      setName('')
      load()
    } catch (e) {
      setError(e)
    } finally {
      setBusy(false)
    }
  }
  const disable = async (o: Orchestrator) => {
    if (!confirm(`Disable orchestrator ${o.name}? Its API key stops working at once; its agents stay until you revoke them.`)) return
    setError(null)
    try {
      await api.disableOrchestrator(o.id)
      load()
    } catch (e) {
      setError(e)
    }
  }

  return (
    <section>
      <h1>Orchestrators</h1>
      <form class="inline" onSubmit={add}>
        <div class="field">
          <label for="orch-name">New orchestrator name</label>
          <input id="orch-name" required pattern="[A-Za-z0-9][A-Za-z0-9._\-]{0,63}" maxLength={64} value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} aria-describedby="orch-help" />
          <p id="orch-help" class="muted">Letters, digits, dots, dashes, underscores.</p>
        </div>
        <button type="submit" disabled={busy || !name.trim()}>Add orchestrator</button>
      </form>
      {created && (
        <div class="secret" role="status" data-testid="new-key">
          <p><strong>API key for {created.name}</strong> — shown once. Store it in your secret manager now; the issuer keeps only its hash.</p>
          <p><code class="break" data-testid="api-key">{created.apiKey}</code></p>
          <button type="button" class="secondary" onClick={() => { void navigator.clipboard?.writeText(created.apiKey) }}>Copy</button>{' '}
          <button type="button" class="secondary" onClick={() => setCreated(null)}>I have stored it</button>
        </div>
      )}
      {error !== null && <ErrorNote error={error} onRetry={load} />}
      {!list && error === null && <Loading what="orchestrators" />}
      {list && list.length === 0 && <Empty>No orchestrators yet. Add one above, or with <code>agentid orchestrators add NAME</code>.</Empty>}
      {list && list.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption class="sr-only">Orchestrators</caption>
            <thead><tr><th scope="col">Name</th><th scope="col">Id</th><th scope="col">Status</th><th scope="col">Active agents</th><th scope="col">Created</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>
              {list.map((o) => (
                <tr key={o.id}>
                  <td>{o.name}</td>
                  <td class="mono small">{o.id}</td>
                  <td>{o.removedAt ? <><Badge status="disabled" /> <Time iso={o.removedAt} /></> : <Badge status="active" />}</td>
                  <td>{o.activeAgents ?? '—'}</td>
                  <td><Time iso={o.createdAt} /></td>
                  <td>{!o.removedAt && <button type="button" class="small danger-outline" onClick={() => void disable(o)} aria-label={`Disable ${o.name}`}>Disable…</button>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  )
}
