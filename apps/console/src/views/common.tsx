// Small shared pieces: loading and error states, status badges, times and DIDs as text. Everything
// the issuer returns is rendered as text nodes (Preact escapes it); nothing is ever parsed as HTML.
import type { ComponentChildren } from 'preact'
import { ApiError } from '../api'

export function Loading({ what }: { what: string }) {
  return <p class="loading" role="status" aria-live="polite"><span class="spinner" aria-hidden="true" />Loading {what}…</p>
}

const HINTS: Record<string, string> = {
  ERR_NETWORK: 'The issuer cannot be reached. Check that it is running, then retry.',
  ERR_UNAUTHENTICATED: 'Your session has ended. Sign in again.',
  ERR_FORBIDDEN: 'This needs the admin key.',
  ERR_NOT_FOUND: 'Not found (or not one of your agents).',
  ERR_RATE_LIMITED: 'Too many attempts. Wait a minute and retry.',
  ERR_UNAVAILABLE: 'The issuer is unavailable right now. Retry shortly.',
}

export function ErrorNote({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const e = error instanceof ApiError ? error : new ApiError(0, 'ERR_UNKNOWN', error instanceof Error ? error.message : String(error))
  return (
    <div class="error" role="alert">
      <p><strong>{HINTS[e.code] ?? 'The request failed.'}</strong></p>
      <p class="muted">{e.message} <code>{e.code}</code></p>
      {onRetry && <button type="button" onClick={onRetry}>Retry</button>}
    </div>
  )
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>
}

export function Badge({ status }: { status: string }) {
  return <span class={`badge badge-${status === 'active' || status === 'pending' ? status : status === 'revoked' || status === 'denied' ? 'revoked' : 'other'}`}>{status}</span>
}

/** did:key:z6MkABCD…WXYZ: enough to tell agents apart; the full DID is in the title and the link. */
export function shortDid(did: string): string {
  return did.length > 32 ? `${did.slice(0, 18)}…${did.slice(-6)}` : did
}

export function Time({ iso }: { iso: string | null }) {
  if (!iso) return <span class="muted">—</span>
  const d = new Date(iso)
  return <time dateTime={iso} title={iso}>{d.toISOString().replace('T', ' ').slice(0, 19)} UTC</time>
}

export function ago(sec: number): string {
  if (sec < 60) return `${sec} s ago`
  if (sec < 3600) return `${Math.floor(sec / 60)} min ago`
  if (sec < 86_400) return `${Math.floor(sec / 3600)} h ago`
  return `${Math.floor(sec / 86_400)} days ago`
}

/** A JSON value as one line of text, for arguments and claims that are not plain strings. */
export function json(value: unknown): string {
  return JSON.stringify(value) ?? 'undefined'
}
