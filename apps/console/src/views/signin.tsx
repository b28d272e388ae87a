import { useState } from 'preact/hooks'
import { api, type SessionInfo } from '../api'
import { ErrorNote } from './common'

export function SignIn({ reason, onSignedIn }: { reason: 'expired' | 'signedOut' | undefined; onSignedIn: (s: SessionInfo) => void }) {
  const [key, setKey] = useState('')
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<unknown>(null)
  const submit = async (event: Event) => {
    event.preventDefault()
    setBusy(true)
    setError(null)
    try {
      const session = await api.signIn(key)
      setKey('')
      onSignedIn(session)
    } catch (e) {
      setError(e)
    } finally {
      setBusy(false)
    }
  }
  return (
    <section class="signin">
      <h1>agentid console</h1>
      {reason === 'expired' && <p class="notice" role="status">Your session expired. Sign in again.</p>}
      {reason === 'signedOut' && <p class="notice" role="status">You are signed out.</p>}
      <form onSubmit={submit}>
        <label for="key">Admin or orchestrator API key</label>
        <input id="key" name="key" type="password" autocomplete="off" spellcheck={false} required value={key}
          onInput={(e) => setKey((e.target as HTMLInputElement).value)} aria-describedby="key-help" />
        <p id="key-help" class="muted">The key is sent once to this issuer and exchanged for a session that ends after 15 minutes without activity. An orchestrator key shows only that orchestrator's agents.</p>
        <button type="submit" disabled={busy || key.length === 0}>{busy ? 'Signing in…' : 'Sign in'}</button>
      </form>
      {error !== null && <ErrorNote error={error} />}
    </section>
  )
}
