// The console shell: session (sign-in, expiry, sign-out), hash routes, navigation, and the
// connection state (an unreachable issuer is said so, not shown as an empty fleet).
import { useCallback, useEffect, useRef, useState } from 'preact/hooks'
import { api, ApiError, setSession, type SessionInfo } from './api'
import { SignIn } from './views/signin'
import { AgentsView } from './views/agents'
import { AgentView } from './views/agent'
import { OrchestratorsView } from './views/orchestrators'
import { LogView } from './views/log'
import { ApprovalsView } from './views/approvals'
import { PoliciesView } from './views/policies'
import { ErrorNote, Loading } from './views/common'

export type Route =
  | { view: 'agents'; query: URLSearchParams }
  | { view: 'agent'; did: string }
  | { view: 'orchestrators' }
  | { view: 'log' }
  | { view: 'approvals' }
  | { view: 'policies' }

export function parseRoute(hash: string): Route {
  const [path = '', query = ''] = hash.replace(/^#/, '').split('?')
  const parts = path.split('/').filter(Boolean)
  if (parts[0] === 'agents' && parts[1]) return { view: 'agent', did: decodeURIComponent(parts[1]) }
  if (parts[0] === 'orchestrators') return { view: 'orchestrators' }
  if (parts[0] === 'log') return { view: 'log' }
  if (parts[0] === 'approvals') return { view: 'approvals' }
  if (parts[0] === 'policies') return { view: 'policies' }
  return { view: 'agents', query: new URLSearchParams(query) }
}

export const agentHref = (did: string) => `#/agents/${encodeURIComponent(did)}`

type State =
  | { kind: 'loading' }
  | { kind: 'signedOut'; reason?: 'expired' | 'signedOut' }
  | { kind: 'unreachable'; message: string }
  | { kind: 'signedIn'; session: SessionInfo }

const NAV: { view: Route['view']; label: string; href: string; adminOnly?: boolean }[] = [
  { view: 'agents', label: 'Agents', href: '#/agents' },
  { view: 'orchestrators', label: 'Orchestrators', href: '#/orchestrators', adminOnly: true },
  { view: 'log', label: 'Log', href: '#/log' },
  { view: 'approvals', label: 'Approvals', href: '#/approvals', adminOnly: true },
  { view: 'policies', label: 'Policies', href: '#/policies' },
]

export function App() {
  const [state, setState] = useState<State>({ kind: 'loading' })
  const [route, setRoute] = useState<Route>(() => parseRoute(location.hash))
  const main = useRef<HTMLElement>(null)

  const expired = useCallback(() => setState({ kind: 'signedOut', reason: 'expired' }), [])
  const signedIn = useCallback((session: SessionInfo) => {
    setSession(session.csrfToken, expired)
    setState({ kind: 'signedIn', session })
  }, [expired])

  const load = useCallback(() => {
    setState({ kind: 'loading' })
    api.session().then(signedIn, (error: unknown) => {
      if (error instanceof ApiError && error.status === 401) setState({ kind: 'signedOut' })
      else setState({ kind: 'unreachable', message: error instanceof Error ? error.message : String(error) })
    })
  }, [signedIn])

  useEffect(load, [load])
  useEffect(() => {
    const onHash = () => setRoute(parseRoute(location.hash))
    addEventListener('hashchange', onHash)
    return () => removeEventListener('hashchange', onHash)
  }, [])
  // Keyboard and screen-reader users land on the new view's heading.
  useEffect(() => {
    const h1 = main.current?.querySelector('h1')
    if (h1) { h1.setAttribute('tabindex', '-1'); h1.focus() }
  }, [route, state.kind])

  if (state.kind === 'loading') return <main id="main" class="narrow"><Loading what="the console" /></main>
  if (state.kind === 'unreachable') {
    return (
      <main id="main" class="narrow" ref={main}>
        <h1>agentid console</h1>
        <ErrorNote error={new ApiError(0, 'ERR_NETWORK', state.message)} />
        <button type="button" onClick={load}>Retry</button>
      </main>
    )
  }
  if (state.kind === 'signedOut') return <main id="main" class="narrow" ref={main}><SignIn reason={state.reason} onSignedIn={signedIn} /></main>

  const { principal } = state.session
  const isAdmin = principal.kind === 'admin'
  const signOut = async () => {
    try {
      await api.signOut()
    } catch {
      // Signed out or unreachable: the page forgets the session either way.
    }
    setSession('', expired)
    setState({ kind: 'signedOut', reason: 'signedOut' })
  }
  const active = route.view === 'agent' ? 'agents' : route.view

  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <span class="brand">agentid console</span>
        <nav aria-label="Console">
          <ul>
            {NAV.filter((n) => isAdmin || !n.adminOnly).map((n) => (
              <li key={n.view}><a href={n.href} aria-current={active === n.view ? 'page' : undefined}>{n.label}</a></li>
            ))}
          </ul>
        </nav>
        <span class="who" data-testid="who">
          {isAdmin ? 'Signed in as admin' : `Signed in as orchestrator ${principal.name ?? ''}`}
        </span>
        <button type="button" class="secondary" onClick={signOut}>Sign out</button>
      </header>
      <main id="main" ref={main}>
        {route.view === 'agents' && <AgentsView query={route.query} isAdmin={isAdmin} />}
        {route.view === 'agent' && <AgentView did={route.did} isAdmin={isAdmin} />}
        {route.view === 'orchestrators' && (isAdmin ? <OrchestratorsView /> : <AdminOnly />)}
        {route.view === 'log' && <LogView />}
        {route.view === 'approvals' && (isAdmin ? <ApprovalsView /> : <AdminOnly />)}
        {route.view === 'policies' && <PoliciesView />}
      </main>
    </>
  )
}

function AdminOnly() {
  return (
    <section>
      <h1>Admin only</h1>
      <p>This view needs the admin key. An orchestrator's session sees its own agents, the log and the policies note.</p>
    </section>
  )
}
