// The orchestrator's side of an RFC 8693 token exchange: it holds the user's token and sends it to
// the issuer's token endpoint, together with the JWTs the agent signed (client assertion, actor
// token, DPoP proof). The token issued is bound to the agent's key: useless to the orchestrator.
import { AgentIdError, decodeCompactJws, isAgentDid, jwkThumbprint, parsePublicJwk, publicJwkFromDid } from '@agentid/core'
import { JWT_BEARER_ASSERTION_TYPE, TokenRequestError, type FetchFunction } from './agent-fetch.js'
import { tokenEndpointOf, type ExchangeSigner } from './exchange-signer.js'

/** RFC 8693 `grant_type` of a token exchange. */
export const TOKEN_EXCHANGE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange'
/** RFC 8693 token type of an access token: the default `subjectTokenType`, and the type issued. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
/** RFC 8693 token type of a JWT: the actor token's, or a user's token that is a JWT of another kind. */
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt'
/** RFC 8693 token type of an OpenID Connect ID token (as `subjectTokenType`). */
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token'
/** The form parameter that carries a delegation chain (agentid's own, not RFC 8693's). */
const DELEGATION_PARAM = 'agentid_delegation'

export interface ExchangeTokenOptions {
  /** The issuer's base URL: the token endpoint is `${issuerUrl}/v1/token`. Give this or `tokenEndpoint`. */
  issuerUrl?: string
  /** The token endpoint's URL. */
  tokenEndpoint?: string
  /** The user's token from a trusted identity provider (a JWT). Sent to the issuer only. */
  subjectToken: string
  /** Its RFC 8693 type. Default: `urn:ietf:params:oauth:token-type:access_token`. */
  subjectTokenType?: string
  /** The agent: its DID and its signing callback (createExchangeSigner in the agent, reached however). */
  agent: Pick<ExchangeSigner, 'did' | 'sign'>
  /** RFC 8707 resource: the resource server the token is for (its `aud`). */
  resource: string
  /** RFC 9396 authorization details (type `agentid_action`): what the agent may do for the user. */
  authorizationDetails?: readonly Record<string, unknown>[]
  /** A delegation chain the agent acts under: its compact JWTs, root first (`agentid_delegation`). */
  delegationChain?: readonly string[]
  /** A DPoP nonce the token endpoint gave before (a result's `dpopNonce`): saves the nonce round trip. */
  dpopNonce?: string
  /** Underlying fetch. Default: globalThis.fetch. */
  fetch?: FetchFunction
  /** Aborts the token requests. */
  signal?: AbortSignal
}

/** A token the issuer exchanged: for the agent to use with its own DPoP key. */
export interface ExchangedToken {
  accessToken: string
  tokenType: 'DPoP'
  /** RFC 8693 `issued_token_type`: `urn:ietf:params:oauth:token-type:access_token`. */
  issuedTokenType: string
  /** Seconds until it expires. */
  expiresIn: number
  /** The details granted: the requested ones, narrowed to the user's grant and the agent's limits. */
  authorizationDetails: readonly Record<string, unknown>[]
  /** RFC 7638 thumbprint of the key the token is bound to (`cnf.jkt`): the agent's key. */
  dpopJkt: string
  /** The token endpoint's last DPoP nonce, for the next exchange's `dpopNonce`. */
  dpopNonce?: string
}

const invalidResponse = (status: number, message: string) => new TokenRequestError('invalid_response', status, message)

/**
 * Exchanges a user's token for an agent's token (RFC 8693) at the issuer's token endpoint. Call it
 * where the user's token is (the orchestrator, the user-facing app), never in the agent: the agent
 * only signs the client assertion, the actor token and the DPoP proof through `agent.sign`, and never
 * sees the user's token. A `use_dpop_nonce` answer is retried once with a fresh proof carrying the
 * nonce; any other refusal throws TokenRequestError with the OAuth error code.
 * @example
 * const token = await exchangeToken({ issuerUrl, subjectToken: userAccessToken, agent: { did, sign },
 *   resource: 'https://erp.example/mcp',
 *   authorizationDetails: [{ type: 'agentid_action', actions: ['invoke'], locations: ['mcp://erp/tools/invoices.read'] }] })
 * // hand token.accessToken and token.expiresIn to the agent (createAgentFetch's `token` source)
 */
export async function exchangeToken(options: ExchangeTokenOptions): Promise<ExchangedToken> {
  const tokenEndpoint = tokenEndpointOf(options, 'exchangeToken')
  const { agent, subjectToken, resource } = options
  if (typeof subjectToken !== 'string' || subjectToken === '') throw new TypeError('exchangeToken: subjectToken is required')
  if (typeof resource !== 'string' || resource === '') throw new TypeError('exchangeToken: resource is required')
  if (typeof agent?.sign !== 'function' || !isAgentDid(agent.did)) throw new TypeError('exchangeToken: agent needs a did:key did and a sign function')
  const dpopJkt = jwkThumbprint(publicJwkFromDid(agent.did))
  const baseFetch = options.fetch ?? (globalThis.fetch as FetchFunction)
  const details = options.authorizationDetails === undefined ? undefined : JSON.stringify(options.authorizationDetails)
  const chain = options.delegationChain === undefined ? undefined : JSON.stringify(options.delegationChain)
  let nonce = options.dpopNonce

  async function request(): Promise<Response> {
    const [clientAssertion, actorToken, proof] = await Promise.all([
      agent.sign({ type: 'client_assertion', audience: tokenEndpoint }),
      agent.sign({ type: 'actor_token', audience: tokenEndpoint }),
      agent.sign(nonce === undefined ? { type: 'dpop', htm: 'POST', htu: tokenEndpoint } : { type: 'dpop', htm: 'POST', htu: tokenEndpoint, nonce }),
    ])
    if (![clientAssertion, actorToken, proof].every((jwt) => typeof jwt === 'string' && jwt !== '')) {
      throw new AgentIdError('ERR_INVALID_INPUT', 'exchangeToken: the agent\'s signer returned no JWT')
    }
    // The token is bound to the proof's key: it must be the agent's own.
    let proofJkt: string | undefined
    try {
      proofJkt = jwkThumbprint(parsePublicJwk(decodeCompactJws(proof).header.jwk))
    } catch {
      proofJkt = undefined
    }
    if (proofJkt !== dpopJkt) throw new AgentIdError('ERR_KEY_MISMATCH', 'exchangeToken: the DPoP proof is not signed by the agent\'s key')
    const form = new URLSearchParams({
      grant_type: TOKEN_EXCHANGE_GRANT_TYPE,
      client_id: agent.did,
      client_assertion_type: JWT_BEARER_ASSERTION_TYPE,
      client_assertion: clientAssertion,
      subject_token: subjectToken,
      subject_token_type: options.subjectTokenType ?? ACCESS_TOKEN_TYPE,
      actor_token: actorToken,
      actor_token_type: JWT_TOKEN_TYPE,
      resource,
    })
    if (details !== undefined) form.set('authorization_details', details)
    if (chain !== undefined) form.set(DELEGATION_PARAM, chain)
    const response = await baseFetch(tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', dpop: proof },
      body: form.toString(),
      ...(options.signal ? { signal: options.signal } : {}),
    })
    nonce = response.headers.get('dpop-nonce') ?? nonce
    return response
  }

  const read = async (r: Response) => (await r.json().catch(() => undefined)) as Record<string, unknown> | undefined
  let response = await request()
  let body = await read(response)
  if (response.status === 400 && body?.error === 'use_dpop_nonce' && response.headers.get('dpop-nonce')) {
    response = await request()
    body = await read(response)
  }
  if (!response.ok) {
    const error = typeof body?.error === 'string' ? body.error : 'invalid_response'
    const description = typeof body?.error_description === 'string' ? `: ${body.error_description}` : ''
    throw new TokenRequestError(error, response.status, `token exchange refused (HTTP ${response.status}) ${error}${description}`)
  }
  const accessToken = body?.access_token
  if (typeof accessToken !== 'string' || accessToken === '') throw invalidResponse(response.status, 'the token endpoint returned no access_token')
  if (typeof body?.token_type !== 'string' || body.token_type.toLowerCase() !== 'dpop') throw invalidResponse(response.status, 'the token endpoint did not return a DPoP token')
  if (body.issued_token_type !== ACCESS_TOKEN_TYPE) throw invalidResponse(response.status, `issued_token_type must be ${ACCESS_TOKEN_TYPE}`)
  const expiresIn = body.expires_in
  if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn) || expiresIn <= 0) throw invalidResponse(response.status, 'expires_in must be a positive number')
  const granted = body.authorization_details ?? []
  if (!Array.isArray(granted) || !granted.every((d) => d !== null && typeof d === 'object' && !Array.isArray(d))) {
    throw invalidResponse(response.status, 'authorization_details must be an array of objects')
  }
  return {
    accessToken,
    tokenType: 'DPoP',
    issuedTokenType: ACCESS_TOKEN_TYPE,
    expiresIn,
    authorizationDetails: granted as Record<string, unknown>[],
    dpopJkt,
    ...(nonce === undefined ? {} : { dpopNonce: nonce }),
  }
}
