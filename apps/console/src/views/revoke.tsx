// Revoke with the blast radius in view: the dialog first asks the issuer for the dry run of the very
// cascade the revocation runs (every credential, delegation link and downstream agent it takes down),
// then asks for a reason and a confirmation, then shows what was revoked.
import { useEffect, useRef, useState } from 'preact/hooks'
import { api, type RevocationKind, type RevocationPreview } from '../api'
import { agentHref } from '../app'
import { ErrorNote, Loading, shortDid, Time } from './common'

export interface RevokeTarget { kind: RevocationKind; id: string; label: string }

export function RevokeDialog({ target, onClose }: { target: RevokeTarget; onClose: (changed: boolean) => void }) {
  const ref = useRef<HTMLDialogElement>(null)
  const [preview, setPreview] = useState<RevocationPreview | null>(null)
  const [error, setError] = useState<unknown>(null)
  const [reason, setReason] = useState('')
  const [busy, setBusy] = useState(false)
  const [result, setResult] = useState<Record<string, unknown> | null>(null)

  useEffect(() => {
    ref.current?.showModal()
    api.preview(target.kind, target.id).then(setPreview, setError)
  }, [target.kind, target.id])

  const close = () => {
    ref.current?.close()
    onClose(result !== null)
  }
  const confirm = async (event: Event) => {
    event.preventDefault()
    setBusy(true)
    setError(null)
    try {
      setResult(await api.revoke(target.kind, target.id, reason.trim()))
    } catch (e) {
      setError(e)
    } finally {
      setBusy(false)
    }
  }
  const count = (v: unknown) => (Array.isArray(v) ? v.length : 0)

  return (
    <dialog ref={ref} class="revoke" aria-labelledby="revoke-title" onCancel={(e) => { e.preventDefault(); close() }}>
      <h2 id="revoke-title">Revoke {target.label}</h2>
      {!preview && !error && <Loading what="the blast radius" />}
      {error !== null && <ErrorNote error={error} />}
      {preview && !result && (
        <div class="blast" data-testid="blast-radius">
          {preview.alreadyRevoked ? (
            <p class="notice">Already revoked: nothing left to revoke.</p>
          ) : (
            <>
              <p><strong>Blast radius</strong> — computed by the same cascade that performs the revocation:</p>
              <ul class="summary">
                {preview.agent && <li>the agent <code title={preview.agent}>{shortDid(preview.agent)}</code> is marked revoked</li>}
                <li><strong data-testid="blast-credentials">{preview.credentials.length}</strong> credential{preview.credentials.length === 1 ? '' : 's'}</li>
                <li><strong data-testid="blast-links">{preview.delegations.length}</strong> delegation link{preview.delegations.length === 1 ? '' : 's'}</li>
                <li><strong data-testid="blast-agents">{preview.downstreamAgents.length}</strong> downstream agent{preview.downstreamAgents.length === 1 ? '' : 's'} lose the capabilities those links carried (their identities stay valid)</li>
              </ul>
              {preview.credentials.length > 0 && (
                <details open={preview.credentials.length <= 5}>
                  <summary>Credentials</summary>
                  <ul class="mono-list">{preview.credentials.map((c) => <li key={c.id}><code>{c.id}</code> (expires <Time iso={c.expiresAt} />)</li>)}</ul>
                </details>
              )}
              {preview.delegations.length > 0 && (
                <details open={preview.delegations.length <= 8}>
                  <summary>Delegation links</summary>
                  <ul class="mono-list">{preview.delegations.map((d) => <li key={d.id}><code title={d.delegator}>{shortDid(d.delegator)}</code> → <code title={d.delegatee}>{shortDid(d.delegatee)}</code> <span class="muted">{d.id}</span></li>)}</ul>
                </details>
              )}
              {preview.downstreamAgents.length > 0 && (
                <details open={preview.downstreamAgents.length <= 8}>
                  <summary>Downstream agents</summary>
                  <ul class="mono-list">{preview.downstreamAgents.map((a) => <li key={a.did}>{a.status ? <a href={agentHref(a.did)} title={a.did}>{shortDid(a.did)}</a> : <code title={a.did}>{shortDid(a.did)}</code>} {a.purpose && <span class="muted">{a.purpose}</span>}</li>)}</ul>
                </details>
              )}
            </>
          )}
          <form onSubmit={confirm}>
            {!preview.alreadyRevoked && (
              <>
                <label for="revoke-reason">Reason (kept in the issuer's audit log)</label>
                <input id="revoke-reason" required maxLength={512} value={reason} onInput={(e) => setReason((e.target as HTMLInputElement).value)} />
              </>
            )}
            <div class="actions">
              {!preview.alreadyRevoked && <button type="submit" class="danger" disabled={busy || reason.trim().length === 0}>{busy ? 'Revoking…' : 'Confirm revocation'}</button>}
              <button type="button" class="secondary" onClick={close}>Cancel</button>
            </div>
          </form>
        </div>
      )}
      {result && (
        <div role="status" data-testid="revoke-result">
          <p class="ok"><strong>Revoked.</strong>{' '}
            {result.alreadyRevoked ? 'It was already revoked.' : `${count(result.revokedCredentials) || (target.kind === 'credential' ? 1 : 0)} credential(s) and ${count(result.revokedDelegations)} delegation link(s) revoked.`}
            {' '}Verifiers refuse them once their cached status list expires, at once when subscribed to the event stream.</p>
          <button type="button" onClick={close} autofocus>Close</button>
        </div>
      )}
    </dialog>
  )
}
