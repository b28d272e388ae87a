// Keeping an agent's identity fresh in the background: its identity credential, its X.509-SVID (and
// the https.Agent presenting it), its JWT-SVIDs and its certificate-bound access tokens, each renewed
// at a fraction of its lifetime with jitter, retried with back-off, swapped atomically (a call in flight
// keeps what it took, still valid), and stopped for good once the issuer says the agent is revoked.
import type { Agent as HttpsAgent } from 'node:https'
import { AgentIdError, signerFromJwk, type Ed25519PrivateJwk, type Signer } from '@agentid/core'
import { fetchIssuerDid, renew, type Fetch } from './issuer.js'
import { createSvidHttpsAgent, fetchCertificateBoundToken, fetchJwtSvid, fetchX509Svid, type X509Svid } from './svid.js'

export interface IdentityRotationOptions {
  issuerUrl: string
  /** The agent's key (never leaves this process). */
  privateJwk: Ed25519PrivateJwk
  /** The credential the agent already holds (from spawn); without it one is renewed at start. */
  credential?: { credential: string; expiresAt: string }
  /** Lifetime asked for renewed credentials (seconds); default: the issuer's. */
  credentialLifetimeSec?: number
  /** Keep an X.509-SVID (needs an issuer with a trust domain); `lifetimeSec` as asked of the issuer. */
  x509Svid?: boolean | { lifetimeSec?: number }
  /** CA certificates (PEM) of the servers the https.Agent talks to. */
  serverCa?: string | readonly string[]
  /** Renew when this fraction of the remaining lifetime has passed (0.05 to 0.9; default 0.5). */
  renewFraction?: number
  /** ± this fraction of the delay, at random (0 to 0.5; default 0.1), so a fleet does not renew in step. */
  jitter?: number
  /** Back-off after a failed renewal: first delay and cap, ms (default 1,000 and 30,000), with jitter. */
  retry?: { initialMs?: number; maxMs?: number }
  /** Told each time something was renewed: what, and when the new one expires (ISO 8601). */
  onRotate?: (what: 'credential' | 'x509Svid', expiresAt: string) => void
  /** Told once when the issuer refuses the agent as revoked; everything stops. */
  onRevoked?: (error: AgentIdError) => void
  /** Told of each failed renewal that will be retried. */
  onError?: (what: 'credential' | 'x509Svid', error: unknown) => void
  fetch?: Fetch
}

/** The agent's identity, always current. Getters throw `ERR_REVOKED` once revoked, `ERR_EXPIRED` if renewal never succeeded in time. */
export interface RotatingIdentity {
  readonly state: 'running' | 'revoked' | 'stopped'
  readonly did: string
  /** The current identity credential (compact JWT). */
  credential(): string
  /** The current X.509-SVID. */
  x509Svid(): X509Svid
  /** An https.Agent presenting the current X.509-SVID (a new one after each rotation; the old one serves calls already on it). */
  httpsAgent(): HttpsAgent
  /** A JWT-SVID for `audience`, reused until a fraction of its lifetime has passed. */
  jwtSvid(audience: string): Promise<string>
  /** A token bound to the current X.509-SVID with the https.Agent presenting that SVID: use both together. */
  certificateBound(resource: string): Promise<{ agent: HttpsAgent; accessToken: string }>
  /** Resolves with the issuer's refusal when the agent is revoked. */
  readonly revoked: Promise<AgentIdError>
  /** Stops every timer and closes the https.Agents. */
  stop(): void
}

interface Held<T> { value: T; expiresAtMs: number; refreshAtMs: number }

function bounded(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) throw new TypeError(`startIdentityRotation: ${name} must be from ${min} to ${max}`)
  return value
}

/**
 * Starts keeping an agent's identity fresh. Resolves once the credential (and, if asked, the
 * X.509-SVID) is in hand.
 * @example
 * const identity = await startIdentityRotation({ issuerUrl, privateJwk, credential: spawned, x509Svid: true, onRevoked: () => process.exit(1) })
 * https.request(url, { agent: identity.httpsAgent() })
 */
export async function startIdentityRotation(options: IdentityRotationOptions): Promise<RotatingIdentity> {
  const fraction = bounded('renewFraction', options.renewFraction, 0.5, 0.05, 0.9)
  const jitter = bounded('jitter', options.jitter, 0.1, 0, 0.5)
  const initialMs = bounded('retry.initialMs', options.retry?.initialMs, 1000, 10, 600_000)
  const maxMs = bounded('retry.maxMs', options.retry?.maxMs, 30_000, initialMs, 3_600_000)
  const signer: Signer = signerFromJwk(options.privateJwk)
  const conn = { issuerUrl: options.issuerUrl, ...(options.fetch ? { fetch: options.fetch } : {}) }
  const issuerDid = await fetchIssuerDid(conn)
  const wantSvid = options.x509Svid !== undefined && options.x509Svid !== false
  const svidLifetime = typeof options.x509Svid === 'object' ? options.x509Svid.lifetimeSec : undefined

  let state: RotatingIdentity['state'] = 'running'
  let revokedError: AgentIdError | undefined
  let reportRevoked!: (e: AgentIdError) => void
  const revoked = new Promise<AgentIdError>((resolve) => { reportRevoked = resolve })
  const timers = new Set<NodeJS.Timeout>()
  const retired = new Set<HttpsAgent>()

  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => { timers.delete(t); fn() }, Math.max(0, ms))
    t.unref()
    timers.add(t)
  }
  const spread = (ms: number) => ms * (1 + jitter * (2 * Math.random() - 1))
  const hold = <T>(value: T, expiresAt: string): Held<T> => {
    const expiresAtMs = Date.parse(expiresAt)
    return { value, expiresAtMs, refreshAtMs: Date.now() + spread((expiresAtMs - Date.now()) * fraction) }
  }

  let credential: Held<string> | undefined = options.credential ? hold(options.credential.credential, options.credential.expiresAt) : undefined
  let svid: Held<{ svid: X509Svid; agent: HttpsAgent }> | undefined
  const jwts = new Map<string, Held<string> | Promise<string>>()
  const bound = new Map<string, Held<{ agent: HttpsAgent; accessToken: string; thumbprint: string }> | Promise<{ agent: HttpsAgent; accessToken: string }>>()

  function fail(error: unknown): never | void {
    if (error instanceof AgentIdError && error.code === 'ERR_REVOKED') {
      if (state !== 'running') return
      state = 'revoked'
      revokedError = error
      shutdown()
      reportRevoked(error)
      options.onRevoked?.(error)
    }
  }

  function shutdown(): void {
    for (const t of timers) clearTimeout(t)
    timers.clear()
    svid?.value.agent.destroy()
    for (const a of retired) a.destroy()
    retired.clear()
  }

  function current<T>(held: Held<T> | undefined, what: string): T {
    if (state === 'revoked') throw revokedError!
    if (state === 'stopped') throw new AgentIdError('ERR_UNAVAILABLE', 'the identity rotation was stopped')
    if (!held) throw new AgentIdError('ERR_UNAVAILABLE', `no ${what} yet`)
    if (held.expiresAtMs <= Date.now()) throw new AgentIdError('ERR_EXPIRED', `the ${what} expired and could not be renewed`)
    return held.value
  }

  async function renewCredential(): Promise<void> {
    const issued = await renew({ ...conn, signer, issuerDid, ...(options.credentialLifetimeSec === undefined ? {} : { lifetimeSec: options.credentialLifetimeSec }) })
    credential = hold(issued.credential, issued.expiresAt)
    options.onRotate?.('credential', issued.expiresAt)
  }

  async function renewSvid(): Promise<void> {
    const next = await fetchX509Svid({ ...conn, signer, issuerDid, ...(svidLifetime === undefined ? {} : { lifetimeSec: svidLifetime }) })
    const agent = createSvidHttpsAgent({ privateJwk: options.privateJwk, svid: next, ...(options.serverCa === undefined ? {} : { ca: options.serverCa }), agentOptions: { keepAlive: true } })
    const previous = svid
    svid = hold({ svid: next, agent }, next.expiresAt)
    // The old agent keeps serving the calls already on it until its certificate ends, then closes.
    if (previous) {
      retired.add(previous.value.agent)
      later(previous.expiresAtMs - Date.now(), () => { previous.value.agent.destroy(); retired.delete(previous.value.agent) })
    }
    options.onRotate?.('x509Svid', next.expiresAt)
  }

  // One renewal loop: renew at the held value's refresh time; on failure back off (the held value
  // still serves while valid); on revocation stop everything.
  function loop(what: 'credential' | 'x509Svid', attempt = 0): void {
    if (state !== 'running') return
    const held = what === 'credential' ? credential : svid
    const due = attempt === 0 && held ? held.refreshAtMs - Date.now() : attempt === 0 ? 0 : spread(Math.min(maxMs, initialMs * 2 ** (attempt - 1)))
    later(due, () => {
      if (state !== 'running') return
      // A new credential first, then an SVID that carries it.
      const job = what === 'credential' ? renewCredential().then(() => (wantSvid ? renewSvid() : undefined)) : renewSvid()
      job.then(
        () => loop(what, 0),
        (error: unknown) => {
          fail(error)
          if (state !== 'running') return
          options.onError?.(what, error)
          loop(what, attempt + 1)
        },
      )
    })
  }

  try {
    if (!credential) await renewCredential()
    if (wantSvid) await renewSvid()
  } catch (error) {
    fail(error)
    throw error
  }
  loop('credential')
  if (wantSvid) loop('x509Svid')

  async function cachedOrFetch<T>(map: Map<string, Held<T> | Promise<T>>, key: string, fetchNew: () => Promise<Held<T>>): Promise<T> {
    const entry = map.get(key)
    if (entry instanceof Promise) return entry
    if (entry && Date.now() < entry.refreshAtMs) return entry.value
    const p = fetchNew().then(
      (held) => { map.set(key, held); return held.value },
      (error: unknown) => {
        fail(error)
        if (entry && entry.expiresAtMs > Date.now() && state === 'running') { map.set(key, entry); return entry.value }
        map.delete(key)
        throw error
      },
    )
    map.set(key, p)
    return p
  }

  return {
    get state() { return state },
    did: signer.did,
    credential: () => current(credential, 'identity credential'),
    x509Svid: () => current(svid, 'X.509-SVID').svid,
    httpsAgent: () => current(svid, 'X.509-SVID').agent,
    jwtSvid: async (audience: string) => {
      current(credential, 'identity credential')
      return cachedOrFetch(jwts, audience, async () => {
        const t = await fetchJwtSvid({ ...conn, signer, issuerDid, audience })
        return hold(t.token, t.expiresAt)
      })
    },
    certificateBound: async (resource: string) => {
      const s = current(svid, 'X.509-SVID')
      const key = `${s.svid.thumbprint} ${resource}`
      const pair = await cachedOrFetch(bound as Map<string, Held<{ agent: HttpsAgent; accessToken: string; thumbprint: string }> | Promise<{ agent: HttpsAgent; accessToken: string; thumbprint: string }>>, key, async () => {
        const t = await fetchCertificateBoundToken({ issuerUrl: options.issuerUrl, signer, svid: s.svid, resource })
        // A token never outlives the certificate it is bound to.
        return hold({ agent: s.agent, accessToken: t.accessToken, thumbprint: s.svid.thumbprint }, new Date(Math.min(Date.now() + t.expiresIn * 1000, Date.parse(s.svid.expiresAt))).toISOString())
      })
      for (const k of bound.keys()) if (!k.startsWith(`${s.svid.thumbprint} `)) bound.delete(k)
      return { agent: pair.agent, accessToken: pair.accessToken }
    },
    revoked,
    stop: () => {
      if (state === 'running') state = 'stopped'
      shutdown()
    },
  }
}
