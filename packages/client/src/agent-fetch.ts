// A fetch for agents: DPoP-bound access tokens from the issuer's token endpoint (client_credentials,
// private_key_jwt by the agent's did:key, RFC 9449 DPoP with server nonces) or from a token source
// (a token an orchestrator exchanged for the agent), a fresh proof per request.
import { AgentIdError, signerFromJwk, type Ed25519PrivateJwk, type Ed25519PublicJwk } from '@agentid/core'
import { htuOf, signAgentJwt, signDpopProof } from './agent-jwts.js'
import { lineageHeaders, type AgentFetchLineageOptions, type CallLineage } from './lineage.js'

export const JWT_BEARER_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
/** A token is refreshed this many seconds before it expires (at most a quarter of its lifetime). */
const REFRESH_MARGIN_SEC = 30

/** The subset of WHATWG fetch an agent fetch calls and offers. */
export type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

/** An access token bound to the agent's key, and its lifetime in seconds (exchangeToken's result fits). */
export interface SourcedToken {
  accessToken: string
  expiresIn: number
}

/**
 * Where an agent fetch gets its tokens when it does not ask the issuer itself: typically a call to the
 * orchestrator, which runs `exchangeToken` for the agent. Called again to refresh.
 */
export type TokenSource = () => Promise<SourcedToken>

interface AgentFetchCommon {
  /** The agent's Ed25519 private key (its did:key): signs the DPoP proofs (and the client assertion). */
  privateJwk: Ed25519PrivateJwk
  /** Underlying fetch. Default: globalThis.fetch. */
  fetch?: FetchFunction
  /** Current time in milliseconds. Default: Date.now. */
  clock?: () => number
  /**
   * The origins (`https://erp.example`) the token may be sent to; a request elsewhere is refused
   * (AgentIdError `ERR_FORBIDDEN`) before anything is sent. Default: any origin. Set it where the agent
   * fetches URLs it was handed (a prompt injection's "fetch https://attacker.example/…"): the token names
   * the agent, its claims and, after an exchange, the user it acts for.
   */
  origins?: readonly string[]
  /**
   * Append a hop of the chain of custody to every call (`Agentid-Lineage`, with `Agentid-Credentials`):
   * the agent's identity credential, and how to name the agent serving each URL. Per call,
   * `init.lineage` gives the lineage received with the call being served (`from`; none: a new
   * transaction), or `false` for a call without lineage.
   */
  lineage?: AgentFetchLineageOptions
}

/** RequestInit of an agent fetch: `lineage` says what this call continues (see {@link AgentFetchOptions.lineage}). */
export interface AgentRequestInit extends RequestInit {
  lineage?: CallLineage | false
}

/** The agent asks the issuer for its own tokens (client_credentials). */
export interface AgentFetchIssuerOptions extends AgentFetchCommon {
  /** The issuer's base URL; the token endpoint is `${issuerUrl}/v1/token`. */
  issuerUrl: string
  /** RFC 8707 resource: the resource server the tokens are for (their `aud`). */
  resource: string
  /** RFC 9396 authorization details (type `agentid_action`) asked for with every token. */
  authorizationDetails?: readonly Record<string, unknown>[]
  token?: undefined
}

/** The agent takes its tokens from a source (a token exchanged by its orchestrator for a user). */
export interface AgentFetchTokenSourceOptions extends AgentFetchCommon {
  /** Gives a token bound to this agent's key; asked again shortly before it expires or when refused. */
  token: TokenSource
  issuerUrl?: undefined
  resource?: undefined
  authorizationDetails?: undefined
}

export type AgentFetchOptions = AgentFetchIssuerOptions | AgentFetchTokenSourceOptions

/** The token endpoint refused: `error` is its RFC 6749 error code (`invalid_client`, …), `status` the HTTP status. */
export class TokenRequestError extends Error {
  override readonly name = 'TokenRequestError'
  constructor(readonly error: string, readonly status: number, message: string) {
    super(message)
  }
}

interface CachedToken { value: string; refreshAt: number }

function dpopErrorOf(response: Response): string | undefined {
  const challenge = response.headers.get('www-authenticate')
  if (!challenge || !/^\s*dpop\b/i.test(challenge)) return undefined
  return /\berror="([^"]*)"/i.exec(challenge)?.[1]
}

function httpOrigin(value: string): string | undefined {
  try {
    const url = new URL(value)
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.origin : undefined
  } catch {
    return undefined
  }
}

// The origins the token may be sent to; undefined: any.
function allowedOrigins(options: AgentFetchOptions): Set<string> | undefined {
  if (options.origins === undefined) return undefined
  if (!Array.isArray(options.origins)) throw new TypeError('createAgentFetch: origins must be an array of http(s) origins')
  return new Set(options.origins.map((o: unknown) => {
    const origin = typeof o === 'string' ? httpOrigin(o) : undefined
    if (origin === undefined) throw new TypeError('createAgentFetch: origins must be an array of http(s) origins')
    return origin
  }))
}

/**
 * A fetch-compatible function for an agent: requests carry `Authorization: DPoP <token>` and a fresh
 * DPoP proof (with `ath`) signed by the agent's key. The token comes from the issuer (`issuerUrl`,
 * `resource`: client_credentials) or from a `token` source (a token an orchestrator exchanged for the
 * agent, acting for a user whose token the agent never sees); it is cached until shortly before it
 * expires, then asked for again. A `use_dpop_nonce` answer (token endpoint or resource) is retried once.
 * With `origins`, the token goes only there, never to whatever URL the agent is handed.
 * @example
 * const agentFetch = createAgentFetch({ issuerUrl, privateJwk, resource: 'https://erp.example' })
 * const r = await agentFetch('https://erp.example/invoices')
 * // acting for a user: the orchestrator runs exchangeToken, the agent only gets the result
 * const forUser = createAgentFetch({ privateJwk, token: () => askOrchestratorForToken() })
 */
export function createAgentFetch(options: AgentFetchOptions): (input: string | URL | Request, init?: AgentRequestInit) => Promise<Response> {
  const signer = signerFromJwk(options.privateJwk)
  const publicJwk: Ed25519PublicJwk = { kty: 'OKP', crv: 'Ed25519', x: options.privateJwk.x }
  const baseFetch = options.fetch ?? (globalThis.fetch as FetchFunction)
  const clock = options.clock ?? Date.now
  const source = options.token
  if (source !== undefined && typeof source !== 'function') throw new TypeError('createAgentFetch: token must be a function')
  if (source !== undefined && (options.issuerUrl !== undefined || options.resource !== undefined || options.authorizationDetails !== undefined)) {
    throw new TypeError('createAgentFetch: a token source replaces issuerUrl, resource and authorizationDetails')
  }
  if (source === undefined && (typeof options.issuerUrl !== 'string' || typeof options.resource !== 'string')) {
    throw new TypeError('createAgentFetch: issuerUrl and resource are required without a token source')
  }
  const tokenEndpoint = source === undefined ? `${options.issuerUrl!.replace(/\/+$/, '')}/v1/token` : ''
  // Where the token may go (the token names the agent, its claims and the user it acts for, even if its
  // DPoP binding keeps it unusable elsewhere).
  const origins = allowedOrigins(options)
  const details = options.authorizationDetails === undefined ? undefined : JSON.stringify(options.authorizationDetails)
  /** The last DPoP-Nonce each origin gave. */
  const nonces = new Map<string, string>()
  let cached: CachedToken | undefined
  let pending: Promise<string> | undefined

  const seconds = () => Math.floor(clock() / 1000)
  const remember = (url: string, response: Response) => {
    const nonce = response.headers.get('dpop-nonce')
    if (nonce) nonces.set(new URL(url).origin, nonce)
  }

  const proof = (method: string, url: string, accessToken?: string): Promise<string> =>
    signDpopProof(signer, publicJwk, { htm: method, htu: htuOf(url), nowSec: seconds(), nonce: nonces.get(new URL(url).origin), accessToken })

  async function tokenRequest(): Promise<Response> {
    const assertion = await signAgentJwt(signer, tokenEndpoint, seconds())
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: signer.did,
      client_assertion_type: JWT_BEARER_ASSERTION_TYPE,
      client_assertion: assertion,
      resource: options.resource!,
    })
    if (details !== undefined) form.set('authorization_details', details)
    const response = await baseFetch(tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', dpop: await proof('POST', tokenEndpoint) },
      body: form.toString(),
    })
    remember(tokenEndpoint, response)
    return response
  }

  async function requestToken(): Promise<{ value: string; lifetime: number }> {
    let response = await tokenRequest()
    let body = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined
    if (response.status === 400 && body?.error === 'use_dpop_nonce' && response.headers.get('dpop-nonce')) {
      response = await tokenRequest()
      body = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined
    }
    if (!response.ok) {
      const error = typeof body?.error === 'string' ? body.error : 'invalid_response'
      const description = typeof body?.error_description === 'string' ? `: ${body.error_description}` : ''
      throw new TokenRequestError(error, response.status, `token request refused (HTTP ${response.status}) ${error}${description}`)
    }
    const token = body?.access_token
    const expiresIn = body?.expires_in
    if (typeof token !== 'string' || token === '' || typeof body?.token_type !== 'string' || body.token_type.toLowerCase() !== 'dpop') {
      throw new TokenRequestError('invalid_response', response.status, 'the token endpoint did not return a DPoP access token')
    }
    return { value: token, lifetime: typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : 60 }
  }

  async function sourcedToken(): Promise<{ value: string; lifetime: number }> {
    const t = await source!()
    if (t === null || typeof t !== 'object' || typeof t.accessToken !== 'string' || t.accessToken === '') {
      throw new TypeError('createAgentFetch: the token source gave no accessToken')
    }
    if (typeof t.expiresIn !== 'number' || !Number.isFinite(t.expiresIn) || t.expiresIn <= 0) {
      throw new TypeError('createAgentFetch: the token source gave no positive expiresIn')
    }
    return { value: t.accessToken, lifetime: t.expiresIn }
  }

  async function obtainToken(): Promise<string> {
    const { value, lifetime } = source === undefined ? await requestToken() : await sourcedToken()
    cached = { value, refreshAt: clock() + (lifetime - Math.min(REFRESH_MARGIN_SEC, lifetime / 4)) * 1000 }
    return value
  }

  function accessToken(): Promise<string> {
    if (cached !== undefined && clock() < cached.refreshAt) return Promise.resolve(cached.value)
    cached = undefined
    // Concurrent requests share one token request.
    pending ??= obtainToken().finally(() => { pending = undefined })
    return pending
  }

  const lineageOptions = options.lineage
  if (lineageOptions !== undefined && (typeof lineageOptions !== 'object' || lineageOptions === null || typeof lineageOptions.credential !== 'string')) {
    throw new TypeError('createAgentFetch: lineage.credential (the agent\'s identity credential) is required')
  }

  return async function agentFetch(input: string | URL | Request, init?: AgentRequestInit): Promise<Response> {
    const request = input instanceof Request ? input : undefined
    const url = request ? request.url : String(input)
    if (origins !== undefined && !origins.has(new URL(url).origin)) {
      throw new AgentIdError('ERR_FORBIDDEN', `agent fetch: ${new URL(url).origin} is not an origin its token is for`)
    }
    const method = (init?.method ?? request?.method ?? 'GET').toUpperCase()
    const headers = new Headers(request?.headers)
    for (const [name, value] of new Headers(init?.headers)) headers.set(name, value)
    // The body is read once so the nonce retry can send it again.
    let body: RequestInit['body'] = init?.body !== undefined ? init.body : undefined
    if (body === undefined && request?.body) body = await request.arrayBuffer()
    else if (body instanceof ReadableStream) body = await new Response(body).arrayBuffer()
    const rest: AgentRequestInit = { ...init }
    delete rest.body
    delete rest.headers
    const callLineage = rest.lineage
    delete rest.lineage
    if (callLineage !== undefined && callLineage !== false && lineageOptions === undefined) throw new TypeError('agent fetch: init.lineage needs createAgentFetch({ lineage })')
    if (request?.signal && rest.signal === undefined) rest.signal = request.signal

    const send = async (): Promise<Response> => {
      const token = await accessToken()
      const h = new Headers(headers)
      h.set('authorization', `DPoP ${token}`)
      h.set('dpop', await proof(method, url, token))
      // A fresh hop per attempt: a retried request (DPoP nonce) never reuses a hop the service may have recorded.
      if (lineageOptions !== undefined && callLineage !== false) {
        // A call retried with a human's approval (Agentid-Approval) names it in its hop (`apr`).
        const approval = h.get('agentid-approval')
        const call = callLineage ?? {}
        const withApproval = call.approval === undefined && approval !== null ? { ...call, approval: Buffer.from(approval, 'base64url').toString('utf8') } : call
        for (const [name, value] of Object.entries(await lineageHeaders(signer, lineageOptions, withApproval, { method, url, body, clock }))) h.set(name, value)
      }
      // A call with a lineage is not followed through a redirect unless asked (`redirect`): its hop was
      // signed for this target, command and arguments, and fetch would carry it, the credentials and the
      // body to wherever the answer points (another origin too); the caller gets the 3xx instead.
      const redirect = rest.redirect === undefined && lineageOptions !== undefined && callLineage !== false ? { redirect: 'manual' as const } : {}
      const response = await baseFetch(url, { ...rest, ...redirect, method, headers: h, ...(body === undefined || body === null ? {} : { body }) })
      remember(url, response)
      return response
    }

    const response = await send()
    if (response.status !== 401) return response
    const error = dpopErrorOf(response)
    if (error === 'use_dpop_nonce' && response.headers.get('dpop-nonce')) {
      await response.body?.cancel()
      return send()
    }
    // A token the resource no longer takes (expired, rotated keys): the next call gets a new one.
    if (error === 'invalid_token') cached = undefined
    return response
  }
}
